//! Push endpoints: `POST /ingest/eventbridge` (EventBridge API destinations, API-key
//! connection) and `POST /ingest/github` (GitHub `deployment_status` webhooks, signed
//! with X-Hub-Signature-256).
//!
//! An endpoint whose secret is not configured is off (404). Authentication comes first
//! (401), then the size limit (413), then the body (400); a request that fails any of
//! them stores nothing. Secrets are compared in constant time and never logged, shown or
//! printed by `Debug`.

use super::config::{CollectConfig, Secret};
use super::sink::{Delivery, Recorder, Sink};
use super::Components;
use crate::store::Store;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Environment variable with the EventBridge connection's API key.
pub const EVENTBRIDGE_KEY_ENV: &str = "ROOTLINE_EVENTBRIDGE_API_KEY";
/// Environment variable with the GitHub webhook secret.
pub const GITHUB_SECRET_ENV: &str = "ROOTLINE_GITHUB_WEBHOOK_SECRET";

#[derive(Clone)]
struct ApiKey {
    header: HeaderName,
    key: SecretString,
}

/// Counters shown in the components' states.
#[derive(Debug, Default)]
pub struct PushStats {
    pub eventbridge_stored: AtomicU64,
    pub github_stored: AtomicU64,
    pub refused: AtomicU64,
}

/// Push endpoint settings, from the environment and the config file.
#[derive(Clone, Default)]
pub struct PushConfig {
    eventbridge: Option<ApiKey>,
    github: Option<SecretString>,
    eventbridge_max_body: usize,
    github_max_body: usize,
    record: Option<PathBuf>,
    pub stats: Arc<PushStats>,
}

impl PushConfig {
    /// Reads ROOTLINE_EVENTBRIDGE_API_KEY, ROOTLINE_GITHUB_WEBHOOK_SECRET and the
    /// `[collect]` section of the config file (the environment wins). An invalid
    /// section is logged and leaves only what the environment configures.
    pub fn from_env(collect: Option<&toml::Table>) -> Self {
        Self::from_sources(collect, |k| std::env::var(k).ok())
    }

    /// As `from_env`, with the environment supplied (tests).
    pub fn from_sources(
        collect: Option<&toml::Table>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let cfg = match CollectConfig::from_table(collect) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "Push endpoints: ignoring the invalid [collect] section");
                CollectConfig::default()
            }
        };
        let non_empty = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
        let eb_key = non_empty(env(EVENTBRIDGE_KEY_ENV))
            .map(SecretString::from)
            .or_else(|| cfg.eventbridge.api_key.clone().map(|s: Secret| s.0))
            .filter(|s| !s.expose_secret().trim().is_empty());
        let header = match HeaderName::from_bytes(
            cfg.eventbridge
                .header
                .trim()
                .to_ascii_lowercase()
                .as_bytes(),
        ) {
            Ok(h) => h,
            Err(_) => {
                tracing::error!(header = %cfg.eventbridge.header, "Invalid [collect.eventbridge] header name; using x-api-key");
                HeaderName::from_static("x-api-key")
            }
        };
        let gh = non_empty(env(GITHUB_SECRET_ENV))
            .map(SecretString::from)
            .or_else(|| cfg.github.webhook_secret.clone().map(|s: Secret| s.0))
            .filter(|s| !s.expose_secret().is_empty());
        PushConfig {
            eventbridge: eb_key.map(|key| ApiKey { header, key }),
            github: gh,
            eventbridge_max_body: cfg.eventbridge.max_body_bytes.max(1024),
            github_max_body: cfg.github.max_body_bytes.max(1024),
            record: cfg.record.clone(),
            stats: Arc::default(),
        }
    }

    /// The largest body any push endpoint accepts (the listener's body limit must allow
    /// it).
    pub fn max_body(&self) -> usize {
        self.eventbridge_max_body.max(self.github_max_body)
    }

    pub fn eventbridge_enabled(&self) -> bool {
        self.eventbridge.is_some()
    }

    pub fn github_enabled(&self) -> bool {
        self.github.is_some()
    }

    /// Puts the enabled endpoints on the components list (for /metrics and /status).
    pub fn register(&self, components: &Components) {
        if let Ok(mut c) = components.lock() {
            if self.eventbridge_enabled() {
                c.insert(
                    "push:eventbridge".into(),
                    "ok: listening on POST /ingest/eventbridge".into(),
                );
            }
            if self.github_enabled() {
                c.insert(
                    "push:github".into(),
                    "ok: listening on POST /ingest/github".into(),
                );
            }
        }
    }

    fn sink(&self, state: &PushState) -> Sink {
        Sink {
            store: state.store.clone(),
            recorder: self.record.as_deref().map(Recorder::for_path),
            // A 200 tells the sender it may forget the event: only after a synced commit.
            durable: true,
        }
    }
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field(
                "eventbridge",
                &self.eventbridge.as_ref().map(|k| k.header.as_str()),
            )
            .field("github", &self.github.as_ref().map(|_| "[redacted]"))
            .field("eventbridge_max_body", &self.eventbridge_max_body)
            .field("github_max_body", &self.github_max_body)
            .finish()
    }
}

/// What the push endpoints need: where to store, their settings, where to report.
#[derive(Clone)]
pub struct PushState {
    pub store: Store,
    pub push: Arc<PushConfig>,
    pub components: Components,
    /// Notified after every append that stored something (the analyser waits on it).
    pub appended: Arc<tokio::sync::Notify>,
}

/// The push routes, with their state, to merge into any router. Both are always routed;
/// one whose secret is unset answers 404.
pub fn routes<S: Clone + Send + Sync + 'static>(state: PushState) -> Router<S> {
    Router::new()
        .route("/ingest/eventbridge", post(eventbridge))
        .route("/ingest/github", post(github))
        .with_state(state)
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn refuse(state: &PushState, status: StatusCode, message: &str) -> Response {
    state.push.stats.refused.fetch_add(1, Ordering::Relaxed);
    answer(
        status,
        serde_json::json!({"error": message, "status": status.as_u16()}),
    )
}

fn not_found() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": "not found", "status": 404}),
    )
}

/// Constant-time equality of two secrets (digests first, so lengths leak nothing).
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let da = Sha256::digest(a);
    let db = Sha256::digest(b);
    bool::from(da[..].ct_eq(&db[..]))
}

/// Reads a body up to `max` bytes; `Err` is the 413 (or 400) answer.
async fn read_body(
    state: &PushState,
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<axum::body::Bytes, Response> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(refuse(
            state,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("body larger than {max} bytes"),
        ));
    }
    match axum::body::to_bytes(body, max).await {
        Ok(b) => Ok(b),
        Err(e) => {
            // to_bytes fails with a length-limit error when the limit is crossed.
            let msg = e.to_string();
            if msg.contains("length limit")
                || std::error::Error::source(&e)
                    .is_some_and(|s| s.to_string().contains("length limit"))
            {
                Err(refuse(
                    state,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("body larger than {max} bytes"),
                ))
            } else {
                Err(refuse(
                    state,
                    StatusCode::BAD_REQUEST,
                    "could not read the body",
                ))
            }
        }
    }
}

fn set_component(state: &PushState, name: &str, value: String) {
    crate::telemetry::set_component(&state.components, name, value);
}

/// Splits a body into deliveries: one JSON object, or an array of objects.
fn deliveries(source: &'static str, body: &[u8]) -> Result<Vec<Delivery>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_string())?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        Ok(items
            .into_iter()
            .map(|r| Delivery::new(source, r.get().to_string()))
            .collect())
    } else {
        let _: &serde_json::value::RawValue =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        Ok(vec![Delivery::new(source, text.trim().to_string())])
    }
}

/// What a push endpoint makes of a body: its deliveries of `source` (`eventbridge`,
/// `github.deployment_status`), normalized; `Err` names why the body is refused. The
/// endpoints' parsing without the HTTP around it (the fuzz targets call it).
pub fn parse_push_body(
    source: &'static str,
    body: &[u8],
) -> Result<Vec<crate::model::NewEvent>, String> {
    let items = deliveries(source, body)?;
    let (events, rejected) = Sink::normalize(&items, 0);
    if rejected > 0 || events.len() != items.len() {
        return Err(format!("{rejected} of {} deliveries rejected", items.len()));
    }
    Ok(events)
}

/// Validates every delivery, then stores them all (or nothing).
async fn store_all(state: &PushState, items: Vec<Delivery>) -> Response {
    if items.is_empty() {
        return refuse(state, StatusCode::BAD_REQUEST, "no events in the body");
    }
    let (events, rejected) = Sink::normalize(&items, super::sink::now_ms());
    if rejected > 0 || events.len() != items.len() {
        return refuse(
            state,
            StatusCode::BAD_REQUEST,
            "the body is not a valid event (see the server log)",
        );
    }
    match state.push.sink(state).deliver(&items, None).await {
        Ok(r) => {
            if r.appended > 0 {
                state.appended.notify_one();
            }
            answer(
                StatusCode::OK,
                serde_json::json!({"received": r.received, "stored": r.appended, "duplicates": r.duplicates}),
            )
        }
        Err(e) => {
            tracing::error!(error = %e.message, "Push: storing failed");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "store unavailable; retry", "status": 503}),
            )
        }
    }
}

async fn eventbridge(State(state): State<PushState>, headers: HeaderMap, body: Body) -> Response {
    let Some(key) = state.push.eventbridge.clone() else {
        return not_found();
    };
    let given = headers
        .get(&key.header)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    if given.is_empty() || !secret_eq(given, key.key.expose_secret().as_bytes()) {
        tracing::warn!("Push /ingest/eventbridge: missing or wrong API key");
        return refuse(&state, StatusCode::UNAUTHORIZED, "missing or wrong API key");
    }
    let bytes = match read_body(&state, &headers, body, state.push.eventbridge_max_body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let items = match deliveries("eventbridge", &bytes) {
        Ok(i) => i,
        Err(m) => return refuse(&state, StatusCode::BAD_REQUEST, &m),
    };
    let n = items.len() as u64;
    let resp = store_all(&state, items).await;
    if resp.status() == StatusCode::OK {
        let total = state
            .push
            .stats
            .eventbridge_stored
            .fetch_add(n, Ordering::Relaxed)
            + n;
        set_component(
            &state,
            "push:eventbridge",
            format!(
                "ok: {total} events received, last at {}",
                crate::model::fmt_time(super::sink::now_ms())
            ),
        );
    }
    resp
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Verifies `X-Hub-Signature-256: sha256=HEX` over the raw body.
pub fn verify_github_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(sig) = header
        .and_then(|h| h.trim().strip_prefix("sha256="))
        .and_then(hex_decode)
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The signature header value GitHub would send (for tests and tools).
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

async fn github(State(state): State<PushState>, headers: HeaderMap, body: Body) -> Response {
    let Some(secret) = state.push.github.clone() else {
        return not_found();
    };
    let bytes = match read_body(&state, &headers, body, state.push.github_max_body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !verify_github_signature(secret.expose_secret().as_bytes(), &bytes, sig) {
        tracing::warn!("Push /ingest/github: missing or wrong X-Hub-Signature-256");
        return refuse(
            &state,
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-Hub-Signature-256",
        );
    }
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match event {
        "deployment_status" => {}
        "" => return refuse(&state, StatusCode::BAD_REQUEST, "missing X-GitHub-Event"),
        "ping" => return answer(StatusCode::OK, serde_json::json!({"ok": true})),
        other => {
            return answer(
                StatusCode::ACCEPTED,
                serde_json::json!({"ignored": other, "reason": "only deployment_status events are stored"}),
            )
        }
    }
    let items = match deliveries("github.deployment_status", &bytes) {
        Ok(i) if i.len() == 1 => i,
        Ok(_) => return refuse(&state, StatusCode::BAD_REQUEST, "expected one JSON object"),
        Err(m) => return refuse(&state, StatusCode::BAD_REQUEST, &m),
    };
    let resp = store_all(&state, items).await;
    if resp.status() == StatusCode::OK {
        let total = state
            .push
            .stats
            .github_stored
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        set_component(
            &state,
            "push:github",
            format!(
                "ok: {total} deployment statuses received, last at {}",
                crate::model::fmt_time(super::sink::now_ms())
            ),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        // GitHub's documented example: secret "It's a Secret to Everybody".
        let sig = github_signature(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(verify_github_signature(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            Some(&sig)
        ));
        assert!(!verify_github_signature(
            b"wrong",
            b"Hello, World!",
            Some(&sig)
        ));
        assert!(!verify_github_signature(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            None
        ));
        assert!(!verify_github_signature(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            Some("sha256=zz")
        ));
    }

    #[test]
    fn env_wins_and_debug_redacts() {
        let t: toml::Table = toml::from_str(
            "[eventbridge]\napi_key = \"from-file\"\n[github]\nwebhook_secret = \"gh-file\"",
        )
        .unwrap();
        let p = PushConfig::from_sources(Some(&t), |k| {
            (k == EVENTBRIDGE_KEY_ENV).then(|| "from-env".to_string())
        });
        assert_eq!(
            p.eventbridge.as_ref().unwrap().key.expose_secret(),
            "from-env"
        );
        assert_eq!(p.github.as_ref().unwrap().expose_secret(), "gh-file");
        let dbg = format!("{p:?}");
        assert!(
            !dbg.contains("from-env") && !dbg.contains("gh-file"),
            "{dbg}"
        );
        let off = PushConfig::from_sources(None, |_| None);
        assert!(!off.eventbridge_enabled() && !off.github_enabled());
        assert!(secret_eq(b"a", b"a") && !secret_eq(b"a", b"ab"));
    }
}
