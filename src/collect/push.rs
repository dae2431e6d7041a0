//! Push endpoints: `POST /ingest/eventbridge` and `POST /ingest/github`.
//!
//! (Being implemented: see issue #5.) An endpoint whose secret is not configured is off.

use crate::web::AppState;
use axum::Router;

/// Push endpoint settings, from the environment and the config file.
#[derive(Clone, Default)]
pub struct PushConfig {}

impl PushConfig {
    /// Reads ROOTLINE_EVENTBRIDGE_API_KEY, ROOTLINE_GITHUB_WEBHOOK_SECRET and the
    /// `[collect]` section of the config file.
    pub fn from_env(_collect: Option<&toml::Table>) -> Self {
        PushConfig {}
    }
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushConfig { .. }")
    }
}

/// The push routes (none while no secret is configured).
pub fn routes() -> Router<AppState> {
    Router::new()
}
