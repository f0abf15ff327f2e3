-- A payout line's person-month was indexed twice: by payout_lines_person (id_number, month) and by
-- its claim's key (see the SQLite migration). The claim now names its batch line (NULL for a
-- payment a unit made directly) and its key leads with the ID number; the old index gives way to
-- payout_lines_unclaimed, of the lines no claim names only (`claimed = 0`: written before claims
-- were kept, or by an import).
ALTER TABLE payout_claims ADD COLUMN batch_id TEXT;
ALTER TABLE payout_claims ADD COLUMN line_no BIGINT;
UPDATE payout_claims c SET batch_id = l.batch_id, line_no = l.line_no
FROM payout_lines l WHERE l.payment_key = c.payment_key;
ALTER TABLE payout_claims DROP CONSTRAINT payout_claims_pkey;
ALTER TABLE payout_claims ADD PRIMARY KEY (id_number, program, month, attempt);
ALTER TABLE payout_lines ADD COLUMN claimed BIGINT NOT NULL DEFAULT 0;
UPDATE payout_lines l SET claimed = 1
FROM payout_claims c WHERE c.batch_id = l.batch_id AND c.line_no = l.line_no;
DROP INDEX payout_lines_person;
CREATE INDEX payout_lines_unclaimed ON payout_lines (id_number, month) WHERE claimed = 0;
