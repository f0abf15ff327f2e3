-- A payout batch's claims land in one part of their key: the key leads with the program and month,
-- as a batch's lines do, no longer with the ID number (see the SQLite migration). "This person's
-- claims" is one lookup per claimed month, listed in payout_claim_months (written with the claims).
ALTER TABLE payout_claims DROP CONSTRAINT payout_claims_pkey;
ALTER TABLE payout_claims ADD PRIMARY KEY (program, month, id_number, attempt);
CREATE TABLE payout_claim_months (
    program TEXT NOT NULL,
    month   TEXT NOT NULL,
    PRIMARY KEY (program, month)
);
INSERT INTO payout_claim_months (program, month)
SELECT DISTINCT program, month FROM payout_claims;
