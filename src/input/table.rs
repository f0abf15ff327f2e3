//! Reading a table from a user's file: CSV (UTF-8 or GBK) or the first sheet of an XLSX workbook,
//! as a header and rows of trimmed text. Excel dates become `YYYY-MM-DD`.

use std::path::Path;

use super::{Encoding, InputError, ReadAs, read_text};

/// Rows a table may have; a province's registry is a few hundred thousand.
pub const TABLE_ROWS_MAX: usize = 5_000_000;

pub struct Table {
    pub header: Vec<String>,
    /// (1-based row number in the file, cells)
    pub rows: Vec<(u64, Vec<String>)>,
    pub read_as: Option<ReadAs>,
}

impl Table {
    /// The position of the first column whose header is one of `names` (case-insensitive).
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        self.header.iter().position(|h| {
            let h = h.trim().trim_start_matches('\u{feff}').to_lowercase();
            names.iter().any(|n| n.to_lowercase() == h)
        })
    }
}

pub fn read_table(path: &Path, encoding: Encoding) -> Result<Table, InputError> {
    let is_xlsx = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if is_xlsx {
        read_xlsx(path)
    } else {
        let (text, read_as) = read_text(path, encoding)?;
        let mut table = parse_csv(&text, &path.display().to_string())?;
        table.read_as = Some(read_as);
        Ok(table)
    }
}

pub fn parse_csv(text: &str, file: &str) -> Result<Table, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        Some(Ok(r)) => r.iter().map(|c| c.trim().to_string()).collect(),
        Some(Err(e)) => {
            return Err(InputError::Format {
                file: file.into(),
                message: format!("row 1: unreadable header: {e}"),
            });
        }
        None => {
            return Err(InputError::Format {
                file: file.into(),
                message: "is empty: a header row is required".into(),
            });
        }
    };
    let mut rows = Vec::new();
    for (index, record) in records.enumerate() {
        let row = index as u64 + 2;
        if rows.len() >= TABLE_ROWS_MAX {
            return Err(InputError::Format {
                file: file.into(),
                message: format!("has more than {TABLE_ROWS_MAX} rows: split it"),
            });
        }
        let record = record.map_err(|e| InputError::Format {
            file: file.into(),
            message: format!("row {row}: unreadable CSV: {e}"),
        })?;
        let cells: Vec<String> = record.iter().map(|c| c.trim().to_string()).collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        rows.push((row, cells));
    }
    Ok(Table {
        header,
        rows,
        read_as: None,
    })
}

fn read_xlsx(path: &Path) -> Result<Table, InputError> {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let file = path.display().to_string();
    let mut workbook: Xlsx<_> = open_workbook(path).map_err(|e| InputError::Format {
        file: file.clone(),
        message: format!("is not a readable XLSX workbook: {e}"),
    })?;
    let range = workbook
        .worksheet_range_at(0)
        .ok_or_else(|| InputError::Format {
            file: file.clone(),
            message: "has no worksheet".into(),
        })?
        .map_err(|e| InputError::Format {
            file: file.clone(),
            message: format!("cannot read the first worksheet: {e}"),
        })?;
    let text = |cell: &Data| -> String {
        match cell {
            Data::Empty => String::new(),
            Data::String(s) => s.trim().to_string(),
            Data::Int(i) => i.to_string(),
            // Whole numbers typed into Excel arrive as floats; show them without ".0". Money and
            // ID numbers must be typed as text: a float cannot carry them exactly.
            Data::Float(f) => {
                let s = f.to_string();
                s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
            }
            Data::Bool(b) => b.to_string(),
            Data::DateTime(d) => d
                .as_datetime()
                .map(|dt| dt.date().format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            Data::DateTimeIso(s) => s.get(..10).unwrap_or(s).to_string(),
            Data::DurationIso(s) => s.clone(),
            Data::Error(e) => format!("#ERROR {e:?}"),
        }
    };
    let mut rows_iter = range.rows();
    let header: Vec<String> = rows_iter
        .next()
        .map(|r| r.iter().map(text).collect())
        .ok_or_else(|| InputError::Format {
            file: file.clone(),
            message: "the first worksheet is empty: a header row is required".into(),
        })?;
    let mut rows = Vec::new();
    for (index, cells) in rows_iter.enumerate() {
        let cells: Vec<String> = cells.iter().map(text).collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        rows.push((index as u64 + 2, cells));
    }
    Ok(Table {
        header,
        rows,
        read_as: None,
    })
}
