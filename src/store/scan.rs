//! The full scans of the ledger: the consistency check, the hash-chain verification and the
//! hledger journal export. All three walk every county's entries in order with their postings;
//! [`Store::prove`] does all three in one walk, which is what the province demo's proof stage runs
//! (each walk of a province-year's ten million entries is mostly SQLite's own work: reading the
//! pages, gathering each entry's postings, building the packed text).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;

use serde::Serialize;
use sqlx::Row;

use super::packed::{int, text as field};
use super::{Store, StoreError};
use crate::ledger::AccountKind;
use crate::ledger::hash::{self, EntryContent, GENESIS, Hash};
use crate::money::Fen;

/// Entries read per page, so memory stays flat on any ledger size.
const PAGE_ENTRIES: i64 = 20_000;

/// A page's postings: one text of `seq account_id amount pending` per posting, `;` between them,
/// in (seq, leg) order, for a county's entries `$2..=$3`. Read as a range of the postings' primary
/// key beside the page of entries, not as a subquery per entry (a B-tree descent and an aggregate
/// for each of a province's millions of entries). (`string_agg` with an ordering is PostgreSQL's
/// and SQLite's alike, from SQLite 3.44.)
const LEGS_SQL: &str = "SELECT string_agg(CAST(seq AS TEXT) || ' ' || CAST(account_id AS TEXT) || ' ' \
                        || CAST(amount AS TEXT) || ' ' || CAST(pending AS TEXT), ';' ORDER BY seq, leg) \
                        FROM postings WHERE county_code = $1 AND seq >= $2 AND seq <= $3";

/// A posting of a page: its entry's number and (account id, amount, pending), or `None` where a
/// stored value is not a number (the walk then names the entry).
type PageLeg = (i64, Option<(i64, i64, bool)>);

/// The columns of a page, in order; the field numbers below index them.
const COLUMNS: [&str; 10] = [
    "seq",
    "idem_key",
    "program",
    "entry_date",
    "kind",
    "refers_seq",
    "memo",
    "created_at",
    "content_hash",
    "chain_hash",
];
const SEQ: usize = 0;
const KEY: usize = 1;
const PROGRAM: usize = 2;
const DATE: usize = 3;
const KIND: usize = 4;
const REFERS: usize = 5;
const MEMO: usize = 6;
const CREATED: usize = 7;
const CONTENT: usize = 8;
const CHAIN: usize = 9;

/// A page of one county's entries, packed (see [`super::packed`]): the columns `wanted` of the
/// entries from sequence number `$2` on, `PAGE_ENTRIES` at most, in order, where `filter` holds;
/// a column not wanted reads as NULL. Rows of one text each, handed over by sqlx one at a time,
/// were most of a full scan's time.
fn page_sql(backend: super::Backend, wanted: &dyn Fn(usize) -> bool, filter: &str) -> String {
    let inner = format!(
        "SELECT e.* FROM entries e WHERE e.county_code = $1 AND e.seq >= $2 {filter} \
         ORDER BY e.seq LIMIT $3"
    );
    let columns: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| match *c {
            _ if !wanted(i) => "NULL".to_string(),
            "content_hash" | "chain_hash" => super::packed::hex(backend, &format!("t.{c}")),
            "seq" | "refers_seq" => format!("CAST(t.{c} AS TEXT)"),
            c => format!("t.{c}"),
        })
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    super::packed::select(&columns, Some("t.seq"), &format!("FROM ({inner}) t"))
}

/// Reads one page written by [`page_sql`]: the packed text, or `None` past the last entry.
async fn page(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
    county: &str,
    from: i64,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(county.to_string())
        .bind(from)
        .bind(PAGE_ENTRIES)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get(0)?)
}

/// The postings of a page of entries `from..=to` (see [`LEGS_SQL`]), in (seq, leg) order.
async fn page_legs(
    conn: &mut sqlx::AnyConnection,
    county: &str,
    from: i64,
    to: i64,
) -> Result<Vec<PageLeg>, StoreError> {
    let row = sqlx::query(LEGS_SQL)
        .bind(county.to_string())
        .bind(from)
        .bind(to)
        .fetch_one(&mut *conn)
        .await?;
    let text: Option<String> = row.try_get(0)?;
    let mut legs = Vec::new();
    for posting in text
        .as_deref()
        .unwrap_or_default()
        .split(';')
        .filter(|p| !p.is_empty())
    {
        let mut numbers = posting.split(' ').map(|t| t.parse::<i64>().ok());
        let Some(Some(seq)) = numbers.next() else {
            return Err(StoreError::Invalid(format!(
                "a stored posting of county {county} (entries {from} to {to}) is damaged"
            )));
        };
        let leg = match (
            numbers.next(),
            numbers.next(),
            numbers.next(),
            numbers.next(),
        ) {
            (Some(Some(account)), Some(Some(amount)), Some(Some(pending)), None) => {
                Some((account, amount, pending != 0))
            }
            _ => None,
        };
        legs.push((seq, leg));
    }
    Ok(legs)
}

/// One county's accounts by id, read once per county by the scans that name accounts (verify and
/// the export); an id not among them (a posting moved onto another county's account) is looked up
/// on its own.
struct CountyAccounts(HashMap<i64, (String, AccountKind)>);

impl CountyAccounts {
    async fn read(conn: &mut sqlx::AnyConnection, county: &str) -> Result<Self, StoreError> {
        let rows = sqlx::query("SELECT id, owner, kind FROM accounts WHERE county_code = $1")
            .bind(county.to_string())
            .fetch_all(&mut *conn)
            .await?;
        let mut map = HashMap::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.try_get(2)?;
            map.insert(
                r.try_get(0)?,
                (
                    r.try_get(1)?,
                    AccountKind::parse(&kind).unwrap_or(AccountKind::Budget),
                ),
            );
        }
        Ok(CountyAccounts(map))
    }

    /// Makes sure every account of `legs` that exists is known.
    async fn learn(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        legs: &[(i64, i64, bool)],
    ) -> Result<(), StoreError> {
        for &(id, _, _) in legs {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry(id) {
                let row = sqlx::query("SELECT owner, kind FROM accounts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some(row) = row {
                    let kind: String = row.try_get(1)?;
                    slot.insert((
                        row.try_get(0)?,
                        AccountKind::parse(&kind).unwrap_or(AccountKind::Budget),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The legs named: (owner, kind, amount) in leg order, after [`Self::learn`]. A posting whose
    /// account does not exist is left out, as a join would leave it: the entry's hash then no
    /// longer matches.
    fn named<'a>(&'a self, legs: &[(i64, i64, bool)]) -> Vec<(&'a str, AccountKind, Fen)> {
        legs.iter()
            .filter_map(|(id, amount, _)| {
                self.0
                    .get(id)
                    .map(|(owner, kind)| (owner.as_str(), *kind, Fen(*amount)))
            })
            .collect()
    }
}

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub entries: i64,
    pub postings: i64,
    pub accounts: i64,
    pub problems: Vec<String>,
}

/// Problems of each kind the check lists (the first few of each).
const PROBLEMS_LISTED: usize = 20;

/// What the check's pass over the entries found: keys of entries, names of accounts.
#[derive(Default)]
struct Checked {
    entries: i64,
    postings: i64,
    unbalanced: Vec<String>,
    too_few: Vec<String>,
    crossing: BTreeSet<String>,
    balance_differs: Vec<String>,
    reserved_differs: Vec<String>,
    /// What each account's postings add up to, against what is stored: differences only.
    differs: HashMap<i64, (i64, i64)>,
    /// Postings on an account of another county than their entry's, added at the end.
    foreign: HashMap<i64, (i64, i64)>,
}

/// Accounts of other counties met while checking, by id (`None`: no such account), looked up once
/// per walker.
type Elsewhere = HashMap<i64, Option<(String, String, AccountKind)>>;

/// An account of the county being checked: what is stored, and what its postings add up to.
struct CheckedAccount {
    program: String,
    kind: AccountKind,
    stored: Option<(i64, i64)>,
    sum: i64,
    reserved: i64,
}

/// The check's view of one county while its entries are read.
struct CheckCounty {
    accounts: HashMap<i64, CheckedAccount>,
    /// Pending postings that reserve money (a held account's outflow), open until a post or
    /// void entry refers to their entry.
    reserving: Vec<(i64, i64, i64)>,
    resolved: HashSet<i64>,
}

impl CheckCounty {
    async fn read(
        conn: &mut sqlx::AnyConnection,
        backend: super::Backend,
        county: &str,
    ) -> Result<Self, StoreError> {
        let mut accounts = HashMap::new();
        let sql = super::packed::select(
            &[
                "CAST(a.id AS TEXT)",
                "a.program",
                "a.kind",
                "CAST(b.balance AS TEXT)",
                "CAST(b.reserved AS TEXT)",
            ],
            None,
            "FROM accounts a LEFT JOIN balances b ON b.account_id = a.id WHERE a.county_code = $1",
        );
        let query = sqlx::query(super::portable(backend, sql)).bind(county.to_string());
        super::packed::fetch(query, &mut *conn, 5, |r| {
            let stored = match (r[3], r[4]) {
                (Some(_), Some(_)) => Some((int(r, 3)?, int(r, 4)?)),
                _ => None,
            };
            accounts.insert(
                int(r, 0)?,
                CheckedAccount {
                    program: field(r, 1)?.to_string(),
                    kind: AccountKind::parse(field(r, 2)?).unwrap_or(AccountKind::Budget),
                    stored,
                    sum: 0,
                    reserved: 0,
                },
            );
            Ok(())
        })
        .await?;
        Ok(CheckCounty {
            accounts,
            reserving: Vec::new(),
            resolved: HashSet::new(),
        })
    }

    /// One entry of the county: balanced, at least two postings, one program, one county.
    #[allow(clippy::too_many_arguments)]
    async fn entry(
        &mut self,
        found: &mut Checked,
        elsewhere: &mut Elsewhere,
        conn: &mut sqlx::AnyConnection,
        county: &str,
        seq: i64,
        key: &str,
        program: &str,
        kind: &str,
        refers: Option<&str>,
        legs: &[(i64, i64, bool)],
    ) -> Result<(), StoreError> {
        found.entries += 1;
        if matches!(kind, "post" | "void")
            && let Some(target) = refers
        {
            self.resolved.insert(target.parse().map_err(|_| {
                StoreError::Invalid(format!("stored reference {target} is damaged"))
            })?);
        }
        found.postings += legs.len() as i64;
        let total: i64 = legs.iter().map(|(_, a, _)| a).sum();
        if !legs.is_empty() && total != 0 {
            found.unbalanced.push(key.to_string());
        }
        if kind != "void" && legs.len() < 2 {
            found.too_few.push(key.to_string());
        }
        for &(id, amount, pending) in legs {
            let held = match self.accounts.get_mut(&id) {
                Some(a) => {
                    if a.program != program {
                        found.crossing.insert(key.to_string());
                    }
                    if !pending {
                        a.sum += amount;
                    }
                    a.kind == AccountKind::Held
                }
                None => {
                    let account = match elsewhere.get(&id) {
                        Some(a) => a.clone(),
                        None => {
                            let a = account_by_id(conn, id).await?;
                            elsewhere.insert(id, a.clone());
                            a
                        }
                    };
                    if account
                        .as_ref()
                        .is_none_or(|(c, p, _)| c != county || p != program)
                    {
                        found.crossing.insert(key.to_string());
                    }
                    if !pending {
                        found.foreign.entry(id).or_default().0 += amount;
                    }
                    account.is_some_and(|(_, _, k)| k == AccountKind::Held)
                }
            };
            if pending && amount < 0 && held {
                self.reserving.push((seq, id, -amount));
            }
        }
        Ok(())
    }

    /// The county read: its accounts' sums and open reservations against what is stored.
    fn finish(mut self, found: &mut Checked) {
        for (seq, id, amount) in std::mem::take(&mut self.reserving) {
            if self.resolved.contains(&seq) {
                continue;
            }
            match self.accounts.get_mut(&id) {
                Some(a) => a.reserved += amount,
                None => found.foreign.entry(id).or_default().1 += amount,
            }
        }
        for (id, a) in self.accounts {
            if let Some((balance, reserved)) = a.stored
                && (balance, reserved) != (a.sum, a.reserved)
            {
                found
                    .differs
                    .insert(id, (balance - a.sum, reserved - a.reserved));
            }
        }
    }
}

/// An account's county, program and kind, by id (`None`: no such account).
async fn account_by_id(
    conn: &mut sqlx::AnyConnection,
    id: i64,
) -> Result<Option<(String, String, AccountKind)>, StoreError> {
    let row = sqlx::query("SELECT county_code, program, kind FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        let kind: String = r.try_get(2)?;
        Ok((
            r.try_get(0)?,
            r.try_get(1)?,
            AccountKind::parse(&kind).unwrap_or(AccountKind::Budget),
        ))
    })
    .transpose()
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub counties: usize,
    pub entries: i64,
    /// The first broken entry of each county whose chain breaks.
    pub broken: Vec<String>,
    /// Each county's chain head (sequence number and hash), to publish or compare later.
    pub heads: Vec<(String, i64, String)>,
}

/// Verification of one county's chain while its entries are read.
struct VerifyCounty {
    previous: Hash,
    expected_seq: i64,
    broken: Option<String>,
}

impl VerifyCounty {
    /// One entry: the next number, its content as hashed, its link to the entry before.
    fn entry(
        &mut self,
        report: &mut VerifyReport,
        county: &str,
        e: &[Option<&str>],
        postings: &[(&str, AccountKind, Fen)],
    ) -> Result<(), StoreError> {
        if self.broken.is_some() {
            return Ok(());
        }
        let seq = int(e, SEQ)?;
        let key = field(e, KEY)?;
        report.entries += 1;
        let expected_seq = self.expected_seq;
        if seq != expected_seq {
            self.broken = Some(format!(
                "county {county}: entry number {expected_seq} is missing (next found: {seq}, key \"{key}\")"
            ));
            return Ok(());
        }
        let refers_seq = e[REFERS].map(|_| int(e, REFERS)).transpose()?;
        let content = hash::content_hash(&EntryContent {
            key,
            date: field(e, DATE)?,
            county,
            program: field(e, PROGRAM)?,
            kind: field(e, KIND)?,
            refers_seq,
            memo: field(e, MEMO)?,
            postings,
        });
        if hash::from_hex(field(e, CONTENT)?) != Some(content) {
            self.broken = Some(format!(
                "county {county}: entry {seq} (key \"{key}\") was altered after posting: \
                 its content no longer matches its hash"
            ));
            return Ok(());
        }
        let chain = hash::chain_hash(&self.previous, seq, field(e, CREATED)?, &content);
        if hash::from_hex(field(e, CHAIN)?) != Some(chain) {
            self.broken = Some(format!(
                "county {county}: entry {seq} (key \"{key}\") breaks the hash chain: \
                 it or an entry before it was altered"
            ));
            return Ok(());
        }
        self.previous = chain;
        self.expected_seq += 1;
        Ok(())
    }

    /// The county read: its last entry against the stored chain head.
    fn finish(self, report: &mut VerifyReport, county: &str, head_seq: i64, head_hash: &[u8]) {
        let mut broken = self.broken;
        if broken.is_none()
            && (self.expected_seq - 1 != head_seq || self.previous.as_slice() != head_hash)
        {
            broken = Some(format!(
                "county {county}: the chain head (entry {head_seq}) does not match the last entry ({}): \
                 entries were removed or the head was altered",
                self.expected_seq - 1
            ));
        }
        if let Some(b) = broken {
            report.broken.push(b);
        }
        if head_seq > 0 {
            report
                .heads
                .push((county.to_string(), head_seq, hash::to_hex(head_hash)));
        }
    }
}

/// Writes one posted entry as an hledger transaction.
fn journal_entry(
    out: &mut Vec<u8>,
    county: &str,
    e: &[Option<&str>],
    postings: &[(&str, AccountKind, Fen)],
) -> Result<(), StoreError> {
    let (seq, key, program, date, kind, memo) = (
        int(e, SEQ)?,
        field(e, KEY)?,
        field(e, PROGRAM)?,
        field(e, DATE)?,
        field(e, KIND)?,
        field(e, MEMO)?,
    );
    let description = if memo.is_empty() {
        key.to_string()
    } else {
        format!("{key} | {memo}")
    };
    writeln!(out, "{date} * {description}").map_err(io_error)?;
    writeln!(out, "    ; county:{county}, seq:{seq}, kind:{kind}").map_err(io_error)?;
    for (owner, account_kind, amount) in postings {
        writeln!(
            out,
            "    {county}:{program}:{owner}:{}  {amount} CNY",
            account_kind.code()
        )
        .map_err(io_error)?;
    }
    writeln!(out).map_err(io_error)?;
    Ok(())
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Invalid(format!("cannot write the export: {e}"))
}

/// What one walk over the ledger found, for what it was asked.
#[derive(Default)]
struct Walked {
    checked: Checked,
    verify: VerifyReport,
    written: i64,
}

impl Walked {
    /// Adds what the walk of one more county found (counties are added in their order).
    fn add(&mut self, county: Walked) {
        let (c, v) = (county.checked, county.verify);
        let found = &mut self.checked;
        found.entries += c.entries;
        found.postings += c.postings;
        found.unbalanced.extend(c.unbalanced);
        found.too_few.extend(c.too_few);
        found.crossing.extend(c.crossing);
        found.differs.extend(c.differs);
        for (id, (sum, reserved)) in c.foreign {
            let f = found.foreign.entry(id).or_default();
            f.0 += sum;
            f.1 += reserved;
        }
        self.verify.counties += v.counties;
        self.verify.entries += v.entries;
        self.verify.broken.extend(v.broken);
        self.verify.heads.extend(v.heads);
        self.written += county.written;
    }
}

/// What every walker of one walk shares: what to do, and which county is next.
struct Walk {
    check: bool,
    verify: bool,
    sql: String,
    counties: Vec<String>,
    heads: HashMap<String, (i64, Vec<u8>)>,
    next: std::sync::atomic::AtomicUsize,
}

/// Each county's journal text, by the county's place in the walk, on its way to the one writer.
type JournalSender = tokio::sync::mpsc::UnboundedSender<(usize, Vec<u8>)>;

/// Walkers of the ledger at once ([`crate::parallel::READERS`]): each reads a county at a time on a
/// connection of its own. A province's proof is the demo's last and longest stage after its
/// payouts, and one walker kept one of the two cores busy.
const WALKERS: usize = crate::parallel::READERS;

impl Store {
    /// Walks every county's entries once, checking (`check`), verifying (`verify`) and writing the
    /// journal (`journal`) as asked. Counties are independent, so [`WALKERS`] walkers share them,
    /// each taking the next county not yet taken; what they find is put together in county order,
    /// and the journal is written in that order too.
    async fn walk(
        &self,
        check: bool,
        verify: bool,
        journal: Option<&mut (dyn Write + Send)>,
    ) -> Result<Walked, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let heads: HashMap<String, (i64, Vec<u8>)> =
            sqlx::query("SELECT county_code, seq, chain_hash FROM chain_heads")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
                .collect::<Result<_, StoreError>>()?;
        let mut counties: BTreeSet<String> = heads.keys().cloned().collect();
        if check {
            // The check also looks at counties with accounts and no entries.
            for r in sqlx::query("SELECT DISTINCT county_code FROM accounts")
                .fetch_all(&mut *conn)
                .await?
            {
                counties.insert(r.try_get(0)?);
            }
        }
        drop(conn);
        let exporting = journal.is_some();
        let wanted = |i: usize| match i {
            SEQ | KEY | PROGRAM | KIND => true,
            REFERS => check || verify,
            DATE | MEMO => verify || exporting,
            _ => verify,
        };
        // The export alone reads only what moved money.
        let filter = if check || verify {
            ""
        } else {
            "AND e.kind NOT IN ('pending', 'void')"
        };
        let mut journal = journal;
        if let Some(out) = journal.as_deref_mut() {
            journal_header(out)?;
        }
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let walk = Walk {
            check,
            verify,
            sql: page_sql(self.backend, &wanted, filter),
            counties: counties.into_iter().collect(),
            heads,
            next: std::sync::atomic::AtomicUsize::new(0),
        };
        let walkers = WALKERS.min(walk.counties.len()).max(1);
        let mut jobs: Vec<crate::parallel::Job<'_, Vec<(usize, Walked)>>> = (0..walkers)
            .map(|_| -> crate::parallel::Job<'_, Vec<(usize, Walked)>> {
                // Each walker holds a sender, so the writer hears the end of them all, however
                // they end.
                let journal = exporting.then(|| sender.clone());
                Box::pin(self.walker(&walk, walkers == 1, journal))
            })
            .collect();
        drop(sender);
        let count = walk.counties.len();
        if let Some(out) = journal {
            // The writer: each county's text in county order, as soon as those before it are in.
            jobs.push(Box::pin(async move {
                let mut waiting: std::collections::BTreeMap<usize, Vec<u8>> = Default::default();
                let mut due = 0;
                while due < count {
                    let Some((place, text)) = receiver.recv().await else {
                        break; // every walker has ended, one with an error: that is returned
                    };
                    waiting.insert(place, text);
                    while let Some(text) = waiting.remove(&due) {
                        out.write_all(&text).map_err(io_error)?;
                        due += 1;
                    }
                }
                Ok(Vec::new())
            }));
        }
        let mut found: Vec<(usize, Walked)> = crate::parallel::side_by_side(jobs)
            .await?
            .into_iter()
            .flatten()
            .collect();
        found.sort_by_key(|(place, _)| *place);
        let mut walked = Walked::default();
        for (_, county) in found {
            walked.add(county);
        }
        Ok(walked)
    }

    /// One walker: takes the next county not yet taken until none is left, on a connection of its
    /// own (mapping the file only when it walks alone: each mapping counts against the process).
    async fn walker(
        &self,
        walk: &Walk,
        alone: bool,
        journal: Option<JournalSender>,
    ) -> Result<Vec<(usize, Walked)>, StoreError> {
        let mut conn = self.scan_connection(alone).await?;
        let mut found = Vec::new();
        // Accounts of other counties met in this walker's counties, looked up once.
        let mut elsewhere = HashMap::new();
        loop {
            let place = walk.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(county) = walk.counties.get(place) else {
                break;
            };
            let mut text = Vec::new();
            let mut walked = Walked::default();
            self.walk_county(
                &mut conn,
                walk,
                county,
                &mut walked,
                &mut elsewhere,
                journal.is_some().then_some(&mut text),
            )
            .await?;
            if let Some(sender) = &journal {
                // The writer stops only after an error, which is then returned.
                let _ = sender.send((place, text));
            }
            found.push((place, walked));
        }
        Ok(found)
    }

    /// Walks one county's entries in order, into `walked` and, when exporting, the journal text
    /// `text`.
    async fn walk_county(
        &self,
        conn: &mut sqlx::AnyConnection,
        walk: &Walk,
        county: &str,
        walked: &mut Walked,
        elsewhere: &mut Elsewhere,
        mut text: Option<&mut Vec<u8>>,
    ) -> Result<(), StoreError> {
        let head = walk.heads.get(county);
        let verifying = walk.verify && head.is_some();
        let writing = text.is_some() && head.is_some_and(|(seq, _)| *seq > 0);
        if !(walk.check || verifying || writing) {
            return Ok(());
        }
        let mut checking = match walk.check {
            true => Some(CheckCounty::read(conn, self.backend, county).await?),
            false => None,
        };
        let mut chain = verifying.then_some(VerifyCounty {
            previous: GENESIS,
            expected_seq: 1,
            broken: None,
        });
        if verifying {
            walked.verify.counties += 1;
        }
        let mut names = match verifying || writing {
            true => Some(CountyAccounts::read(conn, county).await?),
            false => None,
        };
        let mut legs = Vec::new();
        let mut from = 1_i64;
        while let Some(page_text) = page(conn, &walk.sql, county, from).await? {
            let mut rows = Vec::new();
            super::packed::unpack(&page_text, COLUMNS.len(), |r| {
                rows.push(r.to_vec());
                Ok(())
            })?;
            let Some(last) = rows.last() else { break };
            let postings = page_legs(conn, county, from, int(last, SEQ)?).await?;
            let mut next_leg = 0;
            for e in &rows {
                let seq = int(e, SEQ)?;
                from = seq + 1;
                let (key, program, kind) = (field(e, KEY)?, field(e, PROGRAM)?, field(e, KIND)?);
                // The page's postings are in entry order: skip those of entries the page left out
                // (the export's filter), take this entry's.
                while postings.get(next_leg).is_some_and(|l| l.0 < seq) {
                    next_leg += 1;
                }
                legs.clear();
                while let Some((_, leg)) = postings.get(next_leg).filter(|l| l.0 == seq) {
                    legs.push(leg.ok_or_else(|| {
                        StoreError::Invalid(format!("a stored posting of entry {key} is damaged"))
                    })?);
                    next_leg += 1;
                }
                if let Some(c) = checking.as_mut() {
                    c.entry(
                        &mut walked.checked,
                        elsewhere,
                        conn,
                        county,
                        seq,
                        key,
                        program,
                        kind,
                        e[REFERS],
                        &legs,
                    )
                    .await?;
                }
                let to_journal = writing && !matches!(kind, "pending" | "void");
                let to_chain = chain.as_ref().is_some_and(|c| c.broken.is_none());
                if let Some(names) = names.as_mut().filter(|_| to_journal || to_chain) {
                    names.learn(conn, &legs).await?;
                    let postings = names.named(&legs);
                    if let Some(c) = chain.as_mut().filter(|_| to_chain) {
                        c.entry(&mut walked.verify, county, e, &postings)?;
                    }
                    if let Some(out) = text.as_deref_mut().filter(|_| to_journal) {
                        journal_entry(out, county, e, &postings)?;
                        walked.written += 1;
                    }
                }
            }
            // Verifying alone stops reading a county at its first break.
            if checking.is_none() && !writing && chain.as_ref().is_some_and(|c| c.broken.is_some())
            {
                break;
            }
        }
        if let Some(c) = checking {
            c.finish(&mut walked.checked);
        }
        if let (Some(c), Some((head_seq, head_hash))) = (chain, head) {
            c.finish(&mut walked.verify, county, *head_seq, head_hash);
        }
        Ok(())
    }

    /// Proves the ledger consistent: every entry balanced, in one county and one program; stored
    /// balances and reservations equal what the postings say; no held account overdrawn.
    pub async fn check(&self) -> Result<CheckReport, StoreError> {
        let walked = self.walk(true, false, None).await?;
        let mut conn = self.pool.acquire().await?;
        self.check_report(&mut conn, walked.checked).await
    }

    /// Recomputes every county's hash chain from the stored entries and postings.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        Ok(self.walk(false, true, None).await?.verify)
    }

    /// Writes every posted entry as an hledger journal. Account names are
    /// `COUNTY:PROGRAM:OWNER:KIND`; amounts are in CNY. Pending and void entries move no money and
    /// are left out.
    pub async fn export_journal(&self, out: &mut (dyn Write + Send)) -> Result<i64, StoreError> {
        Ok(self.walk(false, false, Some(out)).await?.written)
    }

    /// `check`, `verify` and the journal export (when `journal` is given) in one walk over the
    /// ledger: what each would report, read once. Returns the entries written to the journal.
    pub async fn prove(
        &self,
        journal: Option<&mut (dyn Write + Send)>,
    ) -> Result<(CheckReport, VerifyReport, i64), StoreError> {
        let walked = self.walk(true, true, journal).await?;
        let (verify, written) = (walked.verify, walked.written);
        let mut conn = self.pool.acquire().await?;
        let check = self.check_report(&mut conn, walked.checked).await?;
        Ok((check, verify, written))
    }

    /// The check's report from what its walk found, with the questions asked of the whole ledger.
    async fn check_report(
        &self,
        conn: &mut sqlx::AnyConnection,
        mut found: Checked,
    ) -> Result<CheckReport, StoreError> {
        let mut count = async |sql: &'static str| {
            let row = sqlx::query(sql).fetch_one(&mut *conn).await?;
            Ok::<i64, StoreError>(row.try_get::<i64, _>(0)?)
        };
        let mut report = CheckReport {
            entries: count("SELECT COUNT(*) FROM entries").await?,
            postings: count("SELECT COUNT(*) FROM postings").await?,
            accounts: count("SELECT COUNT(*) FROM accounts").await?,
            problems: Vec::new(),
        };
        self.name_differences(conn, &mut found).await?;
        let mut listed = |names: Vec<String>, what: &str| {
            for name in names.into_iter().take(PROBLEMS_LISTED) {
                report.problems.push(format!("{name}: {what}"));
            }
        };
        listed(found.unbalanced, "does not balance");
        listed(found.too_few, "has fewer than two postings");
        listed(
            found.crossing.into_iter().collect(),
            "posts to another program's or county's account",
        );
        listed(
            found.balance_differs,
            "stored balance differs from the sum of its postings",
        );
        listed(
            found.reserved_differs,
            "stored reservation differs from its open pending entries",
        );
        let overdrawn = sqlx::query(
            "SELECT a.county_code || ' ' || a.program || ' ' || a.owner || ':' || a.kind FROM accounts a \
             JOIN balances b ON b.account_id = a.id WHERE a.kind = 'held' AND b.balance - b.reserved < 0 \
             ORDER BY 1 LIMIT 20",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
        listed(overdrawn, "held account is overdrawn");
        if found.entries != report.entries {
            report.problems.push(format!(
                "{} entries lie outside every county's chain",
                report.entries - found.entries
            ));
        }
        if found.postings != report.postings {
            report.problems.push(format!(
                "{} postings belong to no entry",
                report.postings - found.postings
            ));
        }
        let row = sqlx::query("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM postings")
            .fetch_one(&mut *conn)
            .await?;
        let total: i64 = row.try_get(0)?;
        if total != 0 {
            report.problems.push(format!(
                "all postings together sum to {}, not 0.00: money was made or lost",
                Fen(total)
            ));
        }
        Ok(report)
    }

    /// Adds postings found on another county's account to that account, and names every account
    /// whose stored balance or reservation differs from what its postings say.
    async fn name_differences(
        &self,
        conn: &mut sqlx::AnyConnection,
        found: &mut Checked,
    ) -> Result<(), StoreError> {
        for (id, (sum, reserved)) in std::mem::take(&mut found.foreign) {
            let has_balance = sqlx::query("SELECT 1 FROM balances WHERE account_id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .is_some();
            if has_balance {
                let d = found.differs.entry(id).or_default();
                d.0 -= sum;
                d.1 -= reserved;
            }
        }
        found.differs.retain(|_, d| *d != (0, 0));
        let mut names: Vec<(String, i64)> = Vec::new();
        let ids: Vec<i64> = found.differs.keys().copied().collect();
        for row in super::fetch_in(
            conn,
            self.backend,
            "SELECT a.county_code || ' ' || a.program || ' ' || a.owner || ':' || a.kind, a.id \
             FROM accounts a WHERE a.id IN ({list})",
            &[],
            &ids,
        )
        .await?
        {
            names.push((row.try_get(0)?, row.try_get(1)?));
        }
        names.sort();
        for (name, id) in names {
            let (balance, reserved) = found.differs[&id];
            if balance != 0 {
                found.balance_differs.push(name.clone());
            }
            if reserved != 0 {
                found.reserved_differs.push(name);
            }
        }
        Ok(())
    }
}

/// The journal's opening lines.
fn journal_header(out: &mut (dyn Write + Send)) -> Result<(), StoreError> {
    writeln!(
        out,
        "; earmark ledger export: one transaction per posted entry, amounts in CNY (yuan)"
    )
    .map_err(io_error)?;
    writeln!(out, "commodity 1,000.00 CNY\n").map_err(io_error)?;
    Ok(())
}
