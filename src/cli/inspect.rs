//! Inspectors' commands: reports from reports/*.toml and traces.

use std::process::ExitCode;

use earmark::inspect;
use earmark::report::OutputFormat;
use earmark::store::Store;

use super::commands::{Failure, today};
use super::{ChecksCommand, ReportArgs, ScorecardArgs, SpotCheckArgs, TraceArgs};

fn write_sheet(
    sheet: &earmark::report::Sheet,
    format: OutputFormat,
    out: Option<&std::path::Path>,
) -> Result<(), Failure> {
    match (out, format) {
        (Some(path), _) => {
            sheet
                .write(format, path)
                .map_err(|e| Failure::trouble(format!("error: {}: {e}", path.display())))?;
            println!(
                "wrote {} ({} rows) to {}",
                sheet.title,
                sheet.rows.len(),
                path.display()
            );
        }
        (None, OutputFormat::Json) => println!("{}", sheet.to_json()),
        (None, OutputFormat::Html) => println!("{}", sheet.to_html()),
        (None, OutputFormat::Csv) => {
            let mut out = std::io::stdout().lock();
            sheet
                .write_csv(&mut out)
                .map_err(|e| Failure::trouble(format!("error: {e}")))?;
        }
        (None, OutputFormat::Xlsx) => {
            return Err(Failure::refused("refused: --format xlsx needs --out FILE"));
        }
    }
    Ok(())
}

pub async fn report(store: &Store, args: ReportArgs) -> Result<ExitCode, Failure> {
    if args.name == "list" {
        for d in inspect::definitions() {
            let params: Vec<String> = d
                .params
                .iter()
                .map(|p| {
                    if p.required {
                        p.name.clone()
                    } else {
                        format!("[{}]", p.name)
                    }
                })
                .collect();
            println!(
                "{:<24} {}  {}  params: {}",
                d.name,
                d.title,
                d.title_en,
                params.join(" ")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let def = inspect::find(&args.name)?;
    let params: Vec<(String, String)> = args
        .params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| Failure::refused(format!("refused: --param {p}: write NAME=VALUE")))
        })
        .collect::<Result<_, _>>()?;
    let sheet = inspect::run(store, &def, &params).await?;
    write_sheet(&sheet, args.format, args.out.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

pub async fn trace(store: &Store, args: TraceArgs) -> Result<ExitCode, Failure> {
    let trace = match (&args.person, &args.entry) {
        (Some(id), _) => inspect::trace_person(store, id, args.full).await?,
        (None, Some(key)) => inspect::trace_entry(store, key, args.full).await?,
        (None, None) => return Err(Failure::refused("refused: give --person ID or --entry KEY")),
    };
    match args.format {
        None => print!("{}", trace.to_text()),
        Some(OutputFormat::Json) if args.out.is_none() => println!("{}", trace.to_json()),
        Some(format) => write_sheet(&trace.to_sheet(), format, args.out.as_deref())?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn spot_check(store: &Store, args: SpotCheckArgs) -> Result<ExitCode, Failure> {
    use earmark::inspect::workpaper;
    let check = workpaper::spot_check(
        store,
        workpaper::SpotCheckRequest {
            program: args.program.to_ascii_uppercase(),
            county: args.county,
            from: args.period.from,
            to: args.period.to,
            method: args.method,
            size: args.size,
            confidence: args.confidence,
            tolerable: args.tolerable,
            seed: args.seed,
        },
    )
    .await?;
    workpaper::write_workpaper(&check, &args.out)?;
    println!(
        "spot check {} {}..{} ({:?}, seed {}): {} of {} payments sampled, {} failed a check; workpaper {}",
        check.request.program,
        check.request.from,
        check.request.to,
        check.request.method,
        check.request.seed,
        check.items.len(),
        check.sample.population_count,
        check.failed(),
        args.out.display()
    );
    if let Some(rows) = &args.rows {
        write_sheet(
            &workpaper::sheet(&check, args.full_ids),
            args.format,
            Some(rows),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn checks(store: &Store, command: ChecksCommand) -> Result<ExitCode, Failure> {
    use earmark::inspect::checks;
    match command {
        ChecksCommand::Sweep {
            as_of,
            record,
            full_ids,
            format,
            out,
        } => {
            let findings = checks::sweep(store, as_of).await?;
            let sheet = checks::findings_sheet(&findings, as_of, full_ids);
            match format {
                Some(f) => write_sheet(&sheet, f, out.as_deref())?,
                None => {
                    for row in &sheet.rows {
                        println!(
                            "{}",
                            row.iter()
                                .map(|c| c.display())
                                .collect::<Vec<_>>()
                                .join("  ")
                        );
                    }
                }
            }
            let added = if record {
                checks::record(store, &findings, as_of).await?
            } else {
                0
            };
            println!(
                "{} finding(s){}",
                findings.len(),
                if record {
                    format!("; {added} new recorded")
                } else {
                    String::new()
                }
            );
        }
        ChecksCommand::List {
            as_of,
            full_ids,
            format,
            out,
        } => {
            let recorded = checks::list(store, as_of).await?;
            let sheet = checks::list_sheet(&recorded, as_of, full_ids);
            match format {
                Some(f) => write_sheet(&sheet, f, out.as_deref())?,
                None => {
                    for row in &sheet.rows {
                        println!(
                            "{}",
                            row.iter()
                                .map(|c| c.display())
                                .collect::<Vec<_>>()
                                .join("  ")
                        );
                    }
                    println!("{} finding(s)", recorded.len());
                }
            }
        }
        ChecksCommand::Rule {
            id,
            disposition,
            violation_type,
            amount,
            rectify_by,
            ruled_by,
            date,
        } => {
            let amount =
                earmark::money::parse_amount(&amount, earmark::money::SignRule::NonNegative)
                    .map_err(|e| Failure::refused(format!("refused: --amount: {e}")))?;
            checks::rule(
                store,
                id,
                &checks::Ruling {
                    disposition,
                    violation_type,
                    amount_to_recover: amount,
                    rectify_by,
                    ruled_by,
                    ruled_at: date.unwrap_or_else(today),
                },
            )
            .await?;
            println!("finding {id} ruled");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn scorecard(store: &Store, args: ScorecardArgs) -> Result<ExitCode, Failure> {
    let sheet = earmark::inspect::checks::scorecard(store, args.as_of).await?;
    write_sheet(&sheet, args.format, args.out.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
