-- A payout batch is paid by one pending entry (a leg per line), as the bank pays it; what the bank
-- said of each line is kept here, once: paid, or failed (its money then comes back to the unit by an
-- entry `failed:<line key>` and its month stays owed). `entry_date` is the day the answer was read.
-- `memo` is the bank's reason for a failed line, NULL for a paid one. Kept in key order (WITHOUT
-- ROWID): a batch's answers are one run of the table, not a row and an index entry each.
CREATE TABLE payout_results (
    payment_key TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('paid', 'failed')),
    entry_date  TEXT NOT NULL,
    memo        TEXT
) WITHOUT ROWID;
CREATE TRIGGER payout_results_no_update BEFORE UPDATE ON payout_results
BEGIN SELECT RAISE(ABORT, 'bank answers are append-only'); END;
CREATE TRIGGER payout_results_no_delete BEFORE DELETE ON payout_results
BEGIN SELECT RAISE(ABORT, 'bank answers are append-only'); END;

-- Lines paid by an entry of their own (before this migration) keep their answers: the post or void
-- of that entry.
INSERT INTO payout_results (payment_key, status, entry_date, memo)
SELECT l.payment_key, CASE e.kind WHEN 'post' THEN 'paid' ELSE 'failed' END, e.entry_date,
       CASE e.kind WHEN 'post' THEN NULL ELSE e.memo END
FROM payout_lines l JOIN entries e ON e.idem_key IN ('post:' || l.payment_key, 'void:' || l.payment_key);

