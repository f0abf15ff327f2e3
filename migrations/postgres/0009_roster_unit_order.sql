-- A payout batch reads one unit's people in ID order. With (program, unit_code) alone SQLite chose
-- the primary key to avoid the sort and walked the program's whole roster (200,000 people: 300 ms
-- per unit, every month); with the ID number in the index the rows come out in order.
DROP INDEX roster_unit;
CREATE INDEX roster_unit ON roster (program, unit_code, id_number);
