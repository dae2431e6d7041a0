-- The search index: one more projection (see 0005), filled by the projector after the
-- append commits, never inside it (an index in the append costs a third to half of
-- ingest: docs/scale-design.md). `EventFilter.text` (the search page, `rootline events
-- --search`) answers from it instead of scanning every row with LIKE.
--
-- The words come from src/store/search.rs, which splits name, actor, resource keys and
-- natural id into words (letters, digits and - _ . @), lower-cased; the table only
-- splits that text at its spaces (the ascii tokenizer: ASCII letters and digits, the
-- token characters below and every non-ASCII character are word characters), so the
-- index, the query and the check of events not yet indexed use one tokenizer, the Rust
-- one. Words of the natural id are stored as `#word`: they are mostly unique (request
-- ids), so they stay out of search_vocab, and a prefix query on `#word` only reads them.
--
-- Contentless (content = ''): the index keeps no copy of the text (the log has it) and
-- its rowid need not be the seq. The rowid is a key in event-time order:
-- (minute of event_time) << 33 | seq, so a search for a word in half the log reads its
-- newest matches first and stops at the page's limit instead of reading and sorting all
-- of them; the seq is the key's low 33 bits. detail = none (no positions, no columns:
-- the query is an AND of words), columnsize = 0 (no per-row sizes: nothing is ranked).
CREATE VIRTUAL TABLE search_index USING fts5(
    words,
    content = '',
    columnsize = 0,
    detail = none,
    tokenize = "ascii tokenchars '-_.@#'"
);

-- 16 MiB of pending words before FTS5 writes a segment (default 1 MiB): a projector
-- batch of 20,000 events (about 2 MB of index) becomes one segment instead of three.
-- Measured on 1M events: the same build time, search p99 3.9 ms instead of 6.0 ms.
-- (automerge 8 instead of 4 built the index in 19.6 s instead of 23.1 s, but left more
-- segments to read: p99 16.9 ms.)
INSERT INTO search_index (search_index, rank) VALUES ('hashsize', 16777216);

-- Every word of names, actors and resource keys in the index (not the natural ids'),
-- for prefix queries: the final word of a query is expanded to the indexed words that
-- start with it and looked up as an OR of whole words (a handful of index reads at the
-- newest end), where FTS5's own prefix query would merge every match of every such word
-- before returning the first. Bounded by the account's names, principals and resources,
-- not by the number of events.
CREATE TABLE search_vocab (
    term TEXT PRIMARY KEY
) WITHOUT ROWID;

-- The index's checkpoint is the row 'search' of projection_checkpoints, written in the
-- same transaction as its rows and the other projections' (src/project.rs). In a store
-- whose other projections were built before this migration it starts at 0, so the next
-- projector run indexes the log from its first event (and applies those events to the
-- other projections again, which changes nothing there).
INSERT INTO projection_checkpoints (name, seq)
SELECT 'search', 0 WHERE EXISTS (SELECT 1 FROM projection_checkpoints);
