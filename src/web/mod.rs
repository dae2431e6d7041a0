//! The server-rendered timeline: axum + askama, templates under web/templates.
//!
//! Every page has a JSON twin (same URL, `Accept: application/json`). Pages work
//! without JavaScript; forms are plain POSTs answered with a redirect. Templates escape
//! everything they print: CloudTrail fields, alarm reasons and log lines are attacker
//! controlled.

pub mod http;
mod metrics;
mod pages;
pub mod picture;
pub mod security;
pub mod views;

use crate::store::Store;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub use metrics::Metrics;

/// [`AppState::public_url`] until told otherwise.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    /// Events appended per second over the last minute (f64 bits).
    pub ingest_rate: Arc<AtomicU64>,
    /// Collector and worker states for /metrics and the status page: name -> state.
    pub components: crate::telemetry::Components,
    /// The address people reach the pages at (no trailing slash): the links of the
    /// Markdown report. `app::serve` sets it from `ROOTLINE_PUBLIC_URL`, else
    /// `[notify] public_url`, else the address it listens on.
    pub public_url: String,
    /// Who may see and change what ([`security`]); mode `none` unless set.
    pub auth: Arc<security::AuthConfig>,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        AppState {
            store,
            metrics: Arc::new(Metrics::default()),
            ingest_rate: Arc::new(AtomicU64::new(0f64.to_bits())),
            components: Default::default(),
            public_url: DEFAULT_PUBLIC_URL.to_string(),
            auth: Arc::default(),
        }
    }

    /// The same state with an authentication config.
    pub fn with_auth(mut self, auth: security::AuthConfig) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    pub fn ingest_rate(&self) -> f64 {
        f64::from_bits(self.ingest_rate.load(Ordering::Relaxed))
    }
}

/// Errors a handler can answer with. The message of a 4xx is shown to the user; a 500
/// is logged in full and answered with a generic message. Handlers return
/// `Result<_, WebError>` and use `?`; the router's [`error_pages`] layer turns the error
/// into the error page, or its JSON, as the request's `Accept` header asks.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Template(#[from] askama::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl WebError {
    /// The status and the message shown to the user; a 500 is logged here in full.
    fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            other => {
                tracing::error!(error = %other, "Request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; the server log has the details.".to_string(),
                )
            }
        }
    }
}

/// The message of an error response, carried in its extensions until [`error_pages`]
/// renders it for the client.
#[derive(Clone)]
struct ErrorMessage(String);

/// A plain-text answer carrying an [`ErrorMessage`]; the router's [`error_pages`] layer
/// replaces it with the HTML error page or the JSON error.
impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        let mut resp = (status, message.clone()).into_response();
        resp.extensions_mut().insert(ErrorMessage(message));
        resp
    }
}

/// The one place an error becomes a page: every response that carries an
/// [`ErrorMessage`] is answered with the error page, or with
/// `{"error": message, "status": code}` when the request asked for JSON.
async fn error_pages(req: Request, next: Next) -> Response {
    let json = wants_json(req.headers());
    let resp = next.run(req).await;
    match resp.extensions().get::<ErrorMessage>() {
        Some(ErrorMessage(message)) => error_page(resp.status(), message.clone(), json),
        None => resp,
    }
}

/// The error page, rendered with the status (JSON for JSON clients).
fn error_page(status: StatusCode, message: String, json: bool) -> Response {
    if json {
        return (
            status,
            axum::Json(serde_json::json!({"error": message, "status": status.as_u16()})),
        )
            .into_response();
    }
    let page = pages::ErrorPage {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        message,
    };
    match askama::Template::render(&page) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message_plain(status)).into_response(),
    }
}

fn message_plain(status: StatusCode) -> String {
    format!("{status}")
}

/// True when the client asked for JSON.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(|a| a.contains("application/json"))
        .unwrap_or(false)
}

/// The router with every page, the health check and metrics, and `ingest`: routes of
/// other components (the push endpoints) served and measured alongside.
pub fn router(state: AppState, ingest: Router<AppState>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/incidents") }),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route("/static/style.css", get(style))
        .route("/incidents", get(pages::incidents))
        .route("/incidents/{id}", get(pages::incident))
        .route("/incidents/{id}/feedback", post(pages::feedback))
        .route("/incidents/{id}/issue", post(pages::request_issue))
        .route("/incidents/{id}/report", get(pages::report))
        .route("/incidents/{id}/report.md", get(pages::report_markdown))
        .route("/events/{seq}", get(pages::event))
        .route("/resources/{*key}", get(pages::resource))
        .route("/search", get(pages::search))
        .route("/status", get(pages::status))
        .route("/login", get(security::login_page).post(security::login))
        .route("/logout", post(security::logout))
        .merge(ingest)
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(error_pages))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::from_fn(security::security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}

/// The push endpoints alone (the ingest listener of `--ingest-addr`): `ingest` and a
/// 404 for everything else, measured like the pages, with the security headers.
pub fn ingest_router(state: AppState, ingest: Router<AppState>) -> Router {
    Router::new()
        .merge(ingest)
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": "not found", "status": 404})),
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::from_fn(security::security_headers))
        .with_state(state)
}

/// Records each request's latency by matched route.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    state.metrics.observe(
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    use crate::store::EventLog;
    match state.store.max_seq().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "Health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    use crate::store::EventLog;
    use std::fmt::Write;
    let mut out = String::new();
    // Sequence numbers are gap-free, so the highest is the number of events stored.
    let stored = state.store.max_seq().await.unwrap_or(-1);
    let open = match views::incidents(&state.store).await {
        Ok(v) => v.iter().filter(|i| i.row.state == "open").count() as i64,
        Err(_) => -1,
    };
    let _ = writeln!(out, "# HELP rootline_events_stored Events in the log.");
    let _ = writeln!(out, "# TYPE rootline_events_stored gauge");
    let _ = writeln!(out, "rootline_events_stored {stored}");
    let _ = writeln!(
        out,
        "# HELP rootline_ingest_events_per_second Events appended per second over the last minute."
    );
    let _ = writeln!(out, "# TYPE rootline_ingest_events_per_second gauge");
    let _ = writeln!(
        out,
        "rootline_ingest_events_per_second {}",
        state.ingest_rate()
    );
    let _ = writeln!(
        out,
        "# HELP rootline_incidents_open Incidents not yet resolved."
    );
    let _ = writeln!(out, "# TYPE rootline_incidents_open gauge");
    let _ = writeln!(out, "rootline_incidents_open {open}");
    if let Ok(c) = state.components.lock() {
        let _ = writeln!(
            out,
            "# HELP rootline_component_up Collectors and workers: 1 running, 0 failing."
        );
        let _ = writeln!(out, "# TYPE rootline_component_up gauge");
        for (name, st) in c.iter() {
            let up = if st.starts_with("ok") || st.starts_with("running") {
                1
            } else {
                0
            };
            let _ = writeln!(
                out,
                "rootline_component_up{{component=\"{}\"}} {up}",
                metrics::escape(name)
            );
        }
    }
    state.metrics.render_requests(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../web/static/style.css"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    /// A router whose pages fail as `WebError`s, behind the `error_pages` layer.
    fn failing() -> Router {
        Router::new()
            .route(
                "/bad",
                get(|| async { WebError::BadRequest("h must be <b>1</b>".into()) }),
            )
            .route(
                "/broken",
                get(|| async { WebError::Other(anyhow::anyhow!("disk on fire")) }),
            )
            .route(
                "/fine",
                get(|| async { (StatusCode::BAD_REQUEST, "as is") }),
            )
            .fallback(|| async { WebError::NotFound("No such page.".into()) })
            .layer(axum::middleware::from_fn(error_pages))
    }

    async fn get_page(path: &str, accept: Option<&str>) -> (StatusCode, String, String) {
        let mut req = Request::builder().uri(path);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let resp = failing()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ctype = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn errors_are_the_error_page_or_json_by_the_accept_header() {
        let (status, ctype, body) = get_page("/bad", Some("text/html")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(ctype, "text/html; charset=utf-8");
        assert!(body.contains("<h1>400 Bad Request</h1>"), "{body}");
        assert!(
            body.contains("<p class=\"error\">h must be &#60;b&#62;1&#60;/b&#62;</p>"),
            "{body}"
        );

        let (status, ctype, body) = get_page("/bad", Some("application/json")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(ctype, "application/json");
        assert_eq!(body, r#"{"error":"h must be <b>1</b>","status":400}"#);

        let (status, _, body) = get_page("/nowhere", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            body.contains("<p class=\"error\">No such page.</p>"),
            "{body}"
        );
        let (status, _, body) = get_page("/nowhere", Some("application/json")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, r#"{"error":"No such page.","status":404}"#);
    }

    #[tokio::test]
    async fn a_500_says_only_that_the_log_has_the_details() {
        let (status, _, body) = get_page("/broken", Some("application/json")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            r#"{"error":"Internal error; the server log has the details.","status":500}"#
        );
        let (_, _, body) = get_page("/broken", None).await;
        assert!(!body.contains("disk on fire"), "{body}");
    }

    #[tokio::test]
    async fn viewers_see_component_states_without_their_error_text() {
        let store = crate::store::Store::open("sqlite::memory:").await.unwrap();
        let section: security::AuthSection = toml::from_str(
            "mode = \"proxy\"\n[proxy]\naddresses = [\"127.0.0.1\"]\nresponders = [\"ana\"]\n",
        )
        .unwrap();
        let auth = security::AuthConfig::from_section(Some(&section)).unwrap();
        let state = AppState::new(store).with_auth(auth);
        crate::telemetry::set_component(
            &state.components,
            "collectors",
            "failing: AccessDenied for arn:aws:iam::123456789012:role/x".into(),
        );
        let app = router(state, Router::new());
        let status_as = |user: &'static str| {
            let app = app.clone();
            async move {
                let mut req = Request::builder()
                    .uri("/status")
                    .header(header::ACCEPT, "application/json")
                    .header(header::HOST, "127.0.0.1:8080")
                    .header("x-forwarded-email", user)
                    .body(axum::body::Body::empty())
                    .unwrap();
                let peer: std::net::SocketAddr = "127.0.0.1:5555".parse().unwrap();
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let resp = app.oneshot(req).await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                v["components"].clone()
            }
        };
        assert_eq!(
            status_as("vic").await,
            serde_json::json!([["collectors", "failing"]])
        );
        let full = status_as("ana").await.to_string();
        assert!(full.contains("123456789012"), "{full}");
    }

    #[tokio::test]
    async fn other_responses_pass_through() {
        let (status, ctype, body) = get_page("/fine", Some("application/json")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(ctype, "text/plain; charset=utf-8");
        assert_eq!(body, "as is");
    }
}
