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

#[derive(Clone, Debug, Default)]
pub struct BalanceFilter {
    pub county: Option<String>,
    pub program: Option<String>,
    /// Counts postings of entries dated on or before this day.
    pub as_of: Option<chrono::NaiveDate>,
    /// Also list accounts whose balance is zero.
    pub include_zero: bool,
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
        let count = |sql: &'static str| async move {
            let row = sqlx::query(sql).fetch_one(&self.pool).await?;
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
            for row in sqlx::query(sql).fetch_all(&self.pool).await? {
                let name: String = row.try_get(0)?;
                report.problems.push(format!("{name}: {what}"));
            }
        }
        let row = sqlx::query("SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM postings")
            .fetch_one(&self.pool)
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
        let heads = sqlx::query(
            "SELECT county_code, seq, chain_hash FROM chain_heads ORDER BY county_code",
        )
        .fetch_all(&self.pool)
        .await?;
        for head in heads {
            let county: String = head.try_get(0)?;
            let head_seq: i64 = head.try_get(1)?;
            let head_hash: Vec<u8> = head.try_get(2)?;
            report.counties += 1;
            let mut previous = GENESIS;
            let mut expected_seq = 1_i64;
            let mut broken: Option<String> = None;
            'pages: loop {
                let entries = sqlx::query(
                    "SELECT seq, idem_key, program, entry_date, kind, refers_seq, memo, created_at, content_hash, chain_hash \
                     FROM entries WHERE county_code = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                )
                .bind(county.clone())
                .bind(expected_seq)
                .bind(PAGE_ENTRIES)
                .fetch_all(&self.pool)
                .await?;
                if entries.is_empty() {
                    break;
                }
                let last_seq: i64 = entries[entries.len() - 1].try_get(0)?;
                let postings = sqlx::query(
                    "SELECT p.seq, a.owner, a.kind, p.amount FROM postings p JOIN accounts a ON a.id = p.account_id \
                     WHERE p.county_code = $1 AND p.seq >= $2 AND p.seq <= $3 ORDER BY p.seq, p.leg",
                )
                .bind(county.clone())
                .bind(expected_seq)
                .bind(last_seq)
                .fetch_all(&self.pool)
                .await?;
                let mut legs: HashMap<i64, Vec<(String, AccountKind, Fen)>> = HashMap::new();
                for p in &postings {
                    let kind: String = p.try_get(2)?;
                    legs.entry(p.try_get(0)?).or_default().push((
                        p.try_get(1)?,
                        AccountKind::parse(&kind).unwrap_or(AccountKind::Budget),
                        Fen(p.try_get(3)?),
                    ));
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
                    let legs = legs.remove(&seq).unwrap_or_default();
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
        let mut after: (String, i64) = (String::new(), 0);
        loop {
            let entries = sqlx::query(
                "SELECT county_code, seq, idem_key, program, entry_date, kind, memo FROM entries \
                 WHERE kind NOT IN ('pending', 'void') AND (county_code > $1 OR (county_code = $1 AND seq > $2)) \
                 ORDER BY county_code, seq LIMIT $3",
            )
            .bind(after.0.clone())
            .bind(after.1)
            .bind(PAGE_ENTRIES)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = entries.last() else { break };
            let last_place: (String, i64) = (last.try_get(0)?, last.try_get(1)?);
            let postings = sqlx::query(
                "SELECT p.county_code, p.seq, a.owner, a.kind, p.amount FROM postings p \
                 JOIN accounts a ON a.id = p.account_id \
                 WHERE p.pending = 0 AND (p.county_code > $1 OR (p.county_code = $1 AND p.seq > $2)) \
                 AND (p.county_code < $3 OR (p.county_code = $3 AND p.seq <= $4)) \
                 ORDER BY p.county_code, p.seq, p.leg",
            )
            .bind(after.0.clone())
            .bind(after.1)
            .bind(last_place.0.clone())
            .bind(last_place.1)
            .fetch_all(&self.pool)
            .await?;
            // (county, seq) → (owner, kind, amount) of each leg
            type Legs = HashMap<(String, i64), Vec<(String, String, i64)>>;
            let mut legs: Legs = HashMap::new();
            for p in postings {
                legs.entry((p.try_get(0)?, p.try_get(1)?))
                    .or_default()
                    .push((p.try_get(2)?, p.try_get(3)?, p.try_get(4)?));
            }
            for e in &entries {
                let county: String = e.try_get(0)?;
                let seq: i64 = e.try_get(1)?;
                let key: String = e.try_get(2)?;
                let program: String = e.try_get(3)?;
                let date: String = e.try_get(4)?;
                let kind: String = e.try_get(5)?;
                let memo: String = e.try_get(6)?;
                let description = if memo.is_empty() {
                    key.clone()
                } else {
                    format!("{key} | {memo}")
                };
                writeln!(out, "{date} * {description}").map_err(io_error)?;
                writeln!(out, "    ; county:{county}, seq:{seq}, kind:{kind}").map_err(io_error)?;
                for (owner, account_kind, amount) in
                    legs.remove(&(county.clone(), seq)).unwrap_or_default()
                {
                    writeln!(
                        out,
                        "    {county}:{program}:{owner}:{account_kind}  {} CNY",
                        Fen(amount)
                    )
                    .map_err(io_error)?;
                }
                writeln!(out).map_err(io_error)?;
                written += 1;
            }
            after = last_place;
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
