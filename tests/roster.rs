//! Rosters (名册), life events, programs as data, the county tables and the annual cycle, as a user
//! meets them: every test runs the real `earmark` binary against a fresh database on every backend
//! (SQLite always, PostgreSQL when `EARMARK_TEST_PG` is set) and checks exit codes, messages and
//! what was (not) written.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Ledger, Run, on_every_backend, on_every_backend_n};
use earmark::id_number::make_id;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// This suite's steps on top of the shared harness (tests/common).
impl Ledger {
    /// A file the binary wrote, as text without a leading byte-order mark.
    fn read_text(&self, name: &str) -> String {
        self.read(name).trim_start_matches('\u{feff}').to_owned()
    }

    fn init(&self) {
        self.ok(&["init"]);
    }

    fn show(&self, program: &str) -> String {
        self.ok(&["roster", "show", "--program", program]).stdout
    }

    fn entitlements(&self, program: &str, from: &str, to: &str) -> String {
        self.ok(&[
            "entitlements",
            "--program",
            program,
            "--from",
            from,
            "--to",
            to,
            "--format",
            "csv",
        ])
        .stdout
    }

    fn import_roster(&self, program: &str, file: &str) -> Run {
        self.ok(&["import", "roster", "--program", program, file])
    }
}

fn repo_file(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Test people
// ---------------------------------------------------------------------------------------------

/// A valid ID number (GB 11643 check character) for a person born on `birth` in `region`; an odd
/// `sequence` is a man, an even one a woman.
fn id(region: &str, birth: &str, sequence: u16) -> String {
    make_id(region, common::day(birth), sequence)
        .as_str()
        .to_owned()
}

/// The masked form of an ID number, as messages and the notice print it.
fn masked(id: &str) -> String {
    format!("{}********{}", &id[..6], &id[14..])
}

/// 张三: a man who reached 60 before the cutoff (2018-03-01), 60 semesters → 30 years, 900.00.
fn p1() -> String {
    id("440511", "1958-03-01", 11)
}
/// 李四: a woman who reached 55 before the cutoff (2017-07-15), 45 semesters → 23 years, 800.00.
fn p2() -> String {
    id("440511", "1962-07-15", 22)
}
/// 王五: a man reaching 60 on 2024-05-10, 24 semesters → 12 years, 700.00, paid from 2024-06.
fn p3() -> String {
    id("440511", "1964-05-10", 31)
}
/// 赵六: a woman who reached 55 on 2021-11-20, 20 semesters → 10 years, 700.00.
fn p4() -> String {
    id("440511", "1966-11-20", 42)
}
/// 孙七: not on the base roster (a man who reached 60 before the cutoff).
fn p5() -> String {
    id("440511", "1955-09-09", 51)
}

const CN_HEADER: &str = "身份证号,姓名,性别,出生日期,任教学期数,县区代码";

/// The base roster's rows: (id, name, sex as written, birth date, semesters), all in 440511. The sex
/// is written four ways: 男, F, M, 女.
fn base_rows() -> Vec<[String; 5]> {
    [
        (p1(), "张三", "男", "1958-03-01", "60"),
        (p2(), "李四", "F", "1962-07-15", "45"),
        (p3(), "王五", "M", "1964-05-10", "24"),
        (p4(), "赵六", "女", "1966-11-20", "20"),
    ]
    .into_iter()
    .map(|(i, n, s, b, m)| [i, n.into(), s.into(), b.into(), m.into()])
    .collect()
}

/// The base roster as CSV text with Chinese headers.
fn base_csv() -> String {
    let mut text = format!("{CN_HEADER}\n");
    for [i, n, s, b, m] in base_rows() {
        text.push_str(&format!("{i},{n},{s},{b},{m},440511\n"));
    }
    text
}

/// `init` and the base roster imported.
fn with_base_roster(ledger: &Ledger) {
    ledger.init();
    let file = ledger.write("base.csv", base_csv());
    ledger
        .import_roster("MBDK", file)
        .assert_stdout_has("base.csv: roster MBDK: 4 added, 0 changed, 0 unchanged");
}

/// Entitlement CSV lines per ID number: (count of months, last month).
fn months_by_id(csv: &str) -> BTreeMap<String, (usize, String)> {
    let mut out: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let slot = out.entry(cells[0].to_owned()).or_default();
        slot.0 += 1;
        slot.1 = cells[1].to_owned();
    }
    out
}

/// Drops the lines of `who` whose month is after `last` (YYYY-MM).
fn without_after(csv: &str, who: &str, last: &str) -> String {
    let mut out = String::new();
    for line in csv.lines() {
        let mut cells = line.split(',');
        let (Some(id), Some(month)) = (cells.next(), cells.next()) else {
            continue;
        };
        if id == who && month > last {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether `text` holds a full 18-character ID number (17 digits and a digit or X).
fn has_full_id(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(18).any(|w| {
        w[..17].iter().all(char::is_ascii_digit) && (w[17].is_ascii_digit() || w[17] == 'X')
    })
}

/// Every cell of an XLSX workbook's first sheet as text; whole numbers without decimals, other
/// numbers with two, dates as YYYY-MM-DD.
fn xlsx_rows(path: &Path) -> Vec<Vec<String>> {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let mut workbook: Xlsx<_> = open_workbook(path).expect("open the XLSX output");
    let range = workbook
        .worksheet_range_at(0)
        .expect("a worksheet")
        .expect("readable worksheet");
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Empty => String::new(),
                    Data::String(s) => s.clone(),
                    Data::Int(i) => i.to_string(),
                    Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                    Data::Float(f) => format!("{f:.2}"),
                    Data::DateTime(d) => d
                        .as_datetime()
                        .map(|d| d.date().format("%Y-%m-%d").to_string())
                        .unwrap_or_default(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

/// The row whose cell `column` is `value`.
fn row_with<'a>(rows: &'a [Vec<String>], column: usize, value: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.get(column).is_some_and(|c| c == value))
        .unwrap_or_else(|| panic!("no row with {value:?} in column {column}: {rows:?}"))
}

// ---------------------------------------------------------------------------------------------
// Importing a roster: CSV, GBK, XLSX
// ---------------------------------------------------------------------------------------------

#[test]
fn a_good_roster_imports_the_same_from_csv_gbk_and_xlsx() {
    on_every_backend_n(3, |ledgers| {
        let [csv, gbk, xlsx] = ledgers else {
            unreachable!()
        };
        for ledger in ledgers {
            ledger.init();
        }

        // UTF-8 CSV, Chinese headers, sex as 男/女 and M/F.
        let file = csv.write("roster.csv", base_csv());
        csv.import_roster("MBDK", file)
            .assert_stdout_has("roster.csv: roster MBDK: 4 added, 0 changed, 0 unchanged");
        let shown = csv.show("MBDK");
        for expected in [
            masked(&p1()).as_str(),
            "张三",
            "李四",
            "1964-05-10",
            "4 person(s); locked: false",
        ] {
            assert!(shown.contains(expected), "show lacks {expected}: {shown}");
        }
        assert!(!has_full_id(&shown), "roster show prints full IDs: {shown}");
        let lines: Vec<&str> = shown.lines().collect();
        let zhang = lines.iter().find(|l| l.contains("张三")).unwrap();
        assert!(zhang.contains('男') && zhang.contains(" 60 "), "{zhang}");
        let li = lines.iter().find(|l| l.contains("李四")).unwrap();
        assert!(li.contains('女') && li.contains(" 45 "), "{li}");

        // The same roster in GBK, as Excel on a Chinese Windows saves CSV.
        let text = base_csv();
        let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
        assert!(!unmappable);
        let file = gbk.write("roster_gbk.csv", &bytes);
        gbk.import_roster("MBDK", file)
            .assert_stdout_has("4 added, 0 changed, 0 unchanged");
        assert_eq!(gbk.show("MBDK"), shown, "GBK import differs from UTF-8");

        // The same roster as an XLSX workbook: one birth date a real Excel date cell, the semesters
        // numbers, the ID numbers text.
        let path = xlsx.path("roster.xlsx");
        write_roster_xlsx(&path);
        xlsx.import_roster("MBDK", "roster.xlsx")
            .assert_stdout_has("4 added, 0 changed, 0 unchanged");
        assert_eq!(xlsx.show("MBDK"), shown, "XLSX import differs from CSV");
    });
}

fn write_roster_xlsx(path: &Path) {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (c, title) in CN_HEADER.split(',').enumerate() {
        sheet.write_string(0, c as u16, title).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    for (r, [i, n, s, b, m]) in base_rows().iter().enumerate() {
        let r = r as u32 + 1;
        sheet.write_string(r, 0, i).unwrap();
        sheet.write_string(r, 1, n).unwrap();
        sheet.write_string(r, 2, s).unwrap();
        if r == 1 {
            // 1958-03-01 typed as a date: Excel stores a serial number with a date format.
            let d = ExcelDateTime::from_ymd(1958, 3, 1).unwrap();
            sheet.write_datetime_with_format(r, 3, &d, &date).unwrap();
        } else {
            sheet.write_string(r, 3, b).unwrap();
        }
        sheet.write_number(r, 4, m.parse::<f64>().unwrap()).unwrap();
        sheet.write_string(r, 5, "440511").unwrap();
    }
    workbook.save(path).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

const EN_HEADER: &str =
    "id_number,name,sex,birth_date,semesters,county_code,township_code,exclusion,death_date";

#[test]
fn each_bad_row_is_refused_with_file_row_column_and_rule_and_nothing_is_imported() {
    let good = format!("{},孙七,M,1955-09-09,40,440511,,,", p5());
    let p3 = p3();
    let wrong_check = {
        // The last character changed: the check character no longer fits.
        let mut w = p3.clone();
        let last = w.pop().unwrap();
        w.push(if last == '0' { '1' } else { '0' });
        w
    };
    let born_1960 = id("440511", "1960-01-01", 31);
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "check character",
            format!("{wrong_check},王五,M,1964-05-10,24,440511,,,"),
            "id_number",
            "check character",
        ),
        (
            "birth date disagrees with the ID",
            format!("{p3},王五,M,1964-05-11,24,440511,,,"),
            "birth_date",
            "the ID number gives birth date 1964-05-10 but the row states 1964-05-11",
        ),
        (
            "sex disagrees with the ID",
            format!("{p3},王五,女,1964-05-10,24,440511,,,"),
            "sex",
            "the ID number indicates male but the row states female",
        ),
        (
            "unknown county",
            format!("{p3},王五,M,1964-05-10,24,449999,,,"),
            "county_code",
            "449999 is not a county",
        ),
        (
            "township of another county",
            format!("{p3},王五,M,1964-05-10,24,440511,440103001,,"),
            "township_code",
            "440103001 is not a township of 440511",
        ),
        (
            "13th month",
            format!("{born_1960},王五,M,1960-13-01,24,440511,,,"),
            "birth_date",
            "\"1960-13-01\" is not a real date",
        ),
        (
            "30 February",
            format!("{p3},王五,M,1964-02-30,24,440511,,,"),
            "birth_date",
            "\"1964-02-30\" is not a real date",
        ),
        (
            "negative semesters",
            format!("{p3},王五,M,1964-05-10,-1,440511,,,"),
            "semesters",
            "\"-1\" is not a whole, non-negative number",
        ),
        (
            "fractional semesters",
            format!("{p3},王五,M,1964-05-10,2.5,440511,,,"),
            "semesters",
            "\"2.5\" is not a whole, non-negative number",
        ),
        (
            "death before birth",
            format!("{p3},王五,M,1964-05-10,24,440511,,,1964-05-09"),
            "death_date",
            "before the birth date",
        ),
        (
            "duplicate person",
            good.clone(),
            "id_number",
            "is listed twice (first in row 2)",
        ),
        (
            "unknown exclusion",
            format!("{p3},王五,M,1964-05-10,24,440511,,retired,"),
            "exclusion",
            "\"retired\" is not one of",
        ),
    ];
    on_every_backend(|ledger| {
        ledger.init();
        let empty = ledger.show("MBDK");
        assert!(empty.contains("0 person(s)"), "{empty}");
        for (what, bad, column, rule) in &cases {
            let file = ledger.write("bad.csv", format!("{EN_HEADER}\n{good}\n{bad}\n"));
            let run = ledger.refused(&["import", "roster", "--program", "MBDK", file]);
            let row_lines: Vec<&str> = run
                .stderr
                .lines()
                .filter(|l| l.starts_with("bad.csv row"))
                .collect();
            assert_eq!(
                row_lines.len(),
                1,
                "{what}: one line per bad row{}",
                run.show()
            );
            let prefix = format!("bad.csv row 3, column {column}: ");
            assert!(
                row_lines[0].starts_with(&prefix) && row_lines[0].contains(rule),
                "{what}: expected {prefix}…{rule}…{}",
                run.show()
            );
            assert!(
                !has_full_id(&run.stderr),
                "{what}: a full ID number in the message{}",
                run.show()
            );
            run.assert_stderr_line("bad.csv: refused, nothing was imported (1 bad rows)");
            assert_eq!(ledger.show("MBDK"), empty, "{what}: something was imported");
        }
    });
}

#[test]
fn partial_import_loads_the_good_rows_and_writes_the_rejected_ones() {
    on_every_backend(|ledger| {
        ledger.init();
        let text = format!(
            "{EN_HEADER}\n{},张三,M,1958-03-01,60,440511,,,\n{},王五,M,1964-05-10,24,449999,,,\n{},李四,F,1962-07-15,45,440511,,,\n{},赵六,F,1966-11-20,2.5,440511,,,\n",
            p1(),
            p3(),
            p2(),
            p4()
        );
        let file = ledger.write("mixed.csv", text);
        let run = ledger.refused(&["import", "roster", "--program", "MBDK", "--partial", file]);
        run.assert_stdout_has("mixed.csv: roster MBDK: 2 added, 0 changed, 0 unchanged")
            .assert_stderr_has("mixed.csv row 3, column county_code: 449999 is not a county")
            .assert_stderr_has("mixed.csv row 5, column semesters: \"2.5\"")
            .assert_stderr_has(
                "2 row(s) refused and written with their errors to mixed.rejected.csv",
            );
        let shown = ledger.show("MBDK");
        assert!(shown.contains("2 person(s)"), "{shown}");
        assert!(shown.contains("张三") && shown.contains("李四"), "{shown}");
        assert!(
            !shown.contains("王五") && !shown.contains("赵六"),
            "{shown}"
        );

        let rejected = ledger.read_text("mixed.rejected.csv");
        let mut reader = csv::Reader::from_reader(rejected.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let mut expected_header: Vec<String> = EN_HEADER.split(',').map(String::from).collect();
        expected_header.extend(["row".to_owned(), "error".to_owned()]);
        assert_eq!(header, expected_header);
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2, "{rejected}");
        let row = header.iter().position(|h| h == "row").unwrap();
        let error = header.iter().position(|h| h == "error").unwrap();
        assert_eq!(&records[0][0], p3().as_str());
        assert_eq!(&records[0][row], "3");
        assert!(
            records[0][error].contains("column county_code"),
            "{rejected}"
        );
        assert_eq!(&records[1][1], "赵六");
        assert_eq!(&records[1][row], "5");
        assert!(records[1][error].contains("column semesters"), "{rejected}");

        // The rejected rows, corrected, load on their own (with --rejects naming another file).
        let fixed = format!(
            "{EN_HEADER}\n{},王五,M,1964-05-10,24,440511,,,\n{},赵六,F,1966-11-20,20,440511,,,\n",
            p3(),
            p4()
        );
        let file = ledger.write("fixed.csv", fixed);
        ledger
            .ok(&[
                "import",
                "roster",
                "--program",
                "MBDK",
                "--partial",
                "--rejects",
                "fixed_rejects.csv",
                file,
            ])
            .assert_stdout_has("2 added, 0 changed, 0 unchanged");
        assert!(!ledger.path("fixed_rejects.csv").exists());
        assert!(ledger.show("MBDK").contains("4 person(s)"));
    });
}

// ---------------------------------------------------------------------------------------------
// The lock (只减不增) and leaving
// ---------------------------------------------------------------------------------------------

#[test]
fn a_locked_roster_only_shrinks_and_its_service_years_are_fixed() {
    on_every_backend(|ledger| {
        with_base_roster(ledger);
        ledger
            .ok(&["roster", "lock", "--program", "MBDK"])
            .assert_stdout_has("roster MBDK locked (只减不增)");
        ledger
            .ok(&["roster", "lock", "--program", "mbdk"])
            .assert_stdout_has("was locked already: nothing changed");
        let locked = ledger.show("MBDK");
        assert!(locked.contains("4 person(s); locked: true"), "{locked}");

        // A new person, even in a file that otherwise repeats the registry: refused, nothing written.
        let file = ledger.write(
            "new.csv",
            format!("{}{},孙七,M,1955-09-09,40,440511\n", base_csv(), p5()),
        );
        ledger
            .refused(&["import", "roster", "--program", "MBDK", file])
            .assert_stderr_has("new.csv row 6: roster MBDK is locked (只减不增)")
            .assert_stderr_has(&format!("{} cannot be added", masked(&p5())))
            .assert_stderr_line("new.csv: refused, nothing was imported");
        assert_eq!(ledger.show("MBDK"), locked);

        // 工作年限核定后不再调整: 张三's 60 semesters cannot become 58.
        let file = ledger.write("changed.csv", base_csv().replace(",60,", ",58,"));
        ledger
            .refused(&["import", "roster", "--program", "MBDK", file])
            .assert_stderr_has(&format!("changed.csv row 2: service semesters of {} are locked at 60 (工作年限核定后不再调整); the file says 58", masked(&p1())))
            .assert_stderr_line("changed.csv: refused, nothing was imported");
        assert_eq!(ledger.show("MBDK"), locked);

        // The identical file again changes nothing.
        let file = ledger.write("again.csv", base_csv());
        ledger
            .import_roster("MBDK", file)
            .assert_stdout_has("again.csv: roster MBDK: 0 added, 0 changed, 4 unchanged");
        assert_eq!(ledger.show("MBDK"), locked);
    });
}

#[test]
fn a_person_leaves_the_roster_for_death_or_transfer() {
    on_every_backend(|ledger| {
        with_base_roster(ledger);
        ledger.ok(&["roster", "lock", "--program", "MBDK"]);
        let before = months_by_id(&ledger.entitlements("MBDK", "2024-01", "2024-12"));
        assert_eq!(before[&p1()], (12, "2024-12".into()));
        assert_eq!(before[&p2()], (12, "2024-12".into()));
        ledger
            .ok(&[
                "roster",
                "leave",
                "--program",
                "MBDK",
                "--id",
                &p1(),
                "--date",
                "2024-03-15",
                "--reason",
                "death",
            ])
            .assert_stdout_has(&format!(
                "{} leaves roster MBDK from 2024-03-15 (death)",
                masked(&p1())
            ));
        ledger.ok(&[
            "roster",
            "leave",
            "--program",
            "MBDK",
            "--id",
            &p2(),
            "--date",
            "2024-06-30",
            "--reason",
            "transfer",
        ]);
        let shown = ledger.show("MBDK");
        let line = |name: &str| {
            shown
                .lines()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("{name} missing: {shown}"))
                .to_owned()
        };
        assert!(line("张三").ends_with("died 2024-03-15"), "{shown}");
        assert!(line("李四").ends_with("left: transfer"), "{shown}");
        assert!(shown.contains("4 person(s); locked: true"), "{shown}");

        // Paid through the month of death / of leaving, each month in full.
        let after = months_by_id(&ledger.entitlements("MBDK", "2024-01", "2024-12"));
        assert_eq!(after[&p1()], (3, "2024-03".into()));
        assert_eq!(after[&p2()], (6, "2024-06".into()));
        assert_eq!(after[&p3()], before[&p3()]);
        assert_eq!(after[&p4()], before[&p4()]);

        // An unknown reason, or a person on no roster, is refused.
        ledger
            .refused(&[
                "roster",
                "leave",
                "--program",
                "MBDK",
                "--id",
                &p3(),
                "--date",
                "2024-06-30",
                "--reason",
                "retired",
            ])
            .assert_stderr_has("\"retired\" is not a reason to leave");
        ledger
            .refused(&[
                "roster",
                "leave",
                "--program",
                "MBDK",
                "--id",
                &p5(),
                "--date",
                "2024-06-30",
                "--reason",
                "transfer",
            ])
            .assert_stderr_has(&format!("{} is not on the MBDK roster", masked(&p5())));
        assert_eq!(ledger.show("MBDK"), shown);
    });
}

// ---------------------------------------------------------------------------------------------
// Life events from other departments
// ---------------------------------------------------------------------------------------------

#[test]
fn deaths_from_the_household_registry_end_payment_after_the_month_of_death() {
    on_every_backend(|ledger| {
        with_base_roster(ledger);
        let before = ledger.entitlements("MBDK", "2024-01", "2024-12");

        // One unknown person refuses the whole file.
        let file = ledger.write(
            "deaths_bad.csv",
            format!(
                "id_number,death_date,source\n{},2024-09-10,公安户籍\n{},2024-02-01,卫健\n",
                p2(),
                p5()
            ),
        );
        ledger
            .refused(&["import", "deaths", file])
            .assert_stderr_line(&format!(
                "deaths_bad.csv row 3, column id_number: {} is on no roster",
                masked(&p5())
            ))
            .assert_stderr_line("deaths_bad.csv: refused, nothing was recorded");
        assert_eq!(ledger.entitlements("MBDK", "2024-01", "2024-12"), before);

        let file = ledger.write(
            "deaths.csv",
            format!(
                "id_number,death_date,source\n{},2024-09-10,公安户籍\n",
                p2()
            ),
        );
        ledger
            .ok(&["import", "deaths", file])
            .assert_stdout_has("deaths.csv: 1 deaths recorded (0 already known)");
        let after = ledger.entitlements("MBDK", "2024-01", "2024-12");
        assert_eq!(after, without_after(&before, &p2(), "2024-09"));
        assert_eq!(months_by_id(&after)[&p2()], (9, "2024-09".into()));
        assert!(ledger.show("MBDK").contains("died 2024-09-10"));

        // The same file again is a no-op.
        ledger
            .ok(&["import", "deaths", file])
            .assert_stdout_has("deaths.csv: 0 deaths recorded (1 already known)");
        assert_eq!(ledger.entitlements("MBDK", "2024-01", "2024-12"), after);

        // Re-importing the roster does not bring the dead back.
        let file = ledger.write("base_again.csv", base_csv());
        ledger
            .import_roster("MBDK", file)
            .assert_stdout_has("0 added, 0 changed, 4 unchanged");
        assert_eq!(ledger.entitlements("MBDK", "2024-01", "2024-12"), after);
    });
}

#[test]
fn employment_from_social_insurance_ends_payment_after_its_month() {
    on_every_backend(|ledger| {
        with_base_roster(ledger);
        let before = ledger.entitlements("MBDK", "2024-01", "2024-12");

        let file = ledger.write(
            "jobs_bad.csv",
            format!(
                "id_number,employer_kind,from_date\n{},机关事业单位,2024-02-10\n{},机关事业单位,2024-02-10\n",
                p4(),
                p5()
            ),
        );
        ledger
            .refused(&["import", "employment", file])
            .assert_stderr_line(&format!(
                "jobs_bad.csv row 3, column id_number: {} is on no roster",
                masked(&p5())
            ))
            .assert_stderr_line("jobs_bad.csv: refused, nothing was recorded");
        assert_eq!(ledger.entitlements("MBDK", "2024-01", "2024-12"), before);

        let file = ledger.write(
            "jobs.csv",
            format!(
                "id_number,employer_kind,from_date\n{},机关事业单位,2024-02-10\n",
                p4()
            ),
        );
        ledger
            .ok(&["import", "employment", file])
            .assert_stdout_has("jobs.csv: 1 employments recorded (0 already known)");
        let after = ledger.entitlements("MBDK", "2024-01", "2024-12");
        assert_eq!(after, without_after(&before, &p4(), "2024-02"));
        assert_eq!(months_by_id(&after)[&p4()], (2, "2024-02".into()));

        ledger
            .ok(&["import", "employment", file])
            .assert_stdout_has("jobs.csv: 0 employments recorded (1 already known)");
        assert_eq!(ledger.entitlements("MBDK", "2024-01", "2024-12"), after);
    });
}

// ---------------------------------------------------------------------------------------------
// Programs are data
// ---------------------------------------------------------------------------------------------

/// programs/mbdk.toml with Shantou's rate for 1-9 service years.
fn mbdk_with_shantou_rate() -> String {
    let text = std::fs::read_to_string(repo_file("programs/mbdk.toml")).unwrap();
    assert!(text.contains("\n[city_rates]\n"));
    text.replace(
        "\n[city_rates]\n",
        "\n[city_rates]\n\"440500\" = \"600.00\"\n",
    )
}

#[test]
fn a_city_rate_loaded_from_a_program_file_prices_the_short_service_tier() {
    on_every_backend(|ledger| {
        ledger.init();
        // 9 semesters → 5 years: the 1-9 year tier, whose rate Shantou sets.
        let short = id("440511", "1950-06-06", 61);
        let file = ledger.write(
            "short.csv",
            format!("{CN_HEADER}\n{short},钱八,男,1950-06-06,9,440511\n"),
        );
        ledger.import_roster("MBDK", file);
        ledger
            .refused(&[
                "entitlements",
                "--program",
                "MBDK",
                "--from",
                "2024-01",
                "--to",
                "2024-12",
                "--format",
                "csv",
            ])
            .assert_stderr_has("city 440500 has not set its rate for 1-9 service years; add city_rates.\"440500\" to the program file (1 person(s))");

        let file = ledger.write("mbdk_shantou.toml", mbdk_with_shantou_rate());
        ledger
            .ok(&["program", "load", file])
            .assert_stdout_has("loaded program MBDK");
        ledger
            .ok(&["program", "show", "MBDK"])
            .assert_stdout_has("各市标准 city rates: 440500 600.00");
        let csv = ledger.entitlements("MBDK", "2024-01", "2024-12");
        let mut expected =
            "id_number,month,amount,tier,service_years,province_share,city_share,county_share\n"
                .to_owned();
        for month in 1..=12 {
            // Local only (市县自行筹集), and Shantou's split is the default: all the county's.
            expected.push_str(&format!(
                "{short},2024-{month:02},600.00,1-9年,5,0.00,0.00,600.00\n"
            ));
        }
        assert_eq!(csv, expected);
    });
}

#[test]
fn a_program_whose_shares_add_up_to_90_percent_is_refused_and_nothing_changes() {
    on_every_backend(|ledger| {
        ledger.init();
        let show_before = ledger.ok(&["program", "show", "MBDK"]).stdout;
        let list_before = ledger.ok(&["program", "list"]).stdout;
        let text = std::fs::read_to_string(repo_file("programs/mbdk.toml"))
            .unwrap()
            .replace("\nprovince = 50\n", "\nprovince = 40\n");
        // Also the 1-9 year rate, so a partial write would show in `program show`.
        let text = text.replace(
            "\n[city_rates]\n",
            "\n[city_rates]\n\"440500\" = \"600.00\"\n",
        );
        let file = ledger.write("mbdk_90.toml", text);
        ledger
            .refused(&["program", "load", file])
            .assert_stderr_has("mbdk_90.toml: at `shares.rules[0]`: province + city + county + local add up to 90%, they must add up to 100%");
        assert_eq!(ledger.ok(&["program", "show", "MBDK"]).stdout, show_before);
        assert_eq!(ledger.ok(&["program", "list"]).stdout, list_before);
    });
}

#[test]
fn the_boarding_program_loads_from_its_file() {
    on_every_backend(|ledger| {
        ledger.init();
        let before = ledger.ok(&["program", "list"]).stdout;
        assert!(!before.contains("BOARDING"), "{before}");
        ledger
            .ok(&[
                "program",
                "load",
                &repo_file("programs/boarding_subsidy.toml"),
            ])
            .assert_stdout_has("loaded program BOARDING (寄宿生生活补助)");
        let after = ledger.ok(&["program", "list"]).stdout;
        let line = after
            .lines()
            .find(|l| l.starts_with("BOARDING"))
            .unwrap_or_else(|| panic!("BOARDING not listed: {after}"));
        assert!(
            line.contains("student")
                && line.contains("semester")
                && line.contains("寄宿生生活补助"),
            "{line}"
        );
        assert!(after.contains("MBDK") && after.contains("XQZZ"), "{after}");
    });
}

/// Unit-test modules inside src/ that read the program files to test the engine; they are tests,
/// not code the program needs.
const TEST_ONLY_SOURCES: [&str; 0] = [];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn a_third_program_needs_no_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    assert!(files.len() > 10, "src/ was not walked: {files:?}");
    for path in &files {
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        if TEST_ONLY_SOURCES.contains(&relative.as_str()) {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("BOARDING") && !text.contains("boarding"),
            "{relative} names the boarding program: a third program must be data only"
        );
    }

    on_every_backend(|ledger| {
        ledger.init();
        ledger.ok(&[
            "program",
            "load",
            &repo_file("programs/boarding_subsidy.toml"),
        ]);
        ledger
            .ok(&["import", "units", &repo_file("tests/data/units.csv")])
            .assert_stdout_has("registered 2 new units");
        let a = id("440511", "2015-03-04", 12);
        let b = id("441900", "2011-07-08", 21);
        let c = id("440511", "2013-10-01", 32);
        let file = ledger.write(
            "boarders.csv",
            format!(
                "id_number,name,sex,birth_date,county_code,unit_code,enrolled_from,category\n\
                 {a},小明,F,2015-03-04,440511,U44051101,2023-09,primary\n\
                 {b},小刚,男,2011-07-08,441900,u44190001,2024-02,junior_secondary\n\
                 {c},小红,女,2013-10-01,440511,U44051101,2022-09,primary\n"
            ),
        );
        ledger
            .import_roster("BOARDING", file)
            .assert_stdout_has("3 added, 0 changed, 0 unchanged");
        // 小红 stops boarding in March 2024: paid through that month, so January 2024 is her last.
        ledger.ok(&[
            "roster",
            "leave",
            "--program",
            "BOARDING",
            "--id",
            &c,
            "--date",
            "2024-03-01",
            "--reason",
            "transfer",
        ]);
        let csv = ledger.entitlements("BOARDING", "2023-01", "2025-12");
        let mut got: Vec<&str> = csv.lines().collect();
        assert_eq!(
            got.remove(0),
            "id_number,month,amount,tier,service_years,province_share,city_share,county_share"
        );
        got.sort_unstable();
        // Paid in January and July (payout_months), from the enrolment semester on. No province
        // share is written in the file: 440511's county bears it all; Dongguan (no counties) books
        // it as the city's.
        let mut expected = vec![
            format!("{a},2024-01,500.00,小学,,0.00,0.00,500.00"),
            format!("{a},2024-07,500.00,小学,,0.00,0.00,500.00"),
            format!("{a},2025-01,500.00,小学,,0.00,0.00,500.00"),
            format!("{a},2025-07,500.00,小学,,0.00,0.00,500.00"),
            format!("{b},2024-07,625.00,初中,,0.00,625.00,0.00"),
            format!("{b},2025-01,625.00,初中,,0.00,625.00,0.00"),
            format!("{b},2025-07,625.00,初中,,0.00,625.00,0.00"),
            format!("{c},2023-01,500.00,小学,,0.00,0.00,500.00"),
            format!("{c},2023-07,500.00,小学,,0.00,0.00,500.00"),
            format!("{c},2024-01,500.00,小学,,0.00,0.00,500.00"),
        ];
        expected.sort_unstable();
        assert_eq!(got, expected);
    });
}

#[test]
fn an_exclusion_a_program_file_defines_is_accepted_on_its_roster() {
    // The definition format says the roster's exclusion column holds one of the program's own
    // eligibility.exclusions; a third program with its own reason must need no code either.
    on_every_backend(|ledger| {
        ledger.init();
        let text = std::fs::read_to_string(repo_file("programs/boarding_subsidy.toml"))
            .unwrap()
            .replace("code = \"BOARDING\"", "code = \"BOARDING2\"")
            .replace("exclusions = []", "exclusions = [\"dropped_out\"]");
        let file = ledger.write("boarding2.toml", text);
        ledger.ok(&["program", "load", file]);
        ledger.ok(&["import", "units", &repo_file("tests/data/units.csv")]);
        let a = id("440511", "2015-03-04", 12);
        let file = ledger.write(
            "boarders.csv",
            format!(
                "id_number,name,sex,birth_date,county_code,unit_code,enrolled_from,category,exclusion\n\
                 {a},小明,F,2015-03-04,440511,U44051101,2023-09,primary,dropped_out\n"
            ),
        );
        ledger.import_roster("BOARDING2", file);
        assert_eq!(
            ledger.entitlements("BOARDING2", "2023-01", "2025-12"),
            "id_number,month,amount,tier,service_years,province_share,city_share,county_share\n"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// The county's tables and the city's summary
// ---------------------------------------------------------------------------------------------

/// The base roster with 李四's death on 2024-09-10 recorded: in 2024 张三 is owed 12 × 900.00,
/// 李四 9 × 800.00, 王五 (60 on 2024-05-10) 7 × 700.00 from 2024-06, 赵六 12 × 700.00. Shantou
/// shares 5:5 with the province, and its local part is the county's.
fn with_tables_roster(ledger: &Ledger) {
    with_base_roster(ledger);
    let file = ledger.write(
        "deaths.csv",
        format!(
            "id_number,death_date,source\n{},2024-09-10,公安户籍\n",
            p2()
        ),
    );
    ledger.ok(&["import", "deaths", file]);
}

fn table(ledger: &Ledger, kind: &str, place: &[&str], format: &str, out: &str) -> Run {
    let mut args = vec!["table", kind, "--program", "MBDK", "--year", "2024"];
    args.extend_from_slice(place);
    args.extend_from_slice(&["--format", format, "--out", out]);
    ledger.ok(&args)
}

#[test]
fn the_county_roster_table_in_csv_and_xlsx() {
    on_every_backend(|ledger| {
        with_tables_roster(ledger);
        let county = ["--county", "440511"];
        table(ledger, "roster", &county, "csv", "roster.csv").assert_stdout_has("(4 rows)");
        let csv = ledger.read_text("roster.csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines,
            vec![
                "no,name,id_number,sex,birth_date,service_years,tier,monthly_amount,start_month,months,amount,unit".to_owned(),
                format!("1,张三,{},男,1958-03-01,30,30年及以上,900.00,2024-01,12,10800.00,", p1()),
                format!("2,李四,{},女,1962-07-15,23,20-29年,800.00,2024-01,9,7200.00,", p2()),
                format!("3,王五,{},男,1964-05-10,12,10-19年,700.00,2024-06,7,4900.00,", p3()),
                format!("4,赵六,{},女,1966-11-20,10,10-19年,700.00,2024-01,12,8400.00,", p4()),
                "合计,,,,,,,,,40,31300.00,".to_owned(),
            ]
        );

        table(ledger, "roster", &county, "xlsx", "roster.xlsx");
        let rows = xlsx_rows(&ledger.path("roster.xlsx"));
        assert!(rows[0][0].contains("发放对象名册表"), "{rows:?}");
        let header = row_with(&rows, 0, "序号");
        assert_eq!(
            header,
            [
                "序号",
                "姓名",
                "身份证号",
                "性别",
                "出生日期",
                "工作年限",
                "补助档次",
                "月补助标准",
                "起发月份",
                "本年月数",
                "本年应发金额",
                "发放单位"
            ]
        );
        let wang = row_with(&rows, 1, "王五");
        assert_eq!(
            wang,
            [
                "3",
                "王五",
                p3().as_str(),
                "男",
                "1964-05-10",
                "12",
                "10-19年",
                "700",
                "2024-06",
                "7",
                "4900",
                ""
            ]
        );
        let totals = row_with(&rows, 0, "合计");
        assert_eq!(totals[9], "40");
        assert_eq!(totals[10], "31300");
    });
}

#[test]
fn the_county_summary_and_the_city_summary_in_csv_and_xlsx() {
    on_every_backend(|ledger| {
        with_tables_roster(ledger);
        let county = ["--county", "440511"];
        table(ledger, "summary", &county, "csv", "summary.csv");
        assert_eq!(
            ledger.read_text("summary.csv"),
            "tier,persons,monthly_amount,amount,province_share,city_share,county_share\n\
             30年及以上,1,900.00,10800.00,5400.00,0.00,5400.00\n\
             20-29年,1,800.00,7200.00,3600.00,0.00,3600.00\n\
             10-19年,2,700.00,13300.00,6650.00,0.00,6650.00\n\
             合计,4,,31300.00,15650.00,0.00,15650.00\n"
        );
        table(ledger, "summary", &county, "xlsx", "summary.xlsx");
        let rows = xlsx_rows(&ledger.path("summary.xlsx"));
        assert_eq!(
            row_with(&rows, 0, "补助档次"),
            [
                "补助档次",
                "人数",
                "补助标准",
                "年度应发金额",
                "省级负担",
                "市级负担",
                "县级负担"
            ]
        );
        assert_eq!(
            row_with(&rows, 0, "10-19年"),
            ["10-19年", "2", "700", "13300", "6650", "0", "6650"]
        );
        assert_eq!(
            row_with(&rows, 0, "合计"),
            ["合计", "4", "", "31300", "15650", "0", "15650"]
        );

        let city = ["--city", "440500"];
        table(ledger, "city-summary", &city, "csv", "city.csv");
        let csv = ledger.read_text("city.csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "county_code,county,tier_30,tier_20,tier_10,tier_1,persons,amount,province_share,city_share,county_share"
        );
        assert!(lines.contains(&"440511,金平区,1,1,2,0,4,31300.00,15650.00,0.00,15650.00"));
        assert!(lines.contains(&"440507,龙湖区,0,0,0,0,0,0.00,0.00,0.00,0.00"));
        assert_eq!(
            lines.last().copied(),
            Some("合计,,1,1,2,0,4,31300.00,15650.00,0.00,15650.00")
        );
        table(ledger, "city-summary", &city, "xlsx", "city.xlsx");
        let rows = xlsx_rows(&ledger.path("city.xlsx"));
        assert!(
            rows[0][0].contains("汕头市") && rows[0][0].contains("附件5"),
            "{rows:?}"
        );
        assert_eq!(
            row_with(&rows, 0, "县区代码"),
            [
                "县区代码",
                "县（市、区）",
                "30年及以上",
                "20-29年",
                "10-19年",
                "1-9年",
                "合计人数",
                "年度应发金额",
                "省级负担",
                "市级负担",
                "县级负担"
            ]
        );
        assert_eq!(
            row_with(&rows, 0, "440511"),
            [
                "440511",
                "金平区",
                "1",
                "1",
                "2",
                "0",
                "4",
                "31300",
                "15650",
                "0",
                "15650"
            ]
        );
        assert_eq!(
            row_with(&rows, 0, "合计"),
            [
                "合计", "", "1", "1", "2", "0", "4", "31300", "15650", "0", "15650"
            ]
        );

        // A county is not a city, and a city is not a county.
        ledger
            .refused(&[
                "table",
                "city-summary",
                "--program",
                "MBDK",
                "--year",
                "2024",
                "--city",
                "440511",
                "--out",
                "x.csv",
            ])
            .assert_stderr_has("parameter city: \"440511\" is not a city");
        ledger
            .refused(&[
                "table",
                "summary",
                "--program",
                "MBDK",
                "--year",
                "2024",
                "--county",
                "440500",
                "--out",
                "x.csv",
            ])
            .assert_stderr_has("parameter county: \"440500\" is not a county");
    });
}

#[test]
fn the_changes_table_lists_additions_and_reductions() {
    on_every_backend(|ledger| {
        with_tables_roster(ledger);
        let county = ["--county", "440511"];
        table(ledger, "changes", &county, "csv", "changes.csv");
        assert_eq!(
            ledger.read_text("changes.csv"),
            format!(
                "change,name,id_number,reason,date,from_month,monthly_amount\n\
                 增,王五,{},达到年龄条件,,2024-06,700.00\n\
                 减,李四,{},去世（公安户籍）,2024-09-10,2024-09,\n",
                p3(),
                p2()
            )
        );
        table(ledger, "changes", &county, "xlsx", "changes.xlsx");
        let rows = xlsx_rows(&ledger.path("changes.xlsx"));
        assert_eq!(
            row_with(&rows, 0, "增减"),
            [
                "增减",
                "姓名",
                "身份证号",
                "原因",
                "日期",
                "起止月份",
                "月补助标准"
            ]
        );
        assert_eq!(
            row_with(&rows, 0, "增"),
            [
                "增",
                "王五",
                p3().as_str(),
                "达到年龄条件",
                "",
                "2024-06",
                "700"
            ]
        );
        assert_eq!(
            row_with(&rows, 0, "减"),
            [
                "减",
                "李四",
                p2().as_str(),
                "去世（公安户籍）",
                "2024-09-10",
                "2024-09",
                ""
            ]
        );
    });
}

#[test]
fn the_public_notice_shows_masked_ids_only() {
    on_every_backend(|ledger| {
        with_tables_roster(ledger);
        let county = ["--county", "440511"];
        table(ledger, "notice", &county, "csv", "notice.csv");
        let csv = ledger.read_text("notice.csv");
        // Only 王五 is new in 2024 (60 on 2024-05-10).
        assert_eq!(
            csv,
            format!(
                "no,name,sex,id_number,service_years,monthly_amount,township\n\
                 1,王五,男,440511********{},12,700.00,\n",
                &p3()[14..]
            )
        );
        assert!(!has_full_id(&csv), "{csv}");

        table(ledger, "notice", &county, "xlsx", "notice.xlsx");
        let rows = xlsx_rows(&ledger.path("notice.xlsx"));
        assert_eq!(
            row_with(&rows, 0, "序号"),
            [
                "序号",
                "姓名",
                "性别",
                "身份证号",
                "工作年限",
                "月补助标准",
                "乡镇（街道）"
            ]
        );
        let wang = row_with(&rows, 1, "王五");
        assert_eq!(wang[3], masked(&p3()));
        for row in &rows {
            for cell in row {
                assert!(!has_full_id(cell), "full ID in the notice: {cell}");
            }
        }
        table(ledger, "notice", &county, "html", "notice.html");
        let html = ledger.read_text("notice.html");
        assert!(html.contains("王五") && !has_full_id(&html), "{html}");
        table(ledger, "notice", &county, "json", "notice.json");
        let json = ledger.read_text("notice.json");
        assert!(json.contains("王五") && !has_full_id(&json), "{json}");
    });
}

// ---------------------------------------------------------------------------------------------
// The annual cycle
// ---------------------------------------------------------------------------------------------

#[test]
fn the_annual_cycle_records_stages_and_names_what_is_overdue() {
    on_every_backend(|ledger| {
        with_base_roster(ledger);
        let record = |stage: &str, extra: &[&str]| {
            let mut args = vec![
                "cycle",
                "record",
                "--program",
                "MBDK",
                "--year",
                "2024",
                "--stage",
                stage,
            ];
            args.extend_from_slice(extra);
            ledger.run(&args)
        };
        let p3 = p3();
        let run = record("apply", &["--id", &p3, "--date", "2024-03-20"]);
        assert_eq!(run.code, Some(0), "{}", run.show());
        run.assert_stdout_has("recorded 申请 for 1 person(s) (0 already recorded)");
        // The same stage with the same date: nothing new.
        let run = record("申请", &["--id", &p3, "--date", "2024-03-20"]);
        assert_eq!(run.code, Some(0), "{}", run.show());
        run.assert_stdout_has("recorded 申请 for 0 person(s) (1 already recorded)");
        // With another date: refused.
        let run = record("apply", &["--id", &p3, "--date", "2024-03-21"]);
        assert_eq!(run.code, Some(1), "{}", run.show());
        run.assert_stderr_has(&format!(
            "column date: apply of 440511********{} was recorded on 2024-03-20 already",
            &p3[14..]
        ))
        .assert_stderr_has("refused, nothing was recorded");

        // From a file, with the actor; a person on no roster refuses the file.
        let file = ledger.write(
            "review_bad.csv",
            format!(
                "id_number,date,actor\n{p3},2024-03-27,金平区教育局\n{},2024-03-27,金平区教育局\n",
                p5()
            ),
        );
        let run = record("township_review", &["--file", file]);
        assert_eq!(run.code, Some(1), "{}", run.show());
        run.assert_stderr_line(&format!(
            "review_bad.csv row 3, column id_number: {} is not on the MBDK roster",
            masked(&p5())
        ))
        .assert_stderr_line("review_bad.csv: refused, nothing was recorded");
        let file = ledger.write(
            "review.csv",
            format!("id_number,date,actor\n{p3},2024-03-27,金平区教育局\n"),
        );
        let run = record("township_review", &["--file", file]);
        assert_eq!(run.code, Some(0), "{}", run.show());
        run.assert_stdout_has("recorded 初审 for 1 person(s)");

        // On 6 May 2024 the county review (due 30 April) is 6 days overdue.
        let status = ledger.ok(&[
            "cycle",
            "status",
            "--program",
            "MBDK",
            "--year",
            "2024",
            "--as-of",
            "2024-05-06",
        ]);
        let masked = masked(&p3);
        let line = status
            .stdout
            .lines()
            .find(|l| l.contains(" overdue "))
            .unwrap_or_else(|| panic!("no overdue stage{}", status.show()));
        for part in [
            masked.as_str(),
            "王五",
            "审核",
            "2024-04-30",
            " 6 ",
            "（三）审核: county education, finance, HR and health review by 2024-04-30",
        ] {
            assert!(line.contains(part), "{part:?} missing from {line:?}");
        }
        status.assert_stdout_has("stages: on_time: 2, overdue: 1, waiting: 3");
        assert_eq!(
            status
                .stdout
                .lines()
                .filter(|l| l.contains(" overdue "))
                .count(),
            1,
            "{}",
            status.show()
        );
        // Those who reached the age before 2024 are not in 2024's cycle; no full IDs are printed.
        assert!(!status.stdout.contains("张三"), "{}", status.show());
        assert!(!has_full_id(&status.stdout), "{}", status.show());
    });
}

#[test]
fn a_repeated_stage_given_with_id_is_refused_without_a_made_up_row_number() {
    on_every_backend(|ledger| {
        with_base_roster(ledger);
        let p3 = p3();
        let args = |date: &'static str| {
            vec![
                "cycle".to_owned(),
                "record".into(),
                "--program".into(),
                "MBDK".into(),
                "--year".into(),
                "2024".into(),
                "--stage".into(),
                "apply".into(),
                "--id".into(),
                p3.clone(),
                "--date".into(),
                date.into(),
            ]
        };
        let first = args("2024-03-20");
        ledger.ok(&first.iter().map(String::as_str).collect::<Vec<_>>());
        let second = args("2024-03-21");
        let run = ledger.refused(&second.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            !run.stderr.contains("row 0"),
            "a single --id has no row 0{}",
            run.show()
        );
    });
}
