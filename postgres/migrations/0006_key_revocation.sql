-- A signing key can be revoked (a suspected compromise): it then never
-- signs, is never published and is never trusted. NULL means not revoked.
ALTER TABLE signing_keys ADD COLUMN revoked_at timestamptz;

-- The version of the key ring, moved by every rotation and revocation, so
-- that instances notice a changed ring with one cheap read.
CREATE TABLE key_ring_version (
	id      integer PRIMARY KEY CHECK (id = 1),
	version bigint  NOT NULL
);
INSERT INTO key_ring_version (id, version) VALUES (1, 0);

-- The feed gains entries of kind 'kid' (a revoked signing key).
ALTER TABLE revocations DROP CONSTRAINT revocations_kind_check,
	ADD CONSTRAINT revocations_kind_check CHECK (kind IN ('jti', 'sid', 'user', 'kid'));
