//! Who may do what on the shared ledger: users with a role and a scope, their API tokens, and the
//! append-only audit log. The HTTP service (`crate::api`) and the `earmark user` commands both use it.
//!
//! A token is shown once, when issued; the database keeps only its SHA-256, so a copy of the
//! database does not let anyone in.

use std::fmt;

use chrono::{NaiveDateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::region::RegionTable;
use crate::store::{Store, StoreError, Unit, portable};

/// A user's role. Scope decides where the role applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, everywhere (scope `*`).
    Admin,
    /// A finance department (财政/教育部门) of a province, city or county: releases, matching,
    /// disbursements, returns, recoveries, roster imports, within its region.
    Finance,
    /// A disbursing unit (发放单位): its own payout batches, payments, bank results and returns.
    Unit,
    /// An inspector (监督检查): reads everything in its region, changes nothing.
    Inspector,
}

impl Role {
    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Finance => "finance",
            Role::Unit => "unit",
            Role::Inspector => "inspector",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Admin => "系统管理员",
            Role::Finance => "财政部门",
            Role::Unit => "发放单位",
            Role::Inspector => "监督检查",
        }
    }

    pub fn parse(text: &str) -> Result<Role, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "finance" => Ok(Role::Finance),
            "unit" => Ok(Role::Unit),
            "inspector" => Ok(Role::Inspector),
            other => Err(format!(
                "\"{other}\" is not a role: use admin, finance, unit or inspector"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A user as the service sees them after their token was checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// A region code (finance, inspector), a unit code (unit), or `*` (admin).
    pub scope: String,
    /// May see full ID numbers and bank accounts when a request asks for them.
    pub personal_data: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the token is not known")]
    Unknown,
    #[error("the token was revoked at {0}")]
    Revoked(String),
    #[error("the token expired at {0}")]
    Expired(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> AuthError {
        AuthError::Store(StoreError::Database(e))
    }
}

fn now_text() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|e| StoreError::Invalid(format!("no randomness from the system: {e}")))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh request id (16 hex digits).
pub fn request_id() -> String {
    random_hex(8)
        .unwrap_or_else(|_| format!("{:016x}", Utc::now().timestamp_nanos_opt().unwrap_or(0)))
}

/// Checks a scope against the role: admin `*`; finance and inspector a region; unit a unit.
pub async fn check_scope(store: &Store, role: Role, scope: &str) -> Result<(), StoreError> {
    match role {
        Role::Admin if scope == "*" => Ok(()),
        Role::Admin => Err(StoreError::Invalid(
            "an admin's scope is * (everything)".into(),
        )),
        Role::Finance | Role::Inspector => {
            let regions = store.regions().await?;
            match regions.get(scope) {
                Some(r) if r.level != crate::region::Level::Township => Ok(()),
                Some(r) => Err(StoreError::Invalid(format!(
                    "{scope} ({}) is a township: a {role}'s scope is a province, city or county",
                    r.name
                ))),
                None => Err(StoreError::Invalid(format!(
                    "{scope} is not a known region code"
                ))),
            }
        }
        Role::Unit => {
            if store.unit(scope).await?.is_some() {
                Ok(())
            } else {
                Err(StoreError::Invalid(format!(
                    "{scope} is not a registered disbursing unit (earmark import units)"
                )))
            }
        }
    }
}

/// Adds a user. The name is unique; the scope is checked against the regions or units.
pub async fn add_user(
    store: &Store,
    name: &str,
    role: Role,
    scope: &str,
    personal_data: bool,
) -> Result<User, StoreError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_whitespace) {
        return Err(StoreError::Invalid(format!(
            "\"{name}\" is not a user name: 1 to 64 characters, no spaces"
        )));
    }
    let scope = if role == Role::Admin {
        "*"
    } else {
        scope.trim()
    };
    check_scope(store, role, scope).await?;
    let exists = sqlx::query("SELECT COUNT(*) FROM users WHERE name = $1")
        .bind(name.to_string())
        .fetch_one(store.pool())
        .await?
        .try_get::<i64, _>(0)?;
    if exists > 0 {
        return Err(StoreError::Invalid(format!("user {name} exists already")));
    }
    sqlx::query(
        "INSERT INTO users (name, role, scope, personal_data, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(name.to_string())
    .bind(role.code())
    .bind(scope.to_string())
    .bind(i64::from(personal_data))
    .bind(now_text())
    .execute(store.pool())
    .await?;
    Ok(User {
        name: name.to_string(),
        role,
        scope: scope.to_string(),
        personal_data,
    })
}

pub async fn users(store: &Store) -> Result<Vec<User>, StoreError> {
    let rows = sqlx::query("SELECT name, role, scope, personal_data FROM users ORDER BY name")
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(user_from_row).collect()
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get(1)?;
    Ok(User {
        name: row.try_get(0)?,
        role: Role::parse(&role).map_err(StoreError::Invalid)?,
        scope: row.try_get(2)?,
        personal_data: row.try_get::<i64, _>(3)? != 0,
    })
}

/// A token as issued: `secret` is shown once and never stored.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token_id: String,
    pub secret: String,
    pub expires_at: Option<String>,
}

/// Issues a token for a user, valid for `days` days (none: until revoked).
pub async fn issue_token(
    store: &Store,
    user: &str,
    days: Option<u32>,
) -> Result<IssuedToken, StoreError> {
    let known = sqlx::query("SELECT COUNT(*) FROM users WHERE name = $1")
        .bind(user.to_string())
        .fetch_one(store.pool())
        .await?
        .try_get::<i64, _>(0)?;
    if known == 0 {
        return Err(StoreError::Invalid(format!(
            "no user {user}: add them first (earmark user add)"
        )));
    }
    let token_id = random_hex(4)?;
    let secret = format!("em_{token_id}_{}", random_hex(24)?);
    let expires_at = days.map(|d| {
        (Utc::now() + chrono::Duration::days(i64::from(d)))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    });
    sqlx::query(
        "INSERT INTO api_tokens (token_id, token_hash, user_name, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_id.clone())
    .bind(sha256_hex(secret.as_bytes()))
    .bind(user.to_string())
    .bind(now_text())
    .bind(expires_at.clone())
    .execute(store.pool())
    .await?;
    Ok(IssuedToken {
        token_id,
        secret,
        expires_at,
    })
}

/// Revokes one token (by its id) or every token of a user (by the user's name). Returns how many.
pub async fn revoke(store: &Store, token_or_user: &str) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 \
         WHERE revoked_at IS NULL AND (token_id = $2 OR user_name = $3)",
    )
    .bind(now_text())
    .bind(token_or_user.to_string())
    .bind(token_or_user.to_string())
    .execute(store.pool())
    .await?
    .rows_affected();
    if done == 0 {
        return Err(StoreError::Invalid(format!(
            "no live token {token_or_user}, and no user of that name with one"
        )));
    }
    Ok(done)
}

/// The user a token belongs to, if it is known, not revoked and not expired.
pub async fn authenticate(store: &Store, token: &str) -> Result<User, AuthError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    let row = sqlx::query(
        "SELECT u.name, u.role, u.scope, u.personal_data, t.expires_at, t.revoked_at \
         FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.token_hash = $1",
    )
    .bind(sha256_hex(token.as_bytes()))
    .fetch_optional(store.pool())
    .await?
    .ok_or(AuthError::Unknown)?;
    if let Some(revoked) = row.try_get::<Option<String>, _>(5)? {
        return Err(AuthError::Revoked(revoked));
    }
    if let Some(expires) = row.try_get::<Option<String>, _>(4)? {
        let at = NaiveDateTime::parse_from_str(&expires, "%Y-%m-%dT%H:%M:%S")
            .map_err(|_| AuthError::Expired(expires.clone()))?;
        if at <= Utc::now().naive_utc() {
            return Err(AuthError::Expired(expires));
        }
    }
    Ok(user_from_row(&row)?)
}

impl User {
    /// Does this user's scope include the county? Admin: all; finance and inspector: counties in
    /// their region; a unit: its own county only (for reading what concerns it).
    pub fn covers_county(&self, regions: &RegionTable, units: &[Unit], county: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Finance | Role::Inspector => regions
                .chain_up(county)
                .iter()
                .any(|r| r.code == self.scope),
            Role::Unit => units
                .iter()
                .any(|u| u.code == self.scope && u.county == county),
        }
    }

    /// Does this user act for the unit? A unit for itself; finance for the units in its region.
    pub fn covers_unit(&self, regions: &RegionTable, unit: &Unit) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Unit => self.scope == unit.code,
            Role::Finance | Role::Inspector => regions
                .chain_up(&unit.county)
                .iter()
                .any(|r| r.code == self.scope),
        }
    }

    pub fn may_write(&self) -> bool {
        self.role != Role::Inspector
    }
}

/// One line of the audit log.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub seq: i64,
    pub request_id: String,
    pub at: String,
    pub user: String,
    pub role: String,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub body_sha256: String,
    /// The entry keys the request posted, space-separated (ranges as `payment:B:1..250`).
    pub entries: String,
    pub detail: String,
}

/// Appends one record to the audit log.
#[allow(clippy::too_many_arguments)]
pub async fn audit(
    store: &Store,
    request_id: &str,
    user: &User,
    method: &str,
    path: &str,
    status: u16,
    body: &[u8],
    entries: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (request_id, at, user_name, role, method, path, status, body_sha256, \
         entries, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(request_id.to_string())
    .bind(now_text())
    .bind(user.name.clone())
    .bind(user.role.code())
    .bind(method.to_string())
    .bind(path.to_string())
    .bind(i64::from(status))
    .bind(sha256_hex(body))
    .bind(entries.to_string())
    .bind(detail.to_string())
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The audit log, newest first: optionally one user's, optionally only after `after_seq`.
pub async fn audit_log(
    store: &Store,
    user: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let sql = format!(
        "SELECT seq, request_id, at, user_name, role, method, path, status, body_sha256, entries, detail \
         FROM audit_log WHERE seq > $1 {} ORDER BY seq DESC LIMIT {}",
        if user.is_some() {
            "AND user_name = $2"
        } else {
            ""
        },
        limit.clamp(1, 10_000)
    );
    let mut query = sqlx::query(portable(store.backend(), sql)).bind(after_seq);
    if let Some(user) = user {
        query = query.bind(user.to_string());
    }
    let rows = query.fetch_all(store.pool()).await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRecord {
                seq: r.try_get(0)?,
                request_id: r.try_get(1)?,
                at: r.try_get(2)?,
                user: r.try_get(3)?,
                role: r.try_get(4)?,
                method: r.try_get(5)?,
                path: r.try_get(6)?,
                status: r.try_get(7)?,
                body_sha256: r.try_get(8)?,
                entries: r.try_get(9)?,
                detail: r.try_get(10)?,
            })
        })
        .collect()
}
