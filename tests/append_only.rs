//! The event log is append-only, enforced by the database itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

use rootline::ingest::ingest_files;
use rootline::store::{EventLog, SqliteStore};
use std::path::PathBuf;

#[tokio::test]
async fn update_and_delete_on_events_fail_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/engine/one-incident.jsonl");
    ingest_files(&store, &[fixture], false).await.unwrap();
    let before = store.count().await.unwrap();
    assert!(before > 0);
    let first = store.get(1).await.unwrap().unwrap();
    for sql in [
        "UPDATE events SET name = 'tampered' WHERE seq = 1",
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events WHERE seq = 1",
        "DELETE FROM events",
        "UPDATE resource_postings SET resource = 'x'",
        "DELETE FROM resource_postings",
    ] {
        let err = sqlx::query(sql).execute(store.pool()).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.count().await.unwrap(), before);
    assert_eq!(store.get(1).await.unwrap().unwrap(), first);
    // Appending still works.
    let max = store.max_seq().await.unwrap();
    assert_eq!(max, before, "sequence numbers are gap-free");
}

/// Another program appending with the platform's own SQLite (here through Python's
/// sqlite3 module, which links the system library: 3.40 on Debian 12) is held to the
/// idempotency key (a second row with a stored key is refused) through the unique index,
/// not a scan of the whole log per row: the number of SQLite VM instructions an insert
/// runs does not grow with the store.
#[tokio::test]
async fn a_writer_on_the_system_sqlite_is_held_to_the_key_through_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.close().await;

    let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
cols = "source, natural_id, event_time, received_at, kind, detail, name, actor, read_only, error_code, resources, payload"
insert = "INSERT INTO events (" + cols + ") VALUES (" + ", ".join("?" * 12) + ")"
def row(i):
    nid = "%08x-0000-4000-8000-%012x" % (i, i * 7919)
    return ("cloudtrail", nid, 1700000000000 + i, None, "change", '{"kind":"change"}',
            "Op", None, 0, None, "[]", "{}")
filled = [0]
def steps(n, r):
    db.execute("BEGIN")
    db.executemany(insert, [row(i) for i in range(filled[0], n)])
    db.execute("COMMIT")
    filled[0] = n
    count = [0]
    def tick():
        count[0] += 1
        return 0
    db.set_progress_handler(tick, 1)
    try:
        db.execute(insert, r)
    except sqlite3.IntegrityError as e:
        if "UNIQUE" not in str(e):
            raise
    db.set_progress_handler(None, 1)
    return count[0]
small = (steps(3000, row(10)), steps(3000, row(1000000)))
large = (steps(60000, row(20)), steps(60000, row(2000000)))
total = db.execute("SELECT count(*) FROM events").fetchone()[0]
print(sqlite3.sqlite_version, small[0], small[1], large[0], large[1], total)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs (the test setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f.len(), 6, "{text}");
    let n = |i: usize| f[i].parse::<u64>().unwrap();
    // 60,000 distinct rows and two new ones; the two re-inserted keys were refused.
    assert_eq!(n(5), 60_002, "{text}");
    // A duplicate and a new row cost about the same at 3,000 and at 60,000 stored rows;
    // a scan would cost twenty times more at 60,000.
    for (small, large) in [(n(1), n(3)), (n(2), n(4))] {
        assert!(
            large < small * 2 && large < 2_000,
            "SQLite {}: {text}",
            f[0]
        );
    }
}
