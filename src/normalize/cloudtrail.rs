//! CloudTrail records: management and data events, from S3 log files, LookupEvents,
//! or EventBridge "AWS API Call via CloudTrail" deliveries.

use super::resource::{from_arn, from_dimension, from_host, from_id, hosts_in_text};
use super::{get, required_id, required_time, skeleton, str_at, Result};
use crate::model::{Kind, NewEvent};
use serde::Deserialize as _;
use serde_json::Value;

/// Event name prefixes of calls that never change anything, for records that do not
/// carry `readOnly` (older records and some EventBridge copies).
const READ_PREFIXES: &[&str] = &[
    "Get", "List", "Describe", "Head", "Lookup", "BatchGet", "Search", "Scan", "Query", "Select",
    "Check", "Estimate", "Validate", "Preview", "Test", "Simulate", "View",
];

/// Request keys that name the primary target of a call, most specific first.
const PRIMARY_KEYS: &[&str] = &[
    "functionName",
    "roleName",
    "userName",
    "dBInstanceIdentifier",
    "dBClusterIdentifier",
    "autoScalingGroupName",
    "service",
    "serviceName",
    "loadBalancerArn",
    "loadBalancerName",
    "targetGroupArn",
    "groupId",
    "tableName",
    "bucketName",
    "queueUrl",
    "topicArn",
    "alarmName",
    "logGroupName",
    "instanceId",
];

/// The top-level fields of a record that [`normalize`] reads. [`parse`] builds only these;
/// a field read by `normalize` must be listed here (the tests compare both parses on
/// every real record in fixtures/).
const READ_FIELDS: &[&str] = &[
    "eventID",
    "eventTime",
    "eventName",
    "eventType",
    "readOnly",
    "errorCode",
    "userIdentity",
    "sourceIPAddress",
    "eventSource",
    "requestParameters",
    "resources",
    "responseElements",
];

/// Parses a record's JSON text as `serde_json::from_str` would, keeping only the fields
/// [`normalize`] reads: the others (userAgent, tlsDetails, requestID, additionalEventData,
/// ...) are checked and skipped instead of built into a tree and dropped again, which was
/// most of a parser thread's time. The same text is rejected (not JSON, trailing
/// characters) and a repeated field keeps its last value, as with a whole parse; a record
/// that is not an object gives a non-object, as before.
pub(super) fn parse(text: &str) -> serde_json::Result<Value> {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
    use std::borrow::Cow;

    struct Record;
    impl<'de> Visitor<'de> for Record {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a CloudTrail record")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if READ_FIELDS.contains(&key.as_ref()) {
                    let value: Value = map.next_value()?;
                    out.insert(key.into_owned(), value);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Value::Object(out))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    // Not an object: the whole value, so the caller sees what it is.
    let value = match text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        true => (&mut de).deserialize_map(Record)?,
        false => Value::deserialize(&mut de)?,
    };
    de.end()?;
    Ok(value)
}

pub(super) fn normalize(p: &Value) -> Result<NewEvent> {
    let id = required_id(p, &["eventID"], "eventID")?;
    let time = required_time(p, &["eventTime"], "eventTime")?;
    let name = str_at(p, &["eventName"]).unwrap_or("(unnamed)").to_string();
    let event_type = str_at(p, &["eventType"]).unwrap_or("AwsApiCall");
    let read_only = match get(p, &["readOnly"]) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => READ_PREFIXES.iter().any(|pre| name.starts_with(pre)),
    };
    let kind = match event_type {
        "AwsApiCall" | "AwsServiceEvent" => Kind::Change,
        _ => Kind::Other,
    };
    let mut ev = skeleton(id, time, kind, name.clone());
    ev.read_only = read_only;
    ev.error_code = str_at(p, &["errorCode"])
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    ev.actor = actor(p);
    ev.resources = resources(p, &name, read_only);
    Ok(ev)
}

fn actor(p: &Value) -> Option<String> {
    let ui = get(p, &["userIdentity"])?;
    str_at(ui, &["arn"])
        .or_else(|| str_at(ui, &["sessionContext", "sessionIssuer", "arn"]))
        .or_else(|| str_at(ui, &["userName"]))
        .or_else(|| str_at(ui, &["invokedBy"]))
        .or_else(|| str_at(p, &["sourceIPAddress"]))
        .or_else(|| str_at(ui, &["type"]))
        .map(str::to_string)
}

/// Resource keys a record touches: primary target first, then everything its
/// `resources[]`, request and (for writes) response name.
fn resources(p: &Value, event_name: &str, read_only: bool) -> Vec<String> {
    let source = str_at(p, &["eventSource"]).unwrap_or("");
    let service = source.split('.').next().unwrap_or("");
    let mut out = Vec::new();
    let req = get(p, &["requestParameters"]);
    if let Some(req) = req {
        for k in PRIMARY_KEYS {
            if let Some(v) = req.get(*k) {
                walk(v, k, service, event_name, &mut out, 0);
                if !out.is_empty() {
                    break;
                }
            }
        }
        walk(req, "", service, event_name, &mut out, 0);
    }
    if let Some(Value::Array(rs)) = get(p, &["resources"]) {
        for r in rs {
            if let Some(a) = str_at(r, &["ARN"]).or_else(|| str_at(r, &["arn"])) {
                out.extend(from_arn(a));
            }
        }
    }
    if !read_only {
        if let Some(resp) = get(p, &["responseElements"]) {
            walk(resp, "", service, event_name, &mut out, 0);
        }
    }
    out
}

/// Maps a request key holding a name (not an ARN or id) to a resource type.
fn key_for_name(key: &str, service: &str, event_name: &str, value: &str) -> Option<String> {
    let t = match key {
        "functionName" => "lambda",
        "roleName" => "iam-role",
        "userName" if service == "iam" => "iam-user",
        "dBInstanceIdentifier" | "dbInstanceIdentifier" => "rds",
        "dBClusterIdentifier" | "dbClusterIdentifier" => "rds-cluster",
        "dBParameterGroupName" => "rds-pg",
        "autoScalingGroupName" => "asg",
        "launchConfigurationName" => "launch-config",
        "loadBalancerName" => "lb",
        "tableName" => "dynamodb",
        "bucketName" => "s3",
        "logGroupName" => "loggroup",
        "alarmName" | "alarmNames" => "alarm",
        "trailName" => "trail",
        "secretId" => "secret",
        "applicationName" if service == "codedeploy" => "codedeploy-app",
        "deploymentGroupName" => "codedeploy-group",
        "cluster" if service == "ecs" => "ecs-cluster",
        "service" | "serviceName" if service == "ecs" => "ecs-service",
        "taskDefinition" | "family" if service == "ecs" => {
            let fam = value.split(':').next().unwrap_or(value);
            return Some(format!("ecs-taskdef/{fam}"));
        }
        "queueUrl" => {
            let name = value
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(value);
            return Some(format!("sqs/{name}"));
        }
        "name" if service == "elasticloadbalancing" => {
            if event_name.contains("TargetGroup") {
                "tg"
            } else if event_name.contains("LoadBalancer") {
                "lb"
            } else {
                return None;
            }
        }
        "name" if service == "ecs" && event_name == "CreateCluster" => "ecs-cluster",
        // Route 53 record names and alias targets are hosts (an ELB DNS name maps to its LB).
        "name" | "dNSName" | "DNSName" if service == "route53" => return from_host(value),
        "dNSName" | "DNSName" => return from_host(value),
        _ => return None,
    };
    let v = value.trim();
    // Alarm names may contain spaces; other resource names may not.
    if v.is_empty() || v.len() > 256 || (t != "alarm" && v.contains(char::is_whitespace)) {
        return None;
    }
    Some(format!("{t}/{v}"))
}

const MAX_DEPTH: usize = 12;

/// Walks a request or response, collecting resource keys from ARNs, ids, known name
/// keys and metric dimensions.
fn walk(
    v: &Value,
    key: &str,
    service: &str,
    event_name: &str,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH || out.len() > 256 {
        return;
    }
    match v {
        Value::String(s) => {
            if let Some(k) = from_arn(s).or_else(|| from_id(s)) {
                out.push(k);
            } else if let Some(k) = key_for_name(key, service, event_name, s) {
                out.push(k);
            } else if s.contains("://") {
                hosts_in_text(s, out);
            }
        }
        Value::Array(items) if key == "values" || key == "Values" => {
            // Host-header rule conditions name the hosts a listener routes.
            for i in items {
                match i.as_str() {
                    Some(h) if h.contains('.') => out.extend(from_host(h)),
                    _ => walk(i, key, service, event_name, out, depth + 1),
                }
            }
        }
        Value::Array(items) => {
            if key == "dimensions" || key == "Dimensions" {
                for d in items {
                    let n = str_at(d, &["name"]).or_else(|| str_at(d, &["Name"]));
                    let val = str_at(d, &["value"]).or_else(|| str_at(d, &["Value"]));
                    if let (Some(n), Some(val)) = (n, val) {
                        out.extend(from_dimension(n, val));
                    }
                }
                return;
            }
            for item in items {
                walk(item, key, service, event_name, out, depth + 1);
            }
        }
        Value::Object(map) => {
            if key.eq_ignore_ascii_case("iamInstanceProfile") {
                // {"Name": ...} or {"name": ...}: the instance profile by name.
                if let Some(n) = map
                    .get("Name")
                    .or_else(|| map.get("name"))
                    .and_then(Value::as_str)
                {
                    out.push(format!("instance-profile/{}", n.trim()));
                }
            }
            for (k, child) in super::entries(map) {
                // Where an alarm sends notifications says nothing about what it watches,
                // and one topic shared by every alarm would relate them all.
                // Likewise who created or last updated a resource (a deployment role) is
                // not part of what it is.
                if matches!(
                    k.as_str(),
                    "alarmActions"
                        | "oKActions"
                        | "insufficientDataActions"
                        | "createdBy"
                        | "updatedBy"
                        | "userIdentity"
                ) {
                    continue;
                }
                // EC2 wraps lists as {"items": [...]}: keep the parent key for context.
                let k = if k == "items" || k == "member" {
                    key
                } else {
                    k.as_str()
                };
                walk(child, k, service, event_name, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Finds ARNs and EC2-style ids in free text or nested JSON (deployment descriptions
/// and payloads), appending their keys.
pub(super) fn scan_text_for_resources(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            for tok in s.split(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '(' | ')' | '[' | ']')
            }) {
                let tok = tok.trim_end_matches(['.', ';']);
                out.extend(from_arn(tok).or_else(|| from_id(tok)));
            }
        }
        Value::Array(items) => items.iter().for_each(|i| scan_text_for_resources(i, out)),
        Value::Object(map) => super::entries(map)
            .into_iter()
            .for_each(|(_, i)| scan_text_for_resources(i, out)),
        _ => {}
    }
}
