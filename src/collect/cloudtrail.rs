//! CloudTrail LookupEvents: management write events (attribute ReadOnly=false), each
//! result's `CloudTrailEvent` string parsed as the payload, at most 2 requests per second
//! per account and region (CloudTrail's limit), re-reading `lag_secs` behind the previous
//! poll because events reach LookupEvents up to about 15 minutes late.

use super::config::CloudTrailConfig;
use super::paging::Paging;
use super::retry::sdk_error;
use super::{
    checkpoint, window, BoxFuture, CollectError, Collector, Ctx, Delivery, PollReport, RateLimiter,
};
use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
use std::sync::Arc;
use std::time::Duration;

/// CloudTrail's LookupEvents quota per account and region.
pub const MAX_REQUESTS_PER_SEC: f64 = 2.0;

pub struct CloudTrailCollector {
    account: String,
    region: String,
    client: aws_sdk_cloudtrail::Client,
    cfg: CloudTrailConfig,
    limiter: Arc<RateLimiter>,
}

impl CloudTrailCollector {
    pub fn new(
        account: &str,
        region: &str,
        client: aws_sdk_cloudtrail::Client,
        cfg: CloudTrailConfig,
    ) -> Self {
        let rate = cfg.requests_per_sec.clamp(0.01, MAX_REQUESTS_PER_SEC);
        CloudTrailCollector {
            account: account.to_string(),
            region: region.to_string(),
            limiter: RateLimiter::shared(&format!("cloudtrail:{account}:{region}"), rate),
            client,
            cfg,
        }
    }

    /// The checkpoint name (also the component name).
    pub fn checkpoint_name(&self) -> String {
        format!("collect:cloudtrail:{}:{}", self.account, self.region)
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
        let attr = LookupAttribute::builder()
            .attribute_key(LookupAttributeKey::ReadOnly)
            .attribute_value("false")
            .build()
            .map_err(|e| CollectError::permanent(format!("LookupEvents: {e}")))?;
        let mut report = PollReport::default();
        let mut missing = 0u64;
        let mut pages = Paging::new("LookupEvents").pages(&ctx.stop, |token| {
            let req = self
                .client
                .lookup_events()
                .lookup_attributes(attr.clone())
                .start_time(super::json::from_millis(start))
                .end_time(super::json::from_millis(end))
                .max_results(50)
                .set_next_token(token);
            ctx.call(Some(&self.limiter), "LookupEvents", move || {
                let req = req.clone();
                async move { req.send().await.map_err(|e| sdk_error("LookupEvents", e)) }
            })
        });
        while let Some((out, last)) = pages.next_page().await? {
            report.pages += 1;
            let mut batch = Vec::new();
            for ev in out.events() {
                match ev.cloud_trail_event() {
                    Some(raw) if !raw.trim().is_empty() => {
                        batch.push(Delivery::new("cloudtrail", raw.to_string()))
                    }
                    _ => missing += 1,
                }
            }
            // The checkpoint moves only with the last page: an interrupted poll reads its
            // whole window again (duplicates are skipped by natural id).
            let cp = last.then(|| checkpoint(&name, serde_json::json!({"watermark": end})));
            report
                .delivered
                .add(ctx.sink.deliver(&batch, cp.as_ref()).await?);
        }
        if missing > 0 {
            tracing::warn!(
                missing,
                "LookupEvents results without a CloudTrailEvent were skipped"
            );
            report.delivered.rejected += missing;
        }
        Ok(report)
    }
}

impl Collector for CloudTrailCollector {
    fn name(&self) -> String {
        self.checkpoint_name()
    }

    fn poll<'a>(&'a mut self, ctx: &'a Ctx) -> BoxFuture<'a, Result<PollReport, CollectError>> {
        Box::pin(self.poll_inner(ctx))
    }
}
