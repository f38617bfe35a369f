-- The version of each account's routing state: every write that changes
-- what a node's kept routing state mirrors (counters, round robin, last
-- assignment, users, teams, skills, channels, availability) bumps it in the
-- same transaction; a node uses its kept state only at the version it kept.
ALTER TABLE accounts ADD COLUMN routing_version BIGINT NOT NULL DEFAULT 0;
