//! GitHub issues for hypotheses, through an outbox in the event log.
//!
//! (Being implemented: see issue #6.)

use crate::correlate::{Hypothesis, Incident};
use crate::model::EventRef;
use crate::store::EventLog;
use std::process::ExitCode;

/// `rootline notify` arguments.
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// Deliver everything due, then exit when the outbox is drained.
    #[arg(long)]
    pub once: bool,
}

/// Errors at the notification boundary.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Other(String),
}

/// The delivery state of the issue for one hypothesis of an incident.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub incident: String,
    pub cause: EventRef,
    /// requested, opened, commented or failed.
    pub state: String,
    pub issue_number: Option<u64>,
    pub issue_url: Option<String>,
    pub error: Option<String>,
}

/// Deliveries recorded for an incident, oldest first.
pub async fn deliveries<S: EventLog>(_store: &S, _incident: &str) -> Result<Vec<Delivery>, NotifyError> {
    Ok(Vec::new())
}

/// Appends an "issue requested" event for a hypothesis (by hand from the incident page
/// when `by` names a person). Returns false when one was already requested.
pub async fn request_issue<S: EventLog>(
    _store: &S,
    _incident: &Incident,
    _hypothesis: &Hypothesis,
    _by: &str,
) -> Result<bool, NotifyError> {
    Err(NotifyError::Other("GitHub notifications are not implemented yet".into()))
}

/// Runs `rootline notify`.
pub async fn run(_database: &str, _args: NotifyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`rootline notify` is not implemented yet")
}
