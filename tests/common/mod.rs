//! Helpers shared by the integration tests: running the real binary against a store in
//! a temporary directory, writing recordings, reading the store back.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_rootline");

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as JSON (panics with both streams when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the process did not panic (a panic prints "panicked at" on stderr).
    pub fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked:\n{}",
            self.stderr
        );
    }
}

/// The `--database` URL of a store file.
pub fn db_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Runs `rootline --database DB ARGS...` with a clean environment for the options it reads.
pub fn rootline(db: &Path, args: &[&str]) -> Run {
    rootline_at(&db_url(db), args)
}

/// [`rootline`] on the store at `url`.
pub fn rootline_at(url: &str, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .arg("--database")
        .arg(url)
        .args(args)
        .env_remove("ROOTLINE_DATABASE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the rootline binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `rootline ingest --json --no-progress FILES...`.
pub fn ingest(db: &Path, files: &[&Path]) -> Run {
    ingest_at(&db_url(db), files)
}

/// [`ingest`] into the store at `url`.
pub fn ingest_at(url: &str, files: &[&Path]) -> Run {
    let mut args = vec!["ingest", "--json", "--no-progress"];
    let owned: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(owned.iter().map(String::as_str));
    rootline_at(url, &args)
}

/// One recording line around a payload given as JSON text.
pub fn line(source: &str, payload: &str) -> String {
    format!("{{\"source\":\"{source}\",\"recorded_at\":\"2025-10-07T14:02:11Z\",\"payload\":{payload}}}")
}

/// A minimal CloudTrail record.
pub fn cloudtrail(id: &str, time: &str, name: &str, request: &str) -> String {
    format!(
        "{{\"eventVersion\":\"1.09\",\"userIdentity\":{{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::123456789012:assumed-role/deploy/alice\"}},\"eventTime\":\"{time}\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"{name}\",\"awsRegion\":\"us-east-1\",\"requestParameters\":{request},\"responseElements\":null,\"eventID\":\"{id}\",\"readOnly\":{},\"eventType\":\"AwsApiCall\"}}",
        name.starts_with("Describe")
    )
}

/// Writes lines (each followed by a newline) to `dir/name` and returns the path.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).expect("write the recording");
    path
}

/// Opens a read connection to a store file (no migrations, no writes).
pub async fn read_conn(path: &Path) -> sqlx::SqliteConnection {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::ConnectOptions;
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .connect()
        .await
        .expect("open the store for reading")
}

/// `SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events`.
pub async fn count_and_max_seq(conn: &mut sqlx::SqliteConnection) -> (i64, i64) {
    sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(conn)
        .await
        .expect("count events")
}

/// Every stored (source, natural id), in sequence order.
pub async fn stored_keys(conn: &mut sqlx::SqliteConnection) -> Vec<(String, String)> {
    sqlx::query_as("SELECT source, natural_id FROM events ORDER BY seq")
        .fetch_all(conn)
        .await
        .expect("list keys")
}

/// Path of a file under the vendored real-data samples (fixtures/real, see its SOURCES.md).
pub fn real(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/real")).join(rel)
}

/// Path of a file under the bundled fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures")).join(rel)
}
