-- Singleton jobs of several rootline processes on one store (as migrations/0012 on
-- SQLite): a job runs only in the process that holds its lease until `expires_at`
-- (epoch ms); `term` grows by one each time the lease changes hands. Operational
-- state, not part of the log: rows are updated in place.
CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    term       BIGINT NOT NULL
);
