-- The event log. Every fact rootline knows is a row here; everything else (resource
-- graph, incidents, hypotheses, pages) is derived from it and can be rebuilt.
--
-- seq is the rowid, with no AUTOINCREMENT: SQLite assigns max(seq)+1, rows are never
-- deleted (triggers below) and a rolled-back or ignored insert takes no number, so the
-- sequence has no gaps.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    natural_id  TEXT    NOT NULL,
    event_time  INTEGER NOT NULL,          -- epoch milliseconds, UTC
    received_at INTEGER,                   -- epoch milliseconds, UTC (recording's recorded_at)
    kind        TEXT    NOT NULL,          -- change | alarm | deployment | log | anomaly | snapshot | conclusion | other
    detail      TEXT    NOT NULL,          -- JSON: the kind with its fields (model::Kind)
    name        TEXT    NOT NULL,
    actor       TEXT,
    read_only   INTEGER NOT NULL,
    error_code  TEXT,
    resources   TEXT    NOT NULL,          -- JSON array of canonical resource keys
    payload     TEXT    NOT NULL           -- upstream JSON, verbatim
);

-- Idempotency: one row per delivery, whatever the number of times it is ingested.
CREATE UNIQUE INDEX events_natural_key ON events (source, natural_id);
-- Time-window queries (incident look-back, timeline).
CREATE INDEX events_time ON events (event_time);

-- Per-resource queries. Maintained by the database from events.resources, so no writer
-- can forget it.
CREATE TABLE event_resources (
    resource   TEXT    NOT NULL,
    event_time INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (resource, event_time, seq)
) WITHOUT ROWID;

CREATE TRIGGER events_index_resources AFTER INSERT ON events
BEGIN
    INSERT OR IGNORE INTO event_resources (resource, event_time, seq)
    SELECT value, NEW.event_time, NEW.seq FROM json_each(NEW.resources);
END;

-- Append-only, enforced by the database itself.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: DELETE is not allowed');
END;
CREATE TRIGGER event_resources_no_update BEFORE UPDATE ON event_resources
BEGIN
    SELECT RAISE(ABORT, 'event_resources is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER event_resources_no_delete BEFORE DELETE ON event_resources
BEGIN
    SELECT RAISE(ABORT, 'event_resources is append-only: DELETE is not allowed');
END;

-- Reader and collector positions. Written in the same transaction as the events they
-- cover, so a crash can never leave a checkpoint ahead of (or behind) the log.
CREATE TABLE checkpoints (
    name     TEXT    PRIMARY KEY,
    value    TEXT    NOT NULL,
    last_seq INTEGER NOT NULL
);
