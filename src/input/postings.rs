//! The posting file of `earmark post`: one row per posting,
//! `entry_key,date,county_code,program,account,amount,memo`; rows sharing `entry_key` form one entry.
//! Amounts are in yuan, debit positive and credit negative. Chinese headers are accepted too
//! (凭证号,日期,县区代码,项目,账户,金额,摘要).

use std::collections::HashMap;

use chrono::NaiveDate;

use super::InputError;
use crate::ledger::{AccountRef, EntryKind, NewEntry, Posting};
use crate::money::{SignRule, parse_amount};

/// A file holds at most this many rows; larger loads are split by the caller.
pub const ROWS_PER_FILE_MAX: usize = 10_000_000;

pub const COLUMNS: [(&str, &str); 7] = [
    ("entry_key", "凭证号"),
    ("date", "日期"),
    ("county_code", "县区代码"),
    ("program", "项目"),
    ("account", "账户"),
    ("amount", "金额"),
    ("memo", "摘要"),
];

/// One entry read from the file with the file rows it came from.
#[derive(Debug)]
pub struct ParsedEntry {
    pub entry: NewEntry,
    pub rows: Vec<u64>,
    pub records: Vec<csv::StringRecord>,
}

/// A row that cannot be posted, with the reason, ready to be written back.
#[derive(Debug)]
pub struct BadRow {
    pub row: u64,
    pub record: csv::StringRecord,
    pub error: String,
}

#[derive(Debug)]
pub struct PostingFile {
    pub header: csv::StringRecord,
    pub entries: Vec<ParsedEntry>,
    /// One clear line per broken rule (file, row, column, rule).
    pub errors: Vec<String>,
    pub bad_rows: Vec<BadRow>,
}

/// `file rows 2-3` style: which rows an entry came from.
pub fn describe_rows(file: &str, rows: &[u64]) -> String {
    match rows {
        [] => file.to_string(),
        [one] => format!("{file} row {one}"),
        _ if rows.windows(2).all(|w| w[1] == w[0] + 1) => {
            format!("{file} rows {}-{}", rows[0], rows[rows.len() - 1])
        }
        _ => format!(
            "{file} rows {}",
            rows.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn parse(text: &str, file: &str, pending: bool) -> Result<PostingFile, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| InputError::Format {
            file: file.to_string(),
            message: format!("cannot read the header row: {e}"),
        })?
        .clone();
    let mut positions = [usize::MAX; 7];
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        if let Some(c) = COLUMNS
            .iter()
            .position(|(en, zh)| name == *en || name == *zh)
        {
            positions[c] = i;
        }
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .zip(positions)
        .filter(|(_, p)| *p == usize::MAX)
        .map(|((en, _), _)| *en)
        .filter(|en| *en != "memo")
        .collect();
    if !missing.is_empty() {
        return Err(InputError::Format {
            file: file.to_string(),
            message: format!(
                "row 1: the header lacks column(s) {}; expected entry_key,date,county_code,program,account,amount,memo",
                missing.join(", ")
            ),
        });
    }
    let mut result = PostingFile {
        header: header.clone(),
        entries: Vec::new(),
        errors: Vec::new(),
        bad_rows: Vec::new(),
    };
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut entry_errors: HashMap<usize, String> = HashMap::new();
    let mut bad_keys: HashMap<String, String> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let row = index as u64 + 2;
        if index >= ROWS_PER_FILE_MAX {
            return Err(InputError::Format {
                file: file.to_string(),
                message: format!(
                    "has more than {ROWS_PER_FILE_MAX} rows: split it into several files"
                ),
            });
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = format!("{file} row {row}: unreadable CSV: {e}");
                result.errors.push(line.clone());
                result.bad_rows.push(BadRow {
                    row,
                    record: csv::StringRecord::new(),
                    error: line,
                });
                continue;
            }
        };
        if record.iter().all(|f| f.is_empty()) {
            continue; // Excel leaves blank lines at the end
        }
        let field = |c: usize| record.get(positions[c]).unwrap_or("");
        let row_error = |column: usize, rule: String| {
            format!("{file} row {row}, column {}: {rule}", COLUMNS[column].0)
        };
        let parsed = (|| {
            let key = field(0).to_string();
            if key.is_empty() {
                return Err(row_error(0, "the entry key is empty".into()));
            }
            let date = NaiveDate::parse_from_str(field(1), "%Y-%m-%d").map_err(|_| {
                row_error(
                    1,
                    format!("\"{}\" is not a real date written YYYY-MM-DD", field(1)),
                )
            })?;
            let county = field(2).to_string();
            if county.is_empty() {
                return Err(row_error(2, "the county code is empty".into()));
            }
            let program = field(3).to_ascii_uppercase();
            if program.is_empty() {
                return Err(row_error(3, "the program is empty".into()));
            }
            let account = AccountRef::parse(field(4)).map_err(|e| row_error(4, e.to_string()))?;
            let amount =
                parse_amount(field(5), SignRule::Any).map_err(|e| row_error(5, e.to_string()))?;
            let memo = if positions[6] == usize::MAX {
                ""
            } else {
                field(6)
            }
            .to_string();
            Ok((key, date, county, program, account, amount, memo))
        })();
        let (key, date, county, program, account, amount, memo) = match parsed {
            Ok(p) => p,
            Err(line) => {
                result.errors.push(line.clone());
                match by_key.get(field(0)) {
                    Some(&e) => {
                        entry_errors.entry(e).or_insert(line.clone());
                    }
                    // The entry's first row is the bad one: its later rows must not stand alone.
                    None => {
                        bad_keys.entry(field(0).to_string()).or_insert(line.clone());
                    }
                }
                result.bad_rows.push(BadRow {
                    row,
                    record,
                    error: line,
                });
                continue;
            }
        };
        let entry_index = *by_key.entry(key.clone()).or_insert_with(|| {
            result.entries.push(ParsedEntry {
                entry: NewEntry {
                    key: key.clone(),
                    date,
                    county: county.clone(),
                    program: program.clone(),
                    kind: if pending {
                        EntryKind::Pending
                    } else {
                        EntryKind::Normal
                    },
                    memo: memo.clone(),
                    postings: Vec::new(),
                    refers_to: None,
                },
                rows: Vec::new(),
                records: Vec::new(),
            });
            result.entries.len() - 1
        });
        let parsed_entry = &mut result.entries[entry_index];
        let first_row = parsed_entry.rows.first().copied().unwrap_or(row);
        let mismatch = if parsed_entry.entry.program != program {
            Some((
                3,
                format!(
                    "entry \"{key}\" began in row {first_row} with program {}: 专款专用, one entry moves one program's money",
                    parsed_entry.entry.program
                ),
            ))
        } else if parsed_entry.entry.county != county {
            Some((
                2,
                format!(
                    "entry \"{key}\" began in row {first_row} in county {}: an entry stays inside one county's books",
                    parsed_entry.entry.county
                ),
            ))
        } else if parsed_entry.entry.date != date {
            Some((
                1,
                format!(
                    "entry \"{key}\" began in row {first_row} dated {}: one entry has one date",
                    parsed_entry.entry.date
                ),
            ))
        } else {
            None
        };
        if let Some((column, rule)) = mismatch {
            let line = row_error(column, rule);
            result.errors.push(line.clone());
            entry_errors.entry(entry_index).or_insert(line.clone());
            result.bad_rows.push(BadRow {
                row,
                record,
                error: line,
            });
            continue;
        }
        if parsed_entry.entry.memo.is_empty() && !memo.is_empty() {
            parsed_entry.entry.memo = memo;
        }
        parsed_entry
            .entry
            .postings
            .push(Posting { account, amount });
        parsed_entry.rows.push(row);
        parsed_entry.records.push(record);
    }
    // Entries that lost a row to an error cannot be posted: they would not be the entry meant.
    // The rest are checked as entries (balanced, two postings or more, ...).
    let mut kept = Vec::with_capacity(result.entries.len());
    for (index, parsed) in std::mem::take(&mut result.entries).into_iter().enumerate() {
        let failure = match entry_errors
            .get(&index)
            .or_else(|| bad_keys.get(&parsed.entry.key))
        {
            Some(line) => Some(format!(
                "another row of entry \"{}\" is bad: {line}",
                parsed.entry.key
            )),
            None => parsed.entry.validate().err().map(|e| {
                let line = format!("{}: {e}", describe_rows(file, &parsed.rows));
                result.errors.push(line.clone());
                line
            }),
        };
        match failure {
            Some(line) => {
                for (row, record) in parsed.rows.into_iter().zip(parsed.records) {
                    result.bad_rows.push(BadRow {
                        row,
                        record,
                        error: line.clone(),
                    });
                }
            }
            None => kept.push(parsed),
        }
    }
    result.entries = kept;
    result.bad_rows.sort_by_key(|b| b.row);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Fen;

    const HEADER: &str = "entry_key,date,county_code,program,account,amount,memo\n";

    #[test]
    fn rows_sharing_a_key_form_one_entry() {
        let text = format!(
            "{HEADER}R-1,2025-01-15,440511,MBDK,440511:held,\"1,000.00\",下达\nR-1,2025-01-15,440511,MBDK,440000:budget,-1000,\n"
        );
        let file = parse(&text, "p.csv", false).unwrap();
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        assert_eq!(file.entries.len(), 1);
        let entry = &file.entries[0].entry;
        assert_eq!(entry.postings[0].amount, Fen(100_000));
        assert_eq!(entry.postings[1].account.to_string(), "440000:budget");
        assert_eq!(entry.memo, "下达");
        assert_eq!(file.entries[0].rows, [2, 3]);
    }

    #[test]
    fn chinese_headers_are_accepted() {
        let text = "凭证号,日期,县区代码,项目,账户,金额,摘要\nR-1,2025-01-15,440511,mbdk,440511:held,¥5.00,\nR-1,2025-01-15,440511,MBDK,440000:budget,-5.00元,\n";
        let file = parse(text, "p.csv", false).unwrap();
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        assert_eq!(file.entries[0].entry.program, "MBDK");
    }

    #[test]
    fn an_unbalanced_entry_names_its_rows() {
        let text = format!(
            "{HEADER}R-1,2025-01-15,440511,MBDK,440511:held,10.00,\nR-1,2025-01-15,440511,MBDK,440000:budget,-9.99,\n"
        );
        let file = parse(&text, "p.csv", false).unwrap();
        assert_eq!(
            file.errors,
            [
                "p.csv rows 2-3: entry \"R-1\" does not balance: its postings sum to 0.01, they must sum to 0.00"
            ]
        );
        assert!(file.entries.is_empty());
        assert_eq!(file.bad_rows.len(), 2);
    }

    #[test]
    fn two_programs_in_one_entry_are_refused_at_the_row() {
        let text = format!(
            "{HEADER}R-1,2025-01-15,440511,MBDK,440511:held,10.00,\nR-1,2025-01-15,440511,XQZZ,440000:budget,-10.00,\n"
        );
        let file = parse(&text, "p.csv", false).unwrap();
        assert_eq!(
            file.errors[0],
            "p.csv row 3, column program: entry \"R-1\" began in row 2 with program MBDK: 专款专用, one entry moves one program's money"
        );
        assert!(file.entries.is_empty());
    }

    #[test]
    fn a_malformed_amount_names_row_and_column() {
        let text = format!("{HEADER}R-1,2025-01-15,440511,MBDK,440511:held,12.345,\n");
        let file = parse(&text, "p.csv", false).unwrap();
        assert!(
            file.errors[0].starts_with("p.csv row 2, column amount: amount \"12.345\""),
            "{}",
            file.errors[0]
        );
    }

    #[test]
    fn a_bad_date_names_row_and_column() {
        let text = format!("{HEADER}R-1,2025-02-30,440511,MBDK,440511:held,1,\n");
        let file = parse(&text, "p.csv", false).unwrap();
        assert_eq!(
            file.errors[0],
            "p.csv row 2, column date: \"2025-02-30\" is not a real date written YYYY-MM-DD"
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let err = parse("entry_key,date,program,account,amount\n", "p.csv", false).unwrap_err();
        assert!(
            err.to_string().contains("lacks column(s) county_code"),
            "{err}"
        );
    }
}
