//! `rootline bench page`: server-side latency of the incident page (with its picture)
//! over a large store.

use super::gen::{FleetSize, Generator};
use crate::model::{fmt_time, Source};
use crate::normalize::normalize;
use crate::store::{EventFilter, EventLog, Order, Store};
use axum::body::Body;
use axum::http::Request;
use std::path::PathBuf;
use std::time::Instant;
use tower::ServiceExt;

/// Builds (or reuses) a store of `events` events: the demo incidents, their
/// conclusions, and background CloudTrail traffic concentrated around them; then
/// times `requests` incident-page requests through the real router, in process (or,
/// with `search`, search requests: [`search`]).
pub async fn page(
    events: u64,
    requests: usize,
    dir: Option<PathBuf>,
    search: Option<SearchOptions>,
    postgres: Option<&str>,
) -> anyhow::Result<()> {
    let (dir, temp) = match dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("rootline-bench-page-{}", std::process::id())),
            true,
        ),
    };
    let store = build_store(events, &dir, postgres).await?;
    match search {
        Some(opts) => self::search(&store, requests, opts).await?,
        None => incident_pages(&store, requests).await?,
    }
    store.close().await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// The store of `events` events in `dir` (`page-N.db`), or with `postgres` in the
/// database `rootline_bench_page_N` of that server (made when missing), built if it
/// has fewer.
async fn build_store(
    events: u64,
    dir: &std::path::Path,
    postgres: Option<&str>,
) -> anyhow::Result<Store> {
    std::fs::create_dir_all(dir)?;
    let db = dir.join(format!("page-{events}.db"));
    let (url, store) = match postgres {
        Some(admin) => {
            let name = format!("rootline_bench_page_{events}");
            let url = crate::store::database_url(admin, &name);
            // The database of an earlier run, or a new one.
            let store = match Store::open(&url).await {
                Ok(store) => store,
                Err(_) => Store::open(&crate::store::fresh_database(admin, &name).await?).await?,
            };
            (url, store)
        }
        None => {
            let url = format!("sqlite://{}", db.display());
            let store = Store::open(&url).await?;
            (url, store)
        }
    };
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
        // As `rootline ingest` does after a load.
        store.refresh_statistics().await?;
        println!(
            "bench page: built a store of {} events in {:.1} s ({})",
            store.max_seq().await?,
            build.elapsed().as_secs_f64(),
            crate::app::redact_url(&url)
        );
    }
    Ok(store)
}

/// Times `requests` incident pages.
async fn incident_pages(store: &Store, requests: usize) -> anyhow::Result<()> {
    let incidents = crate::web::views::incidents(store).await?;
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
    let mut max_bytes = 0usize;
    let mut marks = 0usize;
    let mut pictured = 0usize;
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
            max_bytes = max_bytes.max(body.len());
            let text = String::from_utf8_lossy(&body);
            let attr = |name: &str| -> usize {
                text.split_once(&format!("{name}=\""))
                    .and_then(|(_, rest)| rest.split('"').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if !text.contains("<figure class=\"picture\"") {
                anyhow::bail!("the incident page has no picture");
            }
            marks += attr("data-marks");
            pictured += attr("data-events");
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
    println!(
        "  picture: mean {} marks for {} events of the window; largest page {} KB (target < 300 KB)",
        marks / times.len().max(1),
        pictured / times.len().max(1),
        max_bytes / 1024
    );
    Ok(())
}

/// `bench page --search`: what to do besides timing searches.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchOptions {
    /// Empty the search index and build it again alone (timed), even if it is current.
    pub reindex: bool,
}

/// What a user types, drawn from the store: event names (whole, and the first word of
/// a CamelCase name as a prefix), resource keys and bare ids (whole, and the start of
/// an id), actors (a user, a role, a service, the account), request ids (whole, and
/// their first group), two words together, and a word in no event.
async fn search_texts(store: &Store) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut texts: Vec<(&'static str, String)> = vec![
        ("name", "DescribeInstances".into()),
        ("name", "RevokeSecurityGroupIngress".into()),
        ("name", "TerminateInstances".into()),
        ("name prefix", "Revoke".into()),
        ("name prefix", "Describe".into()),
        ("name prefix", "Authoriz".into()),
        ("actor", "alice".into()),
        ("actor", "deploy-pipeline".into()),
        ("actor", "ecs.amazonaws.com".into()),
        ("actor", "123456789012".into()),
        ("none", "NoSuchEventName".into()),
    ];
    let max = store.max_seq().await?;
    let mut picked = 0;
    for k in 1..40 {
        if picked == 3 {
            break;
        }
        let evs = store
            .query(&EventFilter {
                after_seq: Some(max * k / 41),
                sources: vec![Source::CloudTrail],
                kinds: vec!["change".into()],
                exclude_read_only: true,
                limit: 200,
                without_payload: true,
                ..Default::default()
            })
            .await?;
        let Some(e) = evs.iter().find(|e| {
            e.resources.iter().any(|r| r.starts_with("sg/"))
                && e.resources.iter().any(|r| r.starts_with("instance/"))
        }) else {
            continue;
        };
        picked += 1;
        let sg = e
            .resources
            .iter()
            .find(|r| r.starts_with("sg/"))
            .cloned()
            .unwrap_or_default();
        let bare = sg.trim_start_matches("sg/").to_string();
        let instance = e
            .resources
            .iter()
            .find(|r| r.starts_with("instance/"))
            .map(|r| r.trim_start_matches("instance/").to_string())
            .unwrap_or_default();
        texts.push(("resource key", sg));
        texts.push(("resource id", bare.clone()));
        texts.push(("id prefix", bare.chars().take(7).collect()));
        texts.push(("resource id", instance));
        texts.push(("request id", e.natural_id.clone()));
        texts.push(("id prefix", e.natural_id.chars().take(8).collect()));
        texts.push(("two words", format!("{} {bare}", e.name)));
    }
    texts.push(("two words", "alice RevokeSecurityGroupIngress".into()));
    Ok(texts)
}

/// `bench page --search`: brings the search index up to date (timing it), then times
/// `requests` searches, cycling through [`search_texts`]: the store's query as the search
/// page asks it (100 newest by event time), and the whole page through the router.
async fn search(store: &Store, requests: usize, opts: SearchOptions) -> anyhow::Result<()> {
    let events = store.max_seq().await?;
    if opts.reindex {
        store.reset_search().await?;
        let start = Instant::now();
        let mut upto = 0;
        loop {
            let batch = store
                .query(&EventFilter {
                    after_seq: Some(upto),
                    limit: crate::project::BATCH,
                    without_payload: true,
                    ..Default::default()
                })
                .await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                break;
            };
            store.apply_search(&batch, last).await?;
            upto = last;
        }
        let s = start.elapsed().as_secs_f64();
        println!(
            "bench page --search: indexed {events} events alone in {s:.1} s ({:.1} us/event, read included)",
            s * 1e6 / events.max(1) as f64
        );
    }
    if store.projection_checkpoint().await? < events {
        let start = Instant::now();
        let r = crate::project::catch_up(store, crate::project::BATCH).await?;
        let s = start.elapsed().as_secs_f64();
        println!(
            "bench page --search: the projector (graph, alarms, search) applied {} events in {s:.1} s ({:.1} us/event)",
            r.events,
            s * 1e6 / r.events.max(1) as f64
        );
    }
    let size = store.search_index_size().await?;
    println!(
        "  index {:.1} MB ({:.0} bytes/event), vocabulary {} words ({:.1} MB)",
        size.index_bytes as f64 / 1e6,
        size.index_bytes as f64 / events.max(1) as f64,
        size.vocab_words,
        size.vocab_bytes as f64 / 1e6
    );
    let texts = search_texts(store).await?;
    let app = crate::app::http_router(
        crate::web::AppState::new(store.clone()),
        std::sync::Arc::new(crate::collect::push::PushConfig::default()),
        Default::default(),
    );
    let mut query_ms = Vec::with_capacity(requests);
    let mut page_ms = Vec::with_capacity(requests);
    let mut per_text: Vec<(Vec<f64>, usize)> = vec![(Vec::new(), 0); texts.len()];
    // One warm-up round, then `requests` timed ones.
    for i in 0..requests + texts.len() {
        let k = i % texts.len();
        let text = &texts[k].1;
        let filter = EventFilter {
            text: Some(text.clone()),
            limit: 100,
            by_time: true,
            order: Order::Desc,
            ..Default::default()
        };
        let start = Instant::now();
        let found = store.query(&filter).await?;
        let q = start.elapsed().as_secs_f64() * 1000.0;
        let uri = format!(
            "/search?q={}",
            form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>()
        );
        let start = Instant::now();
        let resp = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty())?)
            .await?;
        let status = resp.status();
        axum::body::to_bytes(resp.into_body(), usize::MAX).await?;
        let p = start.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() {
            anyhow::bail!("the search page answered {status} for {text:?}");
        }
        if i >= texts.len() {
            query_ms.push(q);
            page_ms.push(p);
            per_text[k].0.push(q);
            per_text[k].1 = found.len();
        }
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "bench page --search: {events} events, {} texts, {} requests (target p99 < 100 ms)",
        texts.len(),
        query_ms.len()
    );
    println!(
        "  query (100 newest by event time)  p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        pct(&mut query_ms, 0.5),
        pct(&mut query_ms, 0.99),
        pct(&mut query_ms, 1.0)
    );
    println!(
        "  page  (/search?q=, whole handler)  p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        pct(&mut page_ms, 0.5),
        pct(&mut page_ms, 0.99),
        pct(&mut page_ms, 1.0)
    );
    for ((kind, text), (mut ms, n)) in texts.iter().zip(per_text) {
        println!(
            "    {kind:<13} {:<48} {n:>4} found   p50 {:>7.2} ms   max {:>7.2} ms",
            format!("{text:?}"),
            pct(&mut ms, 0.5),
            pct(&mut ms, 1.0)
        );
    }
    Ok(())
}
