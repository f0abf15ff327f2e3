//! Reading the ledger: balances (now or as of a date), the consistency check, the hash-chain
//! verification and the hledger journal export.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, portable};
use crate::ledger::AccountKind;
use crate::ledger::hash::{self, EntryContent, GENESIS};
use crate::money::Fen;

/// Entries read per page while verifying or exporting, so memory stays flat on any ledger size.
const PAGE_ENTRIES: i64 = 20_000;

/// An entry's postings as one column, `account_id amount` per leg in leg order, so a full scan
/// reads one row per entry: sqlx hands SQLite's rows from its worker thread one at a time, and a
/// row per posting made that hand-over most of `verify`'s time. (`string_agg` with an ordering is
/// PostgreSQL's and SQLite's alike, from SQLite 3.44.)
const LEGS: &str = "(SELECT string_agg(CAST(p.account_id AS TEXT) || ' ' || CAST(p.amount AS TEXT), ' ' \
                    ORDER BY p.leg) FROM postings p WHERE p.county_code = e.county_code AND p.seq = e.seq)";

/// A page of one county's entries, packed (see [`super::packed`]): `columns` of the entries from
/// sequence number `$2` on (or after it, with `after`), `PAGE_ENTRIES` at most, in order, where
/// `filter` holds. Each column is text; `legs` is the entry's postings ([`LEGS`] or [`LEGS_PENDING`]). Rows of one text each,
/// handed over by sqlx one at a time, were most of a full scan's time.
fn entry_page_sql(
    backend: super::Backend,
    columns: &[&str],
    after: bool,
    filter: &str,
    legs: &str,
) -> String {
    let inner = format!(
        "SELECT e.*, {legs} AS legs FROM entries e WHERE e.county_code = $1 AND e.seq {} $2 {filter} \
         ORDER BY e.seq LIMIT $3",
        if after { ">" } else { ">=" }
    );
    let columns: Vec<String> = columns
        .iter()
        .map(|c| match *c {
            "content_hash" | "chain_hash" => super::packed::hex(backend, &format!("t.{c}")),
            "seq" | "refers_seq" => format!("CAST(t.{c} AS TEXT)"),
            c => format!("t.{c}"),
        })
        .collect();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    super::packed::select(&columns, Some("t.seq"), &format!("FROM ({inner}) t"))
}

/// Reads one page written by [`entry_page_sql`]: the packed text, or `None` past the last entry.
async fn entry_page(
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

/// The rows of a page read by [`entry_page`], `width` fields each.
fn page_rows(text: &str, width: usize) -> Result<Vec<Vec<Option<&str>>>, StoreError> {
    let mut rows = Vec::new();
    super::packed::unpack(text, width, |r| {
        rows.push(r.to_vec());
        Ok(())
    })?;
    Ok(rows)
}

/// [`LEGS`] with each posting's pending flag: `account_id amount pending` per leg.
const LEGS_PENDING: &str = "(SELECT string_agg(CAST(p.account_id AS TEXT) || ' ' || CAST(p.amount AS TEXT) \
                    || ' ' || CAST(p.pending AS TEXT), ' ' ORDER BY p.leg) \
                    FROM postings p WHERE p.county_code = e.county_code AND p.seq = e.seq)";

/// One county's accounts by id, read once per county by the full scans; an id not among them (a
/// posting moved onto another county's account) is looked up on its own.
struct CountyAccounts(HashMap<i64, (String, AccountKind)>);

impl CountyAccounts {
    async fn read(conn: &mut sqlx::AnyConnection, county: &str) -> Result<Self, StoreError> {
        let rows = sqlx::query("SELECT id, owner, kind FROM accounts WHERE county_code = $1")
            .bind(county.to_string())
            .fetch_all(&mut *conn)
            .await?;
        let mut map = HashMap::with_capacity(rows.len());
        for r in rows {
            map.insert(r.try_get(0)?, owner_and_kind(&r, 1)?);
        }
        Ok(CountyAccounts(map))
    }

    /// The legs of one entry from its `LEGS` column: (owner, kind, amount) in leg order. A posting
    /// whose account does not exist is left out, as a join would leave it: the entry's hash then
    /// no longer matches.
    async fn legs(
        &mut self,
        conn: &mut sqlx::AnyConnection,
        column: Option<&str>,
    ) -> Result<Vec<(String, AccountKind, Fen)>, StoreError> {
        let column = column.unwrap_or_default();
        let mut numbers = column.split(' ').filter(|t| !t.is_empty()).map(|t| {
            t.parse::<i64>().map_err(|_| {
                StoreError::Invalid(format!("a stored posting reads \"{t}\": not a number"))
            })
        });
        let mut legs = Vec::new();
        while let Some(id) = numbers.next() {
            let id = id?;
            let amount = numbers.next().ok_or_else(|| {
                StoreError::Invalid(format!("posting on account #{id} has no amount"))
            })??;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.0.entry(id) {
                let row = sqlx::query("SELECT owner, kind FROM accounts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(row) = row else { continue };
                slot.insert(owner_and_kind(&row, 0)?);
            }
            let (owner, kind) = &self.0[&id];
            legs.push((owner.clone(), *kind, Fen(amount)));
        }
        Ok(legs)
    }
}

/// An account's owner and kind, from two columns starting at `at`.
fn owner_and_kind(row: &sqlx::any::AnyRow, at: usize) -> Result<(String, AccountKind), StoreError> {
    let kind: String = row.try_get(at + 1)?;
    Ok((
        row.try_get(at)?,
        AccountKind::parse(&kind).unwrap_or(AccountKind::Budget),
    ))
}

#[derive(Clone, Debug, Default)]
pub struct BalanceFilter {
    pub county: Option<String>,
    pub program: Option<String>,
    /// Counts postings of entries dated on or before this day.
    pub as_of: Option<chrono::NaiveDate>,
    /// Also list accounts whose balance is zero.
    pub include_zero: bool,
    /// Only accounts of these kinds (all kinds when empty).
    pub kinds: Vec<AccountKind>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BalanceRow {
    pub county_code: String,
    pub program: String,
    pub owner: String,
    pub kind: String,
    pub balance: Fen,
    /// Reserved by pending entries (only for the current balance of `held` accounts).
    pub reserved: Fen,
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
    crossing: std::collections::BTreeSet<String>,
    balance_differs: Vec<String>,
    reserved_differs: Vec<String>,
}

/// An account of the county being checked: what is stored, and what its postings add up to.
struct CheckedAccount {
    program: String,
    kind: AccountKind,
    stored: Option<(i64, i64)>,
    sum: i64,
    reserved: i64,
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

impl Store {
    pub async fn balances(&self, filter: &BalanceFilter) -> Result<Vec<BalanceRow>, StoreError> {
        let mut conditions = Vec::new();
        let mut params: Vec<String> = Vec::new();
        if let Some(county) = &filter.county {
            params.push(county.clone());
            conditions.push(format!("a.county_code = ${}", params.len()));
        }
        if let Some(program) = &filter.program {
            params.push(program.clone());
            conditions.push(format!("a.program = ${}", params.len()));
        }
        if !filter.kinds.is_empty() {
            let mut list = Vec::new();
            for kind in &filter.kinds {
                params.push(kind.code().to_string());
                list.push(format!("${}", params.len()));
            }
            conditions.push(format!("a.kind IN ({})", list.join(", ")));
        }
        let sql = match filter.as_of {
            None => {
                let mut sql = String::from(
                    "SELECT a.county_code, a.program, a.owner, a.kind, b.balance, b.reserved \
                     FROM accounts a JOIN balances b ON b.account_id = a.id",
                );
                if !filter.include_zero {
                    conditions.push("(b.balance <> 0 OR b.reserved <> 0)".into());
                }
                if !conditions.is_empty() {
                    sql.push_str(" WHERE ");
                    sql.push_str(&conditions.join(" AND "));
                }
                sql
            }
            Some(day) => {
                params.push(day.format("%Y-%m-%d").to_string());
                conditions.push(format!("p.entry_date <= ${}", params.len()));
                conditions.push("p.pending = 0".into());
                let having = if filter.include_zero {
                    ""
                } else {
                    " HAVING SUM(p.amount) <> 0"
                };
                format!(
                    "SELECT a.county_code, a.program, a.owner, a.kind, CAST(SUM(p.amount) AS BIGINT), \
                     CAST(0 AS BIGINT) FROM accounts a JOIN postings p ON p.account_id = a.id WHERE {} \
                     GROUP BY a.county_code, a.program, a.owner, a.kind{having}",
                    conditions.join(" AND ")
                )
            }
        };
        let sql = format!("{sql} ORDER BY 1, 2, 3, 4");
        let mut query = sqlx::query(portable(self.backend, sql));
        for p in params {
            query = query.bind(p);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(BalanceRow {
                    county_code: r.try_get(0)?,
                    program: r.try_get(1)?,
                    owner: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    balance: Fen(r.try_get(4)?),
                    reserved: Fen(r.try_get(5)?),
                })
            })
            .collect()
    }

    /// Proves the ledger consistent: every entry balanced, in one county and one program; stored
    /// balances and reservations equal what the postings say; no held account overdrawn.
    pub async fn check(&self) -> Result<CheckReport, StoreError> {
        let mut conn = self.scan_connection().await?;
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
        let found = self.check_entries(&mut conn).await?;
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

    /// The check's one pass over every county's entries and their postings (see [`Checked`]).
    /// The same questions as joins (entries to postings to accounts, postings summed by account,
    /// pending postings against what resolves them) took 264 s of a province-year's 10 million
    /// entries: each seeks through indexes far larger than the cache.
    async fn check_entries(&self, conn: &mut sqlx::AnyConnection) -> Result<Checked, StoreError> {
        use super::packed::{int, text as field};
        let mut found = Checked::default();
        let counties: Vec<String> = sqlx::query(
            "SELECT county_code FROM chain_heads UNION SELECT DISTINCT county_code FROM accounts \
             ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        let page = entry_page_sql(
            self.backend,
            &["seq", "idem_key", "program", "kind", "refers_seq", "legs"],
            false,
            "",
            LEGS_PENDING,
        );
        // What each account's postings add up to, against what is stored: differences only.
        let mut differs: HashMap<i64, (i64, i64)> = HashMap::new();
        // Postings on an account of another county than their entry's, added at the end.
        let mut foreign: HashMap<i64, (i64, i64)> = HashMap::new();
        let mut elsewhere: HashMap<i64, Option<(String, String, AccountKind)>> = HashMap::new();
        for county in &counties {
            let mut accounts: HashMap<i64, CheckedAccount> = HashMap::new();
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
            let query = sqlx::query(super::portable(self.backend, sql)).bind(county.to_string());
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
            // Pending postings that reserve money (a held account's outflow), open until a post or
            // void entry refers to their entry.
            let mut reserving: Vec<(i64, i64, i64)> = Vec::new();
            let mut resolved: std::collections::HashSet<i64> = std::collections::HashSet::new();
            let mut from = 1_i64;
            while let Some(text) = entry_page(conn, &page, county, from).await? {
                let rows = page_rows(&text, 6)?;
                let mut legs: Vec<(i64, i64, bool)> = Vec::new();
                for e in &rows {
                    let seq = int(e, 0)?;
                    from = seq + 1;
                    found.entries += 1;
                    let (key, program, kind) = (field(e, 1)?, field(e, 2)?, field(e, 3)?);
                    if matches!(kind, "post" | "void")
                        && let Some(target) = e[4]
                    {
                        resolved.insert(int(e, 4).map_err(|_| {
                            StoreError::Invalid(format!("stored reference {target} is damaged"))
                        })?);
                    }
                    legs.clear();
                    let mut numbers = e[5]
                        .unwrap_or_default()
                        .split(' ')
                        .filter(|t| !t.is_empty());
                    while let Some(id) = numbers.next() {
                        let mut next = || {
                            numbers
                                .next()
                                .and_then(|t| t.parse::<i64>().ok())
                                .ok_or_else(|| {
                                    StoreError::Invalid(format!(
                                        "a stored posting of entry {key} is damaged"
                                    ))
                                })
                        };
                        let id: i64 = id.parse().map_err(|_| {
                            StoreError::Invalid(format!(
                                "a stored posting of entry {key} is damaged"
                            ))
                        })?;
                        let amount = next()?;
                        let pending = next()? != 0;
                        legs.push((id, amount, pending));
                    }
                    found.postings += legs.len() as i64;
                    let total: i64 = legs.iter().map(|(_, a, _)| a).sum();
                    if !legs.is_empty() && total != 0 {
                        found.unbalanced.push(key.to_string());
                    }
                    if kind != "void" && legs.len() < 2 {
                        found.too_few.push(key.to_string());
                    }
                    for &(id, amount, pending) in &legs {
                        let held = match accounts.get_mut(&id) {
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
                                    foreign.entry(id).or_default().0 += amount;
                                }
                                account.is_some_and(|(_, _, k)| k == AccountKind::Held)
                            }
                        };
                        if pending && amount < 0 && held {
                            reserving.push((seq, id, -amount));
                        }
                    }
                }
            }
            for (seq, id, amount) in reserving {
                if resolved.contains(&seq) {
                    continue;
                }
                match accounts.get_mut(&id) {
                    Some(a) => a.reserved += amount,
                    None => foreign.entry(id).or_default().1 += amount,
                }
            }
            for (id, a) in accounts {
                if let Some((balance, reserved)) = a.stored
                    && (balance, reserved) != (a.sum, a.reserved)
                {
                    differs.insert(id, (balance - a.sum, reserved - a.reserved));
                }
            }
        }
        // Postings found on an account outside their entry's county count on that account too.
        for (id, (sum, reserved)) in foreign {
            let has_balance = sqlx::query("SELECT 1 FROM balances WHERE account_id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .is_some();
            if has_balance {
                let d = differs.entry(id).or_default();
                d.0 -= sum;
                d.1 -= reserved;
            }
        }
        differs.retain(|_, d| *d != (0, 0));
        let mut names: Vec<(String, i64)> = Vec::new();
        let ids: Vec<i64> = differs.keys().copied().collect();
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
            let (balance, reserved) = differs[&id];
            if balance != 0 {
                found.balance_differs.push(name.clone());
            }
            if reserved != 0 {
                found.reserved_differs.push(name);
            }
        }
        Ok(found)
    }

    /// Recomputes every county's hash chain from the stored entries and postings.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let mut conn = self.scan_connection().await?;
        let page = entry_page_sql(
            self.backend,
            &[
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
                "legs",
            ],
            false,
            "",
            LEGS,
        );
        let heads = sqlx::query(
            "SELECT county_code, seq, chain_hash FROM chain_heads ORDER BY county_code",
        )
        .fetch_all(&mut *conn)
        .await?;
        for head in heads {
            let county: String = head.try_get(0)?;
            let head_seq: i64 = head.try_get(1)?;
            let head_hash: Vec<u8> = head.try_get(2)?;
            report.counties += 1;
            let mut accounts = CountyAccounts::read(&mut conn, &county).await?;
            let mut previous = GENESIS;
            let mut expected_seq = 1_i64;
            let mut broken: Option<String> = None;
            'pages: loop {
                let Some(text) = entry_page(&mut conn, &page, &county, expected_seq).await? else {
                    break;
                };
                for e in page_rows(&text, 11)? {
                    use super::packed::{int, text as field};
                    let seq = int(&e, 0)?;
                    let key = field(&e, 1)?;
                    report.entries += 1;
                    if seq != expected_seq {
                        broken = Some(format!(
                            "county {county}: entry number {expected_seq} is missing (next found: {seq}, key \"{key}\")"
                        ));
                        break 'pages;
                    }
                    let (program, date, kind, memo, created_at) = (
                        field(&e, 2)?,
                        field(&e, 3)?,
                        field(&e, 4)?,
                        field(&e, 6)?,
                        field(&e, 7)?,
                    );
                    let refers_seq = e[5].map(|_| int(&e, 5)).transpose()?;
                    let stored_content = hash::from_hex(field(&e, 8)?);
                    let stored_chain = hash::from_hex(field(&e, 9)?);
                    let legs = accounts.legs(&mut conn, e[10]).await?;
                    let postings: Vec<(&str, AccountKind, Fen)> =
                        legs.iter().map(|(o, k, a)| (o.as_str(), *k, *a)).collect();
                    let content = hash::content_hash(&EntryContent {
                        key,
                        date,
                        county: &county,
                        program,
                        kind,
                        refers_seq,
                        memo,
                        postings: &postings,
                    });
                    if stored_content != Some(content) {
                        broken = Some(format!(
                            "county {county}: entry {seq} (key \"{key}\") was altered after posting: \
                             its content no longer matches its hash"
                        ));
                        break 'pages;
                    }
                    let chain = hash::chain_hash(&previous, seq, created_at, &content);
                    if stored_chain != Some(chain) {
                        broken = Some(format!(
                            "county {county}: entry {seq} (key \"{key}\") breaks the hash chain: \
                             it or an entry before it was altered"
                        ));
                        break 'pages;
                    }
                    previous = chain;
                    expected_seq += 1;
                }
            }
            if broken.is_none()
                && (expected_seq - 1 != head_seq || previous.as_slice() != head_hash.as_slice())
            {
                broken = Some(format!(
                    "county {county}: the chain head (entry {head_seq}) does not match the last entry ({}): \
                     entries were removed or the head was altered",
                    expected_seq - 1
                ));
            }
            if let Some(b) = broken {
                report.broken.push(b);
            }
            if head_seq > 0 {
                report
                    .heads
                    .push((county, head_seq, hash::to_hex(&head_hash)));
            }
        }
        Ok(report)
    }

    /// Writes every posted entry as an hledger journal. Account names are
    /// `COUNTY:PROGRAM:OWNER:KIND`; amounts are in CNY. Pending and void entries move no money and are left out.
    pub async fn export_journal(&self, out: &mut (dyn Write + Send)) -> Result<i64, StoreError> {
        writeln!(
            out,
            "; earmark ledger export: one transaction per posted entry, amounts in CNY (yuan)"
        )
        .map_err(io_error)?;
        writeln!(out, "commodity 1,000.00 CNY\n").map_err(io_error)?;
        let mut written = 0;
        let mut conn = self.scan_connection().await?;
        // Pending entries' postings are reservations and void entries move nothing; a post entry
        // carries the money of the pending entry it posts.
        let page = entry_page_sql(
            self.backend,
            &[
                "seq",
                "idem_key",
                "program",
                "entry_date",
                "kind",
                "memo",
                "legs",
            ],
            true,
            "AND e.kind NOT IN ('pending', 'void')",
            LEGS,
        );
        let counties: Vec<String> =
            sqlx::query("SELECT county_code FROM chain_heads WHERE seq > 0 ORDER BY county_code")
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
        for county in counties {
            let mut accounts = CountyAccounts::read(&mut conn, &county).await?;
            let mut after = 0_i64;
            loop {
                let Some(text) = entry_page(&mut conn, &page, &county, after).await? else {
                    break;
                };
                for e in page_rows(&text, 7)? {
                    use super::packed::{int, text as field};
                    let seq = int(&e, 0)?;
                    after = seq;
                    let (key, program, date, kind, memo) = (
                        field(&e, 1)?,
                        field(&e, 2)?,
                        field(&e, 3)?,
                        field(&e, 4)?,
                        field(&e, 5)?,
                    );
                    let description = if memo.is_empty() {
                        key.to_string()
                    } else {
                        format!("{key} | {memo}")
                    };
                    writeln!(out, "{date} * {description}").map_err(io_error)?;
                    writeln!(out, "    ; county:{county}, seq:{seq}, kind:{kind}")
                        .map_err(io_error)?;
                    for (owner, account_kind, amount) in accounts.legs(&mut conn, e[6]).await? {
                        writeln!(
                            out,
                            "    {county}:{program}:{owner}:{}  {amount} CNY",
                            account_kind.code()
                        )
                        .map_err(io_error)?;
                    }
                    writeln!(out).map_err(io_error)?;
                    written += 1;
                }
            }
        }
        Ok(written)
    }

    /// The number of entries stored, per kind.
    pub async fn entry_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT kind, COUNT(*) FROM entries GROUP BY kind ORDER BY kind")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}

fn io_error(e: std::io::Error) -> StoreError {
    StoreError::Invalid(format!("cannot write the export: {e}"))
}
