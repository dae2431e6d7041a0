//! What the engine can rank beyond a change's verb: what a change did, what depends on
//! what, causes that are not changes, and an honest answer when nothing convinces. One
//! test per hand-written recording of fixtures/engine/reach (labels beside each: the
//! trigger, every acceptable root cause, the distractors an engine judging by verbs and
//! by resources named together would blame, and the failed calls to cite as evidence).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod matrix;
use rootline::correlate::{analyze, Config, Incident};
use rootline::ingest::ingest_files;
use rootline::model::EventRef;
use rootline::store::{EventFilter, EventLog};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Label {
    trigger: Vec<EventRef>,
    root_causes: Vec<EventRef>,
    #[serde(default)]
    distractors: Vec<EventRef>,
    #[serde(default)]
    unexplained: bool,
    #[serde(default)]
    evidence: Vec<EventRef>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/engine/reach")
}

async fn incident(name: &str) -> (Incident, Label) {
    let label: Label = serde_json::from_str(
        &std::fs::read_to_string(dir().join(format!("{name}.expected.json"))).unwrap(),
    )
    .unwrap();
    let store = matrix::memory_store().await;
    let s = ingest_files(&store, &[dir().join(format!("{name}.jsonl"))], false)
        .await
        .unwrap();
    assert_eq!(s.rejected_total(), 0, "{:?}", s.rejections);
    let events = store.query(&EventFilter::default()).await.unwrap();
    let a = analyze(&events, &Config::default());
    let inc = a
        .incidents
        .into_iter()
        .find(|i| i.alarms.iter().any(|r| label.trigger.contains(r)))
        .unwrap_or_else(|| panic!("{name}: no incident holds the trigger"));
    // One engine: the store's analyser (replay, serve) ranks the same causes in the
    // same order as the engine over the events in memory.
    rootline::conclusions::Analyser::default()
        .run_to_end(&store)
        .await
        .unwrap();
    let stored = rootline::conclusions::load_analysis(&store)
        .await
        .unwrap()
        .incidents
        .into_iter()
        .find(|i| i.id == inc.id)
        .unwrap_or_else(|| panic!("{name}: the analyser has no incident {}", inc.id));
    let causes =
        |i: &Incident| -> Vec<EventRef> { i.hypotheses.iter().map(|h| h.cause.clone()).collect() };
    assert_eq!(
        causes(&stored),
        causes(&inc),
        "{name}: store and memory differ"
    );
    assert_eq!(
        stored.unexplained.is_some(),
        inc.unexplained.is_some(),
        "{name}"
    );
    (inc, label)
}

fn rank_of(inc: &Incident, refs: &[EventRef]) -> Option<usize> {
    inc.hypotheses
        .iter()
        .find(|h| refs.contains(&h.cause))
        .map(|h| h.rank)
}

async fn check(name: &str) {
    let (inc, label) = incident(name).await;
    let table: Vec<String> = inc
        .hypotheses
        .iter()
        .map(|h| format!("{} {:.3} {} {}", h.rank, h.score, h.cause.id, h.summary))
        .collect();
    let table = table.join("\n");
    if label.unexplained {
        assert!(
            inc.unexplained.is_some(),
            "{name}: not flagged unexplained\n{table}"
        );
        for h in &inc.hypotheses {
            assert!(
                h.score < rootline::correlate::POSSIBLE,
                "{name}: {} presented as a convincing cause\n{table}",
                h.cause.id
            );
        }
        return;
    }
    let at = rank_of(&inc, &label.root_causes);
    assert_eq!(at, Some(1), "{name}: root cause not first\n{table}");
    assert!(
        inc.unexplained.is_none(),
        "{name}: flagged unexplained\n{table}"
    );
    for d in &label.distractors {
        assert!(
            !inc.hypotheses.iter().any(|h| &h.cause == d && h.rank == 1),
            "{name}: distractor {} first\n{table}",
            d.id
        );
    }
    let top = &inc.hypotheses[0];
    for e in &label.evidence {
        assert!(
            top.evidence.contains(e),
            "{name}: {} not in the evidence {:?}",
            e.id,
            top.evidence
        );
    }
}

macro_rules! reach {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                check($file).await;
            }
        )*
    };
}

reach! {
    a_throughput_cut_nested_in_the_request_is_a_capacity_cut => "ddb-throughput-cut",
    a_parameter_inside_a_parameter_group_is_a_capacity_cut => "param-group-cut",
    a_deny_statement_inside_a_policy_document_blocks_access => "policy-deny",
    an_environment_change_explains_errors_after_it => "env-change",
    a_listener_default_action_reroutes_traffic => "listener-default-action",
    a_dns_record_pointed_elsewhere_reroutes_traffic => "dns-target",
    an_ecs_rollback_is_not_blamed_and_the_deployment_it_undid_is => "ecs-rollback",
    a_github_redeploy_of_an_earlier_sha_is_a_rollback => "github-rollback",
    a_key_that_encrypts_a_secret_a_task_reads_is_a_dependency => "secret-kms-dependency",
    a_queue_a_function_reads_is_a_dependency => "queue-dependency",
    a_route_removed_from_a_service_subnet_route_table => "route-removed",
    an_aws_health_event_for_the_resource_is_a_cause => "health-event",
    a_quota_reached_by_growth_is_a_cause => "quota-throttling",
    an_expiring_certificate_announced_days_earlier => "cert-expiry",
    nothing_convincing_is_said_to_be_unexplained => "unexplained",
    failed_calls_are_evidence_of_the_change_that_denied_them => "failed-calls-evidence",
    a_slow_leak_reaches_back_to_the_deployment_hours_earlier => "oom-slow-leak",
    a_deny_rule_in_the_network_acl_of_a_service_subnet => "nacl-deny",
}
