-- What users are told: tickets assigned to them (by routing or by someone
-- else), and assignments made while they were away.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);
