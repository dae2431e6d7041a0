//! Issue titles and Markdown bodies, with the hidden marker.
//!
//! Every string that comes from upstream data (alarm names and reasons, CloudTrail
//! fields, resource names, summaries built from them) is untrusted: it is shown only
//! inside a code span, where GitHub renders no mention, reference, link, emoji or HTML.
//! Code spans are fenced with more backticks than the text contains, kept on one line
//! (a line break could end the paragraph and let the rest be parsed as Markdown), and
//! cleared of control and bidirectional-override characters.

use crate::correlate::{Hypothesis, Incident};
use crate::model::{fmt_time, EventRef};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Longest untrusted text shown in one code span, in characters.
const MAX_SPAN: usize = 300;
/// Evidence items listed per hypothesis, and other hypotheses listed.
const MAX_EVIDENCE: usize = 12;
const MAX_OTHERS: usize = 9;
/// GitHub refuses bodies over 65,536 characters; stay well below.
const MAX_BODY: usize = 60_000;
/// GitHub titles are limited to 256 characters.
const MAX_TITLE: usize = 200;

/// Characters that must never reach GitHub from untrusted text: controls (line breaks
/// included) and the invisible ones that reorder or hide text.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Untrusted text as one line of plain characters, at most `max` of them.
fn one_line(s: &str, max: usize) -> String {
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

/// Untrusted text as an inline code span: nothing inside is interpreted by GitHub.
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

/// Percent-encodes a value for the marker and URL path segments: only unreserved
/// characters stay as they are, so the result can close no HTML comment and break no URL.
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

/// The hidden marker identifying the incident and hypothesis of an issue or comment.
pub fn marker(incident: &str, cause: &EventRef) -> String {
    format!(
        "<!-- rootline:incident={} hypothesis={}/{} -->",
        encode(incident),
        encode(&cause.source),
        encode(&cause.id)
    )
}

/// True when a body starts with the marker. Only the first line counts: the same text
/// quoted further down (from upstream data, or a human's edit) never matches.
pub fn has_marker(body: &str, marker: &str) -> bool {
    body.trim_start()
        .lines()
        .next()
        .is_some_and(|l| l.trim() == marker)
}

/// Links to rootline's pages, and the sequence numbers of referenced events.
pub struct Links<'a> {
    pub public_url: &'a str,
    pub seqs: &'a BTreeMap<EventRef, i64>,
}

impl Links<'_> {
    fn incident(&self, id: &str) -> String {
        format!("{}/incidents/{}", self.public_url, encode(id))
    }

    /// An event reference as text, linked to its page when its seq is known.
    fn event(&self, r: &EventRef) -> String {
        let text = format!("{} {}", code(&r.source), code(&r.id));
        match self.seqs.get(r) {
            Some(seq) => format!("[{text}]({}/events/{seq})", self.public_url),
            None => text,
        }
    }
}

/// The issue title: plain text, one line, mentions neutralised.
pub fn title(incident: &Incident, h: &Hypothesis) -> String {
    let raw = format!("[rootline] {}: likely cause {}", incident.title, h.summary);
    let mut t = String::new();
    for c in one_line(&raw, MAX_TITLE).chars() {
        t.push(c);
        if c == '@' {
            // A zero-width space after '@' so no title can mention anyone.
            t.push('\u{200B}');
        }
    }
    t
}

/// The first MAX_EVIDENCE items as code spans, joined by `sep`.
fn code_list(items: &[String], sep: &str) -> String {
    items
        .iter()
        .take(MAX_EVIDENCE)
        .map(|i| code(i))
        .collect::<Vec<_>>()
        .join(sep)
}

fn hypothesis_block(out: &mut String, h: &Hypothesis, links: &Links<'_>) {
    let _ = writeln!(out, "{}", code(&h.summary));
    let _ = writeln!(out);
    let _ = writeln!(out, "- **Cause:** {}", links.event(&h.cause));
    if !h.path.is_empty() {
        let _ = writeln!(out, "- **Path:** {}", code_list(&h.path, " → "));
    }
    if !h.evidence.is_empty() {
        let _ = writeln!(out, "- **Evidence:**");
        for e in h.evidence.iter().take(MAX_EVIDENCE) {
            let _ = writeln!(out, "  - {}", links.event(e));
        }
        if h.evidence.len() > MAX_EVIDENCE {
            let _ = writeln!(out, "  - … and {} more", h.evidence.len() - MAX_EVIDENCE);
        }
    }
}

fn incident_block(out: &mut String, incident: &Incident, links: &Links<'_>) {
    let _ = writeln!(
        out,
        "- **Incident:** [{}]({})",
        code(&incident.id),
        links.incident(&incident.id)
    );
    let _ = writeln!(out, "- **Title:** {}", code(&incident.title));
    let _ = writeln!(out, "- **Opened:** {}", fmt_time(incident.opened_at));
    match incident.resolved_at {
        Some(r) => {
            let _ = writeln!(out, "- **State:** resolved at {}", fmt_time(r));
        }
        None => {
            let _ = writeln!(out, "- **State:** open");
        }
    }
    if !incident.alarm_names.is_empty() {
        let _ = writeln!(
            out,
            "- **Alarms:** {}",
            code_list(&incident.alarm_names, ", ")
        );
    }
    let _ = writeln!(out, "- **Trigger:** {}", links.event(&incident.trigger));
    if !incident.resources.is_empty() {
        let _ = writeln!(
            out,
            "- **Resources:** {}",
            code_list(&incident.resources, ", ")
        );
    }
}

/// The body of a new issue: marker first, the incident, the hypothesis the issue is
/// for, the other ranked hypotheses, links back to rootline.
pub fn issue_body(incident: &Incident, h: &Hypothesis, links: &Links<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", marker(&incident.id, &h.cause));
    let _ = writeln!(
        out,
        "rootline ranked a likely root cause for incident [{}]({}).",
        code(&incident.id),
        links.incident(&incident.id)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "### Incident");
    let _ = writeln!(out);
    incident_block(&mut out, incident, links);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "### Hypothesis ranked {} — score {:.2} ({})",
        h.rank,
        h.score,
        code(&h.kind)
    );
    let _ = writeln!(out);
    hypothesis_block(&mut out, h, links);
    let others: Vec<&Hypothesis> = incident
        .hypotheses
        .iter()
        .filter(|x| x.cause != h.cause)
        .collect();
    if !others.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "### Other ranked hypotheses");
        let _ = writeln!(out);
        for o in others.iter().take(MAX_OTHERS) {
            let line = format!(
                "- ranked {} — score {:.2} ({}) {} — cause {}\n",
                o.rank,
                o.score,
                code(&o.kind),
                code(&o.summary),
                links.event(&o.cause)
            );
            if out.len() + line.len() > MAX_BODY {
                break;
            }
            out.push_str(&line);
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "<sub>Opened by rootline ({}). The first line is a hidden marker rootline uses to find this issue again: please keep it.</sub>",
        code(crate::correlate::ENGINE_VERSION)
    );
    out
}

/// The body of a comment on an incident's existing issue, when re-ranking made another
/// hypothesis the top one.
pub fn comment_body(incident: &Incident, h: &Hypothesis, links: &Links<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", marker(&incident.id, &h.cause));
    let _ = writeln!(
        out,
        "rootline re-ranked incident [{}]({}): the top hypothesis is now this one, ranked {} — score {:.2} ({}).",
        code(&incident.id),
        links.incident(&incident.id),
        h.rank,
        h.score,
        code(&h.kind)
    );
    let _ = writeln!(out);
    hypothesis_block(&mut out, h, links);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(source: &str, id: &str) -> EventRef {
        EventRef {
            source: source.into(),
            id: id.into(),
        }
    }

    #[test]
    fn code_spans_hold_any_text() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("``x"), "``` ``x ```");
        assert_eq!(code("x`"), "`` x` ``");
        assert_eq!(code(""), "(empty)");
        // Line breaks cannot end the paragraph and start Markdown of their own.
        assert_eq!(code("a\n\n# b\r\n<img src=x>"), "`a # b <img src=x>`");
        assert_eq!(code("evil\u{202E}txt\u{200B}"), "`evil txt`");
        assert!(code(&"x".repeat(1000)).chars().count() < MAX_SPAN + 5);
    }

    #[test]
    fn markers_survive_hostile_ids() {
        let m = marker("inc-1", &r("cloudtrail", "x --> <b>@admin</b> `y`"));
        assert_eq!(m.matches("-->").count(), 1, "{m}");
        assert!(m.ends_with(" -->"));
        let inner = &m["<!-- rootline:".len()..m.len() - " -->".len()];
        assert!(!inner.contains(['<', '>', '@', '`']), "{m}");
        assert!(has_marker(&format!("{m}\nbody"), &m));
        assert!(has_marker(&format!("\r\n{m}\r\nbody"), &m));
        // A marker quoted later in a body (e.g. inside upstream text) is not the issue's.
        assert!(!has_marker(&format!("other\n{m}"), &m));
        assert_ne!(
            marker("inc-1", &r("a", "b/c")),
            marker("inc-1", &r("a/b", "c"))
        );
    }

    #[test]
    fn titles_mention_no_one() {
        let inc = Incident {
            id: "inc-1".into(),
            opened_at: 0,
            resolved_at: None,
            title: "@here\nalarm".into(),
            trigger: r("eventbridge", "t"),
            alarms: vec![],
            alarm_names: vec![],
            resources: vec![],
            hypotheses: vec![],
        };
        let h = Hypothesis {
            rank: 1,
            score: 0.5,
            kind: "change".into(),
            cause: r("cloudtrail", "c"),
            summary: "by @alice".into(),
            evidence: vec![],
            path: vec![],
        };
        let t = title(&inc, &h);
        assert!(!t.contains('\n'));
        assert!(
            t.contains("@\u{200B}here") && t.contains("@\u{200B}alice"),
            "{t:?}"
        );
    }
}
