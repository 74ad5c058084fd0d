-- What a client may do beyond the OAuth grants (read-revocations: read
-- the revocation feed). Until now every confidential client could read
-- the feed: existing confidential clients keep that permission, so that
-- upgrades keep working; new clients get it only when registered with
-- --can read-revocations.
ALTER TABLE clients ADD COLUMN permissions text[] NOT NULL DEFAULT '{}';
UPDATE clients SET permissions = ARRAY['read-revocations'] WHERE secret_hash <> '';
