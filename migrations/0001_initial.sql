-- The store of annuaire: import runs, the published generation of professionals, their
-- records, the MSSanté mailboxes, and the staging area that bulk loads go through.

-- One row per attempt to import an extract. A run that publishes becomes the generation
-- readers see; every other outcome is kept for the operator.
CREATE TABLE import_run (
    id              bigserial   CONSTRAINT import_run_pk PRIMARY KEY,
    source          text        NOT NULL,
    extract_ts      timestamptz,
    checksum        text,
    status          text        NOT NULL DEFAULT 'running'
        CONSTRAINT import_run_status_ck CHECK (status IN
            ('running', 'published', 'held', 'failed', 'skipped', 'discarded', 'cancelled')),
    forced          boolean     NOT NULL DEFAULT false,
    -- The generation this run was compared with; approving a held run is only sound while
    -- that generation is still the published one.
    base_run_id     bigint      CONSTRAINT import_run_base_fk REFERENCES import_run (id),
    has_directory   boolean     NOT NULL DEFAULT false,
    has_mailboxes   boolean     NOT NULL DEFAULT false,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    published_at    timestamptz,
    -- Milliseconds per phase: download, read_stage, build, diff, publish (index later).
    phases          jsonb       NOT NULL DEFAULT '{}',
    -- Per file: name, lines, rows, rejected, columns, unknown columns.
    files           jsonb       NOT NULL DEFAULT '[]',
    lines_read      bigint      NOT NULL DEFAULT 0,
    rejected        bigint      NOT NULL DEFAULT 0,
    professionals   bigint,
    mailboxes       bigint,
    added           bigint,
    changed         bigint,
    removed         bigint,
    -- Counts per identifier type ("8" RPPS, "0" ADELI) behind the safety gate's decision.
    gate            jsonb,
    message         text
);

CREATE INDEX import_run_status_ix ON import_run (status, id);

-- Lines refused by the reader. Only the first ones of a run are kept (the count is on the
-- run): a wholly broken file must not fill the database.
CREATE TABLE import_reject (
    run_id  bigint NOT NULL CONSTRAINT import_reject_run_fk REFERENCES import_run (id) ON DELETE CASCADE,
    file    text   NOT NULL,
    line    bigint NOT NULL,
    reason  text   NOT NULL,
    content text   NOT NULL,
    CONSTRAINT import_reject_pk PRIMARY KEY (run_id, file, line)
);

-- What readers see: the published directory generation and the published mailbox set
-- (the MSSanté file comes from its own extract, so it can be newer or older). Changing
-- this row is the atomic "publish".
CREATE TABLE publication (
    singleton      boolean     NOT NULL DEFAULT true CONSTRAINT publication_pk PRIMARY KEY
        CONSTRAINT publication_singleton_ck CHECK (singleton),
    run_id         bigint      CONSTRAINT publication_run_fk REFERENCES import_run (id),
    mailbox_run_id bigint      CONSTRAINT publication_mailbox_run_fk REFERENCES import_run (id),
    published_at   timestamptz NOT NULL DEFAULT now()
);

-- Immutable records, each produced by the run that first saw this version of the
-- professional. A run writes records only for professionals added or changed, so a day's
-- import writes a few thousand rows, not the whole directory. Records of a run that is not
-- published are invisible: readers reach records only through `professional`.
-- No foreign key to import_run: checking one per row would cost a fifth of the first
-- import's load; records are only written by the run they name.
CREATE TABLE professional_record (
    national_id  text   NOT NULL,
    run_id       bigint NOT NULL,
    change       text   NOT NULL CONSTRAINT professional_record_change_ck CHECK (change IN ('added', 'changed')),
    content_hash bytea  NOT NULL,
    family_name  text   NOT NULL,
    given_name   text   NOT NULL,
    -- zstd-compressed JSON: the claims document exactly as served, and the rest of the
    -- record (savoir-faire, diplomas, labels). Compressed in the importer with a dictionary
    -- trained on the directory's own documents: about 200 bytes instead of 1.6 kB for a
    -- claims document, four times faster to compress than without it, and small enough for
    -- every server to hold the whole published generation in memory.
    claims_zst   bytea  NOT NULL,
    details_zst  bytea  NOT NULL,
    -- The dictionary both were compressed with; NULL for plain zstd (imports too small to
    -- train one).
    dictionary_run_id bigint,
    CONSTRAINT professional_record_pk PRIMARY KEY (national_id, run_id)
);

CREATE INDEX professional_record_run_ix ON professional_record (run_id);

-- zstd dictionaries, named by the run that trained them. Never deleted: records of any
-- later run may have been compressed with them.
CREATE TABLE compression_dictionary (
    run_id     bigint      NOT NULL CONSTRAINT compression_dictionary_pk PRIMARY KEY,
    dictionary bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per professional ever published, pointing at its current record. No foreign key
-- to professional_record: the publish transaction writes both sides set-wise, and checking
-- 1.7 M keys one by one would dominate the first import.
CREATE TABLE professional (
    national_id     text        NOT NULL CONSTRAINT professional_pk PRIMARY KEY,
    id_type         text        NOT NULL CONSTRAINT professional_id_type_ck CHECK (id_type IN ('0', '8')),
    record_run_id   bigint      NOT NULL,
    content_hash    bytea       NOT NULL,
    first_seen_at   timestamptz NOT NULL,
    last_changed_at timestamptz NOT NULL,
    -- Set when the professional is absent from the published extract; the last record
    -- stays so that "struck off since" can be answered.
    removed_at      timestamptz,
    removed_run_id  bigint
);

-- Professionals a run found gone (published but absent from its extract).
CREATE TABLE run_removal (
    run_id      bigint NOT NULL CONSTRAINT run_removal_run_fk REFERENCES import_run (id) ON DELETE CASCADE,
    national_id text   NOT NULL,
    CONSTRAINT run_removal_pk PRIMARY KEY (run_id, national_id)
);

-- MSSanté mailboxes, one set per run that read the file; the published set is the one of
-- publication.mailbox_run_id, older sets are deleted when a newer one is published. The
-- address is the only key of that file (duplicated lines are collapsed). No foreign key
-- to import_run, for the same reason as professional_record.
CREATE TABLE mailbox (
    run_id      bigint NOT NULL,
    address     text   NOT NULL,
    bal_type    text   NOT NULL,
    national_id text,
    -- The file's 31 values in canonical order.
    fields      text[] NOT NULL,
    CONSTRAINT mailbox_pk PRIMARY KEY (run_id, address)
);

CREATE INDEX mailbox_national_id_ix ON mailbox (national_id, run_id);

-- Staging for the run in progress. UNLOGGED: it is rebuilt by every run, a crash empties
-- it (which is what a failed run needs), and skipping the write-ahead log halves the cost
-- of the bulk load. `fields` holds the line's canonical values joined by `|`, which no
-- value can contain since it is the files' own separator.
CREATE UNLOGGED TABLE stage_line (
    file        smallint NOT NULL,
    line_no     bigint   NOT NULL,
    national_id text     NOT NULL,
    fields      text     NOT NULL
);

-- The professionals a run must build (added or changed), when they are a few among many:
-- joined with stage_line so that only their lines are sorted and read back.
CREATE UNLOGGED TABLE stage_build (
    national_id text NOT NULL
);
