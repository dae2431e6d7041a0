//! rootline's own log anomaly detection, on the log groups it reads: new error patterns
//! and error-rate spikes against a baseline.
//!
//! Detection runs on closed minutes (older than the logs lag window) of the events
//! already in the log, so it sees each line once whatever the polling did, and its
//! state (known patterns, the baseline) lives in the collector's checkpoint, committed
//! with the anomalies it produced. Its findings are written in the `logs.anomaly` shape
//! (one `anomalies[]` element of ListAnomalies) with anomaly ids in the `rootline:`
//! namespace, `anomalyDetectorArn` "rootline:derived:...", and `"derivedBy": "rootline"`,
//! so they can never be mistaken for CloudWatch's own.

use super::config::DetectConfig;
use super::json::Obj;
use super::Delivery;
use crate::model::{fmt_time, Event, Kind};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

/// Minutes evaluated in one pass at most (older ones are skipped after a long outage).
pub const MAX_MINUTES_PER_PASS: i64 = 24 * 60;
/// Known patterns kept per group (the oldest are forgotten first).
pub const MAX_PATTERNS: usize = 5000;
const MINUTE: i64 = 60_000;
/// EWMA weight of one minute (about an hour of memory).
const ALPHA: f64 = 2.0 / 61.0;

/// Error lines of one pattern: (time, message).
type Hits<'a> = Vec<(i64, &'a str)>;

/// What detection remembers between passes (in the checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectState {
    /// Minutes before this (epoch ms, minute aligned) are evaluated.
    pub evaluated_through: Option<i64>,
    /// Hashes of known error patterns, oldest first.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Minutes in the baseline.
    #[serde(default)]
    pub minutes: u64,
    #[serde(default)]
    pub mean: f64,
    #[serde(default)]
    pub var: f64,
}

/// Compiled settings.
#[derive(Debug, Clone)]
pub struct Detector {
    pub cfg: DetectConfig,
    error: Regex,
}

impl Detector {
    pub fn new(cfg: DetectConfig) -> Result<Self, regex::Error> {
        let error = Regex::new(&cfg.error_pattern)?;
        Ok(Detector { cfg, error })
    }

    pub fn is_error(&self, message: &str) -> bool {
        self.error.is_match(message)
    }

    /// Evaluates the minutes in `[from, to)` (minute aligned) over `events` (the group's
    /// log events in that range). In a learning pass (the first one), patterns and the
    /// baseline are learnt and nothing is reported.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate(
        &self,
        state: &mut DetectState,
        events: &[Event],
        from: i64,
        to: i64,
        learning: bool,
        group: &str,
        group_arn: &str,
    ) -> Vec<Delivery> {
        let mut out = Vec::new();
        // Error lines by minute.
        let mut by_minute: BTreeMap<i64, Vec<(i64, &str)>> = BTreeMap::new();
        for e in events {
            if e.event_time < from || e.event_time >= to {
                continue;
            }
            let Kind::Log { message, .. } = &e.kind else {
                continue;
            };
            if self.is_error(message) {
                by_minute
                    .entry(e.event_time.div_euclid(MINUTE) * MINUTE)
                    .or_default()
                    .push((e.event_time, message.as_str()));
            }
        }
        let mut known: HashSet<String> = state.patterns.iter().cloned().collect();
        let gid = short_hash(group, 8);
        let mut m = from;
        while m < to {
            let mut lines = by_minute.remove(&m).unwrap_or_default();
            lines.sort_by_key(|l| l.0);
            // Error patterns of the minute, in order of first appearance.
            let mut patterns: Vec<(String, String, Hits<'_>)> = Vec::new();
            for (t, msg) in &lines {
                let tpl = template(msg);
                let h = short_hash(&tpl, 16);
                match patterns.iter_mut().find(|p| p.0 == h) {
                    Some(p) => p.2.push((*t, msg)),
                    None => patterns.push((h, tpl, vec![(*t, msg)])),
                }
            }
            for (h, tpl, hits) in &patterns {
                if known.insert(h.clone()) {
                    state.patterns.push(h.clone());
                    if !learning {
                        out.push(anomaly(
                            &format!("rootline:new-pattern:{gid}:{h}"),
                            h,
                            "rootline:derived:new-error-pattern",
                            tpl,
                            "MEDIUM",
                            &format!(
                                "rootline-derived: new error pattern in {group}: {} line(s) in the minute from {}",
                                hits.len(),
                                fmt_time(m)
                            ),
                            m,
                            hits,
                            group_arn,
                        ));
                    }
                }
            }
            let count = lines.len() as f64;
            let sd = state.var.max(0.0).sqrt();
            if !learning
                && state.minutes >= self.cfg.warmup_minutes
                && lines.len() as u64 >= self.cfg.min_errors.max(1)
                && count >= self.cfg.spike_factor * state.mean.max(0.5)
                && count > state.mean + self.cfg.sigma * sd
            {
                let top = patterns.iter().max_by_key(|p| p.2.len());
                let (h, tpl) = top
                    .map(|p| (p.0.as_str(), p.1.as_str()))
                    .unwrap_or(("", ""));
                out.push(anomaly(
                    &format!("rootline:error-rate:{gid}:{m}"),
                    h,
                    "rootline:derived:error-rate",
                    tpl,
                    "HIGH",
                    &format!(
                        "rootline-derived: error-rate spike in {group}: {} error lines in the minute from {} against a baseline of {:.1} per minute",
                        lines.len(),
                        fmt_time(m),
                        state.mean
                    ),
                    m,
                    &lines,
                    group_arn,
                ));
            }
            let delta = count - state.mean;
            state.mean += ALPHA * delta;
            state.var = (1.0 - ALPHA) * (state.var + ALPHA * delta * delta);
            state.minutes += 1;
            m += MINUTE;
        }
        if state.patterns.len() > MAX_PATTERNS {
            let drop = state.patterns.len() - MAX_PATTERNS;
            state.patterns.drain(..drop);
        }
        state.evaluated_through = Some(to);
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn anomaly(
    id: &str,
    pattern_id: &str,
    detector: &str,
    pattern: &str,
    priority: &str,
    description: &str,
    minute: i64,
    hits: &[(i64, &str)],
    group_arn: &str,
) -> Delivery {
    let first = hits.first().map(|h| h.0).unwrap_or(minute);
    let last = hits.last().map(|h| h.0).unwrap_or(minute);
    let samples: Vec<Obj> = hits
        .iter()
        .take(3)
        .map(|(t, m)| {
            Obj::new()
                .i64("timestamp", Some(*t))
                .str("message", Some(m))
        })
        .collect();
    let samples_text = format!(
        "[{}]",
        samples
            .into_iter()
            .map(Obj::finish)
            .collect::<Vec<_>>()
            .join(",")
    );
    let histogram = serde_json::json!({ minute.to_string(): hits.len() });
    let payload = Obj::new()
        .str("anomalyId", Some(id))
        .str("patternId", Some(pattern_id))
        .str("anomalyDetectorArn", Some(detector))
        .str("patternString", Some(pattern))
        .str("priority", Some(priority))
        .i64("firstSeen", Some(first))
        .i64("lastSeen", Some(last))
        .str("description", Some(description))
        .bool("active", Some(true))
        .str("state", Some("Active"))
        .value("histogram", &histogram)
        .raw("logSamples", &samples_text)
        .strs("logGroupArnList", Some(&[group_arn.to_string()]))
        .bool("suppressed", Some(false))
        .str("derivedBy", Some("rootline"))
        .finish();
    Delivery::new("logs.anomaly", payload)
}

/// A short hex digest.
pub fn short_hash(s: &str, len: usize) -> String {
    let d = Sha256::digest(s.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    hex[..len.min(hex.len())].to_string()
}

fn template_regexes() -> &'static [(Regex, &'static str)] {
    static R: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    R.get_or_init(|| {
        [
            // Timestamps, UUIDs, IPs, hex ids, quoted values, numbers: the variable parts.
            (
                r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
                "<*>",
            ),
            (
                r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                "<*>",
            ),
            (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<*>"),
            (r#""[^"]*"|'[^']*'"#, "<*>"),
            // Any word with a digit in it: numbers, hex ids, request ids, k12, v2.
            (r"\b\w*\d\w*\b", "<*>"),
            (r"\s+", " "),
        ]
        .iter()
        .filter_map(|(re, rep)| Regex::new(re).ok().map(|r| (r, *rep)))
        .collect()
    })
}

/// The pattern of a log line: its variable parts (numbers, ids, times, quoted values)
/// replaced by `<*>`.
pub fn template(message: &str) -> String {
    let mut s: String = message.chars().take(2000).collect();
    for (re, rep) in template_regexes() {
        s = re.replace_all(&s, *rep).into_owned();
    }
    let s = s.trim();
    s.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_hide_variable_parts() {
        assert_eq!(
            template("2025-01-01T10:00:00.123Z ERROR request 5f0c1a2b-1234-4abc-9def-0123456789ab failed after 503 ms from 10.0.0.12"),
            "<*> ERROR request <*> failed after <*> ms from <*>"
        );
        assert_eq!(
            template("ERROR user \"bob\" id=deadbeef01"),
            template("ERROR user \"alice\" id=cafe0002ff")
        );
        assert_ne!(
            template("ERROR connection refused"),
            template("ERROR disk full")
        );
    }
}
