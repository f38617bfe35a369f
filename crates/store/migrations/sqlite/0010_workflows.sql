-- Ticket workflows (issue 11). A workflow's definition is stored as JSON
-- (`switchboard_domain::workflows::WorkflowSpec`, parsed when it is saved);
-- its webhook secrets apart, by action id, never served.
CREATE TABLE workflows (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    spec        TEXT NOT NULL,
    secrets     TEXT NOT NULL DEFAULT '{}',
    enabled     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX workflows_account ON workflows (account_id, id);

-- A rotate action's round-robin state, by workflow and action id: it
-- survives edits of the action's targets.
CREATE TABLE workflow_rotations (
    workflow_id INTEGER NOT NULL,
    action_id   TEXT NOT NULL,
    state       TEXT NOT NULL,
    PRIMARY KEY (workflow_id, action_id)
) WITHOUT ROWID;

-- One ticket's run through one workflow. `seq` counts the steps it ran:
-- the outbox row for its next step carries the count it expects, so a row
-- run twice runs nothing the second time. `cursor` is the next step's
-- position (JSON array), `due_at` the instant a time-based trigger was due
-- for (a timed trigger enrolls once per instant).
CREATE TABLE workflow_enrollments (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL,
    workflow_id  INTEGER NOT NULL,
    ticket_id    INTEGER NOT NULL,
    trigger      TEXT NOT NULL,
    due_at       INTEGER,
    state        TEXT NOT NULL,
    cursor       TEXT,
    seq          INTEGER NOT NULL DEFAULT 0,
    waiting_until INTEGER,
    error        TEXT,
    started_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX workflow_enrollments_ticket ON workflow_enrollments (ticket_id, workflow_id);
CREATE INDEX workflow_enrollments_workflow ON workflow_enrollments (workflow_id) WHERE state IN ('running', 'waiting');

-- Every step an enrollment ran (the history has a line for each too); the
-- hourly step cap counts a ticket's rows of the last hour.
CREATE TABLE workflow_steps (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL,
    enrollment_id INTEGER NOT NULL,
    ticket_id     INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    record        TEXT NOT NULL
);
CREATE INDEX workflow_steps_enrollment ON workflow_steps (enrollment_id, id);
CREATE INDEX workflow_steps_ticket ON workflow_steps (ticket_id, at);
