//! CloudWatch alarms: DescribeAlarmHistory (state updates, and configuration updates,
//! whose HistoryData carries the alarm's metric and dimensions) and DescribeAlarms (the
//! current definitions).
//!
//! The SDK's output types are not serde types: payloads are written with the API's
//! member names and order, timestamps as the API prints them ("2025-05-17T02:28:15.450Z"),
//! and `HistoryData` left a JSON string, exactly as DescribeAlarmHistory returns it.

use super::config::AlarmsConfig;
use super::json::Obj;
use super::paging::Paging;
use super::retry::sdk_error;
use super::{
    checkpoint, window, BoxFuture, CollectError, Collector, Ctx, Delivery, PollReport, RateLimiter,
};
use aws_sdk_cloudwatch::types::{
    AlarmHistoryItem, AlarmType, CompositeAlarm, Dimension, HistoryItemType, MetricAlarm,
    MetricDataQuery, ScanBy,
};
use std::sync::Arc;
use std::time::Duration;

/// The recording source for DescribeAlarms results (one `MetricAlarms[]` or
/// `CompositeAlarms[]` element), rootline's extension of the recording format.
pub const ALARM_DEFINITION_SOURCE: &str = "cloudwatch.alarm";

/// One `AlarmHistoryItems[]` element as the API returns it.
pub fn history_item_json(i: &AlarmHistoryItem) -> String {
    Obj::new()
        .str("AlarmName", i.alarm_name.as_deref())
        .str("AlarmContributorId", i.alarm_contributor_id.as_deref())
        .str("AlarmType", i.alarm_type.as_ref().map(|t| t.as_str()))
        .time("Timestamp", i.timestamp.as_ref())
        .str(
            "HistoryItemType",
            i.history_item_type.as_ref().map(|t| t.as_str()),
        )
        .str("HistorySummary", i.history_summary.as_deref())
        .str("HistoryData", i.history_data.as_deref())
        .finish()
}

fn dimension_json(d: &Dimension) -> Obj {
    Obj::new()
        .str("Name", d.name.as_deref())
        .str("Value", d.value.as_deref())
}

fn query_json(q: &MetricDataQuery) -> Obj {
    let stat = q.metric_stat.as_ref().map(|s| {
        let metric = s.metric.as_ref().map(|m| {
            Obj::new()
                .str("Namespace", m.namespace.as_deref())
                .str("MetricName", m.metric_name.as_deref())
                .objs("Dimensions", m.dimensions.as_deref(), dimension_json)
                .finish()
        });
        let mut o = Obj::new();
        if let Some(m) = metric {
            o = o.raw("Metric", &m);
        }
        o.i32("Period", s.period)
            .str("Stat", s.stat.as_deref())
            .str("Unit", s.unit.as_ref().map(|u| u.as_str()))
            .finish()
    });
    let mut o = Obj::new().str("Id", q.id.as_deref());
    if let Some(s) = stat {
        o = o.raw("MetricStat", &s);
    }
    o.str("Expression", q.expression.as_deref())
        .str("Label", q.label.as_deref())
        .bool("ReturnData", q.return_data)
        .i32("Period", q.period)
        .str("AccountId", q.account_id.as_deref())
}

/// One `MetricAlarms[]` element as DescribeAlarms returns it.
pub fn metric_alarm_json(a: &MetricAlarm) -> String {
    Obj::new()
        .str("AlarmName", a.alarm_name.as_deref())
        .str("AlarmArn", a.alarm_arn.as_deref())
        .str("AlarmDescription", a.alarm_description.as_deref())
        .time(
            "AlarmConfigurationUpdatedTimestamp",
            a.alarm_configuration_updated_timestamp.as_ref(),
        )
        .bool("ActionsEnabled", a.actions_enabled)
        .strs("OKActions", a.ok_actions.as_deref())
        .strs("AlarmActions", a.alarm_actions.as_deref())
        .strs(
            "InsufficientDataActions",
            a.insufficient_data_actions.as_deref(),
        )
        .str("StateValue", a.state_value.as_ref().map(|s| s.as_str()))
        .str("StateReason", a.state_reason.as_deref())
        .str("StateReasonData", a.state_reason_data.as_deref())
        .time("StateUpdatedTimestamp", a.state_updated_timestamp.as_ref())
        .str("MetricName", a.metric_name.as_deref())
        .str("Namespace", a.namespace.as_deref())
        .str("Statistic", a.statistic.as_ref().map(|s| s.as_str()))
        .str("ExtendedStatistic", a.extended_statistic.as_deref())
        .objs("Dimensions", a.dimensions.as_deref(), dimension_json)
        .i32("Period", a.period)
        .str("Unit", a.unit.as_ref().map(|u| u.as_str()))
        .i32("EvaluationPeriods", a.evaluation_periods)
        .i32("DatapointsToAlarm", a.datapoints_to_alarm)
        .f64("Threshold", a.threshold)
        .str(
            "ComparisonOperator",
            a.comparison_operator.as_ref().map(|c| c.as_str()),
        )
        .str("TreatMissingData", a.treat_missing_data.as_deref())
        .str(
            "EvaluateLowSampleCountPercentile",
            a.evaluate_low_sample_count_percentile.as_deref(),
        )
        .objs("Metrics", a.metrics.as_deref(), query_json)
        .str("ThresholdMetricId", a.threshold_metric_id.as_deref())
        .str(
            "EvaluationState",
            a.evaluation_state.as_ref().map(|s| s.as_str()),
        )
        .time(
            "StateTransitionedTimestamp",
            a.state_transitioned_timestamp.as_ref(),
        )
        .finish()
}

/// One `CompositeAlarms[]` element as DescribeAlarms returns it.
pub fn composite_alarm_json(a: &CompositeAlarm) -> String {
    Obj::new()
        .bool("ActionsEnabled", a.actions_enabled)
        .strs("AlarmActions", a.alarm_actions.as_deref())
        .str("AlarmArn", a.alarm_arn.as_deref())
        .time(
            "AlarmConfigurationUpdatedTimestamp",
            a.alarm_configuration_updated_timestamp.as_ref(),
        )
        .str("AlarmDescription", a.alarm_description.as_deref())
        .str("AlarmName", a.alarm_name.as_deref())
        .str("AlarmRule", a.alarm_rule.as_deref())
        .strs(
            "InsufficientDataActions",
            a.insufficient_data_actions.as_deref(),
        )
        .strs("OKActions", a.ok_actions.as_deref())
        .str("StateReason", a.state_reason.as_deref())
        .str("StateReasonData", a.state_reason_data.as_deref())
        .time("StateUpdatedTimestamp", a.state_updated_timestamp.as_ref())
        .str("StateValue", a.state_value.as_ref().map(|s| s.as_str()))
        .time(
            "StateTransitionedTimestamp",
            a.state_transitioned_timestamp.as_ref(),
        )
        .str(
            "ActionsSuppressedBy",
            a.actions_suppressed_by.as_ref().map(|s| s.as_str()),
        )
        .str(
            "ActionsSuppressedReason",
            a.actions_suppressed_reason.as_deref(),
        )
        .str("ActionsSuppressor", a.actions_suppressor.as_deref())
        .i32(
            "ActionsSuppressorWaitPeriod",
            a.actions_suppressor_wait_period,
        )
        .i32(
            "ActionsSuppressorExtensionPeriod",
            a.actions_suppressor_extension_period,
        )
        .finish()
}

/// DescribeAlarmHistory, windowed like CloudTrail.
pub struct AlarmHistoryCollector {
    account: String,
    region: String,
    client: aws_sdk_cloudwatch::Client,
    cfg: AlarmsConfig,
    limiter: Arc<RateLimiter>,
}

impl AlarmHistoryCollector {
    pub fn new(
        account: &str,
        region: &str,
        client: aws_sdk_cloudwatch::Client,
        cfg: AlarmsConfig,
    ) -> Self {
        AlarmHistoryCollector {
            account: account.to_string(),
            region: region.to_string(),
            limiter: RateLimiter::shared(&format!("cloudwatch:{account}:{region}"), 5.0),
            client,
            cfg,
        }
    }

    pub fn checkpoint_name(&self) -> String {
        format!("collect:alarm-history:{}:{}", self.account, self.region)
    }

    async fn poll_inner(&mut self, ctx: &Ctx) -> Result<PollReport, CollectError> {
        let name = self.checkpoint_name();
        let prev = ctx.checkpoint(&name).await?;
        let prev_end = prev
            .as_ref()
            .and_then(|v| v.get("watermark"))
            .and_then(|v| v.as_i64());
        let (start, end) = window(
            prev_end,
            ctx.now_ms(),
            Duration::from_secs(self.cfg.lag_secs),
            Duration::from_secs(self.cfg.lookback_secs),
        );
        let types = &self.cfg.history_item_types;
        // One type: let the API filter. Several: read all and keep those.
        let only = match types.as_slice() {
            [one] => Some(HistoryItemType::from(one.as_str())),
            _ => None,
        };
        let mut report = PollReport::default();
        let mut pages = Paging::new("DescribeAlarmHistory").pages(&ctx.stop, |token| {
            let req = self
                .client
                .describe_alarm_history()
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_history_item_type(only.clone())
                .start_date(super::json::from_millis(start))
                .end_date(super::json::from_millis(end))
                .scan_by(ScanBy::TimestampAscending)
                .max_records(100)
                .set_next_token(token);
            ctx.call(Some(&self.limiter), "DescribeAlarmHistory", move || {
                let req = req.clone();
                async move {
                    req.send()
                        .await
                        .map_err(|e| sdk_error("DescribeAlarmHistory", e))
                }
            })
        });
        while let Some((out, last)) = pages.next_page().await? {
            report.pages += 1;
            let batch: Vec<Delivery> = out
                .alarm_history_items()
                .iter()
                .filter(|i| {
                    let t = i.history_item_type().map(|t| t.as_str()).unwrap_or("");
                    types.is_empty() || types.iter().any(|x| x == t)
                })
                .map(|i| Delivery::new("cloudwatch.alarm_history", history_item_json(i)))
                .collect();
            let cp = last.then(|| checkpoint(&name, serde_json::json!({"watermark": end})));
            report
                .delivered
                .add(ctx.sink.deliver(&batch, cp.as_ref()).await?);
        }
        Ok(report)
    }
}

impl Collector for AlarmHistoryCollector {
    fn name(&self) -> String {
        self.checkpoint_name()
    }

    fn poll<'a>(&'a mut self, ctx: &'a Ctx) -> BoxFuture<'a, Result<PollReport, CollectError>> {
        Box::pin(self.poll_inner(ctx))
    }
}

/// DescribeAlarms: every alarm's definition. A definition's natural id is its ARN and
/// configuration time, so an unchanged alarm is stored once.
pub struct AlarmDefinitionsCollector {
    account: String,
    region: String,
    client: aws_sdk_cloudwatch::Client,
    limiter: Arc<RateLimiter>,
}

impl AlarmDefinitionsCollector {
    pub fn new(account: &str, region: &str, client: aws_sdk_cloudwatch::Client) -> Self {
        AlarmDefinitionsCollector {
            account: account.to_string(),
            region: region.to_string(),
            limiter: RateLimiter::shared(&format!("cloudwatch:{account}:{region}"), 5.0),
            client,
        }
    }

    pub fn checkpoint_name(&self) -> String {
        format!("collect:alarms:{}:{}", self.account, self.region)
    }

    /// Reads every page of DescribeAlarms.
    pub async fn fetch(&self, ctx: &Ctx) -> Result<(Vec<Delivery>, u64), CollectError> {
        let mut out_items = Vec::new();
        let mut pages = 0;
        let mut pager = Paging::new("DescribeAlarms").pages(&ctx.stop, |token| {
            let req = self
                .client
                .describe_alarms()
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .max_records(100)
                .set_next_token(token);
            ctx.call(Some(&self.limiter), "DescribeAlarms", move || {
                let req = req.clone();
                async move { req.send().await.map_err(|e| sdk_error("DescribeAlarms", e)) }
            })
        });
        while let Some((out, _last)) = pager.next_page().await? {
            pages += 1;
            for a in out.metric_alarms() {
                out_items.push(Delivery::new(ALARM_DEFINITION_SOURCE, metric_alarm_json(a)));
            }
            for a in out.composite_alarms() {
                out_items.push(Delivery::new(
                    ALARM_DEFINITION_SOURCE,
                    composite_alarm_json(a),
                ));
            }
        }
        Ok((out_items, pages))
    }

    async fn poll_inner(&mut self, ctx: &Ctx) -> Result<PollReport, CollectError> {
        let (items, pages) = self.fetch(ctx).await?;
        let mut report = PollReport {
            pages,
            ..Default::default()
        };
        let cp = checkpoint(
            &self.checkpoint_name(),
            serde_json::json!({"polled_at": ctx.now_ms()}),
        );
        report.delivered = ctx.sink.deliver(&items, Some(&cp)).await?;
        Ok(report)
    }
}

impl Collector for AlarmDefinitionsCollector {
    fn name(&self) -> String {
        self.checkpoint_name()
    }

    fn every(&self) -> Option<Duration> {
        None
    }

    fn poll<'a>(&'a mut self, ctx: &'a Ctx) -> BoxFuture<'a, Result<PollReport, CollectError>> {
        Box::pin(self.poll_inner(ctx))
    }
}
