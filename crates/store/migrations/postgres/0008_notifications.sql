-- Notifications by topic and delivery method (issue 11); the same shape as
-- SQLite's 0009_notifications.sql.
ALTER TABLE notifications ADD COLUMN topic TEXT NOT NULL DEFAULT 'assigned_to_me';
ALTER TABLE notifications DROP COLUMN kind;
ALTER TABLE notifications ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN actor_user_id BIGINT;
ALTER TABLE notifications ADD COLUMN in_app INTEGER NOT NULL DEFAULT 1;
ALTER TABLE notifications ADD COLUMN email_state TEXT NOT NULL DEFAULT 'none';
ALTER TABLE notifications ADD COLUMN read_at BIGINT;
CREATE INDEX notifications_emailed ON notifications (user_id, topic, at) WHERE email_state = 'sent';
CREATE INDEX notifications_held ON notifications (user_id, id) WHERE email_state = 'held';

CREATE TABLE notification_defaults (
    account_id  BIGINT NOT NULL REFERENCES accounts(id),
    topic       TEXT NOT NULL,
    method      TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    PRIMARY KEY (account_id, topic, method)
);

CREATE TABLE notification_preferences (
    account_id  BIGINT NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    topic       TEXT NOT NULL,
    method      TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    PRIMARY KEY (user_id, topic, method)
);

CREATE TABLE notification_email (
    account_id  BIGINT PRIMARY KEY REFERENCES accounts(id),
    settings    TEXT NOT NULL
);
