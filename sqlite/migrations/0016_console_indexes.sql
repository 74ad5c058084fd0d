-- The admin console's lists and counts (latch.ConsoleStore) read index
-- ranges only, so that they stay fast at a million events:
--   events_type_id, events_user_id, events_ip_id: one filter's events,
--     newest id first, a page at a time (keyset on id);
--   events_at_type replaces events_at (at): time ranges and Prune as
--     before, and CountEvents from the index alone (type is in it);
--   sessions_live: only sessions not revoked, by expiry, for
--     CountLiveSessions.
-- Users by email prefix use the UNIQUE index on email (0001).
-- Undo: DROP INDEX events_type_id, events_user_id, events_ip_id,
-- sessions_live, events_at_type; CREATE INDEX events_at ON events (at).
CREATE INDEX events_type_id ON events (type, id);
CREATE INDEX events_user_id ON events (user_id, id);
CREATE INDEX events_ip_id ON events (ip, id);
DROP INDEX events_at;
CREATE INDEX events_at_type ON events (at, type);
CREATE INDEX sessions_live ON sessions (expires_at) WHERE revoked_at = 0;
