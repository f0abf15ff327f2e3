-- The ledger core: reference data, owners, accounts, entries, postings, balances, hash-chain heads.
-- Money is BIGINT fen. Dates are ISO text (YYYY-MM-DD), as on SQLite, so both stores compare alike.
-- Every table that holds ledger rows leads with county_code: the shard key (see README, scale-out).

CREATE TABLE regions (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    level       TEXT NOT NULL CHECK (level IN ('province', 'city', 'county', 'township')),
    parent_code TEXT,
    county_role BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE calendar_days (
    day  TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('holiday', 'workday')),
    name TEXT NOT NULL
);

CREATE TABLE calendar_years (
    year BIGINT PRIMARY KEY
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
    id          BIGSERIAL PRIMARY KEY,
    county_code TEXT NOT NULL,
    program     TEXT NOT NULL,
    owner       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    UNIQUE (county_code, program, owner, kind)
);

CREATE TABLE balances (
    account_id BIGINT PRIMARY KEY,
    balance    BIGINT NOT NULL,
    reserved   BIGINT NOT NULL,
    CHECK (reserved >= 0)
);

CREATE TABLE entries (
    county_code  TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    idem_key     TEXT NOT NULL,
    program      TEXT NOT NULL,
    entry_date   TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('normal', 'pending', 'post', 'void', 'reversal')),
    refers_seq   BIGINT,
    memo         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    content_hash BYTEA NOT NULL,
    chain_hash   BYTEA NOT NULL,
    PRIMARY KEY (county_code, seq)
);
CREATE UNIQUE INDEX entries_idem_key ON entries (idem_key);
CREATE UNIQUE INDEX entries_resolves_once ON entries (county_code, refers_seq)
    WHERE kind IN ('post', 'void');
CREATE UNIQUE INDEX entries_reversed_once ON entries (county_code, refers_seq)
    WHERE kind = 'reversal';

CREATE TABLE postings (
    county_code TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    leg         BIGINT NOT NULL,
    account_id  BIGINT NOT NULL,
    amount      BIGINT NOT NULL,
    entry_date  TEXT NOT NULL,
    pending     BIGINT NOT NULL,
    PRIMARY KEY (county_code, seq, leg)
);
CREATE INDEX postings_account ON postings (account_id);

CREATE TABLE chain_heads (
    county_code TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    chain_hash  BYTEA NOT NULL
);

CREATE FUNCTION earmark_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: post a reversal instead', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION earmark_append_only();
CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION earmark_append_only();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION earmark_append_only();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION earmark_append_only();
