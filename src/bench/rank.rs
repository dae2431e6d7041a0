//! Benchmarks of the engine (`rootline bench replay`, `rootline bench rank`): generated
//! data, deterministic, figures printed. Never run as timed tests.

use super::gen::{hex, FleetSize, Generator, Rng, ACCOUNT};
use crate::correlate::{analyze, report_json, Config};
use crate::model::{fmt_time, Event, Kind, Source};
use crate::normalize::normalize;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// A fleet of 4000 security groups and 4000 instances, as in a large account.
const FLEET: FleetSize = FleetSize {
    security_groups: 4000,
    instances: 4000,
};

/// One background log line (an application log event, 5% at ERROR).
fn noise_log(rng: &mut Rng, t_ms: i64) -> serde_json::Value {
    // The log groups of 401 services.
    let n = rng.below(401);
    let level = if rng.below(100) < 5 { "ERROR" } else { "INFO" };
    let mut stream = String::from("app/");
    hex(rng, &mut stream, 32);
    let mut request = String::new();
    hex(rng, &mut request, 12);
    serde_json::json!({
        "logStreamName": stream, "timestamp": t_ms,
        "message": format!("{} {level} [svc-{n}] handled request {request} in {} ms", fmt_time(t_ms), rng.below(400)),
        "ingestionTime": t_ms + 800, "eventId": format!("{}{}", t_ms, rng.below(1 << 40)), "logGroupName": format!("/ecs/svc-{n}")
    })
}

/// Writes a recording of `lines` lines: the bundled demo incidents plus background
/// noise (CloudTrail reads and writes, log lines) spread around each incident.
pub fn write_replay_recording(path: &Path, lines: usize) -> anyhow::Result<usize> {
    let mut gen = Generator::with_fleet(0x5eed_2026, FLEET);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut written = 0usize;
    let mut anchors = Vec::new();
    for (_, bytes) in crate::app::DEMO {
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            f.write_all(line)?;
            f.write_all(b"\n")?;
            written += 1;
            if line
                .windows(34)
                .any(|w| w == b"\"source\":\"cloudwatch.alarm_history")
            {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
                    if let Some(t) = v
                        .pointer("/payload/Timestamp")
                        .and_then(|t| t.as_str())
                        .and_then(crate::model::parse_time)
                    {
                        anchors.push(t);
                    }
                }
            }
        }
    }
    anchors.sort();
    anchors.dedup();
    let mut ct = String::new();
    let remaining = lines.saturating_sub(written);
    for k in 0..remaining {
        let anchor = anchors
            .get(k % anchors.len().max(1))
            .copied()
            .unwrap_or(1_750_000_000_000);
        let t = anchor - 3 * 3_600_000 + gen.rng().below(4 * 3_600_000) as i64;
        if gen.rng().below(100) < 45 {
            let payload = noise_log(gen.rng(), t);
            let line = serde_json::json!({"source": "logs", "recorded_at": fmt_time(t + 300_000), "payload": payload});
            serde_json::to_writer(&mut f, &line)?;
        } else {
            ct.clear();
            gen.line_at(t, t + 300_000, &mut ct);
            f.write_all(ct.as_bytes())?;
        }
        f.write_all(b"\n")?;
        written += 1;
    }
    f.flush()?;
    Ok(written)
}

/// `rootline bench replay`: replays a generated recording the way `replay --json` does
/// and prints the time.
pub async fn replay(lines: usize, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("replay-{lines}.jsonl"));
    let n = write_replay_recording(&path, lines)?;
    let start = Instant::now();
    let (summary, analysis, t_ingest) = crate::app::replay(&path).await?;
    let report = report_json(&analysis);
    let total = start.elapsed();
    println!(
        "bench replay: {n} lines ({} events stored, {} rejected), {} incidents, report {} bytes",
        summary.appended,
        summary.rejected_total(),
        analysis.incidents.len(),
        report.len()
    );
    println!("  ingest        {:>8.3} s", t_ingest.as_secs_f64());
    println!(
        "  analyse+report{:>8.3} s",
        (total - t_ingest).as_secs_f64()
    );
    println!(
        "  total         {:>8.3} s   (target < 5 s for 100,000 lines)",
        total.as_secs_f64()
    );
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Builds one incident with `candidates` candidate changes in its look-back window.
pub fn rank_corpus(candidates: usize) -> Vec<Event> {
    // Candidates are writes that succeeded: what the engine ranks.
    let mut gen = Generator::with_fleet(0xbeef, FLEET);
    gen.read_per_mille = 0;
    gen.error_per_mille = 0;
    let t0: i64 = 1_750_000_000_000;
    let mut raws: Vec<(Source, String)> = Vec::new();
    let def = serde_json::json!({"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":format!("arn:aws:sts::{ACCOUNT}:assumed-role/Terraform/tf")},
        "eventTime": fmt_time(t0 - 30 * 86_400_000), "eventSource":"monitoring.amazonaws.com","eventName":"PutMetricAlarm",
        "requestParameters":{"alarmName":"edge-gw-5xx","metricName":"HTTPCode_Target_5XX_Count","namespace":"AWS/ApplicationELB",
            "dimensions":[{"name":"LoadBalancer","value":"app/edge-gw/50dc6c495c0c9188"}]},
        "eventID":"def","readOnly":false,"eventType":"AwsApiCall"});
    raws.push((Source::CloudTrail, def.to_string()));
    // Topology: the incident's load balancer (named unlike any the generator writes, so
    // candidates relate to it only through its security groups, as in a real fleet)
    // sits behind 50 of the fleet's 4000 security groups.
    let linked: Vec<String> = gen
        .security_groups()
        .iter()
        .step_by(80)
        .take(50)
        .cloned()
        .collect();
    for (k, sg) in linked.iter().enumerate() {
        let link = serde_json::json!({"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":format!("arn:aws:sts::{ACCOUNT}:assumed-role/Terraform/tf")},
            "eventTime": fmt_time(t0 - 20 * 86_400_000 + k as i64 * 1000), "eventSource":"elasticloadbalancing.amazonaws.com","eventName":"SetSecurityGroups",
            "requestParameters":{"loadBalancerArn":format!("arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/edge-gw/50dc6c495c0c9188"),"securityGroups":[sg]},
            "eventID":format!("link-{k}"),"readOnly":false,"eventType":"AwsApiCall"});
        raws.push((Source::CloudTrail, link.to_string()));
    }
    for _ in 0..candidates {
        let t = t0 - gen.rng().below(2 * 3_600_000) as i64;
        let mut rec = String::new();
        gen.record(t, &mut rec);
        raws.push((Source::CloudTrail, rec));
    }
    let hd = serde_json::json!({"version":"1.0","oldState":{"stateValue":"OK"},"newState":{"stateValue":"ALARM","stateReason":"Threshold Crossed"}});
    let ah = serde_json::json!({"AlarmName":"edge-gw-5xx","Timestamp":fmt_time(t0),"HistoryItemType":"StateUpdate","HistoryData":hd.to_string()});
    raws.push((Source::AlarmHistory, ah.to_string()));
    raws.iter()
        .enumerate()
        .filter_map(|(i, (s, raw))| {
            let ev = normalize(*s, raw, None).ok()?;
            Some(ev.stored_as(i as i64 + 1))
        })
        .collect()
}

/// `rootline bench rank`: analyses one incident with `candidates` candidate changes.
pub fn rank(candidates: usize, runs: usize) -> anyhow::Result<()> {
    let events = rank_corpus(candidates);
    let in_window = events
        .iter()
        .filter(|e| matches!(e.kind, Kind::Change) && !e.read_only && e.error_code.is_none())
        .count();
    let mut times = Vec::new();
    let mut hyps = 0;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let a = analyze(&events, &Config::default());
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        hyps = a.incidents.first().map(|i| i.hypotheses.len()).unwrap_or(0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "bench rank: 1 incident, {in_window} candidate changes, {} runs, {hyps} hypotheses kept",
        times.len()
    );
    println!(
        "  median {:>8.1} ms   max {:>8.1} ms   (target < 200 ms)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rank_corpus_is_one_incident_over_successful_writes() {
        let events = rank_corpus(300);
        let changes = events
            .iter()
            .filter(|e| matches!(e.kind, Kind::Change) && !e.read_only && e.error_code.is_none())
            .count();
        // The candidates, the 50 topology links and the alarm's definition.
        assert_eq!(changes, 300 + 51);
        let a = analyze(&events, &Config::default());
        assert_eq!(a.incidents.len(), 1);
        assert!(!a.incidents[0].hypotheses.is_empty());
    }

    #[test]
    fn every_replay_line_is_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("replay.jsonl");
        let n = write_replay_recording(&path, 3000).expect("written");
        assert_eq!(n, 3000);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 3000);
        for line in text.lines() {
            if let Err((kind, reason)) = crate::ingest::recording_line(line.as_bytes()) {
                panic!("{kind}: {reason}\n{line}");
            }
        }
    }
}
