//! Push endpoints through the real server (the web router served in-process on
//! 127.0.0.1): EventBridge API-key auth and GitHub webhook signatures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod collect_common;
mod matrix;

use collect_common::*;
use rootline::collect::push::{
    github_signature, PushConfig, EVENTBRIDGE_KEY_ENV, GITHUB_SECRET_ENV,
};
use rootline::model::Source;
use rootline::store::EventLog;
use rootline::web::AppState;
use std::sync::Arc;

const EB_KEY: &str = "eb-key-0123456789";
const GH_SECRET: &str = "gh-secret-abcdef";

async fn serve(push: PushConfig) -> (String, rootline::store::Store, AppState) {
    let store = memory_store().await;
    let state = AppState::new(store.clone());
    let app = rootline::app::http_router(state.clone(), Arc::new(push), Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, store, state)
}

fn configured(max_body: usize) -> PushConfig {
    let t: toml::Table = toml::from_str(&format!(
        "[eventbridge]\nmax_body_bytes = {max_body}\n[github]\nmax_body_bytes = {max_body}\n"
    ))
    .unwrap();
    PushConfig::from_sources(Some(&t), |k| match k {
        EVENTBRIDGE_KEY_ENV => Some(EB_KEY.to_string()),
        GITHUB_SECRET_ENV => Some(GH_SECRET.to_string()),
        _ => None,
    })
}

/// A real "CloudWatch Alarm State Change" event (AWS docs example).
fn alarm_event() -> String {
    let all = real("aws-docs-examples/cloudwatch_alarm_state_change_events.json");
    let ev = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event"])
        .find(|e| e["detail-type"] == "CloudWatch Alarm State Change")
        .expect("an alarm state change");
    serde_json::to_string_pretty(ev).unwrap()
}

fn deployment_status() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/real/octokit-webhooks/payload-examples/deployment_status__payload.json");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test]
async fn eventbridge_valid_key_is_stored() {
    let (addr, store, state) = serve(configured(256 * 1024)).await;
    let body = alarm_event();
    let (status, resp) = http_post(
        &addr,
        "/ingest/eventbridge",
        &[("x-api-key", EB_KEY), ("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ev = store
        .find(Source::EventBridge, &id)
        .await
        .unwrap()
        .expect("stored");
    assert!(ev.received_at.is_some());
    // The same delivery again adds nothing.
    let (status, resp) = http_post(
        &addr,
        "/ingest/eventbridge",
        &[("x-api-key", EB_KEY)],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(resp.contains("\"duplicates\":1"), "{resp}");
    assert_eq!(store.count().await.unwrap(), 1);
    assert!(state
        .components
        .lock()
        .unwrap()
        .get("push:eventbridge")
        .unwrap()
        .starts_with("ok"));
}

#[tokio::test]
async fn eventbridge_wrong_or_missing_key_is_401_and_stores_nothing() {
    let (addr, store, state) = serve(configured(256 * 1024)).await;
    let body = alarm_event();
    for headers in [
        vec![("x-api-key", "eb-key-0123456780")],
        vec![],
        vec![("x-api-key", "")],
        vec![("authorization", EB_KEY)],
    ] {
        let (status, resp) =
            http_post(&addr, "/ingest/eventbridge", &headers, body.as_bytes()).await;
        assert_eq!(status, 401, "{headers:?}: {resp}");
        assert!(!resp.contains(EB_KEY));
    }
    assert_eq!(store.count().await.unwrap(), 0);
    // Nothing about the key in the components' states either.
    assert!(!format!("{:?}", state.components.lock().unwrap()).contains(EB_KEY));
}

#[tokio::test]
async fn eventbridge_oversized_body_is_413_and_bad_body_400() {
    let (addr, store, _) = serve(configured(4096)).await;
    let mut big: serde_json::Value = serde_json::from_str(&alarm_event()).unwrap();
    big["detail"]["padding"] = serde_json::Value::String("x".repeat(10_000));
    let (status, _) = http_post(
        &addr,
        "/ingest/eventbridge",
        &[("x-api-key", EB_KEY)],
        big.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 413);
    for bad in [
        &b"not json"[..],
        b"{\"detail-type\":\"x\"}",
        b"[]",
        b"[{\"id\":\"1\"}]",
    ] {
        let (status, resp) =
            http_post(&addr, "/ingest/eventbridge", &[("x-api-key", EB_KEY)], bad).await;
        assert_eq!(status, 400, "{resp}");
    }
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test]
async fn github_valid_signature_is_stored() {
    let (addr, store, _) = serve(configured(1024 * 1024)).await;
    let body = deployment_status();
    let sig = github_signature(GH_SECRET.as_bytes(), body.as_bytes());
    let (status, resp) = http_post(
        &addr,
        "/ingest/github",
        &[
            ("x-github-event", "deployment_status"),
            ("x-hub-signature-256", &sig),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["deployment_status"]["id"]
        .to_string();
    assert!(store
        .find(Source::GithubDeploymentStatus, &id)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn github_wrong_or_missing_signature_is_401_and_stores_nothing() {
    let (addr, store, _) = serve(configured(1024 * 1024)).await;
    let body = deployment_status();
    let wrong = github_signature(b"another secret", body.as_bytes());
    let tampered = github_signature(GH_SECRET.as_bytes(), format!("{body} ").as_bytes());
    for sig in [
        Some(wrong.as_str()),
        Some(tampered.as_str()),
        Some("sha256="),
        Some("garbage"),
        None,
    ] {
        let mut headers = vec![("x-github-event", "deployment_status")];
        if let Some(s) = sig {
            headers.push(("x-hub-signature-256", s));
        }
        let (status, _) = http_post(&addr, "/ingest/github", &headers, body.as_bytes()).await;
        assert_eq!(status, 401, "{sig:?}");
    }
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test]
async fn github_other_events_oversized_and_bad_bodies_store_nothing() {
    let (addr, store, _) = serve(configured(4096)).await;
    let body = deployment_status();
    assert!(body.len() > 4096);
    let sig = github_signature(GH_SECRET.as_bytes(), body.as_bytes());
    let (status, _) = http_post(
        &addr,
        "/ingest/github",
        &[
            ("x-github-event", "deployment_status"),
            ("x-hub-signature-256", &sig),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 413);
    let small = br#"{"zen":"Design for failure.","hook_id":1}"#;
    let sig = github_signature(GH_SECRET.as_bytes(), small);
    let (status, _) = http_post(
        &addr,
        "/ingest/github",
        &[("x-github-event", "ping"), ("x-hub-signature-256", &sig)],
        small,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http_post(
        &addr,
        "/ingest/github",
        &[("x-github-event", "push"), ("x-hub-signature-256", &sig)],
        small,
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = http_post(
        &addr,
        "/ingest/github",
        &[
            ("x-github-event", "deployment_status"),
            ("x-hub-signature-256", &sig),
        ],
        small,
    )
    .await;
    assert_eq!(status, 400, "a deployment_status without its id and time");
    let junk = b"{not json";
    let sig = github_signature(GH_SECRET.as_bytes(), junk);
    let (status, _) = http_post(
        &addr,
        "/ingest/github",
        &[
            ("x-github-event", "deployment_status"),
            ("x-hub-signature-256", &sig),
        ],
        junk,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(store.count().await.unwrap(), 0);
}

#[tokio::test]
async fn endpoints_without_a_secret_are_off() {
    let (addr, _, _) = serve(PushConfig::from_sources(None, |_| None)).await;
    let (status, _) = http_post(
        &addr,
        "/ingest/eventbridge",
        &[("x-api-key", "anything")],
        b"{}",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = http_post(
        &addr,
        "/ingest/github",
        &[("x-github-event", "ping")],
        b"{}",
    )
    .await;
    assert_eq!(status, 404);
}
