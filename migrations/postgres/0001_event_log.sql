-- The event log on PostgreSQL: the same guarantees as the SQLite store's.
--
-- * Append-only: UPDATE, DELETE and TRUNCATE of events (and of each partition) are
--   refused by triggers. Old months leave as a whole: DETACH PARTITION, then archive.
-- * Idempotent on (source, natural id, event time): the primary key. A time-partitioned
--   table can only enforce a unique key that holds the partition key.
-- * A global sequence readers can follow: appends take one transaction-scoped advisory
--   lock, read the head, number their new rows head+1.. and move the head in the same
--   transaction, so seqs have no gaps and commit in seq order: a reader that has seen
--   seq N never later finds a newly committed event below N.
-- * Checkpoints are written in the append's transaction.
--
-- Partitions: one per calendar month (UTC) of event time, made by
-- rootline_month_partition() before an append needs them, and ahead of now when a store
-- opens.

CREATE TABLE events (
    seq         BIGINT  NOT NULL,
    source      TEXT    COLLATE "C" NOT NULL,
    natural_id  TEXT    COLLATE "C" NOT NULL,
    event_time  BIGINT  NOT NULL,           -- epoch milliseconds, UTC
    received_at BIGINT,                     -- epoch milliseconds, UTC
    kind        TEXT    NOT NULL,
    detail      TEXT    NOT NULL,           -- JSON: the kind with its fields (model::Kind)
    name        TEXT    NOT NULL,
    actor       TEXT,
    read_only   BOOLEAN NOT NULL,
    error_code  TEXT,
    resources   TEXT    NOT NULL,           -- JSON array of canonical resource keys
    payload     TEXT    NOT NULL,           -- upstream JSON, verbatim
    PRIMARY KEY (source, natural_id, event_time)
) PARTITION BY RANGE (event_time);

CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_time ON events (event_time);

-- Which events touch a resource, by time: the resource filter's index.
CREATE TABLE event_resources (
    resource   TEXT   COLLATE "C" NOT NULL,
    event_time BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (resource, event_time, seq)
) PARTITION BY RANGE (event_time);

-- The log's head: the highest seq appended (0 when empty), moved by every append.
CREATE TABLE log_head (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq BIGINT  NOT NULL
);
INSERT INTO log_head (one, seq) VALUES (TRUE, 0);

CREATE TABLE checkpoints (
    name     TEXT   PRIMARY KEY,
    value    TEXT   NOT NULL,
    last_seq BIGINT NOT NULL
);

CREATE FUNCTION rootline_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP;
END $$;

-- Row triggers of a partitioned table are cloned onto its partitions; TRUNCATE
-- triggers are not, so each partition gets its own (rootline_month_partition).
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION rootline_refuse();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION rootline_refuse();
CREATE TRIGGER event_resources_append_only BEFORE UPDATE OR DELETE ON event_resources
    FOR EACH ROW EXECUTE FUNCTION rootline_refuse();
CREATE TRIGGER event_resources_no_truncate BEFORE TRUNCATE ON event_resources
    FOR EACH STATEMENT EXECUTE FUNCTION rootline_refuse();
CREATE TRIGGER log_head_no_delete BEFORE DELETE ON log_head
    FOR EACH ROW EXECUTE FUNCTION rootline_refuse();
CREATE TRIGGER log_head_no_truncate BEFORE TRUNCATE ON log_head
    FOR EACH STATEMENT EXECUTE FUNCTION rootline_refuse();

-- The partitions of events and event_resources for the month [lo, hi) of event time,
-- named by `suffix` (yYYYYmMM); nothing when they exist.
CREATE FUNCTION rootline_month_partition(suffix TEXT, lo BIGINT, hi BIGINT)
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'event_resources'] LOOP
        IF to_regclass(t || '_' || suffix) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s)',
                           t || '_' || suffix, t, lo, hi);
            EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                           'EXECUTE FUNCTION rootline_refuse()',
                           t || '_' || suffix || '_no_truncate', t || '_' || suffix);
        END IF;
    END LOOP;
END $$;
