-- The ledger core: reference data, owners, accounts, entries, postings, balances, hash-chain heads.
-- Money is INTEGER fen. Dates are ISO text (YYYY-MM-DD). Entries and postings are append-only.

CREATE TABLE regions (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('province', 'city', 'county', 'township')),
    parent_code TEXT,
    -- 1 for a county, and for a city without districts (Dongguan, Zhongshan) that plays the county's role.
    county_role INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE calendar_days (
    day  TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name TEXT NOT NULL
);

CREATE TABLE calendar_years (
    year INTEGER PRIMARY KEY
);

CREATE TABLE programs (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    definition TEXT NOT NULL DEFAULT ''
);

CREATE TABLE units (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    county_code   TEXT NOT NULL REFERENCES regions (code),
    township_code TEXT,
    kind          TEXT NOT NULL
);

CREATE TABLE persons (
    id_number   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    county_code TEXT NOT NULL REFERENCES regions (code)
);

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    county_code TEXT NOT NULL,
    program     TEXT NOT NULL,
    owner       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    UNIQUE (county_code, program, owner, kind)
);

-- Derived state, kept in the posting transaction: may be updated, and `earmark check` recomputes it.
CREATE TABLE balances (
    account_id INTEGER PRIMARY KEY,
    balance    INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    CHECK (reserved >= 0)
);

CREATE TABLE entries (
    county_code  TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    idem_key     TEXT NOT NULL,
    program      TEXT NOT NULL,
    entry_date   TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('normal', 'pending', 'post', 'void', 'reversal')),
    refers_seq   INTEGER,
    memo         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    chain_hash   BLOB NOT NULL,
    PRIMARY KEY (county_code, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX entries_idem_key ON entries (idem_key);
-- A pending entry is posted or voided exactly once; an entry is reversed at most once.
CREATE UNIQUE INDEX entries_resolves_once ON entries (county_code, refers_seq)
    WHERE kind IN ('post', 'void');
CREATE UNIQUE INDEX entries_reversed_once ON entries (county_code, refers_seq)
    WHERE kind = 'reversal';

CREATE TABLE postings (
    county_code TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    leg         INTEGER NOT NULL,
    account_id  INTEGER NOT NULL,
    amount      INTEGER NOT NULL,
    entry_date  TEXT NOT NULL,
    pending     INTEGER NOT NULL,
    PRIMARY KEY (county_code, seq, leg)
) WITHOUT ROWID;
CREATE INDEX postings_account ON postings (account_id);

CREATE TABLE chain_heads (
    county_code TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    chain_hash  BLOB NOT NULL
);

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'entries are append-only: post a reversal instead'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'entries are append-only: post a reversal instead'); END;
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, 'postings are append-only: post a reversal instead'); END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, 'postings are append-only: post a reversal instead'); END;
