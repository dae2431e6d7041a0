//! Helpers shared by the collector tests: real samples, stores, contexts, moto_server.
#![allow(dead_code)]

#[path = "../announced/mod.rs"]
mod announced;

use rootline::collect::{Ctx, RetryPolicy, Sink};
use rootline::model::Event;
use rootline::store::{EventFilter, EventLog, Store};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;
use tokio::sync::watch;

/// A real sample from fixtures/real (see its SOURCES.md).
pub fn real(rel: &str) -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/real")
        .join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "the real sample {} is needed by this test: {e}",
            p.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `output` of the first example in an aws-cli-examples file.
pub fn cli_output(file: &str) -> serde_json::Value {
    real(&format!("aws-cli-examples/{file}"))[0]["output"].clone()
}

pub async fn memory_store() -> Store {
    crate::matrix::memory_store().await
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

pub fn ctx(store: &Store, record: Option<&Path>) -> (Ctx, watch::Sender<bool>) {
    let (tx, rx) = watch::channel(false);
    (
        Ctx::new(Sink::new(store.clone(), record), fast_retry(), rx),
        tx,
    )
}

/// Stored events as comparable tuples (everything but the sequence number), sorted.
pub async fn snapshot(store: &Store) -> Vec<String> {
    let events: Vec<Event> = store.query(&EventFilter::default()).await.expect("query");
    let mut v: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::json!([
                e.source.as_str(),
                e.natural_id,
                e.event_time,
                e.received_at,
                e.kind,
                e.name,
                e.actor,
                e.read_only,
                e.error_code,
                e.resources,
                e.payload
            ])
            .to_string()
        })
        .collect();
    v.sort();
    v
}

/// Ingests a recording into a fresh store and returns its snapshot.
pub async fn replay(path: &Path) -> Vec<String> {
    let store = memory_store().await;
    let s = rootline::ingest::ingest_files(&store, &[path.to_path_buf()], false)
        .await
        .expect("ingest");
    assert_eq!(
        s.rejected_total(),
        0,
        "replay rejected lines: {:?}",
        s.rejections
    );
    snapshot(&store).await
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

// ------------------------------------------------------------------ moto_server

/// A moto_server on a free 127.0.0.1 port, killed on drop.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The moto_server binary: ROOTLINE_MOTO_SERVER, else `moto_server` on PATH. Tests that
/// need it fail (never skip) without it.
pub fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ROOTLINE_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("moto_server");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "moto_server not found: set ROOTLINE_MOTO_SERVER to its path or put it on PATH \
         (python3 -m venv /work/venv && /work/venv/bin/pip install 'moto[server]')"
    );
}

/// A moto_server on a port the OS picked (see tests/announced).
pub fn start_moto() -> Moto {
    let mut cmd = Command::new(moto_binary());
    cmd.args(["-H", "127.0.0.1", "-p", "0"]);
    let (child, port) = announced::spawn_announced(
        cmd,
        announced::Stream::Stderr,
        "Running on http://127.0.0.1:",
        Duration::from_secs(60),
    );
    Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// SDK configuration pointed at moto with dummy static credentials and no SDK retries
/// (unimplemented operations answer an HTML 500).
pub async fn moto_sdk_config(url: &str) -> aws_config::SdkConfig {
    use aws_config::{retry::RetryConfig, BehaviorVersion, Region};
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_cloudwatchlogs::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

// ------------------------------------------------------------------ HTTP

/// A minimal HTTP/1.1 POST over a fresh connection; returns (status, body).
pub async fn http_post(
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    // The server may answer (413) before reading everything; ignore write errors then.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// The messages of the log events stored in the database file at `db`, sorted.
pub async fn stored_log_messages(db: &Path) -> Vec<String> {
    let store = Store::open(&crate::matrix::store_url(db))
        .await
        .expect("open the store");
    let stored = store
        .query(&EventFilter {
            sources: vec![rootline::model::Source::Logs],
            ..Default::default()
        })
        .await
        .expect("query");
    store.close().await;
    let mut messages: Vec<String> = stored
        .iter()
        .filter_map(|e| match &e.kind {
            rootline::model::Kind::Log { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect();
    messages.sort();
    messages
}
