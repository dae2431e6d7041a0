//! Live collectors: CloudTrail, CloudWatch alarms and logs, AWS Config, and the push
//! endpoints for EventBridge and GitHub. Collectors only fetch or receive raw payloads
//! and hand them on in the recording shape, so live input and replay take one path.
//!
//! (Being implemented: see issue #5.)

pub mod push;

use std::process::ExitCode;

/// `rootline collect` arguments.
#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    /// Poll every configured source once and exit.
    #[arg(long)]
    pub once: bool,
}

/// Runs `rootline collect`.
pub async fn run(_database: &str, _args: CollectArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`rootline collect` is not implemented yet")
}
