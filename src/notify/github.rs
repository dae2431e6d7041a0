//! A small GitHub REST client for the four calls the outbox needs: list a repository's
//! issues, create an issue, list an issue's comments, create a comment.
//!
//! Each call makes one request with a timeout and classifies the outcome: success,
//! worth retrying (5xx, timeouts, dropped connections, rate limits, with the wait the
//! server asked for), or permanent (other 4xx). Retrying is the caller's business,
//! because after a create whose outcome is unknown the right retry is "look for it
//! first", not "send it again".
//!
//! The token is only ever in a header marked sensitive; error messages are built from
//! status codes, paths and GitHub's own error text, and scrubbed of the token anyway.

use super::config::{NotifyConfig, Repo, RetryPolicy};
use super::markdown::has_marker;
use super::NotifyError;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::time::Duration;

/// The media type GitHub recommends.
pub const MEDIA_TYPE: &str = "application/vnd.github+json";
/// The REST API version rootline is written against.
pub const API_VERSION: &str = "2022-11-28";
/// Items per page when listing.
const PER_PAGE: usize = 100;

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// Worth trying again: after `wait` when the server named one (rate limits), else
    /// after a backoff. `maybe_done`: the request may have taken effect anyway (it was
    /// sent and no answer came back, or a 5xx came back).
    Retry {
        reason: String,
        wait: Option<Duration>,
        maybe_done: bool,
    },
    /// Trying again cannot help (bad token, missing repository, validation failure).
    Permanent {
        status: Option<u16>,
        message: String,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Retry { reason, .. } => f.write_str(reason),
            Failure::Permanent { message, .. } => f.write_str(message),
        }
    }
}

/// An issue, as far as rootline cares.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub number: u64,
    pub html_url: String,
    pub labels: Vec<String>,
}

/// A comment, as far as rootline cares.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub html_url: String,
}

/// The client.
pub struct GitHub {
    http: reqwest::Client,
    api: String,
    repo: Repo,
    auth: HeaderValue,
    token: secrecy::SecretString,
    labels: Vec<String>,
    max_pages: u32,
    policy: RetryPolicy,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("api", &self.api)
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

/// Installs the TLS crypto provider once (reqwest is built without a default one).
fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl GitHub {
    /// A client for the configured repository; fails without a token.
    pub fn new(config: &NotifyConfig) -> Result<GitHub, NotifyError> {
        let Some(token) = config.token.as_ref() else {
            return Err(NotifyError::Config("no GitHub token".into()));
        };
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                NotifyError::Config("the GitHub token cannot go in an HTTP header".into())
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(MEDIA_TYPE));
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static(API_VERSION),
        );
        tls_provider();
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .default_headers(headers)
            .timeout(config.retry.request_timeout)
            .connect_timeout(config.retry.request_timeout)
            // A redirect (a renamed or transferred repository) is reported, not followed:
            // a followed POST could turn into a GET, and the token must not travel on.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(GitHub {
            http,
            api: config.api_url.clone(),
            repo: config.repo.clone(),
            auth,
            token: token.clone(),
            labels: config.labels.clone(),
            max_pages: config.list_max_pages.max(1),
            policy: config.retry.clone(),
        })
    }

    /// Removes the token from any text that could be shown (defence in depth).
    pub fn scrub(&self, s: &str) -> String {
        scrub(s, Some(self.token.expose_secret()))
    }

    fn issues_url(&self) -> String {
        format!(
            "{}/repos/{}/{}/issues",
            self.api, self.repo.owner, self.repo.name
        )
    }

    fn comments_url(&self, number: u64) -> String {
        format!(
            "{}/repos/{}/{}/issues/{number}/comments",
            self.api, self.repo.owner, self.repo.name
        )
    }

    /// One request: the parsed JSON answer of a 2xx, or a classified failure.
    async fn call(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let what = format!("{method} {}", url.path());
        let creates = method == Method::POST;
        let mut req = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").json(b);
        }
        tracing::debug!(request = %what, "GitHub request");
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(self.transport_failure(&what, &e, creates)),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Err(self.transport_failure(&what, &e, creates)),
        };
        tracing::debug!(request = %what, status = status.as_u16(), "GitHub response");
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|_| Failure::Retry {
                reason: format!("{what}: GitHub answered {status} with a body that is not JSON"),
                wait: None,
                maybe_done: creates,
            });
        }
        Err(self.classify(&what, status, &headers, &text, creates))
    }

    fn transport_failure(&self, what: &str, e: &reqwest::Error, creates: bool) -> Failure {
        let (kind, maybe_done) = if e.is_timeout() {
            (
                format!(
                    "timed out after {:.1}s",
                    self.policy.request_timeout.as_secs_f64()
                ),
                creates,
            )
        } else if e.is_connect() {
            ("could not connect".to_string(), false)
        } else {
            ("connection lost before the answer".to_string(), creates)
        };
        let mut detail = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(e);
        while let Some(s) = src {
            detail = s.to_string();
            src = s.source();
        }
        Failure::Retry {
            reason: self.scrub(&format!("{what}: {kind} ({detail})")),
            wait: None,
            maybe_done,
        }
    }

    fn classify(
        &self,
        what: &str,
        status: StatusCode,
        headers: &HeaderMap,
        text: &str,
        creates: bool,
    ) -> Failure {
        let message = self.scrub(&format!(
            "{what}: GitHub answered {status}{}",
            error_detail(text)
        ));
        let code = status.as_u16();
        let rate_limited = rate_limit_wait(headers, text, &self.policy);
        if code == 429 || (code == 403 && rate_limited.is_some()) {
            return Failure::Retry {
                reason: format!("{message} (rate limited)"),
                wait: Some(rate_limited.unwrap_or(self.policy.rate_limit_default)),
                maybe_done: false,
            };
        }
        if status.is_server_error() || code == 408 {
            return Failure::Retry {
                reason: message,
                wait: retry_after(headers),
                maybe_done: creates,
            };
        }
        if status.is_redirection() {
            let to = headers
                .get("location")
                .and_then(|l| l.to_str().ok())
                .unwrap_or("?");
            return Failure::Permanent {
                status: Some(code),
                message: self.scrub(&format!(
                    "{message} — the repository moved (to {to}): update --github-repo or --github-api-url"
                )),
            };
        }
        let hint = match code {
            401 => " — the token is missing, expired or revoked",
            403 => " — the token may lack permission on the repository (Issues: read and write)",
            404 => " — the repository does not exist or the token cannot see it",
            410 => " — issues are disabled on the repository",
            422 => " — GitHub refused the request as invalid",
            _ => "",
        };
        Failure::Permanent {
            status: Some(code),
            message: format!("{message}{hint}"),
        }
    }

    /// Looks for the issue whose body starts with `marker` among the repository's issues
    /// carrying rootline's label (all states, newest first), back to issues created
    /// before `not_before` (epoch ms). Uses the issues list, which shows an issue as soon
    /// as it exists, not the search API, whose index lags.
    pub async fn find_issue(
        &self,
        marker: &str,
        not_before: i64,
    ) -> Result<Option<Issue>, Failure> {
        for page in 1..=self.max_pages {
            let mut url = parse_url(&self.issues_url())?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("state", "all");
                if let Some(l) = self.labels.first() {
                    q.append_pair("labels", l);
                }
                q.append_pair("sort", "created");
                q.append_pair("direction", "desc");
                q.append_pair("per_page", &PER_PAGE.to_string());
                q.append_pair("page", &page.to_string());
            }
            let items = list_items(self.call(Method::GET, url, None).await?)?;
            let mut older = false;
            for it in &items {
                if it.get("pull_request").is_some() {
                    continue;
                }
                let body = it.get("body").and_then(Value::as_str).unwrap_or("");
                if has_marker(body, marker) {
                    return Ok(Some(issue_from(it)?));
                }
                let created = it
                    .get("created_at")
                    .and_then(Value::as_str)
                    .and_then(crate::model::parse_time);
                if created.is_some_and(|c| c < not_before) {
                    older = true;
                }
            }
            if older || items.len() < PER_PAGE {
                return Ok(None);
            }
        }
        tracing::warn!(
            pages = self.max_pages,
            "looked through the most recent rootline issues without reaching the incident's start; assuming no issue exists yet"
        );
        Ok(None)
    }

    /// The request that creates an issue.
    pub fn create_issue_request(&self, title: &str, body: &str) -> (String, Value) {
        create_issue_request(&self.api, &self.repo, &self.labels, title, body)
    }

    /// Creates an issue.
    pub async fn create_issue(&self, title: &str, body: &str) -> Result<Issue, Failure> {
        let (url, payload) = self.create_issue_request(title, body);
        let v = self
            .call(Method::POST, parse_url(&url)?, Some(&payload))
            .await?;
        let issue = issue_from(&v).map_err(|_| Failure::Retry {
            reason: "GitHub's answer to creating an issue has no issue number".into(),
            wait: None,
            maybe_done: true,
        })?;
        if let Some(l) = self.labels.first() {
            if !issue.labels.iter().any(|x| x == l) {
                // rootline finds its issues by that label after a lost answer: without
                // it, a later attempt would not find this one and open another. The
                // issue exists; the delivery counts as failed (not retried).
                return Err(Failure::Permanent {
                    status: None,
                    message: format!(
                        "GitHub created issue #{} ({}) without the label {l:?} (the token \
                         needs triage or write access to set labels); rootline finds its \
                         issues by that label, so the delivery counts as failed",
                        issue.number, issue.html_url
                    ),
                });
            }
        }
        Ok(issue)
    }

    /// Looks for the comment whose body starts with `marker` on an issue.
    pub async fn find_comment(
        &self,
        number: u64,
        marker: &str,
    ) -> Result<Option<Comment>, Failure> {
        for page in 1..=self.max_pages {
            let mut url = parse_url(&self.comments_url(number))?;
            url.query_pairs_mut()
                .append_pair("per_page", &PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let items = list_items(self.call(Method::GET, url, None).await?)?;
            for it in &items {
                let body = it.get("body").and_then(Value::as_str).unwrap_or("");
                if has_marker(body, marker) {
                    return Ok(Some(comment_from(it)?));
                }
            }
            if items.len() < PER_PAGE {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The request that comments on an issue.
    pub fn create_comment_request(&self, number: u64, body: &str) -> (String, Value) {
        (
            self.comments_url(number),
            serde_json::json!({ "body": body }),
        )
    }

    /// Comments on an issue.
    pub async fn create_comment(&self, number: u64, body: &str) -> Result<Comment, Failure> {
        let (url, payload) = self.create_comment_request(number, body);
        let v = self
            .call(Method::POST, parse_url(&url)?, Some(&payload))
            .await?;
        comment_from(&v).map_err(|_| Failure::Retry {
            reason: "GitHub's answer to creating a comment has no comment id".into(),
            wait: None,
            maybe_done: true,
        })
    }
}

/// The create-issue request (URL and JSON body), also used by dry runs.
pub fn create_issue_request(
    api: &str,
    repo: &Repo,
    labels: &[String],
    title: &str,
    body: &str,
) -> (String, Value) {
    let mut payload = serde_json::json!({ "title": title, "body": body });
    if !labels.is_empty() {
        payload["labels"] = serde_json::json!(labels);
    }
    (
        format!("{api}/repos/{}/{}/issues", repo.owner, repo.name),
        payload,
    )
}

/// A request as text, for `--dry-run`: the token is never shown.
pub fn describe_request(method: &str, url: &str, body: &Value, user_agent: &str) -> String {
    format!(
        "{method} {url}\nAccept: {MEDIA_TYPE}\nAuthorization: Bearer [redacted]\nUser-Agent: {user_agent}\nX-GitHub-Api-Version: {API_VERSION}\nContent-Type: application/json\n\n{}\n",
        serde_json::to_string_pretty(body).unwrap_or_default()
    )
}

/// The items of a list answer; anything but an array is not GitHub's list.
fn list_items(v: Value) -> Result<Vec<Value>, Failure> {
    match v {
        Value::Array(items) => Ok(items),
        _ => Err(Failure::Retry {
            reason: "GitHub answered a list request with something other than a list".into(),
            wait: None,
            maybe_done: false,
        }),
    }
}

fn parse_url(s: &str) -> Result<reqwest::Url, Failure> {
    reqwest::Url::parse(s).map_err(|e| Failure::Permanent {
        status: None,
        message: format!("invalid URL {s}: {e}"),
    })
}

fn issue_from(v: &Value) -> Result<Issue, Failure> {
    let number = v.get("number").and_then(Value::as_u64);
    let url = v.get("html_url").and_then(Value::as_str);
    match (number, url) {
        (Some(number), Some(url)) => Ok(Issue {
            number,
            html_url: url.to_string(),
            labels: v
                .get("labels")
                .and_then(Value::as_array)
                .map(|ls| {
                    ls.iter()
                        .filter_map(|l| {
                            l.as_str().or_else(|| l.get("name").and_then(Value::as_str))
                        })
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }),
        _ => Err(Failure::Permanent {
            status: None,
            message: "GitHub returned an issue without number or html_url".into(),
        }),
    }
}

fn comment_from(v: &Value) -> Result<Comment, Failure> {
    match (
        v.get("id").and_then(Value::as_u64),
        v.get("html_url").and_then(Value::as_str),
    ) {
        (Some(id), Some(url)) => Ok(Comment {
            id,
            html_url: url.to_string(),
        }),
        _ => Err(Failure::Permanent {
            status: None,
            message: "GitHub returned a comment without id or html_url".into(),
        }),
    }
}

/// GitHub's error text (`message`, `errors`), on one line and bounded.
fn error_detail(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        let t: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        return if t.trim().is_empty() {
            String::new()
        } else {
            format!(": {}", t.trim())
        };
    };
    let mut out = String::new();
    if let Some(m) = v.get("message").and_then(Value::as_str) {
        out.push_str(": ");
        out.push_str(m);
    }
    if let Some(errs) = v.get("errors").and_then(Value::as_array) {
        let parts: Vec<String> = errs
            .iter()
            .take(5)
            .map(|e| match e {
                Value::String(s) => s.clone(),
                _ => {
                    let field =
                        |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    let msg = field("message");
                    if !msg.is_empty() {
                        msg
                    } else {
                        format!("{} {} {}", field("resource"), field("field"), field("code"))
                            .trim()
                            .to_string()
                    }
                }
            })
            .collect();
        if !parts.is_empty() {
            out.push_str(&format!(" ({})", parts.join("; ")));
        }
    }
    let out: String = out.chars().filter(|c| !c.is_control()).take(500).collect();
    out
}

/// A Retry-After header: seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = when.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// The wait a rate-limit answer asks for: Retry-After, else the reset time when no
/// requests remain, else GitHub's default for secondary limits when the message says
/// so. None when the answer is not about rate limits.
fn rate_limit_wait(headers: &HeaderMap, text: &str, policy: &RetryPolicy) -> Option<Duration> {
    if let Some(d) = retry_after(headers) {
        return Some(d);
    }
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    if header("x-ratelimit-remaining") == Some("0") {
        if let Some(reset) = header("x-ratelimit-reset").and_then(|r| r.parse::<i64>().ok()) {
            let ms = reset * 1000 - chrono::Utc::now().timestamp_millis();
            // A little past the reset, so the first request after it is not refused.
            return Some(Duration::from_millis(ms.max(0) as u64 + 250));
        }
        return Some(policy.rate_limit_default);
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("rate limit") {
        return Some(policy.rate_limit_default);
    }
    None
}

/// Replaces every occurrence of the token with a placeholder.
pub fn scrub(s: &str, token: Option<&str>) -> String {
    match token {
        Some(t) if t.len() >= 4 => s.replace(t, "[redacted]"),
        _ => s.to_string(),
    }
}

/// The delay before retry `attempt` (1-based): exponential from the base delay, capped,
/// with "equal jitter" (half fixed, half random) so workers do not retry in lockstep.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1).min(20))
                .unwrap_or(u32::MAX),
        )
        .min(policy.max_delay);
    let half = exp / 2;
    half + half.mul_f64(random_fraction())
}

/// A random number in [0, 1), from the standard library's randomly keyed hasher.
fn random_fraction() -> f64 {
    use std::hash::BuildHasher;
    let x = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..Default::default()
        };
        for attempt in 1..40 {
            let d = backoff(&p, attempt);
            let full = (100u64 << (attempt - 1).min(20)).min(1000);
            assert!(
                d >= Duration::from_millis(full / 2) && d <= Duration::from_millis(full),
                "{attempt} {d:?}"
            );
        }
    }

    #[test]
    fn rate_limit_signals() {
        let p = RetryPolicy::default();
        let mut h = HeaderMap::new();
        assert_eq!(rate_limit_wait(&h, "{\"message\":\"Not Found\"}", &p), None);
        assert_eq!(
            rate_limit_wait(
                &h,
                "{\"message\":\"You have exceeded a secondary rate limit\"}",
                &p
            ),
            Some(p.rate_limit_default)
        );
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(&h, "", &p), Some(Duration::from_secs(7)));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = (chrono::Utc::now().timestamp() + 3).to_string();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).unwrap());
        let w = rate_limit_wait(&h, "", &p).unwrap();
        assert!(
            w > Duration::from_secs(1) && w <= Duration::from_secs(4),
            "{w:?}"
        );
    }

    #[test]
    fn error_details_are_bounded_single_lines() {
        let d = error_detail(
            r#"{"message":"Validation Failed","errors":[{"resource":"Issue","code":"missing_field","field":"title"}]}"#,
        );
        assert_eq!(d, ": Validation Failed (Issue title missing_field)");
        assert!(!error_detail(&format!("line\n{}", "x".repeat(1000))).contains('\n'));
        assert_eq!(scrub("a tok123 b", Some("tok123")), "a [redacted] b");
    }
}
