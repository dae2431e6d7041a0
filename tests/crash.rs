//! A `rootline ingest` killed with SIGKILL in the middle of a large file leaves a
//! consistent store, and running the same ingest again completes it with no duplicate
//! and no loss.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: u32 = 300_000;

/// Line `n` (1-based) of the generated recording: mostly distinct log events, every 50th a
/// re-delivery of an earlier one, every 1000th not valid. Returns the line and the natural
/// id it carries when it is valid.
fn gen_line(n: u32) -> (String, Option<u32>) {
    if n.is_multiple_of(1000) {
        return (
            format!("{{\"source\":\"logs\",\"payload\":{{\"message\":\"no id {n}\"}}}}"),
            None,
        );
    }
    let id = if n.is_multiple_of(50) {
        n - 1 - (n / 50) % 40 * 97 % (n - 1)
    } else {
        n
    };
    let id = if id % 1000 == 0 { id - 1 } else { id };
    let payload = format!(
        "{{\"logStreamName\":\"2025/10/07/[$LATEST]8a96a89c\",\"timestamp\":{},\"message\":\"INFO request {id} served in {} ms\",\"ingestionTime\":{},\"eventId\":\"{id:012}\",\"logGroupName\":\"/aws/lambda/orders-fn\"}}",
        1_759_800_000_000u64 + u64::from(id) * 7,
        id % 300,
        1_759_800_000_500u64 + u64::from(id) * 7,
    );
    (line("logs", &payload), Some(id))
}

#[test]
fn sigkill_mid_ingest_leaves_a_consistent_store_and_a_rerun_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let rec = dir.path().join("big.jsonl");
    let mut ids_by_line: Vec<Option<u32>> = Vec::with_capacity(LINES as usize);
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&rec).unwrap());
        for n in 1..=LINES {
            let (l, id) = gen_line(n);
            writeln!(w, "{l}").unwrap();
            ids_by_line.push(id);
        }
        w.flush().unwrap();
    }
    let distinct: BTreeSet<u32> = ids_by_line.iter().flatten().copied().collect();
    let valid = ids_by_line.iter().flatten().count() as u64;
    let invalid = u64::from(LINES) - valid;
    assert!(
        distinct.len() < valid as usize,
        "the input has re-deliveries"
    );

    let mut child = Command::new(BIN)
        .arg("--database")
        .arg(db_url(&db))
        .args(["ingest", "--no-progress"])
        .arg(&rec)
        .env_remove("ROOTLINE_DATABASE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    // Poll with a separate read connection until some, but not all, rows are committed.
    let before_kill = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut conn = None;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "the ingest ended ({status}) before it could be killed; make the input larger"
                );
            }
            assert!(
                Instant::now() < deadline,
                "no rows committed within the deadline"
            );
            if conn.is_none() && db.exists() {
                conn = try_conn(&db).await;
            }
            if let Some(c) = conn.as_mut() {
                // The table may not exist yet (migrations running): keep polling.
                if let Ok((count, _)) = sqlx::query_as::<_, (i64, i64)>(
                    "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events",
                )
                .fetch_one(&mut *c)
                .await
                {
                    if count > 0 {
                        return count;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    child.kill().unwrap(); // SIGKILL on unix
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the ingest was killed, not finished: {status}"
    );

    // The store as the kill left it.
    let (after_kill, line) = rt.block_on(async {
        let mut c = read_conn(&db).await;
        let (count, max) = count_and_max_seq(&mut c).await;
        assert!(count >= before_kill);
        assert!(
            (count as usize) < distinct.len(),
            "the kill came after the last commit ({count} rows): not a mid-ingest kill"
        );
        assert_eq!(max, count, "gap in the sequence after the kill");
        assert_no_duplicate_keys(&mut c).await;
        let (value, last_seq) = checkpoint(&mut c, &rec).await;
        assert_eq!(
            last_seq, max,
            "the checkpoint covers exactly the stored events"
        );
        let line = value["line"].as_u64().expect("the checkpoint names a line") as usize;
        assert!(line > 0 && line < LINES as usize);
        // Exactly the events of lines 1..=line are stored: nothing after the checkpoint,
        // nothing before it missing.
        let expected: BTreeSet<u32> = ids_by_line[..line].iter().flatten().copied().collect();
        assert_eq!(stored_ids(&mut c).await, expected);
        (count, line)
    });
    eprintln!("killed after {after_kill} rows (checkpoint at line {line} of {LINES})");

    // Run the same ingest again: it completes the log.
    let rerun = ingest(&db, &[&rec]);
    rerun.assert_no_panic();
    assert_eq!(
        rerun.code, 3,
        "the input has invalid lines: {}",
        rerun.stderr
    );
    let s = rerun.json();
    assert_eq!(s["read"], u64::from(LINES));
    assert_eq!(s["rejected"], invalid);
    assert_eq!(s["appended"], distinct.len() as u64 - after_kill as u64);
    assert_eq!(
        s["duplicates"],
        valid - (distinct.len() as u64 - after_kill as u64)
    );

    rt.block_on(async {
        let mut c = read_conn(&db).await;
        let (count, max) = count_and_max_seq(&mut c).await;
        assert_eq!(count as usize, distinct.len(), "no loss, no duplicate");
        assert_eq!(max, count, "gap-free");
        assert_no_duplicate_keys(&mut c).await;
        assert_eq!(stored_ids(&mut c).await, distinct);
        let (value, last_seq) = checkpoint(&mut c, &rec).await;
        assert_eq!(value["line"], u64::from(LINES), "the whole file is covered");
        assert_eq!(last_seq, count);
    });
}

async fn try_conn(path: &std::path::Path) -> Option<sqlx::SqliteConnection> {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::ConnectOptions;
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .connect()
        .await
        .ok()
}

async fn assert_no_duplicate_keys(c: &mut sqlx::SqliteConnection) {
    let dups: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM events GROUP BY source, natural_id HAVING COUNT(*) > 1)",
    )
    .fetch_one(c)
    .await
    .unwrap();
    assert_eq!(dups, 0, "duplicate natural ids");
}

async fn checkpoint(
    c: &mut sqlx::SqliteConnection,
    rec: &std::path::Path,
) -> (serde_json::Value, i64) {
    let (value, last_seq): (String, i64) =
        sqlx::query_as("SELECT value, last_seq FROM checkpoints WHERE name = ?")
            .bind(format!("ingest:{}", rec.display()))
            .fetch_one(c)
            .await
            .expect("the ingest checkpoint exists");
    (serde_json::from_str(&value).unwrap(), last_seq)
}

async fn stored_ids(c: &mut sqlx::SqliteConnection) -> BTreeSet<u32> {
    stored_keys(c)
        .await
        .into_iter()
        .map(|(source, id)| {
            assert_eq!(source, "logs");
            id.parse().unwrap()
        })
        .collect()
}
