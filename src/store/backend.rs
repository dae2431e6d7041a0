//! [`Store`]: the one store type the rest of rootline uses, SQLite or PostgreSQL by the
//! database URL. Every operation is the backend's own; this only dispatches.

use super::leases::{LeaseRow, Leases};
use super::marks::{MarkFilter, MarkGrid, WindowPicture};
use super::projections::AlarmMetric;
use super::{
    AppendOutcome, Checkpoint, EventFilter, EventLog, PgStore, ProjectionDelta, ProjectionState,
    Result, SearchIndexSize, SessionRow, SqliteStore, User,
};
use crate::model::{Event, NewEvent, Source};
use std::collections::{BTreeMap, BTreeSet};

/// A store on either backend.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// `Store::method(args)` for each backend's method of the same name and signature.
macro_rules! dispatch {
    ($(
        $(#[$doc:meta])*
        fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty;
    )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Store::Sqlite(s) => s.$name($($arg),*).await,
                        Store::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

dispatch! {
    /// Closes the store's connections.
    fn close(&self) -> ();
    /// The last seq every projection has applied.
    fn projection_checkpoint(&self) -> Result<i64>;
    /// Writes a projection delta and moves the checkpoints to `upto`.
    fn apply_projection(&self, delta: &ProjectionDelta, upto: i64) -> Result<()>;
    /// [`Store::apply_projection`] and the search index, in one transaction.
    fn apply_projection_and_search(&self, delta: &ProjectionDelta, events: &[Event], upto: i64) -> Result<()>;
    /// Adds events to the search index alone.
    fn apply_search(&self, events: &[Event], upto: i64) -> Result<()>;
    /// Empties every projection and the search index.
    fn reset_projections(&self) -> Result<()>;
    /// Empties the search index alone.
    fn reset_search(&self) -> Result<()>;
    /// The search index's checkpoint.
    fn search_checkpoint(&self) -> Result<i64>;
    /// What the search index takes.
    fn search_index_size(&self) -> Result<SearchIndexSize>;
    /// Each projection's checkpoint and its rows per table.
    fn projection_sizes(&self) -> Result<(BTreeMap<String, i64>, BTreeMap<String, i64>)>;
    /// Every projection, read back.
    fn projection_state(&self) -> Result<ProjectionState>;
    /// True when the resource graph has `key` as a node.
    fn graph_has(&self, key: &str) -> Result<bool>;
    /// Each key's neighbours, `None` past `at_most`.
    fn graph_edges_of_many(&self, keys: &[String], at_most: usize) -> Result<Vec<Option<Vec<String>>>>;
    /// Which of `keys` are nodes of the graph.
    fn graph_has_many(&self, keys: &[String]) -> Result<BTreeSet<String>>;
    /// Log group nodes by name tail.
    fn graph_nodes_with_tails(&self, tails: &[String]) -> Result<Vec<(String, String)>>;
    /// The pairs of `xs` and `ys` an edge joins.
    fn graph_edges_among(&self, xs: &[String], ys: &[String]) -> Result<BTreeSet<(String, String)>>;
    /// When the graph first and last saw `a` and `b` linked.
    fn graph_edge(&self, a: &str, b: &str) -> Result<Option<(i64, i64)>>;
    /// In how many names a word appears.
    fn name_token_df(&self, token: &str) -> Result<i64>;
    /// An alarm's latest definition.
    fn alarm_definition(&self, alarm: &str) -> Result<Option<AlarmMetric>>;
    /// A resource's effective changes before `before`, latest first.
    fn earlier_changes(&self, resource: &str, before: i64, limit: usize) -> Result<Vec<Event>>;
    /// The events a ranking reads from its window.
    fn window_events(&self, from: i64, to: i64) -> Result<Vec<Event>>;
    /// Alarm transitions with seq in (after, upto].
    fn alarm_events(&self, after: i64, upto: i64, limit: i64) -> Result<Vec<Event>>;
    /// Whether a ranked window gained an upstream event.
    fn upstream_between(&self, after: i64, upto: i64, from: i64, to: i64) -> Result<bool>;
    /// The citable events among `refs`.
    fn find_cited(&self, refs: &[(Source, String)]) -> Result<Vec<Event>>;
    /// Events by seq, without payloads.
    fn events_bare(&self, seqs: &[i64]) -> Result<Vec<Event>>;
    /// Rootline's own events naming one of `keys`.
    fn rootline_naming(&self, prefix: &str, keys: &[String], before: i64, scan: i64, limit: i64) -> Result<Vec<Event>>;
    /// Transitions of some alarms in a window.
    fn alarm_transitions(&self, alarm_keys: &[String], from: i64, to: i64, limit: i64) -> Result<Vec<Event>>;
    /// An alarm's state when a window opens.
    fn alarm_state_before(&self, alarm_key: &str, before: i64) -> Result<Option<Event>>;
    /// What the projector reads: events after a seq, without payloads.
    fn events_after_bare(&self, after: i64, limit: i64) -> Result<Vec<Event>>;
    /// The counted marks of a window.
    fn window_picture(&self, g: &MarkGrid, f: &MarkFilter<'_>, fixed: &[String], busiest: usize) -> Result<WindowPicture>;
    /// Every lease.
    fn leases(&self) -> Result<Vec<LeaseRow>>;
    /// Adds a user.
    fn add_user(&self, name: &str, role: &str, hash: &str, now: i64) -> Result<bool>;
    /// Replaces a user's password hash.
    fn set_password(&self, name: &str, hash: &str) -> Result<bool>;
    /// Removes a user.
    fn remove_user(&self, name: &str) -> Result<bool>;
    /// Every user.
    fn users(&self) -> Result<Vec<User>>;
    /// A user's role and password hash.
    fn user_credentials(&self, name: &str) -> Result<Option<(String, String)>>;
    /// Stores a new session.
    fn create_session(&self, token_sha256: &str, user: &str, csrf: &str, now: i64, expires_at: i64) -> Result<()>;
    /// The live session of a token hash.
    fn session(&self, token_sha256: &str, now: i64) -> Result<Option<SessionRow>>;
    /// Ends a session.
    fn delete_session(&self, token_sha256: &str) -> Result<()>;
}

impl Store {
    /// Opens the store at `url`: PostgreSQL for `postgres://` and `postgresql://`,
    /// SQLite otherwise.
    pub async fn open(url: &str) -> Result<Store> {
        if super::is_postgres_url(url) {
            Ok(Store::Postgres(PgStore::open(url).await?))
        } else {
            Ok(Store::Sqlite(SqliteStore::open(url).await?))
        }
    }

    /// The SQLite store, when this is one.
    pub fn as_sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Store::Sqlite(s) => Some(s),
            Store::Postgres(_) => None,
        }
    }

    /// See [`SqliteStore::without_search_index`]; PostgreSQL keeps its index always.
    pub fn without_search_index(self) -> Self {
        match self {
            Store::Sqlite(s) => Store::Sqlite(s.without_search_index()),
            other => other,
        }
    }

    /// Whether the projector keeps the search index through this handle.
    pub fn keeps_search_index(&self) -> bool {
        match self {
            Store::Sqlite(s) => s.keeps_search_index(),
            Store::Postgres(s) => s.keeps_search_index(),
        }
    }

    /// Brings the planner's statistics up to date after a bulk load (PostgreSQL's
    /// `ANALYZE`, all tables: until autovacuum gets to freshly filled partitions, plans
    /// from empty statistics made some incident pages take seconds instead of
    /// milliseconds). Nothing on SQLite, whose reads name their indexes.
    pub async fn refresh_statistics(&self) -> Result<()> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(s) => s.analyze().await,
        }
    }

    /// Appends with the commit made durable before it returns (SQLite: a synced WAL;
    /// PostgreSQL commits are durable already).
    pub async fn append_durable(&self, events: &[NewEvent]) -> Result<AppendOutcome> {
        match self {
            Store::Sqlite(s) => s.append_durable(events).await,
            Store::Postgres(s) => s.append(events, None).await,
        }
    }
}

impl EventLog for Store {
    async fn append(
        &self,
        events: &[NewEvent],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AppendOutcome> {
        match self {
            Store::Sqlite(s) => s.append(events, checkpoint).await,
            Store::Postgres(s) => s.append(events, checkpoint).await,
        }
    }

    async fn append_moving(
        &self,
        events: &mut [NewEvent],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AppendOutcome> {
        match self {
            Store::Sqlite(s) => s.append_moving(events, checkpoint).await,
            Store::Postgres(s) => s.append_moving(events, checkpoint).await,
        }
    }

    async fn query(&self, filter: &EventFilter) -> Result<Vec<Event>> {
        match self {
            Store::Sqlite(s) => s.query(filter).await,
            Store::Postgres(s) => s.query(filter).await,
        }
    }

    async fn get(&self, seq: i64) -> Result<Option<Event>> {
        match self {
            Store::Sqlite(s) => s.get(seq).await,
            Store::Postgres(s) => s.get(seq).await,
        }
    }

    async fn find(&self, source: Source, natural_id: &str) -> Result<Option<Event>> {
        match self {
            Store::Sqlite(s) => s.find(source, natural_id).await,
            Store::Postgres(s) => s.find(source, natural_id).await,
        }
    }

    async fn find_at(
        &self,
        source: Source,
        natural_id: &str,
        event_time: i64,
    ) -> Result<Option<Event>> {
        match self {
            Store::Sqlite(s) => s.find_at(source, natural_id, event_time).await,
            Store::Postgres(s) => s.find_at(source, natural_id, event_time).await,
        }
    }

    async fn count(&self) -> Result<i64> {
        match self {
            Store::Sqlite(s) => s.count().await,
            Store::Postgres(s) => s.count().await,
        }
    }

    async fn max_seq(&self) -> Result<i64> {
        match self {
            Store::Sqlite(s) => s.max_seq().await,
            Store::Postgres(s) => s.max_seq().await,
        }
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>> {
        match self {
            Store::Sqlite(s) => s.checkpoint(name).await,
            Store::Postgres(s) => s.checkpoint(name).await,
        }
    }
}

impl Leases for Store {
    async fn lease_hold(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        match self {
            Store::Sqlite(s) => s.lease_hold(name, holder, now, ttl_ms).await,
            Store::Postgres(s) => s.lease_hold(name, holder, now, ttl_ms).await,
        }
    }

    async fn lease_release(&self, name: &str, holder: &str) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.lease_release(name, holder).await,
            Store::Postgres(s) => s.lease_release(name, holder).await,
        }
    }
}
