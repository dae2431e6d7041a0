//! The estate of `rootline bench live`: a seeded stream of exactly N upstream events over
//! four weeks, shaped like a busy AWS account, with incidents planted in it.
//!
//! - Background, evenly spread in time: CloudTrail calls from [`Generator`] (about 70%
//!   of them read-only) and application log lines (about one event in five).
//! - A handful of alarms that flap: ALARM, then OK a few minutes later, every few hours
//!   (alarm history items, most also delivered through EventBridge), and a deployment
//!   (a GitHub `deployment_status`) every few hours.
//! - [`PLANTED`] incidents spread over the weeks: a change on a resource that an alarm
//!   watches through the topology (a security-group rule revoked, a target group's
//!   health check changed, an ECS service redeployed), error log lines, then minutes
//!   later that alarm's transition into ALARM, and OK later. Each planted incident has
//!   its own load balancer, target group, security group and service, named with a
//!   word of its own, which the setup calls (PutMetricAlarm, SetSecurityGroups,
//!   CreateService) relate to each other on the first day.
//! - [`PENDING`] more planted causes in the last hour whose alarms have not fired: the
//!   transitions `bench live` pushes ([`Planted::push_event`]).
//!
//! Nothing is read from the clock: the same N and seed give the same events, in the same
//! order, byte for byte.

use super::gen::{cloudtrail_time, hex, uuid, Generator, Rng, ACCOUNT, BASE_MS};
use crate::model::{NewEvent, Source};
use crate::normalize::{normalize, NormalizeError};
use serde_json::json;
use std::collections::VecDeque;
use std::fmt::Write as _;

/// Four weeks: the time the estate's events cover, from [`BASE_MS`].
pub const SPAN_MS: i64 = 28 * 86_400_000;
/// Planted incidents whose alarms fired (and recovered) in the data.
pub const PLANTED: usize = 36;
/// Planted causes in the last hour whose alarms have not fired yet.
pub const PENDING: usize = 20;
/// Changes whenever the estate's content changes: stores built by an earlier version
/// are not reused.
pub const VERSION: u32 = 1;
/// Fewest events an estate can have (the scheduled events take about 3,000).
pub const MIN_EVENTS: u64 = 10_000;

const REGION: &str = "us-east-1";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// One word per planted incident ([`PLANTED`] + [`PENDING`]), unlike any other name in
/// the estate, so that alarms of different incidents never look alike by name.
const WORDS: [&str; PLANTED + PENDING] = [
    "ledger",
    "invoice",
    "catalog",
    "pricing",
    "quote",
    "refund",
    "review",
    "rating",
    "coupon",
    "loyalty",
    "giftcard",
    "wishlist",
    "shipment",
    "tracking",
    "courier",
    "warehouse",
    "picking",
    "packing",
    "returns",
    "taxes",
    "fraud",
    "risk",
    "identity",
    "payout",
    "wallet",
    "points",
    "badge",
    "avatar",
    "profile",
    "inbox",
    "chat",
    "notifier",
    "mailer",
    "texting",
    "feed",
    "timeline",
    "story",
    "media",
    "upload",
    "resize",
    "transcode",
    "stream",
    "player",
    "lyrics",
    "podcast",
    "ticket",
    "booking",
    "seating",
    "venue",
    "lobby",
    "matchmaker",
    "ladder",
    "quest",
    "crafting",
    "forge",
    "atlas",
];

/// What a planted cause changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseKind {
    /// `RevokeSecurityGroupIngress` on the load balancer's security group.
    RevokeIngress,
    /// `ModifyTargetGroup`: the target group's health check changed.
    ModifyTargetGroup,
    /// `UpdateService`: the ECS service behind the target group redeployed.
    UpdateService,
}

/// One planted incident: its resources, its cause and its alarm.
#[derive(Debug, Clone)]
pub struct Planted {
    /// The incident's own word (in every name below).
    pub word: &'static str,
    /// The alarm (`WORD-5xx`), on the target group's 5XX count.
    pub alarm: String,
    /// The alarm's `LoadBalancer` dimension (`app/WORD-edge/HASH`).
    pub lb_dimension: String,
    /// The alarm's `TargetGroup` dimension (`targetgroup/WORD-tg/HASH`).
    pub tg_dimension: String,
    /// The load balancer's security group.
    pub security_group: String,
    /// The ECS service behind the target group (`WORD-svc`, cluster `prod`).
    pub service: String,
    /// What the cause changes.
    pub cause: CauseKind,
    /// The cause's event name (`RevokeSecurityGroupIngress`, ...).
    pub cause_name: &'static str,
    /// The cause's time.
    pub cause_ms: i64,
    /// The cause's CloudTrail `eventID` (its natural id in the store).
    pub cause_id: String,
    /// When the alarm went into ALARM; `None` for a pending one (not fired yet).
    pub alarm_ms: Option<i64>,
}

impl Planted {
    /// The load balancer's ARN.
    pub fn lb_arn(&self) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/{}",
            self.lb_dimension
        )
    }

    /// The target group's ARN.
    pub fn tg_arn(&self) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:{}",
            self.tg_dimension
        )
    }

    /// The alarm's transition as an EventBridge "CloudWatch Alarm State Change" event
    /// (what an API destination delivers to `/ingest/eventbridge`): `id` is the
    /// envelope's id, `time_ms` the transition's time.
    pub fn push_event(&self, id: &str, previous: &str, state: &str, time_ms: i64) -> String {
        alarm_event(&self.alarm_spec(), id, previous, state, time_ms).to_string()
    }

    /// The natural id of the alarm history item of the alarm's transition into ALARM
    /// (the trigger of its incident); `None` for a pending one.
    pub fn history_natural_id(&self) -> Option<String> {
        self.alarm_ms
            .map(|a| format!("{}@{}", self.alarm, history_time(a)))
    }

    fn alarm_spec(&self) -> AlarmSpec {
        AlarmSpec {
            name: self.alarm.clone(),
            namespace: "AWS/ApplicationELB",
            metric: "HTTPCode_Target_5XX_Count",
            dimensions: vec![
                ("LoadBalancer", self.lb_dimension.clone()),
                ("TargetGroup", self.tg_dimension.clone()),
            ],
        }
    }
}

/// An alarm's definition, as PutMetricAlarm and the EventBridge event state it.
#[derive(Debug, Clone)]
struct AlarmSpec {
    name: String,
    namespace: &'static str,
    metric: &'static str,
    dimensions: Vec<(&'static str, String)>,
}

/// A scheduled (not background) event, rendered up front.
#[derive(Debug, Clone)]
struct Scheduled {
    time: i64,
    source: Source,
    raw: String,
    recorded: i64,
}

/// The estate's events, in order: [`Estate::next_raw`] or [`Estate::next_event`].
pub struct Estate {
    events: u64,
    emitted: u64,
    background: u64,
    bg_emitted: u64,
    scheduled: VecDeque<Scheduled>,
    planted: Vec<Planted>,
    gen: Generator,
    rng: Rng,
}

/// The flapping alarms: (name, namespace, metric, dimensions).
fn flapping_alarms() -> Vec<AlarmSpec> {
    vec![
        AlarmSpec {
            name: "orders-ddb-throttled".into(),
            namespace: "AWS/DynamoDB",
            metric: "ThrottledRequests",
            dimensions: vec![("TableName", "orders".into())],
        },
        AlarmSpec {
            name: "search-cpu-high".into(),
            namespace: "AWS/ECS",
            metric: "CPUUtilization",
            dimensions: vec![
                ("ClusterName", "prod".into()),
                ("ServiceName", "search".into()),
            ],
        },
        AlarmSpec {
            name: "billing-sync-errors".into(),
            namespace: "AWS/Lambda",
            metric: "Errors",
            dimensions: vec![("FunctionName", "billing-sync".into())],
        },
        AlarmSpec {
            name: "api-latency-p99".into(),
            namespace: "AWS/ApplicationELB",
            metric: "TargetResponseTime",
            dimensions: vec![("LoadBalancer", "app/api/5e1f3c0a9b7d2e48".into())],
        },
    ]
}

/// A time as CloudWatch writes it in alarm events (`2025-10-01T00:00:00.000+0000`).
fn cw_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        None => "1970-01-01T00:00:00.000+0000".to_string(),
    }
}

/// A time as alarm history items write it (`2025-10-01T00:00:00.000Z`).
fn history_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => "1970-01-01T00:00:00.000Z".to_string(),
    }
}

fn reason(state: &str) -> &'static str {
    if state == "ALARM" {
        "Threshold Crossed: 2 out of the last 3 datapoints were greater than the threshold (5.0) (minimum 2 datapoints for OK -> ALARM transition)."
    } else {
        "Threshold Crossed: 3 out of the last 3 datapoints were not greater than the threshold (5.0) (minimum 3 datapoints for ALARM -> OK transition)."
    }
}

/// The EventBridge "CloudWatch Alarm State Change" event of one transition.
fn alarm_event(
    a: &AlarmSpec,
    id: &str,
    previous: &str,
    state: &str,
    time_ms: i64,
) -> serde_json::Value {
    let dims: serde_json::Map<String, serde_json::Value> = a
        .dimensions
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "version": "0",
        "id": id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": cloudtrail_time(time_ms),
        "region": REGION,
        "resources": [format!("arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{}", a.name)],
        "detail": {
            "alarmName": a.name,
            "configuration": {"metrics": [{"id": "m1", "metricStat": {"metric": {
                "dimensions": dims, "name": a.metric, "namespace": a.namespace},
                "period": 60, "stat": "Sum"}, "returnData": true}]},
            "previousState": {"reason": reason(previous), "timestamp": cw_time(time_ms - HOUR), "value": previous},
            "state": {"reason": reason(state), "timestamp": cw_time(time_ms), "value": state}
        }
    })
}

/// The alarm history item of one transition.
fn alarm_history(a: &AlarmSpec, previous: &str, state: &str, time_ms: i64) -> String {
    let data = json!({
        "version": "1.0",
        "oldState": {"stateValue": previous, "stateReason": reason(previous)},
        "newState": {"stateValue": state, "stateReason": reason(state)}
    });
    json!({
        "AlarmName": a.name,
        "AlarmType": "MetricAlarm",
        "Timestamp": history_time(time_ms),
        "HistoryItemType": "StateUpdate",
        "HistorySummary": format!("Alarm updated from {previous} to {state}"),
        "HistoryData": data.to_string()
    })
    .to_string()
}

/// A CloudTrail record of a successful write by `role`/`session`.
#[allow(clippy::too_many_arguments)]
fn cloudtrail(
    rng: &mut Rng,
    service: &str,
    name: &str,
    time_ms: i64,
    role: &str,
    session: &str,
    request: serde_json::Value,
    response: serde_json::Value,
) -> (String, String) {
    let mut id = String::new();
    uuid(rng, &mut id);
    let mut req_id = String::new();
    uuid(rng, &mut req_id);
    let raw = json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROAEXAMPLE{}:{session}", role.len()),
            "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
            "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{ACCOUNT}:role/{role}"), "accountId": ACCOUNT, "userName": role}}
        },
        "eventTime": cloudtrail_time(time_ms),
        "eventSource": format!("{service}.amazonaws.com"),
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "APN/1.0 HashiCorp/1.0 Terraform/1.7.5",
        "requestParameters": request,
        "responseElements": response,
        "requestID": req_id,
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management"
    });
    (raw.to_string(), id)
}

fn put_metric_alarm(rng: &mut Rng, a: &AlarmSpec, time_ms: i64) -> String {
    let dims: Vec<serde_json::Value> = a
        .dimensions
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    cloudtrail(
        rng,
        "monitoring",
        "PutMetricAlarm",
        time_ms,
        "terraform-ci",
        "terraform",
        json!({"alarmName": a.name, "metricName": a.metric, "namespace": a.namespace,
            "statistic": "Sum", "dimensions": dims, "period": 60, "evaluationPeriods": 3,
            "datapointsToAlarm": 2, "threshold": 5.0, "comparisonOperator": "GreaterThanThreshold",
            "alarmActions": [format!("arn:aws:sns:{REGION}:{ACCOUNT}:oncall")]}),
        serde_json::Value::Null,
    )
    .0
}

/// The builder of an estate's schedule (everything but the background).
struct Schedule {
    rng: Rng,
    items: Vec<Scheduled>,
}

impl Schedule {
    fn push(&mut self, time: i64, source: Source, raw: String) {
        let delay = match source {
            Source::CloudTrail => 5 * MINUTE,
            _ => 30_000,
        };
        let recorded = time + delay + self.rng.below(60_000) as i64;
        self.items.push(Scheduled {
            time,
            source,
            raw,
            recorded,
        });
    }

    /// One transition: the history item and, most of the time, its EventBridge delivery.
    fn transition(&mut self, a: &AlarmSpec, previous: &str, state: &str, time: i64) {
        self.push(
            time,
            Source::AlarmHistory,
            alarm_history(a, previous, state, time),
        );
        if self.rng.chance(800) {
            let mut id = String::new();
            uuid(&mut self.rng, &mut id);
            let ev = alarm_event(a, &id, previous, state, time).to_string();
            // EventBridge envelopes carry whole seconds.
            self.push(time - time % 1000, Source::EventBridge, ev);
        }
    }

    /// The setup calls that relate a planted incident's resources to each other.
    fn setup(&mut self, p: &Planted, time: i64) {
        let spec = p.alarm_spec();
        let raw = put_metric_alarm(&mut self.rng, &spec, time);
        self.push(time, Source::CloudTrail, raw);
        let (raw, _) = cloudtrail(
            &mut self.rng,
            "elasticloadbalancing",
            "SetSecurityGroups",
            time + 1000,
            "terraform-ci",
            "terraform",
            json!({"loadBalancerArn": p.lb_arn(), "securityGroups": [p.security_group]}),
            json!({"securityGroupIds": [p.security_group]}),
        );
        self.push(time + 1000, Source::CloudTrail, raw);
        let (raw, _) = cloudtrail(
            &mut self.rng,
            "ecs",
            "CreateService",
            time + 2000,
            "terraform-ci",
            "terraform",
            json!({"cluster": "prod", "serviceName": p.service, "taskDefinition": format!("{}:1", p.service),
                "desiredCount": 3, "launchType": "FARGATE",
                "loadBalancers": [{"targetGroupArn": p.tg_arn(), "containerName": "app", "containerPort": 8080}]}),
            json!({"service": {"serviceArn": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{}", p.service),
                "serviceName": p.service, "status": "ACTIVE", "desiredCount": 3}}),
        );
        self.push(time + 2000, Source::CloudTrail, raw);
    }

    /// The cause's CloudTrail record; returns its eventID.
    fn cause(&mut self, p: &Planted) -> String {
        let session = *self.rng.pick(&["alice", "bob", "carol", "dave", "erin"]);
        let (service, request) = match p.cause {
            CauseKind::RevokeIngress => (
                "ec2",
                json!({"groupId": p.security_group, "ipPermissions": {"items": [{"ipProtocol": "tcp",
                    "fromPort": 443, "toPort": 443, "groups": {}, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    "ipv6Ranges": {}, "prefixListIds": {}}]}}),
            ),
            CauseKind::ModifyTargetGroup => (
                "elasticloadbalancing",
                json!({"targetGroupArn": p.tg_arn(), "healthCheckPath": "/healthz/deep",
                    "healthCheckIntervalSeconds": 5, "healthyThresholdCount": 5, "unhealthyThresholdCount": 2}),
            ),
            CauseKind::UpdateService => (
                "ecs",
                json!({"cluster": "prod", "service": p.service, "forceNewDeployment": true,
                    "taskDefinition": format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{}:{}", p.service, 2 + self.rng.below(300))}),
            ),
        };
        let (raw, id) = cloudtrail(
            &mut self.rng,
            service,
            p.cause_name,
            p.cause_ms,
            "ops-oncall",
            session,
            request,
            json!({"_return": true}),
        );
        self.push(p.cause_ms, Source::CloudTrail, raw);
        id
    }

    /// Error lines in the service's log group between the cause and the alarm.
    fn error_logs(&mut self, p: &Planted, from: i64, to: i64) {
        for n in 0..4 {
            let t = from + (to - from) * (n + 1) / 5;
            let mut stream = String::from("app/");
            hex(&mut self.rng, &mut stream, 32);
            let msg = format!(
                "{} ERROR [{}] upstream returned 502 for GET /v1/{} ({} ms)",
                cloudtrail_time(t),
                p.service,
                p.word,
                200 + self.rng.below(800)
            );
            let raw = json!({"logStreamName": stream, "timestamp": t, "message": msg,
                "ingestionTime": t + 800, "eventId": format!("{t}{:012}", self.rng.below(1 << 40)),
                "logGroupName": format!("/ecs/{}", p.service)})
            .to_string();
            self.push(t, Source::Logs, raw);
        }
    }
}

impl Estate {
    /// The estate of `events` events drawn from `seed` (at least [`MIN_EVENTS`]).
    pub fn new(events: u64, seed: u64) -> anyhow::Result<Estate> {
        if events < MIN_EVENTS {
            anyhow::bail!("an estate has at least {MIN_EVENTS} events, not {events}");
        }
        let mut s = Schedule {
            rng: Rng::new(seed ^ 0x00E5_7A7E_0000_0001),
            items: Vec::new(),
        };
        let end = BASE_MS + SPAN_MS;

        // The planted incidents: their resources, setup on the first day, causes spread
        // over the weeks (the pending ones in the last hour), alarms minutes later.
        let mut planted = Vec::with_capacity(PLANTED + PENDING);
        for (k, word) in WORDS.iter().enumerate() {
            let rng = &mut s.rng;
            let mut lb_hash = String::new();
            hex(rng, &mut lb_hash, 16);
            let mut tg_hash = String::new();
            hex(rng, &mut tg_hash, 16);
            let mut sg = String::from("sg-0");
            hex(rng, &mut sg, 16);
            let (cause, cause_name) = match k % 3 {
                0 => (CauseKind::RevokeIngress, "RevokeSecurityGroupIngress"),
                1 => (CauseKind::ModifyTargetGroup, "ModifyTargetGroup"),
                _ => (CauseKind::UpdateService, "UpdateService"),
            };
            let (cause_ms, alarm_ms) = if k < PLANTED {
                // Evenly over days 1 to 27, at any hour.
                let slot = SPAN_MS - 2 * 86_400_000;
                let t = BASE_MS
                    + 86_400_000
                    + slot / PLANTED as i64 * k as i64
                    + rng.below(12 * HOUR as u64) as i64;
                (
                    t,
                    Some(t + 3 * MINUTE + rng.below(9 * MINUTE as u64) as i64),
                )
            } else {
                // In the last hour, 5 to 60 minutes before the end.
                let j = (k - PLANTED) as i64;
                let t = end - 60 * MINUTE + j * 165_000 + rng.below(60_000) as i64;
                (t, None)
            };
            planted.push(Planted {
                word,
                alarm: format!("{word}-5xx"),
                lb_dimension: format!("app/{word}-edge/{lb_hash}"),
                tg_dimension: format!("targetgroup/{word}-tg/{tg_hash}"),
                security_group: sg,
                service: format!("{word}-svc"),
                cause,
                cause_name,
                cause_ms,
                cause_id: String::new(),
                alarm_ms,
            });
        }
        for (k, p) in planted.iter_mut().enumerate() {
            s.setup(p, BASE_MS + 10 * MINUTE + k as i64 * MINUTE);
            p.cause_id = s.cause(p);
            if let Some(a) = p.alarm_ms {
                s.error_logs(p, p.cause_ms, a);
                let spec = p.alarm_spec();
                s.transition(&spec, "OK", "ALARM", a);
                let ok = a + 15 * MINUTE + s.rng.below(30 * MINUTE as u64) as i64;
                s.transition(&spec, "ALARM", "OK", ok);
            }
        }

        // The flapping alarms, every 3 to 9 hours each, none in the last 6 hours.
        for (f, spec) in flapping_alarms().iter().enumerate() {
            let raw = put_metric_alarm(&mut s.rng, spec, BASE_MS + 5 * MINUTE + f as i64 * 1000);
            s.push(
                BASE_MS + 5 * MINUTE + f as i64 * 1000,
                Source::CloudTrail,
                raw,
            );
            let mut t = BASE_MS + 2 * HOUR + s.rng.below(6 * HOUR as u64) as i64;
            while t < end - 6 * HOUR {
                s.transition(spec, "OK", "ALARM", t);
                let ok = t + 3 * MINUTE + s.rng.below(12 * MINUTE as u64) as i64;
                s.transition(spec, "ALARM", "OK", ok);
                t += 3 * HOUR + s.rng.below(6 * HOUR as u64) as i64;
            }
        }

        // Deployments every 4 to 10 hours.
        let mut t = BASE_MS + HOUR;
        let mut n = 0u64;
        while t < end - HOUR {
            n += 1;
            let svc = *s
                .rng
                .pick(&["api", "web", "orders", "payments", "search", "cart"]);
            let mut sha = String::new();
            hex(&mut s.rng, &mut sha, 40);
            let raw = json!({"action": "created",
                "deployment_status": {"id": 900_000_000 + n, "state": "success", "created_at": cloudtrail_time(t),
                    "environment": "production", "creator": {"login": "deploy-bot"},
                    "description": format!("Deployed {svc} {}", &sha[..7])},
                "deployment": {"id": 800_000_000 + n, "sha": sha, "ref": "main", "environment": "production",
                    "description": format!("deploy {svc}")},
                "repository": {"full_name": format!("acme/{svc}")}})
            .to_string();
            s.push(t, Source::GithubDeploymentStatus, raw);
            t += 4 * HOUR + s.rng.below(6 * HOUR as u64) as i64;
        }

        let mut items = s.items;
        if items.len() as u64 * 2 > events {
            anyhow::bail!(
                "an estate of {events} events is too small for its {} scheduled events",
                items.len()
            );
        }
        items.sort_by_key(|x| x.time);
        let background = events - items.len() as u64;
        Ok(Estate {
            events,
            emitted: 0,
            background,
            bg_emitted: 0,
            scheduled: items.into(),
            planted,
            gen: Generator::new(seed),
            rng: Rng::new(seed ^ 0x00E5_7A7E_0000_0002),
        })
    }

    /// Events in the estate.
    pub fn len(&self) -> u64 {
        self.events
    }

    /// True when the estate has no events (never: see [`MIN_EVENTS`]).
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Events emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// Every planted incident: [`PLANTED`] that fired, then [`PENDING`] that did not.
    pub fn planted(&self) -> &[Planted] {
        &self.planted
    }

    /// The planted causes whose alarms have not fired yet.
    pub fn pending(&self) -> &[Planted] {
        &self.planted[PLANTED..]
    }

    /// The end of the estate's time span (every event is before it).
    pub fn end_ms(&self) -> i64 {
        BASE_MS + SPAN_MS
    }

    /// Writes the next event's payload into `out` (cleared first) and returns its source,
    /// event time and recording time; `None` after the last event.
    pub fn next_raw(&mut self, out: &mut String) -> Option<(Source, i64, i64)> {
        out.clear();
        if self.emitted >= self.events {
            return None;
        }
        let bg_time = (self.bg_emitted < self.background).then(|| {
            BASE_MS
                + (i128::from(self.bg_emitted) * i128::from(SPAN_MS) / i128::from(self.background))
                    as i64
        });
        let take_scheduled = match (self.scheduled.front(), bg_time) {
            (Some(s), Some(b)) => s.time <= b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.emitted += 1;
        if take_scheduled {
            let s = self.scheduled.pop_front()?;
            out.push_str(&s.raw);
            return Some((s.source, s.time, s.recorded));
        }
        self.bg_emitted += 1;
        let t = bg_time.unwrap_or(BASE_MS) + self.rng.below(1000) as i64;
        if self.rng.chance(200) {
            self.log_line(t, out);
            Some((Source::Logs, t, t + 20_000 + self.rng.below(40_000) as i64))
        } else {
            self.gen.record(t, out);
            let delay = 4 * MINUTE + self.rng.below(11 * MINUTE as u64) as i64;
            Some((Source::CloudTrail, t, t + delay))
        }
    }

    /// The next event, normalized as ingest would (`None` after the last one).
    pub fn next_event(&mut self, buf: &mut String) -> Option<Result<NewEvent, NormalizeError>> {
        let (source, _, recorded) = self.next_raw(buf)?;
        Some(normalize(source, buf, Some(recorded)))
    }

    /// One application log line (5% at ERROR) of one of 48 services.
    fn log_line(&mut self, t: i64, out: &mut String) {
        const APPS: &[&str] = &[
            "api", "web", "orders", "payments", "search", "auth", "cart", "worker",
        ];
        let rng = &mut self.rng;
        let n = rng.below(48) as usize;
        let group = if n < APPS.len() {
            format!("/ecs/{}", APPS[n])
        } else {
            format!("/ecs/svc-{n}")
        };
        let level = if rng.chance(50) { "ERROR" } else { "INFO" };
        let _ = write!(out, "{{\"logStreamName\":\"app/");
        hex(rng, out, 32);
        let _ = write!(
            out,
            "\",\"timestamp\":{t},\"message\":\"{} {level} [{}] handled request ",
            cloudtrail_time(t),
            &group[5..]
        );
        hex(rng, out, 12);
        let _ = write!(
            out,
            " in {} ms\",\"ingestionTime\":{},\"eventId\":\"{t}{:013}\",\"logGroupName\":\"{group}\"}}",
            rng.below(400),
            t + 800,
            rng.below(1 << 42)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn every_event_normalizes_and_the_mix_is_as_documented() {
        let mut e = Estate::new(20_000, 5).expect("estate");
        let mut buf = String::new();
        let (mut n, mut read_only_ct, mut ct, mut logs, mut alarms) = (0u64, 0, 0, 0, 0);
        let mut last = 0;
        let mut ids = std::collections::HashSet::new();
        while let Some(ev) = e.next_event(&mut buf) {
            let ev = match ev {
                Ok(ev) => ev,
                Err(err) => panic!("{err}: {buf}"),
            };
            assert!(ids.insert((ev.source, ev.natural_id.clone())), "{buf}");
            assert!(ev.event_time < e.end_ms());
            // Time advances (background jitter is under a second).
            assert!(ev.event_time + 60_000 >= last, "{buf}");
            last = last.max(ev.event_time);
            n += 1;
            match ev.source {
                Source::CloudTrail => {
                    ct += 1;
                    read_only_ct += ev.read_only as u32;
                }
                Source::Logs => logs += 1,
                _ => {}
            }
            alarms += matches!(ev.kind, Kind::Alarm { .. }) as u32;
        }
        assert_eq!(n, 20_000);
        let share = f64::from(read_only_ct) / f64::from(ct);
        assert!((0.6..0.75).contains(&share), "read-only share {share}");
        assert!(logs > 2_500, "{logs} log lines");
        assert!(alarms > 500, "{alarms} alarm deliveries");
        assert_eq!(e.pending().len(), PENDING);
        assert!(e.pending().iter().all(|p| p.alarm_ms.is_none()
            && p.cause_ms > e.end_ms() - 61 * MINUTE
            && !p.cause_id.is_empty()));
    }

    #[test]
    fn pushed_events_normalize_as_alarm_transitions_with_their_dimensions() {
        let e = Estate::new(20_000, 1).expect("estate");
        let p = &e.pending()[0];
        let raw = p.push_event("abc", "OK", "ALARM", e.end_ms() + 1234);
        let ev = normalize(Source::EventBridge, &raw, None).expect("normalizes");
        assert_eq!(ev.natural_id, "abc");
        assert!(matches!(&ev.kind, Kind::Alarm { new_state, .. } if new_state == "ALARM"));
        assert!(
            ev.resources.iter().any(|r| r.starts_with("lb/")),
            "{:?}",
            ev.resources
        );
        assert!(
            ev.resources.iter().any(|r| r.starts_with("tg/")),
            "{:?}",
            ev.resources
        );
    }

    #[test]
    fn planted_causes_are_ranked_first() {
        let mut e = Estate::new(20_000, 3).expect("estate");
        let mut buf = String::new();
        let mut events = Vec::new();
        while let Some(ev) = e.next_event(&mut buf) {
            let seq = events.len() as i64 + 1;
            events.push(ev.expect("normalizes").stored_as(seq));
        }
        for (k, p) in e.pending().iter().enumerate() {
            let raw = p.push_event(
                &format!("push-{k}"),
                "OK",
                "ALARM",
                e.end_ms() + k as i64 * 1000,
            );
            let ev = normalize(Source::EventBridge, &raw, None).expect("push normalizes");
            let seq = events.len() as i64 + 1;
            events.push(ev.stored_as(seq));
        }
        let a = crate::correlate::analyze(&events, &crate::correlate::Config::default());
        let mut misses = Vec::new();
        for p in e.planted() {
            let inc = a
                .incidents
                .iter()
                .find(|i| i.alarm_names.first() == Some(&p.alarm));
            let top = inc.and_then(|i| i.hypotheses.first());
            if let Some(i) = inc {
                // The incident is named as `bench live` expects.
                let expected = match p.history_natural_id() {
                    Some(n) => crate::correlate::incident_id("cloudwatch.alarm_history", &n),
                    None => {
                        let k = e.pending().iter().position(|x| x.alarm == p.alarm);
                        let k = k.expect("a pending alarm");
                        crate::correlate::incident_id("eventbridge", &format!("push-{k}"))
                    }
                };
                assert_eq!(i.id, expected, "{}", p.alarm);
            }
            if top.map(|h| h.cause.id.as_str()) != Some(p.cause_id.as_str()) {
                misses.push(format!(
                    "{} ({:?}): incident {:?}, top {:?}",
                    p.alarm,
                    p.cause,
                    inc.map(|i| (&i.id, i.hypotheses.len())),
                    top.map(|h| (&h.summary, &h.cause.id))
                ));
            }
        }
        assert!(misses.is_empty(), "{}", misses.join("\n"));
    }
}
