//! `rootline aws setup`: creates or updates, idempotently, the EventBridge connection
//! (API-key auth), API destination and rules that push alarm state changes, ECS and
//! CodeDeploy deployment events, AWS Health events and CloudTrail API-call events to
//! rootline's `POST /ingest/eventbridge`. `--dry-run` reads and prints the plan only.

use super::config::CollectConfig;
use super::push::EVENTBRIDGE_KEY_ENV;
use anyhow::Context;
use aws_sdk_eventbridge::types::{
    ApiDestinationHttpMethod, ConnectionAuthorizationType,
    CreateConnectionApiKeyAuthRequestParameters, CreateConnectionAuthRequestParameters, RuleState,
    Target, UpdateConnectionApiKeyAuthRequestParameters, UpdateConnectionAuthRequestParameters,
};
use secrecy::{ExposeSecret, SecretString};
use std::process::ExitCode;

/// `rootline aws ...`
#[derive(Debug, clap::Subcommand)]
pub enum AwsCommand {
    /// Create or update the EventBridge connection, API destination and rules that push
    /// alarm, deployment, Health and CloudTrail events to rootline.
    Setup(SetupArgs),
}

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// rootline's public base URL (`https://rootline.example.com`); events go to
    /// URL/ingest/eventbridge [default: `[collect.setup] url`].
    #[arg(long)]
    pub url: Option<String>,
    /// The IAM role EventBridge assumes to invoke the API destination (needs
    /// events:InvokeApiDestination) [default: `[collect.setup] role_arn`].
    #[arg(long)]
    pub role_arn: Option<String>,
    /// Name of the connection and API destination, and prefix of the rules.
    #[arg(long)]
    pub name: Option<String>,
    /// The event bus of the rules [default: default].
    #[arg(long)]
    pub event_bus: Option<String>,
    /// API destination invocations per second.
    #[arg(long, default_value_t = 10)]
    pub rate_limit: i32,
    /// A profile from the shared AWS config files.
    #[arg(long)]
    pub profile: Option<String>,
    /// The region [default: the standard chain's].
    #[arg(long)]
    pub region: Option<String>,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The rules: name suffix, description, event pattern.
pub const RULES: &[(&str, &str, &str)] = &[
    (
        "alarms",
        "CloudWatch alarm state changes",
        r#"{"source":["aws.cloudwatch"],"detail-type":["CloudWatch Alarm State Change"]}"#,
    ),
    (
        "ecs",
        "ECS deployment state changes and service actions",
        r#"{"source":["aws.ecs"],"detail-type":["ECS Deployment State Change","ECS Service Action"]}"#,
    ),
    (
        "codedeploy",
        "CodeDeploy deployment state changes",
        r#"{"source":["aws.codedeploy"],"detail-type":["CodeDeploy Deployment State-change Notification"]}"#,
    ),
    (
        "health",
        "AWS Health events",
        r#"{"source":["aws.health"],"detail-type":["AWS Health Event"]}"#,
    ),
    (
        "cloudtrail",
        "CloudTrail API calls that change something",
        r#"{"detail-type":["AWS API Call via CloudTrail"],"detail":{"readOnly":[false]}}"#,
    ),
];

/// The target id rootline uses on its rules.
pub const TARGET_ID: &str = "rootline";

/// What setup wants.
#[derive(Clone)]
pub struct SetupInput {
    pub name: String,
    /// The full endpoint URL (…/ingest/eventbridge).
    pub endpoint: String,
    pub header: String,
    pub api_key: SecretString,
    pub role_arn: Option<String>,
    pub event_bus: Option<String>,
    pub rate_limit: i32,
}

impl std::fmt::Debug for SetupInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupInput")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("header", &self.header)
            .field("role_arn", &self.role_arn)
            .field("event_bus", &self.event_bus)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Unchanged,
    /// Something the user should know (not a change).
    Note,
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub what: String,
    pub detail: String,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = match self.action {
            Action::Create => "create   ",
            Action::Update => "update   ",
            Action::Unchanged => "unchanged",
            Action::Note => "note     ",
        };
        write!(f, "{a} {}: {}", self.what, self.detail)
    }
}

fn step(action: Action, what: impl Into<String>, detail: impl Into<String>) -> Step {
    Step {
        action,
        what: what.into(),
        detail: detail.into(),
    }
}

fn json_eq(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn err<E>(
    op: &str,
    e: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> anyhow::Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    anyhow::anyhow!(super::retry::sdk_error(op, e).message)
}

/// Plans and (unless `dry_run`) applies the setup. `cloudtrail`, when given, is used to
/// check that a trail is logging (EventBridge receives API-call events only then).
pub async fn apply(
    eb: &aws_sdk_eventbridge::Client,
    cloudtrail: Option<&aws_sdk_cloudtrail::Client>,
    input: &SetupInput,
    dry_run: bool,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let name = input.name.as_str();

    // 1. The connection. Its key cannot be read back, so an existing one is always set
    // to the configured key (same end state on every run).
    let conn = eb.describe_connection().name(name).send().await;
    let conn_arn = match conn {
        Ok(c) => {
            let header_ok = c
                .auth_parameters()
                .and_then(|p| p.api_key_auth_parameters())
                .and_then(|k| k.api_key_name())
                == Some(input.header.as_str());
            let type_ok = c.authorization_type() == Some(&ConnectionAuthorizationType::ApiKey);
            let detail = if header_ok && type_ok {
                format!(
                    "API key in header {} (re-set: keys cannot be read back)",
                    input.header
                )
            } else {
                format!("switch to API key in header {}", input.header)
            };
            steps.push(step(Action::Update, format!("connection {name}"), detail));
            if !dry_run {
                eb.update_connection()
                    .name(name)
                    .authorization_type(ConnectionAuthorizationType::ApiKey)
                    .auth_parameters(
                        UpdateConnectionAuthRequestParameters::builder()
                            .api_key_auth_parameters(
                                UpdateConnectionApiKeyAuthRequestParameters::builder()
                                    .api_key_name(&input.header)
                                    .api_key_value(input.api_key.expose_secret())
                                    .build(),
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| err("UpdateConnection", e))?;
            }
            c.connection_arn().map(str::to_string)
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            steps.push(step(
                Action::Create,
                format!("connection {name}"),
                format!("API key in header {}", input.header),
            ));
            if dry_run {
                None
            } else {
                let key = CreateConnectionApiKeyAuthRequestParameters::builder()
                    .api_key_name(&input.header)
                    .api_key_value(input.api_key.expose_secret())
                    .build()
                    .context("connection parameters")?;
                let out = eb
                    .create_connection()
                    .name(name)
                    .description("rootline: API key for POST /ingest/eventbridge")
                    .authorization_type(ConnectionAuthorizationType::ApiKey)
                    .auth_parameters(
                        CreateConnectionAuthRequestParameters::builder()
                            .api_key_auth_parameters(key)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| err("CreateConnection", e))?;
                out.connection_arn().map(str::to_string)
            }
        }
        Err(e) => return Err(err("DescribeConnection", e)),
    };

    // 2. The API destination.
    let dest = eb.describe_api_destination().name(name).send().await;
    let dest_arn = match dest {
        Ok(d) => {
            let same = d.connection_arn() == conn_arn.as_deref()
                && d.invocation_endpoint() == Some(input.endpoint.as_str())
                && d.http_method() == Some(&ApiDestinationHttpMethod::Post)
                && d.invocation_rate_limit_per_second() == Some(input.rate_limit);
            if same {
                steps.push(step(
                    Action::Unchanged,
                    format!("api destination {name}"),
                    format!("POST {}", input.endpoint),
                ));
            } else {
                steps.push(step(
                    Action::Update,
                    format!("api destination {name}"),
                    format!("POST {}", input.endpoint),
                ));
                if !dry_run {
                    eb.update_api_destination()
                        .name(name)
                        .set_connection_arn(conn_arn.clone())
                        .invocation_endpoint(&input.endpoint)
                        .http_method(ApiDestinationHttpMethod::Post)
                        .invocation_rate_limit_per_second(input.rate_limit)
                        .send()
                        .await
                        .map_err(|e| err("UpdateApiDestination", e))?;
                }
            }
            d.api_destination_arn().map(str::to_string)
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            steps.push(step(
                Action::Create,
                format!("api destination {name}"),
                format!("POST {}", input.endpoint),
            ));
            if dry_run {
                None
            } else {
                let out = eb
                    .create_api_destination()
                    .name(name)
                    .description("rootline: events to POST /ingest/eventbridge")
                    .set_connection_arn(conn_arn.clone())
                    .invocation_endpoint(&input.endpoint)
                    .http_method(ApiDestinationHttpMethod::Post)
                    .invocation_rate_limit_per_second(input.rate_limit)
                    .send()
                    .await
                    .map_err(|e| err("CreateApiDestination", e))?;
                out.api_destination_arn().map(str::to_string)
            }
        }
        Err(e) => return Err(err("DescribeApiDestination", e)),
    };

    if input.role_arn.is_none() {
        if dry_run {
            steps.push(step(
                Action::Note,
                "targets",
                "no role given (--role-arn): rule targets need a role allowing events:InvokeApiDestination",
            ));
        } else {
            anyhow::bail!("--role-arn (or [collect.setup] role_arn) is required: EventBridge needs a role allowing events:InvokeApiDestination on the API destination");
        }
    }

    // 3. The rules and their target.
    for (suffix, what, pattern) in RULES {
        let rule = format!("{name}-{suffix}");
        let current = eb
            .describe_rule()
            .name(&rule)
            .set_event_bus_name(input.event_bus.clone())
            .send()
            .await;
        let exists = match current {
            Ok(r) => {
                let same = r.event_pattern().is_some_and(|p| json_eq(p, pattern))
                    && r.state() == Some(&RuleState::Enabled);
                steps.push(step(
                    if same {
                        Action::Unchanged
                    } else {
                        Action::Update
                    },
                    format!("rule {rule}"),
                    *what,
                ));
                if !same && !dry_run {
                    put_rule(eb, &rule, what, pattern, input).await?;
                }
                true
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                steps.push(step(Action::Create, format!("rule {rule}"), *what));
                if !dry_run {
                    put_rule(eb, &rule, what, pattern, input).await?;
                }
                false
            }
            Err(e) => return Err(err("DescribeRule", e)),
        };
        let target_ok = if exists {
            let t = eb
                .list_targets_by_rule()
                .rule(&rule)
                .set_event_bus_name(input.event_bus.clone())
                .send()
                .await
                .map_err(|e| err("ListTargetsByRule", e))?;
            t.targets().iter().any(|t| {
                t.id() == TARGET_ID
                    && dest_arn.as_deref().is_some_and(|a| t.arn() == a)
                    && t.role_arn() == input.role_arn.as_deref()
            })
        } else {
            false
        };
        if target_ok {
            steps.push(step(
                Action::Unchanged,
                format!("target {rule}/{TARGET_ID}"),
                format!("api destination {name}"),
            ));
        } else {
            steps.push(step(
                if exists {
                    Action::Update
                } else {
                    Action::Create
                },
                format!("target {rule}/{TARGET_ID}"),
                format!("api destination {name}"),
            ));
            if !dry_run {
                let arn = dest_arn.clone().context("the API destination has no ARN")?;
                let target = Target::builder()
                    .id(TARGET_ID)
                    .arn(arn)
                    .set_role_arn(input.role_arn.clone())
                    .build()
                    .context("target")?;
                let out = eb
                    .put_targets()
                    .rule(&rule)
                    .set_event_bus_name(input.event_bus.clone())
                    .targets(target)
                    .send()
                    .await
                    .map_err(|e| err("PutTargets", e))?;
                if out.failed_entry_count() > 0 {
                    anyhow::bail!("PutTargets on {rule} failed: {:?}", out.failed_entries());
                }
            }
        }
    }

    // 4. API-call events reach EventBridge only while a trail is logging.
    if let Some(ct) = cloudtrail {
        match trail_logging(ct).await {
            Ok(Some(t)) => steps.push(step(Action::Unchanged, "cloudtrail", format!("trail {t} is logging"))),
            Ok(None) => steps.push(step(
                Action::Note,
                "cloudtrail",
                "no trail is logging in this region: \"AWS API Call via CloudTrail\" events need one (rootline collect still reads LookupEvents)",
            )),
            Err(e) => steps.push(step(Action::Note, "cloudtrail", format!("could not check trails: {e}"))),
        }
    }
    Ok(steps)
}

async fn put_rule(
    eb: &aws_sdk_eventbridge::Client,
    rule: &str,
    what: &str,
    pattern: &str,
    input: &SetupInput,
) -> anyhow::Result<()> {
    eb.put_rule()
        .name(rule)
        .description(format!("rootline: {what}"))
        .event_pattern(pattern)
        .state(RuleState::Enabled)
        .set_event_bus_name(input.event_bus.clone())
        .send()
        .await
        .map_err(|e| err("PutRule", e))?;
    Ok(())
}

/// The name of a trail that is logging, if any.
pub async fn trail_logging(ct: &aws_sdk_cloudtrail::Client) -> anyhow::Result<Option<String>> {
    let trails = ct
        .describe_trails()
        .send()
        .await
        .map_err(|e| err("DescribeTrails", e))?;
    for t in trails.trail_list() {
        let Some(arn) = t.trail_arn().or(t.name()) else {
            continue;
        };
        let st = ct
            .get_trail_status()
            .name(arn)
            .send()
            .await
            .map_err(|e| err("GetTrailStatus", e))?;
        if st.is_logging() == Some(true) {
            return Ok(Some(t.name().unwrap_or(arn).to_string()));
        }
    }
    Ok(None)
}

/// Runs `rootline aws ...`, with the config file's `[collect]` section.
pub async fn run(cmd: AwsCommand, collect: Option<&toml::Table>) -> anyhow::Result<ExitCode> {
    match cmd {
        AwsCommand::Setup(a) => setup_cmd(a, collect).await,
    }
}

async fn setup_cmd(a: SetupArgs, collect: Option<&toml::Table>) -> anyhow::Result<ExitCode> {
    let cfg = CollectConfig::from_table(collect)?;
    let url = a
        .url
        .clone()
        .or_else(|| cfg.setup.url.clone())
        .context("--url (rootline's public base URL) is required")?;
    let base = url.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        anyhow::bail!("--url must be an http(s) URL, got {base:?}");
    }
    let endpoint = if base.ends_with("/ingest/eventbridge") {
        base.to_string()
    } else {
        format!("{base}/ingest/eventbridge")
    };
    let api_key = std::env::var(EVENTBRIDGE_KEY_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(SecretString::from)
        .or_else(|| cfg.eventbridge.api_key.clone().map(|s| s.0))
        .with_context(|| format!("set {EVENTBRIDGE_KEY_ENV} (or [collect.eventbridge] api_key): the key EventBridge sends and rootline checks"))?;
    let input = SetupInput {
        name: a
            .name
            .clone()
            .or_else(|| cfg.setup.name.clone())
            .unwrap_or_else(|| "rootline".into()),
        endpoint,
        header: cfg.eventbridge.header.clone(),
        api_key,
        role_arn: a.role_arn.clone().or_else(|| cfg.setup.role_arn.clone()),
        event_bus: a.event_bus.clone().or_else(|| cfg.setup.event_bus.clone()),
        rate_limit: a.rate_limit.max(1),
    };
    let acct = super::config::AccountConfig {
        name: "setup".into(),
        profile: a.profile.clone(),
        ..Default::default()
    };
    let conf = super::sdk_config(&acct, a.region.as_deref()).await;
    if conf.region().is_none() {
        anyhow::bail!("no region: pass --region or set AWS_REGION");
    }
    let eb = aws_sdk_eventbridge::Client::new(&conf);
    let ct = aws_sdk_cloudtrail::Client::new(&conf);
    let steps = apply(&eb, Some(&ct), &input, a.dry_run).await?;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    if a.dry_run {
        writeln!(out, "Plan (dry run, nothing changed):")?;
    }
    for s in &steps {
        writeln!(out, "{}", crate::model::clean(&s.to_string()))?;
    }
    Ok(ExitCode::SUCCESS)
}
