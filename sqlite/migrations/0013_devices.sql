-- Sign-in alerts: the devices and places (countries, networks) each account
-- signed in from, and the alerts mailed for new ones with the hashes of
-- their two single-use links. Undo (down): DROP TABLE sign_in_alerts;
-- DROP TABLE account_places; DROP TABLE devices.
CREATE TABLE devices (
	id                TEXT    PRIMARY KEY,
	user_id           TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	cookie_id         TEXT    NOT NULL DEFAULT '',
	family            TEXT    NOT NULL,
	name              TEXT    NOT NULL DEFAULT '',
	browser           TEXT    NOT NULL DEFAULT '',
	os                TEXT    NOT NULL DEFAULT '',
	created_at        INTEGER NOT NULL,
	last_seen_at      INTEGER NOT NULL,
	last_ip           TEXT    NOT NULL DEFAULT '',
	last_country      TEXT    NOT NULL DEFAULT '',
	last_city         TEXT    NOT NULL DEFAULT '',
	last_lat          REAL    NOT NULL DEFAULT 0,
	last_lon          REAL    NOT NULL DEFAULT 0,
	last_accuracy_km  REAL    NOT NULL DEFAULT 0,
	last_located      INTEGER NOT NULL DEFAULT 0,
	last_asn          INTEGER NOT NULL DEFAULT 0,
	confirmed_at      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX devices_user ON devices (user_id, last_seen_at);
CREATE UNIQUE INDEX devices_cookie ON devices (user_id, cookie_id) WHERE cookie_id <> '';

CREATE TABLE account_places (
	user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind          TEXT    NOT NULL, -- 'country' or 'asn'
	value         TEXT    NOT NULL,
	first_seen_at INTEGER NOT NULL,
	last_seen_at  INTEGER NOT NULL,
	PRIMARY KEY (user_id, kind, value)
) STRICT, WITHOUT ROWID;

CREATE TABLE sign_in_alerts (
	id           TEXT    PRIMARY KEY,
	user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	device_id    TEXT    NOT NULL,
	me_hash      BLOB    NOT NULL UNIQUE,
	not_me_hash  BLOB    NOT NULL UNIQUE,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	ip           TEXT    NOT NULL DEFAULT '',
	country      TEXT    NOT NULL DEFAULT '',
	city         TEXT    NOT NULL DEFAULT '',
	browser      TEXT    NOT NULL DEFAULT '',
	os           TEXT    NOT NULL DEFAULT '',
	answer       TEXT    NOT NULL DEFAULT '',
	answered_at  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX sign_in_alerts_user ON sign_in_alerts (user_id, created_at);
