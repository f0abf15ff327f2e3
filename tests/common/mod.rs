//! Test helpers shared by the integration suites: a fresh, initialised ledger on each backend.
//! SQLite always (a real file in a temporary folder); PostgreSQL whenever `EARMARK_TEST_PG` names a
//! server, each test in a database of its own.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use earmark::ledger::{AccountKind, AccountRef, NewEntry, Posting};
use earmark::money::Fen;
use earmark::store::{Store, Unit};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// The backends this run tests: SQLite, and PostgreSQL when `EARMARK_TEST_PG` is set.
pub fn backends() -> Vec<Kind> {
    let mut kinds = vec![Kind::Sqlite];
    if std::env::var("EARMARK_TEST_PG").is_ok_and(|v| !v.is_empty()) {
        kinds.push(Kind::Postgres);
    }
    kinds
}

/// A fresh database; the SQLite file lives as long as this value.
pub struct TestDb {
    pub url: String,
    pub kind: Kind,
    pub dir: tempfile::TempDir,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub async fn fresh_db(kind: Kind) -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match kind {
        Kind::Sqlite => dir.path().join("ledger.db").display().to_string(),
        Kind::Postgres => {
            let server = std::env::var("EARMARK_TEST_PG").expect("EARMARK_TEST_PG");
            let name = format!(
                "earmark_t_{}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst),
                chrono::Utc::now().timestamp_subsec_nanos()
            );
            sqlx::any::install_default_drivers();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&server)
                .await
                .expect("connect to EARMARK_TEST_PG");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let base = server.trim_end_matches('/');
            let base = match base.rfind('/') {
                Some(p) if p > "postgres://".len() => &base[..p],
                _ => base,
            };
            format!("{base}/{name}")
        }
    };
    TestDb { url, kind, dir }
}

/// A fresh ledger, initialised, with two units registered: `U-A` in 440511 and `U-B` in 441900.
pub async fn ledger(kind: Kind) -> (Store, TestDb) {
    let db = fresh_db(kind).await;
    let store = Store::open(&db.url).await.expect("open store");
    store.init().await.expect("init");
    store
        .register_units(&[
            Unit {
                code: "U-A".into(),
                name: "金平区某小学".into(),
                county: "440511".into(),
                township: None,
                kind: "school".into(),
            },
            Unit {
                code: "U-B".into(),
                name: "东莞某幼儿园".into(),
                county: "441900".into(),
                township: None,
                kind: "kindergarten".into(),
            },
        ])
        .await
        .expect("units");
    (store, db)
}

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("test date")
}

pub fn posting(account: &str, fen: i64) -> Posting {
    Posting {
        account: AccountRef::parse(account).expect("test account"),
        amount: Fen(fen),
    }
}

/// A two-posting entry moving `fen` from `from` to `to` in `county`'s MBDK books.
pub fn transfer(key: &str, county: &str, to: &str, from: &str, fen: i64) -> NewEntry {
    NewEntry::normal(
        key,
        day("2025-03-01"),
        county,
        "MBDK",
        "",
        vec![posting(to, fen), posting(from, -fen)],
    )
}

pub fn account(owner: &str, kind: AccountKind) -> AccountRef {
    AccountRef::new(owner, kind)
}
