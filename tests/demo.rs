//! The small-scale demo runs on every backend; its summary ties to the reports, and the same seed
//! gives the same year twice, whether its counties are paid one after another or side by side.

mod common;

use std::process::Command;

fn earmark(db: &str, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_earmark"))
        .arg("--db")
        .arg(db)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run earmark");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The summary lines that carry figures (the elapsed time and file paths are left out).
fn figures(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| {
            !l.starts_with("done in") && !l.starts_with("report:") && !l.starts_with("bank files:")
        })
        .map(str::to_string)
        .collect()
}

fn column(csv: &str, name: &str) -> Vec<String> {
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let i = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    // The last row of a report with totals is its 合计 row: left out, the rows are summed here.
    lines
        .filter(|l| !l.starts_with("合计"))
        .map(|l| l.split(',').nth(i).unwrap_or("").to_string())
        .collect()
}

fn fen(text: &str) -> i64 {
    text.parse::<earmark::money::Fen>()
        .map(|f| f.get())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_small_demo_runs_ties_to_the_reports_and_repeats_exactly() {
    let mut first_run: Option<Vec<String>> = None;
    for kind in common::backends() {
        for attempt in 0..2 {
            let db = common::fresh_db(kind).await;
            // One stream of counties, then four side by side: the same year either way.
            let jobs = if attempt == 0 { "1" } else { "4" };
            let (code, stdout, stderr) = earmark(
                &db.url,
                db.dir.path(),
                &["demo", "--scale", "small", "--seed", "7", "--jobs", jobs],
            );
            assert_eq!(
                code, 0,
                "[{kind:?}] demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
            );
            assert!(stdout.contains("check: OK"), "{stdout}");
            assert!(stdout.contains("verify: OK"), "{stdout}");
            // The same seed gives the same year, to the fen, on either database.
            let got = figures(&stdout);
            match &first_run {
                None => first_run = Some(got),
                Some(expected) => assert_eq!(
                    &got, expected,
                    "[{kind:?} run {attempt}, --jobs {jobs}] another year came out"
                ),
            }
            // The bank's failed lines were paid again in retry batches (补发), save any the screen
            // kept out (a death found meanwhile).
            let counts = stdout
                .lines()
                .find(|l| l.contains("failed at the bank"))
                .unwrap_or_else(|| panic!("no payout line in\n{stdout}"));
            let number_before = |marker: &str| -> usize {
                let head = &counts[..counts.find(marker).unwrap_or_else(|| panic!("{counts}"))];
                let word = head.split_whitespace().last().unwrap_or_default();
                word.trim_start_matches('(')
                    .parse()
                    .unwrap_or_else(|_| panic!("{counts}"))
            };
            let (failed, retried, retry_batches) = (
                number_before(" failed at the bank"),
                number_before(" paid again in a retry batch"),
                number_before(" of them retries"),
            );
            assert!(
                failed > 0 && retried > 0 && retried <= failed && retry_batches > 0,
                "{counts}"
            );
            // The summary's total paid equals the payout-lines report, and every reconciliation line ties.
            let (code, recon, stderr) =
                earmark(&db.url, db.dir.path(), &["report", "reconciliation"]);
            assert_eq!(code, 0, "{stderr}");
            // Run in parts, a program each (on SQLite), it gives the rows its one statement gives.
            let whole = {
                let store = earmark::store::Store::open(&db.url).await.expect("open");
                let mut def = earmark::inspect::engine::find("reconciliation").expect("defined");
                assert_eq!(def.split_by.as_deref(), Some("program"));
                def.split_by = None;
                let sheet = earmark::inspect::engine::run(&store, &def, &[])
                    .await
                    .expect("the reconciliation in one statement");
                store.close().await;
                let mut csv = Vec::new();
                sheet.write_csv(&mut csv).expect("csv");
                String::from_utf8(csv).expect("utf-8")
            };
            assert_eq!(recon, whole, "[{kind:?}] the reconciliation in parts");
            let programs: std::collections::BTreeSet<String> =
                column(&recon, "program").into_iter().collect();
            assert!(programs.len() >= 2, "{programs:?}");
            assert!(
                column(&recon, "ties")
                    .iter()
                    .filter(|t| !t.is_empty())
                    .all(|t| t == "OK"),
                "{recon}"
            );
            let paid_report: i64 = column(&recon, "paid").iter().map(|v| fen(v)).sum();
            let total_line = stdout
                .lines()
                .find(|l| l.starts_with("合计"))
                .expect("a total line");
            let numbers: Vec<i64> = total_line
                .split_whitespace()
                .filter_map(|w| w.replace(',', "").parse::<earmark::money::Fen>().ok())
                .map(|f| f.get())
                .collect();
            // 上级下达, 县级配套, 已发放, 结存, 滞留/逾期, 已追回
            assert_eq!(numbers.len(), 6, "{total_line}");
            let released_report: i64 = column(&recon, "released_province")
                .iter()
                .map(|v| fen(v))
                .sum::<i64>()
                + column(&recon, "released_city")
                    .iter()
                    .map(|v| fen(v))
                    .sum::<i64>();
            let matched_report: i64 = column(&recon, "matching").iter().map(|v| fen(v)).sum();
            assert_eq!(
                numbers[0], released_report,
                "released ties to the reconciliation"
            );
            assert_eq!(
                numbers[1], matched_report,
                "matching ties to the reconciliation"
            );
            assert_eq!(numbers[2], paid_report, "paid ties to the reconciliation");
            let (code, _, stderr) = earmark(&db.url, db.dir.path(), &["check"]);
            assert_eq!(code, 0, "{stderr}");
        }
    }
}
