//! Reading the ledger: balances (now or as of a date) and entry counts. The full scans (check,
//! verify, the journal export) are in [`super::scan`].

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, portable};
use crate::ledger::AccountKind;
use crate::money::Fen;

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

impl Store {
    pub async fn balances(&self, filter: &BalanceFilter) -> Result<Vec<BalanceRow>, StoreError> {
        let (sql, params) = balances_statement(filter);
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

/// The statement that answers `balances` (numbered parameters, PostgreSQL's style) and its
/// parameters. As of a date it sums the postings that moved balances, found through the index of
/// postings by account, which holds only those (`pending = 0`, migration 0013): the condition is
/// written out here, not bound, so that both databases see that the partial index serves it.
fn balances_statement(filter: &BalanceFilter) -> (String, Vec<String>) {
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
    (format!("{sql} ORDER BY 1, 2, 3, 4"), params)
}

/// SQLite's plan for `sql` with `binds` as text values: EXPLAIN QUERY PLAN's details, for tests
/// that hold a statement to the index it must use.
#[cfg(test)]
pub(crate) async fn sqlite_plan(store: &Store, sql: &str, binds: &[&str]) -> Vec<String> {
    let explain = portable(store.backend(), format!("EXPLAIN QUERY PLAN {sql}"));
    let mut query = sqlx::query(explain);
    for b in binds {
        query = query.bind(b.to_string());
    }
    query
        .fetch_all(store.pool())
        .await
        .expect("plan")
        .iter()
        .map(|r| r.try_get::<String, _>(3).expect("detail"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite finds an account's postings as of a date through the index of postings by account,
    /// which keeps only postings that moved balances: the statement must say `pending = 0` in a way
    /// SQLite can match against the index's own condition (a bound `pending = ?` would not, and the
    /// question would read the whole county's postings instead).
    #[tokio::test]
    async fn balances_as_of_a_date_read_postings_through_the_index_of_postings_that_moved() {
        let (store, _dir) = crate::store::temp_sqlite().await;
        let index: String = sqlx::query_scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'postings_account'",
        )
        .fetch_one(store.pool())
        .await
        .expect("the index");
        assert!(index.ends_with("WHERE pending = 0"), "{index}");
        for filter in [
            BalanceFilter {
                county: Some("440511".into()),
                as_of: chrono::NaiveDate::from_ymd_opt(2025, 6, 30),
                ..BalanceFilter::default()
            },
            BalanceFilter {
                program: Some("MBDK".into()),
                kinds: vec![AccountKind::Paid],
                as_of: chrono::NaiveDate::from_ymd_opt(2025, 6, 30),
                ..BalanceFilter::default()
            },
        ] {
            let (sql, params) = balances_statement(&filter);
            let params: Vec<&str> = params.iter().map(String::as_str).collect();
            let plan = sqlite_plan(&store, &sql, &params).await;
            assert!(
                plan.iter()
                    .any(|d| d.contains("p USING INDEX postings_account")),
                "{filter:?}: {plan:?}"
            );
        }
    }
}
