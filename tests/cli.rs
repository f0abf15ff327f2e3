//! The `earmark` binary as a user meets it: every test runs the real built executable against a fresh
//! database on every backend (SQLite always, PostgreSQL when `EARMARK_TEST_PG` is set), writes its input
//! files into the test's own folder, and checks exit code, the messages and what was (not) written.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{Ledger, Run, on_every_backend};

const HEADER: &str = "entry_key,date,county_code,program,account,amount,memo\n";
const UNITS_HEADER: &str = "unit_code,name,county_code,township_code,kind\n";
const BALANCES_HEADER: &str = "county_code,program,owner,kind,balance\n";

/// Money from the province into 440511's MBDK books, on to unit U-A; a separate XQZZ flow in 441900
/// (a city without districts) and in 440511 from the city's budget.
const FUNDING: &str = "\
F1,2025-01-15,440511,MBDK,440511:held,1000.00,省级下达
F1,2025-01-15,440511,MBDK,440000:budget,-1000.00,
F2,2025-02-10,440511,MBDK,U-A:held,300.50,拨付学校
F2,2025-02-10,440511,MBDK,440511:held,-300.50,
F3,2025-02-20,441900,XQZZ,U-B:held,88.00,
F3,2025-02-20,441900,XQZZ,440000:budget,-88.00,
F4,2025-03-01,440511,XQZZ,440511:held,20,
F4,2025-03-01,440511,XQZZ,440500:budget,-20,
";

/// `balances --format csv` after FUNDING.
const FUNDED_BALANCES: &str = "\
county_code,program,owner,kind,balance
440511,MBDK,440000,budget,-1000.00
440511,MBDK,440511,held,699.50
440511,MBDK,U-A,held,300.50
440511,XQZZ,440500,budget,-20.00
440511,XQZZ,440511,held,20.00
441900,XQZZ,440000,budget,-88.00
441900,XQZZ,U-B,held,88.00
";

/// A good entry that, placed first in a bad file, must not survive the file's refusal (rows 2-3).
const GOOD_FIRST: &str = "\
G1,2025-03-02,440511,MBDK,U-A:paid,100,第一笔
G1,2025-03-02,440511,MBDK,U-A:held,-100,
";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// This suite's steps on top of the shared harness (tests/common).
impl Ledger {
    /// A posting file: the header and `rows`.
    fn postings<'a>(&self, name: &'a str, rows: &str) -> &'a str {
        self.write(name, format!("{HEADER}{rows}"))
    }

    /// `earmark init`, and units U-A (440511, township 440511001) and U-B (441900).
    fn initialise(&self) {
        self.ok(&["init"]);
        let units = self.write(
            "units.csv",
            format!("{UNITS_HEADER}U-A,金平区某小学,440511,440511001,school\nU-B,东莞某幼儿园,441900,,kindergarten\n"),
        );
        self.ok(&["import", "units", units]);
    }

    /// Initialised and FUNDING posted.
    fn fund(&self) {
        self.initialise();
        let file = self.postings("funding.csv", FUNDING);
        self.ok(&["post", file]);
        assert_eq!(
            self.balances(&[]),
            FUNDED_BALANCES,
            "[{:?}] balances after funding",
            self.kind()
        );
    }

    /// Posts `rows` (as bad.csv) and demands a refusal (exit 1) that wrote nothing.
    fn post_refused(&self, rows: &str) -> Run {
        let before = self.snapshot();
        let file = self.postings("bad.csv", rows);
        let run = self.refused(&["post", file]);
        run.assert_stderr_line_starts_with("bad.csv: refused, nothing was posted");
        let after = self.snapshot();
        assert_eq!(
            before,
            after,
            "a refused post changed the books{}",
            run.show()
        );
        run
    }
}

/// An initialised ledger with units U-A and U-B.
fn on_every_initialised_backend(test: impl Fn(&Ledger)) {
    on_every_backend(|l| {
        l.initialise();
        test(l);
    });
}

/// An initialised ledger with FUNDING posted.
fn on_every_funded_backend(test: impl Fn(&Ledger)) {
    on_every_backend(|l| {
        l.fund();
        test(l);
    });
}

/// `county:program:owner:kind` → balance in fen, zero balances dropped.
fn balances_by_account(csv_text: &str) -> BTreeMap<String, i64> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let mut map = BTreeMap::new();
    for record in reader.records() {
        let r = record.expect("balances csv row");
        let fen = yuan_to_fen(&r[4]);
        if fen != 0 {
            map.insert(format!("{}:{}:{}:{}", &r[0], &r[1], &r[2], &r[3]), fen);
        }
    }
    map
}

/// "-1,000.50" or "12 CNY" → fen.
fn yuan_to_fen(text: &str) -> i64 {
    let cleaned: String = text
        .trim()
        .trim_end_matches("CNY")
        .trim()
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.as_str()),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(
        frac.len() <= 2,
        "amount {text:?} has more than two decimals"
    );
    let whole: i64 = whole.parse().unwrap_or_else(|_| panic!("amount {text:?}"));
    let frac: i64 = format!("{frac:0<2}")
        .parse()
        .unwrap_or_else(|_| panic!("amount {text:?}"));
    let fen = whole * 100 + frac;
    if negative { -fen } else { fen }
}

// ---------------------------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------------------------

#[test]
fn init_twice_adds_nothing_the_second_time() {
    on_every_backend(|l| {
        let first = l.ok(&["init"]);
        first.assert_stdout_has("initialised");
        assert!(
            !first.stdout.contains(": 0 regions"),
            "the first init loads regions{}",
            first.show()
        );
        l.ok(&["init"])
            .assert_stdout_has("0 regions, 0 calendar days, 0 programs added");
        assert_eq!(l.balances(&["--all"]), BALANCES_HEADER);
    });
}

#[test]
fn every_command_before_init_says_to_run_earmark_init() {
    on_every_backend(|l| {
        let postings = l.postings("p.csv", FUNDING);
        let units = l.write("u.csv", format!("{UNITS_HEADER}U-A,x,440511,,school\n"));
        let commands: [&[&str]; 9] = [
            &["balances"],
            &["check"],
            &["verify"],
            &["post", postings],
            &["import", "units", units],
            &["export", "ledger", "--out", "j.journal"],
            &["reverse", "F1", "--reason", "typo"],
            &["pending", "post", "F1"],
            &["pending", "void", "F1"],
        ];
        for args in commands {
            let run = l.run(args);
            assert!(
                run.code.is_some_and(|c| c != 0 && c != 2),
                "a command before init must be refused (not a usage error){}",
                run.show()
            );
            run.assert_stderr_has("run `earmark init`");
        }
        // Nothing above left the database half made: init still works, and the books are empty.
        l.ok(&["init"]);
        assert_eq!(l.balances(&["--all"]), BALANCES_HEADER);
    });
}

// ---------------------------------------------------------------------------------------------
// import units
// ---------------------------------------------------------------------------------------------

#[test]
fn import_units_registers_a_good_file_once() {
    on_every_backend(|l| {
        l.ok(&["init"]);
        let file = l.write(
            "units.csv",
            format!("{UNITS_HEADER}U-A,金平区某小学,440511,440511001,school\nu-b,东莞某幼儿园,441900,,kindergarten\n"),
        );
        l.ok(&["import", "units", file])
            .assert_stdout_has("registered 2 new units from units.csv (0 already registered)");
        l.ok(&["import", "units", file])
            .assert_stdout_has("registered 0 new units from units.csv (2 already registered)");
        // Registered units may hold accounts in their county (codes are case-insensitive).
        let post = l.postings(
            "p.csv",
            "A,2025-01-15,440511,MBDK,U-A:held,5,\nA,2025-01-15,440511,MBDK,440000:budget,-5,\n\
             B,2025-01-15,441900,MBDK,U-B:held,7,\nB,2025-01-15,441900,MBDK,440000:budget,-7,\n",
        );
        l.ok(&["post", post]);
        assert_eq!(
            l.balances(&[]),
            format!(
                "{BALANCES_HEADER}440511,MBDK,440000,budget,-5.00\n440511,MBDK,U-A,held,5.00\n\
                 441900,MBDK,440000,budget,-7.00\n441900,MBDK,U-B,held,7.00\n"
            )
        );
    });
}

/// Imports a units file whose row 3 is bad (row 2 is good) and checks the refusal: exit 1, one line
/// naming file, row and column, and neither unit registered.
fn assert_units_file_refused(bad_row: &str, column: &str, rule: &str) {
    on_every_backend(|l| {
        l.ok(&["init"]);
        let file = l.write(
            "units.csv",
            format!("{UNITS_HEADER}U-GOOD,好单位,440511,440511001,school\n{bad_row}\n"),
        );
        let run = l.refused(&["import", "units", file]);
        run.assert_stderr_line_starts_with(&format!("units.csv row 3, column {column}: {rule}"));
        run.assert_stderr_line_starts_with("units.csv: refused, nothing was imported");
        let problem_lines = run.stderr.lines().filter(|l| l.contains(" row ")).count();
        assert_eq!(
            problem_lines,
            1,
            "one line for the one bad row{}",
            run.show()
        );
        // The good row was not registered either: posting to U-GOOD is refused.
        let post = l.postings(
            "p.csv",
            "A,2025-01-15,440511,MBDK,U-GOOD:held,5,\nA,2025-01-15,440511,MBDK,440000:budget,-5,\n",
        );
        l.refused(&["post", post])
            .assert_stderr_has("U-GOOD is no region, registered unit or person on a roster");
        assert_eq!(l.snapshot(), BALANCES_HEADER);
    });
}

#[test]
fn import_units_refuses_a_unit_code_that_is_a_region_code() {
    assert_units_file_refused(
        "440511,金平区,440511,,school",
        "unit_code",
        "440511 is a region code",
    );
}

#[test]
fn import_units_refuses_an_unknown_county() {
    assert_units_file_refused(
        "U-X,某学校,999999,,school",
        "county_code",
        "999999 is not a county",
    );
}

#[test]
fn import_units_refuses_a_township_outside_the_county() {
    // 440507001 is a township of 440507 (龙湖区), not of 440511 (金平区).
    assert_units_file_refused(
        "U-X,某学校,440511,440507001,school",
        "township_code",
        "440507001 is not a township of 440511",
    );
}

// ---------------------------------------------------------------------------------------------
// import regions, import calendar
// ---------------------------------------------------------------------------------------------

#[test]
fn imported_regions_open_a_new_county_for_posting() {
    on_every_backend(|l| {
        l.ok(&["init"]);
        let post = l.postings(
            "gx.csv",
            "GX1,2025-04-01,450102,MBDK,450102:held,50,自治区下达\n\
             GX1,2025-04-01,450102,MBDK,450000:budget,-50,\n\
             GX2,2025-04-02,450102,MBDK,450100:budget,-20,\n\
             GX2,2025-04-02,450102,MBDK,450102:held,20,\n",
        );
        l.refused(&["post", post])
            .assert_stderr_has("\"450102\" is not a county");
        let regions = l.write(
            "regions.csv",
            "code,name,level,parent_code\n450000,广西壮族自治区,province,\n450100,南宁市,city,450000\n450102,兴宁区,county,450100\n",
        );
        l.ok(&["import", "regions", regions])
            .assert_stdout_has("imported 3 regions from regions.csv");
        l.ok(&["post", post]);
        assert_eq!(
            l.balances(&["--county", "450102"]),
            format!(
                "{BALANCES_HEADER}450102,MBDK,450000,budget,-50.00\n450102,MBDK,450100,budget,-20.00\n\
                 450102,MBDK,450102,held,70.00\n"
            )
        );
    });
}

#[test]
fn import_regions_refuses_an_unknown_parent_naming_file_row_and_column() {
    on_every_backend(|l| {
        l.ok(&["init"]);
        let bad = l.write(
            "regions.csv",
            "code,name,level,parent_code\n450000,广西壮族自治区,province,\n460100,海口市,city,460000\n",
        );
        l.refused(&["import", "regions", bad]).assert_stderr_line_starts_with(
            "regions.csv row 3, column parent_code: parent 460000 is not in this file nor loaded before",
        );
        // Nothing was imported: the good province row alone imports now (it would be "listed twice"
        // had the refused file stored it).
        let good = l.write(
            "good.csv",
            "code,name,level,parent_code\n450000,广西壮族自治区,province,\n",
        );
        l.ok(&["import", "regions", good])
            .assert_stdout_has("imported 1 regions from good.csv");
    });
}

#[test]
fn import_calendar_adds_a_new_year() {
    on_every_backend(|l| {
        l.ok(&["init"]);
        let file = l.write(
            "cal2027.csv",
            "date,kind,name\n2027-01-01,holiday,元旦\n2027-02-06,workday,春节调休\n2027-02-08,holiday,春节\n",
        );
        l.ok(&["import", "calendar", file])
            .assert_stdout_has("imported 3 calendar days from cal2027.csv (years 2027)");
        l.ok(&["import", "calendar", file])
            .assert_stdout_has("imported 0 calendar days from cal2027.csv (years 2027)");
    });
}

#[test]
fn import_calendar_refuses_a_holiday_on_a_weekend() {
    on_every_backend(|l| {
        l.ok(&["init"]);
        // 2027-01-02 is a Saturday.
        let bad = l.write(
            "cal.csv",
            "date,kind,name\n2027-01-01,holiday,元旦\n2027-01-02,holiday,元旦\n",
        );
        l.refused(&["import", "calendar", bad])
            .assert_stderr_line_starts_with("cal.csv row 3, column kind: 2027-01-02 is a Sat");
        // Nothing was stored: the good row still counts as new.
        let good = l.write("good.csv", "date,kind,name\n2027-01-01,holiday,元旦\n");
        l.ok(&["import", "calendar", good])
            .assert_stdout_has("imported 1 calendar days from good.csv (years 2027)");
    });
}

// ---------------------------------------------------------------------------------------------
// post and balances
// ---------------------------------------------------------------------------------------------

#[test]
fn post_of_a_good_file_shows_in_balances_csv_exactly() {
    on_every_initialised_backend(|l| {
        let file = l.postings("funding.csv", FUNDING);
        l.ok(&["post", file]).assert_stdout_has(
            "funding.csv: posted 4 entries (8 postings); 0 already posted before",
        );
        assert_eq!(l.balances(&[]), FUNDED_BALANCES);
        assert_eq!(
            l.balances(&["--all"]),
            FUNDED_BALANCES,
            "no zero balances yet"
        );
    });
}

#[test]
fn balances_json_parses_and_agrees_with_csv() {
    on_every_funded_backend(|l| {
        let run = l.ok(&["balances", "--format", "json"]);
        let json: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("balances json does not parse: {e}{}", run.show()));
        let rows = json
            .as_array()
            .unwrap_or_else(|| panic!("not an array{}", run.show()));
        let mut from_json = String::from(BALANCES_HEADER);
        for row in rows {
            let text = |k: &str| {
                row[k]
                    .as_str()
                    .unwrap_or_else(|| panic!("{k} is not a string in {row}"))
                    .to_string()
            };
            let balance = text("balance");
            assert_eq!(
                row["balance_fen"].as_i64(),
                Some(yuan_to_fen(&balance)),
                "{row}"
            );
            assert_eq!(row["reserved_fen"].as_i64(), Some(0), "{row}");
            from_json.push_str(&format!(
                "{},{},{},{},{}\n",
                text("county_code"),
                text("program"),
                text("owner"),
                text("kind"),
                balance
            ));
        }
        assert_eq!(from_json, FUNDED_BALANCES);
    });
}

#[test]
fn balances_as_of_shows_the_books_at_the_end_of_that_day() {
    on_every_funded_backend(|l| {
        assert_eq!(l.balances(&["--as-of", "2025-01-14"]), BALANCES_HEADER);
        assert_eq!(
            l.balances(&["--as-of", "2025-01-15"]),
            format!(
                "{BALANCES_HEADER}440511,MBDK,440000,budget,-1000.00\n440511,MBDK,440511,held,1000.00\n"
            )
        );
        assert_eq!(
            l.balances(&["--as-of", "2025-02-19"]),
            format!(
                "{BALANCES_HEADER}440511,MBDK,440000,budget,-1000.00\n440511,MBDK,440511,held,699.50\n\
                 440511,MBDK,U-A,held,300.50\n"
            )
        );
        assert_eq!(l.balances(&["--as-of", "2025-03-01"]), FUNDED_BALANCES);
    });
}

#[test]
fn balances_filter_by_county_and_program() {
    on_every_funded_backend(|l| {
        assert_eq!(
            l.balances(&["--county", "441900"]),
            format!(
                "{BALANCES_HEADER}441900,XQZZ,440000,budget,-88.00\n441900,XQZZ,U-B,held,88.00\n"
            )
        );
        let xqzz = format!(
            "{BALANCES_HEADER}440511,XQZZ,440500,budget,-20.00\n440511,XQZZ,440511,held,20.00\n\
             441900,XQZZ,440000,budget,-88.00\n441900,XQZZ,U-B,held,88.00\n"
        );
        assert_eq!(l.balances(&["--program", "XQZZ"]), xqzz);
        assert_eq!(
            l.balances(&["--program", "xqzz"]),
            xqzz,
            "program codes are case-insensitive"
        );
        assert_eq!(
            l.balances(&["--county", "440511", "--program", "XQZZ"]),
            format!(
                "{BALANCES_HEADER}440511,XQZZ,440500,budget,-20.00\n440511,XQZZ,440511,held,20.00\n"
            )
        );
        assert_eq!(l.balances(&["--county", "440507"]), BALANCES_HEADER);
    });
}

#[test]
fn posting_the_same_file_twice_changes_nothing() {
    on_every_funded_backend(|l| {
        let before = l.snapshot();
        l.ok(&["post", "funding.csv"]).assert_stdout_has(
            "funding.csv: posted 0 entries (0 postings); 4 already posted before (nothing changed)",
        );
        assert_eq!(l.snapshot(), before);
        assert_eq!(l.balances(&[]), FUNDED_BALANCES);
    });
}

// ---------------------------------------------------------------------------------------------
// Refusals: exit 1, a line naming file and row (and column), nothing written
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unbalanced_entry_is_refused_naming_its_rows() {
    on_every_funded_backend(|l| {
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,U-A:paid,10,\nB1,2025-03-02,440511,MBDK,U-A:held,-9.99,\n"
        ))
        .assert_stderr_line_starts_with(
            "bad.csv rows 4-5: entry \"B1\" does not balance: its postings sum to 0.01, they must sum to 0.00",
        );
    });
}

#[test]
fn an_entry_with_two_programs_is_refused_at_the_program_cell() {
    on_every_funded_backend(|l| {
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,U-A:paid,10,\nB1,2025-03-02,440511,XQZZ,440511:held,-10,\n"
        ))
        .assert_stderr_line_starts_with("bad.csv row 5, column program: entry \"B1\" began in row 4 with program MBDK");
    });
}

#[test]
fn an_overdraft_of_a_held_account_is_refused() {
    on_every_funded_backend(|l| {
        // U-A holds 300.50; G1 spends 100 of it first, so 250 more would overdraw it.
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,U-A:paid,250,\nB1,2025-03-02,440511,MBDK,U-A:held,-250,\n"
        ))
        .assert_stderr_line_starts_with("bad.csv rows 4-5: refused (E1016): entry \"B1\" would overdraw U-A:held")
        .assert_stderr_has("available 200.50, the entry needs 250.00");
    });
}

#[test]
fn an_unknown_county_is_refused() {
    on_every_funded_backend(|l| {
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,999999,MBDK,440000:budget,-10,\nB1,2025-03-02,999999,MBDK,999999:held,10,\n"
        ))
        .assert_stderr_line_starts_with("bad.csv rows 4-5: refused (E1014): entry \"B1\": \"999999\" is not a county");
    });
}

#[test]
fn an_unregistered_unit_is_refused_as_account_owner() {
    on_every_funded_backend(|l| {
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,U-Z:held,10,\nB1,2025-03-02,440511,MBDK,440511:held,-10,\n"
        ))
        .assert_stderr_line_starts_with("bad.csv rows 4-5: refused (E1015): entry \"B1\": account U-Z:held is not open in county 440511")
        .assert_stderr_has("U-Z is no region, registered unit or person on a roster");
    });
}

#[test]
fn another_countys_unit_is_refused_as_account_owner() {
    on_every_funded_backend(|l| {
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,U-B:held,10,\nB1,2025-03-02,440511,MBDK,440511:held,-10,\n"
        ))
        .assert_stderr_line_starts_with("bad.csv rows 4-5: refused (E1015): entry \"B1\": account U-B:held is not open in county 440511")
        .assert_stderr_has("U-B belongs to county 441900");
    });
}

#[test]
fn a_region_outside_the_countys_chain_is_refused_as_account_owner() {
    on_every_funded_backend(|l| {
        // 440103 (荔湾区, Guangzhou) is neither 440511 nor Shantou nor the province.
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,440103:held,10,\nB1,2025-03-02,440511,MBDK,440511:held,-10,\n"
        ))
        .assert_stderr_line_starts_with("bad.csv rows 4-5: refused (E1015): entry \"B1\": account 440103:held is not open in county 440511")
        .assert_stderr_has("is not this county nor a level above it");
    });
}

#[test]
fn an_unknown_account_kind_is_refused_at_the_account_cell() {
    on_every_funded_backend(|l| {
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,U-A:held,-10,\nB1,2025-03-02,440511,MBDK,U-A:spent,10,\n"
        ))
        .assert_stderr_line_starts_with("bad.csv row 5, column account: account \"U-A:spent\": unknown account kind \"spent\"");
    });
}

#[test]
fn a_bad_first_row_does_not_blame_the_good_rows_of_its_entry() {
    on_every_funded_backend(|l| {
        // Row 4 is bad; row 5 is fine. The user should be told about row 4 only (or that row 5
        // belongs to an entry with a bad row), not that the entry "has 1 posting(s)".
        let run = l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,U-A:spent,10,\nB1,2025-03-02,440511,MBDK,U-A:held,-10,\n"
        ));
        run.assert_stderr_line_starts_with(
            "bad.csv row 4, column account: account \"U-A:spent\": unknown account kind",
        );
        assert!(
            !run.stderr.contains("needs at least two"),
            "row 5 is blamed for its entry losing row 4{}",
            run.show()
        );
    });
}

#[test]
fn malformed_amounts_are_refused_at_the_amount_cell() {
    on_every_funded_backend(|l| {
        for (amount, rule) in [
            ("12.345", "has more than two decimal places"),
            (
                "\"1,23.00\"",
                "thousands separators must separate groups of exactly three digits",
            ),
            ("abc", "is not a valid amount"),
        ] {
            let shown = amount.trim_matches('"');
            l.post_refused(&format!(
                "{GOOD_FIRST}B1,2025-03-02,440511,MBDK,U-A:held,-1.23,\nB1,2025-03-02,440511,MBDK,U-A:paid,{amount},\n"
            ))
            .assert_stderr_line_starts_with(&format!("bad.csv row 5, column amount: amount \"{shown}\""))
            .assert_stderr_has(rule);
        }
    });
}

#[test]
fn an_impossible_date_is_refused_at_the_date_cell() {
    on_every_funded_backend(|l| {
        l.post_refused(&format!(
            "{GOOD_FIRST}B1,2025-02-30,440511,MBDK,U-A:paid,1,\nB1,2025-02-30,440511,MBDK,U-A:held,-1,\n"
        ))
        .assert_stderr_line_starts_with(
            "bad.csv row 4, column date: \"2025-02-30\" is not a real date written YYYY-MM-DD",
        );
    });
}

#[test]
fn a_reused_key_with_other_content_is_refused() {
    on_every_funded_backend(|l| {
        l.post_refused(&format!(
            "{GOOD_FIRST}F1,2025-01-15,440511,MBDK,440511:held,1000.01,\nF1,2025-01-15,440511,MBDK,440000:budget,-1000.01,\n"
        ))
        .assert_stderr_line_starts_with(
            "bad.csv rows 4-5: refused (E1017): entry \"F1\" was already posted with different content",
        );
    });
}

#[test]
fn a_binary_file_is_refused_by_name() {
    on_every_funded_backend(|l| {
        let before = l.snapshot();
        let file = l.write(
            "photo.csv",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xff\x00\x81\x00\x80\xfe",
        );
        l.refused(&["post", file])
            .assert_stderr_line_starts_with("photo.csv: is neither UTF-8 nor GBK text");
        assert_eq!(l.snapshot(), before);
    });
}

#[test]
fn a_gbk_file_is_read_and_its_chinese_memo_kept() {
    on_every_funded_backend(|l| {
        let text = format!(
            "{HEADER}K1,2025-05-06,440511,MBDK,U-A:paid,1.50,省级下达\nK1,2025-05-06,440511,MBDK,U-A:held,-1.50,\n"
        );
        let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
        assert!(!unmappable);
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "the test file must not be UTF-8"
        );
        let file = l.write("gbk.csv", &bytes);
        l.ok(&["post", file])
            .assert_stdout_has("gbk.csv: posted 1 entries (2 postings)")
            .assert_stderr_has("gbk.csv was read as GBK");
        l.ok(&["export", "ledger", "--out", "ledger.journal"]);
        let journal = l.read("ledger.journal");
        assert!(
            journal
                .lines()
                .any(|line| line.contains("K1") && line.contains("省级下达")),
            "the GBK memo is not in the journal:\n{journal}"
        );
        assert!(l.balances(&[]).contains("440511,MBDK,U-A,paid,1.50\n"));
    });
}

#[test]
fn a_gbk_file_is_refused_by_name_when_utf8_is_demanded() {
    on_every_funded_backend(|l| {
        let before = l.snapshot();
        let text = format!(
            "{HEADER}K1,2025-05-06,440511,MBDK,U-A:paid,1.50,省级下达\nK1,2025-05-06,440511,MBDK,U-A:held,-1.50,\n"
        );
        let (bytes, _, _) = encoding_rs::GBK.encode(&text);
        let file = l.write("gbk.csv", &bytes);
        l.refused(&["post", "--encoding", "utf8", file])
            .assert_stderr_line_starts_with("gbk.csv: is not UTF-8 text")
            .assert_stderr_has("--encoding gbk");
        assert_eq!(l.snapshot(), before);
    });
}

// ---------------------------------------------------------------------------------------------
// post --partial
// ---------------------------------------------------------------------------------------------

const PARTIAL: &str = "\
C1,2025-03-01,440511,MBDK,U-A:paid,10,good one
C1,2025-03-01,440511,MBDK,U-A:held,-10,
C2,2025-03-01,440511,MBDK,U-A:paid,10,unbalanced
C2,2025-03-01,440511,MBDK,U-A:held,-9,
C3,2025-03-01,440511,MBDK,U-A:paid,5000,overdraft
C3,2025-03-01,440511,MBDK,U-A:held,-5000,
C4,2025-03-02,440511,MBDK,U-A:paid,1,\"memo, with comma\"
C4,2025-03-02,440511,MBDK,U-A:held,-1,
C5,2025-03-02,440511,MBDK,U-A:paid,12.345,bad amount
C5,2025-03-02,440511,MBDK,U-A:held,-12.35,
";

/// Reads a rejects file: UTF-8 with BOM, the input's columns plus `row` and `error`.
fn read_rejects(l: &Ledger, name: &str) -> Vec<Vec<String>> {
    let text = l.read(name);
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or_else(|| panic!("{name} lacks the UTF-8 BOM Excel needs:\n{text}"));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.expect("rejects row").iter().map(str::to_string).collect())
        .collect()
}

fn assert_partial_rejects(l: &Ledger, rejects: &str) {
    let rows = read_rejects(l, rejects);
    let all = format!("{rows:#?}");
    assert_eq!(
        rows[0],
        [
            "entry_key",
            "date",
            "county_code",
            "program",
            "account",
            "amount",
            "memo",
            "row",
            "error"
        ],
        "{all}"
    );
    let keys_rows: Vec<(&str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[7].as_str()))
        .collect();
    assert_eq!(
        keys_rows,
        [
            ("C2", "4"),
            ("C2", "5"),
            ("C3", "6"),
            ("C3", "7"),
            ("C5", "10"),
            ("C5", "11")
        ],
        "{all}"
    );
    // The rows come back as they were written.
    assert_eq!(
        rows[1][..7],
        [
            "C2",
            "2025-03-01",
            "440511",
            "MBDK",
            "U-A:paid",
            "10",
            "unbalanced"
        ],
        "{all}"
    );
    assert_eq!(
        rows[6][..7],
        [
            "C5",
            "2025-03-02",
            "440511",
            "MBDK",
            "U-A:held",
            "-12.35",
            ""
        ],
        "{all}"
    );
    for r in &rows[1..3] {
        assert!(
            r[8].contains("rows 4-5: entry \"C2\" does not balance"),
            "{all}"
        );
    }
    for r in &rows[3..5] {
        assert!(
            r[8].contains("rows 6-7: refused (E1016): entry \"C3\" would overdraw U-A:held"),
            "{all}"
        );
    }
    assert!(
        rows[5][8].contains("row 10, column amount: amount \"12.345\""),
        "{all}"
    );
    assert!(rows[6][8].contains("C5"), "{all}");
}

#[test]
fn post_partial_posts_the_good_entries_and_writes_the_bad_rows_beside_the_file() {
    on_every_funded_backend(|l| {
        let file = l.postings("part.csv", PARTIAL);
        let run = l.refused(&["post", "--partial", file]);
        run.assert_stdout_has("part.csv: posted 2 entries (4 postings)")
            .assert_stderr_has(
                "6 row(s) refused and written with their errors to part.rejected.csv",
            )
            .assert_stderr_line_starts_with("part.csv rows 4-5: entry \"C2\" does not balance");
        assert_partial_rejects(l, "part.rejected.csv");
        // C1 and C4 are in the books, nothing of C2, C3 or C5.
        assert!(
            l.balances(&[])
                .contains("440511,MBDK,U-A,held,289.50\n440511,MBDK,U-A,paid,11.00\n"),
            "{}",
            l.balances(&[])
        );
        l.ok(&["check"]);
    });
}

#[test]
fn post_partial_writes_the_bad_rows_where_rejects_says() {
    on_every_funded_backend(|l| {
        let file = l.postings("part.csv", PARTIAL);
        l.refused(&["post", "--partial", "--rejects", "bounced.csv", file])
            .assert_stderr_has("written with their errors to bounced.csv");
        assert_partial_rejects(l, "bounced.csv");
        assert!(!l.path("part.rejected.csv").exists());
    });
}

#[test]
fn post_partial_of_a_good_file_succeeds_and_writes_no_rejects() {
    on_every_initialised_backend(|l| {
        let file = l.postings("funding.csv", FUNDING);
        l.ok(&["post", "--partial", file]);
        assert!(!l.path("funding.rejected.csv").exists());
        assert_eq!(l.balances(&[]), FUNDED_BALANCES);
    });
}

#[test]
fn rejects_without_partial_is_a_usage_error() {
    on_every_funded_backend(|l| {
        let file = l.postings("part.csv", PARTIAL);
        l.expect(2, &["post", "--rejects", "bounced.csv", file]);
        assert_eq!(l.balances(&[]), FUNDED_BALANCES);
    });
}

// ---------------------------------------------------------------------------------------------
// Two-phase: post --pending, pending post / void
// ---------------------------------------------------------------------------------------------

const PENDING: &str = "\
P1,2025-03-05,440511,MBDK,U-A:paid,200,bank line 1
P1,2025-03-05,440511,MBDK,U-A:held,-200,
";

const SPEND_150: &str = "\
S1,2025-03-06,440511,MBDK,U-A:paid,150,
S1,2025-03-06,440511,MBDK,U-A:held,-150,
";

/// The JSON balance row of U-A:held in 440511 MBDK: (balance_fen, reserved_fen).
fn unit_a_held(l: &Ledger) -> (i64, i64) {
    let run = l.ok(&[
        "balances",
        "--format",
        "json",
        "--county",
        "440511",
        "--program",
        "MBDK",
    ]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("balances json");
    let row = json
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["owner"] == "U-A" && r["kind"] == "held")
        .unwrap_or_else(|| panic!("no U-A held row{}", run.show()));
    (
        row["balance_fen"].as_i64().expect("balance_fen"),
        row["reserved_fen"].as_i64().expect("reserved_fen"),
    )
}

#[test]
fn a_pending_entry_reserves_money_until_it_is_posted_once() {
    on_every_funded_backend(|l| {
        let pending = l.postings("pending.csv", PENDING);
        l.ok(&["post", "--pending", pending]);
        assert_eq!(unit_a_held(l), (30050, 20000), "reserved, not moved");
        assert_eq!(
            l.balances(&[]),
            FUNDED_BALANCES,
            "a pending entry moves no balance"
        );

        // While reserved, only 100.50 is available: a second spend of the money is an overdraft.
        let before = l.snapshot();
        let spend = l.postings("spend.csv", SPEND_150);
        l.refused(&["post", spend])
            .assert_stderr_line_starts_with(
                "spend.csv rows 2-3: refused (E1016): entry \"S1\" would overdraw U-A:held",
            )
            .assert_stderr_has("available 100.50, the entry needs 150.00");
        assert_eq!(l.snapshot(), before);

        l.ok(&[
            "pending",
            "post",
            "P1",
            "--date",
            "2025-03-07",
            "--reason",
            "bank paid",
        ])
        .assert_stdout_has("posted: county 440511");
        assert_eq!(unit_a_held(l), (10050, 0));
        assert!(l.balances(&[]).contains("440511,MBDK,U-A,paid,200.00\n"));

        // The same command again is idempotent; a second resolution under another key is refused.
        let after = l.snapshot();
        l.ok(&[
            "pending",
            "post",
            "P1",
            "--date",
            "2025-03-07",
            "--reason",
            "bank paid",
        ])
        .assert_stdout_has("already posted");
        l.refused(&[
            "pending",
            "post",
            "P1",
            "--date",
            "2025-03-08",
            "--key",
            "post-again:P1",
        ])
        .assert_stderr_has("\"P1\" was already posted by entry \"post:P1\"");
        l.refused(&["pending", "void", "P1", "--date", "2025-03-08"])
            .assert_stderr_has("\"P1\" was already posted by entry \"post:P1\"");
        assert_eq!(l.snapshot(), after);
        l.ok(&["check"]);
    });
}

#[test]
fn a_voided_pending_entry_releases_its_reservation() {
    on_every_funded_backend(|l| {
        let pending = l.postings("pending.csv", PENDING);
        l.ok(&["post", "--pending", pending]);
        l.ok(&[
            "pending",
            "void",
            "P1",
            "--date",
            "2025-03-07",
            "--reason",
            "bank refused",
        ]);
        assert_eq!(unit_a_held(l), (30050, 0));
        assert_eq!(l.balances(&[]), FUNDED_BALANCES);
        l.refused(&["pending", "post", "P1", "--date", "2025-03-08"])
            .assert_stderr_has("\"P1\" was already voided by entry \"void:P1\"");
        // The whole 300.50 can be spent again.
        let spend = l.postings(
            "spend.csv",
            "S1,2025-03-06,440511,MBDK,U-A:paid,300.50,\nS1,2025-03-06,440511,MBDK,U-A:held,-300.50,\n",
        );
        l.ok(&["post", spend]);
        l.ok(&["check"]);
    });
}

#[test]
fn pending_post_of_an_unknown_or_normal_entry_is_refused() {
    on_every_funded_backend(|l| {
        let before = l.snapshot();
        l.refused(&["pending", "post", "NOPE", "--date", "2025-03-07"])
            .assert_stderr_has("refers to \"NOPE\", which does not exist");
        l.refused(&["pending", "post", "F2", "--date", "2025-03-07"])
            .assert_stderr_has("is not a pending entry");
        assert_eq!(l.snapshot(), before);
    });
}

// ---------------------------------------------------------------------------------------------
// reverse
// ---------------------------------------------------------------------------------------------

#[test]
fn reverse_posts_a_negating_entry_once() {
    on_every_funded_backend(|l| {
        l.ok(&[
            "reverse",
            "F2",
            "--reason",
            "wrong school",
            "--date",
            "2025-03-08",
        ])
        .assert_stdout_has("posted: county 440511");
        let reversed = format!(
            "{BALANCES_HEADER}440511,MBDK,440000,budget,-1000.00\n440511,MBDK,440511,held,1000.00\n\
             440511,XQZZ,440500,budget,-20.00\n440511,XQZZ,440511,held,20.00\n\
             441900,XQZZ,440000,budget,-88.00\n441900,XQZZ,U-B,held,88.00\n"
        );
        assert_eq!(l.balances(&[]), reversed);
        assert!(
            l.snapshot().contains("440511,MBDK,U-A,held,0.00\n"),
            "{}",
            l.snapshot()
        );
        let after = l.snapshot();
        l.ok(&[
            "reverse",
            "F2",
            "--reason",
            "wrong school",
            "--date",
            "2025-03-08",
        ])
        .assert_stdout_has("already posted");
        assert_eq!(l.snapshot(), after);
        // Reversing it again under another key is refused.
        l.refused(&[
            "reverse",
            "F2",
            "--reason",
            "again",
            "--date",
            "2025-03-09",
            "--key",
            "rev2",
        ])
        .assert_stderr_has("\"F2\" was already reversed by entry \"reverse:F2\"");
        assert_eq!(l.snapshot(), after);
        l.ok(&["check"]);
    });
}

#[test]
fn reversing_an_unknown_key_is_refused() {
    on_every_funded_backend(|l| {
        let before = l.snapshot();
        l.refused(&["reverse", "NOPE", "--reason", "typo"])
            .assert_stderr_has("entry \"reverse:NOPE\" refers to \"NOPE\", which does not exist");
        assert_eq!(l.snapshot(), before);
    });
}

#[test]
fn reverse_without_a_reason_is_a_usage_error() {
    on_every_funded_backend(|l| {
        l.expect(2, &["reverse", "F2"])
            .assert_stderr_has("--reason");
        l.refused(&["reverse", "F2", "--reason", "  "])
            .assert_stderr_has("a reversal needs a --reason");
        assert_eq!(l.balances(&[]), FUNDED_BALANCES);
    });
}

// ---------------------------------------------------------------------------------------------
// check, verify, export
// ---------------------------------------------------------------------------------------------

/// FUNDING plus spends, a posted pending entry, one left pending, and a reversal.
fn busy_ledger(l: &Ledger) {
    l.fund();
    let more = l.postings(
        "more.csv",
        "M1,2025-03-03,440511,MBDK,440511:held,\"1,234.56\",\n\
         M1,2025-03-03,440511,MBDK,440000:budget,-1234.56,\n\
         M2,2025-03-03,440511,MBDK,U-A:paid,\"1,234.56\",memo; with | odd # chars\n\
         M2,2025-03-03,440511,MBDK,440511:held,-1234.56,\n\
         M3,2025-03-04,441900,XQZZ,U-B:paid,8.80,\n\
         M3,2025-03-04,441900,XQZZ,U-B:held,-8.80,\n",
    );
    l.ok(&["post", more]);
    let pending = l.postings(
        "pending.csv",
        "P1,2025-03-05,440511,MBDK,U-A:paid,200,\nP1,2025-03-05,440511,MBDK,U-A:held,-200,\n\
         P2,2025-03-05,440511,MBDK,U-A:paid,50,\nP2,2025-03-05,440511,MBDK,U-A:held,-50,\n",
    );
    l.ok(&["post", "--pending", pending]);
    l.ok(&["pending", "post", "P1", "--date", "2025-03-06"]);
    l.ok(&[
        "reverse",
        "M3",
        "--reason",
        "duplicate",
        "--date",
        "2025-03-07",
    ]);
}

#[test]
fn check_and_verify_say_ok_on_a_good_ledger() {
    on_every_backend(|l| {
        l.ok(&["init"]);
        l.ok(&["check"]).assert_stdout_has("OK");
        l.ok(&["verify"]).assert_stdout_has("OK");
        busy_ledger(l);
        l.ok(&["check"]).assert_stdout_has("OK:");
        l.ok(&["verify"])
            .assert_stdout_has("OK: no entry was altered after posting");
    });
}

/// The full scans read counties on two threads at once; a county that cannot be read must end the
/// command with an error that names the entry, not leave the other thread (or the journal's writer)
/// waiting. The damage is SQLite's alone: there a column holds whatever is written into it.
#[test]
fn a_county_that_cannot_be_read_fails_the_scan_naming_its_entry() {
    let db = common::runtime().block_on(common::fresh_db(common::Kind::Sqlite));
    let l = Ledger { db };
    busy_ledger(&l);
    common::runtime().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", l.db.url))
            .await
            .expect("open the SQLite file directly");
        sqlx::raw_sql(
            "DROP TRIGGER postings_no_update; \
             UPDATE postings SET amount = 'twelve' WHERE county_code = '440511' AND seq = 1 AND leg = 0;",
        )
        .execute(&mut conn)
        .await
        .expect("damage a posting");
        conn.close().await.expect("close");
    });
    for args in [
        &["check"][..],
        &["verify"][..],
        &["export", "ledger", "--out", "ledger.journal"][..],
    ] {
        let mut child = l
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the earmark binary");
        let started = std::time::Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > std::time::Duration::from_secs(60) {
                child.kill().ok();
                panic!("earmark {} still runs after 60 s", args.join(" "));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let output = child.wait_with_output().expect("output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "earmark {} must fail on a damaged posting; stderr: {stderr}",
            args.join(" ")
        );
        assert!(
            stderr.contains("a stored posting of entry") && stderr.contains("is damaged"),
            "earmark {} names the damaged entry: {stderr}",
            args.join(" ")
        );
    }
}

/// `hledger -f JOURNAL balance --flat --no-total -O csv` → account → fen, zero balances dropped.
fn hledger_balances(l: &Ledger, journal: &str) -> BTreeMap<String, i64> {
    let hledger = ["/usr/bin/hledger", "hledger"]
        .into_iter()
        .find(|h| Command::new(h).arg("--version").output().is_ok_and(|o| o.status.success()))
        .unwrap_or_else(|| {
            panic!("hledger is not installed (expected at /usr/bin/hledger): run .ci/run, which installs it")
        });
    let output = Command::new(hledger)
        .args([
            "-f",
            journal,
            "balance",
            "--flat",
            "--no-total",
            "-O",
            "csv",
        ])
        .current_dir(l.db.dir.path())
        .output()
        .expect("run hledger");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let show = format!(
        "\nhledger exit {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status.code()
    );
    assert!(
        output.status.success(),
        "hledger refused the export:{show}\n--- journal ---\n{}",
        l.read(journal)
    );
    let mut reader = csv::Reader::from_reader(stdout.as_bytes());
    let header = reader.headers().expect("hledger csv header").clone();
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        ["account", "balance"],
        "{show}"
    );
    let mut map = BTreeMap::new();
    for record in reader.records() {
        let r = record.unwrap_or_else(|e| panic!("hledger csv: {e}{show}"));
        let fen = yuan_to_fen(&r[1]);
        if fen != 0 {
            map.insert(r[0].to_string(), fen);
        }
    }
    map
}

#[test]
fn export_ledger_agrees_with_hledger_on_every_balance() {
    on_every_backend(|l| {
        busy_ledger(l);
        l.ok(&["export", "ledger", "--out", "ledger.journal"])
            .assert_stdout_has("to ledger.journal");
        let ours = balances_by_account(&l.balances(&[]));
        let theirs = hledger_balances(l, "ledger.journal");
        assert!(
            ours.len() >= 8,
            "the busy ledger has many accounts: {ours:?}"
        );
        assert_eq!(
            theirs,
            ours,
            "[{:?}] hledger (left) and earmark balances (right) disagree\n--- journal ---\n{}",
            l.kind(),
            l.read("ledger.journal")
        );
    });
}

// ---------------------------------------------------------------------------------------------
// help and version
// ---------------------------------------------------------------------------------------------

#[test]
fn help_names_the_posting_file_columns() {
    on_every_backend(|l| {
        let columns = "entry_key,date,county_code,program,account,amount,memo";
        l.ok(&["--help"])
            .assert_stdout_has(columns)
            .assert_stdout_has("earmark init");
        l.ok(&["post", "--help"])
            .assert_stdout_has(columns)
            .assert_stdout_has("debit positive, credit negative");
        l.ok(&["import", "units", "--help"]);
        l.ok(&["--version"])
            .assert_stdout_has(&format!("earmark {}", env!("CARGO_PKG_VERSION")));
        l.expect(2, &["no-such-command"]);
    });
}

/// The posting benchmark runs end to end on every backend, from two streams side by side: each
/// database prints one line of positive rates, a ratio and peak memory.
#[test]
fn bench_prints_the_ledger_and_raw_rates_of_each_backend() {
    let server = std::env::var("EARMARK_TEST_PG")
        .ok()
        .filter(|v| !v.is_empty());
    let mut args = vec![
        "bench",
        "--entries",
        "600",
        "--batch",
        "100",
        "--streams",
        "2",
    ];
    if let Some(server) = &server {
        args.extend(["--postgres", server.as_str()]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_earmark"))
        .args(&args)
        .env_remove("EARMARK_BENCH_PG")
        .output()
        .expect("run earmark bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("600 entries of two postings, 100 per transaction, 2 stream(s)"),
        "{stdout}"
    );
    let mut names = vec!["sqlite"];
    if server.is_some() {
        names.push("postgres");
    }
    for name in names {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{stdout}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 6, "{line}");
        let ledger: u64 = fields[1].parse().expect("ledger rate");
        let raw: u64 = fields[2].parse().expect("raw rate");
        assert!(ledger > 0 && raw > 0, "{line}");
        // Printed in hundredths: "0.77".
        let ratio: u64 = fields[3].replace('.', "").parse().expect("ratio");
        assert_eq!(
            ratio,
            ledger * 100 / raw,
            "the ratio is the two rates' quotient: {line}"
        );
    }
    // Nothing to measure is refused, not run.
    let refused = Command::new(env!("CARGO_BIN_EXE_earmark"))
        .args(["bench", "--entries", "0", "--no-sqlite"])
        .output()
        .expect("run earmark bench");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("--entries and --batch must be at least 1")
    );
}
