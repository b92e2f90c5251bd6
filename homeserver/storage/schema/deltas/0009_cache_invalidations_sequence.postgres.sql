-- Positions of the caches stream (every process writes it).
CREATE SEQUENCE cache_invalidations_sequence;
