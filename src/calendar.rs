//! China's working-day calendar (statutory holidays and swapped 调休 workdays) and the Civil Code's month periods, for computing payment and reply deadlines.
//!
//! The calendar is data, not rules: the State Council announces each year's
//! holidays only weeks in advance, so a date in a year without loaded data is
//! an error rather than a guess.

use chrono::{Datelike, Months, NaiveDate, Weekday};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// The day `months` months after `date`: the day with the same number, or
/// the last day of that month when it has no such day (Civil Code arts.
/// 201–203: a period "of one month" starting on Jan 31 ends on Feb 28, or on
/// Feb 29 in a leap year).
///
/// This is pure calendar arithmetic; moving a deadline off a rest day is
/// [`WorkCalendar::one_month_deadline`]'s job.
///
/// # Panics
/// Only when the result lies beyond chrono's range (after year 262142), which
/// no ledger date can reach; use [`checked_add_months`] for untrusted counts.
pub fn add_months(date: NaiveDate, months: u32) -> NaiveDate {
    checked_add_months(date, months).expect("add_months: result beyond year 262142")
}

/// [`add_months`], returning `None` instead of panicking when the result is
/// out of chrono's range.
pub fn checked_add_months(date: NaiveDate, months: u32) -> Option<NaiveDate> {
    // chrono's Months clamps to the month's last day, which is exactly the
    // Civil Code rule.
    date.checked_add_months(Months::new(months))
}

/// The first day of `date`'s month.
pub fn month_start(date: NaiveDate) -> NaiveDate {
    // Stepping back by (day - 1) days cannot fail: day 1 of any month of a
    // valid NaiveDate is itself valid.
    date - chrono::Days::new(u64::from(date.day0()))
}

/// The last day of `month` (1..=12) in `year`.
///
/// # Panics
/// When `month` is not 1..=12 or the year is outside chrono's range: that is
/// a programming error, since user-entered months go through [`YearMonth`].
pub fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    checked_last_day_of_month(year, month).expect("last_day_of_month: month must be 1..=12")
}

fn checked_last_day_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    if !(1..=12).contains(&month) {
        return None;
    }
    // The day before the first of the next month sidesteps month lengths and
    // leap-year rules entirely.
    let (next_year, next_month) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)?.pred_opt()
}

/// A calendar month, e.g. the accounting period `2025-03`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    // Field order matters: the derived Ord sorts by year, then month.
    pub year: i32,
    /// 1..=12. The fields are public for convenience; values built through
    /// [`YearMonth::new`], [`YearMonth::of`] or parsing are always valid, and
    /// the date methods panic on a hand-built invalid month.
    pub month: u32,
}

impl YearMonth {
    /// `None` unless `month` is 1..=12.
    pub fn new(year: i32, month: u32) -> Option<YearMonth> {
        (1..=12)
            .contains(&month)
            .then_some(YearMonth { year, month })
    }

    /// The month containing `date`.
    pub fn of(date: NaiveDate) -> YearMonth {
        YearMonth {
            year: date.year(),
            month: date.month(),
        }
    }

    /// # Panics
    /// If `month` is not 1..=12 (only possible when built by hand).
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("YearMonth month must be 1..=12")
    }

    /// # Panics
    /// If `month` is not 1..=12 (only possible when built by hand).
    pub fn last_day(self) -> NaiveDate {
        last_day_of_month(self.year, self.month)
    }

    /// Whether `date` falls in this month.
    pub fn contains(self, date: NaiveDate) -> bool {
        YearMonth::of(date) == self
    }

    pub fn next(self) -> YearMonth {
        self.plus(1)
    }

    pub fn prev(self) -> YearMonth {
        self.plus(-1)
    }

    /// The month `n` months later (earlier when `n` is negative).
    ///
    /// # Panics
    /// If the year would leave `i32`; see [`YearMonth::checked_plus`].
    pub fn plus(self, n: i32) -> YearMonth {
        self.checked_plus(n)
            .expect("YearMonth::plus: year out of range")
    }

    pub fn checked_plus(self, n: i32) -> Option<YearMonth> {
        // Count months from year 0 in i64 so the intermediate value cannot
        // overflow; div_euclid keeps negative results in 1..=12.
        let index = i64::from(self.year) * 12 + i64::from(self.month) - 1 + i64::from(n);
        let year = i32::try_from(index.div_euclid(12)).ok()?;
        let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
        Some(YearMonth { year, month })
    }

    /// Every month from `start` to `end`, both included; empty when
    /// `start > end`.
    pub fn range_inclusive(start: YearMonth, end: YearMonth) -> Vec<YearMonth> {
        start.months_until_inclusive(end).collect()
    }

    /// Iterates from `self` to `end`, both included; empty when `self > end`.
    pub fn months_until_inclusive(self, end: YearMonth) -> impl Iterator<Item = YearMonth> {
        let mut current = (self <= end).then_some(self);
        std::iter::from_fn(move || {
            let this = current?;
            current = if this < end {
                this.checked_plus(1)
            } else {
                None
            };
            Some(this)
        })
    }
}

/// `2025-03`.
impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{:04}-{:02}", self.year, self.month))
    }
}

/// Parses exactly `YYYY-MM` (four-digit year, two-digit month 01..=12);
/// `2025-3` is refused so that text sorts and compares the same as months.
impl FromStr for YearMonth {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<YearMonth, CalendarError> {
        let bad = || CalendarError::BadYearMonth {
            input: s.to_owned(),
        };
        let b = s.as_bytes();
        let shape_ok = b.len() == 7
            && b[4] == b'-'
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[5..].iter().all(u8::is_ascii_digit);
        if !shape_ok {
            return Err(bad());
        }
        let year: i32 = s[..4].parse().map_err(|_| bad())?;
        let month: u32 = s[5..].parse().map_err(|_| bad())?;
        YearMonth::new(year, month).ok_or_else(bad)
    }
}

/// The `kind` column of the calendar CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DayKind {
    /// `holiday`: a weekday that is a statutory holiday (a rest day).
    Holiday,
    /// `workday`: a weekend day that is a working day (调休 swapped workday).
    Workday,
}

impl DayKind {
    /// The CSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }
}

impl fmt::Display for DayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a calendar could not be loaded or could not answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CalendarError {
    #[error(
        "{source_name} row 1: the header must be exactly `date,kind,name`, but it is `{found}`"
    )]
    BadHeader { source_name: String, found: String },
    #[error("{source_name} row {row}: the row cannot be read as CSV: {message}")]
    Csv {
        source_name: String,
        row: u64,
        message: String,
    },
    #[error("{source_name} row {row}, column {column}: {rule}")]
    BadRow {
        source_name: String,
        row: u64,
        column: &'static str,
        rule: String,
    },
    #[error(
        "{source_name} row {row}, column date: {date} is listed twice (first on row {first_row})"
    )]
    DuplicateDate {
        source_name: String,
        row: u64,
        first_row: u64,
        date: NaiveDate,
    },
    #[error("cannot merge calendars: {date} is a {existing} in one and a {incoming} in the other")]
    MergeConflict {
        date: NaiveDate,
        existing: DayKind,
        incoming: DayKind,
    },
    #[error(
        "the working-day calendar has no data for {year} (it covers {covered}); add that year's State Council holiday notice before computing dates in it"
    )]
    YearNotCovered { year: i32, covered: String },
    #[error("month {input:?} is not in the form YYYY-MM with a month from 01 to 12")]
    BadYearMonth { input: String },
    #[error("date arithmetic from {from} went past the last date the program can represent")]
    OutOfRange { from: NaiveDate },
}

/// Statutory holidays and swapped workdays for the years that have been
/// loaded. Any other weekday is a working day and any other Saturday or
/// Sunday a rest day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    days: BTreeMap<NaiveDate, (DayKind, String)>,
    /// A year is covered once the data has at least one row for it: every
    /// year since 1999 has had at least New Year's Day on a weekday or a
    /// swapped day, so a year with no rows means "not loaded", not "no
    /// holidays".
    years: BTreeSet<i32>,
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Strict `YYYY-MM-DD`: chrono's `%Y-%m-%d` also accepts `2025-1-5`, which
/// would hide typos in hand-maintained data.
fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::from_ymd_opt(
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..].parse().ok()?,
    )
}

impl WorkCalendar {
    /// An empty calendar covering no year.
    pub fn new() -> WorkCalendar {
        WorkCalendar::default()
    }

    /// Loads the `date,kind,name` CSV. `source_name` (usually the file name)
    /// appears in every error, with the 1-based row number counting the
    /// header as row 1.
    ///
    /// Refuses: a date not in `YYYY-MM-DD` form or not on the calendar; a
    /// kind other than `holiday` / `workday`; an empty name; a `holiday` on a
    /// Saturday or Sunday or a `workday` on a weekday (both contradict
    /// themselves and usually mean a wrong date); a date listed twice.
    pub fn from_csv<R: Read>(reader: R, source_name: &str) -> Result<WorkCalendar, CalendarError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(reader);
        let csv_error = |row: u64, e: csv::Error| CalendarError::Csv {
            source_name: source_name.to_owned(),
            row,
            message: e.to_string(),
        };
        let headers = csv.headers().map_err(|e| csv_error(1, e))?;
        if headers.iter().collect::<Vec<_>>() != ["date", "kind", "name"] {
            return Err(CalendarError::BadHeader {
                source_name: source_name.to_owned(),
                found: headers.iter().collect::<Vec<_>>().join(","),
            });
        }

        let mut calendar = WorkCalendar::new();
        let mut first_rows: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        let mut row: u64 = 1;
        for record in csv.records() {
            row += 1;
            let record = record.map_err(|e| csv_error(row, e))?;
            let bad = |column: &'static str, rule: String| CalendarError::BadRow {
                source_name: source_name.to_owned(),
                row,
                column,
                rule,
            };
            // The header check plus csv's equal-length rule guarantee three
            // fields; get() keeps this panic-free regardless.
            let field = |i: usize| record.get(i).unwrap_or("");
            let (date_text, kind_text, name) = (field(0), field(1), field(2).trim());

            let date = parse_iso_date(date_text).ok_or_else(|| {
                bad(
                    "date",
                    format!("{date_text:?} is not a real date in the form YYYY-MM-DD"),
                )
            })?;
            let kind = match kind_text {
                "holiday" => DayKind::Holiday,
                "workday" => DayKind::Workday,
                other => {
                    return Err(bad(
                        "kind",
                        format!("{other:?} is not a known kind; use `holiday` or `workday`"),
                    ));
                }
            };
            if name.is_empty() {
                return Err(bad("name", "the holiday name is empty".to_owned()));
            }
            match (kind, is_weekend(date)) {
                (DayKind::Holiday, true) => {
                    return Err(bad(
                        "kind",
                        format!(
                            "{date} is a {:?}, already a rest day, so it cannot be listed as a holiday (only weekday holidays are listed)",
                            date.weekday()
                        ),
                    ));
                }
                (DayKind::Workday, false) => {
                    return Err(bad(
                        "kind",
                        format!(
                            "{date} is a {:?}, already a working day, so it cannot be listed as a swapped workday (only weekend workdays are listed)",
                            date.weekday()
                        ),
                    ));
                }
                _ => {}
            }
            if let Some(&first_row) = first_rows.get(&date) {
                return Err(CalendarError::DuplicateDate {
                    source_name: source_name.to_owned(),
                    row,
                    first_row,
                    date,
                });
            }
            first_rows.insert(date, row);
            calendar.years.insert(date.year());
            calendar.days.insert(date, (kind, name.to_owned()));
        }
        Ok(calendar)
    }

    /// Adds `other`'s days and years (e.g. a newly announced year). A date
    /// present in both with the same kind is kept once (the existing name
    /// wins); with different kinds it is a [`CalendarError::MergeConflict`],
    /// and `self` is left unchanged.
    pub fn merge(&mut self, other: WorkCalendar) -> Result<(), CalendarError> {
        // Check everything first so a failed merge leaves no half-applied data.
        for (date, (incoming, _)) in &other.days {
            if let Some((existing, _)) = self.days.get(date)
                && existing != incoming
            {
                return Err(CalendarError::MergeConflict {
                    date: *date,
                    existing: *existing,
                    incoming: *incoming,
                });
            }
        }
        for (date, entry) in other.days {
            self.days.entry(date).or_insert(entry);
        }
        self.years.extend(other.years);
        Ok(())
    }

    /// The covered years, ascending.
    pub fn years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }

    /// Marks a year as covered even with no special days listed (a stored calendar keeps its years).
    pub fn add_covered_year(&mut self, year: i32) {
        self.years.insert(year);
    }

    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// The covered years as ranges, e.g. `2018-2026` or `2018-2020, 2023`.
    pub fn covered_description(&self) -> String {
        let mut ranges: Vec<(i32, i32)> = Vec::new();
        for &y in &self.years {
            match ranges.last_mut() {
                Some((_, end)) if end.checked_add(1) == Some(y) => *end = y,
                _ => ranges.push((y, y)),
            }
        }
        if ranges.is_empty() {
            return "no years".to_owned();
        }
        ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every listed day in date order, with its kind and name.
    pub fn special_days(&self) -> impl Iterator<Item = (NaiveDate, DayKind, &str)> {
        self.days
            .iter()
            .map(|(date, (kind, name))| (*date, *kind, name.as_str()))
    }

    fn require_covered(&self, d: NaiveDate) -> Result<(), CalendarError> {
        if self.covers(d.year()) {
            Ok(())
        } else {
            Err(CalendarError::YearNotCovered {
                year: d.year(),
                covered: self.covered_description(),
            })
        }
    }

    /// Whether `d` is a working day: a weekday unless listed as a holiday, a
    /// weekend day only when listed as a swapped workday. A date in a year
    /// the calendar does not cover is [`CalendarError::YearNotCovered`].
    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, CalendarError> {
        self.require_covered(d)?;
        Ok(match self.days.get(&d) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => !is_weekend(d),
        })
    }

    /// The `n`-th working day after `from`. `from` itself is never counted
    /// (a period "within 5 working days" of an application starts the next
    /// day), so `n = 0` returns `from` unchanged, even if it is a rest day.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let mut day = from;
        let mut counted = 0;
        while counted < n {
            // Terminates: each step either counts a day or moves toward a
            // year the calendar does not cover, which is an error.
            day = day.succ_opt().ok_or(CalendarError::OutOfRange { from })?;
            if self.is_working_day(day)? {
                counted += 1;
            }
        }
        Ok(day)
    }

    /// `d` if it is a working day, otherwise the first working day after it.
    pub fn next_working_day_on_or_after(&self, d: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let mut day = d;
        while !self.is_working_day(day)? {
            day = day
                .succ_opt()
                .ok_or(CalendarError::OutOfRange { from: d })?;
        }
        Ok(day)
    }

    /// The end of a one-month period starting from `received`: the same day
    /// next month (or that month's last day), moved to the next working day
    /// when it is a weekend rest day or statutory holiday (Civil Code art.
    /// 203). A swapped weekend workday counts as a working day and stays.
    pub fn one_month_deadline(&self, received: NaiveDate) -> Result<NaiveDate, CalendarError> {
        let nominal =
            checked_add_months(received, 1).ok_or(CalendarError::OutOfRange { from: received })?;
        self.next_working_day_on_or_after(nominal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_CALENDAR: &str = include_str!("reference/cn_calendar.csv");

    fn cal() -> WorkCalendar {
        WorkCalendar::from_csv(TEST_CALENDAR.as_bytes(), "cn_calendar.csv").unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        parse_iso_date(s).expect("test date")
    }

    fn load(text: &str) -> Result<WorkCalendar, CalendarError> {
        WorkCalendar::from_csv(text.as_bytes(), "test.csv")
    }

    fn ym(s: &str) -> YearMonth {
        s.parse().expect("test month")
    }

    #[test]
    fn received_jan_31_is_due_feb_28_in_common_year() {
        assert_eq!(add_months(d("2025-01-31"), 1), d("2025-02-28"));
        assert_eq!(
            cal().one_month_deadline(d("2025-01-31")),
            Ok(d("2025-02-28"))
        );
    }

    #[test]
    fn received_jan_31_is_due_feb_29_in_leap_year() {
        assert_eq!(add_months(d("2024-01-31"), 1), d("2024-02-29"));
        assert_eq!(
            cal().one_month_deadline(d("2024-01-31")),
            Ok(d("2024-02-29"))
        );
    }

    #[test]
    fn months_without_the_starting_day_end_on_their_last_day() {
        assert_eq!(add_months(d("2025-03-31"), 1), d("2025-04-30"));
        assert_eq!(add_months(d("2024-02-29"), 12), d("2025-02-28"));
        assert_eq!(add_months(d("2024-02-29"), 48), d("2028-02-29"));
        assert_eq!(add_months(d("2025-01-15"), 0), d("2025-01-15"));
        assert_eq!(add_months(d("2025-11-30"), 3), d("2026-02-28"));
        assert_eq!(checked_add_months(NaiveDate::MAX, 1), None);
    }

    #[test]
    fn month_boundaries_are_found_for_every_month_length() {
        assert_eq!(month_start(d("2025-03-17")), d("2025-03-01"));
        assert_eq!(month_start(d("2025-03-01")), d("2025-03-01"));
        assert_eq!(last_day_of_month(2024, 2), d("2024-02-29"));
        assert_eq!(last_day_of_month(2025, 2), d("2025-02-28"));
        assert_eq!(last_day_of_month(1900, 2), d("1900-02-28"));
        assert_eq!(last_day_of_month(2000, 2), d("2000-02-29"));
        assert_eq!(last_day_of_month(2025, 4), d("2025-04-30"));
        assert_eq!(last_day_of_month(2025, 12), d("2025-12-31"));
        assert_eq!(checked_last_day_of_month(2025, 13), None);
        assert_eq!(checked_last_day_of_month(2025, 0), None);
    }

    #[test]
    fn deadline_on_a_saturday_moves_to_monday() {
        // 2025-03-15 is a Saturday with no swapped workday.
        assert_eq!(
            cal().one_month_deadline(d("2025-02-15")),
            Ok(d("2025-03-17"))
        );
    }

    #[test]
    fn deadline_in_national_day_week_moves_to_the_first_working_day_after_it() {
        // 2024: holidays Oct 1-4 and 7, weekend Oct 5-6, so Oct 8 (Tue).
        assert_eq!(
            cal().one_month_deadline(d("2024-09-03")),
            Ok(d("2024-10-08"))
        );
        // 2025: National Day and Mid-autumn together run Oct 1-8, so Oct 9.
        assert_eq!(
            cal().one_month_deadline(d("2025-09-03")),
            Ok(d("2025-10-09"))
        );
    }

    #[test]
    fn deadline_on_a_swapped_weekend_workday_stays() {
        // 2025-02-08 (Sat) and 2025-09-28 (Sun) are 调休 workdays.
        assert_eq!(
            cal().one_month_deadline(d("2025-01-08")),
            Ok(d("2025-02-08"))
        );
        assert_eq!(
            cal().one_month_deadline(d("2025-08-28")),
            Ok(d("2025-09-28"))
        );
    }

    #[test]
    fn five_working_days_after_friday_24_jan_2025_span_spring_festival() {
        // Sat 25 rest; Sun 26 swapped workday (1); Mon 27 (2); Jan 28-Feb 4
        // holidays and weekend; Wed Feb 5 (3), Thu 6 (4), Fri 7 (5).
        assert_eq!(
            cal().add_working_days(d("2025-01-24"), 5),
            Ok(d("2025-02-07"))
        );
        assert_eq!(
            cal().add_working_days(d("2025-01-24"), 1),
            Ok(d("2025-01-26"))
        );
    }

    #[test]
    fn zero_working_days_returns_the_start_day_itself() {
        assert_eq!(
            cal().add_working_days(d("2025-02-01"), 0),
            Ok(d("2025-02-01"))
        );
    }

    #[test]
    fn working_days_follow_the_weekday_and_the_listed_exceptions() {
        let c = cal();
        assert_eq!(c.is_working_day(d("2025-01-27")), Ok(true)); // ordinary Monday
        assert_eq!(c.is_working_day(d("2025-01-28")), Ok(false)); // Spring Festival
        assert_eq!(c.is_working_day(d("2025-01-26")), Ok(true)); // swapped Sunday
        assert_eq!(c.is_working_day(d("2025-03-15")), Ok(false)); // ordinary Saturday
    }

    #[test]
    fn next_working_day_skips_holidays_and_weekends() {
        let c = cal();
        assert_eq!(
            c.next_working_day_on_or_after(d("2025-01-28")),
            Ok(d("2025-02-05"))
        );
        assert_eq!(
            c.next_working_day_on_or_after(d("2025-02-05")),
            Ok(d("2025-02-05"))
        );
    }

    #[test]
    fn a_year_without_data_is_an_error_not_a_guess() {
        let c = cal();
        let err = c.is_working_day(d("2030-06-03")).unwrap_err();
        assert_eq!(
            err,
            CalendarError::YearNotCovered {
                year: 2030,
                covered: "2018-2026".to_owned()
            }
        );
        assert!(err.to_string().contains("2030"), "{err}");
        // Walking off the end of the data also stops with the error.
        assert!(matches!(
            c.add_working_days(d("2026-12-30"), 5),
            Err(CalendarError::YearNotCovered { year: 2027, .. })
        ));
        assert!(matches!(
            c.one_month_deadline(d("2026-12-15")),
            Err(CalendarError::YearNotCovered { year: 2027, .. })
        ));
    }

    #[test]
    fn the_shipped_data_covers_2018_to_2026_and_lists_weekday_holidays_only() {
        let c = cal();
        assert_eq!(c.years(), (2018..=2026).collect::<Vec<_>>());
        assert!(c.covers(2025) && !c.covers(2017));
        assert_eq!(c.special_days().count(), 223);
        let first = c.special_days().next().expect("rows");
        assert_eq!(first, (d("2018-01-01"), DayKind::Holiday, "New Year's Day"));
    }

    #[test]
    fn csv_row_numbers_count_the_header_as_row_one() {
        let err = load("date,kind,name\n2018-01-01,holiday,New Year\n2018-13-01,holiday,X\n")
            .unwrap_err();
        assert!(
            matches!(
                err,
                CalendarError::BadRow {
                    row: 3,
                    column: "date",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("test.csv row 3, column date:"),
            "{err}"
        );
    }

    #[test]
    fn loose_date_formats_are_refused() {
        for bad in [
            "2018-1-01",
            "2018/01/01",
            "20180101",
            " 2018-01-01",
            "2018-02-30",
        ] {
            let text = format!("date,kind,name\n{bad},holiday,X\n");
            assert!(
                matches!(
                    load(&text),
                    Err(CalendarError::BadRow {
                        row: 2,
                        column: "date",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unknown_kind_is_refused() {
        let err = load("date,kind,name\n2018-01-01,Holiday,X\n").unwrap_err();
        assert!(matches!(
            err,
            CalendarError::BadRow {
                row: 2,
                column: "kind",
                ..
            }
        ));
        assert!(err.to_string().contains("\"Holiday\""), "{err}");
    }

    #[test]
    fn a_holiday_on_a_weekend_contradicts_itself() {
        // 2025-10-04 is a Saturday.
        let err = load("date,kind,name\n2025-10-04,holiday,National Day\n").unwrap_err();
        assert!(matches!(
            err,
            CalendarError::BadRow {
                row: 2,
                column: "kind",
                ..
            }
        ));
        assert!(err.to_string().contains("Sat"), "{err}");
    }

    #[test]
    fn a_swapped_workday_on_a_weekday_contradicts_itself() {
        // 2025-01-27 is a Monday.
        let err = load("date,kind,name\n2025-01-27,workday,Spring Festival\n").unwrap_err();
        assert!(matches!(
            err,
            CalendarError::BadRow {
                row: 2,
                column: "kind",
                ..
            }
        ));
    }

    #[test]
    fn a_date_listed_twice_is_refused_naming_both_rows() {
        let err = load(
            "date,kind,name\n2018-01-01,holiday,A\n2018-02-15,holiday,B\n2018-01-01,holiday,A\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            CalendarError::DuplicateDate {
                source_name: "test.csv".to_owned(),
                row: 4,
                first_row: 2,
                date: d("2018-01-01"),
            }
        );
    }

    #[test]
    fn header_and_row_shape_are_checked() {
        assert!(matches!(
            load("day,kind,name\n2018-01-01,holiday,A\n"),
            Err(CalendarError::BadHeader { .. })
        ));
        assert!(matches!(
            load("date,kind,name\n2018-01-01,holiday\n"),
            Err(CalendarError::Csv { row: 2, .. })
        ));
        assert!(matches!(
            load("date,kind,name\n2018-01-01,holiday,\n"),
            Err(CalendarError::BadRow { column: "name", .. })
        ));
        let empty = load("date,kind,name\n").expect("header only is a valid, empty calendar");
        assert!(empty.years().is_empty());
        assert_eq!(empty.covered_description(), "no years");
    }

    #[test]
    fn merging_adds_a_newly_announced_year() {
        let mut c = load("date,kind,name\n2025-01-01,holiday,New Year's Day\n").expect("2025");
        let next = load("date,kind,name\n2027-01-01,holiday,New Year's Day\n").expect("2027");
        c.merge(next).expect("no conflict");
        assert_eq!(c.years(), [2025, 2027]);
        assert_eq!(c.covered_description(), "2025, 2027");
        assert_eq!(c.is_working_day(d("2027-01-01")), Ok(false));
        // Same date, same kind: fine.
        let again = load("date,kind,name\n2025-01-01,holiday,元旦\n").expect("again");
        c.merge(again).expect("same kind merges");
        assert_eq!(c.special_days().count(), 2);
    }

    #[test]
    fn merging_a_conflicting_kind_fails_and_changes_nothing() {
        let mut c = load("date,kind,name\n2025-01-26,workday,Spring Festival\n").expect("a");
        // Only via a hand-built calendar can the same date carry the other
        // kind, since from_csv refuses a weekend holiday.
        let mut other = WorkCalendar::new();
        other.years.insert(2025);
        other.years.insert(2026);
        other
            .days
            .insert(d("2025-01-26"), (DayKind::Holiday, "X".to_owned()));
        let before = c.clone();
        let err = c.merge(other).unwrap_err();
        assert!(matches!(err, CalendarError::MergeConflict { .. }));
        assert_eq!(c, before);
    }

    #[test]
    fn year_month_parses_only_four_digit_year_dash_two_digit_month() {
        assert_eq!(
            ym("2025-03"),
            YearMonth {
                year: 2025,
                month: 3
            }
        );
        assert_eq!(ym("2025-03").to_string(), "2025-03");
        for bad in [
            "2025-13",
            "2025-00",
            "2025-3",
            "25-03",
            "2025/03",
            "2025-03-01",
            " 2025-03",
            "２０２５-03",
        ] {
            assert_eq!(
                bad.parse::<YearMonth>(),
                Err(CalendarError::BadYearMonth {
                    input: bad.to_owned()
                }),
                "{bad}"
            );
        }
    }

    #[test]
    fn year_month_steps_across_year_ends() {
        assert_eq!(ym("2025-12").next(), ym("2026-01"));
        assert_eq!(ym("2025-01").prev(), ym("2024-12"));
        assert_eq!(ym("2025-03").plus(-15), ym("2023-12"));
        assert_eq!(ym("2025-03").plus(22), ym("2027-01"));
        assert_eq!(
            YearMonth {
                year: i32::MAX,
                month: 12
            }
            .checked_plus(1),
            None
        );
        assert_eq!(YearMonth::new(2025, 13), None);
    }

    #[test]
    fn year_month_knows_its_first_and_last_day() {
        let feb = ym("2024-02");
        assert_eq!(feb.first_day(), d("2024-02-01"));
        assert_eq!(feb.last_day(), d("2024-02-29"));
        assert_eq!(YearMonth::of(d("2024-02-17")), feb);
        assert!(feb.contains(d("2024-02-29")) && !feb.contains(d("2024-03-01")));
    }

    #[test]
    fn year_month_ranges_include_both_ends_and_are_empty_when_reversed() {
        assert_eq!(
            YearMonth::range_inclusive(ym("2024-11"), ym("2025-02")),
            [ym("2024-11"), ym("2024-12"), ym("2025-01"), ym("2025-02")]
        );
        assert_eq!(
            YearMonth::range_inclusive(ym("2025-02"), ym("2025-02")),
            [ym("2025-02")]
        );
        assert!(YearMonth::range_inclusive(ym("2025-03"), ym("2025-02")).is_empty());
        assert!(ym("2024-12") < ym("2025-01"));
    }
}
