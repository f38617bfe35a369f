-- What each routing-state version changed (a JSON array of
-- `domain::routing::StateDelta`), so a node whose kept copy is a few
-- versions behind follows the changes instead of reading the whole state
-- again. `deltas` NULL: a structural change (users, teams, skills,
-- channels) that copies cannot follow. Pruned to the last 1,024 versions
-- per account by the writers themselves.
CREATE TABLE routing_deltas (
    account_id  BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    deltas      TEXT,
    PRIMARY KEY (account_id, version)
);
