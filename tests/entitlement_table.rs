//! A hand-checked year of MBDK (原民办代课教师生活困难补助) entitlements: 43 people imported through the
//! real `earmark` binary, `entitlements --from 2024-01 --to 2024-12` run, and every person's months,
//! yearly total and each level's share compared with values worked out by hand from the policy
//! (DOMAIN.md "Programs", programs/mbdk.toml) and written literally below. Nothing here computes an
//! expected value with the code under test.
//!
//! The rules used by hand:
//! - eligible with at least 2 semesters, at 60 (men) / 55 (women); service years = ceil(semesters / 2);
//!   900.00 from 30 years, 800.00 from 20, 700.00 from 10 (nobody here is in the 1-9 year tier, which
//!   needs a city rate);
//! - age reached on or before 2018-12-31: paid from 2019-01; later: from the month after the month
//!   the age is reached (a 29 February birthday reaches it on 28 February in a common year);
//! - paid through the month of death, of leaving, of employment; death on or before 2018-12-31 or an
//!   exclusion: never paid;
//! - Shantou (440500) and Taishan (440781): province 50 %, local 50 %; elsewhere local 100 %; the
//!   local part is the county's (default split city 0 / county 100), and Dongguan (441900, no
//!   counties) books it as the city's.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{Kind, TestDb};
use earmark::id_number::make_id;

struct Ledger {
    db: TestDb,
}

impl Ledger {
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_earmark"))
            .arg("--db")
            .arg(&self.db.url)
            .args(args)
            .current_dir(self.db.dir.path())
            .env_remove("EARMARK_DB")
            .env_remove("EARMARK_LOG")
            .output()
            .expect("run the earmark binary");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs and demands success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(
            code,
            Some(0),
            "[{:?}] earmark {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            self.db.kind,
            args.join(" ")
        );
        stdout
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.db.dir.path().join(name);
        std::fs::write(&path, contents).expect("write test input");
        path.display().to_string()
    }
}

async fn drop_database(url: &str) {
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    let server = std::env::var("EARMARK_TEST_PG").expect("EARMARK_TEST_PG");
    sqlx::any::install_default_drivers();
    if let Ok(mut conn) = <sqlx::AnyConnection as sqlx::Connection>::connect(&server).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut conn)
        .await;
    }
}

/// One person of the year: who they are, and what they are owed in 2024 by hand.
struct Person {
    /// Also the name on the roster.
    label: &'static str,
    county: &'static str,
    sex: &'static str,
    birth: &'static str,
    semesters: &'static str,
    exclusion: &'static str,
    /// In the roster file's death_date column.
    death_in_file: &'static str,
    expected: Expected,
}

/// Owed in 2024: months paid, first and last month, the year's total and each level's part.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Expected {
    months: usize,
    first: &'static str,
    last: &'static str,
    monthly: &'static str,
    total: &'static str,
    province: &'static str,
    city: &'static str,
    county: &'static str,
}

const NONE: Expected = Expected {
    months: 0,
    first: "",
    last: "",
    monthly: "",
    total: "0.00",
    province: "0.00",
    city: "0.00",
    county: "0.00",
};

#[allow(clippy::too_many_arguments)]
const fn owed(
    months: usize,
    first: &'static str,
    last: &'static str,
    monthly: &'static str,
    total: &'static str,
    province: &'static str,
    city: &'static str,
    county: &'static str,
) -> Expected {
    Expected {
        months,
        first,
        last,
        monthly,
        total,
        province,
        city,
        county,
    }
}

const fn person(
    label: &'static str,
    county: &'static str,
    sex: &'static str,
    birth: &'static str,
    semesters: &'static str,
    expected: Expected,
) -> Person {
    Person {
        label,
        county,
        sex,
        birth,
        semesters,
        exclusion: "",
        death_in_file: "",
        expected,
    }
}

/// Everyone, with their 2024 entitlement worked out by hand.
fn people() -> Vec<Person> {
    const JS: &str = "440511"; // 汕头市金平区: 5:5 with the province, local part the county's.
    vec![
        // Service tiers, all of age long before the cutoff: 12 months each.
        // 60 semesters → 30 years → 900.00; half of each month is the province's.
        person(
            "A01",
            JS,
            "M",
            "1950-01-15",
            "60",
            owed(
                12, "2024-01", "2024-12", "900.00", "10800.00", "5400.00", "0.00", "5400.00",
            ),
        ),
        // 59 → ceil(29.5) = 30 years → still 900.00.
        person(
            "A02",
            JS,
            "M",
            "1952-06-01",
            "59",
            owed(
                12, "2024-01", "2024-12", "900.00", "10800.00", "5400.00", "0.00", "5400.00",
            ),
        ),
        // 40 → 20 years → 800.00.
        person(
            "A03",
            JS,
            "F",
            "1955-03-03",
            "40",
            owed(
                12, "2024-01", "2024-12", "800.00", "9600.00", "4800.00", "0.00", "4800.00",
            ),
        ),
        // 39 → 20 years → 800.00.
        person(
            "A04",
            JS,
            "F",
            "1956-08-08",
            "39",
            owed(
                12, "2024-01", "2024-12", "800.00", "9600.00", "4800.00", "0.00", "4800.00",
            ),
        ),
        // 20 → 10 years → 700.00.
        person(
            "A05",
            JS,
            "M",
            "1953-09-09",
            "20",
            owed(
                12, "2024-01", "2024-12", "700.00", "8400.00", "4200.00", "0.00", "4200.00",
            ),
        ),
        // 19 → 10 years → 700.00.
        person(
            "A06",
            JS,
            "M",
            "1954-10-10",
            "19",
            owed(
                12, "2024-01", "2024-12", "700.00", "8400.00", "4200.00", "0.00", "4200.00",
            ),
        ),
        // 1 semester: less than a school year, never paid. 0 semesters likewise.
        person("A07", JS, "M", "1955-01-01", "1", NONE),
        person("A08", JS, "M", "1955-01-02", "0", NONE),
        // 61 → 31 years → 900.00; 58 → 29 → 800.00; 21 → 11 → 700.00; 120 → 60 → 900.00.
        person(
            "A31",
            JS,
            "F",
            "1960-09-09",
            "61",
            owed(
                12, "2024-01", "2024-12", "900.00", "10800.00", "5400.00", "0.00", "5400.00",
            ),
        ),
        person(
            "A32",
            JS,
            "M",
            "1955-11-11",
            "58",
            owed(
                12, "2024-01", "2024-12", "800.00", "9600.00", "4800.00", "0.00", "4800.00",
            ),
        ),
        person(
            "A33",
            JS,
            "F",
            "1961-12-12",
            "21",
            owed(
                12, "2024-01", "2024-12", "700.00", "8400.00", "4200.00", "0.00", "4200.00",
            ),
        ),
        person(
            "A34",
            JS,
            "M",
            "1950-12-25",
            "120",
            owed(
                12, "2024-01", "2024-12", "900.00", "10800.00", "5400.00", "0.00", "5400.00",
            ),
        ),
        // Reaching the age during 2024: paid from the month after.
        // Man, 60 on 2024-05-10 → from 2024-06: 7 months.
        person(
            "A09",
            JS,
            "M",
            "1964-05-10",
            "60",
            owed(
                7, "2024-06", "2024-12", "900.00", "6300.00", "3150.00", "0.00", "3150.00",
            ),
        ),
        // Woman, 55 on 2024-01-01 → from 2024-02: 11 months.
        person(
            "A10",
            JS,
            "F",
            "1969-01-01",
            "40",
            owed(
                11, "2024-02", "2024-12", "800.00", "8800.00", "4400.00", "0.00", "4400.00",
            ),
        ),
        // Woman, 55 on 2024-12-31 → from 2025-01: nothing in 2024.
        person("A11", JS, "F", "1969-12-31", "30", NONE),
        // Man, 60 on 2024-12-01 → from 2025-01: nothing in 2024.
        person("A12", JS, "M", "1964-12-01", "20", NONE),
        // Man, 60 on 2024-11-30 → from 2024-12: 1 month.
        person(
            "A13",
            JS,
            "M",
            "1964-11-30",
            "20",
            owed(
                1, "2024-12", "2024-12", "700.00", "700.00", "350.00", "0.00", "350.00",
            ),
        ),
        // 29 February: a man of 1964-02-29 is 60 on 2024-02-29 (a leap year) → from 2024-03.
        person(
            "A14",
            JS,
            "M",
            "1964-02-29",
            "60",
            owed(
                10, "2024-03", "2024-12", "900.00", "9000.00", "4500.00", "0.00", "4500.00",
            ),
        ),
        // A woman of 1964-02-29 was 55 on 2019-02-28 (common year) → from 2019-03: all of 2024.
        person(
            "A15",
            JS,
            "F",
            "1964-02-29",
            "40",
            owed(
                12, "2024-01", "2024-12", "800.00", "9600.00", "4800.00", "0.00", "4800.00",
            ),
        ),
        // Woman, 55 on 2024-06-15 → from 2024-07: 6 months; 39 semesters → 20 years.
        person(
            "A35",
            JS,
            "F",
            "1969-06-15",
            "39",
            owed(
                6, "2024-07", "2024-12", "800.00", "4800.00", "2400.00", "0.00", "2400.00",
            ),
        ),
        // Woman, 55 on 2023-12-31 → from 2024-01: all 12.
        person(
            "A36",
            JS,
            "F",
            "1968-12-31",
            "60",
            owed(
                12, "2024-01", "2024-12", "900.00", "10800.00", "5400.00", "0.00", "5400.00",
            ),
        ),
        // Woman, 55 on 2024-02-01 → from 2024-03: 10 months.
        person(
            "A37",
            JS,
            "F",
            "1969-02-01",
            "20",
            owed(
                10, "2024-03", "2024-12", "700.00", "7000.00", "3500.00", "0.00", "3500.00",
            ),
        ),
        // The cutoff: 60 on 2018-12-31 (the cutoff itself) → from 2019-01; 55 / 60 on 2019-01-01
        // (a day after) → from 2019-02. All paid the whole of 2024.
        person(
            "A16",
            JS,
            "M",
            "1958-12-31",
            "60",
            owed(
                12, "2024-01", "2024-12", "900.00", "10800.00", "5400.00", "0.00", "5400.00",
            ),
        ),
        person(
            "A17",
            JS,
            "F",
            "1964-01-01",
            "20",
            owed(
                12, "2024-01", "2024-12", "700.00", "8400.00", "4200.00", "0.00", "4200.00",
            ),
        ),
        person(
            "A18",
            JS,
            "M",
            "1959-01-01",
            "40",
            owed(
                12, "2024-01", "2024-12", "800.00", "9600.00", "4800.00", "0.00", "4800.00",
            ),
        ),
        // Deaths. In the roster file: died 2024-04-30 → paid January to April.
        Person {
            death_in_file: "2024-04-30",
            ..person(
                "A19",
                JS,
                "M",
                "1950-07-07",
                "60",
                owed(
                    4, "2024-01", "2024-04", "900.00", "3600.00", "1800.00", "0.00", "1800.00",
                ),
            )
        },
        // From `import deaths` (卫健): died 2024-09-01 → paid January to September.
        person(
            "A20",
            JS,
            "F",
            "1955-05-05",
            "40",
            owed(
                9, "2024-01", "2024-09", "800.00", "7200.00", "3600.00", "0.00", "3600.00",
            ),
        ),
        // Died on the cutoff day 2018-12-31: never paid.
        Person {
            death_in_file: "2018-12-31",
            ..person("A21", JS, "M", "1940-01-01", "60", NONE)
        },
        // Died 2019-01-15: paid January 2019 only, nothing in 2024.
        Person {
            death_in_file: "2019-01-15",
            ..person("A22", JS, "F", "1950-01-01", "60", NONE)
        },
        // 60 on 2024-05-12, died 2024-05-20, before the first month (2024-06) came: nothing.
        Person {
            death_in_file: "2024-05-20",
            ..person("A23", JS, "M", "1964-05-12", "60", NONE)
        },
        // 60 on 2024-03-15 → from 2024-04; died 2024-08-15 (import deaths) → April to August.
        person(
            "A24",
            JS,
            "M",
            "1964-03-15",
            "40",
            owed(
                5, "2024-04", "2024-08", "800.00", "4000.00", "2000.00", "0.00", "2000.00",
            ),
        ),
        // Exclusions (不列入): never paid.
        Person {
            exclusion: "retired_in_plan",
            ..person("A25", JS, "M", "1950-02-02", "60", NONE)
        },
        Person {
            exclusion: "criminal_record",
            ..person("A26", JS, "F", "1956-03-03", "40", NONE)
        },
        Person {
            exclusion: "dismissed",
            ..person("A27", JS, "M", "1951-04-04", "20", NONE)
        },
        // Employed as staff from 2024-02-10 (社保): paid January and February.
        person(
            "A28",
            JS,
            "M",
            "1956-06-06",
            "60",
            owed(
                2, "2024-01", "2024-02", "900.00", "1800.00", "900.00", "0.00", "900.00",
            ),
        ),
        // Employed from 2023-11-01: nothing in 2024.
        person("A29", JS, "F", "1960-07-07", "20", NONE),
        // Transferred out on 2024-06-30 (roster leave): January to June.
        person(
            "A30",
            JS,
            "M",
            "1957-08-08",
            "40",
            owed(
                6, "2024-01", "2024-06", "800.00", "4800.00", "2400.00", "0.00", "2400.00",
            ),
        ),
        // Guangzhou 荔湾区: not in the 5:5 list, all local, all the county's.
        person(
            "G01",
            "440103",
            "M",
            "1950-03-03",
            "60",
            owed(
                12, "2024-01", "2024-12", "900.00", "10800.00", "0.00", "0.00", "10800.00",
            ),
        ),
        // 55 on 2024-04-20 → from 2024-05: 8 months.
        person(
            "G02",
            "440103",
            "F",
            "1969-04-20",
            "40",
            owed(
                8, "2024-05", "2024-12", "800.00", "6400.00", "0.00", "0.00", "6400.00",
            ),
        ),
        // Dongguan, a city without counties: all local, booked as the city's.
        person(
            "D01",
            "441900",
            "M",
            "1952-05-05",
            "20",
            owed(
                12, "2024-01", "2024-12", "700.00", "8400.00", "0.00", "8400.00", "0.00",
            ),
        ),
        // 59 semesters → 30 years; 55 on 2019-10-10 → from 2019-11: all of 2024.
        person(
            "D02",
            "441900",
            "F",
            "1964-10-10",
            "59",
            owed(
                12, "2024-01", "2024-12", "900.00", "10800.00", "0.00", "10800.00", "0.00",
            ),
        ),
        // Jiangmen: 台山 (440781) is listed by its own code → 5:5; 蓬江区 (440703) is not → all local.
        person(
            "T01",
            "440781",
            "M",
            "1955-07-07",
            "40",
            owed(
                12, "2024-01", "2024-12", "800.00", "9600.00", "4800.00", "0.00", "4800.00",
            ),
        ),
        person(
            "J01",
            "440703",
            "F",
            "1960-08-08",
            "20",
            owed(
                12, "2024-01", "2024-12", "700.00", "8400.00", "0.00", "0.00", "8400.00",
            ),
        ),
    ]
}

/// The year's grand totals, added up by hand from the table above:
/// amount, province, city, county, and the number of person-months.
const GRAND_TOTAL: (&str, &str, &str, &str, usize) =
    ("258800.00", "107000.00", "19200.00", "132600.00", 319);

/// The person's ID number: an odd sequence is a man, an even one a woman.
fn id_of(index: usize, p: &Person) -> String {
    let base = u16::try_from(index * 2 + 100).unwrap();
    let sequence = if p.sex == "M" { base + 1 } else { base };
    make_id(p.county, common::day(p.birth), sequence)
        .as_str()
        .to_owned()
}

/// Adds two amounts written with two decimals (test arithmetic on literal strings, in fen).
fn fen(text: &str) -> i64 {
    let (yuan, cents) = text.split_once('.').expect("two decimals");
    yuan.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn check_year(ledger: &Ledger) {
    let people = people();
    ledger.ok(&["init"]);
    let mut roster =
        String::from("id_number,name,sex,birth_date,semesters,county_code,exclusion,death_date\n");
    let ids: Vec<String> = people
        .iter()
        .enumerate()
        .map(|(i, p)| id_of(i, p))
        .collect();
    for (p, id) in people.iter().zip(&ids) {
        roster.push_str(&format!(
            "{id},{},{},{},{},{},{},{}\n",
            p.label, p.sex, p.birth, p.semesters, p.county, p.exclusion, p.death_in_file
        ));
    }
    let file = ledger.write("year.csv", &roster);
    let out = ledger.ok(&["import", "roster", "--program", "MBDK", &file]);
    assert!(out.contains(&format!("{} added", people.len())), "{out}");
    let by_label = |label: &str| {
        let i = people.iter().position(|p| p.label == label).unwrap();
        ids[i].clone()
    };

    // Deaths from the household registry and health data, employment from social insurance, and a
    // transfer recorded by hand.
    let deaths = ledger.write(
        "deaths.csv",
        &format!(
            "id_number,death_date,source\n{},2024-09-01,卫健\n{},2024-08-15,公安户籍\n",
            by_label("A20"),
            by_label("A24")
        ),
    );
    ledger.ok(&["import", "deaths", &deaths]);
    let jobs = ledger.write(
        "jobs.csv",
        &format!(
            "id_number,employer_kind,from_date\n{},机关事业单位,2024-02-10\n{},机关事业单位,2023-11-01\n",
            by_label("A28"),
            by_label("A29")
        ),
    );
    ledger.ok(&["import", "employment", &jobs]);
    ledger.ok(&[
        "roster",
        "leave",
        "--program",
        "MBDK",
        "--id",
        &by_label("A30"),
        "--date",
        "2024-06-30",
        "--reason",
        "transfer",
    ]);

    let csv = ledger.ok(&[
        "entitlements",
        "--program",
        "MBDK",
        "--from",
        "2024-01",
        "--to",
        "2024-12",
        "--format",
        "csv",
    ]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id_number,month,amount,tier,service_years,province_share,city_share,county_share")
    );
    // Per person: the months, the amounts and the shares as the binary wrote them.
    let mut got: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for line in lines {
        let cells: Vec<String> = line.split(',').map(String::from).collect();
        assert_eq!(cells.len(), 8, "{line}");
        got.entry(cells[0].clone()).or_default().push(cells);
    }
    let known: std::collections::BTreeSet<&String> = ids.iter().collect();
    for id in got.keys() {
        assert!(
            known.contains(id),
            "entitlements for someone not imported: {id}"
        );
    }

    let mut failures = Vec::new();
    let (mut amount, mut province, mut city, mut county, mut months) = (0, 0, 0, 0, 0);
    for (p, id) in people.iter().zip(&ids) {
        let rows = got.get(id).cloned().unwrap_or_default();
        let sum = |col: usize| rows.iter().map(|r| fen(&r[col])).sum::<i64>();
        let monthly = rows.first().map_or("", |r| r[2].as_str());
        let summary = (
            rows.len(),
            rows.first().map_or(String::new(), |r| r[1].clone()),
            rows.last().map_or(String::new(), |r| r[1].clone()),
            monthly.to_owned(),
            yuan(sum(2)),
            yuan(sum(5)),
            yuan(sum(6)),
            yuan(sum(7)),
        );
        let e = &p.expected;
        let wanted = (
            e.months,
            e.first.to_owned(),
            e.last.to_owned(),
            e.monthly.to_owned(),
            e.total.to_owned(),
            e.province.to_owned(),
            e.city.to_owned(),
            e.county.to_owned(),
        );
        if summary != wanted {
            failures.push(format!(
                "{} ({} {} born {}, {} semesters, county {}):\n    got      {summary:?}\n    expected {wanted:?}",
                p.label, id, p.sex, p.birth, p.semesters, p.county
            ));
        }
        // Every month is paid in full at one rate, and the parts add up to it.
        for r in &rows {
            if r[2] != e.monthly || fen(&r[5]) + fen(&r[6]) + fen(&r[7]) != fen(&r[2]) {
                failures.push(format!("{}: bad row {r:?}", p.label));
            }
        }
        // Consecutive months, no gaps, no repeats.
        let months_seen: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        let mut sorted = months_seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted != months_seen {
            failures.push(format!("{}: months out of order {months_seen:?}", p.label));
        }
        amount += sum(2);
        province += sum(5);
        city += sum(6);
        county += sum(7);
        months += rows.len();
    }
    assert!(
        failures.is_empty(),
        "[{:?}] {} of {} people differ from the hand-worked year:\n{}",
        ledger.db.kind,
        failures.len(),
        people.len(),
        failures.join("\n")
    );
    let (t_amount, t_province, t_city, t_county, t_months) = GRAND_TOTAL;
    assert_eq!(
        (
            yuan(amount),
            yuan(province),
            yuan(city),
            yuan(county),
            months
        ),
        (
            t_amount.to_owned(),
            t_province.to_owned(),
            t_city.to_owned(),
            t_county.to_owned(),
            t_months
        ),
        "grand totals"
    );
}

#[test]
fn a_hand_checked_year_of_mbdk_entitlements() {
    let people = people();
    assert!(people.len() >= 30);
    // The hand-written grand total agrees with the hand-written rows.
    let add = |f: fn(&Expected) -> &str| people.iter().map(|p| fen(f(&p.expected))).sum::<i64>();
    assert_eq!(
        (
            yuan(add(|e| e.total)),
            yuan(add(|e| e.province)),
            yuan(add(|e| e.city)),
            yuan(add(|e| e.county)),
            people.iter().map(|p| p.expected.months).sum::<usize>()
        ),
        (
            GRAND_TOTAL.0.to_owned(),
            GRAND_TOTAL.1.to_owned(),
            GRAND_TOTAL.2.to_owned(),
            GRAND_TOTAL.3.to_owned(),
            GRAND_TOTAL.4
        ),
        "the literal table does not add up to its own totals"
    );
    for p in &people {
        let e = &p.expected;
        assert_eq!(
            fen(e.total),
            fen(e.province) + fen(e.city) + fen(e.county),
            "{}",
            p.label
        );
        if e.months > 0 {
            assert_eq!(
                fen(e.total),
                fen(e.monthly) * e.months as i64,
                "{}",
                p.label
            );
        }
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut failed = Vec::new();
    for kind in common::backends() {
        let ledger = Ledger {
            db: rt.block_on(common::fresh_db(kind)),
        };
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_year(&ledger)));
        match outcome {
            Ok(()) if kind == Kind::Postgres => rt.block_on(drop_database(&ledger.db.url)),
            Ok(()) => {}
            Err(_) => failed.push(format!("{kind:?} (database kept: {})", ledger.db.url)),
        }
    }
    assert!(failed.is_empty(), "failed on: {}", failed.join(", "));
}
