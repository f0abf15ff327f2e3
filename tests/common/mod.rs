//! Test helpers shared by the integration suites: a fresh, initialised ledger on each backend.
//! SQLite always (a real file in a temporary folder); PostgreSQL whenever `EARMARK_TEST_PG` names a
//! server, each test in a database of its own. Also the harness for running the built `earmark`
//! binary against such a database ([`Ledger`], [`Run`], [`on_every_backend`]).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
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

/// Registers the people of a roster as account owners (a person's accounts exist once they are on
/// a roster), each in their own county.
pub async fn register_roster_persons(
    store: &Store,
    roster: &[(u64, earmark::roster::RosterEntry)],
) {
    let persons: Vec<earmark::store::PersonOwner> = roster
        .iter()
        .map(|(_, e)| earmark::store::PersonOwner {
            id_number: e.id_number.clone(),
            name: e.name.clone(),
            county: e.county.clone(),
        })
        .collect();
    store.register_persons(&persons).await.expect("persons");
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

// ---------------------------------------------------------------------------------------------
// The built binary
// ---------------------------------------------------------------------------------------------

/// What one run of the binary did.
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything about the run, for a failing assertion's message.
    pub fn show(&self) -> String {
        format!(
            "\n$ {}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.what, self.code, self.stdout, self.stderr
        )
    }

    pub fn assert_stdout_has(&self, text: &str) -> &Run {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}{}",
            self.show()
        );
        self
    }

    pub fn assert_stderr_has(&self, text: &str) -> &Run {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}{}",
            self.show()
        );
        self
    }

    /// One whole line of stderr equals `line`.
    pub fn assert_stderr_line(&self, line: &str) -> &Run {
        assert!(
            self.stderr.lines().any(|l| l == line),
            "no stderr line is {line:?}{}",
            self.show()
        );
        self
    }

    /// One whole line of stderr starts with `start`.
    pub fn assert_stderr_line_starts_with(&self, start: &str) -> &Run {
        assert!(
            self.stderr.lines().any(|l| l.starts_with(start)),
            "no stderr line starts with {start:?}{}",
            self.show()
        );
        self
    }
}

/// A fresh database on one backend, its folder, and the binary pointed at it. Each suite adds its
/// own steps (`impl Ledger { ... }` in the suite) on top of these.
pub struct Ledger {
    pub db: TestDb,
}

impl Ledger {
    pub fn kind(&self) -> Kind {
        self.db.kind
    }

    /// `earmark --db URL ARGS...` in the test's folder, not yet started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_earmark"));
        command
            .arg("--db")
            .arg(&self.db.url)
            .args(args)
            .current_dir(self.db.dir.path())
            .env_remove("EARMARK_DB")
            .env_remove("EARMARK_LOG");
        command
    }

    /// Runs `earmark --db URL ARGS...` in the test's folder.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().expect("run the earmark binary");
        Run {
            what: format!(
                "[{:?}] earmark --db {} {}",
                self.kind(),
                self.db.url,
                args.join(" ")
            ),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs and demands exit code `code`.
    pub fn expect(&self, code: i32, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, Some(code), "wrong exit code{}", run.show());
        run
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        self.expect(0, args)
    }

    pub fn refused(&self, args: &[&str]) -> Run {
        self.expect(1, args)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.db.dir.path().join(name)
    }

    /// Writes a file into the test's folder (making its parent); returns the name to pass on the
    /// command line.
    pub fn write<'a>(&self, name: &'a str, contents: impl AsRef<[u8]>) -> &'a str {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("make the folder");
        }
        std::fs::write(&path, contents).expect("write test input");
        name
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    pub fn read_bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// `balances --format csv EXTRA...`.
    pub fn balances(&self, extra: &[&str]) -> String {
        let mut args = vec!["balances", "--format", "csv"];
        args.extend_from_slice(extra);
        self.ok(&args).stdout
    }

    /// Every account, zero balances included: the state a refused command must leave untouched.
    pub fn snapshot(&self) -> String {
        self.balances(&["--all"])
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `test` once per backend, each time on a fresh, empty database. Every backend is tried even
/// when one fails, so a failure report says which backends broke the rule.
pub fn on_every_backend(test: impl Fn(&Ledger)) {
    on_every_backend_n(1, |ledgers| test(&ledgers[0]));
}

/// Runs `test` once per backend, each time with `n` fresh, empty databases. Every backend is tried
/// even when one fails, so a failure report says which backends broke the rule (and keeps their
/// databases for a look).
pub fn on_every_backend_n(n: usize, test: impl Fn(&[Ledger])) {
    let rt = runtime();
    let mut failed = Vec::new();
    for kind in backends() {
        let ledgers: Vec<Ledger> = (0..n)
            .map(|_| Ledger {
                db: rt.block_on(fresh_db(kind)),
            })
            .collect();
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(&ledgers)));
        eprintln!("[{kind:?}] took {:.1} s", started.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => {
                if kind == Kind::Postgres {
                    for ledger in &ledgers {
                        rt.block_on(drop_database(&ledger.db.url));
                    }
                }
            }
            Err(_) => {
                let urls: Vec<&str> = ledgers.iter().map(|l| l.db.url.as_str()).collect();
                let kept = if urls.len() == 1 {
                    "database kept"
                } else {
                    "databases kept"
                };
                failed.push(format!("{kind:?} ({kept}: {})", urls.join(" ")));
            }
        }
    }
    assert!(failed.is_empty(), "failed on: {}", failed.join(", "));
}

/// Drops a passed test's PostgreSQL database, so runs do not pile databases up on the server.
pub async fn drop_database(url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    let server = std::env::var("EARMARK_TEST_PG").expect("EARMARK_TEST_PG");
    sqlx::any::install_default_drivers();
    if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&server).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut conn)
        .await;
    }
}
