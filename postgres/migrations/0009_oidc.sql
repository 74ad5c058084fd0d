-- OpenID Connect: client registration, SSO sessions, authorization codes,
-- consents and the durable outbox.

ALTER TABLE clients
	ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}',
	ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
	ADD COLUMN backchannel_logout_uri text NOT NULL DEFAULT '',
	ADD COLUMN first_party boolean NOT NULL DEFAULT false,
	ADD COLUMN id_token_alg text NOT NULL DEFAULT '';

-- A refresh family records the SSO session it came from ('' for the JSON
-- API) and its granted scope.
ALTER TABLE sessions
	ADD COLUMN sso_session_id text COLLATE "C" NOT NULL DEFAULT '',
	ADD COLUMN scope text NOT NULL DEFAULT '';
CREATE INDEX sessions_sso ON sessions (sso_session_id) WHERE sso_session_id <> '';

-- The provider's own browser sessions, distinct from refresh families.
CREATE TABLE sso_sessions (
	id            text COLLATE "C" PRIMARY KEY,
	user_id       text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	auth_time     timestamptz NOT NULL,
	amr           text[]      NOT NULL DEFAULT '{}',
	user_agent    text        NOT NULL,
	ip            text        NOT NULL,
	created_at    timestamptz NOT NULL,
	last_seen_at  timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL,
	revoked_at    timestamptz,
	revoke_reason text        NOT NULL DEFAULT ''
);
CREATE INDEX sso_sessions_user ON sso_sessions (user_id);
CREATE INDEX sso_sessions_expires ON sso_sessions (expires_at);

-- The clients issued tokens in an SSO session: told by back-channel
-- logout when it ends.
CREATE TABLE sso_clients (
	sso_session_id text COLLATE "C" NOT NULL REFERENCES sso_sessions (id) ON DELETE CASCADE,
	client_id      text COLLATE "C" NOT NULL,
	first_at       timestamptz NOT NULL,
	last_at        timestamptz NOT NULL,
	PRIMARY KEY (sso_session_id, client_id)
);

-- Authorization codes by the SHA-256 of the code.
CREATE TABLE authorization_codes (
	hash           bytea       PRIMARY KEY,
	client_id      text        NOT NULL,
	redirect_uri   text        NOT NULL,
	user_id        text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	sso_session_id text        NOT NULL DEFAULT '',
	scope          text        NOT NULL DEFAULT '',
	nonce          text        NOT NULL DEFAULT '',
	code_challenge text        NOT NULL DEFAULT '',
	auth_time      timestamptz NOT NULL,
	amr            text[]      NOT NULL DEFAULT '{}',
	created_at     timestamptz NOT NULL,
	expires_at     timestamptz NOT NULL,
	redeemed_at    timestamptz,
	session_id     text        NOT NULL DEFAULT '',
	reused_at      timestamptz
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
CREATE INDEX authorization_codes_user ON authorization_codes (user_id);

CREATE TABLE consents (
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  text COLLATE "C" NOT NULL,
	scopes     text[]      NOT NULL DEFAULT '{}',
	granted_at timestamptz NOT NULL,
	PRIMARY KEY (user_id, client_id)
);

-- The durable outbox. key deduplicates (NULL: no deduplication); a
-- message is leased to lease_owner until lease_until. ClaimOutbox locks
-- due rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE outbox (
	id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind         text        NOT NULL,
	key          text        UNIQUE,
	payload      bytea       NOT NULL,
	created_at   timestamptz NOT NULL,
	not_before   timestamptz NOT NULL,
	attempts     integer     NOT NULL DEFAULT 0,
	last_error   text        NOT NULL DEFAULT '',
	lease_owner  text        NOT NULL DEFAULT '',
	lease_until  timestamptz,
	delivered_at timestamptz,
	failed_at    timestamptz
);
CREATE INDEX outbox_due ON outbox (not_before, id) WHERE delivered_at IS NULL AND failed_at IS NULL;
