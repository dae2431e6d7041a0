//! SQLite backend (WAL), the embedded default.

use super::{AppendOutcome, Checkpoint, EventFilter, EventLog, Order, Result, StoreError};
use crate::model::{Event, Kind, NewEvent, Source};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite};
use std::str::FromStr;
use std::time::Duration;

/// Rows per INSERT statement; 12 columns x 500 rows stays far below SQLite's 32766
/// bound-parameter limit, and few statements per batch keep driver overhead low.
const ROWS_PER_STATEMENT: usize = 500;

const SELECT_COLUMNS: &str = "seq, source, natural_id, event_time, received_at, detail, name, actor, read_only, error_code, resources, payload";

/// An event log in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
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
        // 64 MiB of page cache per connection: the unique index on natural ids is
        // random-access, and keeping its upper levels cached is what sustains ingest.
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "memory")
        .statement_cache_capacity(64);
    Ok(opts)
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let opts = options(url)?;
        let memory = opts.get_filename().to_string_lossy() == ":memory:";
        let pool = SqlitePoolOptions::new()
            // One connection for an in-memory database: each would be a separate database.
            .max_connections(if memory { 1 } else { 4 })
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// The connection pool, for tests that check what the database itself refuses.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes all connections (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(200 + rows * 30);
    sql.push_str("INSERT INTO events (source, natural_id, event_time, received_at, kind, detail, name, actor, read_only, error_code, resources, payload) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?,?,?,?)");
    }
    sql.push_str(" ON CONFLICT (source, natural_id) DO NOTHING");
    sql
}

/// Rows prepared for binding: the JSON columns serialized once.
struct Prepared<'a> {
    ev: &'a NewEvent,
    detail: String,
    resources: String,
}

fn prepare(ev: &NewEvent) -> Prepared<'_> {
    Prepared {
        ev,
        detail: serde_json::to_string(&ev.kind).unwrap_or_else(|_| "{\"kind\":\"other\"}".into()),
        resources: serde_json::to_string(&ev.resources).unwrap_or_else(|_| "[]".into()),
    }
}

fn row_to_event(row: &SqliteRow) -> Result<Event> {
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

impl EventLog for SqliteStore {
    #[tracing::instrument(skip_all, fields(events = events.len()))]
    async fn append(
        &self,
        events: &[NewEvent],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AppendOutcome> {
        let prepared: Vec<Prepared<'_>> = events.iter().map(prepare).collect();
        let mut tx = self.pool.begin().await?;
        let mut appended = 0u64;
        for chunk in prepared.chunks(ROWS_PER_STATEMENT) {
            let sql = insert_sql(chunk.len());
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for p in chunk {
                q = q
                    .bind(p.ev.source.as_str())
                    .bind(p.ev.natural_id.as_str())
                    .bind(p.ev.event_time)
                    .bind(p.ev.received_at)
                    .bind(p.ev.kind.tag())
                    .bind(p.detail.as_str())
                    .bind(p.ev.name.as_str())
                    .bind(p.ev.actor.as_deref())
                    .bind(p.ev.read_only as i64)
                    .bind(p.ev.error_code.as_deref())
                    .bind(p.resources.as_str())
                    .bind(p.ev.payload.as_str());
            }
            appended += q.execute(&mut *tx).await?.rows_affected();
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

    async fn query(&self, f: &EventFilter) -> Result<Vec<Event>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT ");
        qb.push(SELECT_COLUMNS);
        qb.push(" FROM events WHERE 1=1");
        if let Some(r) = &f.resource {
            qb.push(" AND seq IN (SELECT seq FROM event_resources WHERE resource = ");
            qb.push_bind(r.clone());
            if let Some(from) = f.from {
                qb.push(" AND event_time >= ").push_bind(from);
            }
            if let Some(to) = f.to {
                qb.push(" AND event_time < ").push_bind(to);
            }
            qb.push(")");
        }
        if let Some(from) = f.from {
            qb.push(" AND event_time >= ").push_bind(from);
        }
        if let Some(to) = f.to {
            qb.push(" AND event_time < ").push_bind(to);
        }
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
        if let Some(prefix) = &f.id_prefix {
            // A range on the unique index: [prefix, prefix + U+10FFFF).
            qb.push(" AND natural_id >= ").push_bind(prefix.clone());
            qb.push(" AND natural_id < ")
                .push_bind(format!("{prefix}\u{10FFFF}"));
        }
        if let Some(t) = &f.text {
            let like = format!(
                "%{}%",
                t.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            qb.push(" AND (name LIKE ")
                .push_bind(like.clone())
                .push(" ESCAPE '\\'");
            qb.push(" OR actor LIKE ")
                .push_bind(like.clone())
                .push(" ESCAPE '\\'");
            qb.push(" OR natural_id LIKE ")
                .push_bind(like.clone())
                .push(" ESCAPE '\\'");
            qb.push(" OR resources LIKE ")
                .push_bind(like)
                .push(" ESCAPE '\\')");
        }
        let dir = match f.order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        if f.by_time {
            qb.push(format_args!(" ORDER BY event_time {dir}, seq {dir}"));
        } else {
            qb.push(format_args!(" ORDER BY seq {dir}"));
        }
        if f.limit > 0 {
            qb.push(" LIMIT ").push_bind(f.limit);
        }
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(row_to_event).collect()
    }

    async fn get(&self, seq: i64) -> Result<Option<Event>> {
        let row = sqlx::query(
            "SELECT seq, source, natural_id, event_time, received_at, detail, name, actor, read_only, error_code, resources, payload FROM events WHERE seq = ?",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn find(&self, source: Source, natural_id: &str) -> Result<Option<Event>> {
        let row = sqlx::query(
            "SELECT seq, source, natural_id, event_time, received_at, detail, name, actor, read_only, error_code, resources, payload FROM events WHERE source = ? AND natural_id = ?",
        )
        .bind(source.as_str())
        .bind(natural_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    async fn count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn max_seq(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>> {
        let row = sqlx::query("SELECT name, value FROM checkpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
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
