-- A payout line is recognised and paid by one entry (pending until the bank answers): there is no
-- separate accrual entry. What was owed for a person-month is therefore kept with its claims: the
-- county whose books paid it and the amount of that attempt. Reports take a person-month's
-- entitlement from its latest attempt.
ALTER TABLE payout_claims ADD COLUMN county_code TEXT;
ALTER TABLE payout_claims ADD COLUMN amount INTEGER;
