//! Where collected payloads go: optionally a recording (`--record FILE`), then the event
//! log, through the same normalizers `ingest` and `replay` use. A delivery is the raw
//! upstream JSON and the name of its source, nothing more.

use crate::model::{fmt_time, NewEvent, Source};
use crate::normalize;
use crate::store::{Checkpoint, EventLog, Store};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// One payload as received, in the recording's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The recording source name (`cloudtrail`, `logs.anomaly`, ...).
    pub source: &'static str,
    /// The upstream JSON text, on one line.
    pub payload: String,
}

impl Delivery {
    pub fn new(source: &'static str, payload: String) -> Self {
        Delivery {
            source,
            payload: super::json::compact(&payload),
        }
    }
}

/// What one delivery batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliverReport {
    pub received: u64,
    pub appended: u64,
    pub duplicates: u64,
    /// Payloads the normalizer refused (logged with the reason; never silently dropped).
    pub rejected: u64,
}

impl DeliverReport {
    pub fn add(&mut self, o: DeliverReport) {
        self.received += o.received;
        self.appended += o.appended;
        self.duplicates += o.duplicates;
        self.rejected += o.rejected;
    }
}

/// Appends recording lines to a file. One writer per path in the process, so the push
/// endpoints and every collector can share a recording without interleaving lines.
pub struct Recorder {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .finish()
    }
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Recorder>>> {
    static R: OnceLock<Mutex<HashMap<PathBuf, Arc<Recorder>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

impl Recorder {
    /// The recorder for `path` (created and opened for appending on first write).
    pub fn for_path(path: &Path) -> Arc<Recorder> {
        let key = path.to_path_buf();
        let mut reg = match registry().lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        reg.entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Recorder {
                    path: key,
                    file: Mutex::new(None),
                })
            })
            .clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes lines `{"source","recorded_at","payload"}`, flushed before returning.
    pub fn write(&self, recorded_at: i64, items: &[Delivery]) -> std::io::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let at = fmt_time(recorded_at);
        let mut buf = String::new();
        for d in items {
            let payload: &RawValue = match serde_json::from_str(&d.payload) {
                Ok(p) => p,
                Err(_) => continue, // not JSON: nothing a reader could use (counted upstream)
            };
            buf.push_str("{\"source\":");
            buf.push_str(&serde_json::Value::String(d.source.to_string()).to_string());
            buf.push_str(",\"recorded_at\":\"");
            buf.push_str(&at);
            buf.push_str("\",\"payload\":");
            buf.push_str(payload.get());
            buf.push_str("}\n");
        }
        let mut guard = match self.file.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
            *guard = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        if let Some(f) = guard.as_mut() {
            f.write_all(buf.as_bytes())?;
            f.flush()?;
        }
        Ok(())
    }
}

/// The store plus an optional recording.
#[derive(Clone, Debug)]
pub struct Sink {
    pub store: Store,
    pub recorder: Option<Arc<Recorder>>,
    /// Commit with a synced WAL ([`Store::append_durable`]): for deliveries
    /// acknowledged to their sender (the push endpoints), never with a checkpoint.
    pub durable: bool,
}

/// Current time, epoch milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Sink {
    pub fn new(store: Store, record: Option<&Path>) -> Self {
        Sink {
            store,
            recorder: record.map(Recorder::for_path),
            durable: false,
        }
    }

    /// Normalizes deliveries; the refused ones are logged and counted.
    pub fn normalize(items: &[Delivery], recorded_at: i64) -> (Vec<NewEvent>, u64) {
        let mut events = Vec::with_capacity(items.len());
        let mut rejected = 0;
        for d in items {
            let Some(source) = Source::parse(d.source).filter(|s| *s != Source::Rootline) else {
                tracing::warn!(
                    source = d.source,
                    "Delivery for a source this build does not know; not stored"
                );
                rejected += 1;
                continue;
            };
            match normalize::normalize(source, &d.payload, Some(recorded_at)) {
                Ok(ev) => events.push(ev),
                Err(e) => {
                    tracing::warn!(source = d.source, reason = %e, "Payload rejected by the normalizer");
                    rejected += 1;
                }
            }
        }
        (events, rejected)
    }

    /// Records (when recording) and appends a batch, with `checkpoint` committed in the
    /// same transaction as the events.
    pub async fn deliver(
        &self,
        items: &[Delivery],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<DeliverReport, super::CollectError> {
        let recorded_at = now_ms();
        if let Some(r) = &self.recorder {
            r.write(recorded_at, items).map_err(|e| {
                super::CollectError::permanent(format!(
                    "cannot write the recording {}: {e}",
                    r.path().display()
                ))
            })?;
        }
        let (events, rejected) = Self::normalize(items, recorded_at);
        if events.is_empty() && checkpoint.is_none() {
            return Ok(DeliverReport {
                received: items.len() as u64,
                rejected,
                ..Default::default()
            });
        }
        let out = match (self.durable, checkpoint) {
            (true, None) => self.store.append_durable(&events).await,
            _ => self.store.append(&events, checkpoint).await,
        }
        .map_err(|e| super::CollectError::transient(format!("store: {e}")))?;
        Ok(DeliverReport {
            received: items.len() as u64,
            appended: out.appended,
            duplicates: out.duplicates,
            rejected,
        })
    }
}
