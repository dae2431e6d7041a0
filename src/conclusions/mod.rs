//! What rootline itself records in the log, typed: the engine's conclusions (incident
//! opened, incident resolved, hypotheses ranked), people's verdicts on hypotheses, and the
//! GitHub issue outbox ([`outbox`]).
//!
//! All are events of source `rootline` whose natural ids start with a fixed prefix and
//! end with what varies (see the id builders below), so a prefix query on the natural-id
//! index reads one kind of conclusion, or one incident's. Payloads are serde structs:
//! written here, read here, by the web pages and the outbox worker alike.
//!
//! | event              | natural id                          |
//! |--------------------|-------------------------------------|
//! | incident opened    | `incident-opened/INCIDENT`          |
//! | incident resolved  | `incident-resolved/INCIDENT`        |
//! | hypotheses ranked  | `hypotheses-ranked/INCIDENT/DIGEST` |
//! | feedback           | `feedback/INCIDENT/MS-N`            |
//! | issue outbox       | `issue/INCIDENT/...` (see [`outbox`]) |

mod analyser;
pub mod outbox;
pub mod report;

pub use analyser::{Analyser, StoreKnowledge, ANALYSER};

use crate::correlate::{Analysis, Hypothesis, Incident, ENGINE_VERSION};
use crate::model::{fmt_time, Event, EventRef, NewEvent, Source};
use crate::normalize::NormalizeError;
use crate::store::{EventFilter, EventLog, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Errors reading or writing rootline's own events.
#[derive(Debug, thiserror::Error)]
pub enum ConclusionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store operation of the analyser failed: what it was doing, and why.
    #[error("the analyser could not {stage}: {source}")]
    Analyser { stage: String, source: StoreError },
    /// An event could not be built (a payload the normalizer refuses), explained.
    #[error("cannot build the {what} event: {source}")]
    Build {
        what: &'static str,
        source: NormalizeError,
    },
    /// A request that cannot be recorded, explained.
    #[error("{0}")]
    Invalid(String),
    /// The engine's task failed (it panicked); nothing was appended.
    #[error("the analysis failed: {0}")]
    Engine(String),
}

pub use crate::correlate::{LIKELY, POSSIBLE};

/// A hypothesis's score in words: `likely` (>= [`LIKELY`]), `possible` (>= [`POSSIBLE`])
/// or `weak`. The pages, the report and the incidents list say these, not bare numbers.
pub fn confidence(score: f64) -> &'static str {
    if score >= LIKELY {
        "likely"
    } else if score >= POSSIBLE {
        "possible"
    } else {
        "weak"
    }
}

/// Natural-id prefix of "incident opened" events.
pub const INCIDENT_OPENED: &str = "incident-opened/";
/// Natural-id prefix of "incident resolved" events.
pub const INCIDENT_RESOLVED: &str = "incident-resolved/";
/// Natural-id prefix of "hypotheses ranked" events.
pub const HYPOTHESES_RANKED: &str = "hypotheses-ranked/";
/// Natural-id prefix of feedback (verdict) events.
pub const FEEDBACK: &str = "feedback/";

/// `incident-opened/INCIDENT`.
pub fn incident_opened_id(incident: &str) -> String {
    format!("{INCIDENT_OPENED}{incident}")
}

/// `incident-resolved/INCIDENT`.
pub fn incident_resolved_id(incident: &str) -> String {
    format!("{INCIDENT_RESOLVED}{incident}")
}

/// `hypotheses-ranked/INCIDENT/`: the prefix of every ranking of one incident.
pub fn rankings_prefix(incident: &str) -> String {
    format!("{HYPOTHESES_RANKED}{incident}/")
}

/// `feedback/INCIDENT/`: the prefix of every verdict on one incident's hypotheses.
pub fn feedback_prefix(incident: &str) -> String {
    format!("{FEEDBACK}{incident}/")
}

/// Payload of "incident opened". Field order is the payload's key order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentOpened {
    pub id: String,
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub engine_version: String,
    pub incident: String,
    pub resources: Vec<String>,
    pub title: String,
    pub trigger: Option<EventRef>,
    pub alarms: Vec<EventRef>,
    pub alarm_names: Vec<String>,
}

/// Payload of "incident resolved".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentResolved {
    pub id: String,
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub engine_version: String,
    pub incident: String,
    pub resources: Vec<String>,
}

/// Payload of "hypotheses ranked": the incident as the engine ranked it then (its title
/// and alarms grow as related alarms join; "incident opened" keeps the first ones).
/// Hypotheses that do not decode are left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HypothesesRanked {
    pub id: String,
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub engine_version: String,
    pub incident: String,
    pub resources: Vec<String>,
    pub title: String,
    pub alarms: Vec<EventRef>,
    pub alarm_names: Vec<String>,
    #[serde(deserialize_with = "lenient_hypotheses")]
    pub hypotheses: Vec<Hypothesis>,
    /// The engine's share of blame left on no candidate, when nothing convinced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unexplained: Option<f64>,
}

/// Payload of a verdict given on a hypothesis.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Feedback {
    pub id: String,
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub incident: String,
    /// accepted or discarded.
    pub verdict: String,
    /// The cause of the hypothesis judged.
    pub hypothesis: Option<EventRef>,
    pub resources: Vec<String>,
    /// Who gave the verdict: the signed-in user, or without authentication the name
    /// typed in the form (else `local`). Absent in verdicts recorded before issue 19.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

fn lenient_hypotheses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Hypothesis>, D::Error> {
    let raw = Vec::<serde_json::Value>::deserialize(d)?;
    let mut hs: Vec<Hypothesis> = raw
        .into_iter()
        .filter_map(|h| serde_json::from_value(h).ok())
        .collect();
    hs.sort_by_key(|h| h.rank);
    Ok(hs)
}

/// Serializes a payload and normalizes it into a rootline event at `time`.
fn event<T: Serialize>(
    what: &'static str,
    payload: &T,
    time: i64,
) -> Result<NewEvent, ConclusionError> {
    // Through a Value, so keys come out in the same order as every earlier payload.
    let raw = serde_json::to_value(payload)
        .map(|v| v.to_string())
        .map_err(|e| ConclusionError::Invalid(format!("cannot serialize the {what} event: {e}")))?;
    crate::normalize::normalize(Source::Rootline, &raw, Some(time))
        .map_err(|source| ConclusionError::Build { what, source })
}

/// The engine's conclusions as events to append: incident opened, incident resolved,
/// hypotheses ranked. Natural ids are derived from content, so appending the same
/// conclusions twice adds nothing, and a different ranking appends a new event without
/// erasing the earlier one. Times come from the data (never the wall clock).
pub fn to_events(a: &Analysis) -> Vec<NewEvent> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::new();
    let mut keep = |r: Result<NewEvent, ConclusionError>| match r {
        Ok(ev) => out.push(ev),
        Err(e) => tracing::error!(error = %e, "Conclusion not recorded"),
    };
    for inc in &a.incidents {
        keep(event(
            "incident opened",
            &IncidentOpened {
                id: incident_opened_id(&inc.id),
                time: fmt_time(inc.opened_at),
                kind: "incident_opened".into(),
                engine_version: ENGINE_VERSION.into(),
                incident: inc.id.clone(),
                resources: inc.resources.clone(),
                title: inc.title.clone(),
                trigger: Some(inc.trigger.clone()),
                alarms: inc.alarms.clone(),
                alarm_names: inc.alarm_names.clone(),
            },
            inc.opened_at,
        ));
        if let Some(r) = inc.resolved_at {
            keep(event(
                "incident resolved",
                &IncidentResolved {
                    id: incident_resolved_id(&inc.id),
                    time: fmt_time(r),
                    kind: "incident_resolved".into(),
                    engine_version: ENGINE_VERSION.into(),
                    incident: inc.id.clone(),
                    resources: inc.resources.clone(),
                },
                r,
            ));
        }
        let hyps = serde_json::to_value(&inc.hypotheses).unwrap_or(serde_json::Value::Null);
        let alarms = serde_json::to_value(&inc.alarms).unwrap_or(serde_json::Value::Null);
        let digest =
            Sha256::digest(format!("{ENGINE_VERSION}{hyps}\n{}\n{alarms}", inc.title).as_bytes());
        let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        keep(event(
            "hypotheses ranked",
            &HypothesesRanked {
                id: format!("{}{short}", rankings_prefix(&inc.id)),
                time: fmt_time(inc.opened_at),
                kind: "hypotheses_ranked".into(),
                engine_version: ENGINE_VERSION.into(),
                incident: inc.id.clone(),
                resources: inc.resources.clone(),
                title: inc.title.clone(),
                alarms: inc.alarms.clone(),
                alarm_names: inc.alarm_names.clone(),
                hypotheses: inc.hypotheses.clone(),
                unexplained: inc.unexplained,
            },
            inc.opened_at,
        ));
    }
    out
}

/// The seq of the newest upstream event (any source but rootline's own), 0 when none.
pub async fn latest_upstream_seq<S: EventLog>(store: &S) -> Result<i64, StoreError> {
    let newest = store
        .query(&EventFilter {
            sources: Source::upstream(),
            order: crate::store::Order::Desc,
            limit: 1,
            ..Default::default()
        })
        .await?;
    Ok(newest.first().map(|e| e.seq).unwrap_or(0))
}

/// An incident as the log records it: what the engine concluded last.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: String,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    pub opened: IncidentOpened,
    /// The latest ranking's hypotheses, by rank.
    pub hypotheses: Vec<Hypothesis>,
    /// How many rankings were recorded.
    pub rankings: usize,
    /// The latest ranking's unexplained share, when nothing convinced the engine.
    pub unexplained: Option<f64>,
    /// Engine version of the latest ranking.
    pub engine_version: String,
}

impl Recorded {
    /// The incident with its latest hypotheses (`None` when the record names no trigger).
    pub fn incident(&self) -> Option<Incident> {
        Some(Incident {
            id: self.id.clone(),
            opened_at: self.opened_at,
            resolved_at: self.resolved_at,
            title: self.opened.title.clone(),
            trigger: self.opened.trigger.clone()?,
            alarms: self.opened.alarms.clone(),
            alarm_names: self.opened.alarm_names.clone(),
            resources: self.opened.resources.clone(),
            hypotheses: self.hypotheses.clone(),
            unexplained: self.unexplained,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned + Default>(e: &Event) -> T {
    serde_json::from_str(&e.payload).unwrap_or_default()
}

async fn by_prefix<S: EventLog>(store: &S, prefix: &str) -> Result<Vec<Event>, StoreError> {
    store
        .query(&EventFilter {
            sources: vec![Source::Rootline],
            id_prefix: Some(prefix.to_string()),
            ..Default::default()
        })
        .await
}

fn recorded(opened: &Event, resolved_at: Option<i64>, ranked: &[Event]) -> Option<Recorded> {
    let mut o: IncidentOpened = decode(opened);
    if o.incident.is_empty() {
        return None;
    }
    // The latest ranking is the one appended last (highest seq).
    let latest: HypothesesRanked = ranked
        .iter()
        .max_by_key(|e| e.seq)
        .map(decode)
        .unwrap_or_default();
    // It also holds the incident as it was then (rankings recorded before it did not).
    if !latest.alarms.is_empty() {
        o.title = latest.title.clone();
        o.alarms = latest.alarms.clone();
        o.alarm_names = latest.alarm_names.clone();
        o.resources = latest.resources.clone();
    }
    Some(Recorded {
        id: o.incident.clone(),
        opened_at: opened.event_time,
        resolved_at,
        opened: o,
        hypotheses: latest.hypotheses,
        unexplained: latest.unexplained,
        rankings: ranked.len(),
        engine_version: latest.engine_version,
    })
}

/// Every incident recorded in the log, ordered by (opened time, id).
pub async fn load_all<S: EventLog>(store: &S) -> Result<Vec<Recorded>, StoreError> {
    let resolved: BTreeMap<String, i64> = by_prefix(store, INCIDENT_RESOLVED)
        .await?
        .iter()
        .map(|e| (decode::<IncidentResolved>(e).incident, e.event_time))
        .collect();
    let mut ranked: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in by_prefix(store, HYPOTHESES_RANKED).await? {
        let incident = decode::<HypothesesRanked>(&e).incident;
        ranked.entry(incident).or_default().push(e);
    }
    let mut out: Vec<Recorded> = by_prefix(store, INCIDENT_OPENED)
        .await?
        .iter()
        .filter_map(|e| {
            let id = decode::<IncidentOpened>(e).incident;
            let rankings = ranked.get(&id).map(Vec::as_slice).unwrap_or_default();
            recorded(e, resolved.get(&id).copied(), rankings)
        })
        .collect();
    out.sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
    Ok(out)
}

/// The incidents whose id is `text`, or whose title, alarms or resources contain it
/// (case-insensitively), newest first, at most `limit`. Only the openings are read to
/// match (one indexed prefix read), then the matches' own conclusions: a search does
/// not read every ranking of every incident. Alarms and resources that joined an
/// incident after it opened are not matched.
pub async fn matching_incidents<S: EventLog>(
    store: &S,
    text: &str,
    limit: usize,
) -> Result<Vec<Recorded>, StoreError> {
    let lq = text.to_lowercase();
    let mut found: Vec<(i64, String)> = by_prefix(store, INCIDENT_OPENED)
        .await?
        .iter()
        .filter_map(|e| {
            let o: IncidentOpened = decode(e);
            let hit = o.incident == text
                || o.title.to_lowercase().contains(&lq)
                || o.alarm_names.iter().any(|a| a.to_lowercase().contains(&lq))
                || o.resources.iter().any(|r| r.to_lowercase().contains(&lq));
            (hit && !o.incident.is_empty()).then_some((e.event_time, o.incident))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    found.truncate(limit);
    let loaded =
        futures_util::future::try_join_all(found.iter().map(|(_, id)| load_one(store, id))).await?;
    Ok(loaded.into_iter().flatten().collect())
}

/// The recorded incidents with their latest hypotheses, as an analysis (ordered by
/// opened time, then id).
pub async fn load_analysis<S: EventLog>(store: &S) -> Result<Analysis, StoreError> {
    let incidents = load_all(store)
        .await?
        .iter()
        .filter_map(Recorded::incident)
        .collect();
    Ok(Analysis { incidents })
}

/// One incident by id: only its own conclusions are read (prefix queries on the
/// natural-id index).
pub async fn load_one<S: EventLog>(store: &S, id: &str) -> Result<Option<Recorded>, StoreError> {
    let Some(opened) = store
        .find(Source::Rootline, &incident_opened_id(id))
        .await?
    else {
        return Ok(None);
    };
    let resolved = store
        .find(Source::Rootline, &incident_resolved_id(id))
        .await?;
    let ranked = by_prefix(store, &rankings_prefix(id)).await?;
    Ok(recorded(&opened, resolved.map(|r| r.event_time), &ranked))
}

/// A verdict on one hypothesis of an incident, as an event to append. `n` (the number
/// of verdicts already given on the incident) keeps ids of verdicts given within one
/// millisecond apart.
pub fn feedback_event(
    incident: &str,
    verdict: &str,
    cause: &EventRef,
    resources: &[String],
    by: Option<&str>,
    now_ms: i64,
    n: usize,
) -> Result<NewEvent, ConclusionError> {
    let by: Option<String> = by.map(|b| b.chars().filter(|c| !c.is_control()).take(256).collect());
    event(
        "feedback",
        &Feedback {
            id: format!("{}{now_ms:013}-{n:06}", feedback_prefix(incident)),
            time: fmt_time(now_ms),
            kind: "hypothesis_feedback".into(),
            incident: incident.to_string(),
            verdict: verdict.to_string(),
            hypothesis: Some(cause.clone()),
            resources: resources.to_vec(),
            by,
        },
        now_ms,
    )
}

/// Verdicts given on an incident's hypotheses: the latest per cause, and how many
/// verdicts were given in all.
pub async fn verdicts<S: EventLog>(
    store: &S,
    incident: &str,
) -> Result<(BTreeMap<EventRef, String>, usize), StoreError> {
    let events = by_prefix(store, &feedback_prefix(incident)).await?;
    let mut out = BTreeMap::new();
    for e in &events {
        let f: Feedback = decode(e);
        if let (Some(cause), false) = (f.hypothesis, f.verdict.is_empty()) {
            out.insert(cause, f.verdict);
        }
    }
    Ok((out, events.len()))
}

/// Incident-opened events examined, at most, by [`earlier_incidents`] (newest first).
const EARLIER_INCIDENTS_SCAN: i64 = 2_000;

/// An earlier incident that shared alarms or resources with another.
#[derive(Debug, Clone, Serialize)]
pub struct PastIncident {
    pub id: String,
    pub title: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    /// The alarms (`alarm/NAME`) and resources both incidents name.
    pub shared: Vec<String>,
    /// Summaries of the hypotheses people accepted, by rank.
    pub accepted: Vec<String>,
    /// The top hypothesis's confidence word and summary, when nothing was accepted.
    pub top: Option<(&'static str, String)>,
}

/// Up to `at_most` incidents opened before `before` (other than `except`) that name one
/// of `keys` (alarms as `alarm/NAME`, resources), newest first, with their accepted
/// causes. Reads the "incident opened" conclusions through their natural-id index
/// (the newest 2,000, matched against `keys` in SQLite, only matches handed over, without
/// payloads), then each match's own conclusions: never the upstream events.
pub async fn earlier_incidents(
    store: &Store,
    keys: &[String],
    before: i64,
    except: &str,
    at_most: usize,
) -> Result<Vec<PastIncident>, StoreError> {
    if keys.is_empty() || at_most == 0 {
        return Ok(Vec::new());
    }
    // One more than asked: `except` may be among them.
    let opened = store
        .rootline_naming(
            INCIDENT_OPENED,
            keys,
            before,
            EARLIER_INCIDENTS_SCAN,
            at_most as i64 + 1,
        )
        .await?;
    tracing::debug!(matched = opened.len(), "Earlier incidents scanned");
    let mut matches = Vec::new();
    for e in &opened {
        let id = e.natural_id.trim_start_matches(INCIDENT_OPENED);
        if id == except {
            continue;
        }
        let shared: Vec<String> = e
            .resources
            .iter()
            .filter(|r| keys.contains(r))
            .cloned()
            .collect();
        if shared.is_empty() {
            continue;
        }
        matches.push((id, e.event_time, shared));
        if matches.len() >= at_most {
            break;
        }
    }
    // Each match's conclusions are a handful of indexed reads: read them all at once on
    // the read pool rather than one after another.
    futures_util::future::try_join_all(
        matches
            .into_iter()
            .map(|(id, opened_ms, shared)| past_incident(store, id, opened_ms, shared)),
    )
    .await
}

/// One earlier incident's title, resolution and causes (accepted, else the top one).
async fn past_incident<S: EventLog>(
    store: &S,
    id: &str,
    opened_ms: i64,
    shared: Vec<String>,
) -> Result<PastIncident, StoreError> {
    // The latest ranking alone (it holds the title and the hypotheses): an incident
    // re-ranked many times is not read in full.
    let latest_filter = EventFilter {
        sources: vec![Source::Rootline],
        id_prefix: Some(rankings_prefix(id)),
        order: crate::store::Order::Desc,
        limit: 1,
        ..Default::default()
    };
    let resolved_id = incident_resolved_id(id);
    let (latest, resolved, verdicts) = tokio::try_join!(
        store.query(&latest_filter),
        store.find(Source::Rootline, &resolved_id),
        verdicts(store, id),
    )?;
    let ranked: HypothesesRanked = latest.first().map(decode).unwrap_or_default();
    // Only rankings recorded before titles were kept lack one: then the opening has it.
    let title = if ranked.title.is_empty() {
        store
            .find(Source::Rootline, &incident_opened_id(id))
            .await?
            .map(|o| decode::<IncidentOpened>(&o).title)
            .unwrap_or_default()
    } else {
        ranked.title.clone()
    };
    let (verdicts, _) = verdicts;
    let accepted: Vec<String> = ranked
        .hypotheses
        .iter()
        .filter(|h| verdicts.get(&h.cause).map(String::as_str) == Some("accepted"))
        .map(|h| crate::model::display_names_in(&h.summary))
        .collect();
    let top = if accepted.is_empty() {
        ranked.hypotheses.first().map(|h| {
            (
                confidence(h.score),
                crate::model::display_names_in(&h.summary),
            )
        })
    } else {
        None
    };
    Ok(PastIncident {
        id: id.to_string(),
        title: if title.is_empty() {
            id.to_string()
        } else {
            title
        },
        opened_at: fmt_time(opened_ms),
        resolved_at: resolved.map(|r| fmt_time(r.event_time)),
        shared,
        accepted,
        top,
    })
}
