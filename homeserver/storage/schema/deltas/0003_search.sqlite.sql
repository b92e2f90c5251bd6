-- Full-text search over message bodies, room names and topics (FTS5).
CREATE VIRTUAL TABLE event_search USING fts5 (
    value,
    event_id UNINDEXED,
    room_id UNINDEXED,
    sender UNINDEXED,
    key UNINDEXED,
    origin_server_ts UNINDEXED,
    stream_ordering UNINDEXED,
    tokenize = 'porter unicode61'
);
