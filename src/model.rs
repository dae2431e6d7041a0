//! The event envelope: what every upstream payload is normalized into, and what the
//! event log stores. Parsing into these types happens once, at the boundary
//! (`normalize`); everything downstream works on them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The upstream format of a payload (RECORDINGS.md section 1), plus rootline's own
/// conclusions, which are appended to the same log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    #[serde(rename = "cloudtrail")]
    CloudTrail,
    #[serde(rename = "cloudwatch.alarm_history")]
    AlarmHistory,
    /// rootline's extension of the recording format: one alarm definition as
    /// DescribeAlarms returns it (a `MetricAlarms[]` or `CompositeAlarms[]` element).
    #[serde(rename = "cloudwatch.alarm")]
    AlarmDefinition,
    #[serde(rename = "eventbridge")]
    EventBridge,
    #[serde(rename = "github.deployment_status")]
    GithubDeploymentStatus,
    #[serde(rename = "logs")]
    Logs,
    #[serde(rename = "logs.anomaly")]
    LogsAnomaly,
    #[serde(rename = "config")]
    Config,
    /// Events rootline itself appends: incidents opened and resolved, hypotheses
    /// ranked, feedback, notifications.
    #[serde(rename = "rootline")]
    Rootline,
}

impl Source {
    /// Every source, in a stable order.
    pub const ALL: [Source; 9] = [
        Source::CloudTrail,
        Source::AlarmHistory,
        Source::AlarmDefinition,
        Source::EventBridge,
        Source::GithubDeploymentStatus,
        Source::Logs,
        Source::LogsAnomaly,
        Source::Config,
        Source::Rootline,
    ];

    /// Every source but rootline's own: where upstream events come from.
    pub fn upstream() -> Vec<Source> {
        Source::ALL
            .into_iter()
            .filter(|s| *s != Source::Rootline)
            .collect()
    }

    /// The name used in recordings, reports and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::CloudTrail => "cloudtrail",
            Source::AlarmHistory => "cloudwatch.alarm_history",
            Source::AlarmDefinition => "cloudwatch.alarm",
            Source::EventBridge => "eventbridge",
            Source::GithubDeploymentStatus => "github.deployment_status",
            Source::Logs => "logs",
            Source::LogsAnomaly => "logs.anomaly",
            Source::Config => "config",
            Source::Rootline => "rootline",
        }
    }

    /// Parses a source name; `None` for an unknown one.
    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.iter().copied().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event is, with the fields that matter for that kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// A mutating API call (or a configuration change recorded by AWS Config).
    Change,
    /// An alarm changed state.
    Alarm {
        alarm: String,
        old_state: String,
        new_state: String,
        reason: String,
    },
    /// A deployment progressed (ECS, CodeDeploy, GitHub).
    Deployment {
        /// The service, application or repository being deployed.
        target: String,
        /// Upstream phase or state, verbatim (e.g. SERVICE_DEPLOYMENT_IN_PROGRESS, success).
        phase: String,
        /// in_progress, succeeded, failed or unknown.
        outcome: String,
    },
    /// A log line.
    Log { group: String, message: String },
    /// A log anomaly (CloudWatch Logs anomaly detection, or rootline's own).
    Anomaly {
        group: String,
        pattern: String,
        priority: String,
        description: String,
    },
    /// A point-in-time description of a resource (AWS Config item).
    Snapshot {
        resource_type: String,
        resource_id: String,
        status: String,
    },
    /// Something rootline concluded (incident opened, hypotheses ranked, ...).
    Conclusion { what: String },
    /// Anything else; kept, never rejected.
    Other,
}

impl Kind {
    /// The short tag stored in the `kind` column.
    pub fn tag(&self) -> &'static str {
        match self {
            Kind::Change => "change",
            Kind::Alarm { .. } => "alarm",
            Kind::Deployment { .. } => "deployment",
            Kind::Log { .. } => "log",
            Kind::Anomaly { .. } => "anomaly",
            Kind::Snapshot { .. } => "snapshot",
            Kind::Conclusion { .. } => "conclusion",
            Kind::Other => "other",
        }
    }

    /// All tags, for validating filters.
    pub const TAGS: [&'static str; 8] = [
        "change",
        "alarm",
        "deployment",
        "log",
        "anomaly",
        "snapshot",
        "conclusion",
        "other",
    ];
}

/// A normalized event, ready to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub source: Source,
    /// Dedupe key within the source (RECORDINGS.md table).
    pub natural_id: String,
    /// When it happened, epoch milliseconds UTC.
    pub event_time: i64,
    /// When a collector received it, epoch milliseconds UTC (the recording's `recorded_at`).
    pub received_at: Option<i64>,
    pub kind: Kind,
    /// A short name: CloudTrail eventName, EventBridge detail-type, alarm name, ...
    pub name: String,
    /// Who did it: an IAM ARN, a GitHub login, a service principal.
    pub actor: Option<String>,
    pub read_only: bool,
    pub error_code: Option<String>,
    /// Canonical resource keys (see `normalize::resource`); the first is the primary target.
    pub resources: Vec<String>,
    /// The upstream payload, verbatim.
    pub payload: String,
}

impl NewEvent {
    /// The event as the store holds it once appended as `seq`.
    pub fn stored_as(self, seq: i64) -> Event {
        Event {
            seq,
            source: self.source,
            natural_id: self.natural_id,
            event_time: self.event_time,
            received_at: self.received_at,
            kind: self.kind,
            name: self.name,
            actor: self.actor,
            read_only: self.read_only,
            error_code: self.error_code,
            resources: self.resources,
            payload: self.payload,
        }
    }
}

/// A stored event: a `NewEvent` plus its sequence number in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub source: Source,
    pub natural_id: String,
    pub event_time: i64,
    pub received_at: Option<i64>,
    pub kind: Kind,
    pub name: String,
    pub actor: Option<String>,
    pub read_only: bool,
    pub error_code: Option<String>,
    pub resources: Vec<String>,
    pub payload: String,
}

impl Event {
    /// A `(source, natural id)` reference, as used in reports.
    pub fn reference(&self) -> EventRef {
        EventRef {
            source: self.source.as_str().to_string(),
            id: self.natural_id.clone(),
        }
    }

    /// True for an effective mutation: a change or deployment that was not read-only and
    /// did not fail.
    pub fn is_effective_change(&self) -> bool {
        matches!(self.kind, Kind::Change | Kind::Deployment { .. })
            && !self.read_only
            && self.error_code.is_none()
    }
}

/// A reference to a stored event by source and natural id (the report contract).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventRef {
    pub source: String,
    pub id: String,
}

/// The earliest event time accepted: 1970-01-01T00:00:00Z.
pub const MIN_TIME_MS: i64 = 0;
/// The latest event time accepted: 9999-12-31T23:59:59.999Z. Times outside these bounds
/// are rejected by every normalizer, so arithmetic on stored times (windows of hours or
/// days around them) stays far from `i64`'s limits.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// True when `ms` lies within the years 1970 to 9999.
pub fn time_in_range(ms: i64) -> bool {
    (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms)
}

/// Formats epoch milliseconds as RFC 3339 UTC with millisecond precision.
pub fn fmt_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// Parses an RFC 3339 timestamp (also the `+0000` offset form AWS sometimes writes, and
/// a missing offset, taken as UTC) into epoch milliseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, fmt) {
            return Some(t.timestamp_millis());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    None
}

/// Characters of an offending value quoted in an error message.
pub const QUOTED_PREFIX_CHARS: usize = 64;

/// An offending value as quoted in an error message: at most its first
/// [`QUOTED_PREFIX_CHARS`] characters, debug-quoted (control characters escaped), and
/// its length in bytes when it was cut. Input can be megabytes; messages stay short.
pub fn quote_prefix(s: &str) -> String {
    let mut chars = s.char_indices();
    match chars.nth(QUOTED_PREFIX_CHARS) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &s[..cut], s.len()),
    }
}

/// Text safe for a terminal: control characters (escape sequences in attacker-controlled
/// CloudTrail fields) become spaces.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Shortens text to `n` characters (control characters made spaces, as [`clean`]), ending
/// in an ellipsis when cut: table cells, summaries.
pub fn truncate(s: &str, n: usize) -> String {
    let clean = clean(s);
    if clean.chars().count() <= n {
        clean
    } else {
        let mut t: String = clean.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// An API name without the version suffix some AWS services append to it
/// (`UpdateFunctionConfiguration20150331v2` → `UpdateFunctionConfiguration`,
/// `ListFunctions20150331` → `ListFunctions`): a date (`19xx`/`20xx` followed by four
/// digits), optionally `v` and digits, after a letter. Anything else is returned as is.
/// Pages and reports show this; the event page keeps the raw name.
pub fn display_name(name: &str) -> &str {
    let b = name.as_bytes();
    let mut end = b.len();
    // Optional `v` + digits.
    let mut i = end;
    while i > 0 && b[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i < end && i > 0 && b[i - 1] == b'v' {
        end = i - 1;
    }
    if end < 9 {
        return name;
    }
    let date = &b[end - 8..end];
    let is_date =
        date.iter().all(u8::is_ascii_digit) && (date[..2] == *b"19" || date[..2] == *b"20");
    if is_date && b[end - 9].is_ascii_alphabetic() {
        &name[..end - 8]
    } else {
        name
    }
}

/// [`display_name`] applied to the words of a text that look like API names (ASCII
/// letters and digits starting with a capital, split at anything else), for summaries
/// that quote event names; ids and resource names (`backup20240101`) are left alone.
pub fn display_names_in(text: &str) -> String {
    let shown = |w: &str| -> String {
        if w.starts_with(|c: char| c.is_ascii_uppercase()) {
            display_name(w).to_string()
        } else {
            w.to_string()
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            out.push_str(&shown(&word));
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&shown(&word));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_suffixes_are_left_out_of_display_names() {
        assert_eq!(
            display_name("UpdateFunctionConfiguration20150331v2"),
            "UpdateFunctionConfiguration"
        );
        assert_eq!(display_name("TagResource20170331v2"), "TagResource");
        assert_eq!(display_name("ListFunctions20150331"), "ListFunctions");
        for same in [
            "RevokeSecurityGroupIngress",
            "v2",
            "20150331v2",
            "Foo12345678",
            "x-20150331",
            "AWS::EC2::SecurityGroup",
            "",
            "é20150331v2",
        ] {
            assert_eq!(display_name(same), same);
        }
        assert_eq!(
            display_names_in(
                "UpdateFunctionCode20150331v2 on lambda/fn-20150331v2 backup20240101, 4 min"
            ),
            "UpdateFunctionCode on lambda/fn-20150331v2 backup20240101, 4 min"
        );
    }

    #[test]
    fn parses_aws_time_shapes() {
        assert_eq!(parse_time("2025-05-17T02:28:15.450Z"), Some(1747448895450));
        assert_eq!(parse_time("2025-05-17T02:28:15Z"), Some(1747448895000));
        assert_eq!(
            parse_time("2025-05-17T02:28:15.450+0000"),
            Some(1747448895450)
        );
        assert_eq!(parse_time("2025-05-17T02:28:15.450"), Some(1747448895450));
        assert_eq!(parse_time("yesterday"), None);
        assert!(time_in_range(parse_time("1970-01-01T00:00:00Z").unwrap()));
        assert!(time_in_range(
            parse_time("9999-12-31T23:59:59.999Z").unwrap()
        ));
        assert!(!time_in_range(
            parse_time("1969-12-31T23:59:59.999Z").unwrap()
        ));
        assert_eq!(fmt_time(MAX_TIME_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(fmt_time(1747448895450), "2025-05-17T02:28:15.450Z");
    }

    #[test]
    fn quoted_values_are_short() {
        assert_eq!(quote_prefix("abc"), "\"abc\"");
        let long = "é".repeat(1 << 20);
        let q = quote_prefix(&long);
        assert!(q.len() < 200, "{q}");
        assert!(q.ends_with(&format!("… ({} bytes)", long.len())), "{q}");
    }

    #[test]
    fn source_names_round_trip() {
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Source::parse("cloudtrail2"), None);
    }

    #[test]
    fn text_for_cells_is_clean_and_cut() {
        assert_eq!(clean("a\x1b[31mb\n"), "a [31mb ");
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("a\tb", 5), "a b");
    }
}
