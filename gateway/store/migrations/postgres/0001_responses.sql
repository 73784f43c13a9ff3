CREATE TABLE IF NOT EXISTS rosetta_responses (
    team TEXT NOT NULL,
    id TEXT NOT NULL,
    body JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (team, id)
);
