//! `earmark demo`: runs the province-year and prints what a finance director reads.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Instant;

use earmark::demo::{self, Progress};
use earmark::money::Fen;
use earmark::store::Store;

use super::DemoArgs;
use super::commands::Failure;

/// A progress bar on a terminal; plain lines, one per stage, when the output is a file or a pipe.
struct Bar {
    terminal: bool,
    current: String,
    started: Instant,
}

impl Progress for Bar {
    fn stage(&mut self, name: &str, done: usize, total: usize) {
        let elapsed = self.started.elapsed().as_secs();
        if self.terminal {
            let width = 30;
            let filled = (done * width)
                .checked_div(total)
                .unwrap_or(width)
                .min(width);
            eprint!(
                "\r{name:<11} [{}{}] {done}/{total}  {elapsed}s   ",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            let _ = std::io::stderr().flush();
        } else if self.current != name {
            eprintln!("[{elapsed:>4}s] {name}");
        }
        self.current = name.to_string();
    }
}

pub async fn run(store: &Store, args: DemoArgs) -> Result<ExitCode, Failure> {
    if store.is_initialised().await? && !store.entry_counts().await?.is_empty() {
        return Err(Failure::refused(format!(
            "refused: the demo runs on an empty ledger, and {} already holds entries: pass --db demo.db (a new file) or another database",
            store.url()
        )));
    }
    let started = Instant::now();
    let mut bar = Bar {
        terminal: std::io::stderr().is_terminal(),
        current: String::new(),
        started,
    };
    let summary = demo::run(
        store,
        args.scale,
        args.seed,
        args.counties,
        usize::from(args.jobs.unwrap_or(match store.backend() {
            // The province, one after another: 248 s with 2 streams, 234 and 230 s with 3 (one
            // writes while two read and judge their next batches).
            earmark::store::Backend::Sqlite => 3,
            // The 30-county demo, alternated: payouts 61-63 s with 4 or 8 streams, 70-75 s with 2.
            earmark::store::Backend::Postgres => 4,
        })),
        &args.out,
        &mut bar,
    )
    .await?;
    if bar.terminal {
        eprintln!();
    }
    let seconds = started.elapsed().as_secs();
    println!(
        "广东省 2025年度 专项资金演示 (seed {}, scale {:?}): {} counties, {} units, {} teachers (MBDK), {} children (XQZZ)",
        args.seed, args.scale, summary.counties, summary.units, summary.teachers, summary.children
    );
    println!(
        "{} payout batches ({} of them retries), {} lines; {} failed at the bank, {} paid again in a retry batch (补发); {} deaths found in October and recovered",
        summary.batches,
        summary.retry_batches,
        summary.payout_lines,
        summary.failed_lines,
        summary.retried_lines,
        summary.deaths
    );
    println!();
    println!(
        "{:<8} {:<10} {:>16} {:>16} {:>16} {:>16} {:>14} {:>12}",
        "城市", "", "上级下达", "县级配套", "已发放", "结存", "滞留/逾期", "已追回"
    );
    let mut total = demo::CityLine::default();
    let add = |a: Fen, b: Fen| a.checked_add(b).unwrap_or(a);
    for (code, (name, line)) in &summary.cities {
        println!(
            "{code:<8} {name:<10} {:>20} {:>20} {:>19} {:>18} {:>17} {:>15}",
            line.released.grouped(),
            line.matched.grouped(),
            line.paid.grouped(),
            line.held.grouped(),
            line.late_or_stuck.grouped(),
            line.recovered.grouped()
        );
        total.released = add(total.released, line.released);
        total.matched = add(total.matched, line.matched);
        total.paid = add(total.paid, line.paid);
        total.held = add(total.held, line.held);
        total.late_or_stuck = add(total.late_or_stuck, line.late_or_stuck);
        total.recovered = add(total.recovered, line.recovered);
    }
    println!(
        "{:<8} {:<10} {:>20} {:>20} {:>19} {:>18} {:>17} {:>15}",
        "合计",
        "total",
        total.released.grouped(),
        total.matched.grouped(),
        total.paid.grouped(),
        total.held.grouped(),
        total.late_or_stuck.grouped(),
        total.recovered.grouped()
    );
    println!();
    println!(
        "check: {} ({} entries) · verify: {}",
        if summary.check_problems.is_empty() {
            "OK".to_string()
        } else {
            format!("{} problem(s)", summary.check_problems.len())
        },
        summary.entries,
        if summary.verify_broken.is_empty() {
            "OK, every county's hash chain intact".to_string()
        } else {
            format!("{} broken chain(s)", summary.verify_broken.len())
        }
    );
    for path in &summary.reports {
        println!("report: {}", path.display());
    }
    println!("bank files: {}", args.out.join("bank").display());
    println!("done in {seconds} s");
    if summary.check_problems.is_empty() && summary.verify_broken.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for p in summary.check_problems.iter().chain(&summary.verify_broken) {
            eprintln!("{p}");
        }
        Ok(ExitCode::from(1))
    }
}
