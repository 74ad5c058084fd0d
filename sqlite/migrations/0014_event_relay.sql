-- Security events reach webhooks through the outbox: each event is
-- recorded unpublished (the column's default, whatever inserts it) and a
-- relay publishes it once (latch.EventRelayStore). Events recorded before
-- this migration are history, not news: they are marked published.
ALTER TABLE events ADD COLUMN published INTEGER NOT NULL DEFAULT 0;
UPDATE events SET published = 1;

-- The relay reads only the unpublished events, in id order: the partial
-- index holds those alone, however many millions of events are kept.
CREATE INDEX events_unpublished ON events (id) WHERE published = 0;
