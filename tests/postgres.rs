//! The event log on a real PostgreSQL server (`ROOTLINE_TEST_POSTGRES`, which
//! `.ci/run` sets through `.ci/postgres`): what the database refuses, idempotency on
//! (source, natural id, event time), gap-free seqs, monthly partitions made as needed,
//! the same answers as the SQLite store for the same input, and two writers appending at
//! once while a reader follows the sequence. Each test works in a database of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod common;

use rootline::ingest::ingest_files;
use rootline::model::{Event, NewEvent, Source};
use rootline::normalize::normalize;
use rootline::store::{
    drop_database, fresh_database, Checkpoint, EventFilter, EventLog, Order, PgStore, SqliteStore,
};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh database on the test server, dropped when the value is.
struct Db {
    admin: String,
    name: String,
    url: String,
}

fn server() -> String {
    std::env::var("ROOTLINE_TEST_POSTGRES").expect(
        "ROOTLINE_TEST_POSTGRES: a PostgreSQL URL whose role may create databases \
         (`bash .ci/postgres` starts a throwaway server and prints one)",
    )
}

async fn fresh_db() -> Db {
    static N: AtomicUsize = AtomicUsize::new(0);
    let admin = server();
    let name = format!(
        "rootline_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let url = fresh_database(&admin, &name).await.unwrap();
    Db { admin, name, url }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Best effort, on a thread of its own (Drop cannot await).
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(drop_database(&admin, &name));
        })
        .join();
    }
}

fn ct(id: &str, time: &str, resource: &str) -> NewEvent {
    let raw = format!(
        "{{\"eventID\":\"{id}\",\"eventTime\":\"{time}\",\"eventName\":\"RevokeSecurityGroupIngress\",\"eventSource\":\"ec2.amazonaws.com\",\"requestParameters\":{{\"groupId\":\"{resource}\"}}}}"
    );
    normalize(Source::CloudTrail, &raw, None).unwrap()
}

async fn fails(store: &PgStore, sql: &'static str) -> String {
    match sqlx::query(sql).execute(store.pool()).await {
        Ok(r) => panic!("{sql} succeeded ({} rows)", r.rows_affected()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn the_database_refuses_update_delete_and_truncate_of_the_log() {
    let db = fresh_db().await;
    let store = PgStore::open(&db.url).await.unwrap();
    let events = [
        ct("a", "2025-10-07T14:00:00Z", "sg-0123456789abcdef0"),
        ct("b", "2025-11-07T14:00:00Z", "sg-0123456789abcdef1"),
    ];
    assert_eq!(store.append(&events, None).await.unwrap().appended, 2);
    for sql in [
        "UPDATE events SET name = 'x'",
        "DELETE FROM events",
        "TRUNCATE events",
        "TRUNCATE events_y2025m10",
        "UPDATE events_y2025m11 SET name = 'x'",
        "DELETE FROM events_y2025m11",
        "UPDATE event_resources SET seq = 0",
        "DELETE FROM event_resources",
        "TRUNCATE event_resources",
        "TRUNCATE event_resources_y2025m10",
        "DELETE FROM log_head",
        "TRUNCATE log_head",
    ] {
        let e = fails(&store, sql).await;
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(store.count().await.unwrap(), 2);
    let all = store.query(&EventFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["RevokeSecurityGroupIngress", "RevokeSecurityGroupIngress"]
    );
}

#[tokio::test]
async fn appends_are_idempotent_on_source_id_and_time_with_gap_free_seqs() {
    let db = fresh_db().await;
    let store = PgStore::open(&db.url).await.unwrap();
    let a = ct("a", "2025-10-07T14:00:00Z", "sg-0123456789abcdef0");
    // The same id at another time is another event (a re-delivery carries its time).
    let a_later = ct("a", "2025-10-07T14:05:00Z", "sg-0123456789abcdef0");
    let b = ct("b", "2025-10-07T14:01:00Z", "sg-0123456789abcdef1");
    let cp = |v: &str| Checkpoint {
        name: "file".into(),
        value: v.into(),
    };
    // Within one call the first of a key counts.
    let out = store
        .append(&[a.clone(), a.clone(), a_later.clone()], Some(&cp("1")))
        .await
        .unwrap();
    assert_eq!((out.appended, out.duplicates), (2, 1));
    // A batch of stored and new keys: the new ones get the next seqs, without a gap.
    let c = ct("c", "2025-10-07T14:02:00Z", "sg-0123456789abcdef2");
    let out = store
        .append(
            &[a.clone(), b.clone(), a_later.clone(), c.clone()],
            Some(&cp("2")),
        )
        .await
        .unwrap();
    assert_eq!((out.appended, out.duplicates), (2, 2));
    let all = store.query(&EventFilter::default()).await.unwrap();
    let got: Vec<(i64, &str, i64)> = all
        .iter()
        .map(|e| (e.seq, e.natural_id.as_str(), e.event_time))
        .collect();
    assert_eq!(
        got,
        [
            (1, "a", a.event_time),
            (2, "a", a_later.event_time),
            (3, "b", b.event_time),
            (4, "c", c.event_time)
        ]
    );
    // Everything stored already: nothing moves.
    let out = store.append(&[b.clone(), c.clone()], None).await.unwrap();
    assert_eq!((out.appended, out.duplicates), (0, 2));
    assert_eq!(store.max_seq().await.unwrap(), 4);
    assert_eq!(store.count().await.unwrap(), 4);
    // The checkpoint was written with its events, and records the head.
    assert_eq!(store.checkpoint("file").await.unwrap().unwrap().value, "2");
    let last: i64 = sqlx::query_scalar("SELECT last_seq FROM checkpoints WHERE name = 'file'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(last, 4);
    // Lookups by key.
    let found = store
        .find_at(Source::CloudTrail, "a", a_later.event_time)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.seq, 2);
    assert!(store
        .find_at(Source::CloudTrail, "a", a_later.event_time + 1)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .find(Source::CloudTrail, "c")
            .await
            .unwrap()
            .unwrap()
            .seq,
        4
    );
    assert_eq!(store.get(3).await.unwrap().unwrap().natural_id, "b");
    assert!(store.get(5).await.unwrap().is_none());
}

#[tokio::test]
async fn partitions_are_made_ahead_of_now_and_for_every_month_appended() {
    let db = fresh_db().await;
    let store = PgStore::open(&db.url).await.unwrap();
    let now = rootline::store::Month::of(chrono::Utc::now().timestamp_millis());
    let parts = store.partitions().await.unwrap();
    assert!(parts.contains(&now.suffix), "{parts:?}");
    assert!(parts.len() >= 5, "{parts:?}");
    let events = [
        ct("old", "2019-03-31T23:59:59Z", "sg-0123456789abcdef0"),
        ct("new", "2019-04-01T00:00:00Z", "sg-0123456789abcdef0"),
    ];
    store.append(&events, None).await.unwrap();
    let parts = store.partitions().await.unwrap();
    assert!(parts.contains(&"y2019m03".to_string()), "{parts:?}");
    assert!(parts.contains(&"y2019m04".to_string()), "{parts:?}");
    // Each event is in the partition of its month.
    let in_march: i64 = sqlx::query_scalar("SELECT count(*) FROM events_y2019m03")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(in_march, 1);
    // A second store on the same database (another instance) finds them made.
    let other = PgStore::open(&db.url).await.unwrap();
    other
        .append(
            &[ct("more", "2019-03-02T00:00:00Z", "sg-0123456789abcdef0")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(other.count().await.unwrap(), 3);
}

/// The SQLite store and the PostgreSQL one, given the same recordings, store the same
/// events with the same seqs, and answer every filter alike.
#[tokio::test]
async fn the_same_recordings_give_the_same_log_on_both_backends() {
    let db = fresh_db().await;
    let pg = PgStore::open(&db.url).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lite = SqliteStore::open(&dir.path().join("log.db").display().to_string())
        .await
        .unwrap();
    let files = [
        common::fixture("demo/security-group.jsonl"),
        common::fixture("demo/bad-deployment.jsonl"),
    ];
    let a = ingest_files(&pg, &files, false).await.unwrap();
    let b = ingest_files(&lite, &files, false).await.unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    // Again: everything is a duplicate on both.
    let again = ingest_files(&pg, &files[..1], false).await.unwrap();
    assert_eq!(again.appended, 0);
    assert!(again.duplicates > 0);

    let all = lite.query(&EventFilter::default()).await.unwrap();
    assert!(all.len() > 1000, "{}", all.len());
    assert_eq!(pg.count().await.unwrap(), lite.count().await.unwrap());
    assert_eq!(pg.max_seq().await.unwrap(), lite.max_seq().await.unwrap());
    // A security group changed (not read) in the second half of the log.
    let change = all[all.len() / 2..]
        .iter()
        .find(|e| !e.read_only && e.resources.iter().any(|r| r.starts_with("sg/")))
        .unwrap();
    let resource = change
        .resources
        .iter()
        .find(|r| r.starts_with("sg/"))
        .cloned()
        .unwrap();
    let mid = change.event_time + 1;
    let prefix: String = all[10].natural_id.chars().take(4).collect();
    let filters = [
        EventFilter::default(),
        EventFilter {
            by_time: true,
            order: Order::Desc,
            limit: 50,
            ..Default::default()
        },
        EventFilter {
            resource: Some(resource.clone()),
            ..Default::default()
        },
        EventFilter {
            resource: Some(resource),
            from: Some(mid - 3_600_000),
            to: Some(mid),
            exclude_read_only: true,
            ..Default::default()
        },
        EventFilter {
            sources: vec![Source::CloudTrail],
            kinds: vec!["change".into()],
            after_seq: Some(100),
            limit: 200,
            without_payload: true,
            ..Default::default()
        },
        EventFilter {
            sources: vec![all[10].source],
            id_prefix: Some(prefix),
            ..Default::default()
        },
    ];
    for f in &filters {
        let x: Vec<Event> = pg.query(f).await.unwrap();
        let y: Vec<Event> = lite.query(f).await.unwrap();
        assert!(!y.is_empty(), "{f:?}");
        assert_eq!(x, y, "{f:?}");
    }
    for e in all.iter().step_by(97) {
        assert_eq!(pg.get(e.seq).await.unwrap().as_ref(), Some(e));
        assert_eq!(
            pg.find_at(e.source, &e.natural_id, e.event_time)
                .await
                .unwrap()
                .as_ref(),
            Some(e)
        );
        assert_eq!(
            pg.find(e.source, &e.natural_id).await.unwrap(),
            lite.find(e.source, &e.natural_id).await.unwrap()
        );
    }
}

/// Two writers (two pools, as two processes) append at once, with ids of their own and
/// ids both append; a reader follows the sequence meanwhile. It sees every event once,
/// in seq order, each seq the one after the last it saw: no gap it would later have to
/// fill.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_and_a_reader_following_the_sequence() {
    let db = fresh_db().await;
    let w1 = PgStore::open(&db.url).await.unwrap();
    let w2 = PgStore::open(&db.url).await.unwrap();
    let reader = PgStore::open(&db.url).await.unwrap();
    const BATCHES: usize = 40;
    const PER: usize = 50;
    let batch = |w: usize, b: usize| -> Vec<NewEvent> {
        (0..PER)
            .map(|i| {
                // Every third id is shared by both writers (same key, same time).
                let id = if i % 3 == 0 {
                    format!("shared-{b}-{i}")
                } else {
                    format!("w{w}-{b}-{i}")
                };
                let minute = (b * PER + i) % 60;
                ct(
                    &id,
                    &format!("2025-10-07T{:02}:{minute:02}:00Z", 10 + b % 10),
                    &format!("sg-0123456789abcde{:02x}", i % 200),
                )
            })
            .collect()
    };
    let expected: BTreeSet<String> = (1..=2)
        .flat_map(|w| (0..BATCHES).flat_map(move |b| batch(w, b)))
        .map(|e| e.natural_id)
        .collect();
    let write = |store: &'static PgStore, w: usize| async move {
        let mut appended = 0;
        for b in 0..BATCHES {
            appended += store.append(&batch(w, b), None).await.unwrap().appended;
        }
        appended
    };
    let (w1, w2) = (Box::leak(Box::new(w1)), Box::leak(Box::new(w2)));
    let t1 = tokio::spawn(write(w1, 1));
    let t2 = tokio::spawn(write(w2, 2));
    let mut seen: Vec<Event> = Vec::new();
    let mut last = 0i64;
    loop {
        let page = reader
            .query(&EventFilter {
                after_seq: Some(last),
                limit: 97,
                without_payload: true,
                ..Default::default()
            })
            .await
            .unwrap();
        for e in page {
            assert_eq!(
                e.seq,
                last + 1,
                "the reader skipped a seq it never sees later"
            );
            last = e.seq;
            seen.push(e);
        }
        if t1.is_finished() && t2.is_finished() && last == reader.max_seq().await.unwrap() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let appended = t1.await.unwrap() + t2.await.unwrap();
    assert_eq!(appended as usize, expected.len());
    let ids: Vec<String> = seen.iter().map(|e| e.natural_id.clone()).collect();
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(ids.len(), unique.len(), "an event was seen twice");
    assert_eq!(unique, expected);
    assert_eq!(reader.count().await.unwrap() as usize, expected.len());
}

/// `bench ingest --postgres`: both phases on fresh databases of the server, every record
/// appended, the databases dropped afterwards.
#[cfg(feature = "bench")]
#[tokio::test]
async fn the_ingest_benchmark_runs_on_postgres() {
    let admin = server();
    let dir = tempfile::tempdir().unwrap();
    let opts = rootline::bench::IngestOptions {
        records: 600,
        seed: 7,
        keep: false,
        pad_kib: 0,
        check: false,
        breakdown: false,
    };
    let b = rootline::bench::measure_ingest(opts, Some(dir.path().to_path_buf()), Some(&admin))
        .await
        .unwrap();
    assert_eq!((b.appended, b.floor_rows), (600, 600));
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'rootline_bench_%_' || $1",
    )
    .bind(std::process::id().to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

/// Every command takes a PostgreSQL URL; a server that does not answer is named in the
/// error, its password left out.
#[test]
fn a_postgres_server_that_does_not_answer_is_named_without_its_password() {
    let out = std::process::Command::new(common::BIN)
        .args([
            "--database",
            "postgres://rootline:s3cret-pw@127.0.0.1:1/x",
            "incidents",
        ])
        .env_remove("ROOTLINE_DATABASE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the store at postgres://"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1:1/x"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `rootline ingest` and `rootline events` on PostgreSQL: the same summary and the same
/// events as on SQLite; a second ingest only finds duplicates; a password in the URL
/// stays out of error messages.
#[tokio::test]
async fn ingest_and_events_commands_work_on_postgres_as_on_sqlite() {
    let db = fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let file = common::fixture("demo/capacity-saturation.jsonl");
    let run = |url: &str, args: &[&str]| {
        let out = std::process::Command::new(common::BIN)
            .arg("--database")
            .arg(url)
            .args(args)
            .env_remove("ROOTLINE_DATABASE")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let lite = format!("sqlite://{}", dir.path().join("log.db").display());
    let f = file.display().to_string();
    let ingest = ["ingest", "--no-progress", "--json", f.as_str()];
    let (code, pg_out, err) = run(&db.url, &ingest);
    assert_eq!(code, Some(0), "{err}");
    let (code, lite_out, err) = run(&lite, &ingest);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(pg_out, lite_out);
    let summary: serde_json::Value = serde_json::from_str(&pg_out).unwrap();
    assert!(summary["appended"].as_u64().unwrap() > 1000, "{summary}");
    let (_, again, _) = run(&db.url, &ingest);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["appended"], 0);
    assert_eq!(again["duplicates"], summary["appended"]);
    for args in [
        vec!["events", "--format", "json"],
        vec![
            "events",
            "--source",
            "cloudtrail",
            "--kind",
            "change",
            "--format",
            "json",
        ],
    ] {
        let (code, pg_events, err) = run(&db.url, &args);
        assert_eq!(code, Some(0), "{err}");
        let (_, lite_events, _) = run(&lite, &args);
        assert_eq!(pg_events, lite_events, "{args:?}");
        assert!(pg_events.len() > 1000);
    }
    let (code, _, err) = run(
        "postgres://rootline:pw-s3cret-value@127.0.0.1:1/x",
        &["events"],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("cannot open the store"), "{err}");
    assert!(!err.contains("pw-s3cret-value"), "{err}");
}

/// Leases on PostgreSQL: of two stores (two processes) keeping one lease, one holds it;
/// the holder stopped without releasing it (as by SIGKILL), the other holds it within
/// the lease time and one renewal; a lease given up cleanly moves at the next try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_on_postgres_moves_to_the_other_process_when_its_holder_dies() {
    use rootline::store::{keep_lease, Leases, LEASE_EVERY, LEASE_TTL};
    let db = fresh_db().await;
    let a = PgStore::open(&db.url).await.unwrap();
    let b = PgStore::open(&db.url).await.unwrap();
    let (stop_a, stop_rx_a) = tokio::sync::watch::channel(false);
    let (stop_b, stop_rx_b) = tokio::sync::watch::channel(false);
    let (task_a, mut held_a) = keep_lease(a.clone(), "analyser", "host-1-a", stop_rx_a);
    held_a.wait_for(|h| *h).await.unwrap();
    let (task_b, mut held_b) = keep_lease(b.clone(), "analyser", "host-2-b", stop_rx_b);
    tokio::time::sleep(LEASE_EVERY + LEASE_EVERY / 2).await;
    assert!(*held_a.borrow() && !*held_b.borrow());
    // Killed: its keeper stops without releasing.
    task_a.abort();
    let t = std::time::Instant::now();
    tokio::time::timeout(LEASE_TTL + 2 * LEASE_EVERY, held_b.wait_for(|h| *h))
        .await
        .expect("the other process took the lease")
        .unwrap();
    assert!(t.elapsed() <= LEASE_TTL + LEASE_EVERY + std::time::Duration::from_secs(1));
    let term: i64 = sqlx::query_scalar("SELECT term FROM leases WHERE name = 'analyser'")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(term, 2);
    // The first comes back: the lease stays where it is while renewed.
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(
        a.lease_hold("analyser", "host-1-a", now, 10_000)
            .await
            .unwrap(),
        None
    );
    // Its holder stopping cleanly gives it up: it can be taken at once.
    stop_b.send(true).unwrap();
    task_b.await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(
        a.lease_hold("analyser", "host-1-a", now, 10_000)
            .await
            .unwrap(),
        Some(3)
    );
    drop(stop_a);
}
