-- The key ring holds one chain of keys per family: 'access' signs access
-- tokens, 'id' signs id_tokens and logout tokens. Keys rotate within their
-- family, and a key is trusted only for its family's tokens. Every key
-- stored before this migration signed access tokens.
ALTER TABLE signing_keys ADD COLUMN family text NOT NULL DEFAULT 'access';
CREATE INDEX signing_keys_family ON signing_keys (family, not_before);
