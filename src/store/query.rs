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
        column: Option<String>,
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
        let lists: [(&str, &str); 6] = [
            (
                "SELECT e.idem_key FROM entries e JOIN postings p ON p.county_code = e.county_code AND p.seq = e.seq \
                 GROUP BY e.county_code, e.seq, e.idem_key HAVING SUM(p.amount) <> 0 ORDER BY e.county_code, e.seq LIMIT 20",
                "does not balance",
            ),
            (
                "SELECT e.idem_key FROM entries e LEFT JOIN postings p ON p.county_code = e.county_code AND p.seq = e.seq \
                 WHERE e.kind <> 'void' GROUP BY e.county_code, e.seq, e.idem_key HAVING COUNT(p.leg) < 2 \
                 ORDER BY e.county_code, e.seq LIMIT 20",
                "has fewer than two postings",
            ),
            (
                "SELECT DISTINCT e.idem_key FROM entries e JOIN postings p ON p.county_code = e.county_code AND p.seq = e.seq \
                 JOIN accounts a ON a.id = p.account_id WHERE a.program <> e.program OR a.county_code <> e.county_code \
                 ORDER BY 1 LIMIT 20",
                "posts to another program's or county's account",
            ),
            (
                "SELECT a.county_code || ' ' || a.program || ' ' || a.owner || ':' || a.kind FROM accounts a \
                 JOIN balances b ON b.account_id = a.id \
                 LEFT JOIN (SELECT account_id, CAST(SUM(amount) AS BIGINT) AS total FROM postings WHERE pending = 0 \
                            GROUP BY account_id) s ON s.account_id = a.id \
                 WHERE b.balance <> COALESCE(s.total, 0) ORDER BY 1 LIMIT 20",
                "stored balance differs from the sum of its postings",
            ),
            (
                "SELECT a.county_code || ' ' || a.program || ' ' || a.owner || ':' || a.kind FROM accounts a \
                 JOIN balances b ON b.account_id = a.id \
                 LEFT JOIN (SELECT p.account_id, CAST(-SUM(p.amount) AS BIGINT) AS total FROM postings p \
                            JOIN accounts x ON x.id = p.account_id AND x.kind = 'held' \
                            WHERE p.pending = 1 AND p.amount < 0 AND NOT EXISTS ( \
                                SELECT 1 FROM entries r WHERE r.county_code = p.county_code AND r.refers_seq = p.seq \
                                AND r.kind IN ('post', 'void')) \
                            GROUP BY p.account_id) s ON s.account_id = a.id \
                 WHERE b.reserved <> COALESCE(s.total, 0) ORDER BY 1 LIMIT 20",
                "stored reservation differs from its open pending entries",
            ),
            (
                "SELECT a.county_code || ' ' || a.program || ' ' || a.owner || ':' || a.kind FROM accounts a \
                 JOIN balances b ON b.account_id = a.id WHERE a.kind = 'held' AND b.balance - b.reserved < 0 \
                 ORDER BY 1 LIMIT 20",
                "held account is overdrawn",
            ),
        ];
        for (sql, what) in lists {
            for row in sqlx::query(sql).fetch_all(&mut *conn).await? {
                let name: String = row.try_get(0)?;
                report.problems.push(format!("{name}: {what}"));
            }
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

    /// Recomputes every county's hash chain from the stored entries and postings.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let mut conn = self.scan_connection().await?;
        let page = format!(
            "SELECT e.seq, e.idem_key, e.program, e.entry_date, e.kind, e.refers_seq, e.memo, \
             e.created_at, e.content_hash, e.chain_hash, {LEGS} \
             FROM entries e WHERE e.county_code = $1 AND e.seq >= $2 ORDER BY e.seq LIMIT $3",
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
                let entries = sqlx::query(sqlx::AssertSqlSafe(page.clone()))
                    .bind(county.clone())
                    .bind(expected_seq)
                    .bind(PAGE_ENTRIES)
                    .fetch_all(&mut *conn)
                    .await?;
                if entries.is_empty() {
                    break;
                }
                for e in &entries {
                    let seq: i64 = e.try_get(0)?;
                    let key: String = e.try_get(1)?;
                    report.entries += 1;
                    if seq != expected_seq {
                        broken = Some(format!(
                            "county {county}: entry number {expected_seq} is missing (next found: {seq}, key \"{key}\")"
                        ));
                        break 'pages;
                    }
                    let (program, date, kind, memo, created_at): (
                        String,
                        String,
                        String,
                        String,
                        String,
                    ) = (
                        e.try_get(2)?,
                        e.try_get(3)?,
                        e.try_get(4)?,
                        e.try_get(6)?,
                        e.try_get(7)?,
                    );
                    let refers_seq: Option<i64> = e.try_get(5)?;
                    let stored_content: Vec<u8> = e.try_get(8)?;
                    let stored_chain: Vec<u8> = e.try_get(9)?;
                    let legs = accounts.legs(&mut conn, e.try_get(10)?).await?;
                    let postings: Vec<(&str, AccountKind, Fen)> =
                        legs.iter().map(|(o, k, a)| (o.as_str(), *k, *a)).collect();
                    let content = hash::content_hash(&EntryContent {
                        key: &key,
                        date: &date,
                        county: &county,
                        program: &program,
                        kind: &kind,
                        refers_seq,
                        memo: &memo,
                        postings: &postings,
                    });
                    if content.as_slice() != stored_content.as_slice() {
                        broken = Some(format!(
                            "county {county}: entry {seq} (key \"{key}\") was altered after posting: \
                             its content no longer matches its hash"
                        ));
                        break 'pages;
                    }
                    let chain = hash::chain_hash(&previous, seq, &created_at, &content);
                    if chain.as_slice() != stored_chain.as_slice() {
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
        let page = format!(
            "SELECT e.seq, e.idem_key, e.program, e.entry_date, e.kind, e.memo, {LEGS} \
             FROM entries e WHERE e.county_code = $1 AND e.seq > $2 \
             AND e.kind NOT IN ('pending', 'void') ORDER BY e.seq LIMIT $3",
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
                let entries = sqlx::query(sqlx::AssertSqlSafe(page.clone()))
                    .bind(county.clone())
                    .bind(after)
                    .bind(PAGE_ENTRIES)
                    .fetch_all(&mut *conn)
                    .await?;
                let Some(last) = entries.last() else { break };
                after = last.try_get(0)?;
                for e in &entries {
                    let seq: i64 = e.try_get(0)?;
                    let key: String = e.try_get(1)?;
                    let program: String = e.try_get(2)?;
                    let date: String = e.try_get(3)?;
                    let kind: String = e.try_get(4)?;
                    let memo: String = e.try_get(5)?;
                    let description = if memo.is_empty() {
                        key.clone()
                    } else {
                        format!("{key} | {memo}")
                    };
                    writeln!(out, "{date} * {description}").map_err(io_error)?;
                    writeln!(out, "    ; county:{county}, seq:{seq}, kind:{kind}")
                        .map_err(io_error)?;
                    for (owner, account_kind, amount) in
                        accounts.legs(&mut conn, e.try_get(6)?).await?
                    {
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
