-- Publication webhooks: a durable outbox. The publish transaction writes one event per
-- published directory generation (its body exactly as it will be signed and sent); one
-- sender among the serving processes (an advisory lock) delivers each event to each
-- configured URL at least once, retrying with back-off, every attempt recorded.
CREATE TABLE publication_event (
    run_id     bigint      NOT NULL CONSTRAINT publication_event_pk PRIMARY KEY
        CONSTRAINT publication_event_run_fk REFERENCES import_run (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    body       text        NOT NULL
);
-- A URL receives the events published after it was first configured.
CREATE TABLE webhook_endpoint (
    url           text        NOT NULL CONSTRAINT webhook_endpoint_pk PRIMARY KEY,
    registered_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE webhook_delivery (
    run_id          bigint      NOT NULL CONSTRAINT webhook_delivery_event_fk
        REFERENCES publication_event (run_id) ON DELETE CASCADE,
    url             text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    CONSTRAINT webhook_delivery_pk PRIMARY KEY (run_id, url)
);
CREATE INDEX webhook_delivery_due_ix ON webhook_delivery (next_attempt_at) WHERE delivered_at IS NULL;
CREATE TABLE webhook_attempt (
    run_id       bigint      NOT NULL,
    url          text        NOT NULL,
    attempt      integer     NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    -- The HTTP status answered, NULL when none was (unreachable, timed out).
    status       integer,
    error        text,
    CONSTRAINT webhook_attempt_pk PRIMARY KEY (run_id, url, attempt),
    CONSTRAINT webhook_attempt_delivery_fk FOREIGN KEY (run_id, url)
        REFERENCES webhook_delivery (run_id, url) ON DELETE CASCADE
);
