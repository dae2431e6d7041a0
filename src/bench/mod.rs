//! Benchmarks that print their figures (never timed tests).
//!
//! `rootline bench ingest` generates a recording of CloudTrail-shaped records (realistic
//! field mixes from a seeded PRNG, no wall clock in the data), then measures in one run:
//!
//! - rootline: `ingest::ingest_files` of that file into a fresh file-backed store
//!   (reading, parsing, normalizing, idempotent batched appends with checkpoints);
//! - the floor: the same rows, normalized beforehand outside the timer, appended through
//!   the same driver and schema into another fresh file; only `EventLog::append` is timed;
//!
//! With `--breakdown`, rootline and the floor run again on fresh stores whose schema was
//! changed by SQL ([`FloorVariant`]), to show what each part of the append costs.
//!
//! Peak memory (VmHWM) is read right after the rootline phase, before the floor.

mod page;
mod rank;

use crate::ingest;
use crate::model::NewEvent;
use crate::store::{EventLog, SqliteStore};
use anyhow::{bail, Context};
use clap::Subcommand;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
        #[arg(long, default_value_t = 20_000)]
        candidates: usize,
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
    /// Server-side latency of the incident page over a store of N events.
    Page {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Requests to time.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Directory for the store (default: a new directory under the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

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
        } => {
            let opts = IngestOptions {
                records,
                seed,
                keep,
                pad_kib,
                check,
                breakdown,
            };
            bench_ingest(opts, dir).await
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
        } => {
            page::page(events, requests, dir).await?;
            Ok(ExitCode::SUCCESS)
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

/// Targets of issue #2 on the 2-core reference machine, release build.
const TARGET_EVENTS_PER_SEC: f64 = 100_000.0;
const TARGET_FLOOR_RATIO: f64 = 0.5;
const TARGET_PEAK_MB: f64 = 300.0;

/// Results of one `bench ingest` run.
#[derive(Debug, Clone)]
pub struct IngestBench {
    pub records: u64,
    pub file_bytes: u64,
    pub generate: Duration,
    pub rootline: Duration,
    pub appended: u64,
    pub rejected: u64,
    pub peak_rss_kib: Option<u64>,
    pub floor: Duration,
    pub floor_rows: u64,
    /// With `--breakdown`: rootline and the floor on each schema variant.
    pub breakdown: Vec<VariantRun>,
}

/// rootline's ingest and the floor on one [`FloorVariant`] of the schema.
#[derive(Debug, Clone)]
pub struct VariantRun {
    pub variant: FloorVariant,
    pub rootline: Duration,
    pub appended: u64,
    pub floor: Duration,
    pub floor_rows: u64,
}

/// The options of `bench ingest` (see [`BenchCommand::Ingest`]).
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    pub records: u64,
    pub seed: u64,
    pub keep: bool,
    pub pad_kib: usize,
    pub check: bool,
    pub breakdown: bool,
}

/// A change to the store's schema under which `--breakdown` times rootline and the floor
/// again, to show what each part of the append costs. Applied by SQL to a throwaway
/// bench store right after its migrations; never to a real store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorVariant {
    /// The `events_insert_guard` trigger dropped: the id-tail index is still maintained,
    /// but no row is checked against it (and an explicit seq is no longer refused).
    NoGuardTrigger,
    /// The guard trigger and the id-tail index dropped: no idempotency at all.
    NoIdempotency,
    /// The guard trigger, the id-tail index and the time index replaced by one unique
    /// index (event_time, natural_id, source), appended at its time-ordered right edge:
    /// idempotency only among events with the same time, and a duplicate would fail
    /// its batch (rootline binds no INSERT OR IGNORE); the bench's rows are all distinct.
    TimeKeyedUnique,
}

impl FloorVariant {
    pub const ALL: [FloorVariant; 3] = [
        FloorVariant::NoGuardTrigger,
        FloorVariant::NoIdempotency,
        FloorVariant::TimeKeyedUnique,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FloorVariant::NoGuardTrigger => "no guard trigger",
            FloorVariant::NoIdempotency => "no idempotency",
            FloorVariant::TimeKeyedUnique => "time-keyed unique",
        }
    }

    /// The statements that turn a freshly migrated store into this variant.
    pub fn sql(self) -> &'static [&'static str] {
        match self {
            FloorVariant::NoGuardTrigger => &["DROP TRIGGER events_insert_guard"],
            FloorVariant::NoIdempotency => &[
                "DROP TRIGGER events_insert_guard",
                "DROP INDEX events_id_tail",
            ],
            FloorVariant::TimeKeyedUnique => &[
                "DROP TRIGGER events_insert_guard",
                "DROP INDEX events_id_tail",
                "DROP INDEX events_time",
                "CREATE UNIQUE INDEX events_time_key ON events (event_time, natural_id, source)",
            ],
        }
    }

    /// Applies [`FloorVariant::sql`] to `store`.
    pub async fn apply(self, store: &SqliteStore) -> anyhow::Result<()> {
        for &sql in self.sql() {
            sqlx::query(sql)
                .execute(store.pool())
                .await
                .with_context(|| format!("bench variant {:?}: {sql}", self))?;
        }
        Ok(())
    }
}

impl IngestBench {
    pub fn rootline_rate(&self) -> f64 {
        rate(self.appended, self.rootline)
    }
    pub fn floor_rate(&self) -> f64 {
        rate(self.floor_rows, self.floor)
    }
    pub fn ratio(&self) -> f64 {
        let f = self.floor_rate();
        if f > 0.0 {
            self.rootline_rate() / f
        } else {
            0.0
        }
    }
    pub fn peak_mb(&self) -> Option<f64> {
        self.peak_rss_kib.map(|k| k as f64 / 1024.0)
    }
    pub fn targets_met(&self) -> bool {
        self.rootline_rate() >= TARGET_EVENTS_PER_SEC
            && self.ratio() >= TARGET_FLOOR_RATIO
            && self.peak_mb().is_some_and(|m| m < TARGET_PEAK_MB)
    }
}

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

/// Removes a SQLite database and its WAL side files, if present.
fn remove_db(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

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

async fn bench_ingest(opts: IngestOptions, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let b = measure_ingest(opts, dir).await?;
    print_report(&b, opts.seed);
    Ok(if opts.check && !b.targets_met() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs the phases of `bench ingest` (see the module doc) and returns their figures.
pub async fn measure_ingest(
    opts: IngestOptions,
    dir: Option<PathBuf>,
) -> anyhow::Result<IngestBench> {
    let IngestOptions {
        records,
        seed,
        keep,
        pad_kib,
        check: _,
        breakdown: with_breakdown,
    } = opts;
    if records == 0 {
        bail!("--records must be at least 1");
    }
    if pad_kib >= crate::ingest::reader::MAX_ITEM_BYTES / 1024 {
        bail!(
            "--pad-kib must stay below the {} KiB line limit",
            crate::ingest::reader::MAX_ITEM_BYTES / 1024
        );
    }
    let (dir, made_dir) = match dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("rootline-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let recording = dir.join("bench-cloudtrail.jsonl");
    let rootline_db = dir.join("bench-rootline.db");
    let floor_db = dir.join("bench-floor.db");

    eprintln!(
        "generating {records} CloudTrail-shaped records into {} ...",
        recording.display()
    );
    let t = Instant::now();
    let file_bytes = write_recording(&recording, records, seed, pad_kib * 1024)
        .with_context(|| format!("cannot write {}", recording.display()))?;
    let generate = t.elapsed();

    // Phase 1: rootline's full ingest.
    eprintln!("rootline ingest ...");
    let (rootline, summary, peak_rss_kib) =
        time_rootline(&rootline_db, &recording, records, None).await?;

    // Phase 2: the floor, same rows through the same driver and schema.
    eprintln!("floor: bare append ...");
    let (floor, floor_rows) = time_floor(&floor_db, &recording, None).await?;

    // Phase 3 (--breakdown): rootline and the floor once per schema variant.
    let mut breakdown = Vec::new();
    if with_breakdown {
        for variant in FloorVariant::ALL {
            eprintln!("rootline ingest, {} ...", variant.label());
            let (rootline, summary, _) =
                time_rootline(&rootline_db, &recording, records, Some(variant)).await?;
            eprintln!("floor, {} ...", variant.label());
            let (floor, floor_rows) = time_floor(&floor_db, &recording, Some(variant)).await?;
            breakdown.push(VariantRun {
                variant,
                rootline,
                appended: summary.appended,
                floor,
                floor_rows,
            });
        }
    }

    let b = IngestBench {
        records,
        file_bytes,
        generate,
        rootline,
        appended: summary.appended,
        rejected: summary.rejected_total(),
        peak_rss_kib,
        floor,
        floor_rows,
        breakdown,
    };

    if !keep {
        remove_db(&rootline_db)?;
        remove_db(&floor_db)?;
        std::fs::remove_file(&recording)?;
        if made_dir {
            let _ = std::fs::remove_dir(&dir);
        }
    }
    Ok(b)
}

/// A fresh store at `db` (the files of an earlier one removed), migrated, then changed to
/// `variant` if one is given.
async fn fresh_store(db: &Path, variant: Option<FloorVariant>) -> anyhow::Result<SqliteStore> {
    remove_db(db)?;
    let store = SqliteStore::open(&db.display().to_string()).await?;
    if let Some(v) = variant {
        v.apply(&store).await?;
    }
    Ok(store)
}

/// rootline's whole ingest of `recording` into a fresh store at `db`, timed. Fails unless
/// all `records` were appended. Returns the time, the ingest's summary and the peak memory
/// right after it.
async fn time_rootline(
    db: &Path,
    recording: &Path,
    records: u64,
    variant: Option<FloorVariant>,
) -> anyhow::Result<(Duration, ingest::IngestSummary, Option<u64>)> {
    let store = fresh_store(db, variant).await?;
    let t = Instant::now();
    let summary = ingest::ingest_files(&store, &[recording.to_path_buf()], false).await?;
    let took = t.elapsed();
    let peak = peak_rss_kib();
    store.close().await;
    if summary.appended != records {
        bail!(
            "rootline appended {} of {records} records ({} duplicates, {} rejected: {:?})",
            summary.appended,
            summary.duplicates,
            summary.rejected_total(),
            summary.rejections.first()
        );
    }
    Ok((took, summary, peak))
}

/// The floor ([`floor_append`] through `EventLog::append`) into a fresh store at `db`.
async fn time_floor(
    db: &Path,
    recording: &Path,
    variant: Option<FloorVariant>,
) -> anyhow::Result<(Duration, u64)> {
    let store = fresh_store(db, variant).await?;
    let out = floor_append(&store, recording).await?;
    store.close().await;
    Ok(out)
}

fn print_report(b: &IngestBench, seed: u64) {
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "input     {} CloudTrail-shaped records in one recording, {:.0} MiB ({} bytes/record on average), seed {seed}, generated in {:.1} s",
        b.records,
        mb(b.file_bytes),
        b.file_bytes / b.records.max(1),
        b.generate.as_secs_f64()
    );
    println!(
        "rootline  {:>12} events/s  {} events in {:.2} s (read, parse, normalize, idempotent append with checkpoints; {} rejected)",
        fmt_rate(b.rootline_rate()),
        b.appended,
        b.rootline.as_secs_f64(),
        b.rejected
    );
    match b.peak_mb() {
        Some(m) => println!("peak mem  {m:>12.1} MB  (VmHWM after the rootline phase)"),
        None => println!("peak mem  unavailable (no /proc/self/status)"),
    }
    println!(
        "floor     {:>12} events/s  {} rows in {:.2} s (EventLog::append only, rows normalized outside the timer)",
        fmt_rate(b.floor_rate()),
        b.floor_rows,
        b.floor.as_secs_f64()
    );
    println!("ratio     {:>11.1} %  rootline / floor", b.ratio() * 100.0);
    if !b.breakdown.is_empty() {
        println!("breakdown rootline and the floor again on fresh stores with one part of the schema changed:");
    }
    let per_event = |t: Duration, n: u64| t.as_secs_f64() / n.max(1) as f64 * 1e6;
    for r in &b.breakdown {
        println!(
            "  {:<18} rootline {:>8} events/s ({:.2} s)  floor {:>8} events/s ({:.2} s, {:+.2} us/event against the floor)",
            r.variant.label(),
            fmt_rate(rate(r.appended, r.rootline)),
            r.rootline.as_secs_f64(),
            fmt_rate(rate(r.floor_rows, r.floor)),
            r.floor.as_secs_f64(),
            per_event(r.floor, r.floor_rows) - per_event(b.floor, b.floor_rows),
        );
    }
    let mark = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets   >= {} events/s: {}; >= {:.0}% of floor: {}; peak < {:.0} MB: {}",
        fmt_rate(TARGET_EVENTS_PER_SEC),
        mark(b.rootline_rate() >= TARGET_EVENTS_PER_SEC),
        TARGET_FLOOR_RATIO * 100.0,
        mark(b.ratio() >= TARGET_FLOOR_RATIO),
        TARGET_PEAK_MB,
        mark(b.peak_mb().is_some_and(|m| m < TARGET_PEAK_MB)),
    );
}

/// Appends the recording's rows in ingest-sized batches; normalizing happens outside
/// the timer, and only the appends are timed. Returns the time and the rows appended.
async fn floor_append(store: &SqliteStore, recording: &Path) -> anyhow::Result<(Duration, u64)> {
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(recording)?);
    let mut line = Vec::new();
    let mut batch: Vec<NewEvent> = Vec::with_capacity(ingest::BATCH);
    let mut timed = Duration::ZERO;
    let mut rows = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n > 0 {
            let ev = ingest::recording_line(line.trim_ascii_end())
                .map_err(|(_, reason)| anyhow::anyhow!("generated line is invalid: {reason}"))?;
            batch.push(ev);
        }
        if batch.len() >= ingest::BATCH || (n == 0 && !batch.is_empty()) {
            let t = Instant::now();
            rows += store.append(&batch, None).await?.appended;
            timed += t.elapsed();
            batch.clear();
        }
        if n == 0 {
            break;
        }
    }
    Ok((timed, rows))
}

// ------------------------------------------------------------------ the generator

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn uuid(&mut self, out: &mut String) {
        let a = self.next();
        let b = self.next();
        let _ = write!(
            out,
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48 & 0x3fff),
            b & 0xffff_ffff_ffff
        );
    }
    fn hex(&mut self, out: &mut String, digits: usize) {
        let v = self.next();
        let _ = write!(
            out,
            "{:0width$x}",
            v >> (64 - 4 * digits.min(16)),
            width = digits.min(16)
        );
    }
}

const ACCOUNT: &str = "123456789012";
const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-1",
    "us-east-1",
    "us-west-2",
    "eu-west-1",
];
const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const ROLES: &[&str] = &[
    "deploy-pipeline",
    "platform-admin",
    "ecs-task-api",
    "lambda-orders-role",
    "readonly-audit",
    "karpenter-node",
    "ops-oncall",
    "terraform-ci",
];
const SERVICES: &[&str] = &[
    "api", "web", "orders", "payments", "search", "auth", "cart", "worker",
];
const CLUSTERS: &[&str] = &["prod", "staging"];
const FUNCTIONS: &[&str] = &[
    "orders-fn",
    "thumbnails",
    "auth-authorizer",
    "billing-sync",
    "etl-nightly",
    "webhook-relay",
];
const TABLES: &[&str] = &["orders", "sessions", "carts", "inventory"];
const BUCKETS: &[&str] = &["prod-assets", "prod-logs", "data-lake-raw", "backups-eu"];
const DBS: &[&str] = &["orders-db", "auth-db", "reporting-db"];
const ASGS: &[&str] = &["web-asg", "worker-asg", "batch-asg"];
const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.151.1",
    "console.amazonaws.com",
    "aws-sdk-java/2.25.16 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/adaptive",
    "ecs.amazonaws.com",
    "autoscaling.amazonaws.com",
];
const ERRORS: &[(&str, &str)] = &[
    ("AccessDenied", "User is not authorized to perform this operation because no identity-based policy allows the action"),
    ("Client.UnauthorizedOperation", "You are not authorized to perform this operation."),
    ("ThrottlingException", "Rate exceeded"),
    ("ValidationException", "1 validation error detected: Value at 'desiredCount' failed to satisfy constraint"),
    ("ResourceNotFoundException", "The requested resource was not found"),
];

/// Read-only operations (about 70% of the mix) and mutating ones.
const READS: &[Op] = &[
    Op::DescribeInstances,
    Op::DescribeSecurityGroups,
    Op::DescribeTargetHealth,
    Op::DescribeServices,
    Op::GetFunction,
    Op::AssumeRole,
    Op::GetObject,
    Op::DescribeDBInstances,
    Op::DescribeAutoScalingGroups,
    Op::DescribeAlarms,
    Op::Decrypt,
    Op::DescribeTable,
    Op::ListTasks,
    Op::GetRole,
];
const WRITES: &[Op] = &[
    Op::AuthorizeSecurityGroupIngress,
    Op::RevokeSecurityGroupIngress,
    Op::RunInstances,
    Op::TerminateInstances,
    Op::RegisterTargets,
    Op::DeregisterTargets,
    Op::ModifyListener,
    Op::UpdateService,
    Op::UpdateFunctionConfiguration,
    Op::AttachRolePolicy,
    Op::DetachRolePolicy,
    Op::ModifyDBInstance,
    Op::UpdateAutoScalingGroup,
    Op::PutMetricAlarm,
    Op::PutObject,
    Op::UpdateTable,
];

#[derive(Debug, Clone, Copy)]
enum Op {
    DescribeInstances,
    DescribeSecurityGroups,
    DescribeTargetHealth,
    DescribeServices,
    GetFunction,
    AssumeRole,
    GetObject,
    DescribeDBInstances,
    DescribeAutoScalingGroups,
    DescribeAlarms,
    Decrypt,
    DescribeTable,
    ListTasks,
    GetRole,
    AuthorizeSecurityGroupIngress,
    RevokeSecurityGroupIngress,
    RunInstances,
    TerminateInstances,
    RegisterTargets,
    DeregisterTargets,
    ModifyListener,
    UpdateService,
    UpdateFunctionConfiguration,
    AttachRolePolicy,
    DetachRolePolicy,
    ModifyDBInstance,
    UpdateAutoScalingGroup,
    PutMetricAlarm,
    PutObject,
    UpdateTable,
}

impl Op {
    fn source_and_name(self) -> (&'static str, &'static str) {
        use Op::*;
        match self {
            DescribeInstances => ("ec2", "DescribeInstances"),
            DescribeSecurityGroups => ("ec2", "DescribeSecurityGroups"),
            DescribeTargetHealth => ("elasticloadbalancing", "DescribeTargetHealth"),
            DescribeServices => ("ecs", "DescribeServices"),
            GetFunction => ("lambda", "GetFunction20150331v2"),
            AssumeRole => ("sts", "AssumeRole"),
            GetObject => ("s3", "GetObject"),
            DescribeDBInstances => ("rds", "DescribeDBInstances"),
            DescribeAutoScalingGroups => ("autoscaling", "DescribeAutoScalingGroups"),
            DescribeAlarms => ("monitoring", "DescribeAlarms"),
            Decrypt => ("kms", "Decrypt"),
            DescribeTable => ("dynamodb", "DescribeTable"),
            ListTasks => ("ecs", "ListTasks"),
            GetRole => ("iam", "GetRole"),
            AuthorizeSecurityGroupIngress => ("ec2", "AuthorizeSecurityGroupIngress"),
            RevokeSecurityGroupIngress => ("ec2", "RevokeSecurityGroupIngress"),
            RunInstances => ("ec2", "RunInstances"),
            TerminateInstances => ("ec2", "TerminateInstances"),
            RegisterTargets => ("elasticloadbalancing", "RegisterTargets"),
            DeregisterTargets => ("elasticloadbalancing", "DeregisterTargets"),
            ModifyListener => ("elasticloadbalancing", "ModifyListener"),
            UpdateService => ("ecs", "UpdateService"),
            UpdateFunctionConfiguration => ("lambda", "UpdateFunctionConfiguration20150331v2"),
            AttachRolePolicy => ("iam", "AttachRolePolicy"),
            DetachRolePolicy => ("iam", "DetachRolePolicy"),
            ModifyDBInstance => ("rds", "ModifyDBInstance"),
            UpdateAutoScalingGroup => ("autoscaling", "UpdateAutoScalingGroup"),
            PutMetricAlarm => ("monitoring", "PutMetricAlarm"),
            PutObject => ("s3", "PutObject"),
            UpdateTable => ("dynamodb", "UpdateTable"),
        }
    }
}

/// The simulated fleet: ids that recur across records, as in a real account.
struct Fleet {
    sgs: Vec<String>,
    instances: Vec<String>,
    lb_hashes: Vec<String>,
    tg_hashes: Vec<String>,
}

impl Fleet {
    fn new(rng: &mut Rng) -> Fleet {
        let ids = |rng: &mut Rng, prefix: &str, n: usize, digits: usize| -> Vec<String> {
            (0..n)
                .map(|_| {
                    let mut s = prefix.to_string();
                    rng.hex(&mut s, digits);
                    s
                })
                .collect()
        };
        Fleet {
            sgs: ids(rng, "sg-", 60, 17),
            instances: ids(rng, "i-", 800, 17),
            lb_hashes: ids(rng, "", SERVICES.len(), 16),
            tg_hashes: ids(rng, "", SERVICES.len(), 16),
        }
    }
}

/// 2025-10-01T00:00:00Z: the generated month starts here (fixed, never the clock).
const BASE_MS: i64 = 1_759_276_800_000;

fn fmt_ts(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// Writes `n` recording lines, each padded with `pad` bytes of policy document; returns
/// the file size in bytes.
pub fn write_recording(path: &Path, n: u64, seed: u64, pad: usize) -> std::io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut gen = Generator::new(seed);
    gen.pad = pad;
    let mut line = String::with_capacity(4096);
    let mut bytes = 0u64;
    for i in 0..n {
        line.clear();
        gen.line(i, &mut line);
        line.push('\n');
        w.write_all(line.as_bytes())?;
        bytes += line.len() as u64;
    }
    w.flush()?;
    Ok(bytes)
}

/// Produces recording lines of CloudTrail records, deterministically from a seed.
pub struct Generator {
    rng: Rng,
    fleet: Fleet,
    /// Bytes of policy document added to every record (0: none).
    pub pad: usize,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        let mut rng = Rng(seed ^ 0x005E_ED0F_2007_1AB5);
        let fleet = Fleet::new(&mut rng);
        Generator { rng, fleet, pad: 0 }
    }

    /// Appends record `i` as one recording line (no newline) to `out`.
    pub fn line(&mut self, i: u64, out: &mut String) {
        let rng = &mut self.rng;
        // About 35 records per second of account activity, slightly out of order.
        let event_ms = BASE_MS + (i as i64) * 28 + rng.below(2_000) as i64;
        let recorded_ms = event_ms + 240_000 + rng.below(660_000) as i64;
        let read_only = rng.chance(700);
        let op = if read_only {
            *rng.pick(READS)
        } else {
            *rng.pick(WRITES)
        };
        let (svc, name) = op.source_and_name();
        let region = *rng.pick(REGIONS);
        let error = if rng.chance(60) {
            Some(*rng.pick(ERRORS))
        } else {
            None
        };

        let _ = write!(
            out,
            "{{\"source\":\"cloudtrail\",\"recorded_at\":\"{}\",\"payload\":{{\"eventVersion\":\"1.09\",",
            fmt_ts(recorded_ms)
        );
        self.user_identity(out);
        let rng = &mut self.rng;
        let _ = write!(
            out,
            ",\"eventTime\":\"{}\",\"eventSource\":\"{svc}.amazonaws.com\",\"eventName\":\"{name}\",\"awsRegion\":\"{region}\",\"sourceIPAddress\":\"{}.{}.{}.{}\",\"userAgent\":\"{}\"",
            fmt_ts(event_ms),
            rng.below(223) + 1,
            rng.below(256),
            rng.below(256),
            rng.below(254) + 1,
            rng.pick(USER_AGENTS)
        );
        if let Some((code, msg)) = error {
            let _ = write!(out, ",\"errorCode\":\"{code}\",\"errorMessage\":\"{msg}\"");
        }
        out.push_str(",\"requestParameters\":");
        self.request(op, region, out);
        out.push_str(",\"responseElements\":");
        if error.is_some() || read_only {
            out.push_str("null");
        } else {
            self.response(op, out);
        }
        let rng = &mut self.rng;
        if self.pad > 0 {
            // A large policy document, as PutBucketPolicy or CreatePolicy carry.
            out.push_str(",\"additionalEventData\":{\"policyDocument\":\"");
            const WORDS: [&str; 4] = [
                "s3:GetObject ",
                "Allow ",
                "arn:aws:s3:::bucket/* ",
                "Principal ",
            ];
            let start = out.len();
            // Cycled, not drawn: the padding leaves the record's other fields as they are.
            for w in WORDS.iter().cycle() {
                if out.len() - start >= self.pad {
                    break;
                }
                out.push_str(w);
            }
            out.truncate(start + self.pad);
            out.push_str("\"}");
        }
        out.push_str(",\"requestID\":\"");
        rng.uuid(out);
        out.push_str("\",\"eventID\":\"");
        rng.uuid(out);
        let _ = write!(
            out,
            "\",\"readOnly\":{read_only},\"eventType\":\"AwsApiCall\",\"managementEvent\":{},\"recipientAccountId\":\"{ACCOUNT}\",\"eventCategory\":\"{}\",\"tlsDetails\":{{\"tlsVersion\":\"TLSv1.3\",\"cipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"clientProvidedHostHeader\":\"{svc}.{region}.amazonaws.com\"}}}}}}",
            !matches!(op, Op::GetObject | Op::PutObject),
            if matches!(op, Op::GetObject | Op::PutObject) { "Data" } else { "Management" },
        );
    }

    fn user_identity(&mut self, out: &mut String) {
        let rng = &mut self.rng;
        let mut principal = String::from("AROA");
        rng.hex(&mut principal, 16);
        let principal = principal.to_ascii_uppercase();
        let mut key = String::from("ASIA");
        rng.hex(&mut key, 16);
        let key = key.to_ascii_uppercase();
        match rng.below(10) {
            0..=5 => {
                let role = rng.pick(ROLES);
                let session = rng.pick(USERS);
                let _ = write!(
                    out,
                    "\"userIdentity\":{{\"type\":\"AssumedRole\",\"principalId\":\"{principal}:{session}\",\"arn\":\"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}\",\"accountId\":\"{ACCOUNT}\",\"accessKeyId\":\"{key}\",\"sessionContext\":{{\"sessionIssuer\":{{\"type\":\"Role\",\"principalId\":\"{principal}\",\"arn\":\"arn:aws:iam::{ACCOUNT}:role/{role}\",\"accountId\":\"{ACCOUNT}\",\"userName\":\"{role}\"}},\"attributes\":{{\"creationDate\":\"2025-10-01T00:00:00Z\",\"mfaAuthenticated\":\"false\"}}}}}}"
                );
            }
            6..=7 => {
                let user = rng.pick(USERS);
                let _ = write!(
                    out,
                    "\"userIdentity\":{{\"type\":\"IAMUser\",\"principalId\":\"{principal}\",\"arn\":\"arn:aws:iam::{ACCOUNT}:user/{user}\",\"accountId\":\"{ACCOUNT}\",\"accessKeyId\":\"{key}\",\"userName\":\"{user}\"}}"
                );
            }
            8 => {
                let svc = rng.pick(&[
                    "ecs.amazonaws.com",
                    "autoscaling.amazonaws.com",
                    "elasticloadbalancing.amazonaws.com",
                ]);
                let _ = write!(
                    out,
                    "\"userIdentity\":{{\"type\":\"AWSService\",\"invokedBy\":\"{svc}\"}}"
                );
            }
            _ => {
                let _ = write!(
                    out,
                    "\"userIdentity\":{{\"type\":\"Root\",\"principalId\":\"{ACCOUNT}\",\"arn\":\"arn:aws:iam::{ACCOUNT}:root\",\"accountId\":\"{ACCOUNT}\",\"accessKeyId\":\"{key}\"}}"
                );
            }
        }
    }

    fn lb(&mut self) -> (usize, &'static str) {
        let i = self.rng.below(SERVICES.len() as u64) as usize;
        (i, SERVICES[i])
    }

    fn request(&mut self, op: Op, region: &str, out: &mut String) {
        use Op::*;
        let f = &self.fleet;
        let rng = &mut self.rng;
        match op {
            DescribeInstances => {
                out.push_str("{\"instancesSet\":{\"items\":[");
                for k in 0..(1 + rng.below(3)) {
                    if k > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{{\"instanceId\":\"{}\"}}", rng.pick(&f.instances));
                }
                out.push_str("]},\"filterSet\":{}}");
            }
            DescribeSecurityGroups => {
                let _ = write!(
                    out,
                    "{{\"securityGroupSet\":{{}},\"securityGroupIdSet\":{{\"items\":[{{\"groupId\":\"{}\"}}]}},\"filterSet\":{{}}}}",
                    rng.pick(&f.sgs)
                );
            }
            DescribeTargetHealth | RegisterTargets | DeregisterTargets => {
                let (i, name) = self.lb();
                let f = &self.fleet;
                let rng = &mut self.rng;
                let _ = write!(
                    out,
                    "{{\"targetGroupArn\":\"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/{name}-tg/{}\"",
                    f.tg_hashes[i]
                );
                if !matches!(op, DescribeTargetHealth) {
                    out.push_str(",\"targets\":[");
                    for k in 0..(1 + rng.below(3)) {
                        if k > 0 {
                            out.push(',');
                        }
                        let _ = write!(
                            out,
                            "{{\"id\":\"{}\",\"port\":8080}}",
                            rng.pick(&f.instances)
                        );
                    }
                    out.push(']');
                }
                out.push('}');
            }
            DescribeServices => {
                let _ = write!(
                    out,
                    "{{\"cluster\":\"{}\",\"services\":[\"{}\"],\"include\":[\"TAGS\"]}}",
                    rng.pick(CLUSTERS),
                    rng.pick(SERVICES)
                );
            }
            ListTasks => {
                let _ = write!(
                    out,
                    "{{\"cluster\":\"{}\",\"serviceName\":\"{}\",\"desiredStatus\":\"RUNNING\"}}",
                    rng.pick(CLUSTERS),
                    rng.pick(SERVICES)
                );
            }
            GetFunction => {
                let _ = write!(out, "{{\"functionName\":\"{}\"}}", rng.pick(FUNCTIONS));
            }
            AssumeRole => {
                let _ = write!(
                    out,
                    "{{\"roleArn\":\"arn:aws:iam::{ACCOUNT}:role/{}\",\"roleSessionName\":\"{}\",\"durationSeconds\":3600}}",
                    rng.pick(ROLES),
                    rng.pick(USERS)
                );
            }
            GetObject | PutObject => {
                let _ = write!(
                    out,
                    "{{\"bucketName\":\"{}\",\"Host\":\"s3.{region}.amazonaws.com\",\"key\":\"data/2025/10/part-{:05}.parquet\"}}",
                    rng.pick(BUCKETS),
                    rng.below(100_000)
                );
            }
            DescribeDBInstances => {
                let _ = write!(out, "{{\"dBInstanceIdentifier\":\"{}\"}}", rng.pick(DBS));
            }
            ModifyDBInstance => {
                let _ = write!(
                    out,
                    "{{\"dBInstanceIdentifier\":\"{}\",\"dBInstanceClass\":\"db.r6g.{}\",\"applyImmediately\":true,\"allocatedStorage\":{}}}",
                    rng.pick(DBS),
                    rng.pick(&["large", "xlarge", "2xlarge"]),
                    100 + rng.below(900)
                );
            }
            DescribeAutoScalingGroups => {
                let _ = write!(
                    out,
                    "{{\"autoScalingGroupNames\":[\"{}\"]}}",
                    rng.pick(ASGS)
                );
            }
            UpdateAutoScalingGroup => {
                let _ = write!(
                    out,
                    "{{\"autoScalingGroupName\":\"{}\",\"minSize\":{},\"maxSize\":{},\"desiredCapacity\":{}}}",
                    rng.pick(ASGS),
                    rng.below(3),
                    10 + rng.below(10),
                    2 + rng.below(8)
                );
            }
            DescribeAlarms => {
                let _ = write!(
                    out,
                    "{{\"alarmNames\":[\"{}-5xx\",\"{}-latency-p99\"],\"maxRecords\":100}}",
                    rng.pick(SERVICES),
                    rng.pick(SERVICES)
                );
            }
            PutMetricAlarm => {
                let (i, name) = self.lb();
                let f = &self.fleet;
                let rng = &mut self.rng;
                let _ = write!(
                    out,
                    "{{\"alarmName\":\"{name}-5xx\",\"metricName\":\"HTTPCode_Target_5XX_Count\",\"namespace\":\"AWS/ApplicationELB\",\"statistic\":\"Sum\",\"period\":60,\"evaluationPeriods\":{},\"threshold\":{}.0,\"comparisonOperator\":\"GreaterThanThreshold\",\"dimensions\":[{{\"name\":\"LoadBalancer\",\"value\":\"app/{name}/{}\"}}],\"alarmActions\":[\"arn:aws:sns:{region}:{ACCOUNT}:oncall\"]}}",
                    1 + rng.below(5),
                    5 + rng.below(50),
                    f.lb_hashes[i]
                );
            }
            Decrypt => {
                let mut key = String::new();
                rng.uuid(&mut key);
                let _ = write!(
                    out,
                    "{{\"keyId\":\"arn:aws:kms:{region}:{ACCOUNT}:key/{key}\",\"encryptionAlgorithm\":\"SYMMETRIC_DEFAULT\",\"encryptionContext\":{{\"aws:lambda:FunctionArn\":\"arn:aws:lambda:{region}:{ACCOUNT}:function:{}\"}}}}",
                    rng.pick(FUNCTIONS)
                );
            }
            DescribeTable => {
                let _ = write!(out, "{{\"tableName\":\"{}\"}}", rng.pick(TABLES));
            }
            UpdateTable => {
                let _ = write!(
                    out,
                    "{{\"tableName\":\"{}\",\"billingMode\":\"PROVISIONED\",\"provisionedThroughput\":{{\"readCapacityUnits\":{},\"writeCapacityUnits\":{}}}}}",
                    rng.pick(TABLES),
                    5 * (1 + rng.below(100)),
                    5 * (1 + rng.below(100))
                );
            }
            GetRole => {
                let _ = write!(out, "{{\"roleName\":\"{}\"}}", rng.pick(ROLES));
            }
            AttachRolePolicy | DetachRolePolicy => {
                let _ = write!(
                    out,
                    "{{\"roleName\":\"{}\",\"policyArn\":\"arn:aws:iam::aws:policy/{}\"}}",
                    rng.pick(ROLES),
                    rng.pick(&[
                        "AmazonS3ReadOnlyAccess",
                        "AmazonDynamoDBFullAccess",
                        "CloudWatchAgentServerPolicy",
                        "SecretsManagerReadWrite"
                    ])
                );
            }
            AuthorizeSecurityGroupIngress | RevokeSecurityGroupIngress => {
                let port = *rng.pick(&[22u16, 80, 443, 5432, 6379, 8080]);
                let _ = write!(
                    out,
                    "{{\"groupId\":\"{}\",\"ipPermissions\":{{\"items\":[{{\"ipProtocol\":\"tcp\",\"fromPort\":{port},\"toPort\":{port},\"groups\":{{\"items\":[{{\"groupId\":\"{}\"}}]}},\"ipRanges\":{{\"items\":[{{\"cidrIp\":\"{}\"}}]}},\"ipv6Ranges\":{{}},\"prefixListIds\":{{}}}}]}}}}",
                    rng.pick(&f.sgs),
                    rng.pick(&f.sgs),
                    rng.pick(&["0.0.0.0/0", "10.0.0.0/8", "172.16.0.0/12"])
                );
            }
            RunInstances => {
                let _ = write!(
                    out,
                    "{{\"instancesSet\":{{\"items\":[{{\"imageId\":\"ami-0{:016x}\",\"minCount\":1,\"maxCount\":1}}]}},\"instanceType\":\"{}\",\"groupSet\":{{\"items\":[{{\"groupId\":\"{}\"}}]}},\"subnetId\":\"subnet-0{:016x}\",\"monitoring\":{{\"enabled\":false}},\"disableApiTermination\":false}}",
                    rng.below(1 << 40),
                    rng.pick(&["m6i.large", "c7g.xlarge", "t3.medium"]),
                    rng.pick(&f.sgs),
                    rng.below(1 << 40)
                );
            }
            TerminateInstances => {
                let _ = write!(
                    out,
                    "{{\"instancesSet\":{{\"items\":[{{\"instanceId\":\"{}\"}}]}}}}",
                    rng.pick(&f.instances)
                );
            }
            ModifyListener => {
                let (i, name) = self.lb();
                let f = &self.fleet;
                let rng = &mut self.rng;
                let _ = write!(
                    out,
                    "{{\"listenerArn\":\"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:listener/app/{name}/{}/{:016x}\",\"port\":443,\"protocol\":\"HTTPS\",\"defaultActions\":[{{\"type\":\"forward\",\"targetGroupArn\":\"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/{name}-tg/{}\"}}]}}",
                    f.lb_hashes[i],
                    rng.next(),
                    f.tg_hashes[i]
                );
            }
            UpdateService => {
                let svc = rng.pick(SERVICES);
                let _ = write!(
                    out,
                    "{{\"cluster\":\"{}\",\"service\":\"{svc}\",\"desiredCount\":{},\"taskDefinition\":\"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{svc}:{}\",\"forceNewDeployment\":false}}",
                    rng.pick(CLUSTERS),
                    1 + rng.below(12),
                    1 + rng.below(400)
                );
            }
            UpdateFunctionConfiguration => {
                let _ = write!(
                    out,
                    "{{\"functionName\":\"arn:aws:lambda:{region}:{ACCOUNT}:function:{}\",\"memorySize\":{},\"timeout\":{},\"environment\":{{}}}}",
                    rng.pick(FUNCTIONS),
                    128 * (1 + rng.below(16)),
                    3 + rng.below(60)
                );
            }
        }
    }

    fn response(&mut self, op: Op, out: &mut String) {
        use Op::*;
        let rng = &mut self.rng;
        match op {
            RunInstances => {
                let _ = write!(
                    out,
                    "{{\"requestId\":\"{:016x}\",\"reservationId\":\"r-0{:016x}\",\"ownerId\":\"{ACCOUNT}\",\"instancesSet\":{{\"items\":[{{\"instanceId\":\"i-0{:016x}\",\"instanceState\":{{\"code\":0,\"name\":\"pending\"}},\"privateIpAddress\":\"10.0.{}.{}\"}}]}}}}",
                    rng.next(),
                    rng.below(1 << 60),
                    rng.below(1 << 60),
                    rng.below(256),
                    rng.below(256)
                );
            }
            UpdateService => {
                let _ = write!(
                    out,
                    "{{\"service\":{{\"status\":\"ACTIVE\",\"desiredCount\":{},\"runningCount\":{},\"launchType\":\"FARGATE\",\"deployments\":[{{\"id\":\"ecs-svc/{:019}\",\"status\":\"PRIMARY\",\"rolloutState\":\"IN_PROGRESS\"}}]}}}}",
                    1 + rng.below(12),
                    rng.below(12),
                    rng.below(10_000_000_000_000_000_000)
                );
            }
            _ => {
                out.push_str("{\"requestId\":\"");
                rng.uuid(out);
                out.push_str("\",\"_return\":true}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn padded_records_carry_the_padding_and_still_normalize() {
        let (mut plain, mut padded) = (String::new(), String::new());
        Generator::new(3).line(0, &mut plain);
        let mut g = Generator::new(3);
        g.pad = 300_000;
        g.line(0, &mut padded);
        assert_eq!(
            padded.len(),
            plain.len() + 300_000 + r#","additionalEventData":{"policyDocument":""}"#.len()
        );
        let a = ingest::recording_line(plain.as_bytes()).expect("plain line normalizes");
        let b = ingest::recording_line(padded.as_bytes()).expect("padded line normalizes");
        assert_eq!(a.natural_id, b.natural_id);
        assert_eq!(
            b.payload.len(),
            a.payload.len() + padded.len() - plain.len()
        );
    }

    #[test]
    fn generated_records_are_valid_realistic_and_deterministic() {
        let mut g = Generator::new(7);
        let mut ids = std::collections::HashSet::new();
        let (mut ro, mut errors, mut bytes, mut with_sg, mut with_instance, mut with_arn) =
            (0, 0, 0usize, 0, 0, 0);
        let n = 5_000;
        let mut names = std::collections::HashSet::new();
        for i in 0..n {
            let mut line = String::new();
            g.line(i, &mut line);
            bytes += line.len();
            let ev = ingest::recording_line(line.as_bytes()).expect("generated line normalizes");
            assert_eq!(ev.kind, Kind::Change);
            assert!(ids.insert(ev.natural_id.clone()), "duplicate id");
            names.insert(ev.name.clone());
            ro += ev.read_only as u32;
            errors += ev.error_code.is_some() as u32;
            with_sg += ev.resources.iter().any(|r| r.starts_with("sg/sg-")) as u32;
            with_instance += ev.resources.iter().any(|r| r.starts_with("instance/i-")) as u32;
            with_arn += line.contains("\"arn:aws:") as u32;
            assert!(ev.actor.is_some());
        }
        let avg = bytes / n as usize;
        assert!((1000..=2000).contains(&avg), "average line {avg} bytes");
        let ro_share = ro as f64 / n as f64;
        assert!(
            (0.66..0.74).contains(&ro_share),
            "read-only share {ro_share}"
        );
        assert!(
            errors > n as u32 / 40 && errors < n as u32 / 8,
            "errors {errors}"
        );
        assert!(with_sg > 100 && with_instance > 100 && with_arn > n as u32 / 2);
        assert!(names.len() >= 25, "{} event names", names.len());

        let (mut a, mut b) = (String::new(), String::new());
        Generator::new(7).line(0, &mut a);
        Generator::new(7).line(0, &mut b);
        assert_eq!(a, b);
        let mut c = String::new();
        Generator::new(8).line(0, &mut c);
        assert_ne!(a, c);
    }

    /// Names of the triggers and indexes on `events` in `store`.
    async fn events_schema(store: &SqliteStore) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE tbl_name = 'events' \
             AND type IN ('trigger', 'index') ORDER BY name",
        )
        .fetch_all(store.pool())
        .await
        .expect("schema")
    }

    #[tokio::test]
    async fn breakdown_variants_change_what_they_say_and_keep_the_append_only_triggers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut g = Generator::new(11);
        let batch: Vec<NewEvent> = (0..50)
            .map(|i| {
                let mut line = String::new();
                g.line(i, &mut line);
                ingest::recording_line(line.as_bytes()).expect("generated line normalizes")
            })
            .collect();

        // As migrated: the second append of the same rows is all duplicates.
        let path = dir.path().join("migrated.db").display().to_string();
        let store = SqliteStore::open(&path).await.expect("open");
        let migrated = events_schema(&store).await;
        for name in ["events_id_tail", "events_insert_guard", "events_time"] {
            assert!(migrated.iter().any(|n| n == name), "{name} in {migrated:?}");
        }
        assert_eq!(
            store.append(&batch, None).await.expect("append").appended,
            50
        );
        let again = store.append(&batch, None).await.expect("append again");
        assert_eq!((again.appended, again.duplicates), (0, 50));
        store.close().await;

        for variant in FloorVariant::ALL {
            let path = dir
                .path()
                .join(format!("{variant:?}.db"))
                .display()
                .to_string();
            let store = SqliteStore::open(&path).await.expect("open");
            variant.apply(&store).await.expect("variant applies");
            let schema = events_schema(&store).await;
            let has = |name: &str| schema.iter().any(|n| n == name);
            // Every variant keeps the append-only triggers.
            assert!(
                has("events_no_update") && has("events_no_delete"),
                "{schema:?}"
            );
            assert_eq!(
                store.append(&batch, None).await.expect("append").appended,
                50
            );
            let again = store.append(&batch, None).await;
            match variant {
                FloorVariant::NoGuardTrigger => {
                    assert!(has("events_id_tail") && has("events_time"), "{schema:?}");
                    assert!(!has("events_insert_guard"), "{schema:?}");
                    assert_eq!(again.expect("append again").appended, 50);
                }
                FloorVariant::NoIdempotency => {
                    assert!(has("events_time"), "{schema:?}");
                    assert!(
                        !has("events_id_tail") && !has("events_insert_guard"),
                        "{schema:?}"
                    );
                    assert_eq!(again.expect("append again").appended, 50);
                }
                FloorVariant::TimeKeyedUnique => {
                    assert!(has("events_time_key"), "{schema:?}");
                    assert!(
                        !has("events_time")
                            && !has("events_id_tail")
                            && !has("events_insert_guard"),
                        "{schema:?}"
                    );
                    let err = again.expect_err("a duplicate violates the time-keyed index");
                    assert!(err.to_string().contains("UNIQUE"), "{err}");
                }
            }
            store.close().await;
        }
    }

    #[tokio::test]
    async fn breakdown_runs_rootline_and_the_floor_on_every_variant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = IngestOptions {
            records: 700,
            seed: 5,
            keep: true,
            pad_kib: 0,
            check: false,
            breakdown: true,
        };
        let b = measure_ingest(opts, Some(dir.path().to_path_buf()))
            .await
            .expect("bench runs");
        assert_eq!((b.appended, b.floor_rows), (700, 700));
        let variants: Vec<FloorVariant> = b.breakdown.iter().map(|r| r.variant).collect();
        assert_eq!(variants, FloorVariant::ALL);
        for r in &b.breakdown {
            assert_eq!((r.appended, r.floor_rows), (700, 700), "{r:?}");
        }
        // The last store written is the floor of the last variant, kept (--keep).
        let store = SqliteStore::open(&dir.path().join("bench-floor.db").display().to_string())
            .await
            .expect("open");
        assert!(events_schema(&store)
            .await
            .iter()
            .any(|n| n == "events_time_key"));
        store.close().await;
        // Without --breakdown there is none.
        let b = measure_ingest(
            IngestOptions {
                breakdown: false,
                keep: false,
                ..opts
            },
            Some(dir.path().join("plain")),
        )
        .await
        .expect("bench runs");
        assert!(b.breakdown.is_empty());
        assert!(!dir.path().join("plain").join("bench-rootline.db").exists());
    }

    #[test]
    fn rates_and_formatting() {
        assert_eq!(fmt_rate(1_234_567.4), "1,234,567");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(rate(10, Duration::from_secs(2)), 5.0);
        assert!(peak_rss_kib().is_some_and(|k| k > 0));
    }
}
