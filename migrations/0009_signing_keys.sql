-- The ES256 keys that sign claims for relying parties (`Accept: application/jwt`). Every
-- replica signs with the same key: the newest whose `activates_at` has passed. A rotated key
-- is published in the JWKS at once and signs only from `activates_at`, so that cached JWKS
-- know it first; a superseded key stays published until the tokens it signed expire.
CREATE TABLE signing_key (
    -- The RFC 7638 thumbprint of the public key.
    kid          text        CONSTRAINT signing_key_pk PRIMARY KEY,
    public_jwk   jsonb       NOT NULL,
    -- PKCS#8; when `sealed`, AES-256-GCM under ANNUAIRE_SIGNING_KEY_SECRET (nonce, then
    -- ciphertext and tag), the kid as associated data.
    private_key  bytea       NOT NULL,
    sealed       boolean     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    activates_at timestamptz NOT NULL
);
