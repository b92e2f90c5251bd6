-- Positions of the push_rules stream.
CREATE SEQUENCE push_rules_sequence;
