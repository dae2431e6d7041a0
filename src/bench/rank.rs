//! Benchmarks of the engine (`rootline bench replay`, `rootline bench rank`): generated
//! data, deterministic, figures printed. Never run as timed tests.

use crate::correlate::{analyze, report_json, Config};
use crate::model::{fmt_time, Event, Kind, Source};
use crate::normalize::normalize;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// A small deterministic generator (xorshift64*), so runs are comparable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const ACCT: &str = "123456789012";

fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap_or('0'))
        .collect()
}

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        hex(rng, 8),
        hex(rng, 4),
        hex(rng, 4),
        hex(rng, 4),
        hex(rng, 12)
    )
}

/// One background CloudTrail record: a realistic mix of reads and writes over a fleet
/// of resources, some failing.
pub fn noise_cloudtrail(rng: &mut Rng, t_ms: i64, fleet: usize) -> serde_json::Value {
    const WRITES: &[(&str, &str)] = &[
        ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
        ("ec2.amazonaws.com", "CreateTags"),
        ("ec2.amazonaws.com", "ModifyInstanceAttribute"),
        (
            "lambda.amazonaws.com",
            "UpdateFunctionConfiguration20150331v2",
        ),
        ("ecs.amazonaws.com", "UpdateService"),
        ("autoscaling.amazonaws.com", "UpdateAutoScalingGroup"),
        ("logs.amazonaws.com", "CreateLogStream"),
        ("ssm.amazonaws.com", "PutParameter"),
        ("iam.amazonaws.com", "AttachRolePolicy"),
        ("rds.amazonaws.com", "ModifyDBInstance"),
    ];
    const READS: &[(&str, &str)] = &[
        ("ec2.amazonaws.com", "DescribeInstances"),
        ("ec2.amazonaws.com", "DescribeSecurityGroups"),
        ("sts.amazonaws.com", "AssumeRole"),
        ("s3.amazonaws.com", "ListBuckets"),
        ("cloudtrail.amazonaws.com", "LookupEvents"),
        ("monitoring.amazonaws.com", "DescribeAlarms"),
    ];
    let read = rng.below(100) < 70;
    let (src, name) = if read {
        *rng.pick(READS)
    } else {
        *rng.pick(WRITES)
    };
    let n = rng.below(fleet as u64);
    let req = match name {
        "AuthorizeSecurityGroupIngress" | "DescribeSecurityGroups" | "CreateTags" => {
            serde_json::json!({
            "groupId": format!("sg-{n:017x}"),
            "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 443, "toPort": 443,
                "ipRanges": {"items": [{"cidrIp": format!("10.{}.0.0/16", n % 250)}]}}]}})
        }
        "ModifyInstanceAttribute" | "DescribeInstances" => serde_json::json!({
            "instanceId": format!("i-{n:017x}"), "groups": [format!("sg-{:017x}", (n * 7) % fleet as u64)]}),
        "UpdateFunctionConfiguration20150331v2" => serde_json::json!({
            "functionName": format!("svc-{n}-fn"), "memorySize": 128 + 64 * (n % 8), "timeout": 30}),
        "UpdateService" => {
            serde_json::json!({"cluster": "main", "service": format!("svc-{n}"), "taskDefinition": format!("svc-{n}:{}", rng.below(50))})
        }
        "UpdateAutoScalingGroup" => {
            serde_json::json!({"autoScalingGroupName": format!("svc-{n}-asg"), "desiredCapacity": 2 + n % 4})
        }
        "CreateLogStream" => {
            serde_json::json!({"logGroupName": format!("/ecs/svc-{n}"), "logStreamName": format!("app/{}", hex(rng, 32))})
        }
        "PutParameter" => {
            serde_json::json!({"name": format!("/svc-{n}/flag"), "type": "String", "overwrite": true})
        }
        "AttachRolePolicy" => {
            serde_json::json!({"roleName": format!("svc-{n}-role"), "policyArn": format!("arn:aws:iam::{ACCT}:policy/svc-{n}-access")})
        }
        "ModifyDBInstance" => {
            serde_json::json!({"dBInstanceIdentifier": format!("db-{}", n % 40), "backupRetentionPeriod": 7, "applyImmediately": false})
        }
        "AssumeRole" => {
            serde_json::json!({"roleArn": format!("arn:aws:iam::{ACCT}:role/svc-{n}-role"), "roleSessionName": format!("i-{n:017x}")})
        }
        _ => serde_json::Value::Null,
    };
    let failed = rng.below(100) < 4;
    let mut rec = serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "AssumedRole", "principalId": format!("AROA{}:{}", hex(rng, 16).to_uppercase(), "session"),
            "arn": format!("arn:aws:sts::{ACCT}:assumed-role/{}/{}", if read { "ReadOnly" } else { "Deployer" }, hex(rng, 10)),
            "accountId": ACCT, "accessKeyId": format!("ASIA{}", hex(rng, 16).to_uppercase()),
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{ACCT}:role/Deployer"), "userName": "Deployer"},
                "attributes": {"creationDate": fmt_time(t_ms - 3_600_000), "mfaAuthenticated": "false"}}},
        "eventTime": fmt_time(t_ms - t_ms % 1000).replace(".000Z", "Z"),
        "eventSource": src, "eventName": name, "awsRegion": "us-east-1",
        "sourceIPAddress": format!("203.0.113.{}", rng.below(250)),
        "userAgent": "aws-cli/2.15.30 md/Botocore#1.34.30 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8",
        "requestParameters": req, "responseElements": null,
        "requestID": uuid(rng), "eventID": uuid(rng), "readOnly": read, "eventType": "AwsApiCall",
        "managementEvent": true, "recipientAccountId": ACCT, "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": format!("{}", src.replace(".amazonaws.com", ".us-east-1.amazonaws.com"))}
    });
    if failed {
        rec["errorCode"] = "AccessDenied".into();
        rec["errorMessage"] = "User is not authorized to perform this operation".into();
    }
    rec
}

fn noise_log(rng: &mut Rng, t_ms: i64, fleet: usize) -> serde_json::Value {
    let n = rng.below(fleet as u64 / 10 + 1);
    let level = if rng.below(100) < 5 { "ERROR" } else { "INFO" };
    serde_json::json!({
        "logStreamName": format!("app/{}", hex(rng, 32)), "timestamp": t_ms,
        "message": format!("{} {level} [svc-{n}] handled request {} in {} ms", fmt_time(t_ms), hex(rng, 12), rng.below(400)),
        "ingestionTime": t_ms + 800, "eventId": format!("{}{}", t_ms, rng.below(1 << 40)), "logGroupName": format!("/ecs/svc-{n}")
    })
}

/// Writes a recording of `lines` lines: the bundled demo incidents plus background
/// noise (CloudTrail reads and writes, log lines) spread around each incident.
pub fn write_replay_recording(path: &Path, lines: usize) -> anyhow::Result<usize> {
    let mut rng = Rng::new(0x5eed_2026);
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
    let fleet = 4000;
    let remaining = lines.saturating_sub(written);
    for k in 0..remaining {
        let anchor = anchors
            .get(k % anchors.len().max(1))
            .copied()
            .unwrap_or(1_750_000_000_000);
        let t = anchor - 3 * 3_600_000 + rng.below(4 * 3_600_000) as i64;
        let (source, payload) = if rng.below(100) < 45 {
            ("logs", noise_log(&mut rng, t, fleet))
        } else {
            ("cloudtrail", noise_cloudtrail(&mut rng, t, fleet))
        };
        let line = serde_json::json!({"source": source, "recorded_at": fmt_time(t + 300_000), "payload": payload});
        serde_json::to_writer(&mut f, &line)?;
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
    let store = crate::store::SqliteStore::open("sqlite::memory:").await?;
    let summary = crate::ingest::ingest_files(&store, std::slice::from_ref(&path), false).await?;
    let t_ingest = start.elapsed();
    let analysis = crate::conclusions::analyze_store(&store).await?;
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
    let mut rng = Rng::new(0xbeef);
    let t0: i64 = 1_750_000_000_000;
    let mut raws: Vec<(Source, String)> = Vec::new();
    let def = serde_json::json!({"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":format!("arn:aws:sts::{ACCT}:assumed-role/Terraform/tf")},
        "eventTime": fmt_time(t0 - 30 * 86_400_000), "eventSource":"monitoring.amazonaws.com","eventName":"PutMetricAlarm",
        "requestParameters":{"alarmName":"web-5xx","metricName":"HTTPCode_Target_5XX_Count","namespace":"AWS/ApplicationELB",
            "dimensions":[{"name":"LoadBalancer","value":"app/web/50dc6c495c0c9188"}]},
        "eventID":"def","readOnly":false,"eventType":"AwsApiCall"});
    raws.push((Source::CloudTrail, def.to_string()));
    // Topology: the load balancer sits behind 50 security groups of a 4000-resource fleet.
    for k in 0..50u64 {
        let link = serde_json::json!({"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","arn":format!("arn:aws:sts::{ACCT}:assumed-role/Terraform/tf")},
            "eventTime": fmt_time(t0 - 20 * 86_400_000 + k as i64 * 1000), "eventSource":"elasticloadbalancing.amazonaws.com","eventName":"SetSecurityGroups",
            "requestParameters":{"loadBalancerArn":format!("arn:aws:elasticloadbalancing:us-east-1:{ACCT}:loadbalancer/app/web/50dc6c495c0c9188"),"securityGroups":[format!("sg-{:017x}", k * 80)]},
            "eventID":format!("link-{k}"),"readOnly":false,"eventType":"AwsApiCall"});
        raws.push((Source::CloudTrail, link.to_string()));
    }
    for _ in 0..candidates {
        let t = t0 - rng.below(2 * 3_600_000) as i64;
        let mut rec = noise_cloudtrail(&mut rng, t, 4000);
        rec["readOnly"] = false.into();
        if let Some(m) = rec.as_object_mut() {
            m.remove("errorCode");
        }
        raws.push((Source::CloudTrail, rec.to_string()));
    }
    let hd = serde_json::json!({"version":"1.0","oldState":{"stateValue":"OK"},"newState":{"stateValue":"ALARM","stateReason":"Threshold Crossed"}});
    let ah = serde_json::json!({"AlarmName":"web-5xx","Timestamp":fmt_time(t0),"HistoryItemType":"StateUpdate","HistoryData":hd.to_string()});
    raws.push((Source::AlarmHistory, ah.to_string()));
    raws.iter()
        .enumerate()
        .filter_map(|(i, (s, raw))| {
            let ev = normalize(*s, raw, None).ok()?;
            Some(Event {
                seq: i as i64 + 1,
                source: ev.source,
                natural_id: ev.natural_id,
                event_time: ev.event_time,
                received_at: ev.received_at,
                kind: ev.kind,
                name: ev.name,
                actor: ev.actor,
                read_only: ev.read_only,
                error_code: ev.error_code,
                resources: ev.resources,
                payload: ev.payload,
            })
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
