//! Incidents from alarm transitions.
//!
//! The same transition delivered twice (alarm history and EventBridge) counts once: the
//! EventBridge detail carries the transition's own timestamp, equal to the history
//! item's to the millisecond. A transition into ALARM joins an open incident when its
//! alarm is close in topology to the incident's (or, for alarms on custom metrics with
//! no dimensions, clearly named alike) and close in time; otherwise it opens one.
//! When every alarm of an incident is back to OK, the incident is resolved.

use super::rank::Vocabulary;
use super::topology::ResourceGraph;
use super::{Config, Corpus, Hypothesis, Incident};
use crate::model::{parse_time, EventRef, Kind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Topology cost within which two alarms are related.
const RELATED_COST: u32 = 3;
/// Naming affinity above which two alarms are related when topology says nothing.
const RELATED_AFFINITY: f64 = 0.45;
const AFFINITY_WINDOW_MS: i64 = 10 * 60 * 1000;
/// The same, when one side has no topology at all.
const BLIND_AFFINITY: f64 = 0.2;

/// True when a set of alarm resources names anything besides alarms.
fn has_topology(res: &BTreeSet<String>) -> bool {
    res.iter().any(|r| !r.starts_with("alarm/"))
}

/// One alarm state transition, however many times it was delivered.
#[derive(Debug, Clone)]
pub(crate) struct Transition {
    pub alarm: String,
    pub new_state: String,
    pub time: i64,
    /// Corpus indexes of its deliveries.
    pub deliveries: Vec<usize>,
    /// Resource keys of the alarm (itself and what it watches).
    pub resources: Vec<String>,
}

/// An incident as detected, before ranking.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub transitions: Vec<Transition>,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    pub resources: BTreeSet<String>,
    active: BTreeSet<String>,
    last_alarm: i64,
}

impl Found {
    pub(crate) fn into_incident(
        self,
        corpus: &Corpus<'_>,
        hypotheses: Vec<Hypothesis>,
    ) -> Incident {
        use sha2::{Digest, Sha256};
        let first = &self.transitions[0];
        // The alarm history delivery when there is one: every estate has it.
        let trig_idx = first
            .deliveries
            .iter()
            .copied()
            .find(|&d| corpus.events[d].source == crate::model::Source::AlarmHistory)
            .unwrap_or(first.deliveries[0]);
        let trig = corpus.events[trig_idx];
        let digest =
            Sha256::digest(format!("{}\n{}", trig.source.as_str(), trig.natural_id).as_bytes());
        let id: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let mut names: Vec<String> = Vec::new();
        let mut alarms: Vec<EventRef> = Vec::new();
        for t in &self.transitions {
            if !names.contains(&t.alarm) {
                names.push(t.alarm.clone());
            }
            for &d in &t.deliveries {
                alarms.push(corpus.events[d].reference());
            }
        }
        let title = if names.len() > 1 {
            format!(
                "{} in ALARM (+{} related alarm{})",
                names[0],
                names.len() - 1,
                if names.len() > 2 { "s" } else { "" }
            )
        } else {
            format!("{} in ALARM", names[0])
        };
        Incident {
            id: format!("inc-{id}"),
            opened_at: self.opened_at,
            resolved_at: self.resolved_at,
            title,
            trigger: trig.reference(),
            alarms,
            alarm_names: names,
            resources: self.resources.into_iter().collect(),
            hypotheses,
        }
    }
}

/// The transition's own time: EventBridge carries it in detail.state.timestamp
/// (its envelope time is truncated to seconds); alarm history items are exact.
fn precise_time(corpus: &Corpus<'_>, i: usize) -> (i64, bool) {
    let e = corpus.events[i];
    if e.source == crate::model::Source::EventBridge {
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
    let mut out: Vec<Transition> = Vec::new();
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
        let key = (alarm.clone(), new_state.clone());
        let slots = index.entry(key).or_default();
        let found = slots.iter().copied().find(|&ti| {
            let tr: &Transition = &out[ti];
            let tol = if exact { 1000 } else { 60_000 };
            (tr.time - t).abs() <= tol
        });
        match found {
            Some(ti) => {
                let tr = &mut out[ti];
                tr.deliveries.push(i);
                for r in &e.resources {
                    if !tr.resources.contains(r) {
                        tr.resources.push(r.clone());
                    }
                }
                if exact {
                    tr.time = t;
                }
            }
            None => {
                slots.push(out.len());
                out.push(Transition {
                    alarm: alarm.clone(),
                    new_state: new_state.clone(),
                    time: t,
                    deliveries: vec![i],
                    resources: e.resources.clone(),
                });
            }
        }
    }
    out.sort_by(|a, b| (a.time, a.deliveries[0]).cmp(&(b.time, b.deliveries[0])));
    out
}

/// Resource keys an alarm watches: its own key, what its deliveries name, and its
/// neighbours in the graph (the dimensions from its definition).
fn alarm_resources(graph: &ResourceGraph, t: &Transition) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = t.resources.iter().cloned().collect();
    let own = format!("alarm/{}", t.alarm);
    for n in graph.neighbours(&own) {
        if !n.starts_with("alarm/") {
            out.insert(n.to_string());
        }
    }
    out.insert(own);
    out
}

/// Detects incidents in time order.
pub(crate) fn detect(
    corpus: &Corpus<'_>,
    graph: &ResourceGraph,
    vocab: &Vocabulary,
    config: &Config,
) -> Vec<Found> {
    let mut incidents: Vec<Found> = Vec::new();
    for t in transitions(corpus) {
        match t.new_state.as_str() {
            "ALARM" => {
                let res = alarm_resources(graph, &t);
                // Already active in an open incident (a repeated delivery or a flap).
                if let Some(inc) = incidents
                    .iter_mut()
                    .find(|i| i.resolved_at.is_none() && i.active.contains(&t.alarm))
                {
                    inc.last_alarm = t.time;
                    inc.transitions.push(t);
                    continue;
                }
                let sources: Vec<String> = res.iter().cloned().collect();
                let dist = graph.distances(&sources);
                let tokens = vocab.alarm_tokens(&t.alarm);
                let mut best: Option<(u32, usize)> = None;
                for (ii, inc) in incidents.iter().enumerate() {
                    if inc.resolved_at.is_some() || t.time - inc.last_alarm > config.join_window_ms
                    {
                        continue;
                    }
                    let topo = inc
                        .resources
                        .iter()
                        .filter_map(|r| graph.id(r))
                        .filter_map(|id| dist.get(&id).map(|d| d.0))
                        .min();
                    // Alarms on custom metrics often have no dimensions: for them (on
                    // either side) naming and time are all there is to go on.
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
                            (aff >= threshold && t.time - inc.last_alarm <= AFFINITY_WINDOW_MS)
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
                        let inc = &mut incidents[ii];
                        if tracing::enabled!(tracing::Level::DEBUG) {
                            let path = inc
                                .resources
                                .iter()
                                .filter_map(|r| graph.id(r))
                                .filter_map(|id| dist.get(&id).map(|d| (d.0, id)))
                                .min()
                                .map(|(_, id)| graph.path(&dist, id).join(" -> "))
                                .unwrap_or_else(|| "naming".into());
                            tracing::debug!(alarm = %t.alarm, cost, %path, "Alarm joins an open incident");
                        }
                        inc.active.insert(t.alarm.clone());
                        inc.resources.extend(res);
                        inc.last_alarm = t.time;
                        inc.transitions.push(t);
                    }
                    None => incidents.push(Found {
                        opened_at: t.time,
                        resolved_at: None,
                        resources: res,
                        active: [t.alarm.clone()].into_iter().collect(),
                        last_alarm: t.time,
                        transitions: vec![t],
                    }),
                }
            }
            "OK" => {
                if let Some(inc) = incidents
                    .iter_mut()
                    .find(|i| i.resolved_at.is_none() && i.active.contains(&t.alarm))
                {
                    inc.active.remove(&t.alarm);
                    if inc.active.is_empty() {
                        inc.resolved_at = Some(t.time);
                    }
                }
            }
            _ => {}
        }
    }
    incidents
}
