//! The JSON endpoints. Each checks the caller's role and scope first, then calls the same library
//! function the CLI calls. Amounts travel as strings in yuan (`"1234.56"`), never as floats.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiJson, ApiQuery, AuditSlot, Auth, Shared};
use crate::calendar::YearMonth;
use crate::flow::{self, Level};
use crate::id_number::IdNumber;
use crate::money::{Fen, SignRule, parse_amount};
use crate::program::Program;
use crate::region::RegionTable;
use crate::report::{OutputFormat, Sheet};
use crate::service::{self, AuditRecord, Role, User};
use crate::store::{Outcome, Store, Unit};

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(me))
        .routes(routes!(programs))
        .routes(routes!(allocate))
        .routes(routes!(disburse))
        .routes(routes!(return_funds))
        .routes(routes!(create_batch))
        .routes(routes!(batch_file))
        .routes(routes!(bank_result))
        .routes(routes!(pay))
        .routes(routes!(recover_scan))
        .routes(routes!(recover_receipt))
        .routes(routes!(unit_people))
        .routes(routes!(entitlements))
        .routes(routes!(report_list))
        .routes(routes!(report_run))
        .routes(routes!(spot_check))
        .routes(routes!(trace_person))
        .routes(routes!(trace_entry))
        .routes(routes!(balances))
        .routes(routes!(check))
        .routes(routes!(verify))
        .routes(routes!(findings))
        .routes(routes!(deadlines))
        .routes(routes!(audit_log))
        .routes(routes!(roster_import))
        .routes(routes!(findings_sweep))
        .routes(routes!(findings_rule))
        .routes(routes!(scorecard))
        .routes(routes!(post_entries))
        .routes(routes!(resolve_entry))
        .routes(routes!(life_events))
        .routes(routes!(export_journal))
}

// ---------------------------------------------------------------------------------------------
// Scope helpers

fn deny(user: &User, what: &str) -> ApiError {
    ApiError::forbidden(format!(
        "{} ({} scoped to {}) may not {what}",
        user.name, user.role, user.scope
    ))
}

fn require_writer(user: &User, what: &str) -> Result<()> {
    if user.may_write() {
        Ok(())
    } else {
        Err(deny(user, what))
    }
}

fn require_roles(user: &User, roles: &[Role], what: &str) -> Result<()> {
    if roles.contains(&user.role) {
        Ok(())
    } else {
        Err(deny(user, what))
    }
}

async fn unit_of(store: &Store, code: &str) -> Result<Unit> {
    let code = code.trim().to_ascii_uppercase();
    store
        .unit(&code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("unit {code} is not registered")))
}

fn require_county(
    user: &User,
    regions: &RegionTable,
    units: &[Unit],
    county: &str,
    what: &str,
) -> Result<()> {
    if regions.get(county).is_none_or(|r| !r.county_role) {
        return Err(ApiError::refused(format!("{county} is not a county code")));
    }
    if user.covers_county(regions, units, county) {
        Ok(())
    } else {
        Err(deny(user, &format!("{what} in county {county}")))
    }
}

/// The counties a user may read, or `None` for all.
fn readable_counties(user: &User, regions: &RegionTable, units: &[Unit]) -> Option<Vec<String>> {
    if user.role == Role::Admin {
        return None;
    }
    if regions
        .get(&user.scope)
        .is_some_and(|r| r.level == crate::region::Level::Province)
    {
        return None;
    }
    Some(
        regions
            .counties()
            .filter(|c| user.covers_county(regions, units, &c.code))
            .map(|c| c.code.clone())
            .collect(),
    )
}

async fn program_of(store: &Store, code: &str) -> Result<Program> {
    let code = code.trim().to_ascii_uppercase();
    match store.program(&code).await {
        Ok(p) => Ok(p),
        Err(crate::store::StoreError::Invalid(message)) => Err(ApiError::not_found(message)),
        Err(e) => Err(e.into()),
    }
}

fn month(field: &str, text: &str) -> Result<YearMonth> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::refused(format!("{field}: \"{text}\" is not a month YYYY-MM")))
}

fn months(from: &str, to: &str) -> Result<(YearMonth, YearMonth)> {
    let (f, t) = (month("from", from)?, month("to", to)?);
    if f > t {
        return Err(ApiError::refused(format!("from {f} is after to {t}")));
    }
    Ok((f, t))
}

fn amount(field: &str, text: &str) -> Result<Fen> {
    parse_amount(text, SignRule::Positive).map_err(|e| ApiError::refused(format!("{field}: {e}")))
}

fn mask_id(id: &str) -> String {
    IdNumber::parse(id)
        .map(|i| i.masked())
        .unwrap_or_else(|_| crate::inspect::mask_ids(id))
}

fn mask_account(account: &str) -> String {
    let chars: Vec<char> = account.chars().collect();
    if chars.len() <= 4 {
        return "****".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{}{tail}", "*".repeat(chars.len() - 4))
}

/// Full personal data only when the user holds the right and the request asks for it.
fn full_view(user: &User, asked: Option<bool>) -> Result<bool> {
    match asked {
        Some(true) if user.personal_data => Ok(true),
        Some(true) => Err(deny(user, "see full ID numbers or bank accounts")),
        _ => Ok(false),
    }
}

fn sheet_response(sheet: &Sheet, format: OutputFormat) -> Result<Response> {
    let file_name = |ext: &str| {
        let safe: String = sheet
            .title
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '_' })
            .collect();
        format!("{safe}.{ext}")
    };
    let disposition = |ext: &str| {
        let name = file_name(ext);
        format!(
            "attachment; filename=\"report.{ext}\"; filename*=UTF-8''{}",
            percent_encode(&name)
        )
    };
    Ok(match format {
        OutputFormat::Json => (
            [(header::CONTENT_TYPE, "application/json")],
            sheet.to_json(),
        )
            .into_response(),
        OutputFormat::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            sheet.to_html(),
        )
            .into_response(),
        OutputFormat::Csv => {
            let mut bytes = Vec::new();
            sheet
                .write_csv(&mut bytes)
                .map_err(|e| ApiError::refused(e.to_string()))?;
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, disposition("csv")),
                ],
                bytes,
            )
                .into_response()
        }
        OutputFormat::Xlsx => {
            let dir = tempfile_dir()?;
            let path = dir.join("report.xlsx");
            sheet
                .write_xlsx(&path)
                .map_err(|e| ApiError::refused(e.to_string()))?;
            let bytes = std::fs::read(&path).map_err(|e| ApiError::refused(e.to_string()))?;
            let _ = std::fs::remove_dir_all(&dir);
            (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (header::CONTENT_DISPOSITION, disposition("xlsx")),
                ],
                bytes,
            )
                .into_response()
        }
    })
}

pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A private scratch folder for one response's file.
pub(super) fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("earmark-{}", service::request_id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(dir)
}

/// An uploaded table file (CSV in UTF-8 or GBK, or XLSX) as the reader takes it: written to a private
/// scratch folder under the name it came with (`.csv` or `.xlsx`, else `fallback`), read, removed.
fn read_upload(
    name: Option<&str>,
    fallback: &str,
    body: &[u8],
) -> Result<(String, crate::input::table::Table)> {
    let name = name
        .and_then(|n| std::path::Path::new(n).file_name())
        .map(|n| n.to_string_lossy().to_string())
        .filter(|n| n.ends_with(".csv") || n.ends_with(".xlsx"))
        .unwrap_or_else(|| fallback.to_string());
    if body.is_empty() {
        return Err(ApiError::refused(format!(
            "{name}: the body is empty: send the file"
        )));
    }
    let dir = tempfile_dir()?;
    let path = dir.join(&name);
    let table = std::fs::write(&path, body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
        .and_then(|_| {
            crate::input::table::read_table(&path, crate::input::Encoding::Auto)
                .map_err(|e| ApiError::refused(e.to_string()))
        });
    let _ = std::fs::remove_dir_all(&dir);
    Ok((name, table?))
}

/// A spot check's workpaper as a download.
pub(super) fn workpaper_response(
    check: &crate::inspect::workpaper::SpotCheck,
    file_name: &str,
) -> Result<Response> {
    let dir = tempfile_dir()?;
    let path = dir.join("workpaper.xlsx");
    let written = crate::inspect::workpaper::write_workpaper(check, &path)
        .map_err(ApiError::from)
        .and_then(|_| std::fs::read(&path).map_err(|e| ApiError::refused(e.to_string())));
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", percent_encode(file_name)),
            ),
        ],
        written?,
    )
        .into_response())
}

fn parse_format(text: Option<&str>) -> Result<OutputFormat> {
    match text.map(|t| t.trim().to_ascii_lowercase()).as_deref() {
        None | Some("json") => Ok(OutputFormat::Json),
        Some("csv") => Ok(OutputFormat::Csv),
        Some("xlsx") => Ok(OutputFormat::Xlsx),
        Some("html") => Ok(OutputFormat::Html),
        Some(other) => Err(ApiError::bad_request(format!(
            "format \"{other}\" is not one of json, csv, xlsx, html"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Health, identity, programs

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub backend: String,
    pub version: String,
}

/// Is the service up, and on which database kind.
#[utoipa::path(get, path = "/api/v1/health", tag = "service",
    responses((status = 200, body = Health)))]
async fn health(State(state): State<Shared>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        backend: format!("{:?}", state.store.backend()).to_lowercase(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// The caller: name, role, scope.
#[utoipa::path(get, path = "/api/v1/me", tag = "service", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = super::ErrorBody)))]
async fn me(Auth(user): Auth) -> Json<User> {
    Json(user)
}

#[derive(Serialize, ToSchema)]
pub struct ProgramInfo {
    pub code: String,
    pub name: String,
}

/// The programs the ledger knows.
#[utoipa::path(get, path = "/api/v1/programs", tag = "service", security(("bearer" = [])),
    responses((status = 200, body = Vec<ProgramInfo>), (status = 401, body = super::ErrorBody)))]
async fn programs(
    State(state): State<Shared>,
    Auth(_user): Auth,
) -> Result<Json<Vec<ProgramInfo>>> {
    Ok(Json(
        state
            .store
            .programs()
            .await?
            .into_iter()
            .map(|(code, name)| ProgramInfo { code, name })
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// The flow: allocations, disbursements, returns

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateBody {
    /// Program code, e.g. `MBDK`.
    pub program: String,
    /// `province` or `city` (下达), or `county` (配套, the county's own share).
    pub level: String,
    /// The release document's number (文号).
    pub document: String,
    pub date: NaiveDate,
    /// First covered month, YYYY-MM.
    pub from: String,
    /// Last covered month, YYYY-MM.
    pub to: String,
    /// One county only; without it, every county in the caller's scope.
    pub county: Option<String>,
    /// The amounts actually released per county (yuan); without them, the computed need.
    pub amounts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TransferLineOut {
    pub county: String,
    pub to: String,
    pub persons: i64,
    pub person_months: i64,
    /// Yuan.
    pub computed: String,
    /// Yuan.
    pub amount: String,
    /// `posted`, `already` (same document posted before), `refused: …`, or `dry_run`.
    pub outcome: String,
    pub entry_seq: Option<i64>,
    /// A posting-time warning (R08: below the computed share).
    pub warning: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TransferResult {
    pub lines: Vec<TransferLineOut>,
    /// Yuan.
    pub total: String,
    pub dry_run: bool,
}

fn transfer_result(lines: Vec<flow::TransferLine>, dry_run: bool) -> TransferResult {
    let mut total = Fen::ZERO;
    let lines = lines
        .into_iter()
        .map(|l| {
            total = total.checked_add(l.amount).unwrap_or(total);
            let (outcome, seq) = match &l.outcome {
                Some(Outcome::Posted { seq, .. }) => ("posted".to_string(), Some(*seq)),
                Some(Outcome::AlreadyPosted { seq, .. }) => ("already".to_string(), Some(*seq)),
                Some(Outcome::Refused(e)) => (format!("refused ({}): {e}", e.code()), None),
                None if dry_run => ("dry_run".to_string(), None),
                None => ("nothing to post".to_string(), None),
            };
            TransferLineOut {
                warning: l.warning(),
                county: l.county,
                to: l.to,
                persons: l.persons,
                person_months: l.person_months,
                computed: l.computed.to_string(),
                amount: l.amount.to_string(),
                outcome,
                entry_seq: seq,
            }
        })
        .collect();
    TransferResult {
        lines,
        total: total.to_string(),
        dry_run,
    }
}

fn amounts_map(amounts: &Option<BTreeMap<String, String>>) -> Result<Option<HashMap<String, Fen>>> {
    let Some(amounts) = amounts else {
        return Ok(None);
    };
    let mut out = HashMap::new();
    let mut errors = Vec::new();
    for (code, text) in amounts {
        match parse_amount(text, SignRule::Positive) {
            Ok(a) => {
                out.insert(code.trim().to_ascii_uppercase(), a);
            }
            Err(e) => errors.push(format!("amounts.{code}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(Some(out))
    } else {
        Err(ApiError::refused("amounts: refused, nothing was posted").with_details(errors))
    }
}

/// 下达 / 配套: a level releases each county's share (computed from the roster, or the given
/// amounts). Province releases need a province-scoped finance user, city releases a city-scoped one,
/// the county's matching share the county's finance.
#[utoipa::path(post, path = "/api/v1/allocations", tag = "flow", security(("bearer" = [])),
    request_body = AllocateBody,
    responses((status = 200, body = TransferResult), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn allocate(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<AllocateBody>,
) -> Result<Json<TransferResult>> {
    require_roles(&user, &[Role::Admin, Role::Finance], "release funds")?;
    let store = &state.store;
    let level = match body.level.trim().to_ascii_lowercase().as_str() {
        "province" => Level::Province,
        "city" => Level::City,
        "county" => Level::County,
        other => {
            return Err(ApiError::refused(format!(
                "level \"{other}\" is not province, city or county"
            )));
        }
    };
    let program = program_of(store, &body.program).await?;
    let (from, to) = months(&body.from, &body.to)?;
    let regions = store.regions().await?;
    let units = store.units().await?;
    if user.role == Role::Finance {
        let scope_level = regions.get(&user.scope).map(|r| (r.level, r.county_role));
        let fits = matches!(
            (level, scope_level),
            (Level::Province, Some((crate::region::Level::Province, _)))
                | (Level::City, Some((crate::region::Level::City, _)))
                | (Level::County, Some((_, true)))
        );
        if !fits {
            return Err(deny(&user, &format!("post a {} release", level.code())));
        }
    }
    let counties: Vec<Option<String>> = match &body.county {
        Some(c) => {
            let c = c.trim().to_string();
            require_county(&user, &regions, &units, &c, "release funds")?;
            vec![Some(c)]
        }
        None => match readable_counties(&user, &regions, &units) {
            None => vec![None],
            Some(list) => list.into_iter().map(Some).collect(),
        },
    };
    let amounts = amounts_map(&body.amounts)?;
    if let Some(amounts) = &amounts {
        for county in amounts.keys() {
            require_county(&user, &regions, &units, county, "release funds")?;
        }
    }
    let mut lines = Vec::new();
    for county in &counties {
        let part = amounts.as_ref().map(|a| {
            a.iter()
                .filter(|(c, _)| county.as_ref().is_none_or(|k| *c == k))
                .map(|(c, f)| (c.clone(), *f))
                .collect::<HashMap<_, _>>()
        });
        if part.as_ref().is_some_and(HashMap::is_empty) {
            continue;
        }
        lines.extend(
            flow::allocate(
                store,
                flow::AllocateRequest {
                    program: &program,
                    level,
                    document: body.document.trim(),
                    date: body.date,
                    from,
                    to,
                    county: county.as_deref(),
                    amounts: part,
                    dry_run: body.dry_run,
                },
            )
            .await?,
        );
    }
    audit.entries(lines.iter().filter(|l| l.outcome.is_some()).map(|l| {
        let kind = if level == Level::County {
            "matching"
        } else {
            "release"
        };
        format!("{kind}:{}:{}", body.document.trim(), l.county)
    }));
    audit.detail(format!(
        "{} {} {} {from}..{to}",
        program.code(),
        level.code(),
        body.document.trim()
    ));
    Ok(Json(transfer_result(lines, body.dry_run)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisburseBody {
    pub program: String,
    pub county: String,
    pub document: String,
    pub date: NaiveDate,
    pub from: String,
    pub to: String,
    /// Amounts per unit (yuan); without them, each unit's computed need.
    pub amounts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub dry_run: bool,
}

/// 拨付: county finance passes funds to its disbursing units.
#[utoipa::path(post, path = "/api/v1/disbursements", tag = "flow", security(("bearer" = [])),
    request_body = DisburseBody,
    responses((status = 200, body = TransferResult), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn disburse(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<DisburseBody>,
) -> Result<Json<TransferResult>> {
    require_roles(&user, &[Role::Admin, Role::Finance], "disburse funds")?;
    let store = &state.store;
    let county = body.county.trim().to_string();
    let regions = store.regions().await?;
    let units = store.units().await?;
    require_county(&user, &regions, &units, &county, "disburse funds")?;
    let program = program_of(store, &body.program).await?;
    let (from, to) = months(&body.from, &body.to)?;
    let lines = flow::disburse(
        store,
        flow::DisburseRequest {
            program: &program,
            county: &county,
            document: body.document.trim(),
            date: body.date,
            from,
            to,
            amounts: amounts_map(&body.amounts)?,
            dry_run: body.dry_run,
        },
    )
    .await?;
    audit.entries(
        lines
            .iter()
            .filter(|l| l.outcome.is_some())
            .map(|l| format!("disbursement:{}:{}", body.document.trim(), l.to)),
    );
    audit.detail(format!(
        "{} disburse {county} {}",
        program.code(),
        body.document
    ));
    Ok(Json(transfer_result(lines, body.dry_run)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnBody {
    pub program: String,
    /// A unit code (returns to county finance) or a county code (returns to `to`).
    pub from: String,
    /// For a county's return: `province` or `city`.
    pub to: Option<String>,
    /// Yuan.
    pub amount: String,
    pub document: String,
    pub date: NaiveDate,
}

#[derive(Serialize, ToSchema)]
pub struct PostedOut {
    /// `posted` or `already`.
    pub status: String,
    pub county: String,
    pub seq: i64,
}

fn posted(outcome: Outcome) -> Result<PostedOut> {
    match outcome {
        Outcome::Posted { county, seq } => Ok(PostedOut {
            status: "posted".into(),
            county,
            seq,
        }),
        Outcome::AlreadyPosted { county, seq } => Ok(PostedOut {
            status: "already".into(),
            county,
            seq,
        }),
        Outcome::Refused(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            format!("{e}; nothing was written"),
        )),
    }
}

/// 结余退回: unspent funds go back up (unit → county finance, county → the releasing level).
#[utoipa::path(post, path = "/api/v1/returns", tag = "flow", security(("bearer" = [])),
    request_body = ReturnBody,
    responses((status = 200, body = PostedOut), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn return_funds(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<ReturnBody>,
) -> Result<Json<PostedOut>> {
    require_writer(&user, "return funds")?;
    let store = &state.store;
    let regions = store.regions().await?;
    let units = store.units().await?;
    let from = body.from.trim().to_ascii_uppercase();
    if let Some(unit) = units.iter().find(|u| u.code == from) {
        if !user.covers_unit(&regions, unit) {
            return Err(deny(&user, &format!("return funds of unit {from}")));
        }
    } else {
        require_roles(
            &user,
            &[Role::Admin, Role::Finance],
            "return a county's funds",
        )?;
        require_county(&user, &regions, &units, &from, "return funds")?;
    }
    let to = match body.to.as_deref().map(|t| t.trim().to_ascii_lowercase()) {
        None => None,
        Some(t) if t == "province" => Some(Level::Province),
        Some(t) if t == "city" => Some(Level::City),
        Some(t) => {
            return Err(ApiError::refused(format!(
                "to \"{t}\" is not province or city"
            )));
        }
    };
    let program = program_of(store, &body.program).await?;
    let amount = amount("amount", &body.amount)?;
    let outcome = flow::return_funds(
        store,
        &program,
        &from,
        to,
        amount,
        body.document.trim(),
        body.date,
    )
    .await?;
    let out = posted(outcome)?;
    audit.entries([format!("return:{}:{from}", body.document.trim())]);
    audit.detail(format!("{} return {amount} from {from}", program.code()));
    Ok(Json(out))
}

// ---------------------------------------------------------------------------------------------
// Payouts

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub unit: String,
    pub program: String,
    /// The month paid, YYYY-MM.
    pub month: String,
    /// The business date (default: today).
    pub date: Option<NaiveDate>,
    /// `daifa` (批量代发, GBK text), `csv`, or `pain001` (ISO 20022 pain.001.001.09). Default daifa.
    pub format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ScreenHitOut {
    pub id_masked: String,
    pub name: String,
    pub reason: String,
    /// The cross-check rule (R01…) that blocked the line or warns about it.
    pub rule: Option<String>,
}

fn hits(hits: Vec<flow::payout::ScreenHit>) -> Vec<ScreenHitOut> {
    hits.into_iter()
        .map(|h| ScreenHitOut {
            rule: h.rule.map(|r| r.code().to_string()),
            id_masked: h.id_masked,
            name: h.name,
            reason: h.reason,
        })
        .collect()
}

#[derive(Serialize, ToSchema)]
pub struct BatchOut {
    pub batch_id: String,
    pub lines: usize,
    /// Yuan.
    pub total: String,
    pub retries: usize,
    /// Where to download the bank file.
    pub file_url: String,
    pub screened: Vec<ScreenHitOut>,
    /// Lines paid with a posting-time warning (R05).
    pub warnings: Vec<ScreenHitOut>,
}

/// 发放: builds a payout batch for one unit and month, reserves every line on the unit's funds
/// (pending entries), and writes the bank file.
#[utoipa::path(post, path = "/api/v1/payout-batches", tag = "payout", security(("bearer" = [])),
    request_body = BatchBody,
    responses((status = 200, body = BatchOut), (status = 403, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
async fn create_batch(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Json<BatchOut>> {
    require_writer(&user, "create payout batches")?;
    let store = &state.store;
    let unit = unit_of(store, &body.unit).await?;
    let regions = store.regions().await?;
    if !user.covers_unit(&regions, &unit) {
        return Err(deny(&user, &format!("pay for unit {}", unit.code)));
    }
    let program = program_of(store, &body.program).await?;
    let month = month("month", &body.month)?;
    let format = crate::flow::bank::BankFormat::parse(body.format.as_deref().unwrap_or("daifa"))
        .map_err(|e| ApiError::refused(format!("format: {e}")))?;
    std::fs::create_dir_all(&state.out_dir).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{}: {e}", state.out_dir.display()),
        )
    })?;
    let report = flow::payout::create(
        store,
        flow::payout::PayoutRequest {
            program: &program,
            unit: &unit.code,
            month,
            date: body
                .date
                .unwrap_or_else(|| chrono::Local::now().date_naive()),
            format,
            out_dir: &state.out_dir,
            only: None,
        },
    )
    .await?;
    audit.entries([format!("payment:{}", report.batch_id)]);
    audit.detail(format!(
        "batch {} of {} lines, {}",
        report.batch_id, report.lines, report.total
    ));
    Ok(Json(BatchOut {
        file_url: format!("/api/v1/payout-batches/{}/file", report.batch_id),
        batch_id: report.batch_id,
        lines: report.lines,
        total: report.total.to_string(),
        retries: report.retries,
        screened: hits(report.screened),
        warnings: hits(report.warnings),
    }))
}

async fn batch_owner(store: &Store, batch_id: &str) -> Result<(Unit, String)> {
    use sqlx::Row;
    let row = sqlx::query("SELECT unit_code, file_name FROM payout_batches WHERE batch_id = $1")
        .bind(batch_id.to_string())
        .fetch_optional(store.pool())
        .await
        .map_err(crate::store::StoreError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no payout batch {batch_id}")))?;
    let unit: String = row.try_get(0).map_err(crate::store::StoreError::from)?;
    let file: String = row.try_get(1).map_err(crate::store::StoreError::from)?;
    Ok((unit_of(store, &unit).await?, file))
}

/// The bank file of a batch, as written when the batch was created.
#[utoipa::path(get, path = "/api/v1/payout-batches/{batch_id}/file", tag = "payout",
    security(("bearer" = [])), params(("batch_id" = String, Path, description = "The batch's id")),
    responses((status = 200, description = "The bank file", content_type = "application/octet-stream"),
        (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
async fn batch_file(
    State(state): State<Shared>,
    Auth(user): Auth,
    Path(batch_id): Path<String>,
) -> Result<Response> {
    let store = &state.store;
    let (unit, file) = batch_owner(store, &batch_id).await?;
    let regions = store.regions().await?;
    if !user.covers_unit(&regions, &unit) {
        return Err(deny(
            &user,
            &format!("read unit {}'s bank files", unit.code),
        ));
    }
    let bytes = std::fs::read(&file).map_err(|e| {
        ApiError::not_found(format!(
            "the bank file {file} of batch {batch_id} is not on this server: {e}"
        ))
    })?;
    let name = std::path::Path::new(&file)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| batch_id.clone());
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", percent_encode(&name)),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultParams {
    /// The file's name as the bank sent it (it names the format for some banks).
    pub name: Option<String>,
    /// The posting date (default today).
    pub date: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct ResultOut {
    pub batch_id: String,
    pub paid: usize,
    pub failed: usize,
    pub already: usize,
    /// Masked IDs the bank reported deceased (MD07).
    pub deceased: Vec<String>,
    pub failures: Vec<String>,
}

/// The bank's answer to a batch (the raw file as the body): its first answer posts the batch (voids it
/// if every line failed), each failed line's money comes back to the unit and its month stays owed.
/// Reading the same answer twice changes nothing.
#[utoipa::path(post, path = "/api/v1/bank-results", tag = "payout", security(("bearer" = [])),
    params(ResultParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = ResultOut), (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
async fn bank_result(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiQuery(params): ApiQuery<ResultParams>,
    body: Bytes,
) -> Result<Json<ResultOut>> {
    require_writer(&user, "post bank results")?;
    let store = &state.store;
    let name = params
        .name
        .as_deref()
        .map(|n| {
            std::path::Path::new(n)
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "bank-result".to_string());
    if body.is_empty() {
        return Err(ApiError::refused(format!(
            "{name}: the body is empty: send the bank's file"
        )));
    }
    let batch_id = match crate::flow::bank::read_result(&body, &name) {
        Ok(answer) => answer.batch_id,
        Err(crate::flow::bank::BankError::BatchRejected { batch_id, .. }) => batch_id,
        Err(e) => return Err(ApiError::refused(e.to_string())),
    };
    let (unit, _) = batch_owner(store, &batch_id).await?;
    let regions = store.regions().await?;
    if !user.covers_unit(&regions, &unit) {
        return Err(deny(&user, &format!("post results for unit {}", unit.code)));
    }
    let dir = tempfile_dir()?;
    let path = dir.join(&name);
    std::fs::write(&path, &body)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let report = flow::payout::result(
        store,
        &path,
        params
            .date
            .unwrap_or_else(|| chrono::Local::now().date_naive()),
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let report = report?;
    audit.entries([
        format!("post/void:payment:{}", report.batch_id),
        format!("failed:payment:{}:*", report.batch_id),
    ]);
    audit.detail(format!(
        "bank result for {}: {} paid, {} failed, {} already",
        report.batch_id, report.paid, report.failed, report.already
    ));
    Ok(Json(ResultOut {
        batch_id: report.batch_id,
        paid: report.paid,
        failed: report.failed,
        already: report.already,
        deceased: report.deceased.iter().map(|id| mask_id(id)).collect(),
        failures: report
            .failures
            .iter()
            .map(|(line, code, reason)| format!("line {line}: {code} {reason}"))
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentLineIn {
    pub id_number: String,
    /// YYYY-MM.
    pub month: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    pub unit: String,
    pub program: String,
    pub date: NaiveDate,
    pub lines: Vec<PaymentLineIn>,
    /// Show full ID numbers in the answer (needs the personal-data right).
    pub full: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentLineOut {
    pub id_number: String,
    pub month: String,
    /// Yuan.
    pub amount: String,
    /// `paid` (posted now) or `already` (posted by an earlier identical request).
    pub status: String,
    pub entry_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentOut {
    pub lines: Vec<PaymentLineOut>,
    /// Yuan, of the lines posted now.
    pub total_paid_now: String,
}

/// 直接发放: a unit records payments it made, one line per person-month, from its own funds. Every
/// line is checked first; one bad line refuses the request. Retrying the same request is safe.
#[utoipa::path(post, path = "/api/v1/payments", tag = "payout", security(("bearer" = [])),
    request_body = PaymentBody,
    responses((status = 200, body = PaymentOut), (status = 403, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
async fn pay(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<PaymentBody>,
) -> Result<Json<PaymentOut>> {
    require_writer(&user, "record payments")?;
    let full = full_view(&user, body.full)?;
    let store = &state.store;
    let unit = unit_of(store, &body.unit).await?;
    let regions = store.regions().await?;
    if !user.covers_unit(&regions, &unit) {
        return Err(deny(&user, &format!("pay from unit {}'s funds", unit.code)));
    }
    let program = program_of(store, &body.program).await?;
    if body.lines.len() > 10_000 {
        return Err(ApiError::refused(format!(
            "{} lines: a payment request takes at most 10,000 (use a payout batch for more)",
            body.lines.len()
        )));
    }
    let mut lines = Vec::with_capacity(body.lines.len());
    let mut errors = Vec::new();
    for (i, line) in body.lines.iter().enumerate() {
        let id = match IdNumber::parse(&line.id_number) {
            Ok(id) => id.as_str().to_string(),
            Err(e) => {
                errors.push(format!("lines[{i}].id_number: {e}"));
                continue;
            }
        };
        match line.month.trim().parse::<YearMonth>() {
            Ok(month) => lines.push(flow::payout::PaymentLine {
                id_number: id,
                month,
            }),
            Err(_) => errors.push(format!(
                "lines[{i}].month: \"{}\" is not a month YYYY-MM",
                line.month
            )),
        }
    }
    if !errors.is_empty() {
        return Err(
            ApiError::refused("the payment was refused: nothing was written").with_details(errors),
        );
    }
    match flow::payout::pay(store, &program, &unit.code, body.date, &lines).await? {
        Err(refusal) => Err(
            ApiError::refused("the payment was refused: nothing was written").with_details(
                refusal
                    .lines
                    .iter()
                    .map(|(row, why)| format!("lines[{}]: {why}", row - 1))
                    .collect(),
            ),
        ),
        Ok(outcomes) => {
            let mut total = Fen::ZERO;
            for o in outcomes.iter().filter(|o| o.status == "paid") {
                total = total.checked_add(o.amount).unwrap_or(total);
            }
            audit.entries(
                outcomes
                    .iter()
                    .filter(|o| o.status == "paid")
                    .map(|o| o.entry_key.clone()),
            );
            audit.detail(format!(
                "{} payment(s) from {} of {}",
                outcomes.len(),
                unit.code,
                total
            ));
            Ok(Json(PaymentOut {
                total_paid_now: total.to_string(),
                lines: outcomes
                    .into_iter()
                    .map(|o| PaymentLineOut {
                        id_number: if full {
                            o.id_number.clone()
                        } else {
                            mask_id(&o.id_number)
                        },
                        month: o.month,
                        amount: o.amount.to_string(),
                        status: o.status.to_string(),
                        entry_key: if full {
                            o.entry_key
                        } else {
                            crate::inspect::mask_ids(&o.entry_key)
                        },
                    })
                    .collect(),
            }))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recoveries

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverScanBody {
    pub program: String,
    pub date: NaiveDate,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryOut {
    pub id_masked: String,
    pub name: String,
    pub month: String,
    /// Yuan.
    pub amount: String,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoverScanOut {
    pub found: Vec<RecoveryOut>,
    pub posted: usize,
    pub already: usize,
}

/// 追回: finds payments for months after a death, employment or leaving, and books receivables.
/// Province-wide: admin or province finance.
#[utoipa::path(post, path = "/api/v1/recoveries/scan", tag = "flow", security(("bearer" = [])),
    request_body = RecoverScanBody,
    responses((status = 200, body = RecoverScanOut), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn recover_scan(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<RecoverScanBody>,
) -> Result<Json<RecoverScanOut>> {
    let store = &state.store;
    let regions = store.regions().await?;
    let province_wide = user.role == Role::Admin
        || (user.role == Role::Finance
            && regions
                .get(&user.scope)
                .is_some_and(|r| r.level == crate::region::Level::Province));
    if !province_wide {
        return Err(deny(&user, "scan the province for recoveries"));
    }
    let program = program_of(store, &body.program).await?;
    let report = flow::payout::recover(store, &program, body.date).await?;
    audit.detail(format!(
        "{} recoveries: {} found, {} booked",
        program.code(),
        report.found.len(),
        report.posted
    ));
    Ok(Json(RecoverScanOut {
        posted: report.posted,
        already: report.already,
        found: report
            .found
            .into_iter()
            .map(|(id, name, month, amount, reason)| RecoveryOut {
                id_masked: id,
                name,
                month: month.to_string(),
                amount: amount.to_string(),
                reason,
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    pub program: String,
    pub id_number: String,
    /// The unit the money comes back to.
    pub unit: String,
    /// Yuan.
    pub amount: String,
    pub document: String,
    pub date: NaiveDate,
}

/// Money recovered from a person comes back to the unit's funds.
#[utoipa::path(post, path = "/api/v1/recoveries/receipts", tag = "flow", security(("bearer" = [])),
    request_body = ReceiptBody,
    responses((status = 200, body = PostedOut), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn recover_receipt(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<ReceiptBody>,
) -> Result<Json<PostedOut>> {
    require_writer(&user, "record recovered money")?;
    let store = &state.store;
    let unit = unit_of(store, &body.unit).await?;
    let regions = store.regions().await?;
    if !user.covers_unit(&regions, &unit) {
        return Err(deny(
            &user,
            &format!("record receipts for unit {}", unit.code),
        ));
    }
    let program = program_of(store, &body.program).await?;
    let id = IdNumber::parse(&body.id_number)
        .map_err(|e| ApiError::refused(format!("id_number: {e}")))?;
    let amount = amount("amount", &body.amount)?;
    let outcome = flow::payout::receive(
        store,
        &program,
        id.as_str(),
        &unit.code,
        amount,
        body.document.trim(),
        body.date,
    )
    .await?;
    let out = posted(outcome)?;
    audit.detail(format!(
        "recovered {amount} from {} into {}",
        id.masked(),
        unit.code
    ));
    Ok(Json(out))
}

// ---------------------------------------------------------------------------------------------
// People and entitlements

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleParams {
    pub program: String,
    /// Full ID numbers and bank accounts (needs the personal-data right).
    pub full: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct PersonOut {
    pub id_number: String,
    pub name: String,
    pub county: String,
    pub bank_account: Option<String>,
    pub death_date: Option<NaiveDate>,
    pub exclusion: Option<String>,
    pub left_date: Option<NaiveDate>,
}

/// A unit's people on a program's roster.
#[utoipa::path(get, path = "/api/v1/units/{unit}/people", tag = "roster", security(("bearer" = [])),
    params(("unit" = String, Path, description = "Unit code"), PeopleParams),
    responses((status = 200, body = Vec<PersonOut>), (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
async fn unit_people(
    State(state): State<Shared>,
    Auth(user): Auth,
    Path(unit): Path<String>,
    ApiQuery(params): ApiQuery<PeopleParams>,
) -> Result<Json<Vec<PersonOut>>> {
    let store = &state.store;
    let unit = unit_of(store, &unit).await?;
    let regions = store.regions().await?;
    if !user.covers_unit(&regions, &unit) {
        return Err(deny(&user, &format!("see unit {}'s people", unit.code)));
    }
    let full = full_view(&user, params.full)?;
    let program = program_of(store, &params.program).await?;
    let people = store
        .roster_entries_for_unit(program.code(), &unit.code)
        .await?;
    Ok(Json(
        people
            .into_iter()
            .map(|p| PersonOut {
                id_number: if full {
                    p.id_number.clone()
                } else {
                    mask_id(&p.id_number)
                },
                name: p.name,
                county: p.county,
                bank_account: p
                    .bank_account
                    .map(|a| if full { a } else { mask_account(&a) }),
                death_date: p.death_date,
                exclusion: p.exclusion,
                left_date: p.left_date,
            })
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntitlementParams {
    pub program: String,
    pub county: String,
    /// YYYY-MM.
    pub from: String,
    /// YYYY-MM.
    pub to: String,
    pub full: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct EntitlementOut {
    pub id_number: String,
    pub name: String,
    pub month: String,
    /// Yuan.
    pub amount: String,
    pub tier: String,
    pub province_share: String,
    pub city_share: String,
    pub county_share: String,
}

/// 应发: what each person of a county is owed per month, with each level's share.
#[utoipa::path(get, path = "/api/v1/entitlements", tag = "roster", security(("bearer" = [])),
    params(EntitlementParams),
    responses((status = 200, body = Vec<EntitlementOut>), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn entitlements(
    State(state): State<Shared>,
    Auth(user): Auth,
    ApiQuery(params): ApiQuery<EntitlementParams>,
) -> Result<Json<Vec<EntitlementOut>>> {
    let store = &state.store;
    let regions = store.regions().await?;
    let units = store.units().await?;
    let county = params.county.trim().to_string();
    require_county(&user, &regions, &units, &county, "read entitlements")?;
    if user.role == Role::Unit {
        return Err(deny(&user, "read a whole county's entitlements"));
    }
    let full = full_view(&user, params.full)?;
    let program = program_of(store, &params.program).await?;
    let (from, to) = months(&params.from, &params.to)?;
    let rows = flow::roster_entitlements(store, &program, from, to, Some(&county)).await?;
    let mut out = Vec::new();
    for (person, months) in rows {
        for e in months {
            out.push(EntitlementOut {
                id_number: if full {
                    e.id_number.clone()
                } else {
                    mask_id(&e.id_number)
                },
                name: person.name.clone(),
                month: e.month.to_string(),
                amount: e.amount.to_string(),
                tier: e.tier,
                province_share: e.province_share.to_string(),
                city_share: e.city_share.to_string(),
                county_share: e.county_share.to_string(),
            });
        }
    }
    Ok(Json(out))
}

// ---------------------------------------------------------------------------------------------
// Reports, spot checks, traces

#[derive(Serialize, ToSchema)]
pub struct ReportInfo {
    pub name: String,
    pub title: String,
    pub params: Vec<String>,
}

/// The report definitions (reports/*.toml).
#[utoipa::path(get, path = "/api/v1/reports", tag = "inspect", security(("bearer" = [])),
    responses((status = 200, body = Vec<ReportInfo>), (status = 401, body = super::ErrorBody)))]
async fn report_list(Auth(_user): Auth) -> Result<Json<Vec<ReportInfo>>> {
    let defs = crate::inspect::engine::try_definitions()?;
    Ok(Json(
        defs.into_iter()
            .map(|d| ReportInfo {
                name: d.name.clone(),
                title: d.title.clone(),
                params: d.params.iter().map(|p| p.name.clone()).collect(),
            })
            .collect(),
    ))
}

/// Runs a report. Its parameters are query parameters (e.g. `?county=440511&program=MBDK`);
/// `format` is json (default), csv, xlsx or html. A caller scoped below the province must name a
/// county of its scope.
#[utoipa::path(get, path = "/api/v1/reports/{name}", tag = "inspect", security(("bearer" = [])),
    params(("name" = String, Path, description = "Report name"),
        ("format" = Option<String>, Query, description = "json, csv, xlsx or html")),
    responses((status = 200, description = "The report in the format asked for"),
        (status = 400, body = super::ErrorBody), (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
async fn report_run(
    State(state): State<Shared>,
    Auth(user): Auth,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<BTreeMap<String, String>>,
) -> Result<Response> {
    if user.role == Role::Unit {
        return Err(deny(&user, "run reports"));
    }
    let store = &state.store;
    let def = crate::inspect::engine::find(&name)?;
    let format = parse_format(query.get("format").map(String::as_str))?;
    let params: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k.as_str() != "format")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let regions = store.regions().await?;
    let units = store.units().await?;
    let city = params
        .iter()
        .find(|(k, _)| k == "city")
        .map(|(_, v)| v.trim().to_string());
    if let Some(city) = city.filter(|_| readable_counties(&user, &regions, &units).is_some()) {
        // A city's table (附件5): the city's own finance or inspectors, or the province's.
        if user.role == Role::Unit || user.scope != city {
            return Err(deny(&user, &format!("read city {city}'s tables")));
        }
    } else if readable_counties(&user, &regions, &units).is_some() {
        let county = params
            .iter()
            .find(|(k, _)| k == "county")
            .map(|(_, v)| v.clone());
        match county {
            Some(c) => require_county(&user, &regions, &units, c.trim(), "read reports")?,
            None => {
                return Err(deny(
                    &user,
                    "run a province-wide report: name a county of your scope with county=…",
                ));
            }
        }
    }
    // The county's registry tables carry whole ID numbers: only for users with that right.
    if matches!(def.name.as_str(), "table_roster" | "table_changes") && !user.personal_data {
        return Err(deny(
            &user,
            "read tables with whole ID numbers (needs the personal-data right)",
        ));
    }
    let sheet = crate::inspect::engine::run(store, &def, &params).await?;
    sheet_response(&sheet, format)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpotCheckBody {
    pub program: String,
    pub county: Option<String>,
    /// YYYY-MM.
    pub from: String,
    /// YYYY-MM.
    pub to: String,
    /// `simple`, `stratified` or `monetary`.
    pub method: String,
    /// The sample size; without it, the attribute size for `confidence` and `tolerable`.
    pub size: Option<usize>,
    /// Percent (default 95).
    pub confidence: Option<String>,
    /// Percent (default 5).
    pub tolerable: Option<String>,
    pub seed: u64,
    /// `json` (default) or `xlsx` (the workpaper).
    pub format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SpotCheckOut {
    pub seed: u64,
    pub method: String,
    pub population: usize,
    pub sample: usize,
    pub failed: usize,
    /// Each sampled item: payment key, masked ID, month, amount and PASS/FAIL per check.
    pub items: serde_json::Value,
}

/// 抽查: a reproducible spot check; `format: xlsx` downloads the workpaper.
#[utoipa::path(post, path = "/api/v1/spot-checks", tag = "inspect", security(("bearer" = [])),
    request_body = SpotCheckBody,
    responses((status = 200, body = SpotCheckOut), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn spot_check(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<SpotCheckBody>,
) -> Result<Response> {
    require_roles(
        &user,
        &[Role::Admin, Role::Inspector, Role::Finance],
        "run spot checks",
    )?;
    let store = &state.store;
    let regions = store.regions().await?;
    let units = store.units().await?;
    match &body.county {
        Some(c) => require_county(&user, &regions, &units, c.trim(), "spot-check")?,
        None if readable_counties(&user, &regions, &units).is_some() => {
            return Err(deny(&user, "spot-check the whole province: name a county"));
        }
        None => {}
    }
    let (from, to) = months(&body.from, &body.to)?;
    let method = match body.method.trim().to_ascii_lowercase().as_str() {
        "simple" => crate::inspect::sample::Method::Simple,
        "stratified" => crate::inspect::sample::Method::Stratified,
        "monetary" => crate::inspect::sample::Method::Monetary,
        other => {
            return Err(ApiError::refused(format!(
                "method \"{other}\" is not simple, stratified or monetary"
            )));
        }
    };
    let percent = |field: &str, text: Option<&str>, default: &str| {
        text.unwrap_or(default)
            .trim()
            .parse::<rust_decimal::Decimal>()
            .map_err(|_| {
                ApiError::refused(format!(
                    "{field}: \"{}\" is not a percentage",
                    text.unwrap_or(default)
                ))
            })
    };
    let request = crate::inspect::workpaper::SpotCheckRequest {
        program: body.program.trim().to_ascii_uppercase(),
        county: body.county.as_ref().map(|c| c.trim().to_string()),
        from,
        to,
        method,
        size: body.size,
        confidence: percent("confidence", body.confidence.as_deref(), "95")?,
        tolerable: percent("tolerable", body.tolerable.as_deref(), "5")?,
        seed: body.seed,
    };
    let check = crate::inspect::workpaper::spot_check(store, request).await?;
    audit.detail(format!(
        "spot check {} seed {} ({} items)",
        body.program,
        body.seed,
        check.items.len()
    ));
    match body
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("xlsx") => workpaper_response(&check, "workpaper.xlsx"),
        None | Some("json") => {
            let sheet = crate::inspect::workpaper::sheet(&check, false);
            let items: serde_json::Value =
                serde_json::from_str(&sheet.to_json()).unwrap_or(serde_json::Value::Null);
            Ok(Json(SpotCheckOut {
                seed: body.seed,
                method: body.method.to_ascii_lowercase(),
                population: check.sample.population_count,
                sample: check.items.len(),
                failed: check.failed(),
                items,
            })
            .into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "format \"{other}\" is not json or xlsx"
        ))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TraceParams {
    /// Full ID numbers (needs the personal-data right).
    pub full: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct TraceOut {
    pub title: String,
    pub subtitle: Vec<String>,
    /// Each section as a table (title, columns, rows).
    pub sections: Vec<serde_json::Value>,
}

fn trace_out(trace: &crate::inspect::trace::Trace) -> TraceOut {
    TraceOut {
        title: trace.title.clone(),
        subtitle: trace.subtitle.clone(),
        sections: trace
            .sections
            .iter()
            .map(|s| serde_json::from_str(&s.to_json()).unwrap_or(serde_json::Value::Null))
            .collect(),
    }
}

/// The counties a person is on a roster in.
pub(super) async fn person_counties(store: &Store, id: &str) -> Result<Vec<String>> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT DISTINCT county_code FROM roster WHERE id_number = $1")
        .bind(id.to_string())
        .fetch_all(store.pool())
        .await
        .map_err(crate::store::StoreError::from)?;
    rows.iter()
        .map(|r| {
            r.try_get::<String, _>(0)
                .map_err(|e| crate::store::StoreError::from(e).into())
        })
        .collect()
}

/// 追溯: the whole path of a person's money, from the releases to each bank line.
#[utoipa::path(get, path = "/api/v1/trace/person/{id_number}", tag = "inspect",
    security(("bearer" = [])),
    params(("id_number" = String, Path, description = "The person's ID number"), TraceParams),
    responses((status = 200, body = TraceOut), (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
async fn trace_person(
    State(state): State<Shared>,
    Auth(user): Auth,
    Path(id_number): Path<String>,
    ApiQuery(params): ApiQuery<TraceParams>,
) -> Result<Json<TraceOut>> {
    let store = &state.store;
    let full = full_view(&user, params.full)?;
    let id = id_number.trim().to_ascii_uppercase();
    let counties = person_counties(store, &id).await?;
    if counties.is_empty() {
        return Err(ApiError::not_found(format!(
            "{} is on no roster",
            mask_id(&id)
        )));
    }
    let regions = store.regions().await?;
    let units = store.units().await?;
    let allowed = match user.role {
        Role::Unit => {
            use sqlx::Row;
            let row =
                sqlx::query("SELECT COUNT(*) FROM roster WHERE id_number = $1 AND unit_code = $2")
                    .bind(id.clone())
                    .bind(user.scope.clone())
                    .fetch_one(store.pool())
                    .await
                    .map_err(crate::store::StoreError::from)?;
            row.try_get::<i64, _>(0).unwrap_or(0) > 0
        }
        _ => counties
            .iter()
            .any(|c| user.covers_county(&regions, &units, c)),
    };
    if !allowed {
        return Err(deny(&user, "trace a person outside its scope"));
    }
    let trace = crate::inspect::trace::trace_person(store, &id, full).await?;
    Ok(Json(trace_out(&trace)))
}

/// 追溯: one entry, up and down the chain.
#[utoipa::path(get, path = "/api/v1/trace/entry/{key}", tag = "inspect", security(("bearer" = [])),
    params(("key" = String, Path, description = "The entry's key"), TraceParams),
    responses((status = 200, body = TraceOut), (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
async fn trace_entry(
    State(state): State<Shared>,
    Auth(user): Auth,
    Path(key): Path<String>,
    ApiQuery(params): ApiQuery<TraceParams>,
) -> Result<Json<TraceOut>> {
    use sqlx::Row;
    let store = &state.store;
    let full = full_view(&user, params.full)?;
    let row = sqlx::query("SELECT county_code FROM entries WHERE idem_key = $1")
        .bind(key.clone())
        .fetch_optional(store.pool())
        .await
        .map_err(crate::store::StoreError::from)?
        .ok_or_else(|| {
            ApiError::not_found(format!("no entry {}", crate::inspect::mask_ids(&key)))
        })?;
    let county: String = row.try_get(0).map_err(crate::store::StoreError::from)?;
    let regions = store.regions().await?;
    let units = store.units().await?;
    if user.role == Role::Unit || !user.covers_county(&regions, &units, &county) {
        return Err(deny(&user, &format!("trace entries of county {county}")));
    }
    let trace = crate::inspect::trace::trace_entry(store, &key, full).await?;
    Ok(Json(trace_out(&trace)))
}

// ---------------------------------------------------------------------------------------------
// Books: balances, check, verify, findings, deadlines, audit

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BalanceParams {
    pub county: Option<String>,
    pub program: Option<String>,
    pub as_of: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct BalanceOut {
    pub county: String,
    pub program: String,
    pub owner: String,
    pub kind: String,
    /// Yuan.
    pub balance: String,
    /// Yuan reserved by pending payout lines.
    pub reserved: String,
}

/// 余额: account balances (a unit sees its own accounts; others their counties).
#[utoipa::path(get, path = "/api/v1/balances", tag = "books", security(("bearer" = [])),
    params(BalanceParams),
    responses((status = 200, body = Vec<BalanceOut>), (status = 403, body = super::ErrorBody)))]
async fn balances(
    State(state): State<Shared>,
    Auth(user): Auth,
    ApiQuery(params): ApiQuery<BalanceParams>,
) -> Result<Json<Vec<BalanceOut>>> {
    let store = &state.store;
    let regions = store.regions().await?;
    let units = store.units().await?;
    let readable = readable_counties(&user, &regions, &units);
    let county = match (&params.county, &readable) {
        (Some(c), _) => {
            require_county(&user, &regions, &units, c.trim(), "read balances")?;
            Some(c.trim().to_string())
        }
        (None, None) => None,
        (None, Some(list)) if list.len() == 1 => Some(list[0].clone()),
        (None, Some(_)) => {
            return Err(ApiError::refused(
                "name a county of your scope with county=…",
            ));
        }
    };
    let rows = store
        .balances(&crate::store::BalanceFilter {
            county,
            program: params.program.map(|p| p.trim().to_ascii_uppercase()),
            as_of: params.as_of,
            include_zero: false,
            ..Default::default()
        })
        .await?;
    Ok(Json(
        rows.into_iter()
            .filter(|r| user.role != Role::Unit || r.owner == user.scope)
            .map(|r| BalanceOut {
                county: r.county_code,
                program: r.program,
                owner: r.owner,
                kind: r.kind,
                balance: r.balance.to_string(),
                reserved: r.reserved.to_string(),
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct CheckOut {
    pub entries: i64,
    pub postings: i64,
    pub accounts: i64,
    pub problems: Vec<String>,
    pub ok: bool,
}

/// 核对: every entry balanced and single-program, balances equal to the postings, no overdraft.
#[utoipa::path(get, path = "/api/v1/check", tag = "books", security(("bearer" = [])),
    responses((status = 200, body = CheckOut), (status = 403, body = super::ErrorBody)))]
async fn check(State(state): State<Shared>, Auth(user): Auth) -> Result<Json<CheckOut>> {
    require_roles(
        &user,
        &[Role::Admin, Role::Inspector, Role::Finance],
        "check the books",
    )?;
    let report = state.store.check().await?;
    Ok(Json(CheckOut {
        ok: report.problems.is_empty(),
        entries: report.entries,
        postings: report.postings,
        accounts: report.accounts,
        problems: report.problems,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct VerifyOut {
    pub counties: usize,
    pub entries: i64,
    pub broken: Vec<String>,
    pub ok: bool,
}

/// 验证: recomputes every county's hash chain and names the first altered entry.
#[utoipa::path(get, path = "/api/v1/verify", tag = "books", security(("bearer" = [])),
    responses((status = 200, body = VerifyOut), (status = 403, body = super::ErrorBody)))]
async fn verify(State(state): State<Shared>, Auth(user): Auth) -> Result<Json<VerifyOut>> {
    require_roles(
        &user,
        &[Role::Admin, Role::Inspector, Role::Finance],
        "verify the chains",
    )?;
    let report = state.store.verify().await?;
    Ok(Json(VerifyOut {
        ok: report.broken.is_empty(),
        counties: report.counties,
        entries: report.entries,
        broken: report.broken,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfParams {
    /// Default: today.
    pub as_of: Option<NaiveDate>,
    pub county: Option<String>,
    pub program: Option<String>,
    /// json (default), csv, xlsx or html.
    pub format: Option<String>,
}

pub(super) fn scope_sheet(
    user: &User,
    regions: &RegionTable,
    units: &[Unit],
    mut sheet: Sheet,
    county_column: &str,
) -> Sheet {
    if let Some(list) = readable_counties(user, regions, units)
        && let Some(col) = sheet
            .columns
            .iter()
            .position(|c| c.name.contains(county_column))
    {
        sheet.rows.retain(|row| {
            row.get(col)
                .is_some_and(|cell| list.iter().any(|c| cell.display().contains(c.as_str())))
        });
    }
    sheet
}

/// 交叉核查: the recorded findings (from the cross-check sweep) in the caller's scope.
#[utoipa::path(get, path = "/api/v1/findings", tag = "inspect", security(("bearer" = [])),
    params(AsOfParams),
    responses((status = 200, description = "The findings in the format asked for"),
        (status = 403, body = super::ErrorBody)))]
async fn findings(
    State(state): State<Shared>,
    Auth(user): Auth,
    ApiQuery(params): ApiQuery<AsOfParams>,
) -> Result<Response> {
    if user.role == Role::Unit {
        return Err(deny(&user, "read the findings"));
    }
    let store = &state.store;
    let as_of = params
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let format = parse_format(params.format.as_deref())?;
    let recorded = crate::inspect::checks::list(store, as_of).await?;
    let regions = store.regions().await?;
    let units = store.units().await?;
    let recorded: Vec<_> = recorded
        .into_iter()
        .filter(|f| user.covers_county(&regions, &units, &f.county))
        .filter(|f| params.county.as_ref().is_none_or(|c| f.county == *c))
        .collect();
    let sheet = crate::inspect::checks::list_sheet(&recorded, as_of, false);
    sheet_response(&sheet, format)
}

/// 时限: tranches held past their one-month deadline (滞留) and those passed on late.
#[utoipa::path(get, path = "/api/v1/deadlines", tag = "inspect", security(("bearer" = [])),
    params(AsOfParams),
    responses((status = 200, description = "The deadline report in the format asked for"),
        (status = 403, body = super::ErrorBody)))]
async fn deadlines(
    State(state): State<Shared>,
    Auth(user): Auth,
    ApiQuery(params): ApiQuery<AsOfParams>,
) -> Result<Response> {
    if user.role == Role::Unit {
        return Err(deny(&user, "read the deadline report"));
    }
    let store = &state.store;
    let regions = store.regions().await?;
    let units = store.units().await?;
    if let Some(c) = &params.county {
        require_county(&user, &regions, &units, c.trim(), "read deadlines")?;
    }
    let as_of = params
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let format = parse_format(params.format.as_deref())?;
    let report = flow::deadlines::report(
        store,
        as_of,
        params.county.as_deref().map(str::trim),
        params.program.as_deref(),
    )
    .await?;
    let sheet = flow::deadlines::sheet(&report, as_of, false);
    let sheet = scope_sheet(&user, &regions, &units, sheet, "county");
    sheet_response(&sheet, format)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    pub user: Option<String>,
    /// Only records after this sequence number.
    pub after: Option<i64>,
    /// At most this many (default 100, at most 10,000), newest first.
    pub limit: Option<i64>,
}

/// 审计日志: every state-changing request, newest first (admin and inspectors).
#[utoipa::path(get, path = "/api/v1/audit", tag = "books", security(("bearer" = [])),
    params(AuditParams),
    responses((status = 200, body = Vec<AuditRecord>), (status = 403, body = super::ErrorBody)))]
async fn audit_log(
    State(state): State<Shared>,
    Auth(user): Auth,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<Vec<AuditRecord>>> {
    require_roles(&user, &[Role::Admin, Role::Inspector], "read the audit log")?;
    Ok(Json(
        service::audit_log(
            &state.store,
            params.user.as_deref(),
            params.after.unwrap_or(0),
            params.limit.unwrap_or(100),
        )
        .await?,
    ))
}

// ---------------------------------------------------------------------------------------------
// Roster import, the cross-check sweep and rulings, the scorecard

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RosterParams {
    /// The file's name as uploaded (`.csv` or `.xlsx`; named in every error line).
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RosterOut {
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
}

/// 名册导入: a program's roster as CSV (UTF-8 or GBK) or XLSX, the raw file as the body. Every row
/// is checked; one bad row refuses the file (each problem named by row and column); every row's
/// county must be in the caller's scope.
#[utoipa::path(post, path = "/api/v1/roster/{program}", tag = "roster", security(("bearer" = [])),
    params(("program" = String, Path, description = "Program code"), RosterParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = RosterOut), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn roster_import(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    Path(program): Path<String>,
    ApiQuery(params): ApiQuery<RosterParams>,
    body: Bytes,
) -> Result<Json<RosterOut>> {
    require_roles(&user, &[Role::Admin, Role::Finance], "import rosters")?;
    let store = &state.store;
    let program = program_of(store, &program).await?;
    let (name, table) = read_upload(params.name.as_deref(), "roster.csv", &body)?;
    let regions = store.regions().await?;
    let units = store.units().await?;
    let unit_counties = units
        .iter()
        .map(|u| (u.code.clone(), u.county.clone()))
        .collect();
    let beneficiary = store.program_beneficiary(program.code()).await?;
    let parsed = crate::roster::parse_roster(
        &table,
        &name,
        program.code(),
        &beneficiary,
        &regions,
        &unit_counties,
        &program.eligibility().exclusions,
    )
    .map_err(ApiError::refused)?;
    if !parsed.errors.is_empty() {
        return Err(ApiError::refused(format!(
            "{name}: refused, nothing was imported ({} bad rows)",
            parsed.errors.len()
        ))
        .with_details(parsed.errors.iter().map(|e| e.message.clone()).collect()));
    }
    if let Some(outside) = parsed
        .entries
        .iter()
        .find(|(_, e)| !user.covers_county(&regions, &units, &e.county))
    {
        return Err(deny(
            &user,
            &format!("import roster rows of county {}", outside.1.county),
        ));
    }
    let report = store
        .roster_import(program.code(), &parsed.entries, false)
        .await?;
    if !report.refused.is_empty() {
        return Err(
            ApiError::refused(format!("{name}: refused, nothing was imported")).with_details(
                report
                    .refused
                    .iter()
                    .map(|(row, m)| format!("{name} row {row}: {m}"))
                    .collect(),
            ),
        );
    }
    audit.detail(format!(
        "roster {} {name}: {} added, {} changed",
        program.code(),
        report.added,
        report.changed
    ));
    Ok(Json(RosterOut {
        added: report.added,
        changed: report.changed,
        unchanged: report.unchanged,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepBody {
    /// Default: today.
    pub as_of: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct SweepOut {
    pub found: usize,
    pub recorded: usize,
}

/// 交叉核查: runs every cross-check rule over the ledger and records new findings.
#[utoipa::path(post, path = "/api/v1/findings/sweep", tag = "inspect", security(("bearer" = [])),
    request_body = SweepBody,
    responses((status = 200, body = SweepOut), (status = 403, body = super::ErrorBody)))]
async fn findings_sweep(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<SweepBody>,
) -> Result<Json<SweepOut>> {
    require_roles(&user, &[Role::Admin], "record findings")?;
    let as_of = body
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let found = crate::inspect::checks::sweep(&state.store, as_of).await?;
    let recorded = crate::inspect::checks::record(&state.store, &found, as_of).await?;
    audit.detail(format!(
        "sweep as of {as_of}: {} found, {recorded} new",
        found.len()
    ));
    Ok(Json(SweepOut {
        found: found.len(),
        recorded,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulingBody {
    /// `normal` or `violation`.
    pub disposition: String,
    /// For a violation: late_release, funds_stranded, diverted, outside_scope, impersonation,
    /// false_data.
    pub violation_type: Option<String>,
    /// Yuan to recover or adjust (default 0).
    pub amount: Option<String>,
    /// 整改期限, required for a violation.
    pub rectify_by: Option<NaiveDate>,
    pub date: Option<NaiveDate>,
}

/// 定性: rules on a finding, once (admin, or finance of the finding's county).
#[utoipa::path(post, path = "/api/v1/findings/{id}/ruling", tag = "inspect",
    security(("bearer" = [])), params(("id" = i64, Path, description = "The finding's number")),
    request_body = RulingBody,
    responses((status = 200, body = SweepOut), (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
async fn findings_rule(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RulingBody>,
) -> Result<Json<serde_json::Value>> {
    use crate::inspect::checks::{Disposition, Ruling, ViolationType};
    use clap::ValueEnum;
    require_roles(&user, &[Role::Admin, Role::Finance], "rule on findings")?;
    let store = &state.store;
    let today = chrono::Local::now().date_naive();
    let finding = crate::inspect::checks::list(store, today)
        .await?
        .into_iter()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no finding {id}")))?;
    let regions = store.regions().await?;
    let units = store.units().await?;
    if !user.covers_county(&regions, &units, &finding.county) {
        return Err(deny(
            &user,
            &format!("rule on findings of county {}", finding.county),
        ));
    }
    let disposition = Disposition::from_str(&body.disposition, true).map_err(|_| {
        ApiError::refused(format!(
            "disposition \"{}\" is not normal or violation",
            body.disposition
        ))
    })?;
    let violation_type = match &body.violation_type {
        Some(t) => Some(ViolationType::from_str(t, true).map_err(|_| {
            ApiError::refused(format!("violation_type \"{t}\" is not one of late_release, funds_stranded, diverted, outside_scope, impersonation, false_data"))
        })?),
        None => None,
    };
    let amount = parse_amount(body.amount.as_deref().unwrap_or("0"), SignRule::NonNegative)
        .map_err(|e| ApiError::refused(format!("amount: {e}")))?;
    crate::inspect::checks::rule(
        store,
        id,
        &Ruling {
            disposition,
            violation_type,
            amount_to_recover: amount,
            rectify_by: body.rectify_by,
            ruled_by: user.name.clone(),
            ruled_at: body.date.unwrap_or(today),
        },
    )
    .await?;
    audit.detail(format!("finding {id} ruled {}", disposition.as_str()));
    Ok(Json(
        serde_json::json!({"id": id, "ruled": disposition.as_str()}),
    ))
}

/// 评分: counties and cities ranked on release speed, execution, findings handled, timeliness.
#[utoipa::path(get, path = "/api/v1/scorecard", tag = "inspect", security(("bearer" = [])),
    params(AsOfParams),
    responses((status = 200, description = "The scorecard in the format asked for"),
        (status = 403, body = super::ErrorBody)))]
async fn scorecard(
    State(state): State<Shared>,
    Auth(user): Auth,
    ApiQuery(params): ApiQuery<AsOfParams>,
) -> Result<Response> {
    if user.role == Role::Unit {
        return Err(deny(&user, "read the scorecard"));
    }
    let as_of = params
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let format = parse_format(params.format.as_deref())?;
    let sheet = crate::inspect::checks::scorecard(&state.store, as_of).await?;
    sheet_response(&sheet, format)
}

// ---------------------------------------------------------------------------------------------
// Raw entries, two-phase resolution and reversals, life events, the hledger export

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingIn {
    /// `OWNER:KIND`, e.g. `440511:held`, `U44051101:held`, `440000:budget`.
    pub account: String,
    /// Yuan, debit positive, credit negative.
    pub amount: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryIn {
    pub key: String,
    pub date: NaiveDate,
    pub county: String,
    pub program: String,
    #[serde(default)]
    pub memo: String,
    pub postings: Vec<PostingIn>,
    /// Post as the first phase of a two-phase entry (its `held` credits reserved).
    #[serde(default)]
    pub pending: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntriesBody {
    pub entries: Vec<EntryIn>,
}

#[derive(Serialize, ToSchema)]
pub struct EntryOut {
    pub key: String,
    /// `posted` or `already`.
    pub status: String,
    pub county: String,
    pub seq: i64,
}

/// 记账: posts raw entries (all or nothing). Admin, or finance for counties of its scope.
#[utoipa::path(post, path = "/api/v1/entries", tag = "books", security(("bearer" = [])),
    request_body = EntriesBody,
    responses((status = 200, body = Vec<EntryOut>), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn post_entries(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    ApiJson(body): ApiJson<EntriesBody>,
) -> Result<Json<Vec<EntryOut>>> {
    use crate::ledger::{AccountRef, NewEntry, Posting};
    require_roles(&user, &[Role::Admin, Role::Finance], "post raw entries")?;
    let store = &state.store;
    if body.entries.is_empty() || body.entries.len() > 10_000 {
        return Err(ApiError::refused("entries: give 1 to 10,000 entries"));
    }
    let regions = store.regions().await?;
    let units = store.units().await?;
    let mut entries = Vec::with_capacity(body.entries.len());
    let mut errors = Vec::new();
    for (i, e) in body.entries.iter().enumerate() {
        if !user.covers_county(&regions, &units, e.county.trim()) {
            return Err(deny(
                &user,
                &format!("post entries in county {}", e.county.trim()),
            ));
        }
        let mut postings = Vec::with_capacity(e.postings.len());
        for (j, p) in e.postings.iter().enumerate() {
            let account = match AccountRef::parse(&p.account) {
                Ok(a) => a,
                Err(err) => {
                    errors.push(format!("entries[{i}].postings[{j}].account: {err}"));
                    continue;
                }
            };
            match parse_amount(&p.amount, SignRule::Any) {
                Ok(amount) => postings.push(Posting { account, amount }),
                Err(err) => errors.push(format!("entries[{i}].postings[{j}].amount: {err}")),
            }
        }
        let entry = NewEntry::normal(
            e.key.trim().to_string(),
            e.date,
            e.county.trim(),
            e.program.trim().to_ascii_uppercase(),
            e.memo.clone(),
            postings,
        );
        entries.push(if e.pending { entry.pending() } else { entry });
    }
    if !errors.is_empty() {
        return Err(ApiError::refused("entries refused: nothing was written").with_details(errors));
    }
    let outcomes = store
        .post(&entries, crate::store::BatchMode::AllOrNothing)
        .await?;
    let mut out = Vec::with_capacity(outcomes.len());
    for (entry, outcome) in entries.iter().zip(outcomes) {
        let p = posted(outcome)?;
        out.push(EntryOut {
            key: entry.key.clone(),
            status: p.status,
            county: p.county,
            seq: p.seq,
        });
    }
    audit.entries(
        out.iter()
            .filter(|o| o.status == "posted")
            .map(|o| o.key.clone()),
    );
    audit.detail(format!("{} raw entries", out.len()));
    Ok(Json(out))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// `post` or `void` (a pending entry, once), or `reverse` (a posted entry, once).
    pub action: String,
    /// Why (required for a reversal).
    pub reason: Option<String>,
    pub date: Option<NaiveDate>,
}

/// 两阶段/冲销: posts or voids a pending entry, or reverses a posted one with a new entry that
/// negates it. Admin, or finance of the entry's county.
#[utoipa::path(post, path = "/api/v1/entries/{key}/resolution", tag = "books",
    security(("bearer" = [])), params(("key" = String, Path, description = "The entry's key")),
    request_body = ResolveBody,
    responses((status = 200, body = EntryOut), (status = 403, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody)))]
async fn resolve_entry(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<ResolveBody>,
) -> Result<Json<EntryOut>> {
    use crate::ledger::{EntryKind, NewEntry};
    use sqlx::Row;
    require_roles(
        &user,
        &[Role::Admin, Role::Finance],
        "resolve or reverse entries",
    )?;
    let store = &state.store;
    let row = sqlx::query("SELECT county_code FROM entries WHERE idem_key = $1")
        .bind(key.clone())
        .fetch_optional(store.pool())
        .await
        .map_err(crate::store::StoreError::from)?
        .ok_or_else(|| {
            ApiError::not_found(format!("no entry {}", crate::inspect::mask_ids(&key)))
        })?;
    let county: String = row.try_get(0).map_err(crate::store::StoreError::from)?;
    let regions = store.regions().await?;
    let units = store.units().await?;
    if !user.covers_county(&regions, &units, &county) {
        return Err(deny(&user, &format!("resolve entries of county {county}")));
    }
    let (kind, prefix) = match body.action.trim() {
        "post" => (EntryKind::Post, "post"),
        "void" => (EntryKind::Void, "void"),
        "reverse" => (EntryKind::Reversal, "reverse"),
        other => {
            return Err(ApiError::refused(format!(
                "action \"{other}\" is not post, void or reverse"
            )));
        }
    };
    let reason = body.reason.clone().unwrap_or_default();
    if kind == EntryKind::Reversal && reason.trim().is_empty() {
        return Err(ApiError::refused("a reversal needs a reason"));
    }
    let entry = NewEntry {
        key: format!("{prefix}:{key}"),
        date: body
            .date
            .unwrap_or_else(|| chrono::Local::now().date_naive()),
        county: String::new(),
        program: String::new(),
        kind,
        memo: reason,
        postings: Vec::new(),
        refers_to: Some(key.clone()),
    };
    let new_key = entry.key.clone();
    let p = posted(store.post_one(entry).await?)?;
    audit.entries([new_key.clone()]);
    audit.detail(format!("{prefix} {}", crate::inspect::mask_ids(&key)));
    Ok(Json(EntryOut {
        key: new_key,
        status: p.status,
        county: p.county,
        seq: p.seq,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// The file's name as uploaded (named in every error line).
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventsOut {
    pub recorded: usize,
    pub already_known: usize,
}

/// 死亡/就业: deaths (`id_number,death_date,source`) or employment (`id_number,employer_kind,from_date`)
/// as CSV or XLSX in the body; every person must be on a roster of a county in the caller's scope.
#[utoipa::path(post, path = "/api/v1/life-events/{kind}", tag = "roster", security(("bearer" = [])),
    params(("kind" = String, Path, description = "deaths or employment"), EventsParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = EventsOut), (status = 403, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)))]
async fn life_events(
    State(state): State<Shared>,
    Auth(user): Auth,
    audit: AuditSlot,
    Path(kind): Path<String>,
    ApiQuery(params): ApiQuery<EventsParams>,
    body: Bytes,
) -> Result<Json<EventsOut>> {
    require_roles(
        &user,
        &[Role::Admin, Role::Finance],
        "record deaths or employment",
    )?;
    let deaths = match kind.as_str() {
        "deaths" => true,
        "employment" => false,
        other => {
            return Err(ApiError::not_found(format!(
                "\"{other}\" is not deaths or employment"
            )));
        }
    };
    let store = &state.store;
    let (name, table) = read_upload(params.name.as_deref(), &format!("{kind}.csv"), &body)?;
    let (events, errors) =
        crate::roster::parse_life_events(&table, &name, deaths).map_err(ApiError::refused)?;
    if !errors.is_empty() {
        return Err(
            ApiError::refused(format!("{name}: refused, nothing was recorded"))
                .with_details(errors),
        );
    }
    let regions = store.regions().await?;
    let units = store.units().await?;
    for (_, event) in &events {
        let counties = person_counties(store, event.id_number()).await?;
        if !counties
            .iter()
            .all(|c| user.covers_county(&regions, &units, c))
        {
            return Err(deny(
                &user,
                &format!("record events of {}", mask_id(event.id_number())),
            ));
        }
    }
    let (applied, unknown) = store.record_life_events(&events, &name).await?;
    if !unknown.is_empty() {
        return Err(
            ApiError::refused(format!("{name}: refused, nothing was recorded"))
                .with_details(unknown),
        );
    }
    audit.detail(format!("{name}: {applied} {kind} recorded"));
    Ok(Json(EventsOut {
        recorded: applied,
        already_known: events.len() - applied,
    }))
}

/// 导出: the whole ledger as an hledger journal (admin, and province-wide inspectors).
#[utoipa::path(get, path = "/api/v1/export/journal", tag = "books", security(("bearer" = [])),
    responses((status = 200, description = "The hledger journal", content_type = "text/plain"),
        (status = 403, body = super::ErrorBody)))]
async fn export_journal(State(state): State<Shared>, Auth(user): Auth) -> Result<Response> {
    let store = &state.store;
    let regions = store.regions().await?;
    let units = store.units().await?;
    let everything = readable_counties(&user, &regions, &units).is_none();
    if !(everything && matches!(user.role, Role::Admin | Role::Inspector)) {
        return Err(deny(&user, "export the whole ledger"));
    }
    let mut out = Vec::new();
    store.export_journal(&mut out).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"ledger.journal\"",
            ),
        ],
        out,
    )
        .into_response())
}
