//! The server-rendered timeline: axum + askama, templates under web/templates.
//!
//! Every page has a JSON twin (same URL, `Accept: application/json`). Pages work
//! without JavaScript; forms are plain POSTs answered with a redirect. Templates escape
//! everything they print: CloudTrail fields, alarm reasons and log lines are attacker
//! controlled.

mod metrics;
mod pages;
pub mod views;

use crate::store::SqliteStore;
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

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    pub store: SqliteStore,
    pub metrics: Arc<Metrics>,
    /// Events appended per second over the last minute (f64 bits).
    pub ingest_rate: Arc<AtomicU64>,
    /// Collector and worker states for /metrics and the status page: name -> state.
    pub components: crate::telemetry::Components,
}

impl AppState {
    pub fn new(store: SqliteStore) -> Self {
        AppState {
            store,
            metrics: Arc::new(Metrics::default()),
            ingest_rate: Arc::new(AtomicU64::new(0f64.to_bits())),
            components: Default::default(),
        }
    }

    pub fn ingest_rate(&self) -> f64 {
        f64::from_bits(self.ingest_rate.load(Ordering::Relaxed))
    }
}

/// Errors a handler can answer with. The message of a 4xx is shown to the user; a 500
/// is logged in full and answered with a generic message.
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

/// The error page, rendered with the status (JSON for JSON clients).
pub struct ErrorResponse {
    err: WebError,
    json: bool,
}

impl WebError {
    pub fn respond(self, headers: &HeaderMap) -> ErrorResponse {
        ErrorResponse {
            err: self,
            json: wants_json(headers),
        }
    }
}

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let (status, message) = match &self.err {
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            other => {
                tracing::error!(error = %other, "Request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; the server log has the details.".to_string(),
                )
            }
        };
        if self.json {
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
        .route("/events/{seq}", get(pages::event))
        .route("/resources/{*key}", get(pages::resource))
        .route("/search", get(pages::search))
        .route("/status", get(pages::status))
        .merge(ingest)
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
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
