//! Issue titles and Markdown bodies, with the hidden marker.
//!
//! Every string that comes from upstream data (alarm names and reasons, CloudTrail
//! fields, resource names, summaries built from them) is untrusted: it is shown only
//! inside a code span, where GitHub renders no mention, reference, link, emoji or HTML.
//! Code spans are fenced with more backticks than the text contains, kept on one line
//! (a line break could end the paragraph and let the rest be parsed as Markdown), and
//! cleared of control and bidirectional-override characters.

use crate::correlate::{Hypothesis, Incident};
use crate::model::EventRef;
use std::collections::BTreeMap;
use std::fmt::Write;

pub use crate::conclusions::report::{code, encode, one_line, MAX_SPAN};

/// Evidence items listed per hypothesis (in comments).
const MAX_EVIDENCE: usize = 12;
/// GitHub titles are limited to 256 characters.
const MAX_TITLE: usize = 200;

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

/// The body of a new issue: marker first, the hypothesis the issue is for in one line,
/// then the incident's post-incident draft (`report`: [`crate::conclusions::report`]'s
/// Markdown, the same as `/incidents/ID/report.md` and `rootline report`), links back to
/// rootline.
pub fn issue_body(incident: &Incident, h: &Hypothesis, links: &Links<'_>, report: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", marker(&incident.id, &h.cause));
    let _ = writeln!(
        out,
        "rootline ranked a {} root cause for incident [{}]({}): ranked {}, score {:.2} ({}), cause {}.",
        crate::conclusions::confidence(h.score),
        code(&incident.id),
        links.incident(&incident.id),
        h.rank,
        h.score,
        code(&h.kind),
        links.event(&h.cause)
    );
    let _ = writeln!(out);
    out.push_str(report);
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
            unexplained: None,
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
