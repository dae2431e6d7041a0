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
use crate::store::{Checkpoint, EventLog, StoreError};
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
    /// The first rejections, in input order.
    pub rejections: Vec<Rejection>,
}

impl IngestSummary {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
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
/// the summary) and the full reason.
pub fn recording_line(bytes: &[u8]) -> Result<NewEvent, (&'static str, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        (
            "not UTF-8",
            format!(
                "line is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
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
        .ok_or_else(|| ("unknown source", format!("unknown source {source_name:?}")))?;
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
fn cloudtrail_record(bytes: &[u8]) -> Result<NewEvent, (&'static str, String)> {
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
                            reason,
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
                                reason,
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
            Box::new(move || loop {
                let next = match rx.lock() {
                    Ok(guard) => guard.recv(),
                    Err(_) => return,
                };
                let Ok((seq, unit)) = next else { return };
                if tx.blocking_send((seq, parse_unit(unit, &names))).is_err() {
                    return;
                }
            }),
        )?);
    }
    drop(done_tx);

    let mut summary = IngestSummary::default();
    let result: Result<(), IngestError> = async {
        let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
        let mut next = 0u64;
        let mut batch: Vec<NewEvent> = Vec::with_capacity(BATCH);
        let mut batch_bytes = 0usize;
        // The file and line the batch reaches.
        let mut reach: Option<(usize, u64)> = None;
        while let Some((seq, done)) = done_rx.recv().await {
            pending.insert(seq, done);
            while let Some(done) = pending.remove(&next) {
                next += 1;
                match done {
                    Done::Chunk { file, events, rejections, read, last_line } => {
                        summary.read += read;
                        for r in rejections {
                            tracing::debug!(file = %r.file, line = r.line, reason = %r.reason, "Rejected input");
                            *summary.rejected.entry(r.category).or_default() += 1;
                            if summary.rejections.len() < MAX_KEPT_REJECTIONS {
                                summary.rejections.push(r);
                            }
                        }
                        batch_bytes += events.iter().map(|e| e.payload.len()).sum::<usize>();
                        batch.extend(events);
                        if last_line > 0 {
                            reach = Some((file, last_line));
                        }
                        if batch.len() >= BATCH || batch_bytes >= BATCH_BYTES {
                            flush(store, &names, &mut batch, &mut reach, &mut summary).await?;
                            batch_bytes = 0;
                            bar.set_position(count.load(Ordering::Relaxed));
                            bar.set_message(format!("{} appended", summary.appended));
                        }
                    }
                    Done::Rejected(r) => {
                        *summary.rejected.entry(r.category).or_default() += 1;
                        if summary.rejections.len() < MAX_KEPT_REJECTIONS {
                            summary.rejections.push(r);
                        }
                    }
                    Done::FileEnd => {
                        // A batch never spans two files: its checkpoint names one.
                        flush(store, &names, &mut batch, &mut reach, &mut summary).await?;
                        batch_bytes = 0;
                        summary.files += 1;
                    }
                }
            }
        }
        flush(store, &names, &mut batch, &mut reach, &mut summary).await
    }
    .await;
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

/// Appends the batch with the checkpoint of the line it reaches.
async fn flush<S: EventLog>(
    store: &S,
    names: &[String],
    batch: &mut Vec<NewEvent>,
    reach: &mut Option<(usize, u64)>,
    summary: &mut IngestSummary,
) -> Result<(), IngestError> {
    let Some((file, line)) = reach.take() else {
        return Ok(());
    };
    let cp = Checkpoint {
        name: format!("ingest:{}", names[file]),
        value: format!("{{\"line\":{line}}}"),
    };
    let out = store.append(batch, Some(&cp)).await?;
    summary.appended += out.appended;
    summary.duplicates += out.duplicates;
    batch.clear();
    Ok(())
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
}
