//! 检查: what inspectors (省教育厅/财政厅 spot checks, 审计) run against the ledger: the report engine
//! over the definitions in `reports/*.toml` (reconciliations, balances, payout lines, releases,
//! recoveries, entitlement against payment) and the traces of one person or one entry from the
//! provincial release down to the bank line; seeded spot checks with their workpapers; the cross-check
//! rules whose findings inspectors rule on (the only thing here that writes: the findings table).

pub mod checks;
pub mod engine;
pub mod sample;
pub mod trace;
pub mod workpaper;

pub use engine::{
    ColumnDef, ColumnKind, ParamDef, ParamKind, ReportDef, compile_named, definitions, find, run,
    try_definitions,
};
pub use trace::{Trace, trace_entry, trace_person};

use crate::store::StoreError;

/// Why a report or a trace was refused. Each message is one line that names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("unknown report \"{name}\" (reports: {known})")]
    UnknownReport { name: String, known: String },
    #[error("report {report}: unknown parameter \"{param}\" (its parameters: {known})")]
    UnknownParam {
        report: String,
        param: String,
        known: String,
    },
    #[error("report {report}: parameter {param} is given twice")]
    RepeatedParam { report: String, param: String },
    #[error("report {report}: parameter {param} ({label}) is required: give --param {param}=…")]
    MissingParam {
        report: String,
        param: String,
        label: String,
    },
    #[error("report {report}: parameter {param}: {reason}")]
    BadParam {
        report: String,
        param: String,
        reason: String,
    },
    #[error("report definition {file}: {reason}")]
    Definition { file: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Replaces every resident ID number in `text` (17 digits and a digit or `X`, not inside a longer
/// run of digits) by its masked form `440511********0116`: outside the roster, IDs are shown masked.
pub fn mask_ids(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_run = i == 0 || !chars[i - 1].is_ascii_digit();
        if starts_run && i + 18 <= chars.len() {
            let window = &chars[i..i + 18];
            let is_id = window[..17].iter().all(char::is_ascii_digit)
                && (window[17].is_ascii_digit() || window[17] == 'X' || window[17] == 'x')
                && chars.get(i + 18).is_none_or(|c| !c.is_ascii_digit());
            if is_id {
                out.extend(&window[..6]);
                out.push_str("********");
                out.extend(&window[14..]);
                i += 18;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask_ids;

    #[test]
    fn ids_inside_keys_and_memos_are_masked() {
        assert_eq!(
            mask_ids("accrual:MBDK:440511195803010116:2025-01"),
            "accrual:MBDK:440511********0116:2025-01"
        );
        assert_eq!(mask_ids("44051119620715022X"), "440511********022X");
    }

    #[test]
    fn other_numbers_are_left_alone() {
        assert_eq!(mask_ids("6222000000000001"), "6222000000000001");
        assert_eq!(mask_ids("1234567890123456789012"), "1234567890123456789012");
        assert_eq!(mask_ids("粤财教〔2025〕12号"), "粤财教〔2025〕12号");
    }
}
