-- The append path at scale (a million events and more in one ingest).
--
-- Measured on the 2-core reference machine, 1M CloudTrail-shaped rows: the unique index
-- on (source, natural_id) halved the insert rate (random text keys of ~60 bytes: every
-- transaction rewrites most of that index's pages), and maintaining event_resources
-- through json_each in a trigger halved it again. So:
--
-- 1. Idempotency moves into a BEFORE INSERT trigger that skips (RAISE(IGNORE)) a row whose
--    (source, natural_id) is already stored, found through a small index on the last 16
--    characters of the natural id (natural ids end in their random or most specific
--    part: UUIDs, timestamps, state ids). The database computes that key itself, so
--    every writer, not only rootline, is held to it, and INSERT OR REPLACE can no longer
--    replace a stored event (a REPLACE on the old unique index deleted the row without
--    firing the DELETE trigger). The same trigger refuses an explicit seq, so sequence
--    numbers are only ever assigned by the database: max(seq)+1, gap-free.
-- 2. event_resources rows are inserted by the store in the same statement batch and
--    transaction as their events (still append-only, see 0001).
-- 3. Conclusions (source 'rootline') keep an index on natural_id for prefix reads.

DROP TRIGGER events_index_resources;
DROP INDEX events_natural_key;

CREATE INDEX events_id_tail ON events (substr(natural_id, -16));
CREATE INDEX events_rootline_ids ON events (natural_id) WHERE source = 'rootline';

CREATE TRIGGER events_insert_guard BEFORE INSERT ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: seq is assigned by the database')
    WHERE NEW.seq <> -1;
    SELECT RAISE(IGNORE)
    WHERE EXISTS (
        SELECT 1 FROM events
        WHERE substr(natural_id, -16) = substr(NEW.natural_id, -16)
          AND natural_id = NEW.natural_id
          AND source = NEW.source
    );
END;
