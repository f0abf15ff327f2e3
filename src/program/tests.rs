//! Tests of program definitions and of the entitlement rules, named after the policy clause they pin.

use super::*;
use crate::id_number::{Sex, make_id};
use proptest::prelude::*;

const MBDK_TEXT: &str = include_str!("../../programs/mbdk.toml");
const XQZZ_TEXT: &str = include_str!("../../programs/xqzz.toml");
const REGIONS_CSV: &str = include_str!("../reference/guangdong_regions.csv");

pub(super) fn ym(text: &str) -> YearMonth {
    text.parse().expect("test month")
}

pub(super) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("test date")
}

pub(super) fn mbdk() -> Program {
    Program::from_toml(MBDK_TEXT, "programs/mbdk.toml").expect("mbdk loads")
}

/// `text` with `extra` inserted after the line that is exactly `marker` (a table header, so that the
/// format notes at the top of the file, which name the same tables, are left alone).
pub(super) fn after_line(text: &str, marker: &str, extra: &str) -> String {
    let line = format!("\n{marker}\n");
    assert!(text.contains(&line), "no line {marker:?}");
    text.replacen(&line, &format!("{line}{extra}\n"), 1)
}

/// MBDK with extra TOML lines inserted after a table header line of the file.
pub(super) fn mbdk_with(marker: &str, extra: &str) -> Program {
    let text = after_line(MBDK_TEXT, marker, extra);
    Program::from_toml(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// A person in `county` of `city` with a valid ID number agreeing with sex and birth date.
pub(super) fn person(
    sex: Sex,
    birth: NaiveDate,
    semesters: u32,
    county: &str,
    city: &str,
) -> Beneficiary {
    let sequence = match sex {
        Sex::Male => 11,
        Sex::Female => 12,
    };
    Beneficiary {
        id_number: make_id(county, birth, sequence),
        sex,
        birth_date: birth,
        semesters: Some(semesters),
        county: county.to_owned(),
        city: city.to_owned(),
        exclusion: None,
        death_date: None,
        employed_from: None,
        left: None,
        enrolled_from: None,
        category: None,
    }
}

fn man(birth: NaiveDate, semesters: u32) -> Beneficiary {
    person(Sex::Male, birth, semesters, "440106", "440100")
}

fn woman(birth: NaiveDate, semesters: u32) -> Beneficiary {
    person(Sex::Female, birth, semesters, "440106", "440100")
}

fn paid(program: &Program, who: &Beneficiary, from: &str, to: &str) -> Vec<Entitlement> {
    entitlements(program, who, ym(from), ym(to)).unwrap_or_else(|e| panic!("{e}"))
}

fn months(program: &Program, who: &Beneficiary, from: &str, to: &str) -> Vec<YearMonth> {
    paid(program, who, from, to)
        .iter()
        .map(|e| e.month)
        .collect()
}

fn first_month(who: &Beneficiary) -> Option<YearMonth> {
    paid(&mbdk(), who, "2015-01", "2035-12")
        .first()
        .map(|e| e.month)
}

fn yuan(text: &str) -> Fen {
    crate::money::parse_amount(text, crate::money::SignRule::Any).expect("test amount")
}

// ------------------------------------------------------------------ ages and the start month

#[test]
fn reaching_the_age_on_the_cutoff_is_paid_from_the_start_month() {
    // 发放时间(一): born 1958-12-31, 60 on 2018-12-31 (含).
    assert_eq!(reaches_age(date(1958, 12, 31), 60), date(2018, 12, 31));
    assert_eq!(
        first_month(&man(date(1958, 12, 31), 60)),
        Some(ym("2019-01"))
    );
}

#[test]
fn reaching_the_age_on_new_years_day_is_paid_from_february() {
    // 发放时间(二): 60 on 2019-01-01 → from the month after January.
    assert_eq!(reaches_age(date(1959, 1, 1), 60), date(2019, 1, 1));
    assert_eq!(first_month(&man(date(1959, 1, 1), 60)), Some(ym("2019-02")));
}

#[test]
fn a_29_february_birthday_reaches_the_age_on_28_february_in_a_common_year() {
    assert_eq!(reaches_age(date(1964, 2, 29), 55), date(2019, 2, 28));
    assert_eq!(
        first_month(&woman(date(1964, 2, 29), 60)),
        Some(ym("2019-03"))
    );
}

#[test]
fn a_29_february_birthday_reaches_the_age_on_29_february_in_a_leap_year() {
    assert_eq!(reaches_age(date(1960, 2, 29), 60), date(2020, 2, 29));
    assert_eq!(
        first_month(&man(date(1960, 2, 29), 60)),
        Some(ym("2020-03"))
    );
}

#[test]
fn a_birthday_on_a_month_end_is_paid_from_the_next_month() {
    assert_eq!(
        first_month(&man(date(1960, 3, 31), 60)),
        Some(ym("2020-04"))
    );
    assert_eq!(first_month(&man(date(1960, 4, 1), 60)), Some(ym("2020-05")));
    assert_eq!(
        first_month(&woman(date(1963, 12, 31), 60)),
        Some(ym("2019-01"))
    );
    assert_eq!(
        first_month(&woman(date(1964, 1, 1), 60)),
        Some(ym("2019-02"))
    );
}

#[test]
fn women_qualify_at_55_and_men_at_60() {
    let birth = date(1962, 6, 15);
    // She was 55 in June 2017, before the cutoff: paid from the start month.
    assert_eq!(first_month(&woman(birth, 60)), Some(ym("2019-01")));
    assert_eq!(first_month(&man(birth, 60)), Some(ym("2022-07")));
}

#[test]
fn earlier_years_are_not_paid_back() {
    // 发放时间(一): "以前年度不补发".
    let old = man(date(1940, 5, 5), 60);
    assert_eq!(
        months(&mbdk(), &old, "2018-01", "2019-02"),
        vec![ym("2019-01"), ym("2019-02")]
    );
}

// ------------------------------------------------------------------ service years and tiers

#[test]
fn two_semesters_make_a_year_and_a_remaining_semester_counts_as_a_year() {
    for (semesters, years) in [
        (1, 1),
        (2, 1),
        (3, 2),
        (19, 10),
        (20, 10),
        (39, 20),
        (40, 20),
        (59, 30),
        (60, 30),
    ] {
        assert_eq!(service_years(semesters), years, "{semesters} semesters");
    }
}

#[test]
fn the_rate_follows_the_tier_of_service_years() {
    let program = mbdk_with("[city_rates]", "\"440100\" = \"450.00\"");
    let cases = [
        (18, "450.00", "1-9年", 9),
        (19, "700.00", "10-19年", 10),
        (38, "700.00", "10-19年", 19),
        (39, "800.00", "20-29年", 20),
        (40, "800.00", "20-29年", 20),
        (58, "800.00", "20-29年", 29),
        (59, "900.00", "30年及以上", 30),
        (60, "900.00", "30年及以上", 30),
        (80, "900.00", "30年及以上", 40),
    ];
    for (semesters, amount, tier, years) in cases {
        let row = &paid(
            &program,
            &man(date(1950, 1, 1), semesters),
            "2024-01",
            "2024-01",
        )[0];
        assert_eq!(
            (row.amount, row.tier.as_str()),
            (yuan(amount), tier),
            "{semesters} semesters"
        );
        assert_eq!(row.service_years, Some(years));
    }
}

#[test]
fn one_semester_is_never_paid() {
    assert!(paid(&mbdk(), &man(date(1950, 1, 1), 1), "2019-01", "2030-12").is_empty());
}

#[test]
fn a_teacher_without_verified_semesters_is_an_error() {
    let mut who = man(date(1950, 1, 1), 60);
    who.semesters = None;
    let err = entitlements(&mbdk(), &who, ym("2024-01"), ym("2024-12")).unwrap_err();
    assert!(
        matches!(
            err,
            ProgramError::MissingAttribute {
                attribute: "semesters",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_later_rate_table_applies_from_its_month() {
    let program = mbdk_with(
        "[local_split.cities]",
        "[[rates]]\nfrom = \"2024-01\"\ntiers = [{ min_years = 30, amount = \"1000.00\" }, { min_years = 20, amount = \"800.00\" }, { min_years = 10, amount = \"700.00\" }, { min_years = 1, amount = \"by city\", local_only = true }]",
    );
    let rows = paid(&program, &man(date(1950, 1, 1), 60), "2023-12", "2024-01");
    assert_eq!(rows[0].amount, yuan("900.00"));
    assert_eq!(rows[1].amount, yuan("1000.00"));
}

// ------------------------------------------------------------------ the 1-9 year tier set by each city

#[test]
fn a_city_without_its_own_rate_is_refused_with_a_fix() {
    let err = entitlements(
        &mbdk(),
        &man(date(1950, 1, 1), 10),
        ym("2024-01"),
        ym("2024-12"),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ProgramError::CityRateMissing {
            program: "MBDK".into(),
            city: "440100".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "program MBDK: city 440100 has not set its rate for 1-9 service years; add city_rates.\"440100\" to the program file"
    );
}

#[test]
fn a_city_rate_is_only_needed_when_the_person_is_paid_in_the_range() {
    let young = man(date(1970, 1, 1), 10);
    assert!(paid(&mbdk(), &young, "2024-01", "2024-12").is_empty());
}

#[test]
fn the_city_rate_tier_is_borne_by_city_and_county_alone_even_in_a_5_5_city() {
    let program = mbdk_with("[city_rates]", "\"440500\" = \"333.33\"");
    let shantou = person(Sex::Male, date(1950, 1, 1), 10, "440507", "440500");
    let row = &paid(&program, &shantou, "2024-01", "2024-01")[0];
    assert_eq!(
        (
            row.amount,
            row.province_share,
            row.city_share,
            row.county_share
        ),
        (yuan("333.33"), Fen(0), Fen(0), yuan("333.33"))
    );
    assert_eq!(program.city_rate("440500"), Some(yuan("333.33")));
    assert_eq!(program.city_rate("440100"), None);
}

#[test]
fn an_odd_fen_goes_to_the_higher_level() {
    // City and county split a 333.33 city rate 1:1: 166.665 each, the tie goes to the city.
    let text = after_line(MBDK_TEXT, "[city_rates]", "\"440500\" = \"333.33\"");
    let text = after_line(
        &text,
        "[local_split.cities]",
        "\"440500\" = { city = 1, county = 1 }",
    );
    let program = Program::from_toml(&text, "test.toml").unwrap();
    let shantou = person(Sex::Male, date(1950, 1, 1), 10, "440507", "440500");
    let row = &paid(&program, &shantou, "2024-01", "2024-01")[0];
    assert_eq!(
        (row.province_share, row.city_share, row.county_share),
        (Fen(0), yuan("166.67"), yuan("166.66"))
    );

    // Province and locality 5:5 on 333.33: the province gets the odd fen.
    let shares = program
        .split(yuan("333.33"), "440507", "440500", false)
        .unwrap();
    assert_eq!(
        (
            shares.province,
            shares.city.checked_add(shares.county).unwrap()
        ),
        (yuan("166.67"), yuan("166.66"))
    );
}

// ------------------------------------------------------------------ the end of payment

#[test]
fn dies_in_start_month_is_paid_that_month_only() {
    let mut who = man(date(1940, 1, 1), 60);
    who.death_date = Some(date(2019, 1, 15));
    assert_eq!(
        months(&mbdk(), &who, "2019-01", "2030-12"),
        vec![ym("2019-01")]
    );
}

#[test]
fn died_on_or_before_the_cutoff_is_never_paid() {
    for died in [date(2018, 12, 31), date(2018, 6, 1)] {
        let mut who = man(date(1940, 1, 1), 60);
        who.death_date = Some(died);
        assert!(
            paid(&mbdk(), &who, "2015-01", "2030-12").is_empty(),
            "died {died}"
        );
    }
}

#[test]
fn dies_mid_year_is_paid_through_the_month_of_death() {
    let mut who = woman(date(1950, 1, 1), 60);
    who.death_date = Some(date(2021, 6, 10));
    let rows = months(&mbdk(), &who, "2021-01", "2021-12");
    assert_eq!(rows.first(), Some(&ym("2021-01")));
    assert_eq!(rows.last(), Some(&ym("2021-06")));
    assert_eq!(rows.len(), 6);
}

#[test]
fn dies_in_the_month_the_age_is_reached_is_never_paid() {
    let mut who = man(date(1960, 5, 10), 60);
    who.death_date = Some(date(2020, 5, 20));
    assert!(paid(&mbdk(), &who, "2019-01", "2030-12").is_empty());
}

#[test]
fn excluded_people_are_never_paid() {
    for reason in ["retired_in_plan", "criminal_record", "dismissed"] {
        let mut who = man(date(1940, 1, 1), 60);
        who.exclusion = Some(reason.to_owned());
        assert!(
            paid(&mbdk(), &who, "2019-01", "2030-12").is_empty(),
            "{reason}"
        );
    }
}

#[test]
fn an_exclusion_the_program_does_not_know_is_an_error() {
    let mut who = man(date(1940, 1, 1), 60);
    who.exclusion = Some("retired".to_owned());
    let err = entitlements(&mbdk(), &who, ym("2019-01"), ym("2019-12")).unwrap_err();
    assert!(
        matches!(err, ProgramError::UnknownExclusion { .. }),
        "{err}"
    );
    assert!(
        !err.to_string().contains(who.id_number.full()),
        "ID numbers are masked in errors"
    );
}

#[test]
fn employment_as_staff_stops_payment_after_its_month() {
    let mut who = man(date(1940, 1, 1), 60);
    who.employed_from = Some(date(2020, 3, 1));
    assert_eq!(
        months(&mbdk(), &who, "2020-01", "2020-12").last(),
        Some(&ym("2020-03"))
    );
    who.employed_from = Some(date(2005, 3, 1));
    assert!(paid(&mbdk(), &who, "2019-01", "2030-12").is_empty());
}

#[test]
fn leaving_the_roster_stops_payment_after_its_month() {
    let mut who = man(date(1940, 1, 1), 60);
    who.left = Some(date(2022, 8, 31));
    assert_eq!(
        months(&mbdk(), &who, "2022-01", "2022-12").last(),
        Some(&ym("2022-08"))
    );
}

#[test]
fn an_empty_or_reversed_range_owes_nothing() {
    assert!(paid(&mbdk(), &man(date(1940, 1, 1), 60), "2024-05", "2024-04").is_empty());
}

// ------------------------------------------------------------------ shares

#[test]
fn shantou_shares_5_5_with_the_province() {
    let shantou = person(Sex::Male, date(1940, 1, 1), 60, "440507", "440500");
    let row = &paid(&mbdk(), &shantou, "2024-01", "2024-01")[0];
    assert_eq!(
        (row.province_share, row.city_share, row.county_share),
        (yuan("450.00"), Fen(0), yuan("450.00"))
    );
}

#[test]
fn guangzhou_bears_the_whole_cost_locally() {
    let row = &paid(&mbdk(), &man(date(1940, 1, 1), 60), "2024-01", "2024-01")[0];
    assert_eq!(
        (row.province_share, row.city_share, row.county_share),
        (Fen(0), Fen(0), yuan("900.00"))
    );
}

#[test]
fn enping_is_matched_but_jiangmens_districts_are_not() {
    let program = mbdk();
    assert_eq!(
        program
            .split(yuan("900.00"), "440785", "440700", false)
            .unwrap()
            .province,
        yuan("450.00")
    );
    assert_eq!(
        program
            .split(yuan("900.00"), "440783", "440700", false)
            .unwrap()
            .province,
        yuan("450.00")
    );
    assert_eq!(
        program
            .split(yuan("900.00"), "440781", "440700", false)
            .unwrap()
            .province,
        yuan("450.00")
    );
    assert_eq!(
        program
            .split(yuan("900.00"), "440703", "440700", false)
            .unwrap()
            .province,
        Fen(0)
    );
    assert_eq!(
        program
            .split(yuan("900.00"), "440784", "440700", false)
            .unwrap()
            .province,
        Fen(0)
    );
}

#[test]
fn dongguan_plays_the_countys_role_and_books_its_part_as_the_city() {
    let dongguan = person(Sex::Female, date(1950, 1, 1), 60, "441900", "441900");
    let row = &paid(&mbdk(), &dongguan, "2024-01", "2024-01")[0];
    assert_eq!(
        (row.province_share, row.city_share, row.county_share),
        (Fen(0), yuan("900.00"), Fen(0))
    );
}

#[test]
fn a_citys_own_split_divides_the_local_part() {
    let program = mbdk_with(
        "[local_split.cities]",
        "\"440500\" = { city = 3, county = 7 }",
    );
    let shares = program
        .split(yuan("900.00"), "440507", "440500", false)
        .unwrap();
    assert_eq!(
        (shares.province, shares.city, shares.county),
        (yuan("450.00"), yuan("135.00"), yuan("315.00"))
    );
}

#[test]
fn mbdk_share_regions_are_the_14_cities_and_3_county_level_cities() {
    let mut levels = BTreeMap::new();
    for line in REGIONS_CSV.lines().skip(1) {
        let fields: Vec<&str> = line.trim().split(',').collect();
        levels.insert(
            fields[0].to_owned(),
            (fields[2].to_owned(), fields[3].to_owned()),
        );
    }
    let program = mbdk();
    let listed: Vec<&String> = program
        .definition
        .share_rules
        .iter()
        .flat_map(|r| &r.regions)
        .collect();
    assert_eq!(listed.len(), 17);
    let cities = listed
        .iter()
        .filter(|c| levels.get(c.as_str()).is_some_and(|(l, _)| l == "city"))
        .count();
    assert_eq!(cities, 14);
    for county in ["440781", "440783", "440785"] {
        assert_eq!(levels[county], ("county".to_owned(), "440700".to_owned()));
        assert!(listed.iter().any(|c| c.as_str() == county));
    }
}

// ------------------------------------------------------------------ XQZZ

fn child(enrolled: &str) -> Beneficiary {
    let mut who = person(Sex::Female, date(2020, 3, 3), 0, "440106", "440100");
    who.semesters = None;
    who.enrolled_from = Some(ym(enrolled));
    who
}

fn xqzz() -> Program {
    Program::from_toml(XQZZ_TEXT, "programs/xqzz.toml").expect("xqzz loads")
}

#[test]
fn preschool_aid_is_paid_in_the_last_month_of_each_semester() {
    let rows = paid(&xqzz(), &child("2023-09"), "2023-09", "2024-12");
    let got: Vec<(YearMonth, Fen)> = rows.iter().map(|r| (r.month, r.amount)).collect();
    assert_eq!(
        got,
        vec![
            (ym("2024-01"), yuan("500.00")),
            (ym("2024-07"), yuan("500.00"))
        ]
    );
}

#[test]
fn preschool_aid_is_shared_3_7_by_city_and_district() {
    let row = &paid(&xqzz(), &child("2023-09"), "2024-01", "2024-01")[0];
    assert_eq!(
        (row.province_share, row.city_share, row.county_share),
        (Fen(0), yuan("150.00"), yuan("350.00"))
    );
}

#[test]
fn preschool_aid_pays_at_most_6_semesters() {
    let all = months(&xqzz(), &child("2021-09"), "2019-01", "2030-12");
    let expected: Vec<YearMonth> = [
        "2022-01", "2022-07", "2023-01", "2023-07", "2024-01", "2024-07",
    ]
    .iter()
    .map(|m| ym(m))
    .collect();
    assert_eq!(all, expected);
    // The cap counts from enrolment even when the query starts later.
    assert_eq!(
        months(&xqzz(), &child("2021-09"), "2024-01", "2030-12"),
        expected[4..].to_vec()
    );
}

#[test]
fn a_child_who_leaves_stops_being_paid() {
    let mut who = child("2023-09");
    who.left = Some(date(2024, 3, 15));
    assert_eq!(
        months(&xqzz(), &who, "2023-01", "2026-12"),
        vec![ym("2024-01")]
    );
}

#[test]
fn a_child_leaving_in_a_payout_month_is_paid_that_semester() {
    let mut who = child("2023-09");
    who.left = Some(date(2024, 1, 10));
    assert_eq!(
        months(&xqzz(), &who, "2023-01", "2026-12"),
        vec![ym("2024-01")]
    );
}

#[test]
fn a_child_without_an_enrolment_month_is_an_error() {
    let mut who = child("2023-09");
    who.enrolled_from = None;
    let err = entitlements(&xqzz(), &who, ym("2024-01"), ym("2024-12")).unwrap_err();
    assert!(
        matches!(
            err,
            ProgramError::MissingAttribute {
                attribute: "enrolled_from",
                ..
            }
        ),
        "{err}"
    );
}

// ------------------------------------------------------------------ definition files

#[test]
fn every_program_file_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
    let mut programs = Vec::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("programs/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            programs.push(Program::from_file(&path).unwrap_or_else(|e| panic!("{e}")));
            names.push(path.display().to_string());
        }
    }
    for code in ["MBDK", "XQZZ"] {
        assert!(
            programs.iter().any(|p| p.code() == code),
            "{code} missing from programs/"
        );
    }
    // At least one program beyond the built-in ones lives in programs/ as data alone
    // (tests/program_data.rs checks it; no source file names it).
    assert!(
        programs.len() > 2,
        "a third program file is missing from programs/"
    );
    let sources: Vec<&str> = names.iter().map(String::as_str).collect();
    Program::check_set(&programs, &sources).unwrap();
}

#[test]
fn mbdk_and_xqzz_are_built_in() {
    let codes: Vec<String> = Program::builtin()
        .iter()
        .map(|p| p.code().to_owned())
        .collect();
    assert_eq!(codes, ["MBDK", "XQZZ"]);
    let xqzz = &Program::builtin()[1];
    assert_eq!(xqzz.payout_months(), &[1, 7]);
    assert_eq!(xqzz.payments_max(), Some(6));
    assert!(xqzz.excludes().is_empty());
    assert_eq!(mbdk().payout_months().len(), 12);
    assert_eq!(mbdk().age_cutoff(), date(2018, 12, 31));
}

fn refused(text: &str) -> ProgramError {
    Program::from_toml(text, "bad.toml").expect_err("should be refused")
}

#[test]
fn shares_adding_to_90_percent_are_refused_with_the_key_path() {
    let err =
        refused(&MBDK_TEXT.replacen("province = 50\nlocal = 50", "province = 50\nlocal = 40", 1));
    assert_eq!(
        err.to_string(),
        "bad.toml: at `shares.rules[0]`: province + city + county + local add up to 90%, they must add up to 100%"
    );
}

#[test]
fn unknown_keys_are_refused_with_the_key_path() {
    let err =
        refused(&MBDK_TEXT.replacen("province = 50\nlocal = 50", "provence = 50\nlocal = 50", 1));
    let ProgramError::Syntax {
        file, key, message, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (file.as_str(), key.as_str()),
        ("bad.toml", "shares.rules[0].provence")
    );
    assert!(message.contains("unknown field"), "{message}");

    let err = refused(&format!("colour = \"red\"\n{MBDK_TEXT}"));
    assert!(
        matches!(&err, ProgramError::Syntax { key, line: 1, .. } if key == "colour"),
        "{err}"
    );
    let err = refused(&MBDK_TEXT.replacen(
        "min_semesters = 2",
        "min_semesters = 2\nmin_semester = 2",
        1,
    ));
    assert!(
        err.to_string().contains("eligibility.min_semester"),
        "{err}"
    );
}

#[test]
fn amounts_must_be_exact_strings() {
    let err = refused(&MBDK_TEXT.replacen("amount = \"900.00\"", "amount = \"900.001\"", 1));
    assert!(
        err.to_string().contains("rates[0].tiers[0].amount"),
        "{err}"
    );
    let err = refused(&MBDK_TEXT.replacen("amount = \"900.00\"", "amount = 900.0", 1));
    assert!(
        matches!(&err, ProgramError::Syntax { key, .. } if key == "rates[0].tiers[0].amount"),
        "{err}"
    );
}

#[test]
fn tiers_must_descend_and_be_unique() {
    let err = refused(&MBDK_TEXT.replacen("min_years = 20", "min_years = 30", 1));
    assert!(
        err.to_string().contains("rates[0].tiers[1].min_years"),
        "{err}"
    );
}

#[test]
fn a_by_city_tier_must_be_local_only() {
    let err = refused(&MBDK_TEXT.replacen(", local_only = true", "", 1));
    assert!(
        err.to_string().contains("rates[0].tiers[3].local_only"),
        "{err}"
    );
}

#[test]
fn rate_tables_must_be_in_month_order() {
    let text =
        format!("{MBDK_TEXT}\n[[rates]]\nfrom = \"2018-06\"\ntiers = [{{ amount = \"1.00\" }}]\n");
    let err = refused(&text);
    assert!(err.to_string().contains("rates[1].from"), "{err}");
}

#[test]
fn a_negative_local_weight_is_refused() {
    let err = refused(&MBDK_TEXT.replacen(
        "default = { city = 0, county = 100 }",
        "default = { city = -1, county = 100 }",
        1,
    ));
    assert!(err.to_string().contains("local_split.default"), "{err}");
}

#[test]
fn a_malformed_code_is_refused() {
    let err = refused(&MBDK_TEXT.replacen("code = \"MBDK\"", "code = \"mbdk-2\"", 1));
    assert!(err.to_string().starts_with("bad.toml: at `code`"), "{err}");
}

#[test]
fn a_region_may_be_listed_in_one_share_rule_only() {
    let extra = "[[shares.rules]]\nregions = [\"440500\"]\nlocal = 100\n";
    let err = refused(&format!("{MBDK_TEXT}\n{extra}"));
    assert!(
        err.to_string().contains("shares.rules[1].regions[0]"),
        "{err}"
    );
}

#[test]
fn the_summary_describes_rates_shares_and_schedule() {
    let summary = mbdk().summary();
    for needle in [
        "MBDK 原民办代课教师生活困难补助",
        "按月发放",
        "男 60 周岁 / 女 55 周岁",
        "30年及以上",
        "900.00",
        "各市制定",
        "未设置",
        "省 50% / 地方 50%",
        "地方 100%",
    ] {
        assert!(
            summary.contains(needle),
            "{needle:?} missing from:\n{summary}"
        );
    }
    assert!(xqzz().summary().contains("1月、7月"));
}

// ------------------------------------------------------------------ properties

fn any_region() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop::sample::select(vec![
        ("440106", "440100"),
        ("440507", "440500"),
        ("440785", "440700"),
        ("440703", "440700"),
        ("441900", "441900"),
        ("442000", "442000"),
        ("441402", "441400"),
    ])
}

proptest! {
    #[test]
    fn the_three_shares_always_add_up_to_the_amount(
        (county, city) in any_region(),
        male in any::<bool>(),
        birth_day in 0i64..20_000,
        semesters in 0u32..90,
        city_fen in 1i64..100_000_000,
        city_weight in 0i64..1000,
        county_weight in 1i64..1000,
    ) {
        let rate = Fen(city_fen).to_string();
        let text = after_line(MBDK_TEXT, "[city_rates]", &format!("\"{city}\" = \"{rate}\""));
        let split = format!("\"{city}\" = {{ city = {city_weight}, county = {county_weight} }}");
        let text = after_line(&text, "[local_split.cities]", &split);
        let program = Program::from_toml(&text, "prop.toml").unwrap();
        let birth = date(1920, 1, 1) + chrono::Days::new(birth_day.unsigned_abs());
        let sex = if male { Sex::Male } else { Sex::Female };
        let who = person(sex, birth, semesters, county, city);
        for row in entitlements(&program, &who, ym("2019-01"), ym("2026-12")).unwrap() {
            let sum = row.province_share.checked_add(row.city_share).and_then(|s| s.checked_add(row.county_share));
            prop_assert_eq!(sum, Some(row.amount));
            prop_assert!(!row.province_share.is_negative() && !row.city_share.is_negative() && !row.county_share.is_negative());
        }
    }
}
