//! 追溯: the whole trail of one person or one entry, for spot checks. A person's trail runs from the
//! county's release documents (province, city, county matching) through the unit's disbursement for
//! the months, each month's payout lines (or direct payments) and bank results, to any recovery, beside the
//! entitlement recomputed from the program's rules. An entry's trail shows the entry, its postings,
//! what it refers to and what refers to it, its flow record, and the chain up and down.
//! ID numbers are masked unless the caller asks for them in full.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;

use super::{InspectError, mask_ids};
use crate::calendar::YearMonth;
use crate::money::Fen;
use crate::program::entitlements;
use crate::report::{Cell, Column, Sheet};
use crate::store::{Store, portable};

/// Months a person's trail may span (a stated limit: 50 years of monthly payments).
pub const TRACE_MONTHS_MAX: i32 = 600;

/// A trail: a title and its sections, each a table. The first section is the trail itself (one
/// uniform table, step by step); the others give the detail.
#[derive(Clone, Debug)]
pub struct Trace {
    pub title: String,
    pub subtitle: Vec<String>,
    pub sections: Vec<Sheet>,
}

impl Trace {
    /// The trail as one sheet (the first section, with the trace's title), for CSV/XLSX/HTML/JSON.
    pub fn to_sheet(&self) -> Sheet {
        let mut sheet = self
            .sections
            .first()
            .cloned()
            .unwrap_or_else(|| Sheet::new(self.title.clone(), Vec::new()));
        sheet.title = self.title.clone();
        sheet.subtitle = self.subtitle.clone();
        sheet
    }

    /// Every section as plain text: a heading and an aligned table each.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        for line in &self.subtitle {
            out.push_str(line);
            out.push('\n');
        }
        for sheet in &self.sections {
            out.push_str(&format!("\n== {} ==\n", sheet.title));
            if sheet.rows.is_empty() {
                out.push_str("(none)\n");
                continue;
            }
            let cells: Vec<Vec<String>> = std::iter::once(
                sheet
                    .columns
                    .iter()
                    .map(|c| c.label.clone())
                    .collect::<Vec<_>>(),
            )
            .chain(sheet.rows.iter().map(|r| {
                r.iter()
                    .map(|c| match c {
                        Cell::Money(f) => f.grouped(),
                        other => other.display(),
                    })
                    .collect()
            }))
            .collect();
            let widths: Vec<usize> = (0..sheet.columns.len())
                .map(|i| cells.iter().map(|r| width(&r[i])).max().unwrap_or(0))
                .collect();
            for row in &cells {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(t, w)| format!("{t}{}", " ".repeat(w.saturating_sub(width(t)))))
                    .collect();
                out.push_str(line.join("  ").trim_end());
                out.push('\n');
            }
        }
        out
    }

    /// Every section as JSON (money as yuan strings).
    pub fn to_json(&self) -> String {
        let sections: Vec<serde_json::Value> = self
            .sections
            .iter()
            .map(|s| serde_json::from_str(&s.to_json()).unwrap_or(serde_json::Value::Null))
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "title": self.title,
            "subtitle": self.subtitle,
            "sections": sections,
        }))
        .unwrap_or_default()
    }

    fn mask(mut self, full: bool) -> Trace {
        if full {
            return self;
        }
        self.title = mask_ids(&self.title);
        self.subtitle = self.subtitle.iter().map(|s| mask_ids(s)).collect();
        for sheet in &mut self.sections {
            for row in &mut sheet.rows {
                for cell in row.iter_mut() {
                    if let Cell::Text(t) = cell {
                        *t = mask_ids(t);
                    }
                }
            }
        }
        self
    }
}

/// Display width: a CJK character takes two columns.
fn width(text: &str) -> usize {
    text.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 })
        .sum()
}

fn sheet(title: &str, columns: &[(&str, &str)]) -> Sheet {
    Sheet::new(
        title,
        columns
            .iter()
            .map(|(name, label)| Column::new(name, label))
            .collect(),
    )
}

fn text(value: Option<String>) -> Cell {
    value.map_or(Cell::Empty, Cell::Text)
}

fn date(value: Option<String>) -> Cell {
    match value {
        None => Cell::Empty,
        Some(t) => t
            .get(..10)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map_or(Cell::Text(t.clone()), Cell::Date),
    }
}

fn money(value: Option<i64>) -> Cell {
    value.map_or(Cell::Empty, |f| Cell::Money(Fen(f)))
}

/// The uniform trail table.
fn trail_sheet() -> Sheet {
    sheet(
        "资金轨迹 trail",
        &[
            ("step", "环节"),
            ("date", "日期"),
            ("document", "文号/批次"),
            ("subject", "对象"),
            ("month", "所属月份"),
            ("amount", "金额(元)"),
            ("status", "状态"),
            ("detail", "说明"),
        ],
    )
}

#[allow(clippy::too_many_arguments)]
fn trail_row(
    step: &str,
    when: Option<String>,
    document: String,
    subject: String,
    month: String,
    amount: Option<i64>,
    status: &str,
    detail: String,
) -> Vec<Cell> {
    vec![
        Cell::text(step),
        date(when),
        Cell::text(document),
        Cell::text(subject),
        Cell::text(month),
        money(amount),
        Cell::text(status),
        Cell::text(detail),
    ]
}

fn level_step(kind: &str, level: Option<&str>) -> &'static str {
    match (kind, level) {
        ("matching", _) => "县级配套",
        ("release", Some("province")) => "省级下达",
        ("release", Some("city")) => "市级下达",
        ("release", _) => "下达",
        ("disbursement", _) => "县级拨付",
        ("return", Some(_)) => "县级退回上级",
        ("return", None) => "单位退回县级",
        ("recovery", _) => "追回立账",
        ("recovery_receipt", _) => "追回到账",
        _ => "其他",
    }
}

/// One payout line of a person as stored, with its bank result.
struct LineRow {
    program: String,
    batch: String,
    line_no: i64,
    unit: String,
    file: String,
    business_date: String,
    month: String,
    amount: i64,
    payment_key: String,
    posted: Option<(String, String)>,
    voided: Option<(String, String)>,
}

impl LineRow {
    fn status(&self) -> &'static str {
        match (&self.posted, &self.voided) {
            (Some(_), _) => "paid",
            (None, Some(_)) => "failed",
            _ => "pending",
        }
    }
}

/// A payment a unit made directly (`pay:…`), which has no payout line.
struct DirectPayment {
    month: String,
    date: String,
    memo: String,
    amount: i64,
    key: String,
    /// Reversed afterwards: shown, not counted as paid (as the reports do).
    reversed: bool,
}

/// A release, matching share or disbursement record.
struct FlowRow {
    key: String,
    kind: String,
    level: Option<String>,
    document: String,
    date: String,
    from: String,
    to: String,
    amount: i64,
    computed: Option<i64>,
    covers_from: Option<String>,
    covers_to: Option<String>,
}

const FLOW_COLUMNS: &str = "entry_key, kind, level, document, event_date, from_owner, to_owner, amount, computed, covers_from, covers_to";

fn flow_row(row: &sqlx::any::AnyRow) -> Result<FlowRow, sqlx::Error> {
    Ok(FlowRow {
        key: row.try_get(0)?,
        kind: row.try_get(1)?,
        level: row.try_get(2)?,
        document: row.try_get(3)?,
        date: row.try_get(4)?,
        from: row.try_get(5)?,
        to: row.try_get(6)?,
        amount: row.try_get(7)?,
        computed: row.try_get(8)?,
        covers_from: row.try_get(9)?,
        covers_to: row.try_get(10)?,
    })
}

fn covers(f: &FlowRow, month: &str) -> bool {
    match (&f.covers_from, &f.covers_to) {
        (Some(a), Some(b)) => a.as_str() <= month && month <= b.as_str(),
        _ => false,
    }
}

async fn payout_lines_of(store: &Store, id_number: &str) -> Result<Vec<LineRow>, InspectError> {
    let sql = format!(
        "SELECT b.program, b.batch_id, l.line_no, b.unit_code, b.file_name, b.business_date, \
         l.month, l.amount, l.payment_key, r.status, r.entry_date, \
         COALESCE(r.memo, '银行成功 ' || l.batch_id) \
         FROM {} l JOIN payout_batches b ON b.batch_id = l.batch_id \
         LEFT JOIN payout_results r ON r.payment_key = l.payment_key \
         ORDER BY l.month, b.batch_id, l.line_no",
        crate::flow::payout::person_lines("= $1")
    );
    let rows = sqlx::query(portable(store.backend(), sql))
        .bind(id_number.to_string())
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            // The bank's answer, if any: (day, memo) as paid or as failed.
            let status: Option<String> = r.try_get(9)?;
            let answer: Option<(String, String)> = match r.try_get::<Option<String>, _>(10)? {
                Some(day) => Some((day, r.try_get(11)?)),
                None => None,
            };
            let paid = status.as_deref() == Some("paid");
            Ok(LineRow {
                program: r.try_get(0)?,
                batch: r.try_get(1)?,
                line_no: r.try_get(2)?,
                unit: r.try_get(3)?,
                file: r.try_get(4)?,
                business_date: r.try_get(5)?,
                month: r.try_get(6)?,
                amount: r.try_get(7)?,
                payment_key: r.try_get(8)?,
                posted: answer.clone().filter(|_| paid),
                voided: answer.filter(|_| !paid),
            })
        })
        .collect()
}

/// The whole trail of one person, on every program's roster they are on. `full` shows ID numbers
/// unmasked.
pub async fn trace_person(
    store: &Store,
    id_number: &str,
    full: bool,
) -> Result<Trace, InspectError> {
    let id = id_number.trim().to_ascii_uppercase();
    let regions = store.regions().await?;
    let roster_rows = sqlx::query(portable(
        store.backend(),
        "SELECT DISTINCT program FROM roster WHERE id_number = $1 ORDER BY program".into(),
    ))
    .bind(id.clone())
    .fetch_all(store.pool())
    .await?;
    let mut people = Vec::new();
    for row in &roster_rows {
        let program: String = row.try_get(0)?;
        // The person's own rows only (by ID), not the whole county's roster.
        people.extend(
            store
                .roster_entries_by_id(&program, std::slice::from_ref(&id))
                .await?,
        );
    }
    let lines = payout_lines_of(store, &id).await?;
    if people.is_empty() && lines.is_empty() {
        return Err(InspectError::NotFound(format!(
            "no person with ID number {} is on any roster or payout line",
            if full { id.clone() } else { mask_ids(&id) }
        )));
    }
    let name = people.first().map(|p| p.name.clone()).unwrap_or_default();
    let mut trail = trail_sheet();
    let mut roster = sheet(
        "名册 roster",
        &[
            ("program", "项目"),
            ("id_number", "身份证号"),
            ("name", "姓名"),
            ("sex", "性别"),
            ("birth_date", "出生日期"),
            ("semesters", "任教学期数"),
            ("county", "县区"),
            ("unit", "发放单位"),
            ("bank_account", "账号"),
            ("exclusion", "排除情形"),
            ("death_date", "死亡日期"),
            ("left", "退出名册"),
        ],
    );
    for p in &people {
        roster.push(vec![
            Cell::text(p.program.clone()),
            Cell::text(p.id_number.clone()),
            Cell::text(p.name.clone()),
            Cell::text(format!("{:?}", p.sex)),
            Cell::Date(p.birth_date),
            p.semesters.map_or(Cell::Empty, |s| Cell::Int(i64::from(s))),
            Cell::text(p.county.clone()),
            text(p.unit.clone()),
            match &p.bank_account {
                Some(a) if full => Cell::text(a.clone()),
                Some(a) => Cell::text(format!(
                    "****{}",
                    a.chars()
                        .rev()
                        .take(4)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<String>()
                )),
                None => Cell::Empty,
            },
            text(p.exclusion.clone()),
            p.death_date.map_or(Cell::Empty, Cell::Date),
            text(
                p.left_date
                    .map(|d| format!("{d} {}", p.left_reason.clone().unwrap_or_default())),
            ),
        ]);
    }
    let mut events = sheet(
        "人员变动 life events",
        &[
            ("program", "项目"),
            ("kind", "事项"),
            ("event_date", "日期"),
            ("detail", "说明"),
        ],
    );
    for r in sqlx::query(portable(
        store.backend(),
        "SELECT program, kind, event_date, detail FROM roster_events WHERE id_number = $1 \
         ORDER BY event_date, id"
            .into(),
    ))
    .bind(id.clone())
    .fetch_all(store.pool())
    .await?
    {
        events.push(vec![
            Cell::text(r.try_get::<String, _>(0)?),
            Cell::text(r.try_get::<String, _>(1)?),
            date(r.try_get(2)?),
            Cell::text(r.try_get::<String, _>(3)?),
        ]);
    }

    // Programs and the (county, unit) each is paid through: from the roster, else from the lines.
    let mut programs: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for p in &people {
        let slot = programs
            .entry(p.program.clone())
            .or_insert_with(|| (p.county.clone(), BTreeSet::new()));
        slot.1.extend(p.unit.clone());
    }
    for l in &lines {
        let unit_county = store
            .unit(&l.unit)
            .await?
            .map(|u| u.county)
            .unwrap_or_default();
        let slot = programs
            .entry(l.program.clone())
            .or_insert_with(|| (unit_county, BTreeSet::new()));
        slot.1.insert(l.unit.clone());
    }

    let mut months_sheet = sheet(
        "逐月应发实发 month by month",
        &[
            ("program", "项目"),
            ("month", "月份"),
            ("entitled_by_rules", "按规则应发(元)"),
            ("accrued", "已确认应发(元)"),
            ("paid", "实发(元)"),
            ("recovered", "追回立账(元)"),
            ("difference", "差额(规则−实发+追回)(元)"),
            ("status", "结论"),
        ],
    );
    let mut lines_sheet = sheet(
        "发放行与银行结果 payout lines and bank results",
        &[
            ("program", "项目"),
            ("month", "所属月份"),
            ("batch_id", "批次号"),
            ("line_no", "行号"),
            ("unit", "发放单位"),
            ("file", "银行文件"),
            ("amount", "金额(元)"),
            ("status", "状态"),
            ("result_date", "回单日期"),
            ("result", "银行结果"),
        ],
    );
    let mut docs_sheet = sheet(
        "资金文件 release and disbursement documents",
        &[
            ("program", "项目"),
            ("step", "环节"),
            ("date", "日期"),
            ("document", "文号"),
            ("from", "付款方"),
            ("to", "收款方"),
            ("covers", "所属期"),
            ("computed", "测算数(元)"),
            ("amount", "金额(元)"),
            ("for_months", "本人月份对应金额(元)"),
            ("entry_key", "凭证键"),
        ],
    );

    for (program_code, (county, units)) in &programs {
        let person_lines: Vec<&LineRow> = lines
            .iter()
            .filter(|l| &l.program == program_code)
            .collect();
        // What each month's claims say was owed (the latest attempt's amount), and the payments the
        // unit made directly (pay:…), which have no payout line.
        let claims = sqlx::query(portable(
            store.backend(),
            "SELECT c.month, c.attempt, c.amount, c.payment_key, e.entry_date, e.memo, \
               (SELECT COUNT(*) FROM entries r WHERE r.county_code = e.county_code \
                AND r.refers_seq = e.seq AND r.kind = 'reversal') \
             FROM payout_claim_months m CROSS JOIN payout_claims c \
             LEFT JOIN entries e ON e.idem_key = c.payment_key \
             WHERE m.program = $1 AND c.program = m.program AND c.month = m.month \
               AND c.id_number = $2 ORDER BY c.month, c.attempt"
                .into(),
        ))
        .bind(program_code.clone())
        .bind(id.clone())
        .fetch_all(store.pool())
        .await?;
        let mut owed: BTreeMap<String, i64> = BTreeMap::new();
        let mut direct: Vec<DirectPayment> = Vec::new();
        for r in &claims {
            let month: String = r.try_get(0)?;
            let amount: Option<i64> = r.try_get(2)?;
            let key: String = r.try_get(3)?;
            if let Some(amount) = amount {
                // Claims come in attempt order: the latest says what the month is owed.
                owed.insert(month.clone(), amount);
            }
            let date: Option<String> = r.try_get(4)?;
            if let (true, Some(date), Some(amount)) = (key.starts_with("pay:"), date, amount) {
                direct.push(DirectPayment {
                    month,
                    date,
                    memo: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
                    amount,
                    key,
                    reversed: r.try_get::<Option<i64>, _>(6)?.unwrap_or(0) > 0,
                });
            }
        }
        let recoveries: Vec<FlowRow> = sqlx::query(portable(
            store.backend(),
            format!(
                "SELECT {FLOW_COLUMNS} FROM flow_events WHERE from_owner = $1 AND program = $2 \
                 AND kind IN ('recovery', 'recovery_receipt') ORDER BY event_date, entry_key"
            ),
        ))
        .bind(id.clone())
        .bind(program_code.clone())
        .fetch_all(store.pool())
        .await?
        .iter()
        .map(flow_row)
        .collect::<Result<_, _>>()?;
        let releases: Vec<FlowRow> = sqlx::query(portable(
            store.backend(),
            format!(
                "SELECT {FLOW_COLUMNS} FROM flow_events WHERE county_code = $1 AND program = $2 \
                 AND kind IN ('release', 'matching') ORDER BY event_date, entry_key"
            ),
        ))
        .bind(county.clone())
        .bind(program_code.clone())
        .fetch_all(store.pool())
        .await?
        .iter()
        .map(flow_row)
        .collect::<Result<_, _>>()?;

        // The months of the trail: every month paid, accrued or recovered.
        let mut months: BTreeSet<String> = person_lines.iter().map(|l| l.month.clone()).collect();
        months.extend(owed.keys().cloned());
        months.extend(recoveries.iter().filter_map(|r| {
            (r.kind == "recovery")
                .then(|| r.covers_from.clone())
                .flatten()
        }));

        // Disbursements to the person's units, with what they carry for the person's months.
        let mut disbursements: Vec<(FlowRow, BTreeMap<String, i64>)> = Vec::new();
        for unit in units {
            let rows = sqlx::query(portable(
                store.backend(),
                format!(
                    "SELECT {FLOW_COLUMNS} FROM flow_events WHERE kind = 'disbursement' \
                     AND program = $1 AND to_owner = $2 ORDER BY event_date, entry_key"
                ),
            ))
            .bind(program_code.clone())
            .bind(unit.clone())
            .fetch_all(store.pool())
            .await?;
            for r in &rows {
                let flow = flow_row(r)?;
                let month_rows = sqlx::query(portable(
                    store.backend(),
                    "SELECT month, amount FROM flow_event_months WHERE entry_key = $1 ORDER BY month"
                        .into(),
                ))
                .bind(flow.key.clone())
                .fetch_all(store.pool())
                .await?;
                let mut per_month = BTreeMap::new();
                for m in &month_rows {
                    let month: String = m.try_get(0)?;
                    if months.contains(&month) {
                        per_month.insert(month, m.try_get::<i64, _>(1)?);
                    }
                }
                if !per_month.is_empty() {
                    disbursements.push((flow, per_month));
                }
            }
        }

        // Trail: releases covering the months, then disbursements, then month by month.
        for f in releases
            .iter()
            .filter(|f| months.iter().any(|m| covers(f, m)))
        {
            let step = level_step(&f.kind, f.level.as_deref());
            let covered = format!(
                "{}..{}",
                f.covers_from.clone().unwrap_or_default(),
                f.covers_to.clone().unwrap_or_default()
            );
            trail.push(trail_row(
                step,
                Some(f.date.clone()),
                f.document.clone(),
                format!("{} → {}", f.from, f.to),
                covered.clone(),
                Some(f.amount),
                "posted",
                f.key.clone(),
            ));
            docs_sheet.push(vec![
                Cell::text(program_code.clone()),
                Cell::text(step),
                date(Some(f.date.clone())),
                Cell::text(f.document.clone()),
                Cell::text(f.from.clone()),
                Cell::text(f.to.clone()),
                Cell::text(covered),
                money(f.computed),
                money(Some(f.amount)),
                Cell::Empty,
                Cell::text(f.key.clone()),
            ]);
        }
        for (f, per_month) in &disbursements {
            let for_months: i64 = per_month.values().sum();
            trail.push(trail_row(
                "县级拨付",
                Some(f.date.clone()),
                f.document.clone(),
                format!("{} → {}", f.from, f.to),
                per_month.keys().cloned().collect::<Vec<_>>().join(","),
                Some(f.amount),
                "posted",
                f.key.clone(),
            ));
            docs_sheet.push(vec![
                Cell::text(program_code.clone()),
                Cell::text("县级拨付"),
                date(Some(f.date.clone())),
                Cell::text(f.document.clone()),
                Cell::text(f.from.clone()),
                Cell::text(f.to.clone()),
                Cell::text(format!(
                    "{}..{}",
                    f.covers_from.clone().unwrap_or_default(),
                    f.covers_to.clone().unwrap_or_default()
                )),
                money(f.computed),
                money(Some(f.amount)),
                money(Some(for_months)),
                Cell::text(f.key.clone()),
            ]);
        }

        // The entitlement recomputed from the rules over the trail's months.
        let mut by_rules: BTreeMap<String, i64> = BTreeMap::new();
        let mut rules_note = None;
        let person = people.iter().find(|p| &p.program == program_code);
        let parsed: Vec<YearMonth> = months.iter().filter_map(|m| m.parse().ok()).collect();
        if let (Some(person), Some(first), Some(last)) =
            (person, parsed.first().copied(), parsed.last().copied())
        {
            let last = if last > first.plus(TRACE_MONTHS_MAX) {
                first.plus(TRACE_MONTHS_MAX)
            } else {
                last
            };
            match store.program(program_code).await {
                Ok(program) => {
                    match entitlements(&program, &person.beneficiary(&regions), first, last) {
                        Ok(rows) => {
                            for e in rows {
                                *by_rules.entry(e.month.to_string()).or_default() += e.amount.get();
                            }
                        }
                        Err(e) => rules_note = Some(format!("rules: {e}")),
                    }
                }
                Err(e) => rules_note = Some(format!("rules: {e}")),
            }
        }

        for month in &months {
            for d in direct.iter().filter(|d| &d.month == month) {
                trail.push(trail_row(
                    "直接发放",
                    Some(d.date.clone()),
                    d.memo.clone(),
                    format!("→ {name} {id}"),
                    month.clone(),
                    Some(d.amount),
                    if d.reversed { "reversed" } else { "posted" },
                    d.key.clone(),
                ));
            }
            for l in person_lines.iter().filter(|l| &l.month == month) {
                trail.push(trail_row(
                    "发放",
                    Some(l.business_date.clone()),
                    format!("{} 第{}行", l.batch, l.line_no),
                    format!("{} → {name} {id}", l.unit),
                    month.clone(),
                    Some(l.amount),
                    "sent",
                    format!("{} {}", l.payment_key, l.file),
                ));
                let (step, result) = match (&l.posted, &l.voided) {
                    (Some(r), _) => ("银行成功", Some(r)),
                    (None, Some(r)) => ("银行失败", Some(r)),
                    _ => ("待银行回单", None),
                };
                trail.push(trail_row(
                    step,
                    result.map(|(d, _)| d.clone()),
                    format!("{} 第{}行", l.batch, l.line_no),
                    format!("{name} {id}"),
                    month.clone(),
                    Some(l.amount),
                    l.status(),
                    result.map(|(_, m)| m.clone()).unwrap_or_default(),
                ));
                lines_sheet.push(vec![
                    Cell::text(program_code.clone()),
                    Cell::text(month.clone()),
                    Cell::text(l.batch.clone()),
                    Cell::Int(l.line_no),
                    Cell::text(l.unit.clone()),
                    Cell::text(l.file.clone()),
                    money(Some(l.amount)),
                    Cell::text(l.status()),
                    date(result.map(|(d, _)| d.clone())),
                    text(result.map(|(_, m)| m.clone())),
                ]);
            }
            let recovered: i64 = recoveries
                .iter()
                .filter(|r| r.kind == "recovery" && r.covers_from.as_deref() == Some(month))
                .map(|r| r.amount)
                .sum();
            for r in recoveries
                .iter()
                .filter(|r| r.kind == "recovery" && r.covers_from.as_deref() == Some(month))
            {
                trail.push(trail_row(
                    "追回立账",
                    Some(r.date.clone()),
                    r.document.clone(),
                    format!("{name} {id}"),
                    month.clone(),
                    Some(r.amount),
                    "booked",
                    r.key.clone(),
                ));
            }
            let paid: i64 = person_lines
                .iter()
                .filter(|l| &l.month == month && l.posted.is_some())
                .map(|l| l.amount)
                .sum::<i64>()
                + direct
                    .iter()
                    .filter(|d| &d.month == month && !d.reversed)
                    .map(|d| d.amount)
                    .sum::<i64>();
            let rule = by_rules.get(month).copied();
            let rule = rule.or(Some(0)).filter(|_| rules_note.is_none());
            let difference = rule.map(|r| r - paid + recovered);
            let status = match difference {
                None => "规则无法计算 rules failed",
                Some(0) => "相符 OK",
                Some(d) if d < 0 => "多发 overpaid",
                Some(_) if paid == 0 => "未发 not paid",
                Some(_) => "少发 underpaid",
            };
            months_sheet.push(vec![
                Cell::text(program_code.clone()),
                Cell::text(month.clone()),
                money(rule),
                money(owed.get(month).copied()),
                money(Some(paid)),
                money(Some(recovered)),
                money(difference),
                Cell::text(status),
            ]);
        }
        for r in recoveries.iter().filter(|r| r.kind == "recovery_receipt") {
            trail.push(trail_row(
                "追回到账",
                Some(r.date.clone()),
                r.document.clone(),
                format!("{name} {id} → {}", r.to),
                String::new(),
                Some(r.amount),
                "posted",
                r.key.clone(),
            ));
        }
        if let Some(note) = rules_note {
            months_sheet.subtitle.push(note);
        }
    }

    let trace = Trace {
        title: format!("个人资金追溯 trace of {name} {id}"),
        subtitle: vec![format!(
            "项目 programs: {}",
            programs.keys().cloned().collect::<Vec<_>>().join(", ")
        )],
        sections: vec![trail, roster, events, months_sheet, lines_sheet, docs_sheet],
    };
    Ok(trace.mask(full))
}

/// A stored entry as the trace shows it.
struct EntryRow {
    county: String,
    seq: i64,
    key: String,
    program: String,
    date: String,
    kind: String,
    refers_seq: Option<i64>,
    memo: String,
    created_at: String,
    content_hash: Vec<u8>,
    chain_hash: Vec<u8>,
}

const ENTRY_COLUMNS: &str = "county_code, seq, idem_key, program, entry_date, kind, refers_seq, memo, created_at, content_hash, chain_hash";

fn entry_row(r: &sqlx::any::AnyRow) -> Result<EntryRow, sqlx::Error> {
    Ok(EntryRow {
        county: r.try_get(0)?,
        seq: r.try_get(1)?,
        key: r.try_get(2)?,
        program: r.try_get(3)?,
        date: r.try_get(4)?,
        kind: r.try_get(5)?,
        refers_seq: r.try_get(6)?,
        memo: r.try_get(7)?,
        created_at: r.try_get(8)?,
        content_hash: r.try_get(9)?,
        chain_hash: r.try_get(10)?,
    })
}

async fn entry_by_key(store: &Store, key: &str) -> Result<Option<EntryRow>, InspectError> {
    let row = sqlx::query(portable(
        store.backend(),
        format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE idem_key = $1"),
    ))
    .bind(key.to_string())
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(entry_row).transpose()?)
}

async fn flow_of(store: &Store, key: &str) -> Result<Option<FlowRow>, InspectError> {
    let row = sqlx::query(portable(
        store.backend(),
        format!("SELECT {FLOW_COLUMNS} FROM flow_events WHERE entry_key = $1"),
    ))
    .bind(key.to_string())
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(flow_row).transpose()?)
}

fn chain_sheet() -> Sheet {
    sheet(
        "上下游 chain",
        &[
            ("direction", "方向"),
            ("step", "环节"),
            ("entry_key", "凭证键"),
            ("date", "日期"),
            ("document", "文号/批次"),
            ("month", "所属期"),
            ("amount", "金额(元)"),
            ("status", "状态"),
        ],
    )
}

fn flow_chain_row(direction: &str, f: &FlowRow) -> Vec<Cell> {
    vec![
        Cell::text(direction),
        Cell::text(level_step(&f.kind, f.level.as_deref())),
        Cell::text(f.key.clone()),
        date(Some(f.date.clone())),
        Cell::text(f.document.clone()),
        Cell::text(format!(
            "{}..{}",
            f.covers_from.clone().unwrap_or_default(),
            f.covers_to.clone().unwrap_or_default()
        )),
        money(Some(f.amount)),
        Cell::text("posted"),
    ]
}

/// Payout lines of `unit` in `program` for `months` (all months when empty), with their status.
async fn unit_lines(
    store: &Store,
    program: &str,
    unit: &str,
    months: &BTreeSet<String>,
) -> Result<Vec<Vec<Cell>>, InspectError> {
    let rows = sqlx::query(portable(
        store.backend(),
        "SELECT l.payment_key, b.business_date, b.batch_id, l.line_no, l.month, l.amount, r.status \
         FROM payout_lines l JOIN payout_batches b ON b.batch_id = l.batch_id \
         LEFT JOIN payout_results r ON r.payment_key = l.payment_key \
         WHERE b.program = $1 AND b.unit_code = $2 ORDER BY l.month, b.batch_id, l.line_no"
            .into(),
    ))
    .bind(program.to_string())
    .bind(unit.to_string())
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let month: String = r.try_get(4)?;
        if !months.is_empty() && !months.contains(&month) {
            continue;
        }
        let answer: Option<String> = r.try_get(6)?;
        let batch: String = r.try_get(2)?;
        let line_no: i64 = r.try_get(3)?;
        out.push(vec![
            Cell::text("下游 down"),
            Cell::text("发放"),
            Cell::text(r.try_get::<String, _>(0)?),
            date(r.try_get(1)?),
            Cell::text(format!("{batch} 第{line_no}行")),
            Cell::text(month),
            money(r.try_get(5)?),
            Cell::text(match answer.as_deref() {
                None => "pending",
                Some("paid") => "paid",
                Some(_) => "failed",
            }),
        ]);
    }
    Ok(out)
}

/// Releases and matching shares of `county` in `program` whose covered months meet `months`.
async fn county_releases(
    store: &Store,
    program: &str,
    county: &str,
    kinds: &str,
) -> Result<Vec<FlowRow>, InspectError> {
    let rows = sqlx::query(portable(
        store.backend(),
        format!(
            "SELECT {FLOW_COLUMNS} FROM flow_events WHERE county_code = $1 AND program = $2 \
             AND kind IN ({kinds}) ORDER BY event_date, entry_key"
        ),
    ))
    .bind(county.to_string())
    .bind(program.to_string())
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(flow_row).collect::<Result<_, _>>()?)
}

fn overlaps(a: &FlowRow, b: &FlowRow) -> bool {
    match (&a.covers_from, &a.covers_to, &b.covers_from, &b.covers_to) {
        (Some(af), Some(at), Some(bf), Some(bt)) => af <= bt && bf <= at,
        _ => false,
    }
}

/// The trail of one entry: the entry, its postings, what it refers to and what refers to it, its
/// flow record, and the chain up (where the money came from) and down (where it went).
pub async fn trace_entry(store: &Store, key: &str, full: bool) -> Result<Trace, InspectError> {
    let key = key.trim();
    let Some(entry) = entry_by_key(store, key).await? else {
        return Err(InspectError::NotFound(format!(
            "no entry with key \"{}\"",
            if full { key.to_string() } else { mask_ids(key) }
        )));
    };
    let mut head = sheet("凭证 entry", &[("field", "项目"), ("value", "内容")]);
    let mut field = |name: &str, value: String| {
        head.push(vec![Cell::text(name), Cell::text(value)]);
    };
    field("县区 county", entry.county.clone());
    field("凭证号 seq", entry.seq.to_string());
    field("凭证键 key", entry.key.clone());
    field("项目 program", entry.program.clone());
    field("日期 date", entry.date.clone());
    field("类别 kind", entry.kind.clone());
    field("摘要 memo", entry.memo.clone());
    field("记账时间 created", entry.created_at.clone());
    field(
        "内容哈希 content hash",
        crate::ledger::hash::to_hex(&entry.content_hash),
    );
    field(
        "链哈希 chain hash",
        crate::ledger::hash::to_hex(&entry.chain_hash),
    );

    let mut postings = sheet(
        "分录 postings",
        &[
            ("leg", "行"),
            ("account", "账户"),
            ("amount", "金额(元)"),
            ("pending", "预留"),
        ],
    );
    for r in sqlx::query(portable(
        store.backend(),
        "SELECT p.leg, a.owner, a.kind, p.amount, p.pending FROM postings p \
         JOIN accounts a ON a.id = p.account_id WHERE p.county_code = $1 AND p.seq = $2 ORDER BY p.leg"
            .into(),
    ))
    .bind(entry.county.clone())
    .bind(entry.seq)
    .fetch_all(store.pool())
    .await?
    {
        let pending: i64 = r.try_get(4)?;
        postings.push(vec![
            Cell::Int(r.try_get(0)?),
            Cell::text(format!(
                "{}:{}",
                r.try_get::<String, _>(1)?,
                r.try_get::<String, _>(2)?
            )),
            money(r.try_get(3)?),
            Cell::text(if pending != 0 { "pending" } else { "" }),
        ]);
    }

    let mut links = sheet(
        "关联凭证 linked entries",
        &[
            ("relation", "关系"),
            ("entry_key", "凭证键"),
            ("kind", "类别"),
            ("date", "日期"),
            ("memo", "摘要"),
        ],
    );
    // What it refers to (a post, void or reversal acts on an earlier entry).
    let mut target: Option<EntryRow> = None;
    if let Some(seq) = entry.refers_seq {
        let row = sqlx::query(portable(
            store.backend(),
            format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE county_code = $1 AND seq = $2"),
        ))
        .bind(entry.county.clone())
        .bind(seq)
        .fetch_optional(store.pool())
        .await?;
        if let Some(r) = row {
            let t = entry_row(&r)?;
            links.push(vec![
                Cell::text("指向 refers to"),
                Cell::text(t.key.clone()),
                Cell::text(t.kind.clone()),
                date(Some(t.date.clone())),
                Cell::text(t.memo.clone()),
            ]);
            target = Some(t);
        }
    }
    for r in sqlx::query(portable(
        store.backend(),
        format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE county_code = $1 AND refers_seq = $2 ORDER BY seq"
        ),
    ))
    .bind(entry.county.clone())
    .bind(entry.seq)
    .fetch_all(store.pool())
    .await?
    {
        let e = entry_row(&r)?;
        links.push(vec![
            Cell::text("被引用 referred to by"),
            Cell::text(e.key.clone()),
            Cell::text(e.kind.clone()),
            date(Some(e.date.clone())),
            Cell::text(e.memo.clone()),
        ]);
    }

    // The chain runs from the entry the flow knows: a post or void stands for its payment.
    let base = target
        .as_ref()
        .filter(|_| matches!(entry.kind.as_str(), "post" | "void" | "reversal"))
        .map(|t| t.key.clone())
        .unwrap_or_else(|| entry.key.clone());
    let mut flow = sheet(
        "资金记录 flow record",
        &[("field", "项目"), ("value", "内容")],
    );
    let flow_record = flow_of(store, &base).await?;
    if let Some(f) = &flow_record {
        for (name, value) in [
            (
                "类别 kind",
                level_step(&f.kind, f.level.as_deref()).to_string(),
            ),
            ("文号 document", f.document.clone()),
            ("日期 date", f.date.clone()),
            ("付款方 from", f.from.clone()),
            ("收款方 to", f.to.clone()),
            ("金额 amount", Fen(f.amount).to_string()),
            (
                "测算数 computed",
                f.computed.map(|c| Fen(c).to_string()).unwrap_or_default(),
            ),
            (
                "所属期 covers",
                format!(
                    "{}..{}",
                    f.covers_from.clone().unwrap_or_default(),
                    f.covers_to.clone().unwrap_or_default()
                ),
            ),
        ] {
            flow.push(vec![Cell::text(name), Cell::text(value)]);
        }
    }

    let mut chain = chain_sheet();
    let program = entry.program.clone();
    let county = entry.county.clone();
    let prefix = base.split(':').next().unwrap_or("");
    match (prefix, &flow_record) {
        ("release" | "matching", Some(f)) => {
            for d in county_releases(store, &program, &county, "'disbursement'").await? {
                if overlaps(f, &d) {
                    chain.push(flow_chain_row("下游 down", &d));
                }
            }
        }
        ("disbursement", Some(f)) => {
            for r in county_releases(store, &program, &county, "'release', 'matching'").await? {
                if overlaps(f, &r) {
                    chain.push(flow_chain_row("上游 up", &r));
                }
            }
            let months: BTreeSet<String> = sqlx::query(portable(
                store.backend(),
                "SELECT month FROM flow_event_months WHERE entry_key = $1".into(),
            ))
            .bind(base.clone())
            .fetch_all(store.pool())
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
            for row in unit_lines(store, &program, &f.to, &months).await? {
                chain.push(row);
            }
        }
        ("payment" | "failed", _) => {
            // payment:BATCH (the batch's entry, or its post or void), failed:payment:BATCH:LINE.
            let batch = base.split(':').nth(if prefix == "failed" { 2 } else { 1 });
            let line = sqlx::query(portable(
                store.backend(),
                "SELECT month, unit_code FROM payout_batches WHERE batch_id = $1".into(),
            ))
            .bind(batch.unwrap_or_default().to_string())
            .fetch_optional(store.pool())
            .await?;
            if let Some(r) = line {
                let month: String = r.try_get(0)?;
                let unit: String = r.try_get(1)?;
                for d in county_releases(store, &program, &county, "'disbursement'").await? {
                    if d.to == unit && covers(&d, &month) {
                        chain.push(flow_chain_row("上游 up", &d));
                    }
                }
                for r in county_releases(store, &program, &county, "'release', 'matching'").await? {
                    if covers(&r, &month) {
                        chain.push(flow_chain_row("上游 up", &r));
                    }
                }
            }
        }
        ("recovery", _) => {
            // recovery:PROGRAM:ID:MONTH
            let parts: Vec<&str> = base.split(':').collect();
            if let [_, _, id, month] = parts.as_slice() {
                // The person's lines of the month, read once: their units, and which of each
                // unit's lines are theirs (by the line's key).
                let rows = sqlx::query(portable(
                    store.backend(),
                    format!(
                        "SELECT b.unit_code, l.payment_key FROM {} l \
                         JOIN payout_batches b ON b.batch_id = l.batch_id \
                         WHERE l.month = $2 AND b.program = $3",
                        crate::flow::payout::person_lines("= $1")
                    ),
                ))
                .bind(id.to_string())
                .bind(month.to_string())
                .bind(program.clone())
                .fetch_all(store.pool())
                .await?;
                let mut units = BTreeSet::new();
                let mut theirs = BTreeSet::new();
                for r in &rows {
                    units.insert(r.try_get::<String, _>(0)?);
                    theirs.insert(r.try_get::<String, _>(1)?);
                }
                let months = BTreeSet::from([month.to_string()]);
                for unit in units {
                    for mut row in unit_lines(store, &program, &unit, &months).await? {
                        if theirs.contains(&row[2].display()) {
                            row[0] = Cell::text("上游 up");
                            chain.push(row);
                        }
                    }
                }
            }
        }
        _ => {}
    }

    let trace = Trace {
        title: format!("凭证追溯 trace of entry {}", entry.key),
        subtitle: vec![format!(
            "{} #{} {} {}",
            entry.county, entry.seq, entry.program, entry.kind
        )],
        sections: vec![chain, head, postings, links, flow],
    };
    Ok(trace.mask(full))
}
