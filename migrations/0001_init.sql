-- soldr schema, version 1.
-- Times are unix milliseconds. Ids of requests are UUIDv7 strings.

CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,           -- the subdomain label
    destination      TEXT NOT NULL,              -- http(s) URL
    active           INTEGER NOT NULL DEFAULT 1,
    max_attempts     INTEGER NOT NULL DEFAULT 10,
    timeout_ms       INTEGER NOT NULL DEFAULT 30000,
    backoff_base_ms  INTEGER NOT NULL DEFAULT 30000,
    backoff_cap_ms   INTEGER NOT NULL DEFAULT 21600000,
    max_concurrency  INTEGER NOT NULL DEFAULT 4,
    signing_secret   TEXT,                       -- whsec_..., NULL: unsigned
    alert_email      TEXT,
    alert_url        TEXT,
    alerted_at       INTEGER,                    -- NULL: not in an incident
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- One row per received request: who sent what, and where its delivery
-- stands. seq orders rows for purge chunks and keyset pagination; id is the
-- public key. The payload lives in request_bodies: state changes (claims,
-- outcomes) rewrite only this narrow row, not a page full of bodies.
CREATE TABLE requests (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    webhook          TEXT NOT NULL,              -- label; no foreign key: stored before any lookup
    received_at      INTEGER NOT NULL,
    peer             TEXT NOT NULL DEFAULT '',
    method           TEXT NOT NULL,
    target           TEXT NOT NULL,              -- path and query as received
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending','sending','delivered','failed','orphaned')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    last_status      INTEGER,
    completed_at     INTEGER,
    manual           INTEGER NOT NULL DEFAULT 0, -- 1: the next attempt is a human's resend
    resend_requested_at INTEGER
) STRICT;

-- The request as received, byte for byte; written once, deleted with its request.
CREATE TABLE request_bodies (
    seq              INTEGER PRIMARY KEY REFERENCES requests (seq) ON DELETE CASCADE,
    headers          TEXT NOT NULL,              -- "Name: value\r\n" lines, in order
    body             BLOB NOT NULL
) STRICT;

-- Every index here is paid for by every ingest commit, so there are few:
-- the processor's queue is the due rows of each webhook (claims are per
-- webhook, bounded by its concurrency; the earliest due time is the minimum
-- of each webhook's first entry). The purge walks seq, which grows with
-- received_at, so it needs no index of its own.
CREATE INDEX requests_due_webhook ON requests (webhook, next_attempt_at) WHERE state = 'pending';
CREATE INDEX requests_sending ON requests (seq) WHERE state = 'sending';
-- Failed and orphaned requests, newest first, for the admin's filters (rows
-- enter them only on that transition, so ingest does not pay for them).
CREATE INDEX requests_failed ON requests (id) WHERE state = 'failed';
CREATE INDEX requests_orphaned ON requests (id) WHERE state = 'orphaned';

-- An admin's edit of a request: what is delivered from then on. The original
-- in request_bodies stays as received.
CREATE TABLE request_edits (
    seq              INTEGER PRIMARY KEY REFERENCES requests (seq) ON DELETE CASCADE,
    method           TEXT NOT NULL,
    target           TEXT NOT NULL,
    headers          TEXT NOT NULL,
    body             BLOB NOT NULL,
    edited_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY,
    request_seq      INTEGER NOT NULL REFERENCES requests (seq) ON DELETE CASCADE,
    started_at       INTEGER NOT NULL,
    duration_ms      INTEGER,
    status           INTEGER,                    -- HTTP status, NULL for a network error
    response_headers TEXT,
    response_body    BLOB,                       -- capped
    error            TEXT,                       -- curl error text, or 'interrupted'
    manual           INTEGER NOT NULL DEFAULT 0  -- 1: a human asked for it
) STRICT;

CREATE INDEX attempts_request ON attempts (request_seq);

-- Alert outbox: one row per notice and channel, written in the same
-- transaction as the state change that raised it, sent (and retried) by the
-- processor's alert sender.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    webhook          TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('alert', 'resolved')),
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'url')),
    target           TEXT NOT NULL,              -- e-mail address or URL
    request_id       TEXT,
    detail           TEXT NOT NULL,              -- the JSON document of the notice
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    sent_at          INTEGER,
    last_error       TEXT
) STRICT;

CREATE INDEX alerts_due ON alerts (next_attempt_at) WHERE sent_at IS NULL;

-- Counters that outlive the purge: per webhook and UTC day (unix ms / 86400000)
-- of the event. Updated in the transaction of the event; the purge never
-- deletes them.
CREATE TABLE rollups (
    webhook          TEXT NOT NULL,
    day              INTEGER NOT NULL,
    received         INTEGER NOT NULL DEFAULT 0,
    delivered        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    retried          INTEGER NOT NULL DEFAULT 0, -- failed attempts that were retried
    orphaned         INTEGER NOT NULL DEFAULT 0,
    purged           INTEGER NOT NULL DEFAULT 0,
    purged_undelivered INTEGER NOT NULL DEFAULT 0, -- purged while pending or sending
    PRIMARY KEY (webhook, day)
) STRICT, WITHOUT ROWID;
