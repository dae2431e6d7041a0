//! `rootline bench live` (feature `bench`): the estate is deterministic, and a tiny run
//! completes end to end against the real binary, each pushed alarm getting an incident
//! with hypotheses. Timings are printed by the benchmark, never asserted here.
#![cfg(feature = "bench")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rootline::bench::estate::{Estate, PENDING};

/// The first `k` events of the estate (`events`, `seed`), as (source, payload).
fn first(events: u64, seed: u64, k: usize) -> Vec<(String, String)> {
    let mut e = Estate::new(events, seed).unwrap();
    let mut buf = String::new();
    (0..k)
        .map(|_| {
            let (source, _, _) = e.next_raw(&mut buf).unwrap();
            (source.as_str().to_string(), buf.clone())
        })
        .collect()
}

#[test]
fn the_estate_is_a_function_of_its_size_and_seed() {
    let a = first(50_000, 7, 3_000);
    assert_eq!(
        a,
        first(50_000, 7, 3_000),
        "same seed and size, same events"
    );
    let b = first(50_000, 8, 3_000);
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    // Only the first setup calls' shapes are seed-free; nearly all events differ.
    assert!(same < 30, "{same} of 3000 events equal under another seed");
    let e = Estate::new(50_000, 7).unwrap();
    assert_eq!(e.pending().len(), PENDING);
    let f = Estate::new(50_000, 7).unwrap();
    let ids =
        |e: &Estate| -> Vec<String> { e.planted().iter().map(|p| p.cause_id.clone()).collect() };
    assert_eq!(ids(&e), ids(&f));
}

#[test]
fn a_tiny_live_run_gets_every_pushed_alarm_an_incident_with_hypotheses() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rootline"))
            .args(["bench", "live", "--events", "20000", "--pushes", "3"])
            .args(["--page-requests", "10", "--search-requests", "5", "--json"])
            // A debug build beside other tests: each analysis can take many seconds.
            .args(["--timeout-secs", "300"])
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (report, stderr)
    };
    let (report, stderr) = run();
    assert_eq!(report["events"], 20_000);
    assert!(report["build_seconds"].is_number(), "{report}");
    let pushes = report["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 3, "{report}");
    for p in pushes {
        assert!(
            p["seconds"].is_number(),
            "no incident in time: {p}\n{stderr}"
        );
        assert!(p["hypotheses"].as_u64().unwrap() > 0, "{p}");
        assert!(p["incident"].as_str().unwrap().starts_with("inc-"), "{p}");
    }
    assert_eq!(report["timeouts"], 0);
    assert!(report["server_peak_mb"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["store_bytes"].as_u64().unwrap() > 1_000_000,
        "{report}"
    );
    let targets = report["targets"].as_array().unwrap();
    assert!(targets.len() >= 8, "{report}");

    // A second run reuses the store, and its pushes open new incidents.
    let (again, stderr) = run();
    assert!(again["build_seconds"].is_null(), "{again}");
    let first_ids: Vec<&str> = pushes
        .iter()
        .map(|p| p["incident"].as_str().unwrap())
        .collect();
    for p in again["pushes"].as_array().unwrap() {
        assert!(
            p["seconds"].is_number(),
            "no incident in time: {p}\n{stderr}"
        );
        assert!(!first_ids.contains(&p["incident"].as_str().unwrap()), "{p}");
    }
}

#[tokio::test]
async fn the_same_size_and_seed_build_the_same_store() {
    use rootline::store::{EventFilter, EventLog, Store};
    let dir = tempfile::tempdir().unwrap();
    let mut stores = Vec::new();
    for name in ["a.db", "b.db"] {
        let db = dir.path().join(name);
        let (_, last) = rootline::bench::live::build_store(&db, 20_000, 9)
            .await
            .unwrap();
        let store = Store::open(&db.display().to_string()).await.unwrap();
        let events = store.query(&EventFilter::default()).await.unwrap();
        store.close().await;
        assert_eq!(events.len(), 20_000);
        assert_eq!(events.iter().map(|e| e.event_time).max(), Some(last));
        stores.push(
            events
                .into_iter()
                .map(|e| (e.seq, e.source, e.natural_id, e.payload))
                .collect::<Vec<_>>(),
        );
    }
    assert!(stores[0] == stores[1], "two builds differ");
}
