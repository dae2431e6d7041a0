//! AWS Config resource history for topology: where a configuration recorder exists,
//! ListDiscoveredResources for each configured resource type, then
//! GetResourceConfigHistory per resource since the previous poll. Each
//! ConfigurationItem is written as GetResourceConfigHistory returns it (awsJson:
//! timestamps as epoch seconds, `configuration` a JSON string).

use super::config::AwsConfigConfig;
use super::json::Obj;
use super::paging::Paging;
use super::retry::sdk_error;
use super::{
    checkpoint, window, BoxFuture, CollectError, Collector, Ctx, Delivery, PollReport, RateLimiter,
};
use aws_sdk_config::types::{ChronologicalOrder, ConfigurationItem, Relationship, ResourceType};
use std::sync::Arc;
use std::time::Duration;

/// How far each poll's window reaches back into the previous one.
const OVERLAP: Duration = Duration::from_secs(300);

fn relationship_json(r: &Relationship) -> Obj {
    Obj::new()
        .str("resourceType", r.resource_type.as_ref().map(|t| t.as_str()))
        .str("resourceId", r.resource_id.as_deref())
        .str("resourceName", r.resource_name.as_deref())
        .str("relationshipName", r.relationship_name.as_deref())
}

/// One `configurationItems[]` element as GetResourceConfigHistory returns it.
pub fn configuration_item_json(i: &ConfigurationItem) -> String {
    Obj::new()
        .str("version", i.version.as_deref())
        .str("accountId", i.account_id.as_deref())
        .epoch_seconds(
            "configurationItemCaptureTime",
            i.configuration_item_capture_time.as_ref(),
        )
        .str(
            "configurationItemStatus",
            i.configuration_item_status.as_ref().map(|s| s.as_str()),
        )
        .str("configurationStateId", i.configuration_state_id.as_deref())
        .str(
            "configurationItemMD5Hash",
            i.configuration_item_md5_hash.as_deref(),
        )
        .str("arn", i.arn.as_deref())
        .str("resourceType", i.resource_type.as_ref().map(|t| t.as_str()))
        .str("resourceId", i.resource_id.as_deref())
        .str("resourceName", i.resource_name.as_deref())
        .str("awsRegion", i.aws_region.as_deref())
        .str("availabilityZone", i.availability_zone.as_deref())
        .epoch_seconds("resourceCreationTime", i.resource_creation_time.as_ref())
        .map("tags", i.tags.as_ref())
        .strs("relatedEvents", i.related_events.as_deref())
        .objs(
            "relationships",
            i.relationships.as_deref(),
            relationship_json,
        )
        .str("configuration", i.configuration.as_deref())
        .map(
            "supplementaryConfiguration",
            i.supplementary_configuration.as_ref(),
        )
        .str(
            "recordingFrequency",
            i.recording_frequency.as_ref().map(|f| f.as_str()),
        )
        .epoch_seconds(
            "configurationItemDeliveryTime",
            i.configuration_item_delivery_time.as_ref(),
        )
        .finish()
}

pub struct ConfigCollector {
    account: String,
    region: String,
    client: aws_sdk_config::Client,
    cfg: AwsConfigConfig,
    limiter: Arc<RateLimiter>,
}

impl ConfigCollector {
    pub fn new(
        account: &str,
        region: &str,
        client: aws_sdk_config::Client,
        cfg: AwsConfigConfig,
    ) -> Self {
        ConfigCollector {
            account: account.to_string(),
            region: region.to_string(),
            limiter: RateLimiter::shared(
                &format!("config:{account}:{region}"),
                cfg.requests_per_sec,
            ),
            client,
            cfg,
        }
    }

    pub fn checkpoint_name(&self) -> String {
        format!("collect:config:{}:{}", self.account, self.region)
    }

    /// True when a configuration recorder exists in the region.
    async fn enabled(&self, ctx: &Ctx) -> Result<bool, CollectError> {
        let out = ctx
            .call(
                Some(&self.limiter),
                "DescribeConfigurationRecorderStatus",
                || {
                    let req = self.client.describe_configuration_recorder_status();
                    async move {
                        req.send()
                            .await
                            .map_err(|e| sdk_error("DescribeConfigurationRecorderStatus", e))
                    }
                },
            )
            .await?;
        Ok(!out.configuration_recorders_status().is_empty())
    }

    async fn resources(
        &self,
        ctx: &Ctx,
        rtype: &ResourceType,
    ) -> Result<Vec<String>, CollectError> {
        let mut ids = Vec::new();
        let mut pages = Paging::new("ListDiscoveredResources")
            .end_on_repeat()
            .pages(&ctx.stop, |token| {
                let req = self
                    .client
                    .list_discovered_resources()
                    .resource_type(rtype.clone())
                    .set_next_token(token);
                ctx.call(Some(&self.limiter), "ListDiscoveredResources", move || {
                    let req = req.clone();
                    async move {
                        req.send()
                            .await
                            .map_err(|e| sdk_error("ListDiscoveredResources", e))
                    }
                })
            });
        while let Some((out, _last)) = pages.next_page().await? {
            ids.extend(
                out.resource_identifiers()
                    .iter()
                    .filter_map(|r| r.resource_id().map(str::to_string)),
            );
        }
        Ok(ids)
    }

    async fn poll_inner(&mut self, ctx: &Ctx) -> Result<PollReport, CollectError> {
        let name = self.checkpoint_name();
        let mut report = PollReport::default();
        if !self.enabled(ctx).await? {
            report.note = Some("AWS Config is not recording in this region".into());
            return Ok(report);
        }
        let prev = ctx.checkpoint(&name).await?;
        let prev_end = prev
            .as_ref()
            .and_then(|v| v.get("watermark"))
            .and_then(|v| v.as_i64());
        let (start, end) = window(
            prev_end,
            ctx.now_ms(),
            OVERLAP,
            Duration::from_secs(self.cfg.lookback_secs),
        );
        // Items the previous poll delivered inside the overlap of the two windows: they
        // are asked for again and skipped here, whatever capture time they now carry
        // (the store's key holds the time, and a Config emulator such as moto stamps
        // each answer with the time of the request).
        let delivered: std::collections::BTreeSet<String> = prev
            .as_ref()
            .and_then(|v| v.get("recent"))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut recent: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut resources = 0;
        for rt in &self.cfg.resource_types {
            let rtype = ResourceType::from(rt.as_str());
            for id in self.resources(ctx, &rtype).await? {
                resources += 1;
                let mut pages = Paging::new("GetResourceConfigHistory")
                    .end_on_repeat()
                    .pages(&ctx.stop, |token| {
                        let req = self
                            .client
                            .get_resource_config_history()
                            .resource_type(rtype.clone())
                            .resource_id(id.clone())
                            .earlier_time(super::json::from_millis(start))
                            .later_time(super::json::from_millis(end))
                            .chronological_order(ChronologicalOrder::Forward)
                            .set_next_token(token);
                        ctx.call(Some(&self.limiter), "GetResourceConfigHistory", move || {
                            let req = req.clone();
                            async move {
                                req.send()
                                    .await
                                    .map_err(|e| sdk_error("GetResourceConfigHistory", e))
                            }
                        })
                    });
                loop {
                    let out = match pages.next_page().await {
                        Ok(Some((out, _last))) => out,
                        Ok(None) => break,
                        // A resource deleted between listing and reading: nothing to read.
                        Err(e) if e.message.contains("ResourceNotDiscoveredException") => break,
                        Err(e) => return Err(e),
                    };
                    report.pages += 1;
                    let mut batch: Vec<Delivery> = Vec::new();
                    for i in out.configuration_items() {
                        let key = format!(
                            "{}/{}@{}",
                            i.resource_type().map(|t| t.as_str()).unwrap_or_default(),
                            i.resource_id().unwrap_or_default(),
                            i.configuration_state_id().unwrap_or_default()
                        );
                        let time = i
                            .configuration_item_capture_time()
                            .map(super::json::millis)
                            .unwrap_or(end);
                        if time >= end - OVERLAP.as_millis() as i64 {
                            recent.insert(key.clone());
                        }
                        if delivered.contains(&key) {
                            continue;
                        }
                        batch.push(Delivery::new("config", configuration_item_json(i)));
                    }
                    report.delivered.add(ctx.sink.deliver(&batch, None).await?);
                }
            }
        }
        let cp = checkpoint(
            &name,
            serde_json::json!({"watermark": end, "recent": recent}),
        );
        ctx.sink.deliver(&[], Some(&cp)).await?;
        report.note = Some(format!("{resources} resources"));
        Ok(report)
    }
}

impl Collector for ConfigCollector {
    fn name(&self) -> String {
        self.checkpoint_name()
    }

    fn every(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.cfg.every_secs.max(1)))
    }

    fn poll<'a>(&'a mut self, ctx: &'a Ctx) -> BoxFuture<'a, Result<PollReport, CollectError>> {
        Box::pin(self.poll_inner(ctx))
    }
}
