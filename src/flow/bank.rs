//! Bank payout files for mass payouts (批量代发): writing a disbursing unit's batch in one of three layouts and reading the bank's answer back into per-line outcomes.
//!
//! A bank refuses a whole batch whose line count or control total does not
//! match its lines, so every writer states both, and every reader that finds
//! them checks them. Real 批量代发 layouts are specified by each bank; the
//! layouts below are *ours*, documented here so a bank can be asked to accept
//! them (or a converter written), and so test data can be built by hand.
//!
//! # Common rules for writing ([`write_batch`])
//!
//! * The batch has at least one line; line numbers are positive and unique
//!   (the bank's answer refers to lines by number).
//! * The batch id uses only ASCII letters, digits, `-`, `_` and `.`, because
//!   it also ends up in file names and payment references.
//! * Amounts are positive whole fen, written as yuan with two decimals
//!   (`900.00`); the control total is their checked sum.
//! * Names are non-empty without spaces at either end (a bank compares the
//!   name character by character: a stray space is 户名不符). No field may
//!   contain control characters (line breaks, tabs).
//! * Accounts (payee card and payer account) are 1–34 ASCII letters or digits
//!   with no spaces (34 is the ISO 20022 limit; card numbers are 16–19 digits).
//! * ID numbers must be valid 18-character 居民身份证 numbers and are written
//!   in full (the bank checks them); error messages never show them.
//!
//! # 1. 批量代发 text ([`BankFormat::Daifa`], `.txt`)
//!
//! GBK bytes, CRLF line ends, fields separated by `|` and each line ending in
//! `|`. No field may contain `|`, and every character must exist in GBK.
//!
//! ```text
//! H|{unit_code}|{batch_id}|{YYYYMMDD business date}|{line count}|{control total}|
//! D|{line_no}|{name}|{account}|{amount}|01|{id_number}|{purpose}|
//! ```
//!
//! `01` is the ID type 居民身份证. The bank answers with a success file and a
//! failure file (one batch each, GBK or UTF-8, CRLF or LF, blank lines
//! ignored, fields trimmed, the final `|` optional):
//!
//! ```text
//! H|{unit_code}|{batch_id}|{YYYYMMDD}|{count of lines in this file}|{total of this file}|
//! S|{line_no}|{name}|{account}|{amount}|
//! F|{line_no}|{name}|{account}|{amount}|{code}|{reason}|
//! ```
//!
//! e.g. `F|3|王五|6222020200000003|900.00|E01|户名不符|`; other reasons are
//! `E02|账户已销户`, `E03|账户冻结`, `E09|户主已死亡`. A result file whose
//! header count or total disagrees with its lines is refused, as a bank would
//! refuse such a batch.
//!
//! # 2. CSV ([`BankFormat::Csv`], `.csv`)
//!
//! UTF-8 with a byte-order mark (so spreadsheet programs read the Chinese),
//! CRLF line ends, RFC 4180 quoting where needed. A header row, one row per
//! line, then a trailer row carrying the count and control total:
//!
//! ```text
//! batch_id,line_no,name,account,amount,id_type,id_number,purpose
//! {batch_id},{line_no},{name},{account},{amount},01,{id_number},{purpose}
//! {batch_id},TOTAL,{line count},,{control total},,,
//! ```
//!
//! The bank's answer is a CSV (UTF-8 with or without BOM, or GBK) whose
//! header names the columns, in any order and any letter case: `batch_id`,
//! `line_no` and `status` are required; `code`, `reason`, `amount`,
//! `account` and `name` are optional; other columns are ignored. `status` is
//! `paid`/`success`/`成功` or `failed`/`failure`/`失败`; a failed row needs a
//! code or a reason. Every row must carry the same batch id, and there is no
//! trailer row.
//!
//! # 3. ISO 20022 pain.001.001.09 ([`BankFormat::Pain001`], `.xml`)
//!
//! UTF-8 XML valid against the official schema: `Document/CstmrCdtTrfInitn`
//! with a `GrpHdr` (`MsgId` = batch id, `CreDtTm` = the `created_at` passed
//! in, `NbOfTxs`, `CtrlSum`, `InitgPty` with the unit's name and its code as
//! `Id/OrgId/Othr/Id`), one `PmtInf` (`PmtInfId` = batch id, `PmtMtd` `TRF`,
//! `NbOfTxs`, `CtrlSum`, `ReqdExctnDt/Dt` = business date, `Dbtr/Nm`,
//! `DbtrAcct/Id/Othr/Id` = payer account, `DbtrAgt/FinInstnId/Othr/Id`
//! `NOTPROVIDED`) and one `CdtTrfTxInf` per line (`PmtId/EndToEndId` =
//! `{batch_id}-{line_no}`, `Amt/InstdAmt Ccy="CNY"`, `Cdtr/Nm`, the ID number
//! as `Cdtr/Id/PrvtId/Othr/Id` with scheme code `NIDN` (national identity
//! number), `CdtrAcct/Id/Othr/Id`, and `RmtInf/Ustrd` = purpose when not
//! empty). The schema's limits are enforced before writing: names, unit name
//! and purpose at most 140 characters; batch id, every `EndToEndId` and the
//! unit code at most 35; amounts and the total below 10^16 yuan (18 digits).
//!
//! The answer is a pain.002 status report (`CstmrPmtStsRpt`, or a pacs.002
//! `FIToFIPmtStsRpt`), matched on local element names so any namespace
//! version or prefix works. `OrgnlGrpInfAndSts/OrgnlMsgId` is the batch id;
//! each `TxInfAndSts` gives the line through `OrgnlEndToEndId`
//! (`{batch_id}-{line_no}`) and its `TxSts`: `ACSC`, `ACCC`, `ACSP`, `ACCP`
//! mean paid, `RJCT` failed with `StsRsnInf/Rsn/Cd` (or `Prtry`) as the code;
//! other statuses (`PDNG`, `RCVD`, `ACTC`…) are not final and the report is
//! refused. A `TxInfAndSts` without `TxSts` takes the status of its
//! `OrgnlPmtInfAndSts` or of the group. A group-level (`GrpSts`) or
//! payment-level (`PmtInfSts`) `RJCT` rejects every line below it; if such a
//! report lists no lines at all, [`read_result`] answers
//! [`BankError::BatchRejected`] so the caller fails the whole batch.
//!
//! # Reading ([`read_result`])
//!
//! The format is detected from the content: XML (`<` first) is pain.002, a
//! first line starting `H|` is 批量代发, a first line starting `batch_id` is
//! CSV. A line is flagged [`ResultLine::deceased`] when the code is ISO
//! `MD07` or the reason mentions 死亡 or 身故, so the roster can stop paying
//! the person.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::id_number::IdNumber;
use crate::money::{Fen, SignRule, parse_amount};

/// Namespace of the pain.001 version whose schema we validate against.
pub const PAIN001_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09";

/// 居民身份证, the only ID type the ledger pays against.
const ID_TYPE_RESIDENT_CARD: &str = "01";
/// ISO 20022 `Max35Text` (identifiers).
const MAX_ISO_ID: usize = 35;
/// ISO 20022 `Max140Text` (names, unstructured remittance information).
const MAX_ISO_TEXT: usize = 140;
/// ISO 20022 `Max34Text` (account identification); applied to every format
/// so a batch does not become unwritable when the format changes.
const MAX_ACCOUNT: usize = 34;
/// ISO amounts have at most 18 digits, two of them decimals: below 10^18 fen.
const ISO_AMOUNT_LIMIT: i64 = 1_000_000_000_000_000_000;
/// Whoever meets an ISO rejection without a reason still needs something to
/// show on the failure list.
const REASON_NOT_GIVEN: &str = "银行未说明原因";

/// One payee in a batch.
#[derive(Clone, PartialEq, Eq)]
pub struct PayoutLine {
    pub line_no: u32,
    pub name: String,
    pub account: String,
    pub amount: Fen,
    /// Full 18-character 居民身份证 number.
    pub id_number: String,
    pub purpose: String,
}

/// Masks the ID number: batches get logged with `{:?}`.
impl fmt::Debug for PayoutLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = IdNumber::parse(&self.id_number)
            .map_or_else(|_| "(not a valid ID number)".to_owned(), |id| id.masked());
        f.debug_struct("PayoutLine")
            .field("line_no", &self.line_no)
            .field("name", &self.name)
            .field("account", &self.account)
            .field("amount", &self.amount)
            .field("id_number", &id)
            .field("purpose", &self.purpose)
            .finish()
    }
}

/// One mass-payout batch from one payer account on one business date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutBatch {
    /// e.g. `U44051101-MBDK-2025-03-1`.
    pub batch_id: String,
    pub unit_code: String,
    pub unit_name: String,
    pub payer_account: String,
    pub business_date: NaiveDate,
    pub lines: Vec<PayoutLine>,
}

impl PayoutBatch {
    /// The sum of the line amounts, refusing overflow rather than wrapping.
    pub fn control_total(&self) -> Result<Fen, BankError> {
        self.lines
            .iter()
            .try_fold(Fen::ZERO, |acc, line| acc.checked_add(line.amount))
            .ok_or_else(|| BankError::InvalidBatch {
                batch_id: self.batch_id.clone(),
                at: "control total".to_owned(),
                rule: "the sum of the line amounts is too large to hold".to_owned(),
            })
    }
}

/// The layouts [`write_batch`] can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BankFormat {
    /// 批量代发 delimited text in GBK.
    Daifa,
    /// UTF-8 CSV with a trailer row.
    Csv,
    /// ISO 20022 pain.001.001.09 XML.
    Pain001,
}

impl BankFormat {
    pub const ALL: [BankFormat; 3] = [BankFormat::Daifa, BankFormat::Csv, BankFormat::Pain001];

    /// Accepts `daifa`/`批量代发`, `csv`, `pain001`/`pain.001`/`pain.001.001.09`
    /// in any ASCII letter case, ignoring surrounding whitespace.
    pub fn parse(input: &str) -> Result<BankFormat, BankError> {
        match input.trim().to_ascii_lowercase().as_str() {
            "daifa" | "批量代发" => Ok(BankFormat::Daifa),
            "csv" => Ok(BankFormat::Csv),
            "pain001" | "pain.001" | "pain.001.001.09" => Ok(BankFormat::Pain001),
            _ => Err(BankError::UnknownFormatName {
                input: input.to_owned(),
            }),
        }
    }

    /// The canonical name, accepted back by [`BankFormat::parse`].
    pub fn name(self) -> &'static str {
        match self {
            BankFormat::Daifa => "daifa",
            BankFormat::Csv => "csv",
            BankFormat::Pain001 => "pain.001",
        }
    }
}

impl FromStr for BankFormat {
    type Err = BankError;

    fn from_str(s: &str) -> Result<BankFormat, BankError> {
        BankFormat::parse(s)
    }
}

impl fmt::Display for BankFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// File name extension (without the dot) for files written in `format`.
pub fn file_extension(format: BankFormat) -> &'static str {
    match format {
        BankFormat::Daifa => "txt",
        BankFormat::Csv => "csv",
        BankFormat::Pain001 => "xml",
    }
}

/// The bank's verdict on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineStatus {
    Paid,
    Failed { code: String, reason: String },
}

/// One line of a bank's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultLine {
    pub line_no: u32,
    pub account: Option<String>,
    pub name: Option<String>,
    pub amount: Option<Fen>,
    pub status: LineStatus,
    /// True for ISO `MD07` or a reason meaning deceased (死亡/身故): the
    /// person must be taken off the roster, not just paid again.
    pub deceased: bool,
    /// 1-based line of the result file this came from, for messages.
    pub source_row: u64,
}

/// A bank's answer to one batch (or one of its files: success or failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankResult {
    pub batch_id: String,
    pub lines: Vec<ResultLine>,
    /// `daifa`, `csv` or `pain.002`.
    pub format: &'static str,
}

/// Why a batch cannot be written or a result file cannot be read. Messages
/// name the batch or file and the line or element, and never contain an ID
/// number.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum BankError {
    #[error(
        "unknown bank file format {input:?}: use daifa (批量代发), csv or pain001 (ISO 20022 pain.001)"
    )]
    UnknownFormatName { input: String },
    #[error("batch {batch_id}: {at}: {rule}")]
    InvalidBatch {
        batch_id: String,
        at: String,
        rule: String,
    },
    #[error(
        "{file}: {detail}; expected a 批量代发 result (first line H|…), a result CSV (header batch_id,line_no,status,…) or an ISO 20022 pain.002 status report"
    )]
    UnknownResultFormat { file: String, detail: String },
    #[error("{file}: {at}: {rule}")]
    InvalidResult {
        file: String,
        at: String,
        rule: String,
    },
    #[error(
        "{file}: row {row}: the header states {header_count} lines totalling {header_total} but the file has {line_count} lines totalling {line_total}; a bank refuses such a file, so it is not imported"
    )]
    TotalsMismatch {
        file: String,
        row: u64,
        header_count: u64,
        header_total: Fen,
        line_count: u64,
        line_total: Fen,
    },
    #[error(
        "{file}: the bank rejected the whole batch {batch_id} ({code}: {reason}) without listing its lines, so no line was paid"
    )]
    BatchRejected {
        file: String,
        batch_id: String,
        code: String,
        reason: String,
    },
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Writes `batch` in `format`. `created_at` (ISO 8601 date-time, e.g.
/// `2025-03-10T09:30:00` or with an offset) is only used as the pain.001
/// `CreDtTm`; it is passed in rather than read from the clock so the same
/// batch always gives the same bytes.
pub fn write_batch(
    batch: &PayoutBatch,
    format: BankFormat,
    created_at: &str,
) -> Result<Vec<u8>, BankError> {
    let checked = check_batch(batch, format)?;
    match format {
        BankFormat::Daifa => write_daifa(batch, &checked),
        BankFormat::Csv => write_csv(batch, &checked),
        BankFormat::Pain001 => write_pain001(batch, &checked, created_at),
    }
}

/// A batch that passed every rule, with the parsed ID numbers (normalised,
/// e.g. a lowercase `x` made upper case) and the control total.
struct Checked<'a> {
    ids: Vec<(&'a PayoutLine, IdNumber)>,
    total: Fen,
}

fn check_batch(batch: &PayoutBatch, format: BankFormat) -> Result<Checked<'_>, BankError> {
    let bad = |at: String, rule: String| BankError::InvalidBatch {
        batch_id: batch.batch_id.clone(),
        at,
        rule,
    };
    let iso = format == BankFormat::Pain001;
    let pipe = format == BankFormat::Daifa;
    let iso_limit = |max: usize| iso.then_some(max);

    if batch.batch_id.is_empty()
        || !batch
            .batch_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(bad(
            "batch id".to_owned(),
            "must be non-empty and use only ASCII letters, digits, '-', '_' and '.' (it appears in file names and payment references)".to_owned(),
        ));
    }
    if iso && batch.batch_id.len() > MAX_ISO_ID {
        return Err(bad(
            "batch id".to_owned(),
            format!(
                "has {} characters but pain.001 MsgId allows at most {MAX_ISO_ID}",
                batch.batch_id.len()
            ),
        ));
    }
    check_text(&batch.unit_code, true, iso_limit(MAX_ISO_ID), pipe)
        .map_err(|rule| bad("unit code".to_owned(), rule))?;
    check_text(&batch.unit_name, true, iso_limit(MAX_ISO_TEXT), pipe)
        .map_err(|rule| bad("unit name".to_owned(), rule))?;
    check_account(&batch.payer_account).map_err(|rule| bad("payer account".to_owned(), rule))?;
    if batch.lines.is_empty() {
        return Err(bad(
            "lines".to_owned(),
            "a batch needs at least one line; banks refuse empty batches".to_owned(),
        ));
    }

    let mut seen = BTreeSet::new();
    let mut ids = Vec::with_capacity(batch.lines.len());
    for line in &batch.lines {
        let at = |field: &str| format!("line {} {field}", line.line_no);
        if line.line_no == 0 {
            return Err(bad(
                "line 0".to_owned(),
                "line numbers start at 1".to_owned(),
            ));
        }
        if !seen.insert(line.line_no) {
            return Err(bad(
                format!("line {}", line.line_no),
                "the line number is used twice; the bank's answer refers to lines by number"
                    .to_owned(),
            ));
        }
        if iso {
            let end_to_end = batch.batch_id.len() + 1 + line.line_no.to_string().len();
            if end_to_end > MAX_ISO_ID {
                return Err(bad(
                    at("EndToEndId"),
                    format!(
                        "{{batch_id}}-{{line_no}} has {end_to_end} characters but pain.001 allows at most {MAX_ISO_ID}; use a shorter batch id"
                    ),
                ));
            }
        }
        check_text(&line.name, true, iso_limit(MAX_ISO_TEXT), pipe)
            .map_err(|rule| bad(at("name"), rule))?;
        if line.name.trim() != line.name {
            return Err(bad(
                at("name"),
                "has spaces at the start or end, which the bank would compare as part of the name (户名不符)".to_owned(),
            ));
        }
        check_account(&line.account).map_err(|rule| bad(at("account"), rule))?;
        if !line.amount.is_positive() {
            return Err(bad(
                at("amount"),
                format!("is {} but a payout must be more than zero", line.amount),
            ));
        }
        if iso && line.amount.get() >= ISO_AMOUNT_LIMIT {
            return Err(bad(
                at("amount"),
                "has more than the 18 digits ISO 20022 allows".to_owned(),
            ));
        }
        let id = IdNumber::parse(&line.id_number)
            .map_err(|e| bad(at("ID number"), format!("is not valid: {e}")))?;
        check_text(&line.purpose, false, iso_limit(MAX_ISO_TEXT), pipe)
            .map_err(|rule| bad(at("purpose"), rule))?;
        ids.push((line, id));
    }
    let total = batch.control_total()?;
    if iso && total.get() >= ISO_AMOUNT_LIMIT {
        return Err(bad(
            "control total".to_owned(),
            "has more than the 18 digits ISO 20022 allows; split the batch".to_owned(),
        ));
    }
    Ok(Checked { ids, total })
}

/// Returns the broken rule. Control characters are refused in every format:
/// a line break splits a 批量代发 record, and XML 1.0 cannot carry most of
/// them at all.
fn check_text(
    value: &str,
    required: bool,
    max_chars: Option<usize>,
    no_pipe: bool,
) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err("is empty".to_owned());
    }
    if value.chars().any(char::is_control) {
        return Err("contains a line break, tab or other control character".to_owned());
    }
    if no_pipe && value.contains('|') {
        return Err("contains '|', the 批量代发 field separator".to_owned());
    }
    if let Some(max) = max_chars {
        let len = value.chars().count();
        if len > max {
            return Err(format!(
                "has {len} characters but ISO 20022 allows at most {max}"
            ));
        }
    }
    Ok(())
}

fn check_account(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(
            "must be ASCII letters and digits only: write the card number without spaces or dashes"
                .to_owned(),
        );
    }
    if value.len() > MAX_ACCOUNT {
        return Err(format!(
            "has {} characters but at most {MAX_ACCOUNT} are allowed",
            value.len()
        ));
    }
    Ok(())
}

fn write_daifa(batch: &PayoutBatch, checked: &Checked<'_>) -> Result<Vec<u8>, BankError> {
    let mut out = Vec::new();
    let header = format!(
        "H|{}|{}|{}|{}|{}|\r\n",
        batch.unit_code,
        batch.batch_id,
        batch.business_date.format("%Y%m%d"),
        checked.ids.len(),
        checked.total
    );
    push_gbk(&mut out, &header, batch, || "header".to_owned())?;
    for (line, id) in &checked.ids {
        let text = format!(
            "D|{}|{}|{}|{}|{ID_TYPE_RESIDENT_CARD}|{}|{}|\r\n",
            line.line_no,
            line.name,
            line.account,
            line.amount,
            id.full(),
            line.purpose
        );
        push_gbk(&mut out, &text, batch, || format!("line {}", line.line_no))?;
    }
    Ok(out)
}

/// Encodes one record; a character outside GBK would otherwise become an
/// HTML numeric reference (`&#…;`) and the bank would see a wrong name. `at` names the record, and
/// is only called to say where the file went wrong.
fn push_gbk(
    out: &mut Vec<u8>,
    text: &str,
    batch: &PayoutBatch,
    at: impl FnOnce() -> String,
) -> Result<(), BankError> {
    let (bytes, _, had_errors) = encoding_rs::GBK.encode(text);
    if had_errors {
        let culprit = text
            .chars()
            .find(|c| encoding_rs::GBK.encode(c.encode_utf8(&mut [0; 4])).2)
            .map_or_else(String::new, |c| format!(" (U+{:04X})", u32::from(c)));
        return Err(BankError::InvalidBatch {
            batch_id: batch.batch_id.clone(),
            at: at(),
            rule: format!(
                "contains a character{culprit} that GBK cannot encode, and 批量代发 files are GBK; agree a substitute spelling with the bank"
            ),
        });
    }
    out.extend_from_slice(&bytes);
    Ok(())
}

fn write_csv(batch: &PayoutBatch, checked: &Checked<'_>) -> Result<Vec<u8>, BankError> {
    let io_error = |e: csv::Error| BankError::InvalidBatch {
        batch_id: batch.batch_id.clone(),
        at: "CSV".to_owned(),
        rule: format!("could not be written: {e}"),
    };
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    writer
        .write_record([
            "batch_id",
            "line_no",
            "name",
            "account",
            "amount",
            "id_type",
            "id_number",
            "purpose",
        ])
        .map_err(io_error)?;
    for (line, id) in &checked.ids {
        writer
            .write_record([
                batch.batch_id.as_str(),
                &line.line_no.to_string(),
                &line.name,
                &line.account,
                &line.amount.to_string(),
                ID_TYPE_RESIDENT_CARD,
                id.full(),
                &line.purpose,
            ])
            .map_err(io_error)?;
    }
    writer
        .write_record([
            batch.batch_id.as_str(),
            "TOTAL",
            &checked.ids.len().to_string(),
            "",
            &checked.total.to_string(),
            "",
            "",
            "",
        ])
        .map_err(io_error)?;
    writer.into_inner().map_err(|e| BankError::InvalidBatch {
        batch_id: batch.batch_id.clone(),
        at: "CSV".to_owned(),
        rule: format!("could not be written: {}", e.error()),
    })
}

fn write_pain001(
    batch: &PayoutBatch,
    checked: &Checked<'_>,
    created_at: &str,
) -> Result<Vec<u8>, BankError> {
    let created_at = created_at.trim();
    let is_datetime = DateTime::parse_from_rfc3339(created_at).is_ok()
        || NaiveDateTime::parse_from_str(created_at, "%Y-%m-%dT%H:%M:%S%.f").is_ok();
    if !is_datetime {
        return Err(BankError::InvalidBatch {
            batch_id: batch.batch_id.clone(),
            at: "CreDtTm".to_owned(),
            rule: "the creation time must be an ISO 8601 date-time such as 2025-03-10T09:30:00"
                .to_owned(),
        });
    }
    let count = checked.ids.len().to_string();
    let total = checked.total.to_string();
    let mut x = Xml::default();
    x.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.out
        .push_str(&format!("<Document xmlns=\"{PAIN001_NAMESPACE}\">\n"));
    x.open("CstmrCdtTrfInitn");
    x.open("GrpHdr");
    x.leaf("MsgId", &batch.batch_id);
    x.leaf("CreDtTm", created_at);
    x.leaf("NbOfTxs", &count);
    x.leaf("CtrlSum", &total);
    x.open("InitgPty");
    x.leaf("Nm", &batch.unit_name);
    x.open("Id");
    x.open("OrgId");
    x.open("Othr");
    x.leaf("Id", &batch.unit_code);
    x.close("Othr");
    x.close("OrgId");
    x.close("Id");
    x.close("InitgPty");
    x.close("GrpHdr");

    x.open("PmtInf");
    x.leaf("PmtInfId", &batch.batch_id);
    x.leaf("PmtMtd", "TRF");
    x.leaf("NbOfTxs", &count);
    x.leaf("CtrlSum", &total);
    x.open("ReqdExctnDt");
    x.leaf("Dt", &batch.business_date.format("%Y-%m-%d").to_string());
    x.close("ReqdExctnDt");
    x.open("Dbtr");
    x.leaf("Nm", &batch.unit_name);
    x.close("Dbtr");
    x.other_id("DbtrAcct", &batch.payer_account);
    // The schema requires a debtor agent; the payer's bank is the one the
    // file is handed to, so it need not identify itself.
    x.open("DbtrAgt");
    x.open("FinInstnId");
    x.open("Othr");
    x.leaf("Id", "NOTPROVIDED");
    x.close("Othr");
    x.close("FinInstnId");
    x.close("DbtrAgt");
    for (line, id) in &checked.ids {
        x.open("CdtTrfTxInf");
        x.open("PmtId");
        x.leaf(
            "EndToEndId",
            &format!("{}-{}", batch.batch_id, line.line_no),
        );
        x.close("PmtId");
        x.open("Amt");
        x.indent();
        x.out.push_str(&format!(
            "<InstdAmt Ccy=\"CNY\">{}</InstdAmt>\n",
            line.amount
        ));
        x.close("Amt");
        x.open("Cdtr");
        x.leaf("Nm", &line.name);
        x.open("Id");
        x.open("PrvtId");
        x.open("Othr");
        x.leaf("Id", id.full());
        x.open("SchmeNm");
        x.leaf("Cd", "NIDN");
        x.close("SchmeNm");
        x.close("Othr");
        x.close("PrvtId");
        x.close("Id");
        x.close("Cdtr");
        x.other_id("CdtrAcct", &line.account);
        if !line.purpose.trim().is_empty() {
            x.open("RmtInf");
            x.leaf("Ustrd", &line.purpose);
            x.close("RmtInf");
        }
        x.close("CdtTrfTxInf");
    }
    x.close("PmtInf");
    x.close("CstmrCdtTrfInitn");
    x.out.push_str("</Document>\n");
    Ok(x.out.into_bytes())
}

/// A minimal indenting XML writer; every text value goes through
/// [`quick_xml::escape::escape`], so names like `A&B` stay well-formed.
#[derive(Default)]
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn indent(&mut self) {
        // Depth 0 is inside <Document>, whose tags are written by hand.
        for _ in 0..=self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push_str(&format!("<{name}>\n"));
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str(&format!("</{name}>\n"));
    }

    fn leaf(&mut self, name: &str, value: &str) {
        self.indent();
        let value = quick_xml::escape::escape(value);
        self.out.push_str(&format!("<{name}>{value}</{name}>\n"));
    }

    /// `<{name}><Id><Othr><Id>{id}</Id></Othr></Id></{name}>`: a domestic
    /// account number, which is not an IBAN.
    fn other_id(&mut self, name: &str, id: &str) {
        self.open(name);
        self.open("Id");
        self.open("Othr");
        self.leaf("Id", id);
        self.close("Othr");
        self.close("Id");
        self.close(name);
    }
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Reads a bank's answer, detecting the format from the content (see the
/// module documentation). `file` is only used in messages.
pub fn read_result(bytes: &[u8], file: &str) -> Result<BankResult, BankError> {
    let text = decode(bytes, file)?;
    let body = text.trim_start();
    let first_line = body.lines().next().unwrap_or("");
    if body.starts_with('<') {
        read_pain002(&text, file)
    } else if first_line.starts_with("H|") {
        read_daifa(&text, file)
    } else if first_line
        .trim_start_matches('"')
        .to_ascii_lowercase()
        .starts_with("batch_id")
    {
        read_csv(&text, file)
    } else {
        // The content itself is not quoted: it may be personal data.
        let detail = if body.is_empty() {
            "the file is empty".to_owned()
        } else {
            "the content does not start like any known result file".to_owned()
        };
        Err(BankError::UnknownResultFormat {
            file: file.to_owned(),
            detail,
        })
    }
}

/// UTF-8 (with or without BOM) first, since valid UTF-8 is almost never
/// meaningful GBK; otherwise GBK, what Chinese banks' systems produce.
fn decode<'a>(bytes: &'a [u8], file: &str) -> Result<Cow<'a, str>, BankError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| BankError::UnknownResultFormat {
            file: file.to_owned(),
            detail: "the bytes are neither UTF-8 nor GBK text".to_owned(),
        })
}

fn is_deceased(code: &str, reason: &str) -> bool {
    code.eq_ignore_ascii_case("MD07") || reason.contains("死亡") || reason.contains("身故")
}

fn parse_line_no(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "line number {value:?} is not a whole number from 1 up"
        )),
    }
}

fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn read_daifa(text: &str, file: &str) -> Result<BankResult, BankError> {
    let bad = |row: u64, rule: String| BankError::InvalidResult {
        file: file.to_owned(),
        at: format!("row {row}"),
        rule,
    };
    struct Header {
        row: u64,
        batch_id: String,
        count: u64,
        total: Fen,
    }
    let mut header: Option<Header> = None;
    let mut lines: Vec<ResultLine> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut sum = Fen::ZERO;
    let mut row: u64 = 0;
    for raw in text.split('\n') {
        row += 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let body = raw.strip_suffix('|').unwrap_or(raw);
        let fields: Vec<&str> = body.split('|').map(str::trim).collect();
        let expect = |n: usize, layout: &str| {
            if fields.len() == n {
                Ok(())
            } else {
                Err(bad(
                    row,
                    format!("has {} fields but {layout} has {n}", fields.len()),
                ))
            }
        };
        match fields[0] {
            "H" => {
                if header.is_some() || !lines.is_empty() {
                    return Err(bad(
                        row,
                        "a second header line (H); a result file holds one batch and starts with its header".to_owned(),
                    ));
                }
                expect(6, "a header H|unit|batch_id|YYYYMMDD|count|total|")?;
                let date = fields[3];
                if date.len() != 8 || NaiveDate::parse_from_str(date, "%Y%m%d").is_err() {
                    return Err(bad(
                        row,
                        format!("header date {date:?} is not a YYYYMMDD date"),
                    ));
                }
                let count = fields[4].parse::<u64>().map_err(|_| {
                    bad(
                        row,
                        format!("header count {:?} is not a whole number", fields[4]),
                    )
                })?;
                let total = parse_amount(fields[5], SignRule::NonNegative)
                    .map_err(|e| bad(row, format!("header total: {e}")))?;
                if fields[2].is_empty() {
                    return Err(bad(row, "header batch id is empty".to_owned()));
                }
                header = Some(Header {
                    row,
                    batch_id: fields[2].to_owned(),
                    count,
                    total,
                });
            }
            tag @ ("S" | "F") => {
                if header.is_none() {
                    return Err(bad(
                        row,
                        "a result line before the header line H|…".to_owned(),
                    ));
                }
                let status = if tag == "S" {
                    expect(5, "a success line S|line_no|name|account|amount|")?;
                    LineStatus::Paid
                } else {
                    expect(
                        7,
                        "a failure line F|line_no|name|account|amount|code|reason|",
                    )?;
                    if fields[5].is_empty() && fields[6].is_empty() {
                        return Err(bad(
                            row,
                            "failure line gives neither a code nor a reason".to_owned(),
                        ));
                    }
                    LineStatus::Failed {
                        code: fields[5].to_owned(),
                        reason: fields[6].to_owned(),
                    }
                };
                let line_no = parse_line_no(fields[1]).map_err(|rule| bad(row, rule))?;
                if !seen.insert(line_no) {
                    return Err(bad(row, format!("line {line_no} appears twice")));
                }
                let amount = parse_amount(fields[4], SignRule::Positive)
                    .map_err(|e| bad(row, format!("line {line_no} amount: {e}")))?;
                sum = sum.checked_add(amount).ok_or_else(|| {
                    bad(
                        row,
                        "the amounts add up to more than can be held".to_owned(),
                    )
                })?;
                let deceased = match &status {
                    LineStatus::Failed { code, reason } => is_deceased(code, reason),
                    LineStatus::Paid => false,
                };
                lines.push(ResultLine {
                    line_no,
                    account: non_empty(fields[3]),
                    name: non_empty(fields[2]),
                    amount: Some(amount),
                    status,
                    deceased,
                    source_row: row,
                });
            }
            "D" => {
                return Err(bad(
                    row,
                    "record type D is a payout line of the file sent to the bank, not a result; expected S (success) or F (failure)".to_owned(),
                ));
            }
            other => {
                return Err(bad(
                    row,
                    format!("unknown record type {other:?}; expected H, S or F"),
                ));
            }
        }
    }
    let Some(header) = header else {
        return Err(BankError::InvalidResult {
            file: file.to_owned(),
            at: "row 1".to_owned(),
            rule: "no header line H|…".to_owned(),
        });
    };
    let line_count = u64::try_from(lines.len()).unwrap_or(u64::MAX);
    if header.count != line_count || header.total != sum {
        return Err(BankError::TotalsMismatch {
            file: file.to_owned(),
            row: header.row,
            header_count: header.count,
            header_total: header.total,
            line_count,
            line_total: sum,
        });
    }
    Ok(BankResult {
        batch_id: header.batch_id,
        lines,
        format: "daifa",
    })
}

fn read_csv(text: &str, file: &str) -> Result<BankResult, BankError> {
    let bad = |at: String, rule: String| BankError::InvalidResult {
        file: file.to_owned(),
        at,
        rule,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| bad("row 1".to_owned(), format!("unreadable CSV header: {e}")))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let required = |name: &str| {
        column(name).ok_or_else(|| {
            let hint = if column("id_number").is_some() {
                " (this looks like the payout file sent to the bank, not its answer)"
            } else {
                ""
            };
            bad(
                "row 1".to_owned(),
                format!("the header has no {name} column{hint}"),
            )
        })
    };
    let batch_col = required("batch_id")?;
    let line_col = required("line_no")?;
    let status_col = required("status")?;
    let [code_col, reason_col, amount_col, account_col, name_col] =
        ["code", "reason", "amount", "account", "name"].map(column);

    let mut counter = LineCounter {
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut batch_id: Option<String> = None;
    let mut lines = Vec::new();
    let mut seen = BTreeSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad("CSV".to_owned(), format!("unreadable row: {e}")))?;
        // Counted here: after a CRLF the csv crate's position (line and byte)
        // points at the '\n' that ends the previous row, one line too early.
        let mut start = record.position().map_or(0, csv::Position::byte);
        while let Some(b'\r' | b'\n') = usize::try_from(start)
            .ok()
            .and_then(|i| text.as_bytes().get(i))
        {
            start += 1;
        }
        let row = counter.line_at(start);
        let at = || format!("row {row}");
        let get = |col: Option<usize>| col.and_then(|i| record.get(i)).unwrap_or("");
        let this_batch = get(Some(batch_col));
        if this_batch.is_empty() {
            return Err(bad(at(), "batch_id is empty".to_owned()));
        }
        match &batch_id {
            None => batch_id = Some(this_batch.to_owned()),
            Some(first) if first != this_batch => {
                return Err(bad(
                    at(),
                    format!(
                        "batch_id {this_batch} differs from {first} on the first row; one file answers one batch"
                    ),
                ));
            }
            Some(_) => {}
        }
        let line_no = parse_line_no(get(Some(line_col))).map_err(|rule| bad(at(), rule))?;
        if !seen.insert(line_no) {
            return Err(bad(at(), format!("line {line_no} appears twice")));
        }
        let status_text = get(Some(status_col));
        let code = get(code_col);
        let reason = get(reason_col);
        let status = match status_text.to_ascii_lowercase().as_str() {
            "paid" | "success" | "成功" => LineStatus::Paid,
            "failed" | "failure" | "失败" => {
                if code.is_empty() && reason.is_empty() {
                    return Err(bad(
                        at(),
                        format!("line {line_no} failed but gives neither a code nor a reason"),
                    ));
                }
                LineStatus::Failed {
                    code: code.to_owned(),
                    reason: reason.to_owned(),
                }
            }
            _ => {
                return Err(bad(
                    at(),
                    format!(
                        "status {status_text:?} is not one of paid, failed, success, failure, 成功, 失败"
                    ),
                ));
            }
        };
        let amount = match get(amount_col) {
            "" => None,
            text => Some(
                parse_amount(text, SignRule::Positive)
                    .map_err(|e| bad(at(), format!("line {line_no} amount: {e}")))?,
            ),
        };
        let deceased = matches!(status, LineStatus::Failed { .. }) && is_deceased(code, reason);
        lines.push(ResultLine {
            line_no,
            account: non_empty(get(account_col)),
            name: non_empty(get(name_col)),
            amount,
            status,
            deceased,
            source_row: row,
        });
    }
    let batch_id = batch_id.ok_or_else(|| {
        bad(
            "row 2".to_owned(),
            "the file has a header but no rows, so it names no batch".to_owned(),
        )
    })?;
    Ok(BankResult {
        batch_id,
        lines,
        format: "csv",
    })
}

/// A status with its reason, at group, payment-information or transaction
/// level of a pain.002.
#[derive(Clone, Debug, Default)]
struct IsoStatus {
    status: Option<String>,
    code: Option<String>,
    info: Vec<String>,
}

impl IsoStatus {
    fn is_rejected(&self) -> bool {
        self.status.as_deref() == Some("RJCT")
    }

    fn has_reason(&self) -> bool {
        self.code.is_some() || !self.info.is_empty()
    }

    /// Assigns a value found at `rel`, a path relative to the element that
    /// owns this status; returns whether it was a status field.
    fn take(&mut self, rel: &[&str], status_name: &str, value: &str) -> bool {
        match rel {
            [name] if *name == status_name => self.status = Some(value.to_owned()),
            ["StsRsnInf", "Rsn", "Cd" | "Prtry"] => self.code = Some(value.to_owned()),
            ["StsRsnInf", "AddtlInf"] => self.info.push(value.to_owned()),
            _ => return false,
        }
        true
    }
}

#[derive(Default)]
struct IsoTx {
    row: u64,
    payment: Option<usize>,
    end_to_end: Option<String>,
    msg_id: Option<String>,
    status: IsoStatus,
    amount: Option<String>,
    name: Option<String>,
    account: Option<String>,
}

/// Chinese wording for the reason codes a payout is likely to meet, so the
/// failure list reads the same whichever format the bank answered in.
fn iso_reason_zh(code: &str) -> Option<&'static str> {
    Some(match code {
        "AC01" => "账号错误",
        "AC03" => "收款账号无效",
        "AC04" => "账户已销户",
        "AC06" => "账户冻结",
        "AC13" => "账户类型不符",
        "AG01" => "账户不允许此交易",
        "AM04" => "付款账户余额不足",
        "AM05" => "重复付款",
        "BE01" => "户名不符",
        "MD07" => "收款人已死亡",
        "MS02" | "MS03" => "银行未说明原因",
        "RC01" => "银行代码错误",
        _ => return None,
    })
}

/// Converts byte offsets into 1-based line numbers, scanning forwards only.
struct LineCounter<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
}

impl LineCounter<'_> {
    fn line_at(&mut self, offset: u64) -> u64 {
        let target = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        if target > self.pos {
            let newlines = self.bytes[self.pos..target]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line += u64::try_from(newlines).unwrap_or(0);
            self.pos = target;
        }
        self.line
    }
}

fn read_pain002(text: &str, file: &str) -> Result<BankResult, BankError> {
    let bad = |at: String, rule: String| BankError::InvalidResult {
        file: file.to_owned(),
        at,
        rule,
    };
    let unknown = |detail: String| BankError::UnknownResultFormat {
        file: file.to_owned(),
        detail,
    };
    let mut reader = Reader::from_str(text);
    let mut counter = LineCounter {
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut stack: Vec<String> = Vec::new();
    let mut buf = String::new();
    let mut msg_id: Option<String> = None;
    let mut group = IsoStatus::default();
    let mut payments: Vec<IsoStatus> = Vec::new();
    let mut txs: Vec<IsoTx> = Vec::new();
    let mut current: Option<IsoTx> = None;
    let mut saw_root = false;

    loop {
        let event = reader.read_event().map_err(|e| {
            let row = counter.line_at(reader.error_position());
            bad(
                format!("row {row}"),
                format!("the XML is not well-formed: {e}"),
            )
        })?;
        match event {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_owned();
                match (stack.len(), name.as_str()) {
                    (0, "Document") => saw_root = true,
                    (0, other) => {
                        return Err(unknown(format!(
                            "the XML root element is <{other}>, not an ISO 20022 <Document>"
                        )));
                    }
                    (1, "CstmrPmtStsRpt" | "FIToFIPmtStsRpt") => {}
                    (1, "CstmrCdtTrfInitn") => {
                        return Err(unknown(
                            "this is a pain.001 payment initiation (the file sent to the bank), not the bank's pain.002 status report".to_owned(),
                        ));
                    }
                    (1, other) => {
                        return Err(unknown(format!(
                            "the ISO 20022 message <{other}> is not a payment status report"
                        )));
                    }
                    (_, "OrgnlPmtInfAndSts") => payments.push(IsoStatus::default()),
                    (_, "TxInfAndSts") => {
                        current = Some(IsoTx {
                            row: counter.line_at(reader.buffer_position()),
                            payment: if stack.iter().any(|n| n == "OrgnlPmtInfAndSts") {
                                payments.len().checked_sub(1)
                            } else {
                                None
                            },
                            ..IsoTx::default()
                        });
                    }
                    _ => {}
                }
                stack.push(name);
                buf.clear();
            }
            Event::Empty(start) if stack.is_empty() => {
                let name = start.local_name().as_ref().to_owned();
                return Err(unknown(format!("the XML root element <{name}> is empty")));
            }
            Event::Text(t) => buf.push_str(&t.xml10_content()),
            Event::CData(t) => buf.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => match &*r {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        _ => None,
                    },
                    Err(_) => None,
                };
                let Some(c) = resolved else {
                    let row = counter.line_at(reader.buffer_position());
                    return Err(bad(
                        format!("row {row}"),
                        format!("unknown XML entity &{};", &*r),
                    ));
                };
                buf.push(c);
            }
            Event::End(_) => {
                let value = buf.trim().to_owned();
                buf.clear();
                let path: Vec<&str> = stack.iter().map(String::as_str).collect();
                if let Some(i) = path.iter().rposition(|n| *n == "TxInfAndSts") {
                    let rel = &path[i + 1..];
                    if rel.is_empty() {
                        txs.extend(current.take());
                    } else if let Some(tx) = current.as_mut()
                        && !tx.status.take(rel, "TxSts", &value)
                    {
                        match rel {
                            ["OrgnlEndToEndId"] => tx.end_to_end = Some(value),
                            ["OrgnlGrpInf", "OrgnlMsgId"] => tx.msg_id = Some(value),
                            ["OrgnlTxRef", "Amt", "InstdAmt"]
                            | ["OrgnlTxRef", "IntrBkSttlmAmt"] => {
                                tx.amount = Some(value);
                            }
                            ["OrgnlTxRef", "Cdtr", "Pty", "Nm"] | ["OrgnlTxRef", "Cdtr", "Nm"] => {
                                tx.name = Some(value);
                            }
                            ["OrgnlTxRef", "CdtrAcct", "Id", "Othr", "Id"]
                            | ["OrgnlTxRef", "CdtrAcct", "Id", "IBAN"] => tx.account = Some(value),
                            _ => {}
                        }
                    }
                } else if let Some(i) = path.iter().rposition(|n| *n == "OrgnlPmtInfAndSts") {
                    if let Some(payment) = payments.last_mut() {
                        payment.take(&path[i + 1..], "PmtInfSts", &value);
                    }
                } else if let Some(i) = path.iter().rposition(|n| *n == "OrgnlGrpInfAndSts") {
                    let rel = &path[i + 1..];
                    if !group.take(rel, "GrpSts", &value) && rel == ["OrgnlMsgId"] {
                        msg_id = Some(value);
                    }
                }
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(unknown("the XML has no root element".to_owned()));
    }

    let batch_id = msg_id
        .or_else(|| txs.iter().find_map(|tx| tx.msg_id.clone()))
        .ok_or_else(|| {
            bad(
                "OrgnlGrpInfAndSts/OrgnlMsgId".to_owned(),
                "missing: the report must name the original batch (the pain.001 MsgId)".to_owned(),
            )
        })?;

    if txs.is_empty() {
        let rejected = std::iter::once(&group)
            .chain(payments.iter())
            .find(|s| s.is_rejected());
        return match rejected {
            Some(status) => {
                let (code, reason) = iso_code_and_reason(status);
                Err(BankError::BatchRejected {
                    file: file.to_owned(),
                    batch_id,
                    code,
                    reason,
                })
            }
            None => Err(bad(
                "TxInfAndSts".to_owned(),
                "the report lists no transactions, so no line's outcome is known; ask the bank for a report with transaction details".to_owned(),
            )),
        };
    }

    let mut seen = BTreeSet::new();
    let mut lines = Vec::with_capacity(txs.len());
    for tx in txs {
        let at = format!("row {} TxInfAndSts", tx.row);
        let end_to_end = tx.end_to_end.as_deref().ok_or_else(|| {
            bad(
                at.clone(),
                "has no OrgnlEndToEndId, so the line cannot be identified".to_owned(),
            )
        })?;
        let line_no = end_to_end
            .strip_prefix(batch_id.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .ok_or_else(|| {
                bad(
                    at.clone(),
                    format!(
                        "OrgnlEndToEndId {end_to_end:?} does not belong to batch {batch_id}: expected {batch_id}-<line number>"
                    ),
                )
            })
            .and_then(|n| parse_line_no(n).map_err(|rule| bad(at.clone(), rule)))?;
        if !seen.insert(line_no) {
            return Err(bad(at, format!("line {line_no} appears twice")));
        }
        let payment = tx.payment.and_then(|i| payments.get(i));
        let levels: Vec<&IsoStatus> = std::iter::once(&tx.status)
            .chain(payment)
            .chain(std::iter::once(&group))
            .collect();
        // A rejection of the whole group or payment information overrides
        // anything said about a single transaction inside it.
        let status = if levels.iter().skip(1).any(|s| s.is_rejected()) {
            Some("RJCT")
        } else {
            levels.iter().find_map(|s| s.status.as_deref())
        };
        let status = match status {
            Some("ACSC" | "ACCC" | "ACSP" | "ACCP") => LineStatus::Paid,
            Some("RJCT") => {
                let source = levels
                    .iter()
                    .find(|s| s.has_reason())
                    .copied()
                    .unwrap_or(&tx.status);
                let (code, reason) = iso_code_and_reason(source);
                LineStatus::Failed { code, reason }
            }
            Some(other) => {
                return Err(bad(
                    at,
                    format!(
                        "line {line_no} has status {other}, which is not final; import the bank's final status report (ACSC or RJCT)"
                    ),
                ));
            }
            None => {
                return Err(bad(
                    at,
                    format!("line {line_no} has no TxSts and no group or payment status"),
                ));
            }
        };
        let amount = tx
            .amount
            .as_deref()
            .map(|a| parse_amount(a, SignRule::Positive))
            .transpose()
            .map_err(|e| bad(at.clone(), format!("line {line_no} amount: {e}")))?;
        let deceased = match &status {
            LineStatus::Failed { code, reason } => {
                is_deceased(code, reason)
                    || levels
                        .iter()
                        .any(|s| s.info.iter().any(|i| is_deceased("", i)))
            }
            LineStatus::Paid => false,
        };
        lines.push(ResultLine {
            line_no,
            account: tx.account.as_deref().and_then(non_empty),
            name: tx.name.as_deref().and_then(non_empty),
            amount,
            status,
            deceased,
            source_row: tx.row,
        });
    }
    Ok(BankResult {
        batch_id,
        lines,
        format: "pain.002",
    })
}

/// The reason code as given, and a Chinese reason: our wording for a known
/// code, else the bank's additional information, else a placeholder.
fn iso_code_and_reason(status: &IsoStatus) -> (String, String) {
    let code = status.code.clone().unwrap_or_default();
    let reason = match iso_reason_zh(&code) {
        Some(zh) => zh.to_owned(),
        None if !status.info.is_empty() => status.info.join("；"),
        None => REASON_NOT_GIVEN.to_owned(),
    };
    (code, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id_number::make_id;
    use proptest::prelude::*;

    const BATCH: &str = "U44051101-MBDK-2025-03-1";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("test date")
    }

    fn id(sequence: u16) -> String {
        make_id("440511", date(2012, 5, 1), sequence)
            .full()
            .to_owned()
    }

    fn line(line_no: u32, name: &str, fen: i64) -> PayoutLine {
        PayoutLine {
            line_no,
            name: name.to_owned(),
            account: format!("62220202000000{line_no:02}"),
            amount: Fen::new(fen),
            id_number: id(u16::try_from(line_no).expect("small")),
            purpose: "2025年春季学期义务教育补助".to_owned(),
        }
    }

    fn batch_of(lines: Vec<PayoutLine>) -> PayoutBatch {
        PayoutBatch {
            batch_id: BATCH.to_owned(),
            unit_code: "U44051101".to_owned(),
            unit_name: "汕头市金平区教育局".to_owned(),
            payer_account: "44050101040001234".to_owned(),
            business_date: date(2025, 3, 10),
            lines,
        }
    }

    fn sample() -> PayoutBatch {
        batch_of(vec![
            line(1, "张三", 150_000),
            line(2, "李四", 150_000),
            line(3, "王五", 90_000),
        ])
    }

    fn gbk(text: &str) -> Vec<u8> {
        let (bytes, _, had_errors) = encoding_rs::GBK.encode(text);
        assert!(!had_errors, "test text must be GBK-encodable");
        bytes.into_owned()
    }

    fn from_gbk(bytes: &[u8]) -> String {
        encoding_rs::GBK
            .decode_without_bom_handling_and_without_replacement(bytes)
            .expect("GBK")
            .into_owned()
    }

    const NOW: &str = "2025-03-10T09:30:00";

    #[test]
    fn daifa_file_is_gbk_with_crlf_and_states_count_and_total() {
        let batch = sample();
        let bytes = write_batch(&batch, BankFormat::Daifa, NOW).expect("writes");
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "must be GBK, not UTF-8"
        );
        // 张三 in GBK.
        assert!(bytes.windows(4).any(|w| w == [0xD5, 0xC5, 0xC8, 0xFD]));
        let purpose = "2025年春季学期义务教育补助";
        let expected = format!(
            "H|U44051101|{BATCH}|20250310|3|3900.00|\r\n\
             D|1|张三|6222020200000001|1500.00|01|{}|{purpose}|\r\n\
             D|2|李四|6222020200000002|1500.00|01|{}|{purpose}|\r\n\
             D|3|王五|6222020200000003|900.00|01|{}|{purpose}|\r\n",
            id(1),
            id(2),
            id(3)
        );
        assert_eq!(from_gbk(&bytes), expected);
        assert_eq!(batch.control_total(), Ok(Fen::new(390_000)));
    }

    #[test]
    fn daifa_success_and_failure_files_read_back() {
        let success = gbk(&format!(
            "H|U44051101|{BATCH}|20250310|2|3000.00|\r\n\
             S|1|张三|6222020200000001|1500.00|\r\n\
             S|2|李四|6222020200000002|1500.00|\r\n"
        ));
        // UTF-8 with LF and no final '|' on the header is accepted too.
        let failure = format!(
            "H|U44051101|{BATCH}|20250310|1|900.00\n\
             F|3|王五|6222020200000003|900.00|E09|户主已死亡|\n\n"
        );
        let ok = read_result(&success, "success.txt").expect("reads");
        assert_eq!(ok.batch_id, BATCH);
        assert_eq!(ok.format, "daifa");
        assert_eq!(ok.lines.len(), 2);
        assert_eq!(
            ok.lines[0],
            ResultLine {
                line_no: 1,
                account: Some("6222020200000001".to_owned()),
                name: Some("张三".to_owned()),
                amount: Some(Fen::new(150_000)),
                status: LineStatus::Paid,
                deceased: false,
                source_row: 2,
            }
        );
        let failed = read_result(failure.as_bytes(), "failure.txt").expect("reads");
        let only = &failed.lines[0];
        assert_eq!(only.line_no, 3);
        assert_eq!(
            only.status,
            LineStatus::Failed {
                code: "E09".to_owned(),
                reason: "户主已死亡".to_owned()
            }
        );
        assert!(only.deceased);
        let closed = gbk(&format!(
            "H|U44051101|{BATCH}|20250310|1|900.00|\r\nF|3|王五|6222020200000003|900.00|E02|账户已销户|\r\n"
        ));
        let closed = read_result(&closed, "failure.txt").expect("reads");
        assert!(!closed.lines[0].deceased);
    }

    #[test]
    fn a_result_whose_header_total_or_count_disagrees_is_refused() {
        let wrong_total = gbk(&format!(
            "H|U44051101|{BATCH}|20250310|2|3000.01|\r\n\
             S|1|张三|6222020200000001|1500.00|\r\n\
             S|2|李四|6222020200000002|1500.00|\r\n"
        ));
        let err = read_result(&wrong_total, "success.txt").unwrap_err();
        assert_eq!(
            err,
            BankError::TotalsMismatch {
                file: "success.txt".to_owned(),
                row: 1,
                header_count: 2,
                header_total: Fen::new(300_001),
                line_count: 2,
                line_total: Fen::new(300_000),
            }
        );
        assert!(
            err.to_string()
                .starts_with("success.txt: row 1: the header states 2 lines totalling 3000.01")
        );
        let wrong_count = format!(
            "H|U44051101|{BATCH}|20250310|3|1500.00|\r\nS|1|张三|6222020200000001|1500.00|\r\n"
        );
        assert!(matches!(
            read_result(wrong_count.as_bytes(), "s.txt"),
            Err(BankError::TotalsMismatch {
                header_count: 3,
                line_count: 1,
                ..
            })
        ));
    }

    #[test]
    fn malformed_daifa_results_name_the_row() {
        let cases = [
            (
                format!("H|U|{BATCH}|20250310|1|1.00|\r\nS|1|张三|622|1.00|extra|\r\n"),
                "row 2: has 6 fields",
            ),
            (
                format!("H|U|{BATCH}|20250310|1|1.00|\r\nD|1|张三|622|1.00|01|x|y|\r\n"),
                "row 2: record type D is a payout line",
            ),
            (
                format!("H|U|{BATCH}|2025-03-10|0|0.00|\r\n"),
                "row 1: header date",
            ),
            (
                format!("H|U|{BATCH}|20250310|2|2.00|\r\nS|1|a|622|1.00|\r\nS|1|a|622|1.00|\r\n"),
                "row 3: line 1 appears twice",
            ),
            (
                format!("H|U|{BATCH}|20250310|1|0.00|\r\nS|1|a|622|0.00|\r\n"),
                "row 2: line 1 amount",
            ),
        ];
        for (text, expected) in cases {
            let err = read_result(text.as_bytes(), "r.txt")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("r.txt: {expected}")), "{err}");
        }
    }

    #[test]
    fn an_empty_failure_file_is_a_valid_answer() {
        let text = format!("H|U44051101|{BATCH}|20250310|0|0.00|\r\n");
        let result = read_result(text.as_bytes(), "failure.txt").expect("reads");
        assert!(result.lines.is_empty());
    }

    #[test]
    fn a_pipe_or_line_break_in_a_field_is_refused_naming_the_line() {
        let mut batch = sample();
        batch.lines[1].name = "李|四".to_owned();
        let err = write_batch(&batch, BankFormat::Daifa, NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("batch {BATCH}: line 2 name: contains '|', the 批量代发 field separator")
        );
        // A pipe is harmless in CSV, which quotes.
        assert!(write_batch(&batch, BankFormat::Csv, NOW).is_ok());

        let mut batch = sample();
        batch.lines[2].purpose = "补助\r\n第二行".to_owned();
        for format in BankFormat::ALL {
            let err = write_batch(&batch, format, NOW).unwrap_err().to_string();
            assert!(
                err.contains("line 3 purpose: contains a line break"),
                "{err}"
            );
        }
    }

    /// One edit to the sample batch that must make it unwritable.
    type Change = Box<dyn Fn(&mut PayoutBatch)>;

    #[test]
    fn other_bad_batches_are_refused_with_the_rule() {
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|b| b.lines[0].name = "张😀".to_owned()),
                "line 1: contains a character (U+1F600) that GBK cannot encode",
            ),
            (
                Box::new(|b| b.lines[0].name = " 张三".to_owned()),
                "line 1 name: has spaces at the start or end",
            ),
            (
                Box::new(|b| b.lines[0].account = "6222 0202".to_owned()),
                "line 1 account: must be ASCII letters and digits only",
            ),
            (
                Box::new(|b| b.lines[0].amount = Fen::ZERO),
                "line 1 amount: is 0.00 but a payout must be more than zero",
            ),
            (
                Box::new(|b| b.lines[2].line_no = 1),
                "line 1: the line number is used twice",
            ),
            (
                Box::new(|b| b.lines.clear()),
                "lines: a batch needs at least one line",
            ),
            (
                Box::new(|b| b.batch_id = "批次 1".to_owned()),
                "batch id: must be non-empty",
            ),
            (
                Box::new(|b| b.lines[1].amount = Fen::new(i64::MAX)),
                "control total: the sum of the line amounts is too large",
            ),
        ];
        for (change, expected) in cases {
            let mut batch = sample();
            change(&mut batch);
            let err = write_batch(&batch, BankFormat::Daifa, NOW)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }
    }

    #[test]
    fn messages_and_debug_output_never_show_a_full_id_number() {
        let mut batch = sample();
        let full = batch.lines[0].id_number.clone();
        // Mistype the check character.
        let mut wrong = full.clone();
        let last = if wrong.ends_with('1') { "2" } else { "1" };
        wrong.replace_range(17.., last);
        batch.lines[0].id_number = wrong.clone();
        let err = write_batch(&batch, BankFormat::Daifa, NOW)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1 ID number: is not valid"), "{err}");
        assert!(!err.contains(&wrong[..14]), "{err}");
        let debug = format!("{:?}", sample());
        assert!(!debug.contains(&full), "{debug}");
        assert!(
            debug.contains(&format!("{}********{}", &full[..6], &full[14..])),
            "{debug}"
        );
    }

    #[test]
    fn csv_round_trip_with_trailer_and_chinese_statuses() {
        let batch = sample();
        let bytes = write_batch(&batch, BankFormat::Csv, NOW).expect("writes");
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let text = std::str::from_utf8(&bytes[3..]).expect("UTF-8");
        let rows: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            rows[0],
            "batch_id,line_no,name,account,amount,id_type,id_number,purpose"
        );
        assert_eq!(
            rows[1],
            format!(
                "{BATCH},1,张三,6222020200000001,1500.00,01,{},2025年春季学期义务教育补助",
                id(1)
            )
        );
        assert_eq!(rows[4], format!("{BATCH},TOTAL,3,,3900.00,,,"));
        assert_eq!(rows[5], "");
        assert_eq!(rows.len(), 6);

        let answer = format!(
            "\u{feff}Batch_ID,line_no,status,code,reason,amount,account\r\n\
             {BATCH},1,paid,,,1500.00,6222020200000001\r\n\
             {BATCH},2,成功,,,,\r\n\
             {BATCH},3,失败,E09,户主已死亡,900.00,6222020200000003\r\n"
        );
        let result = read_result(answer.as_bytes(), "answer.csv").expect("reads");
        assert_eq!(result.format, "csv");
        assert_eq!(result.batch_id, BATCH);
        assert_eq!(result.lines.len(), 3);
        assert_eq!(result.lines[0].status, LineStatus::Paid);
        assert_eq!(result.lines[0].amount, Some(Fen::new(150_000)));
        assert_eq!(result.lines[1].amount, None);
        assert_eq!(result.lines[1].source_row, 3);
        assert!(result.lines[2].deceased);
        assert_eq!(
            result.lines[2].status,
            LineStatus::Failed {
                code: "E09".to_owned(),
                reason: "户主已死亡".to_owned()
            }
        );
        // Our own payout CSV is not an answer.
        let err = read_result(&bytes, "payout.csv").unwrap_err().to_string();
        assert!(
            err.contains("no status column (this looks like the payout file"),
            "{err}"
        );
        // GBK answers are read too.
        let gbk_answer = gbk(&format!(
            "batch_id,line_no,status,reason\r\n{BATCH},1,失败,户名不符\r\n"
        ));
        let result = read_result(&gbk_answer, "answer.csv").expect("reads GBK");
        assert_eq!(
            result.lines[0].status,
            LineStatus::Failed {
                code: String::new(),
                reason: "户名不符".to_owned()
            }
        );
    }

    /// Runs xmllint against the official schema; a missing xmllint fails the
    /// test rather than skipping it, so the check cannot silently vanish.
    fn assert_valid_pain001(xml: &[u8]) {
        let schema = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/pain.001.001.09.xsd"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("batch.xml");
        std::fs::write(&path, xml).expect("write temp file");
        let output = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(schema)
            .arg(&path)
            .output()
            .unwrap_or_else(|e| {
                panic!("xmllint could not be run ({e}); install libxml2-utils to validate pain.001 output")
            });
        assert!(
            output.status.success(),
            "pain.001 does not validate against the schema:\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(xml)
        );
    }

    #[test]
    fn pain001_validates_against_the_official_schema() {
        let batch = sample();
        let xml = write_batch(&batch, BankFormat::Pain001, NOW).expect("writes");
        assert_valid_pain001(&xml);
        let text = std::str::from_utf8(&xml).expect("UTF-8");
        assert!(text.contains(&format!("<MsgId>{BATCH}</MsgId>")));
        assert!(text.contains("<NbOfTxs>3</NbOfTxs>"));
        assert!(text.contains("<CtrlSum>3900.00</CtrlSum>"));
        assert!(text.contains(&format!("<EndToEndId>{BATCH}-3</EndToEndId>")));
        assert!(text.contains("<InstdAmt Ccy=\"CNY\">900.00</InstdAmt>"));
        assert!(text.contains("<Nm>王五</Nm>"));
        assert!(text.contains("<Dt>2025-03-10</Dt>"));
        // Reproducible: same input, same bytes.
        assert_eq!(
            write_batch(&batch, BankFormat::Pain001, NOW).expect("writes"),
            xml
        );

        // Markup characters are escaped, limits at the edge are accepted, and an
        // empty purpose leaves out the optional RmtInf.
        let mut batch = sample();
        batch.unit_name = "教育局 <R&D> \"补助\" 'x'".to_owned();
        batch.lines[0].purpose = "补".repeat(140);
        batch.lines[1].name = "A&B <C>".to_owned();
        batch.lines[2].purpose = String::new();
        batch.batch_id = "B".repeat(33);
        let xml =
            write_batch(&batch, BankFormat::Pain001, "2025-03-10T09:30:00+08:00").expect("writes");
        assert_valid_pain001(&xml);
        assert!(
            std::str::from_utf8(&xml)
                .expect("UTF-8")
                .contains("<Nm>A&amp;B &lt;C&gt;</Nm>")
        );
    }

    #[test]
    fn pain001_limits_are_enforced_before_writing() {
        let mut batch = sample();
        batch.batch_id = "B".repeat(36);
        let err = write_batch(&batch, BankFormat::Pain001, NOW)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("batch id: has 36 characters but pain.001 MsgId allows at most 35"),
            "{err}"
        );
        assert!(write_batch(&batch, BankFormat::Daifa, NOW).is_ok());

        batch.batch_id = "B".repeat(34);
        let err = write_batch(&batch, BankFormat::Pain001, NOW)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1 EndToEndId: {batch_id}-{line_no} has 36 characters"),
            "{err}"
        );

        let mut batch = sample();
        batch.lines[1].name = "名".repeat(141);
        let err = write_batch(&batch, BankFormat::Pain001, NOW)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2 name: has 141 characters but ISO 20022 allows at most 140"),
            "{err}"
        );

        let err = write_batch(&sample(), BankFormat::Pain001, "yesterday")
            .unwrap_err()
            .to_string();
        assert!(err.contains("CreDtTm"), "{err}");
    }

    const PAIN002_SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
  <CstmrPmtStsRpt>
    <GrpHdr><MsgId>BANK-RPT-1</MsgId><CreDtTm>2025-03-11T08:00:00</CreDtTm></GrpHdr>
    <OrgnlGrpInfAndSts>
      <OrgnlMsgId>U44051101-MBDK-2025-03-1</OrgnlMsgId>
      <OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>
      <GrpSts>PART</GrpSts>
    </OrgnlGrpInfAndSts>
    <OrgnlPmtInfAndSts>
      <OrgnlPmtInfId>U44051101-MBDK-2025-03-1</OrgnlPmtInfId>
      <TxInfAndSts>
        <OrgnlEndToEndId>U44051101-MBDK-2025-03-1-1</OrgnlEndToEndId>
        <TxSts>ACSC</TxSts>
        <OrgnlTxRef>
          <Amt><InstdAmt Ccy="CNY">1500.00</InstdAmt></Amt>
          <Cdtr><Pty><Nm>张三</Nm></Pty></Cdtr>
          <CdtrAcct><Id><Othr><Id>6222020200000001</Id></Othr></Id></CdtrAcct>
        </OrgnlTxRef>
      </TxInfAndSts>
      <TxInfAndSts>
        <OrgnlEndToEndId>U44051101-MBDK-2025-03-1-2</OrgnlEndToEndId>
        <TxSts>RJCT</TxSts>
        <StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>closed &amp; gone</AddtlInf></StsRsnInf>
        <OrgnlTxRef><Amt><InstdAmt Ccy="CNY">1500.00</InstdAmt></Amt></OrgnlTxRef>
      </TxInfAndSts>
      <TxInfAndSts>
        <OrgnlEndToEndId>U44051101-MBDK-2025-03-1-3</OrgnlEndToEndId>
        <TxSts>RJCT</TxSts>
        <StsRsnInf><Rsn><Cd>MD07</Cd></Rsn></StsRsnInf>
      </TxInfAndSts>
    </OrgnlPmtInfAndSts>
  </CstmrPmtStsRpt>
</Document>
"#;

    #[test]
    fn a_pain002_with_paid_closed_and_deceased_lines_parses() {
        let result = read_result(PAIN002_SAMPLE.as_bytes(), "status.xml").expect("reads");
        assert_eq!(result.batch_id, BATCH);
        assert_eq!(result.format, "pain.002");
        let lines = &result.lines;
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            ResultLine {
                line_no: 1,
                account: Some("6222020200000001".to_owned()),
                name: Some("张三".to_owned()),
                amount: Some(Fen::new(150_000)),
                status: LineStatus::Paid,
                deceased: false,
                source_row: 12,
            }
        );
        assert_eq!(
            lines[1].status,
            LineStatus::Failed {
                code: "AC04".to_owned(),
                reason: "账户已销户".to_owned()
            }
        );
        assert!(!lines[1].deceased);
        assert_eq!(lines[2].line_no, 3);
        assert_eq!(
            lines[2].status,
            LineStatus::Failed {
                code: "MD07".to_owned(),
                reason: "收款人已死亡".to_owned()
            }
        );
        assert!(lines[2].deceased);
        assert_eq!(lines[2].amount, None);
    }

    #[test]
    fn namespace_prefixes_and_versions_do_not_matter() {
        let prefixed = PAIN002_SAMPLE
            .replace(
                "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\">",
                "<p:Document xmlns:p=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.03\">",
            )
            .replace("<", "<p:")
            .replace("<p:/", "</p:")
            .replace("<p:?xml", "<?xml")
            .replace("<p:p:", "<p:");
        let result = read_result(prefixed.as_bytes(), "status.xml").expect("reads prefixed");
        assert_eq!(result.lines.len(), 3);
        assert!(result.lines[2].deceased);
    }

    #[test]
    fn a_group_rejection_fails_every_line() {
        let rejected = PAIN002_SAMPLE.replace(
            "<GrpSts>PART</GrpSts>",
            "<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>AM05</Cd></Rsn></StsRsnInf>",
        );
        let result = read_result(rejected.as_bytes(), "status.xml").expect("reads");
        assert_eq!(
            result.lines[0].status,
            LineStatus::Failed {
                code: "AM05".to_owned(),
                reason: "重复付款".to_owned()
            }
        );
        // A line's own reason is kept.
        assert_eq!(
            result.lines[2].status,
            LineStatus::Failed {
                code: "MD07".to_owned(),
                reason: "收款人已死亡".to_owned()
            }
        );

        let whole = format!(
            r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>
<GrpHdr><MsgId>R</MsgId><CreDtTm>2025-03-11T08:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>{BATCH}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>
<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>AM05</Cd></Rsn></StsRsnInf></OrgnlGrpInfAndSts>
</CstmrPmtStsRpt></Document>"#
        );
        let err = read_result(whole.as_bytes(), "status.xml").unwrap_err();
        assert_eq!(
            err,
            BankError::BatchRejected {
                file: "status.xml".to_owned(),
                batch_id: BATCH.to_owned(),
                code: "AM05".to_owned(),
                reason: "重复付款".to_owned(),
            }
        );
    }

    #[test]
    fn statuses_that_are_not_final_or_foreign_lines_are_refused() {
        let pending = PAIN002_SAMPLE.replacen("<TxSts>ACSC</TxSts>", "<TxSts>PDNG</TxSts>", 1);
        let err = read_result(pending.as_bytes(), "status.xml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "status.xml: row 12 TxInfAndSts: line 1 has status PDNG, which is not final; import the bank's final status report (ACSC or RJCT)"
        );
        let foreign = PAIN002_SAMPLE.replacen("MBDK-2025-03-1-1<", "MBDK-2025-04-1-1<", 1);
        let err = read_result(foreign.as_bytes(), "status.xml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not belong to batch U44051101-MBDK-2025-03-1"),
            "{err}"
        );
        let broken =
            PAIN002_SAMPLE.replace("</TxSts>\n        <OrgnlTxRef>", "\n        <OrgnlTxRef>");
        let err = read_result(broken.as_bytes(), "status.xml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not well-formed"), "{err}");
    }

    #[test]
    fn pain001_round_trip_through_a_status_report() {
        let batch = sample();
        let xml = write_batch(&batch, BankFormat::Pain001, NOW).expect("writes");
        // Reading back what we sent is refused with a clear reason.
        let err = read_result(&xml, "batch.xml").unwrap_err().to_string();
        assert!(
            err.contains("this is a pain.001 payment initiation"),
            "{err}"
        );

        let mut report = format!(
            "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\"><CstmrPmtStsRpt>\
             <OrgnlGrpInfAndSts><OrgnlMsgId>{BATCH}</OrgnlMsgId></OrgnlGrpInfAndSts><OrgnlPmtInfAndSts>"
        );
        for l in &batch.lines {
            let (sts, reason) = if l.line_no == 2 {
                ("RJCT", "<StsRsnInf><Rsn><Cd>AC06</Cd></Rsn></StsRsnInf>")
            } else {
                ("ACCP", "")
            };
            report.push_str(&format!(
                "<TxInfAndSts><OrgnlEndToEndId>{BATCH}-{}</OrgnlEndToEndId><TxSts>{sts}</TxSts>{reason}\
                 <OrgnlTxRef><Amt><InstdAmt Ccy=\"CNY\">{}</InstdAmt></Amt></OrgnlTxRef></TxInfAndSts>",
                l.line_no, l.amount
            ));
        }
        report.push_str("</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>");
        let result = read_result(report.as_bytes(), "status.xml").expect("reads");
        let got: Vec<(u32, Option<Fen>, LineStatus)> = result
            .lines
            .iter()
            .map(|l| (l.line_no, l.amount, l.status.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, Some(Fen::new(150_000)), LineStatus::Paid),
                (
                    2,
                    Some(Fen::new(150_000)),
                    LineStatus::Failed {
                        code: "AC06".to_owned(),
                        reason: "账户冻结".to_owned()
                    }
                ),
                (3, Some(Fen::new(90_000)), LineStatus::Paid),
            ]
        );
    }

    #[test]
    fn unknown_formats_are_refused_with_a_clear_message() {
        let err = BankFormat::parse("swift").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown bank file format \"swift\": use daifa (批量代发), csv or pain001 (ISO 20022 pain.001)"
        );
        for (text, format) in [
            ("daifa", BankFormat::Daifa),
            (" 批量代发 ", BankFormat::Daifa),
            ("CSV", BankFormat::Csv),
            ("pain001", BankFormat::Pain001),
            ("pain.001", BankFormat::Pain001),
        ] {
            assert_eq!(BankFormat::parse(text), Ok(format), "{text}");
        }
        for format in BankFormat::ALL {
            assert_eq!(format.to_string().parse::<BankFormat>(), Ok(format));
        }
        let extensions: Vec<&str> = BankFormat::ALL.iter().map(|f| file_extension(*f)).collect();
        assert_eq!(extensions, ["txt", "csv", "xml"]);

        let err =
            read_result("序号,姓名,金额\n1,张三,1500.00\n".as_bytes(), "回单.csv").unwrap_err();
        assert!(matches!(err, BankError::UnknownResultFormat { .. }));
        let text = err.to_string();
        assert!(
            text.starts_with(
                "回单.csv: the content does not start like any known result file; expected"
            ),
            "{text}"
        );
        assert!(!text.contains("张三"), "{text}");
        assert!(
            read_result(b"", "empty.txt")
                .unwrap_err()
                .to_string()
                .contains("the file is empty")
        );
        let err = read_result(&[0xFF, 0xFE, 0x00], "bin.dat")
            .unwrap_err()
            .to_string();
        assert!(err.contains("neither UTF-8 nor GBK"), "{err}");
        let err = read_result(b"<html><body/></html>", "page.xml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("root element is <html>"), "{err}");
    }

    /// Chinese names that GBK holds, to exercise multi-byte records.
    const NAMES: [&str; 6] = ["张三", "李四", "王五", "欧阳明月", "赵六", "钱七"];

    fn batch_from(amounts: &[(i64, usize)]) -> PayoutBatch {
        let lines = amounts
            .iter()
            .enumerate()
            .map(|(i, (fen, name))| {
                let no = u32::try_from(i + 1).expect("small");
                PayoutLine {
                    line_no: no,
                    name: NAMES[*name].to_owned(),
                    account: format!("62220202{no:08}"),
                    amount: Fen::new(*fen),
                    id_number: id(u16::try_from(i).expect("small")),
                    purpose: "营养改善计划".to_owned(),
                }
            })
            .collect();
        batch_of(lines)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn control_totals_equal_the_sum_and_a_success_file_reads_back_paid(
            amounts in prop::collection::vec((1i64..=10_000_000, 0usize..NAMES.len()), 1..=50)
        ) {
            let batch = batch_from(&amounts);
            let sum: i64 = amounts.iter().map(|(fen, _)| fen).sum();
            let total = Fen::new(sum);
            prop_assert_eq!(batch.control_total(), Ok(total));

            let daifa = from_gbk(&write_batch(&batch, BankFormat::Daifa, NOW).expect("daifa"));
            let header: Vec<&str> = daifa.lines().next().expect("header").split('|').collect();
            prop_assert_eq!(header[4], amounts.len().to_string());
            prop_assert_eq!(header[5], total.to_string());

            let csv = String::from_utf8(write_batch(&batch, BankFormat::Csv, NOW).expect("csv")).expect("UTF-8");
            let trailer = csv.trim_end().lines().last().expect("trailer").to_owned();
            prop_assert_eq!(trailer, format!("{BATCH},TOTAL,{},,{total},,,", amounts.len()));

            let mut success = format!("H|{}|{BATCH}|20250310|{}|{total}|\r\n", batch.unit_code, amounts.len());
            for l in &batch.lines {
                success.push_str(&format!("S|{}|{}|{}|{}|\r\n", l.line_no, l.name, l.account, l.amount));
            }
            let result = read_result(&gbk(&success), "success.txt").expect("reads");
            prop_assert_eq!(result.lines.len(), batch.lines.len());
            for (got, sent) in result.lines.iter().zip(&batch.lines) {
                prop_assert_eq!(got.line_no, sent.line_no);
                prop_assert_eq!(got.amount, Some(sent.amount));
                prop_assert_eq!(&got.status, &LineStatus::Paid);
                prop_assert_eq!(got.name.as_deref(), Some(sent.name.as_str()));
            }
        }
    }
}
