-- Everything besides the log, as on SQLite (migrations/0005 to 0011): the projections
-- the engine reads instead of the log, the search index, the pages' accounts, and the
-- indexes of the engine's reads. Projections are derived state: the projector writes
-- them in place and can rebuild them from the log.

CREATE TABLE projection_checkpoints (
    name TEXT   PRIMARY KEY,
    seq  BIGINT NOT NULL
);

CREATE TABLE graph_nodes (
    resource   TEXT   COLLATE "C" PRIMARY KEY,
    first_seq  BIGINT NOT NULL,
    first_time BIGINT NOT NULL,
    name_tail  TEXT   COLLATE "C"
);
CREATE INDEX graph_nodes_name_tail ON graph_nodes (name_tail) WHERE name_tail IS NOT NULL;

CREATE TABLE graph_edges (
    a          TEXT   COLLATE "C" NOT NULL,
    b          TEXT   COLLATE "C" NOT NULL,
    first_seq  BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL,
    first_time BIGINT NOT NULL,
    last_time  BIGINT NOT NULL,
    PRIMARY KEY (a, b)
);
CREATE INDEX graph_edges_b ON graph_edges (b, a);

CREATE TABLE name_tokens (
    token TEXT   COLLATE "C" PRIMARY KEY,
    df    BIGINT NOT NULL
);

CREATE TABLE alarm_definitions (
    alarm      TEXT   COLLATE "C" PRIMARY KEY,
    namespace  TEXT   NOT NULL,
    metric     TEXT   NOT NULL,
    event_time BIGINT NOT NULL,
    seq        BIGINT NOT NULL
);

CREATE TABLE alarm_states (
    alarm      TEXT   COLLATE "C" PRIMARY KEY,
    state      TEXT   NOT NULL,
    old_state  TEXT   NOT NULL,
    event_time BIGINT NOT NULL,
    seq        BIGINT NOT NULL
);

-- The picture's counts: events per minute, lane (first resource), kind and source.
CREATE TABLE mark_minutes (
    minute     BIGINT NOT NULL,
    lane       TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    n          BIGINT NOT NULL,
    failed     BIGINT NOT NULL,
    first_seq  BIGINT NOT NULL,
    first_time BIGINT NOT NULL,
    first_name TEXT   NOT NULL,
    PRIMARY KEY (minute, lane, kind, source)
);

-- The search index: each event's words (store::search::document) as a tsvector taken
-- verbatim (array_to_tsvector: no stemming, no stop words), so a query built of quoted
-- lexemes matches exactly what the SQLite store's FTS5 table matches.
CREATE TABLE search_index (
    seq        BIGINT   PRIMARY KEY,
    event_time BIGINT   NOT NULL,
    words      TSVECTOR NOT NULL
);
CREATE INDEX search_index_words ON search_index USING GIN (words);
CREATE INDEX search_index_time ON search_index (event_time, seq);

CREATE TABLE search_vocab (
    term TEXT COLLATE "C" PRIMARY KEY
);

CREATE TABLE users (
    name          TEXT   PRIMARY KEY,
    role          TEXT   NOT NULL CHECK (role IN ('viewer', 'responder')),
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_sha256 TEXT   PRIMARY KEY,
    user_name    TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_name);

-- The engine's reads (partial indexes, cloned onto every partition).
CREATE INDEX events_alarms ON events (seq) WHERE kind = 'alarm';
CREATE INDEX events_window ON events (event_time)
    WHERE source <> 'rootline' AND kind <> 'log'
      AND NOT (kind = 'change' AND read_only AND error_code IS NULL);
-- Natural ids (a cited event, rootline's own by prefix) are found through the primary
-- key (source, natural_id, event_time).
