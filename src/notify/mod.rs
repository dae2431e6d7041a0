//! GitHub issues for hypotheses, through an outbox in the event log.
//!
//! * A qualifying hypothesis (the top-ranked one of an incident, with a score of at
//!   least `--min-score`) gets an "issue requested" rootline event; so does any
//!   hypothesis a person asks for from the incident page ([`request_issue`]).
//! * The worker ([`run_worker`]: `rootline notify`, or a task of a long-running server
//!   such as `serve` when configured) delivers due requests through the GitHub REST API and
//!   appends "issue opened" (number and URL), "issue commented" (re-ranking made another
//!   hypothesis the top one of an incident that already has an issue: the worker
//!   comments on that issue instead of opening another) or "issue failed" (a permanent
//!   error, with its message).
//! * Exactly one issue per incident and hypothesis: the outbox says what was done, and
//!   before creating anything the worker looks for the hidden marker
//!   (`<!-- rootline:incident=ID hypothesis=SOURCE/ID -->`, the first line of the body)
//!   in the repository's rootline-labelled issues, listed through the issues API (not
//!   search, whose index lags). So a lost answer, a retry or a crash between creating
//!   the issue and appending "issue opened" never makes a second issue.
//!
//! The outbox itself (its events, their state, requests) lives in
//! [`crate::conclusions::outbox`], which the web pages share.

pub mod config;
mod github;
pub mod markdown;
pub mod worker;

pub use config::{
    GithubOptions, NotifyConfig, Repo, RetryPolicy, DEFAULT_API_URL, DEFAULT_LABEL,
    DEFAULT_PUBLIC_URL,
};
pub use github::{API_VERSION, MEDIA_TYPE};
pub use worker::{run_worker, WorkerReport};

use crate::conclusions::ConclusionError;

/// `rootline notify` arguments.
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// Deliver everything due, then exit when the outbox is drained (exit status 3 when
    /// a delivery failed or is still due).
    #[arg(long)]
    pub once: bool,
    /// Print the GitHub requests that would be sent, instead of sending them; nothing is
    /// appended to the log and no token is needed.
    #[arg(long)]
    pub dry_run: bool,
    /// Request again the deliveries that failed (after fixing the token or repository).
    #[arg(long)]
    pub retry_failed: bool,
    #[command(flatten)]
    pub github: GithubOptions,
}

/// Errors at the notification boundary.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Conclusion(#[from] ConclusionError),
    /// A configuration problem (flags, token, repository), explained.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Other(String),
}
