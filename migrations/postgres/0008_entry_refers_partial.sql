-- Only post, void and reversal entries refer to another entry; normal and pending entries (most of a
-- payout month: accruals and pending payments) carry no reference and need no row in this index.
-- Every query that reads it names `refers_seq = …`, which implies NOT NULL, so the partial index serves
-- it. Measured with `earmark bench`: one B-tree insert fewer for every entry that refers to nothing.
DROP INDEX entries_refers;
CREATE INDEX entries_refers ON entries (county_code, refers_seq, kind, idem_key)
    WHERE refers_seq IS NOT NULL;
