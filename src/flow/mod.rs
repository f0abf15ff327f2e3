//! The money's journey, as commands that post balanced, single-program entries: allocation (下达),
//! matching share (配套), disbursement (拨付), payout batches (发放) and bank results, returns (结余退回)
//! and recoveries (追回). Each command computes from the roster and the program's rules what should
//! move, then posts it through the store with its flow records in the same transaction.
//!
//! Accounts (owner:kind inside one county's books):
//! - a level's budget for the county: `440000:budget` (province), `440500:budget` (city),
//!   `440511:budget` (the county's own share); returns upward go to the level's `returned`;
//! - funds on hand: `440511:held` (county finance), `U…:held` (a disbursing unit);
//! - a person: `ID:paid` (paid to the person, 已发放支出), `ID:receivable` (to recover, 追回).
//!
//! A payout batch is one pending entry (Dr each line's person paid, Cr unit held), as the bank pays
//! it; the bank's first answer posts it (or voids it, if the bank paid none of it). Each line's
//! answer is kept in `payout_results`; a failed line's money comes back to the unit
//! (`failed:payment:BATCH:LINE`, Dr unit held / Cr person paid) and the month's claim
//! (`payout_claims`, with the amount owed) leaves the person owed, ready for a retry batch.

pub mod bank;
pub mod deadlines;
pub mod payout;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use crate::calendar::YearMonth;
use crate::ledger::{AccountKind, AccountRef, NewEntry, Posting};
use crate::money::Fen;
use crate::program::{Entitlement, Program, entitlements};
use crate::region::RegionTable;
use crate::store::{BatchMode, Outcome, SideRow, SideValue, Store, StoreError};

/// Which level releases or matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    Province,
    City,
    County,
}

impl Level {
    pub fn code(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Level::Province => "省级",
            Level::City => "市级",
            Level::County => "县级",
        }
    }

    /// The finance department of this level for `county`.
    pub fn owner(self, regions: &RegionTable, county: &str) -> Option<String> {
        match self {
            Level::Province => regions.province_of(county).map(|r| r.code.clone()),
            Level::City => regions.city_of(county).map(|r| r.code.clone()),
            Level::County => Some(county.to_string()),
        }
    }
}

/// What a county needs for a range of months, by level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Need {
    pub persons: i64,
    pub person_months: i64,
    pub total: Fen,
    pub province: Fen,
    pub city: Fen,
    pub county: Fen,
}

fn add(a: Fen, b: Fen) -> Result<Fen, StoreError> {
    a.checked_add(b)
        .ok_or_else(|| StoreError::Invalid("amounts overflow".into()))
}

/// Every person's entitlements for the months, by county (and unit), from the stored roster.
pub async fn roster_entitlements(
    store: &Store,
    program: &Program,
    from: YearMonth,
    to: YearMonth,
    county: Option<&str>,
) -> Result<Vec<(crate::roster::RosterEntry, Vec<Entitlement>)>, StoreError> {
    let regions = store.regions().await?;
    let people = store.roster_entries(program.code(), county).await?;
    let mut out = Vec::with_capacity(people.len());
    let mut causes: BTreeMap<String, usize> = BTreeMap::new();
    for person in people {
        match entitlements(program, &person.beneficiary(&regions), from, to) {
            Ok(rows) => out.push((person, rows)),
            Err(e) => *causes.entry(e.to_string()).or_default() += 1,
        }
    }
    if !causes.is_empty() {
        return Err(StoreError::Invalid(
            causes
                .into_iter()
                .map(|(c, n)| format!("{c} ({n} person(s))"))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    Ok(out)
}

/// Each county's need for the months: persons, person-months and each level's share.
pub async fn county_needs(
    store: &Store,
    program: &Program,
    from: YearMonth,
    to: YearMonth,
    county: Option<&str>,
) -> Result<BTreeMap<String, Need>, StoreError> {
    let mut needs: BTreeMap<String, Need> = BTreeMap::new();
    for (person, rows) in roster_entitlements(store, program, from, to, county).await? {
        add_county_need(&mut needs, &person, &rows)?;
    }
    Ok(needs)
}

/// Adds a person's entitlements to their county's need.
fn add_county_need(
    needs: &mut BTreeMap<String, Need>,
    person: &crate::roster::RosterEntry,
    rows: &[Entitlement],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let need = needs.entry(person.county.clone()).or_default();
    need.persons += 1;
    for e in rows {
        need.person_months += 1;
        need.total = add(need.total, e.amount)?;
        need.province = add(need.province, e.province_share)?;
        need.city = add(need.city, e.city_share)?;
        need.county = add(need.county, e.county_share)?;
    }
    Ok(())
}

/// A period's needs from one pricing of the program's whole roster: each county's (for the three
/// levels' releases, [`allocate_with_needs`]) and each county's units' (for its disbursement,
/// [`disburse_with_needs`]). A county whose roster cannot be disbursed (someone owed has no unit)
/// has the reason instead of its units' needs, for its disbursement to report.
pub async fn period_needs(
    store: &Store,
    program: &Program,
    from: YearMonth,
    to: YearMonth,
) -> Result<PeriodNeeds, StoreError> {
    let mut needs = PeriodNeeds::default();
    for (person, rows) in roster_entitlements(store, program, from, to, None).await? {
        add_county_need(&mut needs.counties, &person, &rows)?;
        let units = needs
            .units
            .entry(person.county.clone())
            .or_insert_with(|| Ok(UnitNeeds::new()));
        if let Ok(slots) = units
            && let Err(e) = add_unit_need(slots, &person, rows)
        {
            *units = Err(e.to_string());
        }
    }
    Ok(needs)
}

/// See [`period_needs`].
#[derive(Debug, Default)]
pub struct PeriodNeeds {
    pub counties: BTreeMap<String, Need>,
    /// By county: its units' needs, or why its roster cannot be disbursed.
    pub units: BTreeMap<String, Result<UnitNeeds, String>>,
}

impl TransferLine {
    /// R08 at posting time: a release or matching share below the computed need is posted, with a
    /// warning naming the rule (the reconciliation and the sweep show it too).
    pub fn warning(&self) -> Option<String> {
        // Releases and matching shares go to county finance; a disbursement's line names a unit.
        (self.to == self.county && self.amount < self.computed).then(|| {
            format!(
                "{}: {} below the computed {}",
                crate::inspect::checks::Rule::ShortShare.label(),
                self.computed
                    .checked_sub(self.amount)
                    .unwrap_or(Fen::ZERO)
                    .grouped(),
                self.computed.grouped()
            )
        })
    }
}

/// One line of a release, matching or disbursement: who receives, how much is needed and given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferLine {
    pub county: String,
    /// The receiving owner: county finance or a unit.
    pub to: String,
    pub persons: i64,
    pub person_months: i64,
    pub computed: Fen,
    pub amount: Fen,
    pub outcome: Option<Outcome>,
}

pub struct AllocateRequest<'a> {
    pub program: &'a Program,
    pub level: Level,
    pub document: &'a str,
    pub date: NaiveDate,
    pub from: YearMonth,
    pub to: YearMonth,
    pub county: Option<&'a str>,
    /// Amounts per county as actually released (a CSV); `None` releases the computed need.
    pub amounts: Option<HashMap<String, Fen>>,
    pub dry_run: bool,
}

#[allow(clippy::too_many_arguments)]
fn transfer(
    key: String,
    date: NaiveDate,
    county: &str,
    program: &str,
    memo: String,
    to: AccountRef,
    from: AccountRef,
    amount: Fen,
) -> NewEntry {
    NewEntry::normal(
        key,
        date,
        county,
        program,
        memo,
        vec![
            Posting {
                account: to,
                amount,
            },
            Posting {
                account: from,
                amount: Fen(-amount.get()),
            },
        ],
    )
}

#[allow(clippy::too_many_arguments)]
fn event_row(
    index: usize,
    key: &str,
    kind: &str,
    program: &str,
    county: &str,
    level: Option<&str>,
    from: &str,
    to: &str,
    document: &str,
    date: NaiveDate,
    amount: Fen,
    computed: Option<Fen>,
    covers: Option<(YearMonth, YearMonth)>,
) -> SideRow {
    SideRow {
        entry: Some(index),
        table: "flow_events",
        columns: &[
            "entry_key",
            "kind",
            "program",
            "county_code",
            "level",
            "from_owner",
            "to_owner",
            "document",
            "event_date",
            "amount",
            "computed",
            "covers_from",
            "covers_to",
        ],
        values: vec![
            key.into(),
            kind.into(),
            program.into(),
            county.into(),
            level.map(str::to_string).into(),
            from.into(),
            to.into(),
            document.into(),
            date.format("%Y-%m-%d").to_string().into(),
            amount.into(),
            computed.map(|c| c.get()).into(),
            covers.map(|(f, _)| f.to_string()).into(),
            covers.map(|(_, t)| t.to_string()).into(),
        ],
    }
}

/// 下达 / 配套: each county's share from `level`, posted county by county (province and city budget
/// → county finance held; the county's own budget → its held for the matching share).
pub async fn allocate(
    store: &Store,
    request: AllocateRequest<'_>,
) -> Result<Vec<TransferLine>, StoreError> {
    let needs = county_needs(
        store,
        request.program,
        request.from,
        request.to,
        request.county,
    )
    .await?;
    allocate_with_needs(store, request, needs).await
}

/// [`allocate`] with the counties' needs already computed by [`county_needs`] for the same program,
/// months and county (the three levels' releases of one period share them: the roster is priced
/// once instead of three times).
pub async fn allocate_with_needs(
    store: &Store,
    request: AllocateRequest<'_>,
    needs: BTreeMap<String, Need>,
) -> Result<Vec<TransferLine>, StoreError> {
    let regions = store.regions().await?;
    let program = request.program;
    let mut counties: Vec<String> = needs.keys().cloned().collect();
    if let Some(amounts) = &request.amounts {
        for county in amounts.keys() {
            if !regions.get(county).is_some_and(|r| r.county_role) {
                return Err(StoreError::Invalid(format!(
                    "{county} is not a county (or a city without districts)"
                )));
            }
            if !counties.contains(county) {
                counties.push(county.clone());
            }
        }
        counties.sort();
    }
    let mut lines = Vec::new();
    let mut entries = Vec::new();
    let mut side = Vec::new();
    let kind = if request.level == Level::County {
        "matching"
    } else {
        "release"
    };
    for county in counties {
        let need = needs.get(&county).cloned().unwrap_or_default();
        let computed = match request.level {
            Level::Province => need.province,
            Level::City => need.city,
            Level::County => need.county,
        };
        let amount = match &request.amounts {
            Some(amounts) => amounts.get(&county).copied().unwrap_or(Fen::ZERO),
            None => computed,
        };
        let mut line = TransferLine {
            county: county.clone(),
            to: county.clone(),
            persons: need.persons,
            person_months: need.person_months,
            computed,
            amount,
            outcome: None,
        };
        if amount.is_positive() {
            let owner = request.level.owner(&regions, &county).ok_or_else(|| {
                StoreError::Invalid(format!(
                    "county {county} has no {} above it",
                    request.level.code()
                ))
            })?;
            let key = format!("{kind}:{}:{county}", request.document);
            let memo = format!(
                "{}{} {} {}..{}",
                request.level.label_zh(),
                if kind == "matching" {
                    "配套"
                } else {
                    "下达"
                },
                request.document,
                request.from,
                request.to
            );
            side.push(event_row(
                entries.len(),
                &key,
                kind,
                program.code(),
                &county,
                Some(request.level.code()),
                &owner,
                &county,
                request.document,
                request.date,
                amount,
                Some(computed),
                Some((request.from, request.to)),
            ));
            entries.push(transfer(
                key,
                request.date,
                &county,
                program.code(),
                memo,
                AccountRef::new(county.clone(), AccountKind::Held),
                AccountRef::new(owner, AccountKind::Budget),
                amount,
            ));
        }
        lines.push(line.clone());
        line.outcome = None;
    }
    if request.dry_run || entries.is_empty() {
        return Ok(lines);
    }
    let outcomes = store
        .post_with(&entries, BatchMode::AllOrNothing, &side)
        .await?;
    let mut posted = outcomes.into_iter();
    for line in lines.iter_mut().filter(|l| l.amount.is_positive()) {
        line.outcome = posted.next();
    }
    Ok(lines)
}

pub struct DisburseRequest<'a> {
    pub program: &'a Program,
    pub county: &'a str,
    pub document: &'a str,
    pub date: NaiveDate,
    pub from: YearMonth,
    pub to: YearMonth,
    /// Amounts per unit as actually disbursed (a CSV); `None` disburses each unit's need.
    pub amounts: Option<HashMap<String, Fen>>,
    pub dry_run: bool,
}

/// Per unit: persons paid, the need per month, and person-months.
pub type UnitNeeds = BTreeMap<String, (i64, BTreeMap<YearMonth, Fen>, i64)>;

/// Each unit's need per month for the months: the full entitlement of the people it pays.
pub async fn unit_needs(
    store: &Store,
    program: &Program,
    county: &str,
    from: YearMonth,
    to: YearMonth,
) -> Result<UnitNeeds, StoreError> {
    let mut needs: UnitNeeds = BTreeMap::new();
    for (person, rows) in roster_entitlements(store, program, from, to, Some(county)).await? {
        add_unit_need(&mut needs, &person, rows)?;
    }
    Ok(needs)
}

/// Adds a person's entitlements to the need of the unit that pays them.
fn add_unit_need(
    needs: &mut UnitNeeds,
    person: &crate::roster::RosterEntry,
    rows: Vec<Entitlement>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let Some(unit) = person.unit.clone() else {
        return Err(StoreError::Invalid(format!(
            "{} ({}) is owed money but has no disbursing unit on the roster: set unit_code",
            person.name,
            crate::id_number::IdNumber::parse(&person.id_number)
                .map(|i| i.masked())
                .unwrap_or_default()
        )));
    };
    let slot = needs.entry(unit).or_default();
    slot.0 += 1;
    for e in rows {
        slot.2 += 1;
        let month = slot.1.entry(e.month).or_insert(Fen::ZERO);
        *month = add(*month, e.amount)?;
    }
    Ok(())
}

/// 拨付: county finance passes funds to its disbursing units (county held → unit held).
pub async fn disburse(
    store: &Store,
    request: DisburseRequest<'_>,
) -> Result<Vec<TransferLine>, StoreError> {
    let needs = unit_needs(
        store,
        request.program,
        request.county,
        request.from,
        request.to,
    )
    .await?;
    disburse_with_needs(store, request, needs).await
}

/// [`disburse`] with the county's units' needs already computed for the same program and months
/// (by [`unit_needs`], or for every county at once by [`period_needs`]).
pub async fn disburse_with_needs(
    store: &Store,
    request: DisburseRequest<'_>,
    needs: UnitNeeds,
) -> Result<Vec<TransferLine>, StoreError> {
    let program = request.program;
    let county = request.county;
    let units: HashMap<String, String> = store
        .units()
        .await?
        .into_iter()
        .map(|u| (u.code, u.county))
        .collect();
    let mut targets: Vec<String> = needs.keys().cloned().collect();
    if let Some(amounts) = &request.amounts {
        for unit in amounts.keys() {
            match units.get(unit) {
                Some(c) if c == county => {}
                Some(c) => {
                    return Err(StoreError::Invalid(format!(
                        "unit {unit} belongs to county {c}, not {county}"
                    )));
                }
                None => {
                    return Err(StoreError::Invalid(format!(
                        "unit {unit} is not registered"
                    )));
                }
            }
            if !targets.contains(unit) {
                targets.push(unit.clone());
            }
        }
        targets.sort();
    }
    let mut lines = Vec::new();
    let mut entries = Vec::new();
    let mut side = Vec::new();
    for unit in targets {
        let (persons, months, person_months) = needs.get(&unit).cloned().unwrap_or_default();
        let computed = months.values().try_fold(Fen::ZERO, |a, b| add(a, *b))?;
        let amount = match &request.amounts {
            Some(amounts) => amounts.get(&unit).copied().unwrap_or(Fen::ZERO),
            None => computed,
        };
        lines.push(TransferLine {
            county: county.to_string(),
            to: unit.clone(),
            persons,
            person_months,
            computed,
            amount,
            outcome: None,
        });
        if !amount.is_positive() {
            continue;
        }
        let key = format!("disbursement:{}:{unit}", request.document);
        side.push(event_row(
            entries.len(),
            &key,
            "disbursement",
            program.code(),
            county,
            None,
            county,
            &unit,
            request.document,
            request.date,
            amount,
            Some(computed),
            Some((request.from, request.to)),
        ));
        // The unit's deadline runs per month: record what the money is for, month by month. A given
        // amount other than the need is spread over the months in proportion (largest remainder).
        let per_month: Vec<(YearMonth, Fen)> = if amount == computed || computed.is_zero() {
            if computed.is_zero() {
                vec![(request.from, amount)]
            } else {
                months.iter().map(|(m, f)| (*m, *f)).collect()
            }
        } else {
            let weights: Vec<rust_decimal::Decimal> = months
                .values()
                .map(|f| rust_decimal::Decimal::from(f.get()))
                .collect();
            let parts = crate::money::split_largest_remainder(amount, &weights)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            months.keys().copied().zip(parts).collect()
        };
        for (month, part) in per_month {
            side.push(SideRow {
                entry: Some(entries.len()),
                table: "flow_event_months",
                columns: &["entry_key", "month", "amount"],
                values: vec![
                    key.clone().into(),
                    month.to_string().into(),
                    SideValue::Int(part.get()),
                ],
            });
        }
        entries.push(transfer(
            key,
            request.date,
            county,
            program.code(),
            format!("拨付 {} {}..{}", request.document, request.from, request.to),
            AccountRef::new(unit.clone(), AccountKind::Held),
            AccountRef::new(county, AccountKind::Held),
            amount,
        ));
    }
    if request.dry_run || entries.is_empty() {
        return Ok(lines);
    }
    let outcomes = store
        .post_with(&entries, BatchMode::AllOrNothing, &side)
        .await?;
    let mut posted = outcomes.into_iter();
    for line in lines.iter_mut().filter(|l| l.amount.is_positive()) {
        line.outcome = posted.next();
    }
    Ok(lines)
}

/// 结余退回: a unit returns unspent funds to its county finance, or county finance returns funds to
/// the level that released them (county held → that level's `returned`).
pub async fn return_funds(
    store: &Store,
    program: &Program,
    from: &str,
    to_level: Option<Level>,
    amount: Fen,
    document: &str,
    date: NaiveDate,
) -> Result<Outcome, StoreError> {
    if !amount.is_positive() {
        return Err(StoreError::Invalid(
            "the amount to return must be positive".into(),
        ));
    }
    let regions = store.regions().await?;
    let units: HashMap<String, String> = store
        .units()
        .await?
        .into_iter()
        .map(|u| (u.code, u.county))
        .collect();
    let (county, to, from_ref, to_ref, level) = if let Some(county) = units.get(from) {
        if to_level.is_some() {
            return Err(StoreError::Invalid(
                "a unit returns funds to its county finance: leave out --to".into(),
            ));
        }
        (
            county.clone(),
            county.clone(),
            AccountRef::new(from, AccountKind::Held),
            AccountRef::new(county.clone(), AccountKind::Held),
            None,
        )
    } else if regions.get(from).is_some_and(|r| r.county_role) {
        let level = to_level.ok_or_else(|| {
            StoreError::Invalid(
                "county finance returns funds upward: give --to province or --to city".into(),
            )
        })?;
        let owner = level
            .owner(&regions, from)
            .filter(|o| o != from || level == Level::City)
            .ok_or_else(|| {
                StoreError::Invalid(format!("{from} has no {} to return to", level.code()))
            })?;
        (
            from.to_string(),
            owner.clone(),
            AccountRef::new(from, AccountKind::Held),
            AccountRef::new(owner, AccountKind::Returned),
            Some(level.code()),
        )
    } else {
        return Err(StoreError::Invalid(format!(
            "{from} is neither a registered unit nor a county"
        )));
    };
    let key = format!("return:{document}:{from}");
    let side = [event_row(
        0,
        &key,
        "return",
        program.code(),
        &county,
        level,
        from,
        &to,
        document,
        date,
        amount,
        None,
        None,
    )];
    let entry = transfer(
        key,
        date,
        &county,
        program.code(),
        format!("结余退回 {document}"),
        to_ref,
        from_ref,
        amount,
    );
    let mut outcomes = store
        .post_with(&[entry], BatchMode::AllOrNothing, &side)
        .await?;
    Ok(outcomes.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id_number::make_id;
    use crate::roster::RosterEntry;
    use crate::store::Unit;

    fn teacher(county: &str, n: u16, unit: Option<&str>) -> (u64, RosterEntry) {
        let birth = NaiveDate::from_ymd_opt(1950, 3, 1).expect("date");
        let id = make_id(county, birth, n);
        (
            u64::from(n),
            RosterEntry {
                semesters: Some(40),
                unit: unit.map(str::to_string),
                bank_account: Some(format!("6222020000000000{n:03}")),
                ..RosterEntry::new("MBDK", &id, format!("教师{n}"), county)
            },
        )
    }

    /// One pricing of the whole roster gives what `county_needs` and each county's `unit_needs`
    /// give, and a county with an owed person lacking a unit carries `unit_needs`' refusal.
    #[tokio::test]
    async fn period_needs_are_the_county_and_unit_needs_of_one_pricing() {
        let (store, _dir) = crate::store::temp_sqlite().await;
        store.init().await.expect("init");
        let program = store.program("MBDK").await.expect("MBDK");
        let unit = |code: &str, county: &str| Unit {
            code: code.into(),
            name: format!("{code} 教育局"),
            county: county.into(),
            township: None,
            kind: "education_bureau".into(),
        };
        store
            .register_units(&[
                unit("E1", "440511"),
                unit("E2", "440511"),
                unit("E3", "441900"),
            ])
            .await
            .expect("units");
        let roster = vec![
            teacher("440511", 1, Some("E1")),
            teacher("440511", 2, Some("E2")),
            teacher("440511", 3, Some("E2")),
            teacher("441900", 4, Some("E3")),
            teacher("440513", 5, None),
        ];
        store
            .roster_import("MBDK", &roster, false)
            .await
            .expect("roster");
        let (from, to): (YearMonth, YearMonth) = (
            "2025-01".parse().expect("month"),
            "2025-06".parse().expect("month"),
        );
        let period = period_needs(&store, &program, from, to)
            .await
            .expect("priced");
        let counties = county_needs(&store, &program, from, to, None)
            .await
            .expect("county needs");
        assert_eq!(period.counties, counties);
        assert_eq!(period.counties["440511"].persons, 3);
        for county in ["440511", "441900"] {
            let units = unit_needs(&store, &program, county, from, to)
                .await
                .expect("unit needs");
            assert_eq!(period.units[county].as_ref().expect("disbursable"), &units);
        }
        assert_eq!(period.units["440511"].as_ref().expect("E1, E2").len(), 2);
        let refused = unit_needs(&store, &program, "440513", from, to)
            .await
            .expect_err("no unit");
        assert_eq!(
            period.units["440513"].as_ref().expect_err("no unit"),
            &refused.to_string()
        );
    }
}
