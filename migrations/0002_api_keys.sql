-- API keys of the clients (identity providers, admin tools). Only a SHA-256 of each key is
-- kept: the key itself is shown once, at creation. Keys are 256-bit random strings, so a
-- fast unsalted hash is enough: there is no dictionary to attack.
CREATE TABLE api_key (
    id         bigserial   CONSTRAINT api_key_pk PRIMARY KEY,
    name       text        NOT NULL,
    scopes     text[]      NOT NULL CONSTRAINT api_key_scopes_ck
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['claims', 'search', 'admin']),
    key_hash   bytea       NOT NULL CONSTRAINT api_key_hash_uq UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- One active key per client name, so that `keys revoke <name>` means one thing; a client
-- rotating its key creates the new one under another name (e.g. idp-2026-11).
CREATE UNIQUE INDEX api_key_active_name_uq ON api_key (name) WHERE revoked_at IS NULL;
