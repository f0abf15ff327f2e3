//! The county's and the city's tables of a program (名册表, 增减情况表, 人数汇总表, 附件5, 公示名单),
//! computed from the roster with the program's rules. They are report datasets: the definitions in
//! `reports/table_*.toml` give their titles, parameters and columns, and the report engine renders
//! them like every other report (CSV with BOM, XLSX, HTML, JSON).

use std::collections::{BTreeMap, HashMap};

use crate::calendar::YearMonth;
use crate::id_number::{IdNumber, Sex};
use crate::money::Fen;
use crate::program::{Entitlement, Program, entitlements as compute, reaches_age};
use crate::report::{Cell, Column, Sheet};
use crate::roster::RosterEntry;
use crate::store::{Store, StoreError};

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TableKind {
    /// 发放对象名册表 (county)
    Roster,
    /// 发放对象增减情况表 (county)
    Changes,
    /// 发放对象人数汇总表 (county)
    Summary,
    /// 附件5: 人数汇总表 over a city's counties
    CitySummary,
    /// 公示名单: names and masked ID numbers
    Notice,
}

impl TableKind {
    pub const ALL: [TableKind; 5] = [
        TableKind::Roster,
        TableKind::Changes,
        TableKind::Summary,
        TableKind::CitySummary,
        TableKind::Notice,
    ];

    /// The dataset's name in a report definition (`source = "table:roster"`).
    pub fn source(self) -> &'static str {
        match self {
            TableKind::Roster => "table:roster",
            TableKind::Changes => "table:changes",
            TableKind::Summary => "table:summary",
            TableKind::CitySummary => "table:city_summary",
            TableKind::Notice => "table:notice",
        }
    }

    /// The report that renders it.
    pub fn report(self) -> &'static str {
        match self {
            TableKind::Roster => "table_roster",
            TableKind::Changes => "table_changes",
            TableKind::Summary => "table_summary",
            TableKind::CitySummary => "table_city_summary",
            TableKind::Notice => "table_notice",
        }
    }

    pub fn from_source(source: &str) -> Option<TableKind> {
        TableKind::ALL.into_iter().find(|k| k.source() == source)
    }
}

/// Computes the entitlements of everyone on a roster for a month range; any person the rules cannot
/// price (e.g. a city that set no rate) refuses the whole computation with one line per cause.
pub fn compute_all(
    program: &Program,
    people: &[RosterEntry],
    regions: &crate::region::RegionTable,
    from: YearMonth,
    to: YearMonth,
) -> Result<Vec<(usize, Vec<Entitlement>)>, StoreError> {
    let mut out = Vec::with_capacity(people.len());
    let mut causes: BTreeMap<String, usize> = BTreeMap::new();
    for (i, person) in people.iter().enumerate() {
        match compute(program, &person.beneficiary(regions), from, to) {
            Ok(rows) => out.push((i, rows)),
            Err(e) => *causes.entry(e.to_string()).or_default() += 1,
        }
    }
    if causes.is_empty() {
        Ok(out)
    } else {
        Err(StoreError::Invalid(
            causes
                .into_iter()
                .map(|(cause, n)| format!("refused: {cause} ({n} person(s))"))
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    }
}

/// Whether a person goes through `year`'s cycle: they reach the program's age that year (in the first
/// year: on or before the age cutoff), and are not excluded or dead before the year.
pub fn needs_cycle(program: &Program, person: &RosterEntry, year: i32, first_year: bool) -> bool {
    let Some((men, women)) = program.eligibility().age else {
        return false;
    };
    if person.exclusion.is_some()
        || person
            .death_date
            .is_some_and(|d| d.format("%Y").to_string().parse::<i32>().unwrap_or(0) < year)
    {
        return false;
    }
    let age = if person.sex == Sex::Male { men } else { women };
    let reached = reaches_age(person.birth_date, age);
    if first_year {
        reached <= program.age_cutoff()
    } else {
        reached.format("%Y").to_string().parse::<i32>().ok() == Some(year)
    }
}

/// A person newly on the payroll in `year`: reaching the age that year (age programs), or first
/// enrolled that year (child and student programs).
fn is_new(program: &Program, person: &RosterEntry, year: i32) -> bool {
    if program.eligibility().age.is_some() {
        needs_cycle(program, person, year, year == program.start_month().year)
    } else {
        person.enrolled_from.is_some_and(|m| m.year == year)
    }
}

pub async fn build(
    store: &Store,
    kind: TableKind,
    program: &str,
    county: Option<&str>,
    city: Option<&str>,
    year: i32,
) -> Result<Sheet, StoreError> {
    let code = program.to_ascii_uppercase();
    let program = store.program(&code).await?;
    let regions = store.regions().await?;
    let from = YearMonth { year, month: 1 };
    let to = YearMonth { year, month: 12 };
    let region_name = |c: &str| {
        regions
            .get(c)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| c.to_string())
    };
    let need_county = || {
        county
            .map(str::to_string)
            .ok_or_else(|| StoreError::Invalid("this table is per county: give the county".into()))
    };
    let sheet = match kind {
        TableKind::Roster | TableKind::Summary | TableKind::Notice | TableKind::Changes => {
            let county = need_county()?;
            if !regions.get(&county).is_some_and(|r| r.county_role) {
                return Err(StoreError::Invalid(format!("{county} is not a county")));
            }
            let people = store.roster_entries(&code, Some(&county)).await?;
            let computed = compute_all(&program, &people, &regions, from, to)?;
            let title_place = format!("{}（{}）", region_name(&county), county);
            match kind {
                TableKind::Roster => roster_table(&program, &people, &computed, &title_place, year),
                TableKind::Summary => summary_table(&program, &computed, &title_place, year),
                TableKind::Notice => notice_table(&program, &people, &computed, &title_place, year),
                _ => changes_table(store, &program, &people, &computed, &title_place, year).await?,
            }
        }
        TableKind::CitySummary => {
            let city = city.map(str::to_string).ok_or_else(|| {
                StoreError::Invalid("the city summary (附件5) needs the city".into())
            })?;
            if regions
                .get(&city)
                .is_none_or(|r| r.level != crate::region::Level::City)
            {
                return Err(StoreError::Invalid(format!("{city} is not a city")));
            }
            let counties: Vec<String> = regions
                .counties()
                .filter(|c| regions.city_of(&c.code).is_some_and(|x| x.code == city))
                .map(|c| c.code.clone())
                .collect();
            let mut sheet = Sheet::new(
                format!(
                    "{}原民办代课教师生活困难补助发放对象人数汇总表（附件5）",
                    region_name(&city)
                ),
                vec![
                    Column::new("county_code", "县区代码"),
                    Column::new("county", "县（市、区）"),
                    Column::summed("tier_30", "30年及以上"),
                    Column::summed("tier_20", "20-29年"),
                    Column::summed("tier_10", "10-19年"),
                    Column::summed("tier_1", "1-9年"),
                    Column::summed("persons", "合计人数"),
                    Column::summed("amount", "年度应发金额"),
                    Column::summed("province_share", "省级负担"),
                    Column::summed("city_share", "市级负担"),
                    Column::summed("county_share", "县级负担"),
                ],
            );
            sheet.subtitle.push(format!(
                "{} {}年度 · 项目 {}",
                program.name(),
                year,
                program.code()
            ));
            for county in &counties {
                let people = store.roster_entries(&code, Some(county)).await?;
                let computed = compute_all(&program, &people, &regions, from, to)?;
                let mut tiers = [0_i64; 4];
                let (mut persons, mut amount, mut p, mut c, mut k) =
                    (0_i64, Fen::ZERO, Fen::ZERO, Fen::ZERO, Fen::ZERO);
                for (_, rows) in &computed {
                    let Some(last) = rows.last() else { continue };
                    persons += 1;
                    let years = last.service_years.unwrap_or(0);
                    tiers[match years {
                        30.. => 0,
                        20..=29 => 1,
                        10..=19 => 2,
                        _ => 3,
                    }] += 1;
                    for e in rows {
                        amount = add(amount, e.amount);
                        p = add(p, e.province_share);
                        c = add(c, e.city_share);
                        k = add(k, e.county_share);
                    }
                }
                sheet.push(vec![
                    county.clone().into(),
                    region_name(county).into(),
                    tiers[0].into(),
                    tiers[1].into(),
                    tiers[2].into(),
                    tiers[3].into(),
                    persons.into(),
                    amount.into(),
                    p.into(),
                    c.into(),
                    k.into(),
                ]);
            }
            sheet
        }
    };
    Ok(sheet)
}

fn add(a: Fen, b: Fen) -> Fen {
    a.checked_add(b).expect("a year's subsidies fit in i64 fen")
}

fn roster_table(
    program: &Program,
    people: &[RosterEntry],
    computed: &[(usize, Vec<Entitlement>)],
    place: &str,
    year: i32,
) -> Sheet {
    let mut sheet = Sheet::new(
        format!("{place}{}发放对象名册表", program.name()),
        vec![
            Column::new("no", "序号"),
            Column::new("name", "姓名"),
            Column::new("id_number", "身份证号"),
            Column::new("sex", "性别"),
            Column::new("birth_date", "出生日期"),
            Column::new("service_years", "工作年限"),
            Column::new("tier", "补助档次"),
            Column::new("monthly_amount", "月补助标准"),
            Column::new("start_month", "起发月份"),
            Column::summed("months", "本年月数"),
            Column::summed("amount", "本年应发金额"),
            Column::new("unit", "发放单位"),
        ],
    );
    sheet
        .subtitle
        .push(format!("{year}年度 · 项目 {}", program.code()));
    let mut no = 0;
    for (i, rows) in computed {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            continue;
        };
        let person = &people[*i];
        no += 1;
        let total = rows.iter().fold(Fen::ZERO, |a, e| add(a, e.amount));
        sheet.push(vec![
            Cell::Int(no),
            person.name.clone().into(),
            person.id_number.clone().into(),
            person.sex.label_zh().into(),
            person.birth_date.into(),
            last.service_years.map(i64::from).into(),
            last.tier.clone().into(),
            last.amount.into(),
            first.month.to_string().into(),
            (rows.len() as i64).into(),
            total.into(),
            person.unit.clone().into(),
        ]);
    }
    sheet
}

fn summary_table(
    program: &Program,
    computed: &[(usize, Vec<Entitlement>)],
    place: &str,
    year: i32,
) -> Sheet {
    let mut by_tier: BTreeMap<String, (i64, Fen, Fen, Fen, Fen, Fen)> = BTreeMap::new();
    for (_, rows) in computed {
        let Some(last) = rows.last() else { continue };
        let slot = by_tier.entry(last.tier.clone()).or_default();
        slot.0 += 1;
        slot.1 = last.amount;
        for e in rows {
            slot.2 = add(slot.2, e.amount);
            slot.3 = add(slot.3, e.province_share);
            slot.4 = add(slot.4, e.city_share);
            slot.5 = add(slot.5, e.county_share);
        }
    }
    let mut sheet = Sheet::new(
        format!("{place}{}发放对象人数汇总表", program.name()),
        vec![
            Column::new("tier", "补助档次"),
            Column::summed("persons", "人数"),
            Column::new("monthly_amount", "补助标准"),
            Column::summed("amount", "年度应发金额"),
            Column::summed("province_share", "省级负担"),
            Column::summed("city_share", "市级负担"),
            Column::summed("county_share", "县级负担"),
        ],
    );
    sheet
        .subtitle
        .push(format!("{year}年度 · 项目 {}", program.code()));
    for (tier, (n, rate, amount, p, c, k)) in by_tier.into_iter().rev() {
        sheet.push(vec![
            tier.into(),
            n.into(),
            rate.into(),
            amount.into(),
            p.into(),
            c.into(),
            k.into(),
        ]);
    }
    sheet
}

fn notice_table(
    program: &Program,
    people: &[RosterEntry],
    computed: &[(usize, Vec<Entitlement>)],
    place: &str,
    year: i32,
) -> Sheet {
    let mut sheet = Sheet::new(
        format!("{place}{}公示名单", program.name()),
        vec![
            Column::new("no", "序号"),
            Column::new("name", "姓名"),
            Column::new("sex", "性别"),
            Column::new("id_number", "身份证号"),
            Column::new("service_years", "工作年限"),
            Column::new("monthly_amount", "月补助标准"),
            Column::new("township", "乡镇（街道）"),
        ],
    );
    sheet.subtitle.push(format!(
        "{year}年度新增发放对象（公示期5个工作日）· 身份证号已隐去中间8位"
    ));
    let mut no = 0;
    for (i, rows) in computed {
        // New this year: those who went through this year's cycle (reached the age this year).
        let person = &people[*i];
        if rows.is_empty() || !is_new(program, person, year) {
            continue;
        }
        let last = rows.last().expect("non-empty");
        no += 1;
        sheet.push(vec![
            Cell::Int(no),
            person.name.clone().into(),
            person.sex.label_zh().into(),
            masked(&person.id_number).into(),
            last.service_years.map(i64::from).into(),
            last.amount.into(),
            person.township.clone().into(),
        ]);
    }
    sheet
}

async fn changes_table(
    store: &Store,
    program: &Program,
    people: &[RosterEntry],
    computed: &[(usize, Vec<Entitlement>)],
    place: &str,
    year: i32,
) -> Result<Sheet, StoreError> {
    let mut sheet = Sheet::new(
        format!("{place}{}发放对象增减情况表", program.name()),
        vec![
            Column::new("change", "增减"),
            Column::new("name", "姓名"),
            Column::new("id_number", "身份证号"),
            Column::new("reason", "原因"),
            Column::new("date", "日期"),
            Column::new("from_month", "起止月份"),
            Column::new("monthly_amount", "月补助标准"),
        ],
    );
    sheet
        .subtitle
        .push(format!("{year}年度 · 项目 {}", program.code()));
    let start_of_year = YearMonth { year, month: 1 };
    let by_index: HashMap<usize, &Vec<Entitlement>> =
        computed.iter().map(|(i, r)| (*i, r)).collect();
    // 增: newly owed this year (reaching the age), not carried over from December.
    for (i, person) in people.iter().enumerate() {
        let Some(rows) = by_index.get(&i) else {
            continue;
        };
        let Some(first) = rows.first() else { continue };
        if is_new(program, person, year) {
            sheet.push(vec![
                "增".into(),
                person.name.clone().into(),
                person.id_number.clone().into(),
                "达到年龄条件".into(),
                Cell::Empty,
                first.month.to_string().into(),
                first.amount.into(),
            ]);
        }
    }
    // 减: deaths, leaving and employment dated in this year.
    let from_day = start_of_year.first_day();
    let to_day = YearMonth { year, month: 12 }.last_day();
    let names: HashMap<&str, &RosterEntry> =
        people.iter().map(|p| (p.id_number.as_str(), p)).collect();
    for (id, kind, date, detail) in store
        .roster_events(program.code(), from_day, to_day)
        .await?
    {
        let Some(person) = names.get(id.as_str()) else {
            continue;
        };
        let reason = match kind.as_str() {
            "death" => format!("去世（{detail}）"),
            "employment" => format!("被录用为编制内人员（{detail}）"),
            "left" => match detail.as_str() {
                "death" => "去世".to_string(),
                "disqualified" => "取消资格".to_string(),
                "transfer" => "迁出".to_string(),
                other => other.to_string(),
            },
            _ => continue,
        };
        sheet.push(vec![
            "减".into(),
            person.name.clone().into(),
            person.id_number.clone().into(),
            reason.into(),
            date.into(),
            YearMonth::of(date).to_string().into(),
            Cell::Empty,
        ]);
    }
    Ok(sheet)
}

fn masked(id: &str) -> String {
    IdNumber::parse(id).map(|i| i.masked()).unwrap_or_default()
}
