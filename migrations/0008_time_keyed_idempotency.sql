-- Idempotency keyed on (source, natural id, event time), decided in issue 17: every
-- source fixes a record's natural id together with its event time (a re-delivery
-- carries the same time), and a time-partitioned table can only enforce a unique key
-- that holds its partition key anyway.
--
-- The unique index leads with event_time, so appends land near its right edge instead
-- of at a random place (the random-key index on the natural id was what held ingest
-- near 55,000 events/s), and it replaces the time index for window queries. A
-- re-delivery is skipped by the INSERT's ON CONFLICT DO NOTHING.
--
-- The per-row guard trigger goes: it refused an explicit seq and skipped duplicates,
-- at a sixth to a third of ingest's time, and a writer that can open the file can drop
-- any trigger anyway. UPDATE and DELETE stay refused by the triggers of 0001.
DROP TRIGGER events_insert_guard;
DROP INDEX events_id_tail;
DROP INDEX events_time;
CREATE UNIQUE INDEX events_key ON events (event_time, natural_id, source);

-- Lookups by natural id alone (a hypothesis cites its cause and evidence by source and
-- id): only the events a conclusion can cite, which are those a ranking reads (the
-- predicate of events_window: no read-only calls, no log lines, most of the log) and
-- rootline's own (events_rootline_ids). Others are found by their time
-- (`find_at`) or not at all.
CREATE INDEX events_cited_ids ON events (substr(natural_id, -16))
WHERE source <> 'rootline' AND kind <> 'log' AND NOT (kind = 'change' AND read_only = 1);
