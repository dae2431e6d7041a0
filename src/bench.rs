//! Benchmarks that print their figures (never timed tests).

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingest N generated CloudTrail-shaped records and compare with a bare insert.
    Ingest {
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
    },
}

pub async fn run(_c: BenchCommand) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
