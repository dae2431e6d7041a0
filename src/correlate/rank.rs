//! Ranking root-cause hypotheses for one incident.
//!
//! Candidates are gathered in a look-back window and grouped when several deliveries
//! describe one change (a CloudTrail call, the Config item that records it, the ECS or
//! GitHub deployment events of one deployment). A directed graph is built whose edges
//! point from an effect to what could have caused it, weighted by
//!   plausibility of the change kind x time order and gap x topology distance,
//! from each symptom (alarm transition) to candidates, and from intermediate effects
//! (log anomalies, saturation alarms, service events) to earlier changes. A personalised
//! random walk that restarts at the symptoms then ranks candidates by how much of the
//! walk ends up at them; each symptom and effect also has an "unexplained" way out, so
//! weak candidates get small scores rather than all the blame.

use super::incidents::{transitions, Found, Transition};
use super::priors;
use super::topology::{name_tokens, ResourceGraph};
use super::{Config, Corpus, Hypothesis};
use crate::model::{fmt_time, Event, Kind, Source};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Walk continuation probability (1 - restart probability).
const ALPHA: f64 = 0.85;
/// Weight of a symptom's "unexplained" edge.
const SYMPTOM_SINK: f64 = 0.15;
/// Weight of an intermediate effect's "unexplained" edge.
const EFFECT_SINK: f64 = 0.3;
/// Intermediate effects given their own upstream edges (the most relevant ones).
const MAX_EFFECTS: usize = 48;

/// Tokens that say an alarm watches a saturating resource.
const SATURATION_WORDS: &[&str] = &[
    "cpu",
    "memory",
    "mem",
    "conn",
    "conns",
    "connection",
    "connections",
    "concurrency",
    "concurrent",
    "throttle",
    "throttles",
    "throttled",
    "throttling",
    "queue",
    "backlog",
    "saturation",
    "saturated",
    "capacity",
    "utilization",
    "disk",
    "iops",
    "credit",
    "credits",
    "pool",
    "swap",
    "load",
];

/// What is known about an alarm's definition.
#[derive(Debug, Clone, Default)]
struct AlarmDef {
    namespace: String,
    metric: String,
}

/// Corpus-wide context for ranking: naming statistics, alarm definitions and an index
/// of effective changes by primary resource.
pub(crate) struct Vocabulary {
    df: BTreeMap<String, u32>,
    docs: u32,
    alarms: BTreeMap<String, AlarmDef>,
    /// Effective change events (corpus indexes) by primary resource, in time order.
    by_primary: BTreeMap<String, Vec<usize>>,
}

/// The alarm an event defines (its name, metric namespace and metric name), if it is
/// a definition: a DescribeAlarms snapshot, a successful PutMetricAlarm call, or an
/// EventBridge alarm event (which carries the alarm's configuration).
fn alarm_definition(e: &Event, payload: impl FnOnce() -> Rc<Value>) -> Option<(String, AlarmDef)> {
    /// Where the alarm's name and metric are in each kind of definition.
    enum Shape {
        Described,
        PutMetricAlarm,
        StateChange,
    }
    let shape = match (&e.kind, e.source) {
        (Kind::Snapshot { .. }, Source::AlarmDefinition) => Shape::Described,
        (Kind::Alarm { .. }, Source::EventBridge) => Shape::StateChange,
        (Kind::Change, Source::CloudTrail)
            if e.name == "PutMetricAlarm" && e.error_code.is_none() =>
        {
            Shape::PutMetricAlarm
        }
        _ => return None,
    };
    let p = payload();
    let p = p.as_ref();
    let (name, metric) = match shape {
        Shape::Described => (
            p.get("AlarmName"),
            p.get("Namespace")
                .map(|_| (p, "Namespace", "MetricName"))
                .or_else(|| {
                    p.pointer("/Metrics/0/MetricStat/Metric")
                        .map(|m| (m, "Namespace", "MetricName"))
                }),
        ),
        Shape::PutMetricAlarm => (
            p.pointer("/requestParameters/alarmName"),
            p.pointer("/requestParameters")
                .map(|m| (m, "namespace", "metricName")),
        ),
        Shape::StateChange => (
            p.pointer("/detail/alarmName"),
            p.pointer("/detail/configuration/metrics/0/metricStat/metric")
                .map(|m| (m, "namespace", "name")),
        ),
    };
    let name = name.and_then(Value::as_str)?;
    let (m, ns_key, metric_key) = metric?;
    let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some((
        name.to_string(),
        AlarmDef {
            namespace: s(ns_key),
            metric: s(metric_key),
        },
    ))
}

impl Vocabulary {
    pub(crate) fn build(graph: &ResourceGraph, corpus: &Corpus<'_>) -> Self {
        let mut alarms: BTreeMap<String, AlarmDef> = BTreeMap::new();
        let mut by_primary: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, e) in corpus.events.iter().enumerate() {
            if e.is_effective_change() {
                if let Some(p) = e.resources.first() {
                    by_primary.entry(p.clone()).or_default().push(i);
                }
            }
            // Alarm definitions: DescribeAlarms snapshots, PutMetricAlarm calls and
            // EventBridge alarm events.
            if let Some((name, def)) = alarm_definition(e, || corpus.payload(i)) {
                alarms.insert(name, def);
            }
        }
        let mut df: BTreeMap<String, u32> = BTreeMap::new();
        let mut docs = 0u32;
        let mut add = |text: &str| {
            docs += 1;
            for t in name_tokens(text) {
                *df.entry(t).or_default() += 1;
            }
        };
        for id in 0..graph.len() as u32 {
            add(key_tail(graph.name(id)));
        }
        for name in alarms.keys() {
            add(name);
        }
        Vocabulary {
            df,
            docs: docs.max(2),
            alarms,
            by_primary,
        }
    }

    /// Naming tokens of an alarm: its name and its metric namespace.
    pub(crate) fn alarm_tokens(&self, alarm: &str) -> BTreeSet<String> {
        let mut t = name_tokens(alarm);
        if let Some(d) = self.alarms.get(alarm) {
            if !d.namespace.starts_with("AWS/") {
                t.extend(name_tokens(&d.namespace));
            }
        }
        t
    }

    fn idf(&self, token: &str) -> f64 {
        let df = self.df.get(token).copied().unwrap_or(1).max(1) as f64;
        let n = self.docs as f64;
        ((n / df).ln() / n.ln()).clamp(0.0, 1.0)
    }

    /// How distinctively two sets of names overlap: the rarity of the rarest shared token.
    pub(crate) fn affinity(&self, a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
        a.intersection(b).map(|t| self.idf(t)).fold(0.0, f64::max)
    }

    /// What an alarm measures (namespace and metric), or its name when unknown.
    fn metric_key(&self, alarm: &str) -> String {
        match self.alarms.get(alarm) {
            Some(d) if !d.metric.is_empty() => format!("{}/{}", d.namespace, d.metric),
            _ => format!("alarm:{alarm}"),
        }
    }

    fn is_saturation(&self, alarm: &str) -> bool {
        let mut t = name_tokens(alarm);
        if let Some(d) = self.alarms.get(alarm) {
            t.extend(name_tokens(&d.metric));
        }
        t.iter().any(|w| SATURATION_WORDS.contains(&w.as_str()))
    }
}

/// The name part of a resource key (`lb/web` -> `web`).
fn key_tail(key: &str) -> &str {
    key.split_once('/').map(|x| x.1).unwrap_or(key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupKind {
    Change,
    Deployment,
    Anomaly,
    Saturation,
    Config,
    Other,
}

impl GroupKind {
    fn as_str(self) -> &'static str {
        match self {
            GroupKind::Change => "change",
            GroupKind::Deployment => "deployment",
            GroupKind::Anomaly => "anomaly",
            GroupKind::Saturation => "saturation",
            GroupKind::Config => "config",
            GroupKind::Other => "other",
        }
    }

    /// Effects that may themselves have an upstream cause.
    fn effect_like(self) -> bool {
        matches!(
            self,
            GroupKind::Anomaly | GroupKind::Saturation | GroupKind::Other
        )
    }

    /// Rank for choosing the representative delivery of a group.
    fn order(self) -> u8 {
        match self {
            GroupKind::Change => 0,
            GroupKind::Deployment => 1,
            GroupKind::Saturation => 2,
            GroupKind::Anomaly => 3,
            GroupKind::Config => 4,
            GroupKind::Other => 5,
        }
    }
}

/// Candidate causes that describe one thing.
#[derive(Debug, Clone)]
struct Group {
    members: Vec<usize>,
    kind: GroupKind,
    time: i64,
    prior: f64,
    why: String,
    resources: BTreeSet<String>,
}

impl Group {
    fn rep(&self) -> usize {
        self.members[0]
    }
}

/// Keys under which deliveries of the same change meet.
fn aliases(corpus: &Corpus<'_>, i: usize) -> Vec<String> {
    let e = corpus.events[i];
    let mut out = Vec::new();
    match e.source {
        // Its own id ("ct:ID") is matched separately, without allocating per event.
        Source::CloudTrail
            if matches!(
                e.name.as_str(),
                "UpdateService" | "CreateService" | "CreateDeployment"
            ) && (e.payload.contains("\"deployments\"")
                || e.payload.contains("\"deploymentId\"")) =>
        {
            let p = corpus.payload(i);
            if let Some(Value::Array(ds)) = p.pointer("/responseElements/service/deployments") {
                for d in ds {
                    if d.get("status").and_then(Value::as_str) == Some("PRIMARY") {
                        if let Some(id) = d.get("id").and_then(Value::as_str) {
                            out.push(format!("ecs-deploy:{id}"));
                        }
                    }
                }
            }
            if let Some(id) = p
                .pointer("/responseElements/deploymentId")
                .and_then(Value::as_str)
            {
                out.push(format!("codedeploy:{id}"));
            }
        }
        Source::EventBridge => {
            let p = corpus.payload(i);
            if let Some(id) = p.pointer("/detail/eventID").and_then(Value::as_str) {
                out.push(format!("ct:{id}"));
            }
            if let Some(id) = p.pointer("/detail/deploymentId").and_then(Value::as_str) {
                out.push(format!("ecs-deploy:{id}"));
                out.push(format!("codedeploy:{id}"));
            }
            if let Some(Value::Array(rel)) = p.pointer("/detail/configurationItem/relatedEvents") {
                out.extend(
                    rel.iter()
                        .filter_map(Value::as_str)
                        .map(|r| format!("ct:{r}")),
                );
            }
        }
        Source::Config => {
            let p = corpus.payload(i);
            if let Some(Value::Array(rel)) = p.get("relatedEvents") {
                out.extend(
                    rel.iter()
                        .filter_map(Value::as_str)
                        .map(|r| format!("ct:{r}")),
                );
            }
        }
        Source::GithubDeploymentStatus => {
            let p = corpus.payload(i);
            match p.pointer("/deployment/id") {
                Some(Value::Number(n)) => out.push(format!("gh:{n}")),
                Some(Value::String(s)) => out.push(format!("gh:{s}")),
                _ => {}
            }
        }
        _ => {}
    }
    out
}

/// Simple union-find over candidate positions.
struct Dsu(Vec<usize>);

impl Dsu {
    fn find(&mut self, x: usize) -> usize {
        let mut r = x;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut c = x;
        while self.0[c] != r {
            let n = self.0[c];
            self.0[c] = r;
            c = n;
        }
        r
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi] = lo;
        }
    }
}

fn topo_weight(cost: u32) -> f64 {
    if cost == 0 {
        1.0
    } else {
        0.8f64.powi(cost as i32)
    }
}

fn time_weight(gap_ms: i64) -> f64 {
    let minutes = gap_ms.max(0) as f64 / 60_000.0;
    1.0 / (1.0 + minutes / 60.0)
}

/// Prior and reason of one candidate event.
fn event_prior(
    corpus: &Corpus<'_>,
    vocab: &Vocabulary,
    i: usize,
    detailed: bool,
) -> (GroupKind, f64, String) {
    let e = corpus.events[i];
    match &e.kind {
        Kind::Change if e.source == Source::AlarmHistory => {
            (GroupKind::Change, 0.05, "alarm definition".into())
        }
        Kind::Change => {
            let (mut p, why) = priors::change_prior(&e.name);
            let mut why = why.to_string();
            if detailed
                && (e.payload.contains("invokedBy") || e.payload.contains("AWSService"))
                && priors::service_initiated(&corpus.payload(i))
            {
                p *= 0.3;
                why.push_str(", made by an AWS service");
            }
            let n = priors::base_name(&e.name);
            if detailed
                && ["Update", "Modify", "Set", "Put"]
                    .iter()
                    .any(|v| n.starts_with(v))
                && p > 0.1
            {
                let payload = corpus.payload(i);
                if let Some(req) = payload.get("requestParameters") {
                    let before: Vec<std::rc::Rc<Value>> = e
                        .resources
                        .first()
                        .and_then(|r| vocab.by_primary.get(r))
                        .map(|v| {
                            v.iter()
                                .filter(|&&j| corpus.events[j].event_time < e.event_time && j != i)
                                .rev()
                                .take(20)
                                .map(|&j| corpus.payload(j))
                                .collect()
                        })
                        .unwrap_or_default();
                    let befores: Vec<&Value> = before
                        .iter()
                        .rev()
                        .filter_map(|b| b.get("requestParameters"))
                        .collect();
                    match priors::reduction(req, payload.get("responseElements"), &befores) {
                        Some(true) => {
                            p *= 1.6;
                            why.push_str(", reduces capacity");
                        }
                        Some(false) => {
                            p *= 0.8;
                            why.push_str(", adds capacity");
                        }
                        None => {}
                    }
                }
            }
            (GroupKind::Change, p, why)
        }
        Kind::Deployment { outcome, .. } => {
            let p = match outcome.as_str() {
                "failed" => 1.0,
                "inactive" => 0.1,
                _ => 0.9,
            };
            (GroupKind::Deployment, p, "deployment".into())
        }
        Kind::Anomaly { priority, .. } => {
            let f = match priority.to_ascii_uppercase().as_str() {
                "HIGH" => 1.0,
                "MEDIUM" => 0.6,
                _ => 0.3,
            };
            (
                GroupKind::Anomaly,
                0.35 * f,
                format!("{} log anomaly", priority.to_ascii_lowercase()),
            )
        }
        Kind::Snapshot { .. } => (GroupKind::Config, 0.1, "configuration snapshot".into()),
        Kind::Other if e.name.contains("Health") || e.name.starts_with("AWS_") => {
            (GroupKind::Other, 0.6, "AWS Health event".into())
        }
        _ => (GroupKind::Other, 0.08, "service event".into()),
    }
}

/// Marks changes undone within the window: an inverse call with the same parameters
/// (Authorize then Revoke), or a second call that restores the parameters the first one
/// replaced. Returns reverted corpus indexes with the index of the other half.
fn reverts(corpus: &Corpus<'_>, vocab: &Vocabulary, changes: &[usize]) -> BTreeMap<usize, usize> {
    let mut out = BTreeMap::new();
    let mut by_res: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in changes {
        if let Some(p) = corpus.events[i].resources.first() {
            by_res.entry(p.as_str()).or_default().push(i);
        }
    }
    for (res, list) in &by_res {
        for (x, &a) in list.iter().enumerate() {
            let ea = corpus.events[a];
            let inv = priors::inverse_name(&ea.name);
            for &b in &list[x + 1..] {
                let eb = corpus.events[b];
                let inverse = inv.as_deref() == Some(priors::base_name(&eb.name));
                let same = priors::base_name(&ea.name) == priors::base_name(&eb.name);
                if !inverse && !same {
                    continue;
                }
                let pa = corpus.payload(a);
                let pb = corpus.payload(b);
                let (ra, rb) = (pa.get("requestParameters"), pb.get("requestParameters"));
                let reverted = if inverse {
                    ra.is_some() && ra == rb
                } else {
                    // The call before `a` on this resource with the same name: does `b`
                    // put back what it had set?
                    let prev = vocab.by_primary.get(*res).and_then(|v| {
                        v.iter()
                            .rev()
                            .find(|&&j| {
                                corpus.events[j].event_time < ea.event_time
                                    && priors::base_name(&corpus.events[j].name)
                                        == priors::base_name(&ea.name)
                            })
                            .copied()
                    });
                    match prev {
                        Some(j) => {
                            let pj = corpus.payload(j);
                            let rj = pj.get("requestParameters");
                            rj.is_some() && rj == rb && ra != rb
                        }
                        None => false,
                    }
                };
                if reverted {
                    out.entry(a).or_insert(b);
                    out.entry(b).or_insert(a);
                }
            }
        }
    }
    out
}

/// The resources an event acts on, for distances: a change or a configuration item acts
/// on its primary resource (the service it updates, not the cluster it names); other
/// events on everything they name.
fn focus(e: &Event) -> Vec<String> {
    match e.kind {
        Kind::Change | Kind::Snapshot { .. } => e.resources.iter().take(1).cloned().collect(),
        _ => e.resources.clone(),
    }
}

/// A symptom node's data.
struct Symptom<'t> {
    t: &'t Transition,
    dist: BTreeMap<u32, (u32, Option<u32>)>,
    tokens: BTreeSet<String>,
}

fn best_cost(
    graph: &ResourceGraph,
    dist: &BTreeMap<u32, (u32, Option<u32>)>,
    res: &BTreeSet<String>,
) -> Option<(u32, u32)> {
    res.iter()
        .filter_map(|r| graph.id(r))
        .filter_map(|id| dist.get(&id).map(|d| (d.0, id)))
        .min()
}

fn group_tokens(g: &Group) -> BTreeSet<String> {
    let mut t = BTreeSet::new();
    for r in &g.resources {
        t.extend(name_tokens(key_tail(r)));
    }
    t
}

/// Ranks the hypotheses of one incident.
pub(crate) fn rank(
    corpus: &Corpus<'_>,
    graph: &ResourceGraph,
    vocab: &Vocabulary,
    inc: &Found,
    config: &Config,
) -> Vec<Hypothesis> {
    let t_first = inc
        .transitions
        .iter()
        .map(|t| t.time)
        .min()
        .unwrap_or(inc.opened_at);
    let t_last = inc
        .transitions
        .iter()
        .map(|t| t.time)
        .max()
        .unwrap_or(inc.opened_at);
    let from = t_first - config.lookback_ms;
    let to = t_last + config.slack_ms;

    // Symptoms: the incident's alarm transitions; alarms without dimensions borrow the
    // incident's resources.
    let symptom_deliveries: BTreeSet<usize> = inc
        .transitions
        .iter()
        .flat_map(|t| t.deliveries.iter().copied())
        .collect();
    let mut symptoms: Vec<Symptom<'_>> = Vec::new();
    for t in &inc.transitions {
        let own = format!("alarm/{}", t.alarm);
        let mut sources: BTreeSet<String> = t.resources.iter().cloned().collect();
        sources.extend(
            graph
                .neighbours(&own)
                .into_iter()
                .filter(|n| !n.starts_with("alarm/"))
                .map(str::to_string),
        );
        if sources.iter().all(|s| s.starts_with("alarm/")) {
            sources.extend(inc.resources.iter().cloned());
        }
        sources.insert(own);
        let list: Vec<String> = sources.into_iter().collect();
        symptoms.push(Symptom {
            t,
            dist: graph.distances(&list),
            tokens: vocab.alarm_tokens(&t.alarm),
        });
    }

    // Candidate events.
    let mut cand: Vec<usize> = Vec::new();
    for i in corpus.range(from, to) {
        if symptom_deliveries.contains(&i) {
            continue;
        }
        let e: &Event = corpus.events[i];
        let keep = match &e.kind {
            Kind::Change => e.is_effective_change(),
            Kind::Deployment { .. }
            | Kind::Anomaly { .. }
            | Kind::Snapshot { .. }
            | Kind::Other => true,
            _ => false,
        };
        if keep {
            cand.push(i);
        }
    }

    // Group deliveries of the same change.
    let mut dsu = Dsu((0..cand.len()).collect());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (pos, &i) in cand.iter().enumerate() {
        for a in aliases(corpus, i) {
            match seen.get(&a) {
                Some(&other) => dsu.union(pos, other),
                None => {
                    seen.insert(a, pos);
                }
            }
        }
    }
    // Deliveries that name a CloudTrail call (Config items, EventBridge copies) join it.
    if seen.keys().any(|k| k.starts_with("ct:")) {
        for (pos, &i) in cand.iter().enumerate() {
            let e = corpus.events[i];
            if e.source == Source::CloudTrail {
                if let Some(&other) = seen.get(&format!("ct:{}", e.natural_id)) {
                    dsu.union(pos, other);
                }
            }
        }
    }
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (pos, &i) in cand.iter().enumerate() {
        let root = dsu.find(pos);
        members.entry(root).or_default().push(i);
    }
    // Reverts matter only among changes topology relates to a symptom.
    let related = |i: usize| {
        focus(corpus.events[i])
            .iter()
            .filter_map(|r| graph.id(r))
            .any(|id| symptoms.iter().any(|s| s.dist.contains_key(&id)))
    };
    let changes: Vec<usize> = cand
        .iter()
        .copied()
        .filter(|&i| {
            matches!(corpus.events[i].kind, Kind::Change)
                && corpus.events[i].source == Source::CloudTrail
                && related(i)
        })
        .collect();
    let reverted = reverts(corpus, vocab, &changes);

    let mut groups: Vec<Group> = Vec::new();
    for (_, ms) in members {
        // Detailed priors (which read payloads) only where topology can make them
        // matter: an unrelated candidate keeps its name-based prior.
        let reachable = ms.iter().any(|&i| related(i));
        let mut scored: Vec<(GroupKind, f64, String, usize)> = ms
            .iter()
            .map(|&i| {
                let (k, p, w) = event_prior(corpus, vocab, i, reachable);
                (k, p, w, i)
            })
            .collect();
        scored.sort_by(|a, b| {
            a.0.order()
                .cmp(&b.0.order())
                .then(
                    corpus.events[a.3]
                        .event_time
                        .cmp(&corpus.events[b.3].event_time),
                )
                .then(a.3.cmp(&b.3))
        });
        let (kind, mut prior, mut why, rep) = scored[0].clone();
        prior = scored.iter().map(|s| s.1).fold(prior, f64::max);
        if let Some(&other) = reverted.get(&rep) {
            prior *= 0.1;
            why = format!(
                "{why}, reverted ({} at {})",
                corpus.events[other].name,
                fmt_time(corpus.events[other].event_time)
            );
        }
        let mut resources = BTreeSet::new();
        let mut time = i64::MAX;
        let mut ordered = vec![rep];
        for s in &scored {
            resources.extend(focus(corpus.events[s.3]));
            time = time.min(corpus.events[s.3].event_time);
            if s.3 != rep {
                ordered.push(s.3);
            }
        }
        groups.push(Group {
            members: ordered,
            kind,
            time,
            prior,
            why,
            resources,
        });
    }

    // Saturation alarms upstream of a symptom. Alarms on the same metric (one per
    // instance, say) are one phenomenon: one hypothesis, blamed on the earliest.
    let mut saturation: BTreeMap<String, Group> = BTreeMap::new();
    for t in transitions(corpus) {
        if t.new_state != "ALARM" || t.time < from || t.time > to || !vocab.is_saturation(&t.alarm)
        {
            continue;
        }
        let mut resources: BTreeSet<String> = t.resources.iter().cloned().collect();
        let own = format!("alarm/{}", t.alarm);
        resources.extend(
            graph
                .neighbours(&own)
                .into_iter()
                .filter(|n| !n.starts_with("alarm/"))
                .map(str::to_string),
        );
        resources.insert(own);
        // History first: it is the delivery every estate has.
        let mut ds = t.deliveries.clone();
        ds.sort_by_key(|&d| (corpus.events[d].source != Source::AlarmHistory, d));
        let entry = saturation
            .entry(vocab.metric_key(&t.alarm))
            .or_insert_with(|| Group {
                members: Vec::new(),
                kind: GroupKind::Saturation,
                time: t.time,
                prior: 0.5,
                why: "saturation alarm".into(),
                resources: BTreeSet::new(),
            });
        entry.members.extend(ds);
        entry.resources.extend(resources);
    }
    for (_, mut grp) in saturation {
        if grp.members.len() > 2 {
            grp.why = "saturation alarms on the same metric".into();
        }
        groups.push(grp);
    }
    if groups.is_empty() {
        return Vec::new();
    }

    // The causal graph: symptoms, groups and one "unexplained" sink.
    let mut g: DiGraph<(), f64> = DiGraph::new();
    let sink = g.add_node(());
    let sym_nodes: Vec<NodeIndex> = symptoms.iter().map(|_| g.add_node(())).collect();
    let grp_nodes: Vec<NodeIndex> = groups.iter().map(|_| g.add_node(())).collect();
    let tokens: Vec<BTreeSet<String>> = groups.iter().map(group_tokens).collect();
    // Best direct explanation of each group: (weight, symptom, path).
    let mut direct: Vec<(f64, usize, Vec<String>)> = vec![(0.0, 0, Vec::new()); groups.len()];
    for (si, s) in symptoms.iter().enumerate() {
        g.add_edge(sym_nodes[si], sink, SYMPTOM_SINK);
        for (gi, grp) in groups.iter().enumerate() {
            if grp.time > s.t.time + config.slack_ms
                || (grp.kind == GroupKind::Saturation
                    && grp.members.iter().any(|m| s.t.deliveries.contains(m)))
            {
                continue;
            }
            // A saturation alarm causes only later symptoms.
            if grp.kind == GroupKind::Saturation && grp.time >= s.t.time {
                continue;
            }
            let (topo, path) = match best_cost(graph, &s.dist, &grp.resources) {
                Some((c, id)) => (topo_weight(c), graph.path(&s.dist, id)),
                None => (
                    (0.4 * vocab.affinity(&tokens[gi], &s.tokens)).max(0.01),
                    Vec::new(),
                ),
            };
            let w = grp.prior * time_weight(s.t.time - grp.time) * topo;
            if w <= 0.0 {
                continue;
            }
            g.add_edge(sym_nodes[si], grp_nodes[gi], w);
            if w > direct[gi].0 {
                direct[gi] = (w, si, path);
            }
        }
    }
    // Intermediate effects and their upstream causes.
    let mut effects: Vec<usize> = (0..groups.len())
        .filter(|&i| groups[i].kind.effect_like() && direct[i].0 > 0.0)
        .collect();
    effects.sort_by(|&a, &b| direct[b].0.total_cmp(&direct[a].0).then(a.cmp(&b)));
    effects.truncate(MAX_EFFECTS);
    let mut via: Vec<Option<(f64, usize)>> = vec![None; groups.len()];
    for &ei in &effects {
        let eff = &groups[ei];
        g.add_edge(grp_nodes[ei], sink, EFFECT_SINK);
        let sources: Vec<String> = eff.resources.iter().cloned().collect();
        let dist = graph.distances(&sources);
        for (ci, c) in groups.iter().enumerate() {
            if ci == ei
                || c.time > eff.time + config.slack_ms
                || matches!(c.kind, GroupKind::Anomaly | GroupKind::Other)
            {
                continue;
            }
            if c.kind == GroupKind::Saturation && c.time >= eff.time {
                continue;
            }
            let topo = match best_cost(graph, &dist, &c.resources) {
                Some((cost, _)) => topo_weight(cost),
                None => (0.4 * vocab.affinity(&tokens[ci], &tokens[ei])).max(0.01),
            };
            let w = c.prior * time_weight(eff.time - c.time) * topo;
            g.add_edge(grp_nodes[ei], grp_nodes[ci], w);
            let chain = w * direct[ei].0;
            if via[ci].is_none_or(|(best, _)| chain > best) {
                via[ci] = Some((chain, ei));
            }
        }
    }

    // Personalised PageRank from the symptoms, walking effect -> cause.
    let n = g.node_count();
    let mut restart = vec![0.0; n];
    for s in &sym_nodes {
        restart[s.index()] = 1.0 / sym_nodes.len() as f64;
    }
    let out_w: Vec<f64> = (0..n)
        .map(|u| g.edges(NodeIndex::new(u)).map(|e| *e.weight()).sum())
        .collect();
    // Edges as flat arrays: the iteration below is the hot loop.
    let edges: Vec<(usize, usize, f64)> = g
        .edge_references()
        .map(|e| {
            (
                e.source().index(),
                e.target().index(),
                e.weight() / out_w[e.source().index()],
            )
        })
        .collect();
    let sym_idx: Vec<usize> = sym_nodes.iter().map(|s| s.index()).collect();
    let mut x = restart.clone();
    for _ in 0..200 {
        // Walkers at a node with no way out (a root cause) restart at the symptoms.
        let dangling: f64 = (0..n).filter(|&u| out_w[u] <= 0.0).map(|u| x[u]).sum();
        let mut next = vec![0.0; n];
        for &si in &sym_idx {
            next[si] = (1.0 - ALPHA + ALPHA * dangling) * restart[si];
        }
        for &(u, v, w) in &edges {
            next[v] += ALPHA * x[u] * w;
        }
        let delta: f64 = next.iter().zip(&x).map(|(a, b)| (a - b).abs()).sum();
        x = next;
        if delta < 1e-10 {
            break;
        }
    }
    let total: f64 = grp_nodes.iter().map(|v| x[v.index()]).sum::<f64>() + x[sink.index()];
    let mut order: Vec<usize> = (0..groups.len())
        .filter(|&i| x[grp_nodes[i].index()] > 0.0)
        .collect();
    order.sort_by(|&a, &b| {
        x[grp_nodes[b].index()]
            .total_cmp(&x[grp_nodes[a].index()])
            .then(groups[b].time.cmp(&groups[a].time))
            .then(groups[a].rep().cmp(&groups[b].rep()))
    });
    order.truncate(config.max_hypotheses);

    order
        .iter()
        .enumerate()
        .map(|(rank, &gi)| {
            let grp = &groups[gi];
            let score = if total > 0.0 {
                x[grp_nodes[gi].index()] / total
            } else {
                0.0
            };
            let (dw, si, path) = &direct[gi];
            let mut evidence: Vec<usize> = grp.members.clone();
            let mut symptom = *si;
            let mut through: Option<usize> = None;
            if let Some((vw, ei)) = via[gi] {
                if vw > *dw {
                    through = Some(ei);
                    evidence.push(groups[ei].rep());
                    symptom = direct[ei].1;
                }
            }
            let st = symptoms[symptom].t;
            evidence.extend(st.deliveries.iter().copied());
            let mut refs = Vec::new();
            for i in evidence {
                let r = corpus.events[i].reference();
                if !refs.contains(&r) {
                    refs.push(r);
                }
            }
            let path = if through.is_some() {
                direct[through.unwrap_or(gi)].2.clone()
            } else {
                path.clone()
            };
            Hypothesis {
                rank: rank + 1,
                score: score.clamp(0.0, 1.0),
                kind: grp.kind.as_str().to_string(),
                cause: corpus.events[grp.rep()].reference(),
                summary: summary(corpus, grp, st, through.map(|e| &groups[e]), &path),
                evidence: refs,
                path,
            }
        })
        .collect()
}

/// "4.3 min", "2 h 05 min", "30 s".
pub(crate) fn fmt_gap(ms: i64) -> String {
    let a = ms.abs();
    let s = if a < 60_000 {
        format!("{} s", a / 1000)
    } else if a < 3_600_000 {
        format!("{:.1} min", a as f64 / 60_000.0)
    } else {
        format!("{} h {:02} min", a / 3_600_000, (a % 3_600_000) / 60_000)
    };
    if ms < 0 {
        format!("{s} after")
    } else {
        format!("{s} before")
    }
}

fn short_actor(actor: Option<&str>) -> String {
    match actor {
        None => "an unknown actor".into(),
        Some(a) => {
            if let Some(rest) = a.split(":assumed-role/").nth(1) {
                rest.to_string()
            } else if let Some(rest) = a.split(":user/").nth(1) {
                rest.to_string()
            } else {
                a.to_string()
            }
        }
    }
}

fn summary(
    corpus: &Corpus<'_>,
    grp: &Group,
    symptom: &Transition,
    through: Option<&Group>,
    path: &[String],
) -> String {
    let e = corpus.events[grp.rep()];
    let gap = fmt_gap(symptom.time - grp.time);
    let target = e
        .resources
        .first()
        .map(String::as_str)
        .unwrap_or("an unknown resource");
    let head = match (&e.kind, grp.kind) {
        (Kind::Deployment { target, phase, .. }, _) => format!(
            "Deployment of {} ({}) by {}, {gap} {} went to ALARM",
            if target.is_empty() {
                "an unknown service"
            } else {
                target
            },
            phase,
            short_actor(e.actor.as_deref()),
            symptom.alarm
        ),
        (
            Kind::Anomaly {
                pattern,
                priority,
                group,
                ..
            },
            _,
        ) => format!(
            "Log anomaly \"{}\" ({}) in {}, {gap} {} went to ALARM",
            crate::model::truncate(pattern, 80),
            priority,
            group,
            symptom.alarm
        ),
        (Kind::Alarm { alarm, .. }, GroupKind::Saturation) => {
            format!("Saturation: {alarm} went to ALARM {gap} {}", symptom.alarm)
        }
        _ => format!(
            "{} on {target} by {}, {gap} {} went to ALARM",
            e.name,
            short_actor(e.actor.as_deref()),
            symptom.alarm
        ),
    };
    let mut s = format!("{head} ({})", grp.why);
    if let Some(t) = through {
        let te = corpus.events[t.rep()];
        s.push_str(&format!(
            "; seen through {} {}",
            te.name,
            fmt_time(te.event_time)
        ));
    }
    if path.len() > 1 {
        let mut p: Vec<&str> = path.iter().map(String::as_str).collect();
        p.dedup();
        s.push_str(&format!("; linked via {}", p.join(" -> ")));
    }
    s.push('.');
    s
}
