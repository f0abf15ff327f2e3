//! Packed reads: a query's rows as one text, read back field by field.
//!
//! sqlx hands SQLite's rows over one at a time from its worker thread, converting each value on
//! the way: a payout batch's own reads (its stored keys, the postings it settles, balances, the
//! bank answer's lines) came to about 4 µs a row, and a province-year reads tens of millions of
//! such rows. Packed, the database builds one text and the rows cost what splitting it costs.
//!
//! Each field is its length in bytes, a colon and its text, or `-` for NULL, so no value can be
//! mistaken for a boundary, whatever it contains. Both backends have `string_agg` (SQLite since
//! 3.44) and `octet_length`.

use super::{Backend, StoreError};
use sqlx::Row;

/// One field: `expr` must be text (cast numbers with `CAST(x AS TEXT)`).
pub(crate) fn field(expr: &str) -> String {
    format!("COALESCE(CAST(octet_length({expr}) AS TEXT) || ':' || {expr}, '-')")
}

/// A row of fields, as one text expression.
pub(crate) fn row(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// `SELECT string_agg(row, '' [ORDER BY order]) rest`: `rest` is the query's FROM, WHERE and any
/// GROUP BY (one packed text per group).
pub(crate) fn select(fields: &[&str], order: Option<&str>, rest: &str) -> String {
    let order = order.map(|o| format!(" ORDER BY {o}")).unwrap_or_default();
    format!("SELECT string_agg({}, ''{order}) {rest}", row(fields))
}

/// A hex text of a binary column.
pub(crate) fn hex(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => format!("lower(hex({column}))"),
        Backend::Postgres => format!("encode({column}, 'hex')"),
    }
}

/// Reads back a packed text of rows `width` fields wide, calling `each` with every row in order.
pub(crate) fn unpack<'a>(
    text: &'a str,
    width: usize,
    mut each: impl FnMut(&[Option<&'a str>]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let damaged = || StoreError::Invalid("a packed row read from the database is damaged".into());
    let mut fields: Vec<Option<&'a str>> = vec![None; width];
    let mut rest = text;
    while !rest.is_empty() {
        for field in fields.iter_mut() {
            if let Some(r) = rest.strip_prefix('-') {
                *field = None;
                rest = r;
                continue;
            }
            let colon = rest.find(':').ok_or_else(damaged)?;
            let len: usize = rest[..colon].parse().map_err(|_| damaged())?;
            let body = &rest[colon + 1..];
            let value = body.get(..len).ok_or_else(damaged)?;
            *field = Some(value);
            rest = &body[len..];
        }
        each(&fields)?;
    }
    Ok(())
}

/// A required field of a packed row.
pub(crate) fn text<'a>(row: &[Option<&'a str>], i: usize) -> Result<&'a str, StoreError> {
    row[i].ok_or_else(|| StoreError::Invalid(format!("a packed row lacks field {}", i + 1)))
}

/// A required whole-number field of a packed row.
pub(crate) fn int(row: &[Option<&str>], i: usize) -> Result<i64, StoreError> {
    let t = text(row, i)?;
    t.parse()
        .map_err(|_| StoreError::Invalid(format!("stored number {t} is damaged")))
}

/// Runs a packed query (its parameters bound) and unpacks every row of every group it returns.
pub(crate) async fn fetch<'c, E>(
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    conn: E,
    width: usize,
    mut each: impl FnMut(&[Option<&str>]) -> Result<(), StoreError>,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    for r in query.fetch_all(conn).await? {
        let packed: Option<String> = r.try_get(0)?;
        if let Some(packed) = packed {
            unpack(&packed, width, &mut each)?;
        }
    }
    Ok(())
}

/// [`super::fetch_in`], packed: `fields` of `rest` (its `{list}` replaced by each chunk's
/// placeholders, after the `leading` parameters), every row handed to `each`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch_in<T>(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    fields: &[&str],
    order: Option<&str>,
    rest: &str,
    leading: &[&str],
    items: &[T],
    mut each: impl FnMut(&[Option<&str>]) -> Result<(), StoreError>,
) -> Result<(), StoreError>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send + 'static,
{
    let sql = select(fields, order, rest);
    for chunk in items.chunks(super::IN_LIST_MAX) {
        let query = super::in_query(backend, &sql, leading, chunk);
        fetch(query, &mut *conn, fields.len(), &mut each).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_rows_read_back_whatever_their_fields_hold() {
        // Two rows of three fields: colons, digits, dashes and multi-byte text inside values.
        let text = "3:a:b-1:-".to_string() + "6:张三0:5:x-1:2";
        let mut rows = Vec::new();
        unpack(&text, 3, |r| {
            rows.push(r.iter().map(|f| f.map(str::to_string)).collect::<Vec<_>>());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("a:b".into()), None, Some("-".into())],
                vec![Some("张三".into()), Some("".into()), Some("x-1:2".into())],
            ]
        );
    }

    #[test]
    fn a_damaged_packed_text_is_an_error_not_a_panic() {
        for bad in ["3:ab", "x:abc", "2", "9:short"] {
            assert!(unpack(bad, 1, |_| Ok(())).is_err(), "{bad}");
        }
    }
}
