//! Normalizers: one upstream payload in, one event envelope out.
//!
//! Each source's format is parsed once here; nothing downstream looks at raw payloads
//! except to show them. What the engine needs from a stored payload beyond the
//! envelope (the ids that tie deliveries of one change together, who made a call) is
//! read by `facts`. A payload that lacks its natural id or event time is rejected
//! with a reason; everything else is kept, unknown shapes as `Kind::Other`.

mod cloudtrail;
mod eventbridge;
pub mod facts;
pub mod resource;

use crate::model::{fmt_time, parse_time, quote_prefix, time_in_range, Kind, NewEvent, Source};
use serde_json::Value;

/// The entries of a JSON object in key order, whatever map serde_json was built with: its
/// `preserve_order` feature (which any crate in a build can turn on, as a test
/// dependency does) keeps document order instead, and what an event touches must not
/// depend on the build.
pub(crate) fn entries(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(&String, &serde_json::Value)> {
    let mut v: Vec<(&String, &serde_json::Value)> = map.iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    v
}

/// Why a payload could not be normalized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormalizeError {
    #[error("payload is not a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` should be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    /// `value` is already quoted and cut ([`quote_prefix`]).
    #[error("field `{field}` is not a valid time: {value}")]
    BadTime { field: &'static str, value: String },
    /// The event time parsed but lies outside the years 1970 to 9999 (`value` as
    /// given, quoted and cut).
    #[error("event time {value} is outside the years 1970 to 9999")]
    TimeOutOfRange { value: String },
}

impl NormalizeError {
    /// A short stable reason code for summaries ("missing field", ...).
    pub fn reason(&self) -> &'static str {
        match self {
            NormalizeError::NotAnObject => "payload not an object",
            NormalizeError::Missing(_) => "missing id or time",
            NormalizeError::WrongType { .. } => "wrong type",
            NormalizeError::BadTime { .. } => "invalid time",
            NormalizeError::TimeOutOfRange { .. } => "time out of range",
        }
    }
}

type Result<T> = std::result::Result<T, NormalizeError>;

/// Normalizes one payload of `source`; `raw` is its verbatim JSON text.
pub fn normalize(source: Source, raw: &str, received_at: Option<i64>) -> Result<NewEvent> {
    let payload: Value = match source {
        Source::CloudTrail => cloudtrail::parse(raw),
        _ => serde_json::from_str(raw),
    }
    .map_err(|_| NormalizeError::NotAnObject)?;
    normalize_value(source, &payload, raw, received_at)
}

/// Normalizes an already parsed payload; `raw` is kept verbatim in the event.
pub fn normalize_value(
    source: Source,
    payload: &Value,
    raw: &str,
    received_at: Option<i64>,
) -> Result<NewEvent> {
    if !payload.is_object() {
        return Err(NormalizeError::NotAnObject);
    }
    let mut ev = match source {
        Source::CloudTrail => cloudtrail::normalize(payload)?,
        Source::AlarmHistory => alarm_history(payload)?,
        Source::AlarmDefinition => alarm_definition(payload)?,
        Source::EventBridge => eventbridge::normalize(payload)?,
        Source::GithubDeploymentStatus => github_deployment_status(payload)?,
        Source::Logs => logs(payload)?,
        Source::LogsAnomaly => logs_anomaly(payload)?,
        Source::Config => config(payload)?,
        Source::Rootline => rootline(payload)?,
    };
    // One check for every source: later arithmetic on times (windows around them) can
    // then never overflow.
    if !time_in_range(ev.event_time) {
        return Err(NormalizeError::TimeOutOfRange {
            value: quote_prefix(&fmt_time(ev.event_time)),
        });
    }
    ev.source = source;
    ev.received_at = received_at.filter(|t| time_in_range(*t));
    ev.payload = raw.to_string();
    dedupe(&mut ev.resources);
    Ok(ev)
}

/// An event with only the parts every normalizer fills in; the rest is set by the caller.
fn skeleton(natural_id: String, event_time: i64, kind: Kind, name: String) -> NewEvent {
    NewEvent {
        source: Source::Rootline,
        natural_id,
        event_time,
        received_at: None,
        kind,
        name,
        actor: None,
        read_only: false,
        error_code: None,
        resources: Vec::new(),
        payload: String::new(),
    }
}

/// Removes repeated keys, keeping the first occurrence (the first key is the primary one).
fn dedupe(keys: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    keys.truncate(64);
}

// ----------------------------------------------------------------- field helpers

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// A required string field; a number is accepted as its decimal text.
fn required_id(v: &Value, path: &[&str], field: &'static str) -> Result<String> {
    match get(v, path) {
        None => Err(NormalizeError::Missing(field)),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(NormalizeError::Missing(field)),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(NormalizeError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

/// A required RFC 3339 time string.
fn required_time(v: &Value, path: &[&str], field: &'static str) -> Result<i64> {
    match get(v, path) {
        None => Err(NormalizeError::Missing(field)),
        Some(Value::String(s)) => parse_time(s).ok_or_else(|| NormalizeError::BadTime {
            field,
            value: quote_prefix(s),
        }),
        Some(_) => Err(NormalizeError::WrongType {
            field,
            expected: "an RFC 3339 string",
        }),
    }
}

/// A required time given as an RFC 3339 string or as epoch seconds (a number, as CBOR and
/// some SDKs give it).
fn required_time_or_epoch_secs(v: &Value, path: &[&str], field: &'static str) -> Result<i64> {
    match get(v, path) {
        Some(Value::Number(n)) => {
            n.as_f64()
                .map(|s| (s * 1000.0) as i64)
                .ok_or(NormalizeError::WrongType {
                    field,
                    expected: "epoch seconds or an RFC 3339 string",
                })
        }
        _ => required_time(v, path, field),
    }
}

/// A required epoch-milliseconds number (a numeric string is accepted too).
fn required_epoch_ms(v: &Value, path: &[&str], field: &'static str) -> Result<i64> {
    match get(v, path) {
        None => Err(NormalizeError::Missing(field)),
        Some(Value::Number(n)) => {
            n.as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or(NormalizeError::WrongType {
                    field,
                    expected: "epoch milliseconds",
                })
        }
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| parse_time(s))
            .ok_or_else(|| NormalizeError::BadTime {
                field,
                value: quote_prefix(s),
            }),
        Some(_) => Err(NormalizeError::WrongType {
            field,
            expected: "epoch milliseconds",
        }),
    }
}

/// The JSON text of a scalar as given: strings unquoted, numbers as written.
fn as_given(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

// ----------------------------------------------------------------- sources

/// Parses "Alarm updated from OK to ALARM" into the two states.
fn states_from_summary(summary: &str) -> Option<(String, String)> {
    let rest = summary.split(" from ").nth(1)?;
    let mut it = rest.splitn(2, " to ");
    let old = it.next()?.trim();
    let new = it.next()?.trim();
    Some((old.to_string(), new.to_string()))
}

fn alarm_history(p: &Value) -> Result<NewEvent> {
    let alarm = required_id(p, &["AlarmName"], "AlarmName")?;
    let ts_raw = get(p, &["Timestamp"]).ok_or(NormalizeError::Missing("Timestamp"))?;
    let ts_text = as_given(ts_raw).ok_or(NormalizeError::WrongType {
        field: "Timestamp",
        expected: "an RFC 3339 string",
    })?;
    let time = required_time(p, &["Timestamp"], "Timestamp")?;
    let natural_id = format!("{alarm}@{ts_text}");
    let item_type = str_at(p, &["HistoryItemType"]).unwrap_or("");
    let data: Option<Value> = match get(p, &["HistoryData"]) {
        Some(Value::String(s)) => serde_json::from_str(s).ok(),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        _ => None,
    };
    let mut resources = vec![format!("alarm/{alarm}")];
    let kind = match item_type {
        "StateUpdate" => {
            let from_data = data.as_ref().and_then(|d| {
                let old = str_at(d, &["oldState", "stateValue"])?;
                let new = str_at(d, &["newState", "stateValue"])?;
                let reason = str_at(d, &["newState", "stateReason"]).unwrap_or("");
                Some((old.to_string(), new.to_string(), reason.to_string()))
            });
            let (old_state, new_state, reason) = match from_data {
                Some(t) => t,
                None => {
                    let summary = str_at(p, &["HistorySummary"]).unwrap_or("");
                    let (o, n) = states_from_summary(summary).unwrap_or_default();
                    (o, n, summary.to_string())
                }
            };
            Kind::Alarm {
                alarm: alarm.clone(),
                old_state,
                new_state,
                reason,
            }
        }
        "ConfigurationUpdate" => Kind::Change,
        _ => Kind::Other,
    };
    if let Some(d) = &data {
        eventbridge::alarm_dimensions(d, &mut resources);
    }
    let mut ev = skeleton(natural_id, time, kind, alarm);
    ev.resources = resources;
    Ok(ev)
}

/// One DescribeAlarms element (metric or composite alarm): a snapshot of the alarm's
/// definition, keyed by ARN and configuration time so an unchanged alarm is one event.
/// Its resources are the alarm, the resources its metric dimensions name (so alarm
/// history transitions, which carry no dimensions, attach to them) and, for a composite
/// alarm, the alarms its rule names.
fn alarm_definition(p: &Value) -> Result<NewEvent> {
    let alarm = required_id(p, &["AlarmName"], "AlarmName")?;
    let arn = required_id(p, &["AlarmArn"], "AlarmArn")?;
    let field = "AlarmConfigurationUpdatedTimestamp";
    let time = required_time_or_epoch_secs(p, &[field], field)?;
    // A string or a number once the time parsed; the id keeps it as given.
    let ts_text = get(p, &[field])
        .and_then(as_given)
        .ok_or(NormalizeError::Missing(field))?;
    let rule = str_at(p, &["AlarmRule"]);
    let mut resources = vec![format!("alarm/{alarm}")];
    eventbridge::alarm_dimensions(p, &mut resources);
    if let Some(rule) = rule {
        resources.extend(
            alarm_rule_refs(rule)
                .into_iter()
                .map(|a| format!("alarm/{a}")),
        );
    }
    let resource_type = if rule.is_some() {
        "AWS::CloudWatch::CompositeAlarm"
    } else {
        "AWS::CloudWatch::Alarm"
    };
    let mut ev = skeleton(
        format!("{arn}@{ts_text}"),
        time,
        Kind::Snapshot {
            resource_type: resource_type.to_string(),
            resource_id: alarm.clone(),
            status: "described".to_string(),
        },
        alarm,
    );
    ev.resources = resources;
    Ok(ev)
}

/// The alarms a composite alarm's rule names: `ALARM("name")`, `OK(name)`,
/// `INSUFFICIENT_DATA(arn)`, and the lists of `AT_LEAST(2, ALARM, ("a", "b"))`.
/// Names given as ARNs are reduced to the name.
fn alarm_rule_refs(rule: &str) -> Vec<String> {
    fn push(out: &mut Vec<String>, raw: &str) {
        let t = raw.trim().trim_matches('"').trim();
        if t.is_empty() || t.chars().all(|c| c.is_ascii_digit() || c == '%') {
            return;
        }
        if ["ALARM", "OK", "INSUFFICIENT_DATA", "NOT ALARM", "NOT OK"].contains(&t) {
            return;
        }
        let name = t.rsplit_once(":alarm:").map_or(t, |(_, n)| n);
        if !out.iter().any(|x| x == name) {
            out.push(name.to_string());
        }
    }
    let mut out = Vec::new();
    let b = rule.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &rule[i..];
        let func = ["ALARM(", "OK(", "INSUFFICIENT_DATA(", "AT_LEAST("]
            .into_iter()
            .find(|f| rest.starts_with(f));
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let (Some(f), true) = (func, boundary) else {
            // Step over one character (rules are ASCII in practice; stay on boundaries).
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        // The argument runs to the matching parenthesis; quoted names may hold any.
        let start = i + f.len();
        let (mut depth, mut quoted, mut end) = (1usize, false, b.len());
        for (j, &c) in b.iter().enumerate().skip(start) {
            match c {
                b'"' => quoted = !quoted,
                b'(' if !quoted => depth += 1,
                b')' if !quoted => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let arg = &rule[start..end];
        if f == "AT_LEAST(" {
            // AT_LEAST(M, STATE, (a, b, ...)): the names are in the inner list.
            if let Some((_, list)) = arg.split_once('(') {
                split_names(list.trim_end_matches(')'), |n| push(&mut out, n));
            }
        } else {
            push(&mut out, arg);
        }
        i = end.max(start);
    }
    out
}

/// Splits a comma-separated list whose items may be double-quoted (commas inside
/// quotes do not split).
fn split_names(list: &str, mut f: impl FnMut(&str)) {
    let mut quoted = false;
    let mut from = 0;
    for (j, c) in list.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                f(&list[from..j]);
                from = j + 1;
            }
            _ => {}
        }
    }
    f(&list[from..]);
}

fn deployment_outcome(state: &str) -> &'static str {
    match state.to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "completed" | "service_deployment_completed" => "succeeded",
        "failure" | "failed" | "error" | "service_deployment_failed" | "stopped" => "failed",
        "inactive" => "inactive",
        "pending" | "queued" | "in_progress" | "start" | "created" | "ready" => "in_progress",
        s if s.contains("in_progress") => "in_progress",
        _ => "unknown",
    }
}

fn github_deployment_status(p: &Value) -> Result<NewEvent> {
    let id = required_id(p, &["deployment_status", "id"], "deployment_status.id")?;
    let time = required_time(
        p,
        &["deployment_status", "created_at"],
        "deployment_status.created_at",
    )?;
    let state = str_at(p, &["deployment_status", "state"]).unwrap_or("unknown");
    let repo = str_at(p, &["repository", "full_name"])
        .map(str::to_string)
        .or_else(|| {
            // repository_url: https://api.github.com/repos/OWNER/NAME
            let url = str_at(p, &["deployment_status", "repository_url"])?;
            let idx = url.find("/repos/")?;
            Some(url[idx + 7..].to_string())
        })
        .unwrap_or_default();
    let env = str_at(p, &["deployment_status", "environment"])
        .or_else(|| str_at(p, &["deployment", "environment"]))
        .unwrap_or("");
    let mut ev = skeleton(
        id,
        time,
        Kind::Deployment {
            target: repo.clone(),
            phase: state.to_string(),
            outcome: deployment_outcome(state).to_string(),
        },
        format!("deployment {state}"),
    );
    ev.actor = str_at(p, &["deployment_status", "creator", "login"])
        .or_else(|| str_at(p, &["sender", "login"]))
        .map(str::to_string);
    if let Some(url) = str_at(p, &["deployment_status", "environment_url"]) {
        resource::hosts_in_text(url, &mut ev.resources);
    }
    if !repo.is_empty() {
        ev.resources.push(format!("github-repo/{repo}"));
        if !env.is_empty() {
            ev.resources.push(format!("github-env/{repo}:{env}"));
        }
    }
    // Deployments often name what they deploy (an ARN, a stack or service name) in
    // free text; ARNs and ids found there link the deployment to AWS resources.
    for path in [
        &["deployment", "description"][..],
        &["deployment", "payload"][..],
        &["deployment_status", "description"][..],
    ] {
        if let Some(v) = get(p, path) {
            cloudtrail::scan_text_for_resources(v, &mut ev.resources);
        }
    }
    Ok(ev)
}

/// ARNs and URL hosts mentioned in free text (log messages, samples). Cheap checks
/// first: most lines mention neither.
fn text_resources(text: &str, out: &mut Vec<String>) {
    if text.contains("arn:") {
        cloudtrail::scan_text_for_resources(&Value::String(text.to_string()), out);
    }
    if text.contains("://") {
        resource::hosts_in_text(text, out);
    }
}

/// Log groups whose names follow an AWS convention that names the emitting resource.
fn log_group_resources(group: &str, out: &mut Vec<String>) {
    out.push(format!("loggroup/{group}"));
    if let Some(f) = group.strip_prefix("/aws/lambda/") {
        out.push(format!("lambda/{f}"));
    } else if let Some(rest) = group.strip_prefix("/aws/rds/instance/") {
        if let Some(db) = rest.split('/').next() {
            out.push(format!("rds/{db}"));
        }
    }
}

fn logs(p: &Value) -> Result<NewEvent> {
    let id = required_id(p, &["eventId"], "eventId")?;
    let time = required_epoch_ms(p, &["timestamp"], "timestamp")?;
    let group = str_at(p, &["logGroupName"]).unwrap_or("").to_string();
    let message = match get(p, &["message"]) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let mut resources = Vec::new();
    if !group.is_empty() {
        log_group_resources(&group, &mut resources);
    }
    // Stream names often carry the emitting instance or task (i-0abc.../app.log).
    if let Some(stream) = str_at(p, &["logStreamName"]) {
        for seg in stream.split(['/', '[', ']']) {
            resources.extend(resource::from_id(seg));
        }
    }
    text_resources(&message, &mut resources);
    let mut ev = skeleton(
        id,
        time,
        Kind::Log {
            group: group.clone(),
            message,
        },
        "log".to_string(),
    );
    ev.read_only = true;
    ev.resources = resources;
    Ok(ev)
}

fn logs_anomaly(p: &Value) -> Result<NewEvent> {
    let id = required_id(p, &["anomalyId"], "anomalyId")?;
    let time = required_epoch_ms(p, &["firstSeen"], "firstSeen")?;
    let mut resources = Vec::new();
    let mut group = String::new();
    if let Some(Value::Array(arns)) = get(p, &["logGroupArnList"]) {
        for a in arns.iter().filter_map(Value::as_str) {
            if let Some(k) = resource::from_arn(a) {
                if let Some(g) = k.strip_prefix("loggroup/") {
                    if group.is_empty() {
                        group = g.to_string();
                    }
                    log_group_resources(g, &mut resources);
                } else {
                    resources.push(k);
                }
            }
        }
    }
    if let Some(Value::Array(samples)) = get(p, &["logSamples"]) {
        for m in samples.iter().filter_map(|s| str_at(s, &["message"])) {
            text_resources(m, &mut resources);
        }
    }
    let pattern = str_at(p, &["patternString"]).unwrap_or("").to_string();
    let mut ev = skeleton(
        id,
        time,
        Kind::Anomaly {
            group,
            pattern: pattern.clone(),
            priority: str_at(p, &["priority"]).unwrap_or("").to_string(),
            description: str_at(p, &["description"]).unwrap_or("").to_string(),
        },
        "log anomaly".to_string(),
    );
    ev.read_only = true;
    ev.resources = resources;
    Ok(ev)
}

/// Normalizes an AWS Config ConfigurationItem (also used for the item inside an
/// EventBridge "Config Configuration Item Change").
fn config_item(p: &Value) -> Result<(String, String, String, Vec<String>)> {
    let rtype = required_id(p, &["resourceType"], "resourceType")?;
    let rid = required_id(p, &["resourceId"], "resourceId")?;
    let status = str_at(p, &["configurationItemStatus"])
        .unwrap_or("")
        .to_string();
    let mut resources = Vec::new();
    let name = str_at(p, &["resourceName"]);
    let primary = str_at(p, &["arn"])
        .and_then(resource::from_arn)
        .or_else(|| resource::from_config(&rtype, &rid, name));
    resources.extend(primary);
    if let Some(Value::Array(rels)) = get(p, &["relationships"]) {
        for r in rels {
            let (Some(t), Some(id)) = (str_at(r, &["resourceType"]), str_at(r, &["resourceId"]))
            else {
                if let (Some(t), Some(n)) =
                    (str_at(r, &["resourceType"]), str_at(r, &["resourceName"]))
                {
                    resources.extend(resource::from_config(t, n, Some(n)));
                }
                continue;
            };
            resources.extend(resource::from_config(t, id, str_at(r, &["resourceName"])));
        }
    }
    // `configuration` (a JSON string or object) names what relationships leave out,
    // e.g. an ASG's target groups or an ECS service's load balancers.
    match get(p, &["configuration"]) {
        Some(Value::String(c)) => {
            if let Ok(v) = serde_json::from_str::<Value>(c) {
                cloudtrail::scan_text_for_resources(&v, &mut resources);
            }
        }
        Some(v) => cloudtrail::scan_text_for_resources(v, &mut resources),
        None => {}
    }
    // The Auto Scaling group tag is set by AWS on every instance it launches.
    if let Some(asg) = str_at(p, &["tags", "aws:autoscaling:groupName"]) {
        resources.push(format!("asg/{asg}"));
    }
    Ok((rtype, rid, status, resources))
}

fn config(p: &Value) -> Result<NewEvent> {
    let (rtype, rid, status, resources) = config_item(p)?;
    let state_id = get(p, &["configurationStateId"])
        .and_then(as_given)
        .ok_or(NormalizeError::Missing("configurationStateId"))?;
    let time = required_time_or_epoch_secs(
        p,
        &["configurationItemCaptureTime"],
        "configurationItemCaptureTime",
    )?;
    let natural_id = format!("{rtype}/{rid}@{state_id}");
    let mut ev = skeleton(
        natural_id,
        time,
        Kind::Snapshot {
            resource_type: rtype.clone(),
            resource_id: rid,
            status,
        },
        rtype,
    );
    ev.resources = resources;
    Ok(ev)
}

/// rootline's own events carry their normalized form in the payload.
fn rootline(p: &Value) -> Result<NewEvent> {
    let id = required_id(p, &["id"], "id")?;
    let time = required_time(p, &["time"], "time")?;
    let what = str_at(p, &["type"]).unwrap_or("conclusion").to_string();
    let mut ev = skeleton(id, time, Kind::Conclusion { what: what.clone() }, what);
    ev.actor = Some("rootline".to_string());
    if let Some(Value::Array(rs)) = get(p, &["resources"]) {
        ev.resources = rs
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect();
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every CloudTrail record (an object with `eventID` and `eventTime`) in `v`.
    fn cloudtrail_records(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.contains_key("eventID") && m.contains_key("eventTime") {
                    out.push(v.to_string());
                }
                m.values().for_each(|x| cloudtrail_records(x, out));
            }
            Value::Array(items) => items.iter().for_each(|x| cloudtrail_records(x, out)),
            // Records carried as text (LookupEvents' CloudTrailEvent).
            Value::String(s) if s.starts_with('{') => {
                if let Ok(inner) = serde_json::from_str::<Value>(s) {
                    cloudtrail_records(&inner, out);
                }
            }
            _ => {}
        }
    }

    /// The CloudTrail parse that builds only the fields the normalizer reads gives the
    /// same events as a whole parse, on every real record under fixtures/real and on
    /// hand-made texts that a field list could get wrong.
    #[test]
    fn cloudtrail_records_normalize_the_same_from_the_fields_read() {
        fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    files(&p, out);
                } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
                    out.push(p);
                }
            }
        }
        let mut paths = Vec::new();
        files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/real"),
            &mut paths,
        );
        paths.sort();
        let mut records = Vec::new();
        for p in &paths {
            let text = std::fs::read_to_string(p).unwrap();
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => cloudtrail_records(&v, &mut records),
                Err(_) => text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .for_each(|v| cloudtrail_records(&v, &mut records)),
            }
        }
        assert!(records.len() > 500, "{} records", records.len());
        let whole = |raw: &str| match serde_json::from_str::<Value>(raw) {
            Ok(v) => normalize_value(Source::CloudTrail, &v, raw, Some(7)),
            Err(_) => Err(NormalizeError::NotAnObject),
        };
        let ct = r#""eventID":"e-1","eventTime":"2025-01-01T00:00:00Z","eventName":"AuthorizeSecurityGroupIngress","eventSource":"ec2.amazonaws.com""#;
        let made = [
            format!(
                r#"{{{ct},"requestParameters":{{"groupId":"sg-0000000000000000a"}},"userAgent":"x"}}"#
            ),
            // An escaped key is the same key.
            format!(r#"{{{ct},"request\u0050arameters":{{"groupId":"sg-0000000000000000b"}}}}"#),
            // A repeated field keeps its last value; a skipped one changes nothing.
            format!(
                r#"{{{ct},"requestParameters":{{"groupId":"sg-0000000000000000c"}},"requestParameters":{{"groupId":"sg-0000000000000000d"}},"tlsDetails":{{"a":[1,{{"b":null}}]}}}}"#
            ),
            format!(
                r#"{{{ct},"eventName":"DeleteBucket","userIdentity":{{"arn":"arn:aws:iam::1:user/a"}}}}"#
            ),
            // Bad JSON in a skipped field, trailing characters, not an object.
            format!(r#"{{{ct},"userAgent":[1,}}"#),
            format!(r#"{{{ct}}} x"#),
            format!(r#"  {{{ct}}}  "#),
            "[1,2]".to_string(),
            "\"text\"".to_string(),
            String::new(),
        ];
        for raw in records.iter().chain(&made) {
            assert_eq!(
                normalize(Source::CloudTrail, raw, Some(7)),
                whole(raw),
                "{raw}"
            );
        }
        let third = normalize(Source::CloudTrail, &made[2], None).unwrap();
        assert_eq!(third.resources, ["sg/sg-0000000000000000d"]);
    }

    #[test]
    fn composite_alarm_rules_name_their_alarms() {
        assert_eq!(
            alarm_rule_refs(
                r#"ALARM("web-5xx") AND (OK(db-cpu) OR INSUFFICIENT_DATA("arn:aws:cloudwatch:us-east-1:123456789012:alarm:queue depth"))"#
            ),
            ["web-5xx", "db-cpu", "queue depth"]
        );
        assert_eq!(
            alarm_rule_refs(r#"AT_LEAST(2, ALARM, ("a", "b, c", d)) AND NOT ALARM(a)"#),
            ["a", "b, c", "d"]
        );
        // Unbalanced or empty input: no panic, nothing invented.
        assert_eq!(alarm_rule_refs("ALARM(\"x"), ["x"]);
        assert!(alarm_rule_refs("").is_empty());
        assert!(alarm_rule_refs("TRUE").is_empty());
        assert!(alarm_rule_refs("MYALARM(x) ÄLARM(").is_empty());
    }

    #[test]
    fn times_outside_1970_to_9999_are_rejected_by_every_normalizer() {
        let early = "1969-12-31T23:59:59Z";
        let late = "+10000-01-01T00:00:00Z";
        for time in [early, "0001-01-01T00:00:00Z"] {
            for (source, payload) in [
                (
                    Source::CloudTrail,
                    format!(r#"{{"eventID":"e","eventTime":"{time}"}}"#),
                ),
                (
                    Source::EventBridge,
                    format!(r#"{{"id":"i","time":"{time}","detail-type":"x"}}"#),
                ),
                (
                    Source::AlarmHistory,
                    format!(r#"{{"AlarmName":"a","Timestamp":"{time}"}}"#),
                ),
                (
                    Source::AlarmDefinition,
                    format!(
                        r#"{{"AlarmName":"a","AlarmArn":"x","AlarmConfigurationUpdatedTimestamp":"{time}"}}"#
                    ),
                ),
                (
                    Source::GithubDeploymentStatus,
                    format!(r#"{{"deployment_status":{{"id":1,"created_at":"{time}"}}}}"#),
                ),
                (
                    Source::Logs,
                    format!(r#"{{"eventId":"l","timestamp":"{time}"}}"#),
                ),
                (
                    Source::LogsAnomaly,
                    format!(r#"{{"anomalyId":"a","firstSeen":"{time}"}}"#),
                ),
                (
                    Source::Config,
                    format!(
                        r#"{{"resourceType":"T","resourceId":"r","configurationStateId":1,"configurationItemCaptureTime":"{time}"}}"#
                    ),
                ),
                (Source::Rootline, format!(r#"{{"id":"x","time":"{time}"}}"#)),
            ] {
                let e = normalize(source, &payload, None).unwrap_err();
                assert_eq!(e.reason(), "time out of range", "{source} {payload}: {e}");
                assert!(
                    e.to_string().contains("outside the years 1970 to 9999"),
                    "{e}"
                );
            }
        }
        // Epoch numbers far outside, including ones that do not fit in i64 milliseconds.
        for ts in ["-1", "1e300", "-1e300", "9223372036854775807"] {
            let p = format!(r#"{{"eventId":"l","timestamp":{ts}}}"#);
            let e = normalize(Source::Logs, &p, None).unwrap_err();
            assert_eq!(e.reason(), "time out of range", "{p}");
            let p = format!(
                r#"{{"AlarmName":"a","AlarmArn":"x","AlarmConfigurationUpdatedTimestamp":{ts}}}"#
            );
            let e = normalize(Source::AlarmDefinition, &p, None).unwrap_err();
            assert_eq!(e.reason(), "time out of range", "{p}");
        }
        // The bounds themselves are accepted; a later year does not even parse.
        for time in ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"] {
            let p = format!(r#"{{"eventID":"e","eventTime":"{time}"}}"#);
            assert!(normalize(Source::CloudTrail, &p, None).is_ok(), "{time}");
        }
        let p = format!(r#"{{"eventID":"e","eventTime":"{late}"}}"#);
        assert!(normalize(Source::CloudTrail, &p, None).is_err());
        // An out-of-range received time is dropped, not stored.
        let p = r#"{"eventID":"e","eventTime":"2025-01-01T00:00:00Z"}"#;
        assert_eq!(
            normalize(Source::CloudTrail, p, Some(i64::MAX))
                .unwrap()
                .received_at,
            None
        );
    }

    #[test]
    fn a_bad_time_quotes_only_a_prefix_of_the_value() {
        let big = "9".repeat(1 << 20);
        let p = format!(r#"{{"eventID":"e","eventTime":"{big}"}}"#);
        let e = normalize(Source::CloudTrail, &p, None)
            .unwrap_err()
            .to_string();
        assert!(e.len() < 200, "{} bytes", e.len());
        assert!(e.contains(&format!("({} bytes)", big.len())), "{e}");
    }

    #[test]
    fn alarm_definitions_need_arn_and_configuration_time() {
        let composite = r#"{"AlarmName":"checkout-down","AlarmArn":"arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-down","AlarmConfigurationUpdatedTimestamp":1760000000.5,"AlarmRule":"ALARM(web-5xx) OR ALARM(\"db-cpu\")","StateValue":"OK"}"#;
        let ev = normalize(Source::AlarmDefinition, composite, None).unwrap();
        assert_eq!(
            ev.natural_id,
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-down@1760000000.5"
        );
        assert_eq!(ev.event_time, 1_760_000_000_500);
        assert_eq!(
            ev.resources,
            ["alarm/checkout-down", "alarm/web-5xx", "alarm/db-cpu"]
        );
        assert!(matches!(&ev.kind, Kind::Snapshot { resource_type, .. }
            if resource_type == "AWS::CloudWatch::CompositeAlarm"));
        for (payload, reason) in [
            (
                r#"{"AlarmName":"a","AlarmConfigurationUpdatedTimestamp":"2025-01-01T00:00:00Z"}"#,
                "missing id or time",
            ),
            (r#"{"AlarmName":"a","AlarmArn":"x"}"#, "missing id or time"),
            (
                r#"{"AlarmName":"a","AlarmArn":"x","AlarmConfigurationUpdatedTimestamp":"soon"}"#,
                "invalid time",
            ),
            (
                r#"{"AlarmName":"a","AlarmArn":"x","AlarmConfigurationUpdatedTimestamp":true}"#,
                "wrong type",
            ),
        ] {
            let e = normalize(Source::AlarmDefinition, payload, None).unwrap_err();
            assert_eq!(e.reason(), reason, "{payload}");
        }
    }
}
