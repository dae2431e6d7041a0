//! `EventFilter.text` on PostgreSQL: the SQLite store's rules (`store::search`) over a
//! `tsvector` of the same words, with the same vocabulary for prefixes and the same
//! word-by-word check of events the index has not reached.

use super::projections::checkpoint_in;
use super::{push_filters, row_to_event, PgStore};
use crate::model::Event;
use crate::store::search::{
    last_word, lexeme, push_like_words, sort_as, LastWord, SearchQuery, SEARCH,
};
use crate::store::{select_columns, EventFilter, Result};
use sqlx::{Postgres, QueryBuilder};

/// Longest lexeme a `tsvector` holds, in bytes; longer words are left out of the index.
const MAX_LEXEME: usize = 2046;

/// The words of a document as `tsvector` input.
pub(super) fn tsvector_text(words: &[String]) -> String {
    let mut out = String::new();
    for w in words.iter().filter(|w| w.len() <= MAX_LEXEME) {
        out.push_str(&lexeme(w));
        out.push(' ');
    }
    out
}

impl PgStore {
    /// `EventFilter.text`: the events matching the words of `text` and every other
    /// condition of `f`, in `f`'s order, at most `f.limit`; one snapshot (repeatable
    /// read) for the index, its checkpoint and the events after it.
    pub(super) async fn search(&self, f: &EventFilter, text: &str) -> Result<Vec<Event>> {
        let Some(q) = SearchQuery::parse(text) else {
            return Ok(Vec::new());
        };
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let done = checkpoint_in(&mut tx, SEARCH).await?;
        let last = last_word!(tx, q);
        let mut found = Vec::new();
        if done > 0 {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
                "SELECT {} FROM events WHERE seq IN (SELECT seq FROM search_index \
                 WHERE words @@ ",
                select_columns(f)
            ));
            qb.push_bind(q.tsquery(&last)).push("::tsquery");
            if let Some(from) = f.from {
                qb.push(" AND event_time >= ").push_bind(from);
            }
            if let Some(to) = f.to {
                qb.push(" AND event_time < ").push_bind(to);
            }
            qb.push(")");
            push_filters(&mut qb, f);
            qb.push(f.order_by());
            if f.limit > 0 {
                qb.push(" LIMIT ").push_bind(f.limit);
            }
            for row in qb.build().fetch_all(&mut *tx).await? {
                found.push(row_to_event(&row)?);
            }
        }
        // Appended after the index's checkpoint: narrowed with ILIKE, checked word by word.
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {} FROM events WHERE seq > ",
            select_columns(f)
        ));
        qb.push_bind(done);
        push_filters(&mut qb, f);
        push_like_words(&mut qb, &q, "ILIKE");
        for row in qb.build().fetch_all(&mut *tx).await? {
            let e = row_to_event(&row)?;
            if q.matches(&e, &last) {
                found.push(e);
            }
        }
        tx.commit().await?;
        sort_as(&mut found, f);
        found.dedup_by_key(|e| e.seq);
        if f.limit > 0 {
            found.truncate(f.limit as usize);
        }
        Ok(found)
    }
}
