-- Webhook URLs may carry credentials (`https://user:pass@host/`, `?token=`), and 0007 stored
-- them whole in every table of the outbox. From now on the store never holds a URL: an
-- endpoint is named by the hex SHA-256 of its full URL (`url_sha256`), which the sender
-- computes from its configuration, the one place the URL is kept, and `webhook_endpoint`
-- keeps a redacted text for people to read. The rows already stored are converted here:
-- their keys are computed from the stored URLs (the same bytes the sender hashes, so pending
-- deliveries carry on) and their texts are redacted as the sender redacts a URL (password
-- or lone user name, every query value, the fragment); the sender rewrites the text of each
-- endpoint still configured when it starts.

CREATE FUNCTION pg_temp.redacted_0010(url text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT regexp_replace(
               -- `user:password@` → `user:***@` (the last `@` before the path ends it) ...
               regexp_replace(p[1], '^([^:/?#]+://[^:/?#@]*):[^/?#]*@', '\1:***@'),
               -- ... and a user name alone, often a token, → `***@`.
               '^([^:/?#]+://)[^:/?#]+@', '\1***@')
        || coalesce('?' || (
               SELECT string_agg(
                          CASE WHEN piece = '' THEN ''
                               WHEN strpos(piece, '=') > 0 THEN split_part(piece, '=', 1) || '=***'
                               ELSE '***' END,
                          '&' ORDER BY n)
               FROM unnest(string_to_array(p[2], '&')) WITH ORDINALITY AS q (piece, n)), '')
        || CASE WHEN p[3] IS NULL THEN '' ELSE '#***' END
    FROM regexp_match(url, '^([^?#]*)(?:\?([^#]*))?(#.*)?$') AS p
$$;

-- The attempts' foreign key comes back once both sides hold keys.
ALTER TABLE webhook_attempt DROP CONSTRAINT webhook_attempt_delivery_fk;

ALTER TABLE webhook_endpoint DROP CONSTRAINT webhook_endpoint_pk;
ALTER TABLE webhook_endpoint ADD COLUMN url_sha256 text;
UPDATE webhook_endpoint
SET url_sha256 = encode(sha256(convert_to(url, 'UTF8')), 'hex'),
    url = pg_temp.redacted_0010(url);
ALTER TABLE webhook_endpoint RENAME COLUMN url TO redacted_url;
ALTER TABLE webhook_endpoint
    ALTER COLUMN url_sha256 SET NOT NULL,
    ADD CONSTRAINT webhook_endpoint_pk PRIMARY KEY (url_sha256),
    -- A key, never a URL.
    ADD CONSTRAINT webhook_endpoint_key_ck CHECK (url_sha256 ~ '^[0-9a-f]{64}$');

UPDATE webhook_delivery SET url = encode(sha256(convert_to(url, 'UTF8')), 'hex');
ALTER TABLE webhook_delivery RENAME COLUMN url TO url_sha256;
ALTER TABLE webhook_delivery ADD CONSTRAINT webhook_delivery_key_ck CHECK (url_sha256 ~ '^[0-9a-f]{64}$');

UPDATE webhook_attempt SET url = encode(sha256(convert_to(url, 'UTF8')), 'hex');
ALTER TABLE webhook_attempt RENAME COLUMN url TO url_sha256;
ALTER TABLE webhook_attempt ADD CONSTRAINT webhook_attempt_delivery_fk FOREIGN KEY (run_id, url_sha256)
    REFERENCES webhook_delivery (run_id, url_sha256) ON DELETE CASCADE;

-- Each endpoint has its own queue, worked through in event order: the sender reads the head
-- of one endpoint's queue, no longer every due delivery by time.
DROP INDEX webhook_delivery_due_ix;
CREATE INDEX webhook_delivery_queue_ix ON webhook_delivery (url_sha256, run_id) WHERE delivered_at IS NULL;

DROP FUNCTION pg_temp.redacted_0010(text);
