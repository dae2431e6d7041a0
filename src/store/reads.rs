//! The engine's indexed reads: what an analysis reads instead of the whole log. An
//! incident's window by time, the resource graph a batch of nodes at a time, naming statistics,
//! alarm definitions, a resource's earlier changes, and the analyser's new alarm
//! transitions. Each is an index seek or a bounded range.

use super::projections::AlarmMetric;
use super::sqlite::row_to_event;
use super::{Result, SqliteStore};
use super::{SELECT_COLUMNS, SELECT_COLUMNS_NO_PAYLOAD};
use crate::model::{Event, Source};
use sqlx::{QueryBuilder, Row, Sqlite};

/// Seqs of a resource's postings examined, at most, for its earlier changes.
const EARLIER_SCAN: usize = 2_000;
/// Seqs per `IN (...)` read.
const SEQS_PER_READ: usize = 500;

/// The condition of the `events_window` index, word for word (the events a ranking reads:
/// no conclusions, no log lines, no successful read-only calls); the cited-ids index has
/// it too. SQLite uses a partial index only for a query that repeats its condition.
pub(super) const WINDOW_EVENTS: &str = "source <> 'rootline' AND kind <> 'log' \
     AND NOT (kind = 'change' AND read_only = 1 AND error_code IS NULL)";

/// A list of keys as the JSON array `json_each` reads (infallible, unlike
/// `serde_json::to_string`'s signature suggests).
pub(super) fn json_list(keys: &[String]) -> String {
    serde_json::Value::from(keys.to_vec()).to_string()
}

/// Each of `keys`' neighbours (sorted), from (key, neighbour) rows where a key with
/// too many has one row (key, `None`), as [`SqliteStore::graph_edges_of_many`] gives
/// them: `None` for such a key, an empty list for one without rows.
pub(super) fn neighbours(
    keys: &[String],
    rows: Vec<(String, Option<String>)>,
) -> Vec<Option<Vec<String>>> {
    let mut found: std::collections::BTreeMap<String, Option<Vec<String>>> =
        std::collections::BTreeMap::new();
    for (key, other) in rows {
        match other {
            Some(o) => {
                if let Some(v) = found.entry(key).or_insert_with(|| Some(Vec::new())) {
                    v.push(o);
                }
            }
            None => {
                found.insert(key, None);
            }
        }
    }
    keys.iter()
        .map(|k| match found.get(k) {
            None => Some(Vec::new()),
            Some(None) => None,
            Some(Some(v)) => {
                let mut v = v.clone();
                v.sort();
                Some(v)
            }
        })
        .collect()
}

/// The point reads that are the same statement on both backends (`$n` parameters),
/// through the store's `read_pool()`.
macro_rules! point_reads_on {
    ($store:ty) => {
        impl $store {
            /// True when the resource graph has `key` as a node.
            pub async fn graph_has(&self, key: &str) -> Result<bool> {
                Ok(sqlx::query("SELECT 1 FROM graph_nodes WHERE resource = $1")
                    .bind(key)
                    .fetch_optional(self.read_pool())
                    .await?
                    .is_some())
            }

            /// When the graph first and last saw `a` and `b` linked (event times),
            /// either way.
            pub async fn graph_edge(&self, a: &str, b: &str) -> Result<Option<(i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT first_time, last_time FROM graph_edges WHERE (a = $1 AND b = $2) \
                     OR (a = $2 AND b = $1) LIMIT 1",
                )
                .bind(a)
                .bind(b)
                .fetch_optional(self.read_pool())
                .await?)
            }

            /// In how many names a word appears (the empty word: how many names there
            /// are).
            pub async fn name_token_df(&self, token: &str) -> Result<i64> {
                let df: Option<i64> =
                    sqlx::query_scalar("SELECT df FROM name_tokens WHERE token = $1")
                        .bind(token)
                        .fetch_optional(self.read_pool())
                        .await?;
                Ok(df.unwrap_or(0))
            }

            /// An alarm's latest definition.
            pub async fn alarm_definition(&self, alarm: &str) -> Result<Option<AlarmMetric>> {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT namespace, metric FROM alarm_definitions WHERE alarm = $1",
                )
                .bind(alarm)
                .fetch_optional(self.read_pool())
                .await?;
                Ok(row.map(|(namespace, metric)| AlarmMetric { namespace, metric }))
            }
        }
    };
}

point_reads_on!(SqliteStore);
point_reads_on!(super::PgStore);

impl SqliteStore {
    /// The nodes an edge of the graph joins to each of `keys`, in one read: for each key,
    /// in the order given, its neighbours (sorted), or `None` when it has more than
    /// `at_most`. Each key's edges are counted only up to the cap, so a hub costs no more
    /// than a small node.
    pub async fn graph_edges_of_many(
        &self,
        keys: &[String],
        at_most: usize,
    ) -> Result<Vec<Option<Vec<String>>>> {
        let cap = i64::try_from(at_most).unwrap_or(i64::MAX).saturating_add(1);
        let list = json_list(keys);
        let rows = sqlx::query(
            "WITH k(key) AS (SELECT DISTINCT value FROM json_each(?1)), \
             degree(key, n) AS (SELECT key, \
               (SELECT count(*) FROM (SELECT 1 FROM graph_edges WHERE a = k.key LIMIT ?2)) + \
               (SELECT count(*) FROM (SELECT 1 FROM graph_edges INDEXED BY graph_edges_b \
                WHERE b = k.key LIMIT ?2)) FROM k), \
             small(key) AS (SELECT key FROM degree WHERE n < ?2) \
             SELECT key, b FROM small JOIN graph_edges ON a = key \
             UNION ALL SELECT key, a FROM small JOIN graph_edges INDEXED BY graph_edges_b ON b = key \
             UNION ALL SELECT key, NULL FROM degree WHERE n >= ?2",
        )
        .bind(list)
        .bind(cap)
        .fetch_all(&self.reader)
        .await?;
        let rows = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(neighbours(keys, rows))
    }

    /// Which of `keys` are nodes of the graph, in one read.
    pub async fn graph_has_many(
        &self,
        keys: &[String],
    ) -> Result<std::collections::BTreeSet<String>> {
        let rows = sqlx::query(
            "SELECT resource FROM graph_nodes WHERE resource IN (SELECT value FROM json_each(?))",
        )
        .bind(json_list(keys))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(Into::into))
            .collect()
    }

    /// Log group nodes whose name tail is one of `tails`, in one read: (tail, node)
    /// pairs, sorted.
    pub async fn graph_nodes_with_tails(&self, tails: &[String]) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT name_tail, resource FROM graph_nodes \
             WHERE name_tail IN (SELECT value FROM json_each(?)) AND name_tail IS NOT NULL \
             ORDER BY name_tail, resource",
        )
        .bind(json_list(tails))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The pairs `(x, y)`, `x` of `xs` and `y` of `ys`, that an edge of the graph joins
    /// (either way), in one read of point lookups.
    pub async fn graph_edges_among(
        &self,
        xs: &[String],
        ys: &[String],
    ) -> Result<std::collections::BTreeSet<(String, String)>> {
        let rows = sqlx::query(
            "SELECT a, b FROM graph_edges WHERE a IN (SELECT value FROM json_each(?1)) \
             AND b IN (SELECT value FROM json_each(?2)) \
             UNION SELECT b, a FROM graph_edges WHERE b IN (SELECT value FROM json_each(?1)) \
             AND a IN (SELECT value FROM json_each(?2))",
        )
        .bind(json_list(xs))
        .bind(json_list(ys))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Up to `limit` effective changes (successful, not read-only changes and
    /// deployments) whose primary (first) resource is `resource`, with event time before
    /// `before`, latest first by (event time, seq). Reads the resource's postings from
    /// the newest, examining at most a few thousand of its events.
    pub async fn earlier_changes(
        &self,
        resource: &str,
        before: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        // Postings hold at least one seq each: this many rows always reach the cap.
        let rows = sqlx::query(
            "SELECT seqs FROM resource_postings WHERE resource = ? AND min_time < ? \
             ORDER BY first_seq DESC LIMIT ?",
        )
        .bind(resource)
        .bind(before)
        .bind(EARLIER_SCAN as i64)
        .fetch_all(&self.reader)
        .await?;
        let mut seqs: Vec<i64> = Vec::new();
        for r in rows {
            let list: String = r.try_get(0)?;
            let mut v: Vec<i64> = serde_json::from_str(&list).unwrap_or_default();
            v.reverse();
            seqs.extend(v);
            if seqs.len() >= EARLIER_SCAN {
                seqs.truncate(EARLIER_SCAN);
                break;
            }
        }
        let mut out: Vec<Event> = Vec::new();
        for chunk in seqs.chunks(SEQS_PER_READ) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "SELECT {SELECT_COLUMNS} FROM events WHERE kind IN ('change', 'deployment') \
                 AND read_only = 0 AND error_code IS NULL AND event_time < "
            ));
            qb.push_bind(before).push(" AND seq IN (");
            let mut sep = qb.separated(", ");
            for s in chunk {
                sep.push_bind(*s);
            }
            qb.push(")");
            for r in qb.build().fetch_all(&self.reader).await? {
                let e = row_to_event(&r)?;
                if e.resources.first().map(String::as_str) == Some(resource) {
                    out.push(e);
                }
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse((e.event_time, e.seq)));
        out.truncate(limit);
        Ok(out)
    }

    /// The events an incident's ranking reads from its window: every upstream event with
    /// event time in [from, to] except read-only API calls and raw log lines (neither is
    /// ever a candidate cause or a symptom), in (event time, seq) order.
    pub async fn window_events(&self, from: i64, to: i64) -> Result<Vec<Event>> {
        let mut out = self
            .json_events(
                &format!(
                    "SELECT * FROM events INDEXED BY events_window WHERE event_time >= ? \
                     AND event_time <= ? AND {WINDOW_EVENTS}"
                ),
                [from, to],
                true,
            )
            .await?;
        out.sort_by_key(|e| (e.event_time, e.seq));
        Ok(out)
    }

    /// Up to `limit` alarm transitions with seq in (after, upto], in seq order.
    pub async fn alarm_events(&self, after: i64, upto: i64, limit: i64) -> Result<Vec<Event>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS} FROM events INDEXED BY events_alarms \
             WHERE kind = 'alarm' AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
        )))
        .bind(after)
        .bind(upto)
        .bind(limit.max(1))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// True when an upstream event that a ranking reads (one of [`Self::window_events`]'s)
    /// other than an alarm transition has its seq in (after, upto] and its event time in
    /// [from, to]. (Alarm transitions are told apart by the analyser: only saturation
    /// alarms going off are candidates in other incidents.)
    pub async fn upstream_between(
        &self,
        after: i64,
        upto: i64,
        from: i64,
        to: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM events WHERE seq > ? AND seq <= ? AND event_time >= ? \
             AND event_time <= ? AND {WINDOW_EVENTS} AND kind <> 'alarm' LIMIT 1"
        )))
        .bind(after)
        .bind(upto)
        .bind(from)
        .bind(to)
        .fetch_optional(&self.reader)
        .await?
        .is_some())
    }
}

impl SqliteStore {
    /// The events among `refs` (source, natural id) that a conclusion can cite (what
    /// [`crate::store::EventLog::find`] finds; not rootline's own), without payloads,
    /// in one read per 500 ids through the same partial index: a page resolves every
    /// hypothesis's evidence at once instead of one read per reference.
    pub async fn find_cited(&self, refs: &[(Source, String)]) -> Result<Vec<Event>> {
        let wanted: std::collections::BTreeSet<(&str, &str)> = refs
            .iter()
            .filter(|(s, _)| *s != Source::Rootline)
            .map(|(s, id)| (s.as_str(), id.as_str()))
            .collect();
        let ids: Vec<&str> = wanted
            .iter()
            .map(|(_, id)| *id)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(SEQS_PER_READ) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events INDEXED BY events_cited_ids \
                 WHERE {WINDOW_EVENTS} AND substr(natural_id, -16) IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in chunk {
                // What substr(natural_id, -16) gives: the last 16 characters.
                let n = id.chars().count();
                let tail: String = id.chars().skip(n.saturating_sub(16)).collect();
                sep.push_bind(tail);
            }
            qb.push(") AND natural_id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(id.to_string());
            }
            qb.push(")");
            for r in qb.build().fetch_all(&self.reader).await? {
                let e = row_to_event(&r)?;
                if wanted.contains(&(e.source.as_str(), e.natural_id.as_str())) {
                    out.push(e);
                }
            }
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// The events of these seqs (at most [`SEQS_PER_READ`]), without their payloads, in
    /// seq order: one read for what a page cites.
    pub async fn events_bare(&self, seqs: &[i64]) -> Result<Vec<Event>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events WHERE seq IN ("
        ));
        let mut sep = qb.separated(", ");
        for s in seqs.iter().take(SEQS_PER_READ) {
            sep.push_bind(*s);
        }
        qb.push(") ORDER BY seq");
        let rows = qb.build().fetch_all(&self.reader).await?;
        rows.iter().map(row_to_event).collect()
    }

    /// Among the newest `scan` events of source rootline whose natural id starts with
    /// `prefix` and whose event time is before `before`, up to `limit` that name one of
    /// `keys`, newest first, without payloads. The keys are matched in SQLite: only
    /// matches are handed over (the earlier incidents of a page: a few of hundreds).
    pub async fn rootline_naming(
        &self,
        prefix: &str,
        keys: &[String],
        before: i64,
        scan: i64,
        limit: i64,
    ) -> Result<Vec<Event>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM (SELECT seq, source, natural_id, \
             event_time, received_at, detail, name, actor, read_only, error_code, resources \
             FROM events INDEXED BY events_rootline_ids WHERE source = 'rootline' \
             AND natural_id >= "
        ));
        qb.push_bind(prefix.to_string())
            .push(" AND natural_id < ")
            .push_bind(format!("{prefix}\u{10FFFF}"))
            .push(" AND event_time < ")
            .push_bind(before)
            .push(" ORDER BY event_time DESC, seq DESC LIMIT ")
            .push_bind(scan.max(1))
            .push(
                ") WHERE EXISTS (SELECT 1 FROM json_each(resources) AS r \
                 WHERE r.value IN (SELECT value FROM json_each(",
            )
            .push_bind(json_list(keys))
            .push("))) ORDER BY event_time DESC, seq DESC LIMIT ")
            .push_bind(limit.max(1));
        let rows = qb.build().fetch_all(&self.reader).await?;
        rows.iter().map(row_to_event).collect()
    }

    /// Up to `limit` transitions of the alarms `alarm_keys` (`alarm/NAME`) with event
    /// time in [from, to], in (event time, seq) order, without payloads: through each
    /// alarm's postings, so other alarms flapping in the window cost nothing.
    pub async fn alarm_transitions(
        &self,
        alarm_keys: &[String],
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<Event>> {
        if alarm_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events WHERE kind = 'alarm' \
             AND seq IN (SELECT j.value FROM resource_postings AS p, json_each(p.seqs) AS j \
             WHERE p.resource IN (SELECT value FROM json_each("
        ));
        qb.push_bind(json_list(alarm_keys))
            .push(")) AND p.max_time >= ")
            .push_bind(from)
            .push(" AND p.min_time <= ")
            .push_bind(to)
            .push(") AND event_time >= ")
            .push_bind(from)
            .push(" AND event_time <= ")
            .push_bind(to)
            .push(" ORDER BY event_time, seq LIMIT ")
            .push_bind(limit.max(1));
        let rows = qb.build().fetch_all(&self.reader).await?;
        rows.iter().map(row_to_event).collect()
    }

    /// The latest transition of an alarm (resource key `alarm/NAME`) before `before`: its
    /// state when a window opens. One bounded read of the alarm's newest postings.
    pub async fn alarm_state_before(&self, alarm_key: &str, before: i64) -> Result<Option<Event>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events WHERE kind = 'alarm' AND event_time < ? \
             AND seq IN (SELECT j.value FROM (SELECT seqs FROM resource_postings \
             WHERE resource = ? AND min_time < ? ORDER BY first_seq DESC LIMIT 50) AS p, \
             json_each(p.seqs) AS j) ORDER BY event_time DESC, seq DESC LIMIT 1"
        )))
        .bind(before)
        .bind(alarm_key)
        .bind(before)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }
}

/// One event as [`SqliteStore::json_events`] has SQLite write it.
type JsonRow = (
    i64,
    String,
    String,
    i64,
    Option<i64>,
    Box<serde_json::value::RawValue>,
    String,
    Option<String>,
    i64,
    Option<String>,
    Vec<String>,
    String,
);

impl SqliteStore {
    /// Up to `limit` events with seq after `after`, in seq order, without their
    /// payloads: what the projector reads.
    pub async fn events_after_bare(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        let mut out = self
            .json_events(
                "SELECT seq, source, natural_id, event_time, received_at, detail, name, actor, \
                 read_only, error_code, resources FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                [after, limit.max(1)],
                false,
            )
            .await?;
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// The events `inner` selects (a query on `events` with two integer parameters),
    /// written by SQLite as one JSON document. Read a row at a time, each row costs a
    /// hand-off to and from sqlx's worker thread, which took more time than the rest of
    /// the projector. Payloads are read (verbatim) only when `payloads`.
    async fn json_events(
        &self,
        inner: &str,
        binds: [i64; 2],
        payloads: bool,
    ) -> Result<Vec<Event>> {
        let payload = if payloads { "payload" } else { "''" };
        let sql = format!(
            "SELECT json_group_array(json_array(seq, source, natural_id, event_time, \
             received_at, json(detail), name, actor, read_only, error_code, json(resources), \
             {payload})) FROM ({inner})"
        );
        let doc: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(binds[0])
            .bind(binds[1])
            .fetch_one(&self.reader)
            .await?;
        // Each row borrowed from the document, not copied out of it: a window's rows
        // would otherwise be in memory twice before they become events.
        let rows: Vec<&serde_json::value::RawValue> = doc
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        let mut out: Vec<Event> = Vec::with_capacity(rows.len());
        for raw in rows {
            let Ok(r) = serde_json::from_str::<JsonRow>(raw.get()) else {
                // Columns that are not what the schema says: read that row the usual way.
                if let Ok(seq) = serde_json::from_str::<(i64,)>(raw.get()).map(|t| t.0) {
                    if let Some(mut e) = crate::store::EventLog::get(self, seq).await? {
                        if !payloads {
                            e.payload.clear();
                        }
                        out.push(e);
                    }
                }
                continue;
            };
            out.push(Event {
                seq: r.0,
                source: crate::model::Source::parse(&r.1).unwrap_or(crate::model::Source::Rootline),
                natural_id: r.2,
                event_time: r.3,
                received_at: r.4,
                kind: serde_json::from_str(r.5.get()).unwrap_or(crate::model::Kind::Other),
                name: r.6,
                actor: r.7,
                read_only: r.8 != 0,
                error_code: r.9,
                resources: r.10,
                payload: r.11,
            });
        }
        Ok(out)
    }
}
