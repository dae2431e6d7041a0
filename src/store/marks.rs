//! The incident picture's counted marks: a window's events, except the transitions of
//! the alarms drawn as bands, counted by lane (first resource), kind and time bucket. Whole minutes are read from
//! `mark_minutes` (the projector's counts, migrations/0011); the window's partial first
//! and last minute, and the events the projector has not reached, from the log. The
//! result never depends on whether the projector has run.

use super::projections::{MARKS, MINUTE_MS};
use super::reads::{json_list, WINDOW_EVENTS as COUNTED};
use super::{Result, SqliteStore};
use sqlx::{QueryBuilder, Sqlite};

/// Events of one lane, kind and time bucket of a window, counted: what the incident
/// page's picture draws as one mark ([`SqliteStore::window_picture`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowMark {
    /// The lane: one of the lanes asked for, or empty for all others (and for events
    /// that name no resource).
    pub lane: String,
    /// The first event's primary (first) resource; empty when it names none.
    pub resource: String,
    /// Kind tag.
    pub kind: String,
    /// Bucket number: (event time - grid origin) / bucket width.
    pub bucket: i64,
    pub count: i64,
    /// The first event of the group (lowest seq), for the mark's link and name.
    pub seq: i64,
    pub name: String,
    pub event_time: i64,
    /// How many of them failed (an error code).
    pub failed: i64,
}

/// Groups of a window read at most: [`SqliteStore::window_picture`] stops there (a
/// hundred buckets of a few lanes and kinds are far fewer).
pub const MAX_MARK_GROUPS: i64 = 5_000;

/// How a window is cut into buckets. Buckets of a minute or more are whole minutes
/// from a whole minute, so the counts of `mark_minutes` fall into them exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkGrid {
    pub from: i64,
    pub to: i64,
    /// Where bucket 0 starts (at or before `from`).
    pub origin: i64,
    pub bucket_ms: i64,
}

impl MarkGrid {
    /// About `buckets` buckets over [from, to], none shorter than a second. Buckets of
    /// half a minute or more become whole minutes (at most half as many buckets), so
    /// that a window of an hour or more reads the projector's minute counts, not its
    /// events.
    pub fn new(from: i64, to: i64, buckets: i64) -> MarkGrid {
        let raw = ((to - from) / buckets.max(1)).max(1000);
        if 2 * raw >= MINUTE_MS {
            MarkGrid {
                from,
                to,
                origin: from.div_euclid(MINUTE_MS) * MINUTE_MS,
                bucket_ms: (raw + MINUTE_MS - 1) / MINUTE_MS * MINUTE_MS,
            }
        } else {
            MarkGrid {
                from,
                to,
                origin: from,
                bucket_ms: raw,
            }
        }
    }

    /// The minutes counted whole: [first, last], wholly inside the window, when buckets
    /// are whole minutes (else none).
    fn whole_minutes(&self) -> Option<(i64, i64)> {
        if self.bucket_ms % MINUTE_MS != 0 || self.origin % MINUTE_MS != 0 {
            return None;
        }
        let first = (self.from + MINUTE_MS - 1).div_euclid(MINUTE_MS);
        let last = (self.to + 1).div_euclid(MINUTE_MS) - 1;
        (first <= last).then_some((first, last))
    }
}

/// Which events of the window count: `kinds` and `sources` keep only those when not
/// empty; `except` (at most a few dozen seqs) are left out, and so are the transitions
/// of the alarms in `band_lanes` (`alarm/NAME` keys, drawn as bands of state).
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkFilter<'a> {
    pub kinds: &'a [String],
    pub sources: &'a [String],
    pub except: &'a [i64],
    pub band_lanes: &'a [String],
}

/// How a backend writes the parts of the hits statement.
pub(super) struct MarkSql {
    /// An event's lane, as `mark_minutes` keeps it.
    pub lane: &'static str,
    /// The events counted (the window index's condition, word for word).
    pub counted: &'static str,
    /// 1 for a failed event, else 0.
    pub failed: &'static str,
    /// The number one, as the type of `mark_minutes.n`.
    pub one: &'static str,
    /// After `FROM events` when reading by event time, and when reading by seq.
    pub by_time: &'static str,
    pub by_seq: &'static str,
}

pub(super) const SQLITE: MarkSql = MarkSql {
    lane: "COALESCE(json_extract(resources, '$[0]'), '')",
    counted: COUNTED,
    failed: "(error_code IS NOT NULL)",
    one: "1",
    by_time: " INDEXED BY events_window",
    by_seq: " NOT INDEXED",
};

/// The marks checkpoint, read in the statement that uses it.
const CHECKPOINT: &str = "(SELECT COALESCE(MAX(seq), 0) FROM projection_checkpoints WHERE name = '";

/// Pushes `head`, then `values` bound and comma-separated, then `)`.
pub(super) fn push_list<DB: sqlx::Database, T>(qb: &mut QueryBuilder<DB>, head: &str, values: &[T])
where
    T: Clone + for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + Send + 'static,
{
    qb.push(head);
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v.clone());
    }
    qb.push(")");
}

/// Kinds, sources and band lanes; `lane` is the lane's expression in the part.
pub(super) fn push_filters<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    f: &MarkFilter<'_>,
    lane: &str,
) where
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if !f.kinds.is_empty() {
        push_list(qb, " AND kind IN (", f.kinds);
    }
    if !f.sources.is_empty() {
        push_list(qb, " AND source IN (", f.sources);
    }
    if !f.band_lanes.is_empty() {
        push_list(
            qb,
            &format!(" AND NOT (kind = 'alarm' AND {lane} IN ("),
            f.band_lanes,
        );
        qb.push(")");
    }
}

pub(super) fn push_not_except<DB: sqlx::Database>(qb: &mut QueryBuilder<DB>, f: &MarkFilter<'_>)
where
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if !f.except.is_empty() {
        push_list(qb, " AND seq NOT IN (", f.except);
    }
}

/// The window's hits as rows (lane, kind, t, n, failed, first, name, time): the whole
/// minutes' counts, the partial minutes' events, the events past the checkpoint in the
/// whole minutes, and each excepted event already counted there as a negative hit.
pub(super) fn push_hits<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    g: &MarkGrid,
    f: &MarkFilter<'_>,
    sql: &MarkSql,
) where
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let MarkSql {
        lane,
        counted,
        failed,
        one,
        by_time,
        by_seq,
    } = sql;
    let whole = g.whole_minutes();
    let mut edges: Vec<(i64, i64)> = Vec::new();
    match whole {
        Some((first, last)) => {
            if g.from < first * MINUTE_MS {
                edges.push((g.from, first * MINUTE_MS - 1));
            }
            if (last + 1) * MINUTE_MS <= g.to {
                edges.push(((last + 1) * MINUTE_MS, g.to));
            }
        }
        None => edges.push((g.from, g.to)),
    }
    let mut parts = 0;
    let mut union = |qb: &mut QueryBuilder<DB>| {
        if parts > 0 {
            qb.push(" UNION ALL ");
        }
        parts += 1;
    };
    for (lo, hi) in edges {
        union(qb);
        qb.push(format!(
            "SELECT {lane}, kind, event_time, {one}, {failed}, seq, name, \
             event_time FROM events{by_time} WHERE {counted} AND event_time >= "
        ));
        qb.push_bind(lo).push(" AND event_time <= ").push_bind(hi);
        push_filters(qb, f, lane);
        push_not_except(qb, f);
    }
    if let Some((first, last)) = whole {
        let (lo, hi) = (first * MINUTE_MS, (last + 1) * MINUTE_MS - 1);
        union(qb);
        qb.push(
            "SELECT lane, kind, minute * 60000, n, failed, first_seq, first_name, first_time \
             FROM mark_minutes WHERE minute >= ",
        );
        qb.push_bind(first).push(" AND minute <= ").push_bind(last);
        push_filters(qb, f, "lane");
        // Appended since the projector's last batch (by seq: the primary key's range).
        union(qb);
        qb.push(format!(
            "SELECT {lane}, kind, event_time, {one}, {failed}, seq, name, \
             event_time FROM events{by_seq} WHERE seq > {CHECKPOINT}{MARKS}') \
             AND {counted} AND event_time >= "
        ));
        qb.push_bind(lo).push(" AND event_time <= ").push_bind(hi);
        push_filters(qb, f, lane);
        push_not_except(qb, f);
        if !f.except.is_empty() {
            union(qb);
            qb.push(format!(
                "SELECT {lane}, kind, event_time, -{one}, -{failed}, NULL, \
                 NULL, NULL FROM events WHERE seq <= {CHECKPOINT}{MARKS}') AND {counted} \
                 AND event_time >= "
            ));
            qb.push_bind(lo).push(" AND event_time <= ").push_bind(hi);
            push_filters(qb, f, lane);
            push_list(qb, " AND seq IN (", f.except);
        }
    }
}

/// One group of the picture as read: (group lane, resource, kind, bucket, count, first
/// seq, its name, its time, failed).
pub(super) type GroupRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    i64,
);

/// What the picture is made of, as a backend reads it: the chosen lanes, the totals of
/// those with events, the total of all other lanes, the groups.
pub(super) type PictureRows = (Vec<String>, Vec<(String, i64)>, i64, Vec<GroupRow>);

/// The picture from what a backend read: the chosen lanes, the totals of those that
/// have events, the total of all other lanes, and the groups. Also gives the marks whose
/// first event is to be looked up again (a whole minute's first may be one the caller
/// draws itself), by index.
pub(super) fn assemble(
    lanes: Vec<String>,
    mut totals: Vec<(String, i64)>,
    rest: i64,
    rows: Vec<GroupRow>,
    except: &[i64],
) -> (WindowPicture, Vec<usize>) {
    if rest > 0 {
        match totals.iter_mut().find(|(l, _)| l.is_empty()) {
            Some(e) => e.1 += rest,
            None => totals.insert(0, (String::new(), rest)),
        }
    }
    let mut again = Vec::new();
    let mut marks = Vec::with_capacity(rows.len());
    for (lane, resource, kind, bucket, count, seq, name, time, failed) in rows {
        if seq.is_none_or(|s| except.contains(&s)) {
            again.push(marks.len());
        }
        marks.push(WindowMark {
            lane,
            resource,
            kind,
            bucket,
            count,
            seq: seq.unwrap_or(0),
            name: name.unwrap_or_default(),
            event_time: time.unwrap_or(0),
            failed,
        });
    }
    let picture = WindowPicture {
        lanes,
        totals,
        marks,
    };
    (picture, again)
}

/// The statement of a group's first event that `f` keeps (see `refirst`), up to its
/// ORDER BY: (lane, seq, name, event time).
pub(super) fn push_first<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    g: &MarkGrid,
    f: &MarkFilter<'_>,
    lanes: &[String],
    m: &WindowMark,
    sql: &MarkSql,
) where
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let MarkSql {
        lane,
        counted,
        by_time,
        ..
    } = sql;
    let start = g.origin + m.bucket * g.bucket_ms;
    qb.push(format!(
        "SELECT {lane} AS lane, seq, name, event_time \
         FROM events{by_time} WHERE {counted} AND event_time >= "
    ));
    qb.push_bind(start.max(g.from))
        .push(" AND event_time <= ")
        .push_bind((start + g.bucket_ms - 1).min(g.to))
        .push(" AND kind = ")
        .push_bind(m.kind.clone());
    push_filters(qb, &MarkFilter { kinds: &[], ..*f }, lane);
    push_not_except(qb, f);
    let named: Vec<String> = lanes.iter().filter(|l| !l.is_empty()).cloned().collect();
    if m.lane.is_empty() && !named.is_empty() {
        // (No NULL in this list: `x NOT IN (NULL, ...)` is never true.)
        push_list(qb, &format!(" AND {lane} NOT IN ("), &named);
    } else if !m.lane.is_empty() {
        qb.push(format!(" AND {lane} = ")).push_bind(m.lane.clone());
    }
    qb.push(" ORDER BY seq LIMIT 1");
}

/// A statement that starts with the window's hits as the table `hits`.
fn with_hits(g: &MarkGrid, f: &MarkFilter<'_>) -> QueryBuilder<Sqlite> {
    // Materialized: the statement reads it for the lanes' totals and for the marks.
    let mut qb = QueryBuilder::new(
        "WITH hits (lane, kind, t, n, failed, first, name, time) AS MATERIALIZED (",
    );
    push_hits(&mut qb, g, f, &SQLITE);
    qb.push(") ");
    qb
}

/// Reads the JSON document a statement builds (one row, one column) as a `T` (the
/// default when the statement yields NULL).
async fn json_doc<T: serde::de::DeserializeOwned + Default>(
    store: &SqliteStore,
    mut qb: QueryBuilder<Sqlite>,
) -> Result<T> {
    // Handing thousands of rows over one at a time through sqlx's worker thread cost
    // more than the query (30 ms of a 45 ms picture at 10M events): SQLite writes them
    // as one JSON document.
    let doc: Option<String> = qb.build_query_scalar().fetch_one(&store.reader).await?;
    match doc.as_deref() {
        Some(d) => serde_json::from_str(d).map_err(|e| sqlx::Error::Decode(Box::new(e)).into()),
        None => Ok(T::default()),
    }
}

/// What the picture of a window reads ([`SqliteStore::window_picture`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowPicture {
    /// The lanes: the fixed ones, then the busiest others.
    pub lanes: Vec<String>,
    /// Events per lane of `lanes` that has any, by lane, and under the empty lane those
    /// of every other resource (and of none), when there are.
    pub totals: Vec<(String, i64)>,
    /// Counts by (lane, kind, bucket), in that order: each of `lanes` its own lane, all
    /// others the empty one; at most [`MAX_MARK_GROUPS`] groups.
    pub marks: Vec<WindowMark>,
}

impl SqliteStore {
    /// The counted marks of a window in one statement (the window's hits are read once):
    /// the lanes are `fixed`, then up to `busiest` of the resources with most events
    /// (ties by name), then one lane shared by all others.
    pub async fn window_picture(
        &self,
        g: &MarkGrid,
        f: &MarkFilter<'_>,
        fixed: &[String],
        busiest: usize,
    ) -> Result<WindowPicture> {
        let mut qb = with_hits(g, f);
        qb.push(
            ", tot (lane, n) AS (SELECT lane, SUM(n) FROM hits GROUP BY lane HAVING SUM(n) > 0), \
             fixed (lane) AS (SELECT value FROM json_each(",
        );
        qb.push_bind(json_list(fixed))
            .push(
                ")), chosen (lane) AS (SELECT lane FROM fixed UNION ALL SELECT lane FROM \
                 (SELECT lane FROM tot WHERE lane <> '' AND lane NOT IN (SELECT lane FROM fixed) \
                 ORDER BY n DESC, lane LIMIT ",
            )
            .push_bind(busiest as i64)
            .push(
                ")) SELECT json_array(\
                 (SELECT json_group_array(lane) FROM chosen), \
                 (SELECT json_group_array(json_array(lane, n)) FROM (SELECT lane, n FROM tot \
                 WHERE lane IN (SELECT lane FROM chosen) ORDER BY lane)), \
                 (SELECT COALESCE(SUM(n), 0) FROM tot WHERE lane NOT IN (SELECT lane FROM chosen)), \
                 (SELECT json_group_array(json_array(grp, lane, kind, bucket, n, first, name, \
                 time, failed)) FROM (SELECT CASE WHEN lane IN (SELECT lane FROM chosen) \
                 THEN lane ELSE '' END AS grp, lane, kind, (t - ",
            )
            .push_bind(g.origin)
            .push(") / ")
            .push_bind(g.bucket_ms.max(1))
            // With one MIN() aggregate, SQLite takes the bare columns (lane, name, time)
            // from the row holding the minimum: the group's first event.
            .push(
                " AS bucket, SUM(n) AS n, MIN(first) AS first, name, time, SUM(failed) AS failed \
                 FROM hits GROUP BY grp, kind, bucket HAVING SUM(n) > 0 \
                 ORDER BY grp, kind, bucket LIMIT ",
            )
            .push_bind(MAX_MARK_GROUPS)
            .push(")))");
        let t = std::time::Instant::now();
        let (lanes, totals, rest, rows): PictureRows = json_doc(self, qb).await?;
        let read_ms = t.elapsed().as_secs_f64() * 1000.0;
        let (mut picture, again) = assemble(lanes, totals, rest, rows, f.except);
        for &i in &again {
            let (lanes, marks) = (&picture.lanes, &mut picture.marks);
            if let Some(m) = marks.get_mut(i) {
                self.refirst(g, f, lanes, m).await?;
            }
        }
        tracing::debug!(
            groups = picture.marks.len(),
            read_ms,
            refirsts = again.len(),
            total_ms = t.elapsed().as_secs_f64() * 1000.0,
            "Window marks read"
        );
        Ok(picture)
    }

    /// Sets `m`'s first event to the lowest seq of its group that `f` keeps.
    async fn refirst(
        &self,
        g: &MarkGrid,
        f: &MarkFilter<'_>,
        lanes: &[String],
        m: &mut WindowMark,
    ) -> Result<()> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT json_group_array(json_array(lane, seq, name, event_time)) FROM (",
        );
        push_first(&mut qb, g, f, lanes, m, &SQLITE);
        qb.push(")");
        let rows: Vec<(String, i64, String, i64)> = json_doc(self, qb).await?;
        if let Some((lane, seq, name, time)) = rows.into_iter().next() {
            (m.resource, m.seq, m.name, m.event_time) = (lane, seq, name, time);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_or_more_is_cut_into_whole_minutes() {
        // 90 minutes into about 100 buckets (54 s each) becomes 60 s buckets from a
        // whole minute, so its middle is read from the minute counts.
        let (from, to) = (1_761_692_938_000, 1_761_698_338_000);
        let g = MarkGrid::new(from, to, 100);
        assert_eq!(g.bucket_ms, MINUTE_MS);
        assert_eq!(g.origin % MINUTE_MS, 0);
        assert!(g.origin <= from && from - g.origin < MINUTE_MS);
        let (first, last) = g.whole_minutes().expect("whole minutes");
        assert_eq!((last - first + 1) * MINUTE_MS, 5_340_000);
        // Three hours: 108 s, rounded up to two minutes.
        assert_eq!(
            MarkGrid::new(from, from + 10_800_000, 100).bucket_ms,
            2 * MINUTE_MS
        );
        // Forty minutes (24 s buckets) stays finer than a minute, read from the events.
        let fine = MarkGrid::new(from, from + 2_400_000, 100);
        assert_eq!((fine.bucket_ms, fine.origin), (24_000, from));
        assert_eq!(fine.whole_minutes(), None);
    }
}
