//! Page handlers and their templates.

use super::views::{self, HypothesisView, IncidentRow, Lane};
use super::{wants_json, AppState, ErrorResponse, WebError};
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

type PageResult = Result<Response, ErrorResponse>;

/// Default look-back and look-ahead of an incident's timeline.
const BEFORE_MS: i64 = 60 * 60 * 1000;
const AFTER_MS: i64 = 30 * 60 * 1000;
const MIN_SPAN_MS: i64 = 60 * 1000;
const MAX_SPAN_MS: i64 = 14 * 24 * 3600 * 1000;
const TIMELINE_LIMIT: i64 = 1000;
const PAGE_SIZE: usize = 25;

/// Renders a page as HTML, or its view model as JSON for JSON clients.
fn render<T: Template, J: Serialize>(headers: &HeaderMap, page: &T, json: &J) -> PageResult {
    if wants_json(headers) {
        return Ok(Json(json).into_response());
    }
    match page.render() {
        Ok(html) => Ok(Html(html).into_response()),
        Err(e) => Err(WebError::from(e).respond(headers)),
    }
}

/// Longest query string accepted.
const MAX_QUERY: usize = 8192;

/// Query-string pairs; repeated keys allowed. Invalid UTF-8 is replaced, not fatal; an
/// overlong query string is a 400.
fn params(
    raw: &Option<String>,
    headers: &HeaderMap,
) -> Result<Vec<(String, String)>, ErrorResponse> {
    match raw {
        Some(q) if q.len() > MAX_QUERY => Err(WebError::BadRequest(format!(
            "the query string is over {MAX_QUERY} bytes"
        ))
        .respond(headers)),
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
fn path_param(
    p: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
) -> Result<String, ErrorResponse> {
    p.map(|Path(v)| v).map_err(|e| {
        WebError::BadRequest(format!("invalid path: {}", e.body_text())).respond(headers)
    })
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

pub(super) async fn not_found(headers: HeaderMap) -> ErrorResponse {
    WebError::NotFound("No such page.".into()).respond(&headers)
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
    let p = params(&raw, &headers)?;
    let state = one(&p, "state").unwrap_or("all").to_string();
    if !matches!(state.as_str(), "all" | "open" | "resolved") {
        return Err(WebError::BadRequest(format!(
            "state must be all, open or resolved, not {state:?}"
        ))
        .respond(&headers));
    }
    let page: usize = match one(&p, "page") {
        None => 1,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n >= 1 && *n <= 1_000_000)
            .ok_or_else(|| {
                WebError::BadRequest(format!("page must be a positive number, not {v:?}"))
                    .respond(&headers)
            })?,
    };
    let all = views::incidents(&st.store)
        .await
        .map_err(|e| WebError::from(e).respond(&headers))?;
    let rows: Vec<IncidentRow> = all
        .into_iter()
        .map(|r| r.row)
        .filter(|r| state == "all" || r.state == state)
        .collect();
    let total = rows.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let rows: Vec<IncidentRow> = rows
        .into_iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
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
}

pub(super) async fn incident(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let id = path_param(path, &headers)?;
    let bad = |m: String| WebError::BadRequest(m).respond(&headers);
    let p = params(&raw, &headers)?;
    let rec = load_incident(&st, &id, &headers).await?;
    let anchor = rec.row.opened_ms;
    let time = |k: &str| -> Result<Option<i64>, ErrorResponse> {
        match one(&p, k) {
            None => Ok(None),
            Some(v) => parse_time(v).map(Some).ok_or_else(|| {
                bad(format!(
                    "{k} must be an RFC 3339 time such as 2025-10-07T14:00:00Z, not {v:?}"
                ))
            }),
        }
    };
    let from = time("from")?.unwrap_or(anchor - BEFORE_MS);
    let to = time("to")?.unwrap_or(anchor + AFTER_MS);
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

    let verdicts = views::feedback(&st.store, &id)
        .await
        .map_err(|e| WebError::from(e).respond(&headers))?;
    let mut hyps = Vec::new();
    for h in &rec.hypotheses {
        hyps.push(
            views::hypothesis_view(&st.store, h, &verdicts)
                .await
                .map_err(|e| WebError::from(e).respond(&headers))?,
        );
    }
    let chain: Vec<EventRef> = rec
        .hypotheses
        .iter()
        .find(|h| h.rank == selected)
        .map(|h| h.evidence.clone())
        .unwrap_or_default();
    let filter = EventFilter {
        from: Some(from),
        to: Some(to),
        sources: sources.clone(),
        kinds: kinds.clone(),
        resource: resource.clone(),
        exclude_read_only: !read_only,
        limit: TIMELINE_LIMIT + 1,
        by_time: true,
        order: Order::Asc,
        ..Default::default()
    };
    let mut events = st
        .store
        .query(&filter)
        .await
        .map_err(|e| WebError::from(e).respond(&headers))?;
    let truncated = events.len() as i64 > TIMELINE_LIMIT;
    events.truncate(TIMELINE_LIMIT as usize);
    // Logs are many: unless asked for, keep them out of the timeline.
    if kinds.is_empty() {
        events.retain(|e| !matches!(e.kind, Kind::Log { .. }) || chain.contains(&e.reference()));
    }
    let event_count = events.len();
    let rows: Vec<_> = events
        .iter()
        .map(|e| views::row(e, anchor, &chain))
        .collect();
    let lanes = views::lanes(rows, by_kind);

    // Links that keep the other parameters.
    let base = |f: i64, t: i64, kinds: &[String], ro: bool, lanes_kind: bool, h: usize| -> String {
        let mut pairs: Vec<(&str, String)> = vec![("from", fmt_time(f)), ("to", fmt_time(t))];
        for k in kinds {
            pairs.push(("kind", k.clone()));
        }
        for s in &sources {
            pairs.push(("source", s.as_str().to_string()));
        }
        if let Some(r) = &resource {
            pairs.push(("resource", r.clone()));
        }
        if ro {
            pairs.push(("read_only", "1".into()));
        }
        if lanes_kind {
            pairs.push(("lanes", "kind".into()));
        }
        if h != 1 {
            pairs.push(("h", h.to_string()));
        }
        format!("/incidents/{id}?{}", qs(&pairs))
    };
    let center = from + span / 2;
    let nav = vec![
        Link {
            label: "← earlier".into(),
            href: base(
                from - span / 2,
                to - span / 2,
                &kinds,
                read_only,
                by_kind,
                selected,
            ),
            active: false,
        },
        Link {
            label: "zoom in".into(),
            href: base(
                center - span / 4,
                center + span / 4,
                &kinds,
                read_only,
                by_kind,
                selected,
            ),
            active: false,
        },
        Link {
            label: "zoom out".into(),
            href: base(
                (center - span).max(i64::MIN / 4),
                (center + span).min(i64::MAX / 4),
                &kinds,
                read_only,
                by_kind,
                selected,
            ),
            active: false,
        },
        Link {
            label: "later →".into(),
            href: base(
                from + span / 2,
                to + span / 2,
                &kinds,
                read_only,
                by_kind,
                selected,
            ),
            active: false,
        },
        Link {
            label: "reset".into(),
            href: format!("/incidents/{id}"),
            active: false,
        },
    ];
    let kind_links = Kind::TAGS
        .iter()
        .map(|k| {
            let active = kinds.iter().any(|x| x == k);
            let next: Vec<String> = if active {
                kinds.iter().filter(|x| x != k).cloned().collect()
            } else {
                let mut v = kinds.clone();
                v.push(k.to_string());
                v
            };
            Link {
                label: k.to_string(),
                href: base(from, to, &next, read_only, by_kind, selected),
                active,
            }
        })
        .collect();
    let source_links = Source::ALL
        .iter()
        .map(|s| {
            let active = sources.contains(s);
            let mut pairs: Vec<(&str, String)> =
                vec![("from", fmt_time(from)), ("to", fmt_time(to))];
            if !active {
                pairs.push(("source", s.as_str().to_string()));
            }
            Link {
                label: s.as_str().to_string(),
                href: format!("/incidents/{id}?{}", qs(&pairs)),
                active,
            }
        })
        .collect();
    let toggles = vec![
        Link {
            label: if read_only {
                "hide read-only calls".into()
            } else {
                "show read-only calls".into()
            },
            href: base(from, to, &kinds, !read_only, by_kind, selected),
            active: read_only,
        },
        Link {
            label: if by_kind {
                "lanes by resource".into()
            } else {
                "lanes by kind".into()
            },
            href: base(from, to, &kinds, read_only, !by_kind, selected),
            active: by_kind,
        },
    ];
    let deliveries = crate::conclusions::outbox::deliveries(&st.store, &id)
        .await
        .unwrap_or_default();
    let window_from = fmt_time(from);
    let window_to = fmt_time(to);
    let json = IncidentJson {
        incident: &rec.row,
        alarms: &rec.alarms,
        hypotheses: &hyps,
        window: [&window_from, &window_to],
        lanes: &lanes,
        truncated,
        rankings: rec.rankings,
        engine_version: &rec.engine_version,
        deliveries: &deliveries,
    };
    let page = IncidentPage {
        inc: rec.row.clone(),
        hypotheses: hyps.clone(),
        selected,
        lanes: lanes.clone(),
        truncated,
        window_from: window_from.clone(),
        window_to: window_to.clone(),
        nav,
        kind_links,
        source_links,
        toggles,
        resource_filter: resource.clone().unwrap_or_default(),
        rankings: rec.rankings,
        engine_version: rec.engine_version.clone(),
        alarms: rec.alarms.clone(),
        deliveries: deliveries.clone(),
        event_count,
    };
    render(&headers, &page, &json)
}

/// The recorded incident `id`, or the 404 page.
async fn load_incident(
    st: &AppState,
    id: &str,
    headers: &HeaderMap,
) -> Result<views::IncidentRecord, ErrorResponse> {
    if !valid_incident_id(id) {
        return Err(WebError::NotFound("No such incident.".into()).respond(headers));
    }
    views::incident(&st.store, id)
        .await
        .map_err(|e| WebError::from(e).respond(headers))?
        .ok_or_else(|| WebError::NotFound(format!("No incident {id}.")).respond(headers))
}

#[derive(serde::Deserialize)]
pub(super) struct FeedbackForm {
    source: String,
    cause: String,
    verdict: String,
}

pub(super) async fn feedback(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Form(f): Form<FeedbackForm>,
) -> PageResult {
    let id = path_param(path, &headers)?;
    let bad = |m: String| WebError::BadRequest(m).respond(&headers);
    let verdict = match f.verdict.as_str() {
        "accept" => "accepted",
        "discard" => "discarded",
        other => {
            return Err(bad(format!(
                "verdict must be accept or discard, not {other:?}"
            )))
        }
    };
    let rec = load_incident(&st, &id, &headers).await?;
    let cause = EventRef {
        source: f.source,
        id: f.cause,
    };
    if !rec.hypotheses.iter().any(|h| h.cause == cause) {
        return Err(bad("that hypothesis is not one of this incident's".into()));
    }
    let n = views::feedback_count(&st.store, &id)
        .await
        .map_err(|e| WebError::from(e).respond(&headers))?;
    let now = chrono::Utc::now().timestamp_millis();
    let payload = serde_json::json!({
        "id": format!("feedback/{id}/{now:013}-{n:06}"),
        "time": fmt_time(now),
        "type": "hypothesis_feedback",
        "incident": id,
        "verdict": verdict,
        "hypothesis": cause,
        "resources": rec.row.resources,
    });
    let ev = crate::normalize::normalize(Source::Rootline, &payload.to_string(), Some(now))
        .map_err(|e| WebError::Other(anyhow::anyhow!("feedback event: {e}")).respond(&headers))?;
    st.store
        .append(&[ev], None)
        .await
        .map_err(|e| WebError::from(e).respond(&headers))?;
    tracing::info!(incident = %id, verdict, "Hypothesis feedback recorded");
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
    Form(f): Form<IssueForm>,
) -> PageResult {
    let id = path_param(path, &headers)?;
    let rec = load_incident(&st, &id, &headers).await?;
    let cause = EventRef {
        source: f.source,
        id: f.cause,
    };
    let Some(h) = rec.hypotheses.iter().find(|h| h.cause == cause) else {
        return Err(
            WebError::BadRequest("that hypothesis is not one of this incident's".into())
                .respond(&headers),
        );
    };
    let Some(incident) = rec.recorded.incident() else {
        return Err(
            WebError::NotFound(format!("incident {id} names no trigger")).respond(&headers),
        );
    };
    let created = crate::conclusions::outbox::request_issue(&st.store, &incident, h, "web")
        .await
        .map_err(|e| {
            WebError::BadRequest(format!("cannot request an issue: {e}")).respond(&headers)
        })?;
    if wants_json(&headers) {
        return Ok(Json(serde_json::json!({"ok": true, "requested": created})).into_response());
    }
    Ok(Redirect::to(&format!("/incidents/{id}#issues")).into_response())
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
    name: String,
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
    let seq = path_param(path, &headers)?;
    let seq: i64 = seq.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        WebError::BadRequest(format!(
            "event number must be a positive integer, not {seq:?}"
        ))
        .respond(&headers)
    })?;
    let e = st
        .store
        .get(seq)
        .await
        .map_err(|e| WebError::from(e).respond(&headers))?
        .ok_or_else(|| WebError::NotFound(format!("No event {seq}.")).respond(&headers))?;
    let view = EventView {
        seq: e.seq,
        source: e.source.as_str().to_string(),
        id: e.natural_id.clone(),
        time: fmt_time(e.event_time),
        received_at: e.received_at.map(fmt_time),
        kind: e.kind.tag().to_string(),
        name: e.name.clone(),
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
}

pub(super) async fn resource(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> PageResult {
    let key = path_param(path, &headers)?;
    if key.is_empty() || key.len() > 512 {
        return Err(
            WebError::BadRequest("resource key must be 1 to 512 characters".into())
                .respond(&headers),
        );
    }
    let key = crate::normalize::resource::from_input(&key);
    let related = views::resource_events(&st.store, &key, &[], 500)
        .await
        .map_err(|e| WebError::from(e).respond(&headers))?;
    if related.is_empty() {
        return Err(WebError::NotFound(format!("No events touch {key}.")).respond(&headers));
    }
    let neighbours = views::neighbours(&key, &related);
    let changes = views::resource_events(
        &st.store,
        &key,
        &["change", "deployment", "alarm", "anomaly", "snapshot"],
        100,
    )
    .await
    .map_err(|e| WebError::from(e).respond(&headers))?;
    let now = changes.first().map(|e| e.event_time).unwrap_or(0);
    let rows: Vec<_> = changes.iter().map(|e| views::row(e, now, &[])).collect();
    if wants_json(&headers) {
        return Ok(Json(
            serde_json::json!({"resource": key, "neighbours": neighbours, "recent": rows}),
        )
        .into_response());
    }
    render(
        &headers,
        &ResourcePage {
            key,
            neighbours,
            rows,
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
    let p = params(&raw, &headers)?;
    let q = one(&p, "q").unwrap_or("").trim().to_string();
    if q.len() > 256 {
        return Err(
            WebError::BadRequest("search text must be at most 256 characters".into())
                .respond(&headers),
        );
    }
    let mut resource = None;
    let mut rows = Vec::new();
    let mut incidents = Vec::new();
    if !q.is_empty() {
        if let Ok(seq) = q.parse::<i64>() {
            if seq > 0
                && st
                    .store
                    .get(seq)
                    .await
                    .map_err(|e| WebError::from(e).respond(&headers))?
                    .is_some()
                && !wants_json(&headers)
            {
                return Ok(Redirect::to(&format!("/events/{seq}")).into_response());
            }
        }
        let key = crate::normalize::resource::from_input(&q);
        if !views::resource_events(&st.store, &key, &[], 1)
            .await
            .map_err(|e| WebError::from(e).respond(&headers))?
            .is_empty()
        {
            resource = Some(key);
        }
        let all = views::incidents(&st.store)
            .await
            .map_err(|e| WebError::from(e).respond(&headers))?;
        let lq = q.to_lowercase();
        incidents = all
            .into_iter()
            .map(|r| r.row)
            .filter(|r| {
                r.id == q
                    || r.title.to_lowercase().contains(&lq)
                    || r.resources.iter().any(|x| x.to_lowercase().contains(&lq))
            })
            .take(50)
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
            .await
            .map_err(|e| WebError::from(e).respond(&headers))?;
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

pub(super) async fn status(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let events = st
        .store
        .max_seq()
        .await
        .map_err(|e| WebError::from(e).respond(&headers))?;
    let components: Vec<(String, String)> = st
        .components
        .lock()
        .map(|c| c.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
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
