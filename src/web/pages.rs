//! Page handlers and their templates.

use super::views::{self, HypothesisView, IncidentRow, Lane};
use super::{wants_json, AppState, WebError};
use crate::model::{fmt_time, parse_time, EventRef, Kind, Source};
use crate::store::{EventFilter, EventLog, Order};
use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a page handler returns: the page, or the error the router renders as the error
/// page (or its JSON) for the request.
type PageResult = Result<Response, WebError>;

/// Default look-back and look-ahead of an incident's timeline.
const BEFORE_MS: i64 = 60 * 60 * 1000;
const AFTER_MS: i64 = 30 * 60 * 1000;
const MIN_SPAN_MS: i64 = 60 * 1000;
const MAX_SPAN_MS: i64 = 14 * 24 * 3600 * 1000;
/// Rows of the detail tables at most (the picture above counts every event of the
/// window); with the picture this keeps a page under 300 KB however busy the window.
const TIMELINE_LIMIT: i64 = 250;
const PAGE_SIZE: usize = 25;
/// Hypotheses whose causal path is drawn.
const PATH_PICTURES: usize = 10;

/// Renders a page as HTML, or its view model as JSON for JSON clients.
fn render<T: Template, J: Serialize>(headers: &HeaderMap, page: &T, json: &J) -> PageResult {
    if wants_json(headers) {
        return Ok(Json(json).into_response());
    }
    Ok(Html(page.render()?).into_response())
}

/// Longest query string accepted.
const MAX_QUERY: usize = 8192;

/// Query-string pairs; repeated keys allowed. Invalid UTF-8 is replaced, not fatal; an
/// overlong query string is a 400.
fn params(raw: &Option<String>) -> Result<Vec<(String, String)>, WebError> {
    match raw {
        Some(q) if q.len() > MAX_QUERY => Err(WebError::BadRequest(format!(
            "the query string is over {MAX_QUERY} bytes"
        ))),
        Some(q) => Ok(form_urlencoded::parse(q.as_bytes()).into_owned().collect()),
        None => Ok(Vec::new()),
    }
}

fn one<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn all<'a>(p: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    p.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .collect()
}

fn valid_incident_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The path parameter, or a 400 page saying what was wrong with it.
fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, WebError> {
    p.map(|Path(v)| v)
        .map_err(|e| WebError::BadRequest(format!("invalid path: {}", e.body_text())))
}

/// Builds a query string (values URL-encoded).
fn qs(pairs: &[(&str, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

// ------------------------------------------------------------------ error page

#[derive(Template)]
#[template(path = "error.html")]
pub(super) struct ErrorPage {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

pub(super) async fn not_found() -> WebError {
    WebError::NotFound("No such page.".into())
}

// ------------------------------------------------------------------ incidents

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    rows: Vec<IncidentRow>,
    state: String,
    page: usize,
    pages: usize,
    total: usize,
    prev_link: Option<String>,
    next_link: Option<String>,
}

#[derive(Serialize)]
struct IncidentsJson<'a> {
    incidents: &'a [IncidentRow],
    page: usize,
    pages: usize,
    total: usize,
}

pub(super) async fn incidents(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let p = params(&raw)?;
    let state = one(&p, "state").unwrap_or("all").to_string();
    if !matches!(state.as_str(), "all" | "open" | "resolved") {
        return Err(WebError::BadRequest(format!(
            "state must be all, open or resolved, not {state:?}"
        )));
    }
    let page: usize = match one(&p, "page") {
        None => 1,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n >= 1 && *n <= 1_000_000)
            .ok_or_else(|| {
                WebError::BadRequest(format!("page must be a positive number, not {v:?}"))
            })?,
    };
    let all = views::incidents(&st.store).await?;
    let rows: Vec<IncidentRow> = all
        .into_iter()
        .map(|r| r.row)
        .filter(|r| state == "all" || r.state == state)
        .collect();
    let total = rows.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let mut rows: Vec<IncidentRow> = rows
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    if !wants_json(&headers) {
        for r in &mut rows {
            r.strip = views::strip(&st.store, r).await?;
        }
    }
    let link = |n: usize| {
        format!(
            "/incidents?{}",
            qs(&[("state", state.clone()), ("page", n.to_string())])
        )
    };
    let json = IncidentsJson {
        incidents: &rows,
        page,
        pages,
        total,
    };
    let pg = IncidentsPage {
        prev_link: (page > 1).then(|| link(page - 1)),
        next_link: (page < pages).then(|| link(page + 1)),
        rows: rows.clone(),
        state,
        page,
        pages,
        total,
    };
    render(&headers, &pg, &json)
}

// ------------------------------------------------------------------ incident

#[derive(Serialize, Clone)]
struct Link {
    label: String,
    href: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    inc: IncidentRow,
    hypotheses: Vec<HypothesisView>,
    selected: usize,
    lanes: Vec<Lane>,
    truncated: bool,
    window_from: String,
    window_to: String,
    nav: Vec<Link>,
    kind_links: Vec<Link>,
    source_links: Vec<Link>,
    toggles: Vec<Link>,
    resource_filter: String,
    rankings: usize,
    engine_version: String,
    alarms: Vec<EventRef>,
    deliveries: Vec<crate::conclusions::outbox::Delivery>,
    event_count: usize,
    /// The window's picture: inline SVG written by `picture::svg` (every text escaped).
    picture: String,
    /// Earlier incidents that shared its alarms or resources.
    past: Vec<crate::conclusions::PastIncident>,
}

#[derive(Serialize)]
struct IncidentJson<'a> {
    incident: &'a IncidentRow,
    alarms: &'a [EventRef],
    hypotheses: &'a [HypothesisView],
    window: [&'a str; 2],
    lanes: &'a [Lane],
    truncated: bool,
    rankings: usize,
    engine_version: &'a str,
    deliveries: &'a [crate::conclusions::outbox::Delivery],
    past: &'a [crate::conclusions::PastIncident],
}

/// The timeline's query string, parsed once by [`TimelineQuery::parse`]: the window, the
/// filters, the lane layout and the highlighted hypothesis. The timeline's links are
/// copies with one thing changed (`with_*`), written back by [`TimelineQuery::href`].
#[derive(Clone)]
struct TimelineQuery {
    /// The window, ms since the epoch (`from`, `to`).
    from: i64,
    to: i64,
    /// Kind tags shown (`kind`, repeated); none shows every kind but logs.
    kinds: Vec<String>,
    /// Sources shown (`source`, repeated); none shows all.
    sources: Vec<Source>,
    /// The resource key events must touch (`resource`).
    resource: Option<String>,
    /// Read-only API calls shown too (`read_only=1`).
    read_only: bool,
    /// Lanes by kind rather than by resource (`lanes=kind`).
    lanes_by_kind: bool,
    /// Rank of the hypothesis whose evidence is marked (`h`, default 1).
    h: usize,
}

impl TimelineQuery {
    /// The timeline query of an incident opened at `anchor`: by default an hour before it
    /// to half an hour after. Anything malformed is a 400 saying what was wrong.
    fn parse(p: Vec<(String, String)>, anchor: i64) -> Result<TimelineQuery, WebError> {
        let bad = |m: String| WebError::BadRequest(m);
        let time = |k: &str| -> Result<Option<i64>, WebError> {
            match one(&p, k) {
                None => Ok(None),
                Some(v) => parse_time(v)
                    .filter(|t| crate::model::time_in_range(*t))
                    .map(Some)
                    .ok_or_else(|| {
                        bad(format!(
                            "{k} must be an RFC 3339 time of the years 1970 to 9999 such as 2025-10-07T14:00:00Z, not {}",
                            crate::model::quote_prefix(v)
                        ))
                    }),
            }
        };
        let from = time("from")?.unwrap_or(anchor.saturating_sub(BEFORE_MS));
        let to = time("to")?.unwrap_or(anchor.saturating_add(AFTER_MS));
        let span = to.saturating_sub(from);
        if !(MIN_SPAN_MS..=MAX_SPAN_MS).contains(&span) {
            return Err(bad(
                "the window (to - from) must be between 1 minute and 14 days".into(),
            ));
        }
        let kinds: Vec<String> = all(&p, "kind").into_iter().map(str::to_string).collect();
        for k in &kinds {
            if !Kind::TAGS.contains(&k.as_str()) {
                return Err(bad(format!(
                    "unknown kind {k:?}; expected one of {}",
                    Kind::TAGS.join(", ")
                )));
            }
        }
        let mut sources = Vec::new();
        for s in all(&p, "source") {
            sources.push(Source::parse(s).ok_or_else(|| bad(format!("unknown source {s:?}")))?);
        }
        let resource = one(&p, "resource").map(crate::normalize::resource::from_input);
        if resource.as_ref().is_some_and(|r| r.len() > 512) {
            return Err(bad("resource is too long".into()));
        }
        let read_only = one(&p, "read_only") == Some("1");
        let by_kind = one(&p, "lanes") == Some("kind");
        let selected: usize = match one(&p, "h") {
            None => 1,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n >= 1 && *n <= 100)
                .ok_or_else(|| bad(format!("h must be a hypothesis rank, not {v:?}")))?,
        };
        Ok(TimelineQuery {
            from,
            to,
            kinds,
            sources,
            resource,
            read_only,
            lanes_by_kind: by_kind,
            h: selected,
        })
    }
}

impl TimelineQuery {
    /// The link to incident `incident_id`'s page with this query. Parameters keep this
    /// order; `read_only`, `lanes` and `h` are left out at their defaults.
    fn href(&self, incident_id: &str) -> String {
        let mut pairs: Vec<(&str, String)> =
            vec![("from", fmt_time(self.from)), ("to", fmt_time(self.to))];
        for k in &self.kinds {
            pairs.push(("kind", k.clone()));
        }
        for s in &self.sources {
            pairs.push(("source", s.as_str().to_string()));
        }
        if let Some(r) = &self.resource {
            pairs.push(("resource", r.clone()));
        }
        if self.read_only {
            pairs.push(("read_only", "1".into()));
        }
        if self.lanes_by_kind {
            pairs.push(("lanes", "kind".into()));
        }
        if self.h != 1 {
            pairs.push(("h", self.h.to_string()));
        }
        format!("/incidents/{incident_id}?{}", qs(&pairs))
    }

    /// The window's length in ms.
    fn span(&self) -> i64 {
        self.to.saturating_sub(self.from)
    }

    /// This query over another window.
    fn with_window(&self, from: i64, to: i64) -> Self {
        TimelineQuery {
            from,
            to,
            ..self.clone()
        }
    }

    /// This query with `kind` added to the kinds shown, or removed if it is shown.
    fn with_kind_toggled(&self, kind: &str) -> Self {
        let mut next = self.clone();
        if self.kinds.iter().any(|k| k == kind) {
            next.kinds.retain(|k| k != kind);
        } else {
            next.kinds.push(kind.to_string());
        }
        next
    }

    /// This window alone, with only `sources` (every other parameter at its default).
    fn window_with_sources(&self, sources: Vec<Source>) -> Self {
        TimelineQuery {
            from: self.from,
            to: self.to,
            kinds: Vec::new(),
            sources,
            resource: None,
            read_only: false,
            lanes_by_kind: false,
            h: 1,
        }
    }

    /// This query with read-only calls shown or hidden.
    fn with_read_only(&self, read_only: bool) -> Self {
        TimelineQuery {
            read_only,
            ..self.clone()
        }
    }

    /// This query with lanes by kind or by resource.
    fn with_lanes_by_kind(&self, lanes_by_kind: bool) -> Self {
        TimelineQuery {
            lanes_by_kind,
            ..self.clone()
        }
    }

    /// The store query for the timeline: one event over the limit, to tell a window
    /// that was cut short.
    fn filter(&self) -> EventFilter {
        EventFilter {
            from: Some(self.from),
            to: Some(self.to),
            sources: self.sources.clone(),
            kinds: self.kinds.clone(),
            resource: self.resource.clone(),
            exclude_read_only: !self.read_only,
            limit: TIMELINE_LIMIT + 1,
            by_time: true,
            order: Order::Asc,
            // The rows show normalized fields only: the payloads stay on disk.
            without_payload: true,
            ..Default::default()
        }
    }
}

/// The incident's hypotheses as shown, with the verdicts given on them.
async fn hypothesis_views(
    st: &AppState,
    id: &str,
    rec: &views::IncidentRecord,
) -> Result<Vec<HypothesisView>, WebError> {
    let (verdicts, found) = tokio::try_join!(
        views::feedback(&st.store, id),
        views::cited_events(&st.store, &rec.recorded.hypotheses),
    )?;
    let mut hyps: Vec<HypothesisView> = rec
        .recorded
        .hypotheses
        .iter()
        .map(|h| views::hypothesis_view(h, &verdicts, &found))
        .collect();
    let svgs = futures_util::future::try_join_all(
        hyps.iter()
            .take(PATH_PICTURES)
            .map(|v| views::path_svg(&st.store, v)),
    )
    .await?;
    for (v, svg) in hyps.iter_mut().zip(svgs) {
        v.path_svg = svg;
    }
    Ok(hyps)
}

/// The events of the query's window in lanes, the selected hypothesis's evidence marked.
struct Timeline {
    lanes: Vec<Lane>,
    /// The window holds more than [`TIMELINE_LIMIT`] events; the first are shown.
    truncated: bool,
    event_count: usize,
}

async fn timeline(
    st: &AppState,
    rec: &views::IncidentRecord,
    q: &TimelineQuery,
) -> Result<Timeline, WebError> {
    let chain: Vec<EventRef> = rec
        .recorded
        .hypotheses
        .iter()
        .find(|h| h.rank == q.h)
        .map(|h| h.evidence.clone())
        .unwrap_or_default();
    let mut events = st.store.query(&q.filter()).await?;
    let truncated = events.len() as i64 > TIMELINE_LIMIT;
    events.truncate(TIMELINE_LIMIT as usize);
    // Logs are many: unless asked for, keep them out of the timeline.
    if q.kinds.is_empty() {
        events.retain(|e| !matches!(e.kind, Kind::Log { .. }) || chain.contains(&e.reference()));
    }
    let anchor = rec.row.opened_ms;
    let rows: Vec<_> = events
        .iter()
        .map(|e| views::row(e, anchor, &chain))
        .collect();
    Ok(Timeline {
        lanes: views::lanes(rows, q.lanes_by_kind),
        truncated,
        event_count: events.len(),
    })
}

/// The picture of the query's window: counted marks of the window's events (one
/// bounded aggregate read), the alarms' transitions and states, the selected
/// hypothesis's evidence drawn on its own, as inline SVG.
async fn picture(
    st: &AppState,
    rec: &views::IncidentRecord,
    q: &TimelineQuery,
    hyps: &[HypothesisView],
) -> Result<String, WebError> {
    use super::picture::{self, ChainEvent, Role};
    let grid = crate::store::MarkGrid::new(q.from, q.to, picture::BUCKETS);
    let selected = hyps.iter().find(|h| h.rank == q.h);
    let mut chain: Vec<ChainEvent> = Vec::new();
    if let Some(h) = selected {
        let mut cause: Option<(String, String)> = None;
        let last = h.evidence.len().saturating_sub(1);
        let cited: Vec<i64> = h.evidence.iter().take(24).filter_map(|e| e.seq).collect();
        let by_seq: BTreeMap<i64, crate::model::Event> = st
            .store
            .events_bare(&cited)
            .await?
            .into_iter()
            .map(|e| (e.seq, e))
            .collect();
        for (i, e) in h.evidence.iter().enumerate().take(24) {
            let Some(seq) = e.seq else { continue };
            let Some(ev) = by_seq.get(&seq).cloned() else {
                continue;
            };
            let key = (
                ev.name.clone(),
                ev.resources.first().cloned().unwrap_or_default(),
            );
            let role = if i == 0 || cause.as_ref() == Some(&key) {
                Role::Cause
            } else if i == last || matches!(ev.kind, Kind::Alarm { .. }) {
                Role::Symptom
            } else {
                Role::Effect
            };
            if i == 0 {
                cause = Some(key);
            }
            if (q.from..=q.to).contains(&ev.event_time) && !chain.iter().any(|c| c.event.seq == seq)
            {
                chain.push(ChainEvent { event: ev, role });
            }
        }
    }
    let except: Vec<i64> = chain.iter().map(|c| c.event.seq).collect();
    let sources: Vec<String> = q.sources.iter().map(|s| s.as_str().to_string()).collect();
    let want_alarms = q.kinds.is_empty() || q.kinds.iter().any(|k| k == "alarm");
    let mut alarm_lanes = views::alarm_keys(&rec.recorded.opened);
    alarm_lanes.truncate(6);
    let filter = crate::store::MarkFilter {
        kinds: &q.kinds,
        sources: &sources,
        except: &except,
        band_lanes: &alarm_lanes,
    };
    let mut preferred: Vec<String> = Vec::new();
    preferred.extend(q.resource.iter().cloned());
    preferred.extend(rec.row.resources.iter().cloned());
    if let Some(h) = selected {
        preferred.extend(h.path.iter().cloned());
    }
    for h in hyps.iter().take(5) {
        preferred.extend(h.path.first().cloned());
    }
    let mut input = picture::Input {
        from: q.from,
        to: q.to,
        opened: rec.row.opened_ms,
        resolved: rec.recorded.resolved_at,
        alarm_lanes: alarm_lanes.clone(),
        preferred,
        lane_totals: &[],
        marks: &[],
        origin: grid.origin,
        bucket_ms: grid.bucket_ms,
        alarms: &[],
        before: &BTreeMap::new(),
        chain: &chain,
        selected: selected.is_some(),
    };
    // The lanes every picture of this incident has (its alarms, the chain, the preferred
    // resources); the store adds the busiest others in the statement that counts marks.
    let (fixed, _) = picture::lanes(&input);
    let busiest = picture::MAX_LANES.saturating_sub(fixed.len());
    let t = std::time::Instant::now();
    let ((counted, marks_ms), (alarms, alarms_ms), (states, states_ms)) = tokio::join!(
        async {
            let t = std::time::Instant::now();
            let r = st
                .store
                .window_picture(&grid, &filter, &fixed, busiest)
                .await;
            (r, ms_since(t))
        },
        async {
            let t = std::time::Instant::now();
            // The bands' transitions; other alarms' are counted marks.
            let r = match want_alarms {
                true => {
                    st.store
                        .alarm_transitions(&alarm_lanes, q.from, q.to, 2000)
                        .await
                }
                false => Ok(Vec::new()),
            };
            (r, ms_since(t))
        },
        async {
            let t = std::time::Instant::now();
            let r = futures_util::future::try_join_all(
                alarm_lanes
                    .iter()
                    .map(|k| st.store.alarm_state_before(k, q.from)),
            )
            .await;
            (r, ms_since(t))
        }
    );
    let (counted, mut alarms, states) = (counted?, alarms?, states?);
    alarms.retain(|a| q.sources.is_empty() || q.sources.contains(&a.source));
    let before: BTreeMap<String, crate::model::Event> = alarm_lanes
        .iter()
        .cloned()
        .zip(states)
        .filter_map(|(k, e)| e.map(|e| (k, e)))
        .collect();
    tracing::debug!(
        ms = ms_since(t),
        marks_ms,
        alarms_ms,
        states_ms,
        lanes = counted.lanes.len(),
        "Incident picture marks read"
    );
    let t_reads = std::time::Instant::now();
    input.lane_totals = &counted.totals;
    input.marks = &counted.marks;
    input.alarms = &alarms;
    input.before = &before;
    let p = picture::layout(&input);
    let label = format!(
        "Timeline of {} from {} to {} UTC: {} lanes, {} events{}",
        rec.row.title,
        fmt_time(q.from),
        fmt_time(q.to),
        p.lanes.len(),
        p.events,
        match selected {
            Some(h) => format!("; hypothesis ranked {} drawn", h.rank),
            None => String::new(),
        }
    );
    let svg = picture::svg(&p, &label);
    tracing::debug!(
        marks = counted.marks.len(),
        draw_ms = ms_since(t_reads),
        "Incident picture drawn"
    );
    Ok(svg)
}

/// Earlier, zoom in, zoom out, later (each half a window) and reset.
fn nav_links(id: &str, q: &TimelineQuery) -> Vec<Link> {
    let (from, to, span) = (q.from, q.to, q.span());
    // Stored times are within the years 1970 to 9999 and a span is at most 14 days, but
    // saturating arithmetic keeps even an older store's wild times from overflowing.
    let center = from.saturating_add(span / 2);
    let link = |label: &str, from: i64, to: i64| Link {
        label: label.into(),
        href: q.with_window(from, to).href(id),
        active: false,
    };
    vec![
        link(
            "← earlier",
            from.saturating_sub(span / 2),
            to.saturating_sub(span / 2),
        ),
        link(
            "zoom in",
            center.saturating_sub(span / 4),
            center.saturating_add(span / 4),
        ),
        link(
            "zoom out",
            center.saturating_sub(span),
            center.saturating_add(span),
        ),
        link(
            "later →",
            from.saturating_add(span / 2),
            to.saturating_add(span / 2),
        ),
        Link {
            label: "reset".into(),
            href: format!("/incidents/{id}"),
            active: false,
        },
    ]
}

/// One link per kind, adding it to the kinds shown or removing it.
fn kind_links(id: &str, q: &TimelineQuery) -> Vec<Link> {
    Kind::TAGS
        .iter()
        .map(|k| Link {
            label: k.to_string(),
            href: q.with_kind_toggled(k).href(id),
            active: q.kinds.iter().any(|x| x == k),
        })
        .collect()
}

/// One link per source: this window with only that source, or with all when it is the
/// one shown.
fn source_links(id: &str, q: &TimelineQuery) -> Vec<Link> {
    Source::ALL
        .iter()
        .map(|s| {
            let active = q.sources.contains(s);
            let only = if active { Vec::new() } else { vec![*s] };
            Link {
                label: s.as_str().to_string(),
                href: q.window_with_sources(only).href(id),
                active,
            }
        })
        .collect()
}

/// Show or hide read-only calls; lanes by kind or by resource.
fn toggle_links(id: &str, q: &TimelineQuery) -> Vec<Link> {
    vec![
        Link {
            label: if q.read_only {
                "hide read-only calls".into()
            } else {
                "show read-only calls".into()
            },
            href: q.with_read_only(!q.read_only).href(id),
            active: q.read_only,
        },
        Link {
            label: if q.lanes_by_kind {
                "lanes by resource".into()
            } else {
                "lanes by kind".into()
            },
            href: q.with_lanes_by_kind(!q.lanes_by_kind).href(id),
            active: q.lanes_by_kind,
        },
    ]
}

/// Milliseconds since `t`, for the debug log's stage times.
fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// An incident: its hypotheses and the timeline its query string selects.
pub(super) async fn incident(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let id = path_param(path)?;
    let p = params(&raw)?;
    let t0 = std::time::Instant::now();
    let rec = load_incident(&st, &id).await?;
    let q = TimelineQuery::parse(p, rec.row.opened_ms)?;
    let t_load = ms_since(t0);
    let mut keys = rec.recorded.opened.resources.clone();
    for n in &rec.recorded.opened.alarm_names {
        keys.push(format!("alarm/{n}"));
    }
    // The hypotheses (then the picture, which draws the selected one), the tables and
    // the past incidents read independently: on the pool's read connections at once (a
    // page is otherwise the sum of their reads).
    let (timeline, hyps_picture, past) = tokio::join!(
        async {
            let t = std::time::Instant::now();
            timeline(&st, &rec, &q).await.map(|v| (v, ms_since(t)))
        },
        async {
            let t = std::time::Instant::now();
            let hyps = hypothesis_views(&st, &id, &rec).await?;
            let t_hyps = ms_since(t);
            let t = std::time::Instant::now();
            let picture = picture(&st, &rec, &q, &hyps).await?;
            Ok::<_, WebError>((hyps, t_hyps, picture, ms_since(t)))
        },
        async {
            let t = std::time::Instant::now();
            let past =
                crate::conclusions::earlier_incidents(&st.store, &keys, rec.row.opened_ms, &id, 5)
                    .await?;
            let deliveries = crate::conclusions::outbox::deliveries(&st.store, &id)
                .await
                .unwrap_or_default();
            Ok::<_, WebError>(((past, deliveries), ms_since(t)))
        },
    );
    let (timeline, t_tables) = timeline?;
    let (hyps, t_hyps, picture, t_picture) = hyps_picture?;
    let ((past, deliveries), t_past) = past?;
    tracing::debug!(
        incident = %id,
        load_ms = t_load,
        hypotheses_ms = t_hyps,
        tables_ms = t_tables,
        picture_ms = t_picture,
        past_ms = t_past,
        total_ms = ms_since(t0),
        "Incident page read"
    );
    let window_from = fmt_time(q.from);
    let window_to = fmt_time(q.to);
    let json = IncidentJson {
        incident: &rec.row,
        alarms: &rec.recorded.opened.alarms,
        hypotheses: &hyps,
        window: [&window_from, &window_to],
        lanes: &timeline.lanes,
        truncated: timeline.truncated,
        rankings: rec.recorded.rankings,
        engine_version: &rec.recorded.engine_version,
        deliveries: &deliveries,
        past: &past,
    };
    let page = IncidentPage {
        inc: rec.row.clone(),
        hypotheses: hyps.clone(),
        selected: q.h,
        lanes: timeline.lanes.clone(),
        truncated: timeline.truncated,
        window_from: window_from.clone(),
        window_to: window_to.clone(),
        nav: nav_links(&id, &q),
        kind_links: kind_links(&id, &q),
        source_links: source_links(&id, &q),
        toggles: toggle_links(&id, &q),
        resource_filter: q.resource.clone().unwrap_or_default(),
        rankings: rec.recorded.rankings,
        engine_version: rec.recorded.engine_version.clone(),
        alarms: rec.recorded.opened.alarms.clone(),
        deliveries: deliveries.clone(),
        event_count: timeline.event_count,
        picture,
        past: past.clone(),
    };
    render(&headers, &page, &json)
}

/// The recorded incident `id`, or the 404 page.
async fn load_incident(st: &AppState, id: &str) -> Result<views::IncidentRecord, WebError> {
    if !valid_incident_id(id) {
        return Err(WebError::NotFound("No such incident.".into()));
    }
    views::incident(&st.store, id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("No incident {id}.")))
}

/// Who is acting: the signed-in principal (the guard always sets one on a post; `web`
/// when the router runs without it, as in tests of the bare router).
fn by(who: &Option<axum::Extension<super::security::Principal>>) -> String {
    who.as_ref()
        .map(|p| p.0.name.clone())
        .unwrap_or_else(|| "web".to_string())
}

/// One verdict to record.
struct VerdictOf<'a> {
    incident: &'a str,
    verdict: &'a str,
    cause: &'a EventRef,
    resources: &'a [String],
    by: &'a str,
}

/// Appends a verdict (durably) with the first free id from number `n` on; returns the
/// number used. Two verdicts posted within one millisecond read the same count and would
/// get the same id, and the log keeps only the first event of an id: the append reports
/// the duplicate and the next number is tried, so no verdict is silently lost.
async fn store_verdict(
    store: &crate::store::Store,
    v: &VerdictOf<'_>,
    now: i64,
    n: usize,
) -> Result<usize, WebError> {
    for k in 0..FEEDBACK_ID_ATTEMPTS {
        let number = n.saturating_add(k);
        let ev = crate::conclusions::feedback_event(
            v.incident,
            v.verdict,
            v.cause,
            v.resources,
            Some(v.by),
            now,
            number,
        )
        .map_err(|e| WebError::Other(e.into()))?;
        if store.append_durable(&[ev]).await?.appended == 1 {
            return Ok(number);
        }
    }
    Err(WebError::Other(anyhow::anyhow!(
        "no free feedback id for incident {} after {FEEDBACK_ID_ATTEMPTS} attempts",
        v.incident
    )))
}

/// Ids tried for one verdict before giving up (each attempt is one append).
const FEEDBACK_ID_ATTEMPTS: usize = 1000;

#[derive(serde::Deserialize)]
pub(super) struct FeedbackForm {
    source: String,
    cause: String,
    verdict: String,
    /// Who gives the verdict (optional, free text, shown in the report).
    #[serde(default)]
    by: String,
}

pub(super) async fn feedback(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    who: Option<axum::Extension<super::security::Principal>>,
    Form(f): Form<FeedbackForm>,
) -> PageResult {
    let id = path_param(path)?;
    let bad = |m: String| WebError::BadRequest(m);
    let verdict = match f.verdict.as_str() {
        "accept" => "accepted",
        "discard" => "discarded",
        other => {
            return Err(bad(format!(
                "verdict must be accept or discard, not {other:?}"
            )))
        }
    };
    let rec = load_incident(&st, &id).await?;
    let cause = EventRef {
        source: f.source,
        id: f.cause,
    };
    if !rec.recorded.hypotheses.iter().any(|h| h.cause == cause) {
        return Err(bad("that hypothesis is not one of this incident's".into()));
    }
    let n = views::feedback_count(&st.store, &id).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let typed = f.by.trim();
    if typed.chars().count() > 100 {
        return Err(bad("by must be at most 100 characters".into()));
    }
    // Signed in, the verdict is the user's; without authentication, the name typed in
    // the form (if any) says who gave it.
    let by = match (&st.auth.mode, typed.is_empty()) {
        (super::security::AuthMode::None, false) => typed.to_string(),
        _ => by(&who),
    };
    let verdict_of = VerdictOf {
        incident: &id,
        verdict,
        cause: &cause,
        resources: &rec.row.resources,
        by: &by,
    };
    store_verdict(&st.store, &verdict_of, now, n).await?;
    tracing::info!(incident = %id, verdict, by = %by, "Hypothesis feedback recorded");
    if wants_json(&headers) {
        return Ok(Json(serde_json::json!({"ok": true, "verdict": verdict})).into_response());
    }
    Ok(Redirect::to(&format!("/incidents/{id}#hypotheses")).into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct IssueForm {
    source: String,
    cause: String,
}

pub(super) async fn request_issue(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    who: Option<axum::Extension<super::security::Principal>>,
    Form(f): Form<IssueForm>,
) -> PageResult {
    let id = path_param(path)?;
    let rec = load_incident(&st, &id).await?;
    let cause = EventRef {
        source: f.source,
        id: f.cause,
    };
    let Some(h) = rec.recorded.hypotheses.iter().find(|h| h.cause == cause) else {
        return Err(WebError::BadRequest(
            "that hypothesis is not one of this incident's".into(),
        ));
    };
    let Some(incident) = rec.recorded.incident() else {
        return Err(WebError::NotFound(format!(
            "incident {id} names no trigger"
        )));
    };
    let created = crate::conclusions::outbox::request_issue(&st.store, &incident, h, &by(&who))
        .await
        .map_err(|e| WebError::BadRequest(format!("cannot request an issue: {e}")))?;
    if wants_json(&headers) {
        return Ok(Json(serde_json::json!({"ok": true, "requested": created})).into_response());
    }
    Ok(Redirect::to(&format!("/incidents/{id}#issues")).into_response())
}

// ------------------------------------------------------------------ report

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    r: crate::conclusions::report::Report,
    markdown: String,
}

/// The incident's post-incident draft, gathered from the log.
async fn incident_report(
    st: &AppState,
    id: &str,
) -> Result<crate::conclusions::report::Report, WebError> {
    let rec = load_incident(st, id).await?;
    let Some(inc) = rec.recorded.incident() else {
        return Err(WebError::NotFound(format!(
            "incident {id} names no trigger"
        )));
    };
    Ok(crate::conclusions::report::gather(&st.store, &inc).await?)
}

/// `/incidents/ID/report`: the post-incident draft as a page (JSON: its data).
pub(super) async fn report(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> PageResult {
    let id = path_param(path)?;
    let r = incident_report(&st, &id).await?;
    let markdown = r.markdown(&st.public_url);
    if wants_json(&headers) {
        return Ok(Json(serde_json::json!({"report": r, "markdown": markdown})).into_response());
    }
    render(&headers, &ReportPage { r, markdown }, &())
}

/// `/incidents/ID/report.md`: the same draft as a Markdown download, byte for byte what
/// `rootline report ID` prints and what a GitHub issue's body holds.
pub(super) async fn report_markdown(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> PageResult {
    let id = path_param(path)?;
    let r = incident_report(&st, &id).await?;
    let file = format!("rootline-{}.md", r.id);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        r.markdown(&st.public_url),
    )
        .into_response())
}

// ------------------------------------------------------------------ event

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    ev: EventView,
    payload: String,
}

#[derive(Serialize, Clone)]
struct EventView {
    seq: i64,
    source: String,
    id: String,
    time: String,
    received_at: Option<String>,
    kind: String,
    /// The name as recorded (with any API version suffix).
    name: String,
    /// The name as the other pages show it ([`crate::model::display_name`]).
    display_name: String,
    actor: String,
    read_only: bool,
    error_code: Option<String>,
    resources: Vec<String>,
    detail: String,
}

pub(super) async fn event(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> PageResult {
    let seq = path_param(path)?;
    let seq: i64 = seq.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        WebError::BadRequest(format!(
            "event number must be a positive integer, not {seq:?}"
        ))
    })?;
    let e = st
        .store
        .get(seq)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("No event {seq}.")))?;
    let view = EventView {
        seq: e.seq,
        source: e.source.as_str().to_string(),
        id: e.natural_id.clone(),
        time: fmt_time(e.event_time),
        received_at: e.received_at.map(fmt_time),
        kind: e.kind.tag().to_string(),
        name: e.name.clone(),
        display_name: crate::model::display_name(&e.name).to_string(),
        actor: e.actor.clone().unwrap_or_default(),
        read_only: e.read_only,
        error_code: e.error_code.clone(),
        resources: e.resources.clone(),
        detail: views::detail(&e),
    };
    let parsed: serde_json::Value =
        serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null);
    if wants_json(&headers) {
        return Ok(Json(serde_json::json!({"event": view, "payload": parsed})).into_response());
    }
    let payload = serde_json::to_string_pretty(&parsed).unwrap_or_else(|_| e.payload.clone());
    render(&headers, &EventPage { ev: view, payload }, &())
}

// ------------------------------------------------------------------ resource

#[derive(Template)]
#[template(path = "resource.html")]
struct ResourcePage {
    key: String,
    neighbours: Vec<(String, usize)>,
    rows: Vec<views::TimelineRow>,
    history: Vec<crate::conclusions::PastIncident>,
}

pub(super) async fn resource(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> PageResult {
    let key = path_param(path)?;
    if key.is_empty() || key.len() > 512 {
        return Err(WebError::BadRequest(
            "resource key must be 1 to 512 characters".into(),
        ));
    }
    let key = crate::normalize::resource::from_input(&key);
    let related = views::resource_events(&st.store, &key, &[], 500).await?;
    if related.is_empty() {
        return Err(WebError::NotFound(format!("No events touch {key}.")));
    }
    let neighbours = views::neighbours(&key, &related);
    let changes = views::resource_events(
        &st.store,
        &key,
        &["change", "deployment", "alarm", "anomaly", "snapshot"],
        100,
    )
    .await?;
    let now = changes.first().map(|e| e.event_time).unwrap_or(0);
    let rows: Vec<_> = changes.iter().map(|e| views::row(e, now, &[])).collect();
    let history = crate::conclusions::earlier_incidents(
        &st.store,
        std::slice::from_ref(&key),
        i64::MAX,
        "",
        20,
    )
    .await?;
    if wants_json(&headers) {
        return Ok(Json(
            serde_json::json!({"resource": key, "neighbours": neighbours, "recent": rows, "incidents": history}),
        )
        .into_response());
    }
    render(
        &headers,
        &ResourcePage {
            key,
            neighbours,
            rows,
            history,
        },
        &(),
    )
}

// ------------------------------------------------------------------ search

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    q: String,
    resource: Option<String>,
    rows: Vec<views::TimelineRow>,
    incidents: Vec<IncidentRow>,
}

pub(super) async fn search(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let p = params(&raw)?;
    let q = one(&p, "q").unwrap_or("").trim().to_string();
    if q.len() > 256 {
        return Err(WebError::BadRequest(
            "search text must be at most 256 characters".into(),
        ));
    }
    let mut resource = None;
    let mut rows = Vec::new();
    let mut incidents = Vec::new();
    if !q.is_empty() {
        if let Ok(seq) = q.parse::<i64>() {
            if seq > 0 && st.store.get(seq).await?.is_some() && !wants_json(&headers) {
                return Ok(Redirect::to(&format!("/events/{seq}")).into_response());
            }
        }
        let key = crate::normalize::resource::from_input(&q);
        if !views::resource_events(&st.store, &key, &[], 1)
            .await?
            .is_empty()
        {
            resource = Some(key);
        }
        incidents = views::matching_incidents(&st.store, &q, 50)
            .await?
            .into_iter()
            .map(|r| r.row)
            .collect();
        let evs = st
            .store
            .query(&EventFilter {
                text: Some(q.clone()),
                limit: 100,
                by_time: true,
                order: Order::Desc,
                ..Default::default()
            })
            .await?;
        let now = evs.first().map(|e| e.event_time).unwrap_or(0);
        rows = evs.iter().map(|e| views::row(e, now, &[])).collect();
    }
    if wants_json(&headers) {
        return Ok(Json(serde_json::json!({"q": q, "resource": resource, "incidents": incidents, "events": rows})).into_response());
    }
    render(
        &headers,
        &SearchPage {
            q,
            resource,
            rows,
            incidents,
        },
        &(),
    )
}

// ------------------------------------------------------------------ status

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    components: Vec<(String, String)>,
    events: i64,
    rate: String,
}

pub(super) async fn status(
    State(st): State<AppState>,
    headers: HeaderMap,
    who: Option<axum::Extension<super::security::Principal>>,
) -> PageResult {
    let events = st.store.max_seq().await?;
    // Component states can carry raw AWS error text (account ids, role names): viewers
    // see only whether a component is ok or failing, responders the whole text.
    let full = who
        .as_ref()
        .is_none_or(|p| p.0.role == super::security::Role::Responder);
    let components: Vec<(String, String)> = st
        .components
        .lock()
        .map(|c| {
            c.iter()
                .map(|(k, v)| {
                    let shown = if full {
                        v.clone()
                    } else {
                        v.split(':').next().unwrap_or("").to_string()
                    };
                    (k.clone(), shown)
                })
                .collect()
        })
        .unwrap_or_default();
    let rate = format!("{:.1}", st.ingest_rate());
    let json: BTreeMap<&str, serde_json::Value> = [
        ("events", serde_json::json!(events)),
        (
            "ingest_events_per_second",
            serde_json::json!(st.ingest_rate()),
        ),
        ("components", serde_json::json!(components)),
    ]
    .into_iter()
    .collect();
    render(
        &headers,
        &StatusPage {
            components,
            events,
            rate,
        },
        &json,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-10-07T14:00:00Z.
    const OPENED: i64 = 1_759_845_600_000;

    fn query(q: &str) -> Result<TimelineQuery, WebError> {
        TimelineQuery::parse(params(&Some(q.to_string()))?, OPENED)
    }

    #[tokio::test]
    async fn two_verdicts_in_one_millisecond_are_both_stored() {
        use crate::store::EventLog;
        let store = crate::store::Store::open("sqlite::memory:").await.unwrap();
        let cause = EventRef {
            source: "cloudtrail".into(),
            id: "cause".into(),
        };
        let v = |verdict| VerdictOf {
            incident: "inc-1",
            verdict,
            cause: &cause,
            resources: &[],
            by: "ana",
        };
        // Both posts read the same count (0) at the same millisecond.
        assert_eq!(
            store_verdict(&store, &v("accepted"), OPENED, 0)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store_verdict(&store, &v("discarded"), OPENED, 0)
                .await
                .unwrap(),
            1
        );
        let (latest, total) = crate::conclusions::verdicts(&store, "inc-1").await.unwrap();
        assert_eq!(total, 2, "both verdicts are in the log");
        assert_eq!(latest.get(&cause).map(String::as_str), Some("discarded"));
        assert_eq!(store.count().await.unwrap(), 2);
    }

    fn message(q: &str) -> String {
        match query(q) {
            Err(WebError::BadRequest(m)) => m,
            Err(e) => panic!("{q}: not a 400: {e}"),
            Ok(_) => panic!("{q}: accepted"),
        }
    }

    #[test]
    fn the_default_window_is_an_hour_before_the_incident_to_half_an_hour_after() {
        let q = query("").unwrap();
        assert_eq!((q.from, q.to), (OPENED - BEFORE_MS, OPENED + AFTER_MS));
        assert_eq!(
            q.href("inc-1"),
            "/incidents/inc-1?from=2025-10-07T13%3A00%3A00.000Z&to=2025-10-07T14%3A30%3A00.000Z"
        );
    }

    #[test]
    fn href_writes_every_parameter_back_in_one_order() {
        let q = query(
            "h=2&lanes=kind&read_only=1&resource=a b%26c&source=logs&kind=change&kind=alarm\
             &to=2025-10-07T15:00:00Z&from=2025-10-07T14:00:00Z",
        )
        .unwrap();
        assert_eq!(
            q.href("inc-1"),
            "/incidents/inc-1?from=2025-10-07T14%3A00%3A00.000Z&to=2025-10-07T15%3A00%3A00.000Z\
             &kind=change&kind=alarm&source=logs&resource=a+b%26c&read_only=1&lanes=kind&h=2"
        );
    }

    #[test]
    fn parameters_at_their_defaults_are_left_out() {
        let q = query("h=1&read_only=0&lanes=resource&kind=&source=&resource=").unwrap();
        assert_eq!(q.href("i"), query("").unwrap().href("i"));
    }

    #[test]
    fn each_builder_changes_one_thing() {
        let q = query("from=2025-10-07T14:00:00Z&to=2025-10-07T15:00:00Z&kind=change&h=3").unwrap();
        let window = "from=2025-10-07T14%3A00%3A00.000Z&to=2025-10-07T15%3A00%3A00.000Z";
        let later = q.with_window(q.from + q.span() / 2, q.to + q.span() / 2);
        assert_eq!(
            later.href("i"),
            "/incidents/i?from=2025-10-07T14%3A30%3A00.000Z&to=2025-10-07T15%3A30%3A00.000Z\
             &kind=change&h=3"
        );
        assert_eq!(
            q.with_kind_toggled("alarm").href("i"),
            format!("/incidents/i?{window}&kind=change&kind=alarm&h=3")
        );
        assert_eq!(
            q.with_kind_toggled("change").href("i"),
            format!("/incidents/i?{window}&h=3")
        );
        assert_eq!(
            q.with_read_only(true).href("i"),
            format!("/incidents/i?{window}&kind=change&read_only=1&h=3")
        );
        assert_eq!(
            q.with_lanes_by_kind(true).href("i"),
            format!("/incidents/i?{window}&kind=change&lanes=kind&h=3")
        );
        assert_eq!(
            q.window_with_sources(vec![Source::CloudTrail]).href("i"),
            format!("/incidents/i?{window}&source=cloudtrail")
        );
    }

    #[test]
    fn malformed_queries_are_400s_that_say_what_was_wrong() {
        assert!(message("from=garbage").starts_with("from must be an RFC 3339 time"));
        assert!(message("to=garbage").starts_with("to must be an RFC 3339 time"));
        for window in [
            "from=2025-10-07T14:00:00Z&to=2025-10-07T14:00:30Z",
            "from=2025-10-08T00:00:00Z&to=2025-10-07T00:00:00Z",
            "from=2025-10-01T00:00:00Z&to=2025-11-01T00:00:00Z",
        ] {
            assert_eq!(
                message(window),
                "the window (to - from) must be between 1 minute and 14 days"
            );
        }
        assert!(message("kind=bogus").starts_with("unknown kind \"bogus\"; expected one of"));
        assert_eq!(message("source=bogus"), "unknown source \"bogus\"");
        assert_eq!(
            message(&format!("resource={}", "a".repeat(600))),
            "resource is too long"
        );
        for h in ["0", "101", "x"] {
            assert_eq!(
                message(&format!("h={h}")),
                format!("h must be a hypothesis rank, not \"{h}\"")
            );
        }
        assert_eq!(
            message(&"x".repeat(MAX_QUERY + 1)),
            format!("the query string is over {MAX_QUERY} bytes")
        );
    }
}
