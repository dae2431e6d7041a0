//! The post-incident draft: one incident's summary, impact window, key events, ranked
//! hypotheses with their evidence and the verdicts given, gathered from the log
//! ([`gather`]) and written as Markdown ([`Report::markdown`]). The same Markdown is the
//! `/incidents/ID/report.md` download, `rootline report INCIDENT`'s output and the body
//! of a GitHub issue; the HTML page renders the same [`Report`].
//!
//! Everything from upstream data (names, ids, resources, summaries, people's names) is
//! written only inside a code span ([`code`]), where neither GitHub nor any CommonMark
//! renderer interprets HTML, links, mentions or emphasis; table cells also escape `|`.
//! Output depends only on the store (no wall clock, ordered collections only).

use super::{confidence, feedback_prefix, Feedback};
use crate::correlate::Incident;
use crate::model::{display_name, display_names_in, fmt_time, EventRef, Kind, Source};
use crate::store::{EventFilter, EventLog, StoreError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Longest untrusted text shown in one code span, in characters.
pub const MAX_SPAN: usize = 300;
/// Hypotheses in a report, evidence items per hypothesis, key events, verdicts.
const MAX_HYPOTHESES: usize = 10;
const MAX_EVIDENCE: usize = 12;
const MAX_KEY_EVENTS: usize = 40;
const MAX_VERDICTS: usize = 20;
/// Hypotheses whose evidence makes the key events: the top one, and the likely or
/// possible ones among the first this many.
const KEY_HYPOTHESES: usize = 3;
/// The Markdown stays under this many bytes (GitHub takes 65,536 characters a body).
pub const MAX_MARKDOWN: usize = 56_000;

/// Characters that must never reach a Markdown renderer from untrusted text: controls
/// (line breaks included) and the invisible ones that reorder or hide text.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Untrusted text as one line of plain characters, at most `max` of them.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    let mut last_space = false;
    for c in s.chars() {
        let c = if is_unsafe(c) { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if n == max {
            out.push('…');
            break;
        }
        out.push(c);
        n += 1;
    }
    out.trim().to_string()
}

/// Untrusted text as an inline code span: nothing inside is interpreted.
pub fn code(s: &str) -> String {
    let text = one_line(s, MAX_SPAN);
    if text.trim().is_empty() {
        return "(empty)".to_string();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    // CommonMark strips one space on each side when both are there, so padding keeps a
    // leading or trailing backtick (or space) from touching the fence.
    if text.starts_with('`') || text.ends_with('`') || text.starts_with(' ') || text.ends_with(' ')
    {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

/// A code span for a table cell: `|` escaped too (GitHub splits cells at a bare `|`,
/// even inside a code span, and removes the backslash).
pub fn cell(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// Percent-encodes a value for URL path segments and markers: only unreserved
/// characters stay as they are.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An event of the report, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ReportEvent {
    pub source: String,
    pub id: String,
    /// None when the log does not have it (any more).
    pub seq: Option<i64>,
    pub time: Option<i64>,
    pub time_text: String,
    pub offset: String,
    /// Without API version suffix.
    pub name: String,
    pub kind: String,
    pub resource: String,
    pub detail: String,
    /// cause, effect or symptom of a hypothesis ("cause, ranked 2"), or alarm.
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportHypothesis {
    pub rank: usize,
    pub score: f64,
    pub score_text: String,
    pub confidence: &'static str,
    pub kind: String,
    pub summary: String,
    pub cause: ReportEvent,
    pub path: Vec<String>,
    pub evidence: Vec<ReportEvent>,
    pub evidence_more: usize,
    /// accepted, discarded or none.
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportVerdict {
    pub time: String,
    pub verdict: String,
    pub cause: EventRef,
    /// Who gave it, as typed in the form; empty when no name was given.
    pub by: String,
}

/// One incident's post-incident draft.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: String,
    pub title: String,
    pub state: &'static str,
    pub opened: String,
    pub resolved: Option<String>,
    pub duration: String,
    pub alarm_names: Vec<String>,
    pub trigger: ReportEvent,
    pub resources: Vec<String>,
    /// The headline: the top hypothesis when likely or possible.
    pub summary: String,
    pub key_events: Vec<ReportEvent>,
    pub hypotheses: Vec<ReportHypothesis>,
    pub hypotheses_more: usize,
    pub verdicts: Vec<ReportVerdict>,
}

/// "-14 min", "+3.5 min", "-1 h 05 min", "+40 s".
pub fn offset(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    let a = ms.saturating_abs();
    if a < 60_000 {
        format!("{sign}{} s", a / 1000)
    } else if a < 3_600_000 {
        let m = a as f64 / 60_000.0;
        if m.fract() < 0.05 || m >= 10.0 {
            format!("{sign}{} min", m.round() as i64)
        } else {
            format!("{sign}{m:.1} min")
        }
    } else {
        format!(
            "{sign}{} h {:02} min",
            a / 3_600_000,
            (a % 3_600_000) / 60_000
        )
    }
}

/// Reads the events a report names, each once.
struct Lookup<'a, S: EventLog> {
    store: &'a S,
    opened: i64,
    seen: BTreeMap<EventRef, Option<crate::model::Event>>,
}

impl<S: EventLog> Lookup<'_, S> {
    async fn event(&mut self, r: &EventRef, role: &str) -> Result<ReportEvent, StoreError> {
        if !self.seen.contains_key(r) {
            let ev = match Source::parse(&r.source) {
                Some(s) => self.store.find(s, &r.id).await?,
                None => None,
            };
            self.seen.insert(r.clone(), ev);
        }
        let ev = self.seen.get(r).and_then(Option::as_ref);
        Ok(ReportEvent {
            source: r.source.clone(),
            id: r.id.clone(),
            seq: ev.map(|e| e.seq),
            time: ev.map(|e| e.event_time),
            time_text: ev.map(|e| fmt_time(e.event_time)).unwrap_or_default(),
            offset: ev
                .map(|e| offset(e.event_time.saturating_sub(self.opened)))
                .unwrap_or_default(),
            name: ev
                .map(|e| display_name(&e.name).to_string())
                .unwrap_or_default(),
            kind: ev.map(|e| e.kind.tag().to_string()).unwrap_or_default(),
            resource: ev
                .and_then(|e| e.resources.first().cloned())
                .unwrap_or_default(),
            detail: ev.map(detail).unwrap_or_default(),
            role: role.to_string(),
        })
    }
}

/// What an event says in a few words.
fn detail(e: &crate::model::Event) -> String {
    match &e.kind {
        Kind::Alarm {
            old_state,
            new_state,
            ..
        } => format!("{old_state} → {new_state}"),
        Kind::Deployment {
            target, outcome, ..
        } => format!("{target}: {outcome}"),
        Kind::Anomaly { priority, .. } => format!("anomaly, {priority}"),
        _ => e.error_code.clone().unwrap_or_default(),
    }
}

/// Gathers the report of `incident` from the log: the events its alarms and the
/// evidence of its hypotheses name (one indexed lookup each, at most a few dozen) and the
/// verdicts given on it (a prefix read).
pub async fn gather<S: EventLog>(store: &S, incident: &Incident) -> Result<Report, StoreError> {
    let mut look = Lookup {
        store,
        opened: incident.opened_at,
        seen: BTreeMap::new(),
    };
    let feedback = store
        .query(&EventFilter {
            sources: vec![Source::Rootline],
            id_prefix: Some(feedback_prefix(&incident.id)),
            ..Default::default()
        })
        .await?;
    let mut latest: BTreeMap<EventRef, String> = BTreeMap::new();
    let mut verdicts = Vec::new();
    for e in &feedback {
        let f: Feedback = serde_json::from_str(&e.payload).unwrap_or_default();
        let Some(cause) = f.hypothesis else { continue };
        if f.verdict.is_empty() {
            continue;
        }
        latest.insert(cause.clone(), f.verdict.clone());
        verdicts.push(ReportVerdict {
            time: fmt_time(e.event_time),
            verdict: f.verdict,
            cause,
            by: f.by.unwrap_or_default(),
        });
    }
    verdicts.truncate(MAX_VERDICTS);

    let mut hypotheses = Vec::new();
    let mut key: Vec<ReportEvent> = Vec::new();
    for h in incident.hypotheses.iter().take(MAX_HYPOTHESES) {
        let cause = look.event(&h.cause, "cause").await?;
        let mut evidence = Vec::new();
        let last = h.evidence.len().saturating_sub(1);
        for (i, r) in h.evidence.iter().enumerate().take(MAX_EVIDENCE) {
            let role = if *r == h.cause || i == 0 {
                "cause"
            } else if i == last {
                "symptom"
            } else {
                "effect"
            };
            let mut ev = look.event(r, role).await?;
            if ev.kind == "alarm" && role == "effect" {
                ev.role = "symptom".into();
            }
            evidence.push(ev);
        }
        if h.rank == 1 || (h.rank <= KEY_HYPOTHESES && confidence(h.score) != "weak") {
            for ev in &evidence {
                let mut k = ev.clone();
                k.role = format!("{}, ranked {}", ev.role, h.rank);
                key.push(k);
            }
        }
        hypotheses.push(ReportHypothesis {
            rank: h.rank,
            score: h.score,
            score_text: format!("{:.2}", h.score),
            confidence: confidence(h.score),
            kind: h.kind.clone(),
            summary: display_names_in(&h.summary),
            cause,
            path: h.path.clone(),
            evidence_more: h.evidence.len().saturating_sub(MAX_EVIDENCE),
            evidence,
            verdict: latest
                .get(&h.cause)
                .cloned()
                .unwrap_or_else(|| "none".into()),
        });
    }
    for a in incident.alarms.iter().take(MAX_KEY_EVENTS) {
        key.push(look.event(a, "alarm").await?);
    }
    // Each event once (its first role), in time order; unknown ones last.
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    key.retain(|e| seen.insert((e.source.clone(), e.id.clone())));
    key.sort_by(|a, b| {
        (a.time.is_none(), a.time, a.seq, &a.source, &a.id).cmp(&(
            b.time.is_none(),
            b.time,
            b.seq,
            &b.source,
            &b.id,
        ))
    });
    key.truncate(MAX_KEY_EVENTS);

    let trigger = look.event(&incident.trigger, "trigger").await?;
    let summary = match hypotheses.first() {
        Some(h) if h.confidence != "weak" => {
            format!(
                "{} cause (score {}): {}",
                h.confidence, h.score_text, h.summary
            )
        }
        Some(h) => match incident.unexplained {
            Some(u) => format!(
                "no convincing cause found ({:.0} % of the blame stays unexplained; the top \
                 hypothesis is weak, score {})",
                u * 100.0,
                h.score_text
            ),
            None => format!(
                "no convincing cause found (the top hypothesis is weak, score {})",
                h.score_text
            ),
        },
        None => "no convincing cause found (no candidate in the look-back window)".into(),
    };
    Ok(Report {
        id: incident.id.clone(),
        title: incident.title.clone(),
        state: if incident.resolved_at.is_some() {
            "resolved"
        } else {
            "open"
        },
        opened: fmt_time(incident.opened_at),
        resolved: incident.resolved_at.map(fmt_time),
        duration: incident
            .resolved_at
            .map(|r| {
                offset(r.saturating_sub(incident.opened_at))
                    .trim_start_matches(['+', '-'])
                    .to_string()
            })
            .unwrap_or_else(|| "ongoing".into()),
        alarm_names: incident.alarm_names.clone(),
        trigger,
        resources: incident.resources.clone(),
        summary,
        key_events: key,
        hypotheses_more: incident.hypotheses.len().saturating_sub(MAX_HYPOTHESES),
        hypotheses,
        verdicts,
    })
}

impl Report {
    /// The report as Markdown, links absolute under `public_url` (no trailing slash).
    /// Deterministic; under [`MAX_MARKDOWN`] bytes (cut at a line, saying so).
    pub fn markdown(&self, public_url: &str) -> String {
        let base = public_url.trim_end_matches('/');
        let page = format!("{base}/incidents/{}", encode(&self.id));
        let ev = |e: &ReportEvent| -> String {
            let text = if e.name.is_empty() {
                format!("{} {}", code(&e.source), code(&e.id))
            } else {
                code(&e.name)
            };
            match e.seq {
                Some(seq) => format!("[{text}]({base}/events/{seq})"),
                None => text,
            }
        };
        let ev_cell = |e: &ReportEvent| -> String {
            let text = if e.name.is_empty() {
                format!("{} {}", cell(&e.source), cell(&e.id))
            } else {
                cell(&e.name)
            };
            match e.seq {
                Some(seq) => format!("[{text}]({base}/events/{seq})"),
                None => text,
            }
        };
        let list = |items: &[String], sep: &str| -> String {
            items
                .iter()
                .take(MAX_EVIDENCE)
                .map(|i| code(i))
                .collect::<Vec<_>>()
                .join(sep)
        };
        let mut out = String::new();
        let _ = writeln!(out, "## Post-incident draft: {}", code(&self.title));
        let _ = writeln!(out);
        let _ = writeln!(out, "- **Incident:** [{}]({page})", code(&self.id));
        let _ = writeln!(out, "- **Title:** {}", code(&self.title));
        let _ = writeln!(out, "- **Summary:** {}", plain_then_code(&self.summary));
        match &self.resolved {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "- **Impact window:** {} to {} ({}), resolved",
                    self.opened, r, self.duration
                );
            }
            None => {
                let _ = writeln!(out, "- **Impact window:** from {}, still open", self.opened);
            }
        }
        if !self.alarm_names.is_empty() {
            let _ = writeln!(out, "- **Alarms:** {}", list(&self.alarm_names, ", "));
        }
        let _ = writeln!(out, "- **Trigger:** {}", ev(&self.trigger));
        if !self.resources.is_empty() {
            let _ = writeln!(out, "- **Resources:** {}", list(&self.resources, ", "));
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "### Timeline of key events");
        let _ = writeln!(out);
        if self.key_events.is_empty() {
            let _ = writeln!(out, "No key event is in the log.");
        } else {
            let _ = writeln!(
                out,
                "| time (UTC) | offset | event | resource | what | role |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|");
            for e in &self.key_events {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    if e.time_text.is_empty() {
                        "-"
                    } else {
                        &e.time_text
                    },
                    if e.offset.is_empty() { "-" } else { &e.offset },
                    ev_cell(e),
                    if e.resource.is_empty() {
                        "-".to_string()
                    } else {
                        cell(&e.resource)
                    },
                    if e.detail.is_empty() {
                        "-".to_string()
                    } else {
                        cell(&e.detail)
                    },
                    e.role
                );
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "### Hypotheses");
        let _ = writeln!(out);
        if self.hypotheses.is_empty() {
            let _ = writeln!(out, "No candidate cause in the look-back window.");
        }
        for h in &self.hypotheses {
            let _ = writeln!(
                out,
                "#### Ranked {}: {} (score {}, {})",
                h.rank,
                h.confidence,
                h.score_text,
                code(&h.kind)
            );
            let _ = writeln!(out);
            let _ = writeln!(out, "{}", code(&h.summary));
            let _ = writeln!(out);
            let _ = writeln!(out, "- **Cause:** {}", ev(&h.cause));
            if !h.path.is_empty() {
                let _ = writeln!(out, "- **Path:** {}", list(&h.path, " → "));
            }
            if !h.evidence.is_empty() {
                let _ = writeln!(out, "- **Evidence:**");
                for e in &h.evidence {
                    let when = if e.time_text.is_empty() {
                        String::new()
                    } else {
                        format!(" at {} ({})", e.time_text, e.offset)
                    };
                    let _ = writeln!(out, "  - {}: {}{when}", e.role, ev(e));
                }
                if h.evidence_more > 0 {
                    let _ = writeln!(out, "  - … and {} more", h.evidence_more);
                }
            }
            let _ = writeln!(out, "- **Verdict:** {}", h.verdict);
            let _ = writeln!(out);
        }
        if self.hypotheses_more > 0 {
            let _ = writeln!(
                out,
                "{} more hypotheses are on the incident page.",
                self.hypotheses_more
            );
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "### Verdicts");
        let _ = writeln!(out);
        if self.verdicts.is_empty() {
            let _ = writeln!(out, "No verdict given yet.");
        } else {
            let _ = writeln!(out, "| time (UTC) | verdict | hypothesis cause | by |");
            let _ = writeln!(out, "|---|---|---|---|");
            for v in &self.verdicts {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} {} | {} |",
                    v.time,
                    v.verdict,
                    cell(&v.cause.source),
                    cell(&v.cause.id),
                    if v.by.is_empty() {
                        "(no name given)".to_string()
                    } else {
                        cell(&v.by)
                    }
                );
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "### Links");
        let _ = writeln!(out);
        let _ = writeln!(out, "- Incident page: <{page}>");
        let _ = writeln!(
            out,
            "- This report: <{page}/report> (Markdown: <{page}/report.md>)"
        );
        if out.len() > MAX_MARKDOWN {
            let mut cut = MAX_MARKDOWN;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            let end = out[..cut].rfind('\n').unwrap_or(0);
            out.truncate(end + 1);
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "(The report was cut here; the full one: <{page}/report>)"
            );
        }
        out
    }
}

/// The summary line: our words as they are, the quoted summary in a code span.
fn plain_then_code(summary: &str) -> String {
    match summary.split_once(": ") {
        Some((ours, quoted)) if ours.contains("cause (score") => {
            format!("{ours}: {}", code(quoted))
        }
        _ => summary.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile_event(role: &str) -> ReportEvent {
        ReportEvent {
            source: "cloudtrail".into(),
            id: "x | y `z` <b>".into(),
            seq: Some(7),
            time: Some(1_000),
            time_text: fmt_time(1_000),
            offset: offset(-60_000),
            name: "Evil|Name`<img src=x onerror=alert(1)>` @octocat #12".into(),
            kind: "change".into(),
            resource: "sg/a|b\n\n# heading".into(),
            detail: "OK | ALARM".into(),
            role: role.into(),
        }
    }

    #[test]
    fn hostile_fields_stay_in_code_and_tables_keep_their_cells() {
        let r = Report {
            id: "inc-1".into(),
            title: "t <script>@here</script>".into(),
            state: "open",
            opened: fmt_time(0),
            resolved: None,
            duration: "ongoing".into(),
            alarm_names: vec!["a|b".into()],
            trigger: hostile_event("trigger"),
            resources: vec!["lb/x`y".into()],
            summary: "likely cause (score 0.90): by @octocat <img src=x> #3".into(),
            key_events: vec![hostile_event("cause, ranked 1"), hostile_event("alarm")],
            hypotheses: vec![ReportHypothesis {
                rank: 1,
                score: 0.9,
                score_text: "0.90".into(),
                confidence: "likely",
                kind: "change".into(),
                summary: "by @octocat <img src=x>".into(),
                cause: hostile_event("cause"),
                path: vec!["sg/a|b".into()],
                evidence: vec![hostile_event("cause")],
                evidence_more: 0,
                verdict: "accepted".into(),
            }],
            hypotheses_more: 0,
            verdicts: vec![ReportVerdict {
                time: fmt_time(0),
                verdict: "accepted".into(),
                cause: EventRef {
                    source: "cloudtrail".into(),
                    id: "a|b".into(),
                },
                by: "<b>Ann</b> | @octocat".into(),
            }],
        };
        let md = r.markdown("https://r.example/");
        assert_eq!(md, r.markdown("https://r.example"), "deterministic");
        let mut html = String::new();
        pulldown_cmark::html::push_html(
            &mut html,
            pulldown_cmark::Parser::new_ext(&md, pulldown_cmark::Options::ENABLE_TABLES),
        );
        let mut outside = String::new();
        let mut rest = html.as_str();
        while let Some(i) = rest.find("<code>") {
            outside.push_str(&rest[..i]);
            rest = &rest[i..];
            let j = rest.find("</code>").unwrap_or(rest.len() - 7);
            rest = &rest[j + 7..];
        }
        outside.push_str(rest);
        for bad in [
            "<img", "<script", "<b>", "@octocat", "@here", "<h1", "#12", "#3",
        ] {
            assert!(
                !outside.contains(bad),
                "{bad} outside code:\n{outside}\n---\n{md}"
            );
        }
        for row in html.split("<tr>").skip(1) {
            let row = row.split("</tr>").next().unwrap_or("");
            let cells = row.matches("<td").count() + row.matches("<th").count();
            assert!(cells == 6 || cells == 4, "{cells} cells: {row}");
        }
        assert!(md.contains("](https://r.example/events/7)"), "{md}");
    }

    #[test]
    fn code_spans_and_cells_hold_any_text() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(cell("a|b"), "`a\\|b`");
        assert_eq!(code("a\n\n# b\r\n<img src=x>"), "`a # b <img src=x>`");
    }
}
