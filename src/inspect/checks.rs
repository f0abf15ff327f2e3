//! 交叉核查: the inspectors' cross-checks as rules over the whole ledger, each with a stable code, a
//! severity (红/橙/黄/蓝) and a Chinese name; the findings they raise, recorded once each (a finding's
//! fingerprint is unique, so running the sweep again adds nothing twice) and ruled on by an inspector
//! (定性: normal, or a violation of a named type with an amount to recover and a date to rectify by);
//! and a scorecard ranking counties and cities.
//!
//! A rule reads only what was paid (payout lines whose payment the bank's answer posted, by the
//! report date), the rosters, the program definitions and the flow's records.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use sqlx::Row;

use super::InspectError;
use crate::calendar::YearMonth;
use crate::deadline::TrancheState;
use crate::id_number::IdNumber;
use crate::money::Fen;
use crate::program::{Program, reaches_age};
use crate::report::{Cell, Column, Sheet};
use crate::roster::RosterEntry;
use crate::store::{Store, StoreError};

fn invalid(message: String) -> InspectError {
    InspectError::Store(StoreError::Invalid(message))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Red,
    Orange,
    Yellow,
    Blue,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Red => "red",
            Severity::Orange => "orange",
            Severity::Yellow => "yellow",
            Severity::Blue => "blue",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Severity::Red => "红",
            Severity::Orange => "橙",
            Severity::Yellow => "黄",
            Severity::Blue => "蓝",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        [
            Severity::Red,
            Severity::Orange,
            Severity::Yellow,
            Severity::Blue,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The cross-checks. Codes are stable: findings and workpapers cite them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Rule {
    /// R01: paid for a month after the month of death (MBDK 发放时间(三)).
    PaidAfterDeath,
    /// R02: paid for a month after employment as staff began (防止在编在岗人员领取).
    PaidWhileEmployed,
    /// R03: the same person paid twice by one program for one month (two units or two batches).
    PaidTwice,
    /// R04: the same person paid for one month by two programs, one of which excludes the other.
    ExcludedPrograms,
    /// R05: one bank account received payments for several persons (not siblings of one guardian).
    SharedAccount,
    /// R06: paid for a month before the program's age was reached (MBDK 男60/女55).
    UnderAge,
    /// R07: money still held past its one-month deadline (滞留).
    FundsStranded,
    /// R08: a level's release or the county's matching share below the computed share.
    ShortShare,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::PaidAfterDeath,
        Rule::PaidWhileEmployed,
        Rule::PaidTwice,
        Rule::ExcludedPrograms,
        Rule::SharedAccount,
        Rule::UnderAge,
        Rule::FundsStranded,
        Rule::ShortShare,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Rule::PaidAfterDeath => "R01",
            Rule::PaidWhileEmployed => "R02",
            Rule::PaidTwice => "R03",
            Rule::ExcludedPrograms => "R04",
            Rule::SharedAccount => "R05",
            Rule::UnderAge => "R06",
            Rule::FundsStranded => "R07",
            Rule::ShortShare => "R08",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Rule::PaidAfterDeath => "死亡后仍发放",
            Rule::PaidWhileEmployed => "在编在岗期间领取",
            Rule::PaidTwice => "同一人同月重复发放",
            Rule::ExcludedPrograms => "互斥项目重复享受",
            Rule::SharedAccount => "多人共用同一银行账户",
            Rule::UnderAge => "未达规定年龄即发放",
            Rule::FundsStranded => "资金滞留超期",
            Rule::ShortShare => "分担资金未足额到位",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Rule::PaidAfterDeath | Rule::PaidTwice => Severity::Red,
            Rule::PaidWhileEmployed
            | Rule::ExcludedPrograms
            | Rule::UnderAge
            | Rule::FundsStranded
            | Rule::ShortShare => Severity::Orange,
            Rule::SharedAccount => Severity::Yellow,
        }
    }

    /// What the rule does while money is being paid or released (posting time). The scheduled
    /// sweep runs every rule over what was posted, whatever it does at posting time.
    pub fn at_posting(self) -> AtPosting {
        match self {
            Rule::PaidAfterDeath
            | Rule::PaidWhileEmployed
            | Rule::PaidTwice
            | Rule::ExcludedPrograms
            | Rule::UnderAge => AtPosting::Block,
            Rule::SharedAccount | Rule::ShortShare => AtPosting::Warn,
            // Whether money stays too long can only be seen as time passes.
            Rule::FundsStranded => AtPosting::SweepOnly,
        }
    }

    /// `R01 死亡后仍发放`: how a posting-time hit names its rule.
    pub fn label(self) -> String {
        format!("{} {}", self.code(), self.name_zh())
    }

    pub fn parse(code: &str) -> Option<Rule> {
        Rule::ALL
            .into_iter()
            .find(|r| r.code().eq_ignore_ascii_case(code))
    }
}

/// A rule's part at posting time: refuse the line, let it through with a warning, or leave it to
/// the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AtPosting {
    Block,
    Warn,
    SweepOnly,
}

/// The first month a person may be paid under the program's age rule, with the day the age is
/// reached and the age: reached by the cutoff, from the program's start; later, from the month
/// after. `None` when the program has no age rule.
pub fn first_month_by_age(
    program: &Program,
    sex: crate::id_number::Sex,
    birth_date: NaiveDate,
) -> Option<(YearMonth, NaiveDate, u32)> {
    let eligibility = program.eligibility();
    let (men, women) = eligibility.age?;
    let years = match sex {
        crate::id_number::Sex::Male => men,
        crate::id_number::Sex::Female => women,
    };
    let reached = reaches_age(birth_date, years);
    let first = if reached <= eligibility.age_cutoff {
        eligibility.start_month
    } else {
        YearMonth::of(reached).next()
    };
    Some((first, reached, years))
}

/// What a rule found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub program: String,
    pub county: String,
    /// The person, in full; shown masked unless asked for.
    pub id_number: Option<String>,
    /// The payments concerned, as `BATCH:LINE`, or the flow entry keys for fund rules.
    pub payments: Vec<String>,
    /// To recover or adjust.
    pub amount: Fen,
    pub detail: String,
    /// Unique per finding: what makes a re-run find "the same" problem.
    pub fingerprint: String,
}

fn masked(id: &str) -> String {
    IdNumber::parse(id)
        .map(|i| i.masked())
        .unwrap_or_else(|_| "******".into())
}

impl Finding {
    pub fn shown_id(&self, full: bool) -> String {
        match &self.id_number {
            Some(id) if full => id.clone(),
            Some(id) => masked(id),
            None => String::new(),
        }
    }
}

/// A posted payout line.
#[derive(Clone, Debug)]
struct Paid {
    key: String,
    program: String,
    county: String,
    id_number: String,
    account: String,
    amount: Fen,
    month: YearMonth,
}

async fn paid_lines(store: &Store, as_of: NaiveDate) -> Result<Vec<Paid>, InspectError> {
    let rows = sqlx::query(
        "SELECT l.batch_id, l.line_no, b.program, b.county_code, l.id_number, l.account, l.amount, l.month \
         FROM payout_lines l JOIN payout_batches b ON b.batch_id = l.batch_id \
         JOIN payout_results e ON e.payment_key = l.payment_key AND e.status = 'paid' WHERE e.entry_date <= $1",
    )
    .bind(as_of.format("%Y-%m-%d").to_string())
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let month: String = row.try_get(7)?;
        out.push(Paid {
            key: format!(
                "{}:{}",
                row.try_get::<String, _>(0)?,
                row.try_get::<i64, _>(1)?
            ),
            program: row.try_get(2)?,
            county: row.try_get(3)?,
            id_number: row.try_get(4)?,
            account: row.try_get(5)?,
            amount: Fen(row.try_get(6)?),
            month: month
                .parse()
                .map_err(|_| invalid(format!("stored month {month} is damaged")))?,
        });
    }
    // Rules read in one order whatever the database returns.
    out.sort_by(|a, b| {
        (&a.program, &a.id_number, a.month, &a.key).cmp(&(
            &b.program,
            &b.id_number,
            b.month,
            &b.key,
        ))
    });
    Ok(out)
}

fn sum(mut amounts: impl Iterator<Item = Fen>) -> Result<Fen, InspectError> {
    amounts
        .try_fold(Fen::ZERO, |a, b| a.checked_add(b))
        .ok_or_else(|| invalid("amounts overflow".into()))
}

/// Runs every rule as of `as_of`; findings in rule, then fingerprint order.
pub async fn sweep(store: &Store, as_of: NaiveDate) -> Result<Vec<Finding>, InspectError> {
    let lines = paid_lines(store, as_of).await?;
    let mut programs: BTreeMap<String, Program> = BTreeMap::new();
    let mut roster: HashMap<(String, String), RosterEntry> = HashMap::new();
    for (code, _) in store.programs().await? {
        for entry in store.roster_entries(&code, None).await? {
            roster.insert((code.clone(), entry.id_number.clone()), entry);
        }
        programs.insert(code.clone(), store.program(&code).await?);
    }
    let mut findings = Vec::new();
    person_month_rules(&lines, &programs, &roster, &mut findings);
    paid_twice(&lines, &mut findings)?;
    excluded_programs(&lines, &programs, &mut findings)?;
    shared_accounts(&lines, &roster, &mut findings);
    stranded(store, as_of, &mut findings).await?;
    short_shares(store, as_of, &mut findings).await?;
    findings.sort_by(|a, b| (a.rule, &a.fingerprint).cmp(&(b.rule, &b.fingerprint)));
    Ok(findings)
}

/// R01, R02, R06: one finding per payment for a month the person was not owed for that reason.
fn person_month_rules(
    lines: &[Paid],
    programs: &BTreeMap<String, Program>,
    roster: &HashMap<(String, String), RosterEntry>,
    out: &mut Vec<Finding>,
) {
    for line in lines {
        let Some(person) = roster.get(&(line.program.clone(), line.id_number.clone())) else {
            continue;
        };
        let mut raise = |rule: Rule, detail: String| {
            out.push(Finding {
                rule,
                severity: rule.severity(),
                program: line.program.clone(),
                county: line.county.clone(),
                id_number: Some(line.id_number.clone()),
                payments: vec![line.key.clone()],
                amount: line.amount,
                detail,
                fingerprint: format!(
                    "{}|{}|{}|{}|{}",
                    rule.code(),
                    line.program,
                    line.id_number,
                    line.month,
                    line.key
                ),
            });
        };
        // Paid through the month of the event; later months were not owed (MBDK 发放时间(三)).
        if let Some(death) = person.death_date.filter(|d| line.month > YearMonth::of(*d)) {
            raise(
                Rule::PaidAfterDeath,
                format!(
                    "{} {} 于 {death} 死亡，仍发放 {} 月补助 {}",
                    line.program,
                    person.name,
                    line.month,
                    line.amount.grouped()
                ),
            );
        }
        if let Some(from) = person
            .employed_from
            .filter(|d| line.month > YearMonth::of(*d))
        {
            raise(
                Rule::PaidWhileEmployed,
                format!(
                    "{} {} 自 {from} 在编在岗（{}），仍发放 {} 月补助 {}",
                    line.program,
                    person.name,
                    person.employer_kind.clone().unwrap_or_default(),
                    line.month,
                    line.amount.grouped()
                ),
            );
        }
        let Some(program) = programs.get(&line.program) else {
            continue;
        };
        if let Some((first, reached, years)) =
            first_month_by_age(program, person.sex, person.birth_date)
            && line.month < first
        {
            raise(
                Rule::UnderAge,
                format!(
                    "{} {} 于 {reached} 满 {years} 周岁，应自 {first} 起发放，{} 月已发放 {}",
                    line.program,
                    person.name,
                    line.month,
                    line.amount.grouped()
                ),
            );
        }
    }
}

/// R03: more than one posted payment of one program for one person and month.
fn paid_twice(lines: &[Paid], out: &mut Vec<Finding>) -> Result<(), InspectError> {
    let mut groups: BTreeMap<(&str, &str, YearMonth), Vec<&Paid>> = BTreeMap::new();
    for line in lines {
        groups
            .entry((&line.program, &line.id_number, line.month))
            .or_default()
            .push(line);
    }
    for ((program, id, month), group) in groups.into_iter().filter(|(_, g)| g.len() > 1) {
        let total = sum(group.iter().map(|l| l.amount))?;
        let kept = group.iter().map(|l| l.amount).max().unwrap_or(Fen::ZERO);
        let keys: Vec<String> = group.iter().map(|l| l.key.clone()).collect();
        out.push(Finding {
            rule: Rule::PaidTwice,
            severity: Rule::PaidTwice.severity(),
            program: program.to_string(),
            county: group[0].county.clone(),
            id_number: Some(id.to_string()),
            amount: total
                .checked_sub(kept)
                .ok_or_else(|| invalid("amounts overflow".into()))?,
            detail: format!(
                "{program} {month} 月同一人发放 {} 次（{}），合计 {}",
                group.len(),
                keys.join("、"),
                total.grouped()
            ),
            fingerprint: format!("R03|{program}|{id}|{month}"),
            payments: keys,
        });
    }
    Ok(())
}

/// R04: paid by two programs for one month where one excludes the other. The smaller side is to
/// be recovered (the person keeps the larger).
fn excluded_programs(
    lines: &[Paid],
    programs: &BTreeMap<String, Program>,
    out: &mut Vec<Finding>,
) -> Result<(), InspectError> {
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for (code, program) in programs {
        for other in program.excludes() {
            if other != code {
                let (a, b) = if code < other {
                    (code.clone(), other.clone())
                } else {
                    (other.clone(), code.clone())
                };
                pairs.insert((a, b));
            }
        }
    }
    let mut by: BTreeMap<(&str, YearMonth, &str), Vec<&Paid>> = BTreeMap::new();
    for line in lines {
        by.entry((&line.id_number, line.month, &line.program))
            .or_default()
            .push(line);
    }
    for (a, b) in &pairs {
        for ((id, month, program), left) in by.iter().filter(|((_, _, p), _)| *p == a) {
            let _ = program;
            let Some(right) = by.get(&(id, *month, b.as_str())) else {
                continue;
            };
            let left_total = sum(left.iter().map(|l| l.amount))?;
            let right_total = sum(right.iter().map(|l| l.amount))?;
            let keys: Vec<String> = left
                .iter()
                .chain(right.iter())
                .map(|l| l.key.clone())
                .collect();
            out.push(Finding {
                rule: Rule::ExcludedPrograms,
                severity: Rule::ExcludedPrograms.severity(),
                program: format!("{a}+{b}"),
                county: left[0].county.clone(),
                id_number: Some(id.to_string()),
                amount: left_total.min(right_total),
                detail: format!(
                    "{month} 月同时领取互斥项目 {a}（{}）与 {b}（{}）",
                    left_total.grouped(),
                    right_total.grouped()
                ),
                fingerprint: format!("R04|{a}+{b}|{id}|{month}"),
                payments: keys,
            });
        }
    }
    Ok(())
}

/// R05: one account paid for several persons, unless they all share one guardian (a parent's card
/// for siblings, XQZZ 发放方式).
fn shared_accounts(
    lines: &[Paid],
    roster: &HashMap<(String, String), RosterEntry>,
    out: &mut Vec<Finding>,
) {
    let mut by_account: BTreeMap<&str, Vec<&Paid>> = BTreeMap::new();
    for line in lines {
        by_account.entry(&line.account).or_default().push(line);
    }
    for (account, group) in by_account {
        let persons: BTreeSet<&str> = group.iter().map(|l| l.id_number.as_str()).collect();
        if persons.len() < 2 {
            continue;
        }
        let guardians: BTreeSet<Option<String>> = group
            .iter()
            .map(|l| {
                roster
                    .get(&(l.program.clone(), l.id_number.clone()))
                    .and_then(|p| p.guardian_id_number.clone())
            })
            .collect();
        if guardians.len() == 1 && guardians.iter().all(Option::is_some) {
            continue;
        }
        let shown: Vec<String> = persons.iter().map(|id| masked(id)).collect();
        let tail: String = account
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        out.push(Finding {
            rule: Rule::SharedAccount,
            severity: Rule::SharedAccount.severity(),
            program: group[0].program.clone(),
            county: group[0].county.clone(),
            id_number: None,
            payments: group.iter().map(|l| l.key.clone()).collect(),
            amount: Fen::ZERO,
            detail: format!(
                "尾号 {tail} 的账户收到 {} 人的补助：{}",
                persons.len(),
                shown.join("、")
            ),
            fingerprint: format!(
                "R05|{account}|{}",
                persons.iter().copied().collect::<Vec<_>>().join(",")
            ),
        });
    }
}

/// R07: every tranche stuck (滞留) on the report date, at county finance or a unit.
async fn stranded(
    store: &Store,
    as_of: NaiveDate,
    out: &mut Vec<Finding>,
) -> Result<(), InspectError> {
    for holder in crate::flow::deadlines::report(store, as_of, None, None).await? {
        for t in holder
            .tranches
            .iter()
            .filter(|t| t.state == TrancheState::Stuck)
        {
            out.push(Finding {
                rule: Rule::FundsStranded,
                severity: Rule::FundsStranded.severity(),
                program: holder.program.clone(),
                county: holder.county.clone(),
                id_number: None,
                payments: vec![t.key.clone()],
                amount: t.remaining,
                detail: format!(
                    "{} {} 收到 {} {}（{}），时限 {}，截至 {as_of} 仍滞留 {}，逾期 {} 天",
                    if holder.kind == "county" {
                        "县级财政"
                    } else {
                        "发放单位"
                    },
                    holder.holder,
                    t.received,
                    t.document,
                    t.amount.grouped(),
                    t.deadline,
                    t.remaining.grouped(),
                    t.days_overdue
                ),
                fingerprint: format!(
                    "R07|{}|{}|{}|{}",
                    holder.county, holder.program, holder.holder, t.key
                ),
            });
        }
    }
    Ok(())
}

/// R08: a release or matching share posted below the share computed from the roster.
async fn short_shares(
    store: &Store,
    as_of: NaiveDate,
    out: &mut Vec<Finding>,
) -> Result<(), InspectError> {
    let rows = sqlx::query(
        "SELECT entry_key, kind, program, county_code, level, document, event_date, amount, computed, covers_from, covers_to \
         FROM flow_events WHERE kind IN ('release', 'matching') AND computed IS NOT NULL AND amount < computed \
         AND event_date <= $1 ORDER BY entry_key",
    )
    .bind(as_of.format("%Y-%m-%d").to_string())
    .fetch_all(store.pool())
    .await?;
    for row in rows {
        let key: String = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let level: Option<String> = row.try_get(4)?;
        let amount = Fen(row.try_get(7)?);
        let computed = Fen(row.try_get(8)?);
        let from: Option<String> = row.try_get(9)?;
        let to: Option<String> = row.try_get(10)?;
        let level_zh = match level.as_deref() {
            Some("province") => "省级",
            Some("city") => "市级",
            _ => "县级",
        };
        out.push(Finding {
            rule: Rule::ShortShare,
            severity: Rule::ShortShare.severity(),
            program: row.try_get(2)?,
            county: row.try_get(3)?,
            id_number: None,
            payments: vec![key.clone()],
            amount: computed
                .checked_sub(amount)
                .ok_or_else(|| invalid("amounts overflow".into()))?,
            detail: format!(
                "{level_zh}{} {}（{}，{}..{}）到位 {}，按名册测算应为 {}",
                if kind == "matching" {
                    "配套"
                } else {
                    "下达"
                },
                row.try_get::<String, _>(5)?,
                row.try_get::<String, _>(6)?,
                from.unwrap_or_default(),
                to.unwrap_or_default(),
                amount.grouped(),
                computed.grouped()
            ),
            fingerprint: format!("R08|{key}"),
        });
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The findings table
// ------------------------------------------------------------------------------------------------

/// How an inspector rules on a finding (定性).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Explained: no violation.
    Normal,
    Violation,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Normal => "normal",
            Disposition::Violation => "violation",
        }
    }
}

/// The kinds of violation an inspector may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ViolationType {
    /// 拨付不及时
    LateRelease,
    /// 资金滞留
    FundsStranded,
    /// 挤占挪用
    Diverted,
    /// 超范围发放
    OutsideScope,
    /// 冒领
    Impersonation,
    /// 虚报冒领、数据造假
    FalseData,
}

impl ViolationType {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationType::LateRelease => "late_release",
            ViolationType::FundsStranded => "funds_stranded",
            ViolationType::Diverted => "diverted",
            ViolationType::OutsideScope => "outside_scope",
            ViolationType::Impersonation => "impersonation",
            ViolationType::FalseData => "false_data",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            ViolationType::LateRelease => "拨付不及时",
            ViolationType::FundsStranded => "资金滞留",
            ViolationType::Diverted => "挤占挪用",
            ViolationType::OutsideScope => "超范围发放",
            ViolationType::Impersonation => "冒领",
            ViolationType::FalseData => "数据造假",
        }
    }
}

/// Stores new findings; one already recorded (same fingerprint) is skipped. Returns how many
/// were added.
pub async fn record(
    store: &Store,
    findings: &[Finding],
    found_at: NaiveDate,
) -> Result<usize, InspectError> {
    let mut added = 0;
    let mut tx = store.begin_write().await?;
    for f in findings {
        let done = sqlx::query(
            "INSERT INTO findings (rule, fingerprint, severity, program, county, id_number, payments, detail, amount, found_at, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open') ON CONFLICT (fingerprint) DO NOTHING",
        )
        .bind(f.rule.code())
        .bind(f.fingerprint.clone())
        .bind(f.severity.as_str())
        .bind(f.program.clone())
        .bind(f.county.clone())
        .bind(f.id_number.clone())
        .bind(f.payments.join(" "))
        .bind(f.detail.clone())
        .bind(f.amount.get())
        .bind(found_at.format("%Y-%m-%d").to_string())
        .execute(&mut *tx)
        .await?;
        added += done.rows_affected() as usize;
    }
    tx.commit().await?;
    Ok(added)
}

/// An inspector's ruling on one finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ruling {
    pub disposition: Disposition,
    /// Required for a violation; refused for a normal disposition.
    pub violation_type: Option<ViolationType>,
    /// To recover (追回); zero for a normal disposition.
    pub amount_to_recover: Fen,
    /// 整改期限: required for a violation.
    pub rectify_by: Option<NaiveDate>,
    pub ruled_by: String,
    pub ruled_at: NaiveDate,
}

/// Rules on an open finding. A ruling is final: ruling a finding again is refused.
pub async fn rule(store: &Store, finding_id: i64, ruling: &Ruling) -> Result<(), InspectError> {
    if ruling.ruled_by.trim().is_empty() {
        return Err(invalid(
            "a ruling needs the inspector's name (ruled_by)".into(),
        ));
    }
    if ruling.amount_to_recover.is_negative() {
        return Err(invalid("the amount to recover cannot be negative".into()));
    }
    match ruling.disposition {
        Disposition::Normal => {
            if ruling.violation_type.is_some() || ruling.amount_to_recover.is_positive() {
                return Err(invalid(
                    "a normal disposition names no violation type and no amount to recover".into(),
                ));
            }
        }
        Disposition::Violation => {
            if ruling.violation_type.is_none() {
                return Err(invalid(
                    "a violation needs its type: late_release, funds_stranded, diverted, outside_scope, impersonation or false_data".into(),
                ));
            }
            if ruling.rectify_by.is_none_or(|d| d < ruling.ruled_at) {
                return Err(invalid(
                    "a violation needs a rectification date (rectify_by) on or after the ruling"
                        .into(),
                ));
            }
        }
    }
    let status = sqlx::query("SELECT status FROM findings WHERE id = $1")
        .bind(finding_id)
        .fetch_optional(store.pool())
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?;
    match status.as_deref() {
        None => return Err(invalid(format!("there is no finding {finding_id}"))),
        Some("ruled") => {
            return Err(invalid(format!(
                "finding {finding_id} is already ruled: a ruling is final"
            )));
        }
        _ => {}
    }
    let done = sqlx::query(
        "UPDATE findings SET status = 'ruled', disposition = $1, violation_type = $2, amount_to_recover = $3, \
         rectify_by = $4, ruled_by = $5, ruled_at = $6 WHERE id = $7 AND status = 'open'",
    )
    .bind(ruling.disposition.as_str())
    .bind(ruling.violation_type.map(|v| v.as_str().to_string()))
    .bind(ruling.amount_to_recover.get())
    .bind(ruling.rectify_by.map(|d| d.format("%Y-%m-%d").to_string()))
    .bind(ruling.ruled_by.trim().to_string())
    .bind(ruling.ruled_at.format("%Y-%m-%d").to_string())
    .bind(finding_id)
    .execute(store.pool())
    .await?;
    if done.rows_affected() != 1 {
        return Err(invalid(format!(
            "finding {finding_id} was ruled by someone else meanwhile"
        )));
    }
    Ok(())
}

/// A stored finding with its ruling.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    pub id: i64,
    pub rule: String,
    pub severity: String,
    pub program: String,
    pub county: String,
    pub id_number: Option<String>,
    pub payments: Vec<String>,
    pub detail: String,
    pub amount: Fen,
    pub found_at: String,
    pub status: String,
    pub disposition: Option<String>,
    pub violation_type: Option<String>,
    pub amount_to_recover: Option<Fen>,
    pub rectify_by: Option<NaiveDate>,
    pub ruled_by: Option<String>,
    pub ruled_at: Option<String>,
    /// A violation past its rectification date on the report date: days since; else 0.
    pub days_overdue: i64,
}

/// Every finding recorded by `as_of`, in id order, with the days past its rectification date.
pub async fn list(store: &Store, as_of: NaiveDate) -> Result<Vec<Recorded>, InspectError> {
    let rows = sqlx::query(
        "SELECT id, rule, severity, program, county, id_number, payments, detail, amount, found_at, status, \
         disposition, violation_type, amount_to_recover, rectify_by, ruled_by, ruled_at \
         FROM findings WHERE found_at <= $1 ORDER BY id",
    )
    .bind(as_of.format("%Y-%m-%d").to_string())
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let rectify_by: Option<String> = row.try_get(14)?;
        let rectify_by = rectify_by
            .map(|t| {
                NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                    .map_err(|_| invalid(format!("stored date {t} is damaged")))
            })
            .transpose()?;
        let disposition: Option<String> = row.try_get(11)?;
        let days_overdue = match (disposition.as_deref(), rectify_by) {
            (Some("violation"), Some(d)) if d < as_of => (as_of - d).num_days(),
            _ => 0,
        };
        let payments: String = row.try_get(6)?;
        out.push(Recorded {
            id: row.try_get(0)?,
            rule: row.try_get(1)?,
            severity: row.try_get(2)?,
            program: row.try_get(3)?,
            county: row.try_get(4)?,
            id_number: row.try_get(5)?,
            payments: payments.split_whitespace().map(str::to_string).collect(),
            detail: row.try_get(7)?,
            amount: Fen(row.try_get(8)?),
            found_at: row.try_get(9)?,
            status: row.try_get(10)?,
            disposition,
            violation_type: row.try_get(12)?,
            amount_to_recover: row.try_get::<Option<i64>, _>(13)?.map(Fen),
            rectify_by,
            ruled_by: row.try_get(15)?,
            ruled_at: row.try_get(16)?,
            days_overdue,
        });
    }
    Ok(out)
}

/// Findings (from a sweep) as a sheet; IDs masked unless `full_ids`.
pub fn findings_sheet(findings: &[Finding], as_of: NaiveDate, full_ids: bool) -> Sheet {
    let mut sheet = Sheet::new(
        "交叉核查发现问题清单",
        vec![
            Column::new("rule", "规则"),
            Column::new("rule_name", "规则名称"),
            Column::new("severity", "等级"),
            Column::new("program", "项目"),
            Column::new("county_code", "县区"),
            Column::new("id_number", "身份证号"),
            Column::new("payments", "涉及发放"),
            Column::summed("amount", "应追回/调整金额"),
            Column::new("detail", "情况说明"),
        ],
    );
    sheet.subtitle.push(format!("截至 as of {as_of}"));
    for f in findings {
        sheet.push(vec![
            f.rule.code().into(),
            f.rule.name_zh().into(),
            format!("{} {}", f.severity.label_zh(), f.severity.as_str()).into(),
            f.program.clone().into(),
            f.county.clone().into(),
            f.shown_id(full_ids).into(),
            f.payments.join(" ").into(),
            f.amount.into(),
            f.detail.clone().into(),
        ]);
    }
    sheet
}

/// Recorded findings as a sheet; IDs masked unless `full_ids`.
pub fn list_sheet(findings: &[Recorded], as_of: NaiveDate, full_ids: bool) -> Sheet {
    let mut sheet = Sheet::new(
        "问题整改台账",
        vec![
            Column::new("id", "编号"),
            Column::new("rule", "规则"),
            Column::new("rule_name", "规则名称"),
            Column::new("severity", "等级"),
            Column::new("county_code", "县区"),
            Column::new("id_number", "身份证号"),
            Column::summed("amount", "问题金额"),
            Column::new("status", "状态"),
            Column::new("disposition", "定性"),
            Column::new("violation_type", "违规类型"),
            Column::summed("amount_to_recover", "应追回金额"),
            Column::new("rectify_by", "整改期限"),
            Column::new("days_overdue", "逾期天数"),
            Column::new("ruled_by", "认定人"),
            Column::new("detail", "情况说明"),
        ],
    );
    sheet.subtitle.push(format!("截至 as of {as_of}"));
    for f in findings {
        let rule = Rule::parse(&f.rule);
        sheet.push(vec![
            Cell::Int(f.id),
            f.rule.clone().into(),
            rule.map(|r| r.name_zh()).unwrap_or("").into(),
            f.severity.clone().into(),
            f.county.clone().into(),
            f.id_number
                .as_deref()
                .map(|id| if full_ids { id.to_string() } else { masked(id) })
                .into(),
            f.amount.into(),
            (if f.status == "ruled" {
                "已定性"
            } else {
                "待定性"
            })
            .into(),
            f.disposition.clone().into(),
            f.violation_type.clone().into(),
            f.amount_to_recover.into(),
            f.rectify_by.into(),
            Cell::Int(f.days_overdue),
            f.ruled_by.clone().into(),
            f.detail.clone().into(),
        ]);
    }
    sheet
}

// ------------------------------------------------------------------------------------------------
// The scorecard
// ------------------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct Score {
    /// Σ days from receipt to the last pass-on, over county finance's passed-on tranches.
    days: i64,
    passed: i64,
    paid: Fen,
    available: Fen,
    findings: i64,
    ruled: i64,
    late_or_stuck: i64,
}

impl Score {
    fn add(&mut self, other: &Score) -> Result<(), InspectError> {
        let overflow = || invalid("amounts overflow".into());
        self.days += other.days;
        self.passed += other.passed;
        self.paid = self.paid.checked_add(other.paid).ok_or_else(overflow)?;
        self.available = self
            .available
            .checked_add(other.available)
            .ok_or_else(overflow)?;
        self.findings += other.findings;
        self.ruled += other.ruled;
        self.late_or_stuck += other.late_or_stuck;
        Ok(())
    }

    /// Average days to pass a release on; `None` when nothing was passed on yet.
    fn speed(&self) -> Option<Decimal> {
        (self.passed > 0).then(|| {
            (Decimal::from(self.days) / Decimal::from(self.passed))
                .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero)
        })
    }

    /// Paid / available, in percent.
    fn execution(&self) -> Option<Decimal> {
        self.available.is_positive().then(|| {
            (Decimal::from(self.paid.get()) * Decimal::ONE_HUNDRED
                / Decimal::from(self.available.get()))
            .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero)
        })
    }

    /// Ruled / all findings, in percent; no finding counts as all handled.
    fn handled(&self) -> Decimal {
        if self.findings == 0 {
            Decimal::ONE_HUNDRED
        } else {
            (Decimal::from(self.ruled) * Decimal::ONE_HUNDRED / Decimal::from(self.findings))
                .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero)
        }
    }
}

/// Competition ranks (1, 2, 2, 4) of `values`, better first; `None` ranks last.
fn ranks<T: Ord + Clone>(values: &[Option<T>], higher_is_better: bool) -> Vec<i64> {
    values
        .iter()
        .map(|v| {
            1 + values
                .iter()
                .filter(|w| match (v, w) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(a), Some(b)) => {
                        if higher_is_better {
                            b > a
                        } else {
                            b < a
                        }
                    }
                })
                .count() as i64
        })
        .collect()
}

/// 区域评分: counties (and their cities, as sums) ranked on release speed (average days from
/// receiving a release to passing it on), execution (paid / released and matched), findings
/// handled (ruled / recorded) and timeliness (late or stuck tranches, fewer is better). The overall
/// rank orders by the sum of the four ranks.
pub async fn scorecard(store: &Store, as_of: NaiveDate) -> Result<Sheet, InspectError> {
    let regions = store.regions().await?;
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    // The units' paid days are read once: the deadline report's outflows and each county's paid
    // (summed from every paid line, 3.3 million in a province-year, they took 17.7 s and 3.7 GB).
    let paid = crate::flow::deadlines::paid_days(store).await?;
    for holder in crate::flow::deadlines::report_with(store, as_of, None, None, &paid).await? {
        let score = scores.entry(holder.county.clone()).or_default();
        for t in &holder.tranches {
            if matches!(t.state, TrancheState::Late | TrancheState::Stuck) {
                score.late_or_stuck += 1;
            }
            if holder.kind == "county"
                && let Some(last) = t.last_passed_on
                && t.remaining.is_zero()
            {
                score.days += (last - t.received).num_days();
                score.passed += 1;
            }
        }
    }
    let day = as_of.format("%Y-%m-%d").to_string();
    for row in sqlx::query(
        "SELECT county_code, CAST(SUM(amount) AS BIGINT) FROM flow_events \
         WHERE kind IN ('release', 'matching') AND event_date <= $1 GROUP BY county_code",
    )
    .bind(day.clone())
    .fetch_all(store.pool())
    .await?
    {
        scores.entry(row.try_get(0)?).or_default().available = Fen(row.try_get(1)?);
    }
    // Paid by the report date: the bank's answer dates the payment.
    for day in paid.iter().filter(|d| d.date <= as_of) {
        let score = scores.entry(day.county.clone()).or_default();
        score.paid = score
            .paid
            .checked_add(day.amount)
            .ok_or_else(|| invalid("amounts overflow".into()))?;
    }
    for row in sqlx::query(
        "SELECT county, status, COUNT(*) FROM findings WHERE found_at <= $1 GROUP BY county, status",
    )
    .bind(day)
    .fetch_all(store.pool())
    .await?
    {
        let county: String = row.try_get(0)?;
        let status: String = row.try_get(1)?;
        let n: i64 = row.try_get(2)?;
        let score = scores.entry(county).or_default();
        score.findings += n;
        if status == "ruled" {
            score.ruled += n;
        }
    }
    // Cities as sums of their counties; a city that is its own county (东莞, 中山) is listed once.
    let mut cities: BTreeMap<String, Score> = BTreeMap::new();
    for (county, score) in &scores {
        if let Some(city) = regions.city_of(county).filter(|c| c.code != *county) {
            cities.entry(city.code.clone()).or_default().add(score)?;
        }
    }
    let mut sheet = Sheet::new(
        "区域资金管理评分表",
        vec![
            Column::new("rank", "综合排名"),
            Column::new("level", "层级"),
            Column::new("region", "地区代码"),
            Column::new("region_name", "地区名称"),
            Column::new("days_to_pass_on", "平均拨付天数"),
            Column::new("speed_rank", "拨付速度排名"),
            Column::summed("paid", "已发放"),
            Column::summed("available", "到位资金"),
            Column::new("execution_percent", "执行率%"),
            Column::new("execution_rank", "执行排名"),
            Column::new("findings", "发现问题"),
            Column::new("ruled", "已定性"),
            Column::new("handled_percent", "处理率%"),
            Column::new("handled_rank", "处理排名"),
            Column::new("late_or_stuck", "逾期/滞留笔数"),
            Column::new("timeliness_rank", "时效排名"),
        ],
    );
    sheet.subtitle.push(format!(
        "截至 as of {as_of} · 综合排名按四项排名之和（小者优先），同分同名次"
    ));
    for (level, group) in [("县级", &scores), ("市级", &cities)] {
        let codes: Vec<&String> = group.keys().collect();
        let values: Vec<&Score> = group.values().collect();
        let speed = ranks(&values.iter().map(|s| s.speed()).collect::<Vec<_>>(), false);
        let execution = ranks(
            &values.iter().map(|s| s.execution()).collect::<Vec<_>>(),
            true,
        );
        let handled = ranks(
            &values.iter().map(|s| Some(s.handled())).collect::<Vec<_>>(),
            true,
        );
        let timely = ranks(
            &values
                .iter()
                .map(|s| Some(s.late_or_stuck))
                .collect::<Vec<_>>(),
            false,
        );
        let totals: Vec<Option<i64>> = (0..codes.len())
            .map(|i| Some(speed[i] + execution[i] + handled[i] + timely[i]))
            .collect();
        let overall = ranks(&totals, false);
        let mut order: Vec<usize> = (0..codes.len()).collect();
        order.sort_by(|a, b| (overall[*a], codes[*a]).cmp(&(overall[*b], codes[*b])));
        for i in order {
            let s = values[i];
            let percent = |d: Option<Decimal>| d.map(|d| format!("{d:.1}")).unwrap_or_default();
            sheet.push(vec![
                Cell::Int(overall[i]),
                level.into(),
                codes[i].clone().into(),
                regions
                    .get(codes[i])
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
                    .into(),
                percent(s.speed()).into(),
                Cell::Int(speed[i]),
                s.paid.into(),
                s.available.into(),
                percent(s.execution()).into(),
                Cell::Int(execution[i]),
                Cell::Int(s.findings),
                Cell::Int(s.ruled),
                percent(Some(s.handled())).into(),
                Cell::Int(handled[i]),
                Cell::Int(s.late_or_stuck),
                Cell::Int(timely[i]),
            ]);
        }
    }
    Ok(sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_codes_are_stable_and_unique() {
        let codes: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Rule::ALL.len());
        assert_eq!(Rule::parse("r03"), Some(Rule::PaidTwice));
        assert_eq!(Rule::PaidAfterDeath.severity(), Severity::Red);
        assert_eq!(Rule::SharedAccount.severity(), Severity::Yellow);
    }

    #[test]
    fn ranks_are_competition_ranks_with_missing_last() {
        assert_eq!(
            ranks(&[Some(3), Some(1), Some(3), None], true),
            vec![1, 3, 1, 4]
        );
        assert_eq!(
            ranks(&[Some(3), Some(1), Some(3), None], false),
            vec![2, 1, 2, 4]
        );
    }
}
