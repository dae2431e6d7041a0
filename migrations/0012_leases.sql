-- Singleton jobs of several rootline processes on one store (the analyser with its
-- projector, the GitHub outbox worker): a job runs only in the process that holds its
-- lease. A lease is held until `expires_at` (epoch ms, wall clock) and renewed well
-- before; a holder killed without releasing it loses it when it expires, and another
-- process takes it. `term` grows by one each time the lease changes hands.
-- Operational state, not part of the log: rows are updated in place.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    term       INTEGER NOT NULL
);
