-- Projections: tables derived from the event log, kept current by the projector
-- (src/project.rs) and rebuildable from the log at any time (`rootline projections
-- rebuild`). The log stays the only source of truth; these tables may be updated and
-- emptied (only by the projector).
--
-- Each projection has its checkpoint: the last seq it has applied, written in the same
-- transaction as the rows that seq produced, so a projector killed at any point leaves
-- every projection consistent with a prefix of the log.
CREATE TABLE projection_checkpoints (
    name TEXT    PRIMARY KEY,
    seq  INTEGER NOT NULL
) WITHOUT ROWID;

-- The resource graph: every resource an event names (nodes) and every relation an event
-- states between two resources (edges, stored once with a < b). First and last seen, by
-- seq and by event time, so the graph "as of time T" is the edges with first_time <= T.
CREATE TABLE graph_nodes (
    resource   TEXT    PRIMARY KEY,
    first_seq  INTEGER NOT NULL,
    first_time INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE graph_edges (
    a          TEXT    NOT NULL,
    b          TEXT    NOT NULL,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    first_time INTEGER NOT NULL,
    last_time  INTEGER NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;

CREATE INDEX graph_edges_b ON graph_edges (b, a);

-- Alarm definitions: the latest (by event time, then seq) metric and namespace of each
-- alarm, from DescribeAlarms snapshots, PutMetricAlarm calls and EventBridge alarm events.
CREATE TABLE alarm_definitions (
    alarm      TEXT    PRIMARY KEY,
    namespace  TEXT    NOT NULL,
    metric     TEXT    NOT NULL,
    event_time INTEGER NOT NULL,
    seq        INTEGER NOT NULL
) WITHOUT ROWID;

-- Alarm state: each alarm's latest transition (by event time, then seq).
CREATE TABLE alarm_states (
    alarm      TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL,
    old_state  TEXT    NOT NULL,
    event_time INTEGER NOT NULL,
    seq        INTEGER NOT NULL
) WITHOUT ROWID;
