//! 抽查底稿: a reproducible spot check of posted payments. A seeded sample (see [`super::sample`]) of
//! the payout lines the bank paid in a period, and for each one the whole trail, from the provincial
//! and city release documents that covered its month down to the bank's answer, with the
//! entitlement recomputed from the program's rules and a PASS/FAIL per check. Written as an XLSX
//! workpaper (封面 + 抽查明细) or, row by row, as any `Sheet` format.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_xlsxwriter::{Format, FormatAlign, Workbook, Worksheet, XlsxError};
use sqlx::Row;

use super::InspectError;
use super::sample::{self, Audited, Item, Method, Sample, Uml};
use crate::calendar::YearMonth;
use crate::id_number::IdNumber;
use crate::money::Fen;
use crate::program::entitlements;
use crate::report::{Cell, Column, Sheet};
use crate::roster::RosterEntry;
use crate::store::{Store, StoreError, portable};

fn invalid(message: String) -> InspectError {
    InspectError::Store(StoreError::Invalid(message))
}

/// A month (or anything shown as text) serialized as its text, e.g. `"2025-03"`.
fn as_text<T: std::fmt::Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SpotCheckRequest {
    pub program: String,
    pub county: Option<String>,
    #[serde(serialize_with = "as_text")]
    pub from: YearMonth,
    #[serde(serialize_with = "as_text")]
    pub to: YearMonth,
    pub method: Method,
    /// `None`: the attribute sample size for `confidence` and `tolerable`.
    pub size: Option<usize>,
    /// Percent, e.g. 95. Also the confidence of the MUS upper misstatement limit (90 or 95).
    pub confidence: Decimal,
    /// Tolerable deviation rate in percent, e.g. 5.
    pub tolerable: Decimal,
    pub seed: u64,
}

/// A document of the trail: a release, a matching share or a disbursement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Document {
    pub kind: String,
    pub level: String,
    pub document: String,
    pub date: NaiveDate,
    pub amount: Fen,
    pub covers: String,
}

impl Document {
    fn short(&self) -> String {
        format!(
            "{} ({} {})",
            self.document,
            self.date,
            self.amount.grouped()
        )
    }
}

/// The checks of one sampled payment: `true` is PASS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Checks {
    /// Paid exactly the entitlement recomputed from the rules.
    pub amount: bool,
    /// Paid within one calendar month of the later of the disbursement's receipt and the month start.
    pub deadline: bool,
    /// Not paid for a month after the person's death.
    pub alive: bool,
    /// Owed something that month, death aside: not excluded, employed as staff or gone.
    pub eligible: bool,
    /// No other posted payment of the program for the same person and month.
    pub not_duplicated: bool,
}

impl Checks {
    pub fn pass(&self) -> bool {
        self.amount && self.deadline && self.alive && self.eligible && self.not_duplicated
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// One sampled payment with its trail.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TrailItem {
    /// 1-based, in the order drawn.
    pub draw: usize,
    /// `BATCH:LINE`
    pub payment: String,
    pub county: String,
    pub unit: String,
    pub batch_id: String,
    pub line_no: i64,
    /// Full ID number: shown masked unless asked for.
    pub id_number: String,
    pub name: String,
    pub account: String,
    #[serde(serialize_with = "as_text")]
    pub month: YearMonth,
    pub amount: Fen,
    pub top_stratum: bool,
    pub province_documents: Vec<Document>,
    pub city_documents: Vec<Document>,
    pub county_documents: Vec<Document>,
    pub disbursement: Option<Document>,
    pub business_date: NaiveDate,
    pub bank_date: NaiveDate,
    pub bank_memo: String,
    pub entitled: Fen,
    pub tier: String,
    pub due_from: Option<NaiveDate>,
    pub deadline: Option<NaiveDate>,
    pub death_date: Option<NaiveDate>,
    /// Other posted payments (`BATCH:LINE`) of the same person and month in this program.
    pub duplicates: Vec<String>,
    pub checks: Checks,
    /// What the payment should have been, for the MUS evaluation: the entitlement, or nothing for
    /// a duplicate after the first.
    pub audited: Fen,
}

impl TrailItem {
    pub fn masked_id(&self) -> String {
        IdNumber::parse(&self.id_number)
            .map(|i| i.masked())
            .unwrap_or_else(|_| "******".into())
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SpotCheck {
    pub request: SpotCheckRequest,
    pub program_name: String,
    pub sample: Sample,
    pub items: Vec<TrailItem>,
    /// MUS only.
    pub uml: Option<Uml>,
    pub made_on: NaiveDate,
}

impl SpotCheck {
    pub fn failed(&self) -> usize {
        self.items.iter().filter(|i| !i.checks.pass()).count()
    }
}

/// A posted payout line as read from the store.
#[derive(Clone, Debug)]
struct Line {
    batch_id: String,
    line_no: i64,
    id_number: String,
    name: String,
    account: String,
    amount: Fen,
    month: YearMonth,
    unit: String,
    county: String,
    business_date: NaiveDate,
    bank_date: NaiveDate,
    bank_memo: String,
}

impl Line {
    fn key(&self) -> String {
        format!("{}:{}", self.batch_id, self.line_no)
    }
}

fn day(text: &str) -> Result<NaiveDate, InspectError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| invalid(format!("stored date {text} is damaged")))
}

fn month(text: &str) -> Result<YearMonth, InspectError> {
    text.parse::<YearMonth>()
        .map_err(|_| invalid(format!("stored month {text} is damaged")))
}

/// The payout lines of `program` the bank paid (their payment posted), months `from..=to`.
/// Which posted lines to read in full.
enum Which<'a> {
    /// The lines of these persons (for the duplicate check of a sample).
    Persons(&'a [String]),
    /// These lines, by (batch, line number).
    Lines(&'a [(String, i64)]),
}

async fn posted_lines(
    store: &Store,
    program: &str,
    from: YearMonth,
    to: YearMonth,
    county: Option<&str>,
    which: Which<'_>,
) -> Result<Vec<Line>, InspectError> {
    let select = "SELECT l.batch_id, l.line_no, l.id_number, l.name, l.account, l.amount, l.month, \
         b.unit_code, b.county_code, b.business_date, e.entry_date, '银行成功 ' || l.batch_id";
    let rest = "JOIN payout_batches b ON b.batch_id = l.batch_id \
         JOIN payout_results e ON e.payment_key = l.payment_key AND e.status = 'paid' \
         WHERE b.program = $1 AND l.month >= $2 AND l.month <= $3";
    let mut lines = Vec::new();
    let chunks: Vec<Vec<String>> = match &which {
        Which::Persons(ids) => ids.chunks(1_000).map(<[String]>::to_vec).collect(),
        Which::Lines(keys) => keys
            .chunks(500)
            .map(|c| {
                c.iter()
                    .flat_map(|(b, n)| [b.clone(), n.to_string()])
                    .collect()
            })
            .collect(),
    };
    for chunk in chunks {
        let next = if county.is_some() { 5 } else { 4 };
        let lines_of = match &which {
            Which::Persons(_) => crate::flow::payout::person_lines(&format!(
                "IN ({})",
                crate::store::in_list(next, chunk.len())
            )),
            Which::Lines(_) => "payout_lines".to_string(),
        };
        let mut sql = format!("{select} FROM {lines_of} l {rest}");
        if county.is_some() {
            sql.push_str(" AND b.county_code = $4");
        }
        // A person's lines are picked in the table read above; lines by their (batch, line).
        if let Which::Lines(_) = &which {
            let pairs: Vec<String> = (0..chunk.len() / 2)
                .map(|i| {
                    format!(
                        "(l.batch_id = ${} AND l.line_no = ${})",
                        next + 2 * i,
                        next + 2 * i + 1
                    )
                })
                .collect();
            sql.push_str(&format!(" AND ({})", pairs.join(" OR ")));
        }
        let mut query = sqlx::query(portable(store.backend(), sql))
            .bind(program.to_string())
            .bind(from.to_string())
            .bind(to.to_string());
        if let Some(c) = county {
            query = query.bind(c.to_string());
        }
        for (i, value) in chunk.iter().enumerate() {
            query = match &which {
                // Line numbers are integers; batch ids text.
                Which::Lines(_) if i % 2 == 1 => query.bind(value.parse::<i64>().unwrap_or(0)),
                _ => query.bind(value.clone()),
            };
        }
        for row in query.fetch_all(store.pool()).await? {
            lines.push(Line {
                batch_id: row.try_get(0)?,
                line_no: row.try_get(1)?,
                id_number: row.try_get(2)?,
                name: row.try_get(3)?,
                account: row.try_get(4)?,
                amount: Fen(row.try_get(5)?),
                month: month(&row.try_get::<String, _>(6)?)?,
                unit: row.try_get(7)?,
                county: row.try_get(8)?,
                business_date: day(&row.try_get::<String, _>(9)?)?,
                bank_date: day(&row.try_get::<String, _>(10)?)?,
                bank_memo: row.try_get(11)?,
            });
        }
    }
    // The database's order never matters: sort by the payment's own key.
    lines.sort_by(|a, b| (&a.batch_id, a.line_no).cmp(&(&b.batch_id, b.line_no)));
    Ok(lines)
}

/// The population to sample: every paid payout line of the program's months (and county), with
/// only what sampling needs (key, stratum, amount). Whether a line was paid is read from the bank's
/// answers (`payout_results`), so the ledger's rows are not touched; the sample's lines are read in
/// full after.
async fn population(
    store: &Store,
    program: &str,
    from: YearMonth,
    to: YearMonth,
    county: Option<&str>,
) -> Result<Vec<Item>, InspectError> {
    // The program's batches in key order, split into [`crate::parallel::READERS`] runs of about as many lines, read
    // side by side on connections of their own: looking each line's answer up is most of the
    // spot check (1.5 s of 2.4 s for a province-year's 2.3 million MBDK lines on SQLite), and one
    // reader keeps one of the two cores busy. Each batch is in one run, and the sampling sorts the
    // items by name, so the split changes nothing drawn. Each run is one reading of the ledger: a
    // batch answered while the runs are read may be in the population or not, as it would be with
    // one statement read a moment earlier or later (the sampled lines are read again after).
    let mut sql =
        String::from("SELECT batch_id, line_count FROM payout_batches WHERE program = $1");
    if county.is_some() {
        sql.push_str(" AND county_code = $2");
    }
    sql.push_str(" ORDER BY batch_id");
    let mut query = sqlx::query(portable(store.backend(), sql)).bind(program.to_string());
    if let Some(c) = county {
        query = query.bind(c.to_string());
    }
    let mut batches: Vec<(String, i64)> = Vec::new();
    for row in query.fetch_all(store.pool()).await? {
        batches.push((row.try_get(0)?, row.try_get(1)?));
    }
    let runs = split_runs(&batches, crate::parallel::READERS);
    let jobs: Vec<crate::parallel::Job<'_, Vec<(String, String, String)>>> = runs
        .into_iter()
        .map(
            |(first, last)| -> crate::parallel::Job<'_, Vec<(String, String, String)>> {
                Box::pin(population_run(
                    store, program, from, to, county, first, last,
                ))
            },
        )
        .collect();
    let parts = crate::parallel::side_by_side(jobs).await?;
    // Each item is named `batch:line` as it is read; the sampling sorts by that name itself, so
    // the database's order never matters.
    let mut items = Vec::new();
    for (batch, stratum, packed) in parts.into_iter().flatten() {
        for part in packed.split(',') {
            let parsed = part
                .split_once(':')
                .and_then(|(n, a)| Some((n.parse::<i64>().ok()?, a.parse::<i64>().ok()?)));
            let Some((line_no, amount)) = parsed else {
                return Err(invalid(format!(
                    "batch {batch}: unreadable line \"{part}\""
                )));
            };
            items.push(Item {
                id: format!("{batch}:{line_no}"),
                stratum: stratum.clone(),
                amount: Fen(amount),
            });
        }
    }
    Ok(items)
}

/// Splits batches (in key order, each with its number of lines) into at most `parts` runs of
/// consecutive batches with about as many lines each: (first, last) batch of each run.
fn split_runs(batches: &[(String, i64)], parts: usize) -> Vec<(String, String)> {
    let mut ends = Vec::new();
    let mut so_far = Vec::with_capacity(batches.len());
    let mut sum = 0_i64;
    for (_, lines) in batches {
        sum += (*lines).max(0);
        so_far.push(sum);
    }
    // Each cut falls after the batch whose running total is nearest to its share of the lines.
    for k in 1..parts.max(1) as i64 {
        let due = sum * k / parts as i64;
        let at = so_far
            .partition_point(|n| *n < due)
            .min(batches.len().saturating_sub(1));
        let at = if at > 0 && due - so_far[at - 1] < so_far[at] - due {
            at - 1
        } else {
            at
        };
        if at + 1 < batches.len() && ends.last().is_none_or(|last| at > *last) {
            ends.push(at);
        }
    }
    if !batches.is_empty() {
        ends.push(batches.len() - 1);
    }
    let mut first = 0;
    ends.into_iter()
        .map(|end| {
            let run = (batches[first].0.clone(), batches[end].0.clone());
            first = end + 1;
            run
        })
        .collect()
}

/// One run of the population: the paid lines of the batches `first..=last`, one row per batch with
/// its lines packed as `line:amount,…` (half a million rows through the driver cost more than the
/// query itself: measured 2.7 s against 0.9 s in SQLite).
async fn population_run(
    store: &Store,
    program: &str,
    from: YearMonth,
    to: YearMonth,
    county: Option<&str>,
    first: String,
    last: String,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let pack = match store.backend() {
        crate::store::Backend::Sqlite => "group_concat(l.line_no || ':' || l.amount, ',')",
        crate::store::Backend::Postgres => "string_agg(l.line_no || ':' || l.amount, ',')",
    };
    // Walked batch by batch in the batches' key order (`CROSS JOIN` keeps SQLite to that order) and
    // grouped by the batch's key, so the lines are packed as they come: grouped by the lines' batch
    // column instead, SQLite sorted all of them first (a province-year's 2.3 million MBDK lines:
    // 3.0 s against 1.6 s). The batch's county depends on its key, as PostgreSQL requires.
    let mut sql = format!(
        "SELECT b.batch_id, b.county_code, {pack} \
         FROM payout_batches b CROSS JOIN payout_lines l \
         WHERE b.batch_id >= $1 AND b.batch_id <= $2 AND l.batch_id = b.batch_id \
           AND b.program = $3 AND l.month >= $4 AND l.month <= $5 \
           AND EXISTS (SELECT 1 FROM payout_results e WHERE e.payment_key = l.payment_key AND e.status = 'paid')"
    );
    if county.is_some() {
        sql.push_str(" AND b.county_code = $6");
    }
    sql.push_str(" GROUP BY b.batch_id");
    let mut query = sqlx::query(portable(store.backend(), sql))
        .bind(first)
        .bind(last)
        .bind(program.to_string())
        .bind(from.to_string())
        .bind(to.to_string());
    if let Some(c) = county {
        query = query.bind(c.to_string());
    }
    let mut rows = Vec::new();
    for row in query.fetch_all(store.pool()).await? {
        rows.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
    }
    Ok(rows)
}

/// The flow's documents of one program: releases, matching shares and disbursements with the
/// months each disbursement is for.
struct Flow {
    events: Vec<(Document, String, String)>,
    months: HashMap<String, Vec<YearMonth>>,
    keys: Vec<String>,
}

async fn flow(store: &Store, program: &str) -> Result<Flow, InspectError> {
    let rows = sqlx::query(
        "SELECT entry_key, kind, county_code, level, to_owner, document, event_date, amount, covers_from, covers_to \
         FROM flow_events WHERE program = $1 AND kind IN ('release', 'matching', 'disbursement') \
         ORDER BY event_date, entry_key",
    )
    .bind(program.to_string())
    .fetch_all(store.pool())
    .await?;
    let mut events = Vec::new();
    let mut keys = Vec::new();
    for row in rows {
        let from: Option<String> = row.try_get(8)?;
        let to: Option<String> = row.try_get(9)?;
        let level: Option<String> = row.try_get(3)?;
        events.push((
            Document {
                kind: row.try_get(1)?,
                level: level.unwrap_or_default(),
                document: row.try_get(5)?,
                date: day(&row.try_get::<String, _>(6)?)?,
                amount: Fen(row.try_get(7)?),
                covers: format!(
                    "{}..{}",
                    from.clone().unwrap_or_default(),
                    to.clone().unwrap_or_default()
                ),
            },
            row.try_get::<String, _>(2)?,
            row.try_get::<String, _>(4)?,
        ));
        keys.push(row.try_get::<String, _>(0)?);
    }
    let mut months: HashMap<String, Vec<YearMonth>> = HashMap::new();
    let rows = sqlx::query(
        "SELECT m.entry_key, m.month FROM flow_event_months m JOIN flow_events f ON f.entry_key = m.entry_key \
         WHERE f.program = $1 ORDER BY m.entry_key, m.month",
    )
    .bind(program.to_string())
    .fetch_all(store.pool())
    .await?;
    for row in rows {
        months
            .entry(row.try_get(0)?)
            .or_default()
            .push(month(&row.try_get::<String, _>(1)?)?);
    }
    Ok(Flow {
        events,
        months,
        keys,
    })
}

fn covers(document: &Document, m: YearMonth) -> bool {
    let Some((from, to)) = document.covers.split_once("..") else {
        return false;
    };
    match (from.parse::<YearMonth>(), to.parse::<YearMonth>()) {
        (Ok(f), Ok(t)) => f <= m && m <= t,
        _ => false,
    }
}

impl Flow {
    /// Releases and matching shares of the county whose covered months include `m`, by level.
    fn upper(&self, county: &str, m: YearMonth, level: &str) -> Vec<Document> {
        self.events
            .iter()
            .filter(|(d, c, _)| {
                c == county
                    && (d.kind == "release" || d.kind == "matching")
                    && d.level == level
                    && covers(d, m)
            })
            .map(|(d, _, _)| d.clone())
            .collect()
    }

    /// The first disbursement to `unit` that carries money for month `m` (FIFO: the first money
    /// received for a month is the first spent on it).
    fn disbursement(&self, county: &str, unit: &str, m: YearMonth) -> Option<Document> {
        self.events
            .iter()
            .zip(&self.keys)
            .find(|((d, c, to), key)| {
                d.kind == "disbursement"
                    && c == county
                    && to == unit
                    && match self.months.get(*key) {
                        Some(months) => months.contains(&m),
                        None => covers(d, m),
                    }
            })
            .map(|((d, _, _), _)| d.clone())
    }
}

/// Draws the sample and traces every sampled payment.
pub async fn spot_check(
    store: &Store,
    request: SpotCheckRequest,
) -> Result<SpotCheck, InspectError> {
    if request.from > request.to {
        return Err(invalid(format!(
            "the period {}..{} ends before it starts",
            request.from, request.to
        )));
    }
    let program = store.program(&request.program).await?;
    let code = program.code().to_string();
    let population = population(
        store,
        &code,
        request.from,
        request.to,
        request.county.as_deref(),
    )
    .await?;
    let size = match request.size {
        Some(n) => n,
        None => sample::attribute_size(request.confidence, request.tolerable)
            .map_err(|e| invalid(e.to_string()))?,
    };
    let drawn = sample::draw(request.method, &population, size, request.seed)
        .map_err(|e| invalid(e.to_string()))?;
    // Only the sampled lines are read in full, with every posted line of their persons (in any
    // county) for the duplicate check.
    let picked_keys: Vec<(String, i64)> = drawn
        .picked
        .iter()
        .filter_map(|p| {
            let (batch, line) = p.item.id.rsplit_once(':')?;
            Some((batch.to_string(), line.parse().ok()?))
        })
        .collect();
    let lines = posted_lines(
        store,
        &code,
        request.from,
        request.to,
        request.county.as_deref(),
        Which::Lines(&picked_keys),
    )
    .await?;
    let by_key: HashMap<String, &Line> = lines.iter().map(|l| (l.key(), l)).collect();
    let mut persons: Vec<String> = lines.iter().map(|l| l.id_number.clone()).collect();
    persons.sort();
    persons.dedup();
    let all = posted_lines(
        store,
        &code,
        request.from,
        request.to,
        None,
        Which::Persons(&persons),
    )
    .await?;
    let mut per_person_month: BTreeMap<(String, YearMonth), Vec<String>> = BTreeMap::new();
    for l in &all {
        per_person_month
            .entry((l.id_number.clone(), l.month))
            .or_default()
            .push(l.key());
    }
    let flow = flow(store, &code).await?;
    let regions = store.regions().await?;
    let calendar = store.calendar().await?;
    let roster: HashMap<String, RosterEntry> = store
        .roster_entries_by_id(&code, &persons)
        .await?
        .into_iter()
        .map(|e| (e.id_number.clone(), e))
        .collect();
    let mut items = Vec::with_capacity(drawn.picked.len());
    for (index, picked) in drawn.picked.iter().enumerate() {
        let line = by_key.get(&picked.item.id).ok_or_else(|| {
            invalid(format!(
                "payment {} vanished while sampling",
                picked.item.id
            ))
        })?;
        let m = line.month;
        let person = roster.get(&line.id_number);
        let (entitled, tier, eligible) = match person {
            None => (Fen::ZERO, String::from("不在名册"), false),
            Some(p) => {
                let who = p.beneficiary(&regions);
                let owed =
                    entitlements(&program, &who, m, m).map_err(|e| invalid(e.to_string()))?;
                let (entitled, tier) = owed
                    .first()
                    .map(|e| (e.amount, e.tier.clone()))
                    .unwrap_or((Fen::ZERO, String::from("无应发")));
                // Eligibility apart from death, which the alive check covers.
                let mut living = who.clone();
                living.death_date = None;
                let eligible = !entitlements(&program, &living, m, m)
                    .map_err(|e| invalid(e.to_string()))?
                    .is_empty();
                (entitled, tier, eligible)
            }
        };
        let death_date = person.and_then(|p| p.death_date);
        // MBDK 发放时间(三): paid up to and including the month of death.
        let alive = death_date.is_none_or(|d| m <= YearMonth::of(d));
        let disbursement = flow.disbursement(&line.county, &line.unit, m);
        let (due_from, deadline) = match &disbursement {
            Some(d) => {
                let due_from = d.date.max(m.first_day());
                let deadline = calendar
                    .one_month_deadline(due_from)
                    .map_err(|e| invalid(e.to_string()))?;
                (Some(due_from), Some(deadline))
            }
            None => (None, None),
        };
        let key = line.key();
        let group = per_person_month
            .get(&(line.id_number.clone(), m))
            .cloned()
            .unwrap_or_default();
        let duplicates: Vec<String> = group.iter().filter(|k| **k != key).cloned().collect();
        let first_of_group = group.first().is_none_or(|k| *k == key);
        let checks = Checks {
            amount: line.amount == entitled,
            deadline: deadline.is_some_and(|d| line.bank_date <= d),
            alive,
            eligible,
            not_duplicated: duplicates.is_empty(),
        };
        items.push(TrailItem {
            draw: index + 1,
            payment: key,
            county: line.county.clone(),
            unit: line.unit.clone(),
            batch_id: line.batch_id.clone(),
            line_no: line.line_no,
            id_number: line.id_number.clone(),
            name: line.name.clone(),
            account: line.account.clone(),
            month: m,
            amount: line.amount,
            top_stratum: picked.top_stratum,
            province_documents: flow.upper(&line.county, m, "province"),
            city_documents: flow.upper(&line.county, m, "city"),
            county_documents: flow.upper(&line.county, m, "county"),
            disbursement,
            business_date: line.business_date,
            bank_date: line.bank_date,
            bank_memo: line.bank_memo.clone(),
            entitled,
            tier,
            due_from,
            deadline,
            death_date,
            duplicates,
            checks,
            audited: if first_of_group { entitled } else { Fen::ZERO },
        });
    }
    let uml = match (request.method, drawn.interval) {
        (Method::Monetary, Some(interval)) => {
            let results: Vec<Audited> = items
                .iter()
                .map(|i| Audited {
                    book: i.amount,
                    audited: i.audited,
                    top_stratum: i.top_stratum,
                })
                .collect();
            Some(
                sample::upper_misstatement_limit(&results, interval, request.confidence)
                    .map_err(|e| invalid(e.to_string()))?,
            )
        }
        _ => None,
    };
    Ok(SpotCheck {
        request,
        program_name: program.name().to_string(),
        sample: drawn,
        items,
        uml,
        made_on: chrono::Local::now().date_naive(),
    })
}

/// The detail columns: (CSV name, Chinese header).
const DETAIL_COLUMNS: [(&str, &str); 27] = [
    ("draw", "序号"),
    ("payment", "付款编号"),
    ("county_code", "县区"),
    ("unit", "发放单位"),
    ("name", "姓名"),
    ("id_number", "身份证号"),
    ("month", "所属月份"),
    ("province_documents", "省级下达文号"),
    ("city_documents", "市级下达文号"),
    ("county_documents", "县级配套文号"),
    ("disbursement", "县级拨付文号"),
    ("received", "拨付到账日期"),
    ("batch_id", "发放批次"),
    ("line_no", "批次行号"),
    ("business_date", "批次日期"),
    ("bank_date", "银行入账日期"),
    ("bank_memo", "银行回单"),
    ("amount", "实发金额"),
    ("entitled", "应发金额"),
    ("tier", "补助档次"),
    ("deadline", "发放时限"),
    ("check_amount", "金额核对"),
    ("check_deadline", "时限核对"),
    ("check_alive", "生存核对"),
    ("check_eligible", "资格核对"),
    ("check_not_duplicated", "重复核对"),
    ("result", "结论"),
];

fn documents(list: &[Document]) -> String {
    list.iter()
        .map(Document::short)
        .collect::<Vec<_>>()
        .join("；")
}

fn detail_row(item: &TrailItem, full_ids: bool) -> Vec<Cell> {
    vec![
        Cell::Int(item.draw as i64),
        item.payment.clone().into(),
        item.county.clone().into(),
        item.unit.clone().into(),
        item.name.clone().into(),
        if full_ids {
            item.id_number.clone()
        } else {
            item.masked_id()
        }
        .into(),
        item.month.to_string().into(),
        documents(&item.province_documents).into(),
        documents(&item.city_documents).into(),
        documents(&item.county_documents).into(),
        item.disbursement
            .as_ref()
            .map(|d| d.document.clone())
            .unwrap_or_else(|| "未找到拨付记录".into())
            .into(),
        item.disbursement.as_ref().map(|d| d.date).into(),
        item.batch_id.clone().into(),
        Cell::Int(item.line_no),
        item.business_date.into(),
        item.bank_date.into(),
        item.bank_memo.clone().into(),
        item.amount.into(),
        item.entitled.into(),
        item.tier.clone().into(),
        item.deadline.into(),
        verdict(item.checks.amount).into(),
        verdict(item.checks.deadline).into(),
        verdict(item.checks.alive).into(),
        verdict(item.checks.eligible).into(),
        verdict(item.checks.not_duplicated).into(),
        verdict(item.checks.pass()).into(),
    ]
}

/// The sampled items as a sheet (CSV, JSON, HTML); ID numbers masked unless `full_ids`.
pub fn sheet(check: &SpotCheck, full_ids: bool) -> Sheet {
    let mut sheet = Sheet::new(
        "抽查明细",
        DETAIL_COLUMNS
            .iter()
            .map(|(name, label)| match *name {
                "amount" | "entitled" => Column::summed(name, label),
                _ => Column::new(name, label),
            })
            .collect(),
    );
    sheet.subtitle.push(format!(
        "{} {} · {}..{} · {} · 种子 seed {}",
        check.request.program,
        check.program_name,
        check.request.from,
        check.request.to,
        check.request.method.label_zh(),
        check.request.seed
    ));
    for item in &check.items {
        sheet.push(detail_row(item, full_ids));
    }
    sheet
}

/// The cover's lines: label and value.
pub fn cover(check: &SpotCheck) -> Vec<(&'static str, Cell)> {
    let r = &check.request;
    let percent = |d: Decimal| format!("{}%", d.normalize());
    let mut out: Vec<(&'static str, Cell)> = vec![
        (
            "项目",
            format!("{} {}", r.program, check.program_name).into(),
        ),
        (
            "县区",
            r.county.clone().unwrap_or_else(|| "全部".into()).into(),
        ),
        ("期间", format!("{}..{}", r.from, r.to).into()),
        ("抽样方法", r.method.label_zh().into()),
        ("随机种子", r.seed.to_string().into()),
        ("样本量", Cell::Int(check.items.len() as i64)),
        ("申请样本量", Cell::Int(check.sample.size_requested as i64)),
        ("置信水平", percent(r.confidence).into()),
        ("可容忍偏差率", percent(r.tolerable).into()),
        ("总体笔数", Cell::Int(check.sample.population_count as i64)),
        ("总体金额", check.sample.population_total.into()),
    ];
    match (&check.sample.interval, &check.uml) {
        (Some(j), Some(uml)) => {
            out.push(("抽样间距", (*j).into()));
            out.push((
                "随机起点",
                Cell::Int(check.sample.random_start.unwrap_or(0)),
            ));
            out.push(("误差上限", uml.limit.into()));
        }
        _ => {
            out.push(("抽样间距", "不适用（非货币单位抽样）".into()));
            out.push(("误差上限", "不适用（非货币单位抽样）".into()));
        }
    }
    out.push((
        "通过笔数",
        Cell::Int((check.items.len() - check.failed()) as i64),
    ));
    out.push(("不通过笔数", Cell::Int(check.failed() as i64)));
    out.push(("编制日期", check.made_on.into()));
    out
}

struct Formats {
    money: Format,
    date: Format,
    header: Format,
    fail: Format,
}

fn write_cell(
    sheet: &mut Worksheet,
    row: u32,
    col: u16,
    cell: &Cell,
    formats: &Formats,
) -> Result<(), XlsxError> {
    match cell {
        Cell::Empty => {}
        Cell::Text(t) if t == "FAIL" => {
            sheet.write_string_with_format(row, col, t, &formats.fail)?;
        }
        Cell::Text(t) => {
            sheet.write_string(row, col, t)?;
        }
        Cell::Int(n) => {
            sheet.write(row, col, Decimal::from(*n))?;
        }
        Cell::Money(f) => {
            sheet.write_with_format(row, col, f.to_decimal(), &formats.money)?;
        }
        Cell::Date(d) => {
            sheet.write_string_with_format(
                row,
                col,
                d.format("%Y-%m-%d").to_string(),
                &formats.date,
            )?;
        }
    }
    Ok(())
}

/// Writes the workpaper: 封面 (cover) and 抽查明细 (one row per sampled payment, header frozen).
/// ID numbers are masked.
pub fn write_workpaper(check: &SpotCheck, path: &Path) -> Result<(), InspectError> {
    let fail = |e: XlsxError| invalid(format!("{}: cannot write: {e}", path.display()));
    let formats = Formats {
        money: Format::new().set_num_format("#,##0.00"),
        date: Format::new().set_align(FormatAlign::Center),
        header: Format::new()
            .set_bold()
            .set_align(FormatAlign::Center)
            .set_background_color("#DDEBF7"),
        fail: Format::new().set_bold().set_font_color("#C00000"),
    };
    let mut workbook = Workbook::new();
    let front = workbook.add_worksheet();
    front.set_name("封面").map_err(fail)?;
    front
        .write_string_with_format(
            0,
            0,
            "专项资金抽查工作底稿",
            &Format::new().set_bold().set_font_size(16),
        )
        .map_err(fail)?;
    front.set_column_width(0, 18).map_err(fail)?;
    front.set_column_width(1, 48).map_err(fail)?;
    for (i, (label, value)) in cover(check).iter().enumerate() {
        let row = i as u32 + 2;
        front
            .write_string_with_format(row, 0, *label, &Format::new().set_bold())
            .map_err(fail)?;
        write_cell(front, row, 1, value, &formats).map_err(fail)?;
    }
    let detail = workbook.add_worksheet();
    detail.set_name("抽查明细").map_err(fail)?;
    for (c, (_, label)) in DETAIL_COLUMNS.iter().enumerate() {
        detail
            .write_string_with_format(0, c as u16, *label, &formats.header)
            .map_err(fail)?;
        let width = match c {
            7..=10 | 16 => 30,
            _ => 14,
        };
        detail.set_column_width(c as u16, width).map_err(fail)?;
    }
    detail.set_freeze_panes(1, 0).map_err(fail)?;
    for (r, item) in check.items.iter().enumerate() {
        for (c, cell) in detail_row(item, false).iter().enumerate() {
            write_cell(detail, r as u32 + 1, c as u16, cell, &formats).map_err(fail)?;
        }
    }
    workbook.save(path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::split_runs;

    fn batches(lines: &[i64]) -> Vec<(String, i64)> {
        lines
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("B{i:03}"), *n))
            .collect()
    }

    #[test]
    fn the_population_runs_cover_every_batch_once_in_order() {
        for (lines, parts) in [
            (vec![600, 5, 610, 3, 590, 7, 620], 2),
            (vec![1, 1, 1, 1, 1], 3),
            (vec![1000, 1], 2),
            (vec![0, 0, 0], 2),
            (vec![42], 4),
        ] {
            let list = batches(&lines);
            let runs = split_runs(&list, parts);
            assert!(
                !runs.is_empty() && runs.len() <= parts,
                "{lines:?}: {runs:?}"
            );
            // Consecutive: each run starts right after the one before, the last ends at the end.
            let mut next = 0;
            for (first, last) in &runs {
                assert_eq!(first, &list[next].0, "{lines:?}: {runs:?}");
                let end = list.iter().position(|(b, _)| b == last).expect("a batch");
                assert!(end >= next);
                next = end + 1;
            }
            assert_eq!(next, list.len(), "{lines:?}: {runs:?}");
        }
        assert!(split_runs(&[], 2).is_empty());
    }

    #[test]
    fn the_population_runs_hold_about_as_many_lines_each() {
        let list = batches(&[600, 5, 610, 3, 590, 7, 620, 4]);
        let runs = split_runs(&list, 2);
        assert_eq!(runs.len(), 2);
        let lines_of = |(first, last): &(String, String)| -> i64 {
            list.iter()
                .filter(|(b, _)| b >= first && b <= last)
                .map(|(_, n)| n)
                .sum()
        };
        let (a, b) = (lines_of(&runs[0]), lines_of(&runs[1]));
        assert_eq!(a + b, 2439);
        assert!((a - b).abs() <= 620, "{a} against {b}");
    }
}
