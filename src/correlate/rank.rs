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
//!
//! `rank` runs these as stages, in order:
//!  1. `symptoms`: the incident's alarm transitions, with their topology distances;
//!  2. `gather_candidates`: candidate causes in the look-back `Window`;
//!  3. `group_deliveries`: deliveries of one change joined, by the ids
//!     `normalize::facts` reads from their payloads;
//!  4. `score_groups`: each set of deliveries as one `Group` with a prior;
//!  5. `discount_reverts`: changes undone within the window count less;
//!  6. `saturation_groups`: saturation alarms as candidate causes too;
//!  7. `CausalGraph::from_symptoms`: symptom -> group edges;
//!  8. `CausalGraph::add_effect_edges`: intermediate effect -> group edges;
//!  9. `CausalGraph::walk`: the random walk (`walk::personalised_pagerank`);
//! 10. `rank_groups`: the most blamed groups, in order;
//! 11. `explain`: each as a `Hypothesis` with evidence, path and summary.

use super::incidents::{transitions, Found, Transition};
use super::knowledge::{key_tail, Knowledge, EARLIER_CHANGES};
use super::priors;
use super::topology::{name_tokens, Distances, Neighbourhood};
use super::walk;
use super::{Config, Corpus, Hypothesis};
use crate::model::{fmt_time, Event, Kind, Source};
use crate::normalize::facts::{self, DeliveryId};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Walk continuation probability (1 - restart probability).
const ALPHA: f64 = 0.85;
/// Weight of a symptom's "unexplained" edge.
const SYMPTOM_SINK: f64 = 0.15;
/// Weight of an intermediate effect's "unexplained" edge.
const EFFECT_SINK: f64 = 0.3;
/// Groups of refused calls kept per incident (those linked to a symptom first, then the
/// most repeated).
const MAX_REFUSED: usize = 6;
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmDef {
    pub namespace: String,
    pub metric: String,
}

/// Earlier changes of a resource, latest first, with their parsed payloads.
type Earlier = Vec<(Event, Rc<Value>)>;

/// Context for ranking, read through [`Knowledge`] as needed: naming statistics, alarm
/// definitions and the earlier changes of a resource.
pub(crate) struct Vocabulary<'k> {
    k: &'k dyn Knowledge,
    docs: u32,
    df: RefCell<BTreeMap<String, u32>>,
    alarms: RefCell<BTreeMap<String, Option<AlarmDef>>>,
    /// Changes by primary resource before `horizon`, latest first, payloads parsed.
    earlier: RefCell<BTreeMap<String, Rc<Earlier>>>,
    /// The end of the window being ranked: earlier changes are read once per resource,
    /// up to here.
    horizon: i64,
}

/// Where the alarm's name and metric are in each kind of definition.
enum Shape {
    Described,
    PutMetricAlarm,
    StateChange,
}

/// The kind of alarm definition an event is, told from its envelope alone.
fn definition_shape(e: &Event) -> Option<Shape> {
    match (&e.kind, e.source) {
        (Kind::Snapshot { .. }, Source::AlarmDefinition) => Some(Shape::Described),
        (Kind::Alarm { .. }, Source::EventBridge) => Some(Shape::StateChange),
        (Kind::Change, Source::CloudTrail)
            if e.name == "PutMetricAlarm" && e.error_code.is_none() =>
        {
            Some(Shape::PutMetricAlarm)
        }
        _ => None,
    }
}

/// True when `e` may define an alarm ([`alarm_definition`] then reads its payload).
pub(crate) fn may_define_alarm(e: &Event) -> bool {
    definition_shape(e).is_some()
}

/// The alarm an event defines (its name, metric namespace and metric name), if it is
/// a definition: a DescribeAlarms snapshot, a successful PutMetricAlarm call, or an
/// EventBridge alarm event (which carries the alarm's configuration).
pub(crate) fn alarm_definition(
    e: &Event,
    payload: impl FnOnce() -> Rc<Value>,
) -> Option<(String, AlarmDef)> {
    let shape = definition_shape(e)?;
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

impl<'k> Vocabulary<'k> {
    pub(crate) fn new(k: &'k dyn Knowledge, horizon: i64) -> Self {
        Vocabulary {
            k,
            docs: k.names().max(2),
            df: RefCell::new(BTreeMap::new()),
            alarms: RefCell::new(BTreeMap::new()),
            earlier: RefCell::new(BTreeMap::new()),
            horizon,
        }
    }

    fn alarm(&self, alarm: &str) -> Option<AlarmDef> {
        if let Some(d) = self.alarms.borrow().get(alarm) {
            return d.clone();
        }
        let d = self.k.alarm_definition(alarm);
        self.alarms
            .borrow_mut()
            .insert(alarm.to_string(), d.clone());
        d
    }

    /// The [`EARLIER_CHANGES`] latest effective changes of a primary resource before the
    /// horizon, latest first, with their payloads: read once per resource (a resource
    /// changed by many candidates is read once, not once each); callers keep those before
    /// the change they judge.
    fn earlier(&self, resource: &str) -> Rc<Earlier> {
        let cached = self.earlier.borrow().get(resource).cloned();
        let all = match cached {
            Some(v) => v,
            None => {
                let v: Rc<Earlier> = Rc::new(
                    self.k
                        .earlier_changes(resource, self.horizon, EARLIER_CHANGES)
                        .into_iter()
                        .map(|e| {
                            let p =
                                Rc::new(serde_json::from_str(&e.payload).unwrap_or(Value::Null));
                            (e, p)
                        })
                        .collect(),
                );
                self.earlier
                    .borrow_mut()
                    .insert(resource.to_string(), v.clone());
                v
            }
        };
        all
    }

    /// Naming tokens of an alarm: its name and its metric namespace.
    pub(crate) fn alarm_tokens(&self, alarm: &str) -> BTreeSet<String> {
        let mut t = name_tokens(alarm);
        if let Some(d) = self.alarm(alarm) {
            if !d.namespace.starts_with("AWS/") {
                t.extend(name_tokens(&d.namespace));
            }
        }
        t
    }

    fn idf(&self, token: &str) -> f64 {
        let cached = self.df.borrow().get(token).copied();
        let df = match cached {
            Some(d) => d,
            None => {
                let d = self.k.token_df(token);
                self.df.borrow_mut().insert(token.to_string(), d);
                d
            }
        };
        let df = df.max(1) as f64;
        let n = self.docs as f64;
        ((n / df).ln() / n.ln()).clamp(0.0, 1.0)
    }

    /// How distinctively two sets of names overlap: the rarity of the rarest shared token.
    pub(crate) fn affinity(&self, a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
        a.intersection(b).map(|t| self.idf(t)).fold(0.0, f64::max)
    }

    /// What an alarm measures (namespace and metric), or its name when unknown.
    fn metric_key(&self, alarm: &str) -> String {
        match self.alarm(alarm) {
            Some(d) if !d.metric.is_empty() => format!("{}/{}", d.namespace, d.metric),
            _ => format!("alarm:{alarm}"),
        }
    }

    pub(crate) fn is_saturation(&self, alarm: &str) -> bool {
        let mut t = name_tokens(alarm);
        if let Some(d) = self.alarm(alarm) {
            t.extend(name_tokens(&d.metric));
        }
        t.iter().any(|w| SATURATION_WORDS.contains(&w.as_str()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupKind {
    Change,
    Deployment,
    Anomaly,
    Saturation,
    Config,
    Other,
    /// Calls refused by a limit (throttling, a quota): a cause that is not a change.
    Quota,
    /// Calls refused for want of permission: evidence of a cause, never one.
    Refused,
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
            GroupKind::Quota => "quota",
            GroupKind::Refused => "refused-calls",
        }
    }

    /// Effects that may themselves have an upstream cause.
    fn effect_like(self) -> bool {
        matches!(
            self,
            GroupKind::Anomaly
                | GroupKind::Saturation
                | GroupKind::Other
                | GroupKind::Quota
                | GroupKind::Refused
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
            GroupKind::Quota => 2,
            GroupKind::Refused => 6,
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

/// How plausible a candidate event is as a cause, of what kind, and a word for why.
#[derive(Debug, Clone)]
struct Prior {
    kind: GroupKind,
    value: f64,
    why: String,
}

impl Prior {
    fn new(kind: GroupKind, value: f64, why: impl Into<String>) -> Self {
        Prior {
            kind,
            value,
            why: why.into(),
        }
    }
}

/// Prior of one candidate event; `detailed` also reads its payload (changes only).
fn event_prior(cx: &Context<'_, '_>, i: usize, detailed: bool) -> Prior {
    let e = cx.corpus.events[i];
    match &e.kind {
        Kind::Change if e.source == Source::AlarmHistory => {
            Prior::new(GroupKind::Change, 0.05, "alarm definition")
        }
        Kind::Change => {
            let (p, why) = change_prior(cx, i, detailed);
            Prior::new(GroupKind::Change, p, why)
        }
        Kind::Deployment { outcome, .. } => {
            let p = match outcome.as_str() {
                "failed" => 1.0,
                "inactive" => 0.1,
                _ => 0.9,
            };
            Prior::new(GroupKind::Deployment, p, "deployment")
        }
        Kind::Anomaly { priority, .. } => {
            let f = match priority.to_ascii_uppercase().as_str() {
                "HIGH" => 1.0,
                "MEDIUM" => 0.6,
                _ => 0.3,
            };
            Prior::new(
                GroupKind::Anomaly,
                0.35 * f,
                format!("{} log anomaly", priority.to_ascii_lowercase()),
            )
        }
        Kind::Snapshot { .. } => Prior::new(GroupKind::Config, 0.1, "configuration snapshot"),
        Kind::Other if e.name.contains("Health") || e.name.starts_with("AWS_") => {
            Prior::new(GroupKind::Other, 0.6, "AWS Health event")
        }
        Kind::Other if failure_words(&e.name) => {
            Prior::new(GroupKind::Other, 0.3, "service reports a failure")
        }
        _ => Prior::new(GroupKind::Other, 0.08, "service event"),
    }
}

/// True for a service event that reports a failure ([`failure_words`]).
pub(crate) fn reports_failure(e: &Event) -> bool {
    matches!(e.kind, Kind::Other) && failure_words(&e.name)
}

/// True for a deployment or a change that rolls out code or configuration wholesale.
pub(crate) fn is_rollout(e: &Event) -> bool {
    match e.kind {
        Kind::Deployment { .. } => true,
        Kind::Change => priors::change_prior(&e.name).1 == "rollout",
        _ => false,
    }
}

/// Names of service events that report a failure (a launch that did not happen, a
/// task that stopped for want of memory, a failed health check).
fn failure_words(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "unsuccessful",
        "failed",
        "failure",
        "outofmemory",
        "unhealthy",
        "error",
        "expir",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A change's prior by its name; when `detailed`, lowered for a call AWS made on
/// someone's behalf, raised for a capacity cut and lowered for a capacity increase.
fn change_prior(cx: &Context<'_, '_>, i: usize, detailed: bool) -> (f64, String) {
    let e = cx.corpus.events[i];
    let (mut p, why) = priors::change_prior(&e.name);
    let mut why = why.to_string();
    if !detailed {
        return (p, why);
    }
    if facts::service_initiated(e, || cx.corpus.payload(i)) {
        p *= 0.3;
        why.push_str(", made by an AWS service");
    }
    let Some(did) = what_it_did(cx, i) else {
        return (p, why);
    };
    let words = |d: &priors::Did| {
        let mut v = d.detail.clone();
        v.truncate(3);
        v.join(", ")
    };
    if did.denies {
        // A Deny statement or rule blocks whatever relied on the access, whatever the
        // call that added it (PutResourcePolicy is otherwise bookkeeping).
        p = p.max(1.0);
        why.push_str(&format!(", denies access ({})", words(&did)));
        return (p, why);
    }
    if p <= 0.05 {
        return (p, why);
    }
    if did.bookkeeping {
        p = p.min(0.1);
        why.push_str(", only bookkeeping settings");
        return (p, why);
    }
    if why == "rollout" && did.only_capacity && did.capacity != Some(true) {
        // UpdateService with a desired count alone scales; it rolls nothing out.
        p = p.min(0.3);
        why.push_str(", scaling only");
    }
    if let Some(v) = &did.rollback_to {
        p *= 0.1;
        why.push_str(&format!(", rolls back to {v}"));
        return (p, why);
    }
    if did.routing {
        p = p.max(0.85);
        why.push_str(", changes where traffic goes");
    }
    if did.environment {
        p = p.max(0.7);
        why.push_str(", changes the environment");
    }
    let n = priors::base_name(&e.name);
    if ["Update", "Modify", "Set", "Put"]
        .iter()
        .any(|v| n.starts_with(v))
        && p > 0.1
    {
        match did.capacity {
            Some(true) => {
                p *= 1.6;
                why.push_str(&format!(", reduces capacity ({})", words(&did)));
            }
            Some(false) => {
                // More room rarely breaks anything.
                p *= 0.5;
                why.push_str(", adds capacity");
            }
            None => {}
        }
    }
    (p, why)
}

/// What change `i` did, judged by its request against its own response and up to 20
/// earlier changes of its primary resource (None without a request).
fn what_it_did(cx: &Context<'_, '_>, i: usize) -> Option<priors::Did> {
    let e = cx.corpus.events[i];
    let payload = cx.corpus.payload(i);
    let req = payload.get("requestParameters")?;
    if !req.is_object() {
        return None;
    }
    let before: Vec<Rc<Value>> = e
        .resources
        .first()
        .map(|r| {
            cx.vocab
                .earlier(r)
                .iter()
                .filter(|(x, _)| x.event_time < e.event_time)
                .take(20)
                .map(|(_, p)| p.clone())
                .collect()
        })
        .unwrap_or_default();
    let befores: Vec<&Value> = before
        .iter()
        .filter_map(|b| b.get("requestParameters"))
        .collect();
    Some(priors::what_it_did(
        req,
        payload.get("responseElements"),
        &befores,
    ))
}

/// Marks changes undone within the window: an inverse call with the same parameters
/// (Authorize then Revoke), or a second call that restores the parameters the first one
/// replaced. Returns reverted corpus indexes with the index of the other half.
fn reverts(
    corpus: &Corpus<'_>,
    vocab: &Vocabulary<'_>,
    changes: &[usize],
) -> BTreeMap<usize, usize> {
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
                    let earlier = vocab.earlier(res);
                    let prev = earlier.iter().find(|(ej, _)| {
                        ej.event_time < ea.event_time
                            && priors::base_name(&ej.name) == priors::base_name(&ea.name)
                    });
                    match prev {
                        Some((_, pj)) => {
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
    /// Corpus indexes of its deliveries.
    deliveries: Vec<usize>,
    dist: Distances,
    tokens: BTreeSet<String>,
}

/// The cheapest of `res` to reach, with its cost (ties broken by key).
fn best_cost<'r>(
    graph: &Neighbourhood<'_>,
    dist: &Distances,
    res: &'r BTreeSet<String>,
) -> Option<(u32, &'r str)> {
    res.iter()
        .filter_map(|r| graph.cost(dist, r).map(|c| (c, r.as_str())))
        .min()
}

fn group_tokens(g: &Group) -> BTreeSet<String> {
    let mut t = BTreeSet::new();
    for r in &g.resources {
        t.extend(name_tokens(key_tail(r)));
    }
    t
}

/// What every stage of `rank` reads: the corpus, its resource graph and vocabulary, and
/// the configuration.
struct Context<'c, 'a> {
    corpus: &'c Corpus<'a>,
    graph: &'c Neighbourhood<'c>,
    vocab: &'c Vocabulary<'c>,
    config: &'c Config,
}

/// Ranks the hypotheses of one incident.
pub(crate) fn rank(
    corpus: &Corpus<'_>,
    graph: &Neighbourhood<'_>,
    vocab: &Vocabulary<'_>,
    inc: &Found,
    config: &Config,
    reach_from: Option<i64>,
) -> (Vec<Hypothesis>, Option<f64>) {
    let cx = Context {
        corpus,
        graph,
        vocab,
        config,
    };
    let mut window = Window::of(inc, config);
    if let Some(t) = reach_from {
        window.from = window.from.min(t);
    }
    let symptoms = symptoms(&cx, inc);
    if symptoms.iter().any(|s| s.dist.has_hubs()) {
        // A key is then looked up from its own side: the window's keys read together.
        let keys: BTreeSet<&str> = corpus
            .range(window.from, window.to)
            .flat_map(|i| corpus.events[i].resources.iter().map(String::as_str))
            .collect();
        for s in symptoms.iter().filter(|s| s.dist.has_hubs()) {
            graph.prefetch_for(&s.dist, keys.iter().copied());
        }
    }
    let candidates = gather_candidates(corpus, &window, &symptoms);
    let deliveries = group_deliveries(corpus, &candidates);
    let mut groups = score_groups(&cx, deliveries, &symptoms);
    discount_reverts(&cx, &mut groups, &candidates, &symptoms);
    groups.extend(saturation_groups(&cx, &window));
    groups.extend(refused_groups(&cx, &window, &symptoms));
    if groups.is_empty() {
        return (Vec::new(), Some(1.0));
    }
    let mut causal = CausalGraph::from_symptoms(&cx, &symptoms, &groups);
    causal.add_effect_edges(&cx, &groups);
    let walked = causal.walk();
    let blamed = rank_groups(&walked, &groups, config.max_hypotheses);
    let hyps = blamed
        .iter()
        .enumerate()
        .map(|(i, b)| explain(&cx, &causal, &groups, &symptoms, b, i + 1))
        .collect();
    // Convincing: a hypothesis with a possible score, or a strong cause (the prior of a
    // real change or a reported failure, not bookkeeping or a passing service event)
    // that precedes the incident. Else the incident is unexplained.
    let onset = symptoms.iter().map(|s| s.t.time).min().unwrap_or(i64::MAX);
    let convincing = blamed.iter().take(3).any(|b| {
        let g = &groups[b.group];
        b.score >= super::POSSIBLE || (g.prior >= 0.3 && g.time <= onset)
    });
    (hyps, (!convincing).then(|| walked.unexplained()))
}

/// Where candidate causes are gathered: corpus times in [from, to].
struct Window {
    from: i64,
    to: i64,
}

impl Window {
    /// From the look-back before the incident's first transition to the slack after its
    /// last.
    fn of(inc: &Found, config: &Config) -> Self {
        let (from, to) = inc.window(config);
        Window { from, to }
    }

    fn contains(&self, time: i64) -> bool {
        self.from <= time && time <= self.to
    }
}

/// The resources an alarm transition is about: those it names and the non-alarm
/// neighbours of its alarm in the resource graph.
fn watched(graph: &Neighbourhood<'_>, t: &Transition) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = t.resources.iter().cloned().collect();
    out.extend(
        graph
            .neighbours(&format!("alarm/{}", t.alarm))
            .iter()
            .filter(|n| !n.starts_with("alarm/"))
            .cloned(),
    );
    out
}

/// Stage 1: the incident's alarm transitions as symptoms, with their distances and naming
/// tokens; an alarm that names no resource borrows the incident's.
fn symptoms<'t>(cx: &Context<'_, '_>, inc: &'t Found) -> Vec<Symptom<'t>> {
    inc.transitions
        .iter()
        .map(|t| {
            let mut sources = watched(cx.graph, t);
            if sources.iter().all(|s| s.starts_with("alarm/")) {
                sources.extend(inc.resources.iter().cloned());
            }
            sources.insert(format!("alarm/{}", t.alarm));
            let list: Vec<String> = sources.into_iter().collect();
            Symptom {
                t,
                deliveries: t
                    .deliveries
                    .iter()
                    .filter_map(|d| cx.corpus.index_of(d.seq))
                    .collect(),
                dist: cx.graph.distances(&list),
                tokens: cx.vocab.alarm_tokens(&t.alarm),
            }
        })
        .collect()
}

/// Stage 2: candidate causes, the corpus indexes of effective changes, deployments,
/// anomalies, snapshots and other events in the window, less the symptoms' deliveries.
fn gather_candidates(corpus: &Corpus<'_>, window: &Window, symptoms: &[Symptom<'_>]) -> Vec<usize> {
    let symptom_deliveries: BTreeSet<usize> = symptoms
        .iter()
        .flat_map(|s| s.deliveries.iter().copied())
        .collect();
    corpus
        .range(window.from, window.to)
        .filter(|i| !symptom_deliveries.contains(i))
        .filter(|&i| {
            let e: &Event = corpus.events[i];
            match &e.kind {
                Kind::Change => e.is_effective_change(),
                Kind::Deployment { .. }
                | Kind::Anomaly { .. }
                | Kind::Snapshot { .. }
                | Kind::Other => true,
                _ => false,
            }
        })
        .collect()
}

/// Stage 3: candidates that are deliveries of one change (sharing a delivery id, or citing
/// a CloudTrail call among them), as sets of corpus indexes in corpus order.
fn group_deliveries(corpus: &Corpus<'_>, cand: &[usize]) -> Vec<Vec<usize>> {
    let mut dsu = Dsu((0..cand.len()).collect());
    let mut seen: BTreeMap<DeliveryId, usize> = BTreeMap::new();
    for (pos, &i) in cand.iter().enumerate() {
        for id in facts::delivery_ids(corpus.events[i], || corpus.payload(i)) {
            match seen.get(&id) {
                Some(&other) => dsu.union(pos, other),
                None => {
                    seen.insert(id, pos);
                }
            }
        }
    }
    // Deliveries that name a CloudTrail call (Config items, EventBridge copies) join it.
    if seen.keys().any(|k| matches!(k, DeliveryId::CloudTrail(_))) {
        for (pos, &i) in cand.iter().enumerate() {
            let e = corpus.events[i];
            if e.source == Source::CloudTrail {
                if let Some(&other) = seen.get(&DeliveryId::CloudTrail(e.natural_id.clone())) {
                    dsu.union(pos, other);
                }
            }
        }
    }
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (pos, &i) in cand.iter().enumerate() {
        members.entry(dsu.find(pos)).or_default().push(i);
    }
    members.into_values().collect()
}

/// True when topology links event `i` to a symptom: a resource it acts on is within
/// reach of one.
fn related(cx: &Context<'_, '_>, symptoms: &[Symptom<'_>], i: usize) -> bool {
    focus(cx.corpus.events[i])
        .iter()
        .any(|r| symptoms.iter().any(|s| cx.graph.cost(&s.dist, r).is_some()))
}

/// Stage 4: one group per set of deliveries, with the kind, reason and representative of
/// its most telling delivery and the highest prior among them.
fn score_groups(
    cx: &Context<'_, '_>,
    deliveries: Vec<Vec<usize>>,
    symptoms: &[Symptom<'_>],
) -> Vec<Group> {
    deliveries
        .into_iter()
        .filter_map(|ms| {
            // Detailed priors (which read payloads) only where topology can make them
            // matter: an unrelated candidate keeps its name-based prior.
            let detailed = ms.iter().any(|&i| related(cx, symptoms, i));
            delivery_group(cx, &ms, detailed)
        })
        .collect()
}

/// The group of one set of deliveries (None if it is empty).
fn delivery_group(cx: &Context<'_, '_>, ms: &[usize], detailed: bool) -> Option<Group> {
    let events = &cx.corpus.events;
    let mut scored: Vec<(Prior, usize)> = ms
        .iter()
        .map(|&i| (event_prior(cx, i, detailed), i))
        .collect();
    scored.sort_by(|(a, i), (b, j)| {
        a.kind
            .order()
            .cmp(&b.kind.order())
            .then(events[*i].event_time.cmp(&events[*j].event_time))
            .then(i.cmp(j))
    });
    let (best, rep) = scored.first()?.clone();
    let mut group = Group {
        members: vec![rep],
        kind: best.kind,
        time: i64::MAX,
        prior: scored.iter().map(|s| s.0.value).fold(best.value, f64::max),
        why: best.why,
        resources: BTreeSet::new(),
    };
    for &(_, i) in &scored {
        group.resources.extend(focus(events[i]));
        group.time = group.time.min(events[i].event_time);
        if i != rep {
            group.members.push(i);
        }
    }
    Some(group)
}

/// Stage 5: cuts to a tenth the prior of each change undone within the window (among the
/// CloudTrail changes topology relates to a symptom), and says so.
fn discount_reverts(
    cx: &Context<'_, '_>,
    groups: &mut [Group],
    cand: &[usize],
    symptoms: &[Symptom<'_>],
) {
    let changes: Vec<usize> = cand
        .iter()
        .copied()
        .filter(|&i| {
            let e = cx.corpus.events[i];
            matches!(e.kind, Kind::Change)
                && e.source == Source::CloudTrail
                && related(cx, symptoms, i)
        })
        .collect();
    let reverted = reverts(cx.corpus, cx.vocab, &changes);
    // A change undone before the incident began did nothing in the end; one undone
    // after it began was rolled back because of it: the rollback is the fix, the change
    // it undid stays a suspect.
    let onset = symptoms.iter().map(|s| s.t.time).min().unwrap_or(i64::MAX);
    for grp in groups {
        let rep = grp.rep();
        if let Some(&other) = reverted.get(&rep) {
            let (e, o) = (cx.corpus.events[rep], cx.corpus.events[other]);
            let later = (e.event_time, rep) > (o.event_time, other);
            let undone_at = e.event_time.max(o.event_time);
            let (factor, what) = if undone_at <= onset {
                (0.1, "reverted")
            } else if later {
                (0.1, "rolls back")
            } else {
                (1.0, "rolled back after the alarm")
            };
            grp.prior *= factor;
            grp.why = format!(
                "{}, {what} ({} at {})",
                grp.why,
                o.name,
                fmt_time(o.event_time)
            );
        }
    }
}

/// Stage 6: saturation alarms that went off in the window. Alarms on the same metric
/// (one per instance, say) are one phenomenon: one group, blamed on the earliest.
fn saturation_groups(cx: &Context<'_, '_>, window: &Window) -> Vec<Group> {
    let mut by_metric: BTreeMap<String, Group> = BTreeMap::new();
    for t in transitions(cx.corpus) {
        if t.new_state != "ALARM" || !window.contains(t.time) || !cx.vocab.is_saturation(&t.alarm) {
            continue;
        }
        let mut resources = watched(cx.graph, &t);
        resources.insert(format!("alarm/{}", t.alarm));
        // History first: it is the delivery every estate has.
        let mut ds: Vec<usize> = t
            .deliveries
            .iter()
            .filter_map(|d| cx.corpus.index_of(d.seq))
            .collect();
        ds.sort_by_key(|&d| (cx.corpus.events[d].source != Source::AlarmHistory, d));
        let entry = by_metric
            .entry(cx.vocab.metric_key(&t.alarm))
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
    by_metric
        .into_values()
        .map(|mut grp| {
            if grp.members.len() > 2 {
                grp.why = "saturation alarms on the same metric".into();
            }
            grp
        })
        .collect()
}

/// Stage 6b: calls refused in the window, one group per (refusal, caller): refused by a
/// limit, a cause that is not a change; refused for want of permission, evidence that
/// leads to the change that took the permission away.
fn refused_groups(cx: &Context<'_, '_>, window: &Window, symptoms: &[Symptom<'_>]) -> Vec<Group> {
    let symptom_deliveries: BTreeSet<usize> = symptoms
        .iter()
        .flat_map(|s| s.deliveries.iter().copied())
        .collect();
    let mut by_key: BTreeMap<(priors::Refusal, String), Group> = BTreeMap::new();
    for i in cx.corpus.range(window.from, window.to) {
        let e = cx.corpus.events[i];
        if !matches!(e.kind, Kind::Change) || symptom_deliveries.contains(&i) {
            continue;
        }
        let Some(code) = e.error_code.as_deref() else {
            continue;
        };
        let Some(r) = priors::refusal(code) else {
            continue;
        };
        let caller = e
            .actor
            .as_deref()
            .filter(|a| a.contains(":assumed-role/") || a.contains(":role/"))
            .and_then(crate::normalize::resource::from_arn);
        // A refusal by a limit concerns everything the refused call named (the launch
        // template and group of a scale-out); a denial, the caller and its target.
        let mut resources: BTreeSet<String> = match r {
            priors::Refusal::Limit => e.resources.iter().cloned().collect(),
            priors::Refusal::Denied => e.resources.iter().take(1).cloned().collect(),
        };
        resources.extend(caller.clone());
        let key = caller
            .or_else(|| e.resources.first().cloned())
            .unwrap_or_else(|| e.name.clone());
        let (kind, prior, what) = match r {
            priors::Refusal::Limit => (GroupKind::Quota, 0.6, "refused by a limit"),
            priors::Refusal::Denied => (GroupKind::Refused, 0.3, "refused"),
        };
        let grp = by_key.entry((r, key)).or_insert_with(|| Group {
            members: Vec::new(),
            kind,
            time: e.event_time,
            prior,
            why: String::new(),
            resources: BTreeSet::new(),
        });
        grp.members.push(i);
        grp.time = grp.time.min(e.event_time);
        grp.resources.extend(resources);
        grp.why = format!("{what} ({code}, {} calls)", grp.members.len());
    }
    // A busy estate refuses calls all the time: at most a few groups, those topology
    // links to a symptom first, then the most repeated; each is an effect the graph is
    // walked from.
    let linked = |g: &Group| {
        g.resources
            .iter()
            .any(|r| symptoms.iter().any(|s| cx.graph.cost(&s.dist, r).is_some()))
    };
    let mut out: Vec<(bool, Group)> = by_key.into_values().map(|g| (linked(&g), g)).collect();
    out.sort_by(|(la, a), (lb, b)| {
        lb.cmp(la)
            .then(b.members.len().cmp(&a.members.len()))
            .then(a.time.cmp(&b.time))
            .then(a.rep().cmp(&b.rep()))
    });
    out.into_iter().take(MAX_REFUSED).map(|(_, g)| g).collect()
}

/// A group's strongest direct link to a symptom.
#[derive(Debug, Clone, Default)]
struct Direct {
    /// The edge's weight; 0 when no symptom links to the group.
    weight: f64,
    /// The symptom's index.
    symptom: usize,
    /// The resource path from the symptom to the group.
    path: Vec<String>,
}

/// The graph the walk runs on: nodes for the "unexplained" sink, the symptoms and the
/// groups; edges from each effect to what could have caused it.
struct CausalGraph {
    g: DiGraph<(), f64>,
    sink: NodeIndex,
    symptoms: Vec<NodeIndex>,
    groups: Vec<NodeIndex>,
    /// Each group's naming tokens, for links topology does not make.
    tokens: Vec<BTreeSet<String>>,
    /// Each group's strongest direct link to a symptom.
    direct: Vec<Direct>,
    /// Each group's strongest link through an intermediate effect: (chain weight, effect).
    via: Vec<Option<(f64, usize)>>,
}

impl CausalGraph {
    /// Stage 7: the nodes, and edges from each symptom to the sink and to every group that
    /// could have caused it.
    fn from_symptoms(cx: &Context<'_, '_>, symptoms: &[Symptom<'_>], groups: &[Group]) -> Self {
        let mut g: DiGraph<(), f64> = DiGraph::new();
        let sink = g.add_node(());
        let sym_nodes: Vec<NodeIndex> = symptoms.iter().map(|_| g.add_node(())).collect();
        let grp_nodes: Vec<NodeIndex> = groups.iter().map(|_| g.add_node(())).collect();
        let mut causal = CausalGraph {
            g,
            sink,
            symptoms: sym_nodes,
            groups: grp_nodes,
            tokens: groups.iter().map(group_tokens).collect(),
            direct: vec![Direct::default(); groups.len()],
            via: vec![None; groups.len()],
        };
        for (si, s) in symptoms.iter().enumerate() {
            causal.g.add_edge(causal.symptoms[si], sink, SYMPTOM_SINK);
            for (gi, grp) in groups.iter().enumerate() {
                let Some((weight, path)) = symptom_edge(cx, s, grp, &causal.tokens[gi]) else {
                    continue;
                };
                causal
                    .g
                    .add_edge(causal.symptoms[si], causal.groups[gi], weight);
                if weight > causal.direct[gi].weight {
                    causal.direct[gi] = Direct {
                        weight,
                        symptom: si,
                        path,
                    };
                }
            }
        }
        causal
    }

    /// Stage 8: intermediate effects (anomalies, saturation, service events; the most
    /// strongly linked first) get edges to the sink and to every group that could have
    /// caused them.
    fn add_effect_edges(&mut self, cx: &Context<'_, '_>, groups: &[Group]) {
        let mut effects: Vec<usize> = (0..groups.len())
            .filter(|&i| groups[i].kind.effect_like() && self.direct[i].weight > 0.0)
            .collect();
        effects.sort_by(|&a, &b| {
            self.direct[b]
                .weight
                .total_cmp(&self.direct[a].weight)
                .then(a.cmp(&b))
        });
        effects.truncate(MAX_EFFECTS);
        for ei in effects {
            self.g.add_edge(self.groups[ei], self.sink, EFFECT_SINK);
            let sources: Vec<String> = groups[ei].resources.iter().cloned().collect();
            let dist = cx.graph.distances(&sources);
            if dist.has_hubs() {
                cx.graph.prefetch_for(
                    &dist,
                    groups
                        .iter()
                        .flat_map(|g| g.resources.iter().map(String::as_str)),
                );
            }
            let effect = Effect {
                group: &groups[ei],
                dist: &dist,
                tokens: &self.tokens[ei],
            };
            for (ci, c) in groups.iter().enumerate() {
                if ci == ei {
                    continue;
                }
                let Some(w) = effect_edge(cx, &effect, c, &self.tokens[ci]) else {
                    continue;
                };
                self.g.add_edge(self.groups[ei], self.groups[ci], w);
                let chain = w * self.direct[ei].weight;
                if self.via[ci].is_none_or(|(best, _)| chain > best) {
                    self.via[ci] = Some((chain, ei));
                }
            }
        }
    }

    /// Stage 9: the personalised random walk from the symptoms, walking effect -> cause.
    fn walk(&self) -> Walked {
        let mut restart = vec![0.0; self.g.node_count()];
        for s in &self.symptoms {
            restart[s.index()] = 1.0 / self.symptoms.len() as f64;
        }
        let x = walk::personalised_pagerank(&self.g, &restart, ALPHA);
        let total = self.groups.iter().map(|v| x[v.index()]).sum::<f64>() + x[self.sink.index()];
        Walked {
            at: self.groups.iter().map(|v| x[v.index()]).collect(),
            total,
            sink: x[self.sink.index()],
        }
    }
}

/// The weight of "group `grp` could have caused symptom `s`" and the resource path that
/// links them; None if it could not have (too late, or a saturation alarm that is the
/// symptom or not earlier than it).
fn symptom_edge(
    cx: &Context<'_, '_>,
    s: &Symptom<'_>,
    grp: &Group,
    tokens: &BTreeSet<String>,
) -> Option<(f64, Vec<String>)> {
    if grp.time > s.t.time.saturating_add(cx.config.slack_ms)
        || (grp.kind == GroupKind::Saturation
            && grp.members.iter().any(|m| s.deliveries.contains(m)))
    {
        return None;
    }
    // A saturation alarm causes only later symptoms.
    if grp.kind == GroupKind::Saturation && grp.time >= s.t.time {
        return None;
    }
    let (topo, path) = match best_cost(cx.graph, &s.dist, &grp.resources) {
        Some((c, key)) => (topo_weight(c), cx.graph.path(&s.dist, key)),
        None => (
            (0.4 * cx.vocab.affinity(tokens, &s.tokens)).max(0.01),
            Vec::new(),
        ),
    };
    let w = grp.prior * time_weight(s.t.time.saturating_sub(grp.time)) * topo;
    if w <= 0.0 {
        return None;
    }
    Some((w, path))
}

/// An intermediate effect as the source of edges: its group, the distances from its
/// resources and its naming tokens.
struct Effect<'e> {
    group: &'e Group,
    dist: &'e Distances,
    tokens: &'e BTreeSet<String>,
}

/// The weight of "group `c` could have caused the effect"; None if it could not have
/// (too late, itself an anomaly or service event, or a saturation alarm not earlier).
fn effect_edge(
    cx: &Context<'_, '_>,
    eff: &Effect<'_>,
    c: &Group,
    tokens: &BTreeSet<String>,
) -> Option<f64> {
    let time = eff.group.time;
    if c.time > time.saturating_add(cx.config.slack_ms)
        || matches!(
            c.kind,
            GroupKind::Anomaly | GroupKind::Other | GroupKind::Refused
        )
    {
        return None;
    }
    if c.kind == GroupKind::Saturation && c.time >= time {
        return None;
    }
    let topo = match best_cost(cx.graph, eff.dist, &c.resources) {
        Some((cost, _)) => topo_weight(cost),
        None => (0.4 * cx.vocab.affinity(tokens, eff.tokens)).max(0.01),
    };
    Some(c.prior * time_weight(time.saturating_sub(c.time)) * topo)
}

/// What the walk left at each group, and at the groups and the sink together.
struct Walked {
    at: Vec<f64>,
    total: f64,
    sink: f64,
}

impl Walked {
    /// The share of the blame that stayed on no candidate (the sink, and the refused
    /// calls that are evidence rather than causes).
    fn unexplained(&self) -> f64 {
        if self.total > 0.0 {
            self.sink / self.total
        } else {
            1.0
        }
    }
}

/// A group and its share of the blame.
struct Blamed {
    group: usize,
    score: f64,
}

/// Stage 10: the groups the walk reached, most blamed first (then later, then earlier
/// in the corpus), at most `max`, with their shares of the blame.
fn rank_groups(walked: &Walked, groups: &[Group], max: usize) -> Vec<Blamed> {
    let at = &walked.at;
    let mut order: Vec<usize> = (0..groups.len())
        .filter(|&i| at[i] > 0.0 && groups[i].kind != GroupKind::Refused)
        .collect();
    order.sort_by(|&a, &b| {
        at[b]
            .total_cmp(&at[a])
            .then(groups[b].time.cmp(&groups[a].time))
            .then(groups[a].rep().cmp(&groups[b].rep()))
    });
    order.truncate(max);
    order
        .into_iter()
        .map(|group| Blamed {
            group,
            score: if walked.total > 0.0 {
                at[group] / walked.total
            } else {
                0.0
            },
        })
        .collect()
}

/// Stage 11: the hypothesis of rank `rank`: its evidence runs from the blamed group's
/// deliveries through the effect it was seen through (when that link beats any direct
/// one) to the symptom.
fn explain(
    cx: &Context<'_, '_>,
    causal: &CausalGraph,
    groups: &[Group],
    symptoms: &[Symptom<'_>],
    blamed: &Blamed,
    rank: usize,
) -> Hypothesis {
    let gi = blamed.group;
    let grp = &groups[gi];
    let direct = &causal.direct[gi];
    let through = causal.via[gi]
        .filter(|&(chain, _)| chain > direct.weight)
        .map(|(_, ei)| ei);
    let mut evidence: Vec<usize> = grp.members.clone();
    let link = match through {
        Some(ei) => {
            evidence.push(groups[ei].rep());
            &causal.direct[ei]
        }
        None => direct,
    };
    // Refused calls that lead to this cause (a detached policy, then AccessDenied) are
    // its evidence too.
    for (ei, e) in groups.iter().enumerate() {
        if e.kind == GroupKind::Refused
            && causal
                .g
                .find_edge(causal.groups[ei], causal.groups[gi])
                .is_some()
        {
            evidence.extend(e.members.iter().take(10).copied());
        }
    }
    let st = symptoms[link.symptom].t;
    evidence.extend(symptoms[link.symptom].deliveries.iter().copied());
    let mut refs = Vec::new();
    for i in evidence {
        let r = cx.corpus.events[i].reference();
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    Hypothesis {
        rank,
        score: blamed.score.clamp(0.0, 1.0),
        kind: grp.kind.as_str().to_string(),
        cause: cx.corpus.events[grp.rep()].reference(),
        summary: summary(cx.corpus, grp, st, through.map(|e| &groups[e]), &link.path),
        evidence: refs,
        path: link.path.clone(),
    }
}

/// "4.3 min", "2 h 05 min", "30 s".
pub(crate) fn fmt_gap(ms: i64) -> String {
    let a = ms.saturating_abs();
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
    let gap = fmt_gap(symptom.time.saturating_sub(grp.time));
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
