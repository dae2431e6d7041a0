//! The event log on a real SQLite file: what the database itself refuses, idempotency,
//! gap-free sequence numbers, checkpoints, and the indexes the queries rely on.

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

async fn fails(store: &SqliteStore, sql: &'static str) -> String {
    match sqlx::query(sql).execute(store.pool()).await {
        Ok(r) => panic!("{sql} succeeded ({} rows)", r.rows_affected()),
        Err(e) => e.to_string(),
    }
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
        "UPDATE event_resources SET resource = 'sg/other'",
        "DELETE FROM event_resources",
    ] {
        let e = fails(&s, sql).await;
        assert!(e.contains("event_resources is append-only"), "{sql}: {e}");
    }
    // REPLACE would delete the stored row without firing the DELETE trigger: the insert
    // guard skips the row before any conflict resolution happens.
    let r = sqlx::query(
        "INSERT OR REPLACE INTO events (source, natural_id, event_time, kind, detail, name, read_only, resources, payload) \
         VALUES ('cloudtrail', 'a', 0, 'other', '{}', 'replaced', 0, '[]', '{}')",
    )
    .execute(s.pool())
    .await
    .unwrap();
    assert_eq!(r.rows_affected(), 0);
    // Sequence numbers are the database's to assign.
    let e = fails(
        &s,
        "INSERT INTO events (seq, source, natural_id, event_time, kind, detail, name, read_only, resources, payload) \
         VALUES (1000, 'cloudtrail', 'z', 0, 'other', '{}', 'x', 0, '[]', '{}')",
    )
    .await;
    assert!(e.contains("seq is assigned by the database"), "{e}");
    let e = fails(
        &s,
        "INSERT OR REPLACE INTO events (seq, source, natural_id, event_time, kind, detail, name, read_only, resources, payload) \
         VALUES (1, 'cloudtrail', 'y', 0, 'other', '{}', 'x', 0, '[]', '{}')",
    )
    .await;
    assert!(e.contains("seq is assigned by the database"), "{e}");

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
    // An append that only moves the checkpoint (every line was rejected).
    let out = s.append(&[], Some(&cp(3010))).await.unwrap();
    assert_eq!((out.appended, out.duplicates), (0, 0));
    assert_eq!(s.checkpoint("ingest:test").await.unwrap(), Some(cp(3010)));

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

/// Every event_resources row names its own event's resource and time, whether an INSERT
/// statement appended all of its rows (seqs follow the statement's order) or skipped some
/// already stored (seqs read back and matched by key).
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
    // All new: three statements, nothing skipped.
    let first: Vec<NewEvent> = (0..1200).map(ev).collect();
    assert_eq!(s.append(&first, None).await.unwrap().appended, 1200);
    // Mixed: every third already stored, and repeats inside the same call.
    let second: Vec<NewEvent> = (1000..2600)
        .flat_map(|i| {
            if i % 7 == 0 {
                vec![ev(i), ev(i)]
            } else {
                vec![ev(i)]
            }
        })
        .collect();
    let out = s.append(&second, None).await.unwrap();
    assert_eq!(
        (out.appended, out.duplicates),
        (1400, second.len() as u64 - 1400)
    );
    let pool = s.pool();
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM event_resources r JOIN events e ON e.seq = r.seq \
         WHERE r.event_time <> e.event_time \
            OR r.resource NOT IN (SELECT value FROM json_each(e.resources))",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    let (links, expected): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM event_resources), \
                (SELECT SUM(json_array_length(resources)) FROM events)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((links, expected), (2600, 2600));
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
    let p = plan("EXPLAIN QUERY PLAN SELECT seq FROM events WHERE substr(natural_id, -16) = substr('b', -16) AND natural_id = 'b' AND source = 'cloudtrail'").await;
    assert!(p.contains("events_id_tail"), "{p}");
    let p = plan("EXPLAIN QUERY PLAN SELECT seq FROM events WHERE source = 'rootline' AND natural_id >= 'incident-opened/' AND natural_id < 'incident-opened0'").await;
    assert!(p.contains("events_rootline_ids"), "{p}");
    let p =
        plan("EXPLAIN QUERY PLAN SELECT seq FROM events WHERE event_time >= 0 AND event_time < 10")
            .await;
    assert!(p.contains("events_time"), "{p}");
}

/// The bench's ceiling table: every row goes in as given (no idempotency, no links) and
/// nothing reaches `events` or `event_resources`.
#[tokio::test]
async fn the_bare_table_takes_rows_as_given_and_leaves_the_event_log_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    s.create_bare_table().await.unwrap();
    let rows = [sg_event("a", 1), sg_event("a", 1), sg_event("b", 2)];
    assert_eq!(s.insert_bare(&rows).await.unwrap(), 3);
    assert_eq!(s.insert_bare(&rows[2..]).await.unwrap(), 1);
    let count = |sql: &'static str| {
        let pool = s.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM bare_events").await, 4);
    assert_eq!(
        count("SELECT COUNT(*) FROM bare_events WHERE payload = (SELECT payload FROM bare_events WHERE seq = 4)").await,
        2
    );
    assert_eq!(count("SELECT COUNT(*) FROM events").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM event_resources").await, 0);
    // A second bare table in the same store is refused, not silently reused.
    assert!(s.create_bare_table().await.is_err());
}
