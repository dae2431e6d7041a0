//! `rootline bench page`: server-side latency of the incident page over a large store.

use super::gen::{FleetSize, Generator};
use crate::model::{fmt_time, Source};
use crate::normalize::normalize;
use crate::store::{EventLog, SqliteStore};
use axum::body::Body;
use axum::http::Request;
use std::path::PathBuf;
use std::time::Instant;
use tower::ServiceExt;

/// Builds (or reuses) a store of `events` events: the demo incidents, their
/// conclusions, and background CloudTrail traffic concentrated around them; then
/// times `requests` incident-page requests through the real router, in process.
pub async fn page(events: u64, requests: usize, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (dir, temp) = match dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("rootline-bench-page-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)?;
    let db = dir.join(format!("page-{events}.db"));
    let url = format!("sqlite://{}", db.display());
    let store = SqliteStore::open(&url).await?;
    let have = store.max_seq().await?;
    if have < events as i64 {
        let build = Instant::now();
        let mut files = Vec::new();
        for (name, bytes) in crate::app::DEMO {
            let p = dir.join(name);
            std::fs::write(&p, bytes)?;
            files.push(p);
        }
        crate::ingest::ingest_files(&store, &files, false).await?;
        crate::conclusions::Analyser::default()
            .run_to_end(&store)
            .await?;
        let anchors: Vec<i64> = crate::web::views::incidents(&store)
            .await?
            .iter()
            .map(|i| i.row.opened_ms)
            .collect();
        let mut gen = Generator::with_fleet(
            7,
            FleetSize {
                security_groups: 20_000,
                instances: 20_000,
            },
        );
        let mut raw = String::new();
        let mut batch = Vec::with_capacity(5000);
        let mut n = store.max_seq().await?;
        while n < events as i64 {
            let anchor = anchors
                .get(gen.rng().below(anchors.len().max(1) as u64) as usize)
                .copied()
                .unwrap_or(1_750_000_000_000);
            let t = anchor - 10 * 86_400_000 + gen.rng().below(20 * 86_400_000) as i64;
            raw.clear();
            gen.record(t, &mut raw);
            if let Ok(ev) = normalize(Source::CloudTrail, &raw, Some(t + 300_000)) {
                batch.push(ev);
            }
            if batch.len() == 5000 {
                n += store.append(&batch, None).await?.appended as i64;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            store.append(&batch, None).await?;
        }
        println!(
            "bench page: built a store of {} events in {:.1} s ({})",
            store.max_seq().await?,
            build.elapsed().as_secs_f64(),
            db.display()
        );
    }
    let incidents = crate::web::views::incidents(&store).await?;
    if incidents.is_empty() {
        anyhow::bail!("the store has no incidents");
    }
    let app = crate::app::http_router(
        crate::web::AppState::new(store.clone()),
        std::sync::Arc::new(crate::collect::push::PushConfig::default()),
        Default::default(),
    );
    let mut times = Vec::with_capacity(requests);
    let mut bytes = 0usize;
    let mut rows = 0usize;
    for i in 0..requests + 10 {
        let inc = &incidents[i % incidents.len()];
        let req = Request::get(format!("/incidents/{}", inc.row.id)).body(Body::empty())?;
        let start = Instant::now();
        let resp = app.clone().oneshot(req).await?;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
        let el = start.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() {
            anyhow::bail!("incident page answered {status}");
        }
        if i >= 10 {
            times.push(el);
            bytes += body.len();
            rows += body.windows(4).filter(|w| w == b"<tr ").count();
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "bench page: {} events, {} incidents, 1-hour+ window (default: -60/+30 min), {} requests",
        store.max_seq().await?,
        incidents.len(),
        times.len()
    );
    println!(
        "  p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms   (target p99 < 100 ms)",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "  mean page {} KB, {} timeline rows; first incident window {}",
        bytes / times.len().max(1) / 1024,
        rows / times.len().max(1),
        fmt_time(incidents[0].row.opened_ms)
    );
    store.close().await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
