-- To-device messages, end-to-end encryption keys (device keys, one-time and fallback keys,
-- cross-signing keys and signatures) and server-side key backups.

-- The to_device stream: one row per sendToDevice request. It is also the request's
-- idempotency record, and, since rows are kept after delivery, where a restarted SQLite
-- process finds the highest position it has allocated.
CREATE TABLE to_device_sends (
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    sender TEXT NOT NULL,
    -- The sender's device id, or its access token when it has no device.
    scope TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    inserted_ts BIGINT NOT NULL,
    PRIMARY KEY (sender, scope, txn_id)
);
CREATE INDEX to_device_sends_stream ON to_device_sends (stream_id);

-- Messages waiting for a device: deleted once a sync acknowledges them.
CREATE TABLE device_inbox (
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    message_type TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX device_inbox_recipient ON device_inbox (user_id, device_id, stream_id);
CREATE INDEX device_inbox_stream ON device_inbox (stream_id);

CREATE TABLE e2e_device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    ts_added_ms BIGINT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE e2e_one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    ts_added_ms BIGINT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id)
);

-- At most one fallback key per device and algorithm; `used` once handed out by a claim.
CREATE TABLE e2e_fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, algorithm)
);

-- The current master, self_signing and user_signing key of each user.
CREATE TABLE e2e_cross_signing_keys (
    user_id TEXT NOT NULL,
    keytype TEXT NOT NULL,
    key_json TEXT NOT NULL,
    -- The device_lists stream position of the upload.
    stream_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, keytype)
);

-- Signatures uploaded separately from the keys they sign. `user_id` made the signature with
-- key `key_id`; the target is a device of target_user_id, or one of its cross-signing keys
-- (target_device_id is then the key's public key).
CREATE TABLE e2e_cross_signing_signatures (
    user_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL,
    target_device_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (target_user_id, target_device_id, user_id, key_id)
);

-- Which users a user signed with their user-signing key, at which device_lists position:
-- the signer's own devices see the target in device_lists.changed.
CREATE TABLE e2e_user_signature_stream (
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    from_user_id TEXT NOT NULL,
    target_user_id TEXT NOT NULL
);
CREATE INDEX e2e_user_signature_stream_from ON e2e_user_signature_stream (from_user_id, stream_id);

-- Server-side key backups: versions are numbered per user and never reused.
CREATE TABLE e2e_room_keys_versions (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,
    etag BIGINT NOT NULL DEFAULT 0,
    deleted SMALLINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE e2e_room_keys (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count BIGINT NOT NULL,
    is_verified SMALLINT NOT NULL,
    session_data TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id)
);
