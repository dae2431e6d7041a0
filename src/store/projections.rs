//! Projection tables (migrations/0005): the resource graph, alarm definitions and alarm
//! states, each with its checkpoint. The projector (`crate::project`) computes what a run
//! of events adds ([`ProjectionDelta`]); [`SqliteStore::apply_projection`] writes it and
//! moves every checkpoint in one transaction.

use super::{Result, SqliteStore};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::BTreeMap;

/// Rows per multi-row upsert (six parameters each, far below SQLite's limit).
const UPSERT_ROWS: usize = 1_000;

/// The projections this store keeps, by checkpoint name.
pub const PROJECTIONS: [&str; 5] = [
    "graph",
    "alarm_definitions",
    "alarm_states",
    "name_tokens",
    MARKS,
];

/// The checkpoint of the picture's counts (`mark_minutes`, migrations/0011).
pub const MARKS: &str = "marks";

/// A minute of event time (floored), the unit `mark_minutes` counts in.
pub const MINUTE_MS: i64 = 60_000;

/// One event the incident picture counts: its cell in `mark_minutes` and what it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkHit {
    pub seq: i64,
    pub minute: i64,
    pub lane: String,
    pub kind: &'static str,
    pub source: &'static str,
    pub failed: bool,
    pub event_time: i64,
    pub name: String,
}

/// A `mark_minutes` row: (count, failed, first seq, its event time, its name).
pub type MarkCell = (i64, i64, i64, i64, String);

/// A `mark_minutes` key: (minute, lane, kind, source).
pub type MarkKey = (i64, String, String, String);

/// Where and when something was first (and last) seen in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first_seq: i64,
    pub last_seq: i64,
    pub first_time: i64,
    pub last_time: i64,
}

impl Span {
    /// Seen once, in event `seq` at `time`.
    pub fn at(seq: i64, time: i64) -> Span {
        Span {
            first_seq: seq,
            last_seq: seq,
            first_time: time,
            last_time: time,
        }
    }

    /// Widened to cover `other` too.
    pub fn merge(&mut self, other: Span) {
        self.first_seq = self.first_seq.min(other.first_seq);
        self.last_seq = self.last_seq.max(other.last_seq);
        self.first_time = self.first_time.min(other.first_time);
        self.last_time = self.last_time.max(other.last_time);
    }
}

/// A value that the event with the greatest (event time, seq) decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest<T> {
    pub value: T,
    pub event_time: i64,
    pub seq: i64,
}

impl<T> Latest<T> {
    /// Keeps whichever of the two is later.
    pub fn keep_later(&mut self, other: Latest<T>) {
        if (other.event_time, other.seq) > (self.event_time, self.seq) {
            *self = other;
        }
    }
}

/// An alarm's metric.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlarmMetric {
    pub namespace: String,
    pub metric: String,
}

/// An alarm's latest transition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlarmState {
    pub state: String,
    pub old_state: String,
}

/// What a run of events adds to the projections. Keys are canonical resource keys and
/// alarm names; an edge is stored once, as (a, b) with a < b.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectionDelta {
    pub nodes: BTreeMap<String, Span>,
    pub edges: BTreeMap<(String, String), Span>,
    pub alarm_definitions: BTreeMap<String, Latest<AlarmMetric>>,
    pub alarm_states: BTreeMap<String, Latest<AlarmState>>,
    /// How the engine names each node and alarm of the delta (its words, counted in
    /// `name_tokens` when the node or alarm is new), and each log group's name tail.
    /// Written, never read back.
    pub names: Names,
    /// The events the incident picture counts, in seq order (applied only past the
    /// marks checkpoint: counting is not idempotent as the other projections are).
    pub marks: Vec<MarkHit>,
}

/// The naming side of a delta (see [`ProjectionDelta::names`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub node_tokens: BTreeMap<String, Vec<String>>,
    pub node_tails: BTreeMap<String, String>,
    pub alarm_tokens: BTreeMap<String, Vec<String>>,
}

impl ProjectionDelta {
    /// Adds a node seen in event `seq` at `time`.
    pub fn node(&mut self, key: &str, seq: i64, time: i64) {
        let s = Span::at(seq, time);
        match self.nodes.get_mut(key) {
            Some(x) => x.merge(s),
            None => {
                self.nodes.insert(key.to_string(), s);
            }
        }
    }

    /// Adds an edge (either direction) seen in event `seq` at `time`.
    pub fn edge(&mut self, a: &str, b: &str, seq: i64, time: i64) {
        let key = if a <= b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        };
        let s = Span::at(seq, time);
        match self.edges.get_mut(&key) {
            Some(x) => x.merge(s),
            None => {
                self.edges.insert(key, s);
            }
        }
    }

    /// Adds an alarm's definition as of event `seq`.
    pub fn alarm_definition(&mut self, alarm: &str, m: AlarmMetric, seq: i64, time: i64) {
        let l = Latest {
            value: m,
            event_time: time,
            seq,
        };
        match self.alarm_definitions.get_mut(alarm) {
            Some(x) => x.keep_later(l),
            None => {
                self.alarm_definitions.insert(alarm.to_string(), l);
            }
        }
    }

    /// Adds an alarm transition.
    pub fn alarm_state(&mut self, alarm: &str, st: AlarmState, seq: i64, time: i64) {
        let l = Latest {
            value: st,
            event_time: time,
            seq,
        };
        match self.alarm_states.get_mut(alarm) {
            Some(x) => x.keep_later(l),
            None => {
                self.alarm_states.insert(alarm.to_string(), l);
            }
        }
    }
}

/// Everything the projections hold, read back (for the engine, and to compare a rebuilt
/// projection with an incremental one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectionState {
    pub delta: ProjectionDelta,
    /// Naming statistics: documents per word (the empty word: the number of names).
    pub tokens: BTreeMap<String, i64>,
    /// Checkpoint per projection name.
    pub checkpoints: BTreeMap<String, i64>,
    /// The picture's counts.
    pub marks: BTreeMap<MarkKey, MarkCell>,
}

/// Moves a checkpoint of `projection_checkpoints` (both backends).
pub(super) const SET_CHECKPOINT: &str = "INSERT INTO projection_checkpoints (name, seq) \
     VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq";

/// Writes a delta's alarm definitions and states, each kept only when later by
/// (event time, seq) than the stored one: the same statements on both backends, on the
/// transaction `$tx` (a `&mut` connection of either).
macro_rules! write_alarms {
    ($tx:expr, $delta:expr) => {
        for (alarm, d) in &$delta.alarm_definitions {
            sqlx::query(
                "INSERT INTO alarm_definitions (alarm, namespace, metric, event_time, seq) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (alarm) DO UPDATE SET \
                 namespace = excluded.namespace, metric = excluded.metric, \
                 event_time = excluded.event_time, seq = excluded.seq \
                 WHERE (excluded.event_time, excluded.seq) \
                 > (alarm_definitions.event_time, alarm_definitions.seq)",
            )
            .bind(alarm)
            .bind(&d.value.namespace)
            .bind(&d.value.metric)
            .bind(d.event_time)
            .bind(d.seq)
            .execute(&mut *$tx)
            .await?;
        }
        for (alarm, st) in &$delta.alarm_states {
            sqlx::query(
                "INSERT INTO alarm_states (alarm, state, old_state, event_time, seq) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (alarm) DO UPDATE SET \
                 state = excluded.state, old_state = excluded.old_state, \
                 event_time = excluded.event_time, seq = excluded.seq \
                 WHERE (excluded.event_time, excluded.seq) \
                 > (alarm_states.event_time, alarm_states.seq)",
            )
            .bind(alarm)
            .bind(&st.value.state)
            .bind(&st.value.old_state)
            .bind(st.event_time)
            .bind(st.seq)
            .execute(&mut *$tx)
            .await?;
        }
    };
}
pub(super) use write_alarms;

/// A cell of `mark_minutes`: (minute, lane, kind, source).
pub(super) type CellKey<'a> = (i64, &'a str, &'a str, &'a str);

/// What `hits` past the marks checkpoint `done` add to each cell of `mark_minutes`
/// (hits at or before it were counted already: a store whose search index is behind has
/// the projector apply those events again), by cell.
pub(super) fn mark_cells(hits: &[MarkHit], done: i64) -> Vec<(CellKey<'_>, MarkCell)> {
    let mut cells: BTreeMap<CellKey<'_>, MarkCell> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.seq > done) {
        let c = cells
            .entry((h.minute, h.lane.as_str(), h.kind, h.source))
            .or_insert_with(|| (0, 0, h.seq, h.event_time, h.name.clone()));
        c.0 += 1;
        c.1 += i64::from(h.failed);
        if h.seq < c.2 {
            (c.2, c.3, c.4) = (h.seq, h.event_time, h.name.clone());
        }
    }
    cells.into_iter().collect()
}

impl ProjectionDelta {
    /// The words of the names this delta adds (`new_nodes` and `new_alarms`: its nodes
    /// and alarms not stored yet), each with the number of names it is in; the empty
    /// word counts the names.
    pub(super) fn name_words(
        &self,
        new_nodes: &[&String],
        new_alarms: &[&String],
    ) -> Vec<(&str, i64)> {
        let mut words: BTreeMap<&str, i64> = BTreeMap::new();
        for tokens in new_nodes
            .iter()
            .map(|n| self.names.node_tokens.get(*n))
            .chain(new_alarms.iter().map(|a| self.names.alarm_tokens.get(*a)))
        {
            *words.entry("").or_default() += 1;
            for t in tokens.into_iter().flatten() {
                *words.entry(t.as_str()).or_default() += 1;
            }
        }
        words.into_iter().collect()
    }
}

impl SqliteStore {
    /// Writes `delta` (what the events up to seq `upto` add) and moves every
    /// projection's checkpoint to `upto`, in one transaction.
    pub async fn apply_projection(&self, delta: &ProjectionDelta, upto: i64) -> Result<()> {
        let mut tx = self.write().await?;
        Self::write_projection(&mut tx, delta, upto).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`SqliteStore::apply_projection`] in the caller's transaction.
    pub(super) async fn write_projection(
        tx: &mut SqliteConnection,
        delta: &ProjectionDelta,
        upto: i64,
    ) -> Result<()> {
        // Words of the names this delta adds (nodes and alarms not stored yet).
        let new_nodes = absent(&mut *tx, "graph_nodes", "resource", delta.nodes.keys()).await?;
        let new_alarms = absent(
            &mut *tx,
            "alarm_definitions",
            "alarm",
            delta.alarm_definitions.keys(),
        )
        .await?;
        let words = delta.name_words(&new_nodes, &new_alarms);
        for chunk in words.chunks(UPSERT_ROWS) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO name_tokens (token, df) ");
            qb.push_values(chunk, |mut b, (token, n)| {
                b.push_bind(*token).push_bind(*n);
            });
            qb.push(" ON CONFLICT (token) DO UPDATE SET df = df + excluded.df");
            qb.build().execute(&mut *tx).await?;
        }
        // Multi-row upserts: a batch of events relates thousands of pairs, and one
        // statement per row cost more than the rest of the projector together.
        let nodes: Vec<(&String, &Span)> = delta.nodes.iter().collect();
        for chunk in nodes.chunks(UPSERT_ROWS) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO graph_nodes (resource, first_seq, first_time, name_tail) ",
            );
            qb.push_values(chunk, |mut b, (key, s)| {
                b.push_bind(key.as_str())
                    .push_bind(s.first_seq)
                    .push_bind(s.first_time)
                    .push_bind(delta.names.node_tails.get(*key).map(String::as_str));
            });
            qb.push(
                " ON CONFLICT (resource) DO UPDATE SET \
                 first_seq = min(first_seq, excluded.first_seq), \
                 first_time = min(first_time, excluded.first_time)",
            );
            qb.build().execute(&mut *tx).await?;
        }
        let edges: Vec<(&(String, String), &Span)> = delta.edges.iter().collect();
        for chunk in edges.chunks(UPSERT_ROWS) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO graph_edges (a, b, first_seq, last_seq, first_time, last_time) ",
            );
            qb.push_values(chunk, |mut q, ((a, b), s)| {
                q.push_bind(a.as_str())
                    .push_bind(b.as_str())
                    .push_bind(s.first_seq)
                    .push_bind(s.last_seq)
                    .push_bind(s.first_time)
                    .push_bind(s.last_time);
            });
            qb.push(
                " ON CONFLICT (a, b) DO UPDATE SET \
                 first_seq = min(first_seq, excluded.first_seq), \
                 last_seq = max(last_seq, excluded.last_seq), \
                 first_time = min(first_time, excluded.first_time), \
                 last_time = max(last_time, excluded.last_time)",
            );
            qb.build().execute(&mut *tx).await?;
        }
        write_alarms!(tx, delta);
        write_marks(&mut *tx, &delta.marks).await?;
        for name in PROJECTIONS {
            sqlx::query(SET_CHECKPOINT)
                .bind(name)
                .bind(upto)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Empties every projection (the search index too) and its checkpoint (in one
    /// transaction), so the projector rebuilds them from the first event.
    pub async fn reset_projections(&self) -> Result<()> {
        let mut tx = self.write().await?;
        // A contentless FTS5 table is emptied by its 'delete-all' command.
        sqlx::query("INSERT INTO search_index (search_index) VALUES ('delete-all')")
            .execute(&mut *tx)
            .await?;
        for table in [
            "name_tokens",
            "graph_nodes",
            "graph_edges",
            "alarm_definitions",
            "alarm_states",
            "mark_minutes",
            "search_vocab",
            "projection_checkpoints",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// What reads the projections back, the same statements on both backends (through
/// `read_pool()`).
macro_rules! projection_reads_on {
    ($store:ty) => {
        impl $store {
    /// The last seq every projection (the search index too, unless this handle keeps
    /// none) has applied (the smallest of their checkpoints; 0 before any).
    pub async fn projection_checkpoint(&self) -> Result<i64> {
        let by_name = self.checkpoints().await?;
        let search = self.keeps_search_index().then_some(&super::SEARCH);
        Ok(PROJECTIONS
            .iter()
            .chain(search)
            .map(|n| by_name.get(*n).copied().unwrap_or(0))
            .min()
            .unwrap_or(0))
    }

    /// Every projection's checkpoint, by name.
    pub(super) async fn checkpoints(&self) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        for r in sqlx::query("SELECT name, seq FROM projection_checkpoints")
            .fetch_all(self.read_pool())
            .await?
        {
            out.insert(r.try_get("name")?, r.try_get("seq")?);
        }
        Ok(out)
    }

    /// Each projection's checkpoint and its rows per table (counted, not read: what
    /// `rootline projections status` prints, at any size of store).
    pub async fn projection_sizes(&self) -> Result<(BTreeMap<String, i64>, BTreeMap<String, i64>)> {
        let checkpoints = self.checkpoints().await?;
        let mut rows = BTreeMap::new();
        for table in [
            "graph_nodes",
            "graph_edges",
            "alarm_definitions",
            "alarm_states",
            "mark_minutes",
        ] {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(self.read_pool())
                    .await?;
            rows.insert(table.to_string(), n);
        }
        Ok((checkpoints, rows))
    }

    /// Reads every projection back, with its checkpoint.
    pub async fn projection_state(&self) -> Result<ProjectionState> {
        let mut st = ProjectionState {
            checkpoints: self.checkpoints().await?,
            ..Default::default()
        };
        for r in sqlx::query("SELECT token, df FROM name_tokens")
            .fetch_all(self.read_pool())
            .await?
        {
            st.tokens.insert(r.try_get("token")?, r.try_get("df")?);
        }
        for r in sqlx::query("SELECT resource, first_seq, first_time FROM graph_nodes")
            .fetch_all(self.read_pool())
            .await?
        {
            let (seq, time): (i64, i64) = (r.try_get("first_seq")?, r.try_get("first_time")?);
            st.delta
                .nodes
                .insert(r.try_get("resource")?, Span::at(seq, time));
        }
        for r in
            sqlx::query("SELECT a, b, first_seq, last_seq, first_time, last_time FROM graph_edges")
                .fetch_all(self.read_pool())
                .await?
        {
            st.delta.edges.insert(
                (r.try_get("a")?, r.try_get("b")?),
                Span {
                    first_seq: r.try_get("first_seq")?,
                    last_seq: r.try_get("last_seq")?,
                    first_time: r.try_get("first_time")?,
                    last_time: r.try_get("last_time")?,
                },
            );
        }
        for r in
            sqlx::query("SELECT alarm, namespace, metric, event_time, seq FROM alarm_definitions")
                .fetch_all(self.read_pool())
                .await?
        {
            st.delta.alarm_definitions.insert(
                r.try_get("alarm")?,
                Latest {
                    value: AlarmMetric {
                        namespace: r.try_get("namespace")?,
                        metric: r.try_get("metric")?,
                    },
                    event_time: r.try_get("event_time")?,
                    seq: r.try_get("seq")?,
                },
            );
        }
        for r in sqlx::query("SELECT alarm, state, old_state, event_time, seq FROM alarm_states")
            .fetch_all(self.read_pool())
            .await?
        {
            st.delta.alarm_states.insert(
                r.try_get("alarm")?,
                Latest {
                    value: AlarmState {
                        state: r.try_get("state")?,
                        old_state: r.try_get("old_state")?,
                    },
                    event_time: r.try_get("event_time")?,
                    seq: r.try_get("seq")?,
                },
            );
        }
        for r in sqlx::query(
            "SELECT minute, lane, kind, source, n, failed, first_seq, first_time, first_name \
             FROM mark_minutes",
        )
        .fetch_all(self.read_pool())
        .await?
        {
            st.marks.insert(
                (
                    r.try_get("minute")?,
                    r.try_get("lane")?,
                    r.try_get("kind")?,
                    r.try_get("source")?,
                ),
                (
                    r.try_get("n")?,
                    r.try_get("failed")?,
                    r.try_get("first_seq")?,
                    r.try_get("first_time")?,
                    r.try_get("first_name")?,
                ),
            );
        }
        Ok(st)
    }
        }
    };
}

projection_reads_on!(SqliteStore);
projection_reads_on!(super::PgStore);

/// The checkpoint `name` as the transaction on `conn` sees it (0 before any).
pub(super) async fn checkpoint_in(conn: &mut SqliteConnection, name: &str) -> Result<i64> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM projection_checkpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(seq.unwrap_or(0))
}

/// Adds `hits` past the marks checkpoint to `mark_minutes` (the caller moves the
/// checkpoint). Hits at or before it were counted already: a store whose search index
/// is behind has the projector apply those events again.
async fn write_marks(tx: &mut SqliteConnection, hits: &[MarkHit]) -> Result<()> {
    let done = checkpoint_in(&mut *tx, MARKS).await?;
    let cells = mark_cells(hits, done);
    for chunk in cells.chunks(UPSERT_ROWS) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO mark_minutes (minute, lane, kind, source, n, failed, first_seq, \
             first_time, first_name) ",
        );
        qb.push_values(chunk, |mut b, ((minute, lane, kind, source), c)| {
            b.push_bind(*minute)
                .push_bind(*lane)
                .push_bind(*kind)
                .push_bind(*source)
                .push_bind(c.0)
                .push_bind(c.1)
                .push_bind(c.2)
                .push_bind(c.3)
                .push_bind(c.4.as_str());
        });
        // The first by seq keeps its place (its time and name go with it).
        qb.push(
            " ON CONFLICT (minute, lane, kind, source) DO UPDATE SET n = n + excluded.n, \
             failed = failed + excluded.failed, \
             first_time = CASE WHEN excluded.first_seq < first_seq THEN excluded.first_time \
             ELSE first_time END, \
             first_name = CASE WHEN excluded.first_seq < first_seq THEN excluded.first_name \
             ELSE first_name END, \
             first_seq = min(first_seq, excluded.first_seq)",
        );
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// The keys among `keys` that `table` has no row for (`column` is its key).
async fn absent<'k>(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
    column: &str,
    keys: impl Iterator<Item = &'k String>,
) -> Result<Vec<&'k String>> {
    let keys: Vec<&String> = keys.collect();
    let mut present: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for chunk in keys.chunks(UPSERT_ROWS) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {column} FROM {table} WHERE {column} IN ("));
        let mut sep = qb.separated(", ");
        for k in chunk {
            sep.push_bind(k.as_str());
        }
        qb.push(")");
        for r in qb.build().fetch_all(&mut *tx).await? {
            present.insert(r.try_get(0)?);
        }
    }
    Ok(keys.into_iter().filter(|k| !present.contains(*k)).collect())
}
