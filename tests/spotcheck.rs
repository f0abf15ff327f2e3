//! Spot checks and cross-checks on every backend: reproducible samples (the same seed gives the same
//! sample twice and on SQLite and PostgreSQL alike), the attribute sample sizes, monetary-unit
//! sampling, and a scenario with planted faults that the sweep must find, all of them and nothing
//! else; the workpaper read back with calamine.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use common::{Kind, TestDb, backends, day, ledger};
use earmark::calendar::YearMonth;
use earmark::flow::bank::BankFormat;
use earmark::flow::{AllocateRequest, DisburseRequest, Level, allocate, disburse, payout};
use earmark::id_number::{Sex, make_id};
use earmark::inspect::checks::{self, Disposition, Rule, Ruling, ViolationType};
use earmark::inspect::sample::{self, Method};
use earmark::inspect::workpaper::{self, SpotCheckRequest};
use earmark::ledger::{AccountKind, AccountRef, NewEntry, Posting};
use earmark::money::Fen;
use earmark::program::Program;
use earmark::roster::{LifeEvent, RosterEntry};
use earmark::store::{BatchMode, SideRow, SideValue, Store, Unit};
use rust_decimal::Decimal;

const MONTHLY: i64 = 90_000;

fn ym(text: &str) -> YearMonth {
    text.parse().expect("test month")
}

fn d(text: &str) -> Decimal {
    text.parse().expect("test decimal")
}

/// The persons of the scenario: (key, county, unit, birth sequence).
fn person_id(seq: u16) -> String {
    make_id("440511", day("1950-03-01"), seq)
        .as_str()
        .to_string()
}

fn entry(program: &str, seq: u16, county: &str, unit: &str) -> RosterEntry {
    RosterEntry {
        program: program.into(),
        id_number: person_id(seq),
        name: format!("教师{seq}"),
        sex: Sex::Male,
        birth_date: day("1950-03-01"),
        semesters: Some(60),
        county: county.into(),
        township: None,
        unit: Some(unit.into()),
        bank_account: Some(format!("62220000000000{seq:04}")),
        exclusion: None,
        death_date: None,
        guardian_name: None,
        guardian_id_number: None,
        enrolled_from: None,
        category: None,
        employed_from: None,
        employer_kind: None,
        left_date: None,
        left_reason: None,
    }
}

/// P1, P2 at unit UA1 and P3 at UA2 (金平 440511); P5 at UC1 (濠江 440512, under-matched); P6 at UD1
/// (潮阳 440513, the unit that never pays).
const P1: u16 = 11;
const P2: u16 = 13;
const P3: u16 = 15;
const P5: u16 = 17;
const P6: u16 = 19;

struct Scenario {
    store: Store,
    db: TestDb,
}

async fn pay(store: &Store, dir: &Path, program: &Program, unit: &str, month: &str, date: &str) {
    let report = payout::create(
        store,
        payout::PayoutRequest {
            program,
            unit,
            month: ym(month),
            date: day(date),
            format: BankFormat::Csv,
            out_dir: dir,
            only: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("payout {unit} {month}: {e}"));
    bank_paid(store, dir, &report.batch_id, report.lines, date).await;
}

/// The bank's answer: every line paid, the day after the batch.
async fn bank_paid(store: &Store, dir: &Path, batch_id: &str, lines: usize, date: &str) {
    let mut text = String::from("batch_id,line_no,status\n");
    for n in 1..=lines {
        text.push_str(&format!("{batch_id},{n},paid\n"));
    }
    let file = dir.join(format!("{batch_id}.result.csv"));
    std::fs::write(&file, text).expect("write result");
    let next = day(date).succ_opt().expect("a next day");
    payout::result(store, &file, next)
        .await
        .unwrap_or_else(|e| panic!("result {batch_id}: {e}"));
}

#[allow(clippy::too_many_arguments)]
async fn release(
    store: &Store,
    program: &Program,
    level: Level,
    document: &str,
    date: &str,
    months: (&str, &str),
    county: Option<&str>,
    amounts: Option<HashMap<String, Fen>>,
) {
    allocate(
        store,
        AllocateRequest {
            program,
            level,
            document,
            date: day(date),
            from: ym(months.0),
            to: ym(months.1),
            county,
            amounts,
            dry_run: false,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("allocate {document}: {e}"));
}

async fn pass_on(store: &Store, program: &Program, county: &str, date: &str, months: (&str, &str)) {
    disburse(
        store,
        DisburseRequest {
            program,
            county,
            document: &format!("{county}拨〔2025〕{}号", months.0),
            date: day(date),
            from: ym(months.0),
            to: ym(months.1),
            amounts: None,
            dry_run: false,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("disburse {county}: {e}"));
}

/// A payment no screen would let through, as a legacy import might have recorded it: P3's February
/// paid a second time, by unit UA1 (P3 belongs to UA2), with the bank's answer.
async fn plant_duplicate(store: &Store, dir: &Path) {
    let id = person_id(P3);
    let batch = "UA1-MBDK-2025-02-LEGACY";
    let entries = vec![
        NewEntry::normal(
            format!("payment:{batch}"),
            day("2025-03-14"),
            "440511",
            "MBDK",
            format!("发放 {batch} 2025-02 1行"),
            vec![
                Posting {
                    account: AccountRef::new(id.clone(), AccountKind::Paid),
                    amount: Fen(MONTHLY),
                },
                Posting {
                    account: AccountRef::new("UA1", AccountKind::Held),
                    amount: Fen(-MONTHLY),
                },
            ],
        )
        .pending(),
    ];
    let side = vec![
        SideRow {
            entry: None,
            table: "payout_lines",
            columns: &[
                "batch_id",
                "line_no",
                "id_number",
                "name",
                "account",
                "amount",
                "month",
                "payment_key",
            ],
            values: vec![
                batch.into(),
                SideValue::Int(1),
                id.clone().into(),
                format!("教师{P3}").into(),
                format!("62220000000000{P3:04}").into(),
                SideValue::Int(MONTHLY),
                "2025-02".into(),
                format!("payment:{batch}:1").into(),
            ],
        },
        SideRow {
            entry: None,
            table: "payout_batches",
            columns: &[
                "batch_id",
                "unit_code",
                "program",
                "county_code",
                "month",
                "business_date",
                "format",
                "file_name",
                "line_count",
                "control_total",
                "created_at",
            ],
            values: vec![
                batch.into(),
                "UA1".into(),
                "MBDK".into(),
                "440511".into(),
                "2025-02".into(),
                "2025-03-14".into(),
                "csv".into(),
                "legacy.csv".into(),
                SideValue::Int(1),
                SideValue::Int(MONTHLY),
                "2025-03-14T09:00:00".into(),
            ],
        },
    ];
    store
        .post_with(&entries, BatchMode::AllOrNothing, &side)
        .await
        .expect("plant the duplicate");
    bank_paid(store, dir, batch, 1, "2025-03-14").await;
}

/// Builds the scenario: MBDK for January to March 2025 in three counties of Shantou (5:5 province
/// and local, the local part the county's), and MBDKX, a program excluding MBDK, paying P1 in
/// February. Faults planted: P2 paid for February though dead since 20 January (the death arrives
/// after the payment); P3 paid twice for February; P1 paid by both MBDK and MBDKX for February;
/// 濠江 matched 900.00 of its 1,350.00 share; unit UD1 never pays what it received on 10 January.
async fn scenario(kind: Kind) -> Scenario {
    let (store, db) = ledger(kind).await;
    let dir = db.dir.path().to_path_buf();
    let unit = |code: &str, county: &str| Unit {
        code: code.into(),
        name: format!("{code} 教育局"),
        county: county.into(),
        township: None,
        kind: "education_bureau".into(),
    };
    store
        .register_units(&[
            unit("UA1", "440511"),
            unit("UA2", "440511"),
            unit("UC1", "440512"),
            unit("UD1", "440513"),
        ])
        .await
        .expect("units");
    let mbdk = store.program("MBDK").await.expect("MBDK");
    let roster = vec![
        (2, entry("MBDK", P1, "440511", "UA1")),
        (3, entry("MBDK", P2, "440511", "UA1")),
        (4, entry("MBDK", P3, "440511", "UA2")),
        (5, entry("MBDK", P5, "440512", "UC1")),
        (6, entry("MBDK", P6, "440513", "UD1")),
    ];
    common::register_roster_persons(&store, &roster).await;
    store
        .roster_import("MBDK", &roster, false)
        .await
        .expect("roster");
    // MBDKX is loaded without its exclusion: the rule that it cannot be combined with MBDK comes
    // only after February's payments (a payment made then is no longer blocked at posting time,
    // and only the sweep can find it).
    let text = earmark::program::BUILTIN[0]
        .1
        .replacen("code = \"MBDK\"", "code = \"MBDKX\"", 1);
    let mbdkx = store
        .load_program(&text, "mbdkx.toml")
        .await
        .expect("MBDKX");
    let roster_x = vec![(2, entry("MBDKX", P1, "440511", "UA1"))];
    store
        .roster_import("MBDKX", &roster_x, false)
        .await
        .expect("roster X");

    let q1 = ("2025-01", "2025-03");
    release(
        &store,
        &mbdk,
        Level::Province,
        "粤财教〔2025〕1号",
        "2025-01-06",
        q1,
        None,
        None,
    )
    .await;
    for county in ["440511", "440513"] {
        release(
            &store,
            &mbdk,
            Level::County,
            "县配套〔2025〕1号",
            "2025-01-06",
            q1,
            Some(county),
            None,
        )
        .await;
    }
    // 濠江 puts in 900.00 of its 1,350.00.
    let short: HashMap<String, Fen> = [("440512".to_string(), Fen(MONTHLY))].into();
    release(
        &store,
        &mbdk,
        Level::County,
        "濠财配〔2025〕1号",
        "2025-01-06",
        q1,
        Some("440512"),
        Some(short),
    )
    .await;
    pass_on(&store, &mbdk, "440511", "2025-01-10", q1).await;
    pass_on(&store, &mbdk, "440513", "2025-01-10", q1).await;
    // 濠江 can fund January and February only, and returns the rest to the province in time.
    pass_on(
        &store,
        &mbdk,
        "440512",
        "2025-01-10",
        ("2025-01", "2025-02"),
    )
    .await;
    earmark::flow::return_funds(
        &store,
        &mbdk,
        "440512",
        Some(Level::Province),
        Fen(MONTHLY / 2),
        "濠财退〔2025〕1号",
        day("2025-01-20"),
    )
    .await
    .expect("return");

    for (month, date) in [("2025-01", "2025-01-15"), ("2025-02", "2025-02-14")] {
        for unit in ["UA1", "UA2", "UC1"] {
            pay(&store, &dir, &mbdk, unit, month, date).await;
        }
    }
    // 卫健 data arrives after February's payment: P2 died on 20 January.
    store
        .record_life_events(
            &[(
                2,
                LifeEvent::Death {
                    id_number: person_id(P2),
                    date: day("2025-01-20"),
                    source: "卫健".into(),
                },
            )],
            "deaths.csv",
        )
        .await
        .expect("deaths");
    for unit in ["UA1", "UA2"] {
        pay(&store, &dir, &mbdk, unit, "2025-03", "2025-03-14").await;
    }
    plant_duplicate(&store, &dir).await;

    let feb = ("2025-02", "2025-02");
    release(
        &store,
        &mbdkx,
        Level::Province,
        "粤财教〔2025〕9号",
        "2025-02-03",
        feb,
        None,
        None,
    )
    .await;
    release(
        &store,
        &mbdkx,
        Level::County,
        "金财配〔2025〕9号",
        "2025-02-03",
        feb,
        Some("440511"),
        None,
    )
    .await;
    pass_on(&store, &mbdkx, "440511", "2025-02-05", feb).await;
    pay(&store, &dir, &mbdkx, "UA1", "2025-02", "2025-02-14").await;
    store
        .load_program(
            &text.replacen("excludes = []", "excludes = [\"MBDK\"]", 1),
            "mbdkx.toml (March: excludes MBDK)",
        )
        .await
        .expect("MBDKX excludes MBDK");
    Scenario { store, db }
}

fn request(method: Method, size: Option<usize>, seed: u64) -> SpotCheckRequest {
    SpotCheckRequest {
        program: "MBDK".into(),
        county: None,
        from: ym("2025-01"),
        to: ym("2025-03"),
        method,
        size,
        confidence: d("95"),
        tolerable: d("5"),
        seed,
    }
}

async fn drawn(store: &Store, method: Method, size: usize, seed: u64) -> Vec<String> {
    workpaper::spot_check(store, request(method, Some(size), seed))
        .await
        .unwrap_or_else(|e| panic!("spot check {method:?}: {e}"))
        .items
        .iter()
        .map(|i| i.payment.clone())
        .collect()
}

#[test]
fn attribute_sample_sizes_are_45_at_90_and_59_at_95_percent_for_5_percent() {
    assert_eq!(sample::attribute_size(d("90"), d("5")), Ok(45));
    assert_eq!(sample::attribute_size(d("95"), d("5")), Ok(59));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_seed_gives_the_same_sample_twice_and_on_every_backend() {
    let mut per_backend: Vec<BTreeMap<&str, Vec<String>>> = Vec::new();
    for kind in backends() {
        let s = scenario(kind).await;
        let mut samples = BTreeMap::new();
        for (method, name) in [
            (Method::Simple, "simple"),
            (Method::Stratified, "stratified"),
            (Method::Monetary, "monetary"),
        ] {
            let first = drawn(&s.store, method, 5, 20_250_101).await;
            let again = drawn(&s.store, method, 5, 20_250_101).await;
            assert_eq!(first, again, "{kind:?} {name}: same seed, same sample");
            assert!(!first.is_empty() && first.len() <= 5);
            samples.insert(name, first);
        }
        // The population is the 11 posted MBDK payments of the quarter.
        let check = workpaper::spot_check(&s.store, request(Method::Simple, Some(11), 1))
            .await
            .expect("everything");
        assert_eq!(check.sample.population_count, 11);
        assert_eq!(check.sample.population_total, Fen(11 * MONTHLY));
        // A sample larger than the population: one clear line.
        let err = workpaper::spot_check(&s.store, request(Method::Simple, Some(12), 1))
            .await
            .expect_err("12 of 11");
        let message = err.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.contains("larger than the population of 11"),
            "{message}"
        );
        // Sized from confidence and tolerable rate: 59 of 11 is refused the same way.
        let err = workpaper::spot_check(&s.store, request(Method::Simple, None, 1))
            .await
            .expect_err("59 of 11");
        assert!(err.to_string().contains("a sample of 59"), "{err}");
        // MUS: every payment of at least J is taken; with 11 of 900.00 asked J = 900.00.
        let all = workpaper::spot_check(&s.store, request(Method::Monetary, Some(11), 3))
            .await
            .expect("mus");
        assert_eq!(all.sample.interval, Some(Fen(MONTHLY)));
        assert_eq!(all.items.len(), 11);
        assert!(all.items.iter().all(|i| i.top_stratum));
        let some = workpaper::spot_check(&s.store, request(Method::Monetary, Some(4), 3))
            .await
            .expect("mus");
        let j = some.sample.interval.expect("J");
        assert_eq!(j, Fen((11 * MONTHLY + 3) / 4));
        assert_eq!(some.items.len(), 4);
        let uml = some.uml.expect("a UML for MUS");
        assert!(
            uml.limit >= Fen(3 * j.get()),
            "at least the basic precision"
        );
        per_backend.push(samples);
    }
    for other in &per_backend[1..] {
        assert_eq!(other, &per_backend[0], "SQLite and PostgreSQL draw alike");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_planted_fault_is_found_and_nothing_else_is_flagged() {
    for kind in backends() {
        let s = scenario(kind).await;
        let as_of = day("2025-04-30");
        let findings = checks::sweep(&s.store, as_of).await.expect("sweep");
        let got: Vec<(String, String, String, i64)> = findings
            .iter()
            .map(|f| {
                (
                    f.rule.code().to_string(),
                    f.county.clone(),
                    f.shown_id(true),
                    f.amount.get(),
                )
            })
            .collect();
        let mut expected = vec![
            ("R01".into(), "440511".into(), person_id(P2), MONTHLY),
            ("R03".into(), "440511".into(), person_id(P3), MONTHLY),
            ("R04".into(), "440511".into(), person_id(P1), MONTHLY),
            ("R07".into(), "440513".into(), String::new(), MONTHLY),
            ("R07".into(), "440513".into(), String::new(), MONTHLY),
            ("R07".into(), "440513".into(), String::new(), MONTHLY),
            ("R08".into(), "440512".into(), String::new(), MONTHLY / 2),
        ];
        expected.sort();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "{kind:?}: {findings:#?}");
        let dead = &findings[0];
        assert_eq!(dead.rule, Rule::PaidAfterDeath);
        assert_eq!(dead.payments, vec!["UA1-MBDK-2025-02-1:2".to_string()]);
        assert!(dead.shown_id(false).contains("********"));
        let twice = findings
            .iter()
            .find(|f| f.rule == Rule::PaidTwice)
            .expect("R03");
        assert_eq!(twice.payments.len(), 2);
        assert!(
            twice
                .payments
                .contains(&"UA1-MBDK-2025-02-LEGACY:1".to_string())
        );
        assert!(
            findings
                .iter()
                .filter(|f| f.rule == Rule::FundsStranded)
                .all(|f| f.detail.contains("UD1"))
        );

        // Recorded once: a second sweep adds nothing.
        assert_eq!(
            checks::record(&s.store, &findings, as_of)
                .await
                .expect("record"),
            7
        );
        let again = checks::sweep(&s.store, as_of).await.expect("sweep again");
        assert_eq!(
            checks::record(&s.store, &again, as_of)
                .await
                .expect("record"),
            0
        );
        let listed = checks::list(&s.store, as_of).await.expect("list");
        assert_eq!(listed.len(), 7);
        let first = listed.iter().find(|f| f.rule == "R01").expect("R01 listed");
        let ruling = Ruling {
            disposition: Disposition::Violation,
            violation_type: Some(ViolationType::Impersonation),
            amount_to_recover: Fen(MONTHLY),
            rectify_by: Some(day("2025-05-31")),
            ruled_by: "省教育厅 张三".into(),
            ruled_at: as_of,
        };
        checks::rule(&s.store, first.id, &ruling)
            .await
            .expect("rule");
        let err = checks::rule(&s.store, first.id, &ruling)
            .await
            .expect_err("a ruling is final");
        assert!(err.to_string().contains("already ruled"), "{err}");
        let normal_with_type = Ruling {
            disposition: Disposition::Normal,
            ..ruling.clone()
        };
        assert!(
            checks::rule(&s.store, listed[1].id, &normal_with_type)
                .await
                .is_err()
        );
        let later = checks::list(&s.store, day("2025-06-10"))
            .await
            .expect("list");
        let ruled = later.iter().find(|f| f.id == first.id).expect("ruled");
        assert_eq!(ruled.status, "ruled");
        assert_eq!(ruled.violation_type.as_deref(), Some("impersonation"));
        assert_eq!(ruled.days_overdue, 10);
        assert!(
            later
                .iter()
                .filter(|f| f.id != first.id)
                .all(|f| f.days_overdue == 0)
        );

        // The scorecard ranks the three counties and their city.
        let card = checks::scorecard(&s.store, as_of).await.expect("scorecard");
        let regions: Vec<String> = card.rows.iter().map(|r| r[2].display()).collect();
        assert_eq!(regions.len(), 4, "{regions:?}");
        assert!(regions.contains(&"440500".to_string()));
        let row = |code: &str| {
            card.rows
                .iter()
                .find(|r| r[2].display() == code)
                .expect("row")
                .clone()
        };
        // What each county paid: its lines the bank answered paid by the report date; checked
        // also on the first answer's day, when the later answers must not count.
        let first_answer: String =
            sqlx::query_scalar("SELECT MIN(entry_date) FROM payout_results WHERE status = 'paid'")
                .fetch_one(s.store.pool())
                .await
                .expect("first answer");
        let first_answer = day(&first_answer);
        let early = checks::scorecard(&s.store, first_answer)
            .await
            .expect("scorecard");
        let paid_shown = |card: &earmark::report::Sheet, county: &str| {
            card.rows
                .iter()
                .find(|r| r[2].display() == county)
                .map(|r| r[6].display())
        };
        let mut earlier_differs = false;
        for county in ["440511", "440512", "440513"] {
            for (sheet, date) in [(&card, as_of), (&early, first_answer)] {
                let paid: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(l.amount), 0) AS BIGINT) FROM payout_lines l \
                     JOIN payout_batches b ON b.batch_id = l.batch_id \
                     JOIN payout_results e ON e.payment_key = l.payment_key AND e.status = 'paid' \
                     WHERE b.county_code = $1 AND e.entry_date <= $2",
                )
                .bind(county)
                .bind(date.format("%Y-%m-%d").to_string())
                .fetch_one(s.store.pool())
                .await
                .expect("paid lines");
                let shown = paid_shown(sheet, county);
                if shown.is_some() || paid != 0 {
                    assert_eq!(
                        shown,
                        Some(Fen(paid).to_string()),
                        "{county} paid by {date}"
                    );
                }
            }
            earlier_differs |= paid_shown(&early, county) != paid_shown(&card, county);
        }
        assert!(
            earlier_differs,
            "some line was answered after the first answer's day"
        );
        assert_ne!(
            row("440511")[6].display(),
            Fen::ZERO.to_string(),
            "金平 paid"
        );
        // 潮阳 paid nothing of what it received and holds three stuck tranches.
        assert_eq!(row("440513")[8].display(), "0.0");
        assert_eq!(row("440513")[14].display(), "3");
        assert_eq!(
            row("440511")[11].display(),
            "1",
            "one finding ruled in 金平"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workpaper_has_its_cover_and_a_verdict_per_payment() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    for kind in backends() {
        let s = scenario(kind).await;
        let check = workpaper::spot_check(&s.store, request(Method::Simple, Some(11), 77))
            .await
            .expect("spot check");
        let by_payment: HashMap<&str, &workpaper::TrailItem> = check
            .items
            .iter()
            .map(|i| (i.payment.as_str(), i))
            .collect();
        let dead = by_payment["UA1-MBDK-2025-02-1:2"];
        assert!(!dead.checks.alive && !dead.checks.amount && dead.checks.eligible);
        assert_eq!(dead.entitled, Fen::ZERO);
        let legacy = by_payment["UA1-MBDK-2025-02-LEGACY:1"];
        assert!(!legacy.checks.not_duplicated && !legacy.checks.deadline);
        assert!(legacy.checks.amount && legacy.checks.alive);
        let ok = by_payment["UA2-MBDK-2025-01-1:1"];
        assert!(ok.checks.pass(), "{ok:#?}");
        assert_eq!(ok.province_documents[0].document, "粤财教〔2025〕1号");
        assert_eq!(ok.county_documents[0].document, "县配套〔2025〕1号");
        assert_eq!(
            ok.disbursement.as_ref().expect("disbursed").date,
            day("2025-01-10")
        );
        assert_eq!(ok.bank_date, day("2025-01-16"));
        assert_eq!(ok.deadline, Some(day("2025-02-10")));
        // Failing: P2's February (dead), and both February payments of P3 (one late as well).
        assert_eq!(check.failed(), 3, "{:#?}", check.items);

        let path = s.db.dir.path().join("workpaper.xlsx");
        workpaper::write_workpaper(&check, &path).expect("write");
        let mut book: Xlsx<_> = open_workbook(&path).expect("open workpaper");
        assert_eq!(book.sheet_names(), vec!["封面", "抽查明细"]);
        let cover = book.worksheet_range("封面").expect("cover");
        let value = |label: &str| -> String {
            cover
                .rows()
                .find(|r| r.first().is_some_and(|c| *c == label))
                .and_then(|r| r.get(1).map(Data::to_string))
                .unwrap_or_else(|| panic!("cover has no {label}"))
        };
        assert_eq!(value("随机种子"), "77");
        assert_eq!(value("样本量"), "11");
        assert_eq!(value("总体笔数"), "11");
        assert_eq!(value("总体金额"), "9900");
        assert_eq!(value("期间"), "2025-01..2025-03");
        assert_eq!(value("不通过笔数"), "3");
        assert!(value("抽样方法").contains("简单随机"));
        assert!(value("误差上限").contains("不适用"));
        let detail = book.worksheet_range("抽查明细").expect("detail");
        let rows: Vec<Vec<String>> = detail
            .rows()
            .map(|r| r.iter().map(Data::to_string).collect())
            .collect();
        let header = &rows[0];
        let col = |name: &str| header.iter().position(|h| h == name).expect(name);
        let (result, payment, id) = (col("结论"), col("付款编号"), col("身份证号"));
        assert_eq!(rows.len(), 12);
        let fails: Vec<&str> = rows[1..]
            .iter()
            .filter(|r| r[result] == "FAIL")
            .map(|r| r[payment].as_str())
            .collect();
        assert_eq!(fails.len(), 3, "{fails:?}");
        assert!(fails.contains(&"UA1-MBDK-2025-02-1:2"));
        assert!(
            rows[1..]
                .iter()
                .all(|r| r[result] == "FAIL" || r[result] == "PASS")
        );
        assert!(
            rows[1..].iter().all(|r| r[id].contains("********")),
            "IDs masked"
        );

        // The same rows as CSV and JSON through the report sheet.
        let sheet = workpaper::sheet(&check, false);
        let mut csv = Vec::new();
        sheet.write_csv(&mut csv).expect("csv");
        let csv = String::from_utf8(csv).expect("utf-8");
        assert_eq!(
            csv.matches(",FAIL\r\n").count() + csv.matches(",FAIL\n").count(),
            3
        );
        let json: serde_json::Value = serde_json::from_str(&sheet.to_json()).expect("json");
        assert!(json.to_string().contains("UA1-MBDK-2025-02-LEGACY:1"));

        // MUS on the cover: the interval and the upper misstatement limit.
        let mus = workpaper::spot_check(&s.store, request(Method::Monetary, Some(11), 5))
            .await
            .expect("mus");
        let uml = mus.uml.clone().expect("uml");
        // Two payments overstated by all they paid (P2's February, the second of P3's February),
        // both in the top stratum: their actual error is added to 3.00 × J.
        assert_eq!(uml.top_stratum_errors, Fen(2 * MONTHLY));
        assert_eq!(uml.limit, Fen(3 * MONTHLY + 2 * MONTHLY));
        let path = s.db.dir.path().join("mus.xlsx");
        workpaper::write_workpaper(&mus, &path).expect("write");
        let mut book: Xlsx<_> = open_workbook(&path).expect("open");
        let cover = book.worksheet_range("封面").expect("cover");
        let find = |label: &str| {
            cover
                .rows()
                .find(|r| r.first().is_some_and(|c| *c == label))
                .and_then(|r| r.get(1).map(Data::to_string))
                .unwrap_or_default()
        };
        assert_eq!(find("抽样间距"), "900");
        assert_eq!(find("误差上限"), "4500");
    }
}
