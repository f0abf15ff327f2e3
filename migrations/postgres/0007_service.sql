-- The shared service: users with a role and a scope, their API tokens (only a SHA-256 of each token
-- is kept), the append-only audit log of every state-changing request, and the claims that make a
-- person-month payable by one payout line at a time.

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'finance', 'unit', 'inspector')),
    -- A region code (finance, inspector), a unit code (unit), or '*' (admin).
    scope         TEXT NOT NULL,
    personal_data BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    token_id   TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_name  TEXT NOT NULL REFERENCES users (name),
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);

CREATE TABLE audit_log (
    seq         BIGSERIAL PRIMARY KEY,
    request_id  TEXT NOT NULL,
    at          TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    status      BIGINT NOT NULL,
    body_sha256 TEXT NOT NULL,
    entries     TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_log_user ON audit_log (user_name, seq);

CREATE FUNCTION earmark_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION earmark_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION earmark_audit_append_only();

-- One payout attempt per person-month at a time (see the SQLite migration).
CREATE TABLE payout_claims (
    program     TEXT NOT NULL,
    id_number   TEXT NOT NULL,
    month       TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    payment_key TEXT NOT NULL,
    PRIMARY KEY (program, id_number, month, attempt)
);
