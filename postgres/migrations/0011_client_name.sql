-- A client's display name (OpenID Connect Registration's client_name),
-- shown on the consent page and the account page; empty shows the id.
ALTER TABLE clients ADD COLUMN name text NOT NULL DEFAULT '';
