-- Sign-in alerts: the devices and places (countries, networks) each account
-- signed in from, and the alerts mailed for new ones with the hashes of
-- their two single-use links. Undo (down): DROP TABLE sign_in_alerts,
-- account_places, devices.
CREATE TABLE devices (
	id                text COLLATE "C" PRIMARY KEY,
	user_id           text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	cookie_id         text COLLATE "C" NOT NULL DEFAULT '',
	family            text NOT NULL,
	name              text NOT NULL DEFAULT '',
	browser           text NOT NULL DEFAULT '',
	os                text NOT NULL DEFAULT '',
	created_at        timestamptz NOT NULL,
	last_seen_at      timestamptz NOT NULL,
	last_ip           text NOT NULL DEFAULT '',
	last_country      text NOT NULL DEFAULT '',
	last_city         text NOT NULL DEFAULT '',
	last_lat          double precision NOT NULL DEFAULT 0,
	last_lon          double precision NOT NULL DEFAULT 0,
	last_accuracy_km  double precision NOT NULL DEFAULT 0,
	last_located      boolean NOT NULL DEFAULT false,
	last_asn          bigint NOT NULL DEFAULT 0,
	confirmed_at      timestamptz
);

CREATE INDEX devices_user ON devices (user_id, last_seen_at);
CREATE UNIQUE INDEX devices_cookie ON devices (user_id, cookie_id) WHERE cookie_id <> '';

CREATE TABLE account_places (
	user_id       text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind          text NOT NULL, -- 'country' or 'asn'
	value         text COLLATE "C" NOT NULL,
	first_seen_at timestamptz NOT NULL,
	last_seen_at  timestamptz NOT NULL,
	PRIMARY KEY (user_id, kind, value)
);

CREATE TABLE sign_in_alerts (
	id           text COLLATE "C" PRIMARY KEY,
	user_id      text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	device_id    text COLLATE "C" NOT NULL,
	me_hash      bytea NOT NULL UNIQUE,
	not_me_hash  bytea NOT NULL UNIQUE,
	created_at   timestamptz NOT NULL,
	expires_at   timestamptz NOT NULL,
	ip           text NOT NULL DEFAULT '',
	country      text NOT NULL DEFAULT '',
	city         text NOT NULL DEFAULT '',
	browser      text NOT NULL DEFAULT '',
	os           text NOT NULL DEFAULT '',
	answer       text NOT NULL DEFAULT '',
	answered_at  timestamptz
);

CREATE INDEX sign_in_alerts_user ON sign_in_alerts (user_id, created_at);
