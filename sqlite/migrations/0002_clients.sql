-- Registered OAuth clients: confidential (with a secret hash) or public.
CREATE TABLE clients (
	id          TEXT PRIMARY KEY,
	secret_hash TEXT NOT NULL DEFAULT '',
	scopes      TEXT NOT NULL DEFAULT '',   -- space-separated
	audience    TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
) STRICT;
