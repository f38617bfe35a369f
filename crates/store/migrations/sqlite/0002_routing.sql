-- Routing: availability, capacity, incremental counters, round-robin state,
-- stored decisions, the waiting queue and the durable scheduler.

ALTER TABLE users ADD COLUMN availability TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN capacity TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN last_assigned_at INTEGER;

ALTER TABLE teams ADD COLUMN office_hours TEXT;
ALTER TABLE channels ADD COLUMN office_hours TEXT;
ALTER TABLE channels ADD COLUMN rr_cycle INTEGER NOT NULL DEFAULT 1;

-- 1 while the ticket counts in its owner's load (open, assigned less than
-- 30 days ago); the scheduler clears it when the 30 days are over.
ALTER TABLE tickets ADD COLUMN load_counted INTEGER NOT NULL DEFAULT 0;
-- 1 while the ticket waits in the routing queue.
ALTER TABLE tickets ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tickets_waiting ON tickets (account_id, waiting) WHERE waiting = 1;

-- Maintained in the same transaction as every ticket change; checked
-- against a full recount by the tests.
CREATE TABLE user_ticket_counts (
    account_id  INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    type        TEXT NOT NULL,
    open_count  INTEGER NOT NULL DEFAULT 0,
    load_count  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, type)
) WITHOUT ROWID;

-- The last round-robin cycle of a channel's rule in which a user got a ticket.
CREATE TABLE round_robin (
    account_id  INTEGER NOT NULL,
    channel_id  INTEGER NOT NULL REFERENCES channels(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    last_cycle  INTEGER NOT NULL,
    PRIMARY KEY (channel_id, user_id)
) WITHOUT ROWID;

CREATE TABLE routing_decisions (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL,
    ticket_id    INTEGER NOT NULL REFERENCES tickets(id),
    at           INTEGER NOT NULL,
    trigger      TEXT NOT NULL,
    explanation  TEXT NOT NULL
);
CREATE INDEX routing_decisions_by_ticket ON routing_decisions (ticket_id, id);

-- Durable scheduler: one row per future piece of work. `key` makes
-- scheduling idempotent (one pending job per user transition or ticket).
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    run_at      INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL UNIQUE,
    subject_id  INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at);

-- Tickets that already exist: count them, and schedule the end of their load.
UPDATE tickets SET load_counted = 1
WHERE status = 'open' AND owner_user_id IS NOT NULL AND assigned_at IS NOT NULL
  AND assigned_at > CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 2592000000;
INSERT INTO user_ticket_counts (account_id, user_id, type, open_count, load_count)
SELECT account_id, owner_user_id, type, count(*), sum(load_counted)
FROM tickets WHERE status = 'open' AND owner_user_id IS NOT NULL
GROUP BY account_id, owner_user_id, type;
INSERT INTO jobs (account_id, run_at, kind, key, subject_id)
SELECT account_id, assigned_at + 2592000000, 'load_expiry', 'load:' || id, id
FROM tickets WHERE load_counted = 1;
