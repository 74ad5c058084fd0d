-- OpenID Connect: client registration, SSO sessions, authorization codes,
-- consents and the durable outbox. Lists are JSON arrays of strings.

ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(redirect_uris));
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(post_logout_redirect_uris));
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT '';

-- A refresh family records the SSO session it came from ('' for the JSON
-- API) and its granted scope.
ALTER TABLE sessions ADD COLUMN sso_session_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN scope TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_sso ON sessions (sso_session_id) WHERE sso_session_id <> '';

-- The provider's own browser sessions, distinct from refresh families.
CREATE TABLE sso_sessions (
	id            TEXT    PRIMARY KEY,
	user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	auth_time     INTEGER NOT NULL,
	amr           TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(amr)),
	user_agent    TEXT    NOT NULL,
	ip            TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	last_seen_at  INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	revoked_at    INTEGER NOT NULL DEFAULT 0,
	revoke_reason TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX sso_sessions_user ON sso_sessions (user_id);
CREATE INDEX sso_sessions_expires ON sso_sessions (expires_at);

-- The clients issued tokens in an SSO session: told by back-channel
-- logout when it ends.
CREATE TABLE sso_clients (
	sso_session_id TEXT    NOT NULL REFERENCES sso_sessions (id) ON DELETE CASCADE,
	client_id      TEXT    NOT NULL,
	first_at       INTEGER NOT NULL,
	last_at        INTEGER NOT NULL,
	PRIMARY KEY (sso_session_id, client_id)
) STRICT, WITHOUT ROWID;

-- Authorization codes by the SHA-256 of the code.
CREATE TABLE authorization_codes (
	hash           BLOB    PRIMARY KEY,
	client_id      TEXT    NOT NULL,
	redirect_uri   TEXT    NOT NULL,
	user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	sso_session_id TEXT    NOT NULL DEFAULT '',
	scope          TEXT    NOT NULL DEFAULT '',
	nonce          TEXT    NOT NULL DEFAULT '',
	code_challenge TEXT    NOT NULL DEFAULT '',
	auth_time      INTEGER NOT NULL,
	amr            TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(amr)),
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	redeemed_at    INTEGER NOT NULL DEFAULT 0,
	session_id     TEXT    NOT NULL DEFAULT '',
	reused_at      INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

CREATE TABLE consents (
	user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	client_id  TEXT    NOT NULL,
	scopes     TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
	granted_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id)
) STRICT, WITHOUT ROWID;

-- The durable outbox. key deduplicates (NULL: no deduplication); a
-- message is leased to lease_owner until lease_until.
CREATE TABLE outbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	kind         TEXT    NOT NULL,
	key          TEXT    UNIQUE,
	payload      BLOB    NOT NULL,
	created_at   INTEGER NOT NULL,
	not_before   INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT    NOT NULL DEFAULT '',
	lease_owner  TEXT    NOT NULL DEFAULT '',
	lease_until  INTEGER NOT NULL DEFAULT 0,
	delivered_at INTEGER NOT NULL DEFAULT 0,
	failed_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX outbox_due ON outbox (not_before, id) WHERE delivered_at = 0 AND failed_at = 0;
