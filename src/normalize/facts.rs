//! Facts about a stored event that the correlation engine needs and the event's columns
//! do not hold, read from its payload.
//!
//! The store keeps each payload verbatim and has no column for these, so they are read
//! when the engine asks for them rather than at ingest. Each function takes the event and
//! its parsed payload on demand (the engine caches parses), and leaves the payload
//! unparsed when its raw text shows the fact cannot be there: most events have none of
//! these facts, and correlation never looks at raw payload text itself.

use crate::model::{Event, Source};
use serde_json::Value;
use std::rc::Rc;

/// An id by which several deliveries of one change name it: the CloudTrail record of an
/// API call, the Config item and EventBridge copy that cite that record, the ECS,
/// CodeDeploy or GitHub deployment a call started and the events that report on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryId {
    /// A CloudTrail record's `eventID` (a CloudTrail event's own natural id).
    CloudTrail(String),
    /// An ECS service deployment id (`ecs-svc/...`).
    EcsDeployment(String),
    /// A CodeDeploy deployment id (`d-...`).
    CodeDeploy(String),
    /// A GitHub deployment id.
    Github(String),
}

/// The ids under which other deliveries of the same change may name this event, in
/// payload order. A CloudTrail record's own `eventID` is not included: it is its
/// natural id.
///
/// - CloudTrail `UpdateService`, `CreateService`, `CreateDeployment`: the ECS PRIMARY
///   deployments and the CodeDeploy deployment the response names;
/// - EventBridge: the CloudTrail record it copies, the deployment it reports on (ECS or
///   CodeDeploy: both are named), the CloudTrail records a Config item cites;
/// - Config: the CloudTrail records the item cites;
/// - GitHub deployment status: its deployment.
pub fn delivery_ids(e: &Event, payload: impl FnOnce() -> Rc<Value>) -> Vec<DeliveryId> {
    let mut out = Vec::new();
    match e.source {
        Source::CloudTrail if starts_deployment(e) => {
            let p = payload();
            if let Some(Value::Array(ds)) = p.pointer("/responseElements/service/deployments") {
                for d in ds {
                    if d.get("status").and_then(Value::as_str) == Some("PRIMARY") {
                        if let Some(id) = d.get("id").and_then(Value::as_str) {
                            out.push(DeliveryId::EcsDeployment(id.to_string()));
                        }
                    }
                }
            }
            if let Some(id) = p
                .pointer("/responseElements/deploymentId")
                .and_then(Value::as_str)
            {
                out.push(DeliveryId::CodeDeploy(id.to_string()));
            }
        }
        Source::EventBridge => {
            let p = payload();
            if let Some(id) = p.pointer("/detail/eventID").and_then(Value::as_str) {
                out.push(DeliveryId::CloudTrail(id.to_string()));
            }
            if let Some(id) = p.pointer("/detail/deploymentId").and_then(Value::as_str) {
                out.push(DeliveryId::EcsDeployment(id.to_string()));
                out.push(DeliveryId::CodeDeploy(id.to_string()));
            }
            cited_records(
                p.pointer("/detail/configurationItem/relatedEvents"),
                &mut out,
            );
        }
        Source::Config => cited_records(payload().get("relatedEvents"), &mut out),
        Source::GithubDeploymentStatus => match payload().pointer("/deployment/id") {
            Some(Value::Number(n)) => out.push(DeliveryId::Github(n.to_string())),
            Some(Value::String(s)) => out.push(DeliveryId::Github(s.clone())),
            _ => {}
        },
        _ => {}
    }
    out
}

/// True for a CloudTrail call that can start a deployment and whose payload mentions one.
fn starts_deployment(e: &Event) -> bool {
    matches!(
        e.name.as_str(),
        "UpdateService" | "CreateService" | "CreateDeployment"
    ) && (e.payload.contains("\"deployments\"") || e.payload.contains("\"deploymentId\""))
}

/// The CloudTrail records a Config item's `relatedEvents` names.
fn cited_records(related: Option<&Value>, out: &mut Vec<DeliveryId>) {
    if let Some(Value::Array(rel)) = related {
        out.extend(
            rel.iter()
                .filter_map(Value::as_str)
                .map(|r| DeliveryId::CloudTrail(r.to_string())),
        );
    }
}

/// True for a call AWS made on the user's behalf (Auto Scaling terminating an instance,
/// a service-linked role): a consequence of some other change, not a change of intent.
pub fn service_initiated(e: &Event, payload: impl FnOnce() -> Rc<Value>) -> bool {
    // Every identity below names `invokedBy` or `AWSService` somewhere in the text.
    if !(e.payload.contains("invokedBy") || e.payload.contains("AWSService")) {
        return false;
    }
    let payload = payload();
    let ui = payload.get("userIdentity");
    let get = |k: &str| ui.and_then(|u| u.get(k)).and_then(Value::as_str);
    if get("type") == Some("AWSService")
        || get("invokedBy").is_some_and(|s| s.ends_with(".amazonaws.com"))
    {
        return true;
    }
    let issuer = ui
        .and_then(|u| u.get("sessionContext"))
        .and_then(|s| s.get("sessionIssuer"))
        .and_then(|s| s.get("userName"))
        .and_then(Value::as_str);
    let arn = get("arn").unwrap_or("");
    issuer.is_some_and(|n| n.starts_with("AWSServiceRoleFor")) || arn.contains("/AWSServiceRoleFor")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: Source, name: &str, payload: &Value) -> Event {
        Event {
            seq: 1,
            source,
            natural_id: "id".into(),
            event_time: 0,
            received_at: None,
            kind: crate::model::Kind::Change,
            name: name.into(),
            actor: None,
            read_only: false,
            error_code: None,
            resources: Vec::new(),
            payload: payload.to_string(),
        }
    }

    fn ids(source: Source, name: &str, payload: Value) -> Vec<DeliveryId> {
        let e = event(source, name, &payload);
        delivery_ids(&e, || Rc::new(payload))
    }

    #[test]
    fn deployments_a_call_starts() {
        let update = json!({"responseElements": {"service": {"deployments": [
            {"id": "ecs-svc/1", "status": "PRIMARY"},
            {"id": "ecs-svc/0", "status": "ACTIVE"}]}}});
        assert_eq!(
            ids(Source::CloudTrail, "UpdateService", update.clone()),
            [DeliveryId::EcsDeployment("ecs-svc/1".into())]
        );
        // Only calls that start deployments.
        assert!(ids(Source::CloudTrail, "DescribeServices", update).is_empty());
        assert_eq!(
            ids(
                Source::CloudTrail,
                "CreateDeployment",
                json!({"responseElements": {"deploymentId": "d-1"}})
            ),
            [DeliveryId::CodeDeploy("d-1".into())]
        );
    }

    #[test]
    fn ids_other_deliveries_name() {
        assert_eq!(
            ids(
                Source::EventBridge,
                "x",
                json!({"detail": {"eventID": "e1", "deploymentId": "d-2",
                    "configurationItem": {"relatedEvents": ["e2"]}}})
            ),
            [
                DeliveryId::CloudTrail("e1".into()),
                DeliveryId::EcsDeployment("d-2".into()),
                DeliveryId::CodeDeploy("d-2".into()),
                DeliveryId::CloudTrail("e2".into()),
            ]
        );
        assert_eq!(
            ids(Source::Config, "x", json!({"relatedEvents": ["e3", 4]})),
            [DeliveryId::CloudTrail("e3".into())]
        );
        assert_eq!(
            ids(
                Source::GithubDeploymentStatus,
                "x",
                json!({"deployment": {"id": 42}})
            ),
            [DeliveryId::Github("42".into())]
        );
        assert!(ids(Source::Logs, "x", json!({"deployment": {"id": 42}})).is_empty());
    }

    #[test]
    fn service_initiated_identities() {
        let by = |ui: Value| {
            let p = json!({ "userIdentity": ui });
            service_initiated(&event(Source::CloudTrail, "x", &p), || Rc::new(p))
        };
        assert!(by(
            json!({"type": "AWSService", "invokedBy": "autoscaling.amazonaws.com"})
        ));
        assert!(by(
            json!({"type": "AssumedRole", "invokedBy": "ecs.amazonaws.com"})
        ));
        assert!(by(json!({"type": "AssumedRole",
            "sessionContext": {"sessionIssuer": {"userName": "AWSServiceRoleForAutoScaling"}}})));
        assert!(by(
            json!({"arn": "arn:aws:sts::1:assumed-role/AWSServiceRoleForECS/x"})
        ));
        assert!(!by(json!({"type": "AssumedRole", "invokedBy": "console"})));
        assert!(!by(
            json!({"type": "IAMUser", "arn": "arn:aws:iam::1:user/alice"})
        ));
    }

    #[test]
    fn payloads_without_the_fact_are_not_parsed() {
        let p = json!({"userIdentity": {"type": "IAMUser"}, "responseElements": null});
        let e = event(Source::CloudTrail, "UpdateService", &p);
        let unparsed = || -> Rc<Value> { panic!("parsed") };
        assert!(!service_initiated(&e, unparsed));
        assert!(delivery_ids(&e, unparsed).is_empty());
    }
}
