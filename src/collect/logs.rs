//! CloudWatch Logs: FilterLogEvents on configured log groups (plus rootline's own
//! anomaly detection on them, see `detect`), and ListAnomalies where log anomaly
//! detectors exist.

use super::config::LogsConfig;
use super::detect::{DetectState, Detector, MAX_MINUTES_PER_PASS};
use super::json::Obj;
use super::paging::Paging;
use super::retry::sdk_error;
use super::{
    checkpoint, window, BoxFuture, CollectError, Collector, Ctx, Delivery, PollReport, RateLimiter,
};
use crate::model::Source;
use crate::store::{EventFilter, EventLog};
use aws_sdk_cloudwatchlogs::types::{Anomaly, FilteredLogEvent, LogEvent, PatternToken};
use std::sync::Arc;
use std::time::Duration;

const MINUTE: i64 = 60_000;

/// One FilterLogEvents event as the API returns it, plus `logGroupName`.
pub fn log_event_json(group: &str, e: &FilteredLogEvent) -> String {
    Obj::new()
        .str("logStreamName", e.log_stream_name.as_deref())
        .i64("timestamp", e.timestamp)
        .str("message", e.message.as_deref())
        .i64("ingestionTime", e.ingestion_time)
        .str("eventId", e.event_id.as_deref())
        .str("logGroupName", Some(group))
        .finish()
}

fn sample_json(s: &LogEvent) -> Obj {
    Obj::new()
        .i64("timestamp", s.timestamp)
        .str("message", s.message.as_deref())
}

fn token_json(t: &PatternToken) -> Obj {
    Obj::new()
        .i32("dynamicTokenPosition", Some(t.dynamic_token_position))
        .bool("isDynamic", t.is_dynamic)
        .str("tokenString", t.token_string.as_deref())
        .map("enumerations", t.enumerations.as_ref())
        .str("inferredTokenName", t.inferred_token_name.as_deref())
}

/// One `anomalies[]` element of ListAnomalies as the API returns it.
pub fn anomaly_json(a: &Anomaly) -> String {
    Obj::new()
        .str("anomalyId", Some(&a.anomaly_id))
        .str("patternId", Some(&a.pattern_id))
        .str("anomalyDetectorArn", Some(&a.anomaly_detector_arn))
        .str("patternString", Some(&a.pattern_string))
        .str("patternRegex", a.pattern_regex.as_deref())
        .str("priority", a.priority.as_deref())
        .i64("firstSeen", Some(a.first_seen))
        .i64("lastSeen", Some(a.last_seen))
        .str("description", Some(&a.description))
        .bool("active", Some(a.active))
        .str("state", Some(a.state.as_str()))
        .map("histogram", Some(&a.histogram))
        .objs("logSamples", Some(&a.log_samples[..]), sample_json)
        .objs("patternTokens", Some(&a.pattern_tokens[..]), token_json)
        .strs("logGroupArnList", Some(&a.log_group_arn_list[..]))
        .bool("suppressed", a.suppressed)
        .i64("suppressedDate", Some(a.suppressed_date))
        .i64("suppressedUntil", Some(a.suppressed_until))
        .bool("isPatternLevelSuppression", a.is_pattern_level_suppression)
        .finish()
}

/// FilterLogEvents on one log group, windowed, then detection on its closed minutes.
pub struct LogGroupCollector {
    account: String,
    region: String,
    group: String,
    client: aws_sdk_cloudwatchlogs::Client,
    cfg: LogsConfig,
    limiter: Arc<RateLimiter>,
    detector: Option<Detector>,
    group_arn: Option<String>,
}

impl LogGroupCollector {
    pub fn new(
        account: &str,
        region: &str,
        group: &str,
        client: aws_sdk_cloudwatchlogs::Client,
        cfg: LogsConfig,
    ) -> Self {
        let detector = if cfg.detect.enabled {
            match Detector::new(cfg.detect.clone()) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!(error = %e, "Invalid [collect.logs.detect] error_pattern; detection is off");
                    None
                }
            }
        } else {
            None
        };
        LogGroupCollector {
            account: account.to_string(),
            region: region.to_string(),
            group: group.to_string(),
            limiter: RateLimiter::shared(
                &format!("logs-filter:{account}:{region}"),
                cfg.requests_per_sec,
            ),
            client,
            cfg,
            detector,
            group_arn: None,
        }
    }

    pub fn checkpoint_name(&self) -> String {
        format!(
            "collect:logs:{}:{}:{}",
            self.account, self.region, self.group
        )
    }

    /// The group's ARN (for derived anomalies), from DescribeLogGroups; a failure there
    /// only costs the account id in the ARN.
    async fn group_arn(&mut self, ctx: &Ctx) -> String {
        if let Some(a) = &self.group_arn {
            return a.clone();
        }
        let out = ctx
            .call(None, "DescribeLogGroups", || {
                let req = self
                    .client
                    .describe_log_groups()
                    .log_group_name_prefix(self.group.clone());
                async move {
                    req.send()
                        .await
                        .map_err(|e| sdk_error("DescribeLogGroups", e))
                }
            })
            .await;
        let found = match out {
            Ok(o) => o
                .log_groups()
                .iter()
                .find(|g| g.log_group_name() == Some(self.group.as_str()))
                .and_then(|g| {
                    g.log_group_arn()
                        .map(str::to_string)
                        .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
                }),
            Err(e) => {
                tracing::warn!(group = %self.group, error = %e.message, "DescribeLogGroups failed");
                None
            }
        };
        let arn = found
            .clone()
            .unwrap_or_else(|| format!("arn:aws:logs:{}::log-group:{}", self.region, self.group));
        if found.is_some() {
            self.group_arn = Some(arn.clone());
        }
        arn
    }

    async fn poll_inner(&mut self, ctx: &Ctx) -> Result<PollReport, CollectError> {
        let name = self.checkpoint_name();
        let prev = ctx.checkpoint(&name).await?;
        let prev_end = prev
            .as_ref()
            .and_then(|v| v.get("watermark"))
            .and_then(|v| v.as_i64());
        let mut state: DetectState = prev
            .as_ref()
            .and_then(|v| v.get("detect"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let lag = Duration::from_secs(self.cfg.lag_secs);
        let (start, end) = window(
            prev_end,
            ctx.now_ms(),
            lag,
            Duration::from_secs(self.cfg.lookback_secs),
        );
        let mut report = PollReport::default();
        let mut pages = Paging::new("FilterLogEvents")
            .token_member("nextToken")
            .pages(&ctx.stop, |token| {
                let req = self
                    .client
                    .filter_log_events()
                    .log_group_name(self.group.clone())
                    .start_time(start)
                    .end_time(end)
                    .set_filter_pattern(self.cfg.filter_pattern.clone().filter(|p| !p.is_empty()))
                    .set_limit(self.cfg.page_size)
                    .set_next_token(token);
                ctx.call(Some(&self.limiter), "FilterLogEvents", move || {
                    let req = req.clone();
                    async move {
                        req.send()
                            .await
                            .map_err(|e| sdk_error("FilterLogEvents", e))
                    }
                })
            });
        while let Some((out, _last)) = pages.next_page().await? {
            report.pages += 1;
            let batch: Vec<Delivery> = out
                .events()
                .iter()
                .map(|e| Delivery::new("logs", log_event_json(&self.group, e)))
                .collect();
            report.delivered.add(ctx.sink.deliver(&batch, None).await?);
        }
        // Every page is stored: detect on the minutes now closed, then move the checkpoint
        // in the same transaction as the anomalies found.
        let mut derived = Vec::new();
        if self.detector.is_some() {
            let closed_until = (end - lag.as_millis() as i64).div_euclid(MINUTE) * MINUTE;
            let learning = state.evaluated_through.is_none();
            let mut from = state
                .evaluated_through
                .unwrap_or_else(|| start.div_euclid(MINUTE) * MINUTE);
            from = from.max(closed_until - MAX_MINUTES_PER_PASS * MINUTE);
            if closed_until > from {
                let events = ctx
                    .sink
                    .store
                    .query(&EventFilter {
                        from: Some(from),
                        to: Some(closed_until),
                        sources: vec![Source::Logs],
                        resource: Some(format!("loggroup/{}", self.group)),
                        by_time: true,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| CollectError::transient(format!("store: {e}")))?;
                let arn = self.group_arn(ctx).await;
                if let Some(d) = &self.detector {
                    derived = d.evaluate(
                        &mut state,
                        &events,
                        from,
                        closed_until,
                        learning,
                        &self.group,
                        &arn,
                    );
                }
            }
        }
        let cp = checkpoint(
            &name,
            serde_json::json!({"watermark": end, "detect": state}),
        );
        let d = ctx.sink.deliver(&derived, Some(&cp)).await?;
        if !derived.is_empty() {
            report.note = Some(format!("{} derived anomalies", d.appended));
        }
        report.delivered.add(d);
        Ok(report)
    }
}

impl Collector for LogGroupCollector {
    fn name(&self) -> String {
        self.checkpoint_name()
    }

    fn poll<'a>(&'a mut self, ctx: &'a Ctx) -> BoxFuture<'a, Result<PollReport, CollectError>> {
        Box::pin(self.poll_inner(ctx))
    }
}

/// ListAnomalies for every log anomaly detector of the account and region.
pub struct AnomaliesCollector {
    account: String,
    region: String,
    client: aws_sdk_cloudwatchlogs::Client,
    limiter: Arc<RateLimiter>,
}

impl AnomaliesCollector {
    pub fn new(account: &str, region: &str, client: aws_sdk_cloudwatchlogs::Client) -> Self {
        AnomaliesCollector {
            account: account.to_string(),
            region: region.to_string(),
            limiter: RateLimiter::shared(&format!("logs-anomalies:{account}:{region}"), 5.0),
            client,
        }
    }

    pub fn checkpoint_name(&self) -> String {
        format!("collect:log-anomalies:{}:{}", self.account, self.region)
    }

    async fn detectors(&self, ctx: &Ctx) -> Result<Vec<String>, CollectError> {
        let mut arns = Vec::new();
        let mut pages = Paging::new("ListLogAnomalyDetectors")
            .end_on_repeat()
            .pages(&ctx.stop, |token| {
                let req = self
                    .client
                    .list_log_anomaly_detectors()
                    .set_next_token(token);
                ctx.call(Some(&self.limiter), "ListLogAnomalyDetectors", move || {
                    let req = req.clone();
                    async move {
                        req.send()
                            .await
                            .map_err(|e| sdk_error("ListLogAnomalyDetectors", e))
                    }
                })
            });
        while let Some((out, _last)) = pages.next_page().await? {
            arns.extend(
                out.anomaly_detectors()
                    .iter()
                    .filter_map(|d| d.anomaly_detector_arn().map(str::to_string)),
            );
        }
        Ok(arns)
    }

    async fn poll_inner(&mut self, ctx: &Ctx) -> Result<PollReport, CollectError> {
        let detectors = self.detectors(ctx).await?;
        let cp = checkpoint(
            &self.checkpoint_name(),
            serde_json::json!({"polled_at": ctx.now_ms()}),
        );
        let mut report = PollReport::default();
        if detectors.is_empty() {
            report.note = Some("no log anomaly detectors".into());
            ctx.sink.deliver(&[], Some(&cp)).await?;
            return Ok(report);
        }
        for (i, arn) in detectors.iter().enumerate() {
            let mut pages = Paging::new("ListAnomalies")
                .token_member("nextToken")
                .pages(&ctx.stop, |token| {
                    let req = self
                        .client
                        .list_anomalies()
                        .anomaly_detector_arn(arn.clone())
                        .set_next_token(token);
                    ctx.call(Some(&self.limiter), "ListAnomalies", move || {
                        let req = req.clone();
                        async move { req.send().await.map_err(|e| sdk_error("ListAnomalies", e)) }
                    })
                });
            while let Some((out, last_page)) = pages.next_page().await? {
                report.pages += 1;
                let batch: Vec<Delivery> = out
                    .anomalies()
                    .iter()
                    .map(|a| Delivery::new("logs.anomaly", anomaly_json(a)))
                    .collect();
                // The checkpoint goes with the last page of the last detector.
                let last = last_page && i + 1 == detectors.len();
                report.delivered.add(
                    ctx.sink
                        .deliver(&batch, if last { Some(&cp) } else { None })
                        .await?,
                );
            }
        }
        report.note = Some(format!("{} anomaly detectors", detectors.len()));
        Ok(report)
    }
}

impl Collector for AnomaliesCollector {
    fn name(&self) -> String {
        self.checkpoint_name()
    }

    fn poll<'a>(&'a mut self, ctx: &'a Ctx) -> BoxFuture<'a, Result<PollReport, CollectError>> {
        Box::pin(self.poll_inner(ctx))
    }
}
