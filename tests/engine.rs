//! The correlation engine on small hand-written recordings (fixtures/engine), through
//! the real ingest path and store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod matrix;
use rootline::conclusions::to_events as conclusions;
use rootline::correlate::{analyze, report_json, Analysis, Config, Incident};
use rootline::ingest::ingest_files;
use rootline::model::Source;
use rootline::store::{EventFilter, EventLog, Store};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/engine")
        .join(name)
}

async fn analyse(name: &str) -> Analysis {
    let store = matrix::memory_store().await;
    let s = ingest_files(&store, &[fixture(name)], false).await.unwrap();
    assert_eq!(s.rejected_total(), 0, "{:?}", s.rejections);
    let events = store.query(&EventFilter::default()).await.unwrap();
    analyze(&events, &Config::default())
}

fn incident_with<'a>(a: &'a Analysis, alarm: &str) -> &'a Incident {
    a.incidents
        .iter()
        .find(|i| i.alarm_names.iter().any(|n| n == alarm))
        .unwrap_or_else(|| panic!("no incident with {alarm}: {a:#?}"))
}

fn score_of(i: &Incident, id: &str) -> f64 {
    i.hypotheses
        .iter()
        .find(|h| h.cause.id == id)
        .map(|h| h.score)
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_change_two_hops_away_beats_an_unrelated_later_change() {
    let a = analyse("two-hops.jsonl").await;
    let inc = incident_with(&a, "web-5xx");
    let top = &inc.hypotheses[0];
    assert_eq!(top.cause.id, "cause-two-hops", "{:#?}", inc.hypotheses);
    assert_eq!(top.kind, "change");
    assert!(top.summary.contains("asg/web-asg"), "{}", top.summary);
    assert!(score_of(inc, "unrelated-later") < top.score / 5.0);
    // Read-only and failed calls are not changes, so never hypotheses.
    for h in &inc.hypotheses {
        assert!(
            h.cause.id != "read-only-later" && h.cause.id != "failed-later",
            "{h:?}"
        );
    }
    // The evidence runs from the cause to the symptom.
    assert_eq!(
        top.evidence.first().map(|e| e.id.as_str()),
        Some("cause-two-hops")
    );
    assert_eq!(
        top.evidence.last().map(|e| e.source.as_str()),
        Some("cloudwatch.alarm_history")
    );
}

#[tokio::test]
async fn a_saturation_alarm_with_no_change_beats_a_harmless_earlier_write() {
    let a = analyse("saturation.jsonl").await;
    let inc = incident_with(&a, "web-5xx");
    let top = &inc.hypotheses[0];
    assert_eq!(top.kind, "saturation", "{:#?}", inc.hypotheses);
    assert!(top.cause.id.starts_with("web-conns-i1@"), "{:?}", top.cause);
    assert!(score_of(inc, "harmless-write") < top.score);
    // The symptom itself is never its own cause.
    assert!(inc
        .hypotheses
        .iter()
        .all(|h| !h.cause.id.starts_with("web-5xx@")));
}

#[tokio::test]
async fn a_change_and_its_revert_carry_no_blame() {
    let a = analyse("revert.jsonl").await;
    let inc = incident_with(&a, "web-5xx");
    let top = &inc.hypotheses[0];
    assert_eq!(top.cause.id, "modify-lb", "{:#?}", inc.hypotheses);
    assert!(score_of(inc, "revoke") < top.score / 4.0);
    assert!(score_of(inc, "re-authorize") < top.score / 4.0);
    let revoke = inc
        .hypotheses
        .iter()
        .find(|h| h.cause.id == "revoke")
        .unwrap();
    assert!(revoke.summary.contains("reverted"), "{}", revoke.summary);
}

#[tokio::test]
async fn a_deployment_of_another_service_is_not_blamed() {
    let a = analyse("other-deploy.jsonl").await;
    let inc = incident_with(&a, "web-5xx");
    assert_eq!(
        inc.hypotheses[0].cause.id, "tg-change",
        "{:#?}",
        inc.hypotheses
    );
    assert!(score_of(inc, "other-deploy") < 0.1, "{:#?}", inc.hypotheses);
}

#[tokio::test]
async fn two_alarms_of_one_failure_form_one_incident() {
    let a = analyse("one-incident.jsonl").await;
    assert_eq!(a.incidents.len(), 2, "{a:#?}");
    let web = incident_with(&a, "web-5xx");
    assert_eq!(web.alarm_names, vec!["web-5xx", "web-unhealthy"]);
    // web-5xx delivered by alarm history and EventBridge: one transition, both deliveries.
    assert_eq!(web.alarms.len(), 3);
    assert!(web
        .alarms
        .iter()
        .any(|r| r.source == "eventbridge" && r.id == "eb-web-5xx"));
    assert!(web.resolved_at.is_some(), "both alarms returned to OK");
    assert_eq!(web.hypotheses[0].cause.id, "cause");
    let jobs = incident_with(&a, "jobs-backlog");
    assert_eq!(jobs.alarm_names, vec!["jobs-backlog"]);
    assert!(jobs.resolved_at.is_none());
    assert!(
        jobs.hypotheses.iter().all(|h| h.score < 0.2),
        "{:#?}",
        jobs.hypotheses
    );
}

#[tokio::test]
async fn the_same_input_gives_the_same_report() {
    let a = analyse("one-incident.jsonl").await;
    let b = analyse("one-incident.jsonl").await;
    assert_eq!(report_json(&a).to_string(), report_json(&b).to_string());
}

#[tokio::test]
async fn conclusions_are_appended_once_and_never_erased() {
    let dir = tempfile::tempdir().unwrap();
    let url = matrix::store_url(&dir.path().join("c.db"));
    let store = Store::open(&url).await.unwrap();
    ingest_files(&store, &[fixture("one-incident.jsonl")], false)
        .await
        .unwrap();
    rootline::conclusions::Analyser::default()
        .run_to_end(&store)
        .await
        .unwrap();
    let first = rootline::conclusions::load_analysis(&store).await.unwrap();
    let n1 = store.count().await.unwrap();
    let own = EventFilter {
        sources: vec![Source::Rootline],
        ..Default::default()
    };
    let concl = store.query(&own).await.unwrap();
    // opened x2, resolved x1, ranked x2
    assert_eq!(concl.len(), 5, "{concl:#?}");
    assert!(concl
        .iter()
        .all(|e| e.payload.contains(rootline::correlate::ENGINE_VERSION)));
    // Recording the same conclusions again adds nothing.
    store.append(&conclusions(&first), None).await.unwrap();
    assert_eq!(store.count().await.unwrap(), n1);
    // A different ranking is appended beside the earlier one, which stays.
    let mut changed = first.clone();
    changed.incidents[0].hypotheses[0].score /= 2.0;
    store.append(&conclusions(&changed), None).await.unwrap();
    let ranked = store
        .query(&EventFilter {
            sources: vec![Source::Rootline],
            text: Some("hypotheses-ranked/".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ranked.len(), 3, "{ranked:#?}");
}

#[test]
fn replay_json_is_the_report_contract_and_nothing_else() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rootline"))
        .args(["replay", "--json"])
        .arg(fixture("one-incident.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.starts_with("{\"incidents\":[{\"id\":\"inc-"), "{text}");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let obj = v.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), vec!["incidents"]);
    let incs = v["incidents"].as_array().unwrap();
    let mut last = String::new();
    for inc in incs {
        let keys: Vec<&String> = inc.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            vec![
                "id",
                "opened_at",
                "title",
                "trigger",
                "alarms",
                "hypotheses"
            ],
            "RECORDINGS.md order"
        );
        let opened = inc["opened_at"].as_str().unwrap().to_string();
        assert!(opened >= last, "incidents ordered by opened_at");
        last = opened;
        for (i, h) in inc["hypotheses"].as_array().unwrap().iter().enumerate() {
            let keys: Vec<&String> = h.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                vec!["rank", "score", "kind", "cause", "summary", "evidence"],
                "RECORDINGS.md order"
            );
            assert_eq!(h["rank"].as_u64(), Some(i as u64 + 1));
            let s = h["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&s));
        }
    }
    // Byte for byte the same on a second run.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_rootline"))
        .args(["replay", "--json"])
        .arg(fixture("one-incident.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, again.stdout);
}

#[tokio::test]
async fn an_alarm_definition_attaches_a_dimensionless_history_alarm_to_its_resource() {
    // Alarm history items carry no dimensions; the DescribeAlarms definition
    // (`cloudwatch.alarm`) says the alarm watches instance i-0aaa1111bbbb2222c.
    let a = analyse("alarm-definition.jsonl").await;
    let inc = incident_with(&a, "orders-cpu");
    assert!(
        inc.resources
            .iter()
            .any(|r| r == "instance/i-0aaa1111bbbb2222c"),
        "{:?}",
        inc.resources
    );
    assert_eq!(
        inc.hypotheses[0].cause.id, "cause-watched",
        "{:#?}",
        inc.hypotheses
    );
    assert!(score_of(inc, "other-instance") < inc.hypotheses[0].score / 2.0);
    // The definition itself (configured months earlier) is not a hypothesis.
    assert!(inc
        .hypotheses
        .iter()
        .all(|h| h.cause.source != "cloudwatch.alarm"));

    // Without the definition the alarm is attached to nothing but itself.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("alarm-definition.jsonl")).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.contains("\"source\":\"cloudwatch.alarm\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.path().join("no-definition.jsonl");
    std::fs::write(&path, without).unwrap();
    let store = matrix::memory_store().await;
    ingest_files(&store, &[path], false).await.unwrap();
    let events = store.query(&EventFilter::default()).await.unwrap();
    let b = analyze(&events, &Config::default());
    let inc = incident_with(&b, "orders-cpu");
    assert!(
        !inc.resources.iter().any(|r| r.starts_with("instance/")),
        "{:?}",
        inc.resources
    );
}

/// The analyser reads the newest seq before anything else and records only that far:
/// alarms appended one by one while steps run (each append racing a step in flight)
/// are all analysed, and the conclusions end up those of the whole log analysed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_appended_while_analyses_run_are_all_analysed() {
    let text = std::fs::read_to_string(fixture("one-incident.jsonl")).unwrap();
    let (mut before, mut late) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let ev = rootline::ingest::recording_line(line.as_bytes()).unwrap();
        // Every alarm delivery arrives late: without them there is no incident.
        if line.contains("\"cloudwatch.alarm_history\"") || line.contains("Alarm State Change") {
            late.push(ev);
        } else {
            before.push(ev);
        }
    }
    assert!(late.len() >= 4 && !before.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let url = matrix::store_url(&dir.path().join("race.db"));
    let store = Store::open(&url).await.unwrap();
    store.append(&before, None).await.unwrap();
    let mut analyser = rootline::conclusions::Analyser::default();
    let first = analyser.step(&store).await.unwrap().expect("a first step");
    assert!(first.incidents.is_empty(), "{first:#?}");
    for ev in &late {
        // A step in flight, and an alarm appended while it runs.
        let s = store.clone();
        let step = tokio::spawn(async move {
            let mut a = rootline::conclusions::Analyser::default();
            a.step(&s).await.map(|_| ())
        });
        tokio::task::yield_now().await;
        store.append(std::slice::from_ref(ev), None).await.unwrap();
        step.await.unwrap().unwrap();
    }
    analyser.run_to_end(&store).await.unwrap();
    let recorded = rootline::conclusions::load_analysis(&store).await.unwrap();
    let all = store.query(&EventFilter::default()).await.unwrap();
    let whole = analyze(&all, &Config::default());
    assert!(!whole.incidents.is_empty());
    assert!(whole.incidents.iter().all(|i| !i.hypotheses.is_empty()));
    assert_eq!(report_json(&recorded), report_json(&whole));
    // Nothing new upstream: no step, although conclusions were appended since.
    assert!(analyser.step(&store).await.unwrap().is_none());
}

/// The one-incident recording on a fresh store with every line but the queue alarm's
/// transition and the later transitions appended and analysed to the end: the store,
/// the analyser (`analyser`), the open web incident's id, and the queue alarm's
/// transition with its alarm renamed to `queue_alarm`, not yet appended.
async fn web_incident_open(
    dir: &std::path::Path,
    analyser: &mut rootline::conclusions::Analyser,
    queue_alarm: &str,
) -> (Store, String, Vec<rootline::model::NewEvent>) {
    let text = std::fs::read_to_string(fixture("one-incident.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let event = |l: &str| rootline::ingest::recording_line(l.as_bytes()).unwrap();
    let late = |l: &&str| {
        l.contains("\"AlarmName\":\"jobs-backlog\"") || l.contains("Alarm updated from ALARM")
    };
    let first: Vec<_> = lines
        .iter()
        .filter(|l| !late(l))
        .map(|l| event(l))
        .collect();
    let queue: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("\"AlarmName\":\"jobs-backlog\""))
        .map(|l| event(&l.replace("jobs-backlog", queue_alarm)))
        .collect();
    assert_eq!(queue.len(), 1);
    let url = matrix::store_url(&dir.join("web.db"));
    let store = Store::open(&url).await.unwrap();
    store.append(&first, None).await.unwrap();
    analyser.run_to_end(&store).await.unwrap();
    let web = rootline::conclusions::load_analysis(&store).await.unwrap();
    assert_eq!(web.incidents.len(), 1, "{web:#?}");
    let web_id = web.incidents[0].id.clone();
    (store, web_id, queue)
}

/// One step of `analyser` ranks exactly the incident `id` (a stale one, ranked again).
async fn step_ranks(analyser: &mut rootline::conclusions::Analyser, store: &Store, id: &str) {
    let b = analyser
        .step(store)
        .await
        .unwrap()
        .expect("the stale incident");
    let ranked: Vec<&str> = b.incidents.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ranked, [id], "{b:#?}");
}

/// A new alarm's incident is ranked first, before the open incidents whose window it
/// falls into are ranked again, and a step ranks (and commits) one incident at a time:
/// on a large store the incident of a new alarm never waits for re-analyses.
#[tokio::test]
async fn a_new_incident_is_ranked_before_stale_ones_one_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut analyser = rootline::conclusions::Analyser::default();
    let (store, web_id, queue) = web_incident_open(dir.path(), &mut analyser, "jobs-backlog").await;

    // The queue's alarm falls inside the open web incident's window.
    store.append(&queue, None).await.unwrap();
    let a = analyser.step(&store).await.unwrap().expect("a step");
    assert_eq!(a.incidents.len(), 1, "{a:#?}");
    let queue_id = a.incidents[0].id.clone();
    assert_ne!(queue_id, web_id);
    assert!(a.incidents[0].title.contains("jobs-backlog"), "{a:#?}");
    // Its conclusions are committed before the stale incident is looked at.
    let recorded = rootline::conclusions::load_analysis(&store).await.unwrap();
    assert!(recorded.incidents.iter().any(|i| i.id == queue_id));
    step_ranks(&mut analyser, &store, &web_id).await;
    assert!(analyser.step(&store).await.unwrap().is_none());
}

/// The server's analyser ranks a stale open incident again at most once per its
/// interval: within it the incident waits (and a new incident does not), after it the
/// incident is ranked. Replays and the CLI (no interval) rank it at once, as above.
#[tokio::test]
async fn a_stale_incident_waits_for_its_rerank_interval_in_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut analyser = rootline::conclusions::Analyser::default()
        .rerank_after(std::time::Duration::from_secs(3600));
    let (store, web_id, queue) = web_incident_open(dir.path(), &mut analyser, "jobs-backlog").await;
    // A new alarm inside the open incident's window: its own incident is ranked at once,
    // the web incident (ranked moments ago) waits.
    store.append(&queue, None).await.unwrap();
    let a = analyser.step(&store).await.unwrap().expect("a step");
    assert_eq!(a.incidents.len(), 1, "{a:#?}");
    assert_ne!(a.incidents[0].id, web_id);
    assert!(analyser.step(&store).await.unwrap().is_none());
    // A new analyser (a restarted server) has ranked nothing yet: the stale incident is
    // due, ranked once, and then waits again.
    let mut restarted = rootline::conclusions::Analyser::default()
        .rerank_after(std::time::Duration::from_secs(3600));
    step_ranks(&mut restarted, &store, &web_id).await;
    assert!(restarted.step(&store).await.unwrap().is_none());
}

/// Only alarm transitions a ranking reads make an open incident stale: a saturation
/// alarm going off in its window does (above), another alarm's transition does not.
#[tokio::test]
async fn another_alarm_in_the_window_leaves_an_open_incident_as_ranked() {
    // The queue alarm's transition, renamed: an error-rate alarm, not a saturation one.
    let dir = tempfile::tempdir().unwrap();
    let mut analyser = rootline::conclusions::Analyser::default();
    let (store, web_id, other) =
        web_incident_open(dir.path(), &mut analyser, "billing-errors").await;
    store.append(&other, None).await.unwrap();
    let a = analyser.step(&store).await.unwrap().expect("a step");
    let ranked: Vec<&str> = a.incidents.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ranked.len(), 1, "{a:#?}");
    assert_ne!(ranked[0], web_id);
    assert!(a.incidents[0].title.contains("billing-errors"), "{a:#?}");
    assert!(analyser.step(&store).await.unwrap().is_none());
}
