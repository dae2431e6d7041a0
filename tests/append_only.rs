//! The event log is append-only, enforced by the database itself.

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
