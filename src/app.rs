//! The composition root: settings, the store, and the long-running parts of `serve`
//! (web pages, push endpoints, analyser, ingest-rate sampler, collectors, GitHub outbox
//! worker), started and shut down here in one visible place.
//!
//! Every command resolves its settings by one rule ([`Settings::resolve`]): a flag or its
//! environment variable wins over the config file, which wins over the default. The
//! modules below this one (collect, notify, web, conclusions, correlate, store) never
//! read flags or files themselves.

use crate::collect::push::{PushConfig, PushState};
use crate::store::{EventLog, Store};
use crate::telemetry::set_component;
use crate::web::http::HttpLimits;
use crate::web::AppState;
use anyhow::Context;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The default store.
pub const DEFAULT_DATABASE: &str = "sqlite://rootline.db";
/// The default listening address (loopback only).
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// `rerank_after_secs` when the configuration does not say.
pub const DEFAULT_RERANK_AFTER_SECS: u64 = 30;

/// The configuration file (TOML). Flags and environment variables win over it; it wins
/// over the defaults.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub addr: Option<String>,
    /// A second listener for the push endpoints alone (`--ingest-addr`).
    pub ingest_addr: Option<String>,
    /// Timeouts and limits of the listeners.
    pub http: Option<HttpSection>,
    /// Who may see and change what (modes `none`, `accounts`, `proxy`).
    pub auth: Option<crate::web::security::AuthSection>,
    pub database: Option<String>,
    pub analyze_every_secs: Option<u64>,
    /// How often, at most, an open incident whose window keeps receiving events is
    /// ranked again (seconds; 0: after every change).
    pub rerank_after_secs: Option<u64>,
    /// The GitHub outbox (`rootline notify`, and `serve` when it names a repository).
    #[serde(default)]
    pub notify: Option<toml::Table>,
    /// Collectors and push endpoints (`rootline collect`, `serve`, `aws setup`).
    #[serde(default)]
    pub collect: Option<toml::Table>,
}

impl FileConfig {
    /// Reads a config file, naming it in any error.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// The `[http]` section: timeouts and limits of the listeners (defaults in
/// [`HttpLimits::default`]; the UI's body limit is 64 KiB, the push endpoints' their own).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Seconds for a request head; also how long an idle keep-alive connection stays open.
    pub header_timeout_secs: Option<u64>,
    /// Seconds for a request's body and answer.
    pub request_timeout_secs: Option<u64>,
    /// Connections open at once, per listener.
    pub max_connections: Option<usize>,
    /// Requests handled at once, per listener.
    pub max_concurrent_requests: Option<usize>,
}

impl HttpSection {
    /// The limits, with the body limit given.
    pub fn limits(&self, max_body_bytes: usize) -> HttpLimits {
        let d = HttpLimits::default();
        let secs =
            |v: Option<u64>, d: Duration| v.map(|s| Duration::from_secs(s.max(1))).unwrap_or(d);
        HttpLimits {
            header_timeout: secs(self.header_timeout_secs, d.header_timeout),
            request_timeout: secs(self.request_timeout_secs, d.request_timeout),
            max_connections: self.max_connections.unwrap_or(d.max_connections).max(1),
            max_concurrent_requests: self
                .max_concurrent_requests
                .unwrap_or(d.max_concurrent_requests)
                .max(1),
            max_body_bytes,
        }
    }
}

/// Body limit of the UI's own requests (forms).
pub const UI_MAX_BODY: usize = 64 * 1024;

/// What every command starts from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The store's URL.
    pub database: String,
    /// The config file (empty when none was given).
    pub file: FileConfig,
}

impl Settings {
    /// `--database` (or `ROOTLINE_DATABASE`) wins over the file's `database`, which wins
    /// over [`DEFAULT_DATABASE`].
    pub fn resolve(database: Option<&str>, config: Option<&Path>) -> anyhow::Result<Self> {
        let file = match config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let database = database
            .map(str::to_string)
            .or_else(|| file.database.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
        Ok(Settings { database, file })
    }

    /// Opens the store named by the settings.
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        open_store(&self.database).await
    }

    /// Server options: `addr` from the flag, else the file, else [`DEFAULT_ADDR`];
    /// `ingest_addr` from the flag, else the file, else none (one listener).
    pub fn serve_options(&self, addr: Option<&str>, analyze: bool) -> ServeOptions {
        self.serve_options_with(addr, None, analyze)
    }

    /// [`Settings::serve_options`] with `--ingest-addr`.
    pub fn serve_options_with(
        &self,
        addr: Option<&str>,
        ingest_addr: Option<&str>,
        analyze: bool,
    ) -> ServeOptions {
        ServeOptions {
            addr: addr
                .map(str::to_string)
                .or_else(|| self.file.addr.clone())
                .unwrap_or_else(|| DEFAULT_ADDR.to_string()),
            ingest_addr: ingest_addr
                .map(str::to_string)
                .or_else(|| self.file.ingest_addr.clone())
                .filter(|a| !a.trim().is_empty()),
            http: self.file.http.clone().unwrap_or_default(),
            auth: self.file.auth.clone(),
            analyze_every: Duration::from_secs(self.file.analyze_every_secs.unwrap_or(2).max(1)),
            rerank_after: Duration::from_secs(
                self.file
                    .rerank_after_secs
                    .unwrap_or(DEFAULT_RERANK_AFTER_SECS),
            ),
            analyze,
            collect: self.file.collect.clone(),
            notify: self.file.notify.clone(),
        }
    }
}

/// Opens the store at `url` (SQLite, or PostgreSQL for `postgres://`), with the URL,
/// its password left out, in any error.
pub async fn open_store(url: &str) -> anyhow::Result<Store> {
    Store::open(url)
        .await
        .with_context(|| format!("cannot open the store at {}", redact_url(url)))
}

/// A database URL without its password, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// The demo recordings, compiled in so `rootline demo` works from anywhere.
pub const DEMO: &[(&str, &[u8])] = &[
    (
        "demo-security-group.jsonl",
        include_bytes!("../fixtures/demo/security-group.jsonl"),
    ),
    (
        "demo-capacity-503.jsonl",
        include_bytes!("../fixtures/demo/capacity-saturation.jsonl"),
    ),
    (
        "demo-bad-deployment.jsonl",
        include_bytes!("../fixtures/demo/bad-deployment.jsonl"),
    ),
];

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Server options.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: String,
    /// The push endpoints' own listener; none: they share `addr` with the pages.
    pub ingest_addr: Option<String>,
    /// Timeouts and limits.
    pub http: HttpSection,
    /// The `[auth]` section.
    pub auth: Option<crate::web::security::AuthSection>,
    /// How often the analyzer looks for new events.
    pub analyze_every: Duration,
    /// How often, at most, a stale open incident is ranked again.
    pub rerank_after: Duration,
    pub analyze: bool,
    /// The config file's `[collect]` section: collectors run when present; the push
    /// endpoints are on when their secrets are set (here or in the environment).
    pub collect: Option<toml::Table>,
    /// The config file's `[notify]` section: the GitHub issue worker runs when it names
    /// a repository.
    pub notify: Option<toml::Table>,
}

/// The whole HTTP surface: the pages (and their JSON twins) with the push endpoints.
pub fn http_router(
    state: AppState,
    push: Arc<PushConfig>,
    appended: Arc<tokio::sync::Notify>,
) -> axum::Router {
    let ingest = crate::collect::push::routes(PushState {
        store: state.store.clone(),
        push,
        components: state.components.clone(),
        appended,
    });
    crate::web::router(state, ingest)
}

/// Serves until SIGINT/SIGTERM (or `shutdown` turns true). Prints the bound address on
/// stdout once listening (useful with port 0). The background tasks stop after the
/// server, and the store is closed last.
pub async fn serve(
    store: Store,
    opts: ServeOptions,
    shutdown: Option<watch::Receiver<bool>>,
) -> anyhow::Result<()> {
    let auth = crate::web::security::AuthConfig::from_section(opts.auth.as_ref())?;
    let mut state = AppState::new(store.clone()).with_auth(auth.clone());
    let push = Arc::new(PushConfig::from_env(opts.collect.as_ref()));
    push.register(&state.components);
    let listener = tokio::net::TcpListener::bind(&opts.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.addr))?;
    let local = listener.local_addr()?;
    // Mode `none` only on loopback; say at start who may do what.
    let says = auth.check_listener(local)?;
    let ingest_listener = match &opts.ingest_addr {
        Some(a) => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {a} (--ingest-addr): {e}"))?;
            Some(l)
        }
        None => None,
    };
    tracing::info!(addr = %local, "Listening");
    println!("rootline listening on http://{local}");
    state.public_url = public_url(opts.notify.as_ref(), &format!("http://{local}"));
    if let Some(l) = &ingest_listener {
        let a = l.local_addr()?;
        tracing::info!(addr = %a, "Push endpoints listening (ingest listener)");
        println!("rootline ingest listening on http://{a}");
    }
    if auth.mode == crate::web::security::AuthMode::None {
        tracing::warn!("{says}");
    } else {
        tracing::info!("{says}");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let appended = Arc::new(tokio::sync::Notify::new());
    let holder = crate::store::lease_holder();
    if opts.analyze {
        // One analyser (with its projector) among the processes on this store.
        let held = spawn_lease(&state, ANALYSER_LEASE, &holder, &mut tasks, &stop_rx);
        let (st, wake) = (state.clone(), appended.clone());
        let (every, rerank_after) = (opts.analyze_every, opts.rerank_after);
        tasks.push(tokio::spawn(crate::store::while_held(
            held,
            stop_rx.clone(),
            crate::telemetry::standby(&state.components, "analyzer"),
            move |stop| analyzer(st.clone(), every, rerank_after, wake.clone(), stop),
        )));
    }
    tasks.push(tokio::spawn(rate_sampler(state.clone(), stop_rx.clone())));
    if let Some(section) = &opts.collect {
        let cfg = crate::collect::CollectConfig::from_table(Some(section))?;
        match crate::collect::spawn_collectors(
            store.clone(),
            &cfg,
            state.components.clone(),
            stop_rx.clone(),
        )
        .await
        {
            Ok(h) => tasks.extend(h),
            Err(e) => {
                tracing::error!(error = %e, "Collectors not started");
                set_component(&state.components, "collectors", format!("failing: {e}"));
            }
        }
    }
    if let Some(section) = &opts.notify {
        if let Some(job) = outbox_worker(&state, section, opts.analyze)? {
            // One outbox worker among the processes on this store: two could both
            // find no issue for a hypothesis and both open one.
            let held = spawn_lease(&state, OUTBOX_LEASE, &holder, &mut tasks, &stop_rx);
            tasks.push(tokio::spawn(crate::store::while_held(
                held,
                stop_rx.clone(),
                crate::telemetry::standby(&state.components, "github-issues"),
                job,
            )));
        }
    }

    let signal = async move {
        match shutdown {
            Some(mut rx) => {
                tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = rx.wait_for(|v| *v) => {}
                }
            }
            None => shutdown_signal().await,
        }
        tracing::info!("Shutting down");
    };
    let (serve_stop_tx, serve_stop) = watch::channel(false);
    let ingest = crate::collect::push::routes(PushState {
        store: state.store.clone(),
        push: push.clone(),
        components: state.components.clone(),
        appended,
    });
    let mut servers = Vec::new();
    match ingest_listener {
        Some(il) => {
            // The UI listener serves no /ingest/*, the ingest listener nothing else.
            let ui = crate::web::router(state.clone(), axum::Router::new());
            let limits = opts.http.limits(UI_MAX_BODY);
            servers.push(tokio::spawn(crate::web::http::serve(
                listener,
                crate::web::http::limited(ui, limits),
                limits,
                serve_stop.clone(),
            )));
            let only = crate::web::ingest_router(state.clone(), ingest);
            let limits = opts.http.limits(push.max_body());
            servers.push(tokio::spawn(crate::web::http::serve(
                il,
                crate::web::http::limited(only, limits),
                limits,
                serve_stop.clone(),
            )));
        }
        None => {
            let all = crate::web::router(state.clone(), ingest);
            let limits = opts.http.limits(UI_MAX_BODY.max(push.max_body()));
            servers.push(tokio::spawn(crate::web::http::serve(
                listener,
                crate::web::http::limited(all, limits),
                limits,
                serve_stop.clone(),
            )));
        }
    }
    signal.await;
    let _ = serve_stop_tx.send(true);
    for s in servers {
        let _ = s.await;
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    store.close().await;
    Ok(())
}

/// Where people reach the pages (the report's links): `ROOTLINE_PUBLIC_URL`, else
/// `[notify] public_url`, else `fallback`; without a trailing slash.
pub fn public_url(notify: Option<&toml::Table>, fallback: &str) -> String {
    let url = std::env::var("ROOTLINE_PUBLIC_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            notify
                .and_then(|t| t.get("public_url"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| fallback.to_string());
    url.trim().trim_end_matches('/').to_string()
}

/// The GitHub outbox worker, when the `[notify]` section names a repository: a job that
/// runs until its stop receiver says so.
fn outbox_worker(
    state: &AppState,
    section: &toml::Table,
    analyzer_runs: bool,
) -> anyhow::Result<Option<impl Fn(watch::Receiver<bool>) -> BoxedJob + Send + 'static>> {
    let github = crate::notify::GithubOptions::from_toml(section)?;
    if !github.is_configured() {
        return Ok(None);
    }
    let mut config = crate::notify::NotifyConfig::from_env_and_args(&github, false)?;
    // The analyser appends the conclusions when it runs; the worker then only reads them.
    config.analyze = !analyzer_runs;
    let st = state.clone();
    Ok(Some(move |mut stop: watch::Receiver<bool>| -> BoxedJob {
        let (st, config) = (st.clone(), config.clone());
        Box::pin(async move {
            set_component(&st.components, "github-issues", "running".into());
            let stop = async move {
                let _ = stop.wait_for(|v| *v).await;
            };
            if let Err(e) = crate::notify::run_worker(st.store.clone(), config, stop).await {
                tracing::error!(error = %e, "GitHub issue worker stopped");
                set_component(&st.components, "github-issues", format!("failing: {e}"));
            }
        })
    }))
}

/// A job of [`while_held`].
type BoxedJob = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The lease of the analyser (and its projector).
pub const ANALYSER_LEASE: &str = "analyser";
/// The lease of the GitHub outbox worker.
pub const OUTBOX_LEASE: &str = "github-outbox";

/// Starts the task that keeps trying to hold the lease `name` (see
/// [`crate::store::keep_lease`]); returns whether it is held, as it changes.
fn spawn_lease(
    state: &AppState,
    name: &str,
    holder: &str,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    stop: &watch::Receiver<bool>,
) -> watch::Receiver<bool> {
    let (task, held) = crate::store::keep_lease(state.store.clone(), name, holder, stop.clone());
    tasks.push(task);
    held
}

/// Keeps the conclusions current ([`crate::conclusions::Analyser`]): wakes when an
/// upstream event was appended (`wake`, notified by every append path of this server)
/// or every `every` at the latest, then steps until everything appended before the step
/// began is analysed. Bursts coalesce: wake-ups during a step leave one pending wake-up.
async fn analyzer(
    state: AppState,
    every: Duration,
    rerank_after: Duration,
    wake: Arc<tokio::sync::Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut analyser = crate::conclusions::Analyser::default().rerank_after(rerank_after);
    loop {
        let mut ranked = 0usize;
        let mut failed = false;
        loop {
            match analyser.step(&state.store).await {
                Ok(Some(a)) => ranked += a.incidents.len(),
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "Analysis failed");
                    set_component(&state.components, "analyzer", format!("failing: {e}"));
                    failed = true;
                    break;
                }
            }
            if *stop.borrow() {
                return;
            }
        }
        if !failed && ranked > 0 {
            let upto = crate::conclusions::Analyser::analysed_up_to(&state.store)
                .await
                .unwrap_or(0);
            set_component(
                &state.components,
                "analyzer",
                format!("ok: {ranked} incidents ranked, up to event {upto}"),
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = wake.notified() => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}

/// Samples the log's size every 5 s; the rate is over the last minute.
async fn rate_sampler(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
    loop {
        if let Ok(n) = state.store.max_seq().await {
            samples.push_back((Instant::now(), n));
            while samples.len() > 13 {
                samples.pop_front();
            }
            if let (Some(a), Some(b)) = (samples.front(), samples.back()) {
                let dt = b.0.duration_since(a.0).as_secs_f64();
                let rate = if dt > 0.0 {
                    (b.1 - a.1) as f64 / dt
                } else {
                    0.0
                };
                state.ingest_rate.store(rate.to_bits(), Ordering::Relaxed);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}

/// A directory removed with everything in it when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `rootline replay`: the recording ingested into a fresh store (a file in a temporary
/// directory, so memory stays flat whatever its size; kept without a search index, since
/// nothing searches it) with the projector following the appends, as in the server,
/// then the analyser run to the end: the same engine as the server's. Returns what
/// ingest did, the conclusions, and the time ingest took.
pub async fn replay(
    file: &Path,
) -> anyhow::Result<(
    crate::ingest::IngestSummary,
    crate::correlate::Analysis,
    Duration,
)> {
    let tmp = TempDir::new("rootline-replay")?;
    let url = format!("sqlite://{}", tmp.0.join("replay.db").display());
    let started = Instant::now();
    let store = Store::open(&url).await?.without_search_index();
    let summary = crate::project::alongside(
        &store,
        crate::ingest::ingest_files(&store, &[file.to_path_buf()], false),
    )
    .await??;
    let ingest = started.elapsed();
    crate::conclusions::Analyser::default()
        .run_to_end(&store)
        .await?;
    let analysis = crate::conclusions::load_analysis(&store).await?;
    store.close().await;
    Ok((summary, analysis, ingest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_take_flag_then_file_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("rootline.toml");
        std::fs::write(
            &cfg,
            "database = \"sqlite://from-file.db\"\naddr = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let s = Settings::resolve(None, None).unwrap();
        assert_eq!(s.database, DEFAULT_DATABASE);
        assert_eq!(s.serve_options(None, true).addr, DEFAULT_ADDR);
        let s = Settings::resolve(None, Some(&cfg)).unwrap();
        assert_eq!(s.database, "sqlite://from-file.db");
        assert_eq!(s.serve_options(None, true).addr, "127.0.0.1:9");
        assert_eq!(
            s.serve_options(Some("127.0.0.1:7"), true).addr,
            "127.0.0.1:7"
        );
        let s = Settings::resolve(Some("sqlite://flag.db"), Some(&cfg)).unwrap();
        assert_eq!(s.database, "sqlite://flag.db");
        let missing = dir.path().join("nope.toml");
        let err = Settings::resolve(None, Some(&missing)).unwrap_err();
        assert!(format!("{err:#}").contains("nope.toml"), "{err:#}");
    }
}
