//! `rootline ingest` and `rootline events` through the real binary, on real SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;

#[test]
fn ingesting_the_same_file_twice_appends_nothing_and_reports_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let rec = fixture("demo/security-group.jsonl");
    let lines = std::fs::read_to_string(&rec).unwrap().lines().count() as u64;

    let first = ingest(&db, &[&rec]);
    first.assert_no_panic();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let s = first.json();
    assert_eq!(s["read"], lines);
    assert_eq!(s["appended"], lines);
    assert_eq!(s["duplicates"], 0);
    assert_eq!(s["rejected"], 0);

    let second = ingest(&db, &[&rec]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let s = second.json();
    assert_eq!(s["read"], lines);
    assert_eq!(s["appended"], 0, "the second ingest appended rows: {s}");
    assert_eq!(s["duplicates"], lines);

    // The human summary says the same.
    let third = rootline(
        &db,
        &["ingest", "--no-progress", &rec.display().to_string()],
    );
    assert_eq!(third.code, 0);
    assert!(
        third.stdout.contains("appended 0")
            && third.stdout.contains(&format!("duplicates {lines}")),
        "{}",
        third.stdout
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = read_conn(&db).await;
        assert_eq!(
            count_and_max_seq(&mut c).await,
            (lines as i64, lines as i64)
        );
    });
}

#[test]
fn sequence_numbers_stay_gap_free_with_duplicates_and_rejections_interleaved() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    // Several ingest batches' worth, so duplicates fall in the same statement, the same
    // transaction and earlier transactions.
    let mut lines = Vec::new();
    let mut distinct = BTreeSet::new();
    let mut emitted: Vec<u32> = Vec::new();
    let mut rejected = 0u64;
    for i in 0..7000u32 {
        if i % 97 == 0 {
            lines.push(format!(
                "{{\"source\":\"cloudtrail\",\"payload\":{{\"eventName\":\"x{i}\"}}}}"
            ));
            rejected += 1;
        } else if i % 13 == 0 {
            // A re-delivery of an earlier event: sometimes the line just before, sometimes
            // one thousands of lines back.
            let back = (i as usize * 7919) % emitted.len();
            let j = emitted[emitted.len() - 1 - back];
            lines.push(line("logs", &log_payload(j)));
        } else {
            lines.push(line("logs", &log_payload(i)));
            distinct.insert(i);
            emitted.push(i);
        }
    }
    let a = write_lines(dir.path(), "a.jsonl", &lines);
    let run = ingest(&db, &[&a]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{}", run.stderr);
    let s = run.json();
    assert_eq!(s["rejected"], rejected);
    assert_eq!(s["appended"], distinct.len() as u64);
    assert_eq!(s["duplicates"], 7000 - rejected - distinct.len() as u64);

    // A second file: half old ids, half new ones.
    let mut more = Vec::new();
    for i in 6000..9000u32 {
        if i % 97 != 0 && i % 13 != 0 || i >= 7000 {
            more.push(line("logs", &log_payload(i)));
            distinct.insert(i);
        }
    }
    let b = write_lines(dir.path(), "b.jsonl", &more);
    assert_eq!(ingest(&db, &[&b]).code, 0);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = read_conn(&db).await;
        let (count, max) = count_and_max_seq(&mut c).await;
        assert_eq!(count, distinct.len() as i64);
        assert_eq!(max, count, "a gap in the sequence");
        let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM events ORDER BY seq")
            .fetch_all(&mut c)
            .await
            .unwrap();
        assert!(seqs.iter().enumerate().all(|(i, s)| *s == i as i64 + 1));
        let ids: BTreeSet<u32> = stored_keys(&mut c)
            .await
            .into_iter()
            .map(|(_, id)| id.trim_start_matches("log-").parse().unwrap())
            .collect();
        assert_eq!(ids, distinct);
    });
}

fn log_payload(i: u32) -> String {
    format!(
        "{{\"logStreamName\":\"s\",\"timestamp\":{},\"message\":\"line {i}\",\"ingestionTime\":1,\"eventId\":\"log-{i}\",\"logGroupName\":\"/aws/lambda/orders\"}}",
        1_760_000_000_000u64 + u64::from(i) * 10
    )
}

/// Every rejection on stderr names the file and line; the JSON summary carries the same.
fn assert_rejected(run: &Run, file: &std::path::Path, line: u64, reason_part: &str) {
    let prefix = format!("rejected: {}:{line}: ", file.display());
    let found = run
        .stderr
        .lines()
        .any(|l| l.starts_with(&prefix) && l.contains(reason_part));
    assert!(
        found,
        "no `{prefix}...{reason_part}...` on stderr:\n{}",
        run.stderr
    );
    let s = run.json();
    let in_json = s["rejections"].as_array().unwrap().iter().any(|r| {
        r["file"] == file.display().to_string()
            && r["line"] == line
            && r["reason"].as_str().unwrap().contains(reason_part)
    });
    assert!(
        in_json,
        "rejection {line} {reason_part:?} missing from the summary: {s}"
    );
}

#[test]
fn malformed_lines_are_rejected_with_file_line_and_reason_and_the_rest_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let ok = |i: u32| {
        line(
            "cloudtrail",
            &cloudtrail(
                &format!("ok-{i}"),
                "2025-10-07T14:00:00Z",
                "RunInstances",
                "{}",
            ),
        )
    };
    let huge = format!(
        "{{\"source\":\"logs\",\"payload\":{{\"eventId\":\"big\",\"timestamp\":1,\"message\":\"{}\"}}}}",
        "x".repeat(10 * 1024 * 1024)
    );
    let mut bytes: Vec<u8> = Vec::new();
    let mut push = |l: &[u8]| {
        bytes.extend_from_slice(l);
        bytes.push(b'\n');
    };
    push(ok(1).as_bytes()); // 1
    push(b"{\"source\":\"cloudtrail\",\"payload\":{\"eventID\":\"a\""); // 2: invalid JSON
    push(ok(2).as_bytes()); // 3
    push(
        line(
            "cloudtrail",
            "{\"eventTime\":\"2025-10-07T14:00:00Z\",\"eventName\":\"X\"}",
        )
        .as_bytes(),
    ); // 4: no id
    push(
        line(
            "eventbridge",
            "{\"id\":\"e1\",\"detail-type\":\"X\",\"detail\":{}}",
        )
        .as_bytes(),
    ); // 5: no time
    push(
        line(
            "cloudtrail",
            "{\"eventID\":true,\"eventTime\":\"2025-10-07T14:00:00Z\"}",
        )
        .as_bytes(),
    ); // 6: wrong type
    push(line("logs", "{\"eventId\":\"l1\",\"timestamp\":[1]}").as_bytes()); // 7: wrong type
    push(huge.as_bytes()); // 8: 10 MB line
    push(ok(3).as_bytes()); // 9
    push(b"{\"source\":\"logs\",\"payload\":{\"eventId\":\"l2\",\"timestamp\":1,\"message\":\"caf\xe9\"}}"); // 10: not UTF-8
    push(line("cloudtrail", "[1,2]").as_bytes()); // 11: payload not an object
    push(b"{\"source\":\"nope\",\"payload\":{}}"); // 12: unknown source
    push(b"{\"recorded_at\":\"2025-10-07T14:00:00Z\"}"); // 13: no source, no payload
    push(
        line(
            "cloudtrail",
            "{\"eventID\":\"t\",\"eventTime\":\"last tuesday\"}",
        )
        .as_bytes(),
    ); // 14: bad time
    push(ok(4).as_bytes()); // 15
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, &bytes).unwrap();

    let run = ingest(&db, &[&path]);
    run.assert_no_panic();
    assert_eq!(
        run.code, 3,
        "exit code 3: completed with rejections\n{}",
        run.stderr
    );
    assert_rejected(&run, &path, 2, "invalid JSON");
    assert_rejected(&run, &path, 4, "missing field `eventID`");
    assert_rejected(&run, &path, 5, "missing field `time`");
    assert_rejected(&run, &path, 6, "`eventID` should be");
    assert_rejected(&run, &path, 7, "`timestamp` should be");
    assert_rejected(&run, &path, 8, "over the");
    assert_rejected(&run, &path, 10, "not valid UTF-8");
    assert_rejected(&run, &path, 11, "not a JSON object");
    assert_rejected(&run, &path, 12, "unknown source");
    assert_rejected(&run, &path, 13, "missing field `source`");
    assert_rejected(&run, &path, 14, "not a valid time");
    let s = run.json();
    assert_eq!(s["read"], 15);
    assert_eq!(s["rejected"], 11);
    assert_eq!(s["appended"], 4);
    let by_reason = s["rejected_by_reason"].as_object().unwrap();
    for cat in [
        "invalid JSON",
        "missing id or time",
        "wrong type",
        "too large",
        "not UTF-8",
    ] {
        assert!(by_reason.contains_key(cat), "no {cat:?} in {by_reason:?}");
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = read_conn(&db).await;
        let keys: Vec<String> = stored_keys(&mut c)
            .await
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(keys, ["ok-1", "ok-2", "ok-3", "ok-4"]);
    });
}

#[test]
fn a_truncated_gzip_recording_keeps_every_complete_line() {
    use flate2::write::GzEncoder;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..3000u32 {
        writeln!(enc, "{}", line("logs", &log_payload(i))).unwrap();
    }
    let gz = enc.finish().unwrap();
    let cut = &gz[..gz.len() * 6 / 10];
    let path = dir.path().join("cut.jsonl.gz");
    std::fs::write(&path, cut).unwrap();

    // What a reader can recover: the complete lines before the damage.
    let mut decoded = Vec::new();
    let mut d = flate2::read::MultiGzDecoder::new(cut);
    let mut buf = [0u8; 4096];
    loop {
        match std::io::Read::read(&mut d, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => decoded.extend_from_slice(&buf[..n]),
        }
    }
    let complete = decoded.iter().filter(|b| **b == b'\n').count() as u64;
    assert!(complete > 100 && complete < 3000, "{complete}");

    let run = ingest(&db, &[&path]);
    run.assert_no_panic();
    assert_eq!(run.code, 3, "{}", run.stderr);
    let s = run.json();
    assert_eq!(s["appended"], complete);
    assert_eq!(s["rejected"], 1);
    assert_eq!(s["rejected_by_reason"]["truncated file"], 1);
    assert_rejected(&run, &path, complete + 1, "truncated");
}

#[test]
fn a_truncated_cloudtrail_log_file_keeps_its_complete_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let records: Vec<String> = (0..5)
        .map(|i| {
            cloudtrail(
                &format!("r{i}"),
                "2025-10-07T14:00:00Z",
                "StopInstances",
                "{}",
            )
        })
        .collect();
    let doc = format!("{{\"Records\": [\n{}\n]}}", records.join(",\n"));
    let cut = &doc[..doc.find("\"r4\"").unwrap()];
    let path = dir.path().join("trail.json");
    std::fs::write(&path, cut).unwrap();
    let run = ingest(&db, &[&path]);
    run.assert_no_panic();
    assert_eq!(run.code, 3);
    let s = run.json();
    assert_eq!(s["appended"], 4);
    assert_eq!(s["rejected"], 1);
    assert_rejected(&run, &path, 6, "truncated");
}

#[test]
fn a_missing_file_is_an_error_with_its_name_and_the_others_are_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let good = write_lines(dir.path(), "good.jsonl", &[line("logs", &log_payload(1))]);
    let missing = dir.path().join("missing.jsonl");
    let run = ingest(&db, &[&missing, &good]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains(&format!("rejected: {}:0: cannot open", missing.display())),
        "{}",
        run.stderr
    );
    assert_eq!(run.json()["appended"], 1);
}

// ------------------------------------------------------------------ events filters

fn events(db: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events", "--format", "json", "--limit", "0"];
    all.extend_from_slice(args);
    let run = rootline(db, &all);
    assert_eq!(run.code, 0, "events {args:?}: {}", run.stderr);
    run.json().as_array().unwrap().clone()
}

fn ids(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn events_filters_by_time_source_kind_and_resource() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let sg = "sg-0a2be608e2bc314fd";
    let lines = vec![
        line("cloudtrail", &cloudtrail("ct-1", "2025-10-07T14:00:00Z", "RevokeSecurityGroupIngress", &format!("{{\"groupId\":\"{sg}\"}}"))),
        line("cloudtrail", &cloudtrail("ct-2", "2025-10-07T14:05:00Z", "DescribeSecurityGroups", "{\"groupIds\":[\"sg-0bbbbbbbbbbbbbbbb\"]}")),
        line("cloudtrail", &cloudtrail("ct-3", "2025-10-07T14:10:00Z", "TerminateInstances", "{\"instancesSet\":{\"items\":[{\"instanceId\":\"i-0123456789abcdef0\"}]}}")),
        line(
            "cloudwatch.alarm_history",
            "{\"AlarmName\":\"web-5xx\",\"Timestamp\":\"2025-10-07T14:09:00.000Z\",\"HistoryItemType\":\"StateUpdate\",\"HistorySummary\":\"Alarm updated from OK to ALARM\",\"HistoryData\":\"{\\\"oldState\\\":{\\\"stateValue\\\":\\\"OK\\\"},\\\"newState\\\":{\\\"stateValue\\\":\\\"ALARM\\\",\\\"stateReason\\\":\\\"Threshold Crossed\\\"}}\"}",
        ),
        line("logs", &log_payload(1)),
        line(
            "config",
            &format!("{{\"resourceType\":\"AWS::EC2::SecurityGroup\",\"resourceId\":\"{sg}\",\"configurationStateId\":\"1752082076120\",\"configurationItemCaptureTime\":\"2025-10-07T14:01:00.000Z\",\"configurationItemStatus\":\"OK\",\"relationships\":[]}}"),
        ),
    ];
    let path = write_lines(dir.path(), "mix.jsonl", &lines);
    assert_eq!(ingest(&db, &[&path]).code, 0);

    // Everything, ordered by event time.
    let all = events(&db, &[]);
    assert_eq!(
        ids(&all),
        [
            "ct-1",
            "AWS::EC2::SecurityGroup/sg-0a2be608e2bc314fd@1752082076120",
            "ct-2",
            "web-5xx@2025-10-07T14:09:00.000Z",
            "ct-3",
            "log-1"
        ]
    );
    // Time range: [from, to).
    let window = events(
        &db,
        &[
            "--from",
            "2025-10-07T14:01:00Z",
            "--to",
            "2025-10-07T14:10:00Z",
        ],
    );
    assert_eq!(
        ids(&window),
        [
            "AWS::EC2::SecurityGroup/sg-0a2be608e2bc314fd@1752082076120",
            "ct-2",
            "web-5xx@2025-10-07T14:09:00.000Z"
        ]
    );
    // Source and kind.
    assert_eq!(
        ids(&events(&db, &["--source", "cloudtrail"])),
        ["ct-1", "ct-2", "ct-3"]
    );
    assert_eq!(
        ids(&events(&db, &["--source", "logs", "--source", "config"])).len(),
        2
    );
    let alarms = events(&db, &["--kind", "alarm"]);
    assert_eq!(ids(&alarms), ["web-5xx@2025-10-07T14:09:00.000Z"]);
    assert_eq!(alarms[0]["kind"]["old_state"], "OK");
    assert_eq!(alarms[0]["kind"]["new_state"], "ALARM");
    assert_eq!(
        ids(&events(&db, &["--kind", "change", "--no-read-only"])),
        ["ct-1", "ct-3"]
    );
    // Resource: canonical key, bare id and ARN all name the same resource.
    let by_key = ids(&events(&db, &["--resource", &format!("sg/{sg}")]));
    assert_eq!(
        by_key,
        [
            "ct-1",
            "AWS::EC2::SecurityGroup/sg-0a2be608e2bc314fd@1752082076120"
        ]
    );
    assert_eq!(ids(&events(&db, &["--resource", sg])), by_key);
    let arn = format!("arn:aws:ec2:us-east-1:123456789012:security-group/{sg}");
    assert_eq!(ids(&events(&db, &["--resource", &arn])), by_key);
    assert_eq!(
        ids(&events(&db, &["--resource", "i-0123456789abcdef0"])),
        ["ct-3"]
    );
    assert!(events(&db, &["--resource", "sg-0fffffffffffffff0"]).is_empty());
    // Combined.
    assert_eq!(
        ids(&events(&db, &["--resource", sg, "--source", "config"])).len(),
        1
    );
    // The JSON carries the normalized fields and the verbatim payload.
    let ct1 = &all[0];
    assert_eq!(ct1["source"], "cloudtrail");
    assert_eq!(ct1["time"], "2025-10-07T14:00:00.000Z");
    assert_eq!(
        ct1["actor"],
        "arn:aws:sts::123456789012:assumed-role/deploy/alice"
    );
    assert_eq!(ct1["read_only"], false);
    assert_eq!(ct1["payload"]["eventName"], "RevokeSecurityGroupIngress");

    // The table format lists the same rows.
    let table = rootline(&db, &["events", "--source", "cloudtrail"]);
    assert_eq!(table.code, 0);
    assert_eq!(table.stdout.lines().count(), 4, "{}", table.stdout);
    assert!(
        table.stdout.contains("RevokeSecurityGroupIngress")
            && table.stdout.contains("sg/sg-0a2be608e2bc314fd")
    );

    // Bad filters are errors, not empty results.
    let bad = rootline(&db, &["events", "--source", "cloudtrial"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("unknown --source"), "{}", bad.stderr);
    let bad = rootline(&db, &["events", "--from", "yesterday"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--from"), "{}", bad.stderr);
}

#[test]
fn the_database_comes_from_the_option_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let rec = write_lines(dir.path(), "one.jsonl", &[line("logs", &log_payload(7))]);
    let env_db = dir.path().join("sub/dir/env.db");
    let out = std::process::Command::new(BIN)
        .args(["ingest", "--json", "--no-progress"])
        .arg(&rec)
        .env("ROOTLINE_DATABASE", db_url(&env_db))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env_db.exists(),
        "the store is created on first use, directories included"
    );
    // The option wins over the environment.
    let opt_db = dir.path().join("opt.db");
    let out = std::process::Command::new(BIN)
        .arg("--database")
        .arg(db_url(&opt_db))
        .args(["events", "--format", "json"])
        .env("ROOTLINE_DATABASE", db_url(&env_db))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        0,
        "the option's (empty) store was read"
    );
    let from_env = events(&env_db, &[]);
    assert_eq!(ids(&from_env), ["log-7"]);
}

/// Runs `rootline ingest --json --no-progress FILE` and returns the run with the
/// process's peak resident set size in KiB (`ru_maxrss` from `wait4` on that very
/// process).
fn ingest_measured(db: &std::path::Path, file: &std::path::Path) -> (Run, u64) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    // Waited for with wait4 below (std's wait would not give the peak memory).
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(BIN)
        .arg("--database")
        .arg(db_url(db))
        .args(["ingest", "--json", "--no-progress"])
        .arg(file)
        .env_remove("ROOTLINE_DATABASE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        err.read_to_end(&mut s).unwrap();
        String::from_utf8_lossy(&s).into_owned()
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 writes both out-parameters for the
    // child we spawned and have not waited for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let run = Run {
        code,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    };
    (run, usage.ru_maxrss as u64)
}

/// Issue 19: a gzip recording whose lines carry 4 MiB values in every field that gets
/// them rejected (source, every source's time, invalid JSON, bad UTF-8, an over-long
/// line, times outside 1970..9999) is ingested under 300 MB peak, and every rejection is
/// listed with file, line and a short reason quoting only a prefix of the value.
#[test]
fn a_hostile_gzip_recording_is_rejected_line_by_line_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let path = dir.path().join("hostile.jsonl.gz");
    let big = "A".repeat(4 * 1024 * 1024 - 512);
    let huge = "B".repeat(5 * 1024 * 1024);
    let t = "2025-10-07T14:00:00Z";
    let shapes: Vec<(String, &str)> = vec![
        (format!("{{\"source\":\"{big}\",\"payload\":{{}}}}"), "unknown source"),
        (
            line("cloudtrail", &format!("{{\"eventID\":\"e\",\"eventTime\":\"{big}\"}}")),
            "invalid time",
        ),
        (
            line("cloudtrail", &format!("{{\"eventID\":{{\"x\":\"{big}\"}},\"eventTime\":\"{t}\"}}")),
            "wrong type",
        ),
        (
            line("cloudwatch.alarm_history", &format!("{{\"AlarmName\":\"a\",\"Timestamp\":\"{big}\"}}")),
            "invalid time",
        ),
        (
            line("cloudwatch.alarm", &format!("{{\"AlarmName\":\"a\",\"AlarmArn\":\"x\",\"AlarmConfigurationUpdatedTimestamp\":\"{big}\"}}")),
            "invalid time",
        ),
        (
            line("eventbridge", &format!("{{\"id\":\"i\",\"time\":\"{big}\",\"detail-type\":\"x\"}}")),
            "invalid time",
        ),
        (
            line("github.deployment_status", &format!("{{\"deployment_status\":{{\"id\":1,\"created_at\":\"{big}\"}}}}")),
            "invalid time",
        ),
        (
            line("logs", &format!("{{\"eventId\":\"l\",\"timestamp\":\"{big}\",\"message\":\"m\"}}")),
            "invalid time",
        ),
        (
            line("logs", &format!("{{\"eventId\":\"l\",\"timestamp\":99999999999999999,\"message\":\"{big}\"}}")),
            "time out of range",
        ),
        (
            line("logs.anomaly", &format!("{{\"anomalyId\":\"a\",\"firstSeen\":\"{big}\"}}")),
            "invalid time",
        ),
        (
            line("logs.anomaly", &format!("{{\"anomalyId\":\"a\",\"firstSeen\":-1,\"description\":\"{big}\"}}")),
            "time out of range",
        ),
        (
            line("config", &format!("{{\"resourceType\":\"AWS::EC2::Instance\",\"resourceId\":\"i-1\",\"configurationStateId\":1,\"configurationItemCaptureTime\":\"{big}\"}}")),
            "invalid time",
        ),
        (
            line("config", &format!("{{\"resourceType\":\"AWS::EC2::Instance\",\"resourceId\":\"{big}\",\"configurationStateId\":1,\"configurationItemCaptureTime\":1e300}}")),
            "time out of range",
        ),
        (format!("{{\"source\":\"{big}"), "invalid JSON"),
        (format!("{{\"source\":\"logs\",\"payload\":\"{big}\u{ff}\"}}"), "not UTF-8"),
        (format!("{{\"source\":\"{huge}\"}}"), "too large"),
    ];
    let rounds = 3;
    let mut expected: Vec<(u64, &str)> = Vec::new();
    {
        let f = std::fs::File::create(&path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut n = 0u64;
        for _ in 0..rounds {
            for (text, category) in &shapes {
                // Bytes as given (the not-UTF-8 line carries a raw 0xff).
                let bytes: Vec<u8> = text
                    .chars()
                    .map(|c| if c == '\u{ff}' { 0xff } else { c as u8 })
                    .collect();
                gz.write_all(&bytes).unwrap();
                gz.write_all(b"\n").unwrap();
                n += 1;
                expected.push((n, category));
            }
        }
        gz.finish().unwrap();
    }
    let (run, peak_kib) = ingest_measured(&db, &path);
    run.assert_no_panic();
    assert_eq!(
        run.code,
        3,
        "exit 3: input rejected\n{}",
        &run.stderr[..run.stderr.len().min(4000)]
    );
    let s = run.json();
    assert_eq!(s["read"], expected.len() as u64);
    assert_eq!(s["appended"], 0);
    assert_eq!(s["rejected"], expected.len() as u64);
    assert_eq!(s["rejections_not_listed"], 0);
    let listed = s["rejections"].as_array().unwrap();
    assert_eq!(listed.len(), expected.len());
    let name = path.display().to_string();
    for (r, (line_no, category)) in listed.iter().zip(&expected) {
        assert_eq!(r["file"], name.as_str());
        assert_eq!(r["line"], *line_no);
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.len() <= 300,
            "line {line_no}: a reason of {} bytes",
            reason.len()
        );
        assert!(
            !reason.contains(&"A".repeat(100)),
            "line {line_no}: {reason}"
        );
        // The category shows in the reason's wording or the summary's grouping.
        assert!(
            s["rejected_by_reason"][*category].as_u64().unwrap_or(0) >= rounds,
            "no {category:?} rejections: {}",
            s["rejected_by_reason"]
        );
        // And on stderr, as file:line: reason.
        assert!(
            run.stderr
                .contains(&format!("rejected: {name}:{line_no}: ")),
            "line {line_no} not reported on stderr"
        );
    }
    for (category, reason_part) in [
        ("invalid time", "is not a valid time: \"AAAA"),
        ("time out of range", "outside the years 1970 to 9999"),
        ("unknown source", "unknown source \"AAAA"),
    ] {
        assert!(
            listed
                .iter()
                .any(|r| r["reason"].as_str().unwrap().contains(reason_part)),
            "{category}: no reason containing {reason_part:?}"
        );
    }
    assert!(
        run.stderr.len() < 64 * 1024,
        "stderr holds {} bytes",
        run.stderr.len()
    );
    assert!(
        peak_kib < 300 * 1024,
        "peak memory {} MiB, over 300 MB",
        peak_kib / 1024
    );
    eprintln!("hostile ingest peak: {} MiB", peak_kib / 1024);
}
