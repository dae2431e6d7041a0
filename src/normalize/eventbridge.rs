//! EventBridge event envelopes. Known detail-types get a specific kind; any other is kept
//! as a generic event with the resources its envelope names.

use super::resource::{from_arn, from_dimension};
use super::{
    cloudtrail, config_item, deployment_outcome, get, required_id, required_time, skeleton, str_at,
    Result,
};
use crate::model::{Kind, NewEvent};
use serde_json::Value;

pub(super) fn normalize(p: &Value) -> Result<NewEvent> {
    let id = required_id(p, &["id"], "id")?;
    let time = required_time(p, &["time"], "time")?;
    let detail_type = str_at(p, &["detail-type"]).unwrap_or("").to_string();
    let detail = get(p, &["detail"]).cloned().unwrap_or(Value::Null);
    let mut envelope_resources: Vec<String> = match get(p, &["resources"]) {
        Some(Value::Array(rs)) => rs
            .iter()
            .filter_map(Value::as_str)
            .filter_map(from_arn)
            .collect(),
        _ => Vec::new(),
    };

    let mut ev = match detail_type.as_str() {
        "AWS API Call via CloudTrail"
        | "AWS Service Event via CloudTrail"
        | "AWS Console Sign In via CloudTrail" => {
            // The detail is a CloudTrail record; it keeps its own name and resources.
            let mut inner = cloudtrail_detail(&detail, time);
            inner.natural_id = id;
            inner.event_time = time;
            inner
        }
        "CloudWatch Alarm State Change" => {
            let alarm = str_at(&detail, &["alarmName"]).unwrap_or("").to_string();
            let mut e = skeleton(
                id,
                time,
                Kind::Alarm {
                    alarm: alarm.clone(),
                    old_state: str_at(&detail, &["previousState", "value"])
                        .unwrap_or("")
                        .to_string(),
                    new_state: str_at(&detail, &["state", "value"])
                        .unwrap_or("")
                        .to_string(),
                    reason: str_at(&detail, &["state", "reason"])
                        .unwrap_or("")
                        .to_string(),
                },
                alarm.clone(),
            );
            if !alarm.is_empty() {
                e.resources.push(format!("alarm/{alarm}"));
            }
            alarm_dimensions(&detail, &mut e.resources);
            e
        }
        "ECS Deployment State Change" => {
            let phase = str_at(&detail, &["eventName"]).unwrap_or("").to_string();
            let target = envelope_resources
                .iter()
                .find(|k| k.starts_with("ecs-service/"))
                .map(|k| k.trim_start_matches("ecs-service/").to_string())
                .unwrap_or_default();
            skeleton(
                id,
                time,
                Kind::Deployment {
                    target,
                    outcome: deployment_outcome(&phase).to_string(),
                    phase: phase.clone(),
                },
                phase,
            )
        }
        "CodeDeploy Deployment State-change Notification" => {
            let state = str_at(&detail, &["state"]).unwrap_or("").to_string();
            let app = str_at(&detail, &["application"]).unwrap_or("");
            let group = str_at(&detail, &["deploymentGroup"]).unwrap_or("");
            let mut e = skeleton(
                id,
                time,
                Kind::Deployment {
                    target: format!("{app}/{group}"),
                    outcome: match state.as_str() {
                        "SUCCESS" => "succeeded".to_string(),
                        "FAILURE" | "STOP" => "failed".to_string(),
                        "START" | "READY" => "in_progress".to_string(),
                        other => deployment_outcome(other).to_string(),
                    },
                    phase: state.clone(),
                },
                format!("CodeDeploy {state}"),
            );
            if !app.is_empty() {
                e.resources.push(format!("codedeploy-app/{app}"));
            }
            if !group.is_empty() {
                e.resources.push(format!("codedeploy-group/{app}/{group}"));
            }
            e
        }
        "Config Configuration Item Change" => {
            let item = get(&detail, &["configurationItem"])
                .cloned()
                .unwrap_or(Value::Null);
            match config_item(&item) {
                Ok((rtype, rid, status, resources)) => {
                    let mut e = skeleton(
                        id,
                        time,
                        Kind::Snapshot {
                            resource_type: rtype.clone(),
                            resource_id: rid,
                            status,
                        },
                        rtype,
                    );
                    e.resources = resources;
                    e
                }
                Err(_) => skeleton(id, time, Kind::Other, detail_type.clone()),
            }
        }
        "ECS Service Action" | "ECS Task State Change" | "ECS Container Instance State Change" => {
            let name = str_at(&detail, &["eventName"])
                .or_else(|| str_at(&detail, &["lastStatus"]))
                .map(|s| format!("{detail_type}: {s}"))
                .unwrap_or_else(|| detail_type.clone());
            // A task killed for want of memory says so in a container's reason: the
            // name carries it, so slow leaks can be told from routine stops.
            let oom = str_at(&detail, &["stoppedReason"])
                .into_iter()
                .chain(match get(&detail, &["containers"]) {
                    Some(Value::Array(cs)) => cs
                        .iter()
                        .take(32)
                        .filter_map(|c| str_at(c, &["reason"]))
                        .collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
                .any(|r| r.contains("OutOfMemory"));
            let name = if oom {
                format!("{name} (OutOfMemoryError)")
            } else {
                name
            };
            let mut e = skeleton(id, time, Kind::Other, name);
            for path in [
                &["clusterArn"][..],
                &["taskDefinitionArn"][..],
                &["taskArn"][..],
            ] {
                if let Some(a) = str_at(&detail, path) {
                    e.resources.extend(from_arn(a));
                }
            }
            if let Some(r) = str_at(&detail, &["stoppedReason"]) {
                cloudtrail::scan_text_for_resources(
                    &Value::String(r.to_string()),
                    &mut e.resources,
                );
            }
            // Tasks started by a service carry group "service:NAME".
            if let Some(svc) = str_at(&detail, &["group"]).and_then(|g| g.strip_prefix("service:"))
            {
                e.resources.insert(0, format!("ecs-service/{svc}"));
            }
            e
        }
        "AWS Health Event" => {
            let code = str_at(&detail, &["eventTypeCode"]).unwrap_or("AWS Health Event");
            let mut e = skeleton(id, time, Kind::Other, code.to_string());
            // An entity is an ARN, an id with a known prefix, or a bare name of the
            // event's service (an RDS instance identifier, a function name).
            let typed = match str_at(&detail, &["service"]).unwrap_or("") {
                "RDS" => Some("rds"),
                "LAMBDA" => Some("lambda"),
                "DYNAMODB" => Some("dynamodb"),
                "ELASTICLOADBALANCING" => Some("lb"),
                "SQS" => Some("sqs"),
                "ECS" => Some("ecs-service"),
                _ => None,
            };
            if let Some(Value::Array(ents)) = get(&detail, &["affectedEntities"]) {
                for ent in ents.iter().take(64) {
                    if let Some(v) = str_at(ent, &["entityValue"]) {
                        let key = from_arn(v)
                            .or_else(|| super::resource::from_id(v))
                            .or_else(|| typed.and_then(|t| super::resource::key(t, v)));
                        e.resources.extend(key);
                    }
                }
            }
            e
        }
        dt if p.get("source").and_then(Value::as_str) == Some("aws.autoscaling") => {
            let mut e = skeleton(id, time, Kind::Other, dt.to_string());
            if let Some(asg) = str_at(&detail, &["AutoScalingGroupName"]) {
                e.resources.push(format!("asg/{asg}"));
            }
            if let Some(i) = str_at(&detail, &["EC2InstanceId"]) {
                e.resources.extend(super::resource::from_id(i));
            }
            e
        }
        _ => {
            let mut e = skeleton(id, time, Kind::Other, detail_type.clone());
            // RDS events name their instance by identifier.
            if str_at(&detail, &["SourceType"]) == Some("DB_INSTANCE") {
                if let Some(db) = str_at(&detail, &["SourceIdentifier"]) {
                    e.resources.push(format!("rds/{db}"));
                }
            }
            if let Some(code) = str_at(&detail, &["EventID"]) {
                e.name = format!("{detail_type}: {code}");
            }
            // Any other shape: the ARNs and ids its detail mentions.
            cloudtrail::scan_text_for_resources(&detail, &mut e.resources);
            e
        }
    };
    ev.actor = ev
        .actor
        .take()
        .or_else(|| str_at(p, &["source"]).map(str::to_string));
    ev.resources.append(&mut envelope_resources);
    Ok(ev)
}

/// Normalizes the CloudTrail record in an EventBridge detail; an unusable detail still
/// yields a generic event (the envelope's id and time are what identify it).
fn cloudtrail_detail(detail: &Value, time: i64) -> NewEvent {
    // EventBridge copies may lack eventID/eventTime; the envelope supplies them.
    let mut d = detail.clone();
    if let Value::Object(m) = &mut d {
        m.entry("eventID")
            .or_insert_with(|| Value::String("-".into()));
        m.entry("eventTime")
            .or_insert_with(|| Value::String(crate::model::fmt_time(time)));
    }
    cloudtrail::normalize(&d).unwrap_or_else(|_| {
        let name = str_at(detail, &["eventName"])
            .unwrap_or("AWS API Call")
            .to_string();
        skeleton(String::new(), time, Kind::Change, name)
    })
}

/// Resource keys of the metrics an alarm watches, from an EventBridge alarm detail, a
/// PutMetricAlarm-shaped object or alarm history data: `configuration.metrics[]`,
/// `metrics[].metricStat.metric.dimensions` (object or list form) and top-level
/// `dimensions`/`Dimensions`.
pub(super) fn alarm_dimensions(v: &Value, out: &mut Vec<String>) {
    fn dims(d: &Value, out: &mut Vec<String>) {
        match d {
            Value::Object(m) => {
                for (k, val) in super::entries(m) {
                    if let Some(s) = val.as_str() {
                        out.extend(from_dimension(k, s));
                    }
                }
            }
            Value::Array(items) => {
                for it in items {
                    let n = str_at(it, &["name"]).or_else(|| str_at(it, &["Name"]));
                    let val = str_at(it, &["value"]).or_else(|| str_at(it, &["Value"]));
                    if let (Some(n), Some(val)) = (n, val) {
                        out.extend(from_dimension(n, val));
                    }
                }
            }
            _ => {}
        }
    }
    fn visit(v: &Value, out: &mut Vec<String>, depth: usize) {
        if depth > 8 {
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, child) in super::entries(m) {
                    if k == "dimensions" || k == "Dimensions" {
                        dims(child, out);
                    } else {
                        visit(child, out, depth + 1);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| visit(i, out, depth + 1)),
            _ => {}
        }
    }
    visit(v, out, 0);
}
