-- Positions of the account_data stream, shared by its writers.
CREATE SEQUENCE account_data_sequence;
