//! Validation of 18-digit citizen identity numbers (公民身份号码, GB 11643-1999) that identify subsidy recipients, with masking so that logs and messages never reveal a full number.
//!
//! Layout: 6-digit region code, 8-digit birth date `YYYYMMDD`, 3-digit
//! sequence (odd for men, even for women), and a check character computed
//! with ISO 7064 MOD 11-2.

use chrono::{Datelike, NaiveDate};
use std::fmt;

/// ISO 7064 MOD 11-2 weights (2^(18-i) mod 11) for the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character indexed by the weighted sum modulo 11.
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
/// Birth years before this are treated as typos: no living recipient, and
/// the national system was not issuing numbers for them.
const EARLIEST_BIRTH_YEAR: i32 = 1880;

/// A citizen identity number that has passed every structural check.
///
/// Only [`IdNumber::parse`] (and [`make_id`]) build one, so holding an
/// `IdNumber` proves the length, characters, birth date and check character
/// are right. Both `Display` and `Debug` print the masked form so a careless
/// log line never leaks the number; use [`IdNumber::full`] where the real
/// number is genuinely needed (e.g. a bank payment file).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(String);

impl IdNumber {
    /// Validates an ID number. Surrounding whitespace is ignored and a
    /// lowercase `x` check character is accepted as `X` (both are common in
    /// spreadsheets); the stored form is upper case.
    pub fn parse(input: &str) -> Result<IdNumber, IdError> {
        let trimmed = input.trim();
        let len = trimmed.chars().count();
        if len != 18 {
            return Err(IdError::WrongLength { len });
        }
        let mut normalized = String::with_capacity(18);
        for (i, ch) in trimmed.chars().enumerate() {
            let ok = ch.is_ascii_digit() || (i == 17 && (ch == 'X' || ch == 'x'));
            if !ok {
                return Err(IdError::BadCharacter { position: i + 1 });
            }
            normalized.push(ch.to_ascii_uppercase());
        }
        let digits = &normalized[6..14];
        if birth_date_of(digits).is_none() {
            return Err(IdError::BadBirthDate {
                digits: digits.to_owned(),
            });
        }
        // All 17 are ASCII digits by now, so check_character cannot fail.
        let expected = check_character(&normalized[..17]).unwrap_or('?');
        let found = normalized[17..].chars().next().unwrap_or('?');
        if expected != found {
            return Err(IdError::BadCheckCharacter { expected, found });
        }
        Ok(IdNumber(normalized))
    }

    /// The full, unmasked number. Same as [`IdNumber::full`].
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full, unmasked number; the name makes the disclosure visible in
    /// review.
    pub fn full(&self) -> &str {
        &self.0
    }

    /// The 6-digit administrative region code of the issuing place.
    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> NaiveDate {
        // Validated in parse(); the fallback is unreachable.
        birth_date_of(&self.0[6..14]).unwrap_or(NaiveDate::MIN)
    }

    /// From the 17th digit: odd for men, even for women.
    pub fn sex(&self) -> Sex {
        let digit = self.0.as_bytes()[16] - b'0';
        if digit % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// First 6 characters, 8 asterisks (hiding the birth date), last 4, e.g.
    /// `440502********1234`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

/// Prints the masked form.
impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.masked())
    }
}

/// Masked too: `{:?}` on a struct holding an `IdNumber` must not leak it.
impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

/// `YYYYMMDD` to a date no earlier than 1880-01-01.
fn birth_date_of(digits: &str) -> Option<NaiveDate> {
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month: u32 = digits[4..6].parse().ok()?;
    let day: u32 = digits[6..].parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day).filter(|d| d.year() >= EARLIEST_BIRTH_YEAR)
}

/// The ISO 7064 MOD 11-2 check character for the first 17 digits, or `None`
/// unless `first17` is exactly 17 ASCII digits.
pub fn check_character(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    // sum % 11 is 0..=10, always a valid index.
    CHECK_CHARS.get(usize::try_from(sum % 11).ok()?).copied()
}

/// Builds a valid ID number (computing the check character), for test and
/// demo data generators.
///
/// # Panics
/// On programmer error: `region6` not 6 ASCII digits, `sequence3` above 999,
/// or a birth year outside 1880..=9999.
pub fn make_id(region6: &str, birth: NaiveDate, sequence3: u16) -> IdNumber {
    assert!(
        region6.len() == 6 && region6.bytes().all(|b| b.is_ascii_digit()),
        "make_id: region code must be 6 digits"
    );
    assert!(sequence3 <= 999, "make_id: sequence must be 0..=999");
    assert!(
        (EARLIEST_BIRTH_YEAR..=9999).contains(&birth.year()),
        "make_id: birth year must be 1880..=9999"
    );
    let first17 = format!("{region6}{}{sequence3:03}", birth.format("%Y%m%d"));
    let check = check_character(&first17).expect("make_id: 17 digits by construction");
    IdNumber::parse(&format!("{first17}{check}")).expect("make_id: valid by construction")
}

/// Sex as recorded on a row or implied by the ID number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// Accepts `M`/`F`, `male`/`female` (any letter case) and `男`/`女`,
    /// ignoring surrounding whitespace.
    pub fn parse(input: &str) -> Option<Sex> {
        let s = input.trim();
        if s.eq_ignore_ascii_case("m") || s.eq_ignore_ascii_case("male") || s == "男" {
            Some(Sex::Male)
        } else if s.eq_ignore_ascii_case("f") || s.eq_ignore_ascii_case("female") || s == "女" {
            Some(Sex::Female)
        } else {
            None
        }
    }

    /// `M` or `F`, the form written to files.
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }

    /// `男` or `女`.
    pub fn label_zh(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
        }
    }
}

/// `male` / `female`, for English messages.
impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sex::Male => "male",
            Sex::Female => "female",
        })
    }
}

/// Checks a row's stated birth date and sex (when given) against what the ID
/// number encodes; a disagreement usually means the ID belongs to someone
/// else, e.g. a parent's number typed into a student's row.
pub fn verify_against(
    id: &IdNumber,
    birth_date: Option<NaiveDate>,
    sex: Option<Sex>,
) -> Result<(), IdError> {
    if let Some(row_date) = birth_date {
        let id_date = id.birth_date();
        if id_date != row_date {
            return Err(IdError::BirthDateMismatch { id_date, row_date });
        }
    }
    if let Some(row_sex) = sex {
        let id_sex = id.sex();
        if id_sex != row_sex {
            return Err(IdError::SexMismatch { id_sex, row_sex });
        }
    }
    Ok(())
}

/// Why an ID number was refused. No message contains the full number (it is
/// personal data); callers that need to point at the row should add the row
/// number or the masked form themselves.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum IdError {
    #[error("ID number has {len} characters but must have exactly 18")]
    WrongLength { len: usize },
    #[error(
        "ID number has a character at position {position} that is not allowed: positions 1-17 must be digits and position 18 a digit or X"
    )]
    BadCharacter { position: usize },
    #[error(
        "ID number's birth date digits {digits} (positions 7-14) are not a real date on or after 1880-01-01"
    )]
    BadBirthDate { digits: String },
    #[error(
        "ID number's check character is {found} but its first 17 digits require {expected}, so a digit is probably mistyped"
    )]
    BadCheckCharacter { expected: char, found: char },
    #[error("the ID number gives birth date {id_date} but the row states {row_date}")]
    BirthDateMismatch {
        id_date: NaiveDate,
        row_date: NaiveDate,
    },
    #[error("the ID number indicates {id_sex} but the row states {row_sex}")]
    SexMismatch { id_sex: Sex, row_sex: Sex },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The example printed in GB 11643-1999.
    const STANDARD_EXAMPLE: &str = "11010519491231002X";

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("test date")
    }

    #[test]
    fn the_standards_own_example_is_valid_female_and_born_1949_12_31() {
        let id = IdNumber::parse(STANDARD_EXAMPLE).expect("valid");
        assert_eq!(id.full(), STANDARD_EXAMPLE);
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.birth_date(), d(1949, 12, 31));
        assert_eq!(id.region_code(), "110105");
        assert_eq!(check_character("11010519491231002"), Some('X'));
    }

    #[test]
    fn check_character_follows_iso_7064_mod_11_2() {
        // Weighted sum 0 -> remainder 0 -> '1'.
        assert_eq!(check_character("00000000000000000"), Some('1'));
        // 44050220100101123: weighted sum 143, remainder 0 -> '1'.
        assert_eq!(check_character("44050220100101123"), Some('1'));
        assert!(IdNumber::parse("440502201001011231").is_ok());
        assert_eq!(check_character("1234"), None);
        assert_eq!(check_character("1101051949123100X"), None);
    }

    #[test]
    fn a_single_mistyped_digit_fails_the_check() {
        let err = IdNumber::parse("11010519491231003X").unwrap_err();
        assert_eq!(
            err,
            IdError::BadCheckCharacter {
                expected: '8',
                found: 'X'
            }
        );
        // Every single-digit change anywhere in the first 17 is caught
        // (or fails earlier as a bad birth date).
        let valid: Vec<char> = STANDARD_EXAMPLE.chars().collect();
        for pos in 0..17 {
            for digit in '0'..='9' {
                if valid[pos] == digit {
                    continue;
                }
                let mut changed = valid.clone();
                changed[pos] = digit;
                let text: String = changed.into_iter().collect();
                assert!(IdNumber::parse(&text).is_err(), "{text}");
            }
        }
    }

    #[test]
    fn a_birth_date_of_february_30_is_refused() {
        let first17 = "44050220100230123";
        let check = check_character(first17).expect("digits");
        assert_eq!(
            IdNumber::parse(&format!("{first17}{check}")),
            Err(IdError::BadBirthDate {
                digits: "20100230".to_owned()
            })
        );
    }

    #[test]
    fn a_birth_year_before_1880_is_refused() {
        let first17 = "44050218791231123";
        let check = check_character(first17).expect("digits");
        assert!(matches!(
            IdNumber::parse(&format!("{first17}{check}")),
            Err(IdError::BadBirthDate { .. })
        ));
    }

    #[test]
    fn lowercase_x_and_surrounding_spaces_are_accepted() {
        let id = IdNumber::parse("  11010519491231002x\t").expect("valid");
        assert_eq!(id.as_str(), STANDARD_EXAMPLE);
    }

    #[test]
    fn wrong_lengths_and_characters_name_the_problem_not_the_number() {
        assert_eq!(
            IdNumber::parse("1101051949123100"),
            Err(IdError::WrongLength { len: 16 })
        );
        assert_eq!(IdNumber::parse(""), Err(IdError::WrongLength { len: 0 }));
        assert_eq!(
            IdNumber::parse("11010519491231002X1"),
            Err(IdError::WrongLength { len: 19 })
        );
        assert_eq!(
            IdNumber::parse("1101051949123100XX"),
            Err(IdError::BadCharacter { position: 17 })
        );
        assert_eq!(
            IdNumber::parse("11010519 91231002X"),
            Err(IdError::BadCharacter { position: 9 })
        );
        // Full-width digits are 18 characters but not ASCII digits.
        assert_eq!(
            IdNumber::parse("１10105194912310020"),
            Err(IdError::BadCharacter { position: 1 })
        );
    }

    #[test]
    fn display_and_debug_show_only_the_masked_number() {
        let id = make_id("440502", d(2010, 1, 1), 123);
        assert_eq!(id.masked(), "440502********1231");
        assert_eq!(id.to_string(), "440502********1231");
        assert_eq!(format!("{id:?}"), r#"IdNumber("440502********1231")"#);
        assert_eq!(id.full(), "440502201001011231");
    }

    #[test]
    fn error_messages_never_contain_the_full_number() {
        let id = IdNumber::parse(STANDARD_EXAMPLE).expect("valid");
        let errors = [
            IdNumber::parse("11010519491231003X").unwrap_err(),
            IdNumber::parse("110105194912310").unwrap_err(),
            verify_against(&id, Some(d(1950, 1, 1)), None).unwrap_err(),
            verify_against(&id, None, Some(Sex::Male)).unwrap_err(),
        ];
        for e in errors {
            let text = e.to_string();
            assert!(!text.contains("110105"), "{text}");
            assert!(!text.contains("002X"), "{text}");
        }
    }

    #[test]
    fn a_row_whose_sex_disagrees_with_the_id_is_refused() {
        let id = IdNumber::parse(STANDARD_EXAMPLE).expect("valid");
        let err = verify_against(&id, None, Some(Sex::Male)).unwrap_err();
        assert_eq!(
            err,
            IdError::SexMismatch {
                id_sex: Sex::Female,
                row_sex: Sex::Male
            }
        );
        assert_eq!(
            err.to_string(),
            "the ID number indicates female but the row states male"
        );
        assert_eq!(verify_against(&id, None, Some(Sex::Female)), Ok(()));
    }

    #[test]
    fn a_row_whose_birth_date_disagrees_with_the_id_is_refused() {
        let id = IdNumber::parse(STANDARD_EXAMPLE).expect("valid");
        let err = verify_against(&id, Some(d(1949, 12, 30)), Some(Sex::Female)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the ID number gives birth date 1949-12-31 but the row states 1949-12-30"
        );
        assert_eq!(verify_against(&id, Some(d(1949, 12, 31)), None), Ok(()));
        assert_eq!(verify_against(&id, None, None), Ok(()));
    }

    #[test]
    fn odd_seventeenth_digit_is_male_and_even_is_female() {
        assert_eq!(make_id("440502", d(2010, 1, 1), 1).sex(), Sex::Male);
        assert_eq!(make_id("440502", d(2010, 1, 1), 2).sex(), Sex::Female);
        assert_eq!(make_id("440502", d(2010, 1, 1), 0).sex(), Sex::Female);
    }

    #[test]
    fn sex_is_read_from_common_spellings() {
        for s in ["M", "m", "male", "Male", " 男 "] {
            assert_eq!(Sex::parse(s), Some(Sex::Male), "{s}");
        }
        for s in ["F", "f", "female", "FEMALE", "女"] {
            assert_eq!(Sex::parse(s), Some(Sex::Female), "{s}");
        }
        for s in ["", "x", "男女", "man"] {
            assert_eq!(Sex::parse(s), None, "{s}");
        }
        assert_eq!((Sex::Male.code(), Sex::Female.code()), ("M", "F"));
        assert_eq!((Sex::Male.label_zh(), Sex::Female.label_zh()), ("男", "女"));
    }

    proptest! {
        #[test]
        fn make_id_always_parses_back_with_the_same_birth_date_and_sex(
            region in "[1-9][0-9]{5}",
            days in 0u64..60_000,
            sequence in 0u16..=999,
        ) {
            let birth = d(1900, 1, 1) + chrono::Days::new(days);
            let id = make_id(&region, birth, sequence);
            let parsed = IdNumber::parse(id.full()).expect("make_id output is valid");
            prop_assert_eq!(&parsed, &id);
            prop_assert_eq!(parsed.birth_date(), birth);
            prop_assert_eq!(parsed.region_code(), region.as_str());
            let expected_sex = if sequence % 2 == 1 { Sex::Male } else { Sex::Female };
            prop_assert_eq!(parsed.sex(), expected_sex);
            prop_assert_eq!(verify_against(&parsed, Some(birth), Some(expected_sex)), Ok(()));
        }
    }
}
