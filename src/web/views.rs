//! Read models for the pages: what each page shows, built from the event log. The HTML
//! templates and the JSON twins both render these structs, so they cannot disagree.
//!
//! Incidents and hypotheses are read from the conclusions the engine appended to the log
//! (never recomputed per request), which keeps pages fast on large stores and shows
//! exactly what rootline concluded and when.

use crate::correlate::Hypothesis;
use crate::model::{fmt_time, Event, EventRef, Kind, Source};
use crate::store::{EventFilter, EventLog, Order, SqliteStore, StoreError};
use serde::Serialize;
use serde_json::Value;
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
}

/// A hypothesis as shown, with feedback and resolved evidence.
#[derive(Debug, Clone, Serialize)]
pub struct HypothesisView {
    pub rank: usize,
    pub score: f64,
    pub score_text: String,
    pub kind: String,
    pub summary: String,
    pub cause: EventRef,
    pub cause_seq: Option<i64>,
    pub evidence: Vec<EvidenceView>,
    pub path: Vec<String>,
    /// accepted, discarded or none.
    pub verdict: String,
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

/// Everything recorded about one incident.
#[derive(Debug, Clone)]
pub struct IncidentRecord {
    pub row: IncidentRow,
    pub trigger: Option<EventRef>,
    pub alarms: Vec<EventRef>,
    pub hypotheses: Vec<Hypothesis>,
    pub rankings: usize,
    pub engine_version: String,
    pub ranked_at: Option<i64>,
}

/// "-14 min", "+3.5 min", "-1 h 05 min", "+40 s".
pub fn offset(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    let a = ms.abs();
    if a < 60_000 {
        format!("{sign}{} s", a / 1000)
    } else if a < 3_600_000 {
        let m = a as f64 / 60_000.0;
        if m.fract() < 0.05 || m >= 10.0 {
            format!("{sign}{} min", m.round() as i64)
        } else {
            format!("{sign}{m:.1} min")
        }
    } else {
        format!(
            "{sign}{} h {:02} min",
            a / 3_600_000,
            (a % 3_600_000) / 60_000
        )
    }
}

/// "1 h 05 min", "12 min", "40 s".
pub fn duration(ms: i64) -> String {
    offset(ms).trim_start_matches(['+', '-']).to_string()
}

async fn conclusions(store: &SqliteStore, prefix: &str) -> Result<Vec<Event>, StoreError> {
    store
        .query(&EventFilter {
            sources: vec![Source::Rootline],
            id_prefix: Some(prefix.to_string()),
            ..Default::default()
        })
        .await
}

fn payload(e: &Event) -> Value {
    serde_json::from_str(&e.payload).unwrap_or(Value::Null)
}

/// The name of the alarm that opened an incident.
fn trigger_alarm(p: &Value, trigger: &Option<EventRef>) -> String {
    p.pointer("/alarm_names/0")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| alarm_of(trigger))
}

fn alarm_of(trigger: &Option<EventRef>) -> String {
    // alarm history ids are NAME@TIMESTAMP; EventBridge ids say nothing.
    match trigger {
        Some(r) if r.source == "cloudwatch.alarm_history" => {
            r.id.rsplit_once('@')
                .map(|x| x.0.to_string())
                .unwrap_or_else(|| r.id.clone())
        }
        Some(r) => r.id.clone(),
        None => String::new(),
    }
}

/// All incidents recorded in the log, newest first.
pub async fn incidents(store: &SqliteStore) -> Result<Vec<IncidentRecord>, StoreError> {
    let opened = conclusions(store, "incident-opened/").await?;
    let resolved = conclusions(store, "incident-resolved/").await?;
    let ranked = conclusions(store, "hypotheses-ranked/").await?;
    let resolved: BTreeMap<String, i64> = resolved
        .iter()
        .filter_map(|e| {
            let p = payload(e);
            Some((p.get("incident")?.as_str()?.to_string(), e.event_time))
        })
        .collect();
    // Latest ranking per incident (highest seq), and how many there were.
    let mut latest: BTreeMap<String, (i64, Value, usize, String)> = BTreeMap::new();
    for e in &ranked {
        let p = payload(e);
        let Some(inc) = p
            .get("incident")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let version = p
            .get("engine_version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let entry = latest
            .entry(inc)
            .or_insert((0, Value::Null, 0, String::new()));
        entry.2 += 1;
        if e.seq > entry.0 {
            entry.0 = e.seq;
            entry.1 = p.get("hypotheses").cloned().unwrap_or(Value::Null);
            entry.3 = version;
        }
    }
    let mut out = Vec::new();
    for e in &opened {
        let p = payload(e);
        let Some(id) = p
            .get("incident")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let trigger: Option<EventRef> = p
            .get("trigger")
            .and_then(|t| serde_json::from_value(t.clone()).ok());
        let alarms: Vec<EventRef> = p
            .get("alarms")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let resources: Vec<String> = p
            .get("resources")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let (ranked_seq, hyps, rankings, version) =
            latest
                .get(&id)
                .cloned()
                .unwrap_or((0, Value::Null, 0, String::new()));
        let hypotheses: Vec<Hypothesis> = serde_json::from_value(hyps).unwrap_or_default();
        let res_at = resolved.get(&id).copied();
        let opened_ms = e.event_time;
        let row = IncidentRow {
            title: p
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or(&id)
                .to_string(),
            opened_at: fmt_time(opened_ms),
            opened_ms,
            resolved_at: res_at.map(fmt_time),
            duration: res_at
                .map(|r| duration(r - opened_ms))
                .unwrap_or_else(|| "ongoing".into()),
            state: if res_at.is_some() { "resolved" } else { "open" },
            trigger_alarm: trigger_alarm(&p, &trigger),
            resources: resources
                .into_iter()
                .filter(|r| !r.starts_with("alarm/"))
                .collect(),
            top_hypothesis: hypotheses.first().map(|h| h.summary.clone()),
            top_score: hypotheses.first().map(|h| h.score),
            id,
        };
        out.push(IncidentRecord {
            row,
            trigger,
            alarms,
            hypotheses,
            rankings,
            engine_version: version,
            ranked_at: (ranked_seq > 0).then_some(ranked_seq),
        });
    }
    out.sort_by(|a, b| {
        b.row
            .opened_ms
            .cmp(&a.row.opened_ms)
            .then(a.row.id.cmp(&b.row.id))
    });
    Ok(out)
}

/// One incident by id.
pub async fn incident(store: &SqliteStore, id: &str) -> Result<Option<IncidentRecord>, StoreError> {
    // Only this incident's conclusions: prefix queries on the natural-id index.
    let opened = store
        .find(Source::Rootline, &format!("incident-opened/{id}"))
        .await?;
    let Some(opened) = opened else {
        return Ok(None);
    };
    let resolved = store
        .find(Source::Rootline, &format!("incident-resolved/{id}"))
        .await?;
    let ranked = conclusions(store, &format!("hypotheses-ranked/{id}/")).await?;
    let p = payload(&opened);
    let trigger: Option<EventRef> = p
        .get("trigger")
        .and_then(|t| serde_json::from_value(t.clone()).ok());
    let alarms: Vec<EventRef> = p
        .get("alarms")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let resources: Vec<String> = p
        .get("resources")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let last = ranked.iter().max_by_key(|e| e.seq);
    let (hypotheses, version, ranked_at): (Vec<Hypothesis>, String, Option<i64>) = match last {
        Some(e) => {
            let rp = payload(e);
            (
                rp.get("hypotheses")
                    .and_then(|h| serde_json::from_value(h.clone()).ok())
                    .unwrap_or_default(),
                rp.get("engine_version")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                Some(e.seq),
            )
        }
        None => (Vec::new(), String::new(), None),
    };
    let res_at = resolved.map(|r| r.event_time);
    let opened_ms = opened.event_time;
    Ok(Some(IncidentRecord {
        row: IncidentRow {
            id: id.to_string(),
            title: p
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or(id)
                .to_string(),
            opened_at: fmt_time(opened_ms),
            opened_ms,
            resolved_at: res_at.map(fmt_time),
            duration: res_at
                .map(|r| duration(r - opened_ms))
                .unwrap_or_else(|| "ongoing".into()),
            state: if res_at.is_some() { "resolved" } else { "open" },
            trigger_alarm: trigger_alarm(&p, &trigger),
            resources: resources
                .into_iter()
                .filter(|r| !r.starts_with("alarm/"))
                .collect(),
            top_hypothesis: hypotheses.first().map(|h| h.summary.clone()),
            top_score: hypotheses.first().map(|h| h.score),
        },
        trigger,
        alarms,
        hypotheses,
        rankings: ranked.len(),
        engine_version: version,
        ranked_at,
    }))
}

/// Feedback given on an incident's hypotheses: latest verdict per cause.
pub async fn feedback(
    store: &SqliteStore,
    incident: &str,
) -> Result<BTreeMap<EventRef, String>, StoreError> {
    let evs = conclusions(store, &format!("feedback/{incident}/")).await?;
    let mut out = BTreeMap::new();
    for e in evs {
        let p = payload(&e);
        let (Some(cause), Some(verdict)) = (
            p.get("hypothesis")
                .and_then(|h| serde_json::from_value::<EventRef>(h.clone()).ok()),
            p.get("verdict").and_then(Value::as_str),
        ) else {
            continue;
        };
        out.insert(cause, verdict.to_string());
    }
    Ok(out)
}

/// How many feedback events an incident has (for unique natural ids).
pub async fn feedback_count(store: &SqliteStore, incident: &str) -> Result<usize, StoreError> {
    Ok(conclusions(store, &format!("feedback/{incident}/"))
        .await?
        .len())
}

/// Resolves a hypothesis for display.
pub async fn hypothesis_view(
    store: &SqliteStore,
    h: &Hypothesis,
    verdicts: &BTreeMap<EventRef, String>,
) -> Result<HypothesisView, StoreError> {
    let mut evidence = Vec::new();
    for r in &h.evidence {
        let ev = match Source::parse(&r.source) {
            Some(s) => store.find(s, &r.id).await?,
            None => None,
        };
        evidence.push(EvidenceView {
            source: r.source.clone(),
            id: r.id.clone(),
            seq: ev.as_ref().map(|e| e.seq),
            name: ev.as_ref().map(|e| e.name.clone()).unwrap_or_default(),
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
    Ok(HypothesisView {
        rank: h.rank,
        score: h.score,
        score_text: format!("{:.2}", h.score),
        kind: h.kind.clone(),
        summary: h.summary.clone(),
        cause: h.cause.clone(),
        cause_seq,
        evidence,
        path: h.path.clone(),
        verdict: verdicts
            .get(&h.cause)
            .cloned()
            .unwrap_or_else(|| "none".into()),
    })
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
                crate::cli::truncate(reason, 160)
            )
        }
        Kind::Deployment {
            target,
            phase,
            outcome,
        } => format!("{target}: {phase} ({outcome})"),
        Kind::Log { message, .. } => crate::cli::truncate(message, 160),
        Kind::Anomaly {
            pattern, priority, ..
        } => format!("{priority}: {}", crate::cli::truncate(pattern, 140)),
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
        offset: offset(e.event_time - anchor),
        source: e.source.as_str().to_string(),
        kind: e.kind.tag().to_string(),
        name: e.name.clone(),
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

/// Events touching a resource, newest first.
pub async fn resource_events(
    store: &SqliteStore,
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
