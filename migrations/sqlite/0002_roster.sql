-- The beneficiary registry (名册) per program, its lock (只减不增), its life events, and the annual
-- cycle's stages. The roster is reference data, not the ledger: rows change as events arrive, and
-- every change is also written to roster_events, which is append-only.

CREATE TABLE roster (
    program            TEXT NOT NULL,
    id_number          TEXT NOT NULL,
    name               TEXT NOT NULL,
    sex                TEXT NOT NULL CHECK (sex IN ('M', 'F')),
    birth_date         TEXT NOT NULL,
    semesters          INTEGER,
    county_code        TEXT NOT NULL,
    township_code      TEXT,
    unit_code          TEXT,
    bank_account       TEXT,
    exclusion          TEXT,
    death_date         TEXT,
    guardian_name      TEXT,
    guardian_id_number TEXT,
    enrolled_from      TEXT,
    category           TEXT,
    employed_from      TEXT,
    employer_kind      TEXT,
    left_date          TEXT,
    left_reason        TEXT,
    PRIMARY KEY (program, id_number)
);
CREATE INDEX roster_county ON roster (program, county_code);
CREATE INDEX roster_person ON roster (id_number);

CREATE TABLE roster_locks (
    program   TEXT PRIMARY KEY,
    locked_at TEXT NOT NULL
);

CREATE TABLE roster_events (
    id INTEGER PRIMARY KEY,
    program     TEXT NOT NULL,
    id_number   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    event_date  TEXT NOT NULL,
    detail      TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX roster_events_person ON roster_events (id_number);

CREATE TABLE cycle_stages (
    program     TEXT NOT NULL,
    year        INTEGER NOT NULL,
    id_number   TEXT NOT NULL,
    stage       TEXT NOT NULL,
    stage_date  TEXT NOT NULL,
    actor       TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (program, year, id_number, stage)
);

CREATE TRIGGER roster_events_no_update BEFORE UPDATE ON roster_events
BEGIN SELECT RAISE(ABORT, 'roster events are append-only'); END;
CREATE TRIGGER roster_events_no_delete BEFORE DELETE ON roster_events
BEGIN SELECT RAISE(ABORT, 'roster events are append-only'); END;
