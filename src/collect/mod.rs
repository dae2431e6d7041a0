//! Live collectors: CloudTrail, CloudWatch alarms and logs, AWS Config, and the push
//! endpoints for EventBridge and GitHub. Collectors only fetch or receive raw payloads
//! and hand them on in the recording shape (`sink::Delivery`), so live input and replay
//! take one path: the normalizers, then the event log.
//!
//! Each collector polls one source in one account and region. A poll reads a time window
//! that starts `lag` before the previous poll's end (late deliveries are read again and
//! deduplicated by natural id), and commits its checkpoint in the same transaction as the
//! last page of events; a poll interrupted anywhere is simply read again. Requests are
//! rate limited per account and region, transient errors retried with jittered backoff,
//! and each collector runs on its own: one failing source never stops the others.

pub mod alarms;
pub mod awsconfig;
pub mod cloudtrail;
pub mod config;
pub mod detect;
pub mod json;
pub mod logs;
mod paging;
pub mod push;
pub mod retry;
pub mod setup;
pub mod sink;

pub use config::CollectConfig;
pub use retry::{CollectError, RateLimiter, RetryPolicy};
pub use sink::{DeliverReport, Delivery, Sink};

use crate::store::{Checkpoint, EventLog, Store};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::telemetry::Components;

/// `rootline collect` arguments.
#[derive(Debug, clap::Args)]
pub struct CollectArgs {
    /// Poll every configured source once and exit (for cron and tests).
    #[arg(long)]
    pub once: bool,
    /// Also write everything received to this recording (JSON Lines), for replay.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Print the per-source summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// A source of time, replaceable in tests.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// A settable time (epoch ms), for tests.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => sink::now_ms(),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }
}

/// What every poll needs.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub sink: Sink,
    pub retry: RetryPolicy,
    pub stop: watch::Receiver<bool>,
    pub clock: Clock,
}

impl Ctx {
    pub fn new(sink: Sink, retry: RetryPolicy, stop: watch::Receiver<bool>) -> Self {
        Ctx {
            sink,
            retry,
            stop,
            clock: Clock::System,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs one request with this context's retry policy.
    pub async fn call<T, F, Fut>(
        &self,
        limiter: Option<&RateLimiter>,
        op: &str,
        f: F,
    ) -> Result<T, CollectError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CollectError>>,
    {
        retry::call(&self.retry, limiter, &self.stop, op, f).await
    }

    /// Reads a checkpoint's JSON value.
    pub async fn checkpoint(&self, name: &str) -> Result<Option<serde_json::Value>, CollectError> {
        let cp = self
            .sink
            .store
            .checkpoint(name)
            .await
            .map_err(|e| CollectError::transient(format!("store: {e}")))?;
        Ok(cp.and_then(|c| serde_json::from_str(&c.value).ok()))
    }
}

/// A checkpoint with a JSON value.
pub fn checkpoint(name: &str, value: serde_json::Value) -> Checkpoint {
    Checkpoint {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// The time window of a windowed poll: from `lag` before the previous end (or
/// `lookback` before now on the first poll) to now.
pub fn window(prev_end: Option<i64>, now: i64, lag: Duration, lookback: Duration) -> (i64, i64) {
    let start = match prev_end {
        Some(w) => w.min(now) - lag.as_millis() as i64,
        None => now - lookback.as_millis() as i64,
    };
    (start.max(0), now)
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub delivered: DeliverReport,
    pub pages: u64,
    /// Something worth showing in the state (e.g. "no anomaly detectors").
    pub note: Option<String>,
}

/// A boxed future, for object-safe collectors.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One source in one account and region.
pub trait Collector: Send {
    /// The component name (`collect:cloudtrail:prod:eu-west-1`).
    fn name(&self) -> String;
    /// Seconds between polls, when the source wants its own.
    fn every(&self) -> Option<Duration> {
        None
    }
    fn poll<'a>(&'a mut self, ctx: &'a Ctx) -> BoxFuture<'a, Result<PollReport, CollectError>>;
}

/// Polls a collector until shutdown (or once), reporting its state. Poll failures back
/// off with jitter; they never end the loop.
pub async fn run_collector(
    mut c: Box<dyn Collector>,
    ctx: Ctx,
    every: Duration,
    once: bool,
    components: Components,
) -> Result<PollReport, CollectError> {
    let name = c.name();
    let every = c.every().unwrap_or(every);
    let mut stop = ctx.stop.clone();
    let backoff = RetryPolicy {
        max_attempts: u32::MAX,
        base_delay: ctx.retry.base_delay.max(Duration::from_millis(100)),
        max_delay: every.max(Duration::from_secs(300)),
    };
    let mut failures = 0u32;
    loop {
        if ctx.stopping() {
            crate::telemetry::set_component(&components, &name, "stopped".into());
            return Err(CollectError::stopped());
        }
        crate::telemetry::set_component(&components, &name, "running: polling".into());
        match c.poll(&ctx).await {
            Ok(r) => {
                failures = 0;
                let d = r.delivered;
                let mut state = format!(
                    "ok: polled at {}: {} received, {} new",
                    crate::model::fmt_time(sink::now_ms()),
                    d.received,
                    d.appended
                );
                if d.rejected > 0 {
                    state.push_str(&format!(", {} rejected", d.rejected));
                }
                if let Some(n) = &r.note {
                    state.push_str(&format!(" ({n})"));
                }
                tracing::info!(collector = %name, received = d.received, appended = d.appended, duplicates = d.duplicates, rejected = d.rejected, "Polled");
                crate::telemetry::set_component(&components, &name, state);
                if once {
                    return Ok(r);
                }
                if !retry::sleep_or_stop(every, &mut stop).await {
                    crate::telemetry::set_component(&components, &name, "stopped".into());
                    return Err(CollectError::stopped());
                }
            }
            Err(e) if e == CollectError::stopped() => {
                crate::telemetry::set_component(&components, &name, "stopped".into());
                return Err(e);
            }
            Err(e) => {
                tracing::error!(collector = %name, error = %e.message, "Poll failed");
                if once {
                    crate::telemetry::set_component(
                        &components,
                        &name,
                        format!("failing: {}", e.message),
                    );
                    return Err(e);
                }
                let d = backoff.delay(failures);
                failures = failures.saturating_add(1);
                crate::telemetry::set_component(
                    &components,
                    &name,
                    format!(
                        "failing: {} (retrying in {}s)",
                        e.message,
                        d.as_secs().max(1)
                    ),
                );
                if !retry::sleep_or_stop(d, &mut stop).await {
                    crate::telemetry::set_component(&components, &name, "stopped".into());
                    return Err(CollectError::stopped());
                }
            }
        }
    }
}

/// One account and region with its clients.
#[derive(Clone, Debug)]
pub struct Target {
    pub account: String,
    pub region: String,
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub config: aws_sdk_config::Client,
}

impl Target {
    /// Clients for a loaded SDK configuration (endpoints follow the SDK's conventions:
    /// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, profile `endpoint_url`).
    pub fn from_sdk_config(account: &str, region: &str, conf: &aws_config::SdkConfig) -> Self {
        Target {
            account: account.to_string(),
            region: region.to_string(),
            cloudtrail: aws_sdk_cloudtrail::Client::new(conf),
            cloudwatch: aws_sdk_cloudwatch::Client::new(conf),
            logs: aws_sdk_cloudwatchlogs::Client::new(conf),
            config: aws_sdk_config::Client::new(conf),
        }
    }
}

/// Loads the SDK configuration of an account in a region: the standard credential
/// chain, or a profile, optionally assuming a role.
pub async fn sdk_config(
    acct: &config::AccountConfig,
    region: Option<&str>,
) -> aws_config::SdkConfig {
    use aws_config::{BehaviorVersion, Region};
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &acct.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    let Some(role) = &acct.role_arn else {
        return loader.load().await;
    };
    let base = loader.load().await;
    let mut b = aws_config::sts::AssumeRoleProvider::builder(role.clone()).session_name(
        acct.session_name
            .clone()
            .unwrap_or_else(|| "rootline".into()),
    );
    if let Some(x) = &acct.external_id {
        b = b.external_id(x.clone());
    }
    let provider = b.configure(&base).build().await;
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).credentials_provider(provider);
    if let Some(p) = &acct.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    loader.load().await
}

/// Every configured account and region, with clients.
pub async fn targets(cfg: &CollectConfig) -> anyhow::Result<Vec<Target>> {
    let accounts = if cfg.accounts.is_empty() {
        vec![config::AccountConfig {
            name: "default".into(),
            regions: cfg.regions.clone(),
            ..Default::default()
        }]
    } else {
        cfg.accounts.clone()
    };
    let mut out = Vec::new();
    for acct in &accounts {
        if acct.name.trim().is_empty() {
            anyhow::bail!("[[collect.accounts]] needs a name");
        }
        if acct.regions.is_empty() {
            let conf = sdk_config(acct, None).await;
            let Some(region) = conf.region().map(|r| r.to_string()) else {
                anyhow::bail!(
                    "no region for account {:?}: set `regions` in [collect] (or the account), AWS_REGION, or the profile's region",
                    acct.name
                );
            };
            out.push(Target::from_sdk_config(&acct.name, &region, &conf));
        } else {
            for r in &acct.regions {
                let conf = sdk_config(acct, Some(r)).await;
                out.push(Target::from_sdk_config(&acct.name, r, &conf));
            }
        }
    }
    Ok(out)
}

/// The collectors for the configured sources of a target.
pub fn collectors_for(cfg: &CollectConfig, t: &Target) -> Vec<Box<dyn Collector>> {
    let mut v: Vec<Box<dyn Collector>> = Vec::new();
    if cfg.cloudtrail.enabled {
        v.push(Box::new(cloudtrail::CloudTrailCollector::new(
            &t.account,
            &t.region,
            t.cloudtrail.clone(),
            cfg.cloudtrail.clone(),
        )));
    }
    if cfg.alarms.enabled {
        v.push(Box::new(alarms::AlarmHistoryCollector::new(
            &t.account,
            &t.region,
            t.cloudwatch.clone(),
            cfg.alarms.clone(),
        )));
        if cfg.alarms.definitions {
            v.push(Box::new(alarms::AlarmDefinitionsCollector::new(
                &t.account,
                &t.region,
                t.cloudwatch.clone(),
            )));
        }
    }
    for g in &cfg.logs.groups {
        v.push(Box::new(logs::LogGroupCollector::new(
            &t.account,
            &t.region,
            g,
            t.logs.clone(),
            cfg.logs.clone(),
        )));
    }
    if cfg.logs.anomalies {
        v.push(Box::new(logs::AnomaliesCollector::new(
            &t.account,
            &t.region,
            t.logs.clone(),
        )));
    }
    if cfg.config.enabled {
        v.push(Box::new(awsconfig::ConfigCollector::new(
            &t.account,
            &t.region,
            t.config.clone(),
            cfg.config.clone(),
        )));
    }
    v
}

/// Starts every configured collector as a background task; `serve` calls this when the
/// config file has a `[collect]` section. Each task reports to `components`, polls until
/// `shutdown` turns true, then finishes its current batch and ends. `record` overrides
/// the section's `record` file.
pub async fn spawn_collectors(
    store: Store,
    cfg: &CollectConfig,
    components: Components,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let targets = targets(cfg).await?;
    let sink = Sink::new(store.clone(), cfg.record.as_deref());
    let ctx = Ctx::new(sink, cfg.retry_policy(), shutdown.clone());
    let holder = crate::store::lease_holder();
    let mut handles = Vec::new();
    for t in &targets {
        let names: Vec<String> = collectors_for(cfg, t).iter().map(|c| c.name()).collect();
        for (i, name) in names.into_iter().enumerate() {
            // One poller per collector (source, account, region) among the processes
            // on this store: its lease is its name (that of its checkpoint).
            let (keeper, held) =
                crate::store::keep_lease(store.clone(), &name, &holder, shutdown.clone());
            handles.push(keeper);
            let (cfg, t, ctx, components) =
                (cfg.clone(), t.clone(), ctx.clone(), components.clone());
            handles.push(tokio::spawn(crate::store::while_held(
                held,
                shutdown.clone(),
                crate::telemetry::standby(&components, &name),
                move |stop| {
                    // A new collector each time the lease is taken (cheap: clients are
                    // shared; its cursor is a checkpoint in the store).
                    let c = collectors_for(&cfg, &t).into_iter().nth(i);
                    let ctx = Ctx {
                        stop,
                        ..ctx.clone()
                    };
                    let (every, components) = (cfg.poll_interval(), components.clone());
                    async move {
                        if let Some(c) = c {
                            let _ = run_collector(c, ctx, every, false, components).await;
                        }
                    }
                },
            )));
        }
    }
    Ok(handles)
}

/// Polls collectors once each (concurrently), returning each one's result.
pub async fn poll_once(
    collectors: Vec<Box<dyn Collector>>,
    ctx: &Ctx,
    components: &Components,
) -> Vec<(String, Result<PollReport, CollectError>)> {
    let mut set = tokio::task::JoinSet::new();
    for c in collectors {
        let name = c.name();
        let ctx = ctx.clone();
        let comps = components.clone();
        set.spawn(async move {
            (
                name,
                run_collector(c, ctx, Duration::from_secs(1), true, comps).await,
            )
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(x) => out.push(x),
            Err(e) => out.push((
                "?".into(),
                Err(CollectError::permanent(format!(
                    "collector task failed: {e}"
                ))),
            )),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
