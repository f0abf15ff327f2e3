//! Program, entitlement, annual-cycle and county-table commands.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use earmark::id_number::IdNumber;
use earmark::input::Encoding;
use earmark::input::table::read_table;
use earmark::program::tables::{compute_all, needs_cycle};
use earmark::program::{Program, entitlements as compute};
use earmark::report::{Column, OutputFormat, Sheet};
use earmark::roster::cycle::{Stage, assess};
use earmark::roster::parse_date;
use earmark::store::{StageRecord, Store};

use super::commands::{Failure, today};
use super::{CycleCommand, EntitlementArgs, ProgramCommand, TableArgs};

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

/// The county's and the city's tables: rendered by the report engine from `reports/table_*.toml`.
pub async fn table(store: &Store, args: TableArgs) -> Result<ExitCode> {
    let def = earmark::inspect::engine::find(args.kind.report())?;
    let mut params = vec![
        ("program".to_string(), args.program.clone()),
        ("year".to_string(), args.year.to_string()),
    ];
    let takes = |name: &str| def.params.iter().any(|p| p.name == name);
    match (&args.county, takes("county")) {
        (Some(c), true) => params.push(("county".into(), c.clone())),
        (None, true) => {
            return Err(Failure::refused(
                "refused: this table is per county: give --county",
            ));
        }
        (Some(_), false) => {
            return Err(Failure::refused(
                "refused: this table is per city: give --city, not --county",
            ));
        }
        (None, false) => {}
    }
    match (&args.city, takes("city")) {
        (Some(c), true) => params.push(("city".into(), c.clone())),
        (None, true) => {
            return Err(Failure::refused(
                "refused: the city summary (附件5) needs --city",
            ));
        }
        (Some(_), false) => {
            return Err(Failure::refused(
                "refused: this table is per county: give --county, not --city",
            ));
        }
        (None, false) => {}
    }
    let sheet = earmark::inspect::engine::run(store, &def, &params).await?;
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
