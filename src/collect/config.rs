//! The `[collect]` section of the configuration file.
//!
//! ```toml
//! [collect]
//! poll_interval_secs = 60
//! record = "collected.jsonl"          # optional: also write a recording
//! regions = ["eu-west-1"]             # for the default account (standard chain)
//!
//! [[collect.accounts]]                # optional: several accounts
//! name = "prod"
//! profile = "prod"                    # a profile, and/or
//! role_arn = "arn:aws:iam::111111111111:role/rootline-read"
//! regions = ["eu-west-1", "us-east-1"]
//!
//! [collect.cloudtrail]
//! lag_secs = 900
//! [collect.logs]
//! groups = ["/ecs/orders-api"]
//! [collect.eventbridge]
//! api_key = "..."                     # or ROOTLINE_EVENTBRIDGE_API_KEY
//! [collect.github]
//! webhook_secret = "..."              # or ROOTLINE_GITHUB_WEBHOOK_SECRET
//! ```

use super::retry::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// A secret read from the config file: never printed.
#[derive(Clone)]
pub struct Secret(pub SecretString);

impl Secret {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Secret(SecretString::from(s)))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectConfig {
    /// Seconds between polls of each source.
    pub poll_interval_secs: u64,
    /// Also append everything received to this recording.
    pub record: Option<PathBuf>,
    /// Regions of the default account (when `accounts` is empty). Empty: the region of
    /// the standard chain (AWS_REGION, the profile).
    pub regions: Vec<String>,
    pub accounts: Vec<AccountConfig>,
    pub retry: RetryConfig,
    pub cloudtrail: CloudTrailConfig,
    pub alarms: AlarmsConfig,
    pub logs: LogsConfig,
    pub config: AwsConfigConfig,
    pub eventbridge: EventBridgePush,
    pub github: GithubPush,
    pub setup: SetupConfig,
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig {
            poll_interval_secs: 60,
            record: None,
            regions: Vec::new(),
            accounts: Vec::new(),
            retry: RetryConfig::default(),
            cloudtrail: CloudTrailConfig::default(),
            alarms: AlarmsConfig::default(),
            logs: LogsConfig::default(),
            config: AwsConfigConfig::default(),
            eventbridge: EventBridgePush::default(),
            github: GithubPush::default(),
            setup: SetupConfig::default(),
        }
    }
}

impl CollectConfig {
    /// Parses the `[collect]` table (absent: the defaults).
    pub fn from_table(t: Option<&toml::Table>) -> anyhow::Result<Self> {
        match t {
            None => Ok(CollectConfig::default()),
            Some(t) => t
                .clone()
                .try_into()
                .map_err(|e| anyhow::anyhow!("invalid [collect] section: {e}")),
        }
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs.max(1))
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.retry.max_attempts.max(1),
            base_delay: Duration::from_millis(self.retry.base_delay_ms.max(1)),
            max_delay: Duration::from_millis(
                self.retry.max_delay_ms.max(self.retry.base_delay_ms.max(1)),
            ),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// A label for states, checkpoints and logs.
    pub name: String,
    /// A named profile (credentials, region, endpoint_url) from the shared config files.
    pub profile: Option<String>,
    /// A role to assume, with the profile's (or the standard chain's) credentials.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub session_name: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            base_delay_ms: 500,
            max_delay_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudTrailConfig {
    pub enabled: bool,
    /// Each poll looks this far behind the previous one: LookupEvents shows events up to
    /// about 15 minutes after they happened.
    pub lag_secs: u64,
    /// How far back the first poll looks.
    pub lookback_secs: u64,
    /// LookupEvents requests per second per account and region (CloudTrail allows 2).
    pub requests_per_sec: f64,
}

impl Default for CloudTrailConfig {
    fn default() -> Self {
        CloudTrailConfig {
            enabled: true,
            lag_secs: 900,
            lookback_secs: 3600,
            requests_per_sec: 2.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmsConfig {
    pub enabled: bool,
    /// DescribeAlarmHistory item types to keep.
    pub history_item_types: Vec<String>,
    pub lag_secs: u64,
    pub lookback_secs: u64,
    /// Also poll DescribeAlarms (alarm definitions: metric, namespace, dimensions).
    pub definitions: bool,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig {
            enabled: true,
            history_item_types: vec!["StateUpdate".into(), "ConfigurationUpdate".into()],
            lag_secs: 300,
            lookback_secs: 3600,
            definitions: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Log groups to read with FilterLogEvents (and run rootline's own detection on).
    pub groups: Vec<String>,
    /// A CloudWatch Logs filter pattern; empty reads every event.
    pub filter_pattern: Option<String>,
    pub lag_secs: u64,
    pub lookback_secs: u64,
    /// Events per FilterLogEvents page (the API's default when unset).
    pub page_size: Option<i32>,
    /// FilterLogEvents requests per second per account and region.
    pub requests_per_sec: f64,
    /// Poll ListAnomalies where log anomaly detectors exist.
    pub anomalies: bool,
    pub detect: DetectConfig,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            groups: Vec::new(),
            filter_pattern: None,
            lag_secs: 120,
            lookback_secs: 3600,
            page_size: None,
            requests_per_sec: 5.0,
            anomalies: true,
            detect: DetectConfig::default(),
        }
    }
}

/// rootline's own log anomaly detection on the configured groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    pub enabled: bool,
    /// A regular expression for error lines.
    pub error_pattern: String,
    /// A minute needs at least this many errors to be a spike.
    pub min_errors: u64,
    /// ... and this many times the baseline mean.
    pub spike_factor: f64,
    /// ... and this many standard deviations above it.
    pub sigma: f64,
    /// Minutes of baseline before spikes are reported.
    pub warmup_minutes: u64,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            enabled: true,
            error_pattern: r"(?i)\b(error|exception|fatal|panic|panicked|traceback|critical|failed|failure|timed out|timeout)\b".into(),
            min_errors: 10,
            spike_factor: 3.0,
            sigma: 4.0,
            warmup_minutes: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfigConfig {
    pub enabled: bool,
    /// Resource types whose history is read (ListDiscoveredResources, then
    /// GetResourceConfigHistory per resource).
    pub resource_types: Vec<String>,
    pub lookback_secs: u64,
    /// Seconds between polls (Config changes slowly and its API is rate limited).
    pub every_secs: u64,
    pub requests_per_sec: f64,
}

impl Default for AwsConfigConfig {
    fn default() -> Self {
        AwsConfigConfig {
            enabled: true,
            resource_types: [
                "AWS::EC2::SecurityGroup",
                "AWS::EC2::Instance",
                "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "AWS::ECS::Service",
                "AWS::Lambda::Function",
                "AWS::RDS::DBInstance",
                "AWS::AutoScaling::AutoScalingGroup",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            lookback_secs: 86_400,
            every_secs: 900,
            requests_per_sec: 1.0,
        }
    }
}

/// `POST /ingest/eventbridge`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventBridgePush {
    /// The API key (ROOTLINE_EVENTBRIDGE_API_KEY wins). Unset: the endpoint is off.
    pub api_key: Option<Secret>,
    /// The header carrying it.
    pub header: String,
    pub max_body_bytes: usize,
}

impl Default for EventBridgePush {
    fn default() -> Self {
        EventBridgePush {
            api_key: None,
            header: "x-api-key".into(),
            // EventBridge events are at most 256 KB.
            max_body_bytes: 512 * 1024,
        }
    }
}

/// `POST /ingest/github`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubPush {
    /// The webhook secret (ROOTLINE_GITHUB_WEBHOOK_SECRET wins). Unset: the endpoint is off.
    pub webhook_secret: Option<Secret>,
    pub max_body_bytes: usize,
}

impl Default for GithubPush {
    fn default() -> Self {
        GithubPush {
            webhook_secret: None,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Defaults for `rootline aws setup` (flags win).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SetupConfig {
    /// The public base URL of rootline's server (`https://rootline.example.com`).
    pub url: Option<String>,
    /// The role EventBridge assumes to invoke the API destination.
    pub role_arn: Option<String>,
    pub name: Option<String>,
    pub event_bus: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts() {
        let t: toml::Table = toml::from_str(
            r#"
            poll_interval_secs = 5
            [[accounts]]
            name = "prod"
            profile = "p"
            regions = ["eu-west-1"]
            [logs]
            groups = ["/ecs/a"]
            [eventbridge]
            api_key = "hunter2"
            "#,
        )
        .unwrap();
        let c = CollectConfig::from_table(Some(&t)).unwrap();
        assert_eq!(c.poll_interval_secs, 5);
        assert_eq!(c.accounts[0].regions, ["eu-west-1"]);
        assert_eq!(c.eventbridge.api_key.as_ref().unwrap().expose(), "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        let bad: toml::Table = toml::from_str("pol_interval = 5").unwrap();
        assert!(CollectConfig::from_table(Some(&bad)).is_err());
    }
}
