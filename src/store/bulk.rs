//! Bulk inserts, each database's fastest plain way: SQLite takes multi-row `VALUES` statements (up to
//! [`PARAMS_PER_STATEMENT_MAX`] parameters each); PostgreSQL takes one array per column and
//! `INSERT … SELECT … FROM unnest(…)`, so a statement of 50,000 rows has one parameter per column
//! and is parsed once, not once per 4,000 rows. sqlx's `Any` driver cannot bind arrays, so each
//! column travels as the text of a PostgreSQL array literal (`{"a","b",NULL}`, `{1,2,3}`), cast in the
//! statement; bytes travel as hex text and are decoded there.

use std::fmt::Write as _;

use super::{Backend, PARAMS_PER_STATEMENT_MAX};

/// One value of a row to insert.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    Text(&'a str),
    Int(i64),
    Bytes(&'a [u8]),
    /// A NULL in a text column.
    NullText,
    /// A NULL in an integer column.
    NullInt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColumnType {
    Text,
    Int,
    Bytes,
}

impl Cell<'_> {
    fn column_type(&self) -> ColumnType {
        match self {
            Cell::Text(_) | Cell::NullText => ColumnType::Text,
            Cell::Int(_) | Cell::NullInt => ColumnType::Int,
            Cell::Bytes(_) => ColumnType::Bytes,
        }
    }
}

/// Rows per PostgreSQL statement: one array literal per column, a few MiB at most.
const PG_ROWS_PER_STATEMENT: usize = 50_000;

/// How many of `remaining` rows the next SQLite statement takes: a power of four, at most `per`.
/// Statements of a few sizes only are prepared once per connection and then found in sqlx's
/// statement cache; a statement of each batch's own row count was parsed anew every time (SQLite's
/// parser was 6.7% of a 4-county demo's CPU samples).
fn sqlite_chunk(remaining: usize, per: usize) -> usize {
    let mut size = 1;
    while size * 4 <= remaining.min(per) {
        size *= 4;
    }
    size
}

/// Below this many rows, the rest of a SQLite bulk insert goes in the write's [`Script`]: a
/// statement's round trip to sqlx's connection thread (85-100 µs on this host, measured with 20,000
/// single-row inserts against 5 µs each sent 20 to a round trip) costs more than parsing a statement
/// of fewer rows (a 256-row statement of eight columns parsed anew: 280 µs more than a cached one).
pub const SCRIPT_ROWS_BELOW: usize = 64;

/// SQLite: the statements of one write, run together at its end. The small ones are sent in one
/// round trip (sqlx runs a query's statements one after another, each taking the next of the
/// query's arguments), parsed anew; then the large ones, each a round trip of its own, from sqlx's
/// statement cache. The small ones go first so that a county's next entry, a small statement,
/// finds a writer that came in between (`write_if_unmoved`) before anything larger is written.
#[derive(Default)]
pub struct Script {
    sql: String,
    args: Vec<Owned>,
    large: Vec<(String, Vec<Owned>)>,
}

/// A value bound by a script.
enum Owned {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
    NullText,
    NullInt,
}

/// A [`Script`] with its values bound: ready to run, so that a write judged on a reading can be
/// made ready before it takes SQLite's one writer's turn (its values copied and bound outside it).
pub struct BoundScript {
    queries: Vec<AnyQuery<'static>>,
}

impl BoundScript {
    /// Runs the small statements (in the order they were added, in one round trip), then the
    /// large ones.
    pub async fn run(self, conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
        for query in self.queries {
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

impl Script {
    /// Binds the statements' values (see [`BoundScript::run`]).
    pub fn bind(self) -> BoundScript {
        let mut queries = Vec::with_capacity(1 + self.large.len());
        if !self.sql.is_empty() {
            queries.push(bind(
                sqlx::query(sqlx::AssertSqlSafe(self.sql)).persistent(false),
                self.args,
            ));
        }
        for (sql, args) in self.large {
            queries.push(bind(sqlx::query(sqlx::AssertSqlSafe(sql)), args));
        }
        BoundScript { queries }
    }

    /// Rows `start..end` of a bulk insert, as values to bind.
    fn values<'c>(
        columns: usize,
        start: usize,
        end: usize,
        cell: impl Fn(usize, usize) -> Cell<'c>,
    ) -> Vec<Owned> {
        let mut values = Vec::with_capacity((end - start) * columns);
        for row in start..end {
            for column in 0..columns {
                values.push(match cell(row, column) {
                    Cell::Text(t) => Owned::Text(t.to_string()),
                    Cell::Int(n) => Owned::Int(n),
                    Cell::Bytes(b) => Owned::Bytes(b.to_vec()),
                    Cell::NullText => Owned::NullText,
                    Cell::NullInt => Owned::NullInt,
                });
            }
        }
        values
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn bind(mut query: AnyQuery<'_>, values: Vec<Owned>) -> AnyQuery<'_> {
    for value in values {
        query = match value {
            Owned::Text(t) => query.bind(t),
            Owned::Int(n) => query.bind(n),
            Owned::Bytes(b) => query.bind(b),
            Owned::NullText => query.bind(None::<String>),
            Owned::NullInt => query.bind(None::<i64>),
        };
    }
    query
}

/// A bulk insert: `head` names the table and columns (`INSERT INTO t (a, b)`), `suffix` follows the
/// rows (`ON CONFLICT DO NOTHING`, `RETURNING id`). Rows are given by `cell(row, column)`.
pub struct BulkInsert<'s> {
    pub head: &'s str,
    pub columns: usize,
    pub suffix: &'s str,
}

impl BulkInsert<'_> {
    /// Inserts `rows` rows; returns the rows each statement returned (for a `RETURNING` suffix), in
    /// statement order.
    pub async fn run<'c, F>(
        &self,
        conn: &mut sqlx::AnyConnection,
        backend: Backend,
        rows: usize,
        cell: F,
    ) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error>
    where
        F: Fn(usize, usize) -> Cell<'c>,
    {
        let mut returned = Vec::new();
        if rows == 0 || self.columns == 0 {
            return Ok(returned);
        }
        let returning = self.suffix.contains("RETURNING");
        match backend {
            Backend::Sqlite => {
                let per = (PARAMS_PER_STATEMENT_MAX / self.columns).max(1);
                let mut start = 0;
                while start < rows {
                    let end = start + sqlite_chunk(rows - start, per);
                    let query = bind(
                        sqlx::query(sqlx::AssertSqlSafe(self.sqlite_statement(end - start))),
                        Script::values(self.columns, start, end, &cell),
                    );
                    if returning {
                        returned.extend(query.fetch_all(&mut *conn).await?);
                    } else {
                        query.execute(&mut *conn).await?;
                    }
                    start = end;
                }
            }
            Backend::Postgres => {
                let mut start = 0;
                while start < rows {
                    let end = (start + PG_ROWS_PER_STATEMENT).min(rows);
                    let (sql, arrays) = self.pg_statement(start, end, &cell);
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for array in arrays {
                        query = query.bind(array);
                    }
                    if returning {
                        returned.extend(query.fetch_all(&mut *conn).await?);
                    } else {
                        query.execute(&mut *conn).await?;
                    }
                    start = end;
                }
            }
        }
        Ok(returned)
    }

    /// As [`BulkInsert::run`] (without `RETURNING`), but on SQLite the rows go in `script`, to be
    /// run at the write's end: statements of the usual sizes from the statement cache, and the last
    /// rows, fewer than [`SCRIPT_ROWS_BELOW`], as one statement among the write's other small ones.
    /// PostgreSQL runs everything now.
    ///
    /// `conn` is only used on PostgreSQL: on SQLite the rows are only gathered, and a write may
    /// gather them before it has a connection to write with.
    pub async fn run_or_script<'c, F>(
        &self,
        conn: Option<&mut sqlx::AnyConnection>,
        backend: Backend,
        rows: usize,
        cell: F,
        script: &mut Script,
    ) -> Result<(), sqlx::Error>
    where
        F: Fn(usize, usize) -> Cell<'c>,
    {
        debug_assert!(!self.suffix.contains("RETURNING"));
        if rows == 0 || self.columns == 0 {
            return Ok(());
        }
        if backend == Backend::Postgres {
            let Some(conn) = conn else {
                return Err(sqlx::Error::Protocol(
                    "a PostgreSQL write runs its statements as it goes: it needs its connection"
                        .into(),
                ));
            };
            self.run(conn, backend, rows, cell).await?;
            return Ok(());
        }
        let per = (PARAMS_PER_STATEMENT_MAX / self.columns).max(1);
        let mut start = 0;
        while rows - start >= SCRIPT_ROWS_BELOW.min(per) {
            let end = start + sqlite_chunk(rows - start, per);
            script.large.push((
                self.sqlite_statement(end - start),
                Script::values(self.columns, start, end, &cell),
            ));
            start = end;
        }
        if start < rows {
            if !script.sql.is_empty() {
                script.sql.push_str(";\n");
            }
            script.sql.push_str(&self.sqlite_statement(rows - start));
            script
                .args
                .extend(Script::values(self.columns, start, rows, &cell));
        }
        Ok(())
    }

    /// A SQLite statement of `rows` rows of positional `?` (no numbers to format and none to
    /// rewrite (`portable`), which was a twentieth of a payout batch's time).
    fn sqlite_statement(&self, rows: usize) -> String {
        let mut row_sql = String::with_capacity(2 * self.columns + 2);
        row_sql.push('(');
        for column in 0..self.columns {
            row_sql.push_str(if column == 0 { "?" } else { ",?" });
        }
        row_sql.push(')');
        let mut sql = String::with_capacity(
            self.head.len() + self.suffix.len() + rows * (row_sql.len() + 1) + 9,
        );
        sql.push_str(self.head);
        sql.push_str(" VALUES ");
        for row in 0..rows {
            if row > 0 {
                sql.push(',');
            }
            sql.push_str(&row_sql);
        }
        sql.push(' ');
        sql.push_str(self.suffix);
        sql
    }

    /// The statement and its array literals for rows `start..end`.
    fn pg_statement<'c, F>(&self, start: usize, end: usize, cell: &F) -> (String, Vec<String>)
    where
        F: Fn(usize, usize) -> Cell<'c>,
    {
        let mut types = vec![ColumnType::Text; self.columns];
        let mut arrays: Vec<String> = Vec::with_capacity(self.columns);
        for (column, kind) in types.iter_mut().enumerate() {
            // A column's type is its values': the first that is not NULL, else the kind of NULL.
            *kind = (start..end)
                .map(|row| cell(row, column))
                .find(|c| !matches!(c, Cell::NullText | Cell::NullInt))
                .unwrap_or_else(|| cell(start, column))
                .column_type();
            let mut array = String::with_capacity((end - start) * 8 + 2);
            array.push('{');
            for row in start..end {
                if row > start {
                    array.push(',');
                }
                match cell(row, column) {
                    Cell::Text(t) => push_quoted(&mut array, t),
                    Cell::Int(n) => {
                        let _ = write!(array, "{n}");
                    }
                    Cell::Bytes(b) => {
                        array.push('"');
                        for byte in b {
                            let _ = write!(array, "{byte:02x}");
                        }
                        array.push('"');
                    }
                    Cell::NullText | Cell::NullInt => array.push_str("NULL"),
                }
            }
            array.push('}');
            arrays.push(array);
        }
        let mut sql =
            String::with_capacity(self.head.len() + self.suffix.len() + 40 * self.columns);
        sql.push_str(self.head);
        sql.push_str(" SELECT ");
        for (column, kind) in types.iter().enumerate() {
            if column > 0 {
                sql.push_str(", ");
            }
            match kind {
                ColumnType::Bytes => {
                    let _ = write!(sql, "decode(c{column}, 'hex')");
                }
                _ => {
                    let _ = write!(sql, "c{column}");
                }
            }
        }
        sql.push_str(" FROM unnest(");
        for (column, kind) in types.iter().enumerate() {
            if column > 0 {
                sql.push_str(", ");
            }
            let cast = match kind {
                ColumnType::Int => "int8[]",
                ColumnType::Text | ColumnType::Bytes => "text[]",
            };
            let _ = write!(sql, "${}::text::{cast}", column + 1);
        }
        sql.push_str(") AS u (");
        for column in 0..self.columns {
            if column > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "c{column}");
        }
        sql.push_str(") ");
        sql.push_str(self.suffix);
        (sql, arrays)
    }
}

/// A text element of an array literal: always quoted, with `\` and `"` escaped, so that commas,
/// braces, spaces and the word NULL stay text.
fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_quote_text_and_keep_nulls_and_bytes() {
        let rows: Vec<(&str, Option<i64>, Vec<u8>)> = vec![
            ("a,b {c}", Some(1), vec![0, 255]),
            ("say \"NULL\" \\ ok", None, vec![16]),
        ];
        let insert = BulkInsert {
            head: "INSERT INTO t (x, y, z)",
            columns: 3,
            suffix: "ON CONFLICT DO NOTHING",
        };
        let (sql, arrays) = insert.pg_statement(0, 2, &|row, column| {
            let (x, y, z) = &rows[row];
            match column {
                0 => Cell::Text(x),
                1 => y.map(Cell::Int).unwrap_or(Cell::NullInt),
                _ => Cell::Bytes(z),
            }
        });
        assert_eq!(
            sql,
            "INSERT INTO t (x, y, z) SELECT c0, c1, decode(c2, 'hex') FROM unnest($1::text::text[], \
             $2::text::int8[], $3::text::text[]) AS u (c0, c1, c2) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            arrays,
            vec![
                r#"{"a,b {c}","say \"NULL\" \\ ok"}"#.to_string(),
                "{1,NULL}".to_string(),
                r#"{"00ff","10"}"#.to_string(),
            ]
        );
    }

    #[test]
    fn sqlite_statements_come_in_few_sizes_that_cover_every_row() {
        for (rows, per) in [
            (1, 3_333),
            (600, 3_333),
            (3_999, 3_333),
            (10_000, 700),
            (5, 1),
        ] {
            let mut sizes = Vec::new();
            let mut start = 0;
            while start < rows {
                let size = sqlite_chunk(rows - start, per);
                assert!(size >= 1 && size <= per && size.is_power_of_two());
                sizes.push(size);
                start += size;
            }
            assert_eq!(start, rows, "{rows} rows, {per} a statement");
            let distinct: std::collections::HashSet<_> = sizes.iter().collect();
            assert!(distinct.len() <= 7, "{rows} rows: {sizes:?}");
        }
        assert_eq!(sqlite_chunk(600, 3_333), 256);
        assert_eq!(sqlite_chunk(3, 3_333), 1);
        assert_eq!(sqlite_chunk(5_000, 3_333), 1_024);
    }
}
