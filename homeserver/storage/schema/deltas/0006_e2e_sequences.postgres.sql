-- Positions of the to_device stream on PostgreSQL, shared by all of its writers.
CREATE SEQUENCE to_device_sequence;
