//! The command line: clap arguments (the plain, cheap layer) and the commands that
//! turn them into work on the library.

use crate::ingest::{self, IngestSummary};
use crate::model::{fmt_time, parse_time, Event, Kind, Source};
use crate::store::{EventFilter, EventLog, Order, SqliteStore};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// What changed, and which change broke it? Root-cause hypotheses for AWS incidents.
#[derive(Debug, Parser)]
#[command(name = "rootline", version, about)]
pub struct Args {
    /// The event store: sqlite://PATH (created on first use) [default: sqlite://rootline.db,
    /// or `database` in the config file].
    #[arg(long, global = true, env = "ROOTLINE_DATABASE")]
    pub database: Option<String>,
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest recordings (.jsonl, .jsonl.gz) and CloudTrail log files (.json, .json.gz).
    Ingest(IngestArgs),
    /// List stored events, filtered, as a table or JSON.
    Events(EventsArgs),
    /// Replay a recording into a fresh in-memory store and print incidents with ranked
    /// root-cause hypotheses.
    Replay(ReplayArgs),
    /// List incidents derived from the store (and record the engine's conclusions).
    Incidents(IncidentsArgs),
    /// Show the ranked hypotheses of one incident.
    Hypotheses(HypothesesArgs),
    /// Serve the incident timeline (web pages with JSON twins, /healthz, /metrics).
    Serve(ServeArgs),
    /// Ingest the bundled demo recordings into the store and serve them.
    Demo(ServeArgs),
    /// Poll AWS (CloudTrail, CloudWatch alarms and logs, Config) into the store.
    Collect(crate::collect::CollectArgs),
    /// Open GitHub issues for qualifying hypotheses (the outbox worker).
    Notify(crate::notify::NotifyArgs),
    /// Set up AWS to push events to rootline (EventBridge connection, API destination, rules).
    #[command(subcommand)]
    Aws(crate::collect::setup::AwsCommand),
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
}

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Files to ingest.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080, or `addr` in the config file].
    #[arg(long, env = "ROOTLINE_ADDR")]
    pub addr: Option<String>,
    /// A TOML configuration file (keys: addr, database, analyze_every_secs).
    #[arg(long, env = "ROOTLINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Do not analyse the log in the background (pages show conclusions already stored).
    #[arg(long)]
    pub no_analyze: bool,
}

/// The configuration file of `serve` and `demo`. Flags and environment variables win
/// over it; it wins over the defaults.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub addr: Option<String>,
    pub database: Option<String>,
    pub analyze_every_secs: Option<u64>,
    /// Sections read by other components (notify, collect).
    #[serde(default)]
    pub notify: Option<toml::Table>,
    #[serde(default)]
    pub collect: Option<toml::Table>,
}

impl FileConfig {
    /// Reads a config file, naming it in any error.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A recording (.jsonl or .jsonl.gz) or CloudTrail log file.
    pub file: PathBuf,
    /// Print the hypotheses report (RECORDINGS.md section 3) as JSON; stdout holds only it.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct IncidentsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct HypothesesArgs {
    /// Incident id (as listed by `rootline incidents`).
    pub incident: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Event time at or after (RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Event time before (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// Only this source (repeatable): cloudtrail, cloudwatch.alarm_history, eventbridge,
    /// github.deployment_status, logs, logs.anomaly, config, rootline.
    #[arg(long = "source")]
    pub sources: Vec<String>,
    /// Only this kind (repeatable): change, alarm, deployment, log, anomaly, snapshot,
    /// conclusion, other.
    #[arg(long = "kind")]
    pub kinds: Vec<String>,
    /// Only events touching this resource: a canonical key (sg/sg-0abc), an ARN or a bare id.
    #[arg(long)]
    pub resource: Option<String>,
    /// Leave out read-only API calls.
    #[arg(long)]
    pub no_read_only: bool,
    /// Substring of the name, actor, id or resources.
    #[arg(long)]
    pub search: Option<String>,
    /// At most this many events (0: all).
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Newest first.
    #[arg(long)]
    pub desc: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// The default store.
pub const DEFAULT_DATABASE: &str = "sqlite://rootline.db";

/// Runs a parsed command line.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
    match args.command {
        Command::Ingest(a) => ingest_cmd(&database, a).await,
        Command::Events(a) => events_cmd(&database, a).await,
        Command::Replay(a) => replay_cmd(a).await,
        Command::Incidents(a) => incidents_cmd(&database, a).await,
        Command::Hypotheses(a) => hypotheses_cmd(&database, a).await,
        Command::Serve(a) => serve_cmd(args.database.as_deref(), a).await,
        Command::Demo(a) => demo_cmd(&database, a).await,
        Command::Collect(a) => crate::collect::run(&database, a).await,
        Command::Notify(a) => crate::notify::run(&database, a).await,
        Command::Aws(c) => crate::collect::setup::run(c).await,
        Command::Bench(b) => crate::bench::run(b).await,
    }
}

/// Opens the store named by `--database`, with the URL in any error.
pub async fn open_store(url: &str) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(url)
        .await
        .with_context(|| format!("cannot open the store at {url}"))
}

async fn ingest_cmd(db: &str, a: IngestArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let progress = !a.no_progress && std::io::stderr().is_terminal();
    let summary = ingest::ingest_files(&store, &a.files, progress).await?;
    store.close().await;
    let mut err = std::io::stderr().lock();
    for r in &summary.rejections {
        let _ = writeln!(err, "rejected: {r}");
    }
    if summary.rejected_total() > summary.rejections.len() as u64 {
        let _ = writeln!(
            err,
            "rejected: ... and {} more",
            summary.rejected_total() - summary.rejections.len() as u64
        );
    }
    drop(err);
    if a.json {
        println!("{}", summary_json(&summary));
    } else {
        print_summary(&summary);
    }
    // 3: the run completed but some input was rejected (scripts can tell).
    Ok(if summary.rejected_total() > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// The ingest summary as a JSON document.
pub fn summary_json(s: &IngestSummary) -> serde_json::Value {
    serde_json::json!({
        "files": s.files,
        "read": s.read,
        "appended": s.appended,
        "duplicates": s.duplicates,
        "rejected": s.rejected_total(),
        "rejected_by_reason": s.rejected,
        "rejections": s.rejections.iter().map(|r| serde_json::json!({
            "file": r.file, "line": r.line, "reason": r.reason})).collect::<Vec<_>>(),
    })
}

fn print_summary(s: &IngestSummary) {
    println!(
        "files {}  read {}  appended {}  duplicates {}  rejected {}",
        s.files,
        s.read,
        s.appended,
        s.duplicates,
        s.rejected_total()
    );
    for (reason, n) in &s.rejected {
        println!("  rejected {n:>8}  {reason}");
    }
}

/// Resolves a user-supplied resource (key, ARN or bare id) to a canonical key.
pub fn resource_key(input: &str) -> String {
    use crate::normalize::resource;
    resource::from_arn(input)
        .or_else(|| resource::from_id(input))
        .unwrap_or_else(|| input.to_string())
}

/// Builds an event filter from command-line strings, with clear errors.
pub fn build_filter(a: &EventsArgs) -> anyhow::Result<EventFilter> {
    let time = |s: &Option<String>, flag: &str| -> anyhow::Result<Option<i64>> {
        match s {
            None => Ok(None),
            Some(t) => parse_time(t).map(Some).with_context(|| {
                format!("--{flag} {t:?} is not an RFC 3339 time (e.g. 2025-10-07T14:00:00Z)")
            }),
        }
    };
    let mut sources = Vec::new();
    for s in &a.sources {
        match Source::parse(s) {
            Some(x) => sources.push(x),
            None => bail!(
                "unknown --source {s:?}; expected one of: {}",
                Source::ALL.map(|s| s.as_str()).join(", ")
            ),
        }
    }
    for k in &a.kinds {
        if !Kind::TAGS.contains(&k.as_str()) {
            bail!(
                "unknown --kind {k:?}; expected one of: {}",
                Kind::TAGS.join(", ")
            );
        }
    }
    Ok(EventFilter {
        from: time(&a.from, "from")?,
        to: time(&a.to, "to")?,
        sources,
        kinds: a.kinds.clone(),
        resource: a.resource.as_deref().map(resource_key),
        exclude_read_only: a.no_read_only,
        text: a.search.clone(),
        limit: a.limit.max(0),
        by_time: true,
        order: if a.desc { Order::Desc } else { Order::Asc },
        after_seq: None,
        id_prefix: None,
    })
}

/// An event as JSON for `events --format json` and the API.
pub fn event_json(e: &Event) -> serde_json::Value {
    let payload: serde_json::Value =
        serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "seq": e.seq,
        "source": e.source.as_str(),
        "id": e.natural_id,
        "time": fmt_time(e.event_time),
        "received_at": e.received_at.map(fmt_time),
        "kind": e.kind,
        "name": e.name,
        "actor": e.actor,
        "read_only": e.read_only,
        "error_code": e.error_code,
        "resources": e.resources,
        "payload": payload,
    })
}

async fn events_cmd(db: &str, a: EventsArgs) -> anyhow::Result<ExitCode> {
    let filter = build_filter(&a)?;
    let store = open_store(db).await?;
    let events = store.query(&filter).await?;
    let mut out = std::io::stdout().lock();
    match a.format {
        OutputFormat::Json => {
            let arr: Vec<_> = events.iter().map(event_json).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&arr)?)?;
        }
        OutputFormat::Table => {
            writeln!(
                out,
                "{:>8}  {:<24}  {:<24}  {:<10}  {:<36}  RESOURCE",
                "SEQ", "TIME", "SOURCE", "KIND", "NAME"
            )?;
            for e in &events {
                let mut flags = String::new();
                if e.read_only {
                    flags.push_str(" [read-only]");
                }
                if let Some(c) = &e.error_code {
                    flags.push_str(&format!(" [{c}]"));
                }
                writeln!(
                    out,
                    "{:>8}  {:<24}  {:<24}  {:<10}  {:<36}  {}{}",
                    e.seq,
                    fmt_time(e.event_time),
                    e.source.as_str(),
                    e.kind.tag(),
                    truncate(&e.name, 36),
                    e.resources.first().map(String::as_str).unwrap_or("-"),
                    flags
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Text safe for a terminal: control characters (escape sequences in attacker-controlled
/// CloudTrail fields) become spaces.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Shortens text to `n` characters for table cells.
pub fn truncate(s: &str, n: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= n {
        clean
    } else {
        let mut t: String = clean.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Loads every event of the store (in sequence order).
pub async fn load_all(store: &SqliteStore) -> anyhow::Result<Vec<Event>> {
    Ok(store.query(&EventFilter::default()).await?)
}

/// Analyses the whole store and appends the engine's conclusions (idempotently).
pub async fn analyze_store(store: &SqliteStore) -> anyhow::Result<crate::correlate::Analysis> {
    let events = load_all(store).await?;
    let analysis = crate::correlate::analyze(&events, &crate::correlate::Config::default());
    let conclusions = crate::correlate::conclusions(&analysis);
    store.append(&conclusions, None).await?;
    Ok(analysis)
}

async fn replay_cmd(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let store = SqliteStore::open("sqlite::memory:").await?;
    let summary = ingest::ingest_files(&store, std::slice::from_ref(&a.file), false).await?;
    for r in &summary.rejections {
        eprintln!("rejected: {r}");
    }
    let analysis = analyze_store(&store).await?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", crate::correlate::report_json(&analysis))?;
    } else {
        writeln!(
            out,
            "{} events ({} rejected), {} incidents",
            summary.appended,
            summary.rejected_total(),
            analysis.incidents.len()
        )?;
        for inc in &analysis.incidents {
            print_incident(&mut out, inc, 3)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_incident(
    out: &mut impl Write,
    inc: &crate::correlate::Incident,
    top: usize,
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{}  {}  {}{}",
        inc.id,
        fmt_time(inc.opened_at),
        clean(&inc.title),
        match inc.resolved_at {
            Some(r) => format!("  (resolved {})", fmt_time(r)),
            None => "  (open)".to_string(),
        }
    )?;
    for h in inc.hypotheses.iter().take(top) {
        writeln!(
            out,
            "  #{} {:.2} [{}] {}",
            h.rank,
            h.score,
            h.kind,
            clean(&h.summary)
        )?;
        writeln!(
            out,
            "      cause: {} {}",
            h.cause.source,
            clean(&h.cause.id)
        )?;
    }
    Ok(())
}

async fn incidents_cmd(db: &str, a: IncidentsArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let analysis = analyze_store(&store).await?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&analysis)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:<16}  {:<24}  {:<8}  {:<50}  TOP HYPOTHESIS",
        "ID", "OPENED", "STATE", "TITLE"
    )?;
    for inc in &analysis.incidents {
        writeln!(
            out,
            "{:<16}  {:<24}  {:<8}  {:<50}  {}",
            inc.id,
            fmt_time(inc.opened_at),
            if inc.resolved_at.is_some() {
                "resolved"
            } else {
                "open"
            },
            truncate(&inc.title, 50),
            inc.hypotheses
                .first()
                .map(|h| truncate(&h.summary, 100))
                .unwrap_or_else(|| "-".into())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn hypotheses_cmd(db: &str, a: HypothesesArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(db).await?;
    let analysis = analyze_store(&store).await?;
    let Some(inc) = analysis.incidents.iter().find(|i| i.id == a.incident) else {
        bail!(
            "no incident {:?}; `rootline incidents` lists them",
            a.incident
        );
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(inc)?)?;
    } else {
        print_incident(&mut out, inc, usize::MAX)?;
        for h in &inc.hypotheses {
            writeln!(out, "\n  #{} evidence:", h.rank)?;
            for e in &h.evidence {
                writeln!(out, "    {} {}", e.source, clean(&e.id))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve_options(a: &ServeArgs, cfg: &FileConfig) -> crate::web::serve::ServeOptions {
    crate::web::serve::ServeOptions {
        addr: a
            .addr
            .clone()
            .or_else(|| cfg.addr.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".to_string()),
        analyze_every: std::time::Duration::from_secs(cfg.analyze_every_secs.unwrap_or(2).max(1)),
        analyze: !a.no_analyze,
        collect: cfg.collect.clone(),
        notify: cfg.notify.clone(),
    }
}

fn load_config(a: &ServeArgs) -> anyhow::Result<FileConfig> {
    match &a.config {
        Some(p) => FileConfig::load(p),
        None => Ok(FileConfig::default()),
    }
}

async fn serve_cmd(database: Option<&str>, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(&a)?;
    let db = database
        .map(str::to_string)
        .or_else(|| cfg.database.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
    let store = open_store(&db).await?;
    crate::web::serve::serve(store, serve_options(&a, &cfg), None).await?;
    Ok(ExitCode::SUCCESS)
}

/// The demo recordings, compiled in so `rootline demo` works from anywhere.
pub const DEMO: &[(&str, &[u8])] = &[
    (
        "demo-security-group.jsonl",
        include_bytes!("../fixtures/demo/security-group.jsonl"),
    ),
    (
        "demo-capacity-503.jsonl",
        include_bytes!("../fixtures/demo/capacity-saturation.jsonl"),
    ),
    (
        "demo-bad-deployment.jsonl",
        include_bytes!("../fixtures/demo/bad-deployment.jsonl"),
    ),
];

async fn demo_cmd(database: &str, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let cfg = load_config(&a)?;
    let dir = std::env::temp_dir().join(format!("rootline-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = Vec::new();
    for (name, bytes) in DEMO {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        files.push(p);
    }
    let store = open_store(database).await?;
    let summary = ingest::ingest_files(&store, &files, false).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let analysis = analyze_store(&store).await?;
    eprintln!(
        "demo: {} events appended ({} already there) into {database}; {} incidents",
        summary.appended,
        summary.duplicates,
        analysis.incidents.len()
    );
    crate::web::serve::serve(store, serve_options(&a, &cfg), None).await?;
    Ok(ExitCode::SUCCESS)
}
