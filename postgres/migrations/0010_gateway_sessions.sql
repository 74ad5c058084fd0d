-- latch gateway: browser sessions of the backend-for-frontend. The id is
-- the SHA-256 of the cookie value; the tokens are sealed.
CREATE TABLE gateway_sessions (
	id                text COLLATE "C" PRIMARY KEY,
	subject           text COLLATE "C" NOT NULL,
	sid               text COLLATE "C" NOT NULL DEFAULT '',
	access_token      bytea       NOT NULL,
	refresh_token     bytea       NOT NULL,
	id_token          bytea       NOT NULL,
	access_expires_at timestamptz NOT NULL,
	created_at        timestamptz NOT NULL,
	last_seen_at      timestamptz NOT NULL,
	expires_at        timestamptz NOT NULL,
	version           bigint      NOT NULL DEFAULT 1,
	lease_owner       text        NOT NULL DEFAULT '',
	lease_until       timestamptz,
	ended_at          timestamptz,
	end_reason        text        NOT NULL DEFAULT ''
);
CREATE INDEX gateway_sessions_sid ON gateway_sessions (sid) WHERE sid <> '';
CREATE INDEX gateway_sessions_subject ON gateway_sessions (subject);
CREATE INDEX gateway_sessions_expires ON gateway_sessions (expires_at);
