//! The outbox: delivery state kept as rootline events in the log itself.
//!
//! Natural ids (source `rootline`), for incident I and hypothesis cause S/ID:
//!
//! | event                | natural id                                    |
//! |----------------------|-----------------------------------------------|
//! | issue requested      | `issue/I/requested/S/ID`                      |
//! | requested again      | `issue/I/requested-after-SEQ/S/ID` (SEQ: the failure) |
//! | issue opened         | `issue/I/opened/S/ID`                         |
//! | issue commented      | `issue/I/commented/S/ID`                      |
//! | issue failed         | `issue/I/failed-SEQ/S/ID` (SEQ: the request)  |
//!
//! The variable part (the cause id, which comes from upstream data) is always last and
//! everything before it is fixed, so ids cannot collide; appends are idempotent on them,
//! so a crash and a re-run never request, open or fail the same thing twice in the log.
//!
//! The web pages read the state of each delivery ([`deliveries`]) and request issues by
//! hand ([`request_issue`]); the GitHub worker (`notify`) delivers what is due.

use super::ConclusionError;
use crate::correlate::{Hypothesis, Incident};
use crate::model::{fmt_time, EventRef, Source};
use crate::store::{EventFilter, EventLog};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Prefix of every outbox event's natural id.
pub const PREFIX: &str = "issue/";
/// Who requests issues automatically.
pub const AUTO: &str = "rootline";

/// Event types (the payload `type`, also the event name).
pub const REQUESTED: &str = "issue_requested";
pub const OPENED: &str = "issue_opened";
pub const COMMENTED: &str = "issue_commented";
pub const FAILED: &str = "issue_failed";

fn id(incident: &str, what: &str, cause: &EventRef) -> String {
    format!("{PREFIX}{incident}/{what}/{}/{}", cause.source, cause.id)
}

/// A snapshot of the hypothesis and incident at request time, kept in the request so a
/// delivery can be rendered even if the analysis no longer yields that incident.
fn snapshot(incident: &Incident, h: &Hypothesis) -> Value {
    json!({
        "incident_title": incident.title,
        "incident_opened_at": fmt_time(incident.opened_at),
        "hypothesis": {
            "rank": h.rank,
            "score": (h.score * 1e4).round() / 1e4,
            "kind": h.kind,
            "summary": h.summary,
            "evidence": h.evidence,
            "path": h.path,
        },
    })
}

/// The delivery state of the issue for one hypothesis of an incident.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub incident: String,
    pub cause: EventRef,
    /// requested, opened, commented or failed.
    pub state: String,
    /// The issue (for "commented": the incident's existing issue that was commented on).
    pub issue_number: Option<u64>,
    /// The issue's page (for "commented": the comment's).
    pub issue_url: Option<String>,
    /// Why the delivery failed (state "failed"): GitHub's status and message.
    pub error: Option<String>,
    /// Who asked: "rootline" for automatic requests, else the person named.
    pub requested_by: Option<String>,
    /// When the state last changed, epoch ms.
    pub updated_at: i64,
}

/// Deliveries recorded for an incident, oldest first.
pub async fn deliveries<S: EventLog>(
    store: &S,
    incident: &str,
) -> Result<Vec<Delivery>, ConclusionError> {
    let events = read(store, Some(incident)).await?;
    Ok(fold(&events).into_iter().map(|s| s.delivery).collect())
}

/// Appends an "issue requested" event for a hypothesis (by hand from the incident page
/// when `by` names a person). Returns false when one was already requested (or the issue
/// exists); a failed delivery is requested again. A request by a person always opens an
/// issue for that hypothesis; automatic requests (`by` = "rootline") comment on the
/// incident's existing issue instead, if it has one.
pub async fn request_issue<S: EventLog>(
    store: &S,
    incident: &Incident,
    hypothesis: &Hypothesis,
    by: &str,
) -> Result<bool, ConclusionError> {
    let by = by.trim();
    if by.is_empty() {
        return Err(ConclusionError::Invalid(
            "say who requests the issue".into(),
        ));
    }
    let by: String = by.chars().filter(|c| !c.is_control()).take(100).collect();
    request(store, incident, hypothesis, &by, true).await
}

/// One outbox event, parsed.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub seq: i64,
    pub time: i64,
    pub kind: String,
    pub incident: String,
    pub cause: EventRef,
    pub by: Option<String>,
    pub number: Option<u64>,
    pub url: Option<String>,
    pub error: Option<String>,
    pub payload: Value,
}

fn parse(e: &crate::model::Event) -> Option<OutboxEvent> {
    let p: Value = serde_json::from_str(&e.payload).ok()?;
    let kind = p.get("type")?.as_str()?.to_string();
    if ![REQUESTED, OPENED, COMMENTED, FAILED].contains(&kind.as_str()) {
        return None;
    }
    let cause: EventRef = serde_json::from_value(p.get("cause")?.clone()).ok()?;
    Some(OutboxEvent {
        seq: e.seq,
        time: e.event_time,
        kind,
        incident: p.get("incident")?.as_str()?.to_string(),
        cause,
        by: p.get("by").and_then(Value::as_str).map(str::to_string),
        number: p.get("number").and_then(Value::as_u64),
        url: p.get("url").and_then(Value::as_str).map(str::to_string),
        error: p.get("error").and_then(Value::as_str).map(str::to_string),
        payload: p,
    })
}

/// The state of one delivery, folded from its events.
#[derive(Debug, Clone)]
pub struct DeliveryState {
    pub delivery: Delivery,
    /// The latest request event (what a delivery acts on).
    pub request: OutboxEvent,
    /// Seq of the first event of this delivery (for ordering).
    pub first_seq: i64,
}

impl DeliveryState {
    pub fn is_due(&self) -> bool {
        self.delivery.state == "requested"
    }
    pub fn is_auto(&self) -> bool {
        self.request.by.as_deref() == Some(AUTO)
    }
}

/// Reads every outbox event (of one incident when given), oldest first.
pub async fn read<S: EventLog>(
    store: &S,
    incident: Option<&str>,
) -> Result<Vec<OutboxEvent>, ConclusionError> {
    let prefix = match incident {
        Some(i) => format!("{PREFIX}{i}/"),
        None => PREFIX.to_string(),
    };
    let events = store
        .query(&EventFilter {
            sources: vec![Source::Rootline],
            id_prefix: Some(prefix),
            ..Default::default()
        })
        .await?;
    let mut out: Vec<OutboxEvent> = events
        .iter()
        .filter_map(parse)
        .filter(|e| incident.is_none_or(|i| e.incident == i))
        .collect();
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// Folds outbox events into one state per (incident, cause), ordered by first event.
pub fn fold(events: &[OutboxEvent]) -> Vec<DeliveryState> {
    let mut by_key: BTreeMap<(String, EventRef), DeliveryState> = BTreeMap::new();
    for e in events {
        let key = (e.incident.clone(), e.cause.clone());
        match by_key.get_mut(&key) {
            None => {
                // A delivery starts with a request; stray later events alone are ignored.
                if e.kind != REQUESTED {
                    continue;
                }
                by_key.insert(
                    key,
                    DeliveryState {
                        delivery: Delivery {
                            incident: e.incident.clone(),
                            cause: e.cause.clone(),
                            state: "requested".into(),
                            issue_number: None,
                            issue_url: None,
                            error: None,
                            requested_by: e.by.clone(),
                            updated_at: e.time,
                        },
                        request: e.clone(),
                        first_seq: e.seq,
                    },
                );
            }
            Some(s) => {
                let d = &mut s.delivery;
                d.updated_at = e.time;
                match e.kind.as_str() {
                    // Requested again (after a failure): the outcome so far is void.
                    REQUESTED if d.state == "failed" => {
                        d.state = "requested".into();
                        d.error = None;
                        d.requested_by = e.by.clone();
                        s.request = e.clone();
                    }
                    OPENED | COMMENTED => {
                        d.state = if e.kind == OPENED {
                            "opened"
                        } else {
                            "commented"
                        }
                        .into();
                        d.issue_number = e.number;
                        d.issue_url = e.url.clone();
                        d.error = None;
                    }
                    FAILED if d.state == "requested" => {
                        d.state = "failed".into();
                        d.error = e.error.clone();
                    }
                    _ => {}
                }
            }
        }
    }
    let mut out: Vec<DeliveryState> = by_key.into_values().collect();
    out.sort_by_key(|s| s.first_seq);
    out
}

/// Builds and appends one outbox event; returns true when it was new.
async fn append<S: EventLog>(
    store: &S,
    natural_id: String,
    kind: &str,
    incident: &str,
    cause: &EventRef,
    resources: &[String],
    extra: Value,
) -> Result<bool, ConclusionError> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut payload = json!({
        "id": natural_id,
        "time": fmt_time(now),
        "type": kind,
        "incident": incident,
        "cause": cause,
        "resources": resources,
    });
    if let (Value::Object(p), Value::Object(x)) = (&mut payload, extra) {
        p.extend(x);
    }
    let raw = payload.to_string();
    let ev = crate::normalize::normalize(Source::Rootline, &raw, Some(now)).map_err(|source| {
        ConclusionError::Build {
            what: "issue outbox",
            source,
        }
    })?;
    let outcome = store.append(&[ev], None).await?;
    Ok(outcome.appended > 0)
}

/// Appends the request for a hypothesis; returns true when appended. An existing
/// delivery wins, except that a failed one is requested again (with a request tied to
/// that failure) when `again_if_failed`.
pub async fn request<S: EventLog>(
    store: &S,
    incident: &Incident,
    h: &Hypothesis,
    by: &str,
    again_if_failed: bool,
) -> Result<bool, ConclusionError> {
    let events = read(store, Some(&incident.id)).await?;
    let what = match fold(&events).iter().find(|s| s.delivery.cause == h.cause) {
        None => "requested".to_string(),
        Some(s) if again_if_failed && s.delivery.state == "failed" => {
            let failed_seq = events
                .iter()
                .filter(|e| e.kind == FAILED && e.cause == h.cause)
                .map(|e| e.seq)
                .max()
                .unwrap_or(s.first_seq);
            format!("requested-after-{failed_seq}")
        }
        Some(_) => return Ok(false),
    };
    let mut extra = snapshot(incident, h);
    if let Value::Object(m) = &mut extra {
        m.insert("by".into(), json!(by));
    }
    append(
        store,
        id(&incident.id, &what, &h.cause),
        REQUESTED,
        &incident.id,
        &h.cause,
        &incident.resources,
        extra,
    )
    .await
}

/// Records that the issue for a delivery exists (created now, or found by its marker).
pub async fn opened<S: EventLog>(
    store: &S,
    d: &DeliveryState,
    number: u64,
    url: &str,
    found_existing: bool,
    resources: &[String],
) -> Result<bool, ConclusionError> {
    append(
        store,
        id(&d.delivery.incident, "opened", &d.delivery.cause),
        OPENED,
        &d.delivery.incident,
        &d.delivery.cause,
        resources,
        json!({"number": number, "url": url, "found_existing": found_existing, "request_seq": d.request.seq}),
    )
    .await
}

/// Records a comment made on an existing issue of the incident.
pub async fn commented<S: EventLog>(
    store: &S,
    d: &DeliveryState,
    number: u64,
    url: &str,
    found_existing: bool,
    resources: &[String],
) -> Result<bool, ConclusionError> {
    append(
        store,
        id(&d.delivery.incident, "commented", &d.delivery.cause),
        COMMENTED,
        &d.delivery.incident,
        &d.delivery.cause,
        resources,
        json!({"number": number, "url": url, "found_existing": found_existing, "request_seq": d.request.seq}),
    )
    .await
}

/// Records a permanent failure of the current request of a delivery.
pub async fn failed<S: EventLog>(
    store: &S,
    d: &DeliveryState,
    error: &str,
    status: Option<u16>,
    resources: &[String],
) -> Result<bool, ConclusionError> {
    append(
        store,
        id(
            &d.delivery.incident,
            &format!("failed-{}", d.request.seq),
            &d.delivery.cause,
        ),
        FAILED,
        &d.delivery.incident,
        &d.delivery.cause,
        resources,
        json!({"error": error, "status": status, "request_seq": d.request.seq}),
    )
    .await
}
