//! Role assumption: `rootline collect` with an account's `role_arn` calls STS AssumeRole
//! with the standard chain's credentials, then signs every collector request with the
//! role's temporary credentials. A real local HTTP server (on 127.0.0.1) plays STS and
//! CloudWatch Logs and records what it receives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

mod collect_common;

mod matrix;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use collect_common::stored_log_messages;
use rootline::store::{EventLog, Store};
use std::sync::{Arc, Mutex};

const BASE_KEY: &str = "AKIDBASECHAIN0000001";
const ROLE_KEY: &str = "ASIAROLETEMPORARY001";
const ROLE_TOKEN: &str = "role-session-token-for-the-test";
const ROLE_ARN: &str = "arn:aws:iam::111111111111:role/rootline-read";

#[derive(Debug, Clone)]
struct Seen {
    target: Option<String>,
    authorization: String,
    token: Option<String>,
    body: String,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn assume_role_xml() -> String {
    format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:rootline-test</AssumedRoleId>
      <Arn>arn:aws:sts::111111111111:assumed-role/rootline-read/rootline-test</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{ROLE_KEY}</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>{ROLE_TOKEN}</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
    )
}

async fn answer(
    seen: Arc<Mutex<Vec<Seen>>>,
    base_ms: i64,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let s = Seen {
        target: h("x-amz-target"),
        authorization: h("authorization").unwrap_or_default(),
        token: h("x-amz-security-token"),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    seen.lock().unwrap().push(s.clone());
    let json = |v: serde_json::Value| {
        (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            v.to_string(),
        )
            .into_response()
    };
    match s.target.as_deref() {
        None if s.body.contains("Action=AssumeRole") => (
            StatusCode::OK,
            [("content-type", "text/xml")],
            assume_role_xml(),
        )
            .into_response(),
        Some("Logs_20140328.DescribeLogGroups") => json(serde_json::json!({"logGroups": [{
            "logGroupName": "/app/role",
            "arn": "arn:aws:logs:us-east-1:111111111111:log-group:/app/role:*"
        }]})),
        Some("Logs_20140328.FilterLogEvents") => {
            let events: Vec<_> = (0..3)
                .map(|i| {
                    serde_json::json!({
                        "logStreamName": "s",
                        "timestamp": base_ms + i * 1000,
                        "message": format!("role line {i}"),
                        "ingestionTime": base_ms + i * 1000 + 5,
                        "eventId": format!("3755804963546794004891914593064873810418059{i:05}")
                    })
                })
                .collect();
            json(serde_json::json!({"events": events, "searchedLogStreams": []}))
        }
        _ => (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.1")],
            r#"{"__type":"UnknownOperationException","message":"not served here"}"#,
        )
            .into_response(),
    }
}

#[tokio::test]
async fn collect_assumes_the_configured_role_and_signs_with_its_credentials() {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let base_ms = now_ms() - 10 * 60_000;
    let app = {
        let seen = seen.clone();
        axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            answer(seen.clone(), base_ms, headers, body)
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("role.db");
    let config = dir.path().join("rootline.toml");
    std::fs::write(
        &config,
        format!(
            r#"database = "{}"
[collect]
[[collect.accounts]]
name = "prod"
role_arn = "{ROLE_ARN}"
external_id = "ext-4242"
session_name = "rootline-test"
regions = ["us-east-1"]
[collect.cloudtrail]
enabled = false
[collect.alarms]
enabled = false
[collect.config]
enabled = false
[collect.logs]
groups = ["/app/role"]
anomalies = false
"#,
            matrix::store_url(&db)
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_rootline"))
        .arg("collect")
        .arg("--once")
        .arg("--config")
        .arg(&config)
        .env("AWS_ENDPOINT_URL", &url)
        .env("AWS_ACCESS_KEY_ID", BASE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", "base-secret")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("no-credentials"),
        )
        .env_remove("AWS_PROFILE")
        .env_remove("ROOTLINE_DATABASE")
        .output()
        .await
        .expect("run rootline collect --once");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("role-session-token"),
        "no secret in logs: {stderr}"
    );

    let seen = seen.lock().unwrap().clone();
    // STS: AssumeRole for the configured role, session name and external id, signed with
    // the standard chain's credentials.
    let sts: Vec<&Seen> = seen.iter().filter(|s| s.target.is_none()).collect();
    assert_eq!(sts.len(), 1, "one AssumeRole call: {seen:#?}");
    // The form body, decoded the way axum decodes a query string.
    let uri: axum::http::Uri = format!("/?{}", sts[0].body).parse().expect("form body");
    let axum::extract::Query(form) =
        axum::extract::Query::<std::collections::BTreeMap<String, String>>::try_from_uri(&uri)
            .expect("form fields");
    let field = |k: &str| form.get(k).map(String::as_str);
    assert_eq!(field("Action"), Some("AssumeRole"));
    assert_eq!(field("RoleArn"), Some(ROLE_ARN));
    assert_eq!(field("RoleSessionName"), Some("rootline-test"));
    assert_eq!(field("ExternalId"), Some("ext-4242"));
    assert!(
        sts[0]
            .authorization
            .contains(&format!("Credential={BASE_KEY}/")),
        "{}",
        sts[0].authorization
    );
    // Logs: every request signed with the role's temporary credentials.
    let logs: Vec<&Seen> = seen.iter().filter(|s| s.target.is_some()).collect();
    assert!(
        logs.iter()
            .any(|s| s.target.as_deref() == Some("Logs_20140328.FilterLogEvents")),
        "{seen:#?}"
    );
    for s in &logs {
        assert!(
            s.authorization.contains(&format!("Credential={ROLE_KEY}/")),
            "{:?} signed with {}",
            s.target,
            s.authorization
        );
        assert_eq!(s.token.as_deref(), Some(ROLE_TOKEN), "{:?}", s.target);
    }

    assert_eq!(
        stored_log_messages(&db).await,
        ["role line 0", "role line 1", "role line 2"]
    );
    let store = Store::open(&matrix::store_url(&db)).await.unwrap();
    let cp = store
        .checkpoint("collect:logs:prod:us-east-1:/app/role")
        .await
        .unwrap();
    assert!(cp.is_some(), "checkpoint under the account's name");
}
