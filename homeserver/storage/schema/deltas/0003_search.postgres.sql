-- Full-text search over message bodies, room names and topics.
CREATE TABLE event_search (
    event_id TEXT NOT NULL PRIMARY KEY,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    key TEXT NOT NULL,
    vector tsvector NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_search_vector ON event_search USING GIN (vector);
CREATE INDEX event_search_room ON event_search (room_id, stream_ordering);
