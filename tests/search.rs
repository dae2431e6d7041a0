//! The search index (migrations/0007, src/store/search.rs) on real SQLite files: on a
//! generated store its answers equal a LIKE scan of the log for names, resource ids,
//! actors and request ids, with the other filters and orders; events appended after its
//! checkpoint are found before the projector reaches them, with the same answers as
//! after; a rebuild gives the same index; hostile text is never an error.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod matrix;
use rootline::model::{Event, Kind, NewEvent, Source};
use rootline::project::{catch_up, rebuild};
use rootline::store::{EventFilter, EventLog, Order, Store};
use std::collections::BTreeSet;
use std::path::Path;

async fn store_in(dir: &Path) -> Store {
    Store::open(&matrix::store_url(&dir.join("s.db")))
        .await
        .unwrap()
}

/// `n` generated CloudTrail events (the benchmarks' seeded generator: names, principals,
/// security groups, instances...), at random times over ten days, so that seq and event
/// time disagree.
#[cfg(feature = "bench")]
fn generated(seed: u64, n: usize) -> Vec<NewEvent> {
    use rootline::bench::gen::{FleetSize, Generator};
    let mut gen = Generator::with_fleet(
        seed,
        FleetSize {
            security_groups: 300,
            instances: 500,
        },
    );
    let mut out = Vec::with_capacity(n);
    let mut raw = String::new();
    while out.len() < n {
        let t = 1_760_000_000_000 + gen.rng().below(10 * 86_400_000) as i64;
        raw.clear();
        gen.record(t, &mut raw);
        out.push(
            rootline::normalize::normalize(Source::CloudTrail, &raw, Some(t + 300_000)).unwrap(),
        );
    }
    out
}

/// The seqs of the events whose name, actor, natural id or resources contain every one
/// of `words` (case-insensitive), with `extra` SQL conditions, in `order`, at most `limit`
/// (0: all): what `EventFilter.text` used to do, per word.
async fn like_scan(
    store: &Store,
    words: &[&str],
    extra: &str,
    order: &str,
    limit: i64,
) -> Vec<i64> {
    // SQLite's LIKE folds ASCII case; PostgreSQL's ILIKE does too.
    let like = if matrix::on_postgres() {
        "ILIKE"
    } else {
        "LIKE"
    };
    let mut sql = String::from("SELECT seq FROM events WHERE 1=1");
    let mut n = 0;
    for _ in words {
        sql.push_str(" AND (");
        for (i, col) in ["name", "actor", "natural_id", "resources"]
            .iter()
            .enumerate()
        {
            n += 1;
            let or = if i > 0 { " OR " } else { "" };
            sql.push_str(&format!("{or}{col} {like} ${n}"));
        }
        sql.push(')');
    }
    sql.push_str(extra);
    sql.push_str(" ORDER BY ");
    sql.push_str(order);
    if limit > 0 {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    let binds: Vec<String> = words
        .iter()
        .flat_map(|w| std::iter::repeat_n(format!("%{w}%"), 4))
        .collect();
    macro_rules! run {
        ($pool:expr) => {{
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(b);
            }
            q.fetch_all($pool).await.unwrap()
        }};
    }
    match store {
        Store::Sqlite(s) => run!(s.pool()),
        Store::Postgres(p) => run!(p.pool()),
    }
}

fn seqs(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

/// The search page's filter: newest first by event time, 100 at most.
fn page(text: &str) -> EventFilter {
    EventFilter {
        text: Some(text.to_string()),
        limit: 100,
        by_time: true,
        order: Order::Desc,
        ..Default::default()
    }
}

/// Queries whose words, in the generated data, start exactly where they occur as
/// substrings: there the index and the LIKE scan must agree.
#[cfg(feature = "bench")]
async fn queries(store: &Store) -> Vec<String> {
    let some = store
        .query(&EventFilter {
            after_seq: Some(4_321),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let request_id = some[0].natural_id.clone();
    let with_sg = store
        .query(&EventFilter {
            kinds: vec!["change".into()],
            after_seq: Some(777),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let sg = with_sg
        .iter()
        .flat_map(|e| &e.resources)
        .find(|r| r.starts_with("sg/"))
        .unwrap()
        .clone();
    let instance = with_sg
        .iter()
        .flat_map(|e| &e.resources)
        .find(|r| r.starts_with("instance/"))
        .unwrap()
        .clone();
    vec![
        "RevokeSecurityGroupIngress".into(),
        "DescribeInstances".into(),
        "alice".into(),
        "deploy-pipeline".into(),
        "ecs.amazonaws.com".into(),
        sg.clone(),                          // sg/sg-...
        sg.trim_start_matches("sg/").into(), // sg-...
        sg[..9].into(),                      // sg/sg-01: a prefix
        instance.trim_start_matches("instance/").into(),
        request_id.clone(),
        request_id[..8].into(), // the first group of a request id
        "alice RevokeSecurityGroupIngress".into(),
        "AuthorizeSecurityGroupIngress deploy".into(),
    ]
}

/// The words of `q` as the LIKE scan takes them (split where the index splits).
fn like_words(q: &str) -> Vec<String> {
    rootline::store::search_words(q).collect()
}

#[cfg(feature = "bench")]
#[tokio::test]
async fn the_index_answers_what_a_like_scan_of_the_log_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let events = generated(11, 30_000);
    for part in events.chunks(10_000) {
        store.append(part, None).await.unwrap();
        catch_up(&store, 4_000).await.unwrap();
    }
    assert_eq!(store.search_checkpoint().await.unwrap(), 30_000);
    for q in queries(&store).await {
        let words = like_words(&q);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        // The search page: newest first by event time, 100 at most.
        let got = seqs(&store.query(&page(&q)).await.unwrap());
        let want = like_scan(&store, &words, "", "event_time DESC, seq DESC", 100).await;
        assert!(!got.is_empty(), "{q}: nothing found");
        assert_eq!(got, want, "{q}");
        // Everything, oldest first by seq.
        let all = EventFilter {
            text: Some(q.clone()),
            ..Default::default()
        };
        let got = seqs(&store.query(&all).await.unwrap());
        let want = like_scan(&store, &words, "", "seq ASC", 0).await;
        assert_eq!(got, want, "{q}: all");
        // With the other filters: a time range, kinds, read-only calls left out, a seq
        // floor, oldest first by time, 37 at most.
        let (from, to) = (
            1_760_000_000_000 + 2 * 86_400_000,
            1_760_000_000_000 + 7 * 86_400_000,
        );
        let narrowed = EventFilter {
            text: Some(q.clone()),
            from: Some(from),
            to: Some(to),
            kinds: vec!["change".into()],
            exclude_read_only: true,
            after_seq: Some(1_000),
            limit: 37,
            by_time: true,
            order: Order::Asc,
            ..Default::default()
        };
        let got = seqs(&store.query(&narrowed).await.unwrap());
        let extra = format!(
            " AND event_time >= {from} AND event_time < {to} AND kind IN ('change') AND NOT read_only AND seq > 1000"
        );
        let want = like_scan(&store, &words, &extra, "event_time ASC, seq ASC", 37).await;
        assert_eq!(got, want, "{q}: narrowed");
        // And by resource.
        let sg_filter = EventFilter {
            resource: Some(
                words
                    .iter()
                    .find(|w| w.starts_with("sg-"))
                    .map_or("sg/none".into(), |w| format!("sg/{w}")),
            ),
            ..page(&q)
        };
        let got = seqs(&store.query(&sg_filter).await.unwrap());
        let key = sg_filter.resource.clone().unwrap();
        let extra = format!(" AND resources LIKE '%\"{key}\"%'");
        let want = like_scan(&store, &words, &extra, "event_time DESC, seq DESC", 100).await;
        assert_eq!(got, want, "{q}: by resource");
    }
    store.close().await;
}

#[cfg(feature = "bench")]
#[tokio::test]
async fn events_after_the_checkpoint_are_found_as_the_index_will_find_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let events = generated(12, 24_000);
    store.append(&events[..20_000], None).await.unwrap();
    catch_up(&store, 20_000).await.unwrap();
    // 4,000 more, not indexed yet; one of them names a word no other event has.
    store.append(&events[20_000..], None).await.unwrap();
    let mut late = events[23_999].clone();
    late.natural_id = "late-event-0001".into();
    late.name = "LateEventName".into();
    store.append(&[late], None).await.unwrap();
    assert_eq!(store.search_checkpoint().await.unwrap(), 20_000);
    let mut qs = queries(&store).await;
    qs.extend([
        "LateEventName".to_string(),
        "late-event".into(),
        "LateEv".into(),
    ]);
    let filters = |q: &str| {
        [
            page(q),
            EventFilter {
                text: Some(q.to_string()),
                ..Default::default()
            },
            EventFilter {
                text: Some(q.to_string()),
                limit: 10,
                order: Order::Desc,
                ..Default::default()
            },
        ]
    };
    let mut before = Vec::new();
    for q in &qs {
        for f in filters(q) {
            before.push(seqs(&store.query(&f).await.unwrap()));
        }
    }
    let found = seqs(&store.query(&page("LateEventName")).await.unwrap());
    assert_eq!(found, vec![24_001]);
    assert_eq!(
        seqs(&store.query(&page("late-event")).await.unwrap()),
        vec![24_001]
    );
    // Found among the newest of a frequent name too, whatever its event time.
    catch_up(&store, 1_500).await.unwrap();
    assert_eq!(store.search_checkpoint().await.unwrap(), 24_001);
    let mut after = Vec::new();
    for q in &qs {
        for f in filters(q) {
            after.push(seqs(&store.query(&f).await.unwrap()));
        }
    }
    assert_eq!(before, after);
    store.close().await;
}

/// Every (word, event key) pair of the index, through an fts5vocab table (on
/// PostgreSQL, the lexemes of each event's tsvector).
async fn index_content(store: &Store) -> (Vec<(String, i64)>, Vec<String>, i64) {
    let lite = match store {
        Store::Sqlite(s) => s,
        Store::Postgres(p) => {
            let pairs: Vec<(String, i64)> = sqlx::query_as(
                "SELECT w, ((event_time / 60000) << 33) | seq FROM search_index, \
                 unnest(tsvector_to_array(words)) AS w ORDER BY w COLLATE \"C\", 2",
            )
            .fetch_all(p.pool())
            .await
            .unwrap();
            let vocab: Vec<String> =
                sqlx::query_scalar("SELECT term::text FROM search_vocab ORDER BY term")
                    .fetch_all(p.pool())
                    .await
                    .unwrap();
            return (pairs, vocab, store.search_checkpoint().await.unwrap());
        }
    };
    let mut c = lite.pool().acquire().await.unwrap();
    sqlx::query("CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_instances USING fts5vocab(main, search_index, 'instance')")
        .execute(&mut *c)
        .await
        .unwrap();
    let pairs: Vec<(String, i64)> =
        sqlx::query_as("SELECT term, doc FROM temp.search_instances ORDER BY term, doc")
            .fetch_all(&mut *c)
            .await
            .unwrap();
    let vocab: Vec<String> = sqlx::query_scalar("SELECT term FROM search_vocab ORDER BY term")
        .fetch_all(&mut *c)
        .await
        .unwrap();
    drop(c);
    (pairs, vocab, store.search_checkpoint().await.unwrap())
}

#[cfg(feature = "bench")]
#[tokio::test]
async fn an_index_kept_current_equals_a_rebuilt_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let events = generated(13, 9_000);
    for part in events.chunks(2_500) {
        store.append(part, None).await.unwrap();
        catch_up(&store, 997).await.unwrap();
    }
    let kept = index_content(&store).await;
    assert_eq!(kept.2, 9_000);
    assert!(kept.0.len() > 9_000 * 8, "{}", kept.0.len());
    // Every event is in the index once per word, under its key.
    let keys: BTreeSet<i64> = kept.0.iter().map(|(_, k)| *k).collect();
    assert_eq!(keys.len(), 9_000);
    let all = store.query(&EventFilter::default()).await.unwrap();
    let want: BTreeSet<i64> = all
        .iter()
        .map(|e| rootline::store::index_key(e.event_time, e.seq).unwrap())
        .collect();
    assert_eq!(keys, want);
    rebuild(&store, 4_000).await.unwrap();
    assert_eq!(index_content(&store).await, kept);
    // Applying a batch twice changes nothing.
    store.apply_search(&all[..100], 100).await.unwrap();
    assert_eq!(index_content(&store).await, kept);
    // A store from before migrations/0007: the other projections current, the index
    // empty at checkpoint 0 (what the migration leaves). The next update indexes it all.
    let Some(lite) = store.as_sqlite() else {
        return store.close().await;
    };
    let pool = lite.pool();
    sqlx::query("INSERT INTO search_index (search_index) VALUES ('delete-all')")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM search_vocab")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE projection_checkpoints SET seq = 0 WHERE name = 'search'")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(store.projection_checkpoint().await.unwrap(), 0);
    let before = store.projection_state().await.unwrap().delta;
    let report = catch_up(&store, 4_000).await.unwrap();
    assert_eq!(report.events, 9_000);
    assert_eq!(index_content(&store).await, kept);
    assert_eq!(store.projection_state().await.unwrap().delta, before);
    store.close().await;
}

/// An event with the given name, actor, id and resources.
fn event(i: usize, name: &str, actor: &str, id: &str, resources: &[&str]) -> NewEvent {
    NewEvent {
        source: Source::CloudTrail,
        natural_id: id.to_string(),
        event_time: 1_760_000_000_000 + i as i64 * 1_000,
        received_at: None,
        kind: Kind::Change,
        name: name.to_string(),
        actor: Some(actor.to_string()),
        read_only: false,
        error_code: None,
        resources: resources.iter().map(|r| r.to_string()).collect(),
        payload: "{}".to_string(),
    }
}

const HOSTILE: &[&str] = &[
    "\"",
    "\"\"",
    "\"unterminated",
    "a\"b",
    "*",
    "sg-*",
    "* OR *",
    "NEAR(a b, 3)",
    "NEAR",
    "alice OR bob",
    "alice AND NOT bob",
    "alice NOT",
    "(",
    ")",
    "((alice)",
    "{name actor}: alice",
    "name:alice",
    "^alice",
    "-alice",
    "alice + bob",
    "'; DROP TABLE events; --",
    "%",
    "_",
    "\\",
    "%_\\",
    "\u{0}",
    "a\u{0}b",
    "é",
    "Été",
    "日本語",
    "🔥🔥",
    "\u{202e}gnp.exe",
    "e\u{301}",
    "İstanbul",
    "ǅ",
    "#req",
    "#",
    "x:y:z::",
    "\t\n\r",
];

#[tokio::test]
async fn hostile_text_is_never_an_error_and_finds_what_its_words_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let mut evs = vec![
        event(
            1,
            "RevokeSecurityGroupIngress",
            "arn:aws:iam::123456789012:user/alice",
            "req-1",
            &["sg/sg-0abc"],
        ),
        event(
            2,
            "Near\"Or(And)*",
            "bob \"the\" builder",
            "req-\"2\"",
            &["bucket/NEAR OR*"],
        ),
        event(3, "Été", "José", "日本語-3", &["role/İstanbul"]),
        event(4, "DROP", "'; DROP TABLE events; --", "req-4", &["fn/%_\\"]),
    ];
    for i in 5..300 {
        evs.push(event(
            i,
            "DescribeInstances",
            "arn:aws:iam::123456789012:user/bob",
            &format!("req-{i}"),
            &["instance/i-0123"],
        ));
    }
    store.append(&evs[..150], None).await.unwrap();
    catch_up(&store, 100).await.unwrap();
    store.append(&evs[150..], None).await.unwrap(); // some indexed, some not
    let long_a = "a".repeat(256);
    let long_q = "x\"".repeat(128);
    let long_words = "w ".repeat(128);
    let huge = "NEAR(\"".repeat(4_000);
    let mut texts: Vec<&str> = HOSTILE.to_vec();
    texts.extend([
        long_a.as_str(),
        long_q.as_str(),
        long_words.as_str(),
        huge.as_str(),
    ]);
    for t in &texts {
        for f in [
            page(t),
            EventFilter {
                text: Some(t.to_string()),
                ..Default::default()
            },
            EventFilter {
                text: Some(t.to_string()),
                from: Some(0),
                to: Some(i64::MAX),
                sources: vec![Source::CloudTrail],
                limit: 3,
                order: Order::Desc,
                ..Default::default()
            },
        ] {
            let r = store.query(&f).await;
            assert!(r.is_ok(), "{t:?}: {r:?}");
        }
    }
    // Text with no word finds nothing (not everything).
    for t in ["", "   ", "\"", "*", "()", "%_\\", ":/", "\u{0}"] {
        assert!(store.query(&page(t)).await.unwrap().is_empty(), "{t:?}");
    }
    // Words in quotes, operators and unicode are searched as words.
    let found = |t: &str| {
        let store = store.clone();
        let t = t.to_string();
        async move { seqs(&store.query(&page(&t)).await.unwrap()) }
    };
    assert_eq!(found("\"near\" OR").await, vec![2]);
    assert_eq!(found("NEAR(or)").await, vec![2]);
    assert_eq!(found("\"the\" builder").await, vec![2]);
    assert_eq!(found("été josé").await, vec![3]);
    assert_eq!(found("ÉTÉ").await, vec![3]);
    assert_eq!(found("日本語").await, vec![3]);
    assert_eq!(
        found("istanbul").await,
        Vec::<i64>::new(),
        "no accent folding: İ is i̇"
    );
    assert_eq!(found("İstanbul").await, vec![3]);
    assert_eq!(found("'; DROP TABLE events; --").await, vec![4]);
    assert_eq!(found("alice sg-0abc").await, vec![1]);
    assert_eq!(found("\"2\" req").await, vec![2]);
    // Indexed or not, the same rules: 150 indexed, 149 not.
    assert_eq!(found("bob describeinstances").await.len(), 100);
    assert_eq!(
        store
            .query(&EventFilter {
                text: Some("i-0123".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        295
    );
    assert_eq!(store.count().await.unwrap(), 299);
    store.close().await;
}

#[tokio::test]
async fn newest_first_is_exact_within_a_minute_and_across_the_unindexed_tail() {
    // 600 events in two minutes, their times running backwards as their seqs grow, so
    // the index's key order (minute, then seq) is not their time order within a minute.
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path()).await;
    let minute = 1_760_000_040_000;
    let evs: Vec<NewEvent> = (0..600)
        .map(|i| {
            let mut e = event(i, "PutObject", "alice", &format!("id-{i}"), &["bucket/b"]);
            e.event_time = minute + 119_000 - (i as i64) * 197 % 119_000;
            e
        })
        .collect();
    store.append(&evs[..500], None).await.unwrap();
    catch_up(&store, 128).await.unwrap();
    store.append(&evs[500..], None).await.unwrap();
    for (order, sql) in [
        (Order::Desc, "event_time DESC, seq DESC"),
        (Order::Asc, "event_time ASC, seq ASC"),
    ] {
        for limit in [1, 7, 100, 450, 0] {
            let f = EventFilter {
                order,
                limit,
                ..page("putobject alice")
            };
            let got = seqs(&store.query(&f).await.unwrap());
            let want = like_scan(&store, &["putobject", "alice"], "", sql, limit).await;
            assert_eq!(got, want, "{order:?} {limit}");
        }
    }
    store.close().await;
}

/// A handle without a search index (replay's throwaway store) projects everything else
/// and leaves the index where it was; a normal handle later brings it up to date, with
/// the same answers as a store indexed all along.
#[cfg(feature = "bench")]
#[tokio::test]
async fn a_handle_without_the_index_leaves_it_to_the_next_normal_one() {
    if matrix::on_postgres() {
        // A SQLite handle's mode (replay's throwaway file); PostgreSQL keeps its index.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let events = generated(8, 3_000);
    let store = store_in(dir.path()).await.without_search_index();
    store.append(&events, None).await.unwrap();
    let r = catch_up(&store, 1_000).await.unwrap();
    assert_eq!(r.events, 3_000);
    assert_eq!(store.projection_checkpoint().await.unwrap(), 3_000);
    assert_eq!(store.search_checkpoint().await.unwrap(), 0);
    // Caught up: nothing more to apply through this handle.
    assert_eq!(catch_up(&store, 1_000).await.unwrap().events, 0);
    store.close().await;

    let store = store_in(dir.path()).await;
    assert_eq!(store.projection_checkpoint().await.unwrap(), 0);
    catch_up(&store, 1_000).await.unwrap();
    assert_eq!(store.search_checkpoint().await.unwrap(), 3_000);
    let name = events[17].name.clone();
    let found = store
        .query(&EventFilter {
            text: Some(name.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|e| e.seq).collect::<BTreeSet<_>>(),
        like_scan(&store, &[&name], "", "seq", 0)
            .await
            .into_iter()
            .collect()
    );
}
