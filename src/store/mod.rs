//! The event log: append-only, idempotent on (source, natural id), gap-free sequence
//! numbers, with checkpoints committed in the same transaction as the events they cover.
//!
//! `EventLog` is the interface; [`Store`] is the one store type callers use: SQLite
//! (`SqliteStore`, the embedded default) or PostgreSQL (`PgStore`), chosen by the
//! database URL. All SQL lives under this module; callers use typed functions.

mod accounts;
mod backend;
mod leases;
mod marks;
mod postgres;
mod projections;
pub use marks::{MarkFilter, MarkGrid, WindowMark, WindowPicture, MAX_MARK_GROUPS};
mod reads;
mod search;
mod sqlite;

pub use accounts::{SessionRow, User};
pub use backend::Store;
pub use leases::{keep_lease, lease_holder, while_held, LeaseRow, Leases, LEASE_EVERY, LEASE_TTL};
pub use postgres::{database_url, drop_database, fresh_database, is_postgres_url, Month, PgStore};
pub use projections::{
    AlarmMetric, AlarmState, Latest, MarkCell, MarkHit, MarkKey, Names, ProjectionDelta,
    ProjectionState, Span, MARKS, MINUTE_MS, PROJECTIONS,
};
pub use search::{
    index_key, words as search_words, LastWord, SearchIndexSize, SearchQuery, MAX_EXPANSION,
    MAX_WORDS, MIN_PREFIX, SEARCH,
};
pub use sqlite::{configure_sqlite, SqliteStore};

use crate::model::{Event, NewEvent, Source};

/// Errors at the storage boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: expected sqlite://PATH, a plain file path or postgres://...")]
    UnsupportedUrl(String),
    #[error("store limit reached: {0}")]
    Limit(String),
    #[error("could not create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A named position (a file line, a collector cursor) stored with the events it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub name: String,
    pub value: String,
}

/// What one append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Rows added to the log.
    pub appended: u64,
    /// Events already in the log (same source and natural id), skipped.
    pub duplicates: u64,
}

/// Ordering of query results by sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// A filter over the log. Empty vectors and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Event time at or after, epoch ms.
    pub from: Option<i64>,
    /// Event time before, epoch ms.
    pub to: Option<i64>,
    pub sources: Vec<Source>,
    /// Kind tags (model::Kind::tag).
    pub kinds: Vec<String>,
    /// A canonical resource key.
    pub resource: Option<String>,
    /// Leave out read-only calls.
    pub exclude_read_only: bool,
    /// Only events with sequence number greater than this.
    pub after_seq: Option<i64>,
    /// Words of the name, actor, natural id or resource keys, through the search index
    /// (`store::search`: every word required, case-insensitive, the last one a prefix
    /// from three characters on). Text with no word matches nothing.
    pub text: Option<String>,
    /// Natural ids starting with this (uses the (source, natural id) index; combine
    /// with a single source).
    pub id_prefix: Option<String>,
    /// Maximum rows; 0 means no limit.
    pub limit: i64,
    /// Order by event time (then seq) instead of by seq.
    pub by_time: bool,
    /// Leave the payloads out (empty strings): for readers of the normalized fields only.
    pub without_payload: bool,
    pub order: Order,
}

/// The columns of `events` that make an [`Event`], on every backend.
pub(super) const SELECT_COLUMNS: &str = "seq, source, natural_id, event_time, received_at, detail, name, actor, read_only, error_code, resources, payload";
/// The same columns with an empty payload (`EventFilter::without_payload`).
pub(super) const SELECT_COLUMNS_NO_PAYLOAD: &str = "seq, source, natural_id, event_time, received_at, detail, name, actor, read_only, error_code, resources, '' AS payload";

/// The event columns a filter asks for (`EventFilter::without_payload`).
pub(super) fn select_columns(f: &EventFilter) -> &'static str {
    if f.without_payload {
        SELECT_COLUMNS_NO_PAYLOAD
    } else {
        SELECT_COLUMNS
    }
}

/// The `detail` column of an event: its kind with the kind's fields, as JSON.
pub(super) fn detail_json(ev: &NewEvent) -> String {
    serde_json::to_string(&ev.kind).unwrap_or_else(|_| "{\"kind\":\"other\"}".into())
}

/// The `resources` column of an event: its resource keys as a JSON array.
pub(super) fn resources_json(ev: &NewEvent) -> String {
    serde_json::to_string(&ev.resources).unwrap_or_else(|_| "[]".into())
}

impl EventFilter {
    /// The ORDER BY clause of this filter's query, on the unqualified columns of
    /// `events` (the same on every backend).
    pub(crate) fn order_by(&self) -> &'static str {
        match (self.by_time, self.order) {
            (true, Order::Asc) => " ORDER BY event_time ASC, seq ASC",
            (true, Order::Desc) => " ORDER BY event_time DESC, seq DESC",
            (false, Order::Asc) => " ORDER BY seq ASC",
            (false, Order::Desc) => " ORDER BY seq DESC",
        }
    }
}

/// Pushes ` AND event_time >= FROM` and ` AND event_time < TO` for the range of `f`, on
/// any backend's query builder.
pub(crate) fn push_time_range<DB: sqlx::Database>(qb: &mut sqlx::QueryBuilder<DB>, f: &EventFilter)
where
    i64: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    if let Some(from) = f.from {
        qb.push(" AND event_time >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        qb.push(" AND event_time < ").push_bind(to);
    }
}

/// Pushes the natural-id range [prefix, prefix + U+10FFFF) of `f.id_prefix`, on any
/// backend's query builder (byte order: SQLite's BINARY collation, PostgreSQL's "C").
pub(crate) fn push_id_prefix<DB: sqlx::Database>(qb: &mut sqlx::QueryBuilder<DB>, f: &EventFilter)
where
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    if let Some(prefix) = &f.id_prefix {
        qb.push(" AND natural_id >= ").push_bind(prefix.clone());
        qb.push(" AND natural_id < ")
            .push_bind(format!("{prefix}\u{10FFFF}"));
    }
}

/// The interface every backend implements.
#[allow(async_fn_in_trait)]
pub trait EventLog {
    /// Appends events in one transaction, skipping those already stored, and writes the
    /// checkpoint in that same transaction.
    async fn append(
        &self,
        events: &[NewEvent],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AppendOutcome>;
    /// [`EventLog::append`] of events the caller is done with: a backend may move their
    /// payloads into its statements instead of copying them, leaving them empty (bulk
    /// ingest: a payload is most of an event's bytes).
    async fn append_moving(
        &self,
        events: &mut [NewEvent],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AppendOutcome> {
        self.append(events, checkpoint).await
    }
    /// Events matching a filter.
    async fn query(&self, filter: &EventFilter) -> Result<Vec<Event>>;
    /// One event by sequence number.
    async fn get(&self, seq: i64) -> Result<Option<Event>>;
    /// One event by source and natural id, among those a conclusion can cite (what a
    /// ranking reads: not read-only calls, not log lines) and rootline's own; `None` for
    /// others, which [`EventLog::find_at`] finds by their time. Never a scan.
    async fn find(&self, source: Source, natural_id: &str) -> Result<Option<Event>>;
    /// One event by its idempotency key: source, natural id and event time.
    async fn find_at(
        &self,
        source: Source,
        natural_id: &str,
        event_time: i64,
    ) -> Result<Option<Event>>;
    /// Number of events stored.
    async fn count(&self) -> Result<i64>;
    /// Highest sequence number (0 when empty).
    async fn max_seq(&self) -> Result<i64>;
    /// A stored checkpoint.
    async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>>;
}
