-- Administrators: a role on users, and the one-time setup tokens that
-- create the first administrator (only the SHA-256 of a token is kept).
-- Undo: DROP TABLE setup_tokens; DROP INDEX users_role;
-- ALTER TABLE users DROP COLUMN role.
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT '';
CREATE INDEX users_role ON users (role) WHERE role <> '';

CREATE TABLE setup_tokens (
	hash       bytea PRIMARY KEY,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);
