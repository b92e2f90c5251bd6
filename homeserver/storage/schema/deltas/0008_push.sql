-- Push rules, the push_rules stream, and the push actions computed for each event.

-- The rules each user created (server-default rules, whose ids start with '.', live in code).
-- Within (user_id, kind) a higher priority is more important.
CREATE TABLE push_rules (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    priority BIGINT NOT NULL,
    -- JSON arrays; conditions are '[]' for content, room and sender rules.
    conditions TEXT NOT NULL,
    pattern TEXT,
    actions TEXT NOT NULL,
    enabled SMALLINT NOT NULL,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- A user's changes to server-default rules; NULL keeps the default value.
CREATE TABLE push_rule_default_changes (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    enabled SMALLINT,
    actions TEXT,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- The push_rules stream: one row per change to a user's rules (op: put, delete, enabled, actions).
CREATE TABLE push_rules_stream (
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    op TEXT NOT NULL
);
CREATE INDEX push_rules_stream_id ON push_rules_stream (stream_id);
CREATE INDEX push_rules_stream_user ON push_rules_stream (user_id, stream_id);

-- What a local user's push rules made of an event, for events that notify or highlight.
CREATE TABLE event_push_actions (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    -- JSON array: the actions of the rule that matched.
    actions TEXT NOT NULL,
    notify SMALLINT NOT NULL,
    highlight SMALLINT NOT NULL,
    -- The thread root's event id, or 'main'.
    thread_id TEXT NOT NULL,
    received_ts BIGINT NOT NULL,
    PRIMARY KEY (user_id, event_id)
);
CREATE INDEX event_push_actions_user_room ON event_push_actions (user_id, room_id, stream_ordering);
CREATE INDEX event_push_actions_user_stream ON event_push_actions (user_id, stream_ordering);
