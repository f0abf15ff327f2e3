//! The third program, 寄宿生生活补助 (boarding-student living subsidy), is data alone: it is loaded from
//! its file in programs/ and priced by the same engine as MBDK and XQZZ.

use chrono::NaiveDate;
use earmark::calendar::YearMonth;
use earmark::id_number::{Sex, make_id};
use earmark::money::{Fen, SignRule, parse_amount};
use earmark::program::{Beneficiary, Program, ProgramError, entitlements};

fn ym(text: &str) -> YearMonth {
    text.parse().expect("test month")
}

fn yuan(text: &str) -> Fen {
    parse_amount(text, SignRule::Any).expect("test amount")
}

fn boarding() -> Program {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/programs/boarding_subsidy.toml"
    );
    Program::from_file(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{e}"))
}

fn pupil(enrolled: &str, category: Option<&str>) -> Beneficiary {
    let birth = NaiveDate::from_ymd_opt(2012, 3, 3).unwrap();
    Beneficiary {
        id_number: make_id("440106", birth, 2),
        sex: Sex::Female,
        birth_date: birth,
        semesters: None,
        county: "440106".into(),
        city: "440100".into(),
        exclusion: None,
        death_date: None,
        employed_from: None,
        left: None,
        enrolled_from: Some(ym(enrolled)),
        category: category.map(str::to_string),
    }
}

#[test]
fn boarding_subsidy_pays_by_school_stage() {
    let program = boarding();
    let rows = entitlements(
        &program,
        &pupil("2024-02", Some("junior_secondary")),
        ym("2024-01"),
        ym("2024-12"),
    )
    .unwrap();
    let got: Vec<(YearMonth, Fen)> = rows.iter().map(|r| (r.month, r.amount)).collect();
    // Enrolled in the spring term 2024: its payout is July; 1,250 a year is 625.00 a semester.
    assert_eq!(got, vec![(ym("2024-07"), yuan("625.00"))]);
    let primary = entitlements(
        &program,
        &pupil("2024-02", Some("primary")),
        ym("2024-07"),
        ym("2025-01"),
    )
    .unwrap();
    assert_eq!(
        primary.iter().map(|r| r.amount).collect::<Vec<_>>(),
        vec![yuan("500.00"); 2]
    );
    for r in &primary {
        let shares = r.province_share.get() + r.city_share.get() + r.county_share.get();
        assert_eq!(shares, r.amount.get(), "the shares add up to the amount");
    }
}

#[test]
fn a_pupil_without_a_known_stage_is_an_error_not_a_guess() {
    let program = boarding();
    assert!(matches!(
        entitlements(
            &program,
            &pupil("2024-02", Some("senior")),
            ym("2024-07"),
            ym("2024-07")
        ),
        Err(ProgramError::UnknownCategory { .. })
    ));
    assert!(matches!(
        entitlements(
            &program,
            &pupil("2024-02", None),
            ym("2024-07"),
            ym("2024-07")
        ),
        Err(ProgramError::MissingAttribute {
            attribute: "category",
            ..
        })
    ));
}
