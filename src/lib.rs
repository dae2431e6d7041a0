//! rootline: what changed, and which change broke it?
//!
//! The crate is laid out along the data flow: `normalize` turns upstream payloads into
//! events, `ingest` reads files into the `store` (the append-only event log),
//! `correlate` derives incidents and ranked root-cause hypotheses from the log, and
//! `cli` is the command line over all of it.

pub mod bench;
pub mod cli;
pub mod collect;
pub mod correlate;
pub mod ingest;
pub mod model;
pub mod normalize;
pub mod notify;
pub mod store;
pub mod telemetry;
pub mod web;
