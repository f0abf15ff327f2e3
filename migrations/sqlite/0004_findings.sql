-- Inspectors' findings (交叉核查发现的问题) and their rulings (定性). A finding's fingerprint names
-- what it is about (rule, person, month, payments or tranche), so a sweep run again adds nothing
-- twice. Amounts are INTEGER fen, dates ISO text. Rows are only ever added or ruled once.

CREATE TABLE findings (
    id                INTEGER PRIMARY KEY,
    rule              TEXT NOT NULL,
    fingerprint       TEXT NOT NULL UNIQUE,
    severity          TEXT NOT NULL CHECK (severity IN ('red', 'orange', 'yellow', 'blue')),
    program           TEXT NOT NULL,
    county            TEXT NOT NULL,
    id_number         TEXT,
    -- The payments (BATCH:LINE) or flow entry keys concerned, space-separated.
    payments          TEXT NOT NULL,
    detail            TEXT NOT NULL,
    amount            INTEGER NOT NULL,
    found_at          TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'ruled')),
    disposition       TEXT CHECK (disposition IN ('normal', 'violation')),
    violation_type    TEXT CHECK (violation_type IN
                          ('late_release', 'funds_stranded', 'diverted', 'outside_scope', 'impersonation', 'false_data')),
    amount_to_recover INTEGER,
    rectify_by        TEXT,
    ruled_by          TEXT,
    ruled_at          TEXT
);
CREATE INDEX findings_county ON findings (county, status);

CREATE TRIGGER findings_no_delete BEFORE DELETE ON findings
BEGIN SELECT RAISE(ABORT, 'findings are kept: rule on them instead'); END;
