//! The store: one `Store` over SQLite (the embedded default) and PostgreSQL, through sqlx's `Any`
//! driver so that both run the very same statements. It knows nothing of HTTP or the CLI.
//!
//! Portable SQL only: `$N` placeholders (sqlx's SQLite driver reads them by number), BIGINT fen,
//! ISO-text dates, `CAST(SUM(..) AS BIGINT)` so PostgreSQL does not answer NUMERIC.

pub mod bulk;
pub(crate) mod packed;
mod post;
mod query;
#[cfg(test)]
pub(crate) use query::sqlite_plan;

/// A store on a new SQLite file in a temporary folder (kept while the folder lives), for unit tests.
#[cfg(test)]
pub(crate) async fn temp_sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path().join("test.db").to_str().expect("path"))
        .await
        .expect("open");
    (store, dir)
}
mod roster;
mod scan;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

use crate::calendar::{DayKind, WorkCalendar};
use crate::ledger::{AccountKey, LedgerError};
use crate::region::{Level, Region, RegionTable};

pub use post::{BatchMode, Outcome, SideRow, SideValue};
pub use query::{BalanceFilter, BalanceRow};
pub use roster::{RosterImportReport, StageRecord};
pub use scan::{CheckReport, VerifyReport};

/// Statement parameters per multi-row INSERT stay under both databases' limits
/// (SQLite 32,766; PostgreSQL 65,535) with room to spare. Larger statements are faster in bulk
/// (`earmark bench`, 300,000 entries, one run each: 30,000 parameters 51,389 entries/s, 3,000
/// 40,961/s, 1,000 35,054/s).
pub const PARAMS_PER_STATEMENT_MAX: usize = 30_000;

/// Items per statement of an IN-list lookup ([`in_query`] pads a chunk to a power of two, so a
/// chunk of at most this many stays within [`PARAMS_PER_STATEMENT_MAX`] with its leading values).
pub(crate) const IN_LIST_MAX: usize = 16_384;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    #[error("entry {index} of the batch was refused: {error}")]
    Refused { index: usize, error: LedgerError },
    #[error("the database at {url} is not initialised: run `earmark init` first")]
    NotInitialised { url: String },
    #[error("{0}")]
    Invalid(String),
    /// Another writer got there first (a claim collided); retrying shows the state it left.
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A disbursing unit (发放单位) as registered by `earmark import units`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unit {
    pub code: String,
    pub name: String,
    pub county: String,
    pub township: Option<String>,
    pub kind: String,
}

/// A person as an account owner: the roster registers them; the ledger needs the county.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonOwner {
    pub id_number: String,
    pub name: String,
    pub county: String,
}

#[derive(Default)]
struct Cache {
    regions: Option<Arc<RegionTable>>,
    programs: HashSet<String>,
    /// The county of each unit and person seen owning an account. A person's never changes (rows of
    /// `persons` are only ever added), so a batch's people are looked up once per process, not at
    /// each of their entries (a province-year: 3.3 million lookups).
    owners: HashMap<String, String>,
    accounts: HashMap<AccountKey, i64>,
}

pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    cache: Mutex<Cache>,
    /// SQLite has one writer. Writers of this process queue here, in order and without sleeping,
    /// instead of in SQLite's busy handler, which polls with sleeps of up to 100 ms.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// How long writers waited for the turn and held it (SQLite).
    turns: Arc<TurnClock>,
    /// Rows this store has written, and the count at which PostgreSQL's statistics are next renewed.
    growth: Growth,
}

/// PostgreSQL plans each statement on its tables' statistics, which autovacuum renews only after a
/// tenth of a table has changed and a minute has passed (and never where it is off, as on the
/// machine of the benchmarks). A bulk load outruns it, and plans made on stale statistics scan
/// whole tables: with none, a batch's 8,000-key lookup scanned every entry and a batch's lookup of
/// its people's earlier claims read every claim of the program (70 ms for 600 people on a
/// 30-county ledger, 5 ms after `ANALYZE`). So the store renews them itself each time the rows it
/// has written double, from 100,000 (six times in the province demo's year, 0.2–2.7 s each).
///
/// On SQLite the same count drives the write-ahead log's checkpoints (see [`CHECKPOINT_ROWS`]).
#[derive(Debug)]
struct Growth {
    written: std::sync::atomic::AtomicU64,
    next: std::sync::atomic::AtomicU64,
    /// SQLite: rows between two of the store's checkpoints ([`CHECKPOINT_ROWS`] unless a test
    /// sets fewer).
    checkpoint_rows: std::sync::atomic::AtomicU64,
}

impl Growth {
    fn new(backend: Backend) -> Growth {
        Growth {
            written: std::sync::atomic::AtomicU64::new(0),
            next: std::sync::atomic::AtomicU64::new(match backend {
                Backend::Postgres => 100_000,
                Backend::Sqlite => CHECKPOINT_ROWS,
            }),
            checkpoint_rows: std::sync::atomic::AtomicU64::new(CHECKPOINT_ROWS),
        }
    }
}

/// SQLite copies its write-ahead log into the database file (a checkpoint) when the log reaches
/// `wal_autocheckpoint` pages, in the commit that crosses the mark, that is inside the writer's
/// turn, where every other writer waits for it: on a 30-county demo (50,000 pages then) eleven
/// commits took 0.25–0.38 s each, where the rest took under 0.1 s. The store checkpoints itself
/// every this many rows written (about 10,000 pages of log), after the commit and outside the
/// turn: the others write on meanwhile (a passive checkpoint does not stop writers). SQLite's own
/// mark is raised to 200,000 pages, a net for what the store does not count (or a log that readers
/// kept from restarting): beside the store's checkpoints, two commits of that demo still took over
/// 0.1 s, against seven with the mark at 50,000.
const CHECKPOINT_ROWS: u64 = 100_000;

/// A transaction: `begin_write` gives one that on SQLite also holds the process's writer turn until
/// it ends; `begin_read` one without the turn, for reading only.
pub(crate) struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<Turn>,
}

/// What the writers of a store did with SQLite's one turn: how many took it, how long they waited
/// for it and how long they held it. The turn is the floor of a SQLite ledger's write throughput:
/// the time it is held against the run's length says how near a run is to it.
#[derive(Debug, Default)]
struct TurnClock {
    taken: std::sync::atomic::AtomicU64,
    waited_ns: std::sync::atomic::AtomicU64,
    held_ns: std::sync::atomic::AtomicU64,
}

/// Writers' use of the turn so far (see [`Store::turns`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Turns {
    /// Write transactions that took the turn.
    pub taken: u64,
    /// Their time waiting for it, summed over writers (several wait at once).
    pub waited: std::time::Duration,
    /// Their time holding it: at most the run's length, since one holds it at a time.
    pub held: std::time::Duration,
}

/// The writer's turn, held until the transaction ends; dropping it adds its time to the clock.
struct Turn {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    since: std::time::Instant,
    clock: Arc<TurnClock>,
}

impl Turn {
    /// Waits for the turn, counting the wait and, from now until dropped, the time held.
    async fn take(writer: &Arc<tokio::sync::Mutex<()>>, clock: &Arc<TurnClock>) -> Turn {
        use std::sync::atomic::Ordering;
        let asked = std::time::Instant::now();
        let guard = writer.clone().lock_owned().await;
        let since = std::time::Instant::now();
        clock.taken.fetch_add(1, Ordering::Relaxed);
        let waited = (since - asked).as_nanos() as u64;
        clock.waited_ns.fetch_add(waited, Ordering::Relaxed);
        Turn {
            _guard: guard,
            since,
            clock: clock.clone(),
        }
    }
}

impl Turns {
    /// What the writers did since `before` was read.
    pub fn since(self, before: Turns) -> Turns {
        Turns {
            taken: self.taken - before.taken,
            waited: self.waited - before.waited,
            held: self.held - before.held,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        let held = self.since.elapsed().as_nanos() as u64;
        self.clock.held_ns.fetch_add(held, Ordering::Relaxed);
    }
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for Tx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// What `init` loaded.
#[derive(Debug, Default)]
pub struct InitReport {
    pub regions_added: usize,
    pub calendar_days_added: usize,
    pub programs_added: usize,
}

/// Turns what a user typed after `--db` into a URL: a bare path means a SQLite file.
pub fn database_url(spec: &str) -> String {
    if spec.starts_with("postgres://")
        || spec.starts_with("postgresql://")
        || spec.starts_with("sqlite:")
    {
        spec.to_string()
    } else {
        format!("sqlite://{spec}")
    }
}

impl Store {
    /// Connects (creating a SQLite file if needed) and brings the schema up to date.
    pub async fn open(spec: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = database_url(spec);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let connect_url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.clone(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            // A pooled SQLite connection is a handle in this process that nothing outside can
            // break, so it is not pinged before each use: the ping was a round trip to the
            // connection's thread for every statement read through the pool and for every writer's
            // BEGIN, the latter inside the writer's turn. A PostgreSQL connection crosses a socket
            // that a server restart can cut, and is tested as sqlx does by default.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; NORMAL is durable at each
                        // checkpoint and is what WAL is designed for; a writer waits, not fails.
                        // The log's automatic checkpoint at 200,000 pages: see CHECKPOINT_ROWS.
                        // No memory-mapped I/O: each of the pool's connections mapped up to 1 GiB
                        // of the file, so a province ledger counted 4 GiB of mapped pages against
                        // the process for no gain (3-county demo, two runs each: 41.9 and 47.3 s
                        // unmapped, 45.4 and 46.8 s mapped; peak 479 and 471 MiB against 692 and 701 MiB).
                        sqlx::raw_sql(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000; \
                             PRAGMA cache_size = -65536; PRAGMA mmap_size = 0; \
                             PRAGMA wal_autocheckpoint = 200000; PRAGMA temp_store = MEMORY;",
                        )
                        .execute(conn)
                        .await?;
                    } else {
                        // No JIT compilation: the ledger's statements are short lookups, and a
                        // stale row estimate (tables grow by millions of rows in a province-year
                        // before autovacuum's next analyze) made PostgreSQL compile a bank
                        // answer's 600-key lookup for 81 ms of its 1,015.
                        // Random reads priced as on the solid-state disks it runs on (the server's
                        // default, 4, is a spinning disk's): a payout batch's balances, 1,316
                        // accounts of 168,822, were read by scanning the whole table (17 ms; by
                        // the index 2 ms).
                        sqlx::raw_sql("SET jit = off; SET random_page_cost = 1.1")
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&connect_url).await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&pool).await?,
        }
        Ok(Store {
            pool,
            backend,
            url: redact(&url),
            cache: Mutex::new(Cache::default()),
            writer: Arc::new(tokio::sync::Mutex::new(())),
            turns: Arc::default(),
            growth: Growth::new(backend),
        })
    }

    /// Counts `rows` written by a committed transaction; on PostgreSQL, renews the statistics when
    /// the count has doubled since they were last renewed (see [`Growth`]); on SQLite, checkpoints
    /// the log every [`CHECKPOINT_ROWS`] rows. The writer whose commit crosses the mark does it
    /// before it returns, while the others go on; a failure is logged, not returned (the rows are
    /// written).
    pub(crate) async fn grew(&self, rows: usize) {
        use std::sync::atomic::Ordering;
        let written = self
            .growth
            .written
            .fetch_add(rows as u64, Ordering::Relaxed)
            + rows as u64;
        let next = self.growth.next.load(Ordering::Relaxed);
        let then = match self.backend {
            Backend::Postgres => written.saturating_mul(2),
            Backend::Sqlite => {
                written.saturating_add(self.growth.checkpoint_rows.load(Ordering::Relaxed))
            }
        };
        if written < next
            || self
                .growth
                .next
                .compare_exchange(next, then, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let started = std::time::Instant::now();
        if self.backend == Backend::Sqlite {
            // Never fails the write it follows: at worst SQLite checkpoints in a later commit.
            match self.checkpoint().await {
                Ok(()) => tracing::debug!(
                    "log checkpointed after {written} rows written ({:.2} s)",
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => tracing::warn!("checkpointing after {written} rows written failed: {e}"),
            }
            return;
        }
        // Balances are the one table rewritten row by row (each batch updates its people's), so
        // without autovacuum its dead rows pile up (855,316 dead beside 336,544 live after a
        // 30-county year): it is vacuumed first. VACUUM runs outside a transaction, on its own.
        let renewed = match sqlx::raw_sql("VACUUM balances").execute(&self.pool).await {
            Ok(_) => sqlx::raw_sql("ANALYZE").execute(&self.pool).await,
            Err(e) => Err(e),
        };
        match renewed {
            Ok(_) => tracing::debug!(
                "statistics renewed after {written} rows written ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                tracing::warn!("renewing the statistics after {written} rows written failed: {e}")
            }
        }
    }

    /// SQLite: checkpoint the log every `rows` rows written from now on (tests use a few).
    #[cfg(test)]
    pub(crate) fn checkpoint_every(&self, rows: u64) {
        use std::sync::atomic::Ordering;
        self.growth.checkpoint_rows.store(rows, Ordering::Relaxed);
        let written = self.growth.written.load(Ordering::Relaxed);
        self.growth.next.store(written + rows, Ordering::Relaxed);
    }

    /// The writers' use of SQLite's one turn so far (all zero on PostgreSQL, which has none).
    pub fn turns(&self) -> Turns {
        use std::sync::atomic::Ordering;
        let clock = &self.turns;
        Turns {
            taken: clock.taken.load(Ordering::Relaxed),
            waited: std::time::Duration::from_nanos(clock.waited_ns.load(Ordering::Relaxed)),
            held: std::time::Duration::from_nanos(clock.held_ns.load(Ordering::Relaxed)),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for reading the whole ledger (check, verify, export). On SQLite it maps up to
    /// 1 GiB of the file while it reads, and is closed, not pooled, when dropped: the pool's
    /// connections map nothing, so a province-size file does not count four times against the
    /// process, yet a full scan reads its pages without a system call each (on the 3-county demo
    /// ledger `check` spent 1.5 s of 4.5 s in system time unmapped, 0.03 s mapped). It maps nothing
    /// unless `may_map`: a scan that reads beside others of its own passes false, since each mapping
    /// counts against the process (three full scans at once peaked at 2,850 MiB mapped and 905 MiB
    /// unmapped on a 30-county ledger).
    pub(crate) async fn scan_connection(
        &self,
        may_map: bool,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        self.checkpoint().await?;
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite {
            conn.close_on_drop();
            if may_map {
                sqlx::raw_sql("PRAGMA mmap_size = 1073741824")
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(conn)
    }

    /// Copies what the SQLite write-ahead log holds into the database file, as far as no reader
    /// stands in the way (PostgreSQL: nothing to do). Once the log is wholly copied, new readers
    /// ignore it; until then each page a reader misses in its cache is first looked for in the
    /// log's index, which after a year of payouts holds tens of thousands of frames: a `perf` sample
    /// of the province demo's proof stage found 40% of its time in that search.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (BEGIN IMMEDIATE), so two
    /// writers queue instead of failing halfway when one upgrades from reading.
    pub(crate) async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => {
                // Taken before BEGIN, so a failed BEGIN still gives the turn back (and counts it).
                let turn = Turn::take(&self.writer, &self.turns).await;
                Tx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            Backend::Postgres => Tx {
                tx: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    /// A read transaction without the writer's turn: one consistent reading of the database (on
    /// SQLite a WAL snapshot, taken at its first statement), for judging a batch before writing it.
    pub(crate) async fn begin_read(&self) -> Result<Tx, StoreError> {
        Ok(Tx {
            tx: self.pool.begin().await?,
            _turn: None,
        })
    }

    /// Loads the built-in reference data: Guangdong's regions, China's calendar, the built-in programs.
    /// Running it again adds nothing twice.
    pub async fn init(&self) -> Result<InitReport, StoreError> {
        let mut report = InitReport::default();
        let known = self.regions().await?;
        if known.get("440000").is_none() {
            let table = RegionTable::from_csv(
                crate::reference::REGIONS_CSV.as_bytes(),
                "guangdong_regions.csv (built in)",
                &known,
            )
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
            report.regions_added = self.add_regions(table).await?;
        }
        let calendar = WorkCalendar::from_csv(
            crate::reference::CALENDAR_CSV.as_bytes(),
            "cn_calendar.csv (built in)",
        )
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
        report.calendar_days_added = self.add_calendar(&calendar).await?;
        let mut tx = self.begin_write().await?;
        for (source, text) in crate::program::BUILTIN {
            let program = crate::program::Program::from_toml(text, source)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let done = sqlx::query(
                "INSERT INTO programs (code, name, definition) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING",
            )
            .bind(program.code().to_string())
            .bind(program.name().to_string())
            .bind(text.to_string())
            .execute(&mut *tx)
            .await?;
            report.programs_added += done.rows_affected() as usize;
        }
        tx.commit().await?;
        self.forget_reference();
        Ok(report)
    }

    /// Whether `init` has run on this database.
    pub async fn is_initialised(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM regions")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    pub async fn require_initialised(&self) -> Result<(), StoreError> {
        if self.is_initialised().await? {
            Ok(())
        } else {
            Err(StoreError::NotInitialised {
                url: self.url.clone(),
            })
        }
    }

    /// Adds regions (checked against those already loaded) and opens a hash chain per new county.
    pub async fn add_regions(&self, table: RegionTable) -> Result<usize, StoreError> {
        let mut all = (*self.regions().await?).clone();
        let new_codes: Vec<String> = table.iter().map(|r| r.code.clone()).collect();
        all.merge(table);
        let rows: Vec<&Region> = new_codes.iter().filter_map(|c| all.get(c)).collect();
        let mut tx = self.begin_write().await?;
        for chunk in rows.chunks(PARAMS_PER_STATEMENT_MAX / 5) {
            let sql = values_sql(
                "INSERT INTO regions (code, name, level, parent_code, county_role) VALUES ",
                chunk.len(),
                5,
                "",
            );
            let mut query = sqlx::query(portable(self.backend, sql));
            for region in chunk {
                query = query
                    .bind(region.code.clone())
                    .bind(region.name.clone())
                    .bind(region.level.code())
                    .bind(region.parent.clone())
                    .bind(i64::from(region.county_role));
            }
            query.execute(&mut *tx).await?;
        }
        // A city that gained counties no longer keeps county books of its own; recompute all roles.
        for region in all.iter() {
            sqlx::query(
                "UPDATE regions SET county_role = $1 WHERE code = $2 AND county_role <> $1",
            )
            .bind(i64::from(region.county_role))
            .bind(region.code.clone())
            .execute(&mut *tx)
            .await?;
        }
        for region in all.counties() {
            sqlx::query(
                "INSERT INTO chain_heads (county_code, seq, chain_hash) VALUES ($1, 0, $2) \
                 ON CONFLICT (county_code) DO NOTHING",
            )
            .bind(region.code.clone())
            .bind(crate::ledger::hash::GENESIS.to_vec())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.forget_reference();
        Ok(rows.len())
    }

    /// Adds calendar days; a day already known with the same kind is skipped, another kind refused.
    pub async fn add_calendar(&self, calendar: &WorkCalendar) -> Result<usize, StoreError> {
        let mut known = self.calendar().await?;
        known
            .merge(calendar.clone())
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for (day, kind, name) in calendar.special_days() {
            let kind = match kind {
                DayKind::Holiday => "holiday",
                DayKind::Workday => "workday",
            };
            let done = sqlx::query(
                "INSERT INTO calendar_days (day, kind, name) VALUES ($1, $2, $3) ON CONFLICT (day) DO NOTHING",
            )
            .bind(day.to_string())
            .bind(kind)
            .bind(name.to_string())
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected() as usize;
        }
        for year in calendar.years() {
            sqlx::query(
                "INSERT INTO calendar_years (year) VALUES ($1) ON CONFLICT (year) DO NOTHING",
            )
            .bind(i64::from(year))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// The working-day calendar as stored.
    pub async fn calendar(&self) -> Result<WorkCalendar, StoreError> {
        let mut csv = String::from("date,kind,name\n");
        let rows = sqlx::query("SELECT day, kind, name FROM calendar_days ORDER BY day")
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let name: String = row.try_get(2)?;
            csv.push_str(&format!(
                "{},{},\"{}\"\n",
                row.try_get::<String, _>(0)?,
                row.try_get::<String, _>(1)?,
                name.replace('"', "\"\"")
            ));
        }
        let mut calendar = WorkCalendar::from_csv(csv.as_bytes(), "calendar_days (database)")
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let years = sqlx::query("SELECT year FROM calendar_years")
            .fetch_all(&self.pool)
            .await?;
        for row in years {
            calendar.add_covered_year(row.try_get::<i64, _>(0)? as i32);
        }
        Ok(calendar)
    }

    /// All regions, cached until reference data changes.
    pub async fn regions(&self) -> Result<Arc<RegionTable>, StoreError> {
        if let Some(table) = self.cache.lock().expect("cache lock").regions.clone() {
            return Ok(table);
        }
        let rows = sqlx::query("SELECT code, name, level, parent_code FROM regions")
            .fetch_all(&self.pool)
            .await?;
        let regions = rows
            .iter()
            .map(|row| -> Result<Region, StoreError> {
                let level: String = row.try_get(2)?;
                Ok(Region {
                    code: row.try_get(0)?,
                    name: row.try_get(1)?,
                    level: Level::parse(&level).ok_or_else(|| {
                        StoreError::Invalid(format!("stored level {level} is unknown"))
                    })?,
                    parent: row.try_get(3)?,
                    county_role: false,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let table = Arc::new(RegionTable::from_regions(regions));
        self.cache.lock().expect("cache lock").regions = Some(table.clone());
        Ok(table)
    }

    fn forget_reference(&self) {
        let mut cache = self.cache.lock().expect("cache lock");
        cache.regions = None;
        cache.programs.clear();
    }

    pub async fn programs(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT code, name FROM programs ORDER BY code")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The beneficiary kind of a stored program: `teacher`, `child` or `student`.
    pub async fn program_beneficiary(&self, code: &str) -> Result<String, StoreError> {
        Ok(self.program(code).await?.beneficiary().as_str().to_string())
    }

    /// A stored program's definition, parsed.
    pub async fn program(&self, code: &str) -> Result<crate::program::Program, StoreError> {
        let row = sqlx::query("SELECT definition FROM programs WHERE code = $1")
            .bind(code.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                StoreError::Invalid(format!("unknown program \"{code}\" (earmark program list)"))
            })?;
        let text: String = row.try_get(0)?;
        crate::program::Program::from_toml(&text, &format!("program {code} (stored)"))
            .map_err(|e| StoreError::Invalid(e.to_string()))
    }

    /// Stores a program definition (new, or replacing the stored one); the text is kept verbatim.
    pub async fn load_program(
        &self,
        text: &str,
        source: &str,
    ) -> Result<crate::program::Program, StoreError> {
        let program = crate::program::Program::from_toml(text, source)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        // Programs it excludes must exist, so that the cross-check can name them.
        let known: std::collections::HashSet<String> =
            self.programs().await?.into_iter().map(|(c, _)| c).collect();
        for other in program.excludes() {
            if !known.contains(other) && other != program.code() {
                return Err(StoreError::Invalid(format!(
                    "{source}: at `excludes`: program {other} is not loaded; load it first"
                )));
            }
        }
        self.add_program(program.code(), program.name(), text)
            .await?;
        Ok(program)
    }

    pub async fn add_program(
        &self,
        code: &str,
        name: &str,
        definition: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO programs (code, name, definition) VALUES ($1, $2, $3) \
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, definition = excluded.definition",
        )
        .bind(code.to_string())
        .bind(name.to_string())
        .bind(definition.to_string())
        .execute(&self.pool)
        .await?;
        self.forget_reference();
        Ok(())
    }

    /// Registers disbursing units; a unit's code must not be a region code, and its county must keep
    /// county books. Re-registering the same unit with the same data is a no-op.
    pub async fn register_units(&self, units: &[Unit]) -> Result<usize, StoreError> {
        let regions = self.regions().await?;
        for unit in units {
            if regions.get(&unit.code).is_some() {
                return Err(StoreError::Invalid(format!(
                    "unit code {} is a region code: a unit needs a code of its own",
                    unit.code
                )));
            }
            if !regions.get(&unit.county).is_some_and(|r| r.county_role) {
                return Err(StoreError::Invalid(format!(
                    "unit {}: {} is not a county (or a city without districts)",
                    unit.code, unit.county
                )));
            }
        }
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for unit in units {
            let existing = sqlx::query("SELECT county_code FROM units WHERE code = $1")
                .bind(unit.code.clone())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                let county: String = row.try_get(0)?;
                if county != unit.county {
                    return Err(StoreError::Invalid(format!(
                        "unit {} is already registered in county {county}, not {}",
                        unit.code, unit.county
                    )));
                }
                continue;
            }
            sqlx::query(
                "INSERT INTO units (code, name, county_code, township_code, kind) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(unit.code.clone())
            .bind(unit.name.clone())
            .bind(unit.county.clone())
            .bind(unit.township.clone())
            .bind(unit.kind.clone())
            .execute(&mut *tx)
            .await?;
            added += 1;
        }
        tx.commit().await?;
        let mut cache = self.cache.lock().expect("cache lock");
        for unit in units {
            cache.owners.insert(unit.code.clone(), unit.county.clone());
        }
        Ok(added)
    }

    /// Registers persons as account owners in their county (the roster calls this).
    pub async fn register_persons(&self, persons: &[PersonOwner]) -> Result<usize, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for chunk in persons.chunks(PARAMS_PER_STATEMENT_MAX / 3) {
            let sql = values_sql(
                "INSERT INTO persons (id_number, name, county_code) VALUES ",
                chunk.len(),
                3,
                " ON CONFLICT (id_number) DO NOTHING",
            );
            let mut query = sqlx::query(portable(self.backend, sql));
            for person in chunk {
                query = query
                    .bind(person.id_number.clone())
                    .bind(person.name.clone())
                    .bind(person.county.clone());
            }
            added += query.execute(&mut *tx).await?.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// One registered unit, by its code.
    pub async fn unit(&self, code: &str) -> Result<Option<Unit>, StoreError> {
        let row = sqlx::query(
            "SELECT code, name, county_code, township_code, kind FROM units WHERE code = $1",
        )
        .bind(code.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(unit_from_row).transpose()
    }

    pub async fn units(&self) -> Result<Vec<Unit>, StoreError> {
        let rows = sqlx::query(
            "SELECT code, name, county_code, township_code, kind FROM units ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(unit_from_row).collect()
    }
}

fn unit_from_row(row: &AnyRow) -> Result<Unit, StoreError> {
    Ok(Unit {
        code: row.try_get(0)?,
        name: row.try_get(1)?,
        county: row.try_get(2)?,
        township: row.try_get(3)?,
        kind: row.try_get(4)?,
    })
}

/// Which backend a connection talks to.
pub fn backend_of(conn: &sqlx::AnyConnection) -> Backend {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// Readies a statement written with `$N` placeholders for its backend. SQLite finds a numbered
/// parameter by a linear scan of its names, so a multi-row INSERT with thousands of `$N` costs time
/// quadratic in its size (measured: 76% of a bulk post); where every `$N` appears once and in order,
/// SQLite gets plain positional `?` instead. PostgreSQL keeps `$N`.
pub fn portable(backend: Backend, sql: String) -> AssertSqlSafe<String> {
    if backend == Backend::Postgres {
        return AssertSqlSafe(sql);
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1_usize;
    let mut i = 0;
    let mut last = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit() {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if sql[start..end].parse::<usize>().ok() != Some(expected) {
                return AssertSqlSafe(sql); // out of order or repeated: keep the numbers
            }
            out.push_str(&sql[last..i]);
            out.push('?');
            expected += 1;
            last = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[last..]);
    AssertSqlSafe(out)
}

/// `prefix` followed by `rows` groups of `columns` numbered placeholders, then `suffix`.
pub fn values_sql(prefix: &str, rows: usize, columns: usize, suffix: &str) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(prefix.len() + rows * columns * 6 + suffix.len());
    sql.push_str(prefix);
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push(',');
            }
            n += 1;
            let _ = write!(sql, "${n}");
        }
        sql.push(')');
    }
    sql.push_str(suffix);
    sql
}

/// `$first, $first+1, ...` for an IN list of `count` items.
pub fn in_list(first: usize, count: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(count * 7);
    for n in first..first + count {
        if n > first {
            sql.push(',');
        }
        let _ = write!(sql, "${n}");
    }
    sql
}

/// A lookup by a long IN list: runs `sql` once per chunk of `items`, `{list}` in it replaced by the
/// chunk's placeholders (numbered after the `leading` parameters, which every chunk binds first), and
/// returns every row.
pub(crate) async fn fetch_in<T>(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    sql: &str,
    leading: &[&str],
    items: &[T],
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send + 'static,
{
    let mut rows = Vec::new();
    for chunk in items.chunks(IN_LIST_MAX) {
        rows.extend(
            in_query(backend, sql, leading, chunk)
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(rows)
}

/// One chunk's statement of [`fetch_in`]: `{list}` in `sql` replaced by the chunk's placeholders,
/// the `leading` values and the chunk bound.
pub(crate) fn in_query<'q, T>(
    backend: Backend,
    sql: &str,
    leading: &[&str],
    chunk: &[T],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>
where
    T: for<'e> sqlx::Encode<'e, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send + 'static,
{
    // On SQLite the list is padded to a power of two by repeating its last item (harmless in an IN
    // list), so lookups of a few lengths only are prepared once and then found in the statement
    // cache. Not on PostgreSQL: a statement it has run five times may get a generic plan; with
    // padded lists the province demo's first half-year of payouts ran past 860 s (359 s before),
    // its samples in the bank answer's postings lookup, whose custom plan avoids a hash join over
    // every account.
    let padded = match backend {
        Backend::Sqlite => chunk.len().max(1).next_power_of_two(),
        Backend::Postgres => chunk.len(),
    };
    let text = sql.replace("{list}", &in_list(leading.len() + 1, padded));
    let mut query = sqlx::query(portable(backend, text));
    for value in leading {
        query = query.bind(value.to_string());
    }
    for item in chunk {
        query = query.bind(item.clone());
    }
    if let Some(last) = chunk.last() {
        for _ in chunk.len()..padded {
            query = query.bind(last.clone());
        }
    }
    query
}

/// A URL fit to print: a password, if any, is hidden.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Which of these idempotency keys are already used by an entry.
    pub async fn existing_keys(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows = fetch_in(
            &mut conn,
            self.backend,
            "SELECT idem_key FROM entries WHERE idem_key IN ({list})",
            &[],
            keys,
        )
        .await?;
        let found = rows
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<HashSet<_>, _>>()?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_path_is_a_sqlite_file() {
        assert_eq!(database_url("ledger.db"), "sqlite://ledger.db");
        assert_eq!(database_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn sqlite_gets_positional_placeholders_when_in_order() {
        assert_eq!(
            portable(Backend::Sqlite, "V ($1,$2),($3,$4)".into()).0,
            "V (?,?),(?,?)"
        );
        assert_eq!(
            portable(Backend::Sqlite, "a = $1 OR b = $1".into()).0,
            "a = $1 OR b = $1"
        );
        assert_eq!(
            portable(Backend::Postgres, "V ($1,$2)".into()).0,
            "V ($1,$2)"
        );
    }

    #[test]
    fn placeholders_are_numbered_across_rows() {
        assert_eq!(values_sql("V ", 2, 2, ";"), "V ($1,$2),($3,$4);");
        assert_eq!(in_list(3, 2), "$3,$4");
    }

    /// The turn's clock counts each write that takes the turn, the time a second writer waits for
    /// it and the time each holds it.
    #[tokio::test]
    async fn the_writers_turn_is_timed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.db");
        let store = Arc::new(
            Store::open(path.to_str().expect("path"))
                .await
                .expect("open"),
        );
        store.init().await.expect("init");
        let before = store.turns();
        assert!(before.taken >= 1, "init writes under the turn: {before:?}");
        let first = store.begin_write().await.expect("turn");
        let second = tokio::spawn({
            let store = store.clone();
            async move { store.begin_write().await.expect("turn").commit().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        first.commit().await.expect("commit");
        second.await.expect("join").expect("commit");
        let used = store.turns().since(before);
        assert_eq!(used.taken, 2, "{used:?}");
        // The first held it through the pause; the second began waiting just after the pause began.
        assert!(
            used.held >= std::time::Duration::from_millis(60),
            "{used:?}"
        );
        assert!(
            used.waited >= std::time::Duration::from_millis(50),
            "{used:?}"
        );
    }

    #[test]
    fn in_lists_are_padded_to_a_power_of_two_with_their_last_item_on_sqlite_only() {
        use sqlx::Execute;
        let items = ["a".to_string(), "b".to_string(), "c".to_string()];
        let sql = "K = $1 AND X IN ({list})";
        let mut query = in_query(Backend::Sqlite, sql, &["k"], &items);
        let args = query.take_arguments().unwrap().unwrap();
        assert_eq!(query.sql().as_str(), "K = ? AND X IN (?,?,?,?)");
        assert_eq!(sqlx::Arguments::len(&args), 5, "k, a, b, c and c again");
        let mut query = in_query(Backend::Postgres, sql, &["k"], &items);
        let args = query.take_arguments().unwrap().unwrap();
        assert_eq!(query.sql().as_str(), "K = $1 AND X IN ($2,$3,$4)");
        assert_eq!(sqlx::Arguments::len(&args), 4);
    }
}
