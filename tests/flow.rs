//! The money's journey through the real `earmark` binary, on every backend: a small province's year of
//! MBDK — releases by province and city, county matching, disbursement to units, twelve monthly payout
//! batches per unit with bank failures retried the month after, a death learnt late and recovered, one
//! county that passes a release on late — and the books checked to the fen at every level, against the
//! deadline report, `check`, `verify`, hledger and the ISO 20022 schema. Then the bad inputs, each
//! refused with a clear line and nothing written.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;

use common::{Ledger, Run, on_every_backend};
use earmark::id_number::make_id;

// ---------------------------------------------------------------------------------------------
// Harness (shared with tests/cli.rs and tests/roster.rs, in tests/common)
// ---------------------------------------------------------------------------------------------

/// This suite's steps on top of the shared harness (tests/common).
impl Ledger {
    /// Demands a refusal (exit 1) whose stderr names `says`, and that the books did not change.
    fn refused_unchanged(&self, args: &[&str], says: &str) -> Run {
        let before = self.snapshot();
        let run = self.expect(1, args);
        run.assert_stderr_has(says);
        assert!(
            run.stderr.lines().any(|l| !l.trim().is_empty()),
            "a refusal without a message{}",
            run.show()
        );
        assert_eq!(
            before,
            self.snapshot(),
            "a refused command changed the books{}",
            run.show()
        );
        run
    }
}

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

// ---------------------------------------------------------------------------------------------
// Money as fen
// ---------------------------------------------------------------------------------------------

/// "1,234.5" / "-900.00 CNY" → fen.
fn fen(text: &str) -> i64 {
    let t: String = text
        .trim()
        .trim_end_matches("CNY")
        .trim()
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, t),
    };
    let (whole, frac) = t.split_once('.').unwrap_or((&t, "0"));
    let frac = format!("{frac:0<2}");
    assert!(frac.len() == 2, "more than two decimals in {text:?}");
    let value = whole
        .parse::<i64>()
        .unwrap_or_else(|_| panic!("amount {text:?}"))
        * 100
        + frac
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("amount {text:?}"));
    if negative { -value } else { value }
}

/// fen → "1234.56" (as the CLI reads amounts).
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// (county, owner, kind) → balance; all of one program.
type Books = BTreeMap<(String, String, String), i64>;

/// `balances --format csv` → books (program MBDK only; it is the only one with entries).
fn parse_balances(csv: &str) -> Books {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("county_code,program,owner,kind,balance"),
        "balances header: {csv}"
    );
    let mut books = Books::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 5, "balances row {line:?}");
        assert_eq!(cells[1], "MBDK", "balances row {line:?}");
        let key = (cells[0].into(), cells[2].into(), cells[3].into());
        assert!(
            books.insert(key, fen(cells[4])).is_none(),
            "account listed twice: {line}"
        );
    }
    books
}

/// Sum of the balances of one account kind, over the whole ledger.
fn sum_kind(books: &Books, kind: &str) -> i64 {
    books
        .iter()
        .filter(|((_, _, k), _)| k == kind)
        .map(|(_, v)| *v)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// The province: 2 cities, 4 counties, 6 units, 60 people
// ---------------------------------------------------------------------------------------------

/// Dates and documents of the year.
const PROVINCE: &str = "440000";

/// (code, name, county, answer format)
const UNITS: [(&str, &str, &str, &str); 6] = [
    ("U44051101", "汕头市金平区教育局", "440511", "daifa"),
    ("U44051102", "金平区石炮台小学", "440511", "daifa"),
    ("U44051301", "汕头市潮阳区教育局", "440513", "csv"),
    ("U44010301", "广州市荔湾区教育局", "440103", "csv"),
    ("U44010302", "荔湾区西关小学", "440103", "pain001"),
    ("U44190001", "东莞市东城中心小学", "441900", "pain001"),
];

const COUNTIES: [&str; 4] = ["440103", "440511", "440513", "441900"];

/// The late county: it holds the city's second-half release past its deadline.
const LATE_COUNTY: &str = "440103";

fn city_of(county: &str) -> &'static str {
    match county {
        "440511" | "440513" => "440500",
        "440103" => "440100",
        "441900" => "441900",
        other => panic!("no city for {other}"),
    }
}

/// The city's own document for a half-year release.
fn city_document(county: &str, half: u32) -> String {
    let prefix = match city_of(county) {
        "440500" => "汕财教",
        "440100" => "穗财教",
        _ => "东财教",
    };
    format!("{prefix}〔2025〕{}号", 10 * half)
}

fn matching_document(county: &str, half: u32) -> String {
    format!("{county}财配〔2025〕{half}号")
}

fn disbursement_document(county: &str, half: u32) -> String {
    format!("{county}财拨〔2025〕{half}号")
}

const PROVINCE_H1: &str = "粤财教〔2025〕12号";
const PROVINCE_H2: &str = "粤财教〔2025〕88号";

/// The program as this province runs it: MBDK with each city's 1-9 year rate and city/county split.
fn program_toml() -> String {
    let text =
        std::fs::read_to_string(repo_file("programs/mbdk.toml")).expect("programs/mbdk.toml");
    let text = text.replacen(
        "[city_rates]\n",
        "[city_rates]\n\"440500\" = \"300.00\"\n\"440100\" = \"400.00\"\n\"441900\" = \"350.00\"\n",
        1,
    );
    let text = text.replacen(
        "[local_split.cities]\n",
        "[local_split.cities]\n\"440500\" = { city = 3, county = 7 }\n\"440100\" = { city = 1, county = 2 }\n",
        1,
    );
    assert!(
        text.contains("\"440100\" = { city = 1"),
        "mbdk.toml changed shape"
    );
    text
}

/// Each level's weight in a person-month of `county`: [province, city, county].
fn weights(county: &str, local_only: bool) -> [i64; 3] {
    match (city_of(county), local_only) {
        ("440500", false) => [500, 150, 350],
        ("440500", true) => [0, 300, 700],
        ("440100", _) => [0, 1, 2],
        _ => [0, 1, 0],
    }
}

/// One person-month split by largest remainder to the fen, ties to the higher level.
fn split(amount: i64, w: [i64; 3]) -> [i64; 3] {
    let total: i64 = w.iter().sum();
    let mut parts = [0i64; 3];
    let mut rests = [0i64; 3];
    for i in 0..3 {
        parts[i] = amount * w[i] / total;
        rests[i] = amount * w[i] % total;
    }
    let mut left = amount - parts.iter().sum::<i64>();
    let mut order = [0usize, 1, 2];
    order.sort_by_key(|&i| (-rests[i], i));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

#[derive(Clone, Debug)]
struct Person {
    id: String,
    name: String,
    male: bool,
    birth: String,
    semesters: u32,
    unit: usize,
    account: String,
    exclusion: &'static str,
    /// Monthly amount in fen when paid at all.
    monthly: i64,
    local_only: bool,
    /// The months of 2025 owed as the roster stood at the start of the year (empty: never).
    months: Vec<u32>,
}

impl Person {
    fn county(&self) -> &'static str {
        UNITS[self.unit].2
    }
}

/// The person who dies on 2025-05-10; the death reaches the ledger on 2025-08-20.
const DIES: usize = 12;
const DEATH_DATE: &str = "2025-05-10";

/// Bank failures: (person, month paid, how many attempts fail before one succeeds).
const FAILS: [(usize, u32, u32); 7] = [
    (0, 1, 1),
    (3, 2, 2),
    (5, 4, 1),
    (1, 5, 1),
    (4, 7, 1),
    (2, 9, 1),
    (6, 10, 1),
];

fn people() -> Vec<Person> {
    const SURNAMES: [&str; 12] = [
        "陈", "林", "黄", "张", "李", "王", "吴", "刘", "蔡", "郑", "杨", "许",
    ];
    const GIVEN: [&str; 10] = [
        "伟", "芳", "秀英", "建国", "丽华", "志强", "淑珍", "海生", "桂兰", "德明",
    ];
    let semester_cycle = [60u32, 45, 40, 30, 24, 20, 12, 6];
    (0..60usize)
        .map(|i| {
            let unit = i % UNITS.len();
            let county = UNITS[unit].2;
            let mut male = i % 2 == 0;
            let mut birth = if male {
                format!(
                    "{}-{:02}-{:02}",
                    1940 + (i * 7) % 19,
                    i % 12 + 1,
                    (i * 3) % 28 + 1
                )
            } else {
                format!(
                    "{}-{:02}-{:02}",
                    1945 + (i * 5) % 19,
                    i % 12 + 1,
                    (i * 3) % 28 + 1
                )
            };
            let mut semesters = semester_cycle[i % semester_cycle.len()];
            let mut exclusion = "";
            let mut months: Vec<u32> = (1..=12).collect();
            match i {
                // Reaches 60 on 2025-03-15: paid from April.
                7 => {
                    male = true;
                    birth = "1965-03-15".into();
                    semesters = 40;
                    months = (4..=12).collect();
                }
                // Reaches 55 on 2025-02-28: paid from March.
                8 => {
                    male = false;
                    birth = "1970-02-28".into();
                    semesters = 30;
                    months = (3..=12).collect();
                }
                // Reaches 60 only in 2026.
                9 => {
                    male = true;
                    birth = "1966-05-05".into();
                    months.clear();
                }
                // Taught a single semester: never paid.
                10 => {
                    male = false;
                    birth = "1955-01-01".into();
                    semesters = 1;
                    months.clear();
                }
                // Retired under the in-plan scheme: never paid.
                11 => {
                    male = true;
                    birth = "1950-06-06".into();
                    exclusion = "retired_in_plan";
                    months.clear();
                }
                DIES => {
                    male = true;
                    birth = "1945-04-04".into();
                    semesters = 60;
                }
                _ => {}
            }
            let years = semesters.div_ceil(2);
            let (monthly, local_only) = match years {
                30.. => (90_000, false),
                20..=29 => (80_000, false),
                10..=19 => (70_000, false),
                _ => (
                    match city_of(county) {
                        "440500" => 30_000,
                        "440100" => 40_000,
                        _ => 35_000,
                    },
                    true,
                ),
            };
            let birth_date = common::day(&birth);
            let sequence = 100 + 2 * i as u16 + u16::from(male);
            Person {
                id: make_id(county, birth_date, sequence).as_str().to_owned(),
                name: format!("{}{}", SURNAMES[i % 12], GIVEN[i % 10]),
                male,
                birth,
                semesters,
                unit,
                account: format!("62220202{:08}", i + 1),
                exclusion,
                monthly,
                local_only,
                months,
            }
        })
        .collect()
}

fn roster_csv(people: &[Person]) -> String {
    let mut out = String::from(
        "id_number,name,sex,birth_date,semesters,county_code,township_code,unit_code,bank_account,exclusion,death_date\n",
    );
    for p in people {
        out.push_str(&format!(
            "{},{},{},{},{},{},,{},{},{},\n",
            p.id,
            p.name,
            if p.male { "男" } else { "女" },
            p.birth,
            p.semesters,
            p.county(),
            UNITS[p.unit].0,
            p.account,
            p.exclusion
        ));
    }
    out
}

/// Each county's need per level for months `from..=to`, as the roster stood (nobody known dead).
fn county_need(people: &[Person], county: &str, from: u32, to: u32) -> [i64; 3] {
    let mut need = [0i64; 3];
    for p in people.iter().filter(|p| p.county() == county) {
        for _ in p.months.iter().filter(|m| (from..=to).contains(*m)) {
            let parts = split(p.monthly, weights(county, p.local_only));
            for l in 0..3 {
                need[l] += parts[l];
            }
        }
    }
    need
}

fn unit_need(people: &[Person], unit: usize, from: u32, to: u32) -> i64 {
    people
        .iter()
        .filter(|p| p.unit == unit)
        .map(|p| p.monthly * p.months.iter().filter(|m| (from..=to).contains(*m)).count() as i64)
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Bank files: reading what earmark wrote, writing the bank's answer
// ---------------------------------------------------------------------------------------------

/// One payee line of a written bank file.
#[derive(Clone, Debug)]
struct BankLine {
    line_no: u32,
    name: String,
    account: String,
    amount: i64,
    id: String,
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in {text}"))
        + open.len();
    let end = text[start..]
        .find(close)
        .unwrap_or_else(|| panic!("no {close} after {open}"))
        + start;
    &text[start..end]
}

/// The payee lines of the file `payout create` wrote, in any of the three layouts.
fn read_bank_file(bytes: &[u8], format: &str) -> Vec<BankLine> {
    match format {
        "daifa" => {
            let (text, _, bad) = encoding_rs::GBK.decode(bytes);
            assert!(!bad, "the 批量代发 file is not GBK");
            text.lines()
                .filter(|l| l.starts_with("D|"))
                .map(|l| {
                    let c: Vec<&str> = l.split('|').collect();
                    BankLine {
                        line_no: c[1].parse().expect("line no"),
                        name: c[2].into(),
                        account: c[3].into(),
                        amount: fen(c[4]),
                        id: c[6].into(),
                    }
                })
                .collect()
        }
        "csv" => {
            let text = String::from_utf8(bytes.to_vec()).expect("utf-8 csv");
            text.trim_start_matches('\u{feff}')
                .lines()
                .skip(1)
                .filter(|l| !l.contains(",TOTAL,") && !l.trim().is_empty())
                .map(|l| {
                    let c: Vec<&str> = l.split(',').collect();
                    BankLine {
                        line_no: c[1].parse().expect("line no"),
                        name: c[2].into(),
                        account: c[3].into(),
                        amount: fen(c[4]),
                        id: c[6].into(),
                    }
                })
                .collect()
        }
        "pain001" => {
            let text = String::from_utf8(bytes.to_vec()).expect("utf-8 xml");
            text.split("<CdtTrfTxInf>")
                .skip(1)
                .map(|tx| {
                    let e2e = between(tx, "<EndToEndId>", "</EndToEndId>");
                    BankLine {
                        line_no: e2e.rsplit('-').next().unwrap().parse().expect("line no"),
                        name: between(tx, "<Nm>", "</Nm>").into(),
                        account: between(&tx[tx.find("<CdtrAcct>").unwrap()..], "<Id>", "</Id>")
                            .trim()
                            .trim_start_matches("<Othr>")
                            .trim()
                            .trim_start_matches("<Id>")
                            .into(),
                        amount: fen(between(tx, "<InstdAmt Ccy=\"CNY\">", "</InstdAmt>")),
                        id: between(&tx[tx.find("<PrvtId>").unwrap()..], "<Id>", "</Id>").into(),
                    }
                })
                .collect()
        }
        other => panic!("format {other}"),
    }
}

/// A line's outcome: paid, or failed with (code, reason).
type Answer = (BankLine, Option<(&'static str, &'static str)>);

/// The bank's answer files for a batch (two for 批量代发: successes and failures).
fn answer_files(
    batch: &str,
    unit: &str,
    format: &str,
    date: &str,
    answers: &[Answer],
) -> Vec<(String, Vec<u8>)> {
    let compact = date.replace('-', "");
    match format {
        "daifa" => {
            let mut files = Vec::new();
            for failed in [false, true] {
                let lines: Vec<&Answer> =
                    answers.iter().filter(|a| a.1.is_some() == failed).collect();
                if lines.is_empty() {
                    continue;
                }
                let total: i64 = lines.iter().map(|a| a.0.amount).sum();
                let mut text = format!(
                    "H|{unit}|{batch}|{compact}|{}|{}|\r\n",
                    lines.len(),
                    yuan(total)
                );
                for (l, outcome) in lines {
                    match outcome {
                        None => text.push_str(&format!(
                            "S|{}|{}|{}|{}|\r\n",
                            l.line_no,
                            l.name,
                            l.account,
                            yuan(l.amount)
                        )),
                        Some((code, reason)) => text.push_str(&format!(
                            "F|{}|{}|{}|{}|{code}|{reason}|\r\n",
                            l.line_no,
                            l.name,
                            l.account,
                            yuan(l.amount)
                        )),
                    }
                }
                let (bytes, _, bad) = encoding_rs::GBK.encode(&text);
                assert!(!bad, "answer not GBK-encodable");
                files.push((
                    format!("{batch}.{}.txt", if failed { "fail" } else { "ok" }),
                    bytes.into_owned(),
                ));
            }
            files
        }
        "csv" => {
            let mut text = String::from("batch_id,line_no,status,code,reason,amount,account\n");
            for (l, outcome) in answers {
                let (status, code, reason) = match outcome {
                    None => ("paid", "", ""),
                    Some((c, r)) => ("failed", *c, *r),
                };
                text.push_str(&format!(
                    "{batch},{},{status},{code},{reason},{},{}\n",
                    l.line_no,
                    yuan(l.amount),
                    l.account
                ));
            }
            vec![(format!("{batch}.answer.csv"), text.into_bytes())]
        }
        "pain001" => {
            let mut text = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\">\n<CstmrPmtStsRpt>\n\
<GrpHdr><MsgId>RPT-{batch}</MsgId><CreDtTm>{date}T18:00:00</CreDtTm></GrpHdr>\n\
<OrgnlGrpInfAndSts><OrgnlMsgId>{batch}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>\n\
<OrgnlPmtInfAndSts><OrgnlPmtInfId>{batch}</OrgnlPmtInfId>\n"
            );
            for (l, outcome) in answers {
                let status = match outcome {
                    None => "<TxSts>ACSC</TxSts>".to_owned(),
                    Some((code, _)) => {
                        format!(
                            "<TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf>"
                        )
                    }
                };
                text.push_str(&format!(
                    "<TxInfAndSts><OrgnlEndToEndId>{batch}-{}</OrgnlEndToEndId>{status}\
<OrgnlTxRef><Amt><InstdAmt Ccy=\"CNY\">{}</InstdAmt></Amt></OrgnlTxRef></TxInfAndSts>\n",
                    l.line_no,
                    yuan(l.amount)
                ));
            }
            text.push_str("</OrgnlPmtInfAndSts>\n</CstmrPmtStsRpt>\n</Document>\n");
            vec![(format!("{batch}.pain002.xml"), text.into_bytes())]
        }
        other => panic!("format {other}"),
    }
}

/// "batch U…-MBDK-2025-03-1: 5 line(s), total …" → the batch id and the bank file's path.
fn created_batch(run: &Run) -> (String, String) {
    let first = run.stdout.lines().next().unwrap_or_default();
    let batch = first
        .strip_prefix("batch ")
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("no batch id{}", run.show()))
        .to_owned();
    let file = first
        .rsplit("bank file ")
        .next()
        .unwrap_or_else(|| panic!("no bank file{}", run.show()))
        .trim()
        .to_owned();
    (batch, file)
}

fn failure_reason(format: &str) -> (&'static str, &'static str) {
    match format {
        "pain001" => ("AC04", "closed account"),
        "daifa" => ("E01", "户名不符"),
        _ => ("E02", "账户已销户"),
    }
}

// ---------------------------------------------------------------------------------------------
// The year
// ---------------------------------------------------------------------------------------------

/// The business date of month `m`'s payouts for a unit in `county` (and of the bank's answer).
fn payout_date(county: &str, m: u32) -> String {
    match (m, county) {
        (1, _) => "2025-01-08".into(),
        (7, LATE_COUNTY) => "2025-07-25".into(),
        _ => format!("2025-{m:02}-01"),
    }
}

/// Pays one batch for `unit` and `month` and answers it as the bank; returns the persons whose line
/// failed (still owed).
#[allow(clippy::too_many_arguments)]
fn pay_batch(
    ledger: &Ledger,
    people: &[Person],
    unit: usize,
    month: u32,
    date: &str,
    attempts: &mut HashMap<(usize, u32), u32>,
    expect_retries: usize,
    pain001_checked: &mut bool,
) -> BTreeSet<usize> {
    let (code, _, _, format) = UNITS[unit];
    let month_text = format!("2025-{month:02}");
    let run = ledger.ok(&[
        "payout",
        "create",
        "--unit",
        code,
        "--program",
        "MBDK",
        "--month",
        &month_text,
        "--date",
        date,
        "--format",
        format,
        "--out",
        "bank",
    ]);
    let retries_text = format!(
        "({expect_retries} retr{} of failed lines)",
        if expect_retries == 1 { "y" } else { "ies" }
    );
    run.assert_stdout_has(&retries_text);
    let (batch, file) = created_batch(&run);
    let bytes = ledger.read_bytes(&file);
    if format == "pain001" && !*pain001_checked {
        *pain001_checked = true;
        xmllint_validates(&ledger.path(&file));
    }
    let lines = read_bank_file(&bytes, format);
    let by_id: HashMap<&str, usize> = people
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let mut expected: BTreeSet<usize> = BTreeSet::new();
    let mut answers = Vec::new();
    let mut failed = BTreeSet::new();
    for line in lines {
        let who = *by_id
            .get(line.id.as_str())
            .unwrap_or_else(|| panic!("batch {batch} pays someone not on the roster"));
        let p = &people[who];
        assert_eq!(
            line.amount, p.monthly,
            "{batch} line {} amount",
            line.line_no
        );
        assert_eq!(
            line.account, p.account,
            "{batch} line {} account",
            line.line_no
        );
        assert_eq!(line.name, p.name, "{batch} line {} name", line.line_no);
        assert!(expected.insert(who), "{batch} pays {} twice", p.name);
        let attempt = attempts.entry((who, month)).or_default();
        *attempt += 1;
        let fails = FAILS
            .iter()
            .any(|&(f, m, n)| f == who && m == month && *attempt <= n);
        if fails {
            failed.insert(who);
        }
        answers.push((line, fails.then(|| failure_reason(format))));
    }
    let names: Vec<String> = answer_files(&batch, code, format, date, &answers)
        .into_iter()
        .map(|(name, contents)| {
            let name = format!("answers/{name}");
            ledger.write(&name, contents);
            name
        })
        .collect();
    // In even months the bank's files of a batch (批量代发: successes and failures) are read
    // together, as one answer; in odd months one after another.
    let groups: Vec<Vec<&str>> = if month.is_multiple_of(2) {
        vec![names.iter().map(String::as_str).collect()]
    } else {
        names.iter().map(|n| vec![n.as_str()]).collect()
    };
    for group in groups {
        let mut args = vec!["payout", "result"];
        args.extend(&group);
        args.extend(["--date", date]);
        let run = ledger.ok(&args);
        run.assert_stdout_has(&format!("batch {batch}: "));
        run.assert_stdout_has("0 already recorded");
        if group.len() > 1 {
            let failed_now = answers.iter().filter(|a| a.1.is_some()).count();
            run.assert_stdout_has(&format!(
                "{} paid, {failed_now} failed,",
                answers.len() - failed_now
            ));
        }
    }
    failed
}

fn xmllint_validates(file: &std::path::Path) {
    let schema = repo_file("tests/data/pain.001.001.09.xsd");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint is needed to validate the pain.001 file ({e}): install libxml2-utils (.ci/run installs it)")
        });
    assert!(
        output.status.success(),
        "{} does not validate against pain.001.001.09:\n{}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `init`, the units, this province's program, the roster.
fn set_up(ledger: &Ledger, people: &[Person]) {
    ledger.ok(&["init"]);
    let mut units = String::from("unit_code,name,county_code,township_code,kind\n");
    for (code, name, county, _) in UNITS {
        units.push_str(&format!("{code},{name},{county},,school\n"));
    }
    let units = ledger.write("units.csv", units);
    ledger
        .ok(&["import", "units", units])
        .assert_stdout_has("registered 6 new units");
    let program = ledger.write("mbdk.toml", program_toml());
    ledger.ok(&["program", "load", program]);
    let roster = ledger.write("roster.csv", roster_csv(people));
    ledger
        .ok(&["import", "roster", "--program", "MBDK", roster])
        .assert_stdout_has("60 added");
}

#[test]
fn a_year_of_mbdk_from_province_to_person() {
    let people = people();
    on_every_backend(|ledger| year(ledger, &people));
}

fn year(ledger: &Ledger, people: &[Person]) {
    set_up(ledger, people);
    let extra_province = 100_000; // released to 440511 beyond its need, and returned
    let mut released = [0i64; 3];

    // ---- First half: province, cities, counties on time; disbursement on 2025-01-06.
    ledger
        .ok(&[
            "allocate",
            "--program",
            "MBDK",
            "--level",
            "province",
            "--document",
            PROVINCE_H1,
            "--date",
            "2025-01-02",
            "--covers",
            "2025-01..2025-06",
        ])
        .assert_stdout_has("省级下达");
    for county in COUNTIES {
        let city_doc = city_document(county, 1);
        ledger.ok(&[
            "allocate",
            "--program",
            "MBDK",
            "--level",
            "city",
            "--document",
            &city_doc,
            "--date",
            "2025-01-02",
            "--covers",
            "2025-01..2025-06",
            "--county",
            county,
        ]);
        let doc = matching_document(county, 1);
        ledger.ok(&[
            "match",
            "--program",
            "MBDK",
            "--document",
            &doc,
            "--date",
            "2025-01-03",
            "--covers",
            "2025-01..2025-06",
            "--county",
            county,
        ]);
        let need = county_need(people, county, 1, 6);
        for l in 0..3 {
            released[l] += need[l];
        }
    }
    for county in COUNTIES {
        let doc = disbursement_document(county, 1);
        ledger.ok(&[
            "disburse",
            "--program",
            "MBDK",
            "--county",
            county,
            "--document",
            &doc,
            "--date",
            "2025-01-06",
            "--covers",
            "2025-01..2025-06",
        ]);
    }
    // Every county passed everything on; every unit holds its half-year's need.
    let books = parse_balances(&ledger.balances(&[]));
    for (i, (code, _, county, _)) in UNITS.iter().enumerate() {
        assert_eq!(
            books.get(&((*county).into(), (*code).into(), "held".into())),
            Some(&unit_need(people, i, 1, 6)),
            "{code} held after the first disbursement"
        );
    }
    for county in COUNTIES {
        assert_eq!(
            books.get(&(county.into(), county.into(), "held".into())),
            None,
            "{county} finance passed everything on"
        );
    }

    // ---- Monthly payouts, retries of failed lines the next month.
    let mut attempts: HashMap<(usize, u32), u32> = HashMap::new();
    let mut owed: BTreeMap<usize, BTreeMap<u32, BTreeSet<usize>>> = BTreeMap::new();
    let mut pain001_checked = false;
    for month in 1..=12u32 {
        if month == 7 {
            second_half(ledger, people, extra_province, &mut released);
        }
        for (unit, (_, _, county, _)) in UNITS.iter().enumerate() {
            let date = payout_date(county, month);
            // Retries first: each earlier month with a failed line gets a new batch.
            let earlier: Vec<(u32, BTreeSet<usize>)> = owed
                .get(&unit)
                .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
                .unwrap_or_default();
            for (m, who) in earlier {
                let still = pay_batch(
                    ledger,
                    people,
                    unit,
                    m,
                    &date,
                    &mut attempts,
                    who.len(),
                    &mut pain001_checked,
                );
                let slot = owed.get_mut(&unit).unwrap();
                if still.is_empty() {
                    slot.remove(&m);
                } else {
                    slot.insert(m, still);
                }
            }
            let failed = pay_batch(
                ledger,
                people,
                unit,
                month,
                &date,
                &mut attempts,
                0,
                &mut pain001_checked,
            );
            if !failed.is_empty() {
                owed.entry(unit).or_default().insert(month, failed);
            }
        }
        if month == 8 {
            a_death_learnt_late(ledger, people);
        }
    }
    assert!(
        owed.values().all(|m| m.is_empty()),
        "lines left unpaid: {owed:?}"
    );
    assert!(pain001_checked, "no pain.001 file was validated");

    // The death: the months after it were paid from the H2 disbursement and are returned upward.
    let d = &people[DIES];
    let unit_d = UNITS[d.unit].0;
    ledger
        .ok(&[
            "return",
            "--program",
            "MBDK",
            "--from",
            unit_d,
            "--amount",
            &yuan(4 * d.monthly),
            "--document",
            "金教退〔2025〕1号",
            "--date",
            "2025-12-10",
        ])
        .assert_stdout_has("returned");

    // ---- The books, to the fen.
    let mut expected = Books::new();
    let mut put = |county: &str, owner: &str, kind: &str, amount: i64| {
        if amount != 0 {
            *expected
                .entry((county.into(), owner.into(), kind.into()))
                .or_default() += amount;
        }
    };
    for county in COUNTIES {
        let mut need = county_need(people, county, 1, 12);
        if county == "440511" {
            need[0] += extra_province;
        }
        put(county, PROVINCE, "budget", -need[0]);
        put(county, city_of(county), "budget", -need[1]);
        put(county, county, "budget", -need[2]);
    }
    put("440511", PROVINCE, "returned", extra_province);
    put(d.county(), d.county(), "held", 4 * d.monthly);
    put(d.county(), unit_d, "held", 2 * d.monthly);
    for (i, p) in people.iter().enumerate() {
        let months = if i == DIES { 5 } else { p.months.len() as i64 };
        put(p.county(), &p.id, "paid", months * p.monthly);
    }
    put(d.county(), &d.id, "receivable", d.monthly);
    let books = parse_balances(&ledger.balances(&[]));
    if books != expected {
        let keys: BTreeSet<_> = books.keys().chain(expected.keys()).collect();
        let diff: Vec<String> = keys
            .into_iter()
            .filter(|k| books.get(*k) != expected.get(*k))
            .map(|k| {
                format!(
                    "{k:?}: ledger {:?}, expected {:?}",
                    books.get(k),
                    expected.get(k)
                )
            })
            .collect();
        panic!(
            "[{:?}] balances differ:\n{}",
            ledger.kind(),
            diff.join("\n")
        );
    }

    // Everything released is paid, held, returned or receivable, to the fen.
    let released_total = -sum_kind(&books, "budget");
    assert_eq!(
        released_total,
        released.iter().sum::<i64>() + extra_province,
        "released"
    );
    assert_eq!(
        released_total,
        sum_kind(&books, "paid")
            + sum_kind(&books, "held")
            + sum_kind(&books, "returned")
            + sum_kind(&books, "receivable"),
        "released ≠ paid + held + returned + receivable"
    );
    assert_eq!(sum_kind(&books, "payable"), 0, "someone is still owed");

    // ---- Deadlines: exactly the late county's city release, 9 days late.
    ledger.ok(&[
        "deadlines",
        "--as-of",
        "2025-12-31",
        "--format",
        "csv",
        "--out",
        "deadlines.csv",
    ]);
    let report = String::from_utf8(ledger.read_bytes("deadlines.csv")).expect("utf-8");
    let rows: Vec<&str> = report
        .trim_start_matches('\u{feff}')
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let late_amount = county_need(people, LATE_COUNTY, 7, 12)[1];
    let expected_row = format!(
        "{LATE_COUNTY},MBDK,县级财政,{LATE_COUNTY},{},city,2025-06-16,2025-06-16,2025-07-16,{a},{a},{a},0.00,逾期拨付 late,9",
        city_document(LATE_COUNTY, 2),
        a = yuan(late_amount)
    );
    assert_eq!(
        rows.len(),
        3,
        "deadlines: one late tranche and the total:\n{report}"
    );
    assert_eq!(rows[1], expected_row, "the late tranche:\n{report}");
    assert!(rows[2].starts_with("合计,"), "total row:\n{report}");
    let text = ledger.ok(&["deadlines", "--as-of", "2025-12-31"]).stdout;
    assert!(
        text.contains("滞留 stuck 0.00 · 逾期拨付 passed on late"),
        "{text}"
    );
    assert!(
        !text.contains("stuck (滞留)"),
        "nothing may be stuck:\n{text}"
    );

    // ---- check, verify, hledger.
    ledger
        .ok(&["check"])
        .assert_stdout_has("OK: every entry balances");
    ledger
        .ok(&["verify"])
        .assert_stdout_has("OK: no entry was altered after posting");
    hledger_agrees(ledger, &books);
}

/// Second half: the province releases 440511 more than its need (the county returns the surplus);
/// the late county matches on 2025-07-10 and disburses on 2025-07-25, past the city release's
/// deadline of 2025-07-16.
fn second_half(ledger: &Ledger, people: &[Person], extra: i64, released: &mut [i64; 3]) {
    let mut amounts = String::from("county_code,amount\n");
    for county in ["440511", "440513"] {
        let need = county_need(people, county, 7, 12)[0];
        let give = if county == "440511" {
            need + extra
        } else {
            need
        };
        amounts.push_str(&format!("{county},{}\n", yuan(give)));
    }
    let amounts = ledger.write("province_h2.csv", amounts);
    ledger
        .ok(&[
            "allocate",
            "--program",
            "MBDK",
            "--level",
            "province",
            "--document",
            PROVINCE_H2,
            "--date",
            "2025-06-16",
            "--covers",
            "2025-07..2025-12",
            "--amounts",
            amounts,
        ])
        .assert_stdout_has("≠测算");
    for county in COUNTIES {
        let city_doc = city_document(county, 2);
        ledger.ok(&[
            "allocate",
            "--program",
            "MBDK",
            "--level",
            "city",
            "--document",
            &city_doc,
            "--date",
            "2025-06-16",
            "--covers",
            "2025-07..2025-12",
            "--county",
            county,
        ]);
        let need = county_need(people, county, 7, 12);
        for l in 0..3 {
            released[l] += need[l];
        }
    }
    for county in COUNTIES.iter().filter(|c| **c != LATE_COUNTY) {
        let doc = matching_document(county, 2);
        ledger.ok(&[
            "match",
            "--program",
            "MBDK",
            "--document",
            &doc,
            "--date",
            "2025-06-17",
            "--covers",
            "2025-07..2025-12",
            "--county",
            county,
        ]);
        let doc = disbursement_document(county, 2);
        ledger.ok(&[
            "disburse",
            "--program",
            "MBDK",
            "--county",
            county,
            "--document",
            &doc,
            "--date",
            "2025-06-20",
            "--covers",
            "2025-07..2025-12",
        ]);
    }
    ledger
        .ok(&[
            "return",
            "--program",
            "MBDK",
            "--from",
            "440511",
            "--to",
            "province",
            "--amount",
            &yuan(extra),
            "--document",
            "金财退〔2025〕3号",
            "--date",
            "2025-06-25",
        ])
        .assert_stdout_has("returned");
    let doc = matching_document(LATE_COUNTY, 2);
    ledger.ok(&[
        "match",
        "--program",
        "MBDK",
        "--document",
        &doc,
        "--date",
        "2025-07-10",
        "--covers",
        "2025-07..2025-12",
        "--county",
        LATE_COUNTY,
    ]);
    // Before the late disbursement, the report shows the city release as stuck.
    let text = ledger.ok(&["deadlines", "--as-of", "2025-07-20"]).stdout;
    assert!(
        text.contains(&format!("{LATE_COUNTY} MBDK 县级财政 {LATE_COUNTY}"))
            && text.contains("stuck (滞留), 4 days"),
        "the late county's release is stuck on 2025-07-20:\n{text}"
    );
    let doc = disbursement_document(LATE_COUNTY, 2);
    ledger.ok(&[
        "disburse",
        "--program",
        "MBDK",
        "--county",
        LATE_COUNTY,
        "--document",
        &doc,
        "--date",
        "2025-07-25",
        "--covers",
        "2025-07..2025-12",
    ]);
}

/// After August's payouts the household registry reports a death of 2025-05-10: June to August were
/// paid after it. Recovered: two months come back, one stays receivable.
fn a_death_learnt_late(ledger: &Ledger, people: &[Person]) {
    let d = &people[DIES];
    let deaths = ledger.write(
        "deaths.csv",
        format!(
            "id_number,death_date,source\n{},{DEATH_DATE},公安户籍\n",
            d.id
        ),
    );
    ledger.ok(&["import", "deaths", deaths]);
    let scan = ledger.ok(&[
        "recover",
        "scan",
        "--program",
        "MBDK",
        "--date",
        "2025-08-25",
    ]);
    scan.assert_stdout_has(
        "3 improper payment(s) found; 3 newly booked as receivables, 0 booked before",
    );
    for month in ["2025-06", "2025-07", "2025-08"] {
        assert!(
            scan.stdout
                .lines()
                .any(|l| l.contains(month) && l.contains(&format!("died {DEATH_DATE}"))),
            "scan lacks {month}{}",
            scan.show()
        );
    }
    assert!(
        !scan.stdout.contains(&d.id),
        "the scan shows a full ID number{}",
        scan.show()
    );
    ledger
        .ok(&[
            "recover",
            "scan",
            "--program",
            "MBDK",
            "--date",
            "2025-08-26",
        ])
        .assert_stdout_has("0 newly booked as receivables, 3 booked before");
    ledger
        .ok(&[
            "recover",
            "receive",
            "--program",
            "MBDK",
            "--id",
            &d.id,
            "--unit",
            UNITS[d.unit].0,
            "--amount",
            &yuan(2 * d.monthly),
            "--document",
            "金追〔2025〕1号",
            "--date",
            "2025-09-15",
        ])
        .assert_stdout_has("recovered");
}

/// `hledger balance` of the exported journal equals `balances`.
fn hledger_agrees(ledger: &Ledger, books: &Books) {
    ledger.ok(&["export", "ledger", "--out", "ledger.journal"]);
    let output = Command::new("hledger")
        .arg("-f")
        .arg(ledger.path("ledger.journal"))
        .args(["balance", "--flat", "--no-total", "-O", "csv"])
        .output()
        .unwrap_or_else(|e| {
            panic!("hledger is needed for the cross-check ({e}): .ci/run installs it")
        });
    assert!(
        output.status.success(),
        "hledger refused the export:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let mut theirs = Books::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cells: Vec<String> = line
            .split("\",\"")
            .map(|c| c.trim_matches('"').to_owned())
            .collect();
        let parts: Vec<&str> = cells[0].split(':').collect();
        assert_eq!(parts.len(), 4, "hledger account {line}");
        assert_eq!(parts[1], "MBDK");
        let amount = fen(&cells[1]);
        if amount != 0 {
            theirs.insert((parts[0].into(), parts[2].into(), parts[3].into()), amount);
        }
    }
    assert_eq!(&theirs, books, "hledger's balances differ from earmark's");
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: refused with a clear line, nothing written
// ---------------------------------------------------------------------------------------------

/// A small ledger: the province, its first half released and disbursed, January paid by
/// U44051301 (csv) with one line failed. Returns the January batch id and its bank lines.
fn small_year_start(ledger: &Ledger, people: &[Person]) -> (String, Vec<BankLine>) {
    set_up(ledger, people);
    ledger.ok(&[
        "allocate",
        "--program",
        "MBDK",
        "--level",
        "province",
        "--document",
        PROVINCE_H1,
        "--date",
        "2025-01-02",
        "--covers",
        "2025-01..2025-06",
    ]);
    ledger.ok(&[
        "allocate",
        "--program",
        "MBDK",
        "--level",
        "city",
        "--document",
        "市财〔2025〕1号",
        "--date",
        "2025-01-02",
        "--covers",
        "2025-01..2025-06",
    ]);
    ledger.ok(&[
        "match",
        "--program",
        "MBDK",
        "--document",
        "县财〔2025〕1号",
        "--date",
        "2025-01-03",
        "--covers",
        "2025-01..2025-06",
    ]);
    ledger.ok(&[
        "disburse",
        "--program",
        "MBDK",
        "--county",
        "440513",
        "--document",
        "潮财拨〔2025〕1号",
        "--date",
        "2025-01-06",
        "--covers",
        "2025-01..2025-06",
    ]);
    let run = unit_batch_for_january(ledger, "2025-01-08");
    let (batch, file) = created_batch(&run);
    let lines = read_bank_file(&ledger.read_bytes(&file), "csv");
    assert!(lines.len() >= 3, "a batch of several lines: {lines:?}");
    (batch, lines)
}

/// `payout create` for the third unit's MBDK January, dated `date`, its bank file as CSV.
fn unit_batch_for_january(ledger: &Ledger, date: &str) -> Run {
    ledger.ok(&[
        "payout",
        "create",
        "--unit",
        UNITS[2].0,
        "--program",
        "MBDK",
        "--month",
        "2025-01",
        "--date",
        date,
        "--format",
        "csv",
        "--out",
        "bank",
    ])
}

fn csv_answer(batch: &str, rows: &[(u32, &str, i64)]) -> String {
    let mut text = String::from("batch_id,line_no,status,code,reason,amount\n");
    for (line, status, amount) in rows {
        let (code, reason) = if *status == "failed" {
            ("E02", "账户已销户")
        } else {
            ("", "")
        };
        text.push_str(&format!(
            "{batch},{line},{status},{code},{reason},{}\n",
            yuan(*amount)
        ));
    }
    text
}

/// The bank's success file for every line of `batch` but the last (written as ok.csv): the last
/// line, the others, and the file's name.
fn all_but_the_last_paid<'a>(
    ledger: &Ledger,
    batch: &str,
    lines: &'a [BankLine],
) -> (&'a BankLine, &'a [BankLine], &'static str) {
    let (last, rest) = lines.split_last().expect("lines");
    let ok_rows: Vec<(u32, &str, i64)> =
        rest.iter().map(|l| (l.line_no, "paid", l.amount)).collect();
    (
        last,
        rest,
        ledger.write("ok.csv", csv_answer(batch, &ok_rows)),
    )
}

#[test]
fn bad_bank_answers_are_refused_and_change_nothing() {
    let people = people();
    on_every_backend(|ledger| {
        let (batch, lines) = small_year_start(ledger, &people);
        let all_paid: Vec<(u32, &str, i64)> = lines
            .iter()
            .map(|l| (l.line_no, "paid", l.amount))
            .collect();

        // An answer for a batch never written.
        let unknown = ledger.write(
            "unknown.csv",
            csv_answer("U44051301-MBDK-2025-11-7", &all_paid),
        );
        ledger.refused_unchanged(
            &["payout", "result", unknown, "--date", "2025-01-09"],
            "batch U44051301-MBDK-2025-11-7 is unknown",
        );

        // A line the batch does not have, beside good lines: the whole file refused.
        let mut rows = all_paid.clone();
        rows.push((99, "paid", 90_000));
        let extra = ledger.write("extra_line.csv", csv_answer(&batch, &rows));
        let run = ledger.refused_unchanged(
            &["payout", "result", extra, "--date", "2025-01-09"],
            &format!("batch {batch} has no line 99"),
        );
        run.assert_stderr_has("refused, nothing was recorded");

        // An amount other than the batch line's.
        let mut rows = all_paid.clone();
        rows[0].2 += 1;
        let amount = ledger.write("amount.csv", csv_answer(&batch, &rows));
        ledger.refused_unchanged(
            &["payout", "result", amount, "--date", "2025-01-09"],
            &format!(
                "line {} was {} in the batch, the bank says {}",
                rows[0].0,
                yuan(rows[0].2 - 1),
                yuan(rows[0].2)
            ),
        );

        // The real answer, read twice: the second reading changes nothing and says so.
        let good = ledger.write("good.csv", csv_answer(&batch, &all_paid));
        ledger
            .ok(&["payout", "result", good, "--date", "2025-01-09"])
            .assert_stdout_has(&format!(
                "{} paid, 0 failed, 0 already recorded",
                lines.len()
            ));
        let before = ledger.snapshot();
        ledger
            .ok(&["payout", "result", good, "--date", "2025-01-10"])
            .assert_stdout_has(&format!(
                "0 paid, 0 failed, {} already recorded",
                lines.len()
            ));
        assert_eq!(
            before,
            ledger.snapshot(),
            "reading an answer twice changed the books"
        );

        // A contradicting answer: a paid line now failed.
        let contradiction = ledger.write(
            "contradiction.csv",
            csv_answer(&batch, &[(lines[1].line_no, "failed", lines[1].amount)]),
        );
        ledger.refused_unchanged(
            &["payout", "result", contradiction, "--date", "2025-01-11"],
            &format!(
                "line {} was recorded as paid before; the bank now says otherwise",
                lines[1].line_no
            ),
        );

        // Overdraft: county finance disburses more than it holds.
        let big = ledger.write(
            "big.csv",
            format!("unit_code,amount\n{},1000000.00\n", UNITS[2].0),
        );
        ledger.refused_unchanged(
            &[
                "disburse",
                "--program",
                "MBDK",
                "--county",
                "440513",
                "--document",
                "潮财拨〔2025〕9号",
                "--date",
                "2025-01-20",
                "--covers",
                "2025-01..2025-06",
                "--amounts",
                big,
            ],
            "would overdraw 440513:held",
        );

        // A release document already used, now with another amount.
        let other = ledger.write("other_amounts.csv", "county_code,amount\n440511,100.00\n");
        ledger.refused_unchanged(
            &[
                "allocate",
                "--program",
                "MBDK",
                "--level",
                "province",
                "--document",
                PROVINCE_H1,
                "--date",
                "2025-01-02",
                "--covers",
                "2025-01..2025-06",
                "--amounts",
                other,
            ],
            "already posted with different content",
        );
        // The same release repeated as it was is harmless: nothing new.
        let before = ledger.snapshot();
        ledger
            .ok(&[
                "allocate",
                "--program",
                "MBDK",
                "--level",
                "province",
                "--document",
                PROVINCE_H1,
                "--date",
                "2025-01-02",
                "--covers",
                "2025-01..2025-06",
            ])
            .assert_stdout_has("already posted");
        assert_eq!(
            before,
            ledger.snapshot(),
            "a repeated release changed the books"
        );
    });
}

/// A second batch for a month everyone was paid: refused, no file, and the message says why.
#[test]
fn a_second_batch_for_a_paid_month_is_refused_and_says_why() {
    let people = people();
    on_every_backend(|ledger| {
        let (batch, lines) = small_year_start(ledger, &people);
        let rows: Vec<(u32, &str, i64)> = lines
            .iter()
            .map(|l| (l.line_no, "paid", l.amount))
            .collect();
        let good = ledger.write("good.csv", csv_answer(&batch, &rows));
        ledger.ok(&["payout", "result", good, "--date", "2025-01-09"]);
        let files_before: BTreeSet<_> = std::fs::read_dir(ledger.path("bank"))
            .expect("bank folder")
            .map(|e| e.expect("entry").file_name())
            .collect();
        let run = ledger.refused_unchanged(
            &[
                "payout",
                "create",
                "--unit",
                UNITS[2].0,
                "--program",
                "MBDK",
                "--month",
                "2025-01",
                "--date",
                "2025-01-20",
                "--format",
                "csv",
                "--out",
                "bank",
            ],
            "no batch written",
        );
        let files_after: BTreeSet<_> = std::fs::read_dir(ledger.path("bank"))
            .expect("bank folder")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(files_before, files_after, "a refused batch left a file");
        // The refusal must tell the clerk why nobody is owed: they were all paid already.
        run.assert_stderr_has("already paid for 2025-01");
    });
}

/// Money recovered from a person comes back to the unit; the unit returns it upward. The deadline
/// report must still be produced (the recovered money is not a tranche, but it may leave).
#[test]
fn deadlines_still_report_after_recovered_money_is_returned() {
    let people = people();
    on_every_backend(|ledger| {
        let (batch, lines) = small_year_start(ledger, &people);
        let rows: Vec<(u32, &str, i64)> = lines
            .iter()
            .map(|l| (l.line_no, "paid", l.amount))
            .collect();
        let good = ledger.write("good.csv", csv_answer(&batch, &rows));
        ledger.ok(&["payout", "result", good, "--date", "2025-01-09"]);
        // The first payee had died in December 2024: January was not owed.
        let first = people
            .iter()
            .find(|p| p.id == lines[0].id)
            .expect("payee on the roster");
        let deaths = ledger.write(
            "deaths.csv",
            format!(
                "id_number,death_date,source\n{},2024-12-20,公安户籍\n",
                first.id
            ),
        );
        ledger.ok(&["import", "deaths", deaths]);
        ledger
            .ok(&[
                "recover",
                "scan",
                "--program",
                "MBDK",
                "--date",
                "2025-01-15",
            ])
            .assert_stdout_has("1 newly booked");
        ledger.ok(&[
            "recover",
            "receive",
            "--program",
            "MBDK",
            "--id",
            &first.id,
            "--unit",
            UNITS[2].0,
            "--amount",
            &yuan(first.monthly),
            "--document",
            "潮追〔2025〕1号",
            "--date",
            "2025-01-20",
        ]);
        // The unit returns everything it holds (the rest of the half-year and the recovered money).
        let books = parse_balances(&ledger.balances(&[]));
        let held = books[&(
            "440513".to_owned(),
            UNITS[2].0.to_owned(),
            "held".to_owned(),
        )];
        ledger.ok(&[
            "return",
            "--program",
            "MBDK",
            "--from",
            UNITS[2].0,
            "--amount",
            &yuan(held),
            "--document",
            "潮教退〔2025〕1号",
            "--date",
            "2025-01-25",
        ]);
        let run = ledger.run(&["deadlines", "--as-of", "2025-01-31"]);
        assert_eq!(
            run.code,
            Some(0),
            "the deadline report fails once recovered money is returned{}",
            run.show()
        );
    });
}

/// `disburse` prints each unit's persons and person-months (人月), as `allocate` does.
#[test]
fn disbursement_lines_count_person_months() {
    let people = people();
    on_every_backend(|ledger| {
        set_up(ledger, &people);
        ledger.ok(&[
            "allocate",
            "--program",
            "MBDK",
            "--level",
            "province",
            "--document",
            PROVINCE_H1,
            "--date",
            "2025-01-02",
            "--covers",
            "2025-01..2025-06",
        ]);
        ledger.ok(&[
            "match",
            "--program",
            "MBDK",
            "--document",
            "县财〔2025〕1号",
            "--date",
            "2025-01-03",
            "--covers",
            "2025-01..2025-06",
        ]);
        let run = ledger.ok(&[
            "disburse",
            "--program",
            "MBDK",
            "--county",
            "440511",
            "--document",
            "金财拨〔2025〕1号",
            "--date",
            "2025-01-06",
            "--covers",
            "2025-01..2025-06",
            "--dry-run",
        ]);
        for (i, (code, _, county, _)) in UNITS.iter().enumerate() {
            if *county != "440511" {
                continue;
            }
            let paid: Vec<&Person> = people
                .iter()
                .filter(|p| p.unit == i && p.months.iter().any(|m| *m <= 6))
                .collect();
            let person_months: usize = paid
                .iter()
                .map(|p| p.months.iter().filter(|m| **m <= 6).count())
                .sum();
            let line = run
                .stdout
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(*code))
                .unwrap_or_else(|| panic!("no line for {code}{}", run.show()));
            let cells: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                cells[2],
                paid.len().to_string(),
                "persons of {code}: {line}"
            );
            assert_eq!(
                cells[3],
                person_months.to_string(),
                "person-months of {code}: {line}"
            );
        }
    });
}

/// One row of a CSV report per program and county: column name → value.
fn report_rows(csv: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers().expect("headers").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The reconciliation's row for county 440513's MBDK books, by column.
fn reconciliation_row_440513(ledger: &Ledger) -> HashMap<String, String> {
    let csv = ledger.ok(&["report", "reconciliation"]).stdout;
    report_rows(&csv)
        .into_iter()
        .find(|r| r["program"] == "MBDK" && r["county_code"] == "440513")
        .unwrap_or_else(|| panic!("no 440513 row:\n{csv}"))
}

/// The reconciliation of county 440513's MBDK books: (paid, pending, failed, ties).
fn reconciliation_440513(ledger: &Ledger) -> (String, String, String, String) {
    let row = reconciliation_row_440513(ledger);
    (
        row["paid"].clone(),
        row["pending"].clone(),
        row["failed"].clone(),
        row["ties"].clone(),
    )
}

/// The bank files a folder of the test holds.
fn files_in(ledger: &Ledger, folder: &str) -> usize {
    std::fs::read_dir(ledger.path(folder)).map_or(0, |d| d.count())
}

/// `payout retry BATCH --date DATE`, its bank file as CSV into `bank/`.
fn retry_args<'a>(batch: &'a str, date: &'a str) -> [&'a str; 9] {
    [
        "payout", "retry", batch, "--date", date, "--format", "csv", "--out", "bank",
    ]
}

/// 补发: `payout retry BATCH` pays again, in a new batch of the same unit and month, exactly the
/// lines the bank failed. It refuses, naming why and changing nothing, a batch it does not know, a
/// batch the bank has failed none of, and a second retry while the first is still with the bank.
#[test]
fn payout_retry_pays_again_only_the_lines_the_bank_failed() {
    let people = people();
    on_every_backend(|ledger| {
        let (batch, lines) = small_year_start(ledger, &people);
        assert!(lines.len() >= 3, "{lines:?}");
        let total: i64 = lines.iter().map(|l| l.amount).sum();

        // What a refused retry must leave as it was: the balances and the bank files.
        let state = |ledger: &Ledger| (ledger.snapshot(), files_in(ledger, "bank"));
        let before = state(ledger);
        ledger
            .refused(&retry_args(&batch, "2025-01-09"))
            .assert_stderr_has(&format!(
                "batch {batch}: the bank failed none of its lines (or has not answered yet)"
            ));
        ledger
            .refused(&retry_args("U0-MBDK-2025-01-9", "2025-01-09"))
            .assert_stderr_has("no payout batch U0-MBDK-2025-01-9");
        assert_eq!(state(ledger), before, "a refused retry changes nothing");

        // The bank fails the first two lines and pays the rest.
        let rows: Vec<(u32, &str, i64)> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l.line_no, if i < 2 { "failed" } else { "paid" }, l.amount))
            .collect();
        let answer = ledger.write("answer.csv", csv_answer(&batch, &rows));
        ledger
            .ok(&["payout", "result", answer, "--date", "2025-01-09"])
            .assert_stdout_has(&format!("{} paid, 2 failed", lines.len() - 2));

        let retried_run = ledger.ok(&retry_args(&batch, "2025-01-12"));
        retried_run.assert_stdout_has("2 line(s)");
        retried_run.assert_stdout_has("(2 retries of failed lines)");
        let (retry, file) = created_batch(&retried_run);
        assert_ne!(retry, batch);
        let retried = read_bank_file(&ledger.read_bytes(&file), "csv");
        let key = |l: &BankLine| (l.id.clone(), l.amount);
        assert_eq!(
            retried.iter().map(key).collect::<Vec<_>>(),
            lines[..2].iter().map(key).collect::<Vec<_>>(),
            "the retry pays the failed lines' people, the same amounts"
        );

        // While the retry is with the bank, the same person-months are not paid a third time.
        let before = state(ledger);
        ledger
            .refused(&retry_args(&batch, "2025-01-13"))
            .assert_stderr_has("owes nobody for 2025-01");
        assert_eq!(state(ledger), before, "a refused retry changes nothing");

        // The bank pays the retry: the month is paid in full, once, and the books tie.
        let rows: Vec<(u32, &str, i64)> = retried
            .iter()
            .map(|l| (l.line_no, "paid", l.amount))
            .collect();
        let answer = ledger.write("retry-answer.csv", csv_answer(&retry, &rows));
        ledger
            .ok(&["payout", "result", answer, "--date", "2025-01-13"])
            .assert_stdout_has("2 paid, 0 failed");
        let (paid, pending, failed, ties) = reconciliation_440513(ledger);
        assert_eq!(ties, "OK");
        assert_eq!(paid, yuan(total));
        assert_eq!(pending, "0.00");
        assert_eq!(failed, yuan(lines[0].amount + lines[1].amount));
        assert_eq!(reconciliation_row_440513(ledger)["accrued"], yuan(total));
        ledger
            .refused(&retry_args(&batch, "2025-01-14"))
            .assert_stderr_has("already paid for 2025-01");
    });
}

/// A batch is one pending entry: the bank's first answer posts it, each failed line's money comes
/// back by an entry of its own, a line no answer has named yet is pending (sent) and the books tie
/// at every step; a batch the bank rejects whole is voided and moves nothing.
#[test]
fn a_batch_is_settled_by_its_first_answer_and_its_failed_lines_come_back() {
    let people = people();
    on_every_backend(|ledger| {
        let (batch, lines) = small_year_start(ledger, &people);
        let total: i64 = lines.iter().map(|l| l.amount).sum();
        // The unit's held account as `balances` lists it (balance and reserved).
        let unit_held = |ledger: &Ledger| -> String {
            let csv = ledger.balances(&["--all"]);
            let lines: Vec<&str> = csv
                .lines()
                .filter(|l| l.contains(UNITS[2].0) && l.contains("held"))
                .collect();
            assert_eq!(lines.len(), 1, "{csv}");
            lines[0].to_string()
        };
        let (paid, pending, _, ties) = reconciliation_440513(ledger);
        assert_eq!((paid.as_str(), ties.as_str()), ("0.00", "OK"));
        assert_eq!(pending, yuan(total));
        let reserved = unit_held(ledger);

        // The bank's success file first, naming every line but the last.
        let (last, rest, ok) = all_but_the_last_paid(ledger, &batch, &lines);
        ledger
            .ok(&["payout", "result", ok, "--date", "2025-01-09"])
            .assert_stdout_has(&format!("{} paid, 0 failed", rest.len()));
        let (paid, pending, failed, ties) = reconciliation_440513(ledger);
        assert_eq!(
            ties, "OK",
            "the books tie with a line sent and not answered"
        );
        assert_eq!(paid, yuan(total - last.amount));
        assert_eq!(pending, yuan(last.amount), "the unanswered line is pending");
        assert_eq!(failed, "0.00");
        assert_ne!(
            unit_held(ledger),
            reserved,
            "the batch's money left the unit"
        );

        // Then the failure file: the last line failed, its money back with the unit.
        let before = unit_held(ledger);
        let bad = ledger.write(
            "bad.csv",
            csv_answer(&batch, &[(last.line_no, "failed", last.amount)]),
        );
        ledger
            .ok(&["payout", "result", bad, "--date", "2025-01-10"])
            .assert_stdout_has("0 paid, 1 failed");
        let (paid, pending, failed, ties) = reconciliation_440513(ledger);
        assert_eq!(ties, "OK");
        assert_eq!(paid, yuan(total - last.amount));
        assert_eq!(pending, "0.00");
        assert_eq!(failed, yuan(last.amount));
        assert_ne!(
            unit_held(ledger),
            before,
            "the failed line's money came back"
        );
        let trace = ledger
            .ok(&[
                "trace",
                "--entry",
                &format!("failed:payment:{batch}:{}", last.line_no),
            ])
            .stdout;
        assert!(trace.contains(&format!("payment:{batch}")), "{trace}");

        // The month's next batch pays the failed line again, and only it.
        let before_retry = unit_held(ledger);
        let run = unit_batch_for_january(ledger, "2025-01-12");
        let (retry, file) = created_batch(&run);
        let retried = read_bank_file(&ledger.read_bytes(&file), "csv");
        assert_eq!(retried.len(), 1, "{retried:?}");
        assert_eq!(retried[0].amount, last.amount);

        // The bank rejects the retry batch whole: its entry is voided, nothing moved.
        let (_, pending, _, ties) = reconciliation_440513(ledger);
        assert_eq!(
            (pending, ties.as_str()),
            (yuan(last.amount), "OK"),
            "the retry is reserved"
        );
        assert_eq!(
            reconciliation_row_440513(ledger)["accrued"],
            yuan(total),
            "a person-month is owed once, whatever its attempts: the retry's claim replaces the failed one's"
        );
        let rejected = ledger.write(
            "rejected.csv",
            csv_answer(&retry, &[(retried[0].line_no, "failed", last.amount)]),
        );
        ledger
            .ok(&["payout", "result", rejected, "--date", "2025-01-13"])
            .assert_stdout_has("0 paid, 1 failed");
        let (_, pending, failed, ties) = reconciliation_440513(ledger);
        assert_eq!(ties, "OK");
        assert_eq!(pending, "0.00");
        assert_eq!(failed, yuan(2 * last.amount));
        let trace = ledger
            .ok(&["trace", "--entry", &format!("void:payment:{retry}")])
            .stdout;
        assert!(trace.contains(&format!("payment:{retry}")), "{trace}");
        assert_eq!(
            unit_held(ledger),
            before_retry,
            "a voided batch leaves the unit's funds as they were"
        );
        assert!(
            ledger
                .refused(&[
                    "trace",
                    "--entry",
                    &format!("failed:payment:{retry}:{}", retried[0].line_no)
                ])
                .stderr
                .contains("no entry with key"),
            "a rejected batch's lines need no money back"
        );
    });
}

#[test]
fn answer_files_read_together_are_one_answer_or_none() {
    let people = people();
    on_every_backend(|ledger| {
        let (batch, lines) = small_year_start(ledger, &people);
        let total: i64 = lines.iter().map(|l| l.amount).sum();
        let (last, rest, ok) = all_but_the_last_paid(ledger, &batch, &lines);
        let bad = ledger.write(
            "bad.csv",
            csv_answer(&batch, &[(last.line_no, "failed", last.amount)]),
        );
        fn result<'a>(files: &[&'a str]) -> Vec<&'a str> {
            let mut args = vec!["payout", "result"];
            args.extend(files);
            args.extend(["--date", "2025-01-09"]);
            args
        }

        // Refused as a whole, the good success file with them: a file of another batch,
        let other = ledger.write(
            "other.csv",
            csv_answer("U44051301-MBDK-2025-11-7", &[(1, "failed", 100)]),
        );
        ledger.refused_unchanged(
            &result(&[ok, other]),
            &format!("other.csv: answers batch U44051301-MBDK-2025-11-7, but ok.csv answers batch {batch}"),
        );
        // a line both files answer,
        let twice = ledger.write(
            "twice.csv",
            csv_answer(&batch, &[(rest[0].line_no, "failed", rest[0].amount)]),
        );
        ledger
            .refused_unchanged(
                &result(&[ok, twice]),
                &format!(
                    "twice.csv row 2: line {} is answered twice (also by ok.csv row 2)",
                    rest[0].line_no
                ),
            )
            .assert_stderr_has("ok.csv, twice.csv: refused, nothing was recorded");
        // and a wrong amount in the failure file.
        let wrong = ledger.write(
            "wrong.csv",
            csv_answer(&batch, &[(last.line_no, "failed", last.amount + 1)]),
        );
        ledger.refused_unchanged(
            &result(&[ok, wrong]),
            &format!("wrong.csv row 2, column amount: line {}", last.line_no),
        );

        // The pair: one answer, the batch posted and the failed line's money back with the unit.
        ledger.ok(&result(&[ok, bad])).assert_stdout_has(&format!(
            "batch {batch}: {} paid, 1 failed, 0 already recorded",
            rest.len()
        ));
        let (paid, pending, failed, ties) = reconciliation_440513(ledger);
        assert_eq!(ties, "OK");
        assert_eq!(paid, yuan(total - last.amount));
        assert_eq!(pending, "0.00");
        assert_eq!(failed, yuan(last.amount));
        for key in [
            format!("post:payment:{batch}"),
            format!("failed:payment:{batch}:{}", last.line_no),
        ] {
            ledger.ok(&["trace", "--entry", &key]);
        }

        // Read again, together or one at a time, the pair changes nothing.
        let before = ledger.snapshot();
        ledger.ok(&result(&[bad, ok])).assert_stdout_has(&format!(
            "0 paid, 0 failed, {} already recorded",
            lines.len()
        ));
        ledger
            .ok(&result(&[bad]))
            .assert_stdout_has("0 paid, 0 failed, 1 already recorded");
        assert_eq!(
            before,
            ledger.snapshot(),
            "reading an answer again changed the books"
        );
    });
}
