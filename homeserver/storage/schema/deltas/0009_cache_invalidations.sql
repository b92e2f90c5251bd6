-- The caches stream: every process records here what its writes made stale in other
-- processes' in-memory caches; the others read the rows back when told of a new position.
CREATE TABLE cache_invalidations (
    stream_id BIGINT NOT NULL,
    instance_name TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    keys TEXT NOT NULL,
    invalidation_ts BIGINT NOT NULL
);
CREATE INDEX cache_invalidations_by_writer ON cache_invalidations (instance_name, stream_id);
CREATE INDEX cache_invalidations_by_ts ON cache_invalidations (invalidation_ts);
