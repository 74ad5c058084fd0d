-- A signing key can be revoked (a suspected compromise): it then never
-- signs, is never published and is never trusted. 0 means not revoked.
ALTER TABLE signing_keys ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;

-- The version of the key ring, moved by every rotation and revocation, so
-- that instances notice a changed ring with one cheap read.
CREATE TABLE key_ring_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
) STRICT;
INSERT INTO key_ring_version (id, version) VALUES (1, 0);

-- The feed gains entries of kind 'kid' (a revoked signing key). SQLite
-- cannot change a CHECK constraint, so the table is rebuilt; its
-- AUTOINCREMENT counter is carried over, so that no seq is ever reused,
-- not even one whose entry was pruned.
CREATE TABLE revocations_next (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	kind       TEXT    NOT NULL CHECK (kind IN ('jti', 'sid', 'user', 'kid')),
	value      TEXT    NOT NULL,
	cutoff     INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
INSERT INTO revocations_next (seq, kind, value, cutoff, created_at, expires_at)
	SELECT seq, kind, value, cutoff, created_at, expires_at FROM revocations;
DELETE FROM sqlite_sequence WHERE name = 'revocations_next';
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'revocations_next', seq FROM sqlite_sequence WHERE name = 'revocations';
DROP TABLE revocations;
ALTER TABLE revocations_next RENAME TO revocations;
CREATE INDEX revocations_expires ON revocations (expires_at);
