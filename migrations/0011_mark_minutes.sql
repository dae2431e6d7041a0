-- The incident picture's counts, kept by the projector: per minute of event time, lane
-- (the event's first resource, '' for none), kind and source, how many of the events a
-- ranking can read (the predicate of events_window, alarm transitions included) fell
-- there, how many failed, and the first of them by seq (the mark's link and name).
--
-- A window's picture read every one of its events and grouped them (48 to 54 ms for a
-- two-hour window of 8,000 events at 10,000,000 stored); it now reads a few thousand
-- narrow rows for the whole minutes of its window, and only the events of its partial
-- first and last minute and those the projector has not reached yet.
CREATE TABLE mark_minutes (
    minute     INTEGER NOT NULL,
    lane       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    first_seq  INTEGER NOT NULL,
    first_time INTEGER NOT NULL,
    first_name TEXT    NOT NULL,
    PRIMARY KEY (minute, lane, kind, source)
) WITHOUT ROWID;

-- A store whose projections are current is counted up to their checkpoint here, once
-- (one pass over the log in seq order, at the upgrade; minutes are floored, as the
-- projector does). Row by row into the table rather than GROUP BY: the grouping sorted
-- the whole log in memory (3.7 GB at 10,000,000 events); this takes 15 s and 74 MB
-- there. In seq order, the first row of a cell is its first event. On an empty or new
-- store this inserts nothing.
INSERT INTO mark_minutes (minute, lane, kind, source, n, failed, first_seq, first_time, first_name)
SELECT CASE WHEN event_time >= 0 THEN event_time / 60000 ELSE -((59999 - event_time) / 60000) END,
       COALESCE(json_extract(resources, '$[0]'), ''), kind, source,
       1, error_code IS NOT NULL, seq, event_time, name
FROM events
WHERE source <> 'rootline' AND kind <> 'log'
  AND NOT (kind = 'change' AND read_only = 1 AND error_code IS NULL)
  AND seq <= (SELECT seq FROM projection_checkpoints WHERE name = 'graph')
ORDER BY seq
ON CONFLICT (minute, lane, kind, source) DO UPDATE SET
    n = n + 1, failed = failed + excluded.failed;

INSERT INTO projection_checkpoints (name, seq)
SELECT 'marks', seq FROM projection_checkpoints WHERE name = 'graph';
