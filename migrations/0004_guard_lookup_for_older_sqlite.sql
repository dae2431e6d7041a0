-- The insert guard's duplicate lookup, written so that older SQLite versions use the
-- id-tail index too.
--
-- rootline bundles a recent SQLite, whose planner finds events_id_tail for the guard of
-- 0002. SQLite 3.40 (the system library of Debian 12, used by its sqlite3 shell and by
-- Python) does not when the lookup also compares natural_id itself: it planned the
-- guard as a full scan of events for every inserted row, so another program appending
-- to a store was held to the rule at quadratic cost. A unary + on that comparison (the
-- same values, the same comparison) leaves the id-tail index as the only candidate.
DROP TRIGGER events_insert_guard;

CREATE TRIGGER events_insert_guard BEFORE INSERT ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: seq is assigned by the database')
    WHERE NEW.seq <> -1;
    SELECT RAISE(IGNORE)
    WHERE EXISTS (
        SELECT 1 FROM events
        WHERE substr(natural_id, -16) = substr(NEW.natural_id, -16)
          AND +natural_id = NEW.natural_id
          AND source = NEW.source
    );
END;
