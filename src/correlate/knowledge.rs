//! What the engine knows besides the events of an incident's window: the resource graph
//! (read around what it asks about), naming statistics, alarm definitions, and the
//! earlier changes of a resource.
//!
//! [`Knowledge`] is the engine's one way to that context. The store answers it from the
//! projections and indexes (`conclusions::StoreKnowledge`), so ranking one incident reads
//! what the incident needs and nothing more; [`Memory`] answers it from a slice of events
//! (tests, benchmarks, `correlate::analyze`). The engine is the same code either way.

use super::rank::AlarmDef;
use super::topology::{name_tokens, ResourceGraph};
use crate::model::{Event, Source};
use std::collections::{BTreeMap, BTreeSet};

/// How many earlier changes of a resource the engine may ask for at once.
pub const EARLIER_CHANGES: usize = 200;

/// The context the engine reads through, as of the analysis.
pub trait Knowledge {
    /// True when the resource graph has the key as a node.
    fn known(&self, key: &str) -> bool;
    /// The neighbours of a key in the resource graph, sorted; `None` when it has more
    /// than `at_most` of them (a hub), empty when the key is unknown.
    fn neighbours(&self, key: &str, at_most: usize) -> Option<Vec<String>>;
    /// [`Knowledge::neighbours`] of each of `keys`, in their order: one read for all
    /// where the knowledge is stored.
    fn neighbours_many(&self, keys: &[String], at_most: usize) -> Vec<Option<Vec<String>>> {
        keys.iter().map(|k| self.neighbours(k, at_most)).collect()
    }
    /// True when the resource graph joins `a` and `b` (either way), however many
    /// neighbours either has.
    fn linked(&self, a: &str, b: &str) -> bool;
    /// The pairs `(x, y)`, `x` of `xs` and `y` of `ys`, that [`Knowledge::linked`] joins:
    /// one read for all where the knowledge is stored.
    fn linked_among(&self, xs: &[String], ys: &[String]) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for x in xs {
            for y in ys {
                if self.linked(x, y) {
                    out.insert((x.clone(), y.clone()));
                }
            }
        }
        out
    }
    /// In how many names (graph node names and alarm names) a naming token appears.
    fn token_df(&self, token: &str) -> u32;
    /// How many names there are (graph nodes and alarms).
    fn names(&self) -> u32;
    /// The latest definition of an alarm.
    fn alarm_definition(&self, alarm: &str) -> Option<AlarmDef>;
    /// Up to `limit` effective changes whose primary resource is `resource`, with event
    /// time before `before`, latest first (by event time, then seq).
    fn earlier_changes(&self, resource: &str, before: i64, limit: usize) -> Vec<Event>;
}

/// Knowledge drawn from a set of events held in memory.
#[derive(Debug, Default)]
pub struct Memory {
    graph: ResourceGraph,
    df: BTreeMap<String, u32>,
    names: u32,
    alarms: BTreeMap<String, AlarmDef>,
    /// Effective changes by primary resource, in (event time, seq) order.
    by_primary: BTreeMap<String, Vec<Event>>,
}

impl Memory {
    /// What `events` say (rootline's own events are left out).
    pub fn of(events: &[Event]) -> Memory {
        let mut evs: Vec<&Event> = events
            .iter()
            .filter(|e| e.source != Source::Rootline)
            .collect();
        evs.sort_by_key(|e| (e.event_time, e.seq));
        let graph = ResourceGraph::build(evs.iter().copied());
        let mut alarms: BTreeMap<String, AlarmDef> = BTreeMap::new();
        let mut by_primary: BTreeMap<String, Vec<Event>> = BTreeMap::new();
        for e in &evs {
            if e.is_effective_change() {
                if let Some(p) = e.resources.first() {
                    by_primary.entry(p.clone()).or_default().push((*e).clone());
                }
            }
            if let Some((name, namespace, metric)) = super::alarm_definition(e) {
                alarms.insert(name, AlarmDef { namespace, metric });
            }
        }
        let mut df: BTreeMap<String, u32> = BTreeMap::new();
        let mut names = 0u32;
        let mut add = |text: &str| {
            names += 1;
            for t in name_tokens(text) {
                *df.entry(t).or_default() += 1;
            }
        };
        for id in 0..graph.len() as u32 {
            add(key_tail(graph.name(id)));
        }
        for name in alarms.keys() {
            add(name);
        }
        Memory {
            graph,
            df,
            names,
            alarms,
            by_primary,
        }
    }
}

/// The name part of a resource key (`lb/web` -> `web`): what naming statistics count.
pub fn key_tail(key: &str) -> &str {
    key.split_once('/').map(|x| x.1).unwrap_or(key)
}

impl Knowledge for Memory {
    fn known(&self, key: &str) -> bool {
        self.graph.id(key).is_some()
    }

    fn neighbours(&self, key: &str, at_most: usize) -> Option<Vec<String>> {
        let all = self.graph.neighbours(key);
        (all.len() <= at_most).then(|| {
            let mut v: Vec<String> = all.into_iter().map(str::to_string).collect();
            v.sort();
            v
        })
    }

    fn linked(&self, a: &str, b: &str) -> bool {
        self.graph.neighbours(a).contains(&b)
    }

    fn token_df(&self, token: &str) -> u32 {
        self.df.get(token).copied().unwrap_or(0)
    }

    fn names(&self) -> u32 {
        self.names
    }

    fn alarm_definition(&self, alarm: &str) -> Option<AlarmDef> {
        self.alarms.get(alarm).cloned()
    }

    fn earlier_changes(&self, resource: &str, before: i64, limit: usize) -> Vec<Event> {
        self.by_primary
            .get(resource)
            .map(|v| {
                v.iter()
                    .rev()
                    .filter(|e| e.event_time < before)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}
