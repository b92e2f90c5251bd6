-- Stream positions on PostgreSQL come from sequences so several writers can share a stream.
CREATE SEQUENCE device_lists_sequence;
