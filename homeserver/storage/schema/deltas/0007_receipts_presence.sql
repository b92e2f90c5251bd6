-- Read receipts and presence: the receipts and presence streams.

-- The receipts stream: the latest receipt of each (room, type, user, thread); thread_id is ''
-- for an unthreaded receipt. A newer receipt replaces the row and moves it to a new stream
-- position, so the rows between two positions are the receipts sent in between.
-- event_stream_ordering is the position of the acknowledged event in the events stream: a
-- receipt for an earlier event never replaces one for a later event.
CREATE TABLE receipts (
    room_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_stream_ordering BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_stream ON receipts (stream_id);
CREATE INDEX receipts_room_stream ON receipts (room_id, stream_id);
CREATE INDEX receipts_user_room ON receipts (user_id, room_id);

-- The presence stream: the latest presence of each user who ever had one. A change worth
-- telling other users about moves the row to a new stream position; the presence writer
-- also refreshes the timestamps in place (without a new position) every minute and at
-- shutdown, so that its timers survive a restart.
CREATE TABLE presence_stream (
    user_id TEXT NOT NULL PRIMARY KEY,
    state TEXT NOT NULL,
    status_msg TEXT,
    last_active_ts BIGINT NOT NULL,
    last_user_sync_ts BIGINT NOT NULL,
    currently_active SMALLINT NOT NULL,
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL
);
CREATE INDEX presence_stream_id ON presence_stream (stream_id);
CREATE INDEX presence_stream_state ON presence_stream (state);
