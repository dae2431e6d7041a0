-- Failed calls are evidence (issue 18): a role's reads refused with AccessDenied after
-- its policy was detached, a scale-out refused by a vCPU limit. Read-only calls were
-- left out of an incident's window (most of the log), failed or not; failed ones are
-- few and telling, so the window and the citeable ids now hold them. Both indexes keep
-- their names; their condition is repeated word for word by the store's queries.
DROP INDEX events_window;
CREATE INDEX events_window ON events (event_time)
WHERE source <> 'rootline' AND kind <> 'log'
    AND NOT (kind = 'change' AND read_only = 1 AND error_code IS NULL);
DROP INDEX events_cited_ids;
CREATE INDEX events_cited_ids ON events (substr(natural_id, -16))
WHERE source <> 'rootline' AND kind <> 'log'
    AND NOT (kind = 'change' AND read_only = 1 AND error_code IS NULL);

-- The resource graph now keeps subnets, route tables, network ACLs and KMS keys (a
-- resource's infrastructure, walked only away from the resource): rebuild the
-- projections that hold graph nodes from the log. The search index is left as it is.
DELETE FROM graph_nodes;
DELETE FROM graph_edges;
DELETE FROM name_tokens;
DELETE FROM alarm_definitions;
DELETE FROM alarm_states;
DELETE FROM projection_checkpoints
WHERE name IN ('graph', 'alarm_definitions', 'alarm_states', 'name_tokens');
