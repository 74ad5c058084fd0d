-- Registered OAuth clients: confidential (with a secret hash) or public.
CREATE TABLE clients (
	id          text COLLATE "C" PRIMARY KEY,
	secret_hash text        NOT NULL DEFAULT '',
	scopes      text[]      NOT NULL DEFAULT '{}',
	audience    text        NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL
);
