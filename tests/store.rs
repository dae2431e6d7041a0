//! The event log on a real SQLite file: what the database itself refuses, idempotency,
//! gap-free sequence numbers, checkpoints, and the indexes the queries rely on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

use rootline::model::{NewEvent, Source};
use rootline::normalize::normalize;
use rootline::store::{Checkpoint, EventFilter, EventLog, SqliteStore};

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&format!("sqlite://{}", dir.path().join("log.db").display()))
        .await
        .unwrap()
}

fn ct(id: &str, minute: u32, request: &str) -> NewEvent {
    let raw = format!(
        "{{\"eventID\":\"{id}\",\"eventTime\":\"2025-10-07T14:{minute:02}:00Z\",\"eventName\":\"RevokeSecurityGroupIngress\",\"eventSource\":\"ec2.amazonaws.com\",\"requestParameters\":{request}}}"
    );
    normalize(Source::CloudTrail, &raw, None).unwrap()
}

fn sg_event(id: &str, minute: u32) -> NewEvent {
    ct(id, minute, "{\"groupId\":\"sg-0123456789abcdef0\"}")
}

/// `ev(i)` for every i in `ids`, twice for every seventh (repeats inside one call).
fn with_repeats(ids: std::ops::Range<u32>, ev: impl Fn(u32) -> NewEvent) -> Vec<NewEvent> {
    ids.flat_map(|i| {
        if i % 7 == 0 {
            vec![ev(i), ev(i)]
        } else {
            vec![ev(i)]
        }
    })
    .collect()
}

async fn fails(store: &SqliteStore, sql: &'static str) -> String {
    match sqlx::query(sql).execute(store.pool()).await {
        Ok(r) => panic!("{sql} succeeded ({} rows)", r.rows_affected()),
        Err(e) => e.to_string(),
    }
}

/// A store written before migration 0003, with one event_resources row per (resource,
/// event), keeps its per-resource index: opening it turns the links into postings, and
/// new appends add to them.
#[tokio::test]
async fn links_of_a_store_from_before_postings_become_postings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    {
        let pool = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        sqlx::migrate!("./migrations")
            .run_to(2, &pool)
            .await
            .unwrap();
        // As the store of 0002 wrote them: the event, then a link per resource.
        for i in 0..30i64 {
            let resources = format!("[\"sg/a\",\"sg/b{}\"]", i % 3);
            let seq = sqlx::query(
                "INSERT INTO events (source, natural_id, event_time, kind, detail, name, read_only, resources, payload) \
                 VALUES ('cloudtrail', ?, ?, 'change', '{\"kind\":\"change\"}', 'AuthorizeSecurityGroupIngress', 0, ?, '{}')",
            )
            .bind(format!("old{i}"))
            .bind(i * 1000)
            .bind(&resources)
            .execute(&pool)
            .await
            .unwrap()
            .last_insert_rowid();
            for r in ["sg/a".to_string(), format!("sg/b{}", i % 3)] {
                sqlx::query(
                    "INSERT INTO event_resources (resource, event_time, seq) VALUES (?, ?, ?)",
                )
                .bind(r)
                .bind(i * 1000)
                .bind(seq)
                .execute(&pool)
                .await
                .unwrap();
            }
        }
        pool.close().await;
    }
    let s = store(&dir).await;
    let postings: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT resource, first_seq, min_time, max_time, seqs FROM resource_postings ORDER BY resource",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    let all: Vec<String> = (1..=30).map(|n: i64| n.to_string()).collect();
    assert_eq!(
        postings,
        [
            ("sg/a".into(), 1, 0, 29_000, format!("[{}]", all.join(","))),
            (
                "sg/b0".into(),
                1,
                0,
                27_000,
                "[1,4,7,10,13,16,19,22,25,28]".into()
            ),
            (
                "sg/b1".into(),
                2,
                1_000,
                28_000,
                "[2,5,8,11,14,17,20,23,26,29]".into()
            ),
            (
                "sg/b2".into(),
                3,
                2_000,
                29_000,
                "[3,6,9,12,15,18,21,24,27,30]".into()
            ),
        ]
    );
    let ids = |f: EventFilter| {
        let s = s.clone();
        async move {
            s.query(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.natural_id)
                .collect::<Vec<_>>()
        }
    };
    let by = |r: &str, from: Option<i64>, to: Option<i64>| EventFilter {
        resource: Some(r.into()),
        from,
        to,
        ..EventFilter::default()
    };
    assert_eq!(ids(by("sg/a", None, None)).await.len(), 30);
    assert_eq!(
        ids(by("sg/b1", Some(4_000), Some(14_000))).await,
        ["old4", "old7", "old10", "old13"]
    );
    // A new append adds a posting, and both old and new events are found.
    s.append(&[sg_event("new", 1)], None).await.unwrap();
    let e = ids(by("sg/sg-0123456789abcdef0", None, None)).await;
    assert_eq!(e, ["new"]);
    assert_eq!(ids(by("sg/b2", None, None)).await.len(), 10);
}

#[tokio::test]
async fn update_and_delete_are_refused_by_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.append(&[sg_event("a", 1), sg_event("b", 2)], None)
        .await
        .unwrap();

    for sql in [
        "UPDATE events SET name = 'tampered' WHERE seq = 1",
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events WHERE seq = 2",
        "DELETE FROM events",
    ] {
        let e = fails(&s, sql).await;
        assert!(e.contains("events is append-only"), "{sql}: {e}");
    }
    for sql in [
        "UPDATE resource_postings SET resource = 'sg/other'",
        "DELETE FROM resource_postings",
    ] {
        let e = fails(&s, sql).await;
        assert!(e.contains("resource_postings is append-only"), "{sql}: {e}");
    }
    // The per-resource view of the postings cannot be written either.
    for sql in [
        "UPDATE event_resources SET resource = 'sg/other'",
        "DELETE FROM event_resources",
        "INSERT INTO event_resources (resource, event_time, seq) VALUES ('sg/x', 1, 1)",
    ] {
        let e = fails(&s, sql).await;
        assert!(e.contains("event_resources"), "{sql}: {e}");
    }
    // A row with the key of a stored one (event time, natural id, source) is skipped,
    // and REPLACE, which would delete the stored row, is refused: rootline's connections
    // run with recursive_triggers, so the deletion fires the DELETE trigger.
    let a_time = s
        .find(Source::CloudTrail, "a")
        .await
        .unwrap()
        .unwrap()
        .event_time;
    let same_key = |verb: &str| {
        format!(
            "{verb} INTO events (source, natural_id, event_time, kind, detail, name, read_only, resources, payload) \
             VALUES ('cloudtrail', 'a', {a_time}, 'other', '{{}}', 'replaced', 0, '[]', '{{}}')"
        )
    };
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{} ON CONFLICT DO NOTHING",
        same_key("INSERT")
    )))
    .execute(s.pool())
    .await
    .unwrap();
    assert_eq!(r.rows_affected(), 0);
    let e = sqlx::query(sqlx::AssertSqlSafe(same_key("INSERT")))
        .execute(s.pool())
        .await
        .expect_err("a second row with a stored key");
    assert!(e.to_string().contains("UNIQUE"), "{e}");
    let e = sqlx::query(sqlx::AssertSqlSafe(same_key("INSERT OR REPLACE")))
        .execute(s.pool())
        .await
        .expect_err("REPLACE of a stored row");
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = fails(
        &s,
        "INSERT OR REPLACE INTO events (seq, source, natural_id, event_time, kind, detail, name, read_only, resources, payload) \
         VALUES (1, 'cloudtrail', 'y', 0, 'other', '{}', 'x', 0, '[]', '{}')",
    )
    .await;
    assert!(e.contains("append-only"), "{e}");

    // Nothing changed.
    let a = s.find(Source::CloudTrail, "a").await.unwrap().unwrap();
    assert_eq!((a.seq, a.name.as_str()), (1, "RevokeSecurityGroupIngress"));
    assert_eq!(
        (s.count().await.unwrap(), s.max_seq().await.unwrap()),
        (2, 2)
    );
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_resources")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(links, 2);
}

#[tokio::test]
async fn appends_are_idempotent_and_gap_free_with_the_checkpoint_in_the_same_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let cp = |line: u64| Checkpoint {
        name: "ingest:test".into(),
        value: format!("{{\"line\":{line}}}"),
    };
    // Duplicates inside one call (same statement), and of earlier calls.
    let first = vec![
        sg_event("a", 1),
        sg_event("b", 2),
        sg_event("a", 1),
        sg_event("c", 3),
    ];
    let out = s.append(&first, Some(&cp(4))).await.unwrap();
    assert_eq!((out.appended, out.duplicates), (3, 1));
    // More than one INSERT statement's worth, half of them already stored.
    let mut second: Vec<NewEvent> = (0..1500)
        .map(|i| sg_event(&format!("n{i}"), i % 60))
        .collect();
    second.extend(first.iter().cloned());
    second.extend((0..1500).map(|i| sg_event(&format!("n{i}"), i % 60)));
    let out = s.append(&second, Some(&cp(3004))).await.unwrap();
    assert_eq!((out.appended, out.duplicates), (1500, 1504));
    assert_eq!(
        (s.count().await.unwrap(), s.max_seq().await.unwrap()),
        (1503, 1503)
    );
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM events ORDER BY seq")
        .fetch_all(s.pool())
        .await
        .unwrap();
    assert_eq!(seqs, (1..=1503).collect::<Vec<i64>>());
    // The checkpoint records the last sequence number it covers.
    assert_eq!(s.checkpoint("ingest:test").await.unwrap(), Some(cp(3004)));
    let last_seq: i64 =
        sqlx::query_scalar("SELECT last_seq FROM checkpoints WHERE name = 'ingest:test'")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(last_seq, 1503);
    // Every appended event is indexed under its resources, once.
    let links: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM event_resources WHERE resource = 'sg/sg-0123456789abcdef0'",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(links, 1503);
    // Stored as one posting per append call: its new events' seqs, ascending.
    let postings = || async {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT first_seq, seqs FROM resource_postings \
             WHERE resource = 'sg/sg-0123456789abcdef0' ORDER BY first_seq",
        )
        .fetch_all(s.pool())
        .await
        .unwrap()
    };
    let two = postings().await;
    let second_seqs: Vec<String> = (4..=1503).map(|n: i64| n.to_string()).collect();
    assert_eq!(
        two,
        [
            (1, "[1,2,3]".to_string()),
            (4, format!("[{}]", second_seqs.join(",")))
        ]
    );
    // An append that only moves the checkpoint (every line was rejected).
    let out = s.append(&[], Some(&cp(3010))).await.unwrap();
    assert_eq!((out.appended, out.duplicates), (0, 0));
    assert_eq!(s.checkpoint("ingest:test").await.unwrap(), Some(cp(3010)));
    assert_eq!(postings().await, two);

    // The same natural id in another source is another event.
    let mut other = sg_event("a", 1);
    other.source = Source::EventBridge;
    assert_eq!(s.append(&[other], None).await.unwrap().appended, 1);

    // Reopening keeps everything, and appending again is still idempotent.
    s.close().await;
    let s = store(&dir).await;
    assert_eq!(s.count().await.unwrap(), 1504);
    assert_eq!(s.append(&first, None).await.unwrap().appended, 0);
}

/// Every resource posting names only events that touch its resource, within its time
/// span, whether an INSERT statement appended all of its rows (seqs follow the
/// statement's order) or skipped some already stored (seqs read back and matched by key).
#[tokio::test]
async fn resource_links_point_at_their_own_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let ev = |i: u32| {
        ct(
            &format!("m{i}"),
            i % 60,
            &format!("{{\"groupId\":\"sg-{i:017x}\"}}"),
        )
    };
    // All new, nothing skipped.
    let first: Vec<NewEvent> = (0..1200).map(ev).collect();
    assert_eq!(s.append(&first, None).await.unwrap().appended, 1200);
    // Mixed: every third already stored, and repeats inside the same call.
    let second = with_repeats(1000..2600, ev);
    let out = s.append(&second, None).await.unwrap();
    assert_eq!(
        (out.appended, out.duplicates),
        (1400, second.len() as u64 - 1400)
    );
    let pool = s.pool();
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM resource_postings p, json_each(p.seqs) j \
         LEFT JOIN events e ON e.seq = j.value \
         WHERE e.seq IS NULL OR e.event_time < p.min_time OR e.event_time > p.max_time \
            OR p.resource NOT IN (SELECT value FROM json_each(e.resources)) \
            OR p.first_seq > j.value",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    // Each posting is one call's events of one resource: the 1,200 new events of the
    // first call and the 1,400 of the second each touch a resource of their own.
    let (postings, seqs, links, expected): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM resource_postings), \
                (SELECT SUM(json_array_length(seqs)) FROM resource_postings), \
                (SELECT COUNT(*) FROM event_resources), \
                (SELECT SUM(json_array_length(resources)) FROM events)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((postings, seqs, links, expected), (2600, 2600, 2600, 2600));
    // And each event is found under its own resource.
    for i in [0u32, 499, 500, 1100, 1999, 2599] {
        let f = EventFilter {
            resource: Some(format!("sg/sg-{i:017x}")),
            ..EventFilter::default()
        };
        let found = s.query(&f).await.unwrap();
        assert_eq!(
            found
                .iter()
                .map(|e| e.natural_id.as_str())
                .collect::<Vec<_>>(),
            [format!("m{i}")],
            "sg-{i:017x}"
        );
    }
}

/// `append_moving` stores what `append` stores: the payloads it moves out of the events
/// land in their own events' rows, across several INSERT statements, when some rows are
/// skipped (already stored, or repeated within the call), and the postings still name
/// their own events.
#[tokio::test]
async fn a_moving_append_stores_each_payload_with_its_own_event() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let ev = |i: u32| {
        ct(
            &format!("p{i}"),
            i % 60,
            &format!(
                "{{\"groupId\":\"sg-{i:017x}\",\"note\":\"{}\"}}",
                "x".repeat((i % 13) as usize)
            ),
        )
    };
    let mut batch: Vec<NewEvent> = (0..2500).map(ev).collect();
    let out = s.append_moving(&mut batch, None).await.unwrap();
    assert_eq!((out.appended, out.duplicates), (2500, 0));
    assert!(
        batch.iter().all(|e| e.payload.is_empty()),
        "payloads moved out"
    );
    let second = with_repeats(2000..5000, ev);
    let mut batch = second.clone();
    let out = s.append_moving(&mut batch, None).await.unwrap();
    assert_eq!(
        (out.appended, out.duplicates),
        (2500, second.len() as u64 - 2500)
    );
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT seq, natural_id, payload FROM events ORDER BY seq")
            .fetch_all(s.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 5000);
    for (seq, id, payload) in &rows {
        let i: u32 = id[1..].parse().unwrap();
        assert_eq!(payload, &ev(i).payload, "seq {seq}, {id}");
    }
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM resource_postings p, json_each(p.seqs) j \
         LEFT JOIN events e ON e.seq = j.value \
         WHERE e.seq IS NULL OR p.resource NOT IN (SELECT value FROM json_each(e.resources))",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
}

#[tokio::test]
async fn queries_use_time_resource_and_natural_id_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let mut evs = vec![
        sg_event("a", 1),
        ct(
            "b",
            2,
            "{\"instancesSet\":{\"items\":[{\"instanceId\":\"i-0123456789abcdef0\"}]}}",
        ),
        sg_event("c", 3),
    ];
    let concl = |id: &str| {
        let raw = format!(
            "{{\"id\":\"{id}\",\"time\":\"2025-10-07T14:05:00Z\",\"type\":\"incident_opened\"}}"
        );
        normalize(Source::Rootline, &raw, None).unwrap()
    };
    evs.push(concl("incident-opened/42"));
    evs.push(concl("incident-opened/43"));
    evs.push(concl("hypotheses/42"));
    s.append(&evs, None).await.unwrap();

    let ids =
        |v: Vec<rootline::model::Event>| v.into_iter().map(|e| e.natural_id).collect::<Vec<_>>();
    let f = EventFilter {
        resource: Some("sg/sg-0123456789abcdef0".into()),
        ..Default::default()
    };
    assert_eq!(ids(s.query(&f).await.unwrap()), ["a", "c"]);
    let f = EventFilter {
        from: Some(rootline::model::parse_time("2025-10-07T14:02:00Z").unwrap()),
        to: Some(rootline::model::parse_time("2025-10-07T14:03:00Z").unwrap()),
        ..Default::default()
    };
    assert_eq!(ids(s.query(&f).await.unwrap()), ["b"]);
    let f = EventFilter {
        sources: vec![Source::Rootline],
        id_prefix: Some("incident-opened/".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(s.query(&f).await.unwrap()),
        ["incident-opened/42", "incident-opened/43"]
    );
    assert_eq!(
        s.find(Source::CloudTrail, "b").await.unwrap().unwrap().seq,
        2
    );
    assert!(s.find(Source::EventBridge, "b").await.unwrap().is_none());
    assert!(s.find(Source::CloudTrail, "zz").await.unwrap().is_none());

    // The plans: no full scan of events for these lookups.
    let pool = s.pool();
    let plan = |sql: &'static str| async move {
        let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sql).fetch_all(pool).await.unwrap();
        rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
    };
    let p = plan("EXPLAIN QUERY PLAN SELECT seq FROM events WHERE substr(natural_id, -16) = substr('b', -16) AND natural_id = 'b' AND source = 'cloudtrail' AND source <> 'rootline' AND kind <> 'log' AND NOT (kind = 'change' AND read_only = 1 AND error_code IS NULL)").await;
    assert!(p.contains("events_cited_ids"), "{p}");
    let p = plan("EXPLAIN QUERY PLAN SELECT seq FROM events WHERE source = 'rootline' AND natural_id >= 'incident-opened/' AND natural_id < 'incident-opened0'").await;
    assert!(p.contains("events_rootline_ids"), "{p}");
    let p =
        plan("EXPLAIN QUERY PLAN SELECT seq FROM events WHERE event_time >= 0 AND event_time < 10")
            .await;
    assert!(p.contains("events_key"), "{p}");
    let p = plan("EXPLAIN QUERY PLAN SELECT j.value FROM resource_postings AS p, json_each(p.seqs) AS j WHERE p.resource = 'sg/sg-0123456789abcdef0' AND p.max_time >= 0 AND p.min_time < 10").await;
    assert!(p.contains("SEARCH p USING PRIMARY KEY (resource=?)"), "{p}");

    // A read-only call is nothing a conclusion cites: found by its whole key (source,
    // natural id, event time), not by its id alone, which never scans.
    let mut ro = ct("read-only-call", 9, "{}");
    ro.read_only = true;
    s.append(std::slice::from_ref(&ro), None).await.unwrap();
    assert!(s
        .find(Source::CloudTrail, "read-only-call")
        .await
        .unwrap()
        .is_none());
    let found = s
        .find_at(Source::CloudTrail, "read-only-call", ro.event_time)
        .await
        .unwrap()
        .unwrap();
    assert!(found.read_only);
    assert!(s
        .find_at(Source::CloudTrail, "read-only-call", ro.event_time + 1)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .find_at(Source::EventBridge, "read-only-call", ro.event_time)
        .await
        .unwrap()
        .is_none());
}
