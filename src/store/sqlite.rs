//! SQLite backend (WAL), the embedded default.

use super::{
    select_columns, AppendOutcome, Checkpoint, EventFilter, EventLog, Result, StoreError,
    SELECT_COLUMNS,
};
use crate::model::{Event, Kind, NewEvent, Source};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ConnectOptions, QueryBuilder, Row, Sqlite};
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

/// Rows per INSERT statement; 12 columns x 2,000 rows stays below SQLite's 32766
/// bound-parameter limit, and few statements per batch keep driver overhead low (each
/// statement is a hand-off between this thread and the connection's).
const ROWS_PER_STATEMENT: usize = 2_000;
/// Payload bytes per INSERT statement: the driver and SQLite each copy what a statement
/// binds, so large payloads go in smaller statements and memory stays bounded.
const BYTES_PER_STATEMENT: usize = 4 * 1024 * 1024;
/// Rows per resource_postings INSERT statement (5 values each).
const POSTINGS_PER_STATEMENT: usize = 1000;

/// Page size of new databases. Events are 1 to 2 KiB (the verbatim payload): 16 KiB pages
/// hold them with little waste (4 KiB pages fit two and waste a quarter), and the
/// indexes are small and mostly appended to at their right edge.
const PAGE_SIZE: u32 = 16 * 1024;
/// WAL pages at which a writing connection checkpoints by itself: only a safety net (1 GiB
/// at 16 KiB pages), since the background checkpointer keeps the WAL far smaller.
const WAL_AUTOCHECKPOINT: u32 = 65_536;
/// How often the background checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL frames beyond which the checkpointer makes writers wait for a full checkpoint
/// and restarts the WAL (a writer that never pauses would otherwise grow it).
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Process-wide SQLite setting for the `rootline` binary; call once, first thing, before
/// any thread or connection exists (SQLite only accepts it before it initializes): no
/// memory statistics, which otherwise take a global mutex on every allocation SQLite
/// makes. `rootline ingest` of 1M records: 22.6-22.9 s against 23.3-24.4 s (alternating
/// runs). Returns false (SQLite keeps its default) if SQLite was already initialized.
///
/// (Routing SQLite's allocations to mimalloc as well was measured and not kept: less user
/// time, but more system time returning memory, 26-27 s.)
pub fn configure_sqlite() -> bool {
    // SAFETY: sqlite3_config with an int argument, called before sqlite3_initialize (the
    // caller's contract; SQLite returns SQLITE_MISUSE otherwise and changes nothing).
    let rc = unsafe {
        libsqlite3_sys::sqlite3_config(
            libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
            0 as std::ffi::c_int,
        )
    };
    rc == libsqlite3_sys::SQLITE_OK
}

/// An event log in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// One connection for appends: SQLite runs one writer at a time anyway, and a single
    /// connection keeps one warm page cache (several would each fill their own).
    pub(super) writer: SqlitePool,
    /// Readers, which WAL lets run alongside the writer.
    pub(super) reader: SqlitePool,
    /// Dropped with the last clone of the store, which stops the checkpointer.
    _checkpointer: Option<std::sync::Arc<tokio::sync::watch::Sender<()>>>,
    /// Whether the projector keeps the search index (see [`SqliteStore::without_search_index`]).
    search_index: bool,
}

/// Turns `sqlite://path`, `sqlite:path` or a plain path into connect options.
fn options(url: &str) -> Result<SqliteConnectOptions> {
    let path = if let Some(p) = url.strip_prefix("sqlite://") {
        p
    } else if let Some(p) = url.strip_prefix("sqlite:") {
        p
    } else if url.contains("://") {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    } else {
        url
    };
    let (path, memory) = match path {
        "" | ":memory:" => (":memory:", true),
        p => (p.split('?').next().unwrap_or(p), false),
    };
    if !memory {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::CreateDir {
                    path: dir.display().to_string(),
                    source: e,
                })?;
            }
        }
    }
    let opts = SqliteConnectOptions::from_str(&format!("sqlite:{path}"))?
        .create_if_missing(true)
        .journal_mode(if memory {
            SqliteJournalMode::Memory
        } else {
            SqliteJournalMode::Wal
        })
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        // Only takes effect when the database file is created.
        .page_size(PAGE_SIZE)
        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT.to_string())
        // Truncate the WAL back to 64 MiB after a checkpoint that let it grow larger.
        .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
        .pragma("temp_store", "memory")
        // REPLACE deletes the row it replaces; with recursive triggers that deletion
        // fires the append-only DELETE triggers, so it is refused like any DELETE.
        .pragma("recursive_triggers", "ON")
        .statement_cache_capacity(64)
        // A background checkpoint may take a second or two under load; sqlx would log
        // that as a warning on stderr in every command.
        .disable_statement_logging();
    Ok(opts)
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let opts = options(url)?;
        let memory = opts.get_filename().to_string_lossy() == ":memory:";
        let pool = |max: u32, cache_kib: u32| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts.clone().pragma("cache_size", format!("-{cache_kib}")))
        };
        // 64 MiB of page cache for the writer: the indexes' inner pages stay cached
        // through a bulk append.
        let writer = pool(1, 64 * 1024).await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        if memory {
            // Each connection to :memory: would be a separate database.
            return Ok(SqliteStore {
                reader: writer.clone(),
                writer,
                _checkpointer: None,
                search_index: true,
            });
        }
        let reader = pool(4, 16 * 1024).await?;
        let (stop, stopped) = tokio::sync::watch::channel(());
        tokio::spawn(checkpointer(reader.clone(), stopped));
        Ok(SqliteStore {
            writer,
            reader,
            _checkpointer: Some(std::sync::Arc::new(stop)),
            search_index: true,
        })
    }

    /// Begins a write transaction on the writer: `BEGIN IMMEDIATE`, which takes the write
    /// lock at once and waits for it (busy timeout). A deferred transaction that reads
    /// first gets `SQLITE_BUSY` at its first write, without waiting, whenever a
    /// checkpoint holds the lock at that moment (seen at 1,000,000 events: "database is
    /// locked" from the projector while the WAL was being restarted).
    pub(super) async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// [`SqliteStore::write`], by the name both backends give it.
    pub(super) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.write().await
    }

    /// The pool of reads (both backends have one).
    pub(super) fn read_pool(&self) -> &SqlitePool {
        &self.reader
    }

    /// The pool of single-statement writes.
    pub(super) fn write_pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// This handle's projector keeps no search index (and does not wait for it): for a
    /// store opened for one analysis and thrown away (`rootline replay`), which nobody
    /// searches. Its search index stays where it was; a handle opened normally later
    /// brings it up to date.
    pub fn without_search_index(mut self) -> Self {
        self.search_index = false;
        self
    }

    /// Whether the projector keeps the search index through this handle.
    pub fn keeps_search_index(&self) -> bool {
        self.search_index
    }

    /// The connection pool, for tests that check what the database itself refuses.
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// Closes all connections (checkpointing the WAL).
    pub async fn close(&self) {
        // Readers (and the checkpointer) first: the last connection to close
        // checkpoints the WAL into the database and removes it.
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Copies the WAL into the database in the background, so that appends never wait for
/// a checkpoint's writes and fsyncs (SQLite would otherwise run them on the appending
/// connection). Passive checkpoints never block anyone; only when the WAL has grown past
/// `WAL_RESTART_FRAMES` (a writer with no pauses) and a passive checkpoint has copied all
/// of it does it wait for a full checkpoint and
/// restart the WAL. Ends when the store is closed or dropped.
async fn checkpointer(pool: SqlitePool, mut stop: tokio::sync::watch::Receiver<()>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        if pool.is_closed() {
            return;
        }
        let passive: std::result::Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&pool)
                .await;
        match passive {
            // Restart only a WAL that the passive checkpoint has copied whole: then the
            // restart has nothing left to copy and holds writers for an instant. (A
            // restart that copies a WAL of gigabytes, after an index build on a large
            // store, held the writer lock past its 30 s busy timeout.)
            Ok((_, wal_frames, copied))
                if wal_frames > WAL_RESTART_FRAMES && copied >= wal_frames =>
            {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %e, "WAL restart checkpoint failed");
                }
            }
            Ok(_) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// A multi-row INSERT of `rows` events; rows already stored (same event time, natural
/// id and source: the unique `events_key`) are skipped.
///
/// `OR FAIL`: a NOT NULL violation fails the statement (and the append's transaction)
/// instead of aborting it. Only ABORT makes SQLite keep a statement journal, a copy of
/// every page the statement touches so that it can be undone alone (17 % of the
/// appending thread's time at 1M events); nothing here needs that, since a failed
/// statement fails the whole transaction anyway.
fn insert_sql(rows: usize) -> String {
    values_sql(
        "INSERT OR FAIL INTO events (source, natural_id, event_time, received_at, kind, detail, name, actor, read_only, error_code, resources, payload)",
        12,
        rows,
    ) + " ON CONFLICT DO NOTHING"
}

/// `head` followed by ` VALUES ` and `rows` groups of `columns` placeholders.
fn values_sql(head: &str, columns: usize, rows: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(","));
    let mut sql = String::with_capacity(head.len() + 8 + rows * (group.len() + 1));
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&group);
    }
    sql
}

/// [`insert_sql`] for `chunk`, with its rows bound. The driver owns what it binds: the
/// JSON columns are serialized straight into their arguments, and the payloads are
/// either copied from the events or, when the caller gave them up (`moved`, in the
/// chunk's order), moved in.
fn insert_query(
    chunk: &[NewEvent],
    mut moved: Option<&mut std::vec::IntoIter<String>>,
) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
    let mut q = sqlx::query(AssertSqlSafe(insert_sql(chunk.len())));
    for ev in chunk {
        q = q
            .bind(ev.source.as_str())
            .bind(ev.natural_id.as_str())
            .bind(ev.event_time)
            .bind(ev.received_at)
            .bind(ev.kind.tag())
            .bind(super::detail_json(ev))
            .bind(ev.name.as_str())
            .bind(ev.actor.as_deref())
            .bind(ev.read_only as i64)
            .bind(ev.error_code.as_deref())
            .bind(super::resources_json(ev));
        q = match moved.as_deref_mut() {
            Some(payloads) => q.bind(payloads.next().unwrap_or_default()),
            None => q.bind(ev.payload.as_str()),
        };
    }
    q
}

/// One resource_postings row: the appended events of one call that touch `resource`.
#[derive(Debug, PartialEq)]
struct Posting<'a> {
    resource: &'a str,
    first_seq: i64,
    min_time: i64,
    max_time: i64,
    /// JSON array of the seqs, ascending.
    seqs: String,
}

/// The resource postings of one append, gathered as its events get their seqs.
#[derive(Default)]
struct Postings<'a> {
    /// Per resource: earliest and latest event time, and the seqs.
    by_resource: std::collections::BTreeMap<&'a str, (i64, i64, Vec<i64>)>,
}

impl<'a> Postings<'a> {
    /// The event stored as `seq` touches each of its resources.
    fn add(&mut self, ev: &'a NewEvent, seq: i64) {
        for r in &ev.resources {
            self.link(r, ev.event_time, seq);
        }
    }

    fn link(&mut self, resource: &'a str, time: i64, seq: i64) {
        let (min, max, seqs) = self
            .by_resource
            .entry(resource)
            .or_insert((time, time, Vec::new()));
        *min = (*min).min(time);
        *max = (*max).max(time);
        seqs.push(seq);
    }

    /// One row per resource, in resource order (so the same links always give the same
    /// rows).
    fn rows(self) -> Vec<Posting<'a>> {
        self.by_resource
            .into_iter()
            .filter_map(|(resource, (min_time, max_time, mut seqs))| {
                seqs.sort_unstable();
                seqs.dedup();
                let first_seq = *seqs.first()?;
                let mut json = String::with_capacity(2 + seqs.len() * 8);
                json.push('[');
                for (i, seq) in seqs.iter().enumerate() {
                    if i > 0 {
                        json.push(',');
                    }
                    // Writing to a String cannot fail.
                    let _ = write!(json, "{seq}");
                }
                json.push(']');
                Some(Posting {
                    resource,
                    first_seq,
                    min_time,
                    max_time,
                    seqs: json,
                })
            })
            .collect()
    }
}

/// The sizes of the INSERT statements for rows of these payload sizes: at most
/// ROWS_PER_STATEMENT rows and, past the first row, BYTES_PER_STATEMENT payload bytes.
fn statement_sizes(payload_lens: &[usize]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut rest = payload_lens;
    while !rest.is_empty() {
        let mut bytes = 0usize;
        let mut n = 0usize;
        while n < rest.len() && n < ROWS_PER_STATEMENT {
            bytes += rest[n];
            if n > 0 && bytes > BYTES_PER_STATEMENT {
                break;
            }
            n += 1;
        }
        sizes.push(n);
        rest = &rest[n..];
    }
    sizes
}

pub(super) fn row_to_event(row: &SqliteRow) -> Result<Event> {
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
        read_only: row.try_get::<i64, _>("read_only")? != 0,
        error_code: row.try_get("error_code")?,
        resources: serde_json::from_str(&resources).unwrap_or_default(),
        payload: row.try_get("payload")?,
    })
}

/// Appends ` AND ...` for every condition of `f` but its text and order: resource, time
/// range, sources, kinds, read-only, seq and natural-id prefix, on the unqualified
/// columns of `events`.
pub(super) fn push_filters(qb: &mut QueryBuilder<Sqlite>, f: &EventFilter) {
    if let Some(r) = &f.resource {
        // The postings of the resource that overlap the time range (one index seek),
        // expanded to their seqs; the outer conditions keep the exact range.
        qb.push(" AND seq IN (SELECT j.value FROM resource_postings AS p, json_each(p.seqs) AS j WHERE p.resource = ");
        qb.push_bind(r.clone());
        if let Some(from) = f.from {
            qb.push(" AND p.max_time >= ").push_bind(from);
        }
        if let Some(to) = f.to {
            qb.push(" AND p.min_time < ").push_bind(to);
        }
        qb.push(")");
    }
    super::push_time_range(qb, f);
    if !f.sources.is_empty() {
        qb.push(" AND source IN (");
        let mut sep = qb.separated(", ");
        for s in &f.sources {
            sep.push_bind(s.as_str());
        }
        qb.push(")");
    }
    if !f.kinds.is_empty() {
        qb.push(" AND kind IN (");
        let mut sep = qb.separated(", ");
        for k in &f.kinds {
            sep.push_bind(k.clone());
        }
        qb.push(")");
    }
    if f.exclude_read_only {
        qb.push(" AND read_only = 0");
    }
    if let Some(after) = f.after_seq {
        qb.push(" AND seq > ").push_bind(after);
    }
    // Conclusions have an index on natural_id; the planner uses it (a partial index)
    // only when the query names the source as a literal.
    if f.id_prefix.is_some() && f.sources == [Source::Rootline] {
        qb.push(" AND source = 'rootline'");
    }
    super::push_id_prefix(qb, f);
}

/// Appends events in one transaction on `conn` (the writer), skipping those already
/// stored, with the checkpoint in the same transaction.
///
/// `moved`: the events' payloads, taken out of them by the caller (which leaves the
/// events' own empty) so that they are moved into the statements instead of copied.
async fn append_on(
    conn: &mut sqlx::pool::PoolConnection<Sqlite>,
    events: &[NewEvent],
    moved: Option<Vec<String>>,
    checkpoint: Option<&Checkpoint>,
) -> Result<AppendOutcome> {
    let lens: Vec<usize> = match &moved {
        Some(payloads) => payloads.iter().map(String::len).collect(),
        None => events.iter().map(|ev| ev.payload.len()).collect(),
    };
    let mut moved = moved.map(Vec::into_iter);
    let mut start = 0usize;
    let mut chunks = statement_sizes(&lens).into_iter().map(|n| {
        let chunk = events.get(start..start + n).unwrap_or_default();
        start += n;
        chunk
    });
    // IMMEDIATE: a deferred transaction that reads first gets 'database is locked' at
    // once (no busy wait) when a checkpoint holds the lock as it upgrades to write.
    let mut tx = sqlx::Connection::begin_with(&mut **conn, "BEGIN IMMEDIATE").await?;
    let mut appended = 0u64;
    let mut postings = Postings::default();
    let mut next = chunks.next().map(|c| (c, insert_query(c, moved.as_mut())));
    while let Some((chunk, query)) = next.take() {
        // SQLite runs a statement on the connection's own thread; the next statement's
        // arguments are bound on this one meanwhile (both are serial otherwise, and
        // binding copies every payload).
        let (done, following) = tokio::join!(query.execute(&mut *tx), async {
            chunks.next().map(|c| (c, insert_query(c, moved.as_mut())))
        });
        next = following;
        let done = done?;
        let inserted = done.rows_affected();
        appended += inserted;
        if inserted == 0 {
            continue;
        }
        // This connection is the only writer inside the transaction and the database
        // assigns max(seq)+1 to each row, so the rows just appended hold the seqs
        // (last - inserted, last].
        let last = done.last_insert_rowid();
        let first = last - inserted as i64 + 1;
        if inserted == chunk.len() as u64 {
            // No row was skipped: SQLite inserts a VALUES list in its order, so the
            // n-th row of the chunk has seq first + n.
            for (ev, seq) in chunk.iter().zip(first..) {
                postings.add(ev, seq);
            }
            continue;
        }
        // Some rows were already stored: read back which ones went in, and match
        // them by key. Within a chunk the first event with a key is the one appended.
        let rows = sqlx::query(
            "SELECT seq, source, natural_id, event_time FROM events WHERE seq >= ? AND seq <= ?",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&mut *tx)
        .await?;
        let mut by_key: std::collections::HashMap<(&str, &str, i64), &NewEvent> =
            std::collections::HashMap::with_capacity(chunk.len());
        for ev in chunk {
            by_key
                .entry((ev.source.as_str(), ev.natural_id.as_str(), ev.event_time))
                .or_insert(ev);
        }
        for row in &rows {
            let seq: i64 = row.try_get(0)?;
            let source: &str = row.try_get(1)?;
            let natural_id: &str = row.try_get(2)?;
            let event_time: i64 = row.try_get(3)?;
            if let Some(ev) = by_key.get(&(source, natural_id, event_time)) {
                postings.add(ev, seq);
            }
        }
    }
    for chunk in postings.rows().chunks(POSTINGS_PER_STATEMENT) {
        let mut q = sqlx::query(AssertSqlSafe(values_sql(
            // OR FAIL: no statement journal (see insert_sql).
            "INSERT OR FAIL INTO resource_postings (resource, first_seq, min_time, max_time, seqs)",
            5,
            chunk.len(),
        )));
        for p in chunk {
            q = q
                .bind(p.resource)
                .bind(p.first_seq)
                .bind(p.min_time)
                .bind(p.max_time)
                .bind(p.seqs.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    if let Some(cp) = checkpoint {
        sqlx::query(
            "INSERT INTO checkpoints (name, value, last_seq) \
             VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) FROM events)) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, last_seq = excluded.last_seq",
        )
        .bind(&cp.name)
        .bind(&cp.value)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(AppendOutcome {
        appended,
        duplicates: events.len() as u64 - appended,
    })
}

impl SqliteStore {
    /// [`EventLog::append`], durable: the transaction commits with `synchronous=FULL`, so
    /// the WAL is synced to disk before this returns and a power loss cannot drop what
    /// it stored. Appends that acknowledge to a sender (the push endpoints' 200) use it;
    /// bulk ingest keeps `NORMAL` (its checkpoints make a re-run after a crash resume).
    pub async fn append_durable(&self, events: &[NewEvent]) -> Result<AppendOutcome> {
        let mut conn = self.writer.acquire().await?;
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
        let out = append_on(&mut conn, events, None, None).await;
        // Back to the store's setting for the next user of the one writer connection,
        // whatever the append did (a connection left at FULL would only be slower).
        let reset = sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await;
        let out = out?;
        reset?;
        Ok(out)
    }
}

impl EventLog for SqliteStore {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn append(
        &self,
        events: &[NewEvent],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AppendOutcome> {
        let mut conn = self.writer.acquire().await?;
        append_on(&mut conn, events, None, checkpoint).await
    }

    async fn append_moving(
        &self,
        events: &mut [NewEvent],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AppendOutcome> {
        let payloads = events
            .iter_mut()
            .map(|ev| std::mem::take(&mut ev.payload))
            .collect();
        let mut conn = self.writer.acquire().await?;
        append_on(&mut conn, events, Some(payloads), checkpoint).await
    }

    async fn query(&self, f: &EventFilter) -> Result<Vec<Event>> {
        if let Some(text) = &f.text {
            // Through the search index (src/store/search.rs), never a scan of the log.
            return self.search(f, text).await;
        }
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT ");
        qb.push(select_columns(f));
        qb.push(" FROM events WHERE 1=1");
        push_filters(&mut qb, f);
        qb.push(f.order_by());
        if f.limit > 0 {
            qb.push(" LIMIT ").push_bind(f.limit);
        }
        let rows = qb.build().fetch_all(&self.reader).await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn get(&self, seq: i64) -> Result<Option<Event>> {
        let row = sqlx::query(
            "SELECT seq, source, natural_id, event_time, received_at, detail, name, actor, read_only, error_code, resources, payload FROM events WHERE seq = ?",
        )
        .bind(seq)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn find(&self, source: Source, natural_id: &str) -> Result<Option<Event>> {
        // Through the partial indexes of what conclusions cite (migration 0008): never a
        // scan, whatever the id.
        let sql = if source == Source::Rootline {
            format!(
                "SELECT {SELECT_COLUMNS} FROM events INDEXED BY events_rootline_ids \
                 WHERE source = 'rootline' AND natural_id = ?1 AND ?2 = 'rootline'"
            )
        } else {
            format!(
                "SELECT {SELECT_COLUMNS} FROM events INDEXED BY events_cited_ids \
                 WHERE substr(natural_id, -16) = substr(?1, -16) AND natural_id = ?1 \
                 AND source = ?2 AND source <> 'rootline' AND kind <> 'log' \
                 AND NOT (kind = 'change' AND read_only = 1 AND error_code IS NULL)"
            )
        };
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(natural_id)
            .bind(source.as_str())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn find_at(
        &self,
        source: Source,
        natural_id: &str,
        event_time: i64,
    ) -> Result<Option<Event>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS} FROM events INDEXED BY events_key \
             WHERE event_time = ? AND natural_id = ? AND source = ?"
        )))
        .bind(event_time)
        .bind(natural_id)
        .bind(source.as_str())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.reader)
            .await?)
    }

    async fn max_seq(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>> {
        let row = sqlx::query("SELECT name, value FROM checkpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        Ok(match row {
            Some(r) => Some(Checkpoint {
                name: r.try_get("name")?,
                value: r.try_get("value")?,
            }),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_group_links_by_resource_with_sorted_unique_seqs_and_their_time_span() {
        let links = [
            ("sg/b", 30, 7),
            ("sg/a", 50, 9),
            ("sg/b", 10, 5),
            ("sg/a", 20, 4),
            ("sg/b", 30, 7),
            ("role/x", 40, 6),
        ];
        let mut postings = Postings::default();
        for (resource, time, seq) in links {
            postings.link(resource, time, seq);
        }
        let got = postings.rows();
        let want = vec![
            Posting {
                resource: "role/x",
                first_seq: 6,
                min_time: 40,
                max_time: 40,
                seqs: "[6]".into(),
            },
            Posting {
                resource: "sg/a",
                first_seq: 4,
                min_time: 20,
                max_time: 50,
                seqs: "[4,9]".into(),
            },
            Posting {
                resource: "sg/b",
                first_seq: 5,
                min_time: 10,
                max_time: 30,
                seqs: "[5,7]".into(),
            },
        ];
        assert_eq!(got, want);
        assert!(Postings::default().rows().is_empty());
    }
}
