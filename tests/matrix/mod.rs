//! The backend the store tests run on: SQLite files by default; PostgreSQL when
//! `ROOTLINE_TEST_BACKEND=postgres` (with `ROOTLINE_TEST_POSTGRES`, an admin URL, which
//! `.ci/run` sets), each store then a fresh database of its own on that server.
#![allow(dead_code)]

use rootline::store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Whether this run's stores are on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("ROOTLINE_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// The `--database` URL of the store at `path`: `sqlite://PATH`, or on PostgreSQL a
/// fresh database made the first time this process asks for `path` (the same URL after).
pub fn store_url(path: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}", path.display());
    }
    static MADE: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(url) = made.get(path) {
        return url.clone();
    }
    let admin = std::env::var("ROOTLINE_TEST_POSTGRES")
        .expect("ROOTLINE_TEST_BACKEND=postgres needs ROOTLINE_TEST_POSTGRES (an admin URL)");
    let name = format!("rt_{}_{}", std::process::id(), made.len());
    // A runtime of its own on a thread of its own: callers may be inside one.
    let url = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(rootline::store::fresh_database(&admin, &name))
            .expect("a fresh PostgreSQL database")
    })
    .join()
    .expect("database maker");
    made.insert(path.to_path_buf(), url.clone());
    url
}

/// Opens the store at `path` (see [`store_url`]).
pub async fn open_store(path: &Path) -> Store {
    Store::open(&store_url(path)).await.expect("open the store")
}

/// A store for one test: `sqlite::memory:`, or on PostgreSQL a fresh database.
pub async fn memory_store() -> Store {
    if !on_postgres() {
        return Store::open("sqlite::memory:")
            .await
            .expect("open the store");
    }
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    open_store(&PathBuf::from(format!("/memory/{n}"))).await
}

/// Runs one statement (the same text on both backends, no parameters) on the store at
/// `url`; the rows it changed.
pub async fn execute(url: &str, sql: &'static str) -> u64 {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let n = sqlx::query(sql)
            .execute(&pool)
            .await
            .expect(sql)
            .rows_affected();
        pool.close().await;
        n
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        let n = sqlx::query(sql)
            .execute(&pool)
            .await
            .expect(sql)
            .rows_affected();
        pool.close().await;
        n
    }
}

/// Whether `needle` is anywhere in the stored data at `url`: the database file and its
/// WAL on SQLite; on PostgreSQL every row of every table, as text.
pub async fn stored_anywhere(url: &str, needle: &str) -> bool {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let bytes = std::fs::read(path).expect("the store file");
        let wal = std::fs::read(format!("{path}-wal")).unwrap_or_default();
        return [bytes, wal]
            .iter()
            .any(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()));
    }
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(table_name::text) FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .expect("tables");
    let mut found = false;
    for t in tables {
        let sql = format!("SELECT count(*) FROM {t} AS r WHERE strpos(r::text, $1) > 0");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(needle)
            .fetch_one(&pool)
            .await
            .expect("scan");
        found |= n > 0;
    }
    pool.close().await;
    found
}

/// Reads the store at `path` as another process would, without opening it as a store
/// (which would run its migrations): the one column of `sql`'s rows as text, `None`
/// while the store or its tables do not exist yet. SQLite read-only; PostgreSQL a plain
/// connection. The column must be text.
pub async fn read_texts(path: &Path, sql: String) -> Option<Vec<String>> {
    use sqlx::ConnectOptions;
    let sql = sqlx::AssertSqlSafe(sql);
    if on_postgres() {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&store_url(path))
            .await
            .ok()?;
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut conn).await.ok()?;
        let _ = sqlx::Connection::close(conn).await;
        return Some(rows);
    }
    if !path.exists() {
        return None;
    }
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .ok()?;
    let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut conn).await.ok()?;
    let _ = sqlx::Connection::close(conn).await;
    Some(rows)
}

/// The number `sql` counts (see [`read_texts`]).
pub async fn read_count(path: &Path, sql: &str) -> Option<i64> {
    read_texts(path, format!("SELECT CAST(({sql}) AS TEXT)"))
        .await?
        .first()?
        .parse()
        .ok()
}
