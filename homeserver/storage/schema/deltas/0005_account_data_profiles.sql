-- Account data, profiles and the user directory's search index.

-- The account_data stream: the current content of each (user, room, type); room_id is ''
-- for global account data. A write replaces the row and moves it to a new stream position,
-- so the rows between two positions are exactly what changed between them.
CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    account_data_type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id, account_data_type)
);
CREATE INDEX account_data_stream ON account_data (stream_id);
CREATE INDEX account_data_user_stream ON account_data (user_id, stream_id);

-- Global profiles of local users.
CREATE TABLE profiles (
    user_id TEXT NOT NULL PRIMARY KEY,
    displayname TEXT,
    avatar_url TEXT
);

-- The words of each local user's id and display name, lower-cased, as ' w1 w2 ... '.
CREATE TABLE user_directory_search (
    user_id TEXT NOT NULL PRIMARY KEY,
    search_text TEXT NOT NULL
);
