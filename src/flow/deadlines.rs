//! The one-month deadlines, read from the flow's records: county finance must pass each upper-level
//! release on within one calendar month (MBDK （七）拨付); a unit must pay each month's money within
//! one calendar month of the later of receipt and the month's first day (（八）发放). FIFO per holder.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::Row;

use crate::calendar::YearMonth;
use crate::deadline::{Inflow, Outflow, Tranche, TrancheState, split_by_month, tranches};
use crate::money::Fen;
use crate::report::{Cell, Column, Sheet};
use crate::store::{Store, StoreError};

/// One holder's tranches: county finance or a unit, in one program's books of one county.
#[derive(Clone, Debug)]
pub struct Holder {
    pub county: String,
    pub program: String,
    pub holder: String,
    /// `county` (county finance) or `unit`
    pub kind: &'static str,
    pub tranches: Vec<Tranche>,
}

fn date(text: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| StoreError::Invalid(format!("stored date {text} is damaged")))
}

/// A unit's bank-confirmed payments of one day in one program's books: the outflows the unit
/// deadline counts, and what a summary of the money paid adds up.
#[derive(Clone, Debug)]
pub struct PaidDay {
    pub county: String,
    pub program: String,
    pub unit: String,
    pub date: NaiveDate,
    pub amount: Fen,
    /// The day's first line's payment key (the outflow is named by it).
    pub first_key: String,
    pub lines: i64,
}

/// Every unit's paid lines summed per day (the lines the bank answered as paid, dated by the
/// answer). A province-year is 3.3 million lines, so a caller that needs both this and the
/// deadline report reads it once and passes it to [`report_with`].
pub async fn paid_days(store: &Store) -> Result<Vec<PaidDay>, StoreError> {
    // A unit's payments of one day leave it together: as one outflow they take from the same
    // tranches, in the same order, as line by line (every one of them is dated that day), and a
    // province-year is 3.3 million lines but about ten thousand unit-days. Summed per batch and
    // day first, in the batches' order, then per unit-day: grouped by unit-day at once, SQLite
    // sorted all 3.3 million lines (4.8 s against 2.2 s on the province ledger).
    let rows = sqlx::query(
        "SELECT b.county_code, b.program, b.unit_code, x.entry_date, CAST(SUM(x.amount) AS BIGINT), \
           MIN(x.first_key), CAST(SUM(x.lines) AS BIGINT) \
         FROM (SELECT l.batch_id, e.entry_date, SUM(l.amount) AS amount, \
                 MIN(l.payment_key) AS first_key, COUNT(*) AS lines \
               FROM payout_lines l \
               JOIN payout_results e ON e.payment_key = l.payment_key AND e.status = 'paid' \
               GROUP BY l.batch_id, e.entry_date) x \
         JOIN payout_batches b ON b.batch_id = x.batch_id \
         GROUP BY b.county_code, b.program, b.unit_code, x.entry_date",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|p| {
            let day: String = p.try_get(3)?;
            Ok(PaidDay {
                county: p.try_get(0)?,
                program: p.try_get(1)?,
                unit: p.try_get(2)?,
                date: date(&day)?,
                amount: Fen(p.try_get(4)?),
                first_key: p.try_get(5)?,
                lines: p.try_get(6)?,
            })
        })
        .collect()
}

/// Every holder's tranches as of `as_of`.
pub async fn report(
    store: &Store,
    as_of: NaiveDate,
    county: Option<&str>,
    program: Option<&str>,
) -> Result<Vec<Holder>, StoreError> {
    let paid = paid_days(store).await?;
    report_with(store, as_of, county, program, &paid).await
}

/// [`report`] with the units' paid days already read ([`paid_days`]).
pub async fn report_with(
    store: &Store,
    as_of: NaiveDate,
    county: Option<&str>,
    program: Option<&str>,
    paid: &[PaidDay],
) -> Result<Vec<Holder>, StoreError> {
    let calendar = store.calendar().await?;
    let events = sqlx::query(
        "SELECT entry_key, kind, program, county_code, level, from_owner, to_owner, document, event_date, amount \
         FROM flow_events WHERE kind IN ('release', 'matching', 'disbursement', 'return', 'recovery_receipt') \
         ORDER BY event_date, entry_key",
    )
    .fetch_all(store.pool())
    .await?;
    let months = sqlx::query(
        "SELECT entry_key, month, amount FROM flow_event_months ORDER BY entry_key, month",
    )
    .fetch_all(store.pool())
    .await?;
    let mut per_month: BTreeMap<String, Vec<(YearMonth, Fen)>> = BTreeMap::new();
    for row in months {
        let month: String = row.try_get(1)?;
        if let Ok(m) = month.parse::<YearMonth>() {
            per_month
                .entry(row.try_get(0)?)
                .or_default()
                .push((m, Fen(row.try_get(2)?)));
        }
    }
    type Flows = (Vec<Inflow>, Vec<Outflow>);
    let mut holders: BTreeMap<(String, String, String, &'static str), Flows> = BTreeMap::new();
    for e in &events {
        let (key, kind, prog, cty): (String, String, String, String) =
            (e.try_get(0)?, e.try_get(1)?, e.try_get(2)?, e.try_get(3)?);
        let level: Option<String> = e.try_get(4)?;
        let (from, to, document, day): (String, String, String, String) =
            (e.try_get(5)?, e.try_get(6)?, e.try_get(7)?, e.try_get(8)?);
        let amount = Fen(e.try_get(9)?);
        let day = date(&day)?;
        match kind.as_str() {
            "release" | "matching" => {
                let slot = holders
                    .entry((cty.clone(), prog.clone(), to.clone(), "county"))
                    .or_default();
                slot.0.push(Inflow {
                    key,
                    received: day,
                    due_from: day,
                    amount,
                    document,
                    source: level.unwrap_or_default(),
                });
            }
            "disbursement" => {
                holders
                    .entry((cty.clone(), prog.clone(), from.clone(), "county"))
                    .or_default()
                    .1
                    .push(Outflow {
                        key: key.clone(),
                        date: day,
                        amount,
                        kind: "disbursement".into(),
                    });
                let split = match per_month.get(&key) {
                    Some(months) => split_by_month(&key, day, amount, &document, &from, months)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?,
                    None => vec![Inflow {
                        key,
                        received: day,
                        due_from: day,
                        amount,
                        document,
                        source: from.clone(),
                    }],
                };
                holders
                    .entry((cty, prog, to, "unit"))
                    .or_default()
                    .0
                    .extend(split);
            }
            "recovery_receipt" => {
                // Money recovered from a person comes back to the unit: held again, it must be paid
                // on or returned like any money received (a tranche of its own).
                holders
                    .entry((cty, prog, to, "unit"))
                    .or_default()
                    .0
                    .push(Inflow {
                        key,
                        received: day,
                        due_from: day,
                        amount,
                        document,
                        source: "追回".into(),
                    });
            }
            _ => {
                // A return leaves its holder; a unit's return also arrives at county finance, where it
                // is money held again and must be passed on or returned upward.
                let holder_kind = if level.is_some() { "county" } else { "unit" };
                if level.is_none() {
                    holders
                        .entry((cty.clone(), prog.clone(), to.clone(), "county"))
                        .or_default()
                        .0
                        .push(Inflow {
                            key: format!("{key}/in"),
                            received: day,
                            due_from: day,
                            amount,
                            document: document.clone(),
                            source: format!("{from} 退回"),
                        });
                }
                holders
                    .entry((cty, prog, from, holder_kind))
                    .or_default()
                    .1
                    .push(Outflow {
                        key,
                        date: day,
                        amount,
                        kind: "return".into(),
                    });
            }
        }
    }
    for p in paid {
        let key = if p.lines > 1 {
            format!(
                "{} and {} more lines paid that day",
                p.first_key,
                p.lines - 1
            )
        } else {
            p.first_key.clone()
        };
        holders
            .entry((p.county.clone(), p.program.clone(), p.unit.clone(), "unit"))
            .or_default()
            .1
            .push(Outflow {
                key,
                date: p.date,
                amount: p.amount,
                kind: "payment".into(),
            });
    }
    let mut out = Vec::new();
    for ((cty, prog, holder, kind), (inflows, outflows)) in holders {
        if county.is_some_and(|c| c != cty)
            || program.is_some_and(|p| !p.eq_ignore_ascii_case(&prog))
        {
            continue;
        }
        if inflows.is_empty() {
            continue;
        }
        let list = tranches(&inflows, &outflows, &calendar, as_of)
            .map_err(|e| StoreError::Invalid(format!("{kind} {holder} in {cty} ({prog}): {e}")))?;
        out.push(Holder {
            county: cty,
            program: prog,
            holder,
            kind,
            tranches: list,
        });
    }
    Ok(out)
}

fn shown(state: TrancheState, all: bool) -> bool {
    all || matches!(state, TrancheState::Stuck | TrancheState::Late)
}

/// The report as a sheet: one row per tranche (stuck and late ones, or all).
pub fn sheet(holders: &[Holder], as_of: NaiveDate, all: bool) -> Sheet {
    let mut sheet = Sheet::new(
        "资金拨付发放时限台账（滞留与逾期）",
        vec![
            Column::new("county_code", "县区"),
            Column::new("program", "项目"),
            Column::new("holder_kind", "持有方类型"),
            Column::new("holder", "持有方"),
            Column::new("document", "文号"),
            Column::new("source", "来源"),
            Column::new("received", "收到日期"),
            Column::new("due_from", "起算日期"),
            Column::new("deadline", "时限"),
            Column::summed("amount", "金额"),
            Column::summed("passed_on", "已拨付/发放"),
            Column::summed("passed_on_late", "其中逾期"),
            Column::summed("remaining", "尚未拨付/发放"),
            Column::new("state", "状态"),
            Column::new("days_overdue", "逾期天数"),
        ],
    );
    sheet.subtitle.push(format!(
        "截至 as of {as_of} · 一个月时限按《民法典》第201-203条及工作日历计算"
    ));
    for h in holders {
        for t in h.tranches.iter().filter(|t| shown(t.state, all)) {
            sheet.push(vec![
                h.county.clone().into(),
                h.program.clone().into(),
                (if h.kind == "county" {
                    "县级财政"
                } else {
                    "发放单位"
                })
                .into(),
                h.holder.clone().into(),
                t.document.clone().into(),
                t.source.clone().into(),
                t.received.into(),
                t.due_from.into(),
                t.deadline.into(),
                t.amount.into(),
                t.passed_on.into(),
                t.passed_on_late.into(),
                t.remaining.into(),
                format!("{} {}", t.state.label_zh(), t.state.as_str()).into(),
                Cell::Int(t.days_overdue),
            ]);
        }
    }
    sheet
}

/// The report as text for the terminal, with totals per holder.
pub fn text(holders: &[Holder], as_of: NaiveDate, all: bool) -> String {
    let mut out = format!("资金时限 deadlines as of {as_of}\n");
    let mut stuck_total = Fen::ZERO;
    let mut late_total = Fen::ZERO;
    for h in holders {
        let lines: Vec<&Tranche> = h.tranches.iter().filter(|t| shown(t.state, all)).collect();
        let stuck: Fen = h
            .tranches
            .iter()
            .filter(|t| t.state == TrancheState::Stuck)
            .fold(Fen::ZERO, |a, t| a.checked_add(t.remaining).unwrap_or(a));
        let late: Fen = h.tranches.iter().fold(Fen::ZERO, |a, t| {
            a.checked_add(t.passed_on_late).unwrap_or(a)
        });
        stuck_total = stuck_total.checked_add(stuck).unwrap_or(stuck_total);
        late_total = late_total.checked_add(late).unwrap_or(late_total);
        if lines.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "{} {} {} {}: 滞留 stuck {} · 逾期 late {}\n",
            h.county,
            h.program,
            if h.kind == "county" {
                "县级财政"
            } else {
                "发放单位"
            },
            h.holder,
            stuck.grouped(),
            late.grouped()
        ));
        for t in lines {
            let month = t
                .key
                .rsplit_once('/')
                .map(|(_, m)| format!(" [{m}]"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {:<34} received {}  due {}  amount {:>14}  remaining {:>14}  {}{}\n",
                format!("{}{month}", t.document),
                t.received,
                t.deadline,
                t.amount.grouped(),
                t.remaining.grouped(),
                t.state,
                if t.days_overdue > 0 {
                    format!(", {} days", t.days_overdue)
                } else {
                    String::new()
                }
            ));
        }
    }
    out.push_str(&format!(
        "合计 total: 滞留 stuck {} · 逾期拨付 passed on late {}\n",
        stuck_total.grouped(),
        late_total.grouped()
    ));
    out
}
