-- Positions of the receipts and presence streams on PostgreSQL, shared by all of their writers.
CREATE SEQUENCE receipts_sequence;
CREATE SEQUENCE presence_sequence;
