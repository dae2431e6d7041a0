//! Prometheus metrics for `/metrics`: request latencies per route, kept in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Histogram bucket bounds, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Request latency histograms by (route, status class).
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    /// Records one request. The lock is never held across an await.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        let Ok(mut map) = self.requests.lock() else {
            return;
        };
        let h = map
            .entry((route.to_string(), format!("{}xx", status / 100)))
            .or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
    }

    /// The request histograms in Prometheus text format.
    pub fn render_requests(&self, out: &mut String) {
        use std::fmt::Write;
        let Ok(map) = self.requests.lock() else {
            return;
        };
        let _ = writeln!(
            out,
            "# HELP rootline_http_request_duration_seconds Server-side request latency."
        );
        let _ = writeln!(
            out,
            "# TYPE rootline_http_request_duration_seconds histogram"
        );
        for ((route, status), h) in map.iter() {
            let labels = format!("route=\"{}\",status=\"{status}\"", escape(route));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "rootline_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "rootline_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "rootline_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "rootline_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
}

/// Escapes a Prometheus label value.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
