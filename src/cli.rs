//! The command line: clap arguments (the plain, cheap layer) and the commands that
//! turn them into work on the library. Settings are resolved once, by
//! [`Settings::resolve`]; the long-running parts are wired in [`crate::app`].

use crate::app::{self, Settings};
use crate::ingest::{self, IngestSummary};
use crate::model::{clean, fmt_time, parse_time, truncate, Event, Kind, Source};
use crate::store::{EventFilter, EventLog, Order, Store};
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
    /// A TOML configuration file (keys: addr, ingest_addr, database, analyze_every_secs,
    /// rerank_after_secs,
    /// and the [http], [auth], [collect] and [notify] sections); flags and environment
    /// variables win over it.
    #[arg(long, global = true, env = "ROOTLINE_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// Print an incident's post-incident draft as Markdown (the same as the web page's
    /// /incidents/ID/report.md and a GitHub issue's body).
    Report(ReportArgs),
    /// Serve the incident timeline (web pages with JSON twins, /healthz, /metrics).
    Serve(ServeArgs),
    /// Ingest the bundled demo recordings into the store and serve them.
    Demo(ServeArgs),
    /// Poll AWS (CloudTrail, CloudWatch alarms and logs, Config) into the store.
    Collect(crate::collect::CollectArgs),
    /// Open GitHub issues for qualifying hypotheses (the outbox worker).
    Notify(crate::notify::NotifyArgs),
    /// Keep the projections (resource graph, alarm definitions and states) current, or
    /// rebuild them from the log.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Manage the built-in accounts (`[auth] mode = "accounts"`).
    #[command(subcommand)]
    User(UserCommand),
    /// Set up AWS to push events to rootline (EventBridge connection, API destination, rules).
    #[command(subcommand)]
    Aws(crate::collect::setup::AwsCommand),
    /// Run a benchmark and print its figures (built with `--features bench`).
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from stdin (one line), never from the command line.
    Add {
        name: String,
        /// viewer (read only) or responder (may accept, discard, request issues).
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// List the users and their roles.
    List,
    /// Remove a user and end their sessions.
    Remove { name: String },
    /// Set a user's password (read from stdin) and end their sessions.
    Passwd { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Apply the events appended since the projections' checkpoint.
    Update,
    /// Empty the projections and apply the whole log again.
    Rebuild,
    /// Print each projection's checkpoint and size as JSON.
    Status,
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
    /// Serve the push endpoints (/ingest/*) on this address only, and nothing else
    /// there; the pages' listener then serves no /ingest/* [default: `ingest_addr` in
    /// the config file, else one listener for both].
    #[arg(long, env = "ROOTLINE_INGEST_ADDR")]
    pub ingest_addr: Option<String>,
    /// Do not analyse the log in the background (pages show conclusions already stored).
    #[arg(long)]
    pub no_analyze: bool,
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

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Incident id (as listed by `rootline incidents`).
    pub incident: String,
    /// Where people reach rootline's pages, for the report's links (else env
    /// ROOTLINE_PUBLIC_URL, else `[notify] public_url`, else http://127.0.0.1:8080).
    #[arg(long)]
    pub public_url: Option<String>,
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
    /// Words of the name, actor, id or resource keys, through the search index: every
    /// word must match a whole word, the last one may be its start (3 characters or more).
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

/// Runs a parsed command line.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let command = match args.command {
        // A replay reads its file into a fresh in-memory store, whatever is configured.
        Command::Replay(a) => return replay_cmd(a).await,
        other => other,
    };
    let settings = Settings::resolve(args.database.as_deref(), args.config.as_deref())?;
    match command {
        Command::Ingest(a) => ingest_cmd(&settings, a).await,
        Command::Events(a) => events_cmd(&settings, a).await,
        Command::Replay(a) => replay_cmd(a).await,
        Command::Incidents(a) => incidents_cmd(&settings, a).await,
        Command::Hypotheses(a) => hypotheses_cmd(&settings, a).await,
        Command::Report(a) => report_cmd(&settings, a).await,
        Command::Serve(a) => serve_cmd(&settings, a).await,
        Command::Demo(a) => demo_cmd(&settings, a).await,
        Command::Collect(a) => collect_cmd(&settings, a).await,
        Command::Notify(a) => notify_cmd(&settings, a).await,
        Command::Projections(c) => projections_cmd(&settings, c).await,
        Command::User(c) => user_cmd(&settings, c).await,
        Command::Aws(c) => crate::collect::setup::run(c, settings.file.collect.as_ref()).await,
        #[cfg(feature = "bench")]
        Command::Bench(b) => crate::bench::run(b).await,
    }
}

async fn ingest_cmd(settings: &Settings, a: IngestArgs) -> anyhow::Result<ExitCode> {
    let progress = !a.no_progress && std::io::stderr().is_terminal();
    let store = settings.open_store().await?;
    let summary =
        crate::project::alongside(&store, ingest::ingest_files(&store, &a.files, progress))
            .await??;
    store.refresh_statistics().await?;
    store.close().await;
    let mut err = std::io::stderr().lock();
    for r in &summary.rejections {
        let _ = writeln!(err, "rejected: {r}");
    }
    if summary.rejections_dropped() > 0 {
        let _ = writeln!(
            err,
            "rejected: ... and {} more (not listed: the report keeps the first 10,000 or 4 MiB)",
            summary.rejections_dropped()
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
        "rejections_not_listed": s.rejections_dropped(),
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
        resource: a
            .resource
            .as_deref()
            .map(crate::normalize::resource::from_input),
        exclude_read_only: a.no_read_only,
        text: a.search.clone(),
        limit: a.limit.max(0),
        by_time: true,
        order: if a.desc { Order::Desc } else { Order::Asc },
        after_seq: None,
        id_prefix: None,
        without_payload: false,
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

async fn events_cmd(settings: &Settings, a: EventsArgs) -> anyhow::Result<ExitCode> {
    let filter = build_filter(&a)?;
    let store = settings.open_store().await?;
    let events = store.query(&filter).await;
    store.close().await;
    let events = events?;
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

/// A directory removed (with its contents) when dropped.
/// Replay: ingest the recording into a fresh store (a file in a temporary directory, so
/// memory stays flat whatever its size), then run the analyser to the end: the same
/// engine as the server's.
async fn replay_cmd(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let (summary, analysis, _) = crate::app::replay(&a.file).await?;
    for r in &summary.rejections {
        eprintln!("rejected: {r}");
    }
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

/// Brings the conclusions up to date (the analyser, incrementally) and reads them.
async fn current_analysis(store: &Store) -> anyhow::Result<crate::correlate::Analysis> {
    crate::conclusions::Analyser::default()
        .run_to_end(store)
        .await?;
    Ok(crate::conclusions::load_analysis(store).await?)
}

async fn incidents_cmd(settings: &Settings, a: IncidentsArgs) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let analysis = current_analysis(&store).await?;
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

/// The store, brought up to date by the analyser, and incident `id` in it.
async fn analysed_incident(
    settings: &Settings,
    id: &str,
) -> anyhow::Result<(Store, crate::correlate::Incident)> {
    let store = settings.open_store().await?;
    crate::conclusions::Analyser::default()
        .run_to_end(&store)
        .await?;
    let Some(inc) = crate::conclusions::load_one(&store, id)
        .await?
        .and_then(|r| r.incident())
    else {
        bail!("no incident {id:?}; `rootline incidents` lists them");
    };
    Ok((store, inc))
}

async fn hypotheses_cmd(settings: &Settings, a: HypothesesArgs) -> anyhow::Result<ExitCode> {
    let (_store, inc) = analysed_incident(settings, &a.incident).await?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&inc)?)?;
    } else {
        print_incident(&mut out, &inc, usize::MAX)?;
        for h in &inc.hypotheses {
            writeln!(out, "\n  #{} evidence:", h.rank)?;
            for e in &h.evidence {
                writeln!(out, "    {} {}", e.source, clean(&e.id))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn report_cmd(settings: &Settings, a: ReportArgs) -> anyhow::Result<ExitCode> {
    let (store, inc) = analysed_incident(settings, &a.incident).await?;
    let url = match a.public_url {
        Some(u) => u.trim().trim_end_matches('/').to_string(),
        None => app::public_url(
            settings.file.notify.as_ref(),
            crate::web::DEFAULT_PUBLIC_URL,
        ),
    };
    let report = crate::conclusions::report::gather(&store, &inc).await?;
    store.close().await;
    let mut out = std::io::stdout().lock();
    out.write_all(report.markdown(&url).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

async fn serve_cmd(settings: &Settings, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    app::serve(
        store,
        settings.serve_options_with(a.addr.as_deref(), a.ingest_addr.as_deref(), !a.no_analyze),
        None,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a password from stdin: one line, without its line end; refuses an empty one.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("password (input is shown; pipe it in to avoid that): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.chars().count() < 8 {
        anyhow::bail!("the password must have at least 8 characters");
    }
    Ok(pw)
}

async fn user_cmd(settings: &Settings, c: UserCommand) -> anyhow::Result<ExitCode> {
    use crate::web::security::{hash_password, Role};
    let store = settings.open_store().await?;
    let valid_name = |n: &str| {
        let n = n.trim();
        if n.is_empty() || n.len() > 256 || n.chars().any(char::is_control) {
            anyhow::bail!("a user name has 1 to 256 characters and no control characters");
        }
        Ok(n.to_string())
    };
    let code = match c {
        UserCommand::Add { name, role } => {
            let name = valid_name(&name)?;
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("role must be viewer or responder, not {role:?}"))?;
            let hash = hash_password(&read_password()?)?;
            let now = chrono::Utc::now().timestamp_millis();
            if store.add_user(&name, role.as_str(), &hash, now).await? {
                println!("added {name} ({})", role.as_str());
                ExitCode::SUCCESS
            } else {
                eprintln!("rootline: a user named {name} exists (use `rootline user passwd`)");
                ExitCode::from(1)
            }
        }
        UserCommand::List => {
            for u in store.users().await? {
                println!("{}\t{}\t{}", clean(&u.name), u.role, fmt_time(u.created_at));
            }
            ExitCode::SUCCESS
        }
        UserCommand::Remove { name } => {
            if store.remove_user(name.trim()).await? {
                println!("removed {}", clean(name.trim()));
                ExitCode::SUCCESS
            } else {
                eprintln!("rootline: no user named {}", clean(name.trim()));
                ExitCode::from(1)
            }
        }
        UserCommand::Passwd { name } => {
            let hash = hash_password(&read_password()?)?;
            if store.set_password(name.trim(), &hash).await? {
                println!(
                    "password of {} changed; their sessions ended",
                    clean(name.trim())
                );
                ExitCode::SUCCESS
            } else {
                eprintln!("rootline: no user named {}", clean(name.trim()));
                ExitCode::from(1)
            }
        }
    };
    store.close().await;
    Ok(code)
}

async fn demo_cmd(settings: &Settings, a: ServeArgs) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("rootline-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = Vec::new();
    for (name, bytes) in app::DEMO {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        files.push(p);
    }
    let store = settings.open_store().await?;
    let summary = ingest::ingest_files(&store, &files, false).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let analysis = current_analysis(&store).await?;
    eprintln!(
        "demo: {} events appended ({} already there) into {}; {} incidents",
        summary.appended,
        summary.duplicates,
        crate::app::redact_url(&settings.database),
        analysis.incidents.len()
    );
    store.close().await;
    serve_cmd(settings, a).await
}

async fn projections_cmd(settings: &Settings, c: ProjectionsCommand) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let report = match c {
        ProjectionsCommand::Update => {
            Some(crate::project::catch_up(&store, crate::project::BATCH).await?)
        }
        ProjectionsCommand::Rebuild => {
            Some(crate::project::rebuild(&store, crate::project::BATCH).await?)
        }
        ProjectionsCommand::Status => None,
    };
    if report.is_some() {
        store.refresh_statistics().await?;
    }
    // Counted, not read back: the graph of a big store is millions of rows.
    let (checkpoints, rows) = store.projection_sizes().await?;
    store.close().await;
    let n = |t: &str| rows.get(t).copied().unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "applied": report.map(|r| r.events),
            "checkpoints": checkpoints,
            "graph_nodes": n("graph_nodes"),
            "graph_edges": n("graph_edges"),
            "alarm_definitions": n("alarm_definitions"),
            "alarm_states": n("alarm_states"),
            "mark_minutes": n("mark_minutes"),
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `rootline collect`.
async fn collect_cmd(
    settings: &Settings,
    args: crate::collect::CollectArgs,
) -> anyhow::Result<ExitCode> {
    use crate::collect::{self, CollectConfig, Collector, Components, Ctx, Sink};
    let mut cfg = CollectConfig::from_table(settings.file.collect.as_ref())?;
    if args.record.is_some() {
        cfg.record = args.record.clone();
    }
    let store = settings.open_store().await?;
    let components: Components = Default::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(async move {
        app::shutdown_signal().await;
        tracing::info!("Stopping collectors");
        let _ = stop_tx.send(true);
    });

    let result = if args.once {
        let targets = collect::targets(&cfg).await?;
        let sink = Sink::new(store.clone(), cfg.record.as_deref());
        let ctx = Ctx::new(sink, cfg.retry_policy(), stop_rx);
        let collectors: Vec<Box<dyn Collector>> = targets
            .iter()
            .flat_map(|t| collect::collectors_for(&cfg, t))
            .collect();
        if collectors.is_empty() {
            anyhow::bail!("nothing to collect: every source is disabled in [collect]");
        }
        let results = collect::poll_once(collectors, &ctx, &components).await;
        let failed = results.iter().filter(|(_, r)| r.is_err()).count();
        print_collect_results(&results, args.json);
        if failed > 0 {
            eprintln!("rootline: {failed} of {} sources failed", results.len());
            Ok(ExitCode::from(2))
        } else {
            Ok(ExitCode::SUCCESS)
        }
    } else {
        let handles =
            collect::spawn_collectors(store.clone(), &cfg, components.clone(), stop_rx).await?;
        if handles.is_empty() {
            anyhow::bail!("nothing to collect: every source is disabled in [collect]");
        }
        eprintln!(
            "rootline: collecting from {} sources; Ctrl-C stops",
            handles.len()
        );
        for h in handles {
            let _ = h.await;
        }
        Ok(ExitCode::SUCCESS)
    };
    signal.abort();
    store.close().await;
    result
}

fn print_collect_results(
    results: &[(
        String,
        Result<crate::collect::PollReport, crate::collect::CollectError>,
    )],
    json: bool,
) {
    if json {
        let arr: Vec<_> = results
            .iter()
            .map(|(n, r)| match r {
                Ok(p) => {
                    serde_json::json!({"source": n, "ok": true, "received": p.delivered.received,
                    "appended": p.delivered.appended, "duplicates": p.delivered.duplicates,
                    "rejected": p.delivered.rejected, "note": p.note})
                }
                Err(e) => serde_json::json!({"source": n, "ok": false, "error": e.message}),
            })
            .collect();
        println!("{}", serde_json::Value::Array(arr));
        return;
    }
    for (n, r) in results {
        match r {
            Ok(p) => println!(
                "{n}: {} received, {} new, {} duplicates, {} rejected{}",
                p.delivered.received,
                p.delivered.appended,
                p.delivered.duplicates,
                p.delivered.rejected,
                p.note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
            Err(e) => println!("{n}: FAILED: {}", clean(&e.message)),
        }
    }
}

/// Runs `rootline notify`: the config file's `[notify]` section, with the flags (and
/// their environment variables) that differ from the defaults winning over it.
async fn notify_cmd(
    settings: &Settings,
    args: crate::notify::NotifyArgs,
) -> anyhow::Result<ExitCode> {
    use crate::notify::{GithubOptions, NotifyConfig};
    let github = match &settings.file.notify {
        Some(section) => GithubOptions::from_toml(section)?.overlaid_by(&args.github),
        None => args.github.clone(),
    };
    let mut config = NotifyConfig::from_env_and_args(&github, args.dry_run)?;
    config.once = args.once || args.dry_run;
    config.retry_failed = args.retry_failed;
    let store = settings.open_store().await?;
    let report =
        crate::notify::run_worker(store.clone(), config.clone(), app::shutdown_signal()).await?;
    store.close().await;
    if config.dry_run {
        eprintln!(
            "dry run: {} request(s) printed, nothing sent or recorded",
            report.printed
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "requested {}  opened {}  commented {}  failed {}  still due {}",
        report.requested, report.opened, report.commented, report.failed, report.pending
    );
    Ok(if report.failed > 0 || report.pending > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
