-- What the engine reads instead of the whole log (issue 16): an incident's ranking reads
-- the events of its window (events_time), the resource graph around its symptoms
-- (graph_edges both ways, name links through graph_nodes.name_tail), naming statistics
-- (name_tokens) and alarm definitions; the analyser reads new alarm transitions
-- (events_alarms).

-- Log groups are related to the workloads named like them (`/ecs/orders-api` and the
-- ECS service `orders-api`): the last segment of a log group's name, NULL for others.
ALTER TABLE graph_nodes ADD COLUMN name_tail TEXT;
CREATE INDEX graph_nodes_name_tail ON graph_nodes (name_tail) WHERE name_tail IS NOT NULL;

-- Naming statistics: in how many names (graph nodes' and alarms') each word appears.
-- The row with the empty token counts the names.
CREATE TABLE name_tokens (
    token TEXT    PRIMARY KEY,
    df    INTEGER NOT NULL
) WITHOUT ROWID;

-- New alarm transitions after a seq, without a scan of everything else.
CREATE INDEX events_alarms ON events (seq) WHERE kind = 'alarm';

-- The projections gained columns and a table: rebuild them from the log.
DELETE FROM graph_nodes;
DELETE FROM graph_edges;
DELETE FROM alarm_definitions;
DELETE FROM alarm_states;
DELETE FROM projection_checkpoints;

-- An incident's window: the upstream events that can be a cause or a symptom (not
-- read-only API calls, not raw log lines, which are most of the log), by time. The
-- condition is repeated word for word by the store's window query.
CREATE INDEX events_window ON events (event_time)
WHERE source <> 'rootline' AND kind <> 'log' AND NOT (kind = 'change' AND read_only = 1);
