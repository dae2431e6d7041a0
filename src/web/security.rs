//! Who may see and change what (issue 19): the authentication modes, roles, CSRF
//! protection, the Host allow-list and the security headers, as one middleware in front
//! of every page and JSON twin.
//!
//! - `none`: everyone who reaches the port is a responder named `local`. Allowed only on
//!   a loopback address (checked at start, see [`AuthConfig::check_listener`]).
//! - `accounts`: built-in users (argon2id hashes, `rootline user ...`), a login page, a
//!   session cookie (HttpOnly, SameSite=Strict, Secure behind https) that expires.
//! - `proxy`: a reverse proxy (oauth2-proxy, an SSO gateway) authenticates and names the
//!   user in a header; requests are accepted only from the configured proxy addresses.
//!
//! State-changing requests (POST) need the responder role, a same-origin `Origin` (or,
//! without one, `Referer`) and the CSRF token of the session (form field `csrf` or header
//! `X-CSRF-Token`). With mode `none` there is no session: a token is checked when given
//! and the origin check alone guards the forms.
//!
//! The push endpoints (`/ingest/*`) authenticate themselves (API key, HMAC signature)
//! and pass through unchanged; security headers are set on every response.

use super::AppState;
use axum::body::Body;
use axum::extract::{Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The session cookie.
pub const SESSION_COOKIE: &str = "rootline_session";
/// The Content-Security-Policy of every response: nothing but this origin's stylesheet,
/// forms posting only here, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The largest form body read to find its CSRF token.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read pages and their JSON twins.
    Viewer,
    /// Also accept or discard hypotheses and request GitHub issues.
    Responder,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "responder" => Some(Role::Responder),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Responder => "responder",
        }
    }
}

/// Who made a request (in the request's extensions once authenticated).
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The CSRF token of this principal's forms.
    pub csrf: String,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The `[auth]` section of the config file.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// `none` (loopback only), `accounts` or `proxy`. Default `none`.
    pub mode: Option<String>,
    /// Hours a login session lasts (default 12).
    pub session_hours: Option<u64>,
    /// Mark the session cookie Secure. Default: when the login request came over https
    /// (a proxy's `X-Forwarded-Proto: https`).
    pub secure_cookies: Option<bool>,
    /// Host names the UI answers to (the `Host` header without its port); empty: any.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Mode `proxy`: where the identity comes from.
    pub proxy: Option<ProxySection>,
}

/// `[auth.proxy]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// The header naming the user (default `X-Forwarded-Email`, as oauth2-proxy sets it).
    pub header: Option<String>,
    /// The proxy's addresses (IPs); requests from anywhere else are refused.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Users (as the header names them) who are responders; everyone else is a viewer.
    #[serde(default)]
    pub responders: Vec<String>,
}

/// The authentication mode, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Accounts,
    Proxy {
        header: HeaderName,
        addresses: BTreeSet<IpAddr>,
        responders: BTreeSet<String>,
    },
}

/// Everything the security middleware needs, resolved from the config.
#[derive(Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub session_ttl: Duration,
    pub secure_cookies: Option<bool>,
    /// Lower-case host names; empty allows any.
    pub allowed_hosts: BTreeSet<String>,
    /// Key of the CSRF tokens derived for principals without a session (modes `none`
    /// and `proxy`); random per process.
    key: [u8; 32],
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("mode", &self.mode)
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: None,
            allowed_hosts: BTreeSet::new(),
            key: random_bytes(),
        }
    }
}

/// 32 bytes from the operating system's random source.
pub fn random_bytes() -> [u8; 32] {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    b
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A new random token (session ids, CSRF tokens): 256 bits, hex.
pub fn new_token() -> String {
    hex(&random_bytes())
}

/// The SHA-256 of a session token, as stored.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

impl AuthConfig {
    /// Resolves the `[auth]` section; any mistake is an error naming it.
    pub fn from_section(s: Option<&AuthSection>) -> anyhow::Result<AuthConfig> {
        let Some(s) = s else {
            return Ok(AuthConfig::default());
        };
        let mode = match s.mode.as_deref().map(str::trim).unwrap_or("none") {
            "none" => AuthMode::None,
            "accounts" => AuthMode::Accounts,
            "proxy" => {
                let p = s.proxy.clone().unwrap_or_default();
                let header_name = p.header.as_deref().unwrap_or("X-Forwarded-Email");
                let header =
                    HeaderName::from_bytes(header_name.trim().to_ascii_lowercase().as_bytes())
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "[auth.proxy] header {header_name:?} is not a header name"
                            )
                        })?;
                let mut addresses = BTreeSet::new();
                for a in &p.addresses {
                    let ip: IpAddr = a.trim().parse().map_err(|_| {
                        anyhow::anyhow!("[auth.proxy] addresses: {a:?} is not an IP address")
                    })?;
                    addresses.insert(ip);
                }
                if addresses.is_empty() {
                    anyhow::bail!("[auth] mode \"proxy\" needs [auth.proxy] addresses: the proxy's IP addresses");
                }
                AuthMode::Proxy {
                    header,
                    addresses,
                    responders: p.responders.iter().map(|r| r.trim().to_string()).collect(),
                }
            }
            other => anyhow::bail!(
                "[auth] mode must be \"none\", \"accounts\" or \"proxy\", not {other:?}"
            ),
        };
        let hours = s.session_hours.unwrap_or(12);
        if hours == 0 || hours > 24 * 365 {
            anyhow::bail!("[auth] session_hours must be between 1 and 8760");
        }
        Ok(AuthConfig {
            mode,
            session_ttl: Duration::from_secs(hours * 3600),
            secure_cookies: s.secure_cookies,
            allowed_hosts: s
                .allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            key: random_bytes(),
        })
    }

    /// Mode `none` is refused unless the UI listens on loopback; returns the line to say
    /// at start.
    pub fn check_listener(&self, addr: SocketAddr) -> anyhow::Result<String> {
        match &self.mode {
            AuthMode::None if !addr.ip().is_loopback() => anyhow::bail!(
                "authentication mode \"none\" is allowed only on a loopback address, not {addr}: set [auth] mode = \"accounts\" or \"proxy\" in the config file"
            ),
            AuthMode::None => Ok(format!(
                "authentication: none (listening on loopback {addr} only; everyone who can reach it is a responder)"
            )),
            AuthMode::Accounts => Ok("authentication: built-in accounts (rootline user ...)".into()),
            AuthMode::Proxy { header, addresses, .. } => Ok(format!(
                "authentication: trusted proxy, user from header {header}, accepted only from {}",
                addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The CSRF token of a principal without a session (HMAC of its name).
    fn derived_csrf(&self, name: &str) -> String {
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(mut m) => {
                m.update(b"rootline csrf\0");
                m.update(name.as_bytes());
                hex(&m.finalize().into_bytes())
            }
            // HMAC takes keys of any length; never reached.
            Err(_) => new_token(),
        }
    }
}

// ------------------------------------------------------------------ headers

/// Sets the security headers on every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

// ------------------------------------------------------------------ the guard

/// Paths anyone may fetch: the health check and metrics (no event content), the
/// stylesheet, the login page.
fn public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/metrics" | "/static/style.css" | "/login"
    )
}

/// A plain refusal, as JSON for JSON clients.
fn refuse(json: bool, status: StatusCode, message: &str) -> Response {
    if json {
        return (
            status,
            axum::Json(serde_json::json!({"error": message, "status": status.as_u16()})),
        )
            .into_response();
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// The `Host` header's name, lower case, without the port.
fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    Some(name.to_ascii_lowercase())
}

/// The `host[:port]` of an origin or URL (`http://a:1/x` -> `a:1`).
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// True when a state-changing request comes from this site: its `Origin` (or, without
/// one, its `Referer`) names the host it was sent to, and the browser does not call it
/// cross-site. A request with neither header is not a browser's cross-site form post.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().to_ascii_lowercase());
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if site == "cross-site" || site == "same-site" {
        return false;
    }
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| v.to_str().unwrap_or("invalid"));
    match (from, host) {
        (None, _) => true,
        (Some(f), Some(host)) => authority(f).is_some_and(|a| a.eq_ignore_ascii_case(&host)),
        (Some(_), None) => false,
    }
}

/// The value of one cookie.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Why a request has no principal.
enum Unauthenticated {
    /// No (live) session or identity header: 401, or the login page for a browser.
    Missing,
    /// Not from the configured proxy: 403.
    NotFromProxy,
    /// The store could not be asked: 503 (not "logged out").
    Unavailable,
}

/// The principal of a request, by the mode.
async fn principal(
    st: &AppState,
    cfg: &AuthConfig,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Result<Principal, Unauthenticated> {
    match &cfg.mode {
        AuthMode::None => Ok(Principal {
            name: "local".into(),
            role: Role::Responder,
            csrf: cfg.derived_csrf("local"),
        }),
        AuthMode::Accounts => {
            let token = cookie(headers, SESSION_COOKIE).ok_or(Unauthenticated::Missing)?;
            let now = chrono::Utc::now().timestamp_millis();
            match st.store.session(&token_hash(token), now).await {
                Ok(Some(s)) => Ok(Principal {
                    role: Role::parse(&s.role).unwrap_or(Role::Viewer),
                    name: s.user,
                    csrf: s.csrf,
                }),
                Ok(None) => Err(Unauthenticated::Missing),
                Err(e) => {
                    tracing::error!(error = %e, "Session lookup failed");
                    Err(Unauthenticated::Unavailable)
                }
            }
        }
        AuthMode::Proxy {
            header,
            addresses,
            responders,
        } => {
            let peer = peer.map(|p| p.ip());
            let from_proxy = peer.is_some_and(|ip| {
                addresses.contains(&ip)
                    || ip_v4_mapped(ip).is_some_and(|v4| addresses.contains(&v4))
            });
            if !from_proxy {
                return Err(Unauthenticated::NotFromProxy);
            }
            let name = headers
                .get(header)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= 256)
                .ok_or(Unauthenticated::Missing)?;
            Ok(Principal {
                role: if responders.contains(name) {
                    Role::Responder
                } else {
                    Role::Viewer
                },
                csrf: cfg.derived_csrf(name),
                name: name.to_string(),
            })
        }
    }
}

fn ip_v4_mapped(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    }
}

/// The path and query of a request, for the login page's return address.
fn path_and_query(req: &Request) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into())
}

/// A return address that stays on this site (`/...`, not `//host`). Control and
/// whitespace characters are refused too: browsers drop tabs and newlines from a URL,
/// so `/<TAB>/evil.example` would become `//evil.example`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_string()
        }
        _ => "/incidents".into(),
    }
}

/// Whether a `Host` name is this machine's loopback: `localhost` (and `*.localhost`),
/// 127.0.0.0/8 or `::1`. Without an allow-list, mode `none` answers only these, so a
/// page on another site cannot reach the UI through DNS rebinding (its name re-resolved
/// to 127.0.0.1: the browser still sends that name as the Host).
fn loopback_host(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Authenticates every UI request, checks the Host allow-list, the role, the origin
/// and the CSRF token of state-changing requests, and adds the [`Principal`] to the
/// request. `/ingest/*` passes through (the push endpoints authenticate themselves).
pub async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let cfg = st.auth.clone();
    let path = req.uri().path().to_string();
    if path.starts_with("/ingest/") {
        return next.run(req).await;
    }
    let json = super::wants_json(req.headers());
    let host = host_name(req.headers());
    let known_host = if !cfg.allowed_hosts.is_empty() {
        host.is_some_and(|h| cfg.allowed_hosts.contains(&h))
    } else if cfg.mode == AuthMode::None {
        // A request without Host is no browser's (they always send it).
        host.is_none_or(|h| loopback_host(&h))
    } else {
        true
    };
    if !known_host {
        return refuse(json, StatusCode::MISDIRECTED_REQUEST, "unknown host");
    }
    let state_changing = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if state_changing && !same_origin(req.headers()) {
        tracing::warn!(path = %path, "Refused a cross-origin post");
        return refuse(json, StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    let peer = super::http::peer(&req);
    let who = principal(&st, &cfg, req.headers(), peer).await;
    if public(&path) {
        let mut req = req;
        if let Ok(p) = who {
            req.extensions_mut().insert(p);
        }
        return next.run(req).await;
    }
    let p = match who {
        Ok(p) => p,
        Err(Unauthenticated::NotFromProxy) => {
            tracing::warn!(peer = ?peer, "Refused a request not from the configured proxy");
            return refuse(
                json,
                StatusCode::FORBIDDEN,
                "requests must come through the configured proxy",
            );
        }
        Err(Unauthenticated::Unavailable) => {
            return refuse(
                json,
                StatusCode::SERVICE_UNAVAILABLE,
                "the session store is unavailable; try again",
            );
        }
        Err(Unauthenticated::Missing) => {
            let browser_get = !json && *req.method() == Method::GET;
            if browser_get && cfg.mode == AuthMode::Accounts {
                let next = form_urlencoded::byte_serialize(path_and_query(&req).as_bytes())
                    .collect::<String>();
                return Redirect::to(&format!("/login?next={next}")).into_response();
            }
            return refuse(json, StatusCode::UNAUTHORIZED, "authentication required");
        }
    };
    if !state_changing {
        let mut req = req;
        req.extensions_mut().insert(p.clone());
        let resp = next.run(req).await;
        return with_forms_token(resp, &p, &cfg).await;
    }
    if path == "/logout" {
        // Anyone logged in may log out (the origin was checked above).
        let mut req = req;
        req.extensions_mut().insert(p);
        return next.run(req).await;
    }
    if p.role != Role::Responder {
        return refuse(
            json,
            StatusCode::FORBIDDEN,
            "viewers cannot change anything; a responder can",
        );
    }
    // The CSRF token: header, or the form's `csrf` field (the body is read up to the
    // form limit and handed on unchanged).
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return refuse(json, StatusCode::PAYLOAD_TOO_LARGE, "form too large"),
    };
    let given = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned())
        });
    let token_ok = match (&given, &cfg.mode) {
        (Some(t), _) => bool::from(t.as_bytes().ct_eq(p.csrf.as_bytes())),
        // No session in mode `none`: the origin check above guards its forms.
        (None, AuthMode::None) => true,
        (None, _) => false,
    };
    if !token_ok {
        tracing::warn!(path = %path, user = %p.name, "Refused a post with a missing or wrong CSRF token");
        return refuse(
            json,
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token; reload the page and try again",
        );
    }
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(p);
    next.run(req).await
}

/// Puts the principal's CSRF token into every POST form of an HTML page, and who is
/// logged in (with a logout button) into the page header.
async fn with_forms_token(resp: Response, p: &Principal, cfg: &AuthConfig) -> Response {
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !is_html {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let html = String::from_utf8_lossy(&bytes);
    let hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&p.csrf)
    );
    // Templates escape every `<` they print, so a literal `<form method="post"` is
    // always a template's own.
    let mut out = String::with_capacity(html.len() + 1024);
    let mut rest: &str = &html;
    while let Some(i) = rest.find("<form method=\"post\"") {
        let Some(end) = rest[i..].find('>') else {
            break;
        };
        out.push_str(&rest[..i + end + 1]);
        out.push_str(&hidden);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    let who = match cfg.mode {
        AuthMode::None => String::new(),
        AuthMode::Accounts => format!(
            "<span class=\"who\">{} ({})</span><form method=\"post\" action=\"/logout\" class=\"inline\">{hidden}<button>Log out</button></form>",
            escape(&p.name),
            p.role.as_str()
        ),
        AuthMode::Proxy { .. } => format!(
            "<span class=\"who\">{} ({})</span>",
            escape(&p.name),
            p.role.as_str()
        ),
    };
    let out = out.replacen("<!--rootline:session-->", &who, 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

/// HTML escaping of text and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

// ------------------------------------------------------------------ passwords

/// An argon2id hash (PHC string) of a password, with a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// True when `password` matches the PHC string `hash`.
/// Password verifications running at once (argon2id is deliberately expensive).
static VERIFICATIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(hash) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash no password matches, verified against for unknown users so that a login
/// takes as long whether or not the user exists.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

// ------------------------------------------------------------------ login pages

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    message: String,
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The login form (mode `accounts`); other modes have no login.
pub async fn login_page(State(st): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    if st.auth.mode != AuthMode::Accounts {
        return Redirect::to("/incidents").into_response();
    }
    login_form(StatusCode::OK, safe_next(q.next.as_deref()), String::new())
}

fn login_form(status: StatusCode, next: String, message: String) -> Response {
    let page = LoginPage { next, message };
    match askama::Template::render(&page) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The login form's fields. No `Debug`: the password must never reach a log.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    next: Option<String>,
}

/// Checks the password; on success, a new session and its cookie.
pub async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if st.auth.mode != AuthMode::Accounts {
        return Redirect::to("/incidents").into_response();
    }
    let next = safe_next(f.next.as_deref());
    let user = f.user.trim().to_string();
    let creds = match st.store.user_credentials(&user).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Login: user lookup failed");
            return login_form(
                StatusCode::SERVICE_UNAVAILABLE,
                next,
                "The store is unavailable; try again.".into(),
            );
        }
    };
    let hash = creds
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let password = f.password;
    // Each verification costs about 19 MiB and a core for a moment: at most two run at
    // once, so a flood of login posts queues instead of exhausting the machine.
    let Ok(_permit) = VERIFICATIONS.acquire().await else {
        return login_form(
            StatusCode::SERVICE_UNAVAILABLE,
            next,
            "Too busy; try again.".into(),
        );
    };
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
        && creds.is_some();
    if !ok {
        tracing::warn!(user = %crate::model::truncate(&user, 64), "Login failed");
        return login_form(
            StatusCode::UNAUTHORIZED,
            next,
            "Wrong user name or password.".into(),
        );
    }
    let token = new_token();
    let now = chrono::Utc::now().timestamp_millis();
    let ttl = st.auth.session_ttl;
    let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    if let Err(e) = st
        .store
        .create_session(&token_hash(&token), &user, &new_token(), now, expires)
        .await
    {
        tracing::error!(error = %e, "Login: cannot store the session");
        return login_form(
            StatusCode::SERVICE_UNAVAILABLE,
            next,
            "The store is unavailable; try again.".into(),
        );
    }
    tracing::info!(user = %user, "Logged in");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let secure = st.auth.secure_cookies.unwrap_or(https);
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let mut resp = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Ends the session and clears its cookie.
pub async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = st.store.delete_session(&token_hash(token)).await {
            tracing::error!(error = %e, "Logout: cannot delete the session");
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("rootline_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_name_the_host() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            m
        };
        assert!(same_origin(&h(&[("host", "127.0.0.1:8080")])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "null")
        ])));
        assert!(same_origin(&h(&[
            ("host", "a:1"),
            ("referer", "http://a:1/incidents/x")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "a:1"),
            ("referer", "http://a:2/")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "a:1"),
            ("sec-fetch-site", "cross-site")
        ])));
    }

    #[test]
    fn return_addresses_stay_on_the_site() {
        assert_eq!(safe_next(Some("/incidents/x?h=2")), "/incidents/x?h=2");
        assert_eq!(safe_next(Some("//evil.example/")), "/incidents");
        assert_eq!(safe_next(Some("https://evil.example/")), "/incidents");
        assert_eq!(safe_next(Some("/\\evil.example")), "/incidents");
        assert_eq!(safe_next(None), "/incidents");
        // Browsers drop tabs and newlines: `/\t/evil.example` would be `//evil.example`.
        assert_eq!(safe_next(Some("/\t/evil.example")), "/incidents");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/incidents");
        assert_eq!(safe_next(Some("/ /evil.example")), "/incidents");
        assert_eq!(safe_next(Some("/incidents?h=2")), "/incidents?h=2");
    }

    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        for h in ["localhost", "ui.localhost", "127.0.0.1", "127.3.2.1", "::1"] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1",
            "0.0.0.0",
            "::",
            "",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn host_names_lose_their_port() {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, "Rootline.Example:8443".parse().unwrap());
        assert_eq!(host_name(&m).as_deref(), Some("rootline.example"));
        m.insert(header::HOST, "[::1]:8080".parse().unwrap());
        assert_eq!(host_name(&m).as_deref(), Some("::1"));
    }
}
