-- Security events reach webhooks through the outbox: each event is
-- recorded unpublished (the column's default, whatever inserts it) and a
-- relay publishes it once (latch.EventRelayStore). Events recorded before
-- this migration are history, not news: they take the column's first
-- default, true, without a table rewrite (PostgreSQL 11 and later store it
-- as the missing value), and new rows the second, false.
ALTER TABLE events ADD COLUMN published boolean NOT NULL DEFAULT true;
ALTER TABLE events ALTER COLUMN published SET DEFAULT false;

-- The relay reads only the unpublished events, in id order: the partial
-- index holds those alone, however many millions of events are kept.
CREATE INDEX events_unpublished ON events (id) WHERE NOT published;
