//! Inspectors' commands: reports from reports/*.toml and traces.

use std::process::ExitCode;

use earmark::inspect;
use earmark::report::OutputFormat;
use earmark::store::Store;

use super::commands::Failure;
use super::{ReportArgs, TraceArgs};

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
