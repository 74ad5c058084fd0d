-- How a browser client receives its tokens: bearer, cookie or memory.
ALTER TABLE clients ADD COLUMN delivery TEXT NOT NULL DEFAULT 'bearer'
	CHECK (delivery IN ('bearer', 'cookie', 'memory'));
