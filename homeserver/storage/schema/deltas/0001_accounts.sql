-- Accounts, devices, access tokens, user-interactive auth sessions, stream bookkeeping.
CREATE TABLE users (
    user_id TEXT NOT NULL PRIMARY KEY,
    password_hash TEXT,
    creation_ts BIGINT NOT NULL,
    admin SMALLINT NOT NULL DEFAULT 0,
    deactivated SMALLINT NOT NULL DEFAULT 0,
    is_guest SMALLINT NOT NULL DEFAULT 0,
    user_type TEXT
);
-- User ids are unique regardless of case.
CREATE UNIQUE INDEX users_lower_user_id ON users (lower(user_id));

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    last_seen_ts BIGINT,
    last_seen_ip TEXT,
    last_seen_user_agent TEXT,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    token TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT,
    created_ts BIGINT NOT NULL,
    valid_until_ms BIGINT
);
CREATE INDEX access_tokens_user_device ON access_tokens (user_id, device_id);

CREATE TABLE ui_auth_sessions (
    session_id TEXT NOT NULL PRIMARY KEY,
    creation_ts BIGINT NOT NULL,
    uri TEXT NOT NULL,
    method TEXT NOT NULL,
    clientdict TEXT NOT NULL,
    -- What the server keeps between steps (e.g. a password hash); never shown to clients.
    serverdict TEXT NOT NULL DEFAULT '{}',
    description TEXT NOT NULL
);

CREATE TABLE ui_auth_sessions_credentials (
    session_id TEXT NOT NULL,
    stage_type TEXT NOT NULL,
    result TEXT NOT NULL,
    UNIQUE (session_id, stage_type)
);

CREATE TABLE registration_nonces (
    nonce TEXT NOT NULL PRIMARY KEY,
    created_ts BIGINT NOT NULL
);

-- How far each writer of each stream has persisted without gaps.
CREATE TABLE stream_positions (
    stream_name TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (stream_name, instance_name)
);

-- The device_lists stream: one row per change to a user's devices.
CREATE TABLE device_lists_stream (
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL
);
CREATE INDEX device_lists_stream_id ON device_lists_stream (stream_id);
CREATE INDEX device_lists_stream_user ON device_lists_stream (user_id, stream_id);
