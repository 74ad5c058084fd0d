-- Initial schema.
--
-- Times are timestamptz, which keeps microseconds; NULL stands for the zero
-- time.Time (an unset optional time: a session never rotated or revoked, a
-- key without NotAfter, a revocation without Cutoff). Times the domain always
-- sets are NOT NULL.
--
-- Identifiers use the "C" collation: they are compared and ordered byte by
-- byte, as in the SQLite store, whatever the database's default collation.

CREATE TABLE users (
	id            text COLLATE "C" PRIMARY KEY,
	email         text COLLATE "C" NOT NULL UNIQUE,
	password_hash text        NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);

CREATE TABLE sessions (
	id            text COLLATE "C" PRIMARY KEY,
	user_id       text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id     text        NOT NULL,
	user_agent    text        NOT NULL,
	ip            text        NOT NULL,
	created_at    timestamptz NOT NULL,
	auth_time     timestamptz NOT NULL,
	last_used_at  timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL,
	generation    bigint      NOT NULL,
	rotated_at    timestamptz,
	successor     bytea,
	revoked_at    timestamptz,
	revoke_reason text        NOT NULL DEFAULT ''
);

CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
-- ClearSuccessors runs every few seconds; only sessions rotated within the
-- grace window hold a successor, so this index stays small.
CREATE INDEX sessions_successor ON sessions (rotated_at) WHERE successor IS NOT NULL;

-- Every refresh token ever issued to a session, by hash; deleted with the
-- session. The unique (session_id, generation) index also serves the
-- cascade.
CREATE TABLE refresh_tokens (
	hash       bytea       PRIMARY KEY,
	session_id text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	generation bigint      NOT NULL,
	created_at timestamptz NOT NULL,
	UNIQUE (session_id, generation)
);

-- The revocation feed. seq comes from an identity sequence, so it is
-- strictly increasing and never reused, even after the newest entries were
-- pruned. CACHE 1 (the default, spelled out) matters: with a larger cache
-- each connection would hand out numbers from its own block, out of order
-- across connections. Sequence numbers are taken, and their transactions
-- committed, in order under a transaction-level advisory lock (see
-- lockFeed in the Go code), so that a reader following the feed with a
-- cursor never skips an entry.
CREATE TABLE revocations (
	seq        bigint      GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
	kind       text        NOT NULL CHECK (kind IN ('jti', 'sid', 'user')),
	value      text        NOT NULL,
	cutoff     timestamptz,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);

CREATE INDEX revocations_expires ON revocations (expires_at);

CREATE TABLE events (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	type       text        NOT NULL,
	at         timestamptz NOT NULL,
	user_id    text COLLATE "C" NOT NULL,
	session_id text        NOT NULL,
	client_id  text        NOT NULL,
	ip         text        NOT NULL,
	user_agent text        NOT NULL,
	detail     jsonb       CHECK (detail IS NULL OR jsonb_typeof(detail) = 'object')
);

CREATE INDEX events_user ON events (user_id, at);
CREATE INDEX events_at ON events (at);

-- The signing ring. Rotations serialise on a transaction-level advisory
-- lock (see lockRing in the Go code), which also covers the empty ring.
CREATE TABLE signing_keys (
	id          text COLLATE "C" PRIMARY KEY,
	algorithm   text        NOT NULL,
	private_key bytea       NOT NULL,
	public_key  bytea       NOT NULL,
	created_at  timestamptz NOT NULL,
	not_before  timestamptz NOT NULL,
	not_after   timestamptz
);
