-- The durable event sequence behind `GET /api/v1/events` and Last-Event-ID.
-- Each history line's event is a row, written in the same transaction. On
-- SQLite one writer commits in order, so the row id is the sequence number:
-- AUTOINCREMENT so that a number is never handed out twice, even after
-- retention has deleted every row.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL,
    ticket_id   INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, seq);
CREATE INDEX events_by_time ON events (at);
-- `purged_through`: every event up to this number has been deleted by
-- retention; a client resuming from before it missed some and is told so.
CREATE TABLE event_log (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    purged_through  INTEGER NOT NULL
);
INSERT INTO event_log (id, purged_through) VALUES (1, 0);
