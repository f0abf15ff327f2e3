-- The flow's records about its ledger entries: what each release, matching share, disbursement,
-- return and recovery was (document, level, covered months, computed need), payout batches and their
-- lines. Written in the same transaction as the entries they describe; the ledger stays the truth
-- for amounts (a line's status is read from its pending entry's resolution).

CREATE TABLE flow_events (
    entry_key   TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    program     TEXT NOT NULL,
    county_code TEXT NOT NULL,
    level       TEXT,
    from_owner  TEXT NOT NULL,
    to_owner    TEXT NOT NULL,
    document    TEXT NOT NULL,
    event_date  TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    computed    BIGINT,
    covers_from TEXT,
    covers_to   TEXT
);
CREATE INDEX flow_events_county ON flow_events (county_code, program, kind);

-- What a disbursement is for, month by month: a unit's deadline runs per month.
CREATE TABLE flow_event_months (
    entry_key TEXT NOT NULL,
    month     TEXT NOT NULL,
    amount    BIGINT NOT NULL,
    PRIMARY KEY (entry_key, month)
);

CREATE TABLE payout_batches (
    batch_id      TEXT PRIMARY KEY,
    unit_code     TEXT NOT NULL,
    program       TEXT NOT NULL,
    county_code   TEXT NOT NULL,
    month         TEXT NOT NULL,
    business_date TEXT NOT NULL,
    format        TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    line_count    BIGINT NOT NULL,
    control_total BIGINT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE payout_lines (
    batch_id    TEXT NOT NULL,
    line_no     BIGINT NOT NULL,
    id_number   TEXT NOT NULL,
    name        TEXT NOT NULL,
    account     TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    month       TEXT NOT NULL,
    payment_key TEXT NOT NULL,
    PRIMARY KEY (batch_id, line_no)
);
CREATE INDEX payout_lines_person ON payout_lines (id_number, month);

CREATE TABLE bank_results (
    file_hash TEXT PRIMARY KEY,
    batch_id  TEXT NOT NULL,
    file_name TEXT NOT NULL,
    read_at   TEXT NOT NULL,
    paid      BIGINT NOT NULL,
    failed    BIGINT NOT NULL
);
