//! The projector: keeps the projections (the resource graph, alarm definitions, alarm
//! states; migrations/0005) current from the event log. It reads the events after the
//! projections' checkpoint in seq order, in batches, computes what they add
//! ([`delta_of`], the same extraction the engine uses: `topology::links_of`,
//! `correlate::alarm_definition`) and writes it with the new checkpoint in one
//! transaction. A projector killed anywhere leaves projections that match a prefix of
//! the log, and the next run continues from there; [`rebuild`] empties them and applies
//! the whole log again. The log stays the source of truth.

use crate::correlate::knowledge::key_tail;
use crate::correlate::topology::{links_of, log_group_tail, name_tokens};
use crate::model::Source;
use crate::model::{Event, Kind};
use crate::store::{
    AlarmMetric, AlarmState, EventLog, MarkHit, ProjectionDelta, Store, StoreError, MINUTE_MS,
};

/// Events read per transaction.
pub const BATCH: i64 = 20_000;

/// What a projector run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProjectReport {
    /// Events applied.
    pub events: u64,
    /// Transactions written.
    pub batches: u64,
    /// The checkpoint reached.
    pub upto: i64,
}

/// What `events` add to the projections.
pub fn delta_of(events: &[Event]) -> ProjectionDelta {
    let mut d = ProjectionDelta::default();
    for e in events {
        add(&mut d, e);
    }
    name(&mut d);
    d
}

/// The words of each node's and alarm's name (what the engine's naming statistics
/// count) and each log group's name tail (what relates it to a workload named alike).
fn name(d: &mut ProjectionDelta) {
    for key in d.nodes.keys() {
        let words = name_tokens(key_tail(key)).into_iter().collect();
        d.names.node_tokens.insert(key.clone(), words);
        if let Some(tail) = log_group_tail(key) {
            d.names.node_tails.insert(key.clone(), tail.to_string());
        }
    }
    for alarm in d.alarm_definitions.keys() {
        let words = name_tokens(alarm).into_iter().collect();
        d.names.alarm_tokens.insert(alarm.clone(), words);
    }
}

/// Whether the incident picture counts `e`: what a ranking reads (the predicate of the
/// store's `events_window` index). The incident's own alarms are drawn as bands instead
/// (`store::MarkFilter::band_lanes`).
pub fn in_picture(e: &Event) -> bool {
    e.source != Source::Rootline
        && !matches!(e.kind, Kind::Log { .. })
        && !(matches!(e.kind, Kind::Change) && e.read_only && e.error_code.is_none())
}

fn add(d: &mut ProjectionDelta, e: &Event) {
    let (seq, time) = (e.seq, e.event_time);
    if in_picture(e) {
        d.marks.push(MarkHit {
            seq,
            minute: time.div_euclid(MINUTE_MS),
            lane: e.resources.first().cloned().unwrap_or_default(),
            kind: e.kind.tag(),
            source: e.source.as_str(),
            failed: e.error_code.is_some(),
            event_time: time,
            name: e.name.clone(),
        });
    }
    let links = links_of(e);
    for n in &links.nodes {
        d.node(n, seq, time);
    }
    for (a, b) in &links.edges {
        d.node(a, seq, time);
        d.node(b, seq, time);
        d.edge(a, b, seq, time);
    }
    if let Some((alarm, namespace, metric)) = crate::correlate::alarm_definition(e) {
        d.alarm_definition(&alarm, AlarmMetric { namespace, metric }, seq, time);
    }
    if let Kind::Alarm {
        alarm,
        old_state,
        new_state,
        ..
    } = &e.kind
    {
        if !alarm.is_empty() && !new_state.is_empty() {
            let st = AlarmState {
                state: new_state.clone(),
                old_state: old_state.clone(),
            };
            d.alarm_state(alarm, st, seq, time);
        }
    }
}

/// Applies every event after the projections' checkpoint, `batch` events per
/// transaction. The next batch is read (on the read pool) while the current one is
/// written (on the writer): the two ran strictly in turn, and each is about half of
/// the projector's time.
pub async fn catch_up(store: &Store, batch: i64) -> Result<ProjectReport, StoreError> {
    let mut report = ProjectReport {
        upto: store.projection_checkpoint().await?,
        ..Default::default()
    };
    let mut events = read_batch(store, report.upto, batch).await?;
    while let Some(last) = events.last().map(|e| e.seq) {
        let delta = delta_of(&events);
        let apply = async {
            if store.keeps_search_index() {
                store
                    .apply_projection_and_search(&delta, &events, last)
                    .await
            } else {
                store.apply_projection(&delta, last).await
            }
        };
        let (applied, next) = tokio::join!(apply, read_batch(store, last, batch));
        applied?;
        report.events += events.len() as u64;
        report.batches += 1;
        report.upto = last;
        events = next?;
    }
    Ok(report)
}

/// Runs `work`, which appends to `store`, with the projector following the log beside
/// it (another task: its reads and its share of the writer overlap the appends instead
/// of coming after them) and bringing the projections up to the log's end: what
/// `rootline ingest` and `replay` do. Returns
/// `work`'s output, or the projector's error once `work` is done.
pub async fn alongside<T>(
    store: &Store,
    work: impl std::future::Future<Output = T>,
) -> Result<T, StoreError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let working = std::sync::Arc::new(AtomicBool::new(true));
    let follower = {
        let (store, working) = (store.clone(), working.clone());
        tokio::spawn(async move {
            loop {
                // Read before the catch-up: the round that sees `work` done reaches
                // everything it appended.
                let last = !working.load(Ordering::Acquire);
                catch_up(&store, BATCH).await?;
                if last {
                    return Ok::<_, StoreError>(());
                }
                // Caught up with what is committed: wait for more.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };
    /// Tells the follower that `work` is over, also when `work` panics or the call is
    /// dropped (it would otherwise poll the log for ever).
    struct Over(std::sync::Arc<AtomicBool>);
    impl Drop for Over {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }
    let over = Over(working);
    let out = work.await;
    drop(over);
    match follower.await {
        Ok(followed) => followed?,
        // It panicked, having committed whole batches only (one transaction each).
        Err(_) => {
            catch_up(store, BATCH).await?;
        }
    }
    Ok(out)
}

/// Up to `batch` events after `after`, in seq order, without payloads except where
/// [`delta_of`] reads them (events that may define an alarm).
async fn read_batch(store: &Store, after: i64, batch: i64) -> Result<Vec<Event>, StoreError> {
    let mut events = store.events_after_bare(after, batch).await?;
    for e in events
        .iter_mut()
        .filter(|e| crate::correlate::may_define_alarm(e))
    {
        if let Some(full) = store.get(e.seq).await? {
            e.payload = full.payload;
        }
    }
    Ok(events)
}

/// Empties the projections and applies the whole log again.
pub async fn rebuild(store: &Store, batch: i64) -> Result<ProjectReport, StoreError> {
    store.reset_projections().await?;
    catch_up(store, batch).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;

    fn event(seq: i64, time: i64, resources: &[&str], kind: Kind) -> Event {
        Event {
            seq,
            source: Source::CloudTrail,
            natural_id: format!("id-{seq}"),
            event_time: time,
            received_at: None,
            kind,
            name: "AuthorizeSecurityGroupIngress".into(),
            actor: None,
            read_only: false,
            error_code: None,
            resources: resources.iter().map(|r| r.to_string()).collect(),
            payload: "{}".into(),
        }
    }

    #[test]
    fn edges_are_stored_once_with_their_first_and_last_sighting() {
        let evs = [
            event(1, 5_000, &["sg/sg-1", "lb/web"], Kind::Change),
            event(2, 1_000, &["lb/web", "sg/sg-1"], Kind::Change),
            event(3, 9_000, &["lb/web", "sg/sg-1", "tg/web"], Kind::Change),
        ];
        let d = delta_of(&evs);
        let e = d.edges[&("lb/web".to_string(), "sg/sg-1".to_string())];
        assert_eq!(
            (e.first_seq, e.last_seq, e.first_time, e.last_time),
            (1, 3, 1_000, 9_000)
        );
        assert_eq!(d.edges.len(), 2, "{:?}", d.edges);
        assert_eq!(d.nodes.len(), 3);
        // A failed call states no relation.
        let mut failed = event(4, 10_000, &["sg/sg-9", "lb/web"], Kind::Change);
        failed.error_code = Some("AccessDenied".into());
        assert!(delta_of(&[failed]).edges.is_empty());
    }

    #[test]
    fn the_latest_transition_by_event_time_wins_whatever_the_arrival_order() {
        let alarm = |state: &str, old: &str| Kind::Alarm {
            alarm: "web-5xx".into(),
            old_state: old.into(),
            new_state: state.into(),
            reason: String::new(),
        };
        let evs = [
            event(1, 2_000, &["alarm/web-5xx"], alarm("OK", "ALARM")),
            event(2, 1_000, &["alarm/web-5xx"], alarm("ALARM", "OK")),
        ];
        let d = delta_of(&evs);
        let st = &d.alarm_states["web-5xx"];
        assert_eq!((st.value.state.as_str(), st.seq), ("OK", 1));
    }
}
