//! Program, entitlement, annual-cycle and county-table commands.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::ExitCode;

use earmark::calendar::YearMonth;
use earmark::id_number::{IdNumber, Sex};
use earmark::input::Encoding;
use earmark::input::table::read_table;
use earmark::money::Fen;
use earmark::program::{Entitlement, Program, entitlements as compute, reaches_age};
use earmark::report::{Cell, Column, OutputFormat, Sheet};
use earmark::roster::cycle::{Stage, assess};
use earmark::roster::{RosterEntry, parse_date};
use earmark::store::{StageRecord, Store};

use super::commands::{Failure, today};
use super::{CycleCommand, EntitlementArgs, ProgramCommand, TableArgs, TableKind};

type Result<T> = std::result::Result<T, Failure>;

pub async fn program(store: &Store, command: ProgramCommand) -> Result<ExitCode> {
    match command {
        ProgramCommand::List => {
            println!("{:<10} {:<10} {:<10} 名称", "代码", "对象", "发放");
            for (code, _) in store.programs().await? {
                let p = store.program(&code).await?;
                println!(
                    "{:<12} {:<12} {:<12} {}",
                    p.code(),
                    p.beneficiary().as_str(),
                    schedule_word(&p),
                    p.name()
                );
            }
        }
        ProgramCommand::Show { code } => {
            print!(
                "{}",
                store.program(&code.to_ascii_uppercase()).await?.summary()
            );
        }
        ProgramCommand::Load { file } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Failure::trouble(format!("error: {}: cannot read: {e}", file.display()))
            })?;
            let program = store
                .load_program(&text, &file.display().to_string())
                .await?;
            println!("loaded program {} ({})", program.code(), program.name());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn schedule_word(p: &Program) -> &'static str {
    match p.payout_months().len() {
        12 => "monthly",
        _ => "semester",
    }
}

/// Computes the entitlements of everyone on a roster for a month range; any person the rules cannot
/// price (e.g. a city that set no rate) refuses the whole computation with one line per cause.
fn compute_all(
    program: &Program,
    people: &[RosterEntry],
    regions: &earmark::region::RegionTable,
    from: YearMonth,
    to: YearMonth,
) -> Result<Vec<(usize, Vec<Entitlement>)>> {
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
        Err(Failure::refused(
            causes
                .into_iter()
                .map(|(cause, n)| format!("refused: {cause} ({n} person(s))"))
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    }
}

pub async fn entitlements(store: &Store, args: EntitlementArgs) -> Result<ExitCode> {
    if args.from > args.to {
        return Err(Failure::refused(format!(
            "refused: --from {} is after --to {}",
            args.from, args.to
        )));
    }
    let code = args.program.to_ascii_uppercase();
    let program = store.program(&code).await?;
    let people = store.roster_entries(&code, args.county.as_deref()).await?;
    let regions = store.regions().await?;
    let columns = [
        "id_number",
        "month",
        "amount",
        "tier",
        "service_years",
        "province_share",
        "city_share",
        "county_share",
    ];
    if args.format == OutputFormat::Csv {
        // Streamed person by person: a province's 2.4 million person-months never sit in memory.
        // A file is written beside its name and renamed at the end, so a refusal leaves none.
        let partial = args.out.as_ref().map(|p| p.with_extension("partial"));
        let sink: Box<dyn Write> = match &partial {
            Some(path) => Box::new(
                std::fs::File::create(path)
                    .map_err(|e| Failure::trouble(format!("error: {}: {e}", path.display())))?,
            ),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut sink = std::io::BufWriter::with_capacity(1 << 20, sink);
        let io = |e: std::io::Error| Failure::trouble(format!("error: writing entitlements: {e}"));
        if args.out.is_some() {
            sink.write_all(b"\xEF\xBB\xBF").map_err(io)?;
        }
        writeln!(sink, "{}", columns.join(",")).map_err(io)?;
        let mut count = 0_usize;
        let mut causes: BTreeMap<String, usize> = BTreeMap::new();
        for person in &people {
            let rows = match compute(&program, &person.beneficiary(&regions), args.from, args.to) {
                Ok(rows) => rows,
                Err(e) => {
                    *causes.entry(e.to_string()).or_default() += 1;
                    continue;
                }
            };
            for e in &rows {
                writeln!(
                    sink,
                    "{},{},{},{},{},{},{},{}",
                    e.id_number,
                    e.month,
                    e.amount,
                    e.tier,
                    e.service_years.map(|y| y.to_string()).unwrap_or_default(),
                    e.province_share,
                    e.city_share,
                    e.county_share
                )
                .map_err(io)?;
                count += 1;
            }
        }
        sink.flush().map_err(io)?;
        drop(sink);
        if !causes.is_empty() {
            if let Some(path) = &partial {
                let _ = std::fs::remove_file(path);
            }
            return Err(Failure::refused(
                causes
                    .into_iter()
                    .map(|(cause, n)| format!("refused: {cause} ({n} person(s))"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ));
        }
        if let (Some(path), Some(tmp)) = (&args.out, &partial) {
            std::fs::rename(tmp, path)
                .map_err(|e| Failure::trouble(format!("error: {}: {e}", path.display())))?;
            println!(
                "wrote {count} entitlement rows for {} people to {}",
                people.len(),
                path.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let computed = compute_all(&program, &people, &regions, args.from, args.to)?;
    let mut sheet = Sheet::new(
        format!("{} 应发明细 {}..{}", program.name(), args.from, args.to),
        vec![
            Column::new("id_number", "身份证号"),
            Column::new("month", "月份"),
            Column::summed("amount", "应发金额"),
            Column::new("tier", "档次"),
            Column::new("service_years", "工作年限"),
            Column::summed("province_share", "省级负担"),
            Column::summed("city_share", "市级负担"),
            Column::summed("county_share", "县级负担"),
        ],
    );
    for (_, rows) in &computed {
        for e in rows {
            sheet.push(vec![
                e.id_number.clone().into(),
                e.month.to_string().into(),
                e.amount.into(),
                e.tier.clone().into(),
                e.service_years.map(i64::from).into(),
                e.province_share.into(),
                e.city_share.into(),
                e.county_share.into(),
            ]);
        }
    }
    if sheet.rows.len() > 1_000_000 && args.format == OutputFormat::Xlsx {
        return Err(Failure::refused(format!(
            "refused: {} rows do not fit in one Excel sheet: use --format csv, or --county",
            sheet.rows.len()
        )));
    }
    match &args.out {
        Some(path) => {
            sheet
                .write(args.format, path)
                .map_err(|e| Failure::trouble(format!("error: {}: {e}", path.display())))?;
            println!(
                "wrote {} entitlement rows to {}",
                sheet.rows.len(),
                path.display()
            );
        }
        None if args.format == OutputFormat::Json => println!("{}", sheet.to_json()),
        None if args.format == OutputFormat::Html => println!("{}", sheet.to_html()),
        None => return Err(Failure::refused("refused: --format xlsx needs --out FILE")),
    }
    Ok(ExitCode::SUCCESS)
}

fn masked(id: &str) -> String {
    IdNumber::parse(id).map(|i| i.masked()).unwrap_or_default()
}

pub async fn cycle(store: &Store, command: CycleCommand) -> Result<ExitCode> {
    match command {
        CycleCommand::Record {
            program,
            year,
            stage,
            file,
            id,
            date,
            actor,
        } => {
            let program = program.to_ascii_uppercase();
            store.program(&program).await?;
            let stage = Stage::parse(&stage).ok_or_else(|| {
                Failure::refused(format!(
                    "refused: --stage \"{stage}\" is not one of apply, township_review, county_review, notice, confirm, city_recheck"
                ))
            })?;
            let (records, source, mut errors) = match (file, id, date) {
                (Some(path), _, _) => {
                    let source = path.display().to_string();
                    let table = read_table(&path, Encoding::Auto)?;
                    let (Some(id_col), Some(date_col)) = (
                        table.column(&["id_number", "身份证号"]),
                        table.column(&["date", "日期"]),
                    ) else {
                        return Err(Failure::refused(format!(
                            "{source} row 1: the header must name id_number,date[,actor]"
                        )));
                    };
                    let actor_col = table.column(&["actor", "经办"]);
                    let mut records = Vec::new();
                    let mut errors = Vec::new();
                    for (row, cells) in &table.rows {
                        let get = |i: usize| cells.get(i).map(String::as_str).unwrap_or("");
                        let id = match IdNumber::parse(get(id_col)) {
                            Ok(id) => id,
                            Err(e) => {
                                errors.push(format!("{source} row {row}, column id_number: {e}"));
                                continue;
                            }
                        };
                        let Some(date) = parse_date(get(date_col)) else {
                            errors.push(format!(
                                "{source} row {row}, column date: \"{}\" is not a real date",
                                get(date_col)
                            ));
                            continue;
                        };
                        records.push((
                            *row,
                            StageRecord {
                                id_number: id.as_str().to_string(),
                                stage,
                                date,
                                actor: actor_col
                                    .map(|c| get(c).to_string())
                                    .unwrap_or_else(|| actor.clone()),
                            },
                        ));
                    }
                    (records, source, errors)
                }
                (None, Some(id), Some(date)) => {
                    let id = IdNumber::parse(&id)
                        .map_err(|e| Failure::refused(format!("refused: --id: {e}")))?;
                    (
                        vec![(
                            0,
                            StageRecord {
                                id_number: id.as_str().to_string(),
                                stage,
                                date,
                                actor,
                            },
                        )],
                        "--id".to_string(),
                        Vec::new(),
                    )
                }
                _ => {
                    return Err(Failure::refused(
                        "refused: give --file, or --id with --date",
                    ));
                }
            };
            if errors.is_empty() {
                let (added, refused) = store
                    .cycle_record(&program, year, &records, &source)
                    .await?;
                if refused.is_empty() {
                    println!(
                        "recorded {} for {added} person(s) ({} already recorded)",
                        stage.label_zh(),
                        records.len() - added
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                errors = refused;
            }
            errors.push(format!("{source}: refused, nothing was recorded"));
            Err(Failure::refused(errors.join("\n")))
        }
        CycleCommand::Status {
            program,
            year,
            county,
            as_of,
            all,
        } => {
            let code = program.to_ascii_uppercase();
            let program = store.program(&code).await?;
            let calendar = store.calendar().await?;
            let as_of = as_of.unwrap_or_else(today);
            let first_year = year == program.start_month().year;
            let progress = store.cycle_progress(&code, year).await?;
            let people = store.roster_entries(&code, county.as_deref()).await?;
            println!(
                "{} {year}年度工作进度 (as of {as_of}{})",
                program.name(),
                if first_year { ", first year" } else { "" }
            );
            println!(
                "身份证号(隐去)      姓名      县区    环节    状态          期限        完成日期    逾期天数  规则"
            );
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for person in &people {
                let recorded = progress.get(&person.id_number);
                if recorded.is_none() && !needs_cycle(&program, person, year, first_year) {
                    continue;
                }
                let default = Default::default();
                let statuses = assess(
                    &calendar,
                    year,
                    first_year,
                    recorded.unwrap_or(&default),
                    as_of,
                )
                .map_err(|e| Failure::refused(format!("refused: {e}")))?;
                for s in statuses {
                    *counts.entry(s.state).or_default() += 1;
                    if !all && matches!(s.state, "on_time" | "waiting") {
                        continue;
                    }
                    println!(
                        "{:<20} {:<8} {}  {:<6}  {:<12}  {:<10}  {:<10}  {:>6}  {}",
                        masked(&person.id_number),
                        person.name,
                        person.county,
                        s.stage.label_zh(),
                        s.state,
                        s.deadline.map(|d| d.to_string()).unwrap_or_default(),
                        s.done_on.map(|d| d.to_string()).unwrap_or_default(),
                        if s.days_late > 0 {
                            s.days_late.to_string()
                        } else {
                            String::new()
                        },
                        s.rule
                    );
                }
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            println!(
                "stages: {}",
                if summary.is_empty() {
                    "none due".into()
                } else {
                    summary.join(", ")
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Whether a person goes through `year`'s cycle: they reach the program's age that year (in the first
/// year: on or before the age cutoff), and are not excluded or dead before the year.
fn needs_cycle(program: &Program, person: &RosterEntry, year: i32, first_year: bool) -> bool {
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

pub async fn table(store: &Store, args: TableArgs) -> Result<ExitCode> {
    let code = args.program.to_ascii_uppercase();
    let program = store.program(&code).await?;
    let regions = store.regions().await?;
    let from = YearMonth {
        year: args.year,
        month: 1,
    };
    let to = YearMonth {
        year: args.year,
        month: 12,
    };
    let region_name = |c: &str| {
        regions
            .get(c)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| c.to_string())
    };
    let need_county = || {
        args.county
            .clone()
            .ok_or_else(|| Failure::refused("refused: this table is per county: give --county"))
    };
    let sheet = match args.kind {
        TableKind::Roster | TableKind::Summary | TableKind::Notice | TableKind::Changes => {
            let county = need_county()?;
            if !regions.get(&county).is_some_and(|r| r.county_role) {
                return Err(Failure::refused(format!(
                    "refused: --county {county} is not a county"
                )));
            }
            let people = store.roster_entries(&code, Some(&county)).await?;
            let computed = compute_all(&program, &people, &regions, from, to)?;
            let title_place = format!("{}（{}）", region_name(&county), county);
            match args.kind {
                TableKind::Roster => {
                    roster_table(&program, &people, &computed, &title_place, args.year)
                }
                TableKind::Summary => summary_table(&program, &computed, &title_place, args.year),
                TableKind::Notice => {
                    notice_table(&program, &people, &computed, &title_place, args.year)
                }
                _ => {
                    changes_table(store, &program, &people, &computed, &title_place, args.year)
                        .await?
                }
            }
        }
        TableKind::CitySummary => {
            let city = args.city.clone().ok_or_else(|| {
                Failure::refused("refused: the city summary (附件5) needs --city")
            })?;
            if regions
                .get(&city)
                .is_none_or(|r| r.level != earmark::region::Level::City)
            {
                return Err(Failure::refused(format!(
                    "refused: --city {city} is not a city"
                )));
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
                args.year,
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
    sheet
        .write(args.format, &args.out)
        .map_err(|e| Failure::trouble(format!("error: {}: {e}", args.out.display())))?;
    println!(
        "wrote {} ({} rows) to {}",
        sheet.title,
        sheet.rows.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
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
) -> Result<Sheet> {
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
