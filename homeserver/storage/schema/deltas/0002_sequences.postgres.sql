CREATE SEQUENCE events_sequence;
CREATE SEQUENCE state_group_id_seq;
