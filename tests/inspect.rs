//! The inspectors' reports and traces, over a small scenario run through the real `earmark` binary on
//! every backend (SQLite always, PostgreSQL when `EARMARK_TEST_PG` is set): a province release and
//! the county's matching share, a disbursement to two units, payout batches with a failed line and
//! its retry, a death found after payment and its recovery, returns by a unit and by the county.

mod common;

use std::process::Command;

use common::{Kind, TestDb};
use earmark::inspect::{self, InspectError, ReportDef};
use earmark::money::Fen;
use earmark::report::{Cell, Sheet};
use earmark::store::{BalanceFilter, Store};

/// 张三 (U1, 30 years, 900.00), 李四 (U1, 23 years, 800.00), 孙七 (U2, 15 years, 700.00; dies
/// 2025-01-15, after his February was paid).
const ZHANG: &str = "440511195803010116";
const LI: &str = "440511196207150221";
const SUN: &str = "440511195509090514";

fn run(db: &TestDb, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_earmark"))
        .arg("--db")
        .arg(&db.url)
        .args(args)
        .current_dir(db.dir.path())
        .env_remove("EARMARK_DB")
        .env_remove("EARMARK_LOG")
        .output()
        .expect("run the earmark binary");
    assert!(
        output.status.success(),
        "[{:?}] earmark {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        db.kind,
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(db: &TestDb, name: &str, text: &str) -> String {
    std::fs::write(db.dir.path().join(name), text).expect("write test input");
    name.to_string()
}

fn bank_answer(
    db: &TestDb,
    name: &str,
    batch: &str,
    lines: &[(u32, Option<(&str, &str)>)],
) -> String {
    let mut text = String::from("batch_id,line_no,status,code,reason\n");
    for (line, failure) in lines {
        match failure {
            None => text.push_str(&format!("{batch},{line},paid,,\n")),
            Some((code, reason)) => {
                text.push_str(&format!("{batch},{line},failed,{code},{reason}\n"))
            }
        }
    }
    write(db, name, &text)
}

/// The scenario, through the binary. Returns the open store.
async fn scenario(kind: Kind) -> (Store, TestDb) {
    let db = common::fresh_db(kind).await;
    let units = write(
        &db,
        "units.csv",
        "unit_code,name,county_code,township_code,kind\n\
         U440511001,金平区某小学,440511,,school\n\
         U440511002,金平区某中学,440511,,school\n",
    );
    let roster = write(
        &db,
        "roster.csv",
        &format!(
            "id_number,name,sex,birth_date,semesters,county_code,township_code,unit_code,bank_account\n\
             {ZHANG},张三,M,1958-03-01,60,440511,,U440511001,6222000000000001\n\
             {LI},李四,F,1962-07-15,45,440511,,U440511001,6222000000000002\n\
             {SUN},孙七,M,1955-09-09,30,440511,,U440511002,6222000000000003\n"
        ),
    );
    run(&db, &["init"]);
    run(&db, &["import", "units", &units]);
    run(&db, &["import", "roster", "--program", "MBDK", &roster]);
    let covers = ["--covers", "2025-01..2025-03"];
    let mut allocate = vec![
        "allocate",
        "--program",
        "MBDK",
        "--level",
        "province",
        "--document",
        "粤财教〔2025〕12号",
        "--date",
        "2025-01-10",
    ];
    allocate.extend(covers);
    run(&db, &allocate);
    let mut matching = vec![
        "match",
        "--program",
        "MBDK",
        "--document",
        "金财〔2025〕1号",
        "--date",
        "2025-01-20",
    ];
    matching.extend(covers);
    run(&db, &matching);
    let mut disburse = vec![
        "disburse",
        "--program",
        "MBDK",
        "--county",
        "440511",
        "--document",
        "金财拨〔2025〕2号",
        "--date",
        "2025-01-25",
    ];
    disburse.extend(covers);
    run(&db, &disburse);
    let payout = |unit: &str, month: &str, date: &str| {
        run(
            &db,
            &[
                "payout",
                "create",
                "--unit",
                unit,
                "--program",
                "MBDK",
                "--month",
                month,
                "--date",
                date,
                "--format",
                "csv",
                "--out",
                ".",
            ],
        );
    };
    let result = |file: &str, date: &str| {
        run(&db, &["payout", "result", file, "--date", date]);
    };
    payout("U440511001", "2025-01", "2025-02-01");
    payout("U440511002", "2025-01", "2025-02-01");
    let r1 = bank_answer(
        &db,
        "r1.csv",
        "U440511001-MBDK-2025-01-1",
        &[(1, None), (2, Some(("AC04", "账户已销户")))],
    );
    result(&r1, "2025-02-03");
    let r2 = bank_answer(&db, "r2.csv", "U440511002-MBDK-2025-01-1", &[(1, None)]);
    result(&r2, "2025-02-03");
    payout("U440511001", "2025-01", "2025-02-05"); // the retry of 李四's failed line
    let r3 = bank_answer(&db, "r3.csv", "U440511001-MBDK-2025-01-2", &[(1, None)]);
    result(&r3, "2025-02-06");
    payout("U440511002", "2025-02", "2025-03-01");
    let r4 = bank_answer(&db, "r4.csv", "U440511002-MBDK-2025-02-1", &[(1, None)]);
    result(&r4, "2025-03-02");
    payout("U440511001", "2025-02", "2025-03-01"); // left waiting for the bank
    let deaths = write(
        &db,
        "deaths.csv",
        &format!("id_number,death_date,source\n{SUN},2025-01-15,公安户籍\n"),
    );
    run(&db, &["import", "deaths", &deaths]);
    run(
        &db,
        &[
            "recover",
            "scan",
            "--program",
            "MBDK",
            "--date",
            "2025-03-10",
        ],
    );
    run(
        &db,
        &[
            "recover",
            "receive",
            "--program",
            "MBDK",
            "--id",
            SUN,
            "--unit",
            "U440511002",
            "--amount",
            "300.00",
            "--document",
            "追回〔2025〕1号",
            "--date",
            "2025-03-15",
        ],
    );
    run(
        &db,
        &[
            "return",
            "--program",
            "MBDK",
            "--from",
            "U440511002",
            "--amount",
            "100.00",
            "--document",
            "退〔2025〕1号",
            "--date",
            "2025-03-20",
        ],
    );
    run(
        &db,
        &[
            "return",
            "--program",
            "MBDK",
            "--from",
            "440511",
            "--to",
            "province",
            "--amount",
            "50.00",
            "--document",
            "退〔2025〕2号",
            "--date",
            "2025-03-21",
        ],
    );
    let store = Store::open(&db.url).await.expect("open store");
    (store, db)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn column(sheet: &Sheet, name: &str) -> usize {
    sheet
        .columns
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("column {name} missing"))
}

fn fen(sheet: &Sheet, row: usize, name: &str) -> i64 {
    match &sheet.rows[row][column(sheet, name)] {
        Cell::Money(f) => f.get(),
        Cell::Empty => 0,
        other => panic!("{name} is not money: {other:?}"),
    }
}

fn cell_text(sheet: &Sheet, row: usize, name: &str) -> String {
    sheet.rows[row][column(sheet, name)].display()
}

async fn report(store: &Store, name: &str, params: &[(&str, &str)]) -> Sheet {
    let def = inspect::find(name).expect("report exists");
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    inspect::run(store, &def, &params)
        .await
        .unwrap_or_else(|e| panic!("report {name}: {e}"))
}

fn csv_of(sheet: &Sheet) -> String {
    let mut out = Vec::new();
    sheet.write_csv(&mut out).expect("csv");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn reconciliation_ties_to_the_fen_against_the_balances() {
    runtime().block_on(async {
        for kind in common::backends() {
            let (store, _db) = scenario(kind).await;
            let sheet = report(&store, "reconciliation", &[("program", "MBDK")]).await;
            assert_eq!(sheet.rows.len(), 1, "[{kind:?}] one program in one county");
            let v = |name: &str| fen(&sheet, 0, name);
            // By hand: the documents of the scenario.
            assert_eq!(v("released_province"), 360_000, "[{kind:?}]");
            assert_eq!(v("released_city"), 0);
            assert_eq!(v("matching"), 360_000);
            assert_eq!(v("available"), 720_000);
            assert_eq!(v("disbursed"), 720_000);
            assert_eq!(
                v("accrued"),
                90_000 + 80_000 + 70_000 + 70_000 + 90_000 + 80_000
            );
            assert_eq!(v("paid"), 90_000 + 70_000 + 80_000 + 70_000);
            assert_eq!(v("pending"), 170_000);
            assert_eq!(v("failed"), 80_000);
            assert_eq!(v("returned_by_units"), 10_000);
            assert_eq!(v("returned_upward"), 5_000);
            assert_eq!(v("recovery_booked"), 70_000);
            assert_eq!(v("recovered_back"), 30_000);
            // The identities, by hand, from the documents…
            let county_held =
                v("available") - v("disbursed") - v("returned_upward") + v("returned_by_units");
            let units_held =
                v("disbursed") - v("returned_by_units") - v("paid") + v("recovered_back");
            assert_eq!(v("county_held"), county_held);
            assert_eq!(v("units_held"), units_held);
            assert_eq!(v("owed_to_persons"), v("accrued") - v("paid"));
            assert_eq!(
                v("receivable_open"),
                v("recovery_booked") - v("recovered_back")
            );
            // …and against the ledger's own balances.
            let balances = store
                .balances(&BalanceFilter {
                    program: Some("MBDK".into()),
                    ..BalanceFilter::default()
                })
                .await
                .expect("balances");
            let sum = |pred: &dyn Fn(&earmark::store::BalanceRow) -> bool| -> i64 {
                balances
                    .iter()
                    .filter(|b| pred(b))
                    .map(|b| b.balance.get())
                    .sum()
            };
            assert_eq!(sum(&|b| b.kind == "held" && b.owner == "440511"), 5_000);
            assert_eq!(
                sum(&|b| b.kind == "held" && b.owner.starts_with('U')),
                430_000
            );
            assert_eq!(
                sum(&|b| b.kind == "held" && b.owner == "440511"),
                county_held
            );
            assert_eq!(
                sum(&|b| b.kind == "held" && b.owner.starts_with('U')),
                units_held
            );
            // A payment entry pays the person's paid account from the unit's held funds at once:
            // what is owed and not yet paid is in the claims, not in a payable account.
            assert_eq!(sum(&|b| b.kind == "paid"), v("paid") - v("recovery_booked"));
            assert_eq!(sum(&|b| b.kind == "payable"), 0);
            assert!(
                v("owed_to_persons") > 0,
                "[{kind:?}] February waits for the bank"
            );
            assert_eq!(sum(&|b| b.kind == "receivable"), v("receivable_open"));
            assert_eq!(sum(&|b| b.kind == "budget"), -v("available"));
            assert_eq!(sum(&|b| b.kind == "returned"), v("returned_upward"));
            assert_eq!(cell_text(&sheet, 0, "ties"), "OK", "[{kind:?}]");
            assert_eq!(cell_text(&sheet, 0, "county_name"), "金平区");
            // The province bears half (Shantou is one of the 5:5 cities); execution 3,100 / 7,200.
            assert_eq!(cell_text(&sheet, 0, "province_share_pm"), "500");
            assert_eq!(cell_text(&sheet, 0, "province_vs_need_pct"), "100");
            assert_eq!(cell_text(&sheet, 0, "execution_pct"), "43");
            // A county filter with nothing in it gives no rows, not an error.
            let none = report(&store, "reconciliation", &[("county", "440512")]).await;
            assert!(none.rows.is_empty(), "[{kind:?}]");
            store.close().await;
        }
    });
}

#[test]
fn a_direct_payment_is_owed_and_paid_in_the_reports_and_the_trace() {
    use earmark::calendar::YearMonth;
    use earmark::flow::payout::{PaymentLine, pay};
    runtime().block_on(async {
        for kind in common::backends() {
            let (store, _db) = scenario(kind).await;
            let before = report(&store, "reconciliation", &[("program", "MBDK")]).await;
            let program = store.program("MBDK").await.expect("program");
            let march: YearMonth = "2025-03".parse().expect("month");
            let date = chrono::NaiveDate::from_ymd_opt(2025, 3, 25).expect("date");
            let lines = [PaymentLine {
                id_number: ZHANG.into(),
                month: march,
            }];
            let outcomes = pay(&store, &program, "U440511001", date, &lines)
                .await
                .expect("store")
                .expect("not refused");
            assert_eq!(outcomes[0].status, "paid", "[{kind:?}]");
            // The reconciliation counts it as owed and paid, and still ties to the balances.
            let after = report(&store, "reconciliation", &[("program", "MBDK")]).await;
            for column in ["accrued", "paid"] {
                assert_eq!(
                    fen(&after, 0, column) - fen(&before, 0, column),
                    90_000,
                    "[{kind:?}] {column}"
                );
            }
            assert_eq!(
                fen(&after, 0, "units_held"),
                fen(&before, 0, "units_held") - 90_000
            );
            assert_eq!(cell_text(&after, 0, "ties"), "OK", "[{kind:?}]");
            // 应发实发对比: March is owed and paid, nothing left over.
            let due = report(&store, "entitlement_vs_payment", &[("id_number", ZHANG)]).await;
            let row = (0..due.rows.len())
                .find(|r| cell_text(&due, *r, "month") == "2025-03")
                .unwrap_or_else(|| panic!("[{kind:?}] no March row: {}", csv_of(&due)));
            assert_eq!(fen(&due, row, "entitled"), 90_000);
            assert_eq!(fen(&due, row, "paid"), 90_000);
            assert_eq!(fen(&due, row, "difference"), 0);
            // The trace shows the payment and squares March with the rules.
            let trace = inspect::trace_person(&store, ZHANG, false)
                .await
                .expect("trace");
            let trail = trail_text(&trace.to_sheet()).join("\n");
            assert!(
                trail.contains("直接发放 | 2025-03-25") && trail.contains("pay:MBDK:"),
                "[{kind:?}] {trail}"
            );
            let months = &trace.sections[3];
            let march = months
                .rows
                .iter()
                .find(|r| r[1] == Cell::text("2025-03"))
                .expect("a March row");
            assert_eq!(march[3], Cell::Money(Fen(90_000)), "owed (latest claim)");
            assert_eq!(march[4], Cell::Money(Fen(90_000)), "paid");
            assert_eq!(march[7], Cell::text("相符 OK"));
            // Reversed, the payment counts as never made: still owed, no longer paid, in the
            // reconciliation (tied) and in the trace alike.
            let reversal = earmark::ledger::NewEntry {
                key: format!("reverse:{}", outcomes[0].entry_key),
                date,
                county: String::new(),
                program: String::new(),
                kind: earmark::ledger::EntryKind::Reversal,
                memo: "付错".into(),
                postings: Vec::new(),
                refers_to: Some(outcomes[0].entry_key.clone()),
            };
            store.post_one(reversal).await.expect("reverse");
            let reversed = report(&store, "reconciliation", &[("program", "MBDK")]).await;
            assert_eq!(fen(&reversed, 0, "paid"), fen(&before, 0, "paid"));
            assert_eq!(fen(&reversed, 0, "accrued"), fen(&after, 0, "accrued"));
            assert_eq!(cell_text(&reversed, 0, "ties"), "OK", "[{kind:?}]");
            let trace = inspect::trace_person(&store, ZHANG, false)
                .await
                .expect("trace");
            let march = trace.sections[3]
                .rows
                .iter()
                .find(|r| r[1] == Cell::text("2025-03"))
                .expect("a March row")
                .clone();
            assert_eq!(
                march[4],
                Cell::Money(Fen(0)),
                "[{kind:?}] not paid any more"
            );
            assert_eq!(march[7], Cell::text("未发 not paid"));
            store.close().await;
        }
    });
}

#[test]
fn every_report_runs_with_the_same_rows_on_every_backend() {
    runtime().block_on(async {
        let mut outputs: Vec<(Kind, Vec<(String, String)>)> = Vec::new();
        for kind in common::backends() {
            let (store, _db) = scenario(kind).await;
            let mut texts = Vec::new();
            for def in inspect::definitions() {
                // Required parameters (the county's and city's tables) get the scenario's values.
                let given: Vec<(String, String)> = def
                    .params
                    .iter()
                    .filter(|p| p.required)
                    .map(|p| {
                        let value = match p.name.as_str() {
                            "program" => "MBDK",
                            "county" => "440511",
                            "city" => "440500",
                            "year" => "2025",
                            other => panic!("report {}: no sample value for {other}", def.name),
                        };
                        (p.name.clone(), value.to_string())
                    })
                    .collect();
                let sheet = inspect::run(&store, &def, &given)
                    .await
                    .unwrap_or_else(|e| panic!("[{kind:?}] report {}: {e}", def.name));
                assert_eq!(sheet.columns.len(), def.columns.len());
                texts.push((def.name.clone(), csv_of(&sheet)));
            }
            // Spot checks of each report's content.
            let lines = report(&store, "payout_lines", &[]).await;
            assert_eq!(lines.rows.len(), 7, "[{kind:?}] seven payout lines");
            let statuses: Vec<String> = (0..lines.rows.len())
                .map(|r| cell_text(&lines, r, "status"))
                .collect();
            assert_eq!(statuses.iter().filter(|s| *s == "paid").count(), 4);
            assert_eq!(statuses.iter().filter(|s| *s == "failed").count(), 1);
            assert_eq!(statuses.iter().filter(|s| *s == "pending").count(), 2);
            let failed = report(&store, "payout_lines", &[("status", "failed")]).await;
            assert_eq!(failed.rows.len(), 1);
            assert_eq!(cell_text(&failed, 0, "id_masked"), "440511********0221");
            assert!(cell_text(&failed, 0, "result_memo").contains("AC04"));
            let releases = report(&store, "releases", &[("kind", "disbursement")]).await;
            assert_eq!(releases.rows.len(), 2);
            let recoveries = report(&store, "recoveries", &[]).await;
            assert_eq!(recoveries.rows.len(), 1);
            assert_eq!(fen(&recoveries, 0, "outstanding"), 40_000);
            assert_eq!(fen(&recoveries, 0, "receivable_balance"), 40_000);
            let due = report(&store, "entitlement_vs_payment", &[("id_number", LI)]).await;
            assert_eq!(due.rows.len(), 2, "[{kind:?}] 李四: January and February");
            assert_eq!(fen(&due, 0, "difference"), 0);
            assert_eq!(cell_text(&due, 0, "lines"), "2");
            assert_eq!(cell_text(&due, 0, "failed_lines"), "1");
            assert_eq!(
                fen(&due, 1, "difference"),
                80_000,
                "February waits for the bank"
            );
            let balances = report(&store, "balances", &[]).await;
            let total = balances.totals().expect("totals");
            assert_eq!(
                total[column(&balances, "balance")],
                Cell::Money(Fen(0)),
                "[{kind:?}] double entry: all balances sum to zero"
            );
            // Every report masks ID numbers, except the county's registry tables (名册表 and 增减情况表),
            // which carry them whole by design (the service serves those only to users with the
            // personal-data right).
            for (name, text) in &texts {
                let registry = name == "table_roster" || name == "table_changes";
                let full = text.contains(ZHANG) || text.contains(LI) || text.contains(SUN);
                assert!(
                    !full || registry,
                    "report {name} shows a whole ID number:\n{text}"
                );
                assert!(
                    full || name != "table_roster",
                    "the 名册表 lists IDs whole:\n{text}"
                );
            }
            outputs.push((kind, texts));
            store.close().await;
        }
        if let [(first_kind, first), rest @ ..] = outputs.as_slice() {
            for (kind, texts) in rest {
                for ((name, a), (_, b)) in first.iter().zip(texts) {
                    assert_eq!(a, b, "report {name}: {first_kind:?} and {kind:?} differ");
                }
            }
        }
    });
}

#[test]
fn parameter_errors_are_one_clear_line() {
    runtime().block_on(async {
        for kind in common::backends() {
            let (store, _db) = common::ledger(kind).await;
            let one_line = |e: InspectError| {
                let text = e.to_string();
                assert_eq!(text.lines().count(), 1, "{text}");
                text
            };
            let e = one_line(inspect::find("no_such_report").unwrap_err());
            assert!(e.starts_with("unknown report \"no_such_report\" (reports: "), "{e}");
            assert!(e.contains("reconciliation"), "{e}");
            let releases = inspect::find("releases").unwrap();
            let run = |def: ReportDef, params: Vec<(&str, &str)>| {
                let store = &store;
                let params: Vec<(String, String)> = params
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                async move { inspect::run(store, &def, &params).await }
            };
            let e = one_line(run(releases.clone(), vec![("couny", "440511")]).await.unwrap_err());
            assert_eq!(
                e,
                "report releases: unknown parameter \"couny\" (its parameters: program, county, kind, from, to)"
            );
            let e = one_line(run(releases.clone(), vec![("from", "2025-13-01")]).await.unwrap_err());
            assert_eq!(
                e,
                "report releases: parameter from: \"2025-13-01\" is not a date YYYY-MM-DD"
            );
            let e = one_line(run(releases.clone(), vec![("program", "NOPE")]).await.unwrap_err());
            assert!(e.starts_with("report releases: parameter program: program \"NOPE\" is not loaded"), "{e}");
            let e = one_line(run(releases.clone(), vec![("county", "440500")]).await.unwrap_err());
            assert!(e.contains("\"440500\" is not a county"), "{e}");
            let lines = inspect::find("payout_lines").unwrap();
            let e = one_line(run(lines, vec![("month", "2025-1x")]).await.unwrap_err());
            assert_eq!(e, "report payout_lines: parameter month: \"2025-1x\" is not a month YYYY-MM");
            let e = one_line(
                run(releases.clone(), vec![("kind", "release"), ("kind", "matching")])
                    .await
                    .unwrap_err(),
            );
            assert_eq!(e, "report releases: parameter kind is given twice");
            // A required parameter (none of the shipped reports needs one: a definition of our own).
            let def = ReportDef::parse(
                "name = \"by_county\"\ntitle = \"按县\"\ntitle_en = \"by county\"\n\
                 sql = \"SELECT name FROM regions WHERE code = :county\"\n\
                 [[params]]\nname = \"county\"\nlabel = \"县区代码\"\nkind = \"county\"\nrequired = true\n\
                 [[columns]]\nname = \"name\"\nlabel = \"名称\"\nlabel_en = \"name\"\nkind = \"text\"\n",
                "by_county.toml",
            )
            .expect("definition");
            let e = one_line(run(def.clone(), vec![]).await.unwrap_err());
            assert_eq!(
                e,
                "report by_county: parameter county (县区代码) is required: give --param county=…"
            );
            let sheet = run(def, vec![("county", "440511")]).await.expect("runs");
            assert_eq!(sheet.rows, vec![vec![Cell::text("金平区")]]);
            store.close().await;
        }
    });
}

fn trail_text(sheet: &Sheet) -> Vec<String> {
    sheet
        .rows
        .iter()
        .map(|r| r.iter().map(Cell::display).collect::<Vec<_>>().join(" | "))
        .collect()
}

#[test]
fn a_person_is_traced_from_the_release_to_the_bank_line() {
    runtime().block_on(async {
        for kind in common::backends() {
            let (store, _db) = scenario(kind).await;
            let trace = inspect::trace_person(&store, LI, false)
                .await
                .unwrap_or_else(|e| panic!("[{kind:?}] {e}"));
            let trail = trail_text(&trace.to_sheet());
            let position = |needle: &str| {
                trail
                    .iter()
                    .position(|l| l.contains(needle))
                    .unwrap_or_else(|| {
                        panic!("[{kind:?}] trail lacks {needle:?}:\n{}", trail.join("\n"))
                    })
            };
            let release = position("省级下达 | 2025-01-10 | 粤财教〔2025〕12号");
            let matching = position("县级配套 | 2025-01-20 | 金财〔2025〕1号");
            let disbursement =
                position("县级拨付 | 2025-01-25 | 金财拨〔2025〕2号 | 440511 → U440511001");
            let line = position("发放 | 2025-02-01 | U440511001-MBDK-2025-01-1 第2行");
            let failed = position("银行失败 | 2025-02-03 | U440511001-MBDK-2025-01-1 第2行");
            let retry = position("银行成功 | 2025-02-06 | U440511001-MBDK-2025-01-2 第1行");
            assert!(release < disbursement && matching < disbursement);
            assert!(disbursement < line && line < failed && failed < retry);
            assert!(
                trail[failed].contains("AC04 账户已销户"),
                "{}",
                trail[failed]
            );
            let text = trace.to_text();
            assert!(text.contains("440511********0221"), "{text}");
            assert!(!text.contains(LI), "the ID is masked: {text}");
            assert!(text.contains("相符 OK"), "{text}");
            // 孙七 was paid for February after his death; the recovery squares it with the rules.
            let sun = inspect::trace_person(&store, SUN, true)
                .await
                .expect("trace");
            let months = &sun.sections[3];
            assert_eq!(months.rows.len(), 2);
            assert_eq!(months.rows[1][1], Cell::text("2025-02"));
            assert_eq!(
                months.rows[1][2],
                Cell::Money(Fen(0)),
                "nothing owed after death"
            );
            assert_eq!(months.rows[1][4], Cell::Money(Fen(70_000)), "but paid");
            assert_eq!(
                months.rows[1][5],
                Cell::Money(Fen(70_000)),
                "and booked back"
            );
            assert!(sun.to_text().contains(SUN), "full shows the ID");
            store.close().await;
        }
    });
}

#[test]
fn an_entry_is_traced_up_and_down_the_chain() {
    runtime().block_on(async {
        for kind in common::backends() {
            let (store, _db) = scenario(kind).await;
            let trace =
                inspect::trace_entry(&store, "disbursement:金财拨〔2025〕2号:U440511001", false)
                    .await
                    .unwrap_or_else(|e| panic!("[{kind:?}] {e}"));
            let chain = trail_text(&trace.sections[0]);
            let joined = chain.join("\n");
            assert!(
                joined.contains("上游 up | 省级下达 | release:粤财教〔2025〕12号:440511"),
                "{joined}"
            );
            assert!(
                joined.contains("上游 up | 县级配套 | matching:金财〔2025〕1号:440511"),
                "{joined}"
            );
            assert_eq!(
                chain
                    .iter()
                    .filter(|l| l.starts_with("下游 down | 发放"))
                    .count(),
                5,
                "[{kind:?}] the unit's five lines for the covered months:\n{joined}"
            );
            let postings = trail_text(&trace.sections[2]).join("\n");
            assert!(postings.contains("U440511001:held | 5100.00"), "{postings}");
            assert!(postings.contains("440511:held | -5100.00"), "{postings}");
            // A bank answer: the batch's entry it posts, and the payment's chain up to the release.
            let post =
                inspect::trace_entry(&store, "post:payment:U440511001-MBDK-2025-01-2", false)
                    .await
                    .expect("trace");
            let links = trail_text(&post.sections[3]).join("\n");
            assert!(
                links.contains("指向 refers to | payment:U440511001-MBDK-2025-01-2"),
                "{links}"
            );
            let chain = trail_text(&post.sections[0]).join("\n");
            // The payment entry itself recognised the month's entitlement: no separate accrual.
            assert!(!chain.contains("accrual:"), "{chain}");
            // The batch's one entry: a leg per line, the unit's funds on the other side.
            let payment = inspect::trace_entry(&store, "payment:U440511001-MBDK-2025-01-2", false)
                .await
                .expect("trace");
            let legs = trail_text(&payment.sections[2]).join("\n");
            assert!(legs.contains("440511********0221:paid | "), "{legs}");
            assert!(legs.contains("U440511001:held | -"), "{legs}");
            assert!(
                chain.contains("县级拨付 | disbursement:金财拨〔2025〕2号:U440511001"),
                "{chain}"
            );
            assert!(chain.contains("省级下达"), "{chain}");
            assert!(!post.to_text().contains(LI));
            // A failed line's money back to the unit: its own entry, on the line's chain.
            let failed =
                inspect::trace_entry(&store, "failed:payment:U440511001-MBDK-2025-01-1:2", false)
                    .await
                    .unwrap_or_else(|e| panic!("[{kind:?}] {e}"));
            let legs = trail_text(&failed.sections[2]).join("\n");
            assert!(legs.contains("U440511001:held | 800.00"), "{legs}");
            assert!(legs.contains("440511********0221:paid | -800.00"), "{legs}");
            let chain = trail_text(&failed.sections[0]).join("\n");
            assert!(
                chain.contains("县级拨付 | disbursement:金财拨〔2025〕2号:U440511001"),
                "{chain}"
            );
            // A recovery: above it, the one line that paid the dead man's February (his unit found
            // through his claims; the unit pays nobody else that month).
            let recovery =
                inspect::trace_entry(&store, &format!("recovery:MBDK:{SUN}:2025-02"), false)
                    .await
                    .unwrap_or_else(|e| panic!("[{kind:?}] {e}"));
            let chain = trail_text(&recovery.sections[0]);
            let paid: Vec<&String> = chain
                .iter()
                .filter(|r| r.starts_with("上游 up | 发放 | "))
                .collect();
            assert_eq!(paid.len(), 1, "[{kind:?}] {chain:#?}");
            assert!(
                paid[0].contains("payment:U440511002-MBDK-2025-02-"),
                "[{kind:?}] {chain:#?}"
            );
            store.close().await;
        }
    });
}

#[test]
fn unknown_persons_and_entries_are_refused() {
    runtime().block_on(async {
        for kind in common::backends() {
            let (store, _db) = common::ledger(kind).await;
            let e = inspect::trace_person(&store, ZHANG, false)
                .await
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                "no person with ID number 440511********0116 is on any roster or payout line"
            );
            let e = inspect::trace_entry(&store, "release:nope:440511", false)
                .await
                .unwrap_err()
                .to_string();
            assert_eq!(e, "no entry with key \"release:nope:440511\"");
            store.close().await;
        }
    });
}

#[test]
fn a_report_as_xlsx_has_chinese_headers_and_a_totals_row() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    runtime().block_on(async {
        for kind in common::backends() {
            let (store, db) = scenario(kind).await;
            let sheet = report(&store, "reconciliation", &[]).await;
            let path = db.dir.path().join("reconciliation.xlsx");
            sheet.write_xlsx(&path).expect("xlsx");
            let mut book: Xlsx<_> = open_workbook(&path).expect("opens");
            let range = book
                .worksheet_range_at(0)
                .expect("a sheet")
                .expect("readable");
            let rows: Vec<Vec<Data>> = range.rows().map(|r| r.to_vec()).collect();
            let header = rows
                .iter()
                .position(|r| r.first() == Some(&Data::String("项目".into())))
                .expect("a header row");
            assert_eq!(rows[header][3], Data::String("测算需求(元)".into()));
            assert_eq!(rows[header][4], Data::String("省级下达(元)".into()));
            let last = rows.last().expect("rows");
            assert_eq!(last[0], Data::String("合计".into()));
            assert_eq!(last[4], Data::Float(3600.0), "[{kind:?}]");
            assert_eq!(rows.len(), header + 3, "header, one county, totals");
            store.close().await;
        }
    });
}
