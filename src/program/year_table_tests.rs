//! A hand-checked county roster: one whole year (2024) of MBDK entitlements, the expected figures worked out from the policy by hand.
//!
//! The program is the shipped MBDK file plus three city rates for the 1-9 year tier (Guangzhou 500.00,
//! Shantou 300.00, Dongguan 400.00) and Shantou's local split city 1 : county 1. Rates in force: 30+
//! years 900.00, 20-29 800.00, 10-19 700.00. Province 50% in the 14 cities and Enping / Kaiping / Taishan,
//! never on the city-rate tier. Expected columns: months paid in 2024, total yuan, province yuan, city yuan.

use super::tests::{after_line, date, person, ym};
use super::*;
use crate::id_number::Sex::{self, Female as F, Male as M};

const GUANGZHOU: (&str, &str) = ("440106", "440100");
const SHANTOU: (&str, &str) = ("440507", "440500");
const SHAOGUAN: (&str, &str) = ("440203", "440200");
const SHENZHEN: (&str, &str) = ("440303", "440300");
const FOSHAN: (&str, &str) = ("440604", "440600");
const JIANGMEN_PENGJIANG: (&str, &str) = ("440703", "440700");
const ENPING: (&str, &str) = ("440785", "440700");
const HUIZHOU: (&str, &str) = ("441302", "441300");
const MEIZHOU: (&str, &str) = ("441402", "441400");
const DONGGUAN: (&str, &str) = ("441900", "441900");
const ZHONGSHAN: (&str, &str) = ("442000", "442000");
const CHAOZHOU: (&str, &str) = ("445102", "445100");

/// What can end or bar payment, for the few rows that have one.
#[derive(Clone, Copy)]
enum Event {
    None,
    Died(i32, u32, u32),
    Excluded(&'static str),
    Employed(i32, u32, u32),
    Left(i32, u32, u32),
}

struct Row {
    name: &'static str,
    sex: Sex,
    birth: (i32, u32, u32),
    semesters: u32,
    region: (&'static str, &'static str),
    event: Event,
    /// Expected for 2024, worked out by hand: (months, total, province, city), in yuan.
    expected: (usize, i64, i64, i64),
    why: &'static str,
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call per roster line keeps the table readable as a table"
)]
const fn row(
    name: &'static str,
    sex: Sex,
    birth: (i32, u32, u32),
    semesters: u32,
    region: (&'static str, &'static str),
    event: Event,
    expected: (usize, i64, i64, i64),
    why: &'static str,
) -> Row {
    Row {
        name,
        sex,
        birth,
        semesters,
        region,
        event,
        expected,
        why,
    }
}

use Event::{Died, Employed, Excluded, Left, None as Nothing};

#[rustfmt::skip]
const ROSTER: [Row; 35] = [
    row("张一", M, (1950, 5, 10), 60, GUANGZHOU, Nothing, (12, 10_800, 0, 0), "30 years, 900 x 12, all local (county)"),
    row("李二", F, (1960, 3, 15), 40, SHANTOU, Nothing, (12, 9_600, 4_800, 2_400), "20 years, 800 x 12; 5:5, local 1:1"),
    row("王三", M, (1964, 1, 1), 30, ENPING, Nothing, (11, 7_700, 3_850, 0), "60 on 2024-01-01, from Feb; 15 years 700"),
    row("赵四", M, (1963, 12, 31), 20, JIANGMEN_PENGJIANG, Nothing, (12, 8_400, 0, 0), "60 on 2023-12-31, from Jan; 10 years 700; Pengjiang is not 5:5"),
    row("钱五", F, (1969, 2, 28), 59, MEIZHOU, Nothing, (10, 9_000, 4_500, 0), "55 on 2024-02-28, from Mar; 30 years 900"),
    row("孙六", F, (1968, 2, 29), 19, DONGGUAN, Nothing, (12, 8_400, 0, 8_400), "55 on 2023-02-28; 19 semesters = 10 years 700; Dongguan books as city"),
    row("周七", M, (1964, 2, 29), 39, SHAOGUAN, Nothing, (10, 8_000, 4_000, 0), "60 on 2024-02-29 (leap), from Mar; 39 semesters = 20 years 800"),
    row("吴八", M, (1964, 12, 31), 60, GUANGZHOU, Nothing, (0, 0, 0, 0), "60 on 2024-12-31, paid from 2025-01"),
    row("郑九", M, (1964, 12, 1), 60, GUANGZHOU, Nothing, (0, 0, 0, 0), "60 on 2024-12-01, paid from 2025-01"),
    row("冯十", M, (1964, 11, 30), 60, SHANTOU, Nothing, (1, 900, 450, 225), "60 on 2024-11-30, Dec only; 450 / 225 / 225"),
    row("陈十一", F, (1950, 1, 1), 1, GUANGZHOU, Nothing, (0, 0, 0, 0), "1 semester: under a school year"),
    row("褚十二", M, (1945, 6, 6), 80, HUIZHOU, Died(2024, 6, 15), (6, 5_400, 2_700, 0), "40 years 900, through June (death)"),
    row("卫十三", F, (1955, 7, 7), 38, GUANGZHOU, Died(2024, 1, 31), (1, 700, 0, 0), "19 years 700, January only"),
    row("蒋十四", M, (1950, 1, 1), 60, GUANGZHOU, Died(2023, 12, 31), (0, 0, 0, 0), "died before 2024"),
    row("沈十五", M, (1948, 3, 3), 60, GUANGZHOU, Died(2018, 12, 31), (0, 0, 0, 0), "died on the cutoff: never"),
    row("韩十六", M, (1950, 2, 2), 60, GUANGZHOU, Excluded("retired_in_plan"), (0, 0, 0, 0), "纳入计划内离岗退养"),
    row("杨十七", F, (1955, 3, 3), 60, SHANTOU, Excluded("criminal_record"), (0, 0, 0, 0), "刑事犯罪记录"),
    row("朱十八", M, (1952, 4, 4), 60, MEIZHOU, Excluded("dismissed"), (0, 0, 0, 0), "被开除"),
    row("秦十九", M, (1950, 8, 8), 18, GUANGZHOU, Nothing, (12, 6_000, 0, 0), "9 years: Guangzhou's rate 500 x 12"),
    row("尤二十", F, (1960, 9, 9), 2, SHANTOU, Nothing, (12, 3_600, 0, 1_800), "1 year: Shantou's 300, local only, 150 / 150"),
    row("许二一", M, (1955, 10, 10), 17, DONGGUAN, Nothing, (12, 4_800, 0, 4_800), "9 years: Dongguan's 400, all city"),
    row("何二二", M, (1956, 11, 11), 60, SHANTOU, Employed(2024, 4, 1), (4, 3_600, 1_800, 900), "employed in April: Jan-Apr"),
    row("吕二三", F, (1962, 5, 5), 45, GUANGZHOU, Left(2024, 9, 30), (9, 7_200, 0, 0), "23 years 800, left in September"),
    row("施二四", M, (1957, 4, 4), 29, ZHONGSHAN, Nothing, (12, 8_400, 0, 8_400), "15 years 700; Zhongshan books as city"),
    row("张二五", F, (1969, 6, 15), 50, CHAOZHOU, Nothing, (6, 4_800, 2_400, 0), "55 on 2024-06-15, from Jul; 25 years 800"),
    row("孔二六", F, (1969, 6, 15), 50, CHAOZHOU, Died(2024, 6, 20), (0, 0, 0, 0), "died in the month she reached 55"),
    row("曹二七", F, (1969, 5, 31), 60, SHENZHEN, Died(2024, 6, 1), (1, 900, 0, 0), "55 on 2024-05-31, June only (death)"),
    row("严二八", M, (1964, 6, 30), 20, FOSHAN, Nothing, (6, 4_200, 0, 0), "60 on 2024-06-30, from Jul; 10 years 700"),
    row("华二九", M, (1930, 1, 1), 61, ENPING, Died(2024, 12, 31), (12, 10_800, 5_400, 0), "31 years 900, died in December"),
    row("金三十", F, (1962, 12, 12), 19, SHANTOU, Employed(2010, 3, 1), (0, 0, 0, 0), "employed as staff before the start"),
    row("魏三一", M, (1963, 7, 15), 21, MEIZHOU, Nothing, (12, 8_400, 4_200, 0), "60 in 2023; 11 years 700"),
    row("陶三二", F, (1969, 1, 1), 10, SHANTOU, Nothing, (11, 3_300, 0, 1_650), "55 on 2024-01-01, from Feb; 5 years: Shantou's 300"),
    row("姜三三", M, (1958, 12, 31), 58, SHANTOU, Died(2024, 3, 1), (3, 2_400, 1_200, 600), "29 years 800, Jan-Mar"),
    row("戚三四", M, (1959, 1, 1), 57, JIANGMEN_PENGJIANG, Nothing, (12, 9_600, 0, 0), "29 years 800"),
    row("谢三五", F, (1958, 8, 8), 40, GUANGZHOU, Left(2023, 11, 30), (0, 0, 0, 0), "left in 2023"),
];

fn program() -> Program {
    let text = include_str!("../../programs/mbdk.toml");
    let text = after_line(
        text,
        "[city_rates]",
        "\"440100\" = \"500.00\"\n\"440500\" = \"300.00\"\n\"441900\" = \"400.00\"",
    );
    let text = after_line(
        &text,
        "[local_split.cities]",
        "\"440500\" = { city = 1, county = 1 }",
    );
    Program::from_toml(&text, "year-table.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn beneficiary(r: &Row) -> Beneficiary {
    let (y, m, d) = r.birth;
    let mut who = person(r.sex, date(y, m, d), r.semesters, r.region.0, r.region.1);
    match r.event {
        Event::None => {}
        Event::Died(y, m, d) => who.death_date = Some(date(y, m, d)),
        Event::Excluded(reason) => who.exclusion = Some(reason.to_owned()),
        Event::Employed(y, m, d) => who.employed_from = Some(date(y, m, d)),
        Event::Left(y, m, d) => who.left = Some(date(y, m, d)),
    }
    who
}

fn fen_of_yuan(yuan: i64) -> Fen {
    Fen(yuan * 100)
}

fn sum(rows: &[Entitlement], part: impl Fn(&Entitlement) -> Fen) -> Fen {
    rows.iter()
        .map(part)
        .try_fold(Fen::ZERO, Fen::checked_add)
        .expect("no overflow")
}

#[test]
fn a_county_roster_for_2024_matches_the_hand_computed_totals() {
    let program = program();
    let mut county_total = Fen::ZERO;
    for r in &ROSTER {
        let who = beneficiary(r);
        let rows = entitlements(&program, &who, ym("2024-01"), ym("2024-12"))
            .unwrap_or_else(|e| panic!("{}: {e}", r.name));
        let (months, total, province, city) = r.expected;
        let got = (
            rows.len(),
            sum(&rows, |e| e.amount),
            sum(&rows, |e| e.province_share),
            sum(&rows, |e| e.city_share),
        );
        let want = (
            months,
            fen_of_yuan(total),
            fen_of_yuan(province),
            fen_of_yuan(city),
        );
        assert_eq!(got, want, "{} ({})", r.name, r.why);
        for e in &rows {
            assert_eq!(
                e.province_share
                    .checked_add(e.city_share)
                    .and_then(|s| s.checked_add(e.county_share)),
                Some(e.amount)
            );
        }
        county_total = county_total.checked_add(got.1).expect("no overflow");
    }
    // The column of hand totals, added by hand: 146,900.00.
    assert_eq!(county_total, fen_of_yuan(146_900));
}
