-- access_expires_at: the latest exp of any access token issued from the
-- session, so that a revocation entry outlives every token it covers
-- whatever tokens.access_ttl says today. Existing sessions get the most
-- their tokens can have: their last use plus the longest lifetime allowed
-- (24h) plus the longest grace window (5m), capped by the session's end.
-- rotated_by: keyed hash of the device (client, user agent, IP network)
-- that made the current generation; grace_replays: replays of the previous
-- token answered since that rotation.
ALTER TABLE sessions ADD COLUMN access_expires_at timestamptz;
ALTER TABLE sessions ADD COLUMN rotated_by bytea;
ALTER TABLE sessions ADD COLUMN grace_replays integer NOT NULL DEFAULT 0;
UPDATE sessions SET access_expires_at = least(expires_at, last_used_at + interval '24 hours 5 minutes');
