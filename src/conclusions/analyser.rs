//! The analyser: keeps the engine's conclusions current, incrementally, without ever
//! reading the whole log.
//!
//! Its state (the seq it has analysed up to, and the incident detector's open incidents
//! and recent transitions) is a checkpoint written in the same transaction as the
//! conclusions it appends, so a process killed mid-step redoes that step and nothing
//! else. A step:
//!
//! 1. reads the newest upstream seq first (an event appended while the step runs is
//!    left to the next step, never marked as seen unread);
//! 2. brings the projections up to it (`project::catch_up`);
//! 3. feeds the new alarm transitions to the detector (an index read of alarms only);
//! 4. ranks each incident that changed, and each open incident whose look-back window
//!    received events, from the events of its window (a time-index range) and what the
//!    projections know ([`StoreKnowledge`]);
//! 5. appends the conclusions with the new state.
//!
//! `replay`, `incidents`, `hypotheses`, the server and the GitHub worker all run this.

use super::{latest_upstream_seq, to_events, ConclusionError};
use crate::correlate::{self, Analysis, Config, Detector, Found, Knowledge};
use crate::model::Event;
use crate::store::{Checkpoint, EventLog, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// Names what the analyser was doing when a store operation failed.
trait During<T> {
    fn during(self, stage: impl FnOnce() -> String) -> Result<T, ConclusionError>;
}

impl<T> During<T> for Result<T, StoreError> {
    fn during(self, stage: impl FnOnce() -> String) -> Result<T, ConclusionError> {
        self.map_err(|source| ConclusionError::Analyser {
            stage: stage(),
            source,
        })
    }
}

/// The analyser's checkpoint name.
pub const ANALYSER: &str = "analyser";
/// Alarm events fed per step, at most (the first step on a large store takes several).
const ALARMS_PER_STEP: i64 = 50_000;
/// Read beyond an incident's window on both sides, so that the deliveries of a
/// transition at its edge are all read (an EventBridge envelope time is truncated).
const WINDOW_MARGIN_MS: i64 = 2 * 60 * 1000;

/// What the analyser keeps between steps.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Every upstream event up to this seq has been analysed.
    upto: i64,
    detector: Detector,
    /// Incidents changed by transitions already fed, still to rank, first first.
    #[serde(default)]
    pending: Vec<Found>,
    /// Open incidents whose window received events since they were last ranked.
    #[serde(default)]
    stale: BTreeSet<String>,
}

impl State {
    /// The stale incident to rank again (the earliest opened that `due` allows), removed
    /// from the set; `None` when none is due. Stale incidents no longer open are
    /// dropped: they were queued and ranked when they closed.
    fn next_stale(&mut self, due: impl Fn(&str) -> bool) -> Option<Found> {
        let open: BTreeSet<&str> = self.detector.open().iter().map(|f| f.id.as_str()).collect();
        self.stale.retain(|id| open.contains(id.as_str()));
        let found = self
            .detector
            .open()
            .iter()
            .filter(|f| self.stale.contains(&f.id) && due(&f.id))
            .min_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)))
            .cloned();
        if let Some(f) = &found {
            self.stale.remove(&f.id);
        }
        found
    }
}

/// Knowledge read from the store's projections and indexes, for the engine running on a
/// blocking thread. A read that fails is remembered (the engine sees nothing there) and
/// fails the step.
pub struct StoreKnowledge {
    store: Store,
    handle: tokio::runtime::Handle,
    failed: RefCell<Option<StoreError>>,
    /// Store reads made, by what they read (for the debug log).
    reads: RefCell<BTreeMap<&'static str, u64>>,
}

impl StoreKnowledge {
    fn new(store: Store, handle: tokio::runtime::Handle) -> Self {
        StoreKnowledge {
            store,
            handle,
            failed: RefCell::new(None),
            reads: RefCell::new(BTreeMap::new()),
        }
    }

    fn read<T: Default>(
        &self,
        what: &'static str,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> T {
        *self.reads.borrow_mut().entry(what).or_default() += 1;
        match self.handle.block_on(f) {
            Ok(v) => v,
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                T::default()
            }
        }
    }
}

impl Knowledge for StoreKnowledge {
    fn known(&self, key: &str) -> bool {
        self.read("graph_has", self.store.graph_has(key))
    }

    fn neighbours(&self, key: &str, at_most: usize) -> Option<Vec<String>> {
        self.neighbours_many(&[key.to_string()], at_most)
            .pop()
            .unwrap_or_default()
    }

    fn neighbours_many(&self, keys: &[String], at_most: usize) -> Vec<Option<Vec<String>>> {
        use correlate::topology::{named_workloads, workload_name};
        if keys.is_empty() {
            return Vec::new();
        }
        let edges = self.read(
            "graph_edges_of",
            self.store.graph_edges_of_many(keys, at_most),
        );
        // Relations by name (`ResourceGraph::link_by_name`), read from the nodes.
        let named: Vec<String> = keys.iter().flat_map(|k| named_workloads(k)).collect();
        let present = if named.is_empty() {
            BTreeSet::new()
        } else {
            self.read("graph_has", self.store.graph_has_many(&named))
        };
        let names: BTreeSet<&str> = keys.iter().filter_map(|k| workload_name(k)).collect();
        let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if !names.is_empty() {
            let names: Vec<String> = names.into_iter().map(str::to_string).collect();
            for (name, node) in self.read(
                "graph_nodes_with_tail",
                self.store.graph_nodes_with_tails(&names),
            ) {
                by_name.entry(name).or_default().push(node);
            }
        }
        keys.iter()
            .enumerate()
            .map(|(i, key)| {
                // `None` from the edges: a hub (a failed read is remembered and fails
                // the step).
                let mut all: BTreeSet<String> = edges
                    .get(i)
                    .cloned()
                    .unwrap_or(Some(Vec::new()))?
                    .into_iter()
                    .collect();
                all.extend(
                    named_workloads(key)
                        .into_iter()
                        .filter(|k| present.contains(k)),
                );
                if let Some(nodes) = workload_name(key).and_then(|n| by_name.get(n)) {
                    all.extend(nodes.iter().cloned());
                }
                all.remove(key);
                (all.len() <= at_most).then(|| all.into_iter().collect())
            })
            .collect()
    }

    fn linked(&self, a: &str, b: &str) -> bool {
        // Relations by name (`ResourceGraph::link_by_name`), then the edges.
        if correlate::topology::named_pair(a, b)
            && self.read("graph_has", self.store.graph_has(b))
            && self.read("graph_has", self.store.graph_has(a))
        {
            return true;
        }
        self.read("graph_edge", self.store.graph_edge(a, b))
            .is_some()
    }

    fn linked_among(&self, xs: &[String], ys: &[String]) -> BTreeSet<(String, String)> {
        if xs.is_empty() || ys.is_empty() {
            return BTreeSet::new();
        }
        let mut out = self.read("graph_edges_among", self.store.graph_edges_among(xs, ys));
        // Relations by name: few pairs, each checked on its own.
        for x in xs {
            for y in ys {
                if correlate::topology::named_pair(x, y) && self.linked(x, y) {
                    out.insert((x.clone(), y.clone()));
                }
            }
        }
        out
    }

    fn token_df(&self, token: &str) -> u32 {
        u32::try_from(self.read("name_token_df", self.store.name_token_df(token)))
            .unwrap_or(u32::MAX)
    }

    fn names(&self) -> u32 {
        self.token_df("")
    }

    fn alarm_definition(&self, alarm: &str) -> Option<correlate::AlarmDef> {
        self.read("alarm_definition", self.store.alarm_definition(alarm))
            .map(|m| correlate::AlarmDef {
                namespace: m.namespace,
                metric: m.metric,
            })
    }

    fn earlier_changes(&self, resource: &str, before: i64, limit: usize) -> Vec<Event> {
        self.read(
            "earlier_changes",
            self.store.earlier_changes(resource, before, limit),
        )
    }
}

/// Runs `f` with the store's knowledge on a blocking thread (off the async workers that
/// serve requests).
async fn with_knowledge<T: Send + 'static>(
    store: &Store,
    what: &str,
    f: impl FnOnce(&StoreKnowledge) -> T + Send + 'static,
) -> Result<T, ConclusionError> {
    let store = store.clone();
    let handle = tokio::runtime::Handle::current();
    let what_done = what.to_string();
    let (out, failed) = tokio::task::spawn_blocking(move || {
        let k = StoreKnowledge::new(store, handle);
        let t0 = std::time::Instant::now();
        let out = f(&k);
        tracing::debug!(
            reads = k.reads.borrow().values().sum::<u64>(),
            by = ?k.reads.borrow(),
            ms = t0.elapsed().as_millis() as u64,
            "Engine read the store to {what_done}"
        );
        (out, k.failed.into_inner())
    })
    .await
    .map_err(|e| ConclusionError::Engine(e.to_string()))?;
    match failed {
        Some(e) => Err(e).during(|| format!("read what the engine needed to {what}")),
        None => Ok(out),
    }
}

async fn load_state(store: &Store) -> Result<State, ConclusionError> {
    let Some(cp) = store
        .checkpoint(ANALYSER)
        .await
        .during(|| "read its checkpoint".into())?
    else {
        return Ok(State::default());
    };
    serde_json::from_str(&cp.value).map_err(|e| {
        ConclusionError::Invalid(format!("the analyser's checkpoint does not decode ({e})"))
    })
}

/// A dry run's own state: kept in memory, never recorded.
#[derive(Debug, Default)]
struct Dry {
    state: Option<State>,
    incidents: std::collections::BTreeMap<String, correlate::Incident>,
}

/// Keeps the conclusions current (see the module's documentation).
#[derive(Debug, Default)]
pub struct Analyser {
    config: Config,
    dry: Option<Dry>,
    /// A stale incident ranked less than this long ago waits (`None`: never waits).
    rerank_after: Option<std::time::Duration>,
    /// When this analyser last ranked each incident (in this process only).
    ranked_at: BTreeMap<String, std::time::Instant>,
    /// The window of the incident queued next, being read while this step ranks.
    ahead: Option<Ahead>,
}

/// A window read ahead: the events of [from, to] as read after `latest` was the newest
/// upstream seq. A step may use it only when that seq is still the newest (so nothing
/// has arrived that the read may have missed) and its incident's window is the same.
#[derive(Debug)]
struct Ahead {
    latest: i64,
    range: (i64, i64),
    read: tokio::task::JoinHandle<Result<Vec<Event>, StoreError>>,
}

/// The range of events read to rank `found`: its window and a margin on both sides.
fn read_range(found: &Found, config: &Config) -> (i64, i64) {
    let (from, to) = found.window(config);
    (
        from.saturating_sub(WINDOW_MARGIN_MS),
        to.saturating_add(WINDOW_MARGIN_MS),
    )
}

impl Analyser {
    pub fn new(config: Config) -> Self {
        Analyser {
            config,
            ..Default::default()
        }
    }

    /// The server's analyser: an open incident whose window keeps receiving events is
    /// ranked again at most once per `every` (new incidents never wait), so a busy
    /// estate's open incidents do not keep the engine busy back to back. Replays and
    /// the CLI rank every stale incident at once (no wait: their results depend only on
    /// the log).
    pub fn rerank_after(mut self, every: std::time::Duration) -> Self {
        self.rerank_after = (!every.is_zero()).then_some(every);
        self
    }

    /// True when a stale incident may be ranked again now.
    fn due(&self, id: &str) -> bool {
        match (self.rerank_after, self.ranked_at.get(id)) {
            (Some(every), Some(at)) => at.elapsed() >= every,
            _ => true,
        }
    }

    /// An analyser that records nothing: it starts from the recorded state and keeps
    /// its own in memory ([`Analyser::dry_incidents`]).
    pub fn dry_run() -> Self {
        Analyser {
            dry: Some(Dry::default()),
            ..Default::default()
        }
    }

    /// A dry run's latest incidents, by id (empty when recording).
    pub fn dry_incidents(&self) -> impl Iterator<Item = &correlate::Incident> {
        self.dry.iter().flat_map(|d| d.incidents.values())
    }

    /// The seq up to which upstream events have been analysed.
    pub async fn analysed_up_to(store: &Store) -> Result<i64, ConclusionError> {
        Ok(load_state(store).await?.upto)
    }

    /// Steps until every upstream event is analysed; returns the number of steps.
    pub async fn run_to_end(&mut self, store: &Store) -> Result<usize, ConclusionError> {
        let mut steps = 0;
        while self.step(store).await?.is_some() {
            steps += 1;
        }
        Ok(steps)
    }

    /// One step: the incident it ranked (its conclusions appended), `None` when
    /// nothing new had arrived and nothing is left to rank.
    ///
    /// New alarm transitions are fed to the detector first, and the incidents they
    /// changed go to the front of the queue of incidents to rank; open incidents whose
    /// window received events are marked stale and ranked again once that queue is
    /// empty. A step ranks one incident and commits it with the state, so the incident of
    /// a new alarm waits for at most one ranking in progress, never for a whole
    /// re-analysis, and a process killed mid-way loses at most one ranking.
    pub async fn step(&mut self, store: &Store) -> Result<Option<Analysis>, ConclusionError> {
        let latest = latest_upstream_seq(store)
            .await
            .during(|| "read the newest event's seq".into())?;
        let mut state = match self.dry.as_mut().and_then(|d| d.state.take()) {
            Some(s) => s,
            None => load_state(store).await?,
        };
        let fed = state.upto < latest;
        if fed {
            state = self.feed(store, state, latest).await?;
        }
        let next = match state.pending.is_empty() {
            false => Some(state.pending.remove(0)),
            true => state.next_stale(|id| self.due(id)),
        };
        if next.is_none() && !fed {
            if let Some(dry) = self.dry.as_mut() {
                dry.state = Some(state);
            }
            return Ok(None);
        }
        let mut incidents = Vec::new();
        if let Some(found) = next {
            let id = found.id.clone();
            let ready = self.take_ahead(latest, read_range(&found, &self.config));
            // The next queued incident's window is read while this one is ranked (a
            // read on the read pool beside a ranking on a blocking thread).
            self.ahead = state.pending.first().map(|f| {
                let (store, range) = (store.clone(), read_range(f, &self.config));
                Ahead {
                    latest,
                    range,
                    read: tokio::spawn(async move { store.window_events(range.0, range.1).await }),
                }
            });
            incidents.push(self.rank(store, found, ready).await?);
            if self.rerank_after.is_some() {
                self.ranked_at.insert(id, std::time::Instant::now());
                let open: BTreeSet<&str> = state
                    .detector
                    .open()
                    .iter()
                    .map(|f| f.id.as_str())
                    .collect();
                self.ranked_at.retain(|id, _| open.contains(id.as_str()));
            }
        }
        let analysis = Analysis { incidents };
        if let Some(dry) = self.dry.as_mut() {
            for inc in &analysis.incidents {
                dry.incidents.insert(inc.id.clone(), inc.clone());
            }
            dry.state = Some(state);
            return Ok(Some(analysis));
        }
        let value = serde_json::to_string(&state)
            .map_err(|e| ConclusionError::Invalid(format!("cannot record the analyser: {e}")))?;
        store
            .append(
                &to_events(&analysis),
                Some(&Checkpoint {
                    name: ANALYSER.into(),
                    value,
                }),
            )
            .await
            .during(|| "append its conclusions".into())?;
        Ok(Some(analysis))
    }

    /// Brings the projections up to `latest`, feeds the new alarm transitions (at most
    /// [`ALARMS_PER_STEP`]) to the detector, queues the incidents they changed in front
    /// of the others, and marks stale the open incidents whose window received events
    /// the ranking reads.
    async fn feed(
        &self,
        store: &Store,
        state: State,
        latest: i64,
    ) -> Result<State, ConclusionError> {
        let started = std::time::Instant::now();
        let projected = crate::project::catch_up(store, crate::project::BATCH)
            .await
            .during(|| "bring the projections up to date".into())?;
        tracing::debug!(
            events = projected.events,
            ms = started.elapsed().as_millis() as u64,
            "Projections caught up"
        );
        let before = state.upto;
        let alarms = store
            .alarm_events(before, latest, ALARMS_PER_STEP)
            .await
            .during(|| "read the new alarm transitions".into())?;
        let upto = match alarms.last() {
            Some(last) if alarms.len() as i64 >= ALARMS_PER_STEP => last.seq,
            _ => latest,
        };
        let config = self.config.clone();
        let mut detector = state.detector;
        let (detector, mut touched, saturating) =
            with_knowledge(store, "detect incidents", move |k| {
                let touched = detector.feed(&alarms, k, &config);
                let saturating = correlate::saturation_alarm_times(&alarms, k);
                (detector, touched, saturating)
            })
            .await?;
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            changed = touched.len(),
            "Alarm transitions fed"
        );
        touched.sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
        let ids: BTreeSet<String> = touched.iter().map(|f| f.id.clone()).collect();
        let mut stale = state.stale;
        stale.retain(|id| !ids.contains(id));
        let mut pending = touched;
        pending.extend(state.pending.into_iter().filter(|f| !ids.contains(&f.id)));
        let queued: BTreeSet<&str> = pending.iter().map(|f| f.id.as_str()).collect();
        let mut newly_stale = Vec::new();
        for inc in detector.open() {
            if queued.contains(inc.id.as_str()) || stale.contains(&inc.id) {
                continue;
            }
            let (from, to) = inc.window(&self.config);
            // New candidates in its window: events other than alarm transitions, and
            // saturation alarms going off (other transitions change nothing there).
            if saturating.iter().any(|t| (from..=to).contains(t))
                || store
                    .upstream_between(before, upto, from, to)
                    .await
                    .during(|| format!("look for new events in the window of {}", inc.id))?
            {
                newly_stale.push(inc.id.clone());
            }
        }
        stale.extend(newly_stale);
        Ok(State {
            upto,
            detector,
            pending,
            stale,
        })
    }

    /// The window read ahead, when it was read for `range` with `latest` the newest
    /// upstream seq; any other read ahead is stopped.
    fn take_ahead(
        &mut self,
        latest: i64,
        range: (i64, i64),
    ) -> Option<tokio::task::JoinHandle<Result<Vec<Event>, StoreError>>> {
        let ahead = self.ahead.take()?;
        if ahead.latest == latest && ahead.range == range {
            return Some(ahead.read);
        }
        ahead.read.abort();
        None
    }

    /// Ranks one incident from the events of its window (`ready`: that window's read,
    /// started ahead).
    async fn rank(
        &self,
        store: &Store,
        found: Found,
        ready: Option<tokio::task::JoinHandle<Result<Vec<Event>, StoreError>>>,
    ) -> Result<correlate::Incident, ConclusionError> {
        let (from, to) = read_range(&found, &self.config);
        let t0 = std::time::Instant::now();
        let id = found.id.clone();
        let read_ahead = match ready {
            // A read that panicked or was cancelled is done again here.
            Some(read) => read.await.ok(),
            None => None,
        };
        let ahead = read_ahead.is_some();
        let window = match read_ahead {
            Some(read) => read,
            None => store.window_events(from, to).await,
        }
        .during(|| format!("read the window of {id}"))?;
        let (read_ms, events) = (t0.elapsed().as_millis() as u64, window.len());
        let config = self.config.clone();
        let inc = with_knowledge(store, &format!("rank {id}"), move |k| {
            correlate::rank_incident(&window, k, found, &config)
        })
        .await?;
        tracing::debug!(
            incident = %inc.id,
            events,
            read_ms,
            ahead,
            rank_ms = (t0.elapsed().as_millis() as u64).saturating_sub(read_ms),
            "Incident ranked"
        );
        Ok(inc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlate::report_json;

    const SCENARIO: &str = "fixtures/scenarios/train/asg-scale-in-1.jsonl.gz";

    async fn scenario_store(dir: &std::path::Path, name: &str) -> Store {
        let url = format!("sqlite://{}", dir.join(name).display());
        let store = Store::open(&url).await.unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCENARIO);
        let summary = crate::ingest::ingest_files(&store, &[path], false)
            .await
            .unwrap();
        assert!(summary.appended > 800, "{summary:?}");
        store
    }

    /// Waits for the read ahead to finish, so that what follows cannot reach it.
    async fn settle(analyser: &mut Analyser) -> (i64, i64) {
        let ahead = analyser.ahead.take().expect("a window read ahead");
        let read = ahead.read.await.unwrap();
        let range = ahead.range;
        analyser.ahead = Some(Ahead {
            read: tokio::spawn(async move { read }),
            ..ahead
        });
        range
    }

    /// The next incident's window, read while a step ranks, gives the conclusions a
    /// read at its own step gives; an event that arrives after it was read is not lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_window_read_ahead_is_used_only_while_nothing_has_arrived() {
        let dir = tempfile::tempdir().unwrap();
        let reference = scenario_store(dir.path(), "reference.db").await;
        // Ranked without reading ahead: each step alone, with a new analyser.
        while Analyser::default()
            .step(&reference)
            .await
            .unwrap()
            .is_some()
        {}
        let expected = crate::conclusions::load_analysis(&reference).await.unwrap();
        assert_eq!(expected.incidents.len(), 3, "{expected:#?}");

        let quiet = scenario_store(dir.path(), "quiet.db").await;
        let mut analyser = Analyser::default();
        analyser
            .step(&quiet)
            .await
            .unwrap()
            .expect("a first ranking");
        settle(&mut analyser).await;
        analyser.run_to_end(&quiet).await.unwrap();
        let got = crate::conclusions::load_analysis(&quiet).await.unwrap();
        assert_eq!(report_json(&got), report_json(&expected));

        // The second incident's likeliest cause, copied under a new id, arrives after
        // its window was read ahead: the ranking must see the copy.
        let second = &expected.incidents[1];
        let cause = &second.hypotheses[0].cause;
        assert_eq!(cause.source, "cloudtrail", "{second:#?}");
        let busy = scenario_store(dir.path(), "busy.db").await;
        let mut analyser = Analyser::default();
        let first = analyser
            .step(&busy)
            .await
            .unwrap()
            .expect("a first ranking");
        assert_eq!(first.incidents[0].id, expected.incidents[0].id);
        let (from, to) = settle(&mut analyser).await;
        let original = crate::store::EventLog::query(&busy, &crate::store::EventFilter::default())
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.natural_id == cause.id)
            .unwrap();
        assert!((from..=to).contains(&original.event_time));
        let probe = "read-ahead-probe-0001";
        let line = serde_json::json!({
            "source": "cloudtrail",
            "payload": serde_json::from_str::<serde_json::Value>(
                &original.payload.replace(&cause.id, probe)
            )
            .unwrap(),
        });
        let copy = crate::ingest::recording_line(line.to_string().as_bytes()).unwrap();
        busy.append(&[copy], None).await.unwrap();
        let next = analyser
            .step(&busy)
            .await
            .unwrap()
            .expect("a second ranking");
        assert_eq!(next.incidents[0].id, second.id);
        let cited = serde_json::to_string(&next.incidents[0]).unwrap();
        assert!(cited.contains(probe), "the copy is not among {cited}");
    }
}
