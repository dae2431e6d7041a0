//! `rootline bench ingest`: generates a recording of CloudTrail-shaped records
//! ([`super::gen::Generator`], no wall clock in the data), then measures in one run:
//!
//! - rootline: `ingest::ingest_files` of that file into a fresh file-backed store
//!   (reading, parsing, normalizing, idempotent batched appends with checkpoints);
//! - the floor: the same rows, normalized beforehand outside the timer, appended through
//!   the same driver and schema into another fresh file; only the appends are timed
//!   (`EventLog::append_moving`, the call ingest makes);
//!
//! With `--breakdown`, rootline and the floor run again on fresh stores whose schema was
//! changed by SQL ([`FloorVariant`]), to show what each part of the append costs.
//!
//! Peak memory (VmHWM) is read right after the rootline phase, before the floor.

use super::gen::Generator;
use super::{fmt_rate, peak_rss_kib, rate};
use crate::ingest;
use crate::model::NewEvent;
use crate::store::{drop_database, fresh_database, EventLog, PgStore, SqliteStore};
use anyhow::{bail, Context};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Targets of issue #2 on the 2-core reference machine, release build.
const TARGET_EVENTS_PER_SEC: f64 = 100_000.0;
/// The throughput target on PostgreSQL (issue 17).
const TARGET_POSTGRES_EVENTS_PER_SEC: f64 = 50_000.0;
const TARGET_FLOOR_RATIO: f64 = 0.5;
const TARGET_PEAK_MB: f64 = 300.0;

/// Results of one `bench ingest` run.
#[derive(Debug, Clone)]
pub struct IngestBench {
    /// Records generated.
    pub records: u64,
    /// Size of the generated recording.
    pub file_bytes: u64,
    /// Time to generate the recording.
    pub generate: Duration,
    /// Time of rootline's ingest.
    pub rootline: Duration,
    /// Events rootline appended.
    pub appended: u64,
    /// Lines rootline rejected.
    pub rejected: u64,
    /// Peak memory right after rootline's ingest (`None` off Linux).
    pub peak_rss_kib: Option<u64>,
    /// Time of the floor's appends.
    pub floor: Duration,
    /// Rows the floor appended.
    pub floor_rows: u64,
    /// With `--breakdown`: rootline and the floor on each schema variant.
    pub breakdown: Vec<VariantRun>,
}

/// rootline's ingest and the floor on one [`FloorVariant`] of the schema.
#[derive(Debug, Clone)]
pub struct VariantRun {
    /// The schema change.
    pub variant: FloorVariant,
    /// Time of rootline's ingest on it.
    pub rootline: Duration,
    /// Events rootline appended.
    pub appended: u64,
    /// Time of the floor's appends on it.
    pub floor: Duration,
    /// Rows the floor appended.
    pub floor_rows: u64,
}

/// The options of `bench ingest` (see [`BenchCommand::Ingest`]).
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// `--records`.
    pub records: u64,
    /// `--seed`.
    pub seed: u64,
    /// `--keep`.
    pub keep: bool,
    /// `--pad-kib`.
    pub pad_kib: usize,
    /// `--check`.
    pub check: bool,
    /// `--breakdown`.
    pub breakdown: bool,
}

/// A change to the store's schema under which `--breakdown` times rootline and the floor
/// again, to show what each part of the append costs. Applied by SQL to a throwaway
/// bench store right after its migrations; never to a real store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorVariant {
    /// The partial index of citeable natural ids (`events_cited_ids`) dropped: what
    /// lookups by natural id alone cost the append.
    NoCitedIndex,
    /// The unique key (event_time, natural_id, source) replaced by a plain time index:
    /// no idempotency at all, and a re-delivery is stored twice.
    NoIdempotency,
}

impl FloorVariant {
    /// Every variant, in the order `--breakdown` runs them.
    pub const ALL: [FloorVariant; 2] = [FloorVariant::NoCitedIndex, FloorVariant::NoIdempotency];

    /// The variant's name in the report.
    pub fn label(self) -> &'static str {
        match self {
            FloorVariant::NoCitedIndex => "no cited-id index",
            FloorVariant::NoIdempotency => "no idempotency",
        }
    }

    /// The statements that turn a freshly migrated store into this variant.
    pub fn sql(self) -> &'static [&'static str] {
        match self {
            FloorVariant::NoCitedIndex => &["DROP INDEX events_cited_ids"],
            FloorVariant::NoIdempotency => &[
                "DROP INDEX events_key",
                "CREATE INDEX events_time ON events (event_time)",
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
    /// rootline's events per second.
    pub fn rootline_rate(&self) -> f64 {
        rate(self.appended, self.rootline)
    }
    /// The floor's rows per second.
    pub fn floor_rate(&self) -> f64 {
        rate(self.floor_rows, self.floor)
    }
    /// rootline's rate over the floor's (0 when the floor has none).
    pub fn ratio(&self) -> f64 {
        let f = self.floor_rate();
        if f > 0.0 {
            self.rootline_rate() / f
        } else {
            0.0
        }
    }
    /// Peak memory in MB (`None` off Linux).
    pub fn peak_mb(&self) -> Option<f64> {
        self.peak_rss_kib.map(|k| k as f64 / 1024.0)
    }
    /// Whether every target of issue #2 was met.
    pub fn targets_met(&self) -> bool {
        self.rootline_rate() >= TARGET_EVENTS_PER_SEC
            && self.ratio() >= TARGET_FLOOR_RATIO
            && self.peak_mb().is_some_and(|m| m < TARGET_PEAK_MB)
    }
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

/// `rootline bench ingest`: runs [`measure_ingest`] and prints its report; exit status 2
/// with `--check` when a target is missed.
pub async fn bench_ingest(
    opts: IngestOptions,
    dir: Option<PathBuf>,
    postgres: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let b = measure_ingest(opts, dir, postgres).await?;
    print_report(&b, opts.seed, postgres.is_some());
    Ok(if opts.check && !b.targets_met() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs the phases of `bench ingest` (see the module doc) and returns their figures.
/// With `postgres` (a server URL whose role may create databases) both phases write
/// to fresh PostgreSQL databases instead of SQLite files.
pub async fn measure_ingest(
    opts: IngestOptions,
    dir: Option<PathBuf>,
    postgres: Option<&str>,
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

    let (rootline, summary, peak_rss_kib, floor, floor_rows) = match postgres {
        None => {
            // Phase 1: rootline's full ingest.
            eprintln!("rootline ingest ...");
            let (rootline, summary, peak) =
                time_rootline(&rootline_db, &recording, records, None).await?;
            // Phase 2: the floor, same rows through the same driver and schema.
            eprintln!("floor: bare append ...");
            let (floor, rows) = time_floor(&floor_db, &recording, None).await?;
            (rootline, summary, peak, floor, rows)
        }
        Some(admin) => {
            if with_breakdown {
                bail!("--breakdown changes the SQLite schema: it does not go with --postgres");
            }
            let name = |what: &str| format!("rootline_bench_{what}_{}", std::process::id());
            eprintln!("rootline ingest into PostgreSQL ...");
            let store = PgStore::open(&fresh_database(admin, &name("ingest")).await?).await?;
            let out = ingest_timed(&store, &recording, records).await;
            store.close().await;
            let (rootline, summary, peak) = out?;
            eprintln!("floor: bare append into PostgreSQL ...");
            let store = PgStore::open(&fresh_database(admin, &name("floor")).await?).await?;
            let out = floor_append(&store, &recording).await;
            store.close().await;
            let (floor, rows) = out?;
            if !keep {
                drop_database(admin, &name("ingest")).await?;
                drop_database(admin, &name("floor")).await?;
            }
            (rootline, summary, peak, floor, rows)
        }
    };

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
    let out = ingest_timed(&store, recording, records).await;
    store.close().await;
    out
}

/// rootline's whole ingest of `recording` into `store`, timed (see [`time_rootline`]).
async fn ingest_timed<S: EventLog>(
    store: &S,
    recording: &Path,
    records: u64,
) -> anyhow::Result<(Duration, ingest::IngestSummary, Option<u64>)> {
    let t = Instant::now();
    let summary = ingest::ingest_files(store, &[recording.to_path_buf()], false).await?;
    let took = t.elapsed();
    let peak = peak_rss_kib();
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

/// The floor ([`floor_append`] through `EventLog::append_moving`, as ingest appends) into
/// a fresh store at `db`.
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

fn print_report(b: &IngestBench, seed: u64, postgres: bool) {
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "store     {}",
        if postgres {
            "PostgreSQL (a fresh database per phase, events partitioned by month)"
        } else {
            "SQLite (a fresh file per phase)"
        }
    );
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
        "floor     {:>12} events/s  {} rows in {:.2} s (the append only, as ingest calls it; rows normalized outside the timer)",
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
    let target = if postgres {
        TARGET_POSTGRES_EVENTS_PER_SEC
    } else {
        TARGET_EVENTS_PER_SEC
    };
    println!(
        "targets   >= {} events/s: {}; >= {:.0}% of floor: {}; peak < {:.0} MB: {}",
        fmt_rate(target),
        mark(b.rootline_rate() >= target),
        TARGET_FLOOR_RATIO * 100.0,
        mark(b.ratio() >= TARGET_FLOOR_RATIO),
        TARGET_PEAK_MB,
        mark(b.peak_mb().is_some_and(|m| m < TARGET_PEAK_MB)),
    );
}

/// Appends the recording's rows in ingest-sized batches; normalizing happens outside
/// the timer, and only the appends are timed. Returns the time and the rows appended.
async fn floor_append<S: EventLog>(store: &S, recording: &Path) -> anyhow::Result<(Duration, u64)> {
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
            rows += store.append_moving(&mut batch, None).await?.appended;
            timed += t.elapsed();
            batch.clear();
        }
        if n == 0 {
            break;
        }
    }
    Ok((timed, rows))
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

#[cfg(test)]
mod tests {
    use super::*;

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
        for name in ["events_key", "events_cited_ids"] {
            assert!(migrated.iter().any(|n| n == name), "{name} in {migrated:?}");
        }
        assert!(!migrated.iter().any(|n| n == "events_insert_guard"));
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
            let again = store.append(&batch, None).await.expect("append again");
            match variant {
                FloorVariant::NoCitedIndex => {
                    assert!(has("events_key") && !has("events_cited_ids"), "{schema:?}");
                    assert_eq!(again.appended, 0);
                }
                FloorVariant::NoIdempotency => {
                    assert!(has("events_time") && !has("events_key"), "{schema:?}");
                    assert_eq!(again.appended, 50);
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
        let b = measure_ingest(opts, Some(dir.path().to_path_buf()), None)
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
            .any(|n| n == "events_time"));
        store.close().await;
        // Without --breakdown there is none.
        let b = measure_ingest(
            IngestOptions {
                breakdown: false,
                keep: false,
                ..opts
            },
            Some(dir.path().join("plain")),
            None,
        )
        .await
        .expect("bench runs");
        assert!(b.breakdown.is_empty());
        assert!(!dir.path().join("plain").join("bench-rootline.db").exists());
    }
}
