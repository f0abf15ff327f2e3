-- A payout batch reads one unit's people; without this it read the whole county's roster.
CREATE INDEX roster_unit ON roster (program, unit_code);
