-- One load-expiry job per account (due at its oldest counted assignment's
-- expiry) instead of one per assigned ticket, found through this index.
CREATE INDEX tickets_load_counted ON tickets (account_id, assigned_at) WHERE load_counted = 1;
DELETE FROM jobs WHERE kind = 'load_expiry';
INSERT INTO jobs (account_id, run_at, kind, key, subject_id)
SELECT account_id, min(assigned_at) + 2592000000, 'load_expiry', 'load_expiry:' || account_id, account_id
FROM tickets WHERE load_counted = 1 GROUP BY account_id;
