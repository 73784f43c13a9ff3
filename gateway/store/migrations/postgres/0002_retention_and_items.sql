-- Retention: when a response expires (NULL = kept until deleted).
ALTER TABLE rosetta_responses ADD COLUMN expires_at TIMESTAMPTZ;
CREATE INDEX rosetta_responses_expires_at ON rosetta_responses (expires_at) WHERE expires_at IS NOT NULL;

-- The item index behind `item_reference` inputs: each item belongs to the response that introduced it
-- and expires with it.
CREATE TABLE rosetta_items (
    team TEXT NOT NULL,
    item_id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    body JSONB NOT NULL,
    expires_at TIMESTAMPTZ,
    PRIMARY KEY (team, item_id)
);
CREATE INDEX rosetta_items_response ON rosetta_items (team, response_id);
CREATE INDEX rosetta_items_expires_at ON rosetta_items (expires_at) WHERE expires_at IS NOT NULL;
