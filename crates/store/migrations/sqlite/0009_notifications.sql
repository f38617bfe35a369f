-- Notifications by topic and delivery method (issue 11): each row is one
-- thing one user is told; `in_app` says whether the bell shows it,
-- `email_state` where its e-mail stands (none, sent, held for the digest,
-- digested). The old `kind` column becomes the topic.
ALTER TABLE notifications ADD COLUMN topic TEXT NOT NULL DEFAULT 'assigned_to_me';
ALTER TABLE notifications DROP COLUMN kind;
ALTER TABLE notifications ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN actor_user_id INTEGER;
ALTER TABLE notifications ADD COLUMN in_app INTEGER NOT NULL DEFAULT 1;
ALTER TABLE notifications ADD COLUMN email_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE notifications ADD COLUMN read_at INTEGER;
-- The cap counts e-mails sent per user and topic in the hour.
CREATE INDEX notifications_emailed ON notifications (user_id, topic, at) WHERE email_state = 'sent';
CREATE INDEX notifications_held ON notifications (user_id, id) WHERE email_state = 'held';

-- Account defaults per topic and method, set by super admins; a missing
-- row is the built-in default.
CREATE TABLE notification_defaults (
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    topic       TEXT NOT NULL,
    method      TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    PRIMARY KEY (account_id, topic, method)
) WITHOUT ROWID;

-- Users' own settings; a missing row follows the account default.
CREATE TABLE notification_preferences (
    account_id  INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    topic       TEXT NOT NULL,
    method      TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    PRIMARY KEY (user_id, topic, method)
) WITHOUT ROWID;

-- The account's outgoing relay for notification e-mails (JSON, secrets
-- inside: never served).
CREATE TABLE notification_email (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts(id),
    settings    TEXT NOT NULL
);
