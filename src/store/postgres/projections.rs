//! The projections and the search index on PostgreSQL (migrations/postgres/0003): what
//! `store::projections` and `store::search` write on SQLite, from the same deltas, as
//! array upserts (`unnest`), one transaction per batch.

use super::PgStore;
use crate::model::Event;
use crate::store::projections::{mark_cells, write_alarms, SET_CHECKPOINT};
use crate::store::search::{document_words, SEARCH};
use crate::store::{ProjectionDelta, Result, SearchIndexSize, PROJECTIONS};
use sqlx::PgConnection;
use std::collections::BTreeSet;

/// Tables emptied by a rebuild; the search index's are emptied with them.
const PROJECTION_TABLES: [&str; 7] = [
    "name_tokens",
    "graph_nodes",
    "graph_edges",
    "alarm_definitions",
    "alarm_states",
    "mark_minutes",
    "projection_checkpoints",
];

/// The checkpoint `name` as the transaction on `conn` sees it (0 before any).
pub(super) async fn checkpoint_in(conn: &mut PgConnection, name: &str) -> Result<i64> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(seq.unwrap_or(0))
}

async fn set_checkpoint(conn: &mut PgConnection, name: &str, upto: i64) -> Result<()> {
    sqlx::query(SET_CHECKPOINT)
        .bind(name)
        .bind(upto)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The keys among `keys` that `table` has no row for (`column` is its key).
async fn absent<'k>(
    conn: &mut PgConnection,
    table: &str,
    column: &str,
    keys: impl Iterator<Item = &'k String>,
) -> Result<Vec<&'k String>> {
    let keys: Vec<&String> = keys.collect();
    let wanted: Vec<String> = keys.iter().map(|k| (*k).clone()).collect();
    let present: BTreeSet<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT {column}::text FROM {table} WHERE {column} = ANY($1)"
    )))
    .bind(wanted)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    Ok(keys.into_iter().filter(|k| !present.contains(*k)).collect())
}

/// Writes `delta` and moves every projection's checkpoint to `upto`.
async fn write_projection(
    conn: &mut PgConnection,
    delta: &ProjectionDelta,
    upto: i64,
) -> Result<()> {
    let new_nodes = absent(&mut *conn, "graph_nodes", "resource", delta.nodes.keys()).await?;
    let new_alarms = absent(
        &mut *conn,
        "alarm_definitions",
        "alarm",
        delta.alarm_definitions.keys(),
    )
    .await?;
    let (tokens, dfs): (Vec<&str>, Vec<i64>) = delta
        .name_words(&new_nodes, &new_alarms)
        .into_iter()
        .unzip();
    sqlx::query(
        "INSERT INTO name_tokens (token, df) SELECT * FROM unnest($1::text[], $2::bigint[]) \
         ON CONFLICT (token) DO UPDATE SET df = name_tokens.df + excluded.df",
    )
    .bind(tokens)
    .bind(dfs)
    .execute(&mut *conn)
    .await?;
    let mut n = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (key, s) in &delta.nodes {
        n.0.push(key.as_str());
        n.1.push(s.first_seq);
        n.2.push(s.first_time);
        n.3.push(delta.names.node_tails.get(key).map(String::as_str));
    }
    sqlx::query(
        "INSERT INTO graph_nodes (resource, first_seq, first_time, name_tail) \
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) \
         ON CONFLICT (resource) DO UPDATE SET \
         first_seq = LEAST(graph_nodes.first_seq, excluded.first_seq), \
         first_time = LEAST(graph_nodes.first_time, excluded.first_time)",
    )
    .bind(n.0)
    .bind(n.1)
    .bind(n.2)
    .bind(n.3)
    .execute(&mut *conn)
    .await?;
    let mut e = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for ((a, b), s) in &delta.edges {
        e.0.push(a.as_str());
        e.1.push(b.as_str());
        e.2.push(s.first_seq);
        e.3.push(s.last_seq);
        e.4.push(s.first_time);
        e.5.push(s.last_time);
    }
    sqlx::query(
        "INSERT INTO graph_edges (a, b, first_seq, last_seq, first_time, last_time) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], \
         $5::bigint[], $6::bigint[]) \
         ON CONFLICT (a, b) DO UPDATE SET \
         first_seq = LEAST(graph_edges.first_seq, excluded.first_seq), \
         last_seq = GREATEST(graph_edges.last_seq, excluded.last_seq), \
         first_time = LEAST(graph_edges.first_time, excluded.first_time), \
         last_time = GREATEST(graph_edges.last_time, excluded.last_time)",
    )
    .bind(e.0)
    .bind(e.1)
    .bind(e.2)
    .bind(e.3)
    .bind(e.4)
    .bind(e.5)
    .execute(&mut *conn)
    .await?;
    write_alarms!(conn, delta);
    let done = checkpoint_in(&mut *conn, crate::store::MARKS).await?;
    let mut m = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for ((minute, lane, kind, source), c) in mark_cells(&delta.marks, done) {
        m.0.push(minute);
        m.1.push(lane.to_string());
        m.2.push(kind.to_string());
        m.3.push(source.to_string());
        m.4.push(c.0);
        m.5.push(c.1);
        m.6.push(c.2);
        m.7.push(c.3);
        m.8.push(c.4);
    }
    // The first by seq keeps its place (its time and name go with it).
    sqlx::query(
        "INSERT INTO mark_minutes (minute, lane, kind, source, n, failed, first_seq, \
         first_time, first_name) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], \
         $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[]) \
         ON CONFLICT (minute, lane, kind, source) DO UPDATE SET \
         n = mark_minutes.n + excluded.n, failed = mark_minutes.failed + excluded.failed, \
         first_time = CASE WHEN excluded.first_seq < mark_minutes.first_seq \
         THEN excluded.first_time ELSE mark_minutes.first_time END, \
         first_name = CASE WHEN excluded.first_seq < mark_minutes.first_seq \
         THEN excluded.first_name ELSE mark_minutes.first_name END, \
         first_seq = LEAST(mark_minutes.first_seq, excluded.first_seq)",
    )
    .bind(m.0)
    .bind(m.1)
    .bind(m.2)
    .bind(m.3)
    .bind(m.4)
    .bind(m.5)
    .bind(m.6)
    .bind(m.7)
    .bind(m.8)
    .execute(&mut *conn)
    .await?;
    for name in PROJECTIONS {
        set_checkpoint(&mut *conn, name, upto).await?;
    }
    Ok(())
}

/// Adds `events` past the index's checkpoint (up to `upto`) to the search index and
/// moves its checkpoint to `upto`.
async fn write_search(conn: &mut PgConnection, events: &[Event], upto: i64) -> Result<()> {
    let done = checkpoint_in(&mut *conn, SEARCH).await?;
    if upto <= done {
        return Ok(());
    }
    let mut vocab = BTreeSet::new();
    let (mut seqs, mut times, mut docs) = (Vec::new(), Vec::new(), Vec::new());
    for e in events.iter().filter(|e| e.seq > done && e.seq <= upto) {
        seqs.push(e.seq);
        times.push(e.event_time);
        // A tsvector as text: its lexemes quoted, so none is parsed as syntax.
        docs.push(super::search::tsvector_text(&document_words(e, &mut vocab)));
    }
    sqlx::query(
        "INSERT INTO search_index (seq, event_time, words) \
         SELECT s, t, w::tsvector FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(s, t, w) \
         ON CONFLICT (seq) DO NOTHING",
    )
    .bind(seqs)
    .bind(times)
    .bind(docs)
    .execute(&mut *conn)
    .await?;
    let vocab: Vec<String> = vocab.into_iter().collect();
    sqlx::query(
        "INSERT INTO search_vocab (term) SELECT * FROM unnest($1::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(vocab)
    .execute(&mut *conn)
    .await?;
    set_checkpoint(&mut *conn, SEARCH, upto).await
}

impl PgStore {
    /// Writes `delta` and moves every projection's checkpoint to `upto`, in one
    /// transaction.
    pub async fn apply_projection(&self, delta: &ProjectionDelta, upto: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        write_projection(&mut tx, delta, upto).await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`PgStore::apply_projection`] and the search index's words of `events`, in one
    /// transaction.
    pub async fn apply_projection_and_search(
        &self,
        delta: &ProjectionDelta,
        events: &[Event],
        upto: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        write_projection(&mut tx, delta, upto).await?;
        write_search(&mut tx, events, upto).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds `events` to the search index alone and moves its checkpoint to `upto`.
    pub async fn apply_search(&self, events: &[Event], upto: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        write_search(&mut tx, events, upto).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Empties every projection, the search index and their checkpoints.
    pub async fn reset_projections(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for table in PROJECTION_TABLES
            .iter()
            .chain(&["search_index", "search_vocab"])
        {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Empties the search index alone (rows, vocabulary, checkpoint).
    pub async fn reset_search(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM search_index")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM search_vocab")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(SEARCH)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The search index's checkpoint (0 before any).
    pub async fn search_checkpoint(&self) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        checkpoint_in(&mut conn, SEARCH).await
    }

    /// Bytes of the search index (table and indexes) and of its vocabulary, and the
    /// vocabulary's number of words.
    pub async fn search_index_size(&self) -> Result<SearchIndexSize> {
        let (index_bytes, vocab_bytes, vocab_words): (i64, i64, i64) = sqlx::query_as(
            "SELECT pg_total_relation_size('search_index'), \
             pg_total_relation_size('search_vocab'), (SELECT count(*) FROM search_vocab)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(SearchIndexSize {
            index_bytes,
            vocab_bytes,
            vocab_words,
        })
    }
}
