//! The engine's indexed reads on PostgreSQL: what `store::reads` answers on SQLite, each
//! an index seek or a bounded range (the resource filter through `event_resources`, the
//! window and alarm reads through the partial indexes of migrations/postgres/0003).

use super::{row_to_event, PgStore};
use crate::model::{Event, Source};
use crate::store::reads::neighbours;
use crate::store::{Result, SELECT_COLUMNS, SELECT_COLUMNS_NO_PAYLOAD};
use std::collections::BTreeSet;

/// The condition of the `events_window` index, word for word (the events a ranking
/// reads: no conclusions, no log lines, no successful read-only calls).
pub(super) const WINDOW_EVENTS: &str = "source <> 'rootline' AND kind <> 'log' \
     AND NOT (kind = 'change' AND read_only AND error_code IS NULL)";

/// Events of a resource examined, at most, for its earlier changes.
const EARLIER_SCAN: i64 = 2_000;
/// Events per read of a list of seqs.
const SEQS_PER_READ: usize = 500;

impl PgStore {
    async fn events_where(&self, sql: String, binds: &[i64]) -> Result<Vec<Event>> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(*b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(row_to_event).collect()
    }

    /// Each of `keys`' neighbours in the graph (sorted), `None` for a key with more than
    /// `at_most` (counted only up to the cap).
    pub async fn graph_edges_of_many(
        &self,
        keys: &[String],
        at_most: usize,
    ) -> Result<Vec<Option<Vec<String>>>> {
        let cap = i64::try_from(at_most).unwrap_or(i64::MAX).saturating_add(1);
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "WITH k(key) AS (SELECT DISTINCT unnest($1::text[])), \
             degree(key, n) AS (SELECT key, \
               (SELECT count(*) FROM (SELECT 1 FROM graph_edges WHERE a = k.key LIMIT $2) x) + \
               (SELECT count(*) FROM (SELECT 1 FROM graph_edges WHERE b = k.key LIMIT $2) y) \
               FROM k), \
             small(key) AS (SELECT key FROM degree WHERE n < $2) \
             SELECT key, b::text FROM small JOIN graph_edges ON a = key \
             UNION ALL SELECT key, a::text FROM small JOIN graph_edges ON b = key \
             UNION ALL SELECT key, NULL FROM degree WHERE n >= $2",
        )
        .bind(keys)
        .bind(cap)
        .fetch_all(&self.pool)
        .await?;
        Ok(neighbours(keys, rows))
    }

    /// Which of `keys` are nodes of the graph, in one read.
    pub async fn graph_has_many(&self, keys: &[String]) -> Result<BTreeSet<String>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT resource::text FROM graph_nodes WHERE resource = ANY($1)")
                .bind(keys)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// Log group nodes whose name tail is one of `tails`: (tail, node) pairs, sorted.
    pub async fn graph_nodes_with_tails(&self, tails: &[String]) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT name_tail::text, resource::text FROM graph_nodes \
             WHERE name_tail = ANY($1) ORDER BY name_tail, resource",
        )
        .bind(tails)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The pairs `(x, y)`, `x` of `xs` and `y` of `ys`, that an edge joins (either way).
    pub async fn graph_edges_among(
        &self,
        xs: &[String],
        ys: &[String],
    ) -> Result<BTreeSet<(String, String)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT a::text, b::text FROM graph_edges WHERE a = ANY($1) AND b = ANY($2) \
             UNION SELECT b::text, a::text FROM graph_edges WHERE b = ANY($1) AND a = ANY($2)",
        )
        .bind(xs)
        .bind(ys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Up to `limit` effective changes whose primary resource is `resource`, before
    /// `before`, latest first by (event time, seq); the resource's newest few thousand
    /// events are examined.
    pub async fn earlier_changes(
        &self,
        resource: &str,
        before: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS} FROM events WHERE seq IN (SELECT seq FROM event_resources \
             WHERE resource = $1 AND event_time < $2 ORDER BY event_time DESC, seq DESC \
             LIMIT $3) AND kind IN ('change', 'deployment') AND NOT read_only \
             AND error_code IS NULL AND event_time < $2"
        )))
        .bind(resource)
        .bind(before)
        .bind(EARLIER_SCAN)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let e = row_to_event(r)?;
            if e.resources.first().map(String::as_str) == Some(resource) {
                out.push(e);
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse((e.event_time, e.seq)));
        out.truncate(limit);
        Ok(out)
    }

    /// The events a ranking reads from its window [from, to], in (event time, seq) order.
    pub async fn window_events(&self, from: i64, to: i64) -> Result<Vec<Event>> {
        self.events_where(
            format!(
                "SELECT {SELECT_COLUMNS} FROM events WHERE event_time >= $1 \
                 AND event_time <= $2 AND {WINDOW_EVENTS} ORDER BY event_time, seq"
            ),
            &[from, to],
        )
        .await
    }

    /// Up to `limit` alarm transitions with seq in (after, upto], in seq order.
    pub async fn alarm_events(&self, after: i64, upto: i64, limit: i64) -> Result<Vec<Event>> {
        self.events_where(
            format!(
                "SELECT {SELECT_COLUMNS} FROM events WHERE kind = 'alarm' AND seq > $1 \
                 AND seq <= $2 ORDER BY seq LIMIT $3"
            ),
            &[after, upto, limit.max(1)],
        )
        .await
    }

    /// True when an upstream event a ranking reads, other than an alarm transition, has
    /// its seq in (after, upto] and its event time in [from, to].
    pub async fn upstream_between(
        &self,
        after: i64,
        upto: i64,
        from: i64,
        to: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM events WHERE seq > $1 AND seq <= $2 AND event_time >= $3 \
             AND event_time <= $4 AND {WINDOW_EVENTS} AND kind <> 'alarm' LIMIT 1"
        )))
        .bind(after)
        .bind(upto)
        .bind(from)
        .bind(to)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// The events among `refs` that a conclusion can cite (not rootline's own), without
    /// payloads, in seq order.
    pub async fn find_cited(&self, refs: &[(Source, String)]) -> Result<Vec<Event>> {
        let wanted: BTreeSet<(&str, &str)> = refs
            .iter()
            .filter(|(s, _)| *s != Source::Rootline)
            .map(|(s, id)| (s.as_str(), id.as_str()))
            .collect();
        let wanted: Vec<(&str, &str)> = wanted.into_iter().collect();
        let mut out = Vec::new();
        for chunk in wanted.chunks(SEQS_PER_READ) {
            let (sources, ids): (Vec<&str>, Vec<&str>) = chunk.iter().copied().unzip();
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events WHERE (source, natural_id) IN \
                 (SELECT * FROM unnest($1::text[], $2::text[])) AND {WINDOW_EVENTS}"
            )))
            .bind(sources)
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                out.push(row_to_event(r)?);
            }
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// The events of these seqs (at most 500), without payloads, in seq order.
    pub async fn events_bare(&self, seqs: &[i64]) -> Result<Vec<Event>> {
        let seqs: Vec<i64> = seqs.iter().take(SEQS_PER_READ).copied().collect();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events WHERE seq = ANY($1) ORDER BY seq"
        )))
        .bind(seqs)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// Among the newest `scan` rootline events whose natural id starts with `prefix`,
    /// before `before`, up to `limit` naming one of `keys`, newest first, without
    /// payloads.
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM (SELECT * FROM events \
             WHERE source = 'rootline' AND natural_id >= $1 AND natural_id < $2 \
             AND event_time < $3 ORDER BY event_time DESC, seq DESC LIMIT $4) AS e \
             WHERE EXISTS (SELECT 1 FROM json_array_elements_text(e.resources::json) AS r \
             WHERE r = ANY($5)) ORDER BY event_time DESC, seq DESC LIMIT $6"
        )))
        .bind(prefix)
        .bind(format!("{prefix}\u{10FFFF}"))
        .bind(before)
        .bind(scan.max(1))
        .bind(keys)
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// Up to `limit` transitions of the alarms `alarm_keys` with event time in
    /// [from, to], in (event time, seq) order, without payloads.
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events WHERE kind = 'alarm' \
             AND seq IN (SELECT seq FROM event_resources WHERE resource = ANY($1) \
             AND event_time >= $2 AND event_time <= $3) \
             AND event_time >= $2 AND event_time <= $3 ORDER BY event_time, seq LIMIT $4"
        )))
        .bind(alarm_keys)
        .bind(from)
        .bind(to)
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_event).collect()
    }

    /// The latest transition of an alarm (`alarm/NAME`) before `before`.
    pub async fn alarm_state_before(&self, alarm_key: &str, before: i64) -> Result<Option<Event>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events WHERE kind = 'alarm' \
             AND event_time < $2 AND seq IN (SELECT seq FROM event_resources \
             WHERE resource = $1 AND event_time < $2 ORDER BY event_time DESC, seq DESC \
             LIMIT 50) ORDER BY event_time DESC, seq DESC LIMIT 1"
        )))
        .bind(alarm_key)
        .bind(before)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_event).transpose()
    }

    /// Up to `limit` events after seq `after`, in seq order, without payloads.
    pub async fn events_after_bare(&self, after: i64, limit: i64) -> Result<Vec<Event>> {
        self.events_where(
            format!(
                "SELECT {SELECT_COLUMNS_NO_PAYLOAD} FROM events WHERE seq > $1 \
                 ORDER BY seq LIMIT $2"
            ),
            &[after, limit.max(1)],
        )
        .await
    }
}
