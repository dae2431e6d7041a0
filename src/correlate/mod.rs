//! Correlation: from the event log to incidents and ranked root-cause hypotheses.
//!
//! 1. `topology` says which resources an event relates; `knowledge` is what the engine
//!    reads besides an incident's own window (the resource graph around it, naming
//!    statistics, alarm definitions, earlier changes), from the store's projections or
//!    from events in memory.
//! 2. `incidents` turns alarm transitions into incidents, incrementally ([`Detector`]):
//!    a transition into ALARM opens one or joins one close in time and topology;
//!    transitions back to OK resolve it.
//! 3. `rank` gathers candidate causes in an incident's look-back window, builds a
//!    petgraph graph whose edges mean "could have caused" (weighted by time order and
//!    gap, topology distance, change-kind plausibility and anomaly strength), ranks
//!    candidates with a personalised random walk from the symptoms, and explains each
//!    hypothesis.
//!
//! Everything here is a pure function of the events and knowledge given: same input,
//! same output.

mod incidents;
pub mod knowledge;
pub mod priors;
mod rank;
pub mod topology;
mod walk;

pub use incidents::{incident_id, Delivery, Detector, Found, Transition};
pub use knowledge::{Knowledge, Memory};
pub use rank::AlarmDef;

use crate::model::{fmt_time, Event, EventRef, Kind, Source};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Identifies the engine in the conclusions it appends.
/// A hypothesis's score at or above this is called likely.
pub const LIKELY: f64 = 0.5;
/// A score at or above this (and below [`LIKELY`]) is called possible; below, weak. When
/// no hypothesis reaches it the incident is unexplained ([`Incident::unexplained`]).
pub const POSSIBLE: f64 = 0.2;

/// How far before its look-back an incident's failing workloads are searched for the
/// rollout they began to degrade with.
pub const REACH_BACK_MS: i64 = 24 * 3600 * 1000;

pub const ENGINE_VERSION: &str = concat!("rootline-correlate/", env!("CARGO_PKG_VERSION"));

/// Tuning knobs. The defaults suit the look-back of typical AWS incidents: causes up to
/// two hours before the first symptom.
#[derive(Debug, Clone)]
pub struct Config {
    /// How far before the first symptom candidates are gathered.
    pub lookback_ms: i64,
    /// How long after an incident's last alarm a related alarm may still join it.
    pub join_window_ms: i64,
    /// A cause may be recorded this long after its symptom (clock skew, coarse times).
    pub slack_ms: i64,
    /// Hypotheses kept per incident.
    pub max_hypotheses: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lookback_ms: 2 * 3600 * 1000,
            join_window_ms: 30 * 60 * 1000,
            slack_ms: 2 * 60 * 1000,
            max_hypotheses: 10,
        }
    }
}

/// One ranked root-cause hypothesis.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Hypothesis {
    pub rank: usize,
    /// Share of the blame, in [0, 1].
    pub score: f64,
    /// change, deployment, anomaly, saturation, config or other.
    pub kind: String,
    /// The event blamed.
    pub cause: EventRef,
    pub summary: String,
    /// From cause to symptom: the cause, its other deliveries, intermediate effects, the symptom.
    pub evidence: Vec<EventRef>,
    /// The resource path that links cause and symptom.
    #[serde(default)]
    pub path: Vec<String>,
}

/// An incident and its hypotheses.
#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub id: String,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    pub title: String,
    pub trigger: EventRef,
    /// Every delivery of every alarm transition into ALARM grouped here.
    pub alarms: Vec<EventRef>,
    /// Distinct alarm names, in order of first transition.
    pub alarm_names: Vec<String>,
    /// Resources the alarms watch.
    pub resources: Vec<String>,
    pub hypotheses: Vec<Hypothesis>,
    /// Set when no hypothesis is convincing (none of the first three scores
    /// [`POSSIBLE`] or is a real change or reported failure before the alarm):
    /// the share of the blame the engine could not place on any candidate, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unexplained: Option<f64>,
}

/// The result of analysing a log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    pub incidents: Vec<Incident>,
}

/// Events prepared for analysis: time-ordered, rootline's own conclusions left out,
/// with payloads parsed on demand.
pub(crate) struct Corpus<'a> {
    pub events: Vec<&'a Event>,
    parsed: std::cell::RefCell<BTreeMap<usize, std::rc::Rc<Value>>>,
    by_seq: BTreeMap<i64, usize>,
}

impl<'a> Corpus<'a> {
    fn new(events: &'a [Event]) -> Self {
        let mut evs: Vec<&Event> = events
            .iter()
            .filter(|e| e.source != Source::Rootline)
            .collect();
        evs.sort_by_key(|e| (e.event_time, e.seq));
        let by_seq = evs.iter().enumerate().map(|(i, e)| (e.seq, i)).collect();
        Corpus {
            events: evs,
            parsed: Default::default(),
            by_seq,
        }
    }

    /// The index of the event stored as `seq`, if the corpus holds it.
    pub fn index_of(&self, seq: i64) -> Option<usize> {
        self.by_seq.get(&seq).copied()
    }

    /// The parsed payload of event `i` (Null if it does not parse).
    pub fn payload(&self, i: usize) -> std::rc::Rc<Value> {
        if let Some(v) = self.parsed.borrow().get(&i) {
            return v.clone();
        }
        let v = std::rc::Rc::new(
            self.events
                .get(i)
                .and_then(|e| serde_json::from_str(&e.payload).ok())
                .unwrap_or(Value::Null),
        );
        self.parsed.borrow_mut().insert(i, v.clone());
        v
    }

    /// Index range of events with time in [from, to].
    pub fn range(&self, from: i64, to: i64) -> std::ops::Range<usize> {
        let lo = self.events.partition_point(|e| e.event_time < from);
        let hi = self.events.partition_point(|e| e.event_time <= to);
        lo..hi.max(lo)
    }
}

/// The alarm definition an event states, as (alarm, namespace, metric): a DescribeAlarms
/// snapshot, a successful PutMetricAlarm call or an EventBridge alarm event. What the
/// engine uses, for the alarm-definition projection.
pub fn alarm_definition(e: &Event) -> Option<(String, String, String)> {
    rank::alarm_definition(e, || {
        std::rc::Rc::new(serde_json::from_str(&e.payload).unwrap_or(Value::Null))
    })
    .map(|(name, d)| (name, d.namespace, d.metric))
}

/// True when `e` may state an alarm definition, told from its envelope: only such
/// events need their payload read by [`alarm_definition`].
pub fn may_define_alarm(e: &Event) -> bool {
    rank::may_define_alarm(e)
}

/// Times of the saturation alarms among `events` that went to ALARM: the only alarm
/// transitions that are candidates in other incidents' rankings (an incident's own
/// transitions reach it through the detector). Other transitions in an incident's
/// window leave its ranking as it was.
pub fn saturation_alarm_times(events: &[Event], k: &dyn Knowledge) -> Vec<i64> {
    let vocab = rank::Vocabulary::new(k, i64::MAX);
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Alarm {
                alarm, new_state, ..
            } if new_state == "ALARM" && vocab.is_saturation(alarm) => Some(e.event_time),
            _ => None,
        })
        .collect()
}

/// Analyses a set of events held in memory: incidents, each with ranked hypotheses. The
/// same engine as the store's analyser, with [`Memory`] as its knowledge.
pub fn analyze(events: &[Event], config: &Config) -> Analysis {
    let memory = Memory::of(events);
    let mut detector = Detector::default();
    let mut out: Vec<Incident> = detector
        .feed(events, &memory, config)
        .into_iter()
        .map(|found| rank_incident(events, &memory, found, config))
        .collect();
    out.sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
    Analysis { incidents: out }
}

/// Ranks the hypotheses of one incident from the events of its window (at least those
/// in [`Found::window`]; events outside it are not candidates) and what `k` knows.
pub fn rank_incident(
    window: &[Event],
    k: &dyn Knowledge,
    found: Found,
    config: &Config,
) -> Incident {
    // A workload failing by itself (tasks killed for want of memory, failed launches)
    // may be degrading since a rollout older than the look-back: its rollouts of the
    // day before are candidates too, read by resource, never by time.
    let (from, _) = found.window(config);
    let mut failing: BTreeSet<&str> = BTreeSet::new();
    for e in window {
        if e.event_time >= from && rank::reports_failure(e) {
            failing.extend(e.resources.iter().map(String::as_str));
        }
    }
    let mut extra: Vec<Event> = Vec::new();
    let mut have: BTreeSet<i64> = BTreeSet::new();
    if !failing.is_empty() {
        have.extend(window.iter().map(|e| e.seq));
    }
    let reach = from.saturating_sub(REACH_BACK_MS);
    // Where candidates are gathered from: the earliest such rollout, whether the caller
    // passed it among the events (all events in memory) or it is read here (a window
    // read from the store), so both give the same ranking.
    let mut reach_from: Option<i64> = None;
    for r in failing.iter().take(16) {
        for e in k.earlier_changes(r, from, 20) {
            if e.event_time >= reach && rank::is_rollout(&e) {
                reach_from = Some(reach_from.map_or(e.event_time, |t| t.min(e.event_time)));
                if have.insert(e.seq) {
                    extra.push(e);
                }
            }
        }
    }
    let combined: Vec<Event>;
    let events = if extra.is_empty() {
        window
    } else {
        combined = window
            .iter()
            .cloned()
            .chain(extra.iter().cloned())
            .collect();
        &combined[..]
    };
    let corpus = Corpus::new(events);
    let graph = topology::Neighbourhood::new(k);
    let vocab = rank::Vocabulary::new(k, found.window(config).1.saturating_add(1));
    let (hypotheses, left) = rank::rank(&corpus, &graph, &vocab, &found, config, reach_from);
    let unexplained = left.map(|u| (u.clamp(0.0, 1.0) * 1e4).round() / 1e4);
    found.into_incident(hypotheses, unexplained)
}

/// The `replay --json` report (RECORDINGS.md section 3) as one line of JSON, exactly
/// that shape: structs serialized directly fix the key order.
pub fn report_json(a: &Analysis) -> String {
    #[derive(Serialize)]
    struct ReportHypothesis<'a> {
        rank: usize,
        score: f64,
        kind: &'a str,
        cause: &'a EventRef,
        summary: &'a str,
        evidence: &'a [EventRef],
    }
    #[derive(Serialize)]
    struct ReportIncident<'a> {
        id: &'a str,
        opened_at: String,
        title: &'a str,
        trigger: &'a EventRef,
        alarms: &'a [EventRef],
        hypotheses: Vec<ReportHypothesis<'a>>,
    }
    #[derive(Serialize)]
    struct Report<'a> {
        incidents: Vec<ReportIncident<'a>>,
    }
    let report = Report {
        incidents: a
            .incidents
            .iter()
            .map(|i| ReportIncident {
                id: &i.id,
                opened_at: fmt_time(i.opened_at),
                title: &i.title,
                trigger: &i.trigger,
                alarms: &i.alarms,
                hypotheses: i
                    .hypotheses
                    .iter()
                    .map(|h| ReportHypothesis {
                        rank: h.rank,
                        score: (h.score * 1e4).round() / 1e4,
                        kind: &h.kind,
                        cause: &h.cause,
                        summary: &h.summary,
                        evidence: &h.evidence,
                    })
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&report).unwrap_or_else(|_| "{\"incidents\":[]}".to_string())
}
