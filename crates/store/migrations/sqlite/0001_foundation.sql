-- Foundation schema. Every table carries account_id so that every query can
-- be scoped to one account (and the schema can later be sharded by it).
-- Times are Unix milliseconds (INTEGER).

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    name            TEXT NOT NULL,
    email           TEXT NOT NULL COLLATE NOCASE,
    role            TEXT NOT NULL CHECK (role IN ('super_admin', 'admin', 'agent')),
    help_desk_seat  INTEGER NOT NULL DEFAULT 0,
    deactivated     INTEGER NOT NULL DEFAULT 0,
    time_zone       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (account_id, email)
);

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL COLLATE NOCASE,
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE team_members (
    account_id  INTEGER NOT NULL,
    team_id     INTEGER NOT NULL REFERENCES teams(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    main        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, user_id)
) WITHOUT ROWID;
CREATE INDEX team_members_by_user ON team_members (user_id, team_id);
-- A user has at most one main team.
CREATE UNIQUE INDEX team_members_one_main ON team_members (user_id) WHERE main = 1;

CREATE TABLE skills (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    name        TEXT NOT NULL COLLATE NOCASE,
    category    TEXT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE user_skills (
    account_id  INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    skill_id    INTEGER NOT NULL REFERENCES skills(id),
    PRIMARY KEY (user_id, skill_id)
) WITHOUT ROWID;

CREATE TABLE contacts (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    name            TEXT,
    email           TEXT COLLATE NOCASE,
    phone           TEXT,
    owner_user_id   INTEGER REFERENCES users(id),
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX contacts_by_email ON contacts (account_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX contacts_by_phone ON contacts (account_id, phone) WHERE phone IS NOT NULL;

CREATE TABLE contact_visitor_tokens (
    account_id  INTEGER NOT NULL,
    token       TEXT NOT NULL,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    PRIMARY KEY (account_id, token)
) WITHOUT ROWID;
CREATE INDEX contact_visitor_tokens_by_contact ON contact_visitor_tokens (contact_id);

CREATE TABLE channels (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    key         TEXT NOT NULL UNIQUE,
    settings    TEXT NOT NULL DEFAULT '{}',
    routing     TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    subject         TEXT NOT NULL,
    content         TEXT NOT NULL,
    channel_id      INTEGER REFERENCES channels(id),
    source          TEXT NOT NULL,
    type            TEXT NOT NULL,
    status          TEXT NOT NULL,
    stage           TEXT NOT NULL,
    priority        TEXT NOT NULL,
    owner_user_id   INTEGER REFERENCES users(id),
    owner_team_id   INTEGER REFERENCES teams(id),
    assigned_at     INTEGER,
    contact_id      INTEGER REFERENCES contacts(id),
    properties      TEXT NOT NULL DEFAULT '{}',
    first_reply_at  INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    closed_at       INTEGER
);
-- Serves the views: unassigned (owner NULL), mine (owner = me), open, closed.
CREATE INDEX tickets_by_owner ON tickets (account_id, status, owner_user_id, id);
-- Serves the team views.
CREATE INDEX tickets_by_team ON tickets (account_id, owner_team_id, status, id);

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL,
    ticket_id    INTEGER NOT NULL REFERENCES tickets(id),
    kind         TEXT NOT NULL,
    author       TEXT NOT NULL,
    body         TEXT NOT NULL,
    external_id  TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX messages_by_ticket ON messages (ticket_id, id);
CREATE INDEX messages_by_external_id ON messages (account_id, external_id) WHERE external_id IS NOT NULL;

-- Append-only: rows are inserted, never updated or deleted.
CREATE TABLE ticket_history (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    event       TEXT NOT NULL
);
CREATE INDEX ticket_history_by_ticket ON ticket_history (ticket_id, id);

CREATE TABLE idempotency_keys (
    account_id   INTEGER NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    ticket_id    INTEGER NOT NULL REFERENCES tickets(id),
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
