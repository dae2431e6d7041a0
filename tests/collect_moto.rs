//! Collectors and `aws setup` through the real aws-sdk clients against `moto_server` on
//! 127.0.0.1 (CloudWatch Logs FilterLogEvents, EventBridge connections, API
//! destinations and rules, CloudTrail trails). These tests fail, never skip, when
//! moto_server is missing: set ROOTLINE_MOTO_SERVER or put it on PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod collect_common;

mod matrix;
use collect_common::*;
use rootline::collect::config::LogsConfig;
use rootline::collect::logs::LogGroupCollector;
use rootline::collect::setup::{self, Action, SetupInput};
use rootline::collect::{Clock, Collector};
use rootline::model::{Kind, Source};
use rootline::store::{EventFilter, EventLog};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

async fn put_logs(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    events: &[(i64, String)],
) {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let _ = client.create_log_group().log_group_name(group).send().await;
    let _ = client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    for chunk in events.chunks(500) {
        let batch: Vec<InputLogEvent> = chunk
            .iter()
            .map(|(t, m)| {
                InputLogEvent::builder()
                    .timestamp(*t)
                    .message(m)
                    .build()
                    .unwrap()
            })
            .collect();
        client
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .set_log_events(Some(batch))
            .send()
            .await
            .expect("PutLogEvents");
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn filter_log_events_pages_and_record_replay() {
    let moto = start_moto();
    let conf = moto_sdk_config(&moto.url).await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&conf);
    // The last two minutes of these are inside the next poll's lag window.
    let base = now() - 150_000;
    let events: Vec<(i64, String)> = (0..230)
        .map(|i| (base + i * 500, format!("GET /orders/{i} 200 {}ms", i % 17)))
        .collect();
    put_logs(&client, "/ecs/orders-api", "web/1", &events).await;

    let dir = temp_dir();
    let rec = dir.path().join("logs.jsonl");
    let store = memory_store().await;
    let (ctx, _stop) = ctx(&store, Some(&rec));
    let cfg = LogsConfig {
        page_size: Some(40),
        requests_per_sec: 50.0,
        ..Default::default()
    };
    let mut c = LogGroupCollector::new("moto", "us-east-1", "/ecs/orders-api", client.clone(), cfg);
    let r = c.poll(&ctx).await.expect("poll");
    assert!(r.pages >= 6, "paged: {}", r.pages);
    assert_eq!(r.delivered.appended, 230);
    let stored = store
        .query(&EventFilter {
            sources: vec![Source::Logs],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 230);
    let p: serde_json::Value = serde_json::from_str(&stored[0].payload).unwrap();
    for k in [
        "logStreamName",
        "timestamp",
        "message",
        "ingestionTime",
        "eventId",
        "logGroupName",
    ] {
        assert!(p.get(k).is_some(), "payload has {k}: {p}");
    }
    assert!(stored[0]
        .resources
        .contains(&"loggroup//ecs/orders-api".to_string()));

    // Late events (timestamps inside the lag window, ingested after the poll) are read
    // by the next poll; nothing is stored twice.
    put_logs(
        &client,
        "/ecs/orders-api",
        "web/1",
        &[(now() - 30_000, "GET /late 200 3ms".into())],
    )
    .await;
    let r = c.poll(&ctx).await.expect("poll 2");
    assert_eq!(r.delivered.appended, 1);
    assert!(
        r.delivered.duplicates > 0,
        "the lag window was read again: {r:?}"
    );
    assert_eq!(store.count().await.unwrap(), 231);

    assert_eq!(
        replay(&rec).await,
        snapshot(&store).await,
        "record then replay"
    );
}

#[tokio::test]
async fn own_detection_finds_new_error_patterns_and_rate_spikes() {
    let moto = start_moto();
    let conf = moto_sdk_config(&moto.url).await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&conf);
    // A fixed clock two hours back so every minute is known; moto keeps real timestamps.
    let t0 = (now() - 2 * 3_600_000) / 60_000 * 60_000;
    let clock = Arc::new(AtomicI64::new(t0));
    let group = "/ecs/payments";
    // Baseline: 40 minutes with one known error a minute and some info lines.
    let mut base = Vec::new();
    for m in 0..40 {
        let t = t0 - 40 * 60_000 + m * 60_000;
        base.push((t + 1000, format!("INFO request {m} ok")));
        base.push((t + 2000, format!("ERROR cache miss for key k{m}")));
    }
    put_logs(&client, group, "app/1", &base).await;

    let dir = temp_dir();
    let rec = dir.path().join("detect.jsonl");
    let store = memory_store().await;
    let (mut ctx, _stop) = ctx(&store, Some(&rec));
    ctx.clock = Clock::Manual(clock.clone());
    let mut cfg = LogsConfig {
        lag_secs: 60,
        requests_per_sec: 50.0,
        ..Default::default()
    };
    cfg.detect.warmup_minutes = 20;
    let mut c = LogGroupCollector::new("moto", "us-east-1", group, client.clone(), cfg);
    let r = c.poll(&ctx).await.unwrap();
    assert_eq!(r.delivered.appended, 80, "the first pass only learns");

    // Ten minutes later: a new error pattern, and a burst of the known one.
    let mut burst = Vec::new();
    for i in 0..30 {
        burst.push((
            t0 + 3 * 60_000 + 1000 + i * 100,
            format!("ERROR cache miss for key z{i}"),
        ));
    }
    burst.push((
        t0 + 4 * 60_000 + 5000,
        "ERROR connection refused to db-1.internal:5432".to_string(),
    ));
    put_logs(&client, group, "app/1", &burst).await;
    clock.store(t0 + 10 * 60_000, Ordering::SeqCst);
    let r = c.poll(&ctx).await.unwrap();
    assert_eq!(
        r.delivered.appended,
        31 + 2,
        "31 lines and 2 derived anomalies: {r:?}"
    );

    let anomalies = store
        .query(&EventFilter {
            sources: vec![Source::LogsAnomaly],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(anomalies.len(), 2);
    let mut kinds: Vec<String> = anomalies
        .iter()
        .map(|a| a.natural_id.split(':').nth(1).unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["error-rate", "new-pattern"]);
    for a in &anomalies {
        assert!(
            a.natural_id.starts_with("rootline:"),
            "rootline namespace: {}",
            a.natural_id
        );
        let p: serde_json::Value = serde_json::from_str(&a.payload).unwrap();
        assert_eq!(p["derivedBy"], "rootline");
        assert!(p["description"]
            .as_str()
            .unwrap()
            .starts_with("rootline-derived"));
        match &a.kind {
            Kind::Anomaly { group: g, .. } => assert_eq!(g, group),
            k => panic!("{k:?}"),
        }
        assert!(a.resources.contains(&format!("loggroup/{group}")));
    }
    let spike = anomalies
        .iter()
        .find(|a| a.natural_id.contains("error-rate"))
        .unwrap();
    assert_eq!(spike.event_time / 60_000, (t0 + 3 * 60_000) / 60_000);

    // Polling again finds nothing new (the state is in the checkpoint).
    clock.store(t0 + 11 * 60_000, Ordering::SeqCst);
    let r = c.poll(&ctx).await.unwrap();
    assert_eq!(r.delivered.appended, 0);
    assert_eq!(
        replay(&rec).await,
        snapshot(&store).await,
        "derived anomalies are recorded too"
    );
}

fn setup_input(name: &str, endpoint: &str) -> SetupInput {
    SetupInput {
        name: name.into(),
        endpoint: endpoint.into(),
        header: "x-api-key".into(),
        api_key: secrecy::SecretString::from("k-123".to_string()),
        role_arn: Some("arn:aws:iam::123456789012:role/rootline-eventbridge".into()),
        event_bus: None,
        rate_limit: 10,
    }
}

#[tokio::test]
async fn aws_setup_is_idempotent_and_dry_run_changes_nothing() {
    let moto = start_moto();
    let conf = moto_sdk_config(&moto.url).await;
    let eb = aws_sdk_eventbridge::Client::new(&conf);
    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    let input = setup_input(
        "rootline",
        "https://rootline.example.com/ingest/eventbridge",
    );

    // Dry run first: a plan of creations, and nothing created.
    let plan = setup::apply(&eb, Some(&ct), &input, true)
        .await
        .expect("dry run");
    assert!(
        plan.iter().filter(|s| s.action == Action::Create).count() >= 2 + 2 * setup::RULES.len()
    );
    assert!(eb
        .describe_connection()
        .name("rootline")
        .send()
        .await
        .is_err());
    assert!(eb.list_rules().send().await.unwrap().rules().is_empty());
    // No trail yet: the plan says so.
    assert!(plan
        .iter()
        .any(|s| s.what == "cloudtrail" && s.action == Action::Note));

    let first = setup::apply(&eb, Some(&ct), &input, false)
        .await
        .expect("apply");
    assert!(first.iter().any(|s| s.action == Action::Create));
    let dest = eb
        .describe_api_destination()
        .name("rootline")
        .send()
        .await
        .unwrap();
    assert_eq!(
        dest.invocation_endpoint(),
        Some("https://rootline.example.com/ingest/eventbridge")
    );
    let conn = eb
        .describe_connection()
        .name("rootline")
        .send()
        .await
        .unwrap();
    assert_eq!(
        conn.auth_parameters()
            .and_then(|p| p.api_key_auth_parameters())
            .and_then(|k| k.api_key_name()),
        Some("x-api-key")
    );
    for (suffix, _, pattern) in setup::RULES {
        let r = eb
            .describe_rule()
            .name(format!("rootline-{suffix}"))
            .send()
            .await
            .unwrap();
        let got: serde_json::Value = serde_json::from_str(r.event_pattern().unwrap()).unwrap();
        let want: serde_json::Value = serde_json::from_str(pattern).unwrap();
        assert_eq!(got, want);
        let t = eb
            .list_targets_by_rule()
            .rule(format!("rootline-{suffix}"))
            .send()
            .await
            .unwrap();
        assert_eq!(t.targets().len(), 1);
        assert_eq!(t.targets()[0].arn(), dest.api_destination_arn().unwrap());
    }
    let alarm_rule = eb
        .describe_rule()
        .name("rootline-alarms")
        .send()
        .await
        .unwrap();
    assert!(alarm_rule
        .event_pattern()
        .unwrap()
        .contains("CloudWatch Alarm State Change"));

    // A trail that logs (moto implements trails), then setup again: nothing to create,
    // everything unchanged but the connection key, which cannot be read back.
    let _ = ct
        .create_trail()
        .name("org")
        .s3_bucket_name("trail-bucket")
        .send()
        .await;
    let second = setup::apply(&eb, Some(&ct), &input, false)
        .await
        .expect("apply again");
    for s in &second {
        match s.what.as_str() {
            w if w.starts_with("connection") => assert_eq!(s.action, Action::Update),
            "cloudtrail" => {}
            _ => assert_eq!(s.action, Action::Unchanged, "{s}"),
        }
    }
    assert_eq!(
        eb.list_rules().send().await.unwrap().rules().len(),
        setup::RULES.len()
    );

    // A moved endpoint updates the destination only.
    let moved = setup_input(
        "rootline",
        "https://rootline2.example.com/ingest/eventbridge",
    );
    let third = setup::apply(&eb, Some(&ct), &moved, false).await.unwrap();
    assert!(third
        .iter()
        .any(|s| s.what == "api destination rootline" && s.action == Action::Update));
    let dest = eb
        .describe_api_destination()
        .name("rootline")
        .send()
        .await
        .unwrap();
    assert_eq!(
        dest.invocation_endpoint(),
        Some("https://rootline2.example.com/ingest/eventbridge")
    );
}

/// `rootline collect` killed with SIGKILL in the middle of a long FilterLogEvents read,
/// then run again: every log event stored exactly once.
#[tokio::test]
async fn collect_binary_killed_mid_run_leaves_no_duplicate_and_no_gap() {
    interrupt_collect_then_complete("SIGKILL", "/app/kill").await;
}

/// SIGTERM (and Ctrl-C, the same path) stops the pollers between pages: the process
/// exits 0 promptly with what it stored committed, and a later run completes the rest.
#[tokio::test]
async fn collect_binary_stops_cleanly_on_sigterm() {
    interrupt_collect_then_complete("SIGTERM", "/app/term").await;
}

/// A moto log group of 1,500 events and a config that reads only it, 25 a page at 8
/// pages a second (about 8 s): time to interrupt a read. Returns moto, the directory, the
/// store's path and the config's.
async fn slow_log_group(
    group: &str,
    db_name: &str,
) -> (
    Moto,
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let moto = start_moto();
    let conf = moto_sdk_config(&moto.url).await;
    let client = aws_sdk_cloudwatchlogs::Client::new(&conf);
    let base = now() - 30 * 60_000;
    let events: Vec<(i64, String)> = (0..1500)
        .map(|i| (base + i * 500, format!("line {i}")))
        .collect();
    put_logs(&client, group, "s", &events).await;
    let dir = temp_dir();
    let db = dir.path().join(db_name);
    let config = dir.path().join("rootline.toml");
    std::fs::write(
        &config,
        format!(
            "database = \"{}\"\n[collect]\npoll_interval_secs = 1\n[collect.cloudtrail]\nenabled = false\n[collect.alarms]\nenabled = false\n[collect.config]\nenabled = false\n[collect.logs]\ngroups = [\"{group}\"]\nanomalies = false\npage_size = 25\nrequests_per_sec = 8.0\n",
            matrix::store_url(&db),
        ),
    )
    .unwrap();
    (moto, dir, db, config)
}

async fn interrupt_collect_then_complete(signal: &str, group: &str) {
    let (moto, _dir, db, config) = slow_log_group(group, "kill.db").await;
    let bin = env!("CARGO_BIN_EXE_rootline");
    let run = |once: bool| {
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("collect").arg("--config").arg(&config);
        if once {
            cmd.arg("--once");
        }
        cmd.env("AWS_ENDPOINT_URL", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("ROOTLINE_DATABASE")
            .env_remove("AWS_PROFILE")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    // Read-only counts while the collector runs (opening the store would race its
    // migrations).
    let count = |db: std::path::PathBuf| async move {
        matrix::read_count(&db, "SELECT COUNT(*) FROM events")
            .await
            .unwrap_or(0)
    };
    let mut child = run(false).spawn().expect("spawn rootline collect");
    let t = std::time::Instant::now();
    loop {
        let n = count(db.clone()).await;
        if n >= 200 {
            break;
        }
        assert!(
            t.elapsed().as_secs() < 60,
            "collect made no progress ({n} events)"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "collect exited early: {:?}",
            child.wait_with_output()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if signal == "SIGKILL" {
        // No chance to clean up.
        child.kill().expect("kill");
        let _ = child.wait();
    } else {
        let sent = std::process::Command::new("kill")
            .arg(format!("-{}", signal.trim_start_matches("SIG")))
            .arg(child.id().to_string())
            .status()
            .expect("kill(1)");
        assert!(sent.success());
        let t = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                t.elapsed().as_secs() < 20,
                "collect still running 20 s after {signal}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            status.success(),
            "exit after {signal}: {status:?}\n{stderr}"
        );
    }
    let mid = count(db.clone()).await;
    assert!(mid < 1500, "stopped mid-run ({mid} stored)");

    let out = run(true).output().expect("collect --once");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut messages = stored_log_messages(&db).await;
    assert_eq!(messages.len(), 1500, "no gap, no duplicate");
    // Sorted by stored_log_messages.
    messages.dedup();
    assert_eq!(messages.len(), 1500, "no duplicate");
    let store = rootline::store::Store::open(&matrix::store_url(&db))
        .await
        .unwrap();
    let cp = store
        .checkpoint(&format!("collect:logs:default:us-east-1:{group}"))
        .await
        .unwrap();
    assert!(cp.is_some(), "the completed run committed its checkpoint");
}

#[tokio::test]
async fn config_history_where_config_records() {
    use rootline::collect::awsconfig::ConfigCollector;
    use rootline::collect::config::AwsConfigConfig;
    let moto = start_moto();
    let conf = moto_sdk_config(&moto.url).await;
    let client = aws_sdk_config::Client::new(&conf);
    // An SNS topic (moto's Config implements SNS topics), created by a plain query call.
    let addr = moto.url.trim_start_matches("http://").to_string();
    let (status, _) = http_post(
        &addr,
        "/",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0"),
        ],
        b"Action=CreateTopic&Name=orders-events&Version=2010-03-31",
    )
    .await;
    assert_eq!(status, 200);

    let store = memory_store().await;
    let (ctx, _stop) = ctx(&store, None);
    let cfg = AwsConfigConfig {
        resource_types: vec!["AWS::SNS::Topic".into()],
        requests_per_sec: 50.0,
        ..Default::default()
    };
    let mut c = ConfigCollector::new("moto", "us-east-1", client.clone(), cfg);
    let r = c.poll(&ctx).await.expect("poll without a recorder");
    assert_eq!(
        r.note.as_deref(),
        Some("AWS Config is not recording in this region")
    );
    assert_eq!(store.count().await.unwrap(), 0);

    client
        .put_configuration_recorder()
        .configuration_recorder(
            aws_sdk_config::types::ConfigurationRecorder::builder()
                .name("default")
                .role_arn("arn:aws:iam::123456789012:role/config")
                .recording_group(
                    aws_sdk_config::types::RecordingGroup::builder()
                        .all_supported(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("recorder");
    let r = c.poll(&ctx).await.expect("poll");
    assert_eq!(r.delivered.appended, 1, "{r:?}");
    let ev = store
        .query(&EventFilter {
            sources: vec![Source::Config],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ev[0].natural_id,
        "AWS::SNS::Topic/arn:aws:sns:us-east-1:123456789012:orders-events@1"
    );
    let p: serde_json::Value = serde_json::from_str(&ev[0].payload).unwrap();
    assert!(
        p["configurationItemCaptureTime"].is_number(),
        "epoch seconds, as the API sends"
    );
    assert!(p["configuration"].is_string());
    // Again: nothing new.
    let r = c.poll(&ctx).await.unwrap();
    assert_eq!(r.delivered.appended, 0);
}

/// Two `rootline collect` processes on one store: the log group is polled by the one
/// that holds its lease; that one killed with SIGKILL, the other takes the lease over and
/// completes the read from the checkpoint: every log event stored once.
#[tokio::test]
async fn two_collect_processes_share_a_source_and_a_survivor_takes_it_over() {
    let (moto, dir, db, config) = slow_log_group("/app/two", "two.db").await;
    let spawn = |log: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rootline"))
            .arg("collect")
            .arg("--config")
            .arg(&config)
            .env("AWS_ENDPOINT_URL", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("RUST_LOG", "rootline=info")
            .env_remove("ROOTLINE_DATABASE")
            .env_remove("AWS_PROFILE")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(log)).unwrap())
            .spawn()
            .expect("spawn rootline collect")
    };
    let read = |db: std::path::PathBuf| async move {
        let n = matrix::read_count(&db, "SELECT COUNT(*) FROM events").await?;
        let holders = matrix::read_texts(
            &db,
            format!(
                "SELECT holder FROM leases WHERE name LIKE 'collect:logs:%' AND expires_at > {}",
                now()
            ),
        )
        .await?;
        Some((n, holders))
    };
    type Done = Box<dyn Fn(i64, &[String]) -> bool>;
    let wait = |what: &'static str, done: Done| {
        let db = db.clone();
        async move {
            let t = std::time::Instant::now();
            loop {
                if let Some((n, h)) = read(db.clone()).await {
                    if done(n, &h) {
                        return (n, h);
                    }
                }
                assert!(t.elapsed().as_secs() < 60, "waited 60 s for {what}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    // The second starts once the first has made the store (not to race its migrations).
    let a = spawn("a.log");
    wait("the first events", Box::new(|n, _| n > 0)).await;
    let b = spawn("b.log");
    let (_, holders) = wait("the lease", Box::new(|n, h| n >= 200 && h.len() == 1)).await;
    let pid = |h: &str| -> u32 { h.rsplit('-').nth(1).unwrap().parse().unwrap() };
    let ((mut holder, _), (mut other, other_log)) = if pid(&holders[0]) == a.id() {
        ((a, "a.log"), (b, "b.log"))
    } else {
        ((b, "b.log"), (a, "a.log"))
    };
    // Meanwhile the other has not polled the group at all.
    let polled = |log: &str| {
        std::fs::read_to_string(dir.path().join(log))
            .unwrap()
            .lines()
            .filter(|l| l.contains("Polled"))
            .count()
    };
    assert_eq!(polled(other_log), 0, "both processes polled the group");
    holder.kill().expect("kill");
    let _ = holder.wait();
    let other_pid = other.id();
    let (n, _) = wait(
        "the survivor to finish the read",
        Box::new(move |n, h| n >= 1500 && h.len() == 1 && pid(&h[0]) == other_pid),
    )
    .await;
    assert_eq!(n, 1500);
    // Its poll ends (and is logged) just after its last page is stored.
    let t = std::time::Instant::now();
    while polled(other_log) == 0 {
        assert!(t.elapsed().as_secs() < 30, "the survivor never polled");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = other.kill();
    let _ = other.wait();
    let mut messages = stored_log_messages(&db).await;
    assert_eq!(messages.len(), 1500, "no gap, no duplicate");
    messages.dedup();
    assert_eq!(messages.len(), 1500, "no duplicate");
}
