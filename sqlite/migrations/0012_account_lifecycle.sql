-- The account lifecycle: a verified email, locked accounts, and the
-- single-use tokens of verification and password-reset links (by SHA-256).
ALTER TABLE users ADD COLUMN email_verified_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN lock_reason TEXT NOT NULL DEFAULT '';

CREATE TABLE account_tokens (
	hash       BLOB    PRIMARY KEY,
	purpose    TEXT    NOT NULL,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX account_tokens_user ON account_tokens (user_id);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);
