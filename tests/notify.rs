//! GitHub issues for hypotheses (issue #6), end to end: the real `rootline` binary
//! against a fake GitHub (tests/notify_fake) that validates every request against
//! GitHub's OpenAPI description and injects faults. In every case each hypothesis ends
//! with exactly one issue, and the token shows up nowhere.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod notify_fake;

mod matrix;
use notify_fake::{FakeGithub, Fault, Route};
use rootline::conclusions::outbox::{deliveries, request_issue};
use rootline::correlate::{analyze, Analysis, Config};
use rootline::model::{EventRef, Source};
use rootline::notify::markdown::{has_marker, marker};
use rootline::notify::{run_worker, GithubOptions, NotifyConfig};
use rootline::store::{EventFilter, EventLog, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TOKEN: &str = "ghp_R00tl1neTestT0ken5ecretXYZ0123456789";
const OWNER: &str = "octo-org";
const REPO: &str = "payments";
const PUBLIC: &str = "http://rootline.test";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/engine")
        .join(name)
}

fn cause(source: &str, id: &str) -> EventRef {
    EventRef {
        source: source.into(),
        id: id.into(),
    }
}

#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn command(args: &[String], envs: &[(String, String)]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_rootline"));
    c.args(args);
    for k in [
        "GITHUB_TOKEN",
        "ROOTLINE_GITHUB_TOKEN",
        "ROOTLINE_GITHUB_REPO",
        "ROOTLINE_GITHUB_API_URL",
        "ROOTLINE_PUBLIC_URL",
        "ROOTLINE_DATABASE",
        "ROOTLINE_CONFIG",
        "ROOTLINE_ADDR",
        "RUST_LOG",
    ] {
        c.env_remove(k);
    }
    for (k, v) in envs {
        c.env(k, v);
    }
    c
}

/// Runs the binary to completion (off the async runtime, so the fake keeps serving).
async fn rootline(args: Vec<String>, envs: Vec<(String, String)>) -> Out {
    tokio::task::spawn_blocking(move || {
        let o = command(&args, &envs).output().expect("run rootline");
        Out {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

fn token_env(token: &str) -> Vec<(String, String)> {
    vec![("ROOTLINE_GITHUB_TOKEN".into(), token.into())]
}

struct Env {
    dir: tempfile::TempDir,
    db: String,
    fake: FakeGithub,
    /// In one-incident.jsonl: the web-5xx incident (resolved, top score 0.86) and the
    /// jobs-backlog one (open, top score 0.06), both blaming the same change.
    ids: (String, String),
}

impl Env {
    async fn new(recording: &std::path::Path) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = matrix::store_url(&dir.path().join("rootline.db"));
        let fake = FakeGithub::start(OWNER, REPO, TOKEN).await;
        let mut env = Env {
            dir,
            db,
            fake,
            ids: Default::default(),
        };
        env.ingest(recording).await;
        let a = env.analysis().await;
        let id_of = |alarm: &str| {
            a.incidents
                .iter()
                .find(|i| i.alarm_names.first().is_some_and(|n| n == alarm))
                .map(|i| i.id.clone())
                .unwrap_or_default()
        };
        env.ids = (id_of("web-5xx"), id_of("jobs-backlog"));
        env
    }

    fn first(&self) -> &str {
        assert!(!self.ids.0.is_empty(), "no web-5xx incident");
        &self.ids.0
    }

    fn second(&self) -> &str {
        assert!(!self.ids.1.is_empty(), "no jobs-backlog incident");
        &self.ids.1
    }

    async fn ingest(&self, recording: &std::path::Path) {
        let out = rootline(
            strings(&[
                "--database",
                &self.db,
                "ingest",
                "--no-progress",
                &recording.display().to_string(),
            ]),
            vec![],
        )
        .await;
        assert_eq!(out.code, Some(0), "{out:?}");
    }

    /// `notify --once` arguments with small timeouts and delays.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let url = self.fake.url();
        let mut a = strings(&[
            "--database",
            &self.db,
            "notify",
            "--once",
            "--github-repo",
            &format!("{OWNER}/{REPO}"),
            "--github-api-url",
            &url,
            "--public-url",
            PUBLIC,
            "--github-timeout",
            "1",
            "--github-retry-base",
            "0.05",
            "--github-retry-max",
            "0.2",
            "--github-settle",
            "0.2",
        ]);
        // Flags given again replace the defaults above.
        let base = a.len();
        let mut i = 0;
        while i < extra.len() {
            let takes_value = i + 1 < extra.len() && !extra[i + 1].starts_with("--");
            match a[..base].iter().position(|x| x == extra[i]) {
                Some(at) if takes_value && at + 1 < a.len() => {
                    a[at + 1] = extra[i + 1].to_string();
                }
                _ => {
                    a.push(extra[i].to_string());
                    if takes_value {
                        a.push(extra[i + 1].to_string());
                    }
                }
            }
            i += if takes_value { 2 } else { 1 };
        }
        a
    }

    /// `rootline report ID --public-url PUBLIC`: the incident's post-incident draft.
    async fn report(&self, incident: &str) -> String {
        let out = rootline(
            strings(&[
                "--database",
                &self.db,
                "report",
                incident,
                "--public-url",
                PUBLIC,
            ]),
            vec![],
        )
        .await;
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(out.stdout.starts_with("## Post-incident draft"), "{out:?}");
        out.stdout
    }

    async fn notify(&self, extra: &[&str]) -> Out {
        rootline(self.args(extra), token_env(TOKEN)).await
    }

    async fn store(&self) -> Store {
        Store::open(&self.db).await.expect("open store")
    }

    /// Outbox events (type, payload), in log order.
    async fn outbox(&self) -> Vec<(String, Value)> {
        let store = self.store().await;
        let events = store
            .query(&EventFilter {
                sources: vec![Source::Rootline],
                id_prefix: Some("issue/".into()),
                ..Default::default()
            })
            .await
            .expect("query");
        store.close().await;
        let mut out: Vec<(i64, String, Value)> = events
            .iter()
            .map(|e| {
                (
                    e.seq,
                    e.name.clone(),
                    serde_json::from_str(&e.payload).expect("payload"),
                )
            })
            .collect();
        out.sort_by_key(|x| x.0);
        out.into_iter().map(|(_, n, p)| (n, p)).collect()
    }

    async fn analysis(&self) -> Analysis {
        let store = self.store().await;
        let events = store.query(&EventFilter::default()).await.expect("query");
        store.close().await;
        analyze(&events, &Config::default())
    }

    async fn deliveries(&self, incident: &str) -> Vec<rootline::conclusions::outbox::Delivery> {
        let store = self.store().await;
        let d = deliveries(&store, incident).await.expect("deliveries");
        store.close().await;
        d
    }

    /// Every request conformed to GitHub's description.
    fn assert_conforming(&self) {
        let v = self.fake.violations();
        assert!(
            v.is_empty(),
            "requests departing from GitHub's OpenAPI description:\n{}",
            v.join("\n")
        );
    }

    /// Exactly one issue per (incident, hypothesis) marker, and each marker expected.
    fn assert_one_issue_each(&self, expected: &[(&str, EventRef)]) {
        let issues = self.fake.issues();
        let mut by_marker: BTreeMap<String, usize> = BTreeMap::new();
        for i in &issues {
            let first = i.body.lines().next().unwrap_or("").to_string();
            *by_marker.entry(first).or_default() += 1;
        }
        for (inc, c) in expected {
            let m = marker(inc, c);
            assert_eq!(
                by_marker.get(&m).copied(),
                Some(1),
                "issues for {m}: {issues:#?}"
            );
        }
        assert_eq!(issues.len(), expected.len(), "{issues:#?}");
    }
}

fn first_cause() -> EventRef {
    cause("cloudtrail", "cause")
}

fn opened_events(outbox: &[(String, Value)]) -> Vec<&Value> {
    outbox
        .iter()
        .filter(|(n, _)| n == "issue_opened")
        .map(|(_, p)| p)
        .collect()
}

// ------------------------------------------------------------------------ the fake

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_github_checks_requests_against_the_openapi_description() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = FakeGithub::start(OWNER, REPO, TOKEN).await;
    let http = reqwest::Client::new();
    let base = format!("{}/repos/{OWNER}/{REPO}", fake.url());
    let gh = |r: reqwest::RequestBuilder| {
        r.header("authorization", format!("Bearer {TOKEN}"))
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "rootline-test")
    };
    // Conforming requests are served.
    let r = gh(http.post(format!("{base}/issues")))
        .json(&serde_json::json!({"title": "t", "body": "b", "labels": ["rootline"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let issue: Value = r.json().await.unwrap();
    let r = gh(http.get(format!(
        "{base}/issues?state=all&labels=rootline&sort=created&direction=desc&per_page=100&page=1"
    )))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = gh(http.post(format!("{base}/issues/1/comments")))
        .json(&serde_json::json!({"body": "c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let comment: Value = r.json().await.unwrap();
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    // The fake answers in GitHub's shapes.
    let api = notify_fake::OpenApi::get();
    let errs: Vec<String> = api
        .issue_schema
        .iter_errors(&issue)
        .map(|e| e.to_string())
        .collect();
    assert!(errs.is_empty(), "{errs:?}");
    let errs: Vec<String> = api
        .comment_schema
        .iter_errors(&comment)
        .map(|e| e.to_string())
        .collect();
    assert!(errs.is_empty(), "{errs:?}");

    // Each departure from the description is caught.
    let bad: Vec<(reqwest::RequestBuilder, &str)> = vec![
        (
            gh(http.post(format!("{base}/issues"))).json(&serde_json::json!({"body": "no title"})),
            "title",
        ),
        (
            gh(http.post(format!("{base}/issues"))).json(&serde_json::json!({"title": ["x"]})),
            "title",
        ),
        (
            gh(http.post(format!("{base}/issues")))
                .json(&serde_json::json!({"title": "t", "labels": "rootline"})),
            "labels",
        ),
        (
            gh(http.post(format!("{base}/issues")))
                .json(&serde_json::json!({"title": "t", "lables": ["x"]})),
            "lables",
        ),
        (gh(http.post(format!("{base}/issues"))), "body required"),
        (
            gh(http.get(format!("{base}/issues?state=everything"))),
            "state",
        ),
        (
            gh(http.get(format!("{base}/issues?per_page=many"))),
            "per_page",
        ),
        (
            gh(http.get(format!("{base}/issues?labels=x&colour=red"))),
            "colour",
        ),
        (
            gh(http.get(format!("{base}/issues/abc/comments"))),
            "issue_number",
        ),
        (gh(http.get(format!("{base}/pulls"))), "not an operation"),
        (
            http.get(format!("{base}/issues"))
                .header("accept", "application/vnd.github+json")
                .header("user-agent", "x"),
            "Authorization",
        ),
        (
            http.get(format!("{base}/issues"))
                .header("authorization", format!("Basic {TOKEN}"))
                .header("accept", "application/vnd.github+json")
                .header("user-agent", "x"),
            "Authorization",
        ),
        (
            http.get(format!("{base}/issues"))
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("user-agent", "x"),
            "Accept",
        ),
        (
            gh(http.get(format!("{base}/issues"))).header("x-github-api-version", "1999-01-01"),
            "X-GitHub-Api-Version",
        ),
    ];
    for (req, what) in bad {
        let before = fake.violations().len();
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 422, "{what}");
        let v = fake.violations();
        assert!(v.len() > before, "not caught: {what}");
        assert!(
            v[before..].iter().any(|x| x.contains(what)),
            "{what}: {:?}",
            &v[before..]
        );
    }
}

// ------------------------------------------------------------------------ happy path

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_one_issue_for_the_top_hypothesis_and_records_it() {
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("opened 1"), "{out:?}");
    env.assert_conforming();
    env.assert_one_issue_each(&[(env.first(), first_cause())]);

    let issue = &env.fake.issues()[0];
    assert!(has_marker(
        &issue.body,
        &marker(env.first(), &first_cause())
    ));
    assert_eq!(issue.labels, vec!["rootline".to_string()]);
    assert!(
        issue.title.starts_with("[rootline] web-5xx in ALARM"),
        "{}",
        issue.title
    );
    // Links back to rootline's pages: the incident and the events.
    assert!(
        issue
            .body
            .contains(&format!("({PUBLIC}/incidents/{})", env.first())),
        "{}",
        issue.body
    );
    assert!(
        issue.body.contains(&format!("({PUBLIC}/events/")),
        "{}",
        issue.body
    );
    assert!(issue.body.contains("DeregisterTargets"), "{}", issue.body);
    // The body is the incident's post-incident draft, as `rootline report` prints it.
    let report = env.report(env.first()).await;
    assert!(
        issue.body.contains(&report),
        "--- report:\n{report}\n--- body:\n{}",
        issue.body
    );
    assert!(report.contains("### Timeline of key events"), "{report}");
    // It looked for the marker (issues list, not search), then created.
    let log = env.fake.log();
    let routes: Vec<Route> = log.iter().filter_map(|l| l.route).collect();
    assert_eq!(
        routes,
        vec![Route::ListIssues, Route::CreateIssue],
        "{log:#?}"
    );
    assert!(
        log[0].query.contains("state=all") && log[0].query.contains("labels=rootline"),
        "{}",
        log[0].query
    );
    assert!(log.iter().all(|l| !l.path.starts_with("/search")));

    // The outbox: requested, then opened with number and URL.
    let outbox = env.outbox().await;
    let kinds: Vec<&str> = outbox.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["issue_requested", "issue_opened"],
        "{outbox:#?}"
    );
    let opened = opened_events(&outbox)[0];
    assert_eq!(opened["number"], 1);
    assert_eq!(
        opened["url"],
        format!("https://github.example/{OWNER}/{REPO}/issues/1")
    );
    assert_eq!(opened["incident"], env.first());
    let d = env.deliveries(env.first()).await;
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].state.as_str(), d[0].issue_number),
        ("opened", Some(1))
    );
    assert_eq!(d[0].cause, first_cause());
    assert_eq!(d[0].requested_by.as_deref(), Some("rootline"));

    // Running again does nothing: the outbox says it is done.
    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(env.fake.count(Route::CreateIssue), 1);
    assert_eq!(env.outbox().await.len(), 2);

    // A lower threshold lets the other incident qualify: one more issue, none repeated.
    let out = env.notify(&["--min-score", "0.05"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_one_issue_each(&[(env.first(), first_cause()), (env.second(), first_cause())]);
    env.assert_conforming();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_choose_which_incidents_qualify() {
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    let out = env
        .notify(&[
            "--min-score",
            "0.05",
            "--incidents-since",
            "2030-01-01T00:00:00Z",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(env.fake.issues().is_empty());
    let out = env
        .notify(&[
            "--min-score",
            "0.05",
            "--only-open",
            "--github-label",
            "incident",
            "--github-label",
            "rootline",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_one_issue_each(&[(env.second(), first_cause())]);
    assert_eq!(
        env.fake.issues()[0].labels,
        vec!["incident".to_string(), "rootline".to_string()]
    );
    // The first label is the one rootline lists by.
    assert!(env.fake.log()[0].query.contains("labels=incident"));
    env.assert_conforming();
}

/// GitHub silently drops labels a token may not set. rootline finds its issues by the
/// first label after a lost answer, so an issue without it is a failed delivery (with
/// the issue named), never "no issue yet": no second issue is opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_github_dropped_is_a_failed_delivery_not_a_missing_issue() {
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    env.fake.drop_labels();
    let args = [
        "--min-score",
        "0.05",
        "--only-open",
        "--github-label",
        "incident",
    ];
    let out = env.notify(&args).await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert_eq!(env.fake.issues().len(), 1);
    assert!(env.fake.issues()[0].labels.is_empty());
    let outbox = env.outbox().await;
    let failed: Vec<&Value> = outbox
        .iter()
        .filter(|(n, _)| n == "issue_failed")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(failed.len(), 1, "{outbox:?}");
    let text = failed[0].to_string();
    assert!(
        text.contains("without the label") && text.contains("#1"),
        "{text}"
    );
    assert!(
        !outbox.iter().any(|(n, _)| n == "issue_opened"),
        "{outbox:?}"
    );
    // Another pass opens no second issue.
    let _ = env.notify(&args).await;
    assert_eq!(env.fake.issues().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_requests_and_changes_nothing() {
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    let before = env.outbox().await.len();
    let store = env.store().await;
    let count = store.count().await.unwrap();
    store.close().await;
    // No token needed.
    let mut args = env.args(&["--dry-run", "--min-score", "0.05"]);
    args.retain(|a| a != "--once");
    let out = rootline(args, vec![]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "POST {}/repos/{OWNER}/{REPO}/issues",
            env.fake.url()
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Authorization: Bearer [redacted]"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("X-GitHub-Api-Version: 2022-11-28"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("\nPOST ").count(), 2, "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&marker(env.first(), &first_cause()).replace('"', "\\\"")),
        "{}",
        out.stdout
    );
    assert!(env.fake.log().is_empty(), "a dry run sent requests");
    assert_eq!(env.outbox().await.len(), before);
    let store = env.store().await;
    assert_eq!(
        store.count().await.unwrap(),
        count,
        "a dry run appended events"
    );
    store.close().await;
}

// ------------------------------------------------------------------------ faults

/// Runs `notify --once` with faults queued; exactly one issue for the top hypothesis.
async fn one_issue_despite(faults: &[(Route, Fault)], extra: &[&str]) -> Env {
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    for (r, f) in faults {
        env.fake.fault(*r, f.clone());
    }
    let out = env.notify(extra).await;
    assert_eq!(out.code, Some(0), "faults {faults:?}: {out:?}");
    env.assert_conforming();
    env.assert_one_issue_each(&[(env.first(), first_cause())]);
    let outbox = env.outbox().await;
    let opened = opened_events(&outbox);
    assert_eq!(opened.len(), 1, "{outbox:#?}");
    assert_eq!(opened[0]["number"], 1);
    assert_eq!(env.deliveries(env.first()).await[0].state, "opened");
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried() {
    let env = one_issue_despite(
        &[
            (Route::ListIssues, Fault::Status(500)),
            (Route::CreateIssue, Fault::Status(502)),
            (Route::CreateIssue, Fault::Status(503)),
        ],
        &[],
    )
    .await;
    // list 500, list, create 502, list, create 503, list, create.
    assert_eq!(env.fake.count(Route::CreateIssue), 3);
    assert_eq!(env.fake.count(Route::ListIssues), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_retried() {
    let started = Instant::now();
    let env = one_issue_despite(
        &[
            (Route::ListIssues, Fault::Stall(Duration::from_secs(10))),
            (Route::CreateIssue, Fault::Stall(Duration::from_secs(10))),
        ],
        &[],
    )
    .await;
    // Each stalled request was given up after the 1 s timeout, not after 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(env.fake.count(Route::CreateIssue), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried() {
    let env = one_issue_despite(
        &[
            (Route::ListIssues, Fault::Drop),
            (Route::CreateIssue, Fault::Drop),
        ],
        &[],
    )
    .await;
    assert_eq!(env.fake.count(Route::CreateIssue), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_lost_after_the_issue_was_created_makes_no_second_issue() {
    for fault in [
        Fault::ActThenDrop,
        Fault::ActThenStatus(502),
        Fault::ActThenStall(Duration::from_secs(4)),
    ] {
        let env = one_issue_despite(&[(Route::CreateIssue, fault.clone())], &[]).await;
        // Created once; the retry found it by its marker instead of creating again.
        assert_eq!(env.fake.count(Route::CreateIssue), 1, "{fault:?}");
        let outbox = env.outbox().await;
        assert_eq!(
            opened_events(&outbox)[0]["found_existing"],
            true,
            "{fault:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_finishing_after_the_client_gave_up_is_found_after_settling() {
    // GitHub creates the issue 1.5 s in; the client times out at 1 s, waits 2.5 s before
    // looking again, finds it.
    let env = one_issue_despite(
        &[(
            Route::CreateIssue,
            Fault::SlowAct(Duration::from_millis(1500)),
        )],
        &["--github-settle", "2.5"],
    )
    .await;
    assert_eq!(env.fake.count(Route::CreateIssue), 1);
}

/// Seconds between the first answer with `status` and the next request.
fn gap_after(env: &Env, status: u16) -> f64 {
    let log = env.fake.log();
    let i = log
        .iter()
        .position(|l| l.status == status)
        .expect("status seen");
    log[i + 1].at.duration_since(log[i].at).as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_rate_limits_are_honoured() {
    // 403 with Retry-After: 2 → the next request waits 2 s (the backoff alone is ≤ 0.2 s).
    let env = one_issue_despite(&[(Route::CreateIssue, Fault::RetryAfter403(2))], &[]).await;
    let gap = gap_after(&env, 403);
    assert!(gap >= 1.9, "waited only {gap:.2}s after Retry-After: 2");
    assert_eq!(env.fake.count(Route::CreateIssue), 2);
    // 429 with x-ratelimit-remaining 0 and a reset 2 s on → waits until the reset.
    let env = one_issue_despite(&[(Route::ListIssues, Fault::Reset429(2))], &[]).await;
    let gap = gap_after(&env, 429);
    assert!(gap >= 1.0, "waited only {gap:.2}s for x-ratelimit-reset");
    // A rate limit asking for more than --github-max-wait leaves the delivery due.
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    env.fake
        .fault(Route::ListIssues, Fault::RetryAfter403(3600));
    let out = env.notify(&["--github-max-wait", "5"]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(env.fake.issues().is_empty());
    assert_eq!(env.deliveries(env.first()).await[0].state, "requested");
    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_one_issue_each(&[(env.first(), first_cause())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_give_up_for_the_pass_and_resume_later() {
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    env.fake.sticky(Route::CreateIssue, Fault::Status(503));
    let out = env.notify(&["--github-max-attempts", "3"]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.contains("still due 1"), "{out:?}");
    assert_eq!(env.fake.count(Route::CreateIssue), 3);
    // Not a failure: still due, and delivered once GitHub recovers.
    assert_eq!(env.deliveries(env.first()).await[0].state, "requested");
    env.fake.clear_faults();
    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_one_issue_each(&[(env.first(), first_cause())]);
    env.assert_conforming();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_stop_the_delivery_with_a_clear_error() {
    // 401: a bad token. Both qualifying deliveries fail, each after one request.
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    let out = rootline(
        env.args(&["--min-score", "0.05"]),
        token_env("ghp_wrongwrongwrong"),
    )
    .await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.contains("failed 2"), "{out:?}");
    assert_eq!(env.fake.log().len(), 2, "{:#?}", env.fake.log());
    assert!(env.fake.issues().is_empty());
    for inc in [env.first(), env.second()] {
        let d = env.deliveries(inc).await;
        assert_eq!(d[0].state, "failed");
        let e = d[0].error.clone().unwrap_or_default();
        assert!(
            e.contains("401") && e.contains("Bad credentials") && e.contains("token"),
            "{e}"
        );
    }
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    // Not retried on the next run...
    let out = env.notify(&["--min-score", "0.05"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(env.fake.log().len(), 2);
    // ...until asked to, with the token fixed.
    let out = env.notify(&["--min-score", "0.05", "--retry-failed"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_one_issue_each(&[(env.first(), first_cause()), (env.second(), first_cause())]);
    assert_eq!(env.deliveries(env.first()).await[0].state, "opened");
    env.assert_conforming();

    // 404: a repository that does not exist (or the token cannot see).
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    let mut args = env.args(&[]);
    let i = args.iter().position(|a| a == "--github-repo").unwrap();
    args[i + 1] = format!("{OWNER}/missing");
    let out = rootline(args, token_env(TOKEN)).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    let e = env.deliveries(env.first()).await[0]
        .error
        .clone()
        .unwrap_or_default();
    assert!(
        e.contains("404") && e.contains("Not Found") && e.contains("repository"),
        "{e}"
    );
    assert_eq!(env.fake.log().len(), 1);

    // 422: GitHub refuses the issue (e.g. an invalid label); no retry.
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    env.fake.fault(Route::CreateIssue, Fault::Status(422));
    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(env.fake.count(Route::CreateIssue), 1);
    let e = env.deliveries(env.first()).await[0]
        .error
        .clone()
        .unwrap_or_default();
    assert!(
        e.contains("422") && e.contains("Validation Failed") && e.contains("labels"),
        "{e}"
    );
    let outbox = env.outbox().await;
    let failed: Vec<&Value> = outbox
        .iter()
        .filter(|(n, _)| n == "issue_failed")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["status"], 422);

    // A redirect (renamed repository) is reported, not followed.
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    env.fake.fault(Route::ListIssues, Fault::Status(301));
    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    let e = env.deliveries(env.first()).await[0]
        .error
        .clone()
        .unwrap_or_default();
    assert!(e.contains("301") && e.contains("moved"), "{e}");
    assert_eq!(env.fake.log().len(), 1);

    // 403 that is no rate limit: missing permission.
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    env.fake.fault(Route::CreateIssue, Fault::Status(403));
    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    let e = env.deliveries(env.first()).await[0]
        .error
        .clone()
        .unwrap_or_default();
    assert!(e.contains("403") && e.contains("permission"), "{e}");
    assert_eq!(env.fake.count(Route::CreateIssue), 1);
}

// ------------------------------------------------------------------------ re-ranking

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_ranking_comments_on_the_existing_issue_and_hand_requests_open_their_own() {
    // Without the load-balancer change, the security-group revoke is the top hypothesis.
    let full = fixture("revert.jsonl");
    let text = std::fs::read_to_string(&full).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join("partial.jsonl");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("\"eventID\":\"modify-lb\""))
        .collect();
    std::fs::write(&partial, kept.join("\n")).unwrap();

    let env = Env::new(&partial).await;
    let inc = env.analysis().await.incidents[0].id.clone();
    let revoke = cause("cloudtrail", "revoke");
    let out = env.notify(&["--min-score", "0.2"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_one_issue_each(&[(inc.as_str(), revoke.clone())]);

    // The full recording re-ranks: the load-balancer change is now on top. The worker
    // comments on the incident's issue instead of opening another; the comment's answer
    // is lost once, and it still comments once.
    env.ingest(&full).await;
    let a = env.analysis().await;
    assert_eq!(a.incidents[0].id, inc);
    let modify = cause("cloudtrail", "modify-lb");
    assert_eq!(a.incidents[0].hypotheses[0].cause, modify);
    env.fake.fault(Route::CreateComment, Fault::ActThenDrop);
    let out = env.notify(&["--min-score", "0.2"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("commented 1"), "{out:?}");
    env.assert_one_issue_each(&[(inc.as_str(), revoke.clone())]);
    let issue = &env.fake.issues()[0];
    assert_eq!(issue.comments.len(), 1, "{issue:#?}");
    assert!(has_marker(&issue.comments[0].body, &marker(&inc, &modify)));
    assert!(issue.comments[0]
        .body
        .contains("ModifyLoadBalancerAttributes"));
    let d = env.deliveries(&inc).await;
    let states: Vec<(&str, Option<u64>)> = d
        .iter()
        .map(|d| (d.state.as_str(), d.issue_number))
        .collect();
    assert_eq!(states, vec![("opened", Some(1)), ("commented", Some(1))]);
    assert!(
        d[1].issue_url
            .as_deref()
            .unwrap_or("")
            .contains("#issuecomment-"),
        "{d:?}"
    );

    // Nothing more on another run.
    let out = env.notify(&["--min-score", "0.2"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(env.fake.issues()[0].comments.len(), 1);

    // A person asks for an issue for the third hypothesis: it gets its own.
    let h3 = a.incidents[0]
        .hypotheses
        .iter()
        .find(|h| h.cause.id == "re-authorize")
        .unwrap()
        .clone();
    let store = env.store().await;
    assert!(request_issue(&store, &a.incidents[0], &h3, "alice")
        .await
        .unwrap());
    assert!(!request_issue(&store, &a.incidents[0], &h3, "alice")
        .await
        .unwrap());
    store.close().await;
    let out = env.notify(&["--min-score", "0.2"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_one_issue_each(&[(inc.as_str(), revoke), (inc.as_str(), h3.cause.clone())]);
    let d = env.deliveries(&inc).await;
    assert_eq!(d[2].requested_by.as_deref(), Some("alice"));
    assert_eq!(
        (d[2].state.as_str(), d[2].issue_number),
        ("opened", Some(2))
    );
    env.assert_conforming();
}

// ------------------------------------------------------------------------ crash

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_between_creating_and_recording_ends_with_one_issue() {
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    // GitHub creates the issue, then the answer hangs; the process is killed meanwhile.
    env.fake.fault(
        Route::CreateIssue,
        Fault::ActThenStall(Duration::from_secs(60)),
    );
    let mut args = env.args(&[]);
    let i = args.iter().position(|a| a == "--github-timeout").unwrap();
    args[i + 1] = "30".into();
    let mut child = command(&args, &token_env(TOKEN))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn rootline");
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.fake.issues().is_empty() {
        assert!(Instant::now() < deadline, "the issue was never created");
        assert!(child.try_wait().unwrap().is_none(), "rootline exited early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().expect("kill -9"); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    // Killed after creating, before recording.
    let outbox = env.outbox().await;
    assert!(opened_events(&outbox).is_empty(), "{outbox:#?}");
    assert_eq!(env.deliveries(env.first()).await[0].state, "requested");

    // Restarted: it finds the issue by its marker and records it; no second issue.
    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_one_issue_each(&[(env.first(), first_cause())]);
    assert_eq!(env.fake.count(Route::CreateIssue), 1);
    let outbox = env.outbox().await;
    let opened = opened_events(&outbox);
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["number"], 1);
    assert_eq!(opened[0]["found_existing"], true);
    env.assert_conforming();
}

// ------------------------------------------------------------------------ the library

#[derive(clap::Parser)]
struct Opts {
    #[command(flatten)]
    o: GithubOptions,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_in_a_task_until_shut_down() {
    use clap::Parser;
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    let url = env.fake.url();
    let opts = Opts::parse_from([
        "x",
        "--github-repo",
        &format!("{OWNER}/{REPO}"),
        "--github-api-url",
        &url,
        "--notify-poll-interval",
        "0.1",
        "--github-retry-base",
        "0.01",
    ])
    .o;
    let config = NotifyConfig::from_args_with_env(&opts, false, |k| {
        (k == "GITHUB_TOKEN").then(|| TOKEN.to_string())
    })
    .unwrap();
    let store = env.store().await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // What `serve` does: spawn the worker with a shutdown signal.
    let task = tokio::spawn(run_worker(store.clone(), config, async {
        let _ = rx.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(20);
    while deliveries(&store, env.first())
        .await
        .unwrap()
        .first()
        .map(|d| d.state.as_str())
        != Some("opened")
    {
        assert!(Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New events while it runs: the next poll re-analyses; nothing qualifies anew.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tx.send(());
    let report = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops")
        .expect("join")
        .expect("ok");
    assert_eq!(report.opened, 1);
    env.assert_one_issue_each(&[(env.first(), first_cause())]);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_can_use_the_conclusions_another_analyser_stored() {
    use clap::Parser;
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    let url = env.fake.url();
    let opts = Opts::parse_from([
        "x",
        "--github-repo",
        &format!("{OWNER}/{REPO}"),
        "--github-api-url",
        &url,
    ])
    .o;
    let mut config = NotifyConfig::from_args_with_env(&opts, false, |k| {
        (k == "ROOTLINE_GITHUB_TOKEN").then(|| TOKEN.to_string())
    })
    .unwrap();
    config.once = true;
    config.analyze = false;
    let store = env.store().await;
    // Nothing analysed yet: nothing to do.
    let r = run_worker(store.clone(), config.clone(), std::future::pending())
        .await
        .unwrap();
    assert_eq!(r, Default::default());
    // `rootline incidents` stores the conclusions (as serve's analyser does).
    let out = rootline(strings(&["--database", &env.db, "incidents"]), vec![]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let r = run_worker(store.clone(), config, std::future::pending())
        .await
        .unwrap();
    assert_eq!((r.requested, r.opened), (1, 1));
    env.assert_one_issue_each(&[(env.first(), first_cause())]);
    let issue = &env.fake.issues()[0];
    assert!(
        issue.body.contains("`web-5xx`, `web-unhealthy`"),
        "{}",
        issue.body
    );
    store.close().await;
    env.assert_conforming();
}

// ------------------------------------------------------------------------ hostile text

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_upstream_text_cannot_inject_markdown_mentions_or_html() {
    let text = std::fs::read_to_string(fixture("one-incident.jsonl")).unwrap();
    let evil_actor = r#"Admin/@octocat <img src=x onerror=alert(1)> ``` [link](javascript:alert(1)) \n\n# pwned @here"#;
    let evil_id = r#"cause --> <script>@octocat</script> `x`"#;
    let hostile = text
        .replace(
            "assumed-role/Admin/alice",
            &format!("assumed-role/{evil_actor}"),
        )
        .replace(
            "\"eventID\":\"cause\"",
            &format!("\"eventID\":{}", serde_json::to_string(evil_id).unwrap()),
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.jsonl");
    std::fs::write(&path, hostile).unwrap();
    let env = Env::new(&path).await;
    let a = env.analysis().await;
    let inc = a
        .incidents
        .iter()
        .find(|i| i.id == env.first())
        .expect("incident");
    let top = inc.hypotheses[0].clone();
    assert_eq!(top.cause.id, evil_id, "{:#?}", inc.hypotheses);
    assert!(top.summary.contains("@octocat"), "{}", top.summary);

    let out = env.notify(&[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.assert_conforming();
    env.assert_one_issue_each(&[(env.first(), top.cause.clone())]);
    let issue = &env.fake.issues()[0];
    assert!(
        !issue.title.contains("@octocat") && issue.title.contains("@\u{200B}octocat"),
        "{}",
        issue.title
    );
    // The body holds the report, whose Markdown is checked below with the rest.
    let report = env.report(env.first()).await;
    assert!(
        issue.body.contains(&report),
        "--- report:\n{report}\n--- body:\n{}",
        issue.body
    );
    assert!(report.contains("<img src=x onerror=alert(1)>"), "{report}");
    // As a GitHub table too: every row keeps its cells (a `|` in a cell is escaped).
    let mut tables = String::new();
    pulldown_cmark::html::push_html(
        &mut tables,
        pulldown_cmark::Parser::new_ext(&report, pulldown_cmark::Options::ENABLE_TABLES),
    );
    let rows: Vec<&str> = tables.split("<tr>").skip(1).collect();
    assert!(rows.len() > 2, "{tables}");
    for row in rows {
        let row = row.split("</tr>").next().unwrap();
        let cells = row.matches("<td").count() + row.matches("<th").count();
        assert!(cells == 6 || cells == 4, "{cells} cells in {row}");
    }
    // The marker is one line, one comment.
    let first = issue.body.lines().next().unwrap();
    assert_eq!(first.matches("-->").count(), 1, "{first}");
    // Rendered as GitHub would (CommonMark + HTML), everything upstream sits in code.
    let rest = &issue.body[first.len()..];
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(rest));
    let mut outside = String::new();
    let mut s = html.as_str();
    while let Some(i) = s.find("<code>") {
        outside.push_str(&s[..i]);
        s = &s[i..];
        let j = s.find("</code>").expect("closed code");
        s = &s[j + "</code>".len()..];
    }
    outside.push_str(s);
    for bad in [
        "@octocat",
        "@here",
        "<img",
        "<script",
        "javascript:",
        "<h1",
        "pwned",
        "-->",
    ] {
        assert!(
            !outside.contains(bad),
            "{bad:?} outside code:\n{outside}\n--- body:\n{}",
            issue.body
        );
    }
    assert!(html.contains("&lt;img src=x"), "{html}");
    // No `#N` outside code either: GitHub would link it to issue N.
    let b = outside.as_bytes();
    for i in 1..b.len().saturating_sub(1) {
        assert!(
            !(b[i] == b'#' && b[i + 1].is_ascii_digit() && b[i - 1] != b'&'),
            "issue reference in {outside}"
        );
    }
}

// ------------------------------------------------------------------------ the token

fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_shows_in_logs_events_pages_or_dry_runs() {
    const WRONG: &str = "ghp_Wr0ngT0kenAlsoSecret9876543210abcdef";
    let env = Env::new(&fixture("one-incident.jsonl")).await;
    let mut seen = String::new();
    let loud = |mut v: Vec<(String, String)>| {
        v.push(("RUST_LOG".into(), "trace".into()));
        v
    };
    // A run with retries, a lost answer and a permanent failure, every log level on.
    env.fake.fault(Route::CreateIssue, Fault::Status(500));
    env.fake.fault(Route::CreateIssue, Fault::ActThenDrop);
    env.fake.fault(Route::CreateIssue, Fault::Status(422));
    let out = rootline(
        env.args(&["-vv", "--min-score", "0.05"]),
        loud(token_env(TOKEN)),
    )
    .await;
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(
        out.stderr.contains("GitHub request"),
        "not logging at debug: {}",
        out.stderr
    );
    seen.push_str(&out.stdout);
    seen.push_str(&out.stderr);
    // A wrong token (401), from GITHUB_TOKEN.
    let out = rootline(
        env.args(&["-vv", "--min-score", "0.05", "--retry-failed"]),
        loud(vec![("GITHUB_TOKEN".into(), WRONG.into())]),
    )
    .await;
    assert_eq!(out.code, Some(3), "{out:?}");
    seen.push_str(&out.stdout);
    seen.push_str(&out.stderr);
    // The token from a file, the failure retried and delivered.
    let token_file = env.dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let out = rootline(
        env.args(&[
            "-vv",
            "--min-score",
            "0.05",
            "--retry-failed",
            "--github-token-file",
            &token_file.display().to_string(),
        ]),
        loud(vec![]),
    )
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    seen.push_str(&out.stdout);
    seen.push_str(&out.stderr);
    env.assert_one_issue_each(&[(env.first(), first_cause()), (env.second(), first_cause())]);
    // A dry run with the token set.
    let mut args = env.args(&["-vv", "--dry-run"]);
    args.retain(|a| a != "--once");
    let out = rootline(args, loud(token_env(TOKEN))).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    seen.push_str(&out.stdout);
    seen.push_str(&out.stderr);
    // Bad configuration errors.
    let mut args = env.args(&[]);
    let i = args.iter().position(|a| a == "--github-api-url").unwrap();
    args[i + 1] = "notaurl".into();
    let out = rootline(args, token_env(TOKEN)).await;
    assert!(out.stderr.contains("--github-api-url"), "{out:?}");
    assert_ne!(out.code, Some(0));
    seen.push_str(&out.stderr);
    // The requests did carry it (so the checks below mean something).
    assert!(env
        .fake
        .log()
        .iter()
        .any(|l| l.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));

    // Pages: the incidents, each incident (with its deliveries), every event, as HTML and JSON.
    let store = env.store().await;
    let events = store.query(&EventFilter::default()).await.unwrap();
    store.close().await;
    let mut pages = 0;
    {
        let mut child = command(
            &strings(&[
                "--database",
                &env.db,
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--no-analyze",
            ]),
            &loud(token_env(TOKEN)),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
        let stdout = child.stdout.take().unwrap();
        let addr = tokio::task::spawn_blocking(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            lines
                .find_map(|l| {
                    l.ok()
                        .and_then(|l| l.split("http://").nth(1).map(|a| a.trim().to_string()))
                })
                .expect("serve prints its address")
        })
        .await
        .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let mut urls = vec!["/incidents".to_string(), "/status".to_string()];
        for inc in [env.first(), env.second()] {
            urls.push(format!("/incidents/{inc}"));
        }
        for e in &events {
            urls.push(format!("/events/{}", e.seq));
        }
        for u in &urls {
            for accept in ["text/html", "application/json"] {
                let r = http
                    .get(format!("http://{addr}{u}"))
                    .header("accept", accept)
                    .send()
                    .await
                    .expect("page");
                assert!(r.status().is_success(), "{u}: {}", r.status());
                seen.push_str(&r.text().await.unwrap());
                pages += 1;
            }
        }
        let incident_page = http
            .get(format!("http://{addr}/incidents/{}", env.first()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            incident_page.contains("issues/1"),
            "the incident page shows no issue link"
        );
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(pages > 20);

    // Stored events: every payload, and the raw database files.
    for e in &events {
        seen.push_str(&e.payload);
        seen.push('\n');
    }
    let outbox = env.outbox().await;
    assert!(outbox.iter().any(|(n, _)| n == "issue_failed"));
    for f in files_under(env.dir.path()) {
        if f.file_name().is_some_and(|n| n == "token") {
            continue;
        }
        seen.push_str(&String::from_utf8_lossy(&std::fs::read(&f).unwrap()));
    }
    for secret in [TOKEN, WRONG] {
        assert!(!seen.contains(secret), "the token {secret} leaked");
        // Nor a recognisable part of it.
        assert!(
            !seen.contains(&secret[4..20]),
            "part of the token {secret} leaked"
        );
    }
}

#[test]
fn the_worker_future_can_be_spawned() {
    fn assert_send<T: Send + 'static>(_: &T) {}
    let _ = |store: Store, config: NotifyConfig| {
        let f = run_worker(store, config, async {});
        assert_send(&f);
    };
}
