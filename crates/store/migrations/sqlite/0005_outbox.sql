-- The transactional outbox: deferred work (a reply to send) written in the
-- same transaction as the change that calls for it, run afterwards by the
-- dispatcher. `run_at` is when a pending row is due; a claim moves it to the
-- end of the claimer's lease, so a crashed claimer's row comes back.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    run_at      INTEGER NOT NULL,
    last_error  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
-- Claiming: due pending rows, oldest due first.
CREATE INDEX outbox_due ON outbox (run_at, id) WHERE state = 'pending';
-- Listing an account's rows by state, newest first.
CREATE INDEX outbox_by_state ON outbox (account_id, state, id);
