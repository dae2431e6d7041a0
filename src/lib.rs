//! rootline: what changed, and which change broke it?
//!
//! The crate is laid out along the data flow, each module depending only on those
//! listed before it:
//!
//! - `model`, `telemetry`: the event envelope, times, text for terminals; logging and
//!   component states.
//! - `normalize`: upstream payloads into events (canonical resource keys, kinds, facts).
//! - `store`: the append-only event log (`EventLog`, SQLite).
//! - `ingest`: files (recordings, CloudTrail logs) into the store.
//! - `correlate`: the engine, a pure function from events to incidents and ranked
//!   hypotheses.
//! - `project`: the projector, keeping the projections (resource graph, alarm
//!   definitions and states) current from the log.
//! - `conclusions`: what rootline records of its own (the engine's conclusions, verdicts,
//!   the GitHub issue outbox), typed, read and written in one place.
//! - `collect`, `notify`, `web`: AWS collectors and push endpoints; the GitHub issue
//!   worker; the pages. None of them imports another or anything above.
//! - `app`: the composition root (settings, the store, `serve` wired together).
//! - `cli`: the command line.
//! - `bench` (feature `bench`): benchmarks.

pub mod app;
#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod collect;
pub mod conclusions;
pub mod correlate;
pub mod ingest;
pub mod model;
pub mod normalize;
pub mod notify;
pub mod project;
pub mod store;
pub mod telemetry;
pub mod web;
