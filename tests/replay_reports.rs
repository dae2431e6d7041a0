//! The `replay --json` report is a fixed contract (RECORDINGS.md section 3): on the
//! bundled training scenarios, the binary must print exactly the reports recorded in
//! fixtures/scenarios/train/NAME.report.json, byte for byte. A change to the engine that
//! moves any score, summary or evidence shows up here; refresh the reports on purpose
//! (see fixtures/scenarios/README.md), never to make this test pass.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on the unexpected

use std::path::{Path, PathBuf};
use std::process::Command;

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios/train");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    v.sort();
    v
}

#[test]
fn replay_reports_are_unchanged_on_the_training_scenarios() {
    let files = scenarios();
    assert_eq!(files.len(), 27, "the bundled training set has 27 scenarios");
    let mut differ = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".jsonl.gz", "");
        let expected_path = f.with_file_name(format!("{name}.report.json"));
        let expected = std::fs::read(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let out = Command::new(env!("CARGO_BIN_EXE_rootline"))
            .args(["replay", "--json"])
            .arg(f)
            .output()
            .expect("run rootline replay");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Sanity: a report with at least one incident that has hypotheses.
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        assert!(
            report["incidents"].as_array().is_some_and(|a| a
                .iter()
                .any(|i| i["hypotheses"].as_array().is_some_and(|h| !h.is_empty()))),
            "{name}: no incident with hypotheses"
        );
        if out.stdout != expected {
            differ.push(name);
        }
    }
    assert!(
        differ.is_empty(),
        "reports differ from the recorded ones: {differ:?}"
    );
}
