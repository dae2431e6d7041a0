//! The outbox worker: request issues for qualifying hypotheses, deliver what is due.
//!
//! A delivery is exactly-once on GitHub's side because every attempt first looks for
//! the issue (or comment) by its hidden marker through the issues list, and only then
//! creates it; the outcome is appended to the log, idempotently. A crash anywhere
//! leaves either no issue (and the next attempt creates it) or an issue without an
//! "issue opened" event (and the next attempt finds it by its marker).

use super::config::NotifyConfig;
use super::github::{self, backoff, Failure, GitHub};
use super::markdown::{self, Links};
use super::NotifyError;
use crate::conclusions::outbox::{self, DeliveryState, OutboxEvent};
use crate::correlate::{Analysis, Hypothesis, Incident};
use crate::model::{parse_time, EventRef, Source};
use crate::store::{EventLog, Store};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;

/// Issues are looked for back to this long before the incident opened (clock skew).
const LOOKBACK_MARGIN_MS: i64 = 24 * 3600 * 1000;

/// What a worker run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerReport {
    /// "issue requested" events appended (or, in a dry run, that would be).
    pub requested: usize,
    /// Issues opened (or found already open by their marker).
    pub opened: usize,
    /// Comments made on an incident's existing issue.
    pub commented: usize,
    /// Deliveries stopped by a permanent error ("issue failed" appended).
    pub failed: usize,
    /// Deliveries still due after this run (retries exhausted, rate limit too long).
    pub pending: usize,
    /// Requests printed by a dry run.
    pub printed: usize,
}

impl WorkerReport {
    fn add(&mut self, o: &WorkerReport) {
        self.requested += o.requested;
        self.opened += o.opened;
        self.commented += o.commented;
        self.failed += o.failed;
        self.printed += o.printed;
        self.pending = o.pending;
    }
}

enum Outcome {
    Opened(u64, String),
    Commented,
    Failed,
    Pending,
    Printed,
}

struct Worker {
    store: Store,
    config: NotifyConfig,
    github: Option<GitHub>,
    analysis: Analysis,
    /// Re-analyses when upstream events arrived.
    analyser: crate::conclusions::Analyser,
    first_pass: bool,
}

/// Runs the notification worker on `store` until `shutdown` completes, or, with
/// `config.once`, for one pass that delivers everything due and returns.
///
/// Each pass: re-analyses the log when upstream events arrived since the last pass
/// (appending the engine's conclusions, as `rootline incidents` does); appends an
/// "issue requested" event for the top-ranked hypothesis of each qualifying incident
/// (score ≥ `min_score`, open if `only_open`, opened after `incidents_since`); then
/// delivers every due request in log order, retrying transient failures with backoff.
/// With `config.dry_run` nothing is appended or sent: the requests are printed on stdout.
///
/// Stopping (the shutdown future completing) may interrupt a delivery at any point;
/// that is safe, as a crash is: the next run finds what was created by its marker.
/// A long-running server (`serve`) spawns this in a task when notifications are
/// configured (`GithubOptions::is_configured`): the future is `Send` for a `Store`.
pub async fn run_worker(
    store: Store,
    config: NotifyConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<WorkerReport, NotifyError> {
    let github = if config.dry_run {
        None
    } else {
        Some(GitHub::new(&config)?)
    };
    let once = config.once;
    let poll = config.poll_interval;
    let analyser = if config.dry_run {
        crate::conclusions::Analyser::dry_run()
    } else {
        crate::conclusions::Analyser::default()
    };
    let mut w = Worker {
        store,
        config,
        github,
        analysis: Analysis::default(),
        analyser,
        first_pass: true,
    };
    tracing::info!(
        repo = %w.config.repo,
        api = %w.config.api_url,
        dry_run = w.config.dry_run,
        once,
        "GitHub notifications started"
    );
    let mut shutdown = std::pin::pin!(shutdown);
    let mut total = WorkerReport::default();
    loop {
        let pass = tokio::select! {
            r = w.pass() => r,
            _ = &mut shutdown => {
                tracing::info!("GitHub notifications stopped");
                return Ok(total);
            }
        };
        match pass {
            Ok(r) => total.add(&r),
            Err(e) if once => return Err(e),
            Err(e) => tracing::error!(error = %e, "notification pass failed; trying again later"),
        }
        if once {
            return Ok(total);
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = &mut shutdown => {
                tracing::info!("GitHub notifications stopped");
                return Ok(total);
            }
        }
    }
}

/// Builds an incident from the snapshot kept in a request, for when the current
/// analysis no longer has it.
fn incident_from_request(r: &OutboxEvent) -> Incident {
    let p = &r.payload;
    let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let hyp = p.get("hypothesis");
    let hs = |k: &str| {
        hyp.and_then(|h| h.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let refs = |k: &str| -> Vec<EventRef> {
        hyp.and_then(|h| h.get(k))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    };
    let h = Hypothesis {
        rank: hyp
            .and_then(|h| h.get("rank"))
            .and_then(|v| v.as_u64())
            .unwrap_or(1) as usize,
        score: hyp
            .and_then(|h| h.get("score"))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0),
        kind: hs("kind"),
        cause: r.cause.clone(),
        summary: hs("summary"),
        evidence: refs("evidence"),
        path: hyp
            .and_then(|h| h.get("path"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
    };
    Incident {
        id: r.incident.clone(),
        opened_at: parse_time(&s("incident_opened_at")).unwrap_or(r.time),
        resolved_at: None,
        title: s("incident_title"),
        trigger: r.cause.clone(),
        alarms: Vec::new(),
        alarm_names: Vec::new(),
        resources: p
            .get("resources")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
        hypotheses: vec![h],
        unexplained: None,
    }
}

impl Worker {
    fn qualifies(&self, inc: &Incident) -> Option<Hypothesis> {
        if self.config.only_open && inc.resolved_at.is_some() {
            return None;
        }
        if self
            .config
            .incidents_since
            .is_some_and(|t| inc.opened_at < t)
        {
            return None;
        }
        let top = inc.hypotheses.first()?;
        (top.score >= self.config.min_score).then(|| top.clone())
    }

    /// Brings the conclusions up to date (the analyser appends them; a dry run's
    /// analyser keeps its own in memory), or, with `analyze` off, only reads them.
    async fn refresh(&mut self) -> Result<(), NotifyError> {
        if self.config.analyze {
            let steps = self.analyser.run_to_end(&self.store).await?;
            tracing::debug!(steps, "analysed the log");
        }
        let mut analysis = crate::conclusions::load_analysis(&self.store).await?;
        for inc in self.analyser.dry_incidents() {
            match analysis.incidents.iter_mut().find(|i| i.id == inc.id) {
                Some(i) => *i = inc.clone(),
                None => analysis.incidents.push(inc.clone()),
            }
        }
        analysis
            .incidents
            .sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
        self.analysis = analysis;
        Ok(())
    }

    async fn pass(&mut self) -> Result<WorkerReport, NotifyError> {
        let mut report = WorkerReport::default();
        self.refresh().await?;
        let mut virtual_requests = Vec::new();
        let qualifying: Vec<(Incident, Hypothesis)> = self
            .analysis
            .incidents
            .iter()
            .filter_map(|i| self.qualifies(i).map(|h| (i.clone(), h)))
            .collect();
        let existing = outbox::fold(&outbox::read(&self.store, None).await?);
        for (inc, h) in &qualifying {
            if self.config.dry_run {
                if !existing
                    .iter()
                    .any(|s| s.delivery.incident == inc.id && s.delivery.cause == h.cause)
                {
                    virtual_requests.push(virtual_request(inc, h));
                    report.requested += 1;
                }
            } else if outbox::request(&self.store, inc, h, outbox::AUTO, false).await? {
                tracing::info!(incident = %inc.id, cause = ?format!("{}/{}", h.cause.source, h.cause.id), score = h.score, "issue requested");
                report.requested += 1;
            }
        }
        if self.first_pass && self.config.retry_failed && !self.config.dry_run {
            for s in existing.iter().filter(|s| s.delivery.state == "failed") {
                let (inc, h) = self.subject(&s.request);
                let by = s
                    .request
                    .by
                    .clone()
                    .unwrap_or_else(|| outbox::AUTO.to_string());
                if outbox::request(&self.store, &inc, &h, &by, true).await? {
                    tracing::info!(incident = %inc.id, cause = ?format!("{}/{}", h.cause.source, h.cause.id), "failed delivery requested again");
                    report.requested += 1;
                }
            }
        }
        self.first_pass = false;

        let mut states = outbox::fold(&outbox::read(&self.store, None).await?);
        states.extend(outbox::fold(&virtual_requests));
        let due: Vec<usize> = (0..states.len()).filter(|&i| states[i].is_due()).collect();
        for i in due {
            let outcome = self.deliver(&states[i], &states).await?;
            match outcome {
                Outcome::Opened(number, url) => {
                    report.opened += 1;
                    let d = &mut states[i].delivery;
                    d.state = "opened".into();
                    d.issue_number = Some(number);
                    d.issue_url = Some(url);
                }
                Outcome::Commented => report.commented += 1,
                Outcome::Failed => report.failed += 1,
                Outcome::Pending => report.pending += 1,
                Outcome::Printed => {
                    report.printed += 1;
                    // In a dry run, later requests of the incident would comment on it.
                    states[i].delivery.state = "opened".into();
                }
            }
        }
        Ok(report)
    }

    /// The incident and hypothesis a request is about: from the current analysis when
    /// it still has them, else from the snapshot in the request.
    fn subject(&self, r: &OutboxEvent) -> (Incident, Hypothesis) {
        let snap = incident_from_request(r);
        let mut inc = match self.analysis.incidents.iter().find(|i| i.id == r.incident) {
            Some(i) => i.clone(),
            None => snap.clone(),
        };
        let h = match inc.hypotheses.iter().find(|h| h.cause == r.cause) {
            Some(h) => h.clone(),
            None => {
                let h = snap.hypotheses[0].clone();
                inc.hypotheses.push(h.clone());
                h
            }
        };
        (inc, h)
    }

    /// Sequence numbers of the events an incident's rendering links to.
    async fn seqs(&self, inc: &Incident) -> Result<BTreeMap<EventRef, i64>, NotifyError> {
        let mut refs: Vec<&EventRef> = vec![&inc.trigger];
        for h in inc.hypotheses.iter().take(10) {
            refs.push(&h.cause);
            refs.extend(h.evidence.iter().take(12));
        }
        let mut out = BTreeMap::new();
        for r in refs {
            if out.contains_key(r) {
                continue;
            }
            if let Some(src) = Source::parse(&r.source) {
                if let Some(e) = self.store.find(src, &r.id).await? {
                    out.insert(r.clone(), e.seq);
                }
            }
        }
        Ok(out)
    }

    async fn deliver(
        &self,
        d: &DeliveryState,
        all: &[DeliveryState],
    ) -> Result<Outcome, NotifyError> {
        let (inc, h) = self.subject(&d.request);
        let seqs = self.seqs(&inc).await?;
        let links = Links {
            public_url: &self.config.public_url,
            seqs: &seqs,
        };
        // An automatic request for an incident that already has an issue (the top
        // hypothesis changed after re-ranking) becomes a comment on that issue.
        let existing = all
            .iter()
            .filter(|s| {
                s.delivery.incident == d.delivery.incident && s.delivery.cause != d.delivery.cause
            })
            .find(|s| {
                s.delivery.state == "opened"
                    && (s.delivery.issue_number.is_some() || self.config.dry_run)
            });
        let comment_on = if d.is_auto() { existing } else { None };
        let marker = markdown::marker(&inc.id, &h.cause);
        // The issue body is the incident's post-incident draft, as the report page has it.
        let report = crate::conclusions::report::gather(&self.store, &inc)
            .await?
            .markdown(&self.config.public_url);
        let cause_text = format!("{}/{}", h.cause.source, h.cause.id);

        if self.config.dry_run {
            let text = match comment_on {
                Some(s) => {
                    let number = s
                        .delivery
                        .issue_number
                        .map_or("{issue_number}".to_string(), |n| n.to_string());
                    let url = format!(
                        "{}/repos/{}/{}/issues/{number}/comments",
                        self.config.api_url, self.config.repo.owner, self.config.repo.name
                    );
                    let body =
                        serde_json::json!({"body": markdown::comment_body(&inc, &h, &links)});
                    github::describe_request("POST", &url, &body, &self.config.user_agent)
                }
                None => {
                    let (url, body) = github::create_issue_request(
                        &self.config.api_url,
                        &self.config.repo,
                        &self.config.labels,
                        &markdown::title(&inc, &h),
                        &markdown::issue_body(&inc, &h, &links, &report),
                    );
                    github::describe_request("POST", &url, &body, &self.config.user_agent)
                }
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "# incident {} hypothesis {cause_text}: rootline first looks for the marker {marker}",
                inc.id
            );
            let _ = writeln!(out, "{text}");
            return Ok(Outcome::Printed);
        }

        let Some(gh) = self.github.as_ref() else {
            return Err(NotifyError::Config("no GitHub client".into()));
        };
        let not_before = inc.opened_at - LOOKBACK_MARGIN_MS;
        let policy = &self.config.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = match comment_on {
                Some(s) => {
                    let number = s.delivery.issue_number.unwrap_or(0);
                    let body = markdown::comment_body(&inc, &h, &links);
                    match gh.find_comment(number, &marker).await {
                        Ok(Some(c)) => Ok((number, c.html_url, true)),
                        Ok(None) => gh
                            .create_comment(number, &body)
                            .await
                            .map(|c| (number, c.html_url, false)),
                        Err(e) => Err(e),
                    }
                }
                None => match gh.find_issue(&marker, not_before).await {
                    Ok(Some(i)) => Ok((i.number, i.html_url, true)),
                    Ok(None) => {
                        let title = markdown::title(&inc, &h);
                        let body = markdown::issue_body(&inc, &h, &links, &report);
                        gh.create_issue(&title, &body)
                            .await
                            .map(|i| (i.number, i.html_url, false))
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok((number, url, found)) => {
                    if comment_on.is_some() {
                        outbox::commented(&self.store, d, number, &url, found, &inc.resources)
                            .await?;
                        tracing::info!(incident = %inc.id, cause = ?cause_text, number, url = %url, found_existing = found, "commented on the incident's GitHub issue");
                        return Ok(Outcome::Commented);
                    }
                    outbox::opened(&self.store, d, number, &url, found, &inc.resources).await?;
                    tracing::info!(incident = %inc.id, cause = ?cause_text, number, url = %url, found_existing = found, "GitHub issue opened");
                    return Ok(Outcome::Opened(number, url));
                }
                Err(Failure::Permanent { status, message }) => {
                    let message = gh.scrub(&message);
                    outbox::failed(&self.store, d, &message, status, &inc.resources).await?;
                    tracing::error!(incident = %inc.id, cause = ?cause_text, error = %message, "GitHub issue delivery failed");
                    return Ok(Outcome::Failed);
                }
                Err(Failure::Retry {
                    reason,
                    wait,
                    maybe_done,
                }) => {
                    if attempt >= policy.max_attempts {
                        tracing::warn!(incident = %inc.id, cause = ?cause_text, attempts = attempt, error = %reason, "GitHub issue delivery still failing; leaving it due for a later pass");
                        return Ok(Outcome::Pending);
                    }
                    let mut delay = match wait {
                        Some(w) if w > policy.max_wait => {
                            tracing::warn!(incident = %inc.id, wait_s = w.as_secs_f64(), error = %reason, "GitHub asks to wait longer than --github-max-wait; leaving the delivery due");
                            return Ok(Outcome::Pending);
                        }
                        Some(w) => w,
                        None => backoff(policy, attempt),
                    };
                    if maybe_done {
                        // The create may have happened: give GitHub time to finish it
                        // before looking for it.
                        delay = delay.max(policy.settle);
                    }
                    tracing::warn!(incident = %inc.id, cause = ?cause_text, attempt, retry_in_s = delay.as_secs_f64(), error = %reason, "GitHub request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

/// Incidents as the engine's stored conclusions describe them: "incident opened",
/// "incident resolved" and the latest "hypotheses ranked" of each.
/// The incidents and latest hypotheses the log records (the analyser's conclusions).
/// A request that is not in the log (dry runs).
fn virtual_request(inc: &Incident, h: &Hypothesis) -> OutboxEvent {
    OutboxEvent {
        seq: 0,
        time: chrono::Utc::now().timestamp_millis(),
        kind: outbox::REQUESTED.to_string(),
        incident: inc.id.clone(),
        cause: h.cause.clone(),
        by: Some(outbox::AUTO.to_string()),
        number: None,
        url: None,
        error: None,
        payload: serde_json::json!({
            "incident_title": inc.title,
            "incident_opened_at": crate::model::fmt_time(inc.opened_at),
            "resources": inc.resources,
            "hypothesis": {"rank": h.rank, "score": h.score, "kind": h.kind, "summary": h.summary,
                           "evidence": h.evidence, "path": h.path},
        }),
    }
}
