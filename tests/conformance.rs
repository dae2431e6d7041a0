//! Conformance on the real third-party samples under fixtures/real (see its
//! SOURCES.md): every file in a supported format ingests, rejections happen only where the
//! input really is malformed, and per format the normalized fields match the raw data.
//!
//! CloudTrail log files (`{"Records": [...]}`, JSON arrays, single records) are ingested
//! as they are. Payload-only samples are wrapped, verbatim except for line breaks, into
//! recording lines `{"source", "recorded_at", "payload"}` in a temporary `.jsonl`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod common;

use common::real;
use rootline::ingest::{ingest_files, IngestSummary};
use rootline::model::{parse_time, Event, Kind, Source};
use rootline::store::{EventFilter, EventLog, Store};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.db").display().to_string())
        .await
        .unwrap();
    Fixture { dir, store }
}

async fn ingest(f: &Fixture, paths: &[PathBuf]) -> IngestSummary {
    ingest_files(&f.store, paths, false).await.unwrap()
}

/// The stored event with this source and natural id (the first by seq). `find` answers
/// only for events a conclusion can cite; read-only calls are looked up by prefix here
/// (a scan, fine for a test's small store).
async fn get(f: &Fixture, source: Source, id: &str) -> Event {
    if let Some(e) = f.store.find(source, id).await.unwrap() {
        return e;
    }
    f.store
        .query(&EventFilter {
            sources: vec![source],
            id_prefix: Some(id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.natural_id == id)
        .unwrap_or_else(|| panic!("{source} {id} is not stored"))
}

/// The payload text as a recording carries it: verbatim, without line breaks (which
/// valid JSON only has between tokens).
fn flat(raw: &str) -> String {
    raw.chars().filter(|c| *c != '\n' && *c != '\r').collect()
}

fn wrap(source: &str, raw: &str) -> String {
    format!(
        "{{\"source\":\"{source}\",\"recorded_at\":\"2025-01-01T00:00:00Z\",\"payload\":{}}}",
        flat(raw)
    )
}

fn write_recording(f: &Fixture, name: &str, lines: &[String]) -> PathBuf {
    common::write_lines(f.dir.path(), name, lines)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn files(dir: &str, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    files_in(&real(dir), pred)
}

/// Path of a file under fixtures/own: samples written by this project (see its README.md),
/// kept apart from the third-party copies under fixtures/real.
fn own(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/own")
        .join(rel)
}

/// The files of a directory whose name passes `pred`, sorted.
fn files_in(dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| pred(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    v.sort();
    v
}

fn time(s: &str) -> i64 {
    parse_time(s).unwrap_or_else(|| panic!("test data time {s:?}"))
}

/// Checks the fields every CloudTrail record maps to directly.
fn check_cloudtrail(ev: &Event, r: &Value) {
    let what = format!("record {}", r["eventID"]);
    assert_eq!(ev.source, Source::CloudTrail, "{what}");
    assert_eq!(ev.natural_id, r["eventID"].as_str().unwrap(), "{what}");
    assert_eq!(
        ev.event_time,
        time(r["eventTime"].as_str().unwrap()),
        "{what}"
    );
    if let Some(name) = r["eventName"].as_str() {
        assert_eq!(ev.name, name, "{what}");
    }
    if let Some(ro) = r["readOnly"].as_bool() {
        assert_eq!(ev.read_only, ro, "{what}");
    }
    assert_eq!(
        ev.error_code.as_deref(),
        r["errorCode"].as_str().filter(|s| !s.is_empty()),
        "{what}"
    );
    if let Some(arn) = r["userIdentity"]["arn"].as_str() {
        assert_eq!(ev.actor.as_deref(), Some(arn), "{what}");
    }
    let expected_kind = match r["eventType"].as_str().unwrap_or("AwsApiCall") {
        "AwsApiCall" | "AwsServiceEvent" => "change",
        _ => "other",
    };
    assert_eq!(ev.kind.tag(), expected_kind, "{what}");
    // Every sg- id a request names directly is among the resource keys.
    if let Some(g) = r["requestParameters"]["groupId"].as_str() {
        if g.starts_with("sg-") {
            assert!(
                ev.resources.contains(&format!("sg/{g}")),
                "{what}: {:?}",
                ev.resources
            );
        }
    }
}

// ------------------------------------------------------------------ CloudTrail files

#[tokio::test]
async fn stratus_records_files_with_the_missing_comma_reported_and_its_records_kept() {
    let f = fresh().await;
    let paths = files("cloudtrail-stratus-detonations", |n| n.ends_with(".json"));
    assert_eq!(paths.len(), 4);
    let s = ingest(&f, &paths).await;
    assert_eq!(s.files, 4);
    assert_eq!(s.read, 15);
    assert_eq!(s.appended, 15);
    assert_eq!(s.duplicates, 0);
    // Exactly the two missing commas of ec2-user-data.json, with their lines.
    let bad = real("cloudtrail-stratus-detonations/aws.execution.ec2-user-data.json");
    let got: Vec<(String, u64, &str)> = s
        .rejections
        .iter()
        .map(|r| (r.file.clone(), r.line, r.category))
        .collect();
    let name = bad.display().to_string();
    assert_eq!(
        got,
        [
            (name.clone(), 112, "invalid JSON"),
            (name, 201, "invalid JSON")
        ]
    );
    assert!(s
        .rejections
        .iter()
        .all(|r| r.reason.contains("missing ','") && r.reason.contains("record kept")));

    // The malformed file's three records are all stored, with their own fields.
    let text = read(&bad);
    let ids: Vec<&str> = text
        .match_indices("\"eventID\": \"")
        .map(|(i, m)| &text[i + m.len()..i + m.len() + 36])
        .collect();
    assert_eq!(ids.len(), 3);
    let names: Vec<String> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(get(&f, Source::CloudTrail, id).await.name);
        }
        v
    };
    assert_eq!(
        names,
        ["StopInstances", "ModifyInstanceAttribute", "StartInstances"]
    );
    for id in &ids {
        let ev = get(&f, Source::CloudTrail, id).await;
        assert!(
            ev.resources.iter().any(|k| k.starts_with("instance/i-")),
            "{:?}",
            ev.resources
        );
        assert!(!ev.read_only);
    }

    // The well-formed files field by field.
    for p in paths.iter().filter(|p| **p != bad) {
        let doc: Value = serde_json::from_str(&read(p)).unwrap();
        for r in doc["Records"].as_array().unwrap() {
            let ev = get(&f, Source::CloudTrail, r["eventID"].as_str().unwrap()).await;
            check_cloudtrail(&ev, r);
            // Stored verbatim: the payload parses back to the record.
            assert_eq!(serde_json::from_str::<Value>(&ev.payload).unwrap(), *r);
        }
    }
    let secret = get(
        &f,
        Source::CloudTrail,
        "57d3eacd-ff87-48f7-b133-a5e9da5d1395",
    )
    .await;
    assert_eq!(secret.name, "GetSecretValue");
    assert!(secret.read_only);
    let trail = get(
        &f,
        Source::CloudTrail,
        "9335e411-4cb7-4617-9c00-12012a9c3eac",
    )
    .await;
    assert_eq!(trail.name, "DeleteTrail");
    assert!(trail.is_effective_change());
}

#[tokio::test]
async fn traildiscover_arrays_and_single_record_files() {
    let f = fresh().await;
    let paths = files("cloudtrail-traildiscover/logExamples", |n| {
        n.ends_with(".json")
    });
    assert_eq!(paths.len(), 584);
    // The raw records, in ingest order; the first of each eventID is the one stored.
    let mut first: BTreeMap<String, Value> = BTreeMap::new();
    let mut total = 0u64;
    let mut empty = 0;
    let mut singles = 0;
    for p in &paths {
        let doc: Value = serde_json::from_str(&read(p)).unwrap();
        let records = match doc {
            Value::Array(a) => {
                empty += a.is_empty() as u32;
                a
            }
            single => {
                singles += 1;
                vec![single]
            }
        };
        for r in records {
            total += 1;
            first
                .entry(r["eventID"].as_str().unwrap().to_string())
                .or_insert(r);
        }
    }
    assert_eq!((total, empty, singles), (563, 21, 20));

    let s = ingest(&f, &paths).await;
    assert_eq!(s.files, 584);
    assert_eq!(s.read, total);
    assert_eq!(s.rejected_total(), 0, "{:?}", s.rejections.first());
    assert_eq!(s.appended, first.len() as u64);
    assert_eq!(s.duplicates, total - first.len() as u64);
    assert_eq!(f.store.count().await.unwrap(), first.len() as i64);
    for (id, r) in &first {
        check_cloudtrail(&get(&f, Source::CloudTrail, id).await, r);
    }

    let sg = get(
        &f,
        Source::CloudTrail,
        "b87911ca-8464-4181-a78a-1bb80498e32c",
    )
    .await;
    assert_eq!(sg.name, "AuthorizeSecurityGroupIngress");
    assert_eq!(
        sg.resources.first().map(String::as_str),
        Some("sg/sg-0683fcf7a41c82593")
    );
    assert_eq!(
        sg.error_code.as_deref(),
        Some("Client.UnauthorizedOperation")
    );
    assert_eq!(
        sg.actor.as_deref(),
        Some("arn:aws:iam::111111111111:user/TrailDiscover")
    );
    assert!(!sg.is_effective_change(), "a failed call changes nothing");
    let run = get(
        &f,
        Source::CloudTrail,
        "1a8e25cb-458c-4ec3-89db-50732e95757f",
    )
    .await;
    assert!(
        run.resources
            .contains(&"ami/ami-0b98a32b1c5e0d105".to_string()),
        "{:?}",
        run.resources
    );
    let rds = get(
        &f,
        Source::CloudTrail,
        "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
    )
    .await;
    assert_eq!(rds.name, "ModifyDBInstance");
    assert_eq!(
        rds.resources.first().map(String::as_str),
        Some("rds/database-instance")
    );
    let bucket = get(
        &f,
        Source::CloudTrail,
        "ba0bcf69-abc1-403e-ab64-faf08b719b17",
    )
    .await;
    assert!(
        bucket.resources.contains(&"s3/TrailDiscover".to_string()),
        "{:?}",
        bucket.resources
    );
    assert_eq!(bucket.error_code.as_deref(), Some("NoSuchBucket"));
    // A file holding one bare record (no array, no Records key).
    let single = get(
        &f,
        Source::CloudTrail,
        "a99c6f1b-9854-403e-a83e-34fc10e7609a",
    )
    .await;
    assert_eq!(single.name, "CreateSession");
    assert_eq!(
        single.payload,
        read(&real(
            "cloudtrail-traildiscover/logExamples/CreateSession.json"
        ))
        .trim()
    );

    // Ingesting the corpus again adds nothing.
    let again = ingest(&f, &paths).await;
    assert_eq!((again.appended, again.duplicates), (0, total));
}

#[tokio::test]
async fn single_cloudtrail_records_and_lookup_events_and_user_guide_examples() {
    let f = fresh().await;
    // Three bare records, ingested as files; all three carry the same placeholder eventID,
    // at different times: three events under the key (source, natural id, event time).
    let paths = files("aws-lambda-events-rust", |n| {
        n.starts_with("example-cloudwatch-cloudtrail-")
    });
    assert_eq!(paths.len(), 3);
    let keys: BTreeSet<(String, i64)> = paths
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_str(&read(p)).unwrap();
            let id = v["eventID"].as_str().unwrap().to_string();
            (id, parse_time(v["eventTime"].as_str().unwrap()).unwrap())
        })
        .collect();
    assert_eq!(
        keys.iter().map(|k| &k.0).collect::<BTreeSet<_>>().len(),
        1,
        "one eventID"
    );
    let s = ingest(&f, &paths).await;
    assert_eq!(
        (s.read, s.appended, s.duplicates, s.rejected_total()),
        (3, keys.len() as u64, 3 - keys.len() as u64, 0)
    );
    let again = ingest(&f, &paths).await;
    assert_eq!((again.appended, again.duplicates), (0, 3));
    let first: Value = serde_json::from_str(&read(&paths[0])).unwrap();
    check_cloudtrail(
        &get(
            &f,
            Source::CloudTrail,
            "00000000-0000-0000-0000-000000000000",
        )
        .await,
        &first,
    );

    // LookupEvents: the payload is the parsed CloudTrailEvent string.
    #[derive(Deserialize)]
    struct Cli {
        output: Value,
    }
    let cli: Vec<Cli> = serde_json::from_str(&read(&real(
        "aws-cli-examples/cloudtrail__lookup-events.json",
    )))
    .unwrap();
    let mut lines = Vec::new();
    let mut lookup = Vec::new();
    for item in &cli {
        for e in item.output["Events"].as_array().unwrap() {
            let inner = e["CloudTrailEvent"].as_str().unwrap();
            lines.push(wrap("cloudtrail", inner));
            lookup.push(serde_json::from_str::<Value>(inner).unwrap());
        }
    }
    // The user guide's examples: documents with Records and single records.
    #[derive(Deserialize)]
    struct Doc<'a> {
        #[serde(borrow)]
        event: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct Records<'a> {
        #[serde(rename = "Records", borrow)]
        records: Vec<&'a RawValue>,
    }
    let guide_text = read(&real(
        "aws-docs-examples/cloudtrail_user_guide_examples.json",
    ));
    let docs: Vec<Doc<'_>> = serde_json::from_str(&guide_text).unwrap();
    let mut guide_raw: Vec<&str> = Vec::new();
    for d in &docs {
        match serde_json::from_str::<Records<'_>>(d.event.get()) {
            Ok(r) => guide_raw.extend(r.records.iter().map(|x| x.get())),
            Err(_) => guide_raw.push(d.event.get()),
        }
    }
    let guide: Vec<Value> = guide_raw
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    assert_eq!(guide.len(), 23);
    for r in &guide_raw {
        lines.push(wrap("cloudtrail", r));
    }
    let path = write_recording(&f, "cloudtrail.jsonl", &lines);
    let s = ingest(&f, std::slice::from_ref(&path)).await;

    // Rejected: exactly the records without an eventID or eventTime (the 2014 examples
    // predate eventID), each with its line.
    let expected_rejects: Vec<u64> = guide
        .iter()
        .enumerate()
        .filter(|(_, r)| r["eventID"].as_str().is_none() || r["eventTime"].as_str().is_none())
        .map(|(i, _)| (lookup.len() + i + 1) as u64)
        .collect();
    assert_eq!(expected_rejects.len(), 6);
    let got: Vec<u64> = s.rejections.iter().map(|r| r.line).collect();
    assert_eq!(got, expected_rejects);
    assert!(s
        .rejections
        .iter()
        .all(|r| r.category == "missing id or time" && r.file == path.display().to_string()));
    // Distinct idempotency keys: (natural id, event time).
    let mut distinct = BTreeSet::new();
    for r in lookup.iter().chain(&guide) {
        if let (Some(id), Some(t)) = (r["eventID"].as_str(), r["eventTime"].as_str()) {
            distinct.insert((id.to_string(), parse_time(t)));
        }
    }
    assert_eq!(s.appended, distinct.len() as u64);
    assert_eq!(s.read, lines.len() as u64);

    let login = get(
        &f,
        Source::CloudTrail,
        "654ccbc0-ba0d-486a-9076-dbf7274677a7",
    )
    .await;
    check_cloudtrail(&login, &lookup[0]);
    assert_eq!(login.name, "ConsoleLogin");
    assert_eq!(
        login.actor.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/my-role/my-session-name")
    );
    let trail = get(
        &f,
        Source::CloudTrail,
        "b7d4398e-b2f0-4faa-9c76-e2d316a8d67f",
    )
    .await;
    assert_eq!(trail.name, "UpdateTrail");
    assert_eq!(trail.error_code.as_deref(), Some("TrailNotFoundException"));
    let mut seen = BTreeSet::new();
    for (r, raw) in guide.iter().zip(&guide_raw) {
        if let (Some(id), Some(_)) = (r["eventID"].as_str(), r["eventTime"].as_str()) {
            if seen.insert(id) {
                let ev = get(&f, Source::CloudTrail, id).await;
                assert_eq!(ev.payload, flat(raw));
                check_cloudtrail(&ev, r);
            }
        }
    }
}

#[tokio::test]
async fn panther_cloudtrail_test_logs_rejected_only_without_id_or_time() {
    let f = fresh().await;
    let text = read(&real(
        "panther-analysis-tests/aws_cloudtrail_rule_tests.jsonl",
    ));
    #[derive(Deserialize)]
    struct Case<'a> {
        #[serde(borrow)]
        log: &'a RawValue,
    }
    let mut lines = Vec::new();
    let mut logs = Vec::new();
    for l in text.lines() {
        let c: Case<'_> = serde_json::from_str(l).unwrap();
        lines.push(wrap("cloudtrail", c.log.get()));
        logs.push(serde_json::from_str::<Value>(c.log.get()).unwrap());
    }
    assert_eq!(logs.len(), 475);
    let path = write_recording(&f, "panther.jsonl", &lines);
    let s = ingest(&f, &[path]).await;

    let usable = |r: &Value| -> bool {
        let id_ok = match &r["eventID"] {
            Value::String(s) => !s.trim().is_empty(),
            Value::Number(_) => true,
            _ => false,
        };
        id_ok && r["eventTime"].as_str().and_then(parse_time).is_some()
    };
    let expected_rejected: Vec<u64> = logs
        .iter()
        .enumerate()
        .filter(|(_, r)| !usable(r))
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert!(expected_rejected.len() > 50);
    assert_eq!(
        s.rejections.iter().map(|r| r.line).collect::<Vec<_>>(),
        expected_rejected
    );
    for r in &s.rejections {
        let raw = &logs[r.line as usize - 1];
        let field = if raw["eventID"].is_null() {
            "eventID"
        } else {
            "eventTime"
        };
        assert!(r.reason.contains(field), "line {}: {}", r.line, r.reason);
    }
    // The idempotency key: (source, natural id, event time).
    let distinct: BTreeSet<(String, i64)> = logs
        .iter()
        .filter(|r| usable(r))
        .map(|r| {
            let id = match &r["eventID"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let time = r["eventTime"].as_str().and_then(parse_time);
            (id, time.unwrap_or(i64::MIN))
        })
        .collect();
    assert_eq!(s.appended, distinct.len() as u64);
    assert_eq!(
        s.duplicates,
        (logs.len() - expected_rejected.len() - distinct.len()) as u64
    );
}

#[tokio::test]
async fn logstash_reshaped_cloudtrail_lines_are_rejected_line_by_line() {
    // OTRF's records had eventTime renamed to @timestamp by Logstash: they are not
    // CloudTrail records as shipped, and each line says why it was not stored.
    let f = fresh().await;
    let text = read(&real(
        "cloudtrail-otrf-security-datasets/ec2_proxy_s3_exfiltration_2020-09-14011940.jsonl",
    ));
    let lines: Vec<String> = text.lines().map(|l| wrap("cloudtrail", l)).collect();
    assert_eq!(lines.len(), 103);
    let path = write_recording(&f, "otrf.jsonl", &lines);
    let s = ingest(&f, &[path]).await;
    assert_eq!(s.appended, 0);
    assert_eq!(s.rejected_total(), 103);
    assert!(s
        .rejections
        .iter()
        .enumerate()
        .all(|(i, r)| r.line == i as u64 + 1 && r.reason.contains("missing field `eventTime`")));
}

// ------------------------------------------------------------------ EventBridge

#[tokio::test]
async fn eventbridge_envelopes_from_docs_sdks_and_our_own_samples() {
    let f = fresh().await;
    #[derive(Deserialize)]
    struct Doc<'a> {
        #[serde(borrow)]
        event: &'a RawValue,
    }
    let mut raws: Vec<String> = Vec::new();
    for file in [
        "aws-docs-examples/ecs_eventbridge_events.json",
        "aws-docs-examples/cloudwatch_alarm_state_change_events.json",
    ] {
        let text = read(&real(file));
        let docs: Vec<Doc<'_>> = serde_json::from_str(&text).unwrap();
        raws.extend(docs.iter().map(|d| d.event.get().to_string()));
    }
    let mut eb_files = Vec::new();
    // The CodeBuild (CodeStar Notifications) and ECS task samples are our own
    // (fixtures/own/eventbridge-ecs-codebuild); the rest are third-party copies.
    for dir in [
        real("aws-lambda-events-rust"),
        real("aws-lambda-go-testdata"),
        own("eventbridge-ecs-codebuild"),
        real("powertools-python-events"),
    ] {
        eb_files.extend(files_in(&dir, |n| n.ends_with(".json")));
    }
    for p in eb_files {
        let text = read(&p);
        let v: Value = serde_json::from_str(&text).unwrap();
        // EventBridge-shaped: a detail type (CodeStar Notifications spell it detailType).
        if v.get("detail-type").is_some() || v.get("detailType").is_some() {
            raws.push(text);
        }
    }
    let parsed: Vec<Value> = raws
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let lines: Vec<String> = raws.iter().map(|r| wrap("eventbridge", r)).collect();
    let path = write_recording(&f, "eventbridge.jsonl", &lines);
    let s = ingest(&f, &[path]).await;

    // Rejected: exactly the envelopes without an id (the CodeStar-Notifications shape).
    let no_id: Vec<u64> = parsed
        .iter()
        .enumerate()
        .filter(|(_, v)| v["id"].as_str().is_none())
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(no_id.len(), 3);
    assert_eq!(
        s.rejections.iter().map(|r| r.line).collect::<Vec<_>>(),
        no_id
    );
    assert!(s
        .rejections
        .iter()
        .all(|r| r.reason.contains("missing field `id`")));
    let mut first: BTreeMap<String, &Value> = BTreeMap::new();
    // ECS task events stored without a taskArn (checked by their cluster instead).
    let mut without_task_arn = 0;
    for v in &parsed {
        if let Some(id) = v["id"].as_str() {
            first.entry(id.to_string()).or_insert(v);
        }
    }
    assert_eq!(s.appended, first.len() as u64);
    assert_eq!(
        s.duplicates,
        (parsed.len() - no_id.len() - first.len()) as u64
    );

    for (id, v) in &first {
        let ev = get(&f, Source::EventBridge, id).await;
        assert_eq!(ev.event_time, time(v["time"].as_str().unwrap()), "{id}");
        let dt = v["detail-type"].as_str().unwrap();
        if !dt.ends_with("via CloudTrail") {
            assert_eq!(ev.actor.as_deref(), v["source"].as_str(), "{id}");
        }
        match dt {
            "CloudWatch Alarm State Change" if v.get("detail").is_some() => {
                let d = &v["detail"];
                let Kind::Alarm {
                    alarm,
                    old_state,
                    new_state,
                    reason,
                } = &ev.kind
                else {
                    panic!("{id}: {:?}", ev.kind)
                };
                assert_eq!(alarm, d["alarmName"].as_str().unwrap());
                assert_eq!(old_state, d["previousState"]["value"].as_str().unwrap());
                assert_eq!(new_state, d["state"]["value"].as_str().unwrap());
                assert_eq!(reason, d["state"]["reason"].as_str().unwrap());
                assert!(ev.resources.contains(&format!("alarm/{alarm}")));
            }
            "ECS Deployment State Change" => {
                let Kind::Deployment {
                    target,
                    phase,
                    outcome,
                } = &ev.kind
                else {
                    panic!("{id}: {:?}", ev.kind)
                };
                assert_eq!(target, "servicetest");
                assert_eq!(phase, v["detail"]["eventName"].as_str().unwrap());
                let want = match phase.as_str() {
                    "SERVICE_DEPLOYMENT_COMPLETED" => "succeeded",
                    "SERVICE_DEPLOYMENT_FAILED" => "failed",
                    _ => "in_progress",
                };
                assert_eq!(outcome, want);
                assert!(ev
                    .resources
                    .contains(&"ecs-service/servicetest".to_string()));
            }
            "ECS Service Action" => {
                assert_eq!(ev.kind, Kind::Other);
                assert_eq!(
                    ev.name,
                    format!(
                        "ECS Service Action: {}",
                        v["detail"]["eventName"].as_str().unwrap()
                    )
                );
                assert!(ev
                    .resources
                    .contains(&"ecs-service/servicetest".to_string()));
            }
            "ECS Task State Change" => {
                assert_eq!(ev.kind, Kind::Other);
                // One STOPPED event (a task that failed to start) has no taskArn: its
                // cluster is still named.
                let key = match v["detail"]["taskArn"].as_str() {
                    Some(arn) => format!("ecs-task/{}", arn.rsplit('/').next().unwrap()),
                    None => {
                        without_task_arn += 1;
                        let cluster = v["detail"]["clusterArn"].as_str().unwrap();
                        format!("ecs-cluster/{}", cluster.rsplit('/').next().unwrap())
                    }
                };
                assert!(
                    ev.resources.contains(&key),
                    "{id}: {key} not in {:?}",
                    ev.resources
                );
            }
            "CodeDeploy Deployment State-change Notification" => {
                let Kind::Deployment { target, phase, .. } = &ev.kind else {
                    panic!("{id}: {:?}", ev.kind)
                };
                let d = &v["detail"];
                assert_eq!(
                    *target,
                    format!(
                        "{}/{}",
                        d["application"].as_str().unwrap(),
                        d["deploymentGroup"].as_str().unwrap()
                    )
                );
                assert_eq!(phase, d["state"].as_str().unwrap());
            }
            _ if v["source"] == "aws.autoscaling" => {
                let asg = v["detail"]["AutoScalingGroupName"].as_str().unwrap();
                assert!(
                    ev.resources.contains(&format!("asg/{asg}")),
                    "{id}: {:?}",
                    ev.resources
                );
            }
            _ => {}
        }
    }
    assert_eq!(without_task_arn, 1, "the STOPPED event without a taskArn");
    // Spot checks against the documentation's own examples.
    let cpu = get(
        &f,
        Source::EventBridge,
        "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
    )
    .await;
    assert!(
        cpu.resources
            .contains(&"instance/i-12345678901234567".to_string()),
        "{:?}",
        cpu.resources
    );
    let deploy = get(
        &f,
        Source::EventBridge,
        "ddca6449-b258-46c0-8653-e0e3aEXAMPLE",
    )
    .await;
    assert!(
        matches!(&deploy.kind, Kind::Deployment { phase, .. } if phase == "SERVICE_DEPLOYMENT_IN_PROGRESS")
    );
    // Our own task whose container was killed with an OutOfMemoryError (stored once,
    // though delivered twice).
    let oom = get(
        &f,
        Source::EventBridge,
        "c567a80f-fcd4-4c83-8ebe-b3f689a09eb0",
    )
    .await;
    // The name says why it stopped, so the engine can tell a leak from a routine stop.
    assert_eq!(
        oom.name,
        "ECS Task State Change: STOPPED (OutOfMemoryError)"
    );
    assert!(
        oom.resources
            .contains(&"ecs-task/96df5bb7fab849145c9f7e1603cea855".to_string()),
        "{:?}",
        oom.resources
    );
    let generic = get(
        &f,
        Source::EventBridge,
        "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    )
    .await;
    assert_eq!(
        (generic.kind.tag(), generic.name.as_str()),
        ("other", "Scheduled Event")
    );
}

// ------------------------------------------------------------------ alarm history, anomalies

#[tokio::test]
async fn alarm_history_items_keep_their_transition() {
    let f = fresh().await;
    #[derive(Deserialize)]
    struct Cli<'a> {
        #[serde(borrow)]
        output: Output<'a>,
    }
    #[derive(Deserialize)]
    struct Output<'a> {
        #[serde(rename = "AlarmHistoryItems", borrow)]
        items: Vec<&'a RawValue>,
    }
    let text = read(&real(
        "aws-cli-examples/cloudwatch__describe-alarm-history.json",
    ));
    let cli: Vec<Cli<'_>> = serde_json::from_str(&text).unwrap();
    let raws: Vec<&str> = cli
        .iter()
        .flat_map(|c| c.output.items.iter().map(|r| r.get()))
        .collect();
    assert_eq!(raws.len(), 2);
    let path = write_recording(
        &f,
        "alarms.jsonl",
        &raws
            .iter()
            .map(|r| wrap("cloudwatch.alarm_history", r))
            .collect::<Vec<_>>(),
    );
    let s = ingest(&f, &[path]).await;
    assert_eq!((s.appended, s.rejected_total()), (2, 0));
    for raw in raws {
        let v: Value = serde_json::from_str(raw).unwrap();
        let id = format!(
            "{}@{}",
            v["AlarmName"].as_str().unwrap(),
            v["Timestamp"].as_str().unwrap()
        );
        let ev = get(&f, Source::AlarmHistory, &id).await;
        assert_eq!(ev.event_time, time(v["Timestamp"].as_str().unwrap()));
        assert_eq!(ev.payload, flat(raw));
        let data: Value = serde_json::from_str(v["HistoryData"].as_str().unwrap()).unwrap();
        let Kind::Alarm {
            alarm,
            old_state,
            new_state,
            reason,
        } = &ev.kind
        else {
            panic!("{:?}", ev.kind)
        };
        assert_eq!(alarm, "myalarm");
        assert_eq!(old_state, data["oldState"]["stateValue"].as_str().unwrap());
        assert_eq!(new_state, data["newState"]["stateValue"].as_str().unwrap());
        assert_eq!(reason, data["newState"]["stateReason"].as_str().unwrap());
        assert_eq!(
            v["HistorySummary"].as_str().unwrap(),
            format!("Alarm updated from {old_state} to {new_state}")
        );
        assert_eq!(
            ev.resources.first().map(String::as_str),
            Some("alarm/myalarm")
        );
    }
}

#[tokio::test]
async fn alarm_definitions_attach_alarms_to_their_dimensions() {
    // rootline's `cloudwatch.alarm` source: DescribeAlarms `MetricAlarms[]` elements.
    let f = fresh().await;
    let mut raws: Vec<String> = Vec::new();
    for file in [
        "aws-cli-examples/cloudwatch__describe-alarms.json",
        "aws-cli-examples/cloudwatch__describe-alarms-for-metric.json",
    ] {
        let cli: Vec<Value> = serde_json::from_str(&read(&real(file))).unwrap();
        for ex in &cli {
            for a in ex["output"]["MetricAlarms"]
                .as_array()
                .into_iter()
                .flatten()
            {
                raws.push(serde_json::to_string(a).unwrap());
            }
        }
    }
    assert_eq!(raws.len(), 3);
    let lines: Vec<String> = raws.iter().map(|r| wrap("cloudwatch.alarm", r)).collect();
    let path = write_recording(&f, "definitions.jsonl", &lines);
    let s = ingest(&f, std::slice::from_ref(&path)).await;
    assert_eq!((s.appended, s.rejected_total()), (3, 0));
    for raw in &raws {
        let v: Value = serde_json::from_str(raw).unwrap();
        let id = format!(
            "{}@{}",
            v["AlarmArn"].as_str().unwrap(),
            v["AlarmConfigurationUpdatedTimestamp"].as_str().unwrap()
        );
        let ev = get(&f, Source::AlarmDefinition, &id).await;
        let name = v["AlarmName"].as_str().unwrap();
        assert_eq!(
            ev.event_time,
            time(v["AlarmConfigurationUpdatedTimestamp"].as_str().unwrap())
        );
        assert_eq!(ev.payload, flat(raw));
        assert_eq!(ev.name, name);
        assert!(
            matches!(&ev.kind, Kind::Snapshot { resource_type, resource_id, .. }
                if resource_type == "AWS::CloudWatch::Alarm" && resource_id == name),
            "{:?}",
            ev.kind
        );
        let dim = v["Dimensions"][0]["Value"].as_str().unwrap();
        assert_eq!(
            ev.resources,
            vec![format!("alarm/{name}"), format!("instance/{dim}")]
        );
    }
    // Described again (the next poll): nothing new.
    let again = ingest(&f, &[path]).await;
    assert_eq!((again.appended, again.duplicates), (0, 3));
}

#[tokio::test]
async fn log_anomalies_from_list_anomalies() {
    let f = fresh().await;
    #[derive(Deserialize)]
    struct Cli<'a> {
        #[serde(borrow)]
        output: Output<'a>,
    }
    #[derive(Deserialize)]
    struct Output<'a> {
        #[serde(borrow)]
        anomalies: Vec<&'a RawValue>,
    }
    let text = read(&real("aws-cli-examples/logs__list-anomalies.json"));
    let cli: Vec<Cli<'_>> = serde_json::from_str(&text).unwrap();
    let raw = cli[0].output.anomalies[0].get();
    let path = write_recording(&f, "anomalies.jsonl", &[wrap("logs.anomaly", raw)]);
    let s = ingest(&f, &[path]).await;
    assert_eq!((s.appended, s.rejected_total()), (1, 0));
    let v: Value = serde_json::from_str(raw).unwrap();
    let ev = get(&f, Source::LogsAnomaly, v["anomalyId"].as_str().unwrap()).await;
    assert_eq!(ev.event_time, v["firstSeen"].as_i64().unwrap());
    assert_eq!(
        ev.kind,
        Kind::Anomaly {
            group: "demo-log-group".into(),
            pattern: v["patternString"].as_str().unwrap().into(),
            priority: "LOW".into(),
            description: v["description"].as_str().unwrap().into(),
        }
    );
    assert_eq!(ev.resources, ["loggroup/demo-log-group"]);
    assert!(ev.read_only);
}

// ------------------------------------------------------------------ GitHub

#[tokio::test]
async fn github_deployment_status_payloads() {
    let f = fresh().await;
    let paths = files("octokit-webhooks/payload-examples", |n| {
        n.contains("deployment_status__")
    });
    assert_eq!(paths.len(), 4);
    let raws: Vec<String> = paths.iter().map(|p| read(p)).collect();
    let path = write_recording(
        &f,
        "github.jsonl",
        &raws
            .iter()
            .map(|r| wrap("github.deployment_status", r))
            .collect::<Vec<_>>(),
    );
    let s = ingest(&f, &[path]).await;
    let parsed: Vec<Value> = raws
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    // The idempotency key: (source, natural id, event time); the examples reuse one
    // status id, at two times.
    let mut first: BTreeMap<(String, i64), &Value> = BTreeMap::new();
    for v in &parsed {
        let ds = &v["deployment_status"];
        first
            .entry((
                ds["id"].to_string(),
                time(ds["created_at"].as_str().unwrap()),
            ))
            .or_insert(v);
    }
    let ids: BTreeSet<&String> = first.keys().map(|k| &k.0).collect();
    assert!(ids.len() < first.len(), "the examples reuse a status id");
    assert_eq!(
        (s.appended, s.duplicates, s.rejected_total()),
        (first.len() as u64, 4 - first.len() as u64, 0)
    );
    for ((id, at), v) in first {
        let ev = f
            .store
            .find_at(Source::GithubDeploymentStatus, &id, at)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("deployment status {id} at {at} is not stored"));
        let ds = &v["deployment_status"];
        assert_eq!(ev.event_time, time(ds["created_at"].as_str().unwrap()));
        assert_eq!(ev.actor.as_deref(), ds["creator"]["login"].as_str());
        let state = ds["state"].as_str().unwrap();
        let Kind::Deployment {
            target,
            phase,
            outcome,
        } = &ev.kind
        else {
            panic!("{:?}", ev.kind)
        };
        assert_eq!(target, v["repository"]["full_name"].as_str().unwrap());
        assert_eq!(phase, state);
        assert_eq!(
            outcome,
            if state == "success" {
                "succeeded"
            } else {
                "in_progress"
            }
        );
        let repo = v["repository"]["full_name"].as_str().unwrap();
        let env = ds["environment"].as_str().unwrap();
        assert_eq!(
            ev.resources,
            [
                format!("github-repo/{repo}"),
                format!("github-env/{repo}:{env}")
            ]
        );
    }
}
