//! Several `rootline serve` processes on one store: the analyser and the GitHub outbox
//! worker run in one of them at a time (leases, migration 0012), and move to a survivor
//! when their holder is killed with SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod common;
mod notify_fake;

mod matrix;
use notify_fake::FakeGithub;
use rootline::model::Source;
use rootline::store::{EventFilter, EventLog, Order, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_R00tl1neTestT0ken5ecretXYZ0123456789";
const EB_KEY: &str = "eb-key-instances-0123456789";

/// One server process: its address and its log file.
struct Server {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &Path, config: &Path, log: PathBuf) -> Server {
    let mut child = Command::new(common::BIN)
        .args([
            "--database",
            &matrix::store_url(db),
            "serve",
            "--addr",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "rootline=debug")
        .env("ROOTLINE_GITHUB_TOKEN", TOKEN)
        .env("ROOTLINE_EVENTBRIDGE_API_KEY", EB_KEY)
        .env_remove("ROOTLINE_DATABASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("rootline serve");
    let stdout = child.stdout.take().unwrap();
    let addr = std::io::BufReader::new(stdout)
        .lines()
        .find_map(|l| {
            l.ok()
                .and_then(|l| l.split("http://").nth(1).map(|a| a.trim().to_string()))
        })
        .expect("serve prints its address");
    Server { child, addr, log }
}

/// The one-incident recording's EventBridge alarm transition, moved to `time` with
/// `state` (the previous state the other one).
fn transition(template: &Value, id: &str, time: &str, state: &str) -> String {
    let mut p = template.clone();
    p["id"] = id.into();
    p["time"] = time.into();
    p["detail"]["state"]["value"] = state.into();
    p["detail"]["state"]["timestamp"] = format!("{}.250+0000", &time[..19]).into();
    p["detail"]["previousState"]["value"] = if state == "ALARM" { "OK" } else { "ALARM" }.into();
    p.to_string()
}

/// A log's text without its colours (ANSI escape sequences).
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// "Incident ranked" lines of a server's log, by incident.
fn rankings(log: &Path) -> BTreeMap<String, usize> {
    let mut ranked: BTreeMap<String, usize> = BTreeMap::new();
    let text = plain(&std::fs::read_to_string(log).unwrap());
    for l in text.lines().filter(|l| l.contains("Incident ranked")) {
        let id = l
            .split("incident=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
            .to_string();
        *ranked.entry(id).or_default() += 1;
    }
    ranked
}

/// The store of the servers (SQLite or PostgreSQL: `tests/matrix`).
async fn store(db: &Path) -> Store {
    matrix::open_store(db).await
}

/// The analyser's checkpoint is past the last upstream event and nothing is pending.
async fn analysed(db: &Path) -> Option<()> {
    let store = store(db).await;
    let upstream: Vec<Source> = Source::ALL
        .into_iter()
        .filter(|s| *s != Source::Rootline)
        .collect();
    let last = store
        .query(&EventFilter {
            sources: upstream,
            order: Order::Desc,
            limit: 1,
            without_payload: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .first()
        .map_or(0, |e| e.seq);
    let value = store.checkpoint("analyser").await.unwrap();
    store.close().await;
    let state: Value = serde_json::from_str(&value?.value).unwrap();
    let pending = state["pending"].as_array().map_or(0, Vec::len);
    (state["upto"].as_i64()? >= last && pending == 0).then_some(())
}

/// The holder of a lease, while it is held.
async fn holder(db: &Path, name: &str) -> Option<String> {
    let store = store(db).await;
    let leases = store.leases().await.unwrap();
    store.close().await;
    let now = chrono::Utc::now().timestamp_millis();
    leases
        .into_iter()
        .find(|l| l.name == name && l.expires_at > now)
        .map(|l| l.holder)
}

fn pid_of(holder: &str) -> u32 {
    holder.rsplit('-').nth(1).unwrap().parse().unwrap()
}

/// Waits up to `secs` for `f` to give something.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "waited {secs} s for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get_json(http: &reqwest::Client, addr: &str, path: &str) -> Value {
    http.get(format!("http://{addr}{path}"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The incident opened by the push of `time` (its alarm's start), as one server lists
/// it, with at least one hypothesis.
async fn incident_at(http: &reqwest::Client, addr: &str, time: &str) -> Option<String> {
    let list = get_json(http, addr, "/incidents").await;
    let id = list["incidents"].as_array()?.iter().find(|i| {
        i["opened_at"]
            .as_str()
            .is_some_and(|o| o.starts_with(&time[..16]))
    })?["id"]
        .as_str()?
        .to_string();
    let inc = get_json(http, addr, &format!("/incidents/{id}")).await;
    (!inc["hypotheses"].as_array()?.is_empty()).then_some(id)
}

async fn push(http: &reqwest::Client, addr: &str, body: String) {
    let r = http
        .post(format!("http://{addr}/ingest/eventbridge"))
        .header("x-api-key", EB_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "push to {addr}: {}", r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_the_analyser_and_the_outbox_and_a_survivor_takes_over() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rootline.db");
    let fake = FakeGithub::start("octo-org", "payments", TOKEN).await;

    // The recording (its incidents), and a change before each of four more incidents
    // whose alarm transitions are pushed: the same target group deregistered again.
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/engine/one-incident.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&fixture)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let template: Value = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["source"] == "eventbridge")
        .unwrap()["payload"]
        .clone();
    let cause: Value = serde_json::from_str(&lines[3]).unwrap();
    let days = ["2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06"];
    let mut more = Vec::new();
    for (k, day) in days.iter().enumerate() {
        let mut c = cause.clone();
        c["payload"]["eventID"] = format!("cause-{k}").into();
        c["payload"]["eventTime"] = format!("{day}T11:54:00Z").into();
        c["recorded_at"] = format!("{day}T11:59:00Z").into();
        more.push(c.to_string());
    }
    let extra = common::write_lines(dir.path(), "changes.jsonl", &more);
    let run = common::ingest_at(&matrix::store_url(&db), &[&fixture, &extra]);
    assert_eq!(run.code, 0, "{run:?}");

    let config = dir.path().join("rootline.toml");
    std::fs::write(
        &config,
        format!(
            "analyze_every_secs = 1\nrerank_after_secs = 3600\n[notify]\n\
             github_repo = \"octo-org/payments\"\ngithub_api_url = \"{}\"\n\
             public_url = \"http://rootline.test\"\nmin_score = 0.05\n\
             notify_poll_interval = 1\ngithub_settle = 0.2\ngithub_timeout = 2\n\
             github_retry_base = 0.05\ngithub_retry_max = 0.2\n",
            fake.url()
        ),
    )
    .unwrap();
    let a = start(&db, &config, dir.path().join("a.log"));
    let b = start(&db, &config, dir.path().join("b.log"));
    let mut servers = [Some(a), Some(b)];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // One of them takes each lease.
    let analyser = wait_for(20, "an analyser lease", || holder(&db, "analyser")).await;
    wait_for(20, "an outbox lease", || holder(&db, "github-outbox")).await;
    let leader = servers
        .iter()
        .position(|s| s.as_ref().unwrap().child.id() == pid_of(&analyser))
        .expect("the analyser's holder is one of the two servers");

    // Two alarms before the kill, one pushed to each server; both servers show each
    // incident with its hypotheses.
    let addrs: Vec<String> = servers
        .iter()
        .map(|s| s.as_ref().unwrap().addr.clone())
        .collect();
    for (k, day) in days[..2].iter().enumerate() {
        let at = format!("{day}T12:00:00Z");
        push(
            &http,
            &addrs[k],
            transition(&template, &format!("up-{k}"), &at, "ALARM"),
        )
        .await;
        push(
            &http,
            &addrs[k],
            transition(
                &template,
                &format!("down-{k}"),
                &format!("{day}T12:30:00Z"),
                "OK",
            ),
        )
        .await;
        for addr in &addrs {
            wait_for(30, "the pushed incident on both servers", || {
                incident_at(&http, addr, &at)
            })
            .await;
        }
    }

    // Everything appended so far analysed (the analyser's checkpoint past the last
    // upstream event, nothing pending), then the leader is killed (SIGKILL); the other
    // takes both leases within 15 s.
    wait_for(30, "the leader to analyse everything", || analysed(&db)).await;
    let ranked_before = rankings(&servers[leader].as_ref().unwrap().log);
    let killed_at = Instant::now();
    let mut dead = servers[leader].take().unwrap();
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let survivor = servers[1 - leader].as_ref().unwrap();
    let pid = survivor.child.id();
    for lease in ["analyser", "github-outbox"] {
        wait_for(20, "the survivor to take the lease", || async {
            holder(&db, lease).await.filter(|h| pid_of(h) == pid)
        })
        .await;
    }
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(15), "takeover took {took:?}");

    // Two alarms after the kill, to the survivor.
    for (k, day) in days[2..].iter().enumerate() {
        let at = format!("{day}T12:00:00Z");
        push(
            &http,
            &survivor.addr,
            transition(&template, &format!("up-{}", k + 2), &at, "ALARM"),
        )
        .await;
        push(
            &http,
            &survivor.addr,
            transition(
                &template,
                &format!("down-{}", k + 2),
                &format!("{day}T12:30:00Z"),
                "OK",
            ),
        )
        .await;
        wait_for(30, "the incident pushed after the kill", || {
            incident_at(&http, &survivor.addr, &at)
        })
        .await;
    }

    // No work done twice: the survivor ranked none of the incidents the leader had
    // analysed before the kill, and the killed one nothing after it; each incident was
    // ranked at least once, and at most once per alarm transition that changed it (its
    // opening and its resolution).
    wait_for(30, "the survivor to analyse everything", || analysed(&db)).await;
    let after = rankings(&survivor.log);
    assert_eq!(rankings(&dead.log), ranked_before);
    for id in ranked_before.keys() {
        assert!(
            !after.contains_key(id),
            "{id} ranked again after the kill: {after:?}"
        );
    }
    let mut ranked = ranked_before.clone();
    for (id, n) in &after {
        *ranked.entry(id.clone()).or_default() += n;
    }
    let list = get_json(&http, &survivor.addr, "/incidents").await;
    let ids: Vec<String> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() >= 6, "{ids:?}");
    for id in &ids {
        let n = ranked.get(id).copied().unwrap_or(0);
        assert!((1..=2).contains(&n), "{id} ranked {n} times: {ranked:?}");
    }
    assert_eq!(ranked.len(), ids.len(), "{ranked:?} {ids:?}");
    assert_eq!(after.len(), 2, "the survivor ranked {after:?}");

    // Exactly one GitHub issue per requested hypothesis, whoever delivered it.
    let requested = wait_for(30, "every request delivered", || async {
        let store = store(&db).await;
        let own = store
            .query(&EventFilter {
                sources: vec![Source::Rootline],
                without_payload: true,
                ..Default::default()
            })
            .await
            .unwrap();
        store.close().await;
        let asked: Vec<String> = own
            .iter()
            .filter(|e| e.name == "issue_requested")
            .map(|e| e.natural_id.clone())
            .collect();
        let opened = own.iter().filter(|e| e.name == "issue_opened").count();
        (asked.len() >= 6 && opened == asked.len()).then_some(asked)
    })
    .await;
    let issues = fake.issues();
    assert_eq!(issues.len(), requested.len(), "{issues:?}");
    // Each issue's hidden marker (its first line) names its incident and hypothesis.
    let mut markers: Vec<&str> = issues
        .iter()
        .map(|i| i.body.lines().next().unwrap_or_default())
        .collect();
    assert!(
        markers
            .iter()
            .all(|m| m.starts_with("<!-- rootline:incident=")),
        "{markers:?}"
    );
    markers.sort();
    markers.dedup();
    assert_eq!(markers.len(), issues.len(), "two issues for one hypothesis");
    assert!(plain(&std::fs::read_to_string(&survivor.log).unwrap()).contains("Lease changed hands"));
}
