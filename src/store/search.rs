//! The search index (migrations/0007): how events become words, how a user's text becomes
//! a safe FTS5 query, and how `EventFilter.text` is answered from the index instead of a
//! scan of the log.
//!
//! - Words: runs of letters, digits and `- _ . @` ([`words`]), lower-cased, with those
//!   four characters trimmed from their ends. `sg-0abc`, `i-0123`, `deploy-pipeline`,
//!   `ecs.amazonaws.com`, `alice@example.com`, request ids and event names stay whole
//!   words; `/` and `:` separate, so `sg/sg-0abc` is `sg` + `sg-0abc` and an ARN's account,
//!   role and session are words of their own.
//! - A query ([`SearchQuery`]): the words of the user's text, all required (AND); each is
//!   sent to FTS5 as a quoted string, never as FTS5 syntax, so quotes, `*`, `NEAR`, `OR`
//!   or parentheses in the text are only characters. The last word matches as a prefix
//!   (the user may still be typing it, or pasted part of an id) when it has at least
//!   [`MIN_PREFIX`] characters; the others are whole words (a prefix on every word would
//!   make `sg` in `sg sg-0abc` read every security group).
//! - Prefixes are expanded through `search_vocab` (the words of names, actors and
//!   resources) into an OR of at most [`MAX_EXPANSION`] whole words, which FTS5 reads
//!   lazily, newest first; natural-id words (`#word` in the index) use FTS5's own prefix
//!   query, which is cheap for them (each is in one or a few events). A prefix that begins
//!   more than [`MAX_EXPANSION`] indexed words (`sg`, `i-0`) matches names, actors and
//!   resources as a whole word only.
//! - Events appended after the index's checkpoint (the projector has not reached them:
//!   at most one batch in a running server) are scanned with LIKE, only those, and
//!   checked word by word in Rust with the same rules, so a result never depends on
//!   whether the projector has run.

use super::projections::checkpoint_in;
use super::select_columns;
use super::sqlite::{push_filters, row_to_event};
use super::{EventFilter, Order, ProjectionDelta, Result, SqliteStore, StoreError};
use crate::model::Event;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::BTreeSet;

/// The search index's checkpoint in `projection_checkpoints`.
pub const SEARCH: &str = "search";

/// Characters that belong to a word besides letters and digits.
const WORD_CHARS: [char; 4] = ['-', '_', '.', '@'];

/// The final word of a query matches as a prefix from this many characters on (shorter
/// ones would expand to most of the vocabulary).
pub const MIN_PREFIX: usize = 3;

/// Indexed words a prefix may expand to (an OR of that many words costs a few ms).
pub const MAX_EXPANSION: usize = 64;

/// Words of a query that are used; the rest are ignored.
pub const MAX_WORDS: usize = 32;

/// Bits of an index key that hold the seq (the minute of the event time is above them).
const SEQ_BITS: u32 = 33;
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;
/// The last minute a key can hold (year 4011); earlier and later times are clamped.
const MAX_MINUTE: i64 = (1 << (63 - SEQ_BITS)) - 1;

/// Rows per INSERT into the index (two values each).
const INDEX_ROWS_PER_STATEMENT: usize = 500;
/// Words per INSERT into the vocabulary.
const VOCAB_PER_STATEMENT: usize = 1_000;

/// The words of `text`, lower-cased, in order (with repeats).
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || WORD_CHARS.contains(&c)))
        .map(|w| w.trim_matches(|c| WORD_CHARS.contains(&c)))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// An event's key in the index: its minute (clamped to the key's range) above its seq,
/// so that the index's rowid order is event-time order to the minute. `None` for a seq
/// beyond 2^33.
pub fn index_key(event_time: i64, seq: i64) -> Option<i64> {
    if !(0..=SEQ_MASK).contains(&seq) {
        return None;
    }
    Some(minute_of(event_time) << SEQ_BITS | seq)
}

pub(super) fn minute_of(event_time: i64) -> i64 {
    event_time.div_euclid(60_000).clamp(0, MAX_MINUTE)
}

/// What the index holds for one event: the words of its name, actor and resource keys,
/// then those of its natural id marked with `#`; the unmarked ones are added to `vocab`.
pub(super) fn document_words(e: &Event, vocab: &mut BTreeSet<String>) -> Vec<String> {
    let mut doc = Vec::with_capacity(8);
    let plain = std::iter::once(e.name.as_str())
        .chain(e.actor.as_deref())
        .chain(e.resources.iter().map(String::as_str));
    for field in plain {
        for w in words(field) {
            vocab.insert(w.clone());
            doc.push(w);
        }
    }
    doc.extend(words(&e.natural_id).map(|w| format!("#{w}")));
    doc
}

/// [`document_words`] as the FTS5 table's text: each word followed by a space.
fn document(e: &Event, vocab: &mut BTreeSet<String>) -> String {
    let mut doc = String::with_capacity(64 + e.natural_id.len());
    for w in document_words(e, vocab) {
        doc.push_str(&w);
        doc.push(' ');
    }
    doc
}

/// What [`SqliteStore::search_index_size`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchIndexSize {
    /// The FTS5 table's shadow tables.
    pub index_bytes: i64,
    /// `search_vocab`.
    pub vocab_bytes: i64,
    pub vocab_words: i64,
}

/// A user's search text as words (at most [`MAX_WORDS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<String>,
}

/// How the final word of a query matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastWord {
    /// As a whole word (it is shorter than [`MIN_PREFIX`]).
    Whole,
    /// As a prefix: of these indexed words of names, actors and resources, and of
    /// natural-id words.
    Prefix(Vec<String>),
    /// As a prefix of natural-id words, as a whole word otherwise (it begins more than
    /// [`MAX_EXPANSION`] indexed words).
    WholeExceptIds,
}

impl SearchQuery {
    /// The words of `text`; `None` when it has none (empty, or only punctuation).
    pub fn parse(text: &str) -> Option<SearchQuery> {
        let words: Vec<String> = words(text).take(MAX_WORDS).collect();
        (!words.is_empty()).then_some(SearchQuery { words })
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    fn last(&self) -> &str {
        self.words.last().map(String::as_str).unwrap_or("")
    }

    /// The binds of [`VOCAB_PREFIX`] for the final word: the range of words it begins
    /// and one more than [`MAX_EXPANSION`]; `None` when it is too short to be a prefix.
    pub(super) fn vocab_range(&self) -> Option<(String, String, i64)> {
        let last = self.last();
        self.prefix_allowed().then(|| {
            (
                last.to_string(),
                format!("{last}\u{10FFFF}"),
                MAX_EXPANSION as i64 + 1,
            )
        })
    }

    /// Whether the final word is long enough to match as a prefix.
    pub fn prefix_allowed(&self) -> bool {
        self.last().chars().count() >= MIN_PREFIX
    }

    /// The FTS5 query: every word quoted as a string (`"` doubled, though words never
    /// hold one), as itself or as a natural-id word, all required.
    pub fn fts_query(&self, last: &LastWord) -> String {
        self.query_in(last, &FTS5)
    }

    /// The same query as a PostgreSQL `tsquery` (for `tsquery` input: lexemes quoted,
    /// never parsed as operators), over the lexemes [`document_words`] indexes.
    pub fn tsquery(&self, last: &LastWord) -> String {
        self.query_in(last, &TSQUERY)
    }

    fn query_in(&self, last: &LastWord, syntax: &QuerySyntax) -> String {
        let n = self.words.len();
        let q = syntax.quote;
        let either = |alts: Vec<String>| format!("({})", alts.join(syntax.or));
        let mut parts = Vec::with_capacity(n);
        for (i, w) in self.words.iter().enumerate() {
            let id = q(&format!("#{w}"));
            let prefix = format!("{id}{}", syntax.prefix);
            let part = match last {
                _ if i + 1 < n => either(vec![q(w), id]),
                LastWord::Whole => either(vec![q(w), id]),
                LastWord::WholeExceptIds => either(vec![q(w), prefix]),
                LastWord::Prefix(terms) => {
                    either(terms.iter().map(|t| q(t)).chain([prefix]).collect())
                }
            };
            parts.push(part);
        }
        parts.join(syntax.and)
    }

    /// Whether `e` matches, by the same rules as the index (for events not indexed yet).
    pub fn matches(&self, e: &Event, last: &LastWord) -> bool {
        let mut plain: Vec<String> = words(&e.name).collect();
        if let Some(a) = &e.actor {
            plain.extend(words(a));
        }
        for r in &e.resources {
            plain.extend(words(r));
        }
        let ids: Vec<String> = words(&e.natural_id).collect();
        let n = self.words.len();
        self.words.iter().enumerate().all(|(i, w)| {
            let whole = |t: &String| t == w;
            let prefix = |t: &String| t.starts_with(w.as_str());
            if i + 1 < n {
                return plain.iter().chain(&ids).any(whole);
            }
            match last {
                LastWord::Whole => plain.iter().chain(&ids).any(whole),
                LastWord::WholeExceptIds => plain.iter().any(whole) || ids.iter().any(prefix),
                LastWord::Prefix(_) => plain.iter().chain(&ids).any(prefix),
            }
        })
    }

    /// `LIKE` patterns that every matching event satisfies in at least one of its
    /// name, actor, natural id or resources (the ASCII words; LIKE folds ASCII case
    /// only), to narrow the scan of events not indexed yet.
    fn like_patterns(&self) -> Vec<String> {
        self.words
            .iter()
            .filter(|w| w.is_ascii())
            .map(|w| {
                let escaped = w
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                format!("%{escaped}%")
            })
            .collect()
    }
}

/// The indexed words a final prefix may expand to, in order (both backends): bound to
/// [`SearchQuery::vocab_range`].
pub(super) const VOCAB_PREFIX: &str =
    "SELECT term FROM search_vocab WHERE term >= $1 AND term < $2 ORDER BY term LIMIT $3";

/// How the final word of the [`SearchQuery`] `$q` matches, from the vocabulary, read on
/// `$conn` (a `&mut` connection of either backend): the same statement on both.
macro_rules! last_word {
    ($conn:expr, $q:expr) => {
        match $q.vocab_range() {
            None => LastWord::Whole,
            Some((lo, hi, n)) => LastWord::from_terms(
                sqlx::query_scalar::<_, String>($crate::store::search::VOCAB_PREFIX)
                    .bind(lo)
                    .bind(hi)
                    .bind(n)
                    .fetch_all(&mut *$conn)
                    .await?,
            ),
        }
    };
}
pub(super) use last_word;

impl LastWord {
    /// How the final word matches, from what [`VOCAB_PREFIX`] found: a prefix of those
    /// words, or, when it begins more than [`MAX_EXPANSION`] of them, whole except in
    /// natural ids.
    pub(super) fn from_terms(terms: Vec<String>) -> LastWord {
        if terms.len() > MAX_EXPANSION {
            LastWord::WholeExceptIds
        } else {
            LastWord::Prefix(terms)
        }
    }
}

/// How a query language writes a quoted word, alternatives, conjunction and a prefix.
struct QuerySyntax {
    quote: fn(&str) -> String,
    or: &'static str,
    and: &'static str,
    prefix: &'static str,
}

const FTS5: QuerySyntax = QuerySyntax {
    quote,
    or: " OR ",
    and: " AND ",
    prefix: "*",
};

const TSQUERY: QuerySyntax = QuerySyntax {
    quote: lexeme,
    or: " | ",
    and: " & ",
    prefix: ":*",
};

/// An FTS5 string: the text between double quotes, quotes doubled.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A lexeme as `tsvector` and `tsquery` input read it: between single quotes, quotes
/// doubled and backslashes escaped.
pub(super) fn lexeme(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Adds `events` (read up to seq `upto`) to the search index and moves its checkpoint to
/// `upto`. Events at or before the index's checkpoint are skipped: a store whose other
/// projections were current before the index existed has the projector apply their
/// events again (which changes nothing there) and indexes them once.
async fn write_search(tx: &mut SqliteConnection, events: &[Event], upto: i64) -> Result<()> {
    let done = checkpoint_in(tx, SEARCH).await?;
    if upto <= done {
        return Ok(());
    }
    let mut vocab = BTreeSet::new();
    let mut rows = Vec::with_capacity(events.len());
    for e in events.iter().filter(|e| e.seq > done && e.seq <= upto) {
        let key = index_key(e.event_time, e.seq).ok_or_else(|| {
            StoreError::Limit(format!("seq {} is beyond the search index's keys", e.seq))
        })?;
        rows.push((key, document(e, &mut vocab)));
    }
    // In key order: FTS5 appends rows given in increasing rowid order to its pending
    // segment, and writes the segment out whenever a rowid goes back.
    rows.sort_unstable_by_key(|r| r.0);
    for chunk in rows.chunks(INDEX_ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO search_index (rowid, words) ");
        qb.push_values(chunk, |mut b, (key, doc)| {
            b.push_bind(*key).push_bind(doc.as_str());
        });
        qb.build().execute(&mut *tx).await?;
    }
    let vocab: Vec<String> = vocab.into_iter().collect();
    for chunk in vocab.chunks(VOCAB_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT OR IGNORE INTO search_vocab (term) ");
        qb.push_values(chunk, |mut b, term| {
            b.push_bind(term.as_str());
        });
        qb.build().execute(&mut *tx).await?;
    }
    sqlx::query(super::projections::SET_CHECKPOINT)
        .bind(SEARCH)
        .bind(upto)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Pushes, for each of `q`'s [`SearchQuery::like_patterns`], ` AND (` its match by
/// `like` (SQLite's `LIKE`, PostgreSQL's `ILIKE`: both fold ASCII case) in the name,
/// actor, natural id or resources `)`: what narrows the scan of events not indexed yet.
pub(super) fn push_like_words<DB: sqlx::Database>(
    qb: &mut QueryBuilder<DB>,
    q: &SearchQuery,
    like: &str,
) where
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    for pattern in q.like_patterns() {
        qb.push(" AND (");
        for (i, col) in ["name", "actor", "natural_id", "resources"]
            .iter()
            .enumerate()
        {
            if i > 0 {
                qb.push(" OR ");
            }
            qb.push(format_args!("{col} {like} "))
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\'");
        }
        qb.push(")");
    }
}

/// Sorts `events` as `f` orders them.
pub(super) fn sort_as(events: &mut [Event], f: &EventFilter) {
    let desc = f.order == Order::Desc;
    if f.by_time {
        events.sort_unstable_by(|a, b| {
            let o = (a.event_time, a.seq).cmp(&(b.event_time, b.seq));
            if desc {
                o.reverse()
            } else {
                o
            }
        });
    } else if desc {
        events.sort_unstable_by_key(|e| std::cmp::Reverse(e.seq));
    } else {
        events.sort_unstable_by_key(|e| e.seq);
    }
}

impl SqliteStore {
    /// The last seq the search index covers (0 before any).
    pub async fn search_checkpoint(&self) -> Result<i64> {
        let mut conn = self.reader.acquire().await?;
        checkpoint_in(&mut conn, SEARCH).await
    }

    /// Writes what `events` (the projector's batch, read up to seq `upto`) add to the
    /// other projections (`delta`) and to the search index, and moves every checkpoint
    /// to `upto`, in one transaction.
    pub async fn apply_projection_and_search(
        &self,
        delta: &ProjectionDelta,
        events: &[Event],
        upto: i64,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        Self::write_projection(&mut tx, delta, upto).await?;
        write_search(&mut tx, events, upto).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds `events` to the search index alone and moves its checkpoint to `upto`, in
    /// one transaction.
    pub async fn apply_search(&self, events: &[Event], upto: i64) -> Result<()> {
        let mut tx = self.write().await?;
        write_search(&mut tx, events, upto).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Empties the search index alone (its rows, vocabulary and checkpoint), so the
    /// projector indexes the log again from its first event (the other projections, if
    /// current, are applied again too, which changes nothing there).
    pub async fn reset_search(&self) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO search_index (search_index) VALUES ('delete-all')")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM search_vocab")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = ?")
            .bind(SEARCH)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Bytes the search index and its vocabulary take in the database file, and the
    /// vocabulary's number of words.
    pub async fn search_index_size(&self) -> Result<SearchIndexSize> {
        let mut bytes = [0i64; 2];
        for (i, table) in [
            "search_index_data",
            "search_index_idx",
            "search_index_config",
            "search_vocab",
        ]
        .into_iter()
        .enumerate()
        {
            // One b-tree each (dbstat reads only the named one).
            let b: i64 =
                sqlx::query_scalar("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?")
                    .bind(table)
                    .fetch_one(&self.reader)
                    .await?;
            bytes[usize::from(i == 3)] += b;
        }
        let [index, vocab] = bytes;
        let words: i64 = sqlx::query_scalar("SELECT count(*) FROM search_vocab")
            .fetch_one(&self.reader)
            .await?;
        Ok(SearchIndexSize {
            index_bytes: index,
            vocab_bytes: vocab,
            vocab_words: words,
        })
    }

    /// `EventFilter.text`: the events matching the words of `text` and every other
    /// condition of `f`, in `f`'s order, at most `f.limit`. One read transaction, so the
    /// index, its checkpoint and the events after it are one snapshot.
    pub(super) async fn search(&self, f: &EventFilter, text: &str) -> Result<Vec<Event>> {
        let Some(q) = SearchQuery::parse(text) else {
            return Ok(Vec::new());
        };
        let mut tx = self.reader.begin().await?;
        let done = checkpoint_in(&mut tx, SEARCH).await?;
        let last = last_word!(tx, q);
        let limit = (f.limit > 0).then_some(f.limit);
        let mut found = Vec::new();
        if done > 0 {
            let fts = q.fts_query(&last);
            if f.by_time {
                // The index's order is event time to the minute: the first `limit` rows
                // in that order, and every row of the minute of the last of them, hold
                // the first `limit` events in exact (event time, seq) order.
                found = indexed(&mut tx, f, &fts, None, limit, true).await?;
                if let (Some(n), Some(boundary)) = (limit, found.last()) {
                    if found.len() as i64 == n {
                        let minute = minute_of(boundary.event_time);
                        let range = (minute << SEQ_BITS, (minute + 1) << SEQ_BITS);
                        let more = indexed(&mut tx, f, &fts, Some(range), None, false).await?;
                        found.extend(more);
                    }
                }
            } else {
                found = indexed(&mut tx, f, &fts, None, limit, false).await?;
            }
        }
        found.extend(unindexed(&mut tx, f, &q, &last, done).await?);
        tx.commit().await?;
        sort_as(&mut found, f);
        found.dedup_by_key(|e| e.seq);
        if let Some(n) = limit {
            found.truncate(n as usize);
        }
        Ok(found)
    }
}

/// Events of the index matching `fts` and `f`'s other conditions: in key order (event
/// time to the minute) when `key_order`, else in `f`'s seq order; within `keys` (a
/// half-open key range) if given; at most `limit`.
async fn indexed(
    conn: &mut SqliteConnection,
    f: &EventFilter,
    fts: &str,
    keys: Option<(i64, i64)>,
    limit: Option<i64>,
    key_order: bool,
) -> Result<Vec<Event>> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT ");
    qb.push(select_columns(f));
    // The index drives (CROSS JOIN keeps it the outer loop), each match looked up in
    // events by the seq in its key.
    qb.push(format_args!(
        " FROM search_index CROSS JOIN events ON events.seq = (search_index.rowid & {SEQ_MASK}) \
         WHERE search_index MATCH "
    ));
    qb.push_bind(fts.to_string());
    // The time range narrows the key range too (to whole minutes; the exact bounds are
    // among the filters).
    if let Some(from) = f.from {
        qb.push(" AND search_index.rowid >= ")
            .push_bind(minute_of(from) << SEQ_BITS);
    }
    if let Some(to) = f.to {
        qb.push(" AND search_index.rowid < ")
            .push_bind((minute_of(to.saturating_sub(1)) + 1) << SEQ_BITS);
    }
    if let Some((lo, hi)) = keys {
        qb.push(" AND search_index.rowid >= ").push_bind(lo);
        qb.push(" AND search_index.rowid < ").push_bind(hi);
    }
    push_filters(&mut qb, f);
    let dir = match f.order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    };
    if key_order {
        qb.push(format_args!(" ORDER BY search_index.rowid {dir}"));
    } else if limit.is_some() {
        qb.push(format_args!(" ORDER BY events.seq {dir}"));
    }
    if let Some(n) = limit {
        qb.push(" LIMIT ").push_bind(n);
    }
    let rows = qb.build().fetch_all(&mut *conn).await?;
    rows.iter().map(row_to_event).collect()
}

/// Events after the index's checkpoint `done` matching `q` and `f`'s other conditions:
/// narrowed with LIKE in SQL, then checked word by word.
async fn unindexed(
    conn: &mut SqliteConnection,
    f: &EventFilter,
    q: &SearchQuery,
    last: &LastWord,
    done: i64,
) -> Result<Vec<Event>> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT ");
    qb.push(select_columns(f));
    qb.push(" FROM events WHERE seq > ").push_bind(done);
    push_filters(&mut qb, f);
    push_like_words(&mut qb, q, "LIKE");
    let rows = qb.build().fetch_all(&mut *conn).await?;
    let mut out = Vec::new();
    for row in &rows {
        let e = row_to_event(row)?;
        if q.matches(&e, last) {
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, Source};

    fn event(name: &str, actor: Option<&str>, id: &str, resources: &[&str]) -> Event {
        Event {
            seq: 7,
            source: Source::CloudTrail,
            natural_id: id.into(),
            event_time: 1_760_000_000_000,
            received_at: None,
            kind: Kind::Change,
            name: name.into(),
            actor: actor.map(str::to_string),
            read_only: false,
            error_code: None,
            resources: resources.iter().map(|r| r.to_string()).collect(),
            payload: String::new(),
        }
    }

    fn ws(text: &str) -> Vec<String> {
        words(text).collect()
    }

    #[test]
    fn ids_names_and_hosts_are_whole_words_and_slashes_and_colons_separate() {
        assert_eq!(ws("sg/sg-0abc"), ["sg", "sg-0abc"]);
        assert_eq!(
            ws("RevokeSecurityGroupIngress"),
            ["revokesecuritygroupingress"]
        );
        assert_eq!(
            ws("arn:aws:sts::123456789012:assumed-role/deploy-pipeline/alice"),
            [
                "arn",
                "aws",
                "sts",
                "123456789012",
                "assumed-role",
                "deploy-pipeline",
                "alice"
            ]
        );
        assert_eq!(ws("ecs.amazonaws.com"), ["ecs.amazonaws.com"]);
        assert_eq!(
            ws("loggroup//aws/lambda/web_fn"),
            ["loggroup", "aws", "lambda", "web_fn"]
        );
        assert_eq!(
            ws("hypotheses-ranked/inc-1/"),
            ["hypotheses-ranked", "inc-1"]
        );
        // Word characters are trimmed from the ends; a run of only them is no word.
        assert_eq!(ws("-sg-1. ... --"), ["sg-1"]);
        assert_eq!(ws("Ünïcödé ÉTÉ"), ["ünïcödé", "été"]);
        assert!(ws("\"*() :/%").is_empty());
    }

    #[test]
    fn empty_and_punctuation_only_texts_are_no_query() {
        for t in ["", "   ", "\"", "*", "()", "%_\\", "-- .. @@", ":/"] {
            assert_eq!(SearchQuery::parse(t), None, "{t:?}");
        }
        let long = "w ".repeat(100);
        assert_eq!(
            SearchQuery::parse(&long).map(|q| q.words.len()),
            Some(MAX_WORDS)
        );
    }

    #[test]
    fn user_text_is_only_ever_quoted_strings() {
        let q = SearchQuery::parse("alice \"x\" NEAR(a b) OR sg-0a*").unwrap();
        assert_eq!(q.words(), ["alice", "x", "near", "a", "b", "or", "sg-0a"]);
        assert_eq!(
            q.fts_query(&LastWord::Prefix(vec!["sg-0abc".into()])),
            "(\"alice\" OR \"#alice\") AND (\"x\" OR \"#x\") AND (\"near\" OR \"#near\") \
             AND (\"a\" OR \"#a\") AND (\"b\" OR \"#b\") AND (\"or\" OR \"#or\") \
             AND (\"sg-0abc\" OR \"#sg-0a\"*)"
        );
        let q = SearchQuery::parse("ab").unwrap();
        assert!(!q.prefix_allowed());
        assert_eq!(q.fts_query(&LastWord::Whole), "(\"ab\" OR \"#ab\")");
        let q = SearchQuery::parse("i-0").unwrap();
        assert_eq!(
            q.fts_query(&LastWord::WholeExceptIds),
            "(\"i-0\" OR \"#i-0\"*)"
        );
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn events_match_by_whole_words_and_a_final_prefix() {
        let e = event(
            "RevokeSecurityGroupIngress",
            Some("arn:aws:iam::123456789012:user/alice"),
            "e483c201-1aa7-40d5-a5a7-2c401f115a60",
            &["sg/sg-d4a77982ca296b08"],
        );
        let m = |text: &str, last: LastWord| SearchQuery::parse(text).unwrap().matches(&e, &last);
        let prefix = || LastWord::Prefix(Vec::new());
        assert!(m("RevokeSecurityGroupIngress", prefix()));
        assert!(m("revoke", prefix()));
        assert!(m("sg/sg-d4a7", prefix()));
        assert!(m("alice sg-d4a77982ca296b08", prefix()));
        assert!(m("e483c201", prefix()));
        assert!(m("e483c201-1aa7-40d5-a5a7-2c401f115a60", prefix()));
        // Only the final word is a prefix; substrings inside a word never match.
        assert!(!m("revoke alice", prefix()));
        assert!(!m("ingress", prefix()));
        assert!(!m("bob", prefix()));
        // Too short for a prefix, or a prefix of too many words: whole words, except
        // natural-id words, which are always prefixes past MIN_PREFIX.
        assert!(!m("al", LastWord::Whole));
        assert!(!m("sg-d4a7", LastWord::WholeExceptIds));
        assert!(m("sg-d4a77982ca296b08", LastWord::WholeExceptIds));
        assert!(m("e483c2", LastWord::WholeExceptIds));
    }

    #[test]
    fn keys_order_by_minute_then_seq_and_give_back_the_seq() {
        let minute = 1_760_000_040_000; // a whole minute
        let a = index_key(minute, 9).unwrap();
        let b = index_key(minute + 59_999, 3).unwrap();
        let c = index_key(minute + 60_000, 1).unwrap();
        assert!(b < a, "within a minute, by seq");
        assert!(a < c && b < c);
        assert_eq!(c & SEQ_MASK, 1);
        assert_eq!(
            index_key(-5, 4),
            Some(4),
            "times before 1970 clamp to minute 0"
        );
        assert!(index_key(i64::MAX, SEQ_MASK).unwrap() > 0);
        assert_eq!(index_key(0, SEQ_MASK + 1), None);
        assert_eq!(index_key(0, -1), None);
    }

    #[test]
    fn the_document_marks_natural_id_words_and_keeps_them_out_of_the_vocabulary() {
        let e = event(
            "AssumeRole",
            Some("ecs.amazonaws.com"),
            "req-1",
            &["role/ops", "sg/sg-1"],
        );
        let mut vocab = BTreeSet::new();
        assert_eq!(
            document(&e, &mut vocab),
            "assumerole ecs.amazonaws.com role ops sg sg-1 #req-1 "
        );
        let want: BTreeSet<String> = [
            "assumerole",
            "ecs.amazonaws.com",
            "role",
            "ops",
            "sg",
            "sg-1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(vocab, want);
    }
}
