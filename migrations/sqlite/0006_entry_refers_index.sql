-- Which entries post, void or reverse a given entry: read for every reference a batch makes. Covering
-- (kind and key included), so SQLite seeks it even before ANALYZE has gathered statistics, instead of
-- scanning the county's whole primary key.
CREATE INDEX entries_refers ON entries (county_code, refers_seq, kind, idem_key);
