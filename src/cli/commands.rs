//! What each subcommand does: open the store, call the library, print the result.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use earmark::input::{self, InputError, ReadAs, postings};
use earmark::ledger::{EntryKind, NewEntry};
use earmark::region::RegionTable;
use earmark::store::{BalanceFilter, BatchMode, Outcome, Store, StoreError, Unit};

use super::{Cli, Command, ExportCommand, Format, ImportCommand, PendingCommand};

/// A failure to report: one message (one line per problem) and the exit code.
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
    pub fn trouble(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 3,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::Database(_) | StoreError::Migrate(_) => {
                Failure::trouble(format!("error: {e}"))
            }
            StoreError::Ledger(error) | StoreError::Refused { error, .. } => Failure::refused(
                format!("refused ({}): {error}; nothing was written", error.code()),
            ),
            other => Failure::refused(format!("error: {other}")),
        }
    }
}

impl From<earmark::inspect::InspectError> for Failure {
    fn from(e: earmark::inspect::InspectError) -> Failure {
        use earmark::inspect::InspectError;
        match e {
            InspectError::Store(inner) => Failure::from(inner),
            InspectError::Database(_) => Failure::trouble(format!("error: {e}")),
            other => Failure::refused(format!("refused: {other}")),
        }
    }
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Failure {
        match e {
            InputError::Unreadable { .. } => Failure::trouble(format!("error: {e}")),
            other => Failure::refused(other.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

pub async fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Bench(args) = &cli.command {
        return super::bench::run(args).await.map(|_| ExitCode::SUCCESS);
    }
    let store = Store::open(&cli.db)
        .await
        .map_err(|e| Failure::trouble(format!("error: cannot open the ledger {}: {e}", cli.db)))?;
    if let Command::Serve(args) = cli.command {
        return super::serve::serve(store, args).await;
    }
    let result = dispatch(&store, cli.command).await;
    store.close().await;
    result
}

async fn dispatch(store: &Store, command: Command) -> Result<ExitCode> {
    if let Command::Demo(args) = command {
        return super::demo::run(store, args).await;
    }
    if !matches!(command, Command::Init) {
        store.require_initialised().await?;
    }
    match command {
        Command::Init => {
            let report = store.init().await?;
            println!(
                "initialised {}: {} regions, {} calendar days, {} programs added",
                store.url(),
                report.regions_added,
                report.calendar_days_added,
                report.programs_added
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(ImportCommand::Roster(args)) => {
            super::roster::import_roster(store, args).await
        }
        Command::Import(ImportCommand::Deaths(args)) => {
            super::roster::import_events(store, args, true).await
        }
        Command::Import(ImportCommand::Employment(args)) => {
            super::roster::import_events(store, args, false).await
        }
        Command::Import(what) => import(store, what).await,
        Command::Roster(command) => super::roster::roster(store, command).await,
        Command::Allocate(args) => super::flow::allocate(store, args).await,
        Command::Match(args) => super::flow::matching(store, args).await,
        Command::Disburse(args) => super::flow::disburse(store, args).await,
        Command::Payout(command) => super::flow::payout(store, command).await,
        Command::Return(args) => super::flow::return_funds(store, args).await,
        Command::Recover(command) => super::flow::recover(store, command).await,
        Command::Deadlines(args) => super::flow::deadlines(store, args).await,
        Command::Report(args) => super::inspect::report(store, args).await,
        Command::Trace(args) => super::inspect::trace(store, args).await,
        Command::SpotCheck(args) => super::inspect::spot_check(store, args).await,
        Command::Checks(command) => super::inspect::checks(store, command).await,
        Command::Scorecard(args) => super::inspect::scorecard(store, args).await,
        Command::Program(command) => super::program::program(store, command).await,
        Command::Entitlements(args) => super::program::entitlements(store, args).await,
        Command::Cycle(command) => super::program::cycle(store, command).await,
        Command::Table(args) => super::program::table(store, args).await,
        Command::Post(args) => post(store, args).await,
        Command::Pending(command) => {
            let (args, kind, prefix) = match command {
                PendingCommand::Post(a) => (a, EntryKind::Post, "post"),
                PendingCommand::Void(a) => (a, EntryKind::Void, "void"),
            };
            let entry = NewEntry {
                key: args
                    .key
                    .unwrap_or_else(|| format!("{prefix}:{}", args.entry_key)),
                date: args.date.unwrap_or_else(today),
                county: String::new(),
                program: String::new(),
                kind,
                memo: args.reason,
                postings: Vec::new(),
                refers_to: Some(args.entry_key),
            };
            report_single(store.post_one(entry).await?)
        }
        Command::Reverse(args) => {
            if args.reason.trim().is_empty() {
                return Err(Failure::refused("refused: a reversal needs a --reason"));
            }
            let entry = NewEntry {
                key: args
                    .key
                    .unwrap_or_else(|| format!("reverse:{}", args.entry_key)),
                date: args.date.unwrap_or_else(today),
                county: String::new(),
                program: String::new(),
                kind: EntryKind::Reversal,
                memo: args.reason,
                postings: Vec::new(),
                refers_to: Some(args.entry_key),
            };
            report_single(store.post_one(entry).await?)
        }
        Command::Balances(args) => {
            let rows = store
                .balances(&BalanceFilter {
                    county: args.county,
                    program: args.program.map(|p| p.to_ascii_uppercase()),
                    as_of: args.as_of,
                    include_zero: args.all,
                    ..Default::default()
                })
                .await?;
            print_balances(&rows, args.format)
                .map_err(|e| Failure::trouble(format!("error: {e}")))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let report = store.check().await?;
            println!(
                "checked {} entries, {} postings, {} accounts",
                report.entries, report.postings, report.accounts
            );
            if report.problems.is_empty() {
                println!(
                    "OK: every entry balances inside one program and county; balances equal their postings; no held account is overdrawn"
                );
                Ok(ExitCode::SUCCESS)
            } else {
                Err(Failure::refused(
                    report
                        .problems
                        .iter()
                        .map(|p| format!("check failed: {p}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ))
            }
        }
        Command::Verify => {
            let report = store.verify().await?;
            println!(
                "verified {} entries in {} county chains",
                report.entries, report.counties
            );
            if report.broken.is_empty() {
                for (county, seq, hash) in &report.heads {
                    println!("  {county}  entry {seq:>9}  {hash}");
                }
                println!("OK: no entry was altered after posting");
                Ok(ExitCode::SUCCESS)
            } else {
                Err(Failure::refused(
                    report
                        .broken
                        .iter()
                        .map(|b| format!("verify failed: {b}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ))
            }
        }
        Command::Export(ExportCommand::Ledger { out }) => {
            let file = std::fs::File::create(&out).map_err(|e| {
                Failure::trouble(format!("error: {}: cannot create: {e}", out.display()))
            })?;
            let mut writer = std::io::BufWriter::new(file);
            let count = store.export_journal(&mut writer).await?;
            writer
                .flush()
                .map_err(|e| Failure::trouble(format!("error: {}: {e}", out.display())))?;
            println!(
                "wrote {count} transactions to {} (hledger -f {} balance)",
                out.display(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::User(command) => super::serve::user(store, command).await,
        Command::Bench(_) | Command::Demo(_) | Command::Serve(_) => {
            unreachable!("handled before")
        }
    }
}

/// Today in China (UTC+8): the default business date of every command.
pub fn today() -> chrono::NaiveDate {
    // Business dates are China's calendar days: UTC+8.
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

fn report_single(outcome: Outcome) -> Result<ExitCode> {
    match outcome {
        Outcome::Posted { county, seq } => {
            println!("posted: county {county}, entry {seq}");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::AlreadyPosted { county, seq } => {
            println!("already posted as county {county}, entry {seq}: nothing changed");
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Refused(e) => Err(Failure::refused(format!("refused ({}): {e}", e.code()))),
    }
}

pub fn note_encoding(file: &Path, read_as: ReadAs) {
    if read_as == ReadAs::Gbk {
        eprintln!("note: {} was read as GBK (GB18030) text", file.display());
    }
}

async fn import(store: &Store, what: ImportCommand) -> Result<ExitCode> {
    match what {
        ImportCommand::Regions(args) => {
            let (text, read_as) = input::read_text(&args.file, args.encoding)?;
            note_encoding(&args.file, read_as);
            let known = store.regions().await?;
            let table =
                RegionTable::from_csv(text.as_bytes(), &args.file.display().to_string(), &known)
                    .map_err(|e| Failure::refused(e.to_string()))?;
            let added = store.add_regions(table).await?;
            println!("imported {added} regions from {}", args.file.display());
        }
        ImportCommand::Calendar(args) => {
            let (text, read_as) = input::read_text(&args.file, args.encoding)?;
            note_encoding(&args.file, read_as);
            let calendar = earmark::calendar::WorkCalendar::from_csv(
                text.as_bytes(),
                &args.file.display().to_string(),
            )
            .map_err(|e| Failure::refused(e.to_string()))?;
            let added = store.add_calendar(&calendar).await?;
            println!(
                "imported {added} calendar days from {} (years {})",
                args.file.display(),
                calendar.covered_description()
            );
        }
        ImportCommand::Units(args) => {
            let (text, read_as) = input::read_text(&args.file, args.encoding)?;
            note_encoding(&args.file, read_as);
            let units = parse_units(
                &text,
                &args.file.display().to_string(),
                &*store.regions().await?,
            )?;
            let added = store.register_units(&units).await?;
            println!(
                "registered {added} new units from {} ({} already registered)",
                args.file.display(),
                units.len() - added
            );
        }
        ImportCommand::Roster(_) | ImportCommand::Deaths(_) | ImportCommand::Employment(_) => {
            unreachable!("dispatched before")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `unit_code,name,county_code,township_code,kind`, every row checked against the regions.
fn parse_units(text: &str, file: &str, regions: &RegionTable) -> Result<Vec<Unit>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Failure::refused(format!("{file}: cannot read the header: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let wanted = ["unit_code", "name", "county_code", "township_code", "kind"];
    if header.len() < 5 || header[..5] != wanted {
        return Err(Failure::refused(format!(
            "{file} row 1: the header must be unit_code,name,county_code,township_code,kind (found {})",
            header.join(",")
        )));
    }
    let mut units = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("{file} row {row}: unreadable CSV: {e}"));
                continue;
            }
        };
        let get = |i: usize| record.get(i).unwrap_or("").to_string();
        let (code, name, county, township, kind) =
            (get(0).to_ascii_uppercase(), get(1), get(2), get(3), get(4));
        let mut fail = |column: &str, rule: String| {
            errors.push(format!("{file} row {row}, column {column}: {rule}"))
        };
        if code.is_empty()
            || code.len() > 40
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            fail(
                "unit_code",
                format!("\"{code}\" must be 1 to 40 letters, digits, '-' or '_'"),
            );
            continue;
        }
        if regions.get(&code).is_some() {
            fail(
                "unit_code",
                format!("{code} is a region code: a unit needs a code of its own"),
            );
            continue;
        }
        if !seen.insert(code.clone()) {
            fail("unit_code", format!("{code} is listed twice"));
            continue;
        }
        if name.is_empty() {
            fail("name", "the name is empty".into());
            continue;
        }
        if !regions.get(&county).is_some_and(|r| r.county_role) {
            fail(
                "county_code",
                format!("{county} is not a county (or a city without districts)"),
            );
            continue;
        }
        if !township.is_empty()
            && regions.get(&township).and_then(|t| t.parent.as_deref()) != Some(county.as_str())
        {
            fail(
                "township_code",
                format!("{township} is not a township of {county}"),
            );
            continue;
        }
        if kind.is_empty() {
            fail(
                "kind",
                "the kind is empty (e.g. school, kindergarten, township_office, education_bureau)"
                    .into(),
            );
            continue;
        }
        units.push(Unit {
            code,
            name,
            county,
            township: (!township.is_empty()).then_some(township),
            kind,
        });
    }
    if errors.is_empty() {
        Ok(units)
    } else {
        errors.push(format!("{file}: refused, nothing was imported"));
        Err(Failure::refused(errors.join("\n")))
    }
}

async fn post(store: &Store, args: super::PostArgs) -> Result<ExitCode> {
    let file = args.file.display().to_string();
    let (text, read_as) = input::read_text(&args.file, args.encoding)?;
    note_encoding(&args.file, read_as);
    let parsed = postings::parse(&text, &file, args.pending)?;
    if !args.partial && !parsed.errors.is_empty() {
        let mut lines = parsed.errors.clone();
        lines.push(format!("{file}: refused, nothing was posted"));
        return Err(Failure::refused(lines.join("\n")));
    }
    let entries: Vec<NewEntry> = parsed.entries.iter().map(|p| p.entry.clone()).collect();
    let mode = if args.partial {
        BatchMode::SkipRefused
    } else {
        BatchMode::AllOrNothing
    };
    let outcomes = match store.post(&entries, mode).await {
        Ok(o) => o,
        Err(StoreError::Refused { index, error }) => {
            let rows = postings::describe_rows(&file, &parsed.entries[index].rows);
            return Err(Failure::refused(format!(
                "{rows}: refused ({}): {error}\n{file}: refused, nothing was posted",
                error.code()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut posted = 0;
    let mut postings_count = 0;
    let mut again = 0;
    let mut bad_rows = parsed.bad_rows;
    for (parsed_entry, outcome) in parsed.entries.iter().zip(&outcomes) {
        match outcome {
            Outcome::Posted { .. } => {
                posted += 1;
                postings_count += parsed_entry.entry.postings.len();
            }
            Outcome::AlreadyPosted { .. } => again += 1,
            Outcome::Refused(error) => {
                let line = format!(
                    "{}: refused ({}): {error}",
                    postings::describe_rows(&file, &parsed_entry.rows),
                    error.code()
                );
                for (row, record) in parsed_entry.rows.iter().zip(&parsed_entry.records) {
                    bad_rows.push(postings::BadRow {
                        row: *row,
                        record: record.clone(),
                        error: line.clone(),
                    });
                }
            }
        }
    }
    println!(
        "{file}: posted {posted} entries ({postings_count} postings); {again} already posted before (nothing changed)"
    );
    if args.partial && !bad_rows.is_empty() {
        bad_rows.sort_by_key(|b| b.row);
        let rejects = args
            .rejects
            .unwrap_or_else(|| args.file.with_extension("rejected.csv"));
        write_rejects(&rejects, &parsed.header, &bad_rows)
            .map_err(|e| Failure::trouble(format!("error: {}: {e}", rejects.display())))?;
        let mut seen = std::collections::HashSet::new();
        for bad in &bad_rows {
            if seen.insert(bad.error.clone()) {
                eprintln!("{}", bad.error);
            }
        }
        eprintln!(
            "{file}: {} row(s) refused and written with their errors to {}",
            bad_rows.len(),
            rejects.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The refused rows as they came, plus `row` and `error` columns; UTF-8 with BOM so Excel opens it.
fn write_rejects(
    path: &Path,
    header: &csv::StringRecord,
    rows: &[postings::BadRow],
) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(b"\xEF\xBB\xBF")?;
    let mut writer = csv::Writer::from_writer(file);
    let mut head: Vec<&str> = header.iter().collect();
    head.push("row");
    head.push("error");
    writer.write_record(&head)?;
    for bad in rows {
        let mut record: Vec<String> = bad.record.iter().map(str::to_string).collect();
        record.resize(header.len(), String::new());
        record.push(bad.row.to_string());
        record.push(bad.error.clone());
        writer.write_record(&record)?;
    }
    writer.flush()
}

fn print_balances(rows: &[earmark::store::BalanceRow], format: Format) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(["county_code", "program", "owner", "kind", "balance"])?;
            for r in rows {
                writer.write_record([
                    r.county_code.as_str(),
                    r.program.as_str(),
                    r.owner.as_str(),
                    r.kind.as_str(),
                    &r.balance.to_string(),
                ])?;
            }
            writer.flush()?;
        }
        Format::Json => {
            let json: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "county_code": r.county_code,
                        "program": r.program,
                        "owner": r.owner,
                        "kind": r.kind,
                        "balance": r.balance.to_string(),
                        "balance_fen": r.balance.get(),
                        "reserved_fen": r.reserved.get(),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &json)?;
            writeln!(out)?;
        }
        Format::Table => {
            let columns = [
                ("县区 county", 10, false),
                ("项目 program", 12, false),
                ("户主 owner", 20, false),
                ("科目 kind", 12, false),
                ("余额 balance(元)", 20, true),
                ("预留 reserved(元)", 20, true),
            ];
            let head: Vec<String> = columns
                .iter()
                .map(|(name, w, right)| pad(name, *w, *right))
                .collect();
            writeln!(out, "{}", head.join(" ").trim_end())?;
            for r in rows {
                let reserved = if r.reserved.is_zero() {
                    String::new()
                } else {
                    r.reserved.grouped()
                };
                let cells = [
                    r.county_code.clone(),
                    r.program.clone(),
                    r.owner.clone(),
                    r.kind.clone(),
                    r.balance.grouped(),
                    reserved,
                ];
                let line: Vec<String> = cells
                    .iter()
                    .zip(columns)
                    .map(|(cell, (_, w, right))| pad(cell, w, right))
                    .collect();
                writeln!(out, "{}", line.join(" ").trim_end())?;
            }
            writeln!(out, "{} account(s)", rows.len())?;
        }
    }
    Ok(())
}

/// Pads to a display width, counting CJK characters as two columns, so Chinese headers line up.
fn pad(text: &str, width: usize, right: bool) -> String {
    let shown: usize = text
        .chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum();
    let fill = " ".repeat(width.saturating_sub(shown));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}
