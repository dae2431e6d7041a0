//! The resource graph: which resources relate to which, derived from the log.
//!
//! Edges come from every successful event that names several resources (Config
//! relationships, CloudTrail request and response parameters, alarm metric dimensions,
//! ECS/ELB/Auto Scaling identifiers, hosts in URLs and DNS records), from workload
//! identities (a role writing to a log group or table), and from naming conventions
//! (an instance profile and the role of the same name). Estates without Config data get
//! a usable graph from CloudTrail alone.
//!
//! Distances are weighted: an edge through a shared container (VPC, subnet, cluster,
//! metric namespace) costs more than a direct one, and hubs (resources related to very
//! many others, such as a deployment role) are never walked through.

use super::knowledge::Knowledge;
use crate::model::{Event, Kind, Source};
use crate::normalize::resource::{from_arn, key_type};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::rc::Rc;

/// A resource with more neighbours than this is a hub: reachable, not traversed.
pub const HUB_DEGREE: usize = 40;
/// Paths longer than this (in cost units) are not considered related.
pub const MAX_COST: u32 = 7;
/// Nodes walked on from, at most, by one [`Neighbourhood::distances`] (nearest first):
/// a well-connected estate would otherwise be read far beyond what relates to an
/// incident.
pub const MAX_EXPANDED: usize = 2_000;
/// Keys whose neighbours are read together ([`Neighbourhood::prefetch`]).
const PREFETCH_BATCH: usize = 500;

/// Resource types that group many unrelated things; never an edge endpoint.
const IGNORED_TYPES: &[&str] = &[
    "vpc",
    "igw",
    "nat",
    "ami",
    "eip",
    "volume",
    "snapshot",
    "github-env",
];
/// Shared containers: edges touching them cost `CONTAINER_COST`, and paths do not pass
/// through them.
const CONTAINER_TYPES: &[&str] = &["ecs-cluster", "s3", "dynamodb", "sns", "sqs", "secret"];
const CONTAINER_COST: u32 = 3;
/// Infrastructure a resource depends on: the subnets it runs in and their route tables
/// and network ACLs, the keys that encrypt its data. A path may go from a resource to
/// its infrastructure and on to further infrastructure, never back down to another
/// resource: two services in one subnet, or two secrets under one key, are not thereby
/// related, but a deny rule in the ACL of a service's subnet is within its reach.
const INFRA_TYPES: &[&str] = &["subnet", "route-table", "nacl", "kms"];

/// Calls by which a workload uses a resource under its own identity (writing its logs,
/// reading its secrets, using its tables and queues). Control-plane calls are left out:
/// a deployment role creating everything relates nothing.
const DATA_PLANE_CALLS: &[&str] = &[
    "CreateLogStream",
    "PutLogEvents",
    "GetSecretValue",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchWriteItem",
    "BatchGetItem",
    "TransactWriteItems",
    "TransactGetItems",
    "GetObject",
    "PutObject",
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "Publish",
    "PutRecord",
    "PutRecords",
    "PutEvents",
    "Invoke",
];

/// An undirected graph over canonical resource keys.
#[derive(Debug, Default, Clone)]
pub struct ResourceGraph {
    ids: BTreeMap<String, u32>,
    names: Vec<String>,
    adj: Vec<BTreeSet<u32>>,
}

impl ResourceGraph {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the graph from a slice of events (any order).
    pub fn build<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut g = ResourceGraph::new();
        for e in events {
            g.apply(e);
        }
        g.link_by_name();
        g
    }

    /// Relates log groups to the workloads named like them (`/ecs/orders-api` and the
    /// ECS service or task family `orders-api`): the convention ECS, Lambda and most
    /// deployment tools follow. Call once after the events are applied.
    pub fn link_by_name(&mut self) {
        let groups: Vec<String> = self
            .names
            .iter()
            .filter(|n| n.starts_with("loggroup/"))
            .cloned()
            .collect();
        for g in groups {
            for k in named_workloads(&g) {
                if self.ids.contains_key(&k) {
                    self.link(&g, &k);
                }
            }
        }
    }

    fn intern(&mut self, key: &str) -> u32 {
        if let Some(&i) = self.ids.get(key) {
            return i;
        }
        let i = self.names.len() as u32;
        self.ids.insert(key.to_string(), i);
        self.names.push(key.to_string());
        self.adj.push(BTreeSet::new());
        i
    }

    /// The id of a key, if the graph knows it.
    pub fn id(&self, key: &str) -> Option<u32> {
        self.ids.get(key).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn degree(&self, id: u32) -> usize {
        self.adj.get(id as usize).map(BTreeSet::len).unwrap_or(0)
    }

    /// Neighbours of a key, sorted.
    pub fn neighbours(&self, key: &str) -> Vec<&str> {
        match self.id(key) {
            Some(i) => self.adj[i as usize].iter().map(|&n| self.name(n)).collect(),
            None => Vec::new(),
        }
    }

    fn link(&mut self, a: &str, b: &str) {
        if a == b || ignored(a) || ignored(b) {
            return;
        }
        let (x, y) = (self.intern(a), self.intern(b));
        self.adj[x as usize].insert(y);
        self.adj[y as usize].insert(x);
    }

    /// Adds what one event says about relationships ([`links_of`]).
    pub fn apply(&mut self, e: &Event) {
        let links = links_of(e);
        for n in &links.nodes {
            self.intern(n);
        }
        for (a, b) in &links.edges {
            self.link(a, b);
        }
    }
}

/// Weighted shortest distances from a set of sources, read through
/// [`Neighbourhood::cost`] and [`Neighbourhood::path`].
#[derive(Debug, Default)]
pub struct Distances {
    /// Key -> (cost, predecessor) of every node reached by walking.
    near: BTreeMap<String, (u32, Option<String>)>,
    /// Sources that are hubs: each of their neighbours is near them, but they are too
    /// many to read; a key is looked up among them when asked about.
    hubs: Vec<String>,
}

impl Distances {
    /// True when a source is a hub: then a key's cost is read from its own side.
    pub fn has_hubs(&self) -> bool {
        !self.hubs.is_empty()
    }
}

/// The resource graph as the engine walks it: read through [`Knowledge`] around the keys
/// it is asked about, each node's neighbours fetched once. Everything it computes
/// depends on keys, never on the order nodes were read in.
pub struct Neighbourhood<'k> {
    k: &'k dyn Knowledge,
    /// Neighbours of each node read so far; `None` for a hub read as such.
    read: RefCell<BTreeMap<String, Option<Rc<Vec<String>>>>>,
    known: RefCell<BTreeMap<String, bool>>,
    /// Whether two hubs are joined, by (hub source, key) as asked.
    linked: RefCell<BTreeMap<(String, String), bool>>,
}

impl<'k> Neighbourhood<'k> {
    pub fn new(k: &'k dyn Knowledge) -> Self {
        Neighbourhood {
            k,
            read: RefCell::new(BTreeMap::new()),
            known: RefCell::new(BTreeMap::new()),
            linked: RefCell::new(BTreeMap::new()),
        }
    }

    fn known(&self, key: &str) -> bool {
        if let Some(&b) = self.known.borrow().get(key) {
            return b;
        }
        let b = self.k.known(key);
        self.known.borrow_mut().insert(key.to_string(), b);
        b
    }

    /// Every neighbour of a key, sorted.
    pub fn neighbours(&self, key: &str) -> Rc<Vec<String>> {
        if let Some(Some(v)) = self.read.borrow().get(key) {
            return v.clone();
        }
        let v = Rc::new(self.k.neighbours(key, usize::MAX).unwrap_or_default());
        self.read
            .borrow_mut()
            .insert(key.to_string(), Some(v.clone()));
        v
    }

    /// Reads, in batches, the neighbours (unless hubs) of those of `keys` not read yet,
    /// so that the walk and the lookups that follow find them without a read each.
    pub fn prefetch<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let missing: BTreeSet<&str> = {
            let read = self.read.borrow();
            keys.into_iter()
                .filter(|k| !read.contains_key(*k))
                .collect()
        };
        let missing: Vec<String> = missing.into_iter().map(str::to_string).collect();
        for chunk in missing.chunks(PREFETCH_BATCH) {
            let got = self.k.neighbours_many(chunk, HUB_DEGREE);
            let mut read = self.read.borrow_mut();
            for (k, v) in chunk.iter().zip(got) {
                read.insert(k.clone(), v.map(Rc::new));
            }
        }
    }

    /// [`Neighbourhood::prefetch`], and for those of `keys` that are hubs, whether each
    /// is joined to each hub source of `dist`, read together: what [`Neighbourhood::cost`]
    /// then asks about them.
    pub fn prefetch_for<'a>(&self, dist: &Distances, keys: impl IntoIterator<Item = &'a str>) {
        let keys: BTreeSet<&str> = keys.into_iter().collect();
        self.prefetch(keys.iter().copied());
        if dist.hubs.is_empty() {
            return;
        }
        let hub_keys: Vec<String> = {
            let read = self.read.borrow();
            let linked = self.linked.borrow();
            keys.iter()
                .filter(|k| matches!(read.get(**k), Some(None)))
                .filter(|k| {
                    dist.hubs
                        .iter()
                        .any(|h| !linked.contains_key(&(h.clone(), k.to_string())))
                })
                .map(|k| k.to_string())
                .collect()
        };
        for chunk in hub_keys.chunks(PREFETCH_BATCH) {
            let found = self.k.linked_among(&dist.hubs, chunk);
            let mut linked = self.linked.borrow_mut();
            for h in &dist.hubs {
                for k in chunk {
                    let pair = (h.clone(), k.clone());
                    let b = found.contains(&pair);
                    linked.insert(pair, b);
                }
            }
        }
    }

    /// The neighbours of a key unless it is a hub (more than `HUB_DEGREE`).
    fn unless_hub(&self, key: &str) -> Option<Rc<Vec<String>>> {
        if let Some(entry) = self.read.borrow().get(key) {
            return match entry {
                Some(v) if v.len() > HUB_DEGREE => None,
                other => other.clone(),
            };
        }
        let v = self.k.neighbours(key, HUB_DEGREE).map(Rc::new);
        self.read.borrow_mut().insert(key.to_string(), v.clone());
        v
    }

    /// Weighted shortest distances from a set of source keys, up to `MAX_COST`, never
    /// expanding hubs or shared containers (other than the sources themselves). A source
    /// that is itself a hub is near each of its neighbours, which are neither read nor
    /// walked on from: an alarm on a function that used sixty thousand keys is near each
    /// key, not near everything each key touches. At most `MAX_EXPANDED` nodes are
    /// walked on from, nearest first. Ties are broken by key, so the result never
    /// depends on what was read before.
    pub fn distances(&self, sources: &[String]) -> Distances {
        let mut out = Distances::default();
        let dist = &mut out.near;
        let mut heap = BinaryHeap::new();
        for s in sources {
            if !dist.contains_key(s) && self.known(s) {
                dist.insert(s.clone(), (0, None));
                heap.push(Reverse((0u32, s.clone())));
            }
        }
        let source_keys: BTreeSet<String> = dist.keys().cloned().collect();
        let mut expanded = 0usize;
        // The cost whose nodes were last read together: every node at a cost is on the
        // heap before the first of them is walked from (edges cost at least 1).
        let mut level = None;
        while let Some(Reverse((d, u))) = heap.pop() {
            if dist.get(&u).map(|x| x.0) != Some(d) {
                continue;
            }
            if level != Some(d) {
                level = Some(d);
                let mut at_d: Vec<&str> = heap
                    .iter()
                    .filter(|Reverse((c, v))| *c == d && dist.get(v).map(|x| x.0) == Some(d))
                    .map(|Reverse((_, v))| v.as_str())
                    .chain([u.as_str()])
                    .collect();
                at_d.sort_unstable();
                // Walked in key order: those past the budget would not be walked from.
                at_d.truncate(MAX_EXPANDED.saturating_sub(expanded).max(source_keys.len()));
                self.prefetch(at_d);
            }
            let is_source = source_keys.contains(&u);
            if !is_source && expanded >= MAX_EXPANDED {
                break;
            }
            let Some(adj) = self.unless_hub(&u) else {
                if is_source {
                    out.hubs.push(u);
                }
                continue;
            };
            expanded += 1;
            // Hubs and shared containers are reachable but never walked through:
            // two services in one cluster, or two apps writing one table, are not
            // thereby related.
            let shared =
                CONTAINER_TYPES.contains(&key_type(&u)) || INFRA_TYPES.contains(&key_type(&u));
            for v in adj.iter() {
                // From shared containers and infrastructure, only on to infrastructure.
                if shared && !is_source && !INFRA_TYPES.contains(&key_type(v)) {
                    continue;
                }
                let c = d + edge_cost(&u, v);
                if c > MAX_COST {
                    continue;
                }
                let better = match dist.get(v) {
                    None => true,
                    Some(&(old, _)) => c < old,
                };
                if better {
                    dist.insert(v.clone(), (c, Some(u.clone())));
                    heap.push(Reverse((c, v.clone())));
                }
            }
        }
        out
    }

    /// The cost of `key` in `dist`, if it was reached, and the hub source it is a
    /// neighbour of when that is nearer than the walk.
    fn lookup<'d>(&self, dist: &'d Distances, key: &str) -> Option<(u32, Option<&'d str>)> {
        let walked = dist.near.get(key).map(|x| x.0);
        let by_hub = dist
            .hubs
            .iter()
            .filter(|h| walked.is_none_or(|w| edge_cost(h, key) < w) && self.adjacent(h, key))
            .map(|h| (edge_cost(h, key), h.as_str()))
            .min();
        match (walked, by_hub) {
            (_, Some((c, h))) => Some((c, Some(h))),
            (Some(w), None) => Some((w, None)),
            (None, None) => None,
        }
    }

    /// The cost of `key` from the sources of `dist`; `None` when it is not related.
    pub fn cost(&self, dist: &Distances, key: &str) -> Option<u32> {
        self.lookup(dist, key).map(|x| x.0)
    }

    /// True when `key` is a neighbour of the hub `hub`, read from `key`'s side (a
    /// short list) unless it is a hub too.
    fn adjacent(&self, hub: &str, key: &str) -> bool {
        if hub == key {
            return false;
        }
        match self.unless_hub(key) {
            Some(v) => v.binary_search_by(|n| n.as_str().cmp(hub)).is_ok(),
            None => {
                let pair = (hub.to_string(), key.to_string());
                if let Some(&b) = self.linked.borrow().get(&pair) {
                    return b;
                }
                let b = self.k.linked(hub, key);
                self.linked.borrow_mut().insert(pair, b);
                b
            }
        }
    }

    /// The path (keys) from `to` back to a source.
    pub fn path(&self, dist: &Distances, to: &str) -> Vec<String> {
        let mut out = vec![to.to_string()];
        match self.lookup(dist, to) {
            None => return out,
            Some((_, Some(hub))) => {
                out.push(hub.to_string());
                return out;
            }
            Some((_, None)) => {}
        }
        let mut cur = to;
        while let Some((_, Some(p))) = dist.near.get(cur) {
            out.push(p.clone());
            cur = p;
            if out.len() > 64 {
                break;
            }
        }
        out
    }
}

fn edge_cost(u: &str, v: &str) -> u32 {
    let (tu, tv) = (key_type(u), key_type(v));
    if CONTAINER_TYPES.contains(&tu) || CONTAINER_TYPES.contains(&tv) {
        CONTAINER_COST
    } else if tu == "sg" && tv == "sg" {
        // One security group allowing another: tiers that talk to each other, a
        // looser relation than a resource and its own group.
        2
    } else {
        1
    }
}

/// What one event says about resources: the resources it names that the graph keeps
/// (`nodes`, the first one always among them) and the relations it states (`edges`), in
/// the order the graph takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    pub nodes: Vec<String>,
    pub edges: Vec<(String, String)>,
}

/// The relations one event states. Failed calls and rootline's own events say nothing.
/// The graph and its projection (`crate::project`) both take events through this.
pub fn links_of(e: &Event) -> Links {
    let mut out = Links::default();
    if e.error_code.is_some() || e.source == Source::Rootline {
        return out;
    }
    let edge = |out: &mut Links, a: &str, b: &str| {
        if a != b && !ignored(a) && !ignored(b) {
            out.edges.push((a.to_string(), b.to_string()));
        }
    };
    let rs: Vec<&String> = e.resources.iter().filter(|r| !ignored(r)).collect();
    if let Some(first) = rs.first() {
        out.nodes.push((*first).clone());
        for r in rs.iter().skip(1) {
            edge(&mut out, first, r);
        }
    }
    // An instance profile is, by convention, named after its role.
    for r in &rs {
        if let Some(name) = r.strip_prefix("instance-profile/") {
            edge(&mut out, r, &format!("iam-role/{name}"));
        }
    }
    // A workload's role using a data-plane resource relates the two.
    if e.source == Source::CloudTrail && matches!(e.kind, Kind::Change) {
        if let (Some(actor), Some(first)) = (e.actor.as_deref(), rs.first()) {
            if actor.contains(":assumed-role/") && DATA_PLANE_CALLS.contains(&e.name.as_str()) {
                if let Some(role) = from_arn(actor) {
                    edge(&mut out, &role, first);
                }
            }
        }
    }
    out
}

/// Workload types a log group is related to by name ([`log_group_tail`]).
pub const NAMED_WORKLOADS: [&str; 3] = ["ecs-service", "ecs-taskdef", "lambda"];

/// The last segment of a log group key's name (`loggroup//ecs/orders-api` ->
/// `orders-api`): a workload of that name (`ecs-service/orders-api`, see
/// [`NAMED_WORKLOADS`]) is related to the log group. `None` for other keys.
pub fn log_group_tail(key: &str) -> Option<&str> {
    if !key.starts_with("loggroup/") {
        return None;
    }
    key.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|t| !t.is_empty())
}

/// The workload keys a log group is related to by name, whether the graph has them or
/// not (`loggroup//ecs/orders-api` -> `ecs-service/orders-api`, ...); none for other keys.
pub fn named_workloads(key: &str) -> Vec<String> {
    log_group_tail(key)
        .map(|tail| {
            NAMED_WORKLOADS
                .iter()
                .map(|t| format!("{t}/{tail}"))
                .collect()
        })
        .unwrap_or_default()
}

/// The name a workload's log groups end with (`ecs-service/orders-api` -> `orders-api`),
/// for a key of one of the [`NAMED_WORKLOADS`] types.
pub fn workload_name(key: &str) -> Option<&str> {
    key.split_once('/')
        .filter(|(t, _)| NAMED_WORKLOADS.contains(t))
        .map(|(_, name)| name)
}

/// True when `a` and `b` are related by name: one a log group, the other a workload
/// named like it (either way round).
pub fn named_pair(a: &str, b: &str) -> bool {
    let one_way = |g: &str, w: &str| log_group_tail(g).is_some_and(|t| workload_name(w) == Some(t));
    one_way(a, b) || one_way(b, a)
}

fn ignored(key: &str) -> bool {
    // Service-linked roles are shared by every resource of their service.
    IGNORED_TYPES.contains(&key_type(key)) || key.starts_with("iam-role/AWSServiceRoleFor")
}

/// Lower-case word tokens of a name, for naming affinity: split on punctuation and
/// camel case; ids, numbers and very short tokens dropped.
pub fn name_tokens(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for segment in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        // A long segment with digits is an id or a generated suffix, not a word.
        if segment.len() >= 6 && segment.bytes().any(|b| b.is_ascii_digit()) {
            continue;
        }
        let mut cur = String::new();
        let mut prev_lower = false;
        for c in segment.chars() {
            if c.is_ascii_uppercase() && prev_lower {
                push_token(&mut cur, &mut out);
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            cur.push(c);
        }
        push_token(&mut cur, &mut out);
    }
    out
}

fn push_token(cur: &mut String, out: &mut BTreeSet<String>) {
    let t = cur.to_ascii_lowercase();
    if t.len() >= 3 && !t.bytes().any(|b| b.is_ascii_digit()) {
        out.insert(t);
    }
    cur.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = name_tokens("prod-orders-AppErrors-6EWQ2G40ZUHK");
        assert_eq!(
            t.into_iter().collect::<Vec<_>>(),
            vec!["app", "errors", "orders", "prod"]
        );
        assert!(name_tokens("github-repo/initech-dev/orders-service").contains("orders"));
    }
}
