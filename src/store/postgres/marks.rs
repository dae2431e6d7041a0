//! The incident picture's counted marks on PostgreSQL: the hits of `store::marks` (whole
//! minutes from `mark_minutes`, the rest from the log) read as rows, then grouped and
//! the lanes chosen here, by the rules the SQLite store's single statement follows.

use super::PgStore;
use crate::store::marks::{
    assemble, push_first, push_hits, GroupRow, MarkFilter, MarkGrid, MarkSql, PictureRows,
    WindowPicture, MAX_MARK_GROUPS,
};
use crate::store::Result;
use sqlx::{Postgres, QueryBuilder};
use std::collections::{BTreeMap, BTreeSet};

const POSTGRES: MarkSql = MarkSql {
    lane: "COALESCE(resources::json->>0, '')",
    counted: super::reads::WINDOW_EVENTS,
    failed: "(error_code IS NOT NULL)::int::bigint",
    one: "1::bigint",
    by_time: "",
    by_seq: "",
};

/// One hit: (lane, kind, t, n, failed, first seq, name, time).
type Hit = (
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

/// One group being summed: its hits' count and failures, and its first event (the hit
/// with the lowest first seq: its lane, seq, name and time).
#[derive(Default)]
struct Group {
    n: i64,
    failed: i64,
    first: Option<(i64, String, Option<String>, Option<i64>)>,
    any_lane: Option<String>,
}

/// Groups `hits` as the SQLite statement does: lanes are `fixed`, then up to `busiest`
/// of the others with most events (ties by lane), all others one lane ''; groups by
/// (lane, kind, bucket) with a positive count, in that order, at most
/// [`MAX_MARK_GROUPS`].
fn group(hits: Vec<Hit>, g: &MarkGrid, fixed: &[String], busiest: usize) -> PictureRows {
    let mut tot: BTreeMap<&str, i64> = BTreeMap::new();
    for h in &hits {
        *tot.entry(h.0.as_str()).or_default() += h.3;
    }
    tot.retain(|_, n| *n > 0);
    let fixed_set: BTreeSet<&str> = fixed.iter().map(String::as_str).collect();
    let mut others: Vec<(&str, i64)> = tot
        .iter()
        .filter(|(l, _)| !l.is_empty() && !fixed_set.contains(*l))
        .map(|(l, n)| (*l, *n))
        .collect();
    others.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut lanes: Vec<String> = fixed.to_vec();
    lanes.extend(others.iter().take(busiest).map(|(l, _)| l.to_string()));
    let chosen: BTreeSet<&str> = lanes.iter().map(String::as_str).collect();
    let totals: Vec<(String, i64)> = tot
        .iter()
        .filter(|(l, _)| chosen.contains(*l))
        .map(|(l, n)| (l.to_string(), *n))
        .collect();
    let rest: i64 = tot
        .iter()
        .filter(|(l, _)| !chosen.contains(*l))
        .map(|(_, n)| n)
        .sum();
    let mut groups: BTreeMap<(String, String, i64), Group> = BTreeMap::new();
    let step = g.bucket_ms.max(1);
    for (lane, kind, t, n, failed, first, name, time) in hits {
        let grp = if chosen.contains(lane.as_str()) {
            lane.clone()
        } else {
            String::new()
        };
        // SQLite's integer division truncates toward zero.
        let bucket = (t - g.origin) / step;
        let e = groups.entry((grp, kind, bucket)).or_default();
        e.n += n;
        e.failed += failed;
        if e.any_lane.is_none() {
            e.any_lane = Some(lane.clone());
        }
        if let Some(seq) = first {
            if e.first.as_ref().is_none_or(|f| seq < f.0) {
                e.first = Some((seq, lane, name, time));
            }
        }
    }
    let rows: Vec<GroupRow> = groups
        .into_iter()
        .filter(|(_, e)| e.n > 0)
        .take(MAX_MARK_GROUPS as usize)
        .map(|((grp, kind, bucket), e)| {
            let (seq, lane, name, time) = match e.first {
                Some((seq, lane, name, time)) => (Some(seq), lane, name, time),
                None => (None, e.any_lane.unwrap_or_default(), None, None),
            };
            (grp, lane, kind, bucket, e.n, seq, name, time, e.failed)
        })
        .collect();
    (lanes, totals, rest, rows)
}

impl PgStore {
    /// The counted marks of a window (see the SQLite store's `window_picture`).
    pub async fn window_picture(
        &self,
        g: &MarkGrid,
        f: &MarkFilter<'_>,
        fixed: &[String],
        busiest: usize,
    ) -> Result<WindowPicture> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("");
        push_hits(&mut qb, g, f, &POSTGRES);
        let hits: Vec<Hit> = qb.build_query_as().fetch_all(&self.pool).await?;
        let (lanes, totals, rest, rows) = group(hits, g, fixed, busiest);
        let (mut picture, again) = assemble(lanes, totals, rest, rows, f.except);
        for &i in &again {
            let (lanes, marks) = (&picture.lanes, &mut picture.marks);
            let Some(m) = marks.get_mut(i) else { continue };
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new("");
            push_first(&mut qb, g, f, lanes, m, &POSTGRES);
            let first: Option<(String, i64, String, i64)> =
                qb.build_query_as().fetch_optional(&self.pool).await?;
            if let Some((lane, seq, name, time)) = first {
                (m.resource, m.seq, m.name, m.event_time) = (lane, seq, name, time);
            }
        }
        Ok(picture)
    }
}
