-- The wire events a background run publishes while it runs, one row each (`seq` is the event's position
-- in its stream), so a stream opened on another replica can follow it. Rows are only appended, never
-- rewritten; they are read only while their response is live, and go with it (delete, or purge once it
-- has expired). A finished run keeps its whole stream in its response's body.
CREATE TABLE rosetta_events (
    team TEXT NOT NULL,
    response_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body JSONB NOT NULL,
    PRIMARY KEY (team, response_id, seq)
);
