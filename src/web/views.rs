//! Read models for the pages: what each page shows, built from the event log. The HTML
//! templates and the JSON twins both render these structs, so they cannot disagree.
//!
//! Incidents and hypotheses are read from the conclusions the engine appended to the log
//! (never recomputed per request), which keeps pages fast on large stores and shows
//! exactly what rootline concluded and when.

use crate::conclusions::{self, Recorded};
use crate::correlate::Hypothesis;
use crate::model::{fmt_time, Event, EventRef, Kind, Source};
use crate::store::{EventFilter, EventLog, Order, Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

/// An incident as listed.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub id: String,
    pub title: String,
    pub opened_at: String,
    pub opened_ms: i64,
    pub resolved_at: Option<String>,
    pub duration: String,
    pub state: &'static str,
    pub trigger_alarm: String,
    pub resources: Vec<String>,
    pub top_hypothesis: Option<String>,
    pub top_score: Option<f64>,
    /// The top hypothesis's confidence in words (likely, possible, weak).
    pub top_confidence: Option<&'static str>,
    /// Resolved time, ms.
    #[serde(skip)]
    pub resolved_ms: Option<i64>,
    /// The incident's alarms (`alarm/NAME`).
    #[serde(skip)]
    pub alarm_keys: Vec<String>,
    /// Its alarm-state strip (inline SVG), filled for the rows a list page shows.
    #[serde(skip)]
    pub strip: String,
}

/// A hypothesis as shown, with feedback and resolved evidence.
#[derive(Debug, Clone, Serialize)]
pub struct HypothesisView {
    pub rank: usize,
    pub score: f64,
    pub score_text: String,
    /// likely, possible or weak ([`conclusions::confidence`]).
    pub confidence: &'static str,
    pub kind: String,
    pub summary: String,
    pub cause: EventRef,
    pub cause_seq: Option<i64>,
    pub evidence: Vec<EvidenceView>,
    pub path: Vec<String>,
    /// accepted, discarded or none.
    pub verdict: String,
    /// The causal path as a small picture (inline SVG), for the first hypotheses.
    #[serde(skip)]
    pub path_svg: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvidenceView {
    pub source: String,
    pub id: String,
    pub seq: Option<i64>,
    pub name: String,
    pub time: String,
}

/// One row of a timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineRow {
    pub seq: i64,
    pub time: String,
    pub offset: String,
    pub source: String,
    pub kind: String,
    pub name: String,
    pub actor: String,
    pub resource: String,
    pub read_only: bool,
    pub error_code: Option<String>,
    pub detail: String,
    pub in_chain: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lane {
    pub key: String,
    pub rows: Vec<TimelineRow>,
}

/// Everything recorded about one incident: the log's record and its row as listed.
#[derive(Debug, Clone)]
pub struct IncidentRecord {
    pub row: IncidentRow,
    /// What the log records, as read (alarms, the latest hypotheses, rankings).
    pub recorded: Recorded,
}

pub use crate::conclusions::report::offset;

/// An incident's alarms as resource keys (`alarm/NAME`): those among its resources, then
/// its alarm names not already there.
pub fn alarm_keys(opened: &crate::conclusions::IncidentOpened) -> Vec<String> {
    let mut keys: Vec<String> = opened
        .resources
        .iter()
        .filter(|k| k.starts_with("alarm/"))
        .cloned()
        .collect();
    for n in &opened.alarm_names {
        let k = format!("alarm/{n}");
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// "1 h 05 min", "12 min", "40 s".
pub fn duration(ms: i64) -> String {
    offset(ms).trim_start_matches(['+', '-']).to_string()
}

/// The name of the alarm that opened an incident.
fn trigger_alarm(r: &Recorded) -> String {
    if let Some(name) = r.opened.alarm_names.first() {
        return name.clone();
    }
    // alarm history ids are NAME@TIMESTAMP; EventBridge ids say nothing.
    match &r.opened.trigger {
        Some(t) if t.source == "cloudwatch.alarm_history" => {
            t.id.rsplit_once('@')
                .map(|x| x.0.to_string())
                .unwrap_or_else(|| t.id.clone())
        }
        Some(t) => t.id.clone(),
        None => String::new(),
    }
}

/// An incident as the pages show it.
fn record(r: Recorded) -> IncidentRecord {
    let opened_ms = r.opened_at;
    let res_at = r.resolved_at;
    let row = IncidentRow {
        id: r.id.clone(),
        title: if r.opened.title.is_empty() {
            r.id.clone()
        } else {
            r.opened.title.clone()
        },
        opened_at: fmt_time(opened_ms),
        opened_ms,
        resolved_at: res_at.map(fmt_time),
        duration: res_at
            .map(|t| duration(t.saturating_sub(opened_ms)))
            .unwrap_or_else(|| "ongoing".into()),
        state: if res_at.is_some() { "resolved" } else { "open" },
        trigger_alarm: trigger_alarm(&r),
        resources: r
            .opened
            .resources
            .iter()
            .filter(|k| !k.starts_with("alarm/"))
            .cloned()
            .collect(),
        top_hypothesis: r
            .hypotheses
            .first()
            .map(|h| crate::model::display_names_in(&h.summary)),
        top_score: r.hypotheses.first().map(|h| h.score),
        top_confidence: r
            .hypotheses
            .first()
            .map(|h| conclusions::confidence(h.score)),
        resolved_ms: res_at,
        alarm_keys: {
            let mut keys = alarm_keys(&r.opened);
            keys.truncate(4);
            keys
        },
        strip: String::new(),
    };
    IncidentRecord { row, recorded: r }
}

/// All incidents recorded in the log, newest first.
pub async fn incidents(store: &Store) -> Result<Vec<IncidentRecord>, StoreError> {
    let mut out: Vec<IncidentRecord> = conclusions::load_all(store)
        .await?
        .into_iter()
        .map(record)
        .collect();
    out.sort_by(|a, b| {
        b.row
            .opened_ms
            .cmp(&a.row.opened_ms)
            .then(a.row.id.cmp(&b.row.id))
    });
    Ok(out)
}

/// The incidents a search text names (`conclusions::matching_incidents`), newest first.
pub async fn matching_incidents(
    store: &Store,
    text: &str,
    limit: usize,
) -> Result<Vec<IncidentRecord>, StoreError> {
    Ok(conclusions::matching_incidents(store, text, limit)
        .await?
        .into_iter()
        .map(record)
        .collect())
}

/// One incident by id.
pub async fn incident(store: &Store, id: &str) -> Result<Option<IncidentRecord>, StoreError> {
    Ok(conclusions::load_one(store, id).await?.map(record))
}

/// Feedback given on an incident's hypotheses: latest verdict per cause.
pub async fn feedback(
    store: &Store,
    incident: &str,
) -> Result<BTreeMap<EventRef, String>, StoreError> {
    Ok(conclusions::verdicts(store, incident).await?.0)
}

/// How many feedback events an incident has (for unique natural ids).
pub async fn feedback_count(store: &Store, incident: &str) -> Result<usize, StoreError> {
    Ok(conclusions::verdicts(store, incident).await?.1)
}

/// Every event a list of hypotheses cites, by (source, natural id), without payloads:
/// one batched read for the upstream ones (`Store::find_cited`), one read each
/// for rootline's own (rarely cited).
pub async fn cited_events(
    store: &Store,
    hyps: &[Hypothesis],
) -> Result<BTreeMap<(String, String), Event>, StoreError> {
    let refs: Vec<(Source, String)> = hyps
        .iter()
        .flat_map(|h| h.evidence.iter())
        .filter_map(|r| Source::parse(&r.source).map(|s| (s, r.id.clone())))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut found: BTreeMap<(String, String), Event> = BTreeMap::new();
    // In seq order: a natural id delivered at two event times is the first one, as `find`.
    for e in store.find_cited(&refs).await? {
        found
            .entry((e.source.as_str().to_string(), e.natural_id.clone()))
            .or_insert(e);
    }
    for (s, id) in refs.iter().filter(|(s, _)| *s == Source::Rootline) {
        if let Some(mut e) = store.find(*s, id).await? {
            e.payload.clear();
            found.insert((s.as_str().to_string(), id.clone()), e);
        }
    }
    Ok(found)
}

/// Resolves a hypothesis for display, its evidence from `found` ([`cited_events`]).
pub fn hypothesis_view(
    h: &Hypothesis,
    verdicts: &BTreeMap<EventRef, String>,
    found: &BTreeMap<(String, String), Event>,
) -> HypothesisView {
    let mut evidence = Vec::new();
    for r in &h.evidence {
        let ev = found.get(&(r.source.clone(), r.id.clone()));
        evidence.push(EvidenceView {
            source: r.source.clone(),
            id: r.id.clone(),
            seq: ev.as_ref().map(|e| e.seq),
            name: ev
                .as_ref()
                .map(|e| crate::model::display_name(&e.name).to_string())
                .unwrap_or_default(),
            time: ev
                .as_ref()
                .map(|e| fmt_time(e.event_time))
                .unwrap_or_default(),
        });
    }
    let cause_seq = evidence
        .first()
        .filter(|e| e.source == h.cause.source && e.id == h.cause.id)
        .and_then(|e| e.seq);
    HypothesisView {
        rank: h.rank,
        score: h.score,
        score_text: format!("{:.2}", h.score),
        confidence: conclusions::confidence(h.score),
        kind: h.kind.clone(),
        summary: crate::model::display_names_in(&h.summary),
        cause: h.cause.clone(),
        cause_seq,
        evidence,
        path: h.path.clone(),
        verdict: verdicts
            .get(&h.cause)
            .cloned()
            .unwrap_or_else(|| "none".into()),
        path_svg: String::new(),
    }
}

/// The causal path of a hypothesis as a picture: the cause, the resources of its path
/// with the relation the resource graph records between each two, the symptom.
pub async fn path_svg(store: &Store, h: &HypothesisView) -> Result<String, StoreError> {
    use super::picture::PathNode;
    let event_href = |e: &EvidenceView| match e.seq {
        Some(seq) => format!("/events/{seq}"),
        None => format!(
            "/search?q={}",
            form_urlencoded::byte_serialize(e.id.as_bytes()).collect::<String>()
        ),
    };
    let mut nodes = Vec::new();
    let mut relations = Vec::new();
    let cause = h.evidence.first();
    let cause_label = cause
        .map(|e| {
            if e.name.is_empty() {
                e.id.clone()
            } else {
                e.name.clone()
            }
        })
        .unwrap_or_else(|| h.cause.id.clone());
    nodes.push(PathNode {
        label: cause_label.clone(),
        role: "cause",
        href: cause.map(event_href).unwrap_or_default(),
        title: format!(
            "cause: {cause_label} ({} {}){}",
            h.cause.source,
            h.cause.id,
            cause.map(|e| format!(" at {}", e.time)).unwrap_or_default()
        ),
    });
    for (i, r) in h.path.iter().enumerate() {
        if i == 0 {
            relations.push(("on".to_string(), format!("the cause acts on {r}")));
        } else {
            let prev = &h.path[i - 1];
            let rel = match store.graph_edge(prev, r).await? {
                Some((first, last)) => (
                    "linked".to_string(),
                    format!(
                        "{prev} and {r} are linked in the resource graph: named together from {} to {}",
                        fmt_time(first),
                        fmt_time(last)
                    ),
                ),
                None => (
                    "related".to_string(),
                    format!("{prev} and {r} are related by name (no graph edge recorded)"),
                ),
            };
            relations.push(rel);
        }
        nodes.push(PathNode {
            label: r.clone(),
            role: "resource",
            href: format!("/resources/{r}"),
            title: format!("on the path: {r}"),
        });
    }
    if let Some(symptom) = h.evidence.last().filter(|_| h.evidence.len() > 1) {
        relations.push(if h.path.is_empty() {
            (
                "in time".to_string(),
                "no resource path: linked by time and naming only".to_string(),
            )
        } else {
            (
                "alarm".to_string(),
                "the symptom's alarm watches the last resource".to_string(),
            )
        });
        let label = if symptom.name.is_empty() {
            symptom.id.clone()
        } else {
            symptom.name.clone()
        };
        nodes.push(PathNode {
            title: format!("symptom: {label} at {}", symptom.time),
            label,
            role: "symptom",
            href: event_href(symptom),
        });
    }
    Ok(super::picture::path_graph(&nodes, &relations))
}

/// A one-line description of what an event says, for timelines.
pub fn detail(e: &Event) -> String {
    match &e.kind {
        Kind::Alarm {
            old_state,
            new_state,
            reason,
            ..
        } => {
            format!(
                "{old_state} → {new_state}: {}",
                crate::model::truncate(reason, 160)
            )
        }
        Kind::Deployment {
            target,
            phase,
            outcome,
        } => format!("{target}: {phase} ({outcome})"),
        Kind::Log { message, .. } => crate::model::truncate(message, 160),
        Kind::Anomaly {
            pattern, priority, ..
        } => format!("{priority}: {}", crate::model::truncate(pattern, 140)),
        Kind::Snapshot {
            resource_type,
            status,
            ..
        } => format!("{resource_type} {status}"),
        Kind::Conclusion { what } => what.replace('_', " "),
        _ => String::new(),
    }
}

/// A timeline row for an event, relative to `anchor` (epoch ms).
pub fn row(e: &Event, anchor: i64, chain: &[EventRef]) -> TimelineRow {
    let r = e.reference();
    TimelineRow {
        seq: e.seq,
        time: fmt_time(e.event_time),
        offset: offset(e.event_time.saturating_sub(anchor)),
        source: e.source.as_str().to_string(),
        kind: e.kind.tag().to_string(),
        name: crate::model::display_name(&e.name).to_string(),
        actor: e.actor.clone().unwrap_or_default(),
        resource: e.resources.first().cloned().unwrap_or_default(),
        read_only: e.read_only,
        error_code: e.error_code.clone(),
        detail: detail(e),
        in_chain: chain.contains(&r),
    }
}

/// Groups timeline rows into lanes, by primary resource or by kind, lanes ordered by
/// their first event.
pub fn lanes(rows: Vec<TimelineRow>, by_kind: bool) -> Vec<Lane> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, Vec<TimelineRow>> = BTreeMap::new();
    for r in rows {
        let key = if by_kind {
            r.kind.clone()
        } else if r.resource.is_empty() {
            "(no resource)".to_string()
        } else {
            r.resource.clone()
        };
        if !map.contains_key(&key) {
            order.push(key.clone());
        }
        map.entry(key).or_default().push(r);
    }
    order
        .into_iter()
        .map(|k| Lane {
            rows: map.remove(&k).unwrap_or_default(),
            key: k,
        })
        .collect()
}

/// The alarm-state strip of an incident as listed: its alarms' transitions from its
/// start to its end (or an hour on, when open), one bounded read per alarm.
pub async fn strip(store: &Store, row: &IncidentRow) -> Result<String, StoreError> {
    let from = row.opened_ms.saturating_sub(5 * 60_000);
    let to = row
        .resolved_ms
        .unwrap_or(row.opened_ms.saturating_add(3_600_000))
        .max(row.opened_ms.saturating_add(60_000))
        .saturating_add(5 * 60_000);
    let mut alarms = Vec::new();
    for key in &row.alarm_keys {
        let transitions: Vec<Event> = store
            .query(&EventFilter {
                resource: Some(key.clone()),
                kinds: vec!["alarm".into()],
                from: Some(from),
                to: Some(to),
                limit: 50,
                by_time: true,
                without_payload: true,
                ..Default::default()
            })
            .await?;
        let initial = match store.alarm_state_before(key, from).await? {
            Some(Event {
                kind: Kind::Alarm { new_state, .. },
                ..
            }) => new_state,
            _ => match transitions.first().map(|e| &e.kind) {
                Some(Kind::Alarm { old_state, .. }) => old_state.clone(),
                _ => "unknown".into(),
            },
        };
        alarms.push(super::picture::StripAlarm {
            key: key.clone(),
            initial,
            transitions,
        });
    }
    Ok(super::picture::strip(&alarms, from, to, row.opened_ms))
}

/// Events touching a resource, newest first.
pub async fn resource_events(
    store: &Store,
    key: &str,
    kinds: &[&str],
    limit: i64,
) -> Result<Vec<Event>, StoreError> {
    store
        .query(&EventFilter {
            resource: Some(key.to_string()),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            exclude_read_only: !kinds.is_empty(),
            limit,
            by_time: true,
            order: Order::Desc,
            ..Default::default()
        })
        .await
}

/// A resource's neighbours: the resources named together with it by events.
pub fn neighbours(key: &str, events: &[Event]) -> Vec<(String, usize)> {
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        if e.error_code.is_some() || e.source == Source::Rootline {
            continue;
        }
        for r in &e.resources {
            if r != key {
                *count.entry(r.clone()).or_default() += 1;
            }
        }
    }
    let mut v: Vec<(String, usize)> = count.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(50);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(offset(-14 * 60_000), "-14 min");
        assert_eq!(offset(3 * 60_000 + 30_000), "+3.5 min");
        assert_eq!(offset(-(3_600_000 + 5 * 60_000)), "-1 h 05 min");
        assert_eq!(offset(40_000), "+40 s");
        assert_eq!(duration(12 * 60_000), "12 min");
    }
}
