//! The annual cycle (申请 → 初审 → 审核 → 公示 → 确认 → 复核) and its deadlines, from the MBDK policy's
//! 申请与发放程序. Working days follow China's calendar (with its swapped weekend workdays).
//!
//! The first year (the policy's start year) has earlier dates than the years after it.

use chrono::NaiveDate;
use serde::Serialize;

use crate::calendar::{CalendarError, WorkCalendar};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Apply,
    TownshipReview,
    CountyReview,
    Notice,
    Confirm,
    CityRecheck,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Apply,
        Stage::TownshipReview,
        Stage::CountyReview,
        Stage::Notice,
        Stage::Confirm,
        Stage::CityRecheck,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Stage::Apply => "apply",
            Stage::TownshipReview => "township_review",
            Stage::CountyReview => "county_review",
            Stage::Notice => "notice",
            Stage::Confirm => "confirm",
            Stage::CityRecheck => "city_recheck",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Stage::Apply => "申请",
            Stage::TownshipReview => "初审",
            Stage::CountyReview => "审核",
            Stage::Notice => "公示",
            Stage::Confirm => "确认",
            Stage::CityRecheck => "复核",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        let text = text.trim();
        Stage::ALL
            .into_iter()
            .find(|s| s.code() == text || s.label_zh() == text)
    }
}

/// The stages a person has reached in one year: the date each was done (for `Notice`, its first day).
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub done: std::collections::BTreeMap<Stage, NaiveDate>,
}

/// One stage's standing against its rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageStatus {
    pub stage: Stage,
    pub deadline: Option<NaiveDate>,
    pub done_on: Option<NaiveDate>,
    /// `on_time`, `late`, `due` (not done, deadline ahead), `overdue` (not done, deadline passed),
    /// `waiting` (an earlier stage is not done yet).
    pub state: &'static str,
    pub days_late: i64,
    /// The rule, quoted from the policy.
    pub rule: String,
}

/// Working days of the township review, of the public notice, and of confirmation (MBDK 初审, 公示, 确认).
const REVIEW_WORKING_DAYS: u32 = 5;
const NOTICE_WORKING_DAYS: u32 = 5;
const CONFIRM_WORKING_DAYS: u32 = 5;

fn fixed(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a fixed policy date")
}

/// The day a public notice of 5 working days starting on `start` is complete: the 5th working day
/// counted from the start (the start counts when it is a working day).
pub fn notice_end(calendar: &WorkCalendar, start: NaiveDate) -> Result<NaiveDate, CalendarError> {
    let day_before = start.pred_opt().unwrap_or(start);
    calendar.add_working_days(day_before, NOTICE_WORKING_DAYS)
}

/// Judges a person's progress in `year` as of `as_of`. `first_year` selects the first year's dates.
pub fn assess(
    calendar: &WorkCalendar,
    year: i32,
    first_year: bool,
    progress: &Progress,
    as_of: NaiveDate,
) -> Result<Vec<StageStatus>, CalendarError> {
    let mut statuses = Vec::with_capacity(Stage::ALL.len());
    let done = |s: Stage| progress.done.get(&s).copied();
    for stage in Stage::ALL {
        // (deadline, rule): each rule cites its clause of 申请与发放程序.
        let (deadline, rule): (Option<NaiveDate>, String) = match stage {
            Stage::Apply => {
                let d = if first_year {
                    fixed(year, 1, 31)
                } else {
                    fixed(year, 3, 31)
                };
                (
                    Some(d),
                    format!("（一）申请: notify and complete applications by {d}"),
                )
            }
            Stage::TownshipReview => {
                let by_date = if first_year {
                    fixed(year, 2, 28)
                } else {
                    fixed(year, 4, 15)
                };
                let deadline = match done(Stage::Apply) {
                    Some(applied) => calendar
                        .add_working_days(applied, REVIEW_WORKING_DAYS)?
                        .min(by_date),
                    None => by_date,
                };
                (
                    Some(deadline),
                    format!(
                        "（二）初审: within {REVIEW_WORKING_DAYS} working days of the application, and by {by_date}"
                    ),
                )
            }
            Stage::CountyReview => {
                let d = if first_year {
                    fixed(year, 3, 15)
                } else {
                    fixed(year, 4, 30)
                };
                (
                    Some(d),
                    format!("（三）审核: county education, finance, HR and health review by {d}"),
                )
            }
            Stage::Notice => {
                let d = if first_year {
                    fixed(year, 3, 31)
                } else {
                    fixed(year, 5, 15)
                };
                // The deadline is for completing the notice; the stage records its first day.
                let start_by = latest_start(calendar, d)?;
                (
                    Some(start_by),
                    format!(
                        "（四）公示: {NOTICE_WORKING_DAYS} working days, complete by {d} (so begun by {start_by})"
                    ),
                )
            }
            Stage::Confirm => match done(Stage::Notice) {
                Some(start) => {
                    let end = notice_end(calendar, start)?;
                    let d = calendar.add_working_days(end, CONFIRM_WORKING_DAYS)?;
                    (
                        Some(d),
                        format!(
                            "（五）确认: after the notice ends ({end}), tables confirmed and sent within {CONFIRM_WORKING_DAYS} working days"
                        ),
                    )
                }
                None => (None, "（五）确认: after the public notice".into()),
            },
            Stage::CityRecheck => (None, "（六）复核: city re-check after confirmation".into()),
        };
        let previous_done = Stage::ALL
            .iter()
            .take_while(|s| **s != stage)
            .all(|s| done(*s).is_some());
        let (state, days_late) = match (done(stage), deadline) {
            (Some(on), Some(d)) if on > d => ("late", (on - d).num_days()),
            (Some(_), _) => ("on_time", 0),
            (None, _) if !previous_done && stage != Stage::Apply => ("waiting", 0),
            (None, Some(d)) if as_of > d => ("overdue", (as_of - d).num_days()),
            (None, _) => ("due", 0),
        };
        // A stage done before the one it follows breaks the order.
        let out_of_order = done(stage).is_some_and(|on| {
            Stage::ALL
                .iter()
                .take_while(|s| **s != stage)
                .filter_map(|s| done(*s))
                .any(|earlier| earlier > on)
        });
        statuses.push(StageStatus {
            stage,
            deadline,
            done_on: done(stage),
            state: if out_of_order { "out_of_order" } else { state },
            days_late,
            rule,
        });
    }
    Ok(statuses)
}

/// The latest first day of a 5-working-day notice that is complete by `complete_by`.
fn latest_start(
    calendar: &WorkCalendar,
    complete_by: NaiveDate,
) -> Result<NaiveDate, CalendarError> {
    let mut start = complete_by;
    // Bounded: 5 working days never span more than a month, even over the Spring Festival.
    for _ in 0..40 {
        if calendar.is_working_day(start)? && notice_end(calendar, start)? <= complete_by {
            return Ok(start);
        }
        start = start.pred_opt().unwrap_or(start);
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> WorkCalendar {
        WorkCalendar::from_csv(crate::reference::CALENDAR_CSV.as_bytes(), "cn_calendar.csv")
            .unwrap()
    }

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn progress(stages: &[(Stage, &str)]) -> Progress {
        Progress {
            done: stages.iter().map(|(s, t)| (*s, d(t))).collect(),
        }
    }

    #[test]
    fn township_review_within_five_working_days_of_application() {
        // Applied Friday 2025-03-28: five working days later is Friday 2025-04-04? No: 4 April 2025 is
        // 清明 (a holiday), so the fifth working day is Monday 2025-04-07.
        let status = assess(
            &calendar(),
            2025,
            false,
            &progress(&[(Stage::Apply, "2025-03-28")]),
            d("2025-04-08"),
        )
        .unwrap();
        let review = &status[1];
        assert_eq!(review.deadline, Some(d("2025-04-07")));
        assert_eq!(review.state, "overdue");
        assert_eq!(review.days_late, 1);
    }

    #[test]
    fn the_first_year_has_its_own_dates() {
        let status = assess(
            &calendar(),
            2019,
            true,
            &Progress::default(),
            d("2019-01-01"),
        )
        .unwrap();
        assert_eq!(status[0].deadline, Some(d("2019-01-31")));
        assert_eq!(status[2].deadline, Some(d("2019-03-15")));
        let later = assess(
            &calendar(),
            2020,
            false,
            &Progress::default(),
            d("2020-01-01"),
        )
        .unwrap();
        assert_eq!(later[0].deadline, Some(d("2020-03-31")));
        assert_eq!(later[2].deadline, Some(d("2020-04-30")));
    }

    #[test]
    fn a_notice_of_five_working_days_skips_the_weekend() {
        // Starting Thursday 2025-05-08: Thu, Fri, Mon, Tue, Wed → complete Wednesday 2025-05-14.
        assert_eq!(
            notice_end(&calendar(), d("2025-05-08")).unwrap(),
            d("2025-05-14")
        );
        // Complete by 15 May 2025 (Thursday): begun by Friday 9 May.
        let status = assess(
            &calendar(),
            2025,
            false,
            &Progress::default(),
            d("2025-05-01"),
        )
        .unwrap();
        assert_eq!(status[3].deadline, Some(d("2025-05-09")));
    }

    #[test]
    fn a_late_stage_is_named_with_its_days() {
        let p = progress(&[
            (Stage::Apply, "2025-03-20"),
            (Stage::TownshipReview, "2025-03-25"),
            (Stage::CountyReview, "2025-05-06"),
        ]);
        let status = assess(&calendar(), 2025, false, &p, d("2025-05-06")).unwrap();
        assert_eq!(status[2].state, "late");
        assert_eq!(status[2].days_late, 6);
        assert_eq!(status[0].state, "on_time");
        assert_eq!(status[4].state, "waiting");
    }

    #[test]
    fn stages_out_of_order_are_flagged() {
        let p = progress(&[
            (Stage::Apply, "2025-03-20"),
            (Stage::TownshipReview, "2025-03-10"),
        ]);
        let status = assess(&calendar(), 2025, false, &p, d("2025-03-30")).unwrap();
        assert_eq!(status[1].state, "out_of_order");
    }

    #[test]
    fn stage_names_read_in_chinese_too() {
        assert_eq!(Stage::parse("公示"), Some(Stage::Notice));
        assert_eq!(Stage::parse("township_review"), Some(Stage::TownshipReview));
        assert_eq!(Stage::parse("x"), None);
    }
}
