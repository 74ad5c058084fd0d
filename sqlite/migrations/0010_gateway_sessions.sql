-- latch gateway: browser sessions of the backend-for-frontend. The id is
-- the SHA-256 of the cookie value; the tokens are sealed.
CREATE TABLE gateway_sessions (
	id                TEXT    PRIMARY KEY,
	subject           TEXT    NOT NULL,
	sid               TEXT    NOT NULL DEFAULT '',
	access_token      BLOB    NOT NULL,
	refresh_token     BLOB    NOT NULL,
	id_token          BLOB    NOT NULL,
	access_expires_at INTEGER NOT NULL,
	created_at        INTEGER NOT NULL,
	last_seen_at      INTEGER NOT NULL,
	expires_at        INTEGER NOT NULL,
	version           INTEGER NOT NULL DEFAULT 1,
	lease_owner       TEXT    NOT NULL DEFAULT '',
	lease_until       INTEGER NOT NULL DEFAULT 0,
	ended_at          INTEGER NOT NULL DEFAULT 0,
	end_reason        TEXT    NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;
CREATE INDEX gateway_sessions_sid ON gateway_sessions (sid) WHERE sid <> '';
CREATE INDEX gateway_sessions_subject ON gateway_sessions (subject);
CREATE INDEX gateway_sessions_expires ON gateway_sessions (expires_at);
