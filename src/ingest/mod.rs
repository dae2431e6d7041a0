//! File ingest: recordings (`.jsonl`, `.jsonl.gz`) and CloudTrail log files
//! (`{"Records": [...]}` or a JSON array, `.json`, `.json.gz`) into the event log.
//!
//! A reader thread decompresses, splits, parses and normalizes; the caller's task
//! appends batches in transactions, each with a checkpoint of the file position it
//! covers. A bad line is reported with its file, line and reason and the rest of the
//! file is still ingested.

pub mod reader;

use crate::model::{parse_time, NewEvent, Source};
use crate::normalize;
use crate::store::{AppendOutcome, Checkpoint, EventLog, StoreError};
use reader::{Item, LineReader, RecordScanner};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Events per transaction. Large transactions amortize what every commit rewrites (the
/// right edges of the indexes, the checkpoint row); 20,000 events of 1 to 2 KiB stay
/// around 40 MiB in memory.
pub const BATCH: usize = 20_000;
/// A batch is also appended once its payloads reach this many bytes, so that a file of
/// large records (up to the 4 MiB line limit) cannot hold gigabytes in one batch.
const BATCH_BYTES: usize = 32 * 1024 * 1024;
/// Rejections kept in full for the report; beyond this they are only counted.
const MAX_KEPT_REJECTIONS: usize = 10_000;
/// Bytes of rejections (file names and reasons) kept for the report; beyond this they
/// are only counted. With reasons cut to [`MAX_REASON_BYTES`] this is reached only by
/// very long file names; either bound keeps a hostile input from filling memory.
const MAX_KEPT_REJECTION_BYTES: usize = 4 * 1024 * 1024;
/// A rejection's reason is cut to this many bytes (offending values are quoted by
/// their first characters only; this is the backstop for messages built elsewhere,
/// e.g. by the JSON parser).
pub const MAX_REASON_BYTES: usize = 300;

/// `reason` cut to [`MAX_REASON_BYTES`] on a character boundary.
fn bounded_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut cut = MAX_REASON_BYTES - 3;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    reason
}

/// One input line or record that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub file: String,
    /// 1-based line where the item starts (0 when the file could not be opened).
    pub line: u64,
    /// A short category, used to group the summary.
    pub category: &'static str,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What an ingest run did.
#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    pub files: u64,
    /// Items read (lines or records), valid or not.
    pub read: u64,
    pub appended: u64,
    pub duplicates: u64,
    /// Rejections per category.
    pub rejected: BTreeMap<&'static str, u64>,
    /// The first rejections, in input order (at most 10,000 and 4 MiB of text; the rest
    /// are counted in `rejected` only).
    pub rejections: Vec<Rejection>,
    /// Bytes of text held by `rejections`.
    kept_bytes: usize,
}

impl IngestSummary {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Rejections counted but not kept in `rejections`.
    pub fn rejections_dropped(&self) -> u64 {
        self.rejected_total()
            .saturating_sub(self.rejections.len() as u64)
    }

    /// Counts a rejection, keeping the first ones in full (within the count and byte
    /// bounds); its reason is cut to [`MAX_REASON_BYTES`].
    fn reject(&mut self, mut r: Rejection) {
        r.reason = bounded_reason(std::mem::take(&mut r.reason));
        tracing::debug!(file = %r.file, line = r.line, reason = %r.reason, "Rejected input");
        *self.rejected.entry(r.category).or_default() += 1;
        let size = r.file.len() + r.reason.len() + std::mem::size_of::<Rejection>();
        if self.rejections.len() < MAX_KEPT_REJECTIONS
            && self.kept_bytes + size <= MAX_KEPT_REJECTION_BYTES
        {
            self.kept_bytes += size;
            self.rejections.push(r);
        }
    }
}

/// Errors that stop an ingest (bad input never does: it is reported per line).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the reader thread failed: {0}")]
    Reader(String),
}

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// JSON Lines of `{"source", "recorded_at", "payload"}` envelopes.
    Recording,
    /// A CloudTrail log document: `{"Records": [...]}` or a JSON array of records.
    CloudTrailLog,
}

/// Picks the format from the name (`.jsonl[.gz]`, `.ndjson` are recordings, `.json[.gz]`
/// CloudTrail log files) and, for other names, from the first bytes.
pub fn detect_format(path: &Path, head: &[u8]) -> FileFormat {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        return FileFormat::Recording;
    }
    if name.ends_with(".json") {
        return FileFormat::CloudTrailLog;
    }
    let first = head.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') || head.windows(10).any(|w| w == b"\"Records\"") {
        FileFormat::CloudTrailLog
    } else {
        FileFormat::Recording
    }
}

/// Counts bytes read from the underlying file, for the progress bar.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a file, transparently decompressing gzip (detected by its magic bytes).
fn open(path: &Path, count: Arc<AtomicU64>) -> std::io::Result<(Box<dyn Read + Send>, Vec<u8>)> {
    let mut f = BufReader::new(Counting {
        inner: File::open(path)?,
        count,
    });
    let magic = {
        use std::io::BufRead;
        f.fill_buf()?
            .get(..2)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    let mut r: Box<dyn Read + Send> = if magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    // Peek at the decoded head for format detection, then chain it back.
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // A read error this early is reported again by the reader proper.
            Err(_) => break,
        }
    }
    head.truncate(n);
    let chained: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head.clone()).chain(r));
    Ok((chained, head))
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    recorded_at: Option<&'a RawValue>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// Parses and normalizes one recording line; on failure, a short category (used to group
/// the summary) and the reason, cut to [`MAX_REASON_BYTES`] (serde's messages quote a
/// whole offending string value: found by fuzzing, fixtures/fuzz/recording_reader-1).
pub fn recording_line(bytes: &[u8]) -> Result<NewEvent, (&'static str, String)> {
    parse_recording_line(bytes).map_err(|(kind, reason)| (kind, bounded_reason(reason)))
}

fn parse_recording_line(bytes: &[u8]) -> Result<NewEvent, (&'static str, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        (
            "not UTF-8",
            format!(
                "line is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    if let Some(event) = written_shape(text) {
        return Ok(event);
    }
    general_recording_line(text)
}

/// A line in the shape collectors and RECORDINGS.md write it, `{"source": "S",
/// "recorded_at": "R", "payload": P}` (keys in this order, any whitespace between tokens, no
/// escapes in S and R), normalized without scanning P twice: the general path first scans
/// P to find where the envelope ends, then parses it again (a quarter of a parser
/// thread's time on CloudTrail-sized records). `None` for any other line and whenever
/// this path fails, so the general path decides it and words the error: a P that is not
/// exactly one JSON value (say `{..}, "payload": {..}`) fails the normalizer's parse.
fn written_shape(text: &str) -> Option<NewEvent> {
    // JSON's blanks only: trim() would also drop blanks JSON does not allow.
    const BLANKS: [char; 4] = [' ', '\t', '\n', '\r'];
    fn token<'a>(rest: &'a str, t: &str) -> Option<&'a str> {
        rest.trim_start_matches(BLANKS).strip_prefix(t)
    }
    fn plain_string(rest: &str) -> Option<(&str, &str)> {
        let rest = rest.trim_start_matches(BLANKS).strip_prefix('"')?;
        let end = rest.find(['"', '\\'])?;
        (rest.as_bytes().get(end) == Some(&b'"')).then(|| (&rest[..end], &rest[end + 1..]))
    }
    let rest = token(text, "{")?;
    let rest = token(token(rest, "\"source\"")?, ":")?;
    let (source_name, rest) = plain_string(rest)?;
    let rest = token(token(token(rest, ",")?, "\"recorded_at\"")?, ":")?;
    let (recorded_at, rest) = plain_string(rest)?;
    let rest = token(token(token(rest, ",")?, "\"payload\"")?, ":")?;
    // The general path's payload is the value's own text, without the blanks around it.
    let payload = rest
        .trim_end_matches(BLANKS)
        .strip_suffix('}')?
        .trim_matches(BLANKS);
    let source = Source::parse(source_name).filter(|s| *s != Source::Rootline)?;
    normalize::normalize(source, payload, parse_time(recorded_at)).ok()
}

/// A recording line of any shape (see [`written_shape`] for the common one).
fn general_recording_line(text: &str) -> Result<NewEvent, (&'static str, String)> {
    let env: Envelope<'_> =
        serde_json::from_str(text).map_err(|e| ("invalid JSON", format!("invalid JSON: {e}")))?;
    let source_raw = env.source.ok_or((
        "missing source or payload",
        "missing field `source`".to_string(),
    ))?;
    let source_name: String = serde_json::from_str(source_raw.get()).map_err(|_| {
        (
            "wrong type",
            "field `source` should be a string".to_string(),
        )
    })?;
    let source = Source::parse(&source_name)
        .filter(|s| *s != Source::Rootline)
        .ok_or_else(|| {
            (
                "unknown source",
                format!(
                    "unknown source {}",
                    crate::model::quote_prefix(&source_name)
                ),
            )
        })?;
    let payload = env.payload.ok_or((
        "missing source or payload",
        "missing field `payload`".to_string(),
    ))?;
    let received_at = env
        .recorded_at
        .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
        .and_then(|s| parse_time(&s));
    normalize::normalize(source, payload.get(), received_at)
        .map_err(|e| (e.reason(), format!("{source} payload: {e}")))
}

/// Parses and normalizes one CloudTrail record from a log file.
pub fn cloudtrail_record(bytes: &[u8]) -> Result<NewEvent, (&'static str, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        (
            "not UTF-8",
            format!(
                "record is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ("invalid JSON", format!("invalid JSON: {e}")))?;
    normalize::normalize_value(Source::CloudTrail, &value, text, None)
        .map_err(|e| (e.reason(), format!("cloudtrail record: {e}")))
}

/// Items handed to a parser thread at a time: large enough to make the hand-off cheap,
/// small enough to keep every core busy.
const CHUNK: usize = 256;
/// A unit also ends once its items reach this many bytes, so that the units queued
/// between reader, parsers and writer stay small when records are large.
const CHUNK_BYTES: usize = 1024 * 1024;

/// A unit of work, numbered in input order so the writer can put results back in order.
enum Unit {
    /// Items of one file, to parse and normalize.
    Items {
        file: usize,
        format: FileFormat,
        items: Vec<Item>,
    },
    /// A file could not be opened.
    Unreadable { file: usize, reason: String },
    /// The end of a file.
    FileEnd,
}

/// A parsed unit.
enum Done {
    Chunk {
        file: usize,
        events: Vec<NewEvent>,
        rejections: Vec<Rejection>,
        /// Items read (data items and fatal errors; a kept record's missing comma is not
        /// an item of its own).
        read: u64,
        /// The last line of a data item in this chunk, 0 if none.
        last_line: u64,
    },
    Rejected(Rejection),
    FileEnd,
}

/// The summary category of a reader error.
fn reader_error_category(reason: &str) -> &'static str {
    if reason.contains("truncated") {
        "truncated file"
    } else if reason.contains("limit") {
        "too large"
    } else if reason.contains("missing ','") || reason.starts_with("invalid") {
        "invalid JSON"
    } else {
        "unreadable file"
    }
}

/// Parses and normalizes one unit (runs on a parser thread).
fn parse_unit(unit: Unit, names: &[String]) -> Done {
    match unit {
        Unit::Items {
            file,
            format,
            items,
        } => {
            let mut events = Vec::with_capacity(items.len());
            let mut rejections = Vec::new();
            let mut read = 0u64;
            let mut last_line = 0u64;
            for item in items {
                match item {
                    Item::Error { line, reason } => {
                        // A missing comma is reported but its record is kept (and read).
                        if !reason.contains("missing ','") {
                            read += 1;
                        }
                        rejections.push(Rejection {
                            file: names[file].clone(),
                            line,
                            category: reader_error_category(&reason),
                            reason: bounded_reason(reason),
                        });
                    }
                    Item::Data { line, bytes } => {
                        read += 1;
                        last_line = line;
                        let res = match format {
                            FileFormat::Recording => recording_line(&bytes),
                            FileFormat::CloudTrailLog => cloudtrail_record(&bytes),
                        };
                        match res {
                            Ok(ev) => events.push(ev),
                            Err((category, reason)) => rejections.push(Rejection {
                                file: names[file].clone(),
                                line,
                                category,
                                reason: bounded_reason(reason),
                            }),
                        }
                    }
                }
            }
            Done::Chunk {
                file,
                events,
                rejections,
                read,
                last_line,
            }
        }
        Unit::Unreadable { file, reason } => Done::Rejected(Rejection {
            file: names[file].clone(),
            line: 0,
            category: "unreadable file",
            reason,
        }),
        Unit::FileEnd => Done::FileEnd,
    }
}

/// Reads every file into numbered units; returns false when the consumers are gone.
fn read_files(
    paths: &[PathBuf],
    count: &Arc<AtomicU64>,
    tx: &std::sync::mpsc::SyncSender<(u64, Unit)>,
) -> bool {
    let mut seq = 0u64;
    let mut send = |unit: Unit| {
        let ok = tx.send((seq, unit)).is_ok();
        seq += 1;
        ok
    };
    for (file, path) in paths.iter().enumerate() {
        let (r, head) = match open(path, count.clone()) {
            Ok(x) => x,
            Err(e) => {
                if !send(Unit::Unreadable {
                    file,
                    reason: format!("cannot open: {e}"),
                }) {
                    return false;
                }
                continue;
            }
        };
        let format = detect_format(path, &head);
        let items: Box<dyn Iterator<Item = Item>> = match format {
            FileFormat::Recording => {
                Box::new(LineReader::new(BufReader::with_capacity(256 * 1024, r)))
            }
            FileFormat::CloudTrailLog => Box::new(RecordScanner::new(r)),
        };
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut bytes = 0usize;
        for item in items {
            if let Item::Data { bytes: b, .. } = &item {
                bytes += b.len();
            }
            chunk.push(item);
            // Also bounded in bytes, so that a few huge records do not pile up.
            if chunk.len() >= CHUNK || bytes >= CHUNK_BYTES {
                let items = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                bytes = 0;
                if !send(Unit::Items {
                    file,
                    format,
                    items,
                }) {
                    return false;
                }
            }
        }
        if !chunk.is_empty()
            && !send(Unit::Items {
                file,
                format,
                items: chunk,
            })
        {
            return false;
        }
        if !send(Unit::FileEnd) {
            return false;
        }
    }
    true
}

/// Puts the calling thread (the reader or a parser) in the idle scheduling class on
/// Linux: it runs only on a core nothing else of normal priority wants. The appender is
/// the serial part of an ingest; while it waits for a core behind the parsers, the whole
/// pipeline waits (`rootline bench ingest`, 1M records on two cores: its thread waited
/// 3.2 to 4.1 s in the run queue of a 15 to 17 s ingest, and 2.0 s with this; the
/// parsers still use 7.9 s of CPU, on what the appender leaves). Elsewhere, or when the
/// system refuses, the thread keeps its priority.
fn yield_to_appender() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid
        // parameter block; it changes only that thread's policy.
        unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            let _ = libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        }
    }
}

/// Parser threads: as many as there are cores (the writer mostly waits on SQLite).
fn parser_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
}

/// Ingests files into the log. `progress` shows a bar on a terminal.
///
/// A reader thread splits the files into numbered chunks of lines (or records), parser
/// threads parse and normalize them, and this task puts the results back in input order
/// and appends them in batches, each in one transaction with the checkpoint of the file
/// line it reaches. So a crash leaves the log and checkpoint at the same line, and the
/// sequence order is the input order.
pub async fn ingest_files<S: EventLog>(
    store: &S,
    paths: &[PathBuf],
    progress: bool,
) -> Result<IngestSummary, IngestError> {
    let total: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = if progress {
        let b = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let names: Arc<Vec<String>> = Arc::new(paths.iter().map(|p| p.display().to_string()).collect());
    let count = Arc::new(AtomicU64::new(0));
    let parsers = parser_threads();
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<(u64, Unit)>(parsers * 2);
    let work_rx = Arc::new(std::sync::Mutex::new(work_rx));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<(u64, Done)>(parsers * 4);

    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .spawn(f)
            .map_err(|e| IngestError::Reader(e.to_string()))
    };
    let mut handles = Vec::new();
    {
        let paths = paths.to_vec();
        let count = count.clone();
        handles.push(spawn(
            "ingest-reader".into(),
            Box::new(move || {
                yield_to_appender();
                // Returns early when the writer stopped; dropping the sender ends the parsers.
                let _ = read_files(&paths, &count, &work_tx);
            }),
        )?);
    }
    for i in 0..parsers {
        let rx = work_rx.clone();
        let tx = done_tx.clone();
        let names = names.clone();
        handles.push(spawn(
            format!("ingest-parse-{i}"),
            Box::new(move || {
                yield_to_appender();
                loop {
                    let next = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, unit)) = next else { return };
                    if tx.blocking_send((seq, parse_unit(unit, &names))).is_err() {
                        return;
                    }
                }
            }),
        )?);
    }
    drop(done_tx);
    // Only the parsers hold the work receiver now: once they stop (the writer gone), the
    // reader's next send fails and it stops too, instead of waiting on a full channel.
    drop(work_rx);

    // Two batch buffers: while one is appended (SQLite's work, on its own thread), the
    // next one is collected from the parsers, so neither waits for the other. The
    // appender hands each buffer back once its batch is stored; the collector waits for a
    // free buffer, which bounds memory to two batches.
    let (full_tx, mut full_rx) = tokio::sync::mpsc::channel::<(Vec<NewEvent>, Checkpoint)>(1);
    let (free_tx, mut free_rx) = tokio::sync::mpsc::channel::<Vec<NewEvent>>(1);
    let _ = free_tx.try_send(Vec::with_capacity(BATCH));
    let mut summary = IngestSummary::default();
    let mut stored = AppendOutcome::default();
    let appender = async {
        while let Some((mut batch, cp)) = full_rx.recv().await {
            let out = store.append_moving(&mut batch, Some(&cp)).await?;
            stored.appended += out.appended;
            stored.duplicates += out.duplicates;
            bar.set_position(count.load(Ordering::Relaxed));
            bar.set_message(format!("{} appended", stored.appended));
            batch.clear();
            // The collector is gone once it has sent its last batch.
            let _ = free_tx.send(batch).await;
        }
        Ok::<(), IngestError>(())
    };
    let collector = async {
        let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
        let mut next = 0u64;
        let mut batch = Batch {
            events: Vec::with_capacity(BATCH),
            bytes: 0,
            reach: None,
        };
        while let Some((seq, done)) = done_rx.recv().await {
            pending.insert(seq, done);
            while let Some(done) = pending.remove(&next) {
                next += 1;
                match done {
                    Done::Chunk {
                        file,
                        events,
                        rejections,
                        read,
                        last_line,
                    } => {
                        summary.read += read;
                        for r in rejections {
                            summary.reject(r);
                        }
                        batch.bytes += events.iter().map(|e| e.payload.len()).sum::<usize>();
                        batch.events.extend(events);
                        if last_line > 0 {
                            batch.reach = Some((file, last_line));
                        }
                        if batch.events.len() >= BATCH || batch.bytes >= BATCH_BYTES {
                            batch.hand_over(&names, &full_tx, &mut free_rx).await?;
                        }
                    }
                    Done::Rejected(r) => summary.reject(r),
                    Done::FileEnd => {
                        // A batch never spans two files: its checkpoint names one.
                        batch.hand_over(&names, &full_tx, &mut free_rx).await?;
                        summary.files += 1;
                    }
                }
            }
        }
        batch.hand_over(&names, &full_tx, &mut free_rx).await?;
        // Ends the appender once it has stored what it holds.
        drop(full_tx);
        Ok::<(), IngestError>(())
    };
    // On the first error try_join drops the other half.
    let result = tokio::try_join!(appender, collector).map(|_| ());
    summary.appended = stored.appended;
    summary.duplicates = stored.duplicates;
    // On a store error the receiver is dropped here, which stops the parsers and reader.
    drop(done_rx);
    bar.finish_and_clear();
    for h in handles {
        h.join()
            .map_err(|_| IngestError::Reader("an ingest thread panicked".into()))?;
    }
    result?;
    Ok(summary)
}

/// The batch being collected: events, their payload bytes, and the file and line it
/// reaches.
struct Batch {
    events: Vec<NewEvent>,
    bytes: usize,
    reach: Option<(usize, u64)>,
}

impl Batch {
    /// Sends the events, with the checkpoint of the line they reach, to the appender and
    /// takes a free buffer in their place (waiting until the appender frees one).
    async fn hand_over(
        &mut self,
        names: &[String],
        full: &tokio::sync::mpsc::Sender<(Vec<NewEvent>, Checkpoint)>,
        free: &mut tokio::sync::mpsc::Receiver<Vec<NewEvent>>,
    ) -> Result<(), IngestError> {
        let Some((file, line)) = self.reach.take() else {
            return Ok(());
        };
        let cp = Checkpoint {
            name: format!("ingest:{}", names[file]),
            value: format!("{{\"line\":{line}}}"),
        };
        let stopped = || IngestError::Reader("the appender stopped".into());
        let next = free.recv().await.ok_or_else(stopped)?;
        let events = std::mem::replace(&mut self.events, next);
        self.bytes = 0;
        full.send((events, cp)).await.map_err(|_| stopped())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_line_errors_are_specific() {
        let e = recording_line(b"{\"source\":\"nope\",\"payload\":{}}").unwrap_err();
        assert_eq!(e.0, "unknown source");
        let e = recording_line(b"{\"payload\":{}}").unwrap_err();
        assert_eq!(e.0, "missing source or payload");
        let e = recording_line(
            b"{\"source\":\"cloudtrail\",\"payload\":{\"eventTime\":\"2025-01-01T00:00:00Z\"}}",
        )
        .unwrap_err();
        assert!(e.1.contains("eventID"), "{e:?}");
        let e = recording_line(
            b"{\"source\":\"cloudtrail\",\"payload\":{\"eventID\":5,\"eventTime\":7}}",
        )
        .unwrap_err();
        assert_eq!(e.0, "wrong type");
        let e = recording_line(b"{\"source\":\"logs\"\xff}").unwrap_err();
        assert_eq!(e.0, "not UTF-8");
        let e = recording_line(b"{\"source\":").unwrap_err();
        assert_eq!(e.0, "invalid JSON");
    }

    /// The written shape's short cut gives what the general path gives, on lines of
    /// that shape and on look-alikes it must leave to the general path.
    #[test]
    fn the_written_shape_is_read_as_the_general_path_reads_it() {
        let ct = r#"{"eventID":"e-1","eventTime":"2025-01-01T00:00:00Z","eventName":"PutRolePolicy","eventSource":"iam.amazonaws.com","requestParameters":{"roleName":"web"}}"#;
        let lines = [
            format!(r#"{{"source":"cloudtrail","recorded_at":"2025-01-01T00:05:00Z","payload":{ct}}}"#),
            format!(r#"{{ "source": "cloudtrail", "recorded_at": "2025-01-01T00:05:00Z", "payload": {ct} }}  "#),
            format!(r#"{{"source":"cloudtrail","recorded_at":"not a time","payload":{ct}}}"#),
            format!(r#"{{"source":"cloudtrail","recorded_at":"2025-01-01T00:05:00Z","payload":{ct},"payload":{{}}}}"#),
            format!(r#"{{"source":"cloudtrail","recorded_at":"2025-01-01T00:05:00Z","payload":{{}},"payload":{ct}}}"#),
            format!(r#"{{"source":"cloud\u0074rail","recorded_at":"2025-01-01T00:05:00Z","payload":{ct}}}"#),
            format!(r#"{{"source":"rootline","recorded_at":"2025-01-01T00:05:00Z","payload":{ct}}}"#),
            format!(r#"{{"source":"cloudtrail","payload":{ct},"recorded_at":"2025-01-01T00:05:00Z"}}"#),
            format!(r#"{{"source":"cloudtrail","recorded_at":"2025-01-01T00:05:00Z","payload":{ct}"#),
            format!(r#"{{"source":"cloudtrail","recorded_at":"2025-01-01T00:05:00Z","payload":{ct}}}}}"#),
            r#"{"source":"cloudtrail","recorded_at":"2025-01-01T00:05:00Z","payload":{"eventID":"x"}}"#.to_string(),
            format!("{{\u{a0}\"source\":\"cloudtrail\",\"recorded_at\":\"2025-01-01T00:05:00Z\",\"payload\":{ct}}}"),
            format!("{{\"source\":\"cloudtrail\",\"recorded_at\":\"2025-01-01T00:05:00Z\",\"payload\":\u{a0}{ct}\u{2003}}}"),
        ];
        let mut shortcut = 0;
        for line in &lines {
            let general = general_recording_line(line);
            assert_eq!(
                recording_line(line.as_bytes()),
                general.map_err(|(k, r)| (k, bounded_reason(r))),
                "{line}"
            );
            shortcut += usize::from(written_shape(line).is_some());
        }
        // The first three take the short cut, and give what the general path gives.
        assert_eq!(shortcut, 3);
        let first = recording_line(lines[0].as_bytes()).unwrap();
        assert_eq!(
            (first.natural_id.as_str(), first.received_at),
            ("e-1", Some(1_735_689_900_000))
        );
        assert_eq!(first.payload, ct);
    }

    #[test]
    fn format_detection() {
        assert_eq!(
            detect_format(Path::new("a.jsonl.gz"), b""),
            FileFormat::Recording
        );
        assert_eq!(
            detect_format(Path::new("a.json.gz"), b""),
            FileFormat::CloudTrailLog
        );
        assert_eq!(
            detect_format(Path::new("a"), b" [{}]"),
            FileFormat::CloudTrailLog
        );
        assert_eq!(
            detect_format(Path::new("a"), b"{\"source\":1}"),
            FileFormat::Recording
        );
    }

    /// A store that records what it is asked to append and fails the append numbered
    /// `fail_at` (0-based).
    struct Recording {
        inner: crate::store::Store,
        fail_at: usize,
        /// (events, checkpoint line) of each append call, in call order.
        calls: std::sync::Mutex<Vec<(usize, u64)>>,
    }

    impl EventLog for Recording {
        async fn append(
            &self,
            events: &[NewEvent],
            checkpoint: Option<&Checkpoint>,
        ) -> crate::store::Result<AppendOutcome> {
            let line = checkpoint
                .and_then(|c| serde_json::from_str::<serde_json::Value>(&c.value).ok())
                .and_then(|v| v["line"].as_u64())
                .unwrap();
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push((events.len(), line));
                calls.len() - 1
            };
            if n == self.fail_at {
                return Err(StoreError::UnsupportedUrl("injected failure".into()));
            }
            self.inner.append(events, checkpoint).await
        }
        async fn query(
            &self,
            f: &crate::store::EventFilter,
        ) -> crate::store::Result<Vec<crate::model::Event>> {
            self.inner.query(f).await
        }
        async fn get(&self, seq: i64) -> crate::store::Result<Option<crate::model::Event>> {
            self.inner.get(seq).await
        }
        async fn find(
            &self,
            s: Source,
            id: &str,
        ) -> crate::store::Result<Option<crate::model::Event>> {
            self.inner.find(s, id).await
        }
        async fn find_at(
            &self,
            s: Source,
            id: &str,
            t: i64,
        ) -> crate::store::Result<Option<crate::model::Event>> {
            self.inner.find_at(s, id, t).await
        }
        async fn count(&self) -> crate::store::Result<i64> {
            self.inner.count().await
        }
        async fn max_seq(&self) -> crate::store::Result<i64> {
            self.inner.max_seq().await
        }
        async fn checkpoint(&self, name: &str) -> crate::store::Result<Option<Checkpoint>> {
            self.inner.checkpoint(name).await
        }
    }

    /// A recording of `n` generated CloudTrail records, and a store that fails at `fail_at`.
    async fn setup(n: u64, fail_at: usize) -> (tempfile::TempDir, PathBuf, Recording) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let mut text = String::new();
        for i in 0..n {
            // Distinct CloudTrail calls, one a second: all valid, none a duplicate. The id
            // varies at its end, as real ids do (the store indexes ids by their tail).
            let t = crate::model::fmt_time(1_760_000_000_000 + i as i64 * 1000);
            text.push_str(&format!(
                "{{\"source\":\"cloudtrail\",\"payload\":{{\"eventVersion\":\"1.09\",\"eventID\":\"00000000-0000-4000-8000-{i:012x}\",\"eventTime\":\"{t}\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"DescribeInstances\",\"readOnly\":true,\"requestParameters\":{{\"instanceId\":\"i-{i:017x}\"}}}}}}\n"
            ));
        }
        std::fs::write(&path, text).unwrap();
        let db = dir.path().join("s.db");
        let inner = crate::store::Store::open(&db.display().to_string())
            .await
            .unwrap();
        let store = Recording {
            inner,
            fail_at,
            calls: Default::default(),
        };
        (dir, path, store)
    }

    #[tokio::test]
    async fn batches_reach_the_store_in_input_order_with_their_checkpoints() {
        let n = (2 * BATCH + 1_000) as u64;
        let (_dir, path, store) = setup(n, usize::MAX).await;
        let summary = ingest_files(&store, std::slice::from_ref(&path), false)
            .await
            .unwrap();
        assert_eq!((summary.read, summary.appended), (n, n));
        let calls = store.calls.lock().unwrap().clone();
        assert!(calls.len() >= 3, "{calls:?}");
        // Each checkpoint is the line its batch ends on: the sum of the batch sizes so far.
        let mut lines = 0u64;
        for &(events, line) in &calls {
            lines += events as u64;
            assert_eq!(line, lines, "{calls:?}");
        }
        assert_eq!(lines, n);
        assert_eq!(store.count().await.unwrap(), n as i64);
        assert_eq!(store.max_seq().await.unwrap(), n as i64);
        let name = format!("ingest:{}", path.display());
        let cp = store.checkpoint(&name).await.unwrap().unwrap();
        assert_eq!(cp.value, format!("{{\"line\":{n}}}"));
    }

    #[test]
    fn a_store_error_stops_the_ingest_and_keeps_the_batches_before_it() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let n = (3 * BATCH) as u64;
        let (_dir, path, store) = rt.block_on(setup(n, 1));
        let store = Arc::new(store);
        // On its own thread, so that a hang (ingest_files joins its threads) fails the
        // test instead of stalling it.
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let (store, path) = (store.clone(), path.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                let _ = tx.send(rt.block_on(ingest_files(&*store, &[path], false)));
            });
        }
        let err = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the ingest ends after a store error")
            .unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        let calls = store.calls.lock().unwrap().clone();
        // No append after the failed one.
        assert_eq!(calls.len(), 2, "{calls:?}");
        let first = calls[0];
        assert_eq!(rt.block_on(store.count()).unwrap(), first.0 as i64);
        let name = format!("ingest:{}", path.display());
        let cp = rt.block_on(store.checkpoint(&name)).unwrap().unwrap();
        assert_eq!(cp.value, format!("{{\"line\":{}}}", first.1));
    }
}
