-- The account lifecycle: a verified email, locked accounts, and the
-- single-use tokens of verification and password-reset links (by SHA-256).
ALTER TABLE users ADD COLUMN email_verified_at timestamptz,
	ADD COLUMN locked_at timestamptz,
	ADD COLUMN lock_reason text NOT NULL DEFAULT '';

CREATE TABLE account_tokens (
	hash       bytea PRIMARY KEY,
	purpose    text  NOT NULL,
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email      text COLLATE "C" NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);

CREATE INDEX account_tokens_user ON account_tokens (user_id);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);
