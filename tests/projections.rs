//! Projections (resource graph, alarm definitions, alarm states) maintained as events are
//! appended equal the ones rebuilt from the log, on the training scenarios and on a
//! generated store; the projected graph is the engine's graph; a projector or a server
//! killed with SIGKILL mid-projection leaves projections that a rerun completes to
//! exactly the rebuilt ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod matrix;
use rootline::correlate::topology::ResourceGraph;
use rootline::ingest::ingest_files;
use rootline::project::{catch_up, rebuild};
use rootline::store::{
    EventFilter, EventLog, MarkFilter, MarkGrid, ProjectionState, Store, WindowMark,
};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/train");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    v.sort();
    v
}

fn read_lines(path: &Path) -> Vec<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines().map(str::to_string).collect()
}

/// Line `i` of a generated recording: CloudTrail calls relating security groups,
/// instances and load balancers, some failing, some alarm transitions, out of time order.
fn generated_line(i: u64) -> String {
    let sg = i * 7 % 300;
    let inst = i * 13 % 500;
    let lb = i % 40;
    let t = 1_760_000_000_000i64 + ((i * 7919) % 90_000) as i64 * 1000;
    let time = rootline::model::fmt_time(t);
    if i.is_multiple_of(97) {
        let state = if i.is_multiple_of(2) { "ALARM" } else { "OK" };
        return format!(
            "{{\"source\":\"cloudwatch.alarm_history\",\"payload\":{{\"AlarmName\":\"lb-{lb}-5xx\",\"AlarmType\":\"MetricAlarm\",\"Timestamp\":\"{time}\",\"HistoryItemType\":\"StateUpdate\",\"HistorySummary\":\"Alarm updated from X to {state}\",\"HistoryData\":\"{{\\\"version\\\":\\\"1.0\\\",\\\"oldState\\\":{{\\\"stateValue\\\":\\\"OK\\\"}},\\\"newState\\\":{{\\\"stateValue\\\":\\\"{state}\\\",\\\"stateReason\\\":\\\"r\\\"}}}}\"}}}}"
        );
    }
    let error = if i.is_multiple_of(11) {
        ",\"errorCode\":\"AccessDenied\""
    } else {
        ""
    };
    format!(
        "{{\"source\":\"cloudtrail\",\"payload\":{{\"eventVersion\":\"1.09\",\"eventID\":\"00000000-0000-4000-8000-{i:012x}\",\"eventTime\":\"{time}\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"ModifyInstanceAttribute\",\"readOnly\":false{error},\"requestParameters\":{{\"instanceId\":\"i-{inst:017x}\",\"groupSet\":{{\"items\":[{{\"groupId\":\"sg-{sg:017x}\"}}]}}}},\"responseElements\":{{\"loadBalancerName\":\"web-{lb}\"}}}}}}"
    )
}

async fn store_in(dir: &Path, name: &str) -> Store {
    Store::open(&matrix::store_url(&dir.join(name)))
        .await
        .unwrap()
}

/// Appends `lines` in `parts` ingests, updating the projections after each with small
/// batches; then rebuilds them in one pass. Returns (incremental, rebuilt).
async fn incremental_and_rebuilt(
    dir: &Path,
    lines: &[String],
    parts: usize,
) -> (ProjectionState, ProjectionState, Store) {
    let store = store_in(dir, "p.db").await;
    let chunk = lines.len().div_ceil(parts).max(1);
    for (k, part) in lines.chunks(chunk).enumerate() {
        let f = dir.join(format!("part-{k}.jsonl"));
        let mut w = std::fs::File::create(&f).unwrap();
        for l in part {
            writeln!(w, "{l}").unwrap();
        }
        drop(w);
        ingest_files(&store, &[f], false).await.unwrap();
        catch_up(&store, 997).await.unwrap();
    }
    let incremental = store.projection_state().await.unwrap();
    rebuild(&store, 50_000).await.unwrap();
    let rebuilt = store.projection_state().await.unwrap();
    (incremental, rebuilt, store)
}

/// The engine's graph from every stored event, as sorted node and edge sets (without
/// the naming links the engine adds when it loads the graph).
async fn engine_graph(store: &Store) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let events = store.query(&EventFilter::default()).await.unwrap();
    let mut g = ResourceGraph::new();
    for e in &events {
        g.apply(e);
    }
    let mut nodes = BTreeSet::new();
    let mut edges = BTreeSet::new();
    for id in 0..g.len() as u32 {
        let a = g.name(id).to_string();
        for b in g.neighbours(&a) {
            let (x, y) = if a.as_str() <= b {
                (a.clone(), b.to_string())
            } else {
                (b.to_string(), a.clone())
            };
            edges.insert((x, y));
        }
        nodes.insert(a);
    }
    (nodes, edges)
}

fn projected_graph(st: &ProjectionState) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    (
        st.delta.nodes.keys().cloned().collect(),
        st.delta.edges.keys().cloned().collect(),
    )
}

#[tokio::test]
async fn incremental_projections_equal_rebuilt_ones_on_the_training_scenarios() {
    let files = scenarios();
    assert_eq!(files.len(), 27);
    for f in &files {
        let dir = tempfile::tempdir().unwrap();
        let lines = read_lines(f);
        let (incremental, rebuilt, store) = incremental_and_rebuilt(dir.path(), &lines, 3).await;
        let name = f.display();
        assert_eq!(incremental, rebuilt, "{name}");
        assert!(!rebuilt.delta.edges.is_empty(), "{name}: no edges");
        assert!(
            !rebuilt.delta.alarm_states.is_empty(),
            "{name}: no alarm state"
        );
        assert!(
            !rebuilt.delta.alarm_definitions.is_empty(),
            "{name}: no alarm definition"
        );
        let max = store.max_seq().await.unwrap();
        assert!(rebuilt.checkpoints.values().all(|&c| c == max), "{name}");
        assert_eq!(
            projected_graph(&rebuilt),
            engine_graph(&store).await,
            "{name}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn incremental_projections_equal_rebuilt_ones_on_a_generated_store() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (1..=30_000).map(generated_line).collect();
    let (incremental, rebuilt, store) = incremental_and_rebuilt(dir.path(), &lines, 7).await;
    assert_eq!(incremental, rebuilt);
    assert!(
        rebuilt.delta.edges.len() > 500,
        "{}",
        rebuilt.delta.edges.len()
    );
    assert_eq!(rebuilt.delta.alarm_states.len(), 40);
    assert_eq!(projected_graph(&rebuilt), engine_graph(&store).await);
    // Nothing after the checkpoint: an update applies nothing and changes nothing.
    let again = catch_up(&store, 1_000).await.unwrap();
    assert_eq!(again.events, 0);
    assert_eq!(store.projection_state().await.unwrap(), rebuilt);
    store.close().await;
}

/// The projector following an ingest as it appends (what `replay` does) reaches the
/// projections a rebuild from the whole log gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_followed_alongside_an_ingest_equal_rebuilt_ones() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("generated.jsonl");
    let mut w = std::fs::File::create(&f).unwrap();
    for i in 1..=60_000 {
        writeln!(w, "{}", generated_line(i)).unwrap();
    }
    drop(w);
    let store = store_in(dir.path(), "alongside.db").await;
    let summary = rootline::project::alongside(&store, ingest_files(&store, &[f], false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.appended, 60_000);
    let followed = store.projection_state().await.unwrap();
    rebuild(&store, 50_000).await.unwrap();
    let rebuilt = store.projection_state().await.unwrap();
    assert_eq!(followed, rebuilt);
    assert_eq!(rebuilt.delta.alarm_states.len(), 40);
    assert_eq!(catch_up(&store, 1_000).await.unwrap().events, 0);
    store.close().await;
}

#[test]
fn a_projector_or_server_killed_mid_run_is_completed_by_the_next_run() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let bin = env!("CARGO_BIN_EXE_rootline");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let url = matrix::store_url(&db);
    let rec = dir.path().join("gen.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&rec).unwrap());
    for i in 1..=150_000 {
        writeln!(w, "{}", generated_line(i)).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let st = Command::new(bin)
        .args(["--database", &url, "ingest", "--no-progress", "--json"])
        .arg(&rec)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let stored = summary["appended"].as_i64().unwrap();
    assert!(stored > 140_000, "{summary}");
    // Ingest brought the projections up to date; kill a rebuild once it has emptied
    // them and committed its first batch, before its last.
    let mut child = Command::new(bin)
        .args(["--database", &url, "projections", "rebuild"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = checkpoint_reader(&db, &url);
    let start = Instant::now();
    let mut emptied = false;
    let killed_at = loop {
        let cp = checkpoint();
        emptied |= cp == 0;
        if emptied && cp > 0 {
            child.kill().unwrap();
            break cp;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the rebuild ended ({status}) before it could be killed");
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no batch committed"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    let after_kill = checkpoint();
    assert!(
        after_kill >= killed_at && after_kill < stored,
        "{after_kill}"
    );
    // The server projects too (its analyser's first step catches up): started on the
    // half-projected store and killed with SIGKILL once it has committed a batch.
    let mut server = Command::new(bin)
        .args(["--database", &url, "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let server_killed_at = loop {
        let cp = checkpoint();
        if cp > after_kill {
            server.kill().unwrap();
            break cp;
        }
        if let Some(status) = server.try_wait().unwrap() {
            panic!("the server ended ({status}) before it could be killed");
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the server committed no batch"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    assert_eq!(server.wait().unwrap().signal(), Some(9));
    let after_kill = checkpoint();
    assert!(
        after_kill >= server_killed_at && after_kill < stored,
        "{after_kill}"
    );
    // The next run continues from the checkpoint...
    let out = Command::new(bin)
        .args(["--database", &url, "projections", "update"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["applied"].as_i64(),
        Some(stored - after_kill),
        "{report}"
    );
    // ... to exactly the projections a rebuild makes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let completed = store.projection_state().await.unwrap();
        rebuild(&store, 20_000).await.unwrap();
        assert_eq!(store.projection_state().await.unwrap(), completed);
        assert!(completed.delta.edges.len() > 500);
        store.close().await;
        // `status` counts what the projections hold.
        let out = Command::new(bin)
            .args(["--database", &url, "projections", "status"])
            .output()
            .unwrap();
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["applied"], serde_json::Value::Null);
        assert_eq!(
            status["graph_edges"].as_u64(),
            Some(completed.delta.edges.len() as u64)
        );
        assert_eq!(
            status["mark_minutes"].as_u64(),
            Some(completed.marks.len() as u64)
        );
        assert_eq!(status["checkpoints"]["marks"].as_i64(), Some(stored));
    });
}

/// Reads the smallest projection checkpoint (0 when there is none) through a fresh
/// read-only connection per call, as another process would (the store is in WAL mode);
/// on PostgreSQL, a fresh connection to `url`.
fn checkpoint_reader(db: &Path, url: &str) -> impl Fn() -> i64 {
    let pg = url.starts_with("postgres").then(|| url.to_string());
    let url = format!("sqlite://{}?mode=ro", db.display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    const MIN: &str = "SELECT coalesce(min(seq), 0) FROM projection_checkpoints";
    move || {
        rt.block_on(async {
            use sqlx::ConnectOptions;
            if let Some(pg) = &pg {
                let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(pg).await else {
                    return 0;
                };
                return sqlx::query_scalar::<_, i64>(MIN)
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or(0);
            }
            let Ok(opts) = url.parse::<sqlx::sqlite::SqliteConnectOptions>() else {
                return 0;
            };
            let Ok(mut c) = opts.connect().await else {
                return 0;
            };
            sqlx::query_scalar::<_, i64>(MIN)
                .fetch_one(&mut c)
                .await
                .unwrap_or(0)
        })
    }
}

/// The engine reads the graph's neighbours a batch of keys at a time: what one batched
/// read answers for each key equals the graph built from every event, a hub (more
/// neighbours than asked for) is `None` and an unknown key has none.
#[tokio::test]
async fn batched_neighbour_reads_equal_the_engine_graph() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (1..=30_000).map(generated_line).collect();
    let (_, _, store) = incremental_and_rebuilt(dir.path(), &lines, 2).await;
    let events = store.query(&EventFilter::default()).await.unwrap();
    let mut g = ResourceGraph::new();
    for e in &events {
        g.apply(e);
    }
    let mut keys: Vec<String> = (0..g.len() as u32).map(|i| g.name(i).to_string()).collect();
    keys.push("sg/sg-unknown".to_string());
    keys.reverse();
    let mut hubs = 0;
    for at_most in [3usize, 40, usize::MAX] {
        let got = store.graph_edges_of_many(&keys, at_most).await.unwrap();
        assert_eq!(got.len(), keys.len());
        for (k, v) in keys.iter().zip(&got) {
            let mut want: Vec<String> = g.neighbours(k).into_iter().map(str::to_string).collect();
            want.sort();
            if want.len() > at_most {
                hubs += 1;
                assert_eq!(v, &None, "{k} at most {at_most}");
            } else {
                assert_eq!(v.as_ref(), Some(&want), "{k} at most {at_most}");
            }
        }
    }
    assert!(
        hubs > 40,
        "the generated graph has hubs at both caps: {hubs}"
    );
    store.close().await;
}

/// Migration 0011 counts a store whose projections are current into `mark_minutes`
/// (the projector would otherwise read the whole log again): its statements, run on a
/// store without the counts, give exactly the counts the projector keeps.
#[tokio::test]
async fn the_upgrade_counts_a_current_store_as_the_projector_does() {
    if matrix::on_postgres() {
        // A SQLite migration: a PostgreSQL store had `mark_minutes` from its first one.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (1..=6_000).map(generated_line).collect();
    let (incremental, _, _) = incremental_and_rebuilt(dir.path(), &lines, 3).await;
    assert!(
        incremental.marks.len() > 1_000,
        "{}",
        incremental.marks.len()
    );
    let db = dir.path().join("p.db");
    let sql = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/0011_mark_minutes.sql"),
    )
    .unwrap();
    let backfill = &sql[sql.find("INSERT INTO mark_minutes").unwrap()..];
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        db.display()
    ))
    .await
    .unwrap();
    sqlx::raw_sql(
        "DELETE FROM mark_minutes; DELETE FROM projection_checkpoints WHERE name = 'marks'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(backfill.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let store = store_in(dir.path(), "p.db").await;
    assert_eq!(store.projection_state().await.unwrap(), incremental);
    store.close().await;
}

/// What `window_picture` must answer for its marks, computed from every stored event: the window's
/// counted events but `except`, grouped by (lane, kind, bucket), each of `lanes` its own
/// lane and every other resource the empty one; the first event of a group by seq.
fn marks_from_events(
    events: &[rootline::model::Event],
    g: &MarkGrid,
    except: &[i64],
    bands: &[String],
    lanes: &[String],
) -> (Vec<(String, i64)>, Vec<WindowMark>) {
    let mut totals: std::collections::BTreeMap<String, i64> = Default::default();
    let mut groups: std::collections::BTreeMap<(String, String, i64), WindowMark> =
        Default::default();
    for e in events.iter().filter(|e| {
        rootline::project::in_picture(e)
            && (g.from..=g.to).contains(&e.event_time)
            && !except.contains(&e.seq)
            && !(e.kind.tag() == "alarm" && e.resources.first().is_some_and(|r| bands.contains(r)))
    }) {
        let resource = e.resources.first().cloned().unwrap_or_default();
        *totals.entry(resource.clone()).or_default() += 1;
        let lane = if lanes.contains(&resource) {
            resource.clone()
        } else {
            String::new()
        };
        let bucket = (e.event_time - g.origin) / g.bucket_ms;
        let m = groups
            .entry((lane.clone(), e.kind.tag().to_string(), bucket))
            .or_insert_with(|| WindowMark {
                lane,
                resource: resource.clone(),
                kind: e.kind.tag().to_string(),
                bucket,
                count: 0,
                seq: e.seq,
                name: e.name.clone(),
                event_time: e.event_time,
                failed: 0,
            });
        m.count += 1;
        m.failed += i64::from(e.error_code.is_some());
        if e.seq < m.seq {
            (m.seq, m.name, m.event_time, m.resource) =
                (e.seq, e.name.clone(), e.event_time, resource);
        }
    }
    (totals.into_iter().collect(), groups.into_values().collect())
}

/// The picture's marks read from the projector's per-minute counts (with the window's
/// partial minutes, the events past the checkpoint and the chain's events taken into
/// account) equal the marks counted from the events themselves, whether the projector
/// is behind or current, for windows with buckets under a minute and of whole minutes.
#[tokio::test]
async fn picture_marks_from_minute_counts_equal_those_counted_from_events() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (1..=6_000).map(generated_line).collect();
    // The projector stops after the first part: the rest is past its checkpoint.
    let (_, _, store) = incremental_and_rebuilt(dir.path(), &lines[..4_000], 2).await;
    let rest = dir.path().join("rest.jsonl");
    std::fs::write(&rest, lines[4_000..].join("\n")).unwrap();
    ingest_files(&store, &[rest], false).await.unwrap();
    let base = 1_760_000_000_000i64;
    // (from, to): 40 minutes (buckets of 24 s), 90 minutes (54 s, rounded up to whole
    // minutes), 3 hours and 20 hours (whole minutes), none on a minute boundary.
    let windows = [
        (base + 7_200_123, base + 9_600_123),
        (base + 5_400_777, base + 10_800_777),
        (base + 3_333_333, base + 14_133_333),
        (base + 1_234, base + 72_001_234),
    ];
    let mut windows_with_alarms = 0;
    for behind in [true, false] {
        if !behind {
            assert!(catch_up(&store, 1_000).await.unwrap().events > 0);
        }
        let events = store.query(&EventFilter::default()).await.unwrap();
        for (from, to) in windows {
            let g = MarkGrid::new(from, to, 100);
            // The chain: a few events of the window, among them the first of a minute.
            let in_window: Vec<&rootline::model::Event> = events
                .iter()
                .filter(|e| rootline::project::in_picture(e) && (from..=to).contains(&e.event_time))
                .collect();
            assert!(in_window.len() > 20, "{}", in_window.len());
            let except: Vec<i64> = in_window
                .iter()
                .step_by(7)
                .take(10)
                .map(|e| e.seq)
                .collect();
            // One alarm drawn as a band: its transitions are not marks; other alarms'
            // are.
            let alarms: BTreeSet<String> = in_window
                .iter()
                .filter(|e| e.kind.tag() == "alarm")
                .filter_map(|e| e.resources.first().cloned())
                .collect();
            let bands: Vec<String> = alarms.iter().take(1).cloned().collect();
            windows_with_alarms += usize::from(alarms.len() > 1);
            let f = MarkFilter {
                except: &except,
                band_lanes: &bands,
                ..Default::default()
            };
            // Every lane's events, counted from the events.
            let (all_totals, _) = marks_from_events(&events, &g, &except, &bands, &[]);
            assert_eq!(
                all_totals.iter().any(|(l, _)| l.starts_with("alarm/")),
                alarms.len() > 1
            );
            // Fixed: the band, the third busiest lane and one without events; then the
            // four busiest others.
            let mut busiest = all_totals.clone();
            busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut fixed = bands.clone();
            fixed.push(busiest[2].0.clone());
            fixed.push("sg/sg-without-events".to_string());
            let mut lanes = fixed.clone();
            lanes.extend(
                busiest
                    .iter()
                    .filter(|(l, _)| !l.is_empty() && !fixed.contains(l))
                    .take(4)
                    .map(|(l, _)| l.clone()),
            );
            let pic = store.window_picture(&g, &f, &fixed, 4).await.unwrap();
            assert_eq!(pic.lanes, lanes, "window {from}..{to}, behind {behind}");
            let mut want_totals: Vec<(String, i64)> = Vec::new();
            let mut rest = 0;
            for (l, n) in &all_totals {
                match lanes.contains(l) {
                    true => want_totals.push((l.clone(), *n)),
                    false => rest += n,
                }
            }
            if rest > 0 {
                want_totals.insert(0, (String::new(), rest));
            }
            assert_eq!(
                pic.totals, want_totals,
                "window {from}..{to}, behind {behind}"
            );
            let marks = pic.marks;
            let (_, want) = marks_from_events(&events, &g, &except, &bands, &lanes);
            assert_eq!(marks, want, "window {from}..{to}, behind {behind}");
            assert!(marks.iter().any(|m| m.lane.is_empty()));
            assert!(marks.iter().any(|m| m.failed > 0));
            // A filter on kind or source applies to every part of the read.
            let none = vec!["deployment".to_string()];
            let f = MarkFilter {
                kinds: &none,
                except: &except,
                band_lanes: &bands,
                ..Default::default()
            };
            let none_pic = store.window_picture(&g, &f, &fixed, 4).await.unwrap();
            assert!(none_pic.marks.is_empty() && none_pic.totals.is_empty());
            let trail = vec!["cloudtrail".to_string()];
            let f = MarkFilter {
                sources: &trail,
                except: &except,
                band_lanes: &bands,
                ..Default::default()
            };
            let trail_pic = store.window_picture(&g, &f, &fixed, 4).await.unwrap();
            let (_, trail_want) = marks_from_events(
                &events
                    .iter()
                    .filter(|e| e.source.as_str() == "cloudtrail")
                    .cloned()
                    .collect::<Vec<_>>(),
                &g,
                &except,
                &bands,
                &trail_pic.lanes,
            );
            assert_eq!(trail_pic.marks, trail_want);
            assert_ne!(trail_want, want);
        }
    }
    assert!(windows_with_alarms >= 2, "{windows_with_alarms}");
    store.close().await;
}
