-- Step-up challenges: sign-ins held back until a code sent by email is
-- entered. Only the SHA-256 of the challenge ID and a keyed MAC of the
-- code are kept. Undo: DROP TABLE challenges.
CREATE TABLE challenges (
	id_hash    bytea PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  text COLLATE "C" NOT NULL,
	auth_time  timestamptz NOT NULL,
	amr        text NOT NULL,
	ip         text NOT NULL,
	user_agent text NOT NULL,
	device_id  text NOT NULL,
	code_mac   bytea NOT NULL,
	attempts   integer NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);

CREATE INDEX challenges_user_created ON challenges (user_id, created_at);
CREATE INDEX challenges_expires ON challenges (expires_at);
