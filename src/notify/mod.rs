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
//! [`deliveries`] reads the state of each delivery for the incident page.

pub mod config;
mod github;
pub mod markdown;
mod outbox;
pub mod worker;

pub use config::{
    GithubOptions, NotifyConfig, Repo, RetryPolicy, DEFAULT_API_URL, DEFAULT_LABEL,
    DEFAULT_PUBLIC_URL,
};
pub use github::{API_VERSION, MEDIA_TYPE};
pub use worker::{run_worker, WorkerReport};

use crate::correlate::{Hypothesis, Incident};
use crate::model::EventRef;
use crate::store::EventLog;
use std::process::ExitCode;

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
    /// A configuration problem (flags, token, repository), explained.
    #[error("{0}")]
    Config(String),
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
    /// The issue (for "commented": the incident's existing issue that was commented on).
    pub issue_number: Option<u64>,
    /// The issue's page (for "commented": the comment's).
    pub issue_url: Option<String>,
    /// Why the delivery failed (state "failed"): GitHub's status and message.
    pub error: Option<String>,
    /// Who asked: "rootline" for automatic requests, else the person named.
    pub requested_by: Option<String>,
    /// When the state last changed, epoch ms.
    pub updated_at: i64,
}

/// Deliveries recorded for an incident, oldest first.
pub async fn deliveries<S: EventLog>(
    store: &S,
    incident: &str,
) -> Result<Vec<Delivery>, NotifyError> {
    let events = outbox::read(store, Some(incident)).await?;
    Ok(outbox::fold(&events)
        .into_iter()
        .map(|s| s.delivery)
        .collect())
}

/// Appends an "issue requested" event for a hypothesis (by hand from the incident page
/// when `by` names a person). Returns false when one was already requested (or the issue
/// exists); a failed delivery is requested again. A request by a person always opens an
/// issue for that hypothesis; automatic requests (`by` = "rootline") comment on the
/// incident's existing issue instead, if it has one.
pub async fn request_issue<S: EventLog>(
    store: &S,
    incident: &Incident,
    hypothesis: &Hypothesis,
    by: &str,
) -> Result<bool, NotifyError> {
    let by = by.trim();
    if by.is_empty() {
        return Err(NotifyError::Other("say who requests the issue".into()));
    }
    let by: String = by.chars().filter(|c| !c.is_control()).take(100).collect();
    outbox::request(store, incident, hypothesis, &by, true).await
}

/// Runs `rootline notify`.
pub async fn run(database: &str, args: NotifyArgs) -> anyhow::Result<ExitCode> {
    let mut config = NotifyConfig::from_env_and_args(&args.github, args.dry_run)?;
    config.once = args.once || args.dry_run;
    config.retry_failed = args.retry_failed;
    let store = crate::cli::open_store(database).await?;
    let shutdown = async {
        let _ = shutdown_signal().await;
    };
    let report = run_worker(store.clone(), config.clone(), shutdown).await?;
    store.close().await;
    if config.dry_run {
        eprintln!(
            "dry run: {} request(s) printed, nothing sent or recorded",
            report.printed
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "requested {}  opened {}  commented {}  failed {}  still due {}",
        report.requested, report.opened, report.commented, report.failed, report.pending
    );
    Ok(if report.failed > 0 || report.pending > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
