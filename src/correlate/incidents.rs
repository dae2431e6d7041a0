//! Incidents from alarm transitions, detected incrementally.
//!
//! The same transition delivered twice (alarm history and EventBridge) counts once: the
//! EventBridge detail carries the transition's own timestamp, equal to the history
//! item's to the millisecond. A transition into ALARM joins an open incident when its
//! alarm is close in topology to the incident's (or, for alarms on custom metrics with
//! no dimensions, clearly named alike) and close in time; otherwise it opens one.
//! When every alarm of an incident is back to OK, the incident is resolved.
//!
//! [`Detector`] holds what detection needs between runs (the open incidents and the
//! recent transitions) and is fed new alarm events as they arrive; fed everything at
//! once, it detects exactly what it would have detected fed in time order.

use super::knowledge::Knowledge;
use super::rank::Vocabulary;
use super::topology::Neighbourhood;
use super::{Config, Corpus, Hypothesis, Incident};
use crate::model::{parse_time, EventRef, Kind, Source};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Topology cost within which two alarms are related.
const RELATED_COST: u32 = 3;
/// Naming affinity above which two alarms are related when topology says nothing.
const RELATED_AFFINITY: f64 = 0.45;
const AFFINITY_WINDOW_MS: i64 = 10 * 60 * 1000;
/// The same, when one side has no topology at all.
const BLIND_AFFINITY: f64 = 0.2;
/// A delivery within this of a transition (and of the same alarm and state) is the
/// same transition when its time is exact; `LOOSE_MS` when it is not.
const EXACT_MS: i64 = 1000;
const LOOSE_MS: i64 = 60_000;
/// Transitions are remembered this long (in event time) after the newest one, so that
/// their late deliveries are merged into them.
const REMEMBER_MS: i64 = 15 * 60 * 1000;

/// True when a set of alarm resources names anything besides alarms.
fn has_topology(res: &BTreeSet<String>) -> bool {
    res.iter().any(|r| !r.starts_with("alarm/"))
}

/// One delivery of a transition: the stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub seq: i64,
    /// Its event time: deliveries are kept in (time, seq) order.
    pub time: i64,
    pub event: EventRef,
}

impl Delivery {
    fn is_history(&self) -> bool {
        self.event.source == Source::AlarmHistory.as_str()
    }
}

/// One alarm state transition, however many times it was delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    pub alarm: String,
    pub new_state: String,
    pub time: i64,
    /// Whether `time` is exact (some delivery carried the transition's own time).
    #[serde(default)]
    pub exact: bool,
    /// Its deliveries, in corpus order.
    pub deliveries: Vec<Delivery>,
    /// Resource keys of the alarm (itself and what it watches).
    pub resources: Vec<String>,
}

impl Transition {
    fn same_as(&self, alarm: &str, state: &str, time: i64, exact: bool) -> bool {
        let tol = if exact { EXACT_MS } else { LOOSE_MS };
        self.alarm == alarm
            && self.new_state == state
            && self.time.saturating_sub(time).saturating_abs() <= tol
    }

    /// Takes `other`'s deliveries (a later delivery of this transition).
    fn absorb(&mut self, other: &Transition) {
        for d in &other.deliveries {
            if !self.deliveries.contains(d) {
                self.deliveries.push(d.clone());
            }
        }
        self.deliveries.sort_by_key(|d| (d.time, d.seq));
        for r in &other.resources {
            if !self.resources.contains(r) {
                self.resources.push(r.clone());
            }
        }
        if other.exact {
            self.time = other.time;
            self.exact = true;
        }
    }
}

/// An incident as detected, before ranking.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Found {
    pub id: String,
    /// The delivery its id derives from.
    pub trigger: EventRef,
    pub transitions: Vec<Transition>,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    pub resources: BTreeSet<String>,
    active: BTreeSet<String>,
    last_alarm: i64,
}

/// The id of an incident whose trigger is the stored event (`source`, `natural_id`):
/// `inc-` and 12 hex digits of its SHA-256.
pub fn incident_id(source: &str, natural_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{source}\n{natural_id}").as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("inc-{hex}")
}

impl Found {
    fn open(t: Transition, resources: BTreeSet<String>) -> Option<Found> {
        // The alarm history delivery when there is one: every estate has it.
        let trig = t
            .deliveries
            .iter()
            .find(|d| d.is_history())
            .or(t.deliveries.first())?
            .event
            .clone();
        Some(Found {
            id: incident_id(&trig.source, &trig.id),
            trigger: trig,
            opened_at: t.time,
            resolved_at: None,
            resources,
            active: [t.alarm.clone()].into_iter().collect(),
            last_alarm: t.time,
            transitions: vec![t],
        })
    }

    /// Where candidate causes are gathered: from the look-back before its first
    /// transition to the slack after its last.
    pub fn window(&self, config: &Config) -> (i64, i64) {
        let times = || self.transitions.iter().map(|t| t.time);
        (
            times()
                .min()
                .unwrap_or(self.opened_at)
                .saturating_sub(config.lookback_ms),
            times()
                .max()
                .unwrap_or(self.opened_at)
                .saturating_add(config.slack_ms),
        )
    }

    /// The seqs of every delivery of its transitions.
    pub fn delivery_seqs(&self) -> Vec<i64> {
        self.transitions
            .iter()
            .flat_map(|t| t.deliveries.iter().map(|d| d.seq))
            .collect()
    }

    pub(crate) fn into_incident(
        self,
        hypotheses: Vec<Hypothesis>,
        unexplained: Option<f64>,
    ) -> Incident {
        let mut names: Vec<String> = Vec::new();
        let mut alarms: Vec<EventRef> = Vec::new();
        for t in &self.transitions {
            if !names.contains(&t.alarm) {
                names.push(t.alarm.clone());
            }
            for d in &t.deliveries {
                alarms.push(d.event.clone());
            }
        }
        let first = names.first().cloned().unwrap_or_default();
        let title = if names.len() > 1 {
            format!(
                "{first} in ALARM (+{} related alarm{})",
                names.len() - 1,
                if names.len() > 2 { "s" } else { "" }
            )
        } else {
            format!("{first} in ALARM")
        };
        Incident {
            id: self.id,
            opened_at: self.opened_at,
            resolved_at: self.resolved_at,
            title,
            trigger: self.trigger,
            alarms,
            alarm_names: names,
            resources: self.resources.into_iter().collect(),
            hypotheses,
            unexplained,
        }
    }
}

/// The transition's own time: EventBridge carries it in detail.state.timestamp
/// (its envelope time is truncated to seconds); alarm history items are exact.
fn precise_time(corpus: &Corpus<'_>, i: usize) -> (i64, bool) {
    let e = corpus.events[i];
    if e.source == Source::EventBridge {
        let p = corpus.payload(i);
        if let Some(t) = p
            .pointer("/detail/state/timestamp")
            .and_then(Value::as_str)
            .and_then(parse_time)
        {
            return (t, true);
        }
        return (e.event_time, false);
    }
    (e.event_time, true)
}

/// All alarm transitions in the corpus, deliveries merged, in time order.
pub(crate) fn transitions(corpus: &Corpus<'_>) -> Vec<Transition> {
    // (transition, corpus index of its first delivery)
    let mut out: Vec<(Transition, usize)> = Vec::new();
    let mut index: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, e) in corpus.events.iter().enumerate() {
        let Kind::Alarm {
            alarm, new_state, ..
        } = &e.kind
        else {
            continue;
        };
        if alarm.is_empty() || new_state.is_empty() {
            continue;
        }
        let (t, exact) = precise_time(corpus, i);
        let delivery = Transition {
            alarm: alarm.clone(),
            new_state: new_state.clone(),
            time: t,
            exact,
            deliveries: vec![Delivery {
                seq: e.seq,
                time: e.event_time,
                event: e.reference(),
            }],
            resources: e.resources.clone(),
        };
        let key = (alarm.clone(), new_state.clone());
        let slots = index.entry(key).or_default();
        match slots
            .iter()
            .copied()
            .find(|&ti| out[ti].0.same_as(alarm, new_state, t, exact))
        {
            Some(ti) => out[ti].0.absorb(&delivery),
            None => {
                slots.push(out.len());
                out.push((delivery, i));
            }
        }
    }
    out.sort_by_key(|(t, first)| (t.time, *first));
    out.into_iter().map(|(t, _)| t).collect()
}

/// Resource keys an alarm watches: its own key, what its deliveries name, and its
/// neighbours in the graph (the dimensions from its definition).
fn alarm_resources(graph: &Neighbourhood<'_>, t: &Transition) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = t.resources.iter().cloned().collect();
    let own = format!("alarm/{}", t.alarm);
    for n in graph.neighbours(&own).iter() {
        if !n.starts_with("alarm/") {
            out.insert(n.clone());
        }
    }
    out.insert(own);
    out
}

/// A transition remembered after it was applied, with the incident it went to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Recent {
    transition: Transition,
    incident: Option<String>,
}

/// Incident detection as a state fed with alarm events: the open incidents and the
/// transitions of the last minutes. Serializable, so the analyser keeps it between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Detector {
    open: Vec<Found>,
    recent: Vec<Recent>,
}

impl Detector {
    /// The incidents not yet resolved.
    pub fn open(&self) -> &[Found] {
        &self.open
    }

    /// Applies the alarm transitions among `events` (any order; a delivery of a
    /// transition already applied is merged into it) and returns every incident that
    /// changed: opened, joined, given a delivery, or resolved (those leave the open set).
    pub fn feed(
        &mut self,
        events: &[crate::model::Event],
        k: &dyn Knowledge,
        config: &Config,
    ) -> Vec<Found> {
        let corpus = Corpus::new(events);
        let graph = Neighbourhood::new(k);
        let vocab = Vocabulary::new(k, i64::MAX);
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut resolved: Vec<Found> = Vec::new();
        for t in transitions(&corpus) {
            if let Some(r) = self.recent.iter_mut().find(|r| {
                r.transition
                    .same_as(&t.alarm, &t.new_state, t.time, t.exact)
            }) {
                r.transition.absorb(&t);
                if let Some(inc) = r
                    .incident
                    .as_ref()
                    .and_then(|id| self.open.iter_mut().find(|i| &i.id == id))
                {
                    if let Some(x) = inc
                        .transitions
                        .iter_mut()
                        .find(|x| x.same_as(&t.alarm, &t.new_state, t.time, t.exact))
                    {
                        x.absorb(&t);
                        for res in &t.resources {
                            inc.resources.insert(res.clone());
                        }
                        touched.insert(inc.id.clone());
                    }
                }
                continue;
            }
            let incident = self.apply(t.clone(), &graph, &vocab, config, &mut resolved);
            if let Some(id) = &incident {
                touched.insert(id.clone());
            }
            self.recent.push(Recent {
                transition: t,
                incident,
            });
        }
        if let Some(newest) = self.recent.iter().map(|r| r.transition.time).max() {
            self.recent
                .retain(|r| r.transition.time >= newest.saturating_sub(REMEMBER_MS));
        }
        let mut out: Vec<Found> = self
            .open
            .iter()
            .filter(|i| touched.contains(&i.id))
            .cloned()
            .collect();
        out.extend(resolved);
        out.sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
        out
    }

    /// Applies one new transition; returns the id of the incident it went to.
    fn apply(
        &mut self,
        t: Transition,
        graph: &Neighbourhood<'_>,
        vocab: &Vocabulary<'_>,
        config: &Config,
        resolved: &mut Vec<Found>,
    ) -> Option<String> {
        match t.new_state.as_str() {
            "ALARM" => Some(self.alarm(t, graph, vocab, config)?),
            "OK" => {
                let pos = self.open.iter().position(|i| i.active.contains(&t.alarm))?;
                let inc = &mut self.open[pos];
                inc.active.remove(&t.alarm);
                let id = inc.id.clone();
                if inc.active.is_empty() {
                    let mut done = self.open.remove(pos);
                    done.resolved_at = Some(t.time);
                    resolved.push(done);
                }
                Some(id)
            }
            _ => None,
        }
    }

    fn alarm(
        &mut self,
        t: Transition,
        graph: &Neighbourhood<'_>,
        vocab: &Vocabulary<'_>,
        config: &Config,
    ) -> Option<String> {
        let res = alarm_resources(graph, &t);
        // Already active in an open incident (a repeated delivery or a flap).
        if let Some(inc) = self.open.iter_mut().find(|i| i.active.contains(&t.alarm)) {
            inc.last_alarm = t.time;
            inc.transitions.push(t);
            return Some(inc.id.clone());
        }
        let sources: Vec<String> = res.iter().cloned().collect();
        let dist = graph.distances(&sources);
        let tokens = vocab.alarm_tokens(&t.alarm);
        let mut best: Option<(u32, usize)> = None;
        for (ii, inc) in self.open.iter().enumerate() {
            if t.time.saturating_sub(inc.last_alarm) > config.join_window_ms {
                continue;
            }
            let topo = inc
                .resources
                .iter()
                .filter_map(|r| graph.cost(&dist, r))
                .min();
            // Alarms on custom metrics often have no dimensions: for them (on either
            // side) naming and time are all there is to go on.
            let blind = !has_topology(&res) || !has_topology(&inc.resources);
            let threshold = if blind {
                BLIND_AFFINITY
            } else {
                RELATED_AFFINITY
            };
            let cost = match topo {
                Some(c) if c <= RELATED_COST => Some(c),
                _ => {
                    let aff = inc
                        .transitions
                        .iter()
                        .map(|x| vocab.affinity(&tokens, &vocab.alarm_tokens(&x.alarm)))
                        .fold(0.0, f64::max);
                    (aff >= threshold
                        && t.time.saturating_sub(inc.last_alarm) <= AFFINITY_WINDOW_MS)
                        .then_some(RELATED_COST + 1)
                }
            };
            if let Some(c) = cost {
                if best.is_none_or(|(bc, _)| c <= bc) {
                    best = Some((c, ii));
                }
            }
        }
        match best {
            Some((cost, ii)) => {
                let inc = &mut self.open[ii];
                if tracing::enabled!(tracing::Level::DEBUG) {
                    let path = inc
                        .resources
                        .iter()
                        .filter_map(|r| graph.cost(&dist, r).map(|c| (c, r)))
                        .min()
                        .map(|(_, r)| graph.path(&dist, r).join(" -> "))
                        .unwrap_or_else(|| "naming".into());
                    tracing::debug!(alarm = %t.alarm, cost, %path, "Alarm joins an open incident");
                }
                inc.active.insert(t.alarm.clone());
                inc.resources.extend(res);
                inc.last_alarm = t.time;
                inc.transitions.push(t);
                Some(inc.id.clone())
            }
            None => {
                let inc = Found::open(t, res)?;
                let id = inc.id.clone();
                self.open.push(inc);
                Some(id)
            }
        }
    }
}
