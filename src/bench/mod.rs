//! Benchmarks that print their figures (never timed tests), behind the cargo feature
//! `bench`: `rootline bench ingest|replay|rank|page|live|scenarios`.
//!
//! - [`gen`]: the one seeded generator (PRNG and CloudTrail records) they all draw from;
//! - `ingest`: `bench ingest` (rootline's ingest against a bare-append floor);
//! - `rank`: `bench replay` and `bench rank` (the engine);
//! - `page`: `bench page` (the incident page's latency);
//! - [`estate`] and `live`: `bench live` (issue 16's acceptance benchmark: the real server
//!   on a seeded store of N events, alarm to ranked hypotheses);
//! - here: the command, `bench scenarios`, and the helpers they share (peak memory,
//!   rates, number formatting).

pub mod estate;
pub mod gen;
mod ingest;
pub mod live;
mod page;
mod rank;

pub use ingest::{
    measure_ingest, write_recording, FloorVariant, IngestBench, IngestOptions, VariantRun,
};

use anyhow::{bail, Context};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `rootline bench ...`: the benchmarks and their flags.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingest N generated CloudTrail-shaped records and compare with a bare insert.
    Ingest {
        /// Number of records to generate and ingest.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Directory for the generated recording and the two databases (default: a new
        /// directory under the system temp dir, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// PRNG seed for the generated records.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Keep the recording and the databases.
        #[arg(long)]
        keep: bool,
        /// Pad every record with a policy document of this many KiB (large records:
        /// the peak-memory bound must hold whatever the record size, up to the 4 MiB
        /// line limit).
        #[arg(long, default_value_t = 0)]
        pad_kib: usize,
        /// Exit with status 2 when a target is missed (>= 100,000 events/s, >= 50% of
        /// the floor, peak memory < 300 MB).
        #[arg(long)]
        check: bool,
        /// Time rootline and the floor again on fresh stores with one part of the schema
        /// changed each time (no insert guard trigger; no idempotency at all; a
        /// time-keyed unique index instead): what each part of the append costs here.
        #[arg(long)]
        breakdown: bool,
        /// Ingest into fresh databases on this PostgreSQL server instead of SQLite files
        /// (a URL whose role may create databases; they are dropped afterwards unless
        /// --keep).
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Replay a generated recording (demo incidents plus background noise) the way
    /// `replay --json` does, and print the time.
    Replay {
        /// Lines in the generated recording.
        #[arg(long, default_value_t = 100_000)]
        lines: usize,
        /// Directory for the generated recording (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Rank one incident with N candidate changes in its look-back window.
    Rank {
        /// Candidate changes in the incident's look-back window.
        #[arg(long, default_value_t = 20_000)]
        candidates: usize,
        /// Times to run the analysis (the median and the slowest are printed).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Score the engine on labelled scenarios with ../shared/bench/score_rca.py, beside
    /// its "latest change" baseline.
    Scenarios {
        /// Directory of NAME.jsonl + NAME.expected.json scenarios.
        #[arg(default_value = "../shared/scenarios/train")]
        dir: PathBuf,
        /// The scorer script.
        #[arg(long, default_value = "../shared/bench/score_rca.py")]
        scorer: PathBuf,
    },
    /// Server-side latency of the incident page (or, with --search, of searches) over a
    /// store of N events.
    Page {
        /// Events in the store (a store of at least that many is reused).
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Requests to time.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Directory for the store (default: a new directory under the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Time searches (the store's query as /search asks it, and the whole page)
        /// instead of incident pages, after bringing the search index up to date.
        #[arg(long)]
        search: bool,
        /// With --search: empty the search index and build it again alone, timed.
        #[arg(long, requires = "search")]
        reindex: bool,
        /// Build the store on this PostgreSQL server instead (a URL whose role may
        /// create databases): the database rootline_bench_page_N, reused like a file.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Issue 16's acceptance benchmark: a seeded store of N events, the real server on
    /// it, alarm transitions pushed one by one and the time until each incident has
    /// ranked hypotheses; page and search latency, server peak memory, `rootline
    /// incidents`, store size.
    Live {
        /// Events in the store.
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Seed of the generated estate.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Directory of the store, kept and reused by later runs with the same events and
        /// seed [default: rootline-bench-live under the system temp dir].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Alarm transitions to push (at most 20).
        #[arg(long, default_value_t = 20)]
        pushes: usize,
        /// Seconds to wait for one incident's hypotheses before counting a failure.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
        /// Incident page requests to time.
        #[arg(long, default_value_t = 300)]
        page_requests: usize,
        /// Search requests to time.
        #[arg(long, default_value_t = 100)]
        search_requests: usize,
        /// Print the figures as one JSON document.
        #[arg(long)]
        json: bool,
        /// Only build (or find) the store and print its size: no engine, no server.
        #[arg(long)]
        build_only: bool,
    },
}

/// Runs one benchmark and prints its figures.
pub async fn run(c: BenchCommand) -> anyhow::Result<ExitCode> {
    match c {
        BenchCommand::Ingest {
            records,
            dir,
            seed,
            keep,
            pad_kib,
            check,
            breakdown,
            postgres,
        } => {
            let opts = IngestOptions {
                records,
                seed,
                keep,
                pad_kib,
                check,
                breakdown,
            };
            ingest::bench_ingest(opts, dir, postgres.as_deref()).await
        }
        BenchCommand::Replay { lines, dir } => {
            rank::replay(lines, &dir.unwrap_or_else(std::env::temp_dir)).await?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Rank { candidates, runs } => {
            rank::rank(candidates, runs)?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Scenarios { dir, scorer } => bench_scenarios(&dir, &scorer),
        BenchCommand::Page {
            events,
            requests,
            dir,
            search,
            reindex,
            postgres,
        } => {
            let search = search.then_some(page::SearchOptions { reindex });
            page::page(events, requests, dir, search, postgres.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Live {
            events,
            seed,
            dir,
            pushes,
            timeout_secs,
            page_requests,
            search_requests,
            json,
            build_only,
        } => {
            let opts = live::LiveOptions {
                events,
                seed,
                dir: dir.unwrap_or_else(|| std::env::temp_dir().join("rootline-bench-live")),
                pushes,
                timeout: Duration::from_secs(timeout_secs),
                page_requests,
                search_requests,
                build_only,
            };
            live::live(opts, json).await
        }
    }
}

/// Runs the scenario scorer with this very binary as the command under test.
fn bench_scenarios(dir: &Path, scorer: &Path) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the rootline executable")?;
    if !scorer.exists() {
        bail!(
            "scorer {} not found (run from the repository root, or pass --scorer)",
            scorer.display()
        );
    }
    let cmd = format!("{} replay {{file}} --json", exe.display());
    let status = std::process::Command::new("python3")
        .arg(scorer)
        .arg("--cmd")
        .arg(&cmd)
        .arg(dir)
        .status()
        .context("cannot run python3")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `n` per second of `d` (0 for no time).
fn rate(n: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 {
        n as f64 / s
    } else {
        0.0
    }
}

/// Peak resident set size of this process (VmHWM), in KiB; `None` off Linux.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Formats a rate as a whole number with thousands separators (`1,234,567`).
fn fmt_rate(r: f64) -> String {
    let n = r.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_formatting() {
        assert_eq!(fmt_rate(1_234_567.4), "1,234,567");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(rate(10, Duration::from_secs(2)), 5.0);
        assert!(peak_rss_kib().is_some_and(|k| k > 0));
    }
}
