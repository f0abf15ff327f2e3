//! `earmark demo`: a realistic, reproducible province-year for Guangdong. It generates disbursing
//! units, an MBDK registry and XQZZ children from a seed, then runs the year through the same flow
//! commands a finance department uses: releases with document numbers, county matching,
//! disbursement (a few counties late on purpose), twelve monthly payout batches with bank files and
//! 0.5-1% failures paid again in retry batches (补发) days later, deaths found late and recovered; then it proves the books.
//!
//! Every name, ID number, account and amount here is generated: none is real personal data.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::calendar::YearMonth;
use crate::flow::bank::BankFormat;
use crate::flow::{self, Level};
use crate::id_number::{Sex, make_id};
use crate::ledger::AccountKind;
use crate::money::Fen;
use crate::parallel::{Job, side_by_side};
use crate::program::Program;
use crate::region::Level as RegionLevel;
use crate::roster::{LifeEvent, RosterEntry};
use crate::store::{Store, StoreError, Unit};

/// How big a province-year to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// 4 counties in 2 cities (one 5:5 city, Dongguan), about 120 teachers and 200 children
    Small,
    /// every county of one city (Shantou), about 4,000 teachers and 10,000 children
    County,
    /// all 124 county-level books of Guangdong, about 200,000 teachers and 500,000 children
    Province,
}

impl Scale {
    fn counties(self, regions: &crate::region::RegionTable) -> Vec<String> {
        match self {
            Scale::Small => vec![
                "440511".into(),
                "440513".into(),
                "441900".into(),
                "440103".into(),
            ],
            Scale::County => regions
                .counties()
                .filter(|c| regions.city_of(&c.code).is_some_and(|x| x.code == "440500"))
                .map(|c| c.code.clone())
                .collect(),
            Scale::Province => regions.counties().map(|c| c.code.clone()).collect(),
        }
    }

    /// (teachers, children) per county
    fn people_per_county(self) -> (usize, usize) {
        match self {
            Scale::Small => (30, 50),
            Scale::County => (600, 1_500),
            Scale::Province => (1_613, 4_033),
        }
    }

    fn units_per_county(self) -> usize {
        match self {
            Scale::Small => 2,
            Scale::County => 4,
            Scale::Province => 6,
        }
    }
}

/// SplitMix64: a tiny, fast, well-known generator; the same seed gives the same province anywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// True with probability per_mille / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

const SURNAMES: [&str; 20] = [
    "陈", "李", "黄", "张", "梁", "林", "刘", "吴", "罗", "杨", "郑", "周", "谢", "何", "邓", "冯",
    "曾", "蔡", "许", "彭",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
    "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "国强",
];

fn name(rng: &mut Rng) -> String {
    format!(
        "{}{}",
        SURNAMES[rng.below(SURNAMES.len() as u64) as usize],
        GIVEN[rng.below(GIVEN.len() as u64) as usize]
    )
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a demo date")
}

fn ym(y: i32, m: u32) -> YearMonth {
    YearMonth { year: y, month: m }
}

/// What the demo reports at the end, per city.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CityLine {
    pub released: Fen,
    pub matched: Fen,
    pub paid: Fen,
    pub held: Fen,
    pub late_or_stuck: Fen,
    pub recovered: Fen,
}

#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    pub counties: usize,
    pub units: usize,
    pub teachers: usize,
    pub children: usize,
    pub batches: usize,
    pub payout_lines: usize,
    pub failed_lines: usize,
    /// Retry batches (补发) and their lines: the failed lines paid again a few days later.
    pub retry_batches: usize,
    pub retried_lines: usize,
    pub deaths: usize,
    pub cities: BTreeMap<String, (String, CityLine)>,
    pub entries: i64,
    pub check_problems: Vec<String>,
    pub verify_broken: Vec<String>,
    pub reports: Vec<PathBuf>,
}

/// Progress reporting: a stage name and a fraction; the CLI draws it.
pub trait Progress {
    fn stage(&mut self, name: &str, done: usize, total: usize);
}

pub struct Quiet;
impl Progress for Quiet {
    fn stage(&mut self, _: &str, _: usize, _: usize) {}
}

fn add(a: Fen, b: Fen) -> Fen {
    a.checked_add(b).expect("a province-year fits in i64 fen")
}

/// Runs the demo into `store` (a fresh ledger) and writes bank files and reports under `out`.
pub async fn run(
    store: &Store,
    scale: Scale,
    seed: u64,
    counties_max: Option<usize>,
    jobs: usize,
    out: &Path,
    progress: &mut dyn Progress,
) -> Result<DemoSummary, StoreError> {
    let io = |e: std::io::Error| StoreError::Invalid(format!("{}: {e}", out.display()));
    std::fs::create_dir_all(out.join("bank")).map_err(io)?;
    let mut rng = Rng::new(seed);
    progress.stage("init", 0, 1);
    store.init().await?;
    let regions = store.regions().await?;
    let mut counties = scale.counties(&regions);
    // A benchmark may take only the first N county books of the scale (in code order).
    if let Some(n) = counties_max {
        counties.sort();
        counties.truncate(n.max(1));
    }

    // The 1-9 year tier is priced by each city (the policy leaves it to them): the demo sets one per
    // city, from 200.00 to 500.00, marked in the program file as demo values.
    let mut mbdk_text = crate::program::BUILTIN[0].1.to_string();
    let mut rates = String::from(
        "[city_rates]\n# demo values: each city sets its own rate for 1-9 service years\n",
    );
    for city in regions.iter().filter(|r| r.level == RegionLevel::City) {
        let code: u64 = city.code.parse().unwrap_or(0);
        rates.push_str(&format!(
            "\"{}\" = \"{}.00\"\n",
            city.code,
            200 + (code % 4) * 100
        ));
    }
    mbdk_text = mbdk_text.replacen("[city_rates]\n", &rates, 1);
    let mbdk = store
        .load_program(&mbdk_text, "programs/mbdk.toml (demo city rates)")
        .await?;
    let xqzz = store.program("XQZZ").await?;

    // Units: a county education bureau pays MBDK; kindergartens pay XQZZ.
    let mut units = Vec::new();
    let mut mbdk_units: HashMap<String, Vec<String>> = HashMap::new();
    let mut xqzz_units: HashMap<String, Vec<String>> = HashMap::new();
    for county in &counties {
        let county_name = regions
            .get(county)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        for i in 0..scale.units_per_county() {
            let (code, kind, unit_name, target) = if i % 2 == 0 {
                (
                    format!("E{county}{i:02}"),
                    "education_bureau",
                    format!("{county_name}教育局发放点{}", i / 2 + 1),
                    &mut mbdk_units,
                )
            } else {
                (
                    format!("K{county}{i:02}"),
                    "kindergarten",
                    format!("{county_name}第{}幼儿园", i / 2 + 1),
                    &mut xqzz_units,
                )
            };
            target.entry(county.clone()).or_default().push(code.clone());
            units.push(Unit {
                code,
                name: unit_name,
                county: county.clone(),
                township: None,
                kind: kind.into(),
            });
        }
    }
    store.register_units(&units).await?;

    // People. MBDK: former teachers born 1940-1966 with 2-70 semesters; some excluded.
    let (teachers_per, children_per) = scale.people_per_county();
    let mut teachers = Vec::new();
    let mut children = Vec::new();
    let mut sequence: HashMap<(String, NaiveDate), u16> = HashMap::new();
    let mut next_id = |county: &str, birth: NaiveDate, rng: &mut Rng| {
        let slot = sequence
            .entry((county.to_string(), birth))
            .or_insert((rng.below(400) as u16) * 2);
        *slot += 1;
        make_id(county, birth, *slot % 1000)
    };
    for (ci, county) in counties.iter().enumerate() {
        progress.stage("people", ci, counties.len());
        for _ in 0..teachers_per {
            let sex = if rng.chance(520) {
                Sex::Male
            } else {
                Sex::Female
            };
            let birth = date(
                1940 + rng.below(27) as i32,
                1 + rng.below(12) as u32,
                1 + rng.below(28) as u32,
            );
            let mut id = next_id(county, birth, &mut rng);
            if id.sex() != sex {
                id = next_id(county, birth, &mut rng);
            }
            let units = &mbdk_units[county];
            // Drawn in the order the fields were always drawn: the same seed, the same year.
            let teacher = name(&mut rng);
            teachers.push((
                0,
                RosterEntry {
                    semesters: Some(2 + rng.below(69) as u32),
                    unit: Some(units[rng.below(units.len() as u64) as usize].clone()),
                    bank_account: Some(format!("62220{:014}", rng.below(100_000_000_000_000))),
                    exclusion: rng.chance(8).then(|| "retired_in_plan".to_string()),
                    ..RosterEntry::new("MBDK", &id, teacher, county)
                },
            ));
        }
        for _ in 0..children_per {
            let birth = date(
                2019 + rng.below(3) as i32,
                1 + rng.below(12) as u32,
                1 + rng.below(28) as u32,
            );
            let id = next_id(county, birth, &mut rng);
            let units = &xqzz_units[county];
            let enrolled = [ym(2023, 9), ym(2024, 2), ym(2024, 9)][rng.below(3) as usize];
            let child = name(&mut rng);
            children.push((
                0,
                RosterEntry {
                    unit: Some(units[rng.below(units.len() as u64) as usize].clone()),
                    bank_account: Some(format!("62170{:014}", rng.below(100_000_000_000_000))),
                    guardian_name: Some(name(&mut rng)),
                    enrolled_from: Some(enrolled),
                    ..RosterEntry::new("XQZZ", &id, child, county)
                },
            ));
        }
    }
    progress.stage("roster", 0, 2);
    store.roster_import("MBDK", &teachers, false).await?;
    store.roster_lock("MBDK").await?;
    progress.stage("roster", 1, 2);
    store.roster_import("XQZZ", &children, false).await?;

    let mut summary = DemoSummary {
        counties: counties.len(),
        units: units.len(),
        teachers: teachers.len(),
        children: children.len(),
        ..DemoSummary::default()
    };

    // Deaths during the year, found only in October (after later months were paid): about 1%.
    let mut deaths: Vec<LifeEvent> = Vec::new();
    let death_per_mille = if scale == Scale::Small { 40 } else { 10 };
    for (_, t) in &teachers {
        if rng.chance(death_per_mille) {
            deaths.push(LifeEvent::Death {
                id_number: t.id_number.clone(),
                date: date(2025, 2 + rng.below(6) as u32, 1 + rng.below(28) as u32),
                source: "公安户籍比对".into(),
            });
        }
    }
    summary.deaths = deaths.len();

    // Twelve monthly payouts (MBDK) and two semester payouts (XQZZ), 0.5-1% bank failures paid again in retry batches.
    let units_by_code: HashMap<&str, &String> =
        units.iter().map(|u| (u.code.as_str(), &u.county)).collect();
    let county_stream: HashMap<&str, usize> = counties
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let all_units: Vec<(String, &Program)> = units
        .iter()
        .map(|u| {
            (
                u.code.clone(),
                if u.kind == "kindergarten" {
                    &xqzz
                } else {
                    &mbdk
                },
            )
        })
        .collect();
    // Releases: two halves of the year; the county passes funds on to units 12 days later.
    let late: Vec<&String> = counties
        .iter()
        .filter(|c| c.ends_with('3'))
        .take(counties.len().div_ceil(8))
        .collect();
    let halves = [
        (ym(2025, 1), ym(2025, 6), date(2025, 1, 6), 1),
        (ym(2025, 7), ym(2025, 12), date(2025, 7, 3), 2),
    ];
    let mut disbursed: HashMap<String, NaiveDate> = HashMap::new();
    let (year_started, turns_before) = (std::time::Instant::now(), store.turns());
    for month in 1..=12 {
        if month == 1 || month == 7 {
            let h = if month == 1 { 0 } else { 1 };
            let (from, to, released, n) = halves[h];
            progress.stage("releases", h, 2);
            for program in [&mbdk, &xqzz] {
                // The roster priced once for the half-year: the three levels' releases and every
                // county's disbursement to its units.
                let flow::PeriodNeeds {
                    counties: needs,
                    units: mut unit_needs,
                } = flow::period_needs(store, program, from, to).await?;
                for level in [Level::Province, Level::City, Level::County] {
                    let document = match level {
                        Level::Province => format!(
                            "粤财教〔2025〕{}号",
                            10 * n + if program.code() == "MBDK" { 1 } else { 2 }
                        ),
                        Level::City => format!(
                            "市财教〔2025〕{}号",
                            20 * n + if program.code() == "MBDK" { 1 } else { 2 }
                        ),
                        Level::County => format!(
                            "县财配〔2025〕{}号",
                            30 * n + if program.code() == "MBDK" { 1 } else { 2 }
                        ),
                    };
                    let day = released
                        + chrono::Duration::days(if level == Level::County { 3 } else { 0 });
                    flow::allocate_with_needs(
                        store,
                        flow::AllocateRequest {
                            program,
                            level,
                            document: &document,
                            date: day,
                            from,
                            to,
                            county: None,
                            amounts: None,
                            dry_run: false,
                        },
                        needs.clone(),
                    )
                    .await?;
                }
                for county in &counties {
                    // One county in eight holds the money past its one-month deadline, on purpose.
                    let days = if late.contains(&county) { 45 } else { 12 };
                    let day = released + chrono::Duration::days(days);
                    disbursed.insert(county.clone(), day);
                    let units = unit_needs
                        .remove(county.as_str())
                        .unwrap_or_else(|| Ok(flow::UnitNeeds::new()))
                        .map_err(StoreError::Invalid)?;
                    flow::disburse_with_needs(
                        store,
                        flow::DisburseRequest {
                            program,
                            county,
                            document: &format!("{county}拨〔2025〕{n}号-{}", program.code()),
                            date: day,
                            from,
                            to,
                            amounts: None,
                            dry_run: false,
                        },
                        units,
                    )
                    .await?;
                }
            }
        }
        progress.stage("payouts", month as usize - 1, 12);
        if month == 10 {
            let events: Vec<(u64, LifeEvent)> = deaths.iter().cloned().map(|e| (0, e)).collect();
            store
                .record_life_events(&events, "demo deaths (公安户籍)")
                .await?;
        }
        let m = ym(2025, month);
        // Counties never share a transaction, so their payouts run side by side: each of `jobs`
        // streams pays its counties' units in order, one unit at a time. Each unit draws from a
        // generator of its own, so the year is the same to the fen whatever the number of streams.
        let mut streams: Vec<Vec<(&str, &Program, &str)>> = vec![Vec::new(); jobs.max(1)];
        for (unit, program) in &all_units {
            if !program.is_payout_month(m) {
                continue;
            }
            let county = units_by_code[unit.as_str()];
            let stream = county_stream[county.as_str()] % streams.len();
            streams[stream].push((unit.as_str(), *program, county.as_str()));
        }
        let paid = side_by_side(
            streams
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|units| -> Job<'_, Paid> {
                    Box::pin(pay_units(store, units, m, seed, &disbursed, out))
                })
                .collect(),
        )
        .await?;
        for p in paid {
            summary.batches += p.batches;
            summary.payout_lines += p.lines;
            summary.failed_lines += p.failed;
            summary.retry_batches += p.retry_batches;
            summary.retried_lines += p.retried;
        }
    }

    let turns = store.turns().since(turns_before);
    if turns.taken > 0 {
        // SQLite's one writer is the floor of the year's length: how near the year came to it.
        tracing::info!(
            "year: the writer's turn was held {:.1} s of {:.1} s by {} writes (their waits for it add up to {:.1} s)",
            turns.held.as_secs_f64(),
            year_started.elapsed().as_secs_f64(),
            turns.taken,
            turns.waited.as_secs_f64()
        );
    }

    // Recoveries: payments after a death are booked as receivables; most are paid back.
    progress.stage("recoveries", 0, 1);
    flow::payout::recover(store, &mbdk, date(2025, 12, 20)).await?;
    let mut back: BTreeMap<String, (Fen, String)> = BTreeMap::new();
    for row in recovery_rows(store).await? {
        let slot = back
            .entry(row.0.clone())
            .or_insert((Fen::ZERO, row.2.clone()));
        slot.0 = add(slot.0, row.1);
    }
    for (id, (amount, unit)) in back.iter().filter(|_| rng.chance(700)) {
        flow::payout::receive(
            store,
            &mbdk,
            id,
            unit,
            *amount,
            "追回〔2025〕1号",
            date(2025, 12, 28),
        )
        .await?;
    }

    progress.stage("proof", 0, 1);
    // The year's writing is done: the readers that prove it read the database file, not the log.
    store.checkpoint().await?;
    // The deadline report, the summary and the reports read the finished ledger beside one walk
    // over every entry that checks, verifies and writes the journal (three walks at once read it
    // three times over), on threads of their own (the walk's two walkers map nothing: two mappings
    // would count twice against the process). The deadline report is read once: the summary
    // counts what is late, the folder keeps it.
    let journal = out.join("reports").join("ledger.journal");
    std::fs::create_dir_all(out.join("reports"))
        .map_err(|e| StoreError::Invalid(format!("{}: {e}", out.display())))?;
    let proofs = side_by_side(vec![
        Box::pin(async {
            let started = std::time::Instant::now();
            // The units' paid lines are read once (3.3 million of them in a province-year): the
            // deadline report's outflows and the summary's paid column.
            let paid = flow::deadlines::paid_days(store).await?;
            let deadlines =
                flow::deadlines::report_with(store, date(2025, 12, 31), None, None, &paid).await?;
            let cities = city_summary(store, &regions, &deadlines, &paid).await?;
            let reports = write_reports(store, out, &deadlines).await?;
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!(
                "proof: the deadline report, the city summary and the reports took {seconds:.1} s"
            );
            Ok(Proof::Summary(cities, reports))
        }) as Job<'_, Proof>,
        Box::pin(async {
            let started = std::time::Instant::now();
            let io = |e: std::io::Error| StoreError::Invalid(format!("{}: {e}", journal.display()));
            let mut file = std::io::BufWriter::new(std::fs::File::create(&journal).map_err(io)?);
            let (check, verify, _) = store.prove(Some(&mut file)).await?;
            std::io::Write::flush(&mut file).map_err(io)?;
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!("proof: check, verify and the journal in one walk took {seconds:.1} s");
            Ok(Proof::Ledger(check, verify))
        }),
    ])
    .await?;
    for proof in proofs {
        match proof {
            Proof::Summary(cities, reports) => {
                summary.cities = cities;
                summary.reports = reports;
                summary.reports.push(journal.clone());
            }
            Proof::Ledger(check, verify) => {
                summary.check_problems = check.problems;
                summary.entries = check.entries;
                summary.verify_broken = verify.broken;
            }
        }
    }
    Ok(summary)
}

/// What each of the proof stage's readers found.
enum Proof {
    /// The city summary and the reports written.
    Summary(BTreeMap<String, (String, CityLine)>, Vec<PathBuf>),
    /// One walk over the ledger: `check` and `verify`.
    Ledger(crate::store::CheckReport, crate::store::VerifyReport),
}

/// What one stream of payouts did in a month.
#[derive(Default)]
struct Paid {
    batches: usize,
    lines: usize,
    failed: usize,
    retry_batches: usize,
    retried: usize,
}

/// A unit-month's own generator: the run's seed mixed with the unit's code and the month.
fn unit_rng(seed: u64, unit: &str, month: YearMonth) -> Rng {
    // FNV-1a over the code, then the month: SplitMix64 spreads nearby seeds apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in unit.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (month.year as u64 * 12 + u64::from(month.month))).wrapping_mul(0x0100_0000_01b3);
    Rng::new(seed ^ h)
}

/// Pays `units` for `month` one after another: the batch and its bank file, the bank's answer with
/// 0.5-1% failures, and the answer read back.
async fn pay_units(
    store: &Store,
    units: Vec<(&str, &Program, &str)>,
    month: YearMonth,
    seed: u64,
    disbursed: &HashMap<String, NaiveDate>,
    out: &Path,
) -> Result<Paid, StoreError> {
    let io = |e: std::io::Error| StoreError::Invalid(format!("{}: {e}", out.display()));
    let mut paid = Paid::default();
    for (unit, program, county) in units {
        let mut rng = unit_rng(seed, unit, month);
        // Paid mid-month, and never before the money reached the unit.
        let pay_day = date(month.year, month.month, 12 + rng.below(8) as u32)
            .max(disbursed[county] + chrono::Duration::days(2 + rng.below(5) as i64));
        let report = match flow::payout::create(
            store,
            flow::payout::PayoutRequest {
                program,
                unit,
                month,
                date: pay_day,
                format: BankFormat::Daifa,
                out_dir: &out.join("bank"),
                only: None,
            },
        )
        .await
        {
            Ok(r) => r,
            Err(StoreError::Invalid(message)) if message.contains("owes nobody") => continue,
            Err(e) => return Err(e),
        };
        paid.batches += 1;
        paid.lines += report.lines;
        // The bank's answer: 0.5-1% failures (户名不符, closed cards).
        let failure_rate = 5 + rng.below(6);
        let (ok, failed) = bank_answer(&report.file, &mut rng, failure_rate)?;
        paid.failed += failed.1;
        // The success and failure files are read together, as one answer.
        let mut answers = Vec::new();
        for (bytes, suffix) in [(ok.0, "success"), (failed.0, "failure")] {
            if bytes.is_empty() {
                continue;
            }
            let path = out
                .join("bank")
                .join(format!("{}.{suffix}.txt", report.batch_id));
            std::fs::write(&path, bytes).map_err(io)?;
            answers.push(path);
        }
        let answers: Vec<&Path> = answers.iter().map(PathBuf::as_path).collect();
        flow::payout::result_files(store, &answers, pay_day + chrono::Duration::days(1)).await?;
        // 补发: the unit pays the failed lines again four days later, in a batch of their own, and
        // the demo's bank pays every one this time (as it would once the unit had the accounts
        // corrected; the demo's roster keeps them as they were). Someone no longer owed meanwhile
        // (a death found) is screened out, as in any batch.
        if failed.1 > 0 {
            let again = pay_day + chrono::Duration::days(4);
            let retry = match flow::payout::retry(
                store,
                &report.batch_id,
                again,
                BankFormat::Daifa,
                &out.join("bank"),
            )
            .await
            {
                Ok(r) => r,
                Err(StoreError::Invalid(message)) if message.contains("owes nobody") => continue,
                Err(e) => return Err(e),
            };
            paid.batches += 1;
            paid.retry_batches += 1;
            paid.lines += retry.lines;
            paid.retried += retry.lines;
            let ((bytes, _), _) = bank_answer(&retry.file, &mut rng, 0)?;
            let path = out
                .join("bank")
                .join(format!("{}.success.txt", retry.batch_id));
            std::fs::write(&path, bytes).map_err(io)?;
            flow::payout::result(store, &path, again + chrono::Duration::days(1)).await?;
        }
    }
    Ok(paid)
}

/// A bank answer file's bytes (empty when it has no line) and its number of lines.
type AnswerFile = (Vec<u8>, usize);

/// The bank's success and failure files for a batch (批量代发 layout), with `per_mille` failures.
/// The bank reads the batch file the unit sent it (`file`), as a bank does: its header names the
/// unit and the batch, each `D` record a line to pay.
fn bank_answer(
    file: &Path,
    rng: &mut Rng,
    per_mille: u64,
) -> Result<(AnswerFile, AnswerFile), StoreError> {
    let bytes =
        std::fs::read(file).map_err(|e| StoreError::Invalid(format!("{}: {e}", file.display())))?;
    let (text, _, _) = encoding_rs::GBK.decode(&bytes);
    let damaged = |what: &str| StoreError::Invalid(format!("{}: {what}", file.display()));
    let mut records = text.lines().map(|l| l.split('|').collect::<Vec<_>>());
    let header = records.next().ok_or_else(|| damaged("empty batch file"))?;
    let (Some(&"H"), Some(unit), Some(batch_id)) = (header.first(), header.get(1), header.get(2))
    else {
        return Err(damaged("no H record first"));
    };
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for record in records {
        let [_, line, name, account, amount, ..] = record[..] else {
            return Err(damaged("a D record with fewer than five fields"));
        };
        if rng.chance(per_mille) {
            let (code, reason) = if rng.chance(500) {
                ("E01", "户名不符")
            } else {
                ("E02", "账户已销户")
            };
            failed.push(format!(
                "F|{line}|{name}|{account}|{amount}|{code}|{reason}|"
            ));
        } else {
            ok.push(format!("S|{line}|{name}|{account}|{amount}|"));
        }
    }
    let file = |lines: &[String]| -> Vec<u8> {
        if lines.is_empty() {
            return Vec::new();
        }
        let total = lines
            .iter()
            .filter_map(|l| l.split('|').nth(4).and_then(|a| a.parse::<Fen>().ok()))
            .fold(Fen::ZERO, add);
        let mut text = format!("H|{unit}|{batch_id}|20251231|{}|{total}|\r\n", lines.len());
        for l in lines {
            text.push_str(l);
            text.push_str("\r\n");
        }
        encoding_rs::GBK.encode(&text).0.into_owned()
    };
    Ok(((file(&ok), ok.len()), (file(&failed), failed.len())))
}

/// (person, amount, unit that paid) for every receivable booked: the unit of the person's latest
/// claimed month. Read through the people's claims, month by month (every line the demo writes has
/// its claim), for all of them at once: asked person by person inside one statement, SQLite built
/// a temporary index of every claim first.
async fn recovery_rows(store: &Store) -> Result<Vec<(String, Fen, String)>, StoreError> {
    use sqlx::Row;
    let booked: Vec<(String, Fen)> = sqlx::query(
        "SELECT from_owner, amount FROM flow_events WHERE kind = 'recovery' ORDER BY entry_key",
    )
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| Ok::<_, StoreError>((r.try_get(0)?, Fen(r.try_get(1)?))))
    .collect::<Result<_, _>>()?;
    let mut ids: Vec<String> = booked.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    ids.dedup();
    let mut conn = store.pool().acquire().await?;
    let rows = crate::store::fetch_in(
        &mut conn,
        store.backend(),
        &format!(
            "SELECT c.id_number, c.month, c.attempt, b.unit_code FROM {} \
             JOIN payout_batches b ON b.batch_id = c.batch_id",
            flow::payout::person_claims("IN ({list})")
        ),
        &[],
        &ids,
    )
    .await?;
    let mut latest: HashMap<String, (String, i64, String)> = HashMap::new();
    for r in &rows {
        let claim: (String, i64, String) = (r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        let slot = latest.entry(r.try_get(0)?).or_insert_with(|| claim.clone());
        if (&claim.0, claim.1) > (&slot.0, slot.1) {
            *slot = claim;
        }
    }
    Ok(booked
        .into_iter()
        .filter_map(|(id, amount)| {
            let unit = latest.get(&id)?.2.clone();
            Some((id, amount, unit))
        })
        .collect())
}

/// Released, matched, paid, held, late and recovered per city, from the ledger and the flow records.
pub async fn city_summary(
    store: &Store,
    regions: &crate::region::RegionTable,
    deadlines: &[crate::flow::deadlines::Holder],
    paid: &[crate::flow::deadlines::PaidDay],
) -> Result<BTreeMap<String, (String, CityLine)>, StoreError> {
    use sqlx::Row;
    let mut cities: BTreeMap<String, (String, CityLine)> = BTreeMap::new();
    fn slot<'a>(
        cities: &'a mut BTreeMap<String, (String, CityLine)>,
        regions: &crate::region::RegionTable,
        county: &str,
    ) -> &'a mut CityLine {
        let city = regions
            .city_of(county)
            .map(|r| (r.code.clone(), r.name.clone()))
            .unwrap_or_default();
        &mut cities
            .entry(city.0)
            .or_insert_with(|| (city.1, CityLine::default()))
            .1
    }
    for row in sqlx::query(
        "SELECT county_code, kind, CAST(SUM(amount) AS BIGINT) FROM flow_events GROUP BY county_code, kind",
    )
    .fetch_all(store.pool())
    .await?
    {
        let county: String = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let amount = Fen(row.try_get(2)?);
        let line = slot(&mut cities, regions, &county);
        match kind.as_str() {
            "release" => line.released = add(line.released, amount),
            "matching" => line.matched = add(line.matched, amount),
            "recovery_receipt" => line.recovered = add(line.recovered, amount),
            _ => {}
        }
    }
    // What the bank confirmed paid: the units' paid days (the deadline report's outflows).
    for day in paid {
        let line = slot(&mut cities, regions, &day.county);
        line.paid = add(line.paid, day.amount);
    }
    for row in sqlx::query(
        "SELECT a.county_code, CAST(SUM(b.balance) AS BIGINT) FROM accounts a JOIN balances b ON b.account_id = a.id \
         WHERE a.kind = 'held' GROUP BY a.county_code",
    )
    .fetch_all(store.pool())
    .await?
    {
        let county: String = row.try_get(0)?;
        let line = slot(&mut cities, regions, &county);
        line.held = add(line.held, Fen(row.try_get(1)?));
    }
    for holder in deadlines {
        let late: Fen = holder
            .tranches
            .iter()
            .map(|t| match t.state {
                crate::deadline::TrancheState::Stuck => t.remaining,
                crate::deadline::TrancheState::Late => t.passed_on_late,
                _ => Fen::ZERO,
            })
            .fold(Fen::ZERO, add);
        let line = slot(&mut cities, regions, &holder.county);
        line.late_or_stuck = add(line.late_or_stuck, late);
    }
    Ok(cities)
}

/// The key reports a director would open: deadlines and balances (the proof stage writes the
/// journal beside them).
async fn write_reports(
    store: &Store,
    out: &Path,
    deadlines: &[crate::flow::deadlines::Holder],
) -> Result<Vec<PathBuf>, StoreError> {
    let io = |e: std::io::Error| StoreError::Invalid(format!("{}: {e}", out.display()));
    let dir = out.join("reports");
    std::fs::create_dir_all(&dir).map_err(io)?;
    let mut written = Vec::new();
    let sheet = flow::deadlines::sheet(deadlines, date(2025, 12, 31), false);
    let path = dir.join("deadlines.xlsx");
    sheet
        .write(crate::report::OutputFormat::Xlsx, &path)
        .map_err(io)?;
    written.push(path);
    // The money's stations (budgets, funds held, returns, receivables), not every person's
    // paid accounts: a province has 700,000 of those.
    let rows = store
        .balances(&crate::store::BalanceFilter {
            kinds: vec![
                AccountKind::Budget,
                AccountKind::Held,
                AccountKind::Receivable,
                AccountKind::Returned,
            ],
            ..Default::default()
        })
        .await?;
    let mut balances = crate::report::Sheet::new(
        "账户余额 balances 2025-12-31",
        vec![
            crate::report::Column::new("county_code", "县区"),
            crate::report::Column::new("program", "项目"),
            crate::report::Column::new("owner", "户主"),
            crate::report::Column::new("kind", "科目"),
            crate::report::Column::new("balance", "余额"),
        ],
    );
    for r in &rows {
        balances.push(vec![
            r.county_code.clone().into(),
            r.program.clone().into(),
            r.owner.clone().into(),
            r.kind.clone().into(),
            r.balance.into(),
        ]);
    }
    let path = dir.join("balances.csv");
    balances
        .write(crate::report::OutputFormat::Csv, &path)
        .map_err(io)?;
    written.push(path);
    Ok(written)
}
