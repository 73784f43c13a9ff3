-- Retention: when a response expires (epoch seconds; NULL = kept until deleted).
ALTER TABLE responses ADD COLUMN expires_at REAL;
CREATE INDEX responses_expires_at ON responses (expires_at) WHERE expires_at IS NOT NULL;

-- The item index behind `item_reference` inputs: each item belongs to the response that introduced it
-- and expires with it.
CREATE TABLE items (
    team TEXT NOT NULL,
    item_id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    body BLOB NOT NULL,
    expires_at REAL,
    PRIMARY KEY (team, item_id)
);
CREATE INDEX items_response ON items (team, response_id);
CREATE INDEX items_expires_at ON items (expires_at) WHERE expires_at IS NOT NULL;
