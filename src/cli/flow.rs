//! The money's journey on the command line: allocate, match, disburse, payout, return, recover,
//! deadlines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use earmark::flow::{self, Level, TransferLine};
use earmark::input::Encoding;
use earmark::input::table::read_table;
use earmark::money::{Fen, SignRule, parse_amount};
use earmark::store::{Outcome, Store};

use super::commands::{Failure, today};
use super::{AllocateArgs, DisburseArgs, MatchArgs, PayoutCommand, RecoverCommand, ReturnArgs};

type Result<T> = std::result::Result<T, Failure>;

/// A CSV of `code,amount` (county_code or unit_code): every row checked, amounts positive.
fn read_amounts(path: &Path, code_names: &[&str]) -> Result<HashMap<String, Fen>> {
    let file = path.display().to_string();
    let table = read_table(path, Encoding::Auto)?;
    let (Some(code_col), Some(amount_col)) =
        (table.column(code_names), table.column(&["amount", "金额"]))
    else {
        return Err(Failure::refused(format!(
            "{file} row 1: the header must be {},amount",
            code_names[0]
        )));
    };
    let mut amounts = HashMap::new();
    let mut errors = Vec::new();
    for (row, cells) in &table.rows {
        let code = cells
            .get(code_col)
            .cloned()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match parse_amount(
            cells.get(amount_col).map(String::as_str).unwrap_or(""),
            SignRule::Positive,
        ) {
            Ok(amount) => {
                if amounts.insert(code.clone(), amount).is_some() {
                    errors.push(format!(
                        "{file} row {row}, column {}: {code} is listed twice",
                        code_names[0]
                    ));
                }
            }
            Err(e) => errors.push(format!("{file} row {row}, column amount: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(amounts)
    } else {
        errors.push(format!("{file}: refused, nothing was posted"));
        Err(Failure::refused(errors.join("\n")))
    }
}

fn print_lines(title: &str, lines: &[TransferLine], dry_run: bool) {
    println!(
        "{title}{}",
        if dry_run {
            " (dry run: nothing posted)"
        } else {
            ""
        }
    );
    println!(
        "{:<10} {:<14} {:>8} {:>10} {:>18} {:>18}  结果",
        "县区", "收款方", "人数", "人月", "测算(元)", "金额(元)"
    );
    let mut total = Fen::ZERO;
    let mut computed = Fen::ZERO;
    for l in lines {
        total = total.checked_add(l.amount).unwrap_or(total);
        computed = computed.checked_add(l.computed).unwrap_or(computed);
        let outcome = match &l.outcome {
            Some(Outcome::Posted { seq, .. }) => format!("posted #{seq}"),
            Some(Outcome::AlreadyPosted { seq, .. }) => format!("already posted #{seq}"),
            Some(Outcome::Refused(e)) => format!("refused: {e}"),
            None if l.amount.is_zero() => "nothing to post".into(),
            None => String::new(),
        };
        let flag = match l.warning() {
            Some(w) => format!(" ≠测算 {w}"),
            None if l.amount != l.computed => " ≠测算".to_string(),
            None => String::new(),
        };
        println!(
            "{:<10} {:<16} {:>8} {:>10} {:>20} {:>20}  {outcome}{flag}",
            l.county,
            l.to,
            l.persons,
            l.person_months,
            l.computed.grouped(),
            l.amount.grouped()
        );
    }
    println!(
        "合计 total: computed {} · amount {} · {} line(s)",
        computed.grouped(),
        total.grouped(),
        lines.len()
    );
}

#[allow(clippy::too_many_arguments)]
async fn release(
    store: &Store,
    program: &str,
    level: Level,
    document: &str,
    date: chrono::NaiveDate,
    covers: super::Covers,
    county: Option<String>,
    amounts: Option<std::path::PathBuf>,
    dry_run: bool,
) -> Result<ExitCode> {
    let program = store.program(&program.to_ascii_uppercase()).await?;
    let amounts = match amounts {
        Some(path) => Some(read_amounts(&path, &["county_code", "县区代码"])?),
        None => None,
    };
    let lines = flow::allocate(
        store,
        flow::AllocateRequest {
            program: &program,
            level,
            document,
            date,
            from: covers.from,
            to: covers.to,
            county: county.as_deref(),
            amounts,
            dry_run,
        },
    )
    .await
    .map_err(refusal)?;
    print_lines(
        &format!(
            "{} {}{} {document} ({}..{})",
            program.name(),
            level.label_zh(),
            if level == Level::County {
                "配套"
            } else {
                "下达"
            },
            covers.from,
            covers.to
        ),
        &lines,
        dry_run,
    );
    Ok(ExitCode::SUCCESS)
}

fn refusal(e: earmark::store::StoreError) -> Failure {
    Failure::from(e)
}

pub async fn allocate(store: &Store, args: AllocateArgs) -> Result<ExitCode> {
    if args.level == Level::County {
        return Err(Failure::refused(
            "refused: the county's own share is posted with `earmark match`",
        ));
    }
    release(
        store,
        &args.program,
        args.level,
        &args.document,
        args.date,
        args.covers,
        args.county,
        args.amounts,
        args.dry_run,
    )
    .await
}

pub async fn matching(store: &Store, args: MatchArgs) -> Result<ExitCode> {
    release(
        store,
        &args.program,
        Level::County,
        &args.document,
        args.date,
        args.covers,
        args.county,
        args.amounts,
        args.dry_run,
    )
    .await
}

pub async fn disburse(store: &Store, args: DisburseArgs) -> Result<ExitCode> {
    let program = store.program(&args.program.to_ascii_uppercase()).await?;
    let amounts = match &args.amounts {
        Some(path) => Some(read_amounts(path, &["unit_code", "发放单位代码"])?),
        None => None,
    };
    let lines = flow::disburse(
        store,
        flow::DisburseRequest {
            program: &program,
            county: &args.county,
            document: &args.document,
            date: args.date,
            from: args.covers.from,
            to: args.covers.to,
            amounts,
            dry_run: args.dry_run,
        },
    )
    .await?;
    print_lines(
        &format!(
            "{} 拨付 {} {} ({}..{})",
            program.name(),
            args.county,
            args.document,
            args.covers.from,
            args.covers.to
        ),
        &lines,
        args.dry_run,
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn return_funds(store: &Store, args: ReturnArgs) -> Result<ExitCode> {
    let program = store.program(&args.program.to_ascii_uppercase()).await?;
    let amount = parse_amount(&args.amount, SignRule::Positive)
        .map_err(|e| Failure::refused(format!("refused: --amount: {e}")))?;
    let outcome = flow::return_funds(
        store,
        &program,
        &args.from.to_ascii_uppercase(),
        args.to,
        amount,
        &args.document,
        args.date,
    )
    .await?;
    match outcome {
        Outcome::Posted { county, seq } => println!(
            "returned {} from {}: county {county}, entry {seq}",
            amount.grouped(),
            args.from
        ),
        Outcome::AlreadyPosted { .. } => println!("this return was posted before: nothing changed"),
        Outcome::Refused(e) => {
            return Err(Failure::refused(format!("refused ({}): {e}", e.code())));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn payout(store: &Store, command: PayoutCommand) -> Result<ExitCode> {
    match command {
        PayoutCommand::Create {
            unit,
            program,
            month,
            date,
            format,
            out,
        } => {
            let program = store.program(&program.to_ascii_uppercase()).await?;
            let format = earmark::flow::bank::BankFormat::parse(&format)
                .map_err(|e| Failure::refused(format!("refused: --format: {e}")))?;
            std::fs::create_dir_all(&out)
                .map_err(|e| Failure::trouble(format!("error: {}: {e}", out.display())))?;
            let report = flow::payout::create(
                store,
                flow::payout::PayoutRequest {
                    program: &program,
                    unit: &unit.to_ascii_uppercase(),
                    month,
                    date: date.unwrap_or_else(today),
                    format,
                    out_dir: &out,
                    only: None,
                },
            )
            .await?;
            print_created(&report);
        }
        PayoutCommand::Retry {
            batch,
            date,
            format,
            out,
        } => {
            let format = earmark::flow::bank::BankFormat::parse(&format)
                .map_err(|e| Failure::refused(format!("refused: --format: {e}")))?;
            std::fs::create_dir_all(&out)
                .map_err(|e| Failure::trouble(format!("error: {}: {e}", out.display())))?;
            let report =
                flow::payout::retry(store, &batch, date.unwrap_or_else(today), format, &out)
                    .await?;
            print_created(&report);
        }
        PayoutCommand::Result { files, date } => {
            let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            let report =
                flow::payout::result_files(store, &files, date.unwrap_or_else(today)).await?;
            println!(
                "batch {}: {} paid, {} failed, {} already recorded",
                report.batch_id, report.paid, report.failed, report.already
            );
            for (line, code, reason) in &report.failures {
                println!(
                    "  line {line}: {code} {reason} — the money is back on the unit's funds; the person is still owed"
                );
            }
            for id in &report.deceased {
                println!(
                    "  {}: the bank reports the payee deceased — check against 公安户籍 / 卫健 data (earmark import deaths)",
                    earmark::id_number::IdNumber::parse(id)
                        .map(|i| i.masked())
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `payout create` and `payout retry` print of the batch they wrote.
fn print_created(report: &flow::payout::PayoutReport) {
    println!(
        "batch {}: {} line(s), total {} ({} retr{} of failed lines); bank file {}",
        report.batch_id,
        report.lines,
        report.total.grouped(),
        report.retries,
        if report.retries == 1 { "y" } else { "ies" },
        report.file.display()
    );
    println!(
        "every line is reserved on the unit's funds until the bank answers (earmark payout result FILE)"
    );
    if !report.screened.is_empty() {
        println!("screened out ({}):", report.screened.len());
        for hit in &report.screened {
            println!("  {}  {}  {}", hit.id_masked, hit.name, hit.describe());
        }
    }
    if !report.warnings.is_empty() {
        println!(
            "paid with a warning ({}), to check before the bank runs the file:",
            report.warnings.len()
        );
        for hit in &report.warnings {
            println!("  {}  {}  {}", hit.id_masked, hit.name, hit.describe());
        }
    }
}

pub async fn recover(store: &Store, command: RecoverCommand) -> Result<ExitCode> {
    match command {
        RecoverCommand::Scan { program, date } => {
            let program = store.program(&program.to_ascii_uppercase()).await?;
            let report = flow::payout::recover(store, &program, date.unwrap_or_else(today)).await?;
            println!("身份证号(隐去)        姓名      月份      金额(元)  原因");
            for (id, name, month, amount, reason) in &report.found {
                println!(
                    "{id:<22} {name:<8} {month}  {:>10}  {reason}",
                    amount.grouped()
                );
            }
            println!(
                "{} improper payment(s) found; {} newly booked as receivables, {} booked before",
                report.found.len(),
                report.posted,
                report.already
            );
        }
        RecoverCommand::Receive {
            program,
            id,
            unit,
            amount,
            document,
            date,
        } => {
            let program = store.program(&program.to_ascii_uppercase()).await?;
            let id = earmark::id_number::IdNumber::parse(&id)
                .map_err(|e| Failure::refused(format!("refused: --id: {e}")))?;
            let amount = parse_amount(&amount, SignRule::Positive)
                .map_err(|e| Failure::refused(format!("refused: --amount: {e}")))?;
            match flow::payout::receive(
                store,
                &program,
                id.as_str(),
                &unit.to_ascii_uppercase(),
                amount,
                &document,
                date,
            )
            .await?
            {
                Outcome::Posted { .. } => println!(
                    "recovered {} from {} into {unit}",
                    amount.grouped(),
                    id.masked()
                ),
                Outcome::AlreadyPosted { .. } => println!("recorded before: nothing changed"),
                Outcome::Refused(e) => {
                    return Err(Failure::refused(format!("refused ({}): {e}", e.code())));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn deadlines(store: &Store, args: super::DeadlineArgs) -> Result<ExitCode> {
    let report = flow::deadlines::report(
        store,
        args.as_of,
        args.county.as_deref(),
        args.program.as_deref(),
    )
    .await?;
    let sheet = flow::deadlines::sheet(&report, args.as_of, args.all);
    match (args.format, &args.out) {
        (Some(format), Some(out)) => {
            sheet
                .write(format, out)
                .map_err(|e| Failure::trouble(format!("error: {}: {e}", out.display())))?;
            println!(
                "wrote {} ({} rows) to {}",
                sheet.title,
                sheet.rows.len(),
                out.display()
            );
        }
        (Some(earmark::report::OutputFormat::Json), None) => println!("{}", sheet.to_json()),
        (Some(_), None) => {
            return Err(Failure::refused(
                "refused: --format needs --out FILE (or json)",
            ));
        }
        (None, _) => print!("{}", flow::deadlines::text(&report, args.as_of, args.all)),
    }
    Ok(ExitCode::SUCCESS)
}
