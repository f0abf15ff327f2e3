//! The entitlement engine: which months one person is owed, how much, and which level of government bears each part.
//!
//! Every rule here is generic over the program definition; the MBDK clause each rule comes from is cited
//! where it is applied. Eligibility is always one unbroken run of months [first, last]: it opens at the
//! latest of the policy start, the month after the age is reached and the enrolment month, and closes at
//! the earliest of death, leaving the roster and employment as staff.

use super::definition::{Schedule, Tier, TierAmount, TierSelector};
use super::{Program, ProgramError};
use crate::calendar::{YearMonth, add_months};
use crate::id_number::{IdNumber, Sex};
use crate::money::{Fen, split_largest_remainder};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// The longest run of months one call walks (200 years): a stated bound, far beyond any real query.
pub const WALK_MONTHS_MAX: i64 = 12 * 200;

/// What the engine needs to know about one beneficiary (the roster fills it in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beneficiary {
    pub id_number: IdNumber,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    /// Verified teaching semesters (MBDK 工作年限); `None` for people without a teaching record.
    pub semesters: Option<u32>,
    /// The county (县/县级市/区) whose books carry the person.
    pub county: String,
    /// The city (地级市) the county belongs to; for Dongguan 441900 / Zhongshan 442000 the city is itself.
    pub city: String,
    /// An exclusion reason from the program's list (e.g. `criminal_record`): never paid.
    pub exclusion: Option<String>,
    pub death_date: Option<NaiveDate>,
    /// Employed as staff (编制内 / 国企正式职工) from this date.
    pub employed_from: Option<NaiveDate>,
    /// Left the roster (transfer, disqualified) from this date.
    pub left: Option<NaiveDate>,
    /// First semester for child/student programs (any month of it).
    pub enrolled_from: Option<YearMonth>,
    /// A per-person category that category tiers are keyed by (e.g. school stage `primary`).
    pub category: Option<String>,
}

/// One payment owed: one person, one month, with the share each level bears. The three shares always add
/// up to `amount`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entitlement {
    /// The full ID number: entitlements are matched against payments, so this is roster data, not a log.
    pub id_number: String,
    pub month: YearMonth,
    pub amount: Fen,
    /// The tier's label, e.g. `30年及以上`.
    pub tier: String,
    pub service_years: Option<u32>,
    pub province_share: Fen,
    pub city_share: Fen,
    pub county_share: Fen,
}

/// The parts of one amount borne by each level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    pub province: Fen,
    pub city: Fen,
    pub county: Fen,
}

/// MBDK 工作年限: every 2 semesters are 1 year and a remaining single semester counts as a full year.
pub fn service_years(semesters: u32) -> u32 {
    semesters.div_ceil(2)
}

/// The day a person born on `birth` reaches `years` of age: the birthday anniversary, and for a 29
/// February birthday in a common year 28 February (the month's last day, Civil Code art. 202).
///
/// # Panics
/// Only beyond chrono's date range (year 262142), which no birth date and program age can reach.
pub fn reaches_age(birth: NaiveDate, years: u32) -> NaiveDate {
    // Adding whole years as months clamps 29 Feb to 28 Feb, exactly the rule above.
    add_months(birth, years * 12)
}

/// Every payment `who` is owed under `program` in the months `from..=to` (both included), in month order.
pub fn entitlements(
    program: &Program,
    who: &Beneficiary,
    from: YearMonth,
    to: YearMonth,
) -> Result<Vec<Entitlement>, ProgramError> {
    if from > to {
        return Ok(Vec::new());
    }
    let Some((first, last)) = eligible_months(program, who)? else {
        return Ok(Vec::new());
    };
    let definition = &program.definition;
    let payments_max = definition.eligibility.payments_max;
    // A payment cap counts payments from the first eligible month, so the walk starts there even when the
    // query starts later.
    let walk_from = if payments_max.is_some() {
        first
    } else {
        first.max(from)
    };
    let walk_to = last.map_or(to, |last| last.min(to));
    if walk_from > walk_to {
        return Ok(Vec::new());
    }
    if months_between(walk_from, walk_to) > WALK_MONTHS_MAX {
        return Err(ProgramError::RangeTooLong {
            from: walk_from,
            to: walk_to,
            months_max: WALK_MONTHS_MAX,
        });
    }
    let years = who.semesters.map(service_years);
    let mut paid: u32 = 0;
    let mut owed = Vec::new();
    for month in walk_from.months_until_inclusive(walk_to) {
        if !program.is_payout_month(month) {
            continue;
        }
        let Some(tier) = program.tier_for(month, who, years)? else {
            continue;
        };
        if let Some(max) = payments_max {
            // XQZZ 发放方式: "最多只能享受6个学期".
            if paid >= max {
                break;
            }
            paid += 1;
        }
        if month < from {
            continue;
        }
        let amount = match tier.amount {
            TierAmount::Fixed(amount) => amount,
            TierAmount::ByCity => *definition.city_rates.get(&who.city).ok_or_else(|| {
                ProgramError::CityRateMissing {
                    program: definition.code.clone(),
                    city: who.city.clone(),
                }
            })?,
        };
        let shares = program.split(amount, &who.county, &who.city, tier.local_only)?;
        owed.push(Entitlement {
            id_number: who.id_number.full().to_owned(),
            month,
            amount,
            tier: tier.label.clone(),
            service_years: years,
            province_share: shares.province,
            city_share: shares.city,
            county_share: shares.county,
        });
    }
    Ok(owed)
}

fn months_between(a: YearMonth, b: YearMonth) -> i64 {
    (i64::from(b.year) - i64::from(a.year)) * 12 + i64::from(b.month) - i64::from(a.month)
}

/// The first and last month `who` may be paid (`None` last: still open), or `None` when never.
fn eligible_months(
    program: &Program,
    who: &Beneficiary,
) -> Result<Option<(YearMonth, Option<YearMonth>)>, ProgramError> {
    let definition = &program.definition;
    let rules = &definition.eligibility;
    let missing = |attribute: &'static str| ProgramError::MissingAttribute {
        program: definition.code.clone(),
        person: who.id_number.masked(),
        attribute,
    };
    if let Some(reason) = &who.exclusion {
        // MBDK 不列入 1 and 3: retired in plan, criminal record, dismissed: never paid.
        if rules.exclusions.contains(reason) {
            return Ok(None);
        }
        return Err(ProgramError::UnknownExclusion {
            program: definition.code.clone(),
            person: who.id_number.masked(),
            exclusion: reason.clone(),
        });
    }
    // MBDK 不列入 2: died on or before the age cutoff (20xx年12月31日前已去世): never paid.
    if who.death_date.is_some_and(|died| died <= rules.age_cutoff) {
        return Ok(None);
    }
    if let Some(min) = rules.min_semesters {
        // MBDK 对象: "连续任教满1学年(或2个学期)以上".
        let semesters = who.semesters.ok_or_else(|| missing("semesters"))?;
        if semesters < min {
            return Ok(None);
        }
    }
    let mut first = rules.start_month;
    if let Some((age_men, age_women)) = rules.age {
        let years = match who.sex {
            Sex::Male => age_men,
            Sex::Female => age_women,
        };
        let reached = reaches_age(who.birth_date, years);
        // MBDK 发放时间(一): reached on or before the cutoff → from the start month, no back pay.
        // MBDK 发放时间(二): reached after it → from the month after the month the age is reached.
        if reached > rules.age_cutoff {
            first = first.max(YearMonth::of(reached).next());
        }
    }
    if definition.beneficiary.is_enrolled() {
        // XQZZ: aid starts with the semester the child was assessed and enrolled in.
        let enrolled = who.enrolled_from.ok_or_else(|| missing("enrolled_from"))?;
        first = first.max(enrolled);
    }
    // MBDK 发放时间(三): paid through the month of death. Leaving the roster (XQZZ 退园、转园: "停止发放")
    // and employment as staff (MBDK 对象: "未被…录用为编制内人员", found by the 社保 check) end payment the
    // same way: the month of the event is still paid in full (no proration), later months are not.
    let last = [who.death_date, who.left, who.employed_from]
        .into_iter()
        .flatten()
        .min()
        .map(YearMonth::of);
    if last.is_some_and(|last| last < first) {
        return Ok(None);
    }
    Ok(Some((first, last)))
}

impl Program {
    /// Whether the schedule pays in `month`.
    pub fn is_payout_month(&self, month: YearMonth) -> bool {
        match &self.definition.schedule {
            Schedule::Monthly | Schedule::OneOff => true,
            // XQZZ 发放方式: "在每学期最后一个月发放".
            Schedule::Semester { payout_months } => payout_months.contains(&month.month),
        }
    }

    /// The tier paying `who` in `month` (at the rate table in force that month), or `None` when no tier
    /// covers their service years.
    fn tier_for(
        &self,
        month: YearMonth,
        who: &Beneficiary,
        years: Option<u32>,
    ) -> Result<Option<&Tier>, ProgramError> {
        let definition = &self.definition;
        // MBDK 补助标准: "以后根据社会经济发展状况动态调整": a later table replaces the earlier one from its month.
        let Some(table) = definition.rates.iter().rev().find(|t| t.from <= month) else {
            return Ok(None);
        };
        let missing = |attribute: &'static str| ProgramError::MissingAttribute {
            program: definition.code.clone(),
            person: who.id_number.masked(),
            attribute,
        };
        for tier in &table.tiers {
            match &tier.selector {
                TierSelector::Everyone => return Ok(Some(tier)),
                TierSelector::MinYears(min) => {
                    if years.ok_or_else(|| missing("semesters"))? >= *min {
                        return Ok(Some(tier));
                    }
                }
                TierSelector::Category(category) => {
                    if who.category.as_ref().ok_or_else(|| missing("category"))? == category {
                        return Ok(Some(tier));
                    }
                }
            }
        }
        match (&who.category, table.tiers.first().map(|t| &t.selector)) {
            // A category that no tier names is a roster typo, not a person outside the program.
            (Some(category), Some(TierSelector::Category(_))) => {
                Err(ProgramError::UnknownCategory {
                    program: definition.code.clone(),
                    person: who.id_number.masked(),
                    category: category.clone(),
                })
            }
            _ => Ok(None),
        }
    }

    /// Splits one person-month's `amount` between province, city and county for a person in `county` of
    /// `city`; `local_only` drops the province (MBDK 补助标准: the 1-9 year tier is "由市、县自行筹集").
    ///
    /// Rounding: one largest-remainder split to the fen over [province, city, county], ties to the higher
    /// level, so the parts always add up to the amount.
    pub fn split(
        &self,
        amount: Fen,
        county: &str,
        city: &str,
        local_only: bool,
    ) -> Result<Shares, ProgramError> {
        let definition = &self.definition;
        // MBDK 分担: a county matches when its own code (恩平/开平/台山) or its city's code is listed.
        let weights = definition
            .share_rules
            .iter()
            .find(|rule| {
                rule.regions
                    .iter()
                    .any(|code| code == county || code == city)
            })
            .map_or(definition.share_default, |rule| rule.weights);
        // MBDK 分担: "市县分担比例由当地市级人民政府确定": the city's own split, else the program default.
        let local = definition
            .local_split
            .get(city)
            .copied()
            .unwrap_or(definition.local_split_default);
        // Scaled by the local split's total so that every weight is an exact integer.
        let scale = local.city + local.county;
        let province = if local_only {
            0
        } else {
            weights.province * scale
        };
        let mut city_weight = weights.city * scale + weights.local * local.city;
        let mut county_weight = weights.county * scale + weights.local * local.county;
        if city == county {
            // 不设区的地级市 (Dongguan, Zhongshan) play the county's role themselves: both parts are the
            // city's, booked as the city share.
            city_weight += county_weight;
            county_weight = 0;
        }
        let parts = split_largest_remainder(
            amount,
            &[
                Decimal::from(province),
                Decimal::from(city_weight),
                Decimal::from(county_weight),
            ],
        )
        .map_err(|e| ProgramError::Split {
            program: definition.code.clone(),
            reason: e.to_string(),
        })?;
        Ok(Shares {
            province: parts[0],
            city: parts[1],
            county: parts[2],
        })
    }
}
