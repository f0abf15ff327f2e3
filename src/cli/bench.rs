//! `earmark bench`: posts N two-posting entries through the ledger in batches, and inserts the very
//! same rows (one entry row, two posting rows each) with plain multi-row INSERTs into a fresh database
//! of the same schema: the physical limit. The ratio shows what the ledger's own work costs.

use std::time::Instant;

use chrono::NaiveDate;
use sqlx::AssertSqlSafe;

use earmark::ledger::{AccountKind, AccountRef, NewEntry, Posting};
use earmark::money::Fen;
use earmark::store::bulk::{BulkInsert, Cell};
use earmark::store::{BatchMode, Store};

use super::BenchArgs;
use super::commands::Failure;

pub async fn run(args: &BenchArgs) -> Result<(), Failure> {
    if args.entries == 0 || args.batch == 0 {
        return Err(Failure::refused(
            "refused: --entries and --batch must be at least 1",
        ));
    }
    println!(
        "earmark bench: {} entries of two postings, {} per transaction, {} stream(s); {} cores",
        args.entries,
        args.batch,
        args.streams,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:<10} {:>14} {:>16} {:>8} {:>16} {:>16}",
        "database", "ledger e/s", "raw insert e/s", "ratio", "ledger peak MiB", "raw peak MiB"
    );
    let dir = tempdir()?;
    if !args.no_sqlite {
        let ledger_url = dir.join("bench-ledger.db").display().to_string();
        let raw_url = dir.join("bench-raw.db").display().to_string();
        measure("sqlite", &ledger_url, &raw_url, args).await?;
    }
    if let Some(server) = &args.postgres {
        let ledger_url = fresh_pg_database(server, "earmark_bench_ledger").await?;
        let raw_url = fresh_pg_database(server, "earmark_bench_raw").await?;
        measure("postgres", &ledger_url, &raw_url, args).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn measure(
    name: &str,
    ledger_url: &str,
    raw_url: &str,
    args: &BenchArgs,
) -> Result<(), Failure> {
    let trouble = |e: earmark::store::StoreError| Failure::trouble(format!("error: {e}"));
    let counties = {
        let store = Store::open(ledger_url).await.map_err(trouble)?;
        store.init().await.map_err(trouble)?;
        let counties: Vec<String> = store
            .regions()
            .await
            .map_err(trouble)?
            .counties()
            .map(|r| r.code.clone())
            .collect();
        store.close().await;
        counties
    };
    // Ledger: validation, idempotency, scope, balances, overdraft rule, hash chain, batched writes.
    reset_peak_memory();
    let store = Store::open(ledger_url).await.map_err(trouble)?;
    let started = Instant::now();
    let streams = usize::from(args.streams);
    // Which entries each stream posts; the raw insert splits them the same way.
    let plans: Vec<Vec<usize>> = (0..streams)
        .map(|stream| stream_entries(args.entries, counties.len(), streams, stream))
        .collect();
    futures_util::future::try_join_all(plans.iter().map(|mine| {
        let store = &store;
        let counties = &counties;
        async move {
            for chunk in mine.chunks(args.batch) {
                let batch: Vec<NewEntry> =
                    chunk.iter().map(|&i| bench_entry(i, counties)).collect();
                store.post(&batch, BatchMode::AllOrNothing).await?;
            }
            Ok::<(), earmark::store::StoreError>(())
        }
    }))
    .await
    .map_err(trouble)?;
    let ledger_micros = started.elapsed().as_micros().max(1);
    let ledger_peak = peak_memory_mib();
    store.close().await;

    // Raw: the same rows, inserted with no ledger logic at all.
    let raw = Store::open(raw_url).await.map_err(trouble)?;
    reset_peak_memory();
    let started = Instant::now();
    futures_util::future::try_join_all(
        plans
            .iter()
            .map(|mine| raw_insert(&raw, mine, args.batch, &counties)),
    )
    .await
    .map_err(trouble)?;
    let raw_micros = started.elapsed().as_micros().max(1);
    let raw_peak = peak_memory_mib();
    raw.close().await;

    // Rates in whole entries per second and the ratio in hundredths, in integer arithmetic.
    let ledger_rate = args.entries as u128 * 1_000_000 / ledger_micros;
    let raw_rate = args.entries as u128 * 1_000_000 / raw_micros;
    let ratio_hundredths = ledger_rate * 100 / raw_rate.max(1);
    println!(
        "{:<10} {:>14} {:>16} {:>5}.{:02} {:>16} {:>16}",
        name,
        ledger_rate,
        raw_rate,
        ratio_hundredths / 100,
        ratio_hundredths % 100,
        ledger_peak
            .map(|m| m.to_string())
            .unwrap_or_else(|| "?".into()),
        raw_peak
            .map(|m| m.to_string())
            .unwrap_or_else(|| "?".into()),
    );
    Ok(())
}

/// The entry numbers a stream posts: those of its counties (county `i % counties`, every
/// `streams`-th county from `stream`), in order.
fn stream_entries(entries: usize, counties: usize, streams: usize, stream: usize) -> Vec<usize> {
    (0..entries)
        .filter(|i| (i % counties) % streams == stream)
        .collect()
}

fn bench_entry(i: usize, counties: &[String]) -> NewEntry {
    let county = &counties[i % counties.len()];
    let date = NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid date")
        + chrono::Duration::days((i % 365) as i64);
    let amount = Fen(90_000 + (i % 1000) as i64);
    NewEntry::normal(
        format!("bench-{i}"),
        date,
        county.clone(),
        "MBDK",
        "下达",
        vec![
            Posting {
                account: AccountRef::new(county.clone(), AccountKind::Held),
                amount,
            },
            Posting {
                account: AccountRef::new("440000", AccountKind::Budget),
                amount: Fen(-amount.get()),
            },
        ],
    )
}

/// The same rows with no ledger logic, written each database's fastest plain way (the engine's own
/// bulk writer: multi-row VALUES on SQLite, one array per column and `unnest` on PostgreSQL).
async fn raw_insert(
    store: &Store,
    entries: &[usize],
    batch: usize,
    counties: &[String],
) -> Result<(), earmark::store::StoreError> {
    let pool = store.pool();
    let backend = store.backend();
    let hash = [0u8; 32];
    for chunk in entries.chunks(batch) {
        let n = chunk.len();
        // SQLite's writers take the lock at once, so two streams queue rather than fail.
        let mut tx = match backend {
            earmark::store::Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            earmark::store::Backend::Postgres => pool.begin().await?,
        };
        let keys: Vec<String> = chunk.iter().map(|i| format!("bench-{i}")).collect();
        BulkInsert {
            head: "INSERT INTO entries (county_code, seq, idem_key, program, entry_date, kind, \
                   refers_seq, memo, created_at, content_hash, chain_hash)",
            columns: 11,
            suffix: "",
        }
        .run(&mut tx, backend, n, |r, c| {
            let i = chunk[r];
            match c {
                0 => Cell::Text(&counties[i % counties.len()]),
                1 => Cell::Int(i as i64 + 1),
                2 => Cell::Text(&keys[r]),
                3 => Cell::Text("MBDK"),
                4 => Cell::Text("2025-01-01"),
                5 => Cell::Text("normal"),
                6 => Cell::NullInt,
                7 => Cell::Text("下达"),
                8 => Cell::Text("2025-01-01T00:00:00Z"),
                _ => Cell::Bytes(&hash),
            }
        })
        .await?;
        BulkInsert {
            head: "INSERT INTO postings (county_code, seq, leg, account_id, amount, entry_date, pending)",
            columns: 7,
            suffix: "",
        }
        .run(&mut tx, backend, 2 * n, |r, c| {
            let (i, leg) = (chunk[r / 2], (r % 2) as i64);
            match c {
                0 => Cell::Text(&counties[i % counties.len()]),
                1 => Cell::Int(i as i64 + 1),
                2 => Cell::Int(leg),
                3 => Cell::Int((i % counties.len()) as i64 * 2 + leg),
                4 => Cell::Int(if leg == 0 { 90_000 } else { -90_000 }),
                5 => Cell::Text("2025-01-01"),
                _ => Cell::Int(0),
            }
        })
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("earmark-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::trouble(format!("error: {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Makes (or remakes) a database on the server and returns its URL.
async fn fresh_pg_database(server: &str, name: &str) -> Result<String, Failure> {
    sqlx::any::install_default_drivers();
    let trouble = |e: sqlx::Error| Failure::trouble(format!("error: PostgreSQL at {server}: {e}"));
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(server)
        .await
        .map_err(trouble)?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .map_err(trouble)?;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .map_err(trouble)?;
    let base = server.trim_end_matches('/');
    let base = match base.rfind('/') {
        Some(p) if p > "postgres://".len() => &base[..p],
        _ => base,
    };
    Ok(format!("{base}/{name}"))
}

/// Resets the kernel's peak-RSS mark for this process, so each phase reports its own peak.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_memory_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
