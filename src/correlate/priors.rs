//! How plausible is it that a change of this kind breaks something?
//!
//! Removals and reductions (revoke, detach, delete, a concurrency or capacity cut, a
//! smaller instance class) break things far more often than additions, and cosmetic or
//! bookkeeping writes (tags, retention, dashboards, alarm definitions, log streams)
//! practically never do. The tiers are coarse on purpose: they order kinds of change,
//! topology and time order the candidates within a tier.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Strips API version suffixes: `PutFunctionConcurrency20171031` ->
/// `PutFunctionConcurrency`, `UpdateFunctionConfiguration20150331v2` -> `UpdateFunctionConfiguration`.
pub fn base_name(name: &str) -> &str {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mut s = name;
    if let Some(i) = s.rfind('v') {
        if i >= 8 && s.is_char_boundary(i - 8) && digits(&s[i + 1..]) && digits(&s[i - 8..i]) {
            s = &s[..i];
        }
    }
    if s.len() > 8 && s.is_char_boundary(s.len() - 8) && digits(&s[s.len() - 8..]) {
        s = &s[..s.len() - 8];
    }
    s
}

/// Cosmetic or bookkeeping calls: they do not change how anything serves traffic.
const COSMETIC: &[&str] = &[
    "CreateTags",
    "DeleteTags",
    "AddTags",
    "AddTagsToResource",
    "RemoveTags",
    "RemoveTagsFromResource",
    "TagResource",
    "UntagResource",
    "TagRole",
    "UntagRole",
    "TagUser",
    "TagPolicy",
    "PutBucketTagging",
    "DeleteBucketTagging",
    "TagQueue",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "CreateLogStream",
    "CreateLogGroup",
    "PutLogEvents",
    "PutDashboard",
    "DeleteDashboards",
    "PutMetricAlarm",
    "DeleteAlarms",
    "PutCompositeAlarm",
    "EnableAlarmActions",
    "DisableAlarmActions",
    "SetAlarmState",
    "PutMetricData",
    "PutMetricFilter",
    "ConsoleLogin",
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetSessionToken",
    "CreateGrant",
    "RetireGrant",
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "PutEvaluations",
    "StartQuery",
    "StopQuery",
    "CreateSnapshot",
    "CopySnapshot",
    "CreateDBSnapshot",
    "PutBucketLifecycle",
    "PutBucketLifecycleConfiguration",
    "PutAnomalyDetector",
    "PutInsightRule",
    "PutResourcePolicy",
    "UpdateInstanceInformation",
    "SendCommand",
    "StartSession",
    "CreateLogDelivery",
    "PutDeliverySource",
    "PutSubscriptionFilter",
    "PutConfigurationRecorder",
    "PutDeliveryChannel",
    "StartConfigurationRecorder",
    "RegisterTaskDefinition",
    "CreateLaunchTemplateVersion",
    "PutScheduledUpdateGroupAction",
    "PutSecretValue",
    "RotateSecret",
    "UpdateSecretVersionStage",
    "PutParameter",
    "CreateAccessKey",
    "UpdateAccessKey",
    "ChangePassword",
    "CreateChangeSet",
    "BatchPutMessage",
    "SendMessage",
    "Publish",
    "PutObject",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "DeleteObject",
    "DeleteMessage",
    "PutRecord",
    "PutRecords",
];

/// Verbs that remove or cut something.
const REMOVING: &[&str] = &[
    "Revoke",
    "Detach",
    "Delete",
    "Remove",
    "Deregister",
    "Disable",
    "Disassociate",
    "Stop",
    "Terminate",
    "Deactivate",
    "Cancel",
    "Suspend",
    "Reboot",
    "Failover",
];
/// Calls that roll out new code or replace a running configuration wholesale.
const ROLLOUTS: &[&str] = &[
    "UpdateService",
    "UpdateFunctionCode",
    "UpdateStack",
    "ExecuteChangeSet",
    "CreateDeployment",
    "PublishVersion",
    "UpdateAlias",
    "StartInstanceRefresh",
    "PutFunctionConcurrency",
    "ModifyDBInstance",
    "ModifyDBCluster",
];
/// Verbs that modify in place.
const MODIFYING: &[&str] = &[
    "Update", "Modify", "Set", "Replace", "Change", "Reset", "Restore", "Apply", "Upload", "Put",
    "Import", "Migrate", "Switch", "Swap", "Promote",
];

/// The plausibility of a CloudTrail-style change by event name, and a word for why.
pub fn change_prior(name: &str) -> (f64, &'static str) {
    let n = base_name(name);
    if COSMETIC.contains(&n) {
        return (0.05, "bookkeeping");
    }
    if ROLLOUTS.contains(&n) {
        return (0.9, "rollout");
    }
    // Security group rules only allow: authorizing more cannot block anything.
    if n.starts_with("Authorize") {
        return (0.08, "grants access");
    }
    if REMOVING.iter().any(|v| n.starts_with(v)) {
        return (1.0, "removal");
    }
    if MODIFYING.iter().any(|v| n.starts_with(v)) {
        return (0.5, "modification");
    }
    // Create, Add, Attach, Associate, Enable, Start, Run, Register, ...
    (0.2, "addition")
}

/// The inverse of an event name's verb (`RevokeSecurityGroupIngress` ->
/// `AuthorizeSecurityGroupIngress`), for revert detection.
pub fn inverse_name(name: &str) -> Option<String> {
    const PAIRS: &[(&str, &str)] = &[
        ("Authorize", "Revoke"),
        ("Attach", "Detach"),
        ("Add", "Remove"),
        ("Create", "Delete"),
        ("Enable", "Disable"),
        ("Start", "Stop"),
        ("Register", "Deregister"),
        ("Associate", "Disassociate"),
        ("Put", "Delete"),
        ("Activate", "Deactivate"),
    ];
    let n = base_name(name);
    for (a, b) in PAIRS {
        if let Some(rest) = n.strip_prefix(b) {
            return Some(format!("{a}{rest}"));
        }
        if let Some(rest) = n.strip_prefix(a) {
            return Some(format!("{b}{rest}"));
        }
    }
    None
}

/// Rank of an instance size suffix (`db.t4g.large` -> large), for downsize detection.
fn size_rank(class: &str) -> Option<i32> {
    let size = class.rsplit('.').next()?;
    let r = match size {
        "nano" => 0,
        "micro" => 1,
        "small" => 2,
        "medium" => 3,
        "large" => 4,
        "xlarge" => 5,
        s => {
            let n: i32 = s.strip_suffix("xlarge")?.parse().ok()?;
            5 + n
        }
    };
    Some(r)
}

/// Why a call was refused, by its error code: a limit (throttling, quotas, capacity)
/// or a denial (permissions, a disabled key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    Limit,
    Denied,
}

/// The kind of refusal an error code names, if it names one.
pub fn refusal(code: &str) -> Option<Refusal> {
    let c = code.to_ascii_lowercase();
    const LIMIT: &[&str] = &[
        "throttl",
        "limitexceeded",
        "toomany",
        "quota",
        "insufficient",
        "requestlimit",
        "slowdown",
        "capacityexceeded",
        "throughputexceeded",
        "ratelimit",
    ];
    const DENIED: &[&str] = &[
        "accessdenied",
        "unauthorized",
        "forbidden",
        "notauthorized",
        "invalidstate",
        "disabled",
        "kmsaccess",
        "expiredtoken",
        "invalidclienttoken",
    ];
    if LIMIT.iter().any(|w| c.contains(w)) {
        Some(Refusal::Limit)
    } else if DENIED.iter().any(|w| c.contains(w)) {
        Some(Refusal::Denied)
    } else {
        None
    }
}

/// What a change did, read from its request, its response and earlier requests on the
/// same resource: the engine scores that, not only the call's verb.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Did {
    /// Capacity cut (`Some(true)`) or raised (`Some(false)`), at any depth of the request
    /// (a table's provisioned throughput, a parameter in a parameter group, a queue
    /// attribute), against the old value the response or an earlier request gives.
    pub capacity: Option<bool>,
    /// A Deny statement or deny rule added, or Allow statements taken away.
    pub denies: bool,
    /// Where traffic goes: listener actions, DNS records and alias targets, routes,
    /// target groups.
    pub routing: bool,
    /// Environment variables or configuration the workload reads at start.
    pub environment: bool,
    /// Only bookkeeping settings (backups, retention, windows, tags, descriptions,
    /// monitoring) beside the identifiers.
    pub bookkeeping: bool,
    /// The version it rolls out was the one running before the previous rollout: a
    /// rollback, to this version.
    pub rollback_to: Option<String>,
    /// Only capacity settings (counts, sizes, limits) beside the identifiers: a scaling,
    /// not a rollout, whatever the call.
    pub only_capacity: bool,
    /// What changed, in words: `readCapacityUnits 200 -> 5`, `adds Deny dynamodb:*`.
    pub detail: Vec<String>,
}

/// Keys whose numbers measure capacity (lower case, substrings).
const CAPACITY_WORDS: &[&str] = &[
    "capacity",
    "size",
    "concurren",
    "count",
    "memory",
    "throughput",
    "iops",
    "limit",
    "timeout",
    "units",
    "connections",
    "max",
];
/// Settings that do not change how anything serves traffic (lower case, substrings).
const BOOKKEEPING_WORDS: &[&str] = &[
    "backup",
    "retention",
    "window",
    "tag",
    "description",
    "monitoring",
    "insights",
    "deletionprotection",
    "minorversion",
    "log",
    "comment",
    "notification",
    "maintenance",
    "tracing",
];
/// Keys that say where traffic goes (lower case, substrings).
const ROUTING_WORDS: &[&str] = &[
    "actions",
    "aliastarget",
    "resourcerecord",
    "dnsname",
    "destinationcidr",
    "gatewayid",
    "forwardconfig",
    "weight",
    "origin",
];
/// Keys that name the version a rollout runs (lower case, whole last segment).
const VERSION_KEYS: &[&str] = &[
    "taskdefinition",
    "functionversion",
    "imageuri",
    "image",
    "revision",
    "commitid",
    "sha",
    "codesha256",
    "s3objectversion",
    "launchtemplateversion",
    "version",
];

/// Keys that identify rather than configure (lower case, suffixes or whole keys).
fn identifying(key: &str) -> bool {
    ["identifier", "name", "arn", "id", "url", "token"]
        .iter()
        .any(|s| key.ends_with(s))
        || ["applyimmediately", "dryrun", "force", "cluster", "service"].contains(&key)
}

/// A request flattened to its leaves: `provisionedThroughput.readCapacityUnits` -> 5. A
/// list of {name, value} pairs (parameters, attributes, variables) is keyed by name.
fn leaves(v: &Value, prefix: &str, out: &mut BTreeMap<String, Value>, depth: usize) {
    if depth > 8 || out.len() > 512 {
        return;
    }
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        // An empty object or list is still a setting: `"environment": {}` is how
        // CloudTrail shows environment variables it does not log.
        Value::Object(m) if m.is_empty() && !prefix.is_empty() => {
            out.insert(prefix.to_string(), v.clone());
        }
        Value::Object(m) => {
            for (k, x) in m {
                leaves(x, &join(k), out, depth + 1);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                let named = [
                    "parameterName",
                    "ParameterName",
                    "name",
                    "Name",
                    "key",
                    "Key",
                ]
                .iter()
                .find_map(|k| x.get(*k).and_then(Value::as_str));
                let value = ["parameterValue", "ParameterValue", "value", "Value"]
                    .iter()
                    .find_map(|k| x.get(*k));
                match (named, value) {
                    (Some(n), Some(val)) => {
                        out.insert(join(n), val.clone());
                    }
                    _ => leaves(x, &join(&i.to_string()), out, depth + 1),
                }
            }
        }
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()))
}

fn last_segment(path: &str) -> String {
    path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase()
}

/// The statements of every policy document a request holds (as a JSON string, as
/// CloudTrail logs `policyDocument`, or as an object).
fn statements(v: &Value, out: &mut Vec<Value>, depth: usize) {
    if depth > 6 || out.len() > 64 {
        return;
    }
    match v {
        Value::String(s) if s.trim_start().starts_with('{') && s.contains("Statement") => {
            if let Ok(doc) = serde_json::from_str::<Value>(s) {
                statements(&doc, out, depth + 1);
            }
        }
        Value::Object(m) => match m.get("Statement") {
            Some(Value::Array(st)) => out.extend(st.iter().cloned()),
            Some(st @ Value::Object(_)) => out.push(st.clone()),
            _ => m.values().for_each(|x| statements(x, out, depth + 1)),
        },
        Value::Array(items) => items.iter().for_each(|x| statements(x, out, depth + 1)),
        _ => {}
    }
}

/// The actions a set of statements allows, as "action on resource" strings.
fn allowed(st: &[Value]) -> BTreeSet<String> {
    let list = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = BTreeSet::new();
    for s in st {
        if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        for a in list(s.get("Action")) {
            for r in list(s.get("Resource"))
                .into_iter()
                .chain(s.get("Resource").is_none().then(|| "*".to_string()))
            {
                out.insert(format!("{a} on {r}"));
            }
        }
    }
    out
}

/// What a change did: `req` its request, `resp` its response (when it echoes old values,
/// as ModifyDBInstance does), `before` earlier requests on the same resource, latest
/// first.
pub fn what_it_did(req: &Value, resp: Option<&Value>, before: &[&Value]) -> Did {
    let mut did = Did::default();
    let mut new = BTreeMap::new();
    leaves(req, "", &mut new, 0);
    let mut echoed = BTreeMap::new();
    if let Some(r) = resp {
        leaves(r, "", &mut echoed, 0);
    }
    let olds: Vec<BTreeMap<String, Value>> = before
        .iter()
        .map(|b| {
            let mut m = BTreeMap::new();
            leaves(b, "", &mut m, 0);
            m
        })
        .collect();
    let old_of = |path: &str, v: &Value| -> Option<Value> {
        echoed
            .get(path)
            .filter(|o| *o != v)
            .cloned()
            .or_else(|| olds.iter().find_map(|m| m.get(path).cloned()))
    };
    let (mut reduced, mut increased) = (false, false);
    let mut settings = 0usize;
    let mut harmless = 0usize;
    let mut sizing = 0usize;
    for (path, v) in &new {
        let key = last_segment(path);
        let lpath = path.to_ascii_lowercase();
        if !identifying(&key) {
            settings += 1;
            if BOOKKEEPING_WORDS.iter().any(|w| lpath.contains(w)) {
                harmless += 1;
            }
        }
        if ROUTING_WORDS.iter().any(|w| lpath.contains(w)) && !lpath.contains("alarmactions") {
            did.routing = true;
        }
        if lpath.contains("environment") || lpath.contains("variables") {
            did.environment = true;
        }
        if (key == "ruleaction" || key == "action" || key == "effect")
            && v.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("deny") || s.eq_ignore_ascii_case("block"))
        {
            did.denies = true;
            did.detail
                .push(format!("{path} {}", v.as_str().unwrap_or("deny")));
        }
        let capacity_like = CAPACITY_WORDS.iter().any(|w| key.contains(w));
        if capacity_like && !identifying(&key) {
            sizing += 1;
        }
        let old = old_of(path, v);
        if let Some(n) = number(v) {
            if capacity_like && n <= 1.0 && (key.contains("concurren") || key.contains("capacity"))
            {
                reduced = true;
                did.detail.push(format!("{path} to {n}"));
                continue;
            }
            if let Some(o) = old.as_ref().and_then(number) {
                if capacity_like && n < o {
                    reduced = true;
                    did.detail.push(format!("{path} {o} -> {n}"));
                } else if capacity_like && n > o {
                    increased = true;
                    did.detail.push(format!("{path} {o} -> {n}"));
                }
            }
        } else if let Some(n) = v.as_str() {
            if key.ends_with("class") || key.ends_with("instancetype") {
                let old_rank = old.as_ref().and_then(Value::as_str).and_then(size_rank);
                if let (Some(a), Some(b)) = (size_rank(n), old_rank) {
                    if a < b {
                        reduced = true;
                    } else if a > b {
                        increased = true;
                    }
                    did.detail.push(format!(
                        "{path} {} -> {n}",
                        old.as_ref().and_then(Value::as_str).unwrap_or("")
                    ));
                }
            }
            if VERSION_KEYS.contains(&key.as_str()) && did.rollback_to.is_none() {
                // The previous rollout's version differs, an older one's is this one.
                let mut history = olds
                    .iter()
                    .filter_map(|m| m.get(path).and_then(Value::as_str));
                if let Some(prev) = history.next() {
                    if prev != n && history.any(|h| h == n) {
                        did.rollback_to = Some(n.to_string());
                    }
                }
            }
        }
    }
    did.capacity = if reduced {
        Some(true)
    } else if increased {
        Some(false)
    } else {
        None
    };
    did.bookkeeping = settings > 0 && harmless == settings && !did.denies;
    did.only_capacity = settings > 0 && sizing == settings;
    let mut st = Vec::new();
    statements(req, &mut st, 0);
    for s in &st {
        if s.get("Effect").and_then(Value::as_str) == Some("Deny") {
            did.denies = true;
            let action = match s.get("Action") {
                Some(Value::String(a)) => a.clone(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "actions".into(),
            };
            did.detail.push(format!("adds Deny {action}"));
        }
    }
    if !st.is_empty() && !did.denies {
        // Allow statements only: does it take away any that the same policy allowed?
        let now = allowed(&st);
        let name = req.get("policyName").or_else(|| req.get("policyArn"));
        let earlier = before
            .iter()
            .find(|b| name.is_some() && b.get("policyName").or_else(|| b.get("policyArn")) == name);
        if let Some(b) = earlier {
            let mut old = Vec::new();
            statements(b, &mut old, 0);
            let gone: Vec<String> = allowed(&old).difference(&now).cloned().collect();
            if !gone.is_empty() {
                did.denies = true;
                did.detail
                    .push(format!("removes Allow {}", gone.join(", ")));
            }
        }
    }
    did
}

/// Whether a change reduces capacity (`Some(true)`), increases it (`Some(false)`), or
/// neither can be told (`None`); see [`what_it_did`].
pub fn reduction(req: &Value, resp: Option<&Value>, before: &[&Value]) -> Option<bool> {
    if !req.is_object() {
        return None;
    }
    what_it_did(req, resp, before).capacity
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_priors() {
        assert_eq!(
            base_name("PutFunctionConcurrency20171031"),
            "PutFunctionConcurrency"
        );
        assert_eq!(
            base_name("UpdateFunctionConfiguration20150331v2"),
            "UpdateFunctionConfiguration"
        );
        assert_eq!(
            base_name("RevokeSecurityGroupIngress"),
            "RevokeSecurityGroupIngress"
        );
        assert_eq!(base_name("Update2"), "Update2");
        assert!(
            change_prior("RevokeSecurityGroupIngress").0
                > change_prior("AuthorizeSecurityGroupIngress").0
        );
        assert!(change_prior("AuthorizeSecurityGroupIngress").0 > change_prior("CreateTags").0);
        assert_eq!(
            inverse_name("RevokeSecurityGroupIngress").as_deref(),
            Some("AuthorizeSecurityGroupIngress")
        );
        assert_eq!(
            inverse_name("AttachRolePolicy").as_deref(),
            Some("DetachRolePolicy")
        );
    }

    #[test]
    fn what_changes_did() {
        // A cut nested in the request, against the earlier request's value.
        let create = json!({"tableName": "t", "provisionedThroughput": {"readCapacityUnits": 200}});
        let cut = json!({"tableName": "t", "provisionedThroughput": {"readCapacityUnits": 5}});
        let d = what_it_did(&cut, None, &[&create]);
        assert_eq!(d.capacity, Some(true));
        assert!(d.detail[0].contains("200 -> 5"), "{:?}", d.detail);
        // A parameter in a list of name/value pairs.
        let before =
            json!({"parameters": [{"parameterName": "max_connections", "parameterValue": "500"}]});
        let after =
            json!({"parameters": [{"parameterName": "max_connections", "parameterValue": "20"}]});
        assert_eq!(what_it_did(&after, None, &[&before]).capacity, Some(true));
        // A Deny statement inside a policy document logged as a JSON string.
        let deny = json!({"roleName": "r", "policyName": "p", "policyDocument":
            "{\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"dynamodb:*\",\"Resource\":\"*\"}]}"});
        assert!(what_it_did(&deny, None, &[]).denies);
        // Allow statements taken away from the same policy.
        let wide = json!({"roleName": "r", "policyName": "p", "policyDocument":
            "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\",\"s3:PutObject\"],\"Resource\":\"*\"}]}"});
        let narrow = json!({"roleName": "r", "policyName": "p", "policyDocument":
            "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:PutObject\",\"Resource\":\"*\"}]}"});
        assert!(what_it_did(&narrow, None, &[&wide]).denies);
        assert!(!what_it_did(&wide, None, &[&narrow]).denies);
        // A deny rule in a network ACL.
        assert!(
            what_it_did(
                &json!({"networkAclId": "acl-1", "ruleAction": "deny"}),
                None,
                &[]
            )
            .denies
        );
        assert!(
            !what_it_did(
                &json!({"networkAclId": "acl-1", "ruleAction": "allow"}),
                None,
                &[]
            )
            .denies
        );
        // Bookkeeping through a strong verb; a real setting is not.
        let backup = json!({"dBInstanceIdentifier": "db", "backupRetentionPeriod": 14, "applyImmediately": true});
        assert!(what_it_did(&backup, None, &[]).bookkeeping);
        let class = json!({"dBInstanceIdentifier": "db", "dBInstanceClass": "db.t4g.small"});
        assert!(!what_it_did(&class, None, &[]).bookkeeping);
        // Routing and environment.
        assert!(
            what_it_did(
                &json!({"listenerArn": "a", "defaultActions": [{"type": "forward"}]}),
                None,
                &[]
            )
            .routing
        );
        assert!(
            what_it_did(&json!({"functionName": "f", "environment": {}}), None, &[]).environment
        );
        // Scaling only.
        assert!(
            what_it_did(
                &json!({"cluster": "c", "service": "s", "desiredCount": 8}),
                None,
                &[]
            )
            .only_capacity
        );
        assert!(
            !what_it_did(
                &json!({"cluster": "c", "service": "s", "taskDefinition": "s:2"}),
                None,
                &[]
            )
            .only_capacity
        );
        // A rollback: back to the version before the previous rollout.
        let v41 = json!({"service": "s", "taskDefinition": "web:41"});
        let v42 = json!({"service": "s", "taskDefinition": "web:42"});
        assert_eq!(
            what_it_did(&v41, None, &[&v42, &v41])
                .rollback_to
                .as_deref(),
            Some("web:41")
        );
        assert_eq!(what_it_did(&v42, None, &[&v41]).rollback_to, None);
    }

    #[test]
    fn refusals() {
        assert_eq!(refusal("ThrottlingException"), Some(Refusal::Limit));
        assert_eq!(refusal("Client.VcpuLimitExceeded"), Some(Refusal::Limit));
        assert_eq!(refusal("AccessDenied"), Some(Refusal::Denied));
        assert_eq!(refusal("KMSInvalidStateException"), Some(Refusal::Denied));
        assert_eq!(refusal("ValidationException"), None);
    }

    #[test]
    fn reductions() {
        let create = json!({"autoScalingGroupName": "a", "desiredCapacity": 4, "maxSize": 6});
        let update = json!({"autoScalingGroupName": "a", "desiredCapacity": 2, "maxSize": 2});
        assert_eq!(reduction(&update, None, &[&create]), Some(true));
        assert_eq!(reduction(&create, None, &[&update]), Some(false));
        let modify = json!({"dBInstanceClass": "db.t4g.large"});
        let resp = json!({"dBInstanceClass": "db.r6g.2xlarge"});
        assert_eq!(reduction(&modify, Some(&resp), &[]), Some(true));
        assert_eq!(
            reduction(&json!({"reservedConcurrentExecutions": 0}), None, &[]),
            Some(true)
        );
        assert_eq!(reduction(&json!({"description": "x"}), None, &[]), None);
    }
}
