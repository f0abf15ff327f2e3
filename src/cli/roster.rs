//! The roster commands: import a registry, record deaths and employment, lock, leave, show.

use std::io::Write;
use std::process::ExitCode;

use earmark::id_number::IdNumber;
use earmark::input::table::read_table;
use earmark::roster::{parse_life_events, parse_roster};
use earmark::store::Store;

use super::commands::{Failure, note_encoding};
use super::{FileArgs, RosterCommand, RosterImportArgs};

type Result<T> = std::result::Result<T, Failure>;

/// The beneficiary kind of a program (teacher rosters need service semesters; child rosters a unit,
/// guardian and first semester).
async fn beneficiary_of(store: &Store, program: &str) -> Result<String> {
    let programs = store.programs().await?;
    if !programs.iter().any(|(code, _)| code == program) {
        return Err(Failure::refused(format!(
            "refused: unknown program \"{program}\" (earmark program list)"
        )));
    }
    Ok(store.program_beneficiary(program).await?)
}

pub async fn import_roster(store: &Store, args: RosterImportArgs) -> Result<ExitCode> {
    let program = args.program.to_ascii_uppercase();
    let beneficiary = beneficiary_of(store, &program).await?;
    let file = args.file.display().to_string();
    let table = read_table(&args.file, args.encoding)?;
    if let Some(read_as) = table.read_as {
        note_encoding(&args.file, read_as);
    }
    let regions = store.regions().await?;
    let units = store
        .units()
        .await?
        .into_iter()
        .map(|u| (u.code, u.county))
        .collect();
    let exclusions = store
        .program(&program)
        .await?
        .eligibility()
        .exclusions
        .clone();
    let parsed = parse_roster(
        &table,
        &file,
        &program,
        &beneficiary,
        &regions,
        &units,
        &exclusions,
    )
    .map_err(Failure::refused)?;
    let mut bad: Vec<(u64, Vec<String>, String)> = parsed
        .errors
        .iter()
        .map(|e| (e.row, e.cells.clone(), e.message.clone()))
        .collect();
    if !args.partial && !bad.is_empty() {
        let mut lines: Vec<String> = bad.into_iter().map(|(_, _, m)| m).collect();
        lines.push(format!(
            "{file}: refused, nothing was imported ({} bad rows)",
            lines.len()
        ));
        return Err(Failure::refused(lines.join("\n")));
    }
    let report = store
        .roster_import(&program, &parsed.entries, args.partial)
        .await?;
    for (row, message) in &report.refused {
        let cells = table
            .rows
            .iter()
            .find(|(r, _)| r == row)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        bad.push((*row, cells, format!("{file} row {row}: {message}")));
    }
    if !args.partial && !report.refused.is_empty() {
        let mut lines: Vec<String> = bad.into_iter().map(|(_, _, m)| m).collect();
        lines.push(format!("{file}: refused, nothing was imported"));
        return Err(Failure::refused(lines.join("\n")));
    }
    println!(
        "{file}: roster {program}: {} added, {} changed, {} unchanged",
        report.added, report.changed, report.unchanged
    );
    if !bad.is_empty() {
        bad.sort_by_key(|(row, _, _)| *row);
        let rejects = args
            .rejects
            .unwrap_or_else(|| args.file.with_extension("rejected.csv"));
        write_rejects(&rejects, &table.header, &bad)
            .map_err(|e| Failure::trouble(format!("error: {}: {e}", rejects.display())))?;
        for (_, _, message) in &bad {
            eprintln!("{message}");
        }
        eprintln!(
            "{file}: {} row(s) refused and written with their errors to {}",
            bad.len(),
            rejects.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_rejects(
    path: &std::path::Path,
    header: &[String],
    rows: &[(u64, Vec<String>, String)],
) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(b"\xEF\xBB\xBF")?;
    let mut writer = csv::Writer::from_writer(file);
    let mut head: Vec<String> = header.to_vec();
    head.push("row".into());
    head.push("error".into());
    writer.write_record(&head)?;
    for (row, cells, error) in rows {
        let mut record = cells.clone();
        record.resize(header.len(), String::new());
        record.push(row.to_string());
        record.push(error.clone());
        writer.write_record(&record)?;
    }
    writer.flush()
}

pub async fn import_events(store: &Store, args: FileArgs, deaths: bool) -> Result<ExitCode> {
    let file = args.file.display().to_string();
    let table = read_table(&args.file, args.encoding)?;
    if let Some(read_as) = table.read_as {
        note_encoding(&args.file, read_as);
    }
    let (events, mut errors) =
        parse_life_events(&table, &file, deaths).map_err(Failure::refused)?;
    if errors.is_empty() {
        let (applied, unknown) = store.record_life_events(&events, &file).await?;
        if unknown.is_empty() {
            println!(
                "{file}: {applied} {} recorded ({} already known)",
                if deaths { "deaths" } else { "employments" },
                events.len() - applied
            );
            return Ok(ExitCode::SUCCESS);
        }
        errors = unknown;
    }
    errors.push(format!("{file}: refused, nothing was recorded"));
    Err(Failure::refused(errors.join("\n")))
}

pub async fn roster(store: &Store, command: RosterCommand) -> Result<ExitCode> {
    match command {
        RosterCommand::Lock { program } => {
            let program = program.to_ascii_uppercase();
            beneficiary_of(store, &program).await?;
            if store.roster_lock(&program).await? {
                println!(
                    "roster {program} locked (只减不增): nobody can be added and service years are fixed"
                );
            } else {
                println!("roster {program} was locked already: nothing changed");
            }
        }
        RosterCommand::Leave {
            program,
            id,
            date,
            reason,
        } => {
            let program = program.to_ascii_uppercase();
            let id = IdNumber::parse(&id)
                .map_err(|e| Failure::refused(format!("refused: --id: {e}")))?;
            store
                .roster_leave(&program, id.as_str(), date, &reason)
                .await?;
            println!(
                "{} leaves roster {program} from {date} ({reason})",
                id.masked()
            );
        }
        RosterCommand::Show { program, county } => {
            let program = program.to_ascii_uppercase();
            let entries = store.roster_entries(&program, county.as_deref()).await?;
            println!(
                "身份证号(隐去)          姓名      性别  出生日期    学期  县区    发放单位      状态"
            );
            for e in &entries {
                let status = match (&e.exclusion, e.death_date, &e.left_reason) {
                    (Some(x), _, _) => format!("excluded: {x}"),
                    (_, Some(d), _) => format!("died {d}"),
                    (_, _, Some(r)) => format!("left: {r}"),
                    _ => String::new(),
                };
                println!(
                    "{:<22}  {:<8}  {:<4}  {}  {:>4}  {}  {:<12}  {}",
                    IdNumber::parse(&e.id_number)
                        .map(|i| i.masked())
                        .unwrap_or_default(),
                    e.name,
                    e.sex.label_zh(),
                    e.birth_date,
                    e.semesters.map(|s| s.to_string()).unwrap_or_default(),
                    e.county,
                    e.unit.clone().unwrap_or_default(),
                    status
                );
            }
            println!(
                "{} person(s); locked: {}",
                entries.len(),
                store.roster_is_locked(&program).await?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
