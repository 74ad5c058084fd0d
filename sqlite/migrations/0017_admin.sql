-- Administrators: a role on users, and the one-time setup tokens that
-- create the first administrator (only the SHA-256 of a token is kept).
-- Undo: DROP TABLE setup_tokens; DROP INDEX users_role;
-- ALTER TABLE users DROP COLUMN role.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT '';
CREATE INDEX users_role ON users (role) WHERE role <> '';

CREATE TABLE setup_tokens (
	hash       BLOB    PRIMARY KEY,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
