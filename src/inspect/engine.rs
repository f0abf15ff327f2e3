//! The report engine: a report is a definition file `reports/NAME.toml` (title, parameters, one
//! portable SQL statement, columns with Chinese headers), embedded in the binary by `build.rs`. The
//! engine checks the parameters, binds them (an absent optional parameter is a NULL text, so
//! `(CAST(:county AS TEXT) IS NULL OR county_code = :county)` works on SQLite and PostgreSQL alike),
//! runs the statement and returns a `Sheet` ready for CSV, XLSX, HTML or JSON.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Deserialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::InspectError;
use crate::calendar::YearMonth;
use crate::money::Fen;
use crate::report::{Cell, Column, Sheet};
use crate::store::{Store, portable};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/reports.rs"));
}

/// Parameters a report may declare, and rows it may return (a stated limit, TigerBeetle style).
pub const PARAMS_PER_REPORT_MAX: usize = 16;
pub const COLUMNS_PER_REPORT_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    /// Any text, bound as given.
    Text,
    /// A day, `YYYY-MM-DD`.
    Date,
    /// A month, `YYYY-MM`.
    Month,
    /// A program code loaded in this ledger.
    Program,
    /// A county (or a city without districts) known to this ledger.
    County,
    /// A prefecture-level city (地级市) known to this ledger.
    City,
    /// A year, `YYYY`, within the working-day calendar's reach (2000 to 2100).
    Year,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Text,
    /// BIGINT fen, shown in yuan.
    Money,
    Int,
    /// ISO text `YYYY-MM-DD`.
    Date,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    pub name: String,
    pub label: String,
    pub kind: ParamKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    pub name: String,
    pub label: String,
    pub label_en: String,
    pub kind: ColumnKind,
    #[serde(default)]
    pub total: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportDef {
    pub name: String,
    /// Chinese title, the sheet's heading.
    pub title: String,
    pub title_en: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub params: Vec<ParamDef>,
    /// One portable statement with named parameters (`:county`).
    #[serde(default)]
    pub sql: String,
    /// Or a dataset computed with the programs' rules, which SQL cannot express: the county's and
    /// city's tables (`table:roster`, `table:changes`, `table:summary`, `table:city_summary`,
    /// `table:notice`). Its parameters are passed by name; its columns must be the declared ones.
    #[serde(default)]
    pub source: Option<String>,
    /// A program parameter by which the report may be run in parts: when it is not given, the
    /// statement runs once per program of the ledger, side by side on connections of their own, and
    /// the parts' rows are put together in the programs' code order. The statement must then order
    /// its rows by program first, and a row must depend on its own program's rows only, so that the
    /// parts put together are the rows the whole would give. Each part is one reading of the ledger,
    /// so each program's rows tie among themselves even while payments are being written.
    #[serde(default)]
    pub split_by: Option<String>,
    pub columns: Vec<ColumnDef>,
}

fn definition_error(file: &str, reason: impl Into<String>) -> InspectError {
    InspectError::Definition {
        file: file.to_string(),
        reason: reason.into(),
    }
}

impl ReportDef {
    /// Parses and checks a definition: names unique, every parameter the SQL uses declared and every
    /// declared parameter used.
    pub fn parse(text: &str, file: &str) -> Result<ReportDef, InspectError> {
        let def: ReportDef = toml::from_str(text).map_err(|e| {
            definition_error(file, e.to_string().lines().next().unwrap_or("").to_string())
        })?;
        let identifier = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !identifier(&def.name) {
            return Err(definition_error(
                file,
                "name must be lowercase letters, digits and _",
            ));
        }
        if def.columns.is_empty() || def.columns.len() > COLUMNS_PER_REPORT_MAX {
            return Err(definition_error(
                file,
                format!("a report has 1 to {COLUMNS_PER_REPORT_MAX} columns"),
            ));
        }
        if def.params.len() > PARAMS_PER_REPORT_MAX {
            return Err(definition_error(
                file,
                format!("a report has at most {PARAMS_PER_REPORT_MAX} parameters"),
            ));
        }
        let mut seen = BTreeSet::new();
        for c in &def.columns {
            if !identifier(&c.name) || !seen.insert(c.name.as_str()) {
                return Err(definition_error(
                    file,
                    format!("column \"{}\" is repeated or not a lowercase name", c.name),
                ));
            }
        }
        let mut declared = BTreeSet::new();
        for p in &def.params {
            if !identifier(&p.name) || !declared.insert(p.name.as_str()) {
                return Err(definition_error(
                    file,
                    format!(
                        "parameter \"{}\" is repeated or not a lowercase name",
                        p.name
                    ),
                ));
            }
        }
        if let Some(split) = &def.split_by
            && !def
                .params
                .iter()
                .any(|p| &p.name == split && p.kind == ParamKind::Program)
        {
            return Err(definition_error(
                file,
                format!("split_by names {split}, which is not a declared program parameter"),
            ));
        }
        match (&def.source, def.sql.trim().is_empty()) {
            (Some(_), false) => {
                return Err(definition_error(
                    file,
                    "a report has sql or a source, not both",
                ));
            }
            (None, true) => {
                return Err(definition_error(file, "a report needs sql (or a source)"));
            }
            (Some(source), true) => {
                if crate::program::tables::TableKind::from_source(source).is_none() {
                    return Err(definition_error(
                        file,
                        format!(
                            "source \"{source}\" is not a dataset this build computes (table:roster, table:changes, table:summary, table:city_summary, table:notice)"
                        ),
                    ));
                }
                return Ok(def);
            }
            (None, false) => {}
        }
        let (_, used) = compile_named(&def.sql);
        for name in &used {
            if !declared.contains(name.as_str()) {
                return Err(definition_error(
                    file,
                    format!("the SQL uses :{name}, which is not a declared parameter"),
                ));
            }
        }
        for name in &declared {
            if !used.iter().any(|u| u == name) {
                return Err(definition_error(
                    file,
                    format!("parameter {name} is declared but the SQL never uses :{name}"),
                ));
            }
        }
        Ok(def)
    }
}

/// Every embedded definition, or the first that does not parse.
pub fn try_definitions() -> Result<Vec<ReportDef>, InspectError> {
    let mut defs = embedded::REPORT_FILES
        .iter()
        .map(|(file, text)| ReportDef::parse(text, &format!("reports/{file}")))
        .collect::<Result<Vec<_>, _>>()?;
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(defs)
}

/// Every embedded definition, by name. The files are checked by this crate's tests, so a broken one
/// cannot ship; should one slip through, it is left out of the list rather than taking the rest down.
pub fn definitions() -> Vec<ReportDef> {
    let mut defs: Vec<ReportDef> = embedded::REPORT_FILES
        .iter()
        .filter_map(|(file, text)| ReportDef::parse(text, &format!("reports/{file}")).ok())
        .collect();
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    defs
}

/// The definition named `name`.
pub fn find(name: &str) -> Result<ReportDef, InspectError> {
    let defs = try_definitions()?;
    let known = defs
        .iter()
        .map(|d| d.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    defs.into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| InspectError::UnknownReport {
            name: name.to_string(),
            known,
        })
}

/// Rewrites named parameters (`:county`) to numbered ones (`$1`), numbered in order of first
/// appearance (a repeated name gets its first number again). String literals, quoted identifiers,
/// comments and PostgreSQL `::` casts are left alone. Returns the SQL and the names in number order.
pub fn compile_named(sql: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                // Copy the quoted run; a doubled quote is an escaped one and stays inside.
                out.push(c);
                i += 1;
                while i < chars.len() {
                    out.push(chars[i]);
                    if chars[i] == c {
                        if chars.get(i + 1) == Some(&c) {
                            out.push(c);
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                out.push_str("/*");
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    out.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    out.push_str("*/");
                    i += 2;
                }
            }
            ':' if chars.get(i + 1) == Some(&':') => {
                out.push_str("::");
                i += 2;
            }
            ':' if chars
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_') =>
            {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_')
                {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                let number = match names.iter().position(|n| *n == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name);
                        names.len()
                    }
                };
                out.push('$');
                out.push_str(&number.to_string());
                i = end;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out, names)
}

/// Checks the given parameters against the definition and returns each declared parameter's value
/// (normalised), `None` where an optional one is absent.
pub async fn resolve_params(
    store: &Store,
    def: &ReportDef,
    params: &[(String, String)],
) -> Result<Vec<(String, Option<String>)>, InspectError> {
    let known = || {
        if def.params.is_empty() {
            "none".to_string()
        } else {
            def.params
                .iter()
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut given: Vec<(&str, &str)> = Vec::new();
    for (name, value) in params {
        let name = name.trim();
        if !def.params.iter().any(|p| p.name == name) {
            return Err(InspectError::UnknownParam {
                report: def.name.clone(),
                param: name.to_string(),
                known: known(),
            });
        }
        if given.iter().any(|(n, _)| *n == name) {
            return Err(InspectError::RepeatedParam {
                report: def.name.clone(),
                param: name.to_string(),
            });
        }
        given.push((name, value.trim()));
    }
    let mut values = Vec::with_capacity(def.params.len());
    for p in &def.params {
        let raw = given
            .iter()
            .find(|(n, _)| *n == p.name)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty())
            .or_else(|| p.default.clone().filter(|d| !d.is_empty()));
        let Some(raw) = raw else {
            if p.required {
                return Err(InspectError::MissingParam {
                    report: def.name.clone(),
                    param: p.name.clone(),
                    label: p.label.clone(),
                });
            }
            values.push((p.name.clone(), None));
            continue;
        };
        let bad = |reason: String| InspectError::BadParam {
            report: def.name.clone(),
            param: p.name.clone(),
            reason,
        };
        let value = match p.kind {
            ParamKind::Text => raw,
            ParamKind::Date => NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
                .map_err(|_| bad(format!("\"{raw}\" is not a date YYYY-MM-DD")))?
                .format("%Y-%m-%d")
                .to_string(),
            ParamKind::Month => raw
                .parse::<YearMonth>()
                .map_err(|_| bad(format!("\"{raw}\" is not a month YYYY-MM")))?
                .to_string(),
            ParamKind::Program => {
                let code = raw.to_ascii_uppercase();
                let programs = store.programs().await?;
                if !programs.iter().any(|(c, _)| *c == code) {
                    let list = programs
                        .iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(bad(format!(
                        "program \"{raw}\" is not loaded (programs: {list})"
                    )));
                }
                code
            }
            ParamKind::City => {
                let regions = store.regions().await?;
                if regions
                    .get(&raw)
                    .is_none_or(|r| r.level != crate::region::Level::City)
                {
                    return Err(bad(format!("\"{raw}\" is not a city of this ledger")));
                }
                raw
            }
            ParamKind::Year => match raw.parse::<i32>() {
                Ok(y) if (2000..=2100).contains(&y) => y.to_string(),
                _ => return Err(bad(format!("\"{raw}\" is not a year YYYY"))),
            },
            ParamKind::County => {
                let regions = store.regions().await?;
                if !regions.get(&raw).is_some_and(|r| r.county_role) {
                    return Err(bad(format!(
                        "\"{raw}\" is not a county (or a city without districts) of this ledger"
                    )));
                }
                raw
            }
        };
        values.push((p.name.clone(), Some(value)));
    }
    Ok(values)
}

/// Runs a report: checks the parameters, runs its statement, returns the table.
pub async fn run(
    store: &Store,
    def: &ReportDef,
    params: &[(String, String)],
) -> Result<Sheet, InspectError> {
    let values = resolve_params(store, def, params).await?;
    if let Some(source) = &def.source {
        return run_dataset(store, def, source, &values).await;
    }
    let (sql, names) = compile_named(&def.sql);
    // On SQLite, run in parts, one per program, when the report allows it and no program was asked
    // for: SQLite runs a statement on one core, and on the province ledger the reconciliation took
    // 4.5-5.5 s in one statement against 3.3-3.4 s in parts side by side (its programs alone 3.2 s
    // and 1.8 s). PostgreSQL runs one statement's scans and joins on parallel workers itself: in
    // parts the same report took 4.5-4.6 s against 4.0-4.5 s whole, so it runs whole there.
    let split = def
        .split_by
        .as_deref()
        .filter(|_| store.backend() == crate::store::Backend::Sqlite)
        .filter(|p| values.iter().any(|(n, v)| n == p && v.is_none()));
    let rows = match split {
        None => fetch(store, &sql, &names, &values).await?,
        Some(param) => {
            let programs = store.programs().await?;
            let parts: Vec<Vec<(String, Option<String>)>> = programs
                .into_iter()
                .map(|(code, _)| {
                    let mut part = values.clone();
                    for (name, value) in &mut part {
                        if name == param {
                            *value = Some(code.clone());
                        }
                    }
                    part
                })
                .collect();
            let jobs: Vec<crate::parallel::Job<'_, Vec<AnyRow>>> = parts
                .iter()
                .map(|part| -> crate::parallel::Job<'_, Vec<AnyRow>> {
                    Box::pin(fetch(store, &sql, &names, part))
                })
                .collect();
            crate::parallel::side_by_side(jobs)
                .await?
                .into_iter()
                .flatten()
                .collect()
        }
    };
    let file = format!("reports/{}.toml", def.name);
    let mut sheet = Sheet::new(
        def.title.clone(),
        def.columns
            .iter()
            .map(|c| Column {
                name: c.name.clone(),
                label: c.label.clone(),
                total: c.total,
            })
            .collect(),
    );
    sheet.subtitle.push(def.title_en.clone());
    let shown: Vec<String> = values
        .iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| format!("{n}={v}")))
        .collect();
    if !shown.is_empty() {
        sheet
            .subtitle
            .push(format!("参数 parameters: {}", shown.join(", ")));
    }
    for row in &rows {
        if row.len() != def.columns.len() {
            return Err(definition_error(
                &file,
                format!(
                    "the SQL returns {} columns but {} are declared",
                    row.len(),
                    def.columns.len()
                ),
            ));
        }
        let mut cells = Vec::with_capacity(def.columns.len());
        for (index, column) in def.columns.iter().enumerate() {
            cells
                .push(read_cell(row, index, column.kind).map_err(|e| {
                    definition_error(&file, format!("column {}: {e}", column.name))
                })?);
        }
        sheet.push(cells);
    }
    Ok(sheet)
}

/// Runs a report's statement with its parameters bound by name (`names`, in order of appearance).
async fn fetch(
    store: &Store,
    sql: &str,
    names: &[String],
    values: &[(String, Option<String>)],
) -> Result<Vec<AnyRow>, crate::store::StoreError> {
    let mut query = sqlx::query(portable(store.backend(), sql.to_string()));
    for name in names {
        let value = values
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone());
        query = query.bind(value);
    }
    Ok(query.fetch_all(store.pool()).await?)
}

/// Runs a computed dataset and puts the definition's headers on it.
async fn run_dataset(
    store: &Store,
    def: &ReportDef,
    source: &str,
    values: &[(String, Option<String>)],
) -> Result<Sheet, InspectError> {
    use crate::program::tables::{self, TableKind};
    let file = format!("reports/{}.toml", def.name);
    let get = |name: &str| {
        values
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    let kind = TableKind::from_source(source)
        .ok_or_else(|| definition_error(&file, format!("unknown source {source}")))?;
    let year = get("year")
        .and_then(|y| y.parse::<i32>().ok())
        .ok_or_else(|| definition_error(&file, "a table needs a year parameter"))?;
    let program = get("program")
        .ok_or_else(|| definition_error(&file, "a table needs a program parameter"))?;
    let mut sheet = tables::build(
        store,
        kind,
        &program,
        get("county").as_deref(),
        get("city").as_deref(),
        year,
    )
    .await?;
    let made: Vec<&str> = sheet.columns.iter().map(|c| c.name.as_str()).collect();
    let declared: Vec<&str> = def.columns.iter().map(|c| c.name.as_str()).collect();
    if made != declared {
        return Err(definition_error(
            &file,
            format!(
                "the dataset's columns are {} but the definition declares {}",
                made.join(","),
                declared.join(",")
            ),
        ));
    }
    for (column, declared) in sheet.columns.iter_mut().zip(&def.columns) {
        column.label = declared.label.clone();
        column.total = declared.total;
    }
    sheet.subtitle.push(def.title_en.clone());
    Ok(sheet)
}

/// An integer cell: BIGINT (or INTEGER) as stored, or a number written as text.
fn read_int(row: &AnyRow, index: usize) -> Result<Option<i64>, String> {
    match row.try_get::<Option<i64>, _>(index) {
        Ok(v) => Ok(v),
        Err(first) => {
            if let Ok(v) = row.try_get::<Option<i32>, _>(index) {
                return Ok(v.map(i64::from));
            }
            if let Ok(Some(text)) = row.try_get::<Option<String>, _>(index)
                && let Ok(n) = text.trim().parse::<i64>()
            {
                return Ok(Some(n));
            }
            Err(format!(
                "not an integer ({first}); on PostgreSQL write CAST(SUM(..) AS BIGINT)"
            ))
        }
    }
}

fn read_text(row: &AnyRow, index: usize) -> Result<Option<String>, String> {
    match row.try_get::<Option<String>, _>(index) {
        Ok(v) => Ok(v),
        Err(first) => read_int(row, index)
            .map(|n| n.map(|n| n.to_string()))
            .map_err(|_| format!("not text ({first})")),
    }
}

fn read_cell(row: &AnyRow, index: usize, kind: ColumnKind) -> Result<Cell, String> {
    Ok(match kind {
        ColumnKind::Money => read_int(row, index)?.map_or(Cell::Empty, |f| Cell::Money(Fen(f))),
        ColumnKind::Int => read_int(row, index)?.map_or(Cell::Empty, Cell::Int),
        ColumnKind::Text => read_text(row, index)?.map_or(Cell::Empty, Cell::Text),
        ColumnKind::Date => match read_text(row, index)? {
            None => Cell::Empty,
            Some(text) => text
                .get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .map_or(Cell::Text(text.clone()), Cell::Date),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_parameters_become_numbers_in_order_of_appearance() {
        let (sql, names) = compile_named(
            "SELECT ':x' AS a, \"b:y\" FROM t WHERE (CAST(:county AS TEXT) IS NULL OR c = :county) \
             AND p = :program -- :ignored\n AND d::text = :from",
        );
        assert_eq!(names, vec!["county", "program", "from"]);
        assert_eq!(
            sql,
            "SELECT ':x' AS a, \"b:y\" FROM t WHERE (CAST($1 AS TEXT) IS NULL OR c = $1) \
             AND p = $2 -- :ignored\n AND d::text = $3"
        );
    }

    #[test]
    fn escaped_quotes_stay_inside_the_literal() {
        let (sql, names) = compile_named("SELECT 'it''s :not' || :yes");
        assert_eq!(names, vec!["yes"]);
        assert_eq!(sql, "SELECT 'it''s :not' || $1");
    }

    #[test]
    fn every_embedded_definition_parses() {
        let defs = try_definitions().expect("embedded report definitions parse");
        for name in [
            "reconciliation",
            "balances",
            "payout_lines",
            "releases",
            "recoveries",
            "entitlement_vs_payment",
        ] {
            assert!(defs.iter().any(|d| d.name == name), "report {name} missing");
        }
        assert_eq!(definitions().len(), defs.len());
    }

    #[test]
    fn an_undeclared_parameter_is_refused() {
        let text = "name = \"x\"\ntitle = \"x\"\ntitle_en = \"x\"\nsql = \"SELECT :y\"\n\
                    [[columns]]\nname = \"a\"\nlabel = \"甲\"\nlabel_en = \"a\"\nkind = \"text\"\n";
        let e = ReportDef::parse(text, "x.toml").unwrap_err().to_string();
        assert!(e.contains(":y, which is not a declared parameter"), "{e}");
    }

    #[test]
    fn a_report_has_sql_or_a_known_source_but_not_both() {
        let columns =
            "[[columns]]\nname = \"a\"\nlabel = \"甲\"\nlabel_en = \"a\"\nkind = \"text\"\n";
        let head = "name = \"x\"\ntitle = \"x\"\ntitle_en = \"x\"\n";
        let both = format!("{head}sql = \"SELECT 1\"\nsource = \"table:roster\"\n{columns}");
        let e = ReportDef::parse(&both, "x.toml").unwrap_err().to_string();
        assert!(e.contains("sql or a source, not both"), "{e}");
        let neither = format!("{head}{columns}");
        let e = ReportDef::parse(&neither, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs sql (or a source)"), "{e}");
        let unknown = format!("{head}source = \"table:payroll\"\n{columns}");
        let e = ReportDef::parse(&unknown, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"table:payroll\" is not a dataset"), "{e}");
        let good = format!("{head}source = \"table:summary\"\n{columns}");
        assert!(ReportDef::parse(&good, "x.toml").is_ok());
    }

    #[test]
    fn a_report_splits_only_by_a_declared_program_parameter() {
        let columns =
            "[[columns]]\nname = \"a\"\nlabel = \"甲\"\nlabel_en = \"a\"\nkind = \"text\"\n";
        let head = "name = \"x\"\ntitle = \"x\"\ntitle_en = \"x\"\nsql = \"SELECT :p, :c\"\n";
        let params = "[[params]]\nname = \"p\"\nlabel = \"项目\"\nkind = \"program\"\n\
                      [[params]]\nname = \"c\"\nlabel = \"县\"\nkind = \"county\"\n";
        let def = |split: &str| format!("{head}split_by = \"{split}\"\n{params}{columns}");
        let parsed = ReportDef::parse(&def("p"), "x.toml").expect("a program parameter");
        assert_eq!(parsed.split_by.as_deref(), Some("p"));
        for wrong in ["c", "q"] {
            let e = ReportDef::parse(&def(wrong), "x.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!(
                    "split_by names {wrong}, which is not a declared program parameter"
                )),
                "{e}"
            );
        }
    }
}
