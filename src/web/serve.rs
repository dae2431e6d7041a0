//! Running the server: bind, background tasks (the analyzer that appends the engine's
//! conclusions as events arrive, the ingest-rate sampler), graceful shutdown.

use super::{router, AppState};
use crate::store::{EventLog, SqliteStore};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Server options.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: String,
    /// How often the analyzer looks for new events.
    pub analyze_every: Duration,
    pub analyze: bool,
    /// The config file's `[collect]` section: collectors run when present; the push
    /// endpoints are on when their secrets are set (here or in the environment).
    pub collect: Option<toml::Table>,
    /// The config file's `[notify]` section: the GitHub issue worker runs when it names
    /// a repository.
    pub notify: Option<toml::Table>,
}

/// Serves until SIGINT/SIGTERM (or `shutdown` turns true). Prints the bound address on
/// stdout once listening (useful with port 0).
pub async fn serve(
    store: SqliteStore,
    opts: ServeOptions,
    shutdown: Option<watch::Receiver<bool>>,
) -> anyhow::Result<()> {
    let mut state = AppState::new(store.clone());
    state.push = std::sync::Arc::new(crate::collect::push::PushConfig::from_env(
        opts.collect.as_ref(),
    ));
    state.push.register(&state.components);
    let listener = tokio::net::TcpListener::bind(&opts.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.addr))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "Listening");
    println!("rootline listening on http://{local}");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    if opts.analyze {
        tasks.push(tokio::spawn(analyzer(
            state.clone(),
            opts.analyze_every,
            stop_rx.clone(),
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
                set_component(&state, "collectors", format!("failing: {e}"));
            }
        }
    }
    if let Some(section) = &opts.notify {
        let github = crate::notify::config::GithubOptions::from_toml(section)?;
        if github.is_configured() {
            let mut config =
                crate::notify::config::NotifyConfig::from_env_and_args(&github, false)?;
            // The analyser above appends the conclusions; the worker reads them.
            config.analyze = !opts.analyze;
            let mut rx = stop_rx.clone();
            let st = state.clone();
            set_component(&state, "github-issues", "running".into());
            tasks.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|v| *v).await;
                };
                if let Err(e) =
                    crate::notify::worker::run_worker(st.store.clone(), config, stop).await
                {
                    tracing::error!(error = %e, "GitHub issue worker stopped");
                    set_component(&st, "github-issues", format!("failing: {e}"));
                }
            }));
        }
    }

    let external = shutdown;
    let signal = async move {
        match external {
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
    axum::serve(listener, router(state))
        .with_graceful_shutdown(signal)
        .await?;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    store.close().await;
    Ok(())
}

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

fn set_component(state: &AppState, name: &str, value: String) {
    if let Ok(mut c) = state.components.lock() {
        c.insert(name.to_string(), value);
    }
}

/// Re-analyses the log whenever it grew, appending the engine's conclusions.
async fn analyzer(state: AppState, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut seen = -1i64;
    loop {
        match state.store.max_seq().await {
            Ok(max) if max != seen => match crate::cli::analyze_store(&state.store).await {
                Ok(a) => {
                    seen = state.store.max_seq().await.unwrap_or(max);
                    set_component(
                        &state,
                        "analyzer",
                        format!("ok: {} incidents at event {seen}", a.incidents.len()),
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "Analysis failed");
                    set_component(&state, "analyzer", format!("failing: {e}"));
                }
            },
            Ok(_) => {}
            Err(e) => set_component(&state, "analyzer", format!("failing: {e}")),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
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
