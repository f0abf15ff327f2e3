//! Command-line front end (clap). Each subcommand is a thin call into the library; errors print once,
//! on one line each, and map to an exit code: 0 done, 1 refused (bad input or a failed check),
//! 2 wrong usage, 3 database or file trouble.

mod bench;
mod commands;
mod demo;
mod flow;
mod inspect;
mod program;
mod roster;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use earmark::input::Encoding;

#[derive(Parser, Debug)]
#[command(
    name = "earmark",
    version,
    about = "专项资金台账 earmark: a double-entry ledger for earmarked subsidy funds, province to person",
    long_about = "earmark keeps the books of earmarked subsidy funds (专项资金) from the province's, city's and \
county's budget shares through county finance and the disbursing units to each person's bank account. \
Every entry balances, stays inside one program (专款专用) and one county, and is never edited: \
corrections are reversals.\n\nStart with `earmark init`, then `earmark import units FILE` and `earmark post FILE`.",
    after_help = "Amounts are in yuan (元) with at most two decimals. Dates are YYYY-MM-DD.\n\
Exit codes: 0 done; 1 refused (bad input, failed check); 2 wrong usage; 3 database or file trouble."
)]
pub struct Cli {
    /// The ledger database: a SQLite file path, or a postgres:// URL
    #[arg(long, global = true, env = "EARMARK_DB", default_value = "earmark.db")]
    pub db: String,

    /// Print more about what is done (twice for debug detail)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// 报表: run an inspector's report (reports/*.toml): list, or NAME --param k=v --format F --out FILE
    Report(ReportArgs),
    /// 追溯: the whole trail of a person's money or of one entry, up and down the chain
    Trace(TraceArgs),
    /// 抽查: a reproducible spot check (simple, stratified or monetary-unit) with its workpaper
    SpotCheck(SpotCheckArgs),
    /// 交叉核查: sweep the cross-check rules, list findings, rule on one
    #[command(subcommand)]
    Checks(ChecksCommand),
    /// 评分: rank counties and cities on release speed, execution, findings handled, timeliness
    Scorecard(ScorecardArgs),
    /// 演示: generate and run a reproducible Guangdong province-year, then print the director's summary
    Demo(DemoArgs),
    /// 初始化: create the ledger and load the built-in regions, calendar and programs
    Init,
    /// 导入: load reference data or disbursing units from a file
    #[command(subcommand)]
    Import(ImportCommand),
    /// 项目: list, show or load program definitions (TOML)
    #[command(subcommand)]
    Program(ProgramCommand),
    /// 应发: what each person is owed per month, with each level's share
    Entitlements(EntitlementArgs),
    /// 年度工作: record the annual cycle's stages and see what is late or due
    #[command(subcommand)]
    Cycle(CycleCommand),
    /// 报表: the county's tables (名册表, 增减情况表, 人数汇总表), the city's 附件5, the 公示 list
    Table(TableArgs),
    /// 下达: a level releases each county's share (computed from the roster, or given in a CSV)
    Allocate(AllocateArgs),
    /// 配套: county finance posts its own matching share
    Match(MatchArgs),
    /// 拨付: county finance passes funds to its disbursing units
    Disburse(DisburseArgs),
    /// 发放: build a payout batch and its bank file, or read the bank's answer
    #[command(subcommand)]
    Payout(PayoutCommand),
    /// 结余退回: return unspent funds (unit → county, county → province or city)
    Return(ReturnArgs),
    /// 追回: find payments after death, employment or leaving; record money recovered
    #[command(subcommand)]
    Recover(RecoverCommand),
    /// 时限: tranches held past their one-month deadline (滞留) and those passed on late
    Deadlines(DeadlineArgs),
    /// 名册: lock the registry, record a person leaving, list a roster
    #[command(subcommand)]
    Roster(RosterCommand),
    /// 记账: post the entries of a CSV file (entry_key,date,county_code,program,account,amount,memo)
    Post(PostArgs),
    /// 两阶段: post or void a pending entry (a payout batch waiting for the bank)
    #[command(subcommand)]
    Pending(PendingCommand),
    /// 冲销: reverse a posted entry with a new entry that negates it
    Reverse(ReverseArgs),
    /// 余额: list account balances
    Balances(BalancesArgs),
    /// 核对: prove the books consistent (balanced, single-program, balances equal postings, no overdraft)
    Check,
    /// 验证: recompute every county's hash chain and name the first altered entry
    Verify,
    /// 导出: write the ledger as an hledger journal
    #[command(subcommand)]
    Export(ExportCommand),
    /// 性能: measure posting throughput against the database's raw insert rate
    Bench(BenchArgs),
    /// 服务: serve the JSON API, its OpenAPI document and the dashboard to many users at once
    Serve(ServeArgs),
    /// 用户: users of the service, their roles and scopes, and their API tokens
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free one and prints it)
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Where payout batches' bank files are written
    #[arg(long, default_value = "bank-files")]
    pub out: PathBuf,
    /// Print the OpenAPI document and exit
    #[arg(long)]
    pub openapi: bool,
    /// Run the cross-check sweep and record new findings every N hours (0: never)
    #[arg(long, default_value_t = 24)]
    pub sweep_every_hours: u64,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user: --role admin|finance|unit|inspector --scope REGION-or-UNIT
    Add {
        name: String,
        #[arg(long)]
        role: String,
        /// A region code (finance, inspector: province, city or county), a unit code (unit); admin: *
        #[arg(long, default_value = "*")]
        scope: String,
        /// May see full ID numbers and bank accounts when a request asks for them
        #[arg(long)]
        personal_data: bool,
    },
    /// Issue an API token for a user (shown once; only its hash is kept)
    Token {
        name: String,
        /// Valid for this many days [default: until revoked]
        #[arg(long)]
        days: Option<u32>,
    },
    /// Revoke one token (by its id) or every token of a user (by name)
    Revoke { token_or_user: String },
    /// List the users
    List,
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Administrative divisions: code,name,level,parent_code (another province, or new divisions)
    Regions(FileArgs),
    /// Working-day calendar: date,kind,name (kind: holiday = weekday off, workday = weekend worked)
    Calendar(FileArgs),
    /// Disbursing units (发放单位): unit_code,name,county_code,township_code,kind
    Units(FileArgs),
    /// A program's roster (名册), CSV or XLSX. MBDK columns: id_number,name,sex,birth_date,semesters,
    /// county_code,township_code,unit_code,bank_account,exclusion,death_date (the first six required;
    /// Chinese headers accepted). Child programs add guardian_name,guardian_id_number,enrolled_from.
    Roster(RosterImportArgs),
    /// Deaths from 公安户籍 / 卫健 data: id_number,death_date,source
    Deaths(FileArgs),
    /// Employment from 社保 data: id_number,employer_kind,from_date
    Employment(FileArgs),
}

/// `YYYY-MM..YYYY-MM`: the months a release or disbursement covers.
#[derive(Clone, Copy, Debug)]
pub struct Covers {
    pub from: earmark::calendar::YearMonth,
    pub to: earmark::calendar::YearMonth,
}

impl std::str::FromStr for Covers {
    type Err = String;
    fn from_str(text: &str) -> Result<Covers, String> {
        let (a, b) = text.split_once("..").unwrap_or((text, text));
        let from: earmark::calendar::YearMonth = a
            .trim()
            .parse()
            .map_err(|_| format!("\"{a}\" is not a month YYYY-MM"))?;
        let to: earmark::calendar::YearMonth = b
            .trim()
            .parse()
            .map_err(|_| format!("\"{b}\" is not a month YYYY-MM"))?;
        if from > to {
            return Err(format!("{from} is after {to}"));
        }
        Ok(Covers { from, to })
    }
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The report's name, or `list`
    pub name: String,
    /// A parameter, NAME=VALUE (repeatable), e.g. --param county=440511
    #[arg(long = "param")]
    pub params: Vec<String>,
    #[arg(long, value_enum, default_value_t = earmark::report::OutputFormat::Csv)]
    pub format: earmark::report::OutputFormat,
    /// Where to write it [default: standard output for csv, json and html]
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["person", "entry"])))]
pub struct TraceArgs {
    /// A person's ID number
    #[arg(long)]
    pub person: Option<String>,
    /// An entry's key
    #[arg(long)]
    pub entry: Option<String>,
    /// Show full ID numbers (inspectors with the right to see them)
    #[arg(long)]
    pub full: bool,
    /// text (default), json, or a table as csv/xlsx/html with --out
    #[arg(long, value_enum)]
    pub format: Option<earmark::report::OutputFormat>,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct SpotCheckArgs {
    #[arg(long)]
    pub program: String,
    #[arg(long)]
    pub county: Option<String>,
    /// The months whose payments form the population, YYYY-MM..YYYY-MM
    #[arg(long)]
    pub period: Covers,
    #[arg(long, value_enum, default_value_t = earmark::inspect::sample::Method::Simple)]
    pub method: earmark::inspect::sample::Method,
    /// The sample size; without it the attribute sample size for --confidence and --tolerable
    #[arg(long)]
    pub size: Option<usize>,
    /// Confidence level in percent (90 or 95)
    #[arg(long, default_value = "95")]
    pub confidence: rust_decimal::Decimal,
    /// Tolerable deviation rate in percent
    #[arg(long, default_value = "5")]
    pub tolerable: rust_decimal::Decimal,
    /// The seed: the same seed gives the same sample on any machine and either database
    #[arg(long)]
    pub seed: u64,
    /// The workpaper (XLSX)
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the sampled rows as CSV/JSON/HTML to this file (format by --format)
    #[arg(long)]
    pub rows: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = earmark::report::OutputFormat::Csv)]
    pub format: earmark::report::OutputFormat,
    /// Show full ID numbers in --rows
    #[arg(long)]
    pub full_ids: bool,
}

#[derive(Subcommand, Debug)]
pub enum ChecksCommand {
    /// Run every rule; --record keeps new findings in the findings table
    Sweep {
        #[arg(long)]
        as_of: chrono::NaiveDate,
        #[arg(long)]
        record: bool,
        #[arg(long)]
        full_ids: bool,
        #[arg(long, value_enum)]
        format: Option<earmark::report::OutputFormat>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Recorded findings with their rulings and days past the rectification deadline
    List {
        #[arg(long)]
        as_of: chrono::NaiveDate,
        #[arg(long)]
        full_ids: bool,
        #[arg(long, value_enum)]
        format: Option<earmark::report::OutputFormat>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Rule on a finding: normal, or a violation with its type, amount and rectification deadline
    Rule {
        /// The finding's number (from `checks list`)
        id: i64,
        #[arg(long, value_enum)]
        disposition: earmark::inspect::checks::Disposition,
        #[arg(long = "type", value_enum)]
        violation_type: Option<earmark::inspect::checks::ViolationType>,
        /// Amount to recover or adjust, in yuan
        #[arg(long, default_value = "0")]
        amount: String,
        #[arg(long)]
        rectify_by: Option<chrono::NaiveDate>,
        /// Who rules
        #[arg(long = "by")]
        ruled_by: String,
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ScorecardArgs {
    #[arg(long)]
    pub as_of: chrono::NaiveDate,
    #[arg(long, value_enum, default_value_t = earmark::report::OutputFormat::Csv)]
    pub format: earmark::report::OutputFormat,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// small (4 counties), county (one city), province (all of Guangdong)
    #[arg(long, value_enum, default_value_t = earmark::demo::Scale::Small)]
    pub scale: earmark::demo::Scale,
    /// The seed: the same seed gives the same province-year, to the fen
    #[arg(long, default_value_t = 2025)]
    pub seed: u64,
    /// Where bank files and reports are written
    #[arg(long, default_value = "demo-output")]
    pub out: PathBuf,
    /// Only the first N county books of the scale, in code order (for benchmarks of a given size)
    #[arg(long)]
    pub counties: Option<usize>,
    /// How many counties' payouts run side by side (counties never share a transaction); the
    /// totals are the same for any number. Default: 3 on SQLite (one writer at a time, so the
    /// others read and judge their next batches while one writes), 4 on PostgreSQL (writers of
    /// different counties run at once)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
}

#[derive(clap::Args, Debug)]
pub struct AllocateArgs {
    #[arg(long)]
    pub program: String,
    /// Which level releases: province or city
    #[arg(long, value_enum)]
    pub level: earmark::flow::Level,
    /// The release document number (文号), e.g. 粤财教〔2025〕12号
    #[arg(long)]
    pub document: String,
    /// The release date
    #[arg(long)]
    pub date: chrono::NaiveDate,
    /// The months covered, YYYY-MM..YYYY-MM
    #[arg(long)]
    pub covers: Covers,
    /// Only this county
    #[arg(long)]
    pub county: Option<String>,
    /// Release these amounts instead of the computed need: a CSV of county_code,amount
    #[arg(long)]
    pub amounts: Option<PathBuf>,
    /// Print the table without posting
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct MatchArgs {
    #[arg(long)]
    pub program: String,
    /// The county's own document number
    #[arg(long)]
    pub document: String,
    #[arg(long)]
    pub date: chrono::NaiveDate,
    #[arg(long)]
    pub covers: Covers,
    #[arg(long)]
    pub county: Option<String>,
    /// Match these amounts instead of the computed share: a CSV of county_code,amount
    #[arg(long)]
    pub amounts: Option<PathBuf>,
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct DisburseArgs {
    #[arg(long)]
    pub program: String,
    /// The county whose finance disburses
    #[arg(long)]
    pub county: String,
    #[arg(long)]
    pub document: String,
    #[arg(long)]
    pub date: chrono::NaiveDate,
    #[arg(long)]
    pub covers: Covers,
    /// Disburse these amounts instead of each unit's need: a CSV of unit_code,amount
    #[arg(long)]
    pub amounts: Option<PathBuf>,
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum PayoutCommand {
    /// Build a unit's batch for a month, reserve the money and write the bank file
    Create {
        #[arg(long)]
        unit: String,
        #[arg(long)]
        program: String,
        /// The month paid, YYYY-MM
        #[arg(long)]
        month: earmark::calendar::YearMonth,
        /// The business date [default: today]
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// daifa (批量代发 text, GBK), csv, or pain001 (ISO 20022 XML)
        #[arg(long, default_value = "daifa")]
        format: String,
        /// The folder the bank file is written to
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// 补发: pay again, in a new batch of the same unit and month, the lines of a batch the bank
    /// failed, with the accounts the roster holds now (correct them there first)
    Retry {
        /// The batch whose failed lines are paid again
        batch: String,
        /// The business date [default: today]
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// daifa (批量代发 text, GBK), csv, or pain001 (ISO 20022 XML)
        #[arg(long, default_value = "daifa")]
        format: String,
        /// The folder the bank file is written to
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Read the bank's answer (success/failure file, CSV with status, or ISO 20022 pain.002): the first
    /// answer posts the batch, a failed line's money comes back to the unit
    Result {
        /// The answer file; a batch's success and failure files may be named together, and are
        /// then recorded as one answer (all of them, or none if one is refused)
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The business date the answer is booked on [default: today]
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ReturnArgs {
    #[arg(long)]
    pub program: String,
    /// Who returns: a unit code, or a county code
    #[arg(long)]
    pub from: String,
    /// For a county: the level it returns to
    #[arg(long, value_enum)]
    pub to: Option<earmark::flow::Level>,
    /// The amount in yuan
    #[arg(long)]
    pub amount: String,
    #[arg(long)]
    pub document: String,
    #[arg(long)]
    pub date: chrono::NaiveDate,
}

#[derive(Subcommand, Debug)]
pub enum RecoverCommand {
    /// Find payments for months after death, employment or leaving, and book them as receivables
    Scan {
        #[arg(long)]
        program: String,
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// Money recovered from a person came back to the unit
    Receive {
        #[arg(long)]
        program: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        document: String,
        #[arg(long)]
        date: chrono::NaiveDate,
    },
}

#[derive(clap::Args, Debug)]
pub struct DeadlineArgs {
    /// Judge as of this day
    #[arg(long)]
    pub as_of: chrono::NaiveDate,
    #[arg(long)]
    pub county: Option<String>,
    #[arg(long)]
    pub program: Option<String>,
    /// Also list tranches on time and still open
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum)]
    pub format: Option<earmark::report::OutputFormat>,
    /// Write the report here (csv, xlsx, html or json by --format)
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ProgramCommand {
    /// The programs this ledger knows
    List,
    /// A program's rules, rates and cost shares
    Show { code: String },
    /// Add a program from a definition file, or replace one (see programs/mbdk.toml for the format)
    Load { file: PathBuf },
}

#[derive(clap::Args, Debug)]
pub struct EntitlementArgs {
    #[arg(long)]
    pub program: String,
    /// First month, YYYY-MM
    #[arg(long)]
    pub from: earmark::calendar::YearMonth,
    /// Last month, YYYY-MM
    #[arg(long)]
    pub to: earmark::calendar::YearMonth,
    /// Only this county
    #[arg(long)]
    pub county: Option<String>,
    #[arg(long, value_enum, default_value_t = earmark::report::OutputFormat::Csv)]
    pub format: earmark::report::OutputFormat,
    /// Write here instead of standard output (required for xlsx)
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CycleCommand {
    /// Record a stage for the people in a file (id_number,date[,actor]) or for one person (--id)
    Record {
        #[arg(long)]
        program: String,
        #[arg(long)]
        year: i32,
        /// apply, township_review, county_review, notice (its first day), confirm, city_recheck (or 申请, 初审, 审核, 公示, 确认, 复核)
        #[arg(long)]
        stage: String,
        /// A CSV of id_number,date[,actor]
        #[arg(long, conflicts_with = "id")]
        file: Option<PathBuf>,
        #[arg(long, requires = "date")]
        id: Option<String>,
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// Who did it (department, clerk)
        #[arg(long, default_value = "")]
        actor: String,
    },
    /// Every stage that is late, overdue or due, with the rule it breaks
    Status {
        #[arg(long)]
        program: String,
        #[arg(long)]
        year: i32,
        #[arg(long)]
        county: Option<String>,
        /// Judge as of this day [default: today]
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        /// List every stage, also those on time
        #[arg(long)]
        all: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct TableArgs {
    #[arg(value_enum)]
    pub kind: earmark::program::tables::TableKind,
    #[arg(long)]
    pub program: String,
    /// The year the table is for
    #[arg(long)]
    pub year: i32,
    /// The county (for roster, changes, summary, notice)
    #[arg(long)]
    pub county: Option<String>,
    /// The city (for city-summary)
    #[arg(long)]
    pub city: Option<String>,
    #[arg(long, value_enum, default_value_t = earmark::report::OutputFormat::Csv)]
    pub format: earmark::report::OutputFormat,
    /// Where to write the table
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct RosterImportArgs {
    /// The program whose roster this is (e.g. MBDK)
    #[arg(long)]
    pub program: String,
    /// The CSV or XLSX file
    pub file: PathBuf,
    /// Load the good rows and write the bad ones, with an `error` column, to --rejects
    #[arg(long)]
    pub partial: bool,
    /// Where --partial writes the refused rows [default: FILE.rejected.csv]
    #[arg(long, requires = "partial")]
    pub rejects: Option<PathBuf>,
    /// How a CSV file's text is encoded
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    pub encoding: Encoding,
}

#[derive(Subcommand, Debug)]
pub enum RosterCommand {
    /// Freeze the verified registry (只减不增): nobody added, service years fixed from now on
    Lock {
        #[arg(long)]
        program: String,
    },
    /// A person leaves the roster from a date, for a reason: death, disqualified or transfer
    Leave {
        #[arg(long)]
        program: String,
        /// The person's ID number
        #[arg(long)]
        id: String,
        #[arg(long)]
        date: chrono::NaiveDate,
        #[arg(long)]
        reason: String,
    },
    /// List a roster (ID numbers masked)
    Show {
        #[arg(long)]
        program: String,
        #[arg(long)]
        county: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct FileArgs {
    /// The CSV file
    pub file: PathBuf,
    /// How the file's text is encoded
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    pub encoding: Encoding,
}

#[derive(clap::Args, Debug)]
pub struct PostArgs {
    /// The CSV file, one row per posting; amounts in yuan, debit positive, credit negative
    pub file: PathBuf,
    /// Post the good entries and write the bad rows, with an `error` column, to --rejects
    #[arg(long)]
    pub partial: bool,
    /// Where --partial writes the refused rows [default: FILE.rejected.csv]
    #[arg(long, requires = "partial")]
    pub rejects: Option<PathBuf>,
    /// Post every entry as pending (two-phase): credits to held accounts are reserved until posted or voided
    #[arg(long)]
    pub pending: bool,
    /// How the file's text is encoded
    #[arg(long, value_enum, default_value_t = Encoding::Auto)]
    pub encoding: Encoding,
}

#[derive(Subcommand, Debug)]
pub enum PendingCommand {
    /// Let a pending entry take effect (the bank paid it)
    Post(ResolveArgs),
    /// Cancel a pending entry and release its reservation (the bank refused it)
    Void(ResolveArgs),
}

#[derive(clap::Args, Debug)]
pub struct ResolveArgs {
    /// The key of the pending entry
    pub entry_key: String,
    /// The business date of the resolution [default: today]
    #[arg(long)]
    pub date: Option<chrono::NaiveDate>,
    /// The new entry's own key [default: post:KEY or void:KEY]
    #[arg(long)]
    pub key: Option<String>,
    /// Why (kept as the new entry's memo)
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(clap::Args, Debug)]
pub struct ReverseArgs {
    /// The key of the entry to reverse
    pub entry_key: String,
    /// Why it is reversed (required: an auditor will ask)
    #[arg(long)]
    pub reason: String,
    /// The business date of the reversal [default: today]
    #[arg(long)]
    pub date: Option<chrono::NaiveDate>,
    /// The reversal's own key [default: reverse:KEY]
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct BalancesArgs {
    /// Only this county (6-digit code)
    #[arg(long)]
    pub county: Option<String>,
    /// Only this program (e.g. MBDK)
    #[arg(long)]
    pub program: Option<String>,
    /// Balances as of the end of this day (YYYY-MM-DD)
    #[arg(long)]
    pub as_of: Option<chrono::NaiveDate>,
    /// Also list accounts whose balance is zero
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// The whole ledger as an hledger journal (hledger -f FILE balance shows the same balances)
    Ledger {
        /// Where to write the journal
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// How many two-posting entries to post
    #[arg(long, default_value_t = 1_000_000)]
    pub entries: usize,
    /// Entries per batch (one transaction each)
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// PostgreSQL server to measure as well (a fresh database is made on it), e.g. postgres://postgres@127.0.0.1:5432
    #[arg(long, env = "EARMARK_BENCH_PG")]
    pub postgres: Option<String>,
    /// Skip SQLite
    #[arg(long)]
    pub no_sqlite: bool,
    /// Post from this many connections side by side, each with its own counties (county books never
    /// share a transaction); the raw insert uses as many. On SQLite the writers queue for its one
    /// write lock, and one prepares its batch while the other writes
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub streams: u16,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn,sqlx=error",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EARMARK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
