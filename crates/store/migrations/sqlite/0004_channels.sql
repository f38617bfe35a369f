-- Channels: one message per external id (e-mail Message-ID, WhatsApp wamid,
-- Twilio CallSid) per account, so a retried delivery never makes a second
-- message; attachments stored with their message.
DROP INDEX messages_by_external_id;
CREATE UNIQUE INDEX messages_by_external_id ON messages (account_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL,
    message_id    INTEGER NOT NULL REFERENCES messages(id),
    filename      TEXT,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    content       BLOB,
    provider_ref  TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX attachments_by_message ON attachments (message_id, id);
