-- Step-up challenges: sign-ins held back until a code sent by email is
-- entered. Only the SHA-256 of the challenge ID and a keyed MAC of the
-- code are kept. Undo: DROP TABLE challenges.
CREATE TABLE challenges (
	id_hash    BLOB    PRIMARY KEY,
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  TEXT    NOT NULL,
	auth_time  INTEGER NOT NULL,
	amr        TEXT    NOT NULL,
	ip         TEXT    NOT NULL,
	user_agent TEXT    NOT NULL,
	device_id  TEXT    NOT NULL,
	code_mac   BLOB    NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX challenges_user_created ON challenges (user_id, created_at);
CREATE INDEX challenges_expires ON challenges (expires_at);
