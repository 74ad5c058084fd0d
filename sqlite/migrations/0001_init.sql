-- Initial schema. Times are INTEGER microseconds since the Unix epoch (UTC);
-- 0 stands for the zero time.Time (an unset optional time).

CREATE TABLE users (
	id            TEXT    PRIMARY KEY,
	email         TEXT    NOT NULL UNIQUE,
	password_hash TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
	id            TEXT    PRIMARY KEY,
	user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id     TEXT    NOT NULL,
	user_agent    TEXT    NOT NULL,
	ip            TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	auth_time     INTEGER NOT NULL,
	last_used_at  INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	generation    INTEGER NOT NULL,
	rotated_at    INTEGER NOT NULL DEFAULT 0,
	successor     BLOB,
	revoked_at    INTEGER NOT NULL DEFAULT 0,
	revoke_reason TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Every refresh token ever issued to a session, by hash; deleted with the
-- session.
CREATE TABLE refresh_tokens (
	hash       BLOB    PRIMARY KEY,
	session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	generation INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (session_id, generation)
) STRICT, WITHOUT ROWID;

-- AUTOINCREMENT: seq is strictly increasing and never reused, even after
-- the newest entries were pruned, so feed cursors stay valid.
CREATE TABLE revocations (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	kind       TEXT    NOT NULL CHECK (kind IN ('jti', 'sid', 'user')),
	value      TEXT    NOT NULL,
	cutoff     INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX revocations_expires ON revocations (expires_at);

CREATE TABLE events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	type       TEXT    NOT NULL,
	at         INTEGER NOT NULL,
	user_id    TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	ip         TEXT    NOT NULL,
	user_agent TEXT    NOT NULL,
	detail     TEXT    CHECK (detail IS NULL OR json_valid(detail))
) STRICT;

CREATE INDEX events_user ON events (user_id, at);
CREATE INDEX events_at ON events (at);

CREATE TABLE signing_keys (
	id          TEXT    PRIMARY KEY,
	algorithm   TEXT    NOT NULL,
	private_key BLOB    NOT NULL,
	public_key  BLOB    NOT NULL,
	created_at  INTEGER NOT NULL,
	not_before  INTEGER NOT NULL,
	not_after   INTEGER NOT NULL DEFAULT 0
) STRICT;
