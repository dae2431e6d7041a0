//! The event log on PostgreSQL (`postgres://...`): the [`EventLog`] of the SQLite store,
//! with the same guarantees, on a table partitioned by month of event time
//! (migrations/postgres).
//!
//! Appends are serialised by one transaction-scoped advisory lock: inside it an append
//! reads the log's head, numbers its new rows head+1.., moves the head and writes its
//! checkpoint, all in one transaction. Seqs therefore have no gaps and become visible in
//! seq order, so a reader that follows the sequence (`after_seq`) never later finds an
//! event below one it has seen, whatever number of writers append at once.
//!
//! The projections, the engine's reads, search, the picture's marks and the accounts
//! are in the submodules, each the SQLite store's counterpart.

mod marks;
mod projections;
mod reads;
mod search;

use super::{
    detail_json, push_id_prefix, push_time_range, resources_json, select_columns, AppendOutcome,
    Checkpoint, EventFilter, EventLog, Result, StoreError, SELECT_COLUMNS,
};
use crate::model::{Event, Kind, NewEvent, Source};
use chrono::{Datelike, TimeZone, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};
use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The advisory lock every append holds until it commits ("rootline" in ASCII).
const APPEND_LOCK: i64 = 0x726f_6f74_6c69_6e65;

/// Months made ahead of now when a store opens (and the one before).
const MONTHS_AHEAD: i32 = 3;

/// Rows per INSERT: arrays of this many elements per column.
const ROWS_PER_STATEMENT: usize = 5_000;

/// The event log in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Months whose partitions are known to exist (first day's epoch ms).
    months: Arc<Mutex<BTreeSet<i64>>>,
}

/// A calendar month (UTC) of event time: [lo, hi) in epoch ms and its partition suffix
/// (months order by their start).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub lo: i64,
    pub hi: i64,
    pub suffix: String,
}

impl Month {
    /// The month holding `t` (epoch ms). Times outside chrono's range fall into the
    /// month of the nearest representable time.
    pub fn of(t: i64) -> Month {
        let dt = Utc.timestamp_millis_opt(t).single().unwrap_or(if t < 0 {
            chrono::DateTime::<Utc>::MIN_UTC
        } else {
            chrono::DateTime::<Utc>::MAX_UTC
        });
        Month::starting(dt.year(), dt.month())
    }

    fn starting(year: i32, month: u32) -> Month {
        let first = |y: i32, m: u32| {
            Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
                .single()
                .map(|d| d.timestamp_millis())
        };
        let (ny, nm) = if month == 12 {
            (year + 1, 1)
        } else {
            (year, month + 1)
        };
        let lo = first(year, month).unwrap_or(i64::MIN);
        let hi = first(ny, nm).unwrap_or(i64::MAX);
        Month {
            lo,
            hi,
            suffix: format!(
                "{}{:04}m{:02}",
                if year < 0 { "yn" } else { "y" },
                year.unsigned_abs(),
                month
            ),
        }
    }

    /// The month `n` months after this one.
    fn plus(&self, n: i32) -> Month {
        let dt = Utc
            .timestamp_millis_opt(self.lo)
            .single()
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let total = dt.year() * 12 + dt.month0() as i32 + n;
        Month::starting(total.div_euclid(12), total.rem_euclid(12) as u32 + 1)
    }
}

/// Makes an empty database `name` (dropping one of that name) on the server of
/// `admin` (a URL whose role may create databases); returns its URL. For the tests and
/// the benchmarks: `name` must be a plain identifier.
pub async fn fresh_database(admin: &str, name: &str) -> Result<String> {
    drop_database(admin, name).await?;
    on_server(admin, &format!("CREATE DATABASE {name}")).await?;
    Ok(database_url(admin, name))
}

/// Drops the database `name` of the server of `admin`, if there is one.
pub async fn drop_database(admin: &str, name: &str) -> Result<()> {
    plain_identifier(name)?;
    on_server(
        admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await
}

/// Runs one statement on a connection of its own to `admin` (CREATE and DROP DATABASE
/// cannot run in a transaction or a pool's prepared session).
async fn on_server(admin: &str, sql: &str) -> Result<()> {
    let mut conn = connect(admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await?;
    sqlx::Connection::close(conn).await?;
    Ok(())
}

/// One connection to `url`.
async fn connect(url: &str) -> Result<sqlx::PgConnection> {
    Ok(<sqlx::PgConnection as sqlx::Connection>::connect_with(&options(url)?).await?)
}

/// Connect options from `url`, without sqlx's log line per statement (as on SQLite: at
/// `-vv` they would drown rootline's own lines).
fn options(url: &str) -> Result<PgConnectOptions> {
    use sqlx::ConnectOptions;
    Ok(PgConnectOptions::from_str(url)?.disable_statement_logging())
}

/// `admin` with its database replaced by `name` (query parameters kept).
pub fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    // postgres://user@host:port[/db]: the path starts at the first '/' after "//".
    let path_at = base
        .find("//")
        .and_then(|i| base[i + 2..].find('/').map(|j| i + 2 + j));
    let host = path_at.map_or(base, |j| &base[..j]);
    format!("{host}/{name}{query}")
}

fn plain_identifier(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() < 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Limit(format!(
            "database name {name:?}: lower-case letters, digits and '_' only"
        )))
    }
}

/// A URL is PostgreSQL's.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Rows of one append, as the arrays an INSERT unnests.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    source: Vec<String>,
    natural_id: Vec<String>,
    event_time: Vec<i64>,
    received_at: Vec<Option<i64>>,
    kind: Vec<String>,
    detail: Vec<String>,
    name: Vec<String>,
    actor: Vec<Option<String>>,
    read_only: Vec<bool>,
    error_code: Vec<Option<String>>,
    resources: Vec<String>,
    payload: Vec<String>,
}

/// PostgreSQL's text cannot hold NUL, which JSON can carry escaped into a decoded field:
/// it is stored as U+FFFD (the payload, JSON text, holds it escaped and unchanged).
fn text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_string()
    }
}

impl Columns {
    /// `rows`, numbered `head + 1` on.
    fn numbered(head: i64, rows: &[&NewEvent]) -> Columns {
        let mut cols = Columns::default();
        for (seq, ev) in (head + 1..).zip(rows) {
            cols.push(seq, ev);
        }
        cols
    }

    fn push(&mut self, seq: i64, ev: &NewEvent) {
        self.seq.push(seq);
        self.source.push(ev.source.as_str().to_string());
        self.natural_id.push(text(&ev.natural_id));
        self.event_time.push(ev.event_time);
        self.received_at.push(ev.received_at);
        self.kind.push(ev.kind.tag().to_string());
        self.detail.push(detail_json(ev));
        self.name.push(text(&ev.name));
        self.actor.push(ev.actor.as_deref().map(text));
        self.read_only.push(ev.read_only);
        self.error_code.push(ev.error_code.as_deref().map(text));
        self.resources.push(resources_json(ev));
        self.payload.push(text(&ev.payload));
    }

    /// INSERTs the rows; returns the seqs that went in (the others' keys were stored).
    async fn insert(self, tx: &mut sqlx::PgConnection) -> Result<Vec<i64>> {
        let seqs: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO events (seq, source, natural_id, event_time, received_at, kind, detail, \
             name, actor, read_only, error_code, resources, payload) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], \
             $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[], \
             $11::text[], $12::text[], $13::text[]) \
             ON CONFLICT DO NOTHING RETURNING seq",
        )
        .bind(self.seq)
        .bind(self.source)
        .bind(self.natural_id)
        .bind(self.event_time)
        .bind(self.received_at)
        .bind(self.kind)
        .bind(self.detail)
        .bind(self.name)
        .bind(self.actor)
        .bind(self.read_only)
        .bind(self.error_code)
        .bind(self.resources)
        .bind(self.payload)
        .fetch_all(&mut *tx)
        .await?;
        Ok(seqs)
    }
}

/// What a conclusion can cite (as `reads::WINDOW_EVENTS` on SQLite), and rootline's own.
const CITABLE: &str = "(source = 'rootline' OR (kind <> 'log' \
     AND NOT (kind = 'change' AND read_only AND error_code IS NULL)))";

pub(super) fn row_to_event(row: &PgRow) -> Result<Event> {
    let source: String = row.try_get("source")?;
    let detail: String = row.try_get("detail")?;
    let resources: String = row.try_get("resources")?;
    Ok(Event {
        seq: row.try_get("seq")?,
        source: Source::parse(&source).unwrap_or(Source::Rootline),
        natural_id: row.try_get("natural_id")?,
        event_time: row.try_get("event_time")?,
        received_at: row.try_get("received_at")?,
        kind: serde_json::from_str::<Kind>(&detail).unwrap_or(Kind::Other),
        name: row.try_get("name")?,
        actor: row.try_get("actor")?,
        read_only: row.try_get("read_only")?,
        error_code: row.try_get("error_code")?,
        resources: serde_json::from_str(&resources).unwrap_or_default(),
        payload: row.try_get("payload")?,
    })
}

impl PgStore {
    /// Connects to `url`, applies pending migrations and makes the partitions of this
    /// month, the one before and [`MONTHS_AHEAD`] after.
    pub async fn open(url: &str) -> Result<Self> {
        // One connection first: a wrong address or password fails at once, where the
        // pool would keep trying until its acquire timeout.
        sqlx::Connection::close(connect(url).await?).await?;
        let opts = options(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let store = PgStore {
            pool,
            months: Arc::new(Mutex::new(BTreeSet::new())),
        };
        let now = Month::of(Utc::now().timestamp_millis());
        let months: Vec<Month> = (-1..=MONTHS_AHEAD).map(|n| now.plus(n)).collect();
        let mut tx = store.pool.begin().await?;
        lock_appends(&mut tx).await?;
        for m in &months {
            make_partition(&mut tx, m).await?;
        }
        tx.commit().await?;
        store.known(months.iter().map(|m| m.lo));
        Ok(store)
    }

    /// Closes the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The connection pool (for the tests and the benchmarks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The projector keeps the search index always here (the SQLite store's handles may
    /// leave it out).
    pub fn keeps_search_index(&self) -> bool {
        true
    }

    /// `ANALYZE` of every table (see `Store::refresh_statistics`).
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// A write transaction (as the SQLite store's `begin_write`).
    pub(super) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// The pool of reads (one pool for everything here).
    pub(super) fn read_pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool of single-statement writes.
    pub(super) fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    /// The months of event time that have partitions, by suffix, oldest first.
    pub async fn partitions(&self) -> Result<Vec<String>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(names
            .into_iter()
            .filter_map(|n| n.strip_prefix("events_").map(str::to_string))
            .collect())
    }

    fn known(&self, months: impl Iterator<Item = i64>) {
        if let Ok(mut k) = self.months.lock() {
            k.extend(months);
        }
    }

    fn is_known(&self, lo: i64) -> bool {
        self.months.lock().map(|k| k.contains(&lo)).unwrap_or(false)
    }
}

/// Takes the appends' advisory lock until the transaction ends.
async fn lock_appends(tx: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn make_partition(tx: &mut sqlx::PgConnection, m: &Month) -> Result<()> {
    sqlx::query("SELECT rootline_month_partition($1, $2, $3)")
        .bind(&m.suffix)
        .bind(m.lo)
        .bind(m.hi)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Pushes ` AND ...` for every condition of `f` but its text and order.
pub(super) fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &EventFilter) {
    if let Some(r) = &f.resource {
        qb.push(" AND seq IN (SELECT seq FROM event_resources WHERE resource = ")
            .push_bind(text(r));
        push_time_range(qb, f);
        qb.push(")");
    }
    push_time_range(qb, f);
    if !f.sources.is_empty() {
        let s: Vec<String> = f.sources.iter().map(|s| s.as_str().to_string()).collect();
        qb.push(" AND source = ANY(").push_bind(s).push(")");
    }
    if !f.kinds.is_empty() {
        qb.push(" AND kind = ANY(")
            .push_bind(f.kinds.clone())
            .push(")");
    }
    if f.exclude_read_only {
        qb.push(" AND NOT read_only");
    }
    if let Some(after) = f.after_seq {
        qb.push(" AND seq > ").push_bind(after);
    }
    push_id_prefix(qb, f);
}

impl EventLog for PgStore {
    async fn append(
        &self,
        events: &[NewEvent],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AppendOutcome> {
        // Within the call, the first event with a key is the one appended.
        let mut seen = std::collections::HashSet::with_capacity(events.len());
        let fresh: Vec<&NewEvent> = events
            .iter()
            .filter(|e| seen.insert((e.source, e.natural_id.as_str(), e.event_time)))
            .collect();
        let months: BTreeSet<Month> = fresh
            .iter()
            .map(|e| Month::of(e.event_time))
            .filter(|m| !self.is_known(m.lo))
            .collect();
        let mut tx = self.pool.begin().await?;
        lock_appends(&mut tx).await?;
        for m in &months {
            make_partition(&mut tx, m).await?;
        }
        let mut head: i64 = sqlx::query_scalar("SELECT seq FROM log_head")
            .fetch_one(&mut *tx)
            .await?;
        let mut appended = 0u64;
        for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
            // Numbered from the head; if some keys were already stored, the rows that
            // went in are taken back (savepoint) and the new ones numbered again, so
            // that seqs have no gaps.
            let mut sp = sqlx::Connection::begin(&mut *tx).await?;
            let went_in = Columns::numbered(head, chunk).insert(&mut sp).await?;
            let rows: Vec<&NewEvent> = if went_in.len() == chunk.len() {
                sp.commit().await?;
                chunk.to_vec()
            } else {
                sp.rollback().await?;
                let new: BTreeSet<i64> = went_in.iter().map(|s| s - head - 1).collect();
                let rows: Vec<&NewEvent> = chunk
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| new.contains(&(*i as i64)))
                    .map(|(_, e)| *e)
                    .collect();
                let again = Columns::numbered(head, &rows).insert(&mut tx).await?;
                if again.len() != rows.len() {
                    return Err(StoreError::Limit(format!(
                        "PostgreSQL append: {} of {} new rows went in on the second try",
                        again.len(),
                        rows.len()
                    )));
                }
                rows
            };
            let (mut res, mut times, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
            for (i, ev) in rows.iter().enumerate() {
                let mut keys: Vec<&String> = ev.resources.iter().collect();
                keys.sort();
                keys.dedup();
                for r in keys {
                    res.push(text(r));
                    times.push(ev.event_time);
                    seqs.push(head + 1 + i as i64);
                }
            }
            if !res.is_empty() {
                sqlx::query(
                    "INSERT INTO event_resources (resource, event_time, seq) \
                     SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])",
                )
                .bind(res)
                .bind(times)
                .bind(seqs)
                .execute(&mut *tx)
                .await?;
            }
            head += rows.len() as i64;
            appended += rows.len() as u64;
        }
        if appended > 0 {
            sqlx::query("UPDATE log_head SET seq = $1")
                .bind(head)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(cp) = checkpoint {
            sqlx::query(
                "INSERT INTO checkpoints (name, value, last_seq) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                 last_seq = excluded.last_seq",
            )
            .bind(&cp.name)
            .bind(&cp.value)
            .bind(head)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.known(months.iter().map(|m| m.lo));
        Ok(AppendOutcome {
            appended,
            duplicates: events.len() as u64 - appended,
        })
    }

    async fn query(&self, f: &EventFilter) -> Result<Vec<Event>> {
        if let Some(text) = &f.text {
            return self.search(f, text).await;
        }
        let mut qb = QueryBuilder::new(format!(
            "SELECT {} FROM events WHERE TRUE",
            select_columns(f)
        ));
        push_filters(&mut qb, f);
        qb.push(f.order_by());
        if f.limit > 0 {
            qb.push(" LIMIT ").push_bind(f.limit);
        }
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn get(&self, seq: i64) -> Result<Option<Event>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS} FROM events WHERE seq = $1"
        )))
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn find(&self, source: Source, natural_id: &str) -> Result<Option<Event>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS} FROM events WHERE source = $1 AND natural_id = $2 \
             AND {CITABLE} ORDER BY seq LIMIT 1"
        )))
        .bind(source.as_str())
        .bind(text(natural_id))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn find_at(
        &self,
        source: Source,
        natural_id: &str,
        event_time: i64,
    ) -> Result<Option<Event>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS} FROM events WHERE source = $1 AND natural_id = $2 \
             AND event_time = $3"
        )))
        .bind(source.as_str())
        .bind(text(natural_id))
        .bind(event_time)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn count(&self) -> Result<i64> {
        // Seqs are 1..=head without gaps.
        self.max_seq().await
    }

    async fn max_seq(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT seq FROM log_head")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, value FROM checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(name, value)| Checkpoint { name, value }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_keep_the_server_and_its_parameters() {
        let u = |a: &str| database_url(a, "t1");
        assert_eq!(
            u("postgres://p@127.0.0.1:5432/postgres"),
            "postgres://p@127.0.0.1:5432/t1"
        );
        assert_eq!(u("postgres://p@h"), "postgres://p@h/t1");
        assert_eq!(
            u("postgresql://p:x@h/db?sslmode=disable"),
            "postgresql://p:x@h/t1?sslmode=disable"
        );
        assert!(plain_identifier("rootline_bench_1").is_ok());
        assert!(plain_identifier("x; DROP DATABASE y").is_err());
        assert!(plain_identifier("").is_err());
    }

    #[test]
    fn months_are_calendar_months_in_utc() {
        // 2026-12-04T21:10:04Z
        let m = Month::of(1_796_418_604_000);
        assert_eq!(m.suffix, "y2026m12");
        assert_eq!(m.lo, 1_796_083_200_000); // 2026-12-01
        assert_eq!(m.hi, 1_798_761_600_000); // 2027-01-01
        assert_eq!(Month::of(m.hi).suffix, "y2027m01");
        assert_eq!(Month::of(m.hi - 1), m);
        assert_eq!(m.plus(1).suffix, "y2027m01");
        assert_eq!(m.plus(-12).suffix, "y2025m12");
        assert_eq!(Month::of(0).suffix, "y1970m01");
        assert_eq!(Month::of(-1).suffix, "y1969m12");
        assert_eq!(Month::of(i64::MAX).hi, i64::MAX);
    }
}
