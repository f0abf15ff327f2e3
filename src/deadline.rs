//! Per-tranche pass-on deadlines: which money a holder (county finance or a disbursing unit) still holds past its one-month limit (滞留), and which it passed on late.
//!
//! The rules come from the MBDK policy (`policy/mbdk_guangdong.md`):
//!
//! - （七）拨付: county finance must pass the province, city and county funds on
//!   to the disbursing units "within one month of the province's and city's
//!   release" (各地应于每年省、市财政下达资金后一个月内完成拨付).
//! - （八）发放: a disbursing unit must pay people "within one month of receiving
//!   the funds" (各发放单位应于每年收到补助资金后一个月内完成发放工作).
//!
//! Each receipt is its own tranche with its own deadline, and money received
//! first is passed on first (FIFO), so an old release cannot hide behind a
//! new one. A release that covers future months is split per month
//! ([`split_by_month`]): a month's payout cannot be due before its month
//! begins. "One month" is the Civil Code period computed by
//! [`WorkCalendar::one_month_deadline`], rolled forward off rest days.
//!
//! This module is pure: it reads inflows and outflows the caller has taken
//! from the ledger and knows nothing of accounts or storage.

use crate::calendar::{CalendarError, WorkCalendar, YearMonth};
use crate::money::Fen;
use chrono::NaiveDate;
use std::collections::BTreeSet;
use std::fmt;

/// Money arriving at a holder: one release (下达), allocation (拨付) or one
/// month's share of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inflow {
    /// Unique among the inflows of one call: it names the tranche.
    pub key: String,
    /// The day the money arrived.
    pub received: NaiveDate,
    /// The day the one-month period starts; on or after `received`. Equal to
    /// `received` except for a future month of a multi-month release (see
    /// [`split_by_month`]).
    pub due_from: NaiveDate,
    /// Greater than zero.
    pub amount: Fen,
    /// The document number (文号), e.g. 粤财教〔2025〕12号.
    pub document: String,
    /// Who sent it, e.g. "province", "city", "county", "440511 finance".
    pub source: String,
}

/// Money leaving a holder. Every kind counts as passing money on: the
/// deadline asks that the holder stop holding it, and a return upward (of a
/// balance nobody may receive) ends the holding as much as a payment does.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outflow {
    /// Used to order outflows of the same day and to name one in errors.
    pub key: String,
    pub date: NaiveDate,
    /// Greater than zero.
    pub amount: Fen,
    /// "disbursement", "payment" or "return"; carried, not interpreted.
    pub kind: String,
}

/// Where a tranche stands on the report date.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TrancheState {
    /// Fully passed on, all of it by the deadline.
    OnTime,
    /// Fully passed on, some of it after the deadline.
    Late,
    /// Money still held after the deadline: 滞留.
    Stuck,
    /// Money still held, but the deadline has not passed yet.
    Open,
}

impl TrancheState {
    /// The spelling for CSV and JSON output (same as serde's).
    pub fn as_str(self) -> &'static str {
        match self {
            TrancheState::OnTime => "on_time",
            TrancheState::Late => "late",
            TrancheState::Stuck => "stuck",
            TrancheState::Open => "open",
        }
    }

    /// The word a finance officer reads in a Chinese aging report.
    pub fn label_zh(self) -> &'static str {
        match self {
            TrancheState::OnTime => "按时",
            TrancheState::Late => "逾期拨付",
            TrancheState::Stuck => "滞留",
            TrancheState::Open => "未到期",
        }
    }
}

impl fmt::Display for TrancheState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            TrancheState::OnTime => "on time",
            TrancheState::Late => "late",
            TrancheState::Stuck => "stuck (滞留)",
            TrancheState::Open => "open",
        })
    }
}

/// One inflow with its deadline and how it was passed on, as of a date.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tranche {
    pub key: String,
    pub document: String,
    pub source: String,
    pub received: NaiveDate,
    pub due_from: NaiveDate,
    /// One calendar month after `due_from`, moved to the next working day.
    /// Passing money on on this day itself is on time.
    pub deadline: NaiveDate,
    pub amount: Fen,
    /// Passed on up to the report date; `passed_on + remaining == amount`.
    pub passed_on: Fen,
    /// The part of `passed_on` that left after the deadline.
    pub passed_on_late: Fen,
    pub last_passed_on: Option<NaiveDate>,
    /// Still held on the report date.
    pub remaining: Fen,
    pub state: TrancheState,
    /// Stuck: report date − deadline; Late: last pass-on − deadline; else 0.
    pub days_overdue: i64,
}

/// Why the deadlines could not be worked out. Every one means bad input,
/// since the ledger itself never produces these situations.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DeadlineError {
    #[error("inflow {key}: amount {amount} must be greater than zero")]
    NonPositiveInflow { key: String, amount: Fen },
    #[error("outflow {key} on {date}: amount {amount} must be greater than zero")]
    NonPositiveOutflow {
        key: String,
        date: NaiveDate,
        amount: Fen,
    },
    #[error(
        "inflow {key}: its one-month period cannot start on {due_from}, before the money arrived on {received}"
    )]
    DueBeforeReceipt {
        key: String,
        received: NaiveDate,
        due_from: NaiveDate,
    },
    #[error("inflow {key} is listed twice: each tranche needs its own key")]
    DuplicateInflow { key: String },
    #[error(
        "outflow {key} on {date} passes on {amount} but only {available} had arrived and not yet been passed on by then: money cannot leave before it arrives"
    )]
    OutflowExceedsFunds {
        key: String,
        date: NaiveDate,
        amount: Fen,
        available: Fen,
    },
    #[error("tranche {key}: cannot compute its deadline: {source}")]
    Calendar { key: String, source: CalendarError },
    #[error("the amounts of {what} add up to more than the ledger can hold")]
    Overflow { what: String },
    #[error("release {key}: no months are given to split it over")]
    NoMonths { key: String },
    #[error("release {key}: month {year}-{month} is not a month from 01 to 12")]
    BadMonth { key: String, year: i32, month: u32 },
    #[error(
        "release {key}: month {month} comes after {previous}; list each month once, in ascending order"
    )]
    MonthsOutOfOrder {
        key: String,
        month: YearMonth,
        previous: YearMonth,
    },
    #[error("release {key}: month {month} has a negative amount {amount}")]
    NegativeMonth {
        key: String,
        month: YearMonth,
        amount: Fen,
    },
    #[error(
        "release {key}: the months add up to {sum} but the release is {amount}; the split must account for every fen"
    )]
    SplitMismatch { key: String, amount: Fen, sum: Fen },
}

/// An inflow being worked through the outflows.
struct Work<'a> {
    inflow: &'a Inflow,
    deadline: NaiveDate,
    remaining: Fen,
    passed_on_late: Fen,
    last_passed_on: Option<NaiveDate>,
}

/// Works out every tranche of one holder (one program, one county's flow)
/// as of `as_of`, in FIFO order: by `(due_from, received, key)`.
///
/// Outflows are applied in `(date, key)` order (same-day ties in input
/// order); each takes from the earliest tranche, in that FIFO order, that has
/// already arrived by its date. A tranche not due yet may be taken early,
/// which is simply on time. Inflows received and outflows dated after
/// `as_of` have not happened yet on the report date and are left out.
///
/// Refused: an amount of zero or less, a `due_from` before `received`, two
/// inflows with the same key, an outflow larger than what had arrived and
/// not yet left by its date, and a deadline in a year the calendar does not
/// cover (a guessed holiday could wrongly report money as 滞留).
pub fn tranches(
    inflows: &[Inflow],
    outflows: &[Outflow],
    calendar: &WorkCalendar,
    as_of: NaiveDate,
) -> Result<Vec<Tranche>, DeadlineError> {
    let mut keys = BTreeSet::new();
    let mut total = Fen::ZERO;
    for inflow in inflows {
        if !inflow.amount.is_positive() {
            return Err(DeadlineError::NonPositiveInflow {
                key: inflow.key.clone(),
                amount: inflow.amount,
            });
        }
        if inflow.due_from < inflow.received {
            return Err(DeadlineError::DueBeforeReceipt {
                key: inflow.key.clone(),
                received: inflow.received,
                due_from: inflow.due_from,
            });
        }
        if !keys.insert(inflow.key.as_str()) {
            return Err(DeadlineError::DuplicateInflow {
                key: inflow.key.clone(),
            });
        }
        // With every amount positive, a total that fits means every partial
        // sum below (what has arrived by a date, a summary) fits too.
        total = total
            .checked_add(inflow.amount)
            .ok_or_else(|| DeadlineError::Overflow {
                what: "the inflows".to_owned(),
            })?;
    }
    for outflow in outflows {
        if !outflow.amount.is_positive() {
            return Err(DeadlineError::NonPositiveOutflow {
                key: outflow.key.clone(),
                date: outflow.date,
                amount: outflow.amount,
            });
        }
    }

    let mut arrived: Vec<&Inflow> = inflows.iter().filter(|i| i.received <= as_of).collect();
    arrived.sort_by(|a, b| (a.due_from, a.received, &a.key).cmp(&(b.due_from, b.received, &b.key)));
    let mut work = Vec::with_capacity(arrived.len());
    for inflow in arrived {
        let deadline = calendar
            .one_month_deadline(inflow.due_from)
            .map_err(|source| DeadlineError::Calendar {
                key: inflow.key.clone(),
                source,
            })?;
        work.push(Work {
            inflow,
            deadline,
            remaining: inflow.amount,
            passed_on_late: Fen::ZERO,
            last_passed_on: None,
        });
    }

    let mut leaving: Vec<&Outflow> = outflows.iter().filter(|o| o.date <= as_of).collect();
    // Stable sort: same-day outflows with the same key keep their input order.
    leaving.sort_by(|a, b| (a.date, &a.key).cmp(&(b.date, &b.key)));
    // Every tranche before `head` is used up, so no outflow needs to look at
    // it again; tranches after it may still be skipped as not yet arrived.
    let mut head = 0;
    for outflow in leaving {
        while work.get(head).is_some_and(|w| w.remaining.is_zero()) {
            head += 1;
        }
        let mut left = outflow.amount;
        for w in work[head..].iter_mut() {
            if left.is_zero() {
                break;
            }
            if w.inflow.received > outflow.date || w.remaining.is_zero() {
                continue;
            }
            let take = left.min(w.remaining);
            // Both subtractions stay within [0, amount]: take <= each side.
            w.remaining = Fen::new(w.remaining.get() - take.get());
            left = Fen::new(left.get() - take.get());
            if outflow.date > w.deadline {
                w.passed_on_late = Fen::new(w.passed_on_late.get() + take.get());
            }
            w.last_passed_on = Some(outflow.date);
        }
        if left.is_positive() {
            return Err(DeadlineError::OutflowExceedsFunds {
                key: outflow.key.clone(),
                date: outflow.date,
                amount: outflow.amount,
                // Everything available was taken before running out.
                available: Fen::new(outflow.amount.get() - left.get()),
            });
        }
    }

    Ok(work
        .into_iter()
        .map(|w| {
            let (state, days_overdue) = if w.remaining.is_positive() {
                if as_of > w.deadline {
                    (TrancheState::Stuck, (as_of - w.deadline).num_days())
                } else {
                    (TrancheState::Open, 0)
                }
            } else if w.passed_on_late.is_positive() {
                // The last pass-on is the latest, so it is the late one that
                // shows how far past the deadline the tranche ran.
                let last = w.last_passed_on.unwrap_or(w.deadline);
                (TrancheState::Late, (last - w.deadline).num_days())
            } else {
                (TrancheState::OnTime, 0)
            };
            let inflow = w.inflow;
            Tranche {
                key: inflow.key.clone(),
                document: inflow.document.clone(),
                source: inflow.source.clone(),
                received: inflow.received,
                due_from: inflow.due_from,
                deadline: w.deadline,
                amount: inflow.amount,
                passed_on: Fen::new(inflow.amount.get() - w.remaining.get()),
                passed_on_late: w.passed_on_late,
                last_passed_on: w.last_passed_on,
                remaining: w.remaining,
                state,
                days_overdue,
            }
        })
        .collect())
}

/// Splits one receipt of `amount` that covers several months into one
/// inflow per month, for a disbursing unit: per （八）发放 a month's payout
/// cannot be due before the month starts, so each month is due from the
/// later of `received` and its first day (a month already begun or past,
/// i.e. arrears, is due from the receipt).
///
/// `per_month` is the unit's need for each month, months ascending and each
/// once; the amounts must add up to exactly `amount`, since a fen left
/// unassigned would escape every deadline. A month with zero need gets no
/// tranche. Each inflow's key is `"{key}/{YYYY-MM}"`.
pub fn split_by_month(
    key: &str,
    received: NaiveDate,
    amount: Fen,
    document: &str,
    source: &str,
    per_month: &[(YearMonth, Fen)],
) -> Result<Vec<Inflow>, DeadlineError> {
    if !amount.is_positive() {
        return Err(DeadlineError::NonPositiveInflow {
            key: key.to_owned(),
            amount,
        });
    }
    if per_month.is_empty() {
        return Err(DeadlineError::NoMonths {
            key: key.to_owned(),
        });
    }
    let mut sum = Fen::ZERO;
    let mut previous: Option<YearMonth> = None;
    for &(month, month_amount) in per_month {
        // YearMonth's fields are public, so check before first_day() could panic.
        if YearMonth::new(month.year, month.month).is_none() {
            return Err(DeadlineError::BadMonth {
                key: key.to_owned(),
                year: month.year,
                month: month.month,
            });
        }
        if let Some(previous) = previous
            && month <= previous
        {
            return Err(DeadlineError::MonthsOutOfOrder {
                key: key.to_owned(),
                month,
                previous,
            });
        }
        previous = Some(month);
        if month_amount.is_negative() {
            return Err(DeadlineError::NegativeMonth {
                key: key.to_owned(),
                month,
                amount: month_amount,
            });
        }
        sum = sum
            .checked_add(month_amount)
            .ok_or_else(|| DeadlineError::Overflow {
                what: format!("release {key}'s months"),
            })?;
    }
    if sum != amount {
        return Err(DeadlineError::SplitMismatch {
            key: key.to_owned(),
            amount,
            sum,
        });
    }
    Ok(per_month
        .iter()
        .filter(|(_, month_amount)| month_amount.is_positive())
        .map(|&(month, month_amount)| Inflow {
            key: format!("{key}/{month}"),
            received,
            due_from: received.max(month.first_day()),
            amount: month_amount,
            document: document.to_owned(),
            source: source.to_owned(),
        })
        .collect())
}

/// One holder's aging totals, for the summary line of a 滞留 report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Whatever the caller names the holder by (e.g. "440511 finance").
    pub holder: String,
    pub tranche_count: usize,
    pub amount: Fen,
    pub passed_on: Fen,
    pub remaining: Fen,
    /// Held but not yet due.
    pub open_amount: Fen,
    /// Held past the deadline: 滞留.
    pub stuck_amount: Fen,
    pub stuck_count: usize,
    /// The oldest 滞留, in days past its deadline; 0 when nothing is stuck.
    pub max_days_overdue: i64,
    /// Passed on after the deadline, in any tranche (also in stuck ones).
    pub late_amount: Fen,
    /// Tranches with any late part.
    pub late_count: usize,
    /// The latest pass-on past a deadline, in days; 0 when none was late.
    pub max_days_late: i64,
}

/// Totals `tranches` (one holder's, from [`tranches`]) under `holder`.
pub fn summarize(holder: &str, tranches: &[Tranche]) -> Result<Summary, DeadlineError> {
    let overflow = || DeadlineError::Overflow {
        what: format!("{holder}'s tranches"),
    };
    let add = |a: Fen, b: Fen| a.checked_add(b).ok_or_else(overflow);
    let mut s = Summary {
        holder: holder.to_owned(),
        tranche_count: tranches.len(),
        ..Summary::default()
    };
    for t in tranches {
        s.amount = add(s.amount, t.amount)?;
        s.passed_on = add(s.passed_on, t.passed_on)?;
        s.remaining = add(s.remaining, t.remaining)?;
        match t.state {
            TrancheState::Stuck => {
                s.stuck_amount = add(s.stuck_amount, t.remaining)?;
                s.stuck_count += 1;
                s.max_days_overdue = s.max_days_overdue.max(t.days_overdue);
            }
            TrancheState::Open => s.open_amount = add(s.open_amount, t.remaining)?,
            TrancheState::OnTime | TrancheState::Late => {}
        }
        if t.passed_on_late.is_positive() {
            s.late_amount = add(s.late_amount, t.passed_on_late)?;
            s.late_count += 1;
            // A stuck tranche's days_overdue runs to the report date, so the
            // late pass-on's own delay comes from its date.
            if let Some(last) = t.last_passed_on {
                s.max_days_late = s.max_days_late.max((last - t.deadline).num_days());
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Weekday};
    use proptest::prelude::*;

    const CALENDAR_CSV: &str = include_str!("reference/cn_calendar.csv");

    fn cal() -> WorkCalendar {
        WorkCalendar::from_csv(CALENDAR_CSV.as_bytes(), "cn_calendar.csv")
            .expect("shipped calendar")
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    fn ym(s: &str) -> YearMonth {
        s.parse().expect("test month")
    }

    fn yuan(y: i64) -> Fen {
        Fen::new(y * 100)
    }

    fn release(key: &str, received: &str, amount: Fen) -> Inflow {
        Inflow {
            key: key.to_owned(),
            received: d(received),
            due_from: d(received),
            amount,
            document: format!("粤财教〔2025〕{key}号"),
            source: "province".to_owned(),
        }
    }

    fn pay(key: &str, date: &str, amount: Fen) -> Outflow {
        Outflow {
            key: key.to_owned(),
            date: d(date),
            amount,
            kind: "disbursement".to_owned(),
        }
    }

    fn only(inflows: &[Inflow], outflows: &[Outflow], as_of: &str) -> Tranche {
        let mut all = tranches(inflows, outflows, &cal(), d(as_of)).expect("valid input");
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    // 2025-03-10 (Mon) + one month = Thu 2025-04-10, an ordinary working day.

    #[test]
    fn release_passed_on_in_full_within_the_month_is_on_time() {
        let t = only(
            &[release("12", "2025-03-10", yuan(50_000))],
            &[pay("p1", "2025-04-10", yuan(50_000))],
            "2025-06-30",
        );
        assert_eq!(t.deadline, d("2025-04-10"));
        assert_eq!(t.state, TrancheState::OnTime);
        assert_eq!((t.passed_on, t.remaining), (yuan(50_000), Fen::ZERO));
        assert_eq!((t.passed_on_late, t.days_overdue), (Fen::ZERO, 0));
        assert_eq!(t.last_passed_on, Some(d("2025-04-10")));
    }

    #[test]
    fn release_passed_on_one_day_after_the_deadline_is_late_by_one_day() {
        let t = only(
            &[release("12", "2025-03-10", yuan(50_000))],
            &[pay("p1", "2025-04-11", yuan(50_000))],
            "2025-06-30",
        );
        assert_eq!(t.state, TrancheState::Late);
        assert_eq!(t.days_overdue, 1);
        assert_eq!(t.passed_on_late, yuan(50_000));
    }

    #[test]
    fn release_not_passed_on_after_the_deadline_is_stuck_with_days_overdue() {
        let t = only(
            &[release("12", "2025-03-10", yuan(50_000))],
            &[],
            "2025-04-20",
        );
        assert_eq!(t.state, TrancheState::Stuck);
        assert_eq!(t.days_overdue, 10);
        assert_eq!(t.remaining, yuan(50_000));
        assert_eq!(t.last_passed_on, None);
    }

    #[test]
    fn release_held_on_the_deadline_day_itself_is_still_open() {
        let t = only(
            &[release("12", "2025-03-10", yuan(50_000))],
            &[],
            "2025-04-10",
        );
        assert_eq!((t.state, t.days_overdue), (TrancheState::Open, 0));
    }

    #[test]
    fn partly_passed_on_release_leaves_the_rest_stuck() {
        let t = only(
            &[release("12", "2025-03-10", yuan(100_000))],
            &[pay("p1", "2025-03-20", yuan(60_000))],
            "2025-05-10",
        );
        assert_eq!(t.state, TrancheState::Stuck);
        assert_eq!((t.passed_on, t.remaining), (yuan(60_000), yuan(40_000)));
        assert_eq!(t.passed_on_late, Fen::ZERO);
        assert_eq!(t.days_overdue, 30); // Apr 10 → May 10
    }

    #[test]
    fn only_the_part_passed_on_after_the_deadline_counts_as_late() {
        let t = only(
            &[release("12", "2025-03-10", yuan(100_000))],
            &[
                pay("p1", "2025-03-20", yuan(60_000)),
                pay("p2", "2025-04-15", yuan(40_000)),
            ],
            "2025-05-10",
        );
        assert_eq!(t.state, TrancheState::Late);
        assert_eq!(t.passed_on_late, yuan(40_000));
        assert_eq!(t.days_overdue, 5);
    }

    #[test]
    fn money_received_first_is_passed_on_first() {
        // Jan 10 → Mon Feb 10; Feb 20 → Thu Mar 20. The Mar 1 disbursement
        // equals the first release, so FIFO assigns it there, leaving the
        // second untouched; but Mar 1 is 19 days past Feb 10, so the first
        // release was passed on late, not on time.
        let ins = [
            release("1", "2025-01-10", yuan(30_000)),
            release("2", "2025-02-20", yuan(20_000)),
        ];
        let all = tranches(
            &ins,
            &[pay("p1", "2025-03-01", yuan(30_000))],
            &cal(),
            d("2025-03-01"),
        )
        .unwrap();
        assert_eq!(all[0].key, "1");
        assert_eq!(all[0].deadline, d("2025-02-10"));
        assert_eq!(
            (all[0].state, all[0].days_overdue),
            (TrancheState::Late, 19)
        );
        assert_eq!(all[1].key, "2");
        assert_eq!(all[1].deadline, d("2025-03-20"));
        assert_eq!(all[1].state, TrancheState::Open);
        assert_eq!(all[1].remaining, yuan(20_000));
    }

    #[test]
    fn money_received_first_is_passed_on_first_and_in_time() {
        // Jan 10 → Mon Feb 10; Jan 20 → Thu Feb 20. Paid on Feb 7.
        let ins = [
            release("2", "2025-01-20", yuan(20_000)),
            release("1", "2025-01-10", yuan(30_000)),
        ];
        let all = tranches(
            &ins,
            &[pay("p1", "2025-02-07", yuan(30_000))],
            &cal(),
            d("2025-02-07"),
        )
        .unwrap();
        assert_eq!(
            (all[0].key.as_str(), all[0].state),
            ("1", TrancheState::OnTime)
        );
        assert_eq!(
            (all[1].key.as_str(), all[1].state),
            ("2", TrancheState::Open)
        );
        assert_eq!(all[1].passed_on, Fen::ZERO);
    }

    #[test]
    fn one_disbursement_spanning_two_releases_settles_each_against_its_own_deadline() {
        // Paid Feb 15: late for the Jan 10 release (deadline Feb 10), on time
        // for the Jan 20 one (deadline Feb 20).
        let ins = [
            release("1", "2025-01-10", yuan(30_000)),
            release("2", "2025-01-20", yuan(20_000)),
        ];
        let all = tranches(
            &ins,
            &[pay("p1", "2025-02-15", yuan(50_000))],
            &cal(),
            d("2025-02-28"),
        )
        .unwrap();
        assert_eq!((all[0].state, all[0].days_overdue), (TrancheState::Late, 5));
        assert_eq!(
            (all[1].state, all[1].days_overdue),
            (TrancheState::OnTime, 0)
        );
    }

    #[test]
    fn money_received_jan_31_is_due_on_the_last_day_of_february() {
        let t = only(&[release("1", "2025-01-31", yuan(1))], &[], "2025-01-31");
        assert_eq!(t.deadline, d("2025-02-28")); // a Friday
        let t = only(&[release("1", "2024-01-31", yuan(1))], &[], "2024-01-31");
        assert_eq!(t.deadline, d("2024-02-29")); // leap year, a Thursday
    }

    #[test]
    fn deadline_on_a_weekend_rolls_to_monday() {
        // 2025-06-14 is a Saturday with no swapped workday.
        assert_eq!(d("2025-06-14").weekday(), Weekday::Sat);
        let t = only(
            &[release("1", "2025-05-14", yuan(1))],
            &[pay("p", "2025-06-16", yuan(1))],
            "2025-07-01",
        );
        assert_eq!(t.deadline, d("2025-06-16"));
        assert_eq!(t.state, TrancheState::OnTime);
    }

    #[test]
    fn deadline_in_spring_festival_rolls_past_the_holiday() {
        // Tue 2025-01-28 to Tue Feb 4 are holidays or weekend: Wed Feb 5.
        assert_eq!(d("2025-01-28").weekday(), Weekday::Tue);
        let t = only(&[release("1", "2024-12-28", yuan(1))], &[], "2025-02-06");
        assert_eq!(t.deadline, d("2025-02-05"));
        assert_eq!((t.state, t.days_overdue), (TrancheState::Stuck, 1));
    }

    #[test]
    fn deadline_in_national_day_week_rolls_past_the_holiday() {
        // 2025: Oct 1-8 are holidays or weekend, so Thu Oct 9.
        let ins = [release("1", "2025-09-01", yuan(1))];
        let t = only(&ins, &[pay("p", "2025-10-09", yuan(1))], "2025-10-31");
        assert_eq!(t.deadline, d("2025-10-09"));
        assert_eq!(t.state, TrancheState::OnTime);
        let t = only(&ins, &[pay("p", "2025-10-10", yuan(1))], "2025-10-31");
        assert_eq!((t.state, t.days_overdue), (TrancheState::Late, 1));
    }

    #[test]
    fn a_deadline_in_a_year_without_calendar_data_is_an_error() {
        let err = tranches(
            &[release("1", "2026-12-15", yuan(1))],
            &[],
            &cal(),
            d("2026-12-20"),
        )
        .unwrap_err();
        assert!(
            matches!(
                &err,
                DeadlineError::Calendar {
                    key,
                    source: CalendarError::YearNotCovered { year: 2027, .. }
                } if key == "1"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_release_covering_six_months_is_due_month_by_month() {
        let months: Vec<(YearMonth, Fen)> = ["01", "02", "03", "04", "05", "06"]
            .iter()
            .map(|m| (ym(&format!("2025-{m}")), yuan(1_000)))
            .collect();
        let ins = split_by_month(
            "R7",
            d("2025-01-15"),
            yuan(6_000),
            "粤财教〔2025〕7号",
            "440511 finance",
            &months,
        )
        .unwrap();
        let due: Vec<_> = ins.iter().map(|i| (i.key.as_str(), i.due_from)).collect();
        assert_eq!(
            due,
            [
                ("R7/2025-01", d("2025-01-15")),
                ("R7/2025-02", d("2025-02-01")),
                ("R7/2025-03", d("2025-03-01")),
                ("R7/2025-04", d("2025-04-01")),
                ("R7/2025-05", d("2025-05-01")),
                ("R7/2025-06", d("2025-06-01")),
            ]
        );
        assert!(ins.iter().all(|i| i.received == d("2025-01-15")));
        let all = tranches(&ins, &[], &cal(), d("2025-01-15")).unwrap();
        let deadlines: Vec<_> = all.iter().map(|t| t.deadline).collect();
        assert_eq!(
            deadlines,
            [
                d("2025-02-17"), // Feb 15 is a Saturday
                d("2025-03-03"), // Mar 1 is a Saturday
                d("2025-04-01"), // a Tuesday
                d("2025-05-06"), // May 1-5: Labour Day and weekend
                d("2025-06-03"), // Jun 1 Sunday, Jun 2 Dragon Boat Festival
                d("2025-07-01"), // a Tuesday
            ]
        );
        assert_eq!(d("2025-02-15").weekday(), Weekday::Sat);
        assert_eq!(d("2025-03-01").weekday(), Weekday::Sat);
        assert_eq!(d("2025-06-01").weekday(), Weekday::Sun);
        assert!(all.iter().all(|t| t.state == TrancheState::Open));
    }

    #[test]
    fn paying_a_future_month_early_is_on_time_and_fifo_follows_the_due_date() {
        // Release A (received Jan 15) is for March; release B, received
        // later on Feb 10, is due at once, so B goes out first.
        let mut ins = split_by_month(
            "A",
            d("2025-01-15"),
            yuan(100),
            "a",
            "county",
            &[(ym("2025-03"), yuan(100))],
        )
        .unwrap();
        ins.push(release("B", "2025-02-10", yuan(100)));
        let all = tranches(
            &ins,
            &[pay("p1", "2025-02-12", yuan(150))],
            &cal(),
            d("2025-02-12"),
        )
        .unwrap();
        assert_eq!((all[0].key.as_str(), all[0].passed_on), ("B", yuan(100)));
        assert_eq!(
            (all[1].key.as_str(), all[1].passed_on),
            ("A/2025-03", yuan(50))
        );
        assert_eq!(all[1].state, TrancheState::Open);
    }

    #[test]
    fn a_release_for_months_already_past_is_due_from_the_receipt() {
        let ins = split_by_month(
            "R",
            d("2025-03-10"),
            yuan(300),
            "r",
            "county",
            &[
                (ym("2025-01"), yuan(100)),
                (ym("2025-02"), Fen::ZERO),
                (ym("2025-04"), yuan(200)),
            ],
        )
        .unwrap();
        let due: Vec<_> = ins.iter().map(|i| (i.key.as_str(), i.due_from)).collect();
        // A month with no need gets no tranche.
        assert_eq!(
            due,
            [
                ("R/2025-01", d("2025-03-10")),
                ("R/2025-04", d("2025-04-01"))
            ]
        );
    }

    #[test]
    fn a_split_must_account_for_every_fen_of_the_release() {
        let err = split_by_month(
            "R",
            d("2025-01-15"),
            yuan(300),
            "r",
            "county",
            &[
                (ym("2025-01"), yuan(100)),
                (ym("2025-02"), Fen::new(19_999)),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            DeadlineError::SplitMismatch {
                key: "R".to_owned(),
                amount: yuan(300),
                sum: Fen::new(29_999)
            }
        );
    }

    #[test]
    fn a_split_refuses_repeated_unordered_invalid_or_negative_months() {
        let split = |months: &[(YearMonth, Fen)]| {
            split_by_month("R", d("2025-01-15"), yuan(100), "r", "county", months)
        };
        assert!(matches!(
            split(&[(ym("2025-02"), yuan(50)), (ym("2025-01"), yuan(50))]),
            Err(DeadlineError::MonthsOutOfOrder { .. })
        ));
        assert!(matches!(
            split(&[(ym("2025-02"), yuan(50)), (ym("2025-02"), yuan(50))]),
            Err(DeadlineError::MonthsOutOfOrder { .. })
        ));
        assert!(matches!(
            split(&[(ym("2025-01"), yuan(150)), (ym("2025-02"), yuan(-50))]),
            Err(DeadlineError::NegativeMonth { .. })
        ));
        let bad = YearMonth {
            year: 2025,
            month: 13,
        };
        assert!(matches!(
            split(&[(bad, yuan(100))]),
            Err(DeadlineError::BadMonth { month: 13, .. })
        ));
        assert_eq!(split(&[]), Err(DeadlineError::NoMonths { key: "R".into() }));
    }

    #[test]
    fn an_outflow_exceeding_the_money_arrived_so_far_is_refused() {
        // 200 arrives in total, but only 100 by Feb 1.
        let ins = [
            release("1", "2025-01-10", yuan(100)),
            release("2", "2025-02-05", yuan(100)),
        ];
        let err = tranches(
            &ins,
            &[pay("p1", "2025-02-01", yuan(150))],
            &cal(),
            d("2025-03-01"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            DeadlineError::OutflowExceedsFunds {
                key: "p1".to_owned(),
                date: d("2025-02-01"),
                amount: yuan(150),
                available: yuan(100)
            }
        );
        assert!(err.to_string().contains("p1"), "{err}");
        // Money cannot leave before any has arrived at all.
        let err = tranches(
            &ins,
            &[pay("p0", "2025-01-09", yuan(1))],
            &cal(),
            d("2025-03-01"),
        );
        assert!(
            matches!(err, Err(DeadlineError::OutflowExceedsFunds { available, .. }) if available.is_zero())
        );
    }

    #[test]
    fn outflows_and_inflows_after_the_report_date_are_not_counted() {
        let ins = [
            release("1", "2025-03-10", yuan(100)),
            release("2", "2025-04-30", yuan(100)),
        ];
        let all = tranches(
            &ins,
            &[pay("p1", "2025-04-25", yuan(100))],
            &cal(),
            d("2025-04-20"),
        )
        .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].state, all[0].days_overdue),
            (TrancheState::Stuck, 10)
        );
    }

    #[test]
    fn bad_inflows_and_outflows_are_refused() {
        let c = cal();
        let as_of = d("2025-06-30");
        let mut early = release("1", "2025-03-10", yuan(1));
        early.due_from = d("2025-03-09");
        assert!(matches!(
            tranches(&[early], &[], &c, as_of),
            Err(DeadlineError::DueBeforeReceipt { .. })
        ));
        assert!(matches!(
            tranches(&[release("1", "2025-03-10", Fen::ZERO)], &[], &c, as_of),
            Err(DeadlineError::NonPositiveInflow { .. })
        ));
        assert!(matches!(
            tranches(
                &[release("1", "2025-03-10", yuan(1))],
                &[pay("p", "2025-03-11", yuan(-1))],
                &c,
                as_of
            ),
            Err(DeadlineError::NonPositiveOutflow { .. })
        ));
        assert_eq!(
            tranches(
                &[
                    release("1", "2025-03-10", yuan(1)),
                    release("1", "2025-03-11", yuan(1))
                ],
                &[],
                &c,
                as_of
            ),
            Err(DeadlineError::DuplicateInflow { key: "1".into() })
        );
        assert!(matches!(
            tranches(
                &[
                    release("1", "2025-03-10", Fen::new(i64::MAX)),
                    release("2", "2025-03-11", yuan(1))
                ],
                &[],
                &c,
                as_of
            ),
            Err(DeadlineError::Overflow { .. })
        ));
    }

    #[test]
    fn the_summary_totals_stuck_and_late_money_per_holder() {
        let ins = [
            release("1", "2025-01-10", yuan(100)), // deadline Feb 10
            release("2", "2025-02-20", yuan(200)), // deadline Mar 20
            release("3", "2025-04-01", yuan(300)), // deadline May 6
        ];
        let all = tranches(
            &ins,
            &[
                pay("p1", "2025-02-15", yuan(100)), // 5 days late
                pay("p2", "2025-03-25", yuan(50)),  // 5 days late, rest stuck
            ],
            &cal(),
            d("2025-04-20"),
        )
        .unwrap();
        let s = summarize("440511 finance", &all).unwrap();
        assert_eq!(s.tranche_count, 3);
        assert_eq!(
            (s.amount, s.passed_on, s.remaining),
            (yuan(600), yuan(150), yuan(450))
        );
        assert_eq!((s.stuck_amount, s.stuck_count), (yuan(150), 1));
        assert_eq!(s.max_days_overdue, 31); // Mar 20 → Apr 20
        assert_eq!(s.open_amount, yuan(300));
        assert_eq!(
            (s.late_amount, s.late_count, s.max_days_late),
            (yuan(150), 2, 5)
        );
    }

    #[test]
    fn states_read_as_the_report_shows_them() {
        assert_eq!(TrancheState::Stuck.to_string(), "stuck (滞留)");
        assert_eq!(TrancheState::Stuck.label_zh(), "滞留");
        assert_eq!(TrancheState::OnTime.as_str(), "on_time");
    }

    /// Random inflows over 2024-2025, and outflows trimmed so that they
    /// never exceed what has arrived by their date.
    fn scenario() -> impl Strategy<Value = (Vec<Inflow>, Vec<Outflow>, NaiveDate)> {
        (
            prop::collection::vec((0u64..500, 0u64..60, 1i64..1_000_000), 1..12),
            prop::collection::vec((0u64..560, 1i64..2_000_000), 0..20),
            0u64..620,
        )
            .prop_map(|(ins, outs, as_of)| {
                let base = d("2024-01-01");
                let day = |n: u64| base + chrono::Days::new(n);
                let inflows: Vec<Inflow> = ins
                    .into_iter()
                    .enumerate()
                    .map(|(i, (r, extra, amount))| Inflow {
                        key: format!("r{i}"),
                        received: day(r),
                        due_from: day(r + extra),
                        amount: Fen::new(amount),
                        document: String::new(),
                        source: "province".to_owned(),
                    })
                    .collect();
                let mut outs = outs;
                outs.sort();
                let mut out_so_far = 0i64;
                let mut outflows = Vec::new();
                for (i, (o, want)) in outs.into_iter().enumerate() {
                    let arrived: i64 = inflows
                        .iter()
                        .filter(|f| f.received <= day(o))
                        .map(|f| f.amount.get())
                        .sum();
                    let amount = want.min(arrived - out_so_far);
                    if amount > 0 {
                        out_so_far += amount;
                        outflows.push(Outflow {
                            key: format!("o{i}"),
                            date: day(o),
                            amount: Fen::new(amount),
                            kind: "payment".to_owned(),
                        });
                    }
                }
                (inflows, outflows, day(as_of))
            })
    }

    proptest! {
        #[test]
        fn every_fen_passed_on_lands_in_exactly_one_tranche((ins, outs, as_of) in scenario()) {
            let all = tranches(&ins, &outs, &cal(), as_of).unwrap();
            let passed: i64 = all.iter().map(|t| t.passed_on.get()).sum();
            let left: i64 = outs.iter().filter(|o| o.date <= as_of).map(|o| o.amount.get()).sum();
            prop_assert_eq!(passed, left);
            prop_assert_eq!(all.len(), ins.iter().filter(|i| i.received <= as_of).count());
            for t in &all {
                prop_assert_eq!(t.passed_on.get() + t.remaining.get(), t.amount.get());
                prop_assert!(t.remaining.get() >= 0 && t.passed_on_late <= t.passed_on);
                let expected_state = match (t.remaining.is_positive(), as_of > t.deadline) {
                    (true, true) => TrancheState::Stuck,
                    (true, false) => TrancheState::Open,
                    (false, _) if t.passed_on_late.is_positive() => TrancheState::Late,
                    (false, _) => TrancheState::OnTime,
                };
                prop_assert_eq!(t.state, expected_state);
                prop_assert_eq!(
                    t.days_overdue > 0,
                    matches!(t.state, TrancheState::Stuck | TrancheState::Late)
                );
            }
        }

        #[test]
        fn the_input_order_does_not_change_the_result((ins, outs, as_of) in scenario()) {
            let forward = tranches(&ins, &outs, &cal(), as_of).unwrap();
            let mut rev_in = ins.clone();
            rev_in.reverse();
            let mut rev_out = outs.clone();
            rev_out.reverse();
            prop_assert_eq!(forward, tranches(&rev_in, &rev_out, &cal(), as_of).unwrap());
        }
    }
}
