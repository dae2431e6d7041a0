//! `rootline bench live`: issue 16's acceptance benchmark, end to end against the real
//! server binary.
//!
//! 1. Builds (or reuses) a store of N events from the seeded [`Estate`]: records are
//!    normalized in memory and appended in batches, no recording file is written
//!    (`--build-only` stops there). A marker file beside the store records N, the seed
//!    and the estate's version; a store without it (an interrupted build) is built
//!    again.
//! 2. Brings the store current with the real binary: `rootline incidents`, then
//!    `rootline projections update`.
//! 3. Starts `rootline serve` on it (this very executable, a free loopback port), waits
//!    for `/healthz` and for the server to go idle, then pushes the estate's pending
//!    alarm transitions one by one to `POST /ingest/eventbridge` and polls the JSON twin
//!    of `/incidents/ID` every 20 ms until the incident has hypotheses: the time from the
//!    push's answer to then is the alarm-to-hypotheses latency.
//! 4. With the server still up: the incident page (HTML) and `/search` latencies; then the
//!    server's peak memory (VmHWM, read just before SIGTERM).
//! 5. Times `rootline incidents` on the current store, and sums the store's files.
//!
//! Figures are information: a missed target is printed as such, never an exit status.
//! A rerun on the same store first appends OK transitions for the alarms an earlier run
//! left in ALARM, so every run opens fresh incidents.

use super::estate::{Estate, Planted, PENDING, PLANTED, VERSION};
use super::gen::{uuid, Rng};
use crate::model::{NewEvent, Source};
use crate::store::{EventFilter, EventLog, Order, Store};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Issue 16's targets on the 2-core reference machine at 10,000,000 events.
const TARGET_P50_S: f64 = 1.0;
const TARGET_MAX_S: f64 = 3.0;
const TARGET_PEAK_MB: f64 = 512.0;
const TARGET_INCIDENTS_S: f64 = 2.0;
const TARGET_PAGE_P99_MS: f64 = 50.0;
const TARGET_SEARCH_P99_MS: f64 = 100.0;

/// Events appended per transaction while building.
const BATCH: usize = 20_000;
/// Events a normalizer thread takes at a time while building.
const CHUNK: usize = 5_000;

/// A generated event before normalization: source, payload, recording time.
type RawEvent = (Source, String, i64);
/// The server's log filter (RUST_LOG syntax; default `warn`): set it to
/// `rootline=debug` to see the analyser's stage times in the server's log.
pub const SERVER_LOG_ENV: &str = "ROOTLINE_BENCH_SERVER_LOG";
/// The API key the benchmark's server is started with.
const API_KEY: &str = "bench-live-key";
/// How often the incident's JSON twin is polled after a push.
const POLL: Duration = Duration::from_millis(20);

/// The options of `bench live` (see `BenchCommand::Live`).
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Events in the store.
    pub events: u64,
    /// The estate's seed.
    pub seed: u64,
    /// Directory of the store (kept, and reused for the same events and seed).
    pub dir: PathBuf,
    /// Alarm transitions to push (at most [`PENDING`]).
    pub pushes: usize,
    /// How long to wait for one incident's hypotheses.
    pub timeout: Duration,
    /// Incident page requests to time.
    pub page_requests: usize,
    /// Search requests to time.
    pub search_requests: usize,
    /// Only build (or find) the store.
    pub build_only: bool,
}

/// One pushed alarm transition and what came of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PushResult {
    pub alarm: String,
    pub incident: String,
    /// Seconds from the push's answer to the incident with hypotheses; `None`: timed out.
    pub seconds: Option<f64>,
    pub hypotheses: usize,
    /// Whether the rank-1 hypothesis is the planted cause.
    pub cause_at_rank_1: bool,
}

/// Everything `bench live` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveReport {
    pub events: u64,
    pub seed: u64,
    pub database: String,
    /// Events in the store when measured (the estate plus rootline's own and earlier
    /// runs' events).
    pub stored: i64,
    /// Seconds the build took (`None`: an earlier build was reused).
    pub build_seconds: Option<f64>,
    /// Seconds of `rootline incidents` and `rootline projections update` before serving.
    pub catch_up_seconds: f64,
    /// Seconds from the server's start to healthy and idle.
    pub settle_seconds: f64,
    pub pushes: Vec<PushResult>,
    /// Median and slowest alarm-to-hypotheses latency over the pushes that completed.
    pub alarm_p50_seconds: Option<f64>,
    pub alarm_max_seconds: Option<f64>,
    pub timeouts: usize,
    pub cause_at_rank_1: usize,
    /// Planted incidents of the data whose cause is the rank-1 hypothesis, of [`PLANTED`].
    pub history_cause_at_rank_1: usize,
    pub page_p50_ms: f64,
    pub page_p99_ms: f64,
    pub search_p50_ms: f64,
    pub search_p99_ms: f64,
    /// The server's peak resident memory (VmHWM), MB.
    pub server_peak_mb: Option<f64>,
    /// Seconds of `rootline incidents` on the current store.
    pub incidents_seconds: f64,
    /// Bytes of the store's files (database and WAL).
    pub store_bytes: u64,
}

use crate::correlate::incident_id;

/// The store's files for `events` and `seed` in `dir`, and its marker.
fn paths(dir: &Path, events: u64, seed: u64) -> (PathBuf, PathBuf) {
    let db = dir.join(format!("live-{events}-s{seed}.db"));
    let marker = dir.join(format!("live-{events}-s{seed}.built"));
    (db, marker)
}

fn marker_text(events: u64, seed: u64, last_event_ms: i64) -> String {
    json!({"events": events, "seed": seed, "estate_version": VERSION, "last_event_ms": last_event_ms})
        .to_string()
}

/// The time of the estate's last event, when `marker` says its store was built
/// completely for these `events` and `seed` by this version of the estate.
fn read_marker(marker: &Path, events: u64, seed: u64) -> Option<i64> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(marker).ok()?).ok()?;
    let same = v.get("events")?.as_u64()? == events
        && v.get("seed")?.as_u64()? == seed
        && v.get("estate_version")?.as_u64()? == u64::from(VERSION);
    if same {
        v.get("last_event_ms")?.as_i64()
    } else {
        None
    }
}

/// Bytes of the database and its WAL.
fn store_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            std::fs::metadata(PathBuf::from(p)).ok()
        })
        .map(|m| m.len())
        .sum()
}

fn remove_store(db: &Path) -> anyhow::Result<()> {
    for s in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(s);
        match std::fs::remove_file(PathBuf::from(&p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {p:?}")),
        }
    }
    Ok(())
}

/// Builds the store of the estate (`events`, `seed`) at `db`: generation on one thread,
/// normalization on a thread per core, batched appends in the estate's order on this
/// task. Returns the time taken and the time of the estate's last event.
pub async fn build_store(db: &Path, events: u64, seed: u64) -> anyhow::Result<(Duration, i64)> {
    remove_store(db)?;
    let estate = Estate::new(events, seed)?;
    let store = Store::open(&db.display().to_string()).await?;
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::with_draw_target(
            Some(events),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events, {per_sec}, eta {eta}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let start = Instant::now();
    // One thread draws the raw events (one seeded stream, in order), normalizer threads
    // turn numbered chunks of them into events, and this task appends them in their
    // order: the store is the same whatever thread finishes first.
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4);
    let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<(u64, Vec<RawEvent>)>(workers * 2);
    let raw_rx = std::sync::Arc::new(std::sync::Mutex::new(raw_rx));
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<(u64, Result<Vec<NewEvent>, String>)>(workers * 2);
    let mut threads = vec![std::thread::spawn(move || {
        let mut estate = estate;
        let mut buf = String::with_capacity(4096);
        for n in 0u64.. {
            let mut chunk = Vec::with_capacity(CHUNK);
            while chunk.len() < CHUNK {
                match estate.next_raw(&mut buf) {
                    Some((source, _, recorded)) => chunk.push((source, buf.clone(), recorded)),
                    None => break,
                }
            }
            if chunk.is_empty() || raw_tx.send((n, chunk)).is_err() {
                return;
            }
        }
    })];
    for _ in 0..workers {
        let (raw_rx, tx) = (raw_rx.clone(), tx.clone());
        threads.push(std::thread::spawn(move || loop {
            let next = match raw_rx.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok((n, chunk)) = next else { return };
            let events: Result<Vec<NewEvent>, String> = chunk
                .iter()
                .map(|(source, raw, recorded)| {
                    crate::normalize::normalize(*source, raw, Some(*recorded))
                        .map_err(|e| format!("generated event invalid: {e}: {raw}"))
                })
                .collect();
            if tx.blocking_send((n, events)).is_err() {
                return;
            }
        }));
    }
    drop(tx);
    let mut pending = std::collections::BTreeMap::new();
    let mut next_chunk = 0u64;
    let mut batch: Vec<NewEvent> = Vec::with_capacity(BATCH);
    let mut appended = 0u64;
    let mut last_event = i64::MIN;
    let mut last_note = Instant::now();
    loop {
        let received = rx.recv().await;
        let done = received.is_none();
        if let Some((n, chunk)) = received {
            pending.insert(n, chunk.map_err(anyhow::Error::msg)?);
        }
        while let Some(chunk) = pending.remove(&next_chunk) {
            next_chunk += 1;
            batch.extend(chunk);
            if batch.len() < BATCH {
                continue;
            }
            last_event = batch
                .iter()
                .map(|e| e.event_time)
                .fold(last_event, i64::max);
            appended += store.append(&batch, None).await?.appended;
            batch.clear();
            bar.set_position(appended);
            if bar.is_hidden() && last_note.elapsed() > Duration::from_secs(30) {
                last_note = Instant::now();
                eprintln!(
                    "  {appended}/{events} events, {} events/s",
                    super::fmt_rate(super::rate(appended, start.elapsed()))
                );
            }
        }
        if done {
            break;
        }
    }
    if !batch.is_empty() {
        last_event = batch
            .iter()
            .map(|e| e.event_time)
            .fold(last_event, i64::max);
        appended += store.append(&batch, None).await?.appended;
    }
    for t in threads {
        if t.join().is_err() {
            bail!("an estate thread panicked");
        }
    }
    bar.finish_and_clear();
    let took = start.elapsed();
    store.close().await;
    if appended != events {
        bail!("appended {appended} of {events} events (duplicates in the estate?)");
    }
    eprintln!(
        "built {events} events in {:.1} s ({} events/s), {:.0} MB",
        took.as_secs_f64(),
        super::fmt_rate(super::rate(events, took)),
        store_bytes(db) as f64 / 1e6
    );
    Ok((took, last_event))
}

/// The time of the newest upstream (not rootline's own) event in the store.
async fn latest_upstream_time(store: &Store) -> anyhow::Result<i64> {
    let newest = store
        .query(&EventFilter {
            sources: Source::upstream(),
            by_time: true,
            order: Order::Desc,
            limit: 1,
            without_payload: true,
            ..Default::default()
        })
        .await?;
    newest
        .first()
        .map(|e| e.event_time)
        .context("the store has no upstream events")
}

/// A deterministic EventBridge envelope id for push `k` after `after_ms`.
fn push_id(seed: u64, after_ms: i64, k: usize, what: &str) -> String {
    let mut rng = Rng::new(seed ^ (after_ms as u64).rotate_left(17) ^ ((k as u64 + 1) * 0x9E37));
    let mut id = String::new();
    uuid(&mut rng, &mut id);
    format!("{id}-{what}")
}

/// Readies the store for this run's pushes and returns the time to push after: when an
/// earlier run pushed transitions (events after the estate's last, `last_event_ms`),
/// appends OK transitions for every pending alarm first, so each push opens a new
/// incident.
async fn prepare_pushes(
    db: &Path,
    estate: &Estate,
    seed: u64,
    last_event_ms: i64,
) -> anyhow::Result<i64> {
    let store = Store::open(&db.display().to_string()).await?;
    let mut latest = latest_upstream_time(&store).await?;
    if latest > last_event_ms {
        let mut oks = Vec::new();
        for (k, p) in estate.pending().iter().enumerate() {
            let t = latest + 1000 * (k as i64 + 1);
            let raw = p.push_event(&push_id(seed, latest, k, "ok"), "ALARM", "OK", t);
            oks.push(crate::normalize::normalize(
                Source::EventBridge,
                &raw,
                Some(t),
            )?);
        }
        store.append(&oks, None).await?;
        latest += 1000 * (oks.len() as i64 + 1);
    }
    store.close().await;
    Ok(latest)
}

/// Runs this executable with `args`, output discarded, and returns its time.
fn run_exe(exe: &Path, args: &[&str]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "`rootline {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// The server under test: the child process and its address.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `rootline serve` on a free loopback port and reads the address it prints.
    fn start(exe: &Path, database: &str, log: &Path) -> anyhow::Result<Server> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(exe)
            .args(["serve", "--database", database, "--addr", "127.0.0.1:0"])
            .env(crate::collect::push::EVENTBRIDGE_KEY_ENV, API_KEY)
            .env(
                "RUST_LOG",
                std::env::var(SERVER_LOG_ENV).unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            bail!("no stdout from the server");
        };
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let base = line
            .trim()
            .strip_prefix("rootline listening on ")
            .map(str::to_string);
        match (read, base) {
            (Ok(_), Some(base)) => Ok(Server { child, base }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the server did not start (first line {line:?}); see {}",
                    log.display()
                )
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// VmHWM of the server, in KiB.
    fn peak_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// CPU time (user + system) of the server so far, in clock ticks.
    fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state is field 3, utime 14 and stime 15 (1-based).
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }

    /// SIGTERM, then waits up to 60 s (and kills after that).
    fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the server did not stop within 60 s of SIGTERM; killed")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for `/healthz`, then until the server has been idle (under 10% of a core) for
/// two half-second windows in a row: its start-up catch-up done. Returns the time.
async fn settle(server: &Server, http: &reqwest::Client) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(3600);
    loop {
        let ok = http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        if Instant::now() > deadline {
            bail!("the server never answered /healthz");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut quiet = 0;
    let mut last = server.cpu_ticks();
    while quiet < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = server.cpu_ticks();
        // Ticks are 1/100 s: 5 ticks in half a second is 10% of a core.
        quiet = match (last, now) {
            (Some(a), Some(b)) if b.saturating_sub(a) < 5 => quiet + 1,
            (None, _) | (_, None) => 2,
            _ => 0,
        };
        last = now;
    }
    Ok(start.elapsed())
}

/// GETs the JSON twin of an incident page: `None` while there is no such incident.
async fn incident_json(
    http: &reqwest::Client,
    base: &str,
    id: &str,
) -> anyhow::Result<Option<Value>> {
    let resp = http
        .get(format!("{base}/incidents/{id}"))
        .header("accept", "application/json")
        .send()
        .await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        bail!("/incidents/{id} answered {}", resp.status());
    }
    Ok(Some(resp.json().await?))
}

/// Hypotheses of an incident's JSON twin, and the id of the rank-1 cause.
fn hypotheses_of(v: &Value) -> (usize, Option<String>) {
    let hs = v
        .get("hypotheses")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let top = hs
        .first()
        .and_then(|h| h.pointer("/cause/id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    (hs.len(), top)
}

/// Pushes one pending alarm's transition and polls until its incident has hypotheses.
async fn push_one(
    http: &reqwest::Client,
    base: &str,
    p: &Planted,
    id: &str,
    time_ms: i64,
    timeout: Duration,
) -> anyhow::Result<PushResult> {
    let body = p.push_event(id, "OK", "ALARM", time_ms);
    let resp = http
        .post(format!("{base}/ingest/eventbridge"))
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    let start = Instant::now();
    if !status.is_success() || answer.get("stored").and_then(Value::as_u64) != Some(1) {
        bail!("push of {} answered {status}: {answer}", p.alarm);
    }
    let incident = incident_id(Source::EventBridge.as_str(), id);
    let mut result = PushResult {
        alarm: p.alarm.clone(),
        incident: incident.clone(),
        seconds: None,
        hypotheses: 0,
        cause_at_rank_1: false,
    };
    while start.elapsed() < timeout {
        if let Some(v) = incident_json(http, base, &incident).await? {
            let (n, top) = hypotheses_of(&v);
            if n > 0 {
                result.seconds = Some(start.elapsed().as_secs_f64());
                result.hypotheses = n;
                result.cause_at_rank_1 = top.as_deref() == Some(p.cause_id.as_str());
                return Ok(result);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(result)
}

/// Times `n` GETs of `urls` (in turn) after 5 untimed ones; returns (p50, p99) in ms.
async fn time_gets(
    http: &reqwest::Client,
    urls: &[String],
    n: usize,
    accept: &str,
) -> anyhow::Result<(f64, f64)> {
    if urls.is_empty() || n == 0 {
        return Ok((0.0, 0.0));
    }
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 5 {
        let url = &urls[i % urls.len()];
        let start = Instant::now();
        let resp = http.get(url).header("accept", accept).send().await?;
        let status = resp.status();
        let _ = resp.bytes().await?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() {
            bail!("GET {url} answered {status}");
        }
        if i >= 5 {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    Ok((pct(0.5), pct(0.99)))
}

/// Percent-encodes a query value (unreserved characters kept).
fn encode(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

/// Builds the store of `opts` at `db` unless `marker` says it was built: returns the
/// build's seconds (`None` when reused) and the time of the estate's last event.
async fn ensure_store(
    opts: &LiveOptions,
    db: &Path,
    marker: &Path,
) -> anyhow::Result<(Option<f64>, i64)> {
    if let Some(last) = read_marker(marker, opts.events, opts.seed).filter(|_| db.exists()) {
        eprintln!("reusing the store {} (built earlier)", db.display());
        return Ok((None, last));
    }
    let _ = std::fs::remove_file(marker);
    eprintln!(
        "building a store of {} events (seed {}) at {} ...",
        opts.events,
        opts.seed,
        db.display()
    );
    let (took, last) = build_store(db, opts.events, opts.seed).await?;
    std::fs::write(marker, marker_text(opts.events, opts.seed, last))
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok((Some(took.as_secs_f64()), last))
}

/// `bench live --build-only`: builds (or finds) the store and prints where it is and its
/// size; nothing else runs (no engine, no server).
pub async fn build_only(opts: &LiveOptions) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let (db, marker) = paths(&opts.dir, opts.events, opts.seed);
    let (built, _) = ensure_store(opts, &db, &marker).await?;
    println!(
        "{}: {} events (seed {}), {:.1} MB{}",
        db.display(),
        opts.events,
        opts.seed,
        store_bytes(&db) as f64 / 1e6,
        built.map_or(" (built earlier)".to_string(), |s| format!(
            ", built in {s:.1} s ({} events/s)",
            super::fmt_rate(opts.events as f64 / s.max(1e-9))
        ))
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the benchmark (see the module doc) and returns its figures.
pub async fn measure(opts: &LiveOptions) -> anyhow::Result<LiveReport> {
    let exe = std::env::current_exe().context("cannot find the rootline executable")?;
    if opts.pushes > PENDING {
        bail!("--pushes is at most {PENDING}");
    }
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let (db, marker) = paths(&opts.dir, opts.events, opts.seed);
    let database = format!("sqlite://{}", db.display());
    let estate = Estate::new(opts.events, opts.seed)?;

    // 1. The store.
    let (build_seconds, last_event_ms) = ensure_store(opts, &db, &marker).await?;
    let push_after = prepare_pushes(&db, &estate, opts.seed, last_event_ms).await?;

    // 2. Current: the engine's conclusions and the projections.
    eprintln!("rootline incidents (catching up) ...");
    let catch_up = run_exe(&exe, &["incidents", "--database", &database])?
        + run_exe(&exe, &["projections", "update", "--database", &database])?;

    // 3. The server, and the pushes.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    eprintln!("starting the server ...");
    let server = Server::start(&exe, &database, &opts.dir.join("server.log"))?;
    let settle_time = settle(&server, &http).await?;
    eprintln!(
        "server at {} settled in {:.1} s; pushing {} alarm transitions ...",
        server.base,
        settle_time.as_secs_f64(),
        opts.pushes
    );
    let mut pushes = Vec::new();
    for (k, p) in estate.pending().iter().take(opts.pushes).enumerate() {
        let t = push_after + 1000 * (k as i64 + 1);
        let id = push_id(opts.seed, push_after, k, "alarm");
        let r = push_one(&http, &server.base, p, &id, t, opts.timeout).await?;
        eprintln!(
            "  {:<22} {}  {}",
            r.alarm,
            r.incident,
            match r.seconds {
                Some(s) => format!(
                    "{s:.3} s, {} hypotheses, cause at rank 1: {}",
                    r.hypotheses, r.cause_at_rank_1
                ),
                None => "timed out".to_string(),
            }
        );
        pushes.push(r);
    }

    // The planted incidents of the data: is their cause ranked first?
    let mut history_rank_1 = 0;
    let mut history_ids = Vec::new();
    for p in &estate.planted()[..PLANTED] {
        let Some(natural) = p.history_natural_id() else {
            continue;
        };
        let id = incident_id(Source::AlarmHistory.as_str(), &natural);
        if let Some(v) = incident_json(&http, &server.base, &id).await? {
            if hypotheses_of(&v).1.as_deref() == Some(p.cause_id.as_str()) {
                history_rank_1 += 1;
            }
            history_ids.push(id);
        }
    }

    // 4. Page and search latencies, then the server's peak memory.
    let mut pages: Vec<String> = pushes
        .iter()
        .filter(|r| r.seconds.is_some())
        .map(|r| format!("{}/incidents/{}", server.base, r.incident))
        .collect();
    pages.extend(
        history_ids
            .iter()
            .take(5)
            .map(|id| format!("{}/incidents/{id}", server.base)),
    );
    eprintln!("incident pages ...");
    let (page_p50, page_p99) = time_gets(&http, &pages, opts.page_requests, "text/html").await?;
    let p0 = &estate.planted()[0];
    let terms = [
        "RevokeSecurityGroupIngress".to_string(),
        p0.security_group.clone(),
        "alice".to_string(),
        estate.pending()[0].service.clone(),
        "UpdateService".to_string(),
        "deploy-pipeline".to_string(),
        "orders-ddb-throttled".to_string(),
        format!("{}-tg", estate.planted()[1].word),
        "ModifyTargetGroup".to_string(),
        "billing-sync".to_string(),
    ];
    let searches: Vec<String> = terms
        .iter()
        .map(|t| format!("{}/search?q={}", server.base, encode(t)))
        .collect();
    eprintln!("searches ...");
    let (search_p50, search_p99) =
        time_gets(&http, &searches, opts.search_requests, "text/html").await?;
    let peak = server.peak_kib();
    server.stop()?;

    // 5. `rootline incidents` on the current store, and the store's size.
    eprintln!("rootline incidents ...");
    let incidents = run_exe(&exe, &["incidents", "--database", &database])?;
    let stored = {
        let store = Store::open(&database).await?;
        let n = store.max_seq().await?;
        store.close().await;
        n
    };

    let done: Vec<f64> = {
        let mut v: Vec<f64> = pushes.iter().filter_map(|r| r.seconds).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    Ok(LiveReport {
        events: opts.events,
        seed: opts.seed,
        database,
        stored,
        build_seconds,
        catch_up_seconds: catch_up.as_secs_f64(),
        settle_seconds: settle_time.as_secs_f64(),
        alarm_p50_seconds: done.get(done.len().saturating_sub(1) / 2).copied(),
        alarm_max_seconds: done.last().copied(),
        timeouts: pushes.iter().filter(|r| r.seconds.is_none()).count(),
        cause_at_rank_1: pushes.iter().filter(|r| r.cause_at_rank_1).count(),
        pushes,
        history_cause_at_rank_1: history_rank_1,
        page_p50_ms: page_p50,
        page_p99_ms: page_p99,
        search_p50_ms: search_p50,
        search_p99_ms: search_p99,
        server_peak_mb: peak.map(|k| k as f64 / 1024.0),
        incidents_seconds: incidents.as_secs_f64(),
        store_bytes: store_bytes(&db),
    })
}

/// One line of the table: figure, value, target, met.
fn row(figure: &str, value: String, target: &str, met: Option<bool>) -> [String; 4] {
    [
        figure.to_string(),
        value,
        target.to_string(),
        match met {
            Some(true) => "met".into(),
            Some(false) => "NOT MET".into(),
            None => "-".into(),
        },
    ]
}

/// The report's table rows: each figure, its target, met or not.
pub fn table(r: &LiveReport) -> Vec<[String; 4]> {
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.3} s"));
    let n = r.pushes.len();
    let all_done = r.timeouts == 0 && n > 0;
    vec![
        row(
            "alarm to hypotheses p50",
            secs(r.alarm_p50_seconds),
            "< 1 s",
            Some(all_done && r.alarm_p50_seconds.is_some_and(|s| s < TARGET_P50_S)),
        ),
        row(
            "alarm to hypotheses max",
            secs(r.alarm_max_seconds),
            "< 3 s",
            Some(all_done && r.alarm_max_seconds.is_some_and(|s| s < TARGET_MAX_S)),
        ),
        row(
            "pushes answered (timeouts)",
            format!("{}/{n} ({} timed out)", n - r.timeouts, r.timeouts),
            "all",
            Some(r.timeouts == 0),
        ),
        row(
            "planted cause at rank 1 (pushed)",
            format!("{}/{n}", r.cause_at_rank_1),
            "-",
            None,
        ),
        row(
            "planted cause at rank 1 (in the data)",
            format!("{}/{PLANTED}", r.history_cause_at_rank_1),
            "-",
            None,
        ),
        row(
            "server peak memory (VmHWM)",
            r.server_peak_mb
                .map_or("unavailable".into(), |m| format!("{m:.1} MB")),
            "< 512 MB",
            Some(r.server_peak_mb.is_some_and(|m| m < TARGET_PEAK_MB)),
        ),
        row(
            "rootline incidents",
            format!("{:.3} s", r.incidents_seconds),
            "< 2 s",
            Some(r.incidents_seconds < TARGET_INCIDENTS_S),
        ),
        row(
            "incident page p99",
            format!("{:.1} ms (p50 {:.1} ms)", r.page_p99_ms, r.page_p50_ms),
            "< 50 ms",
            Some(r.page_p99_ms < TARGET_PAGE_P99_MS),
        ),
        row(
            "search p99",
            format!("{:.1} ms (p50 {:.1} ms)", r.search_p99_ms, r.search_p50_ms),
            "< 100 ms",
            Some(r.search_p99_ms < TARGET_SEARCH_P99_MS),
        ),
        row(
            "store size (db + wal)",
            format!("{:.1} MB", r.store_bytes as f64 / 1e6),
            "-",
            None,
        ),
    ]
}

/// `rootline bench live`: measures and prints the table (or JSON with `--json`). The
/// exit status says only whether the benchmark ran.
pub async fn live(opts: LiveOptions, as_json: bool) -> anyhow::Result<ExitCode> {
    if opts.build_only {
        return build_only(&opts).await;
    }
    let r = measure(&opts).await?;
    let rows = table(&r);
    if as_json {
        let mut v = serde_json::to_value(&r)?;
        if let Value::Object(m) = &mut v {
            let targets: Vec<Value> = rows
                .iter()
                .map(|[f, val, t, met]| json!({"figure": f, "value": val, "target": t, "met": met}))
                .collect();
            m.insert("targets".into(), Value::Array(targets));
        }
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "bench live: {} events (seed {}), {} stored; build {}; catch-up {:.1} s; server settled in {:.1} s",
        r.events,
        r.seed,
        r.stored,
        r.build_seconds
            .map_or("reused".to_string(), |s| format!("{s:.1} s")),
        r.catch_up_seconds,
        r.settle_seconds
    );
    let w = rows.iter().map(|x| x[0].len()).max().unwrap_or(0);
    let wv = rows.iter().map(|x| x[1].len()).max().unwrap_or(0);
    println!(
        "  {:<w$}  {:<wv$}  {:<9}  RESULT",
        "FIGURE", "VALUE", "TARGET"
    );
    for [f, v, t, m] in &rows {
        println!("  {f:<w$}  {v:<wv$}  {t:<9}  {m}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_ids_differ_by_push_and_by_run() {
        let a = push_id(1, 100, 0, "alarm");
        assert_eq!(a, push_id(1, 100, 0, "alarm"));
        assert_ne!(a, push_id(1, 100, 1, "alarm"));
        assert_ne!(a, push_id(1, 200, 0, "alarm"));
    }
}
