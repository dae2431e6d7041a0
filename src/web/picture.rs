//! The incident page's picture: lanes of a window drawn as inline SVG on the server.
//!
//! [`layout`] turns what the store read (counted marks, alarm transitions, the selected
//! hypothesis's evidence) into a [`Picture`]: lanes, alarm-state bands, marks and axis
//! ticks in view-box units. [`svg`] writes it. Every text written goes through [`esc`],
//! the one escaping function; every drawn thing is an `<a>` to an event (or resource)
//! page with a `<title>`. Bursts are counted marks, never one shape per event, and the
//! number of marks is capped ([`MAX_MARKS`]) by widening the time buckets, so the
//! picture's size does not grow with the window's events.

use super::views::{duration, offset};
use crate::model::{display_name, fmt_time, Event, Kind};
use crate::store::WindowMark;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// View-box width; the SVG scales to the page's width (`width="100%"`).
pub const WIDTH: i64 = 800;
const LEFT: i64 = 8;
const RIGHT: i64 = WIDTH - 8;
const AXIS_H: i64 = 30;
const LANE_H: i64 = 38;
/// Time buckets across the window before any widening.
pub const BUCKETS: i64 = 100;
/// Marks drawn at most (beyond, buckets are merged two by two).
pub const MAX_MARKS: usize = 400;
/// Resource lanes at most; the rest share one "other resources" lane.
pub const MAX_LANES: usize = 12;
const OTHER_LANE: &str = "other resources";

/// Escapes text for SVG (XML) content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 allows no other control characters, not even as references.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The part an event plays in the selected hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Cause,
    Effect,
    Symptom,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cause => "cause",
            Role::Effect => "effect",
            Role::Symptom => "symptom",
        }
    }
}

/// An event of the selected hypothesis's evidence chain, drawn on its own.
#[derive(Debug, Clone)]
pub struct ChainEvent {
    pub event: Event,
    pub role: Role,
}

/// What the picture is drawn from.
pub struct Input<'a> {
    pub from: i64,
    pub to: i64,
    pub opened: i64,
    pub resolved: Option<i64>,
    /// `alarm/NAME` keys of the incident's alarms.
    pub alarm_lanes: Vec<String>,
    /// Resources that get a lane first, in order: the symptoms', the path's, the
    /// candidates'.
    pub preferred: Vec<String>,
    /// Events of the window per lane (alarms and the chain's events left out), from
    /// `Store::window_picture`: what the busiest lanes are chosen by.
    pub lane_totals: &'a [(String, i64)],
    /// Counted marks of the window (alarms and the chain's events left out), read for
    /// the lanes [`lanes`] chooses.
    pub marks: &'a [WindowMark],
    /// The marks' buckets: bucket 0 starts at `origin`.
    pub origin: i64,
    pub bucket_ms: i64,
    /// Transitions of the alarms of `alarm_lanes` in the window, in time order (those of
    /// the chain included: they make the bands; the chain draws their marks). Other
    /// alarms' transitions are counted among `marks`.
    pub alarms: &'a [Event],
    /// Each alarm lane's latest transition before the window.
    pub before: &'a BTreeMap<String, Event>,
    pub chain: &'a [ChainEvent],
    /// A hypothesis is selected: everything off its chain is dimmed.
    pub selected: bool,
}

#[derive(Debug, Clone)]
pub struct LaneView {
    pub key: String,
    pub y: i64,
    pub alarm: bool,
    /// On the selected hypothesis's path or chain.
    pub on_path: bool,
}

#[derive(Debug, Clone)]
pub struct Band {
    pub x: i64,
    pub w: i64,
    pub y: i64,
    pub state: String,
    pub href: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct Mark {
    pub x: i64,
    pub y: i64,
    /// change, deployment, anomaly, snapshot, other, alarm.
    pub kind: String,
    pub count: i64,
    pub href: String,
    pub title: String,
    pub role: Option<Role>,
    pub failed: bool,
}

#[derive(Debug, Clone)]
pub struct Tick {
    pub x: i64,
    pub label: String,
}

/// The picture in view-box units.
#[derive(Debug, Clone)]
pub struct Picture {
    pub height: i64,
    pub lanes: Vec<LaneView>,
    pub bands: Vec<Band>,
    pub marks: Vec<Mark>,
    pub ticks: Vec<Tick>,
    /// x of the incident's start and end, when in the window.
    pub opened_x: Option<i64>,
    pub resolved_x: Option<i64>,
    pub selected: bool,
    /// Events counted in the marks (chain and alarms included).
    pub events: i64,
    /// Bucket width finally used, ms.
    pub bucket_ms: i64,
}

fn x_of(t: i64, from: i64, to: i64) -> i64 {
    let span = to.saturating_sub(from).max(1) as f64;
    let f = (t.saturating_sub(from) as f64 / span).clamp(0.0, 1.0);
    LEFT + (f * (RIGHT - LEFT) as f64).round() as i64
}

fn clock(t: i64) -> String {
    let s = fmt_time(t);
    s.get(11..19).unwrap_or(&s).to_string()
}

fn when(t: i64, opened: i64) -> String {
    format!("{} UTC ({})", clock(t), offset(t.saturating_sub(opened)))
}

/// Alarm transitions of one alarm within a minute with the same new state are one
/// (CloudWatch's history and EventBridge deliver each).
fn dedup_alarms(events: &[&Event]) -> Vec<(Event, usize)> {
    let mut out: Vec<(Event, usize)> = Vec::new();
    for e in events {
        let state = alarm_state(e).1;
        if let Some((last, n)) = out.last_mut() {
            if alarm_state(last).1 == state && e.event_time - last.event_time <= 60_000 {
                *n += 1;
                continue;
            }
        }
        out.push(((*e).clone(), 1));
    }
    out
}

/// (old state, new state) of an alarm event.
fn alarm_state(e: &Event) -> (String, String) {
    match &e.kind {
        Kind::Alarm {
            old_state,
            new_state,
            ..
        } => (old_state.clone(), new_state.clone()),
        _ => (String::new(), String::new()),
    }
}

fn state_class(s: &str) -> String {
    match s {
        "OK" => "ok".into(),
        "ALARM" => "alarm".into(),
        "INSUFFICIENT_DATA" => "insufficient".into(),
        _ => "unknown".into(),
    }
}

/// The lanes of the picture, in order (the incident's alarms, then preferred resources,
/// then the busiest others, at most [`MAX_LANES`] unless alarms and the chain need more),
/// and whether other resources are left for a shared last lane.
pub fn lanes(inp: &Input<'_>) -> (Vec<String>, bool) {
    let chain_seqs: BTreeSet<i64> = inp.chain.iter().map(|c| c.event.seq).collect();
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for (lane, n) in inp.lane_totals {
        *counts.entry(lane.clone()).or_default() += n;
    }
    for a in inp.alarms.iter().filter(|a| !chain_seqs.contains(&a.seq)) {
        *counts
            .entry(a.resources.first().cloned().unwrap_or_default())
            .or_default() += 1;
    }
    for c in inp.chain {
        *counts
            .entry(c.event.resources.first().cloned().unwrap_or_default())
            .or_default() += 1;
    }
    let mut keys: Vec<String> = Vec::new();
    let push = |k: &str, keys: &mut Vec<String>| {
        if !keys.iter().any(|x| x == k) {
            keys.push(k.to_string());
        }
    };
    for k in &inp.alarm_lanes {
        push(k, &mut keys);
    }
    for c in inp.chain {
        if let Some(k) = c.event.resources.first() {
            push(k, &mut keys);
        }
    }
    for k in &inp.preferred {
        if keys.len() >= MAX_LANES {
            break;
        }
        push(k, &mut keys);
    }
    let mut busiest: Vec<(&String, &i64)> = counts.iter().filter(|(k, _)| !k.is_empty()).collect();
    busiest.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (k, _) in busiest {
        if keys.len() >= MAX_LANES {
            break;
        }
        push(k, &mut keys);
    }
    let rest = counts.keys().any(|k| !keys.contains(k));
    (keys, rest)
}

/// Chooses the lanes, places bands and marks.
pub fn layout(inp: &Input<'_>) -> Picture {
    let (from, to) = (inp.from, inp.to);
    let chain_seqs: BTreeSet<i64> = inp.chain.iter().map(|c| c.event.seq).collect();
    let chain_lanes: BTreeSet<String> = inp
        .chain
        .iter()
        .filter_map(|c| c.event.resources.first().cloned())
        .collect();
    let (keys, rest) = lanes(inp);
    let mut lane_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        lane_of.insert(k.clone(), i);
    }
    let other = keys.len();
    let lane_count = keys.len() + usize::from(rest);
    let lane_y = |i: usize| AXIS_H + i as i64 * LANE_H;
    let track = |i: usize| lane_y(i) + 26;
    let lane_index = |k: &str| lane_of.get(k).copied().unwrap_or(other);
    let path_keys: BTreeSet<&String> = inp.preferred.iter().collect();
    let mut lanes: Vec<LaneView> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| LaneView {
            key: k.clone(),
            y: lane_y(i),
            alarm: inp.alarm_lanes.contains(k),
            on_path: chain_lanes.contains(k) || (inp.selected && path_keys.contains(k)),
        })
        .collect();
    if rest {
        lanes.push(LaneView {
            key: OTHER_LANE.into(),
            y: lane_y(other),
            alarm: false,
            on_path: false,
        });
    }

    // Counted marks, merged into the lanes; buckets widened until few enough.
    let mut bucket_ms = inp.bucket_ms.max(1);
    let mut factor = 1i64;
    let mut cells: BTreeMap<(usize, String, i64), WindowMark>;
    loop {
        cells = BTreeMap::new();
        for m in inp.marks {
            let lane = lane_index(&m.lane);
            let key = (lane, m.kind.clone(), m.bucket / factor);
            match cells.get_mut(&key) {
                Some(c) => {
                    c.count += m.count;
                    c.failed += m.failed;
                    if (m.event_time, m.seq) < (c.event_time, c.seq) {
                        c.seq = m.seq;
                        c.name = m.name.clone();
                        c.event_time = m.event_time;
                        c.resource = m.resource.clone();
                    }
                }
                None => {
                    cells.insert(key, m.clone());
                }
            }
        }
        if cells.len() <= MAX_MARKS || factor > (1 << 20) {
            break;
        }
        factor *= 2;
        bucket_ms = inp.bucket_ms.max(1) * factor;
    }
    let mut events = 0i64;
    let mut marks: Vec<Mark> = Vec::new();
    for ((lane, kind, bucket), m) in &cells {
        events += m.count;
        let start = inp.origin + bucket * bucket_ms;
        let t = if m.count > 1 {
            (start + bucket_ms / 2).clamp(from, to)
        } else {
            m.event_time
        };
        let name = display_name(&m.name);
        let title = if m.count > 1 {
            format!(
                "{} {kind} events from {} to {} on {}, the first {name}",
                m.count,
                when(start.max(from), inp.opened),
                when((start + bucket_ms).min(to), inp.opened),
                if m.resource.is_empty() || *lane == other {
                    "several resources".to_string()
                } else {
                    m.resource.clone()
                }
            )
        } else {
            format!(
                "{name} ({kind}{}) at {} on {}",
                if m.failed > 0 { ", failed" } else { "" },
                when(m.event_time, inp.opened),
                if m.resource.is_empty() {
                    "no resource"
                } else {
                    &m.resource
                }
            )
        };
        marks.push(Mark {
            x: x_of(t, from, to),
            y: track(*lane),
            kind: kind.clone(),
            count: m.count,
            href: format!("/events/{}", m.seq),
            title,
            role: None,
            failed: m.failed == m.count,
        });
    }

    // Alarm lanes: bands of state; other alarms' transitions are marks.
    let mut bands = Vec::new();
    let mut by_alarm: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for a in inp.alarms {
        by_alarm
            .entry(a.resources.first().cloned().unwrap_or_default())
            .or_default()
            .push(a);
    }
    for (key, evs) in &by_alarm {
        events += evs.iter().filter(|e| !chain_seqs.contains(&e.seq)).count() as i64;
        let lane = lane_index(key);
        let transitions = dedup_alarms(evs);
        if lane != other && inp.alarm_lanes.contains(key) {
            continue;
        }
        for (e, n) in transitions {
            let (old, new) = alarm_state(&e);
            marks.push(Mark {
                x: x_of(e.event_time, from, to),
                y: track(lane),
                kind: "alarm".into(),
                count: n as i64,
                href: format!("/events/{}", e.seq),
                title: format!(
                    "{}: {old} → {new} at {}",
                    e.name,
                    when(e.event_time, inp.opened)
                ),
                role: None,
                failed: false,
            });
        }
    }
    for l in lanes.iter().filter(|l| l.alarm) {
        let name = l.key.trim_start_matches("alarm/");
        let evs = by_alarm.get(&l.key).cloned().unwrap_or_default();
        let transitions = dedup_alarms(&evs);
        let before = inp.before.get(&l.key);
        let mut state = match (transitions.first(), before) {
            (_, Some(b)) => alarm_state(b).1,
            (Some((first, _)), None) => alarm_state(first).0,
            (None, None) => "unknown".into(),
        };
        let mut since = from;
        let mut href = before
            .map(|b| format!("/events/{}", b.seq))
            .unwrap_or_else(|| format!("/resources/{}", l.key));
        let band = |since: i64, until: i64, state: &str, href: &str| -> Option<Band> {
            let (x0, x1) = (x_of(since, from, to), x_of(until, from, to));
            (x1 > x0).then(|| Band {
                x: x0,
                w: x1 - x0,
                y: l.y + 18,
                state: state.to_string(),
                href: href.to_string(),
                title: format!(
                    "{name}: {state} from {} to {} ({})",
                    when(since, inp.opened),
                    when(until, inp.opened),
                    duration(until.saturating_sub(since))
                ),
            })
        };
        for (e, n) in &transitions {
            bands.extend(band(since, e.event_time, &state, &href));
            since = e.event_time;
            let (old, new) = alarm_state(e);
            state = new.clone();
            href = format!("/events/{}", e.seq);
            if chain_seqs.contains(&e.seq) {
                continue;
            }
            marks.push(Mark {
                x: x_of(e.event_time, from, to),
                y: track(lane_index(&l.key)),
                kind: "alarm".into(),
                count: *n as i64,
                href: href.clone(),
                title: format!(
                    "{name}: {old} → {new} at {}",
                    when(e.event_time, inp.opened)
                ),
                role: None,
                failed: false,
            });
        }
        bands.extend(band(since, to, &state, &href));
    }

    // The chain, on top.
    for c in inp.chain {
        let e = &c.event;
        events += 1;
        let lane = lane_index(e.resources.first().map(String::as_str).unwrap_or(""));
        let detail = match &e.kind {
            Kind::Alarm {
                old_state,
                new_state,
                ..
            } => format!(": {old_state} → {new_state}"),
            _ => String::new(),
        };
        marks.push(Mark {
            x: x_of(e.event_time, from, to),
            y: track(lane),
            kind: e.kind.tag().to_string(),
            count: 1,
            href: format!("/events/{}", e.seq),
            title: format!(
                "{}: {}{detail} at {} on {}",
                c.role.as_str(),
                display_name(&e.name),
                when(e.event_time, inp.opened),
                e.resources
                    .first()
                    .map(String::as_str)
                    .unwrap_or("no resource")
            ),
            role: Some(c.role),
            failed: e.error_code.is_some(),
        });
    }

    Picture {
        height: AXIS_H + lane_count as i64 * LANE_H + 6,
        lanes,
        bands,
        marks,
        ticks: ticks(from, to),
        opened_x: (from..=to)
            .contains(&inp.opened)
            .then(|| x_of(inp.opened, from, to)),
        resolved_x: inp
            .resolved
            .filter(|r| (from..=to).contains(r))
            .map(|r| x_of(r, from, to)),
        selected: inp.selected,
        events,
        bucket_ms,
    }
}

/// Axis ticks at a round step giving about six of them.
fn ticks(from: i64, to: i64) -> Vec<Tick> {
    const STEPS: [i64; 14] = [
        60_000,
        120_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        21_600_000,
        43_200_000,
        86_400_000,
        172_800_000,
        604_800_000,
    ];
    let span = (to - from).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 7)
        .unwrap_or(604_800_000);
    let mut t = from.div_euclid(step) * step;
    if t < from {
        t += step;
    }
    let mut out = Vec::new();
    while t <= to && out.len() < 20 {
        let s = fmt_time(t);
        let label = if step >= 86_400_000 {
            s.get(5..10).unwrap_or(&s).to_string()
        } else {
            s.get(11..16).unwrap_or(&s).to_string()
        };
        out.push(Tick {
            x: x_of(t, from, to),
            label,
        });
        t += step;
    }
    out
}

fn shape(out: &mut String, m: &Mark) {
    let (x, y) = (m.x, m.y);
    let r = if m.count > 1 {
        5 + (m.count as f64).log2().min(5.0) as i64
    } else {
        5
    };
    let _ = match m.kind.as_str() {
        "deployment" => write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" transform=\"rotate(45 {x} {y})\"/>",
            x - r + 1,
            y - r + 1,
            2 * r - 2,
            2 * r - 2
        ),
        "anomaly" => write!(
            out,
            "<path d=\"M{x} {} L{} {} L{} {} Z\"/>",
            y - r - 1,
            x + r + 1,
            y + r,
            x - r - 1,
            y + r
        ),
        "alarm" => write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"4\" height=\"{}\"/>",
            x - 2,
            y - 12,
            20
        ),
        "snapshot" | "other" => write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\"/>",
            x - r + 1,
            y - r + 1,
            2 * r - 2,
            2 * r - 2
        ),
        _ => write!(out, "<circle cx=\"{x}\" cy=\"{y}\" r=\"{r}\"/>"),
    };
    if m.count > 1 && m.kind != "alarm" {
        let _ = write!(
            out,
            "<text class=\"n\" x=\"{}\" y=\"{}\">{}</text>",
            x + r + 2,
            y - 4,
            m.count
        );
    }
}

/// The picture as an `<svg>` element. `label` names it for screen readers.
pub fn svg(p: &Picture, label: &str) -> String {
    let mut out = String::with_capacity(8192 + p.marks.len() * 260);
    let _ = write!(
        out,
        "<svg class=\"rl timeline{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {}\" width=\"100%\" role=\"img\" aria-label=\"{}\" data-marks=\"{}\" data-events=\"{}\">",
        if p.selected { " has-selection" } else { "" },
        p.height,
        esc(label),
        p.marks.len(),
        p.events
    );
    let _ = write!(out, "<title>{}</title>", esc(label));
    // Axis.
    out.push_str("<g class=\"axis\">");
    for t in &p.ticks {
        let _ = write!(
            out,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"18\" y2=\"{}\"/><text x=\"{x}\" y=\"13\">{}</text>",
            p.height,
            esc(&t.label),
            x = t.x
        );
    }
    out.push_str("</g>");
    // Lanes.
    for l in &p.lanes {
        let _ = write!(
            out,
            "<g class=\"lane{}{}\" data-lane=\"{}\"><line x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{y}\" y2=\"{y}\"/>",
            if l.alarm { " alarm-lane" } else { "" },
            if l.on_path { " on-path" } else { "" },
            esc(&l.key),
            y = l.y + 26
        );
        if l.key == OTHER_LANE {
            let _ = write!(
                out,
                "<text class=\"label\" x=\"{LEFT}\" y=\"{}\">{}</text>",
                l.y + 12,
                esc(&l.key)
            );
        } else {
            let _ = write!(
                out,
                "<a href=\"/resources/{}\"><title>{}</title><text class=\"label\" x=\"{LEFT}\" y=\"{}\">{}</text></a>",
                esc(&l.key),
                esc(&format!("resource {}", l.key)),
                l.y + 12,
                esc(&crate::model::truncate(&l.key, 80))
            );
        }
        out.push_str("</g>");
    }
    // The incident's time.
    if let Some(x) = p.opened_x {
        let _ = write!(
            out,
            "<line class=\"opened\" x1=\"{x}\" x2=\"{x}\" y1=\"18\" y2=\"{}\"/>",
            p.height
        );
    }
    if let Some(x) = p.resolved_x {
        let _ = write!(
            out,
            "<line class=\"resolved\" x1=\"{x}\" x2=\"{x}\" y1=\"18\" y2=\"{}\"/>",
            p.height
        );
    }
    // Alarm state bands.
    out.push_str("<g class=\"bands\">");
    for b in &p.bands {
        let _ = write!(
            out,
            "<a href=\"{}\" class=\"band {}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\"/></a>",
            esc(&b.href),
            state_class(&b.state),
            esc(&b.title),
            b.x,
            b.y,
            b.w
        );
    }
    out.push_str("</g>");
    // The causal chain joined, cause to symptom.
    let chain: Vec<&Mark> = p.marks.iter().filter(|m| m.role.is_some()).collect();
    if chain.len() > 1 {
        let mut pts: Vec<(i64, i64)> = chain.iter().map(|m| (m.x, m.y)).collect();
        pts.sort();
        let points: Vec<String> = pts.iter().map(|(x, y)| format!("{x},{y}")).collect();
        let _ = write!(
            out,
            "<polyline class=\"causal\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    // Marks: the chain last, on top.
    out.push_str("<g class=\"marks\">");
    for m in p
        .marks
        .iter()
        .filter(|m| m.role.is_none())
        .chain(p.marks.iter().filter(|m| m.role.is_some()))
    {
        let _ = write!(
            out,
            "<a href=\"{}\" class=\"mark k-{}{}{}\"{}><title>{}</title>",
            esc(&m.href),
            esc(&m.kind),
            if m.role.is_some() { " hl" } else { "" },
            if m.failed { " failed" } else { "" },
            match m.role {
                Some(r) => format!(" data-role=\"{}\"", r.as_str()),
                None => String::new(),
            },
            esc(&m.title)
        );
        shape(&mut out, m);
        out.push_str("</a>");
    }
    out.push_str("</g></svg>");
    out
}

/// A node of a causal path picture.
pub struct PathNode {
    /// What the node says (an event name or a resource key).
    pub label: String,
    /// cause, resource or symptom.
    pub role: &'static str,
    pub href: String,
    pub title: String,
}

/// The causal path of a hypothesis as a small graph: its nodes in a row, joined by
/// arrows labelled with the relation (`relations[i]` links node i and i + 1).
pub fn path_graph(nodes: &[PathNode], relations: &[(String, String)]) -> String {
    const BOX_W: i64 = 150;
    const GAP: i64 = 40;
    const H: i64 = 64;
    let n = nodes.len().max(1) as i64;
    let width = n * BOX_W + (n - 1) * GAP;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"rl path\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {H}\" width=\"100%\" role=\"img\" aria-label=\"causal path\" style=\"max-width: {}px\"><title>causal path</title>",
        width
    );
    for (i, node) in nodes.iter().enumerate() {
        let x = i as i64 * (BOX_W + GAP);
        let _ = write!(
            out,
            "<a href=\"{}\" class=\"node {}\"><title>{}</title><rect x=\"{x}\" y=\"14\" width=\"{BOX_W}\" height=\"34\" rx=\"6\"/><text x=\"{}\" y=\"10\" class=\"role\">{}</text><text x=\"{}\" y=\"36\">{}</text></a>",
            esc(&node.href),
            node.role,
            esc(&node.title),
            x + 4,
            node.role,
            x + 6,
            esc(&crate::model::truncate(&node.label, 21))
        );
        if let Some((label, title)) = relations.get(i) {
            if i + 1 < nodes.len() {
                let x0 = x + BOX_W;
                let x1 = x0 + GAP;
                let _ = write!(
                    out,
                    "<g class=\"edge\"><title>{}</title><line x1=\"{x0}\" y1=\"31\" x2=\"{}\" y2=\"31\"/><path d=\"M{} 26 L{x1} 31 L{} 36 Z\"/><text x=\"{}\" y=\"60\">{}</text></g>",
                    esc(title),
                    x1 - 2,
                    x1 - 7,
                    x1 - 7,
                    x0 + GAP / 2,
                    esc(label)
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// One alarm's transitions over a span, for [`strip`].
pub struct StripAlarm {
    pub key: String,
    /// State when the span starts.
    pub initial: String,
    /// Transitions in the span, in time order.
    pub transitions: Vec<Event>,
}

/// A small picture of alarm states over `[from, to]`: one thin row of bands per alarm,
/// each band a link to its transition with a title. For the incidents list.
pub fn strip(alarms: &[StripAlarm], from: i64, to: i64, opened: i64) -> String {
    const W: i64 = 400;
    const ROW: i64 = 8;
    let x = |t: i64| -> i64 {
        let span = (to - from).max(1) as f64;
        (((t - from) as f64 / span).clamp(0.0, 1.0) * W as f64).round() as i64
    };
    let rows = alarms.len().max(1) as i64;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"rl strip\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {}\" width=\"100%\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"alarm states from {} to {}\"><title>alarm states from {} to {}</title>",
        rows * ROW,
        esc(&fmt_time(from)),
        esc(&fmt_time(to)),
        esc(&fmt_time(from)),
        esc(&fmt_time(to))
    );
    for (i, a) in alarms.iter().enumerate() {
        let y = i as i64 * ROW;
        let name = a.key.trim_start_matches("alarm/");
        let mut state = a.initial.clone();
        let mut since = from;
        let mut href = format!("/resources/{}", a.key);
        let band = |since: i64, until: i64, state: &str, href: &str, out: &mut String| {
            let (x0, x1) = (x(since), x(until));
            if x1 > x0 {
                let _ = write!(
                    out,
                    "<a href=\"{}\" class=\"band {}\"><title>{}</title><rect x=\"{x0}\" y=\"{y}\" width=\"{}\" height=\"{}\"/></a>",
                    esc(href),
                    state_class(state),
                    esc(&format!(
                        "{name}: {state} from {} to {}",
                        when(since, opened),
                        when(until, opened)
                    )),
                    x1 - x0,
                    ROW - 1
                );
            }
        };
        for e in &a.transitions {
            band(since, e.event_time, &state, &href, &mut out);
            since = e.event_time;
            state = alarm_state(e).1;
            href = format!("/events/{}", e.seq);
        }
        band(since, to, &state, &href, &mut out);
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;

    fn ev(seq: i64, t: i64, name: &str, kind: Kind, res: &str) -> Event {
        Event {
            seq,
            source: Source::CloudTrail,
            natural_id: format!("n{seq}"),
            event_time: t,
            received_at: None,
            kind,
            name: name.into(),
            actor: None,
            read_only: false,
            error_code: None,
            resources: vec![res.into()],
            payload: String::new(),
        }
    }

    fn alarm(seq: i64, t: i64, old: &str, new: &str) -> Event {
        ev(
            seq,
            t,
            "web-5xx",
            Kind::Alarm {
                alarm: "web-5xx".into(),
                old_state: old.into(),
                new_state: new.into(),
                reason: String::new(),
            },
            "alarm/web-5xx",
        )
    }

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>\u{1}"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt; "
        );
    }

    #[test]
    fn bursts_are_counted_marks_and_their_number_is_capped() {
        let from = 0;
        let to = 3_600_000;
        // 5,000 events over 60 resources and every bucket.
        let mut marks: Vec<WindowMark> = (0..5000)
            .map(|i| WindowMark {
                lane: format!("sg/sg-{:03}", i % 60),
                resource: format!("sg/sg-{:03}", i % 60),
                kind: if i % 3 == 0 { "deployment" } else { "change" }.into(),
                bucket: (i / 50) % BUCKETS,
                count: 1,
                seq: i + 1,
                name: "<b>Evil</b>".into(),
                event_time: (i / 50 % BUCKETS) * 36_000,
                failed: 0,
            })
            .collect();
        let alarms = vec![
            alarm(9001, 600_000, "OK", "ALARM"),
            alarm(9002, 610_000, "OK", "ALARM"),
            alarm(9003, 1_800_000, "ALARM", "OK"),
        ];
        let before = BTreeMap::new();
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        for m in &marks {
            *totals.entry(m.resource.clone()).or_default() += m.count;
        }
        let totals: Vec<(String, i64)> = totals.into_iter().collect();
        let mut inp = Input {
            from,
            to,
            opened: 600_000,
            resolved: Some(1_800_000),
            alarm_lanes: vec!["alarm/web-5xx".into()],
            preferred: vec!["sg/sg-007".into()],
            lane_totals: &totals,
            marks: &[],
            origin: from,
            bucket_ms: 36_000,
            alarms: &alarms,
            before: &before,
            chain: &[],
            selected: false,
        };
        // As the store reads them: resources off the chosen lanes share the empty one.
        let (lanes, rest) = lanes(&inp);
        assert!(rest);
        for m in &mut marks {
            if !lanes.contains(&m.lane) {
                m.lane.clear();
            }
        }
        inp.marks = &marks;
        let p = layout(&inp);
        assert!(p.marks.len() <= MAX_MARKS + 10, "{}", p.marks.len());
        assert_eq!(p.events, 5003);
        assert_eq!(p.lanes.len(), MAX_LANES + 1);
        assert_eq!(p.lanes[0].key, "alarm/web-5xx");
        assert_eq!(p.lanes[1].key, "sg/sg-007");
        assert_eq!(p.lanes.last().map(|l| l.key.as_str()), Some(OTHER_LANE));
        // OK, then ALARM (two deliveries, one transition), then OK.
        let states: Vec<&str> = p.bands.iter().map(|b| b.state.as_str()).collect();
        assert_eq!(states, vec!["OK", "ALARM", "OK"]);
        let s = svg(&p, "timeline");
        assert!(s.len() < 200_000, "{}", s.len());
        assert!(!s.contains("<b>"));
        assert_eq!(s.matches("<a ").count(), s.matches("<title>").count() - 1);
    }

    #[test]
    fn ticks_are_round() {
        let t = ticks(1_000, 5_400_000 + 1_000);
        assert_eq!(t.first().map(|t| t.label.as_str()), Some("00:15"));
        assert!(t.len() <= 7);
    }
}
