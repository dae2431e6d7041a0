//! A fake GitHub for the notify tests: a real HTTP/1.1 server on 127.0.0.1 (port 0)
//! that keeps issues and comments in memory, validates every request against GitHub's
//! OpenAPI description (fixtures/real/github-rest-openapi), and injects faults.
//!
//! Validation: the operation (method and path) must exist in the description; path and
//! query parameters must be declared and match their schemas; the JSON body must match
//! the request schema (JSON Schema draft 7 after turning OpenAPI's `nullable` into a
//! null type, `$ref`s resolved within the document) and use only declared properties;
//! and every request must carry `Authorization: Bearer|token …`, a GitHub media type in
//! `Accept`, a `User-Agent`, and, if any, a known `X-GitHub-Api-Version`. A request that
//! fails validation is answered 422 and recorded as a violation, which tests assert away.

#![allow(dead_code)]

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const SPEC_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/real/github-rest-openapi"
);
const SUBSET_2022: &str = "api.github.com.2022-06-11.issues-subset.json";
const CURRENT_REQUESTS: &str = "api.github.com.issues-request-subset.current.json";
const FULL_2022: &str = "api.github.com.2022-06-11.full.json";

// ------------------------------------------------------------------ OpenAPI

fn load_doc(name: &str) -> Value {
    let path = format!("{SPEC_DIR}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Follows `$ref`s (local JSON pointers) until a value without one.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with("#/") => {
                v = doc
                    .pointer(&r[1..])
                    .unwrap_or_else(|| panic!("unresolved $ref {r}"));
            }
            _ => return v,
        }
    }
    panic!("$ref cycle")
}

/// OpenAPI 3.0 schema to JSON Schema: `nullable: true` becomes a null type.
fn to_json_schema(v: &mut Value) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(to_json_schema),
        Value::Object(m) => {
            for (_, x) in m.iter_mut() {
                to_json_schema(x);
            }
            if m.get("nullable") == Some(&Value::Bool(true)) {
                m.remove("nullable");
                match m.get("type").cloned() {
                    Some(Value::String(t)) => {
                        m.insert("type".into(), json!([t, "null"]));
                        if let Some(Value::Array(e)) = m.get_mut("enum") {
                            e.push(Value::Null);
                        }
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(m));
                        m.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
        }
        _ => {}
    }
}

/// Compiles `schema` (found in `doc`) with the document's components alongside, so its
/// `#/components/...` references resolve.
fn compile(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut components = doc.get("components").cloned().unwrap_or(json!({}));
    to_json_schema(&mut components);
    let mut s = schema.clone();
    to_json_schema(&mut s);
    let root = json!({ "allOf": [s], "components": components });
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

struct Param {
    name: String,
    location: String,
    required: bool,
    ty: String,
    validator: jsonschema::Validator,
}

struct BodySpec {
    required: bool,
    validator: jsonschema::Validator,
    properties: Option<Vec<String>>,
}

struct Operation {
    origin: &'static str,
    method: String,
    segments: Vec<String>,
    params: Vec<Param>,
    body: Option<BodySpec>,
}

/// The operations the fake serves, from GitHub's descriptions.
pub struct OpenApi {
    ops: Vec<Operation>,
    /// Validators of response bodies, to check the fake answers like GitHub.
    pub issue_schema: jsonschema::Validator,
    pub comment_schema: jsonschema::Validator,
    pub issue_example: Value,
    pub comment_example: Value,
}

fn operations(doc: &Value, origin: &'static str, wanted: &[(&str, &str)]) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, method) in wanted {
        let item = doc["paths"]
            .get(*path)
            .unwrap_or_else(|| panic!("{origin}: no path {path}"));
        let op = item
            .get(*method)
            .unwrap_or_else(|| panic!("{origin}: no {method} {path}"));
        let mut params = Vec::new();
        for p in op
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let p = resolve(doc, p);
            let schema = p.get("schema").cloned().unwrap_or(json!({}));
            params.push(Param {
                name: p["name"].as_str().unwrap_or_default().to_string(),
                location: p["in"].as_str().unwrap_or_default().to_string(),
                required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                ty: resolve(doc, &schema)
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("string")
                    .to_string(),
                validator: compile(doc, &schema),
            });
        }
        let body = op.get("requestBody").map(|rb| {
            let rb = resolve(doc, rb);
            let schema = rb
                .pointer("/content/application~1json/schema")
                .unwrap_or_else(|| panic!("{origin}: {method} {path} has no JSON body schema"));
            let properties = resolve(doc, schema)
                .get("properties")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect());
            BodySpec {
                required: rb.get("required").and_then(Value::as_bool).unwrap_or(false),
                validator: compile(doc, schema),
                properties,
            }
        });
        out.push(Operation {
            origin,
            method: method.to_uppercase(),
            segments: path
                .trim_start_matches('/')
                .split('/')
                .map(str::to_string)
                .collect(),
            params,
            body,
        });
    }
    out
}

impl OpenApi {
    /// Loads the descriptions once per test binary.
    pub fn get() -> Arc<OpenApi> {
        static API: OnceLock<Arc<OpenApi>> = OnceLock::new();
        API.get_or_init(|| {
            let subset = load_doc(SUBSET_2022);
            let current = load_doc(CURRENT_REQUESTS);
            let full = load_doc(FULL_2022);
            let issues = "/repos/{owner}/{repo}/issues";
            let comments = "/repos/{owner}/{repo}/issues/{issue_number}/comments";
            let mut ops = operations(
                &subset,
                "issues subset 2022-06-11",
                &[(issues, "get"), (issues, "post")],
            );
            // The current POST body, transcribed from today's description: both must accept.
            ops.extend(operations(
                &current,
                "current request subset",
                &[(issues, "post")],
            ));
            // Comments are not in the subsets: the complete 2022 description has them.
            ops.extend(operations(
                &full,
                "full 2022-06-11",
                &[(comments, "get"), (comments, "post")],
            ));
            Arc::new(OpenApi {
                ops,
                issue_schema: compile(&subset, &json!({"$ref": "#/components/schemas/issue"})),
                comment_schema: compile(
                    &full,
                    &json!({"$ref": "#/components/schemas/issue-comment"}),
                ),
                issue_example: subset["components"]["examples"]["issue"]["value"].clone(),
                comment_example: full["components"]["examples"]["issue-comment"]["value"].clone(),
            })
        })
        .clone()
    }

    /// Every way the request departs from the description (empty: it conforms).
    pub fn validate(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Vec<String> {
        let mut v = Vec::new();
        // Headers GitHub requires of every request.
        let header = |k: &str| {
            headers
                .get(k)
                .and_then(|x| x.to_str().ok())
                .map(str::to_string)
        };
        match header("authorization") {
            Some(a)
                if (a.starts_with("Bearer ") || a.starts_with("token "))
                    && a.split_once(' ').is_some_and(|(_, t)| !t.trim().is_empty()) => {}
            Some(_) => v.push("Authorization is not `Bearer TOKEN` or `token TOKEN`".into()),
            None => v.push("no Authorization header".into()),
        }
        match header("accept") {
            Some(a)
                if [
                    "application/vnd.github+json",
                    "application/vnd.github.v3+json",
                    "application/json",
                ]
                .contains(&a.as_str()) => {}
            other => v.push(format!("Accept {other:?} is not a GitHub media type")),
        }
        if header("user-agent").is_none_or(|u| u.trim().is_empty()) {
            v.push("no User-Agent (GitHub rejects requests without one)".into());
        }
        if let Some(ver) = header("x-github-api-version") {
            if !["2022-11-28", "2026-03-10"].contains(&ver.as_str()) {
                v.push(format!("unknown X-GitHub-Api-Version {ver:?}"));
            }
        }
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let matching: Vec<&Operation> = self
            .ops
            .iter()
            .filter(|o| {
                o.method == method
                    && o.segments.len() == segs.len()
                    && o.segments
                        .iter()
                        .zip(&segs)
                        .all(|(t, s)| t.starts_with('{') || t == s)
            })
            .collect();
        if matching.is_empty() {
            v.push(format!(
                "{method} {path} is not an operation of GitHub's description"
            ));
            return v;
        }
        for op in matching {
            let origin = op.origin;
            // Path parameters.
            for (t, s) in op.segments.iter().zip(&segs) {
                if let Some(name) = t.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                    if let Some(p) = op
                        .params
                        .iter()
                        .find(|p| p.name == name && p.location == "path")
                    {
                        check_param(&mut v, origin, p, s);
                    }
                }
            }
            // Query parameters: declared, well-typed, required ones present.
            for (k, val) in query {
                match op
                    .params
                    .iter()
                    .find(|p| &p.name == k && p.location == "query")
                {
                    Some(p) => check_param(&mut v, origin, p, val),
                    None => v.push(format!("{origin}: unknown query parameter {k:?}")),
                }
            }
            for p in op
                .params
                .iter()
                .filter(|p| p.location == "query" && p.required)
            {
                if !query.iter().any(|(k, _)| k == &p.name) {
                    v.push(format!(
                        "{origin}: missing required query parameter {}",
                        p.name
                    ));
                }
            }
            // Body.
            match &op.body {
                None if !body.is_empty() => {
                    v.push(format!("{origin}: {method} {path} takes no body"))
                }
                None => {}
                Some(spec) => {
                    if body.is_empty() {
                        if spec.required {
                            v.push(format!("{origin}: request body required"));
                        }
                        continue;
                    }
                    if !header("content-type").is_some_and(|c| c.starts_with("application/json")) {
                        v.push(format!("{origin}: body is not sent as application/json"));
                    }
                    let parsed: Value = match serde_json::from_slice(body) {
                        Ok(x) => x,
                        Err(e) => {
                            v.push(format!("{origin}: body is not JSON: {e}"));
                            continue;
                        }
                    };
                    for e in spec.validator.iter_errors(&parsed) {
                        v.push(format!("{origin}: body: {e} at {}", e.instance_path()));
                    }
                    if let (Some(props), Some(obj)) = (&spec.properties, parsed.as_object()) {
                        for k in obj.keys() {
                            if !props.contains(k) {
                                v.push(format!(
                                    "{origin}: body property {k:?} is not in the schema"
                                ));
                            }
                        }
                    }
                }
            }
        }
        v
    }
}

fn check_param(v: &mut Vec<String>, origin: &str, p: &Param, raw: &str) {
    let value = match p.ty.as_str() {
        "integer" => match raw.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => {
                v.push(format!(
                    "{origin}: parameter {} = {raw:?} is not an integer",
                    p.name
                ));
                return;
            }
        },
        "boolean" => match raw {
            "true" => json!(true),
            "false" => json!(false),
            _ => {
                v.push(format!(
                    "{origin}: parameter {} = {raw:?} is not a boolean",
                    p.name
                ));
                return;
            }
        },
        _ => json!(raw),
    };
    for e in p.validator.iter_errors(&value) {
        v.push(format!("{origin}: parameter {} = {raw:?}: {e}", p.name));
    }
}

// ------------------------------------------------------------------ the fake

/// Which operation a request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    ListIssues,
    CreateIssue,
    ListComments,
    CreateComment,
}

/// A fault injected into the next request of a route.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (GitHub's error body), doing nothing.
    Status(u16),
    /// A secondary rate limit: 403 with Retry-After (seconds).
    RetryAfter403(u64),
    /// A rate limit: 429 with x-ratelimit-remaining 0 and x-ratelimit-reset N seconds on.
    Reset429(u64),
    /// Wait (past the client's timeout), do nothing, answer 504.
    Stall(Duration),
    /// Wait, then do it even if the client has gone, then answer.
    SlowAct(Duration),
    /// Do it, then answer with an error status: the answer is lost, the effect is not.
    ActThenStatus(u16),
    /// Do it, then drop the connection without answering.
    ActThenDrop,
    /// Do it, then wait (past the client's timeout) before answering.
    ActThenStall(Duration),
    /// Drop the connection without doing anything.
    Drop,
}

#[derive(Clone, Debug)]
pub struct FakeComment {
    pub id: u64,
    pub body: String,
}

#[derive(Clone, Debug)]
pub struct FakeIssue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub created_at: String,
    pub comments: Vec<FakeComment>,
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: String,
    pub route: Option<Route>,
    /// 0 when the connection was dropped without an answer.
    pub status: u16,
    pub fault: Option<String>,
    pub authorization: Option<String>,
}

struct State {
    issues: Vec<FakeIssue>,
    /// Create issues without their labels, as GitHub does for a token that may not
    /// set them.
    drop_labels: bool,
    next_comment: u64,
    faults: HashMap<Route, VecDeque<Fault>>,
    sticky: HashMap<Route, Fault>,
    log: Vec<Logged>,
    violations: Vec<String>,
}

struct Inner {
    token: String,
    owner: String,
    repo: String,
    api: Arc<OpenApi>,
    state: Mutex<State>,
}

/// The fake server; stops when dropped.
pub struct FakeGithub {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}
impl std::error::Error for Dropped {}

type Answer = Result<Response<Full<Bytes>>, Dropped>;

fn respond(status: u16, body: &Value, headers: &[(&str, String)]) -> Response<Full<Bytes>> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("x-github-media-type", "github.v3; format=json");
    for (k, v) in headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error_body(status: u16) -> Value {
    let message = match status {
        401 => "Bad credentials",
        403 => "Resource not accessible by integration",
        404 => "Not Found",
        410 => "Issues are disabled for this repo",
        422 => "Validation Failed",
        500 => "Internal Server Error",
        502 => "Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut v = json!({"message": message, "documentation_url": "https://docs.github.com/rest/issues/issues#create-an-issue"});
    if status == 422 {
        v["errors"] = json!([{"resource": "Issue", "code": "invalid", "field": "labels"}]);
    }
    v
}

impl FakeGithub {
    /// Starts the fake for repository `owner/repo`, accepting `token`.
    pub async fn start(owner: &str, repo: &str, token: &str) -> FakeGithub {
        let api = OpenApi::get();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let inner = Arc::new(Inner {
            token: token.to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            api,
            state: Mutex::new(State {
                issues: Vec::new(),
                drop_labels: false,
                next_comment: 9000,
                faults: HashMap::new(),
                sticky: HashMap::new(),
                log: Vec::new(),
                violations: Vec::new(),
            }),
        });
        let shared = inner.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let inner = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let inner = inner.clone();
                        async move { handle(inner, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeGithub { addr, inner, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a fault for the next request of `route` (faults queue up in order).
    pub fn fault(&self, route: Route, f: Fault) {
        self.state().faults.entry(route).or_default().push_back(f);
    }

    /// A fault for every request of `route` from now on.
    pub fn sticky(&self, route: Route, f: Fault) {
        self.state().sticky.insert(route, f);
    }

    pub fn clear_faults(&self) {
        let mut s = self.state();
        s.faults.clear();
        s.sticky.clear();
    }

    pub fn issues(&self) -> Vec<FakeIssue> {
        self.state().issues.clone()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    pub fn count(&self, route: Route) -> usize {
        self.state()
            .log
            .iter()
            .filter(|l| l.route == Some(route))
            .count()
    }

    /// Adds an issue as if someone had opened it (for marker tests).
    /// From now on, issues are created without the labels asked for (silently, as
    /// GitHub does when the token lacks triage access).
    pub fn drop_labels(&self) {
        self.state().drop_labels = true;
    }

    pub fn seed_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        let mut s = self.state();
        let number = s.issues.len() as u64 + 1;
        s.issues.push(FakeIssue {
            number,
            title: title.into(),
            body: body.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            created_at: now_rfc3339(),
            comments: Vec::new(),
        });
        number
    }

    /// The JSON GitHub would return for an issue (the description's example, filled in).
    pub fn issue_json(&self, i: &FakeIssue) -> Value {
        issue_json(&self.inner, i)
    }

    pub fn comment_json(&self, number: u64, c: &FakeComment) -> Value {
        comment_json(&self.inner, number, c)
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn issue_json(inner: &Inner, i: &FakeIssue) -> Value {
    let mut v = inner.api.issue_example.clone();
    let base = format!(
        "https://api.github.example/repos/{}/{}",
        inner.owner, inner.repo
    );
    v["id"] = json!(1_000_000 + i.number);
    v["node_id"] = json!(format!("I_fake{}", i.number));
    v["number"] = json!(i.number);
    v["title"] = json!(i.title);
    v["body"] = json!(i.body);
    v["url"] = json!(format!("{base}/issues/{}", i.number));
    v["repository_url"] = json!(base);
    v["comments_url"] = json!(format!("{base}/issues/{}/comments", i.number));
    v["events_url"] = json!(format!("{base}/issues/{}/events", i.number));
    v["html_url"] = json!(format!(
        "https://github.example/{}/{}/issues/{}",
        inner.owner, inner.repo, i.number
    ));
    v["state"] = json!("open");
    v["comments"] = json!(i.comments.len());
    v["created_at"] = json!(i.created_at);
    v["updated_at"] = json!(i.created_at);
    v["closed_at"] = Value::Null;
    v["labels"] = json!(i
        .labels
        .iter()
        .enumerate()
        .map(
            |(n, l)| json!({"id": 200 + n, "node_id": format!("LA_{n}"), "url": format!("{base}/labels/{l}"),
                             "name": l, "description": null, "color": "ededed", "default": false})
        )
        .collect::<Vec<_>>());
    if let Some(m) = v.as_object_mut() {
        m.remove("pull_request");
    }
    v
}

fn comment_json(inner: &Inner, number: u64, c: &FakeComment) -> Value {
    let mut v = inner.api.comment_example.clone();
    let base = format!(
        "https://api.github.example/repos/{}/{}",
        inner.owner, inner.repo
    );
    v["id"] = json!(c.id);
    v["node_id"] = json!(format!("IC_fake{}", c.id));
    v["body"] = json!(c.body);
    v["url"] = json!(format!("{base}/issues/comments/{}", c.id));
    v["issue_url"] = json!(format!("{base}/issues/{number}"));
    v["html_url"] = json!(format!(
        "https://github.example/{}/{}/issues/{number}#issuecomment-{}",
        inner.owner, inner.repo, c.id
    ));
    v
}

fn route_of(inner: &Inner, method: &str, path: &str) -> Option<(Route, Option<u64>)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("GET", ["repos", _, _, "issues"]) => Some((Route::ListIssues, None)),
        ("POST", ["repos", _, _, "issues"]) => Some((Route::CreateIssue, None)),
        ("GET", ["repos", _, _, "issues", n, "comments"]) => {
            Some((Route::ListComments, n.parse().ok()))
        }
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
            Some((Route::CreateComment, n.parse().ok()))
        }
        _ => {
            let _ = inner;
            None
        }
    }
}

/// Carries out a (valid, authorised) request: the status and JSON answer.
fn act(
    inner: &Inner,
    route: Route,
    number: Option<u64>,
    query: &[(String, String)],
    body: &[u8],
) -> (u16, Value) {
    let q = |k: &str| query.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let mut s = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    let per_page: usize = q("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = q("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
    match route {
        Route::ListIssues => {
            let labels: Vec<String> = q("labels")
                .map(|l| {
                    l.split(',')
                        .map(|x| x.trim().to_string())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let state = q("state").unwrap_or_else(|| "open".into());
            let mut items: Vec<&FakeIssue> = s
                .issues
                .iter()
                .filter(|i| labels.iter().all(|l| i.labels.contains(l)))
                .filter(|_| state == "all" || state == "open")
                .collect();
            items.sort_by_key(|i| (i.created_at.clone(), i.number));
            if q("direction").as_deref() != Some("asc") {
                items.reverse();
            }
            let out: Vec<Value> = items
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|i| issue_json(inner, i))
                .collect();
            (200, Value::Array(out))
        }
        Route::CreateIssue => {
            let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let number = s.issues.len() as u64 + 1;
            let issue = FakeIssue {
                number,
                title: b["title"].as_str().unwrap_or_default().to_string(),
                body: b["body"].as_str().unwrap_or_default().to_string(),
                labels: b["labels"]
                    .as_array()
                    .filter(|_| !s.drop_labels)
                    .map(|ls| {
                        ls.iter()
                            .filter_map(|l| l.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                created_at: now_rfc3339(),
                comments: Vec::new(),
            };
            let v = issue_json(inner, &issue);
            s.issues.push(issue);
            (201, v)
        }
        Route::ListComments => {
            let Some(i) = s.issues.iter().find(|i| Some(i.number) == number) else {
                return (404, error_body(404));
            };
            let out: Vec<Value> = i
                .comments
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|c| comment_json(inner, i.number, c))
                .collect();
            (200, Value::Array(out))
        }
        Route::CreateComment => {
            let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            s.next_comment += 1;
            let id = s.next_comment;
            let Some(i) = s.issues.iter_mut().find(|i| Some(i.number) == number) else {
                return (404, error_body(404));
            };
            let c = FakeComment {
                id,
                body: b["body"].as_str().unwrap_or_default().to_string(),
            };
            i.comments.push(c.clone());
            let n = i.number;
            (201, comment_json(inner, n, &c))
        }
    }
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Answer {
    let method = req.method().to_string();
    let uri = req.uri().clone();
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Dropped),
    };
    let path = uri.path().to_string();
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let route = route_of(&inner, &method, &path);
    let lock = || inner.state.lock().unwrap_or_else(|e| e.into_inner());
    // Logged on arrival (status 0: no answer yet, or never).
    let idx = {
        let mut s = lock();
        s.log.push(Logged {
            at: Instant::now(),
            method: method.clone(),
            path: path.clone(),
            query: uri.query().unwrap_or("").to_string(),
            route: route.map(|r| r.0),
            status: 0,
            fault: None,
            authorization: headers
                .get("authorization")
                .and_then(|a| a.to_str().ok())
                .map(str::to_string),
        });
        s.log.len() - 1
    };
    let set_status = |status: u16| {
        if let Some(e) = lock().log.get_mut(idx) {
            e.status = status;
        }
    };
    let answer = |status: u16, v: &Value, h: &[(&str, String)]| {
        set_status(status);
        respond(status, v, h)
    };

    let violations = inner.api.validate(&method, &path, &query, &headers, &body);
    if !violations.is_empty() {
        lock()
            .violations
            .extend(violations.iter().map(|v| format!("{method} {path}: {v}")));
        return Ok(answer(
            422,
            &json!({"message": "Validation Failed", "errors": violations}),
            &[],
        ));
    }
    let auth = headers
        .get("authorization")
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let token = auth.split_once(' ').map(|(_, t)| t.trim()).unwrap_or("");
    if token != inner.token {
        return Ok(answer(401, &error_body(401), &[]));
    }
    let Some((route, number)) = route else {
        return Ok(answer(404, &error_body(404), &[]));
    };
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segs.get(1) != Some(&inner.owner.as_str()) || segs.get(2) != Some(&inner.repo.as_str()) {
        return Ok(answer(404, &error_body(404), &[]));
    }
    let fault = {
        let mut s = lock();
        let queued = s.faults.get_mut(&route).and_then(VecDeque::pop_front);
        let f = queued.or_else(|| s.sticky.get(&route).cloned());
        if let Some(e) = s.log.get_mut(idx) {
            e.fault = f.as_ref().map(|f| format!("{f:?}"));
        }
        f
    };
    match fault {
        None => {
            let (st, v) = act(&inner, route, number, &query, &body);
            Ok(answer(st, &v, &[]))
        }
        Some(Fault::Status(st)) => Ok(answer(st, &error_body(st), &[])),
        Some(Fault::RetryAfter403(secs)) => Ok(answer(
            403,
            &json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"}),
            &[("retry-after", secs.to_string())],
        )),
        Some(Fault::Reset429(secs)) => {
            let reset = chrono::Utc::now().timestamp() + secs as i64;
            Ok(answer(
                429,
                &json!({"message": "API rate limit exceeded", "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}),
                &[
                    ("x-ratelimit-limit", "5000".into()),
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-used", "5000".into()),
                    ("x-ratelimit-reset", reset.to_string()),
                ],
            ))
        }
        Some(Fault::Stall(d)) => {
            tokio::time::sleep(d).await;
            Ok(answer(504, &error_body(504), &[]))
        }
        Some(Fault::SlowAct(d)) => {
            let inner2 = inner.clone();
            let q2 = query.clone();
            let b2 = body.clone();
            // Spawned: the effect happens even if the client has hung up meanwhile.
            let done = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                act(&inner2, route, number, &q2, &b2)
            });
            match done.await {
                Ok((st, v)) => Ok(answer(st, &v, &[])),
                Err(_) => Err(Dropped),
            }
        }
        Some(Fault::ActThenStatus(st)) => {
            let _ = act(&inner, route, number, &query, &body);
            Ok(answer(st, &error_body(st), &[]))
        }
        Some(Fault::ActThenDrop) => {
            let _ = act(&inner, route, number, &query, &body);
            Err(Dropped)
        }
        Some(Fault::ActThenStall(d)) => {
            let (st, v) = act(&inner, route, number, &query, &body);
            tokio::time::sleep(d).await;
            Ok(answer(st, &v, &[]))
        }
        Some(Fault::Drop) => Err(Dropped),
    }
}
