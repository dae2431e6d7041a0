//! How plausible is it that a change of this kind breaks something?
//!
//! Removals and reductions (revoke, detach, delete, a concurrency or capacity cut, a
//! smaller instance class) break things far more often than additions, and cosmetic or
//! bookkeeping writes (tags, retention, dashboards, alarm definitions, log streams)
//! practically never do. The tiers are coarse on purpose: they order kinds of change,
//! topology and time order the candidates within a tier.

use serde_json::Value;

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

/// Whether a change reduces capacity (`Some(true)`), increases it (`Some(false)`), or
/// neither can be told (`None`). `before` holds earlier values of the same fields on the
/// same resource (latest last); the call's own response, when it echoes old values
/// (ModifyDBInstance does), counts as before too.
pub fn reduction(req: &Value, resp: Option<&Value>, before: &[&Value]) -> Option<bool> {
    let Value::Object(fields) = req else {
        return None;
    };
    let mut reduced = false;
    let mut increased = false;
    for (k, v) in fields {
        let lk = k.to_ascii_lowercase();
        let capacity_like = [
            "capacity",
            "size",
            "concurren",
            "count",
            "memory",
            "throughput",
            "iops",
            "limit",
            "timeout",
        ]
        .iter()
        .any(|w| lk.contains(w));
        let old = resp
            .and_then(|r| r.get(k))
            .filter(|o| *o != v)
            .or_else(|| before.iter().rev().find_map(|b| b.get(k)));
        if let Some(new) = v.as_f64() {
            if capacity_like && new <= 1.0 && (lk.contains("concurren") || lk.contains("capacity"))
            {
                reduced = true;
                continue;
            }
            if let Some(old) = old.and_then(Value::as_f64) {
                if capacity_like && new < old {
                    reduced = true;
                } else if capacity_like && new > old {
                    increased = true;
                }
            }
        } else if let Some(new) = v.as_str() {
            if lk.ends_with("class") || lk.ends_with("instancetype") {
                let old_rank = old.and_then(Value::as_str).and_then(size_rank);
                if let (Some(n), Some(o)) = (size_rank(new), old_rank) {
                    if n < o {
                        reduced = true;
                    } else if n > o {
                        increased = true;
                    }
                }
            }
        }
    }
    if reduced {
        Some(true)
    } else if increased {
        Some(false)
    } else {
        None
    }
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
