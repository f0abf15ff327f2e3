//! Program definition files (TOML): the raw serde shape, the checks run on load, and the validated types the engine reads.
//!
//! Loading is two steps so that every refusal can name the file, the key path and the rule: serde (with
//! `deny_unknown_fields`) checks the shape, then [`validate`] checks the meaning and builds the types below,
//! which are valid by construction.

use super::ProgramError;
use crate::calendar::YearMonth;
use crate::money::{Fen, SignRule, parse_amount};
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Program codes are short, upper-case identifiers used in account keys and file names.
pub const CODE_LEN_MAX: usize = 16;
/// Ages are written in years; anything above this is a typo, not a policy.
const AGE_YEARS_MAX: u32 = 150;
/// Bounds on the lists in a definition, so that a malformed file cannot make the engine walk forever.
const RATE_TABLES_MAX: usize = 100;
const TIERS_MAX: usize = 64;
const SHARE_RULES_MAX: usize = 64;
/// The amount written in a tier whose rate is set by each city (MBDK 补助标准: 1-9 年 "具体标准由各市制定").
pub const BY_CITY: &str = "by city";

// ---------------------------------------------------------------------------------------------------------
// The file as written. Every struct refuses unknown keys: a misspelt key must not silently mean "default".
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProgram {
    code: String,
    name: String,
    beneficiary: BeneficiaryKind,
    #[serde(default)]
    excludes: Vec<String>,
    schedule: RawSchedule,
    #[serde(default)]
    eligibility: RawEligibility,
    rates: Vec<RawRateTable>,
    #[serde(default)]
    city_rates: BTreeMap<String, String>,
    shares: RawShares,
    #[serde(default)]
    local_split: RawLocalSplits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    kind: ScheduleKind,
    payout_months: Option<Vec<u32>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum ScheduleKind {
    Monthly,
    Semester,
    OneOff,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEligibility {
    min_semesters: Option<u32>,
    age_men: Option<u32>,
    age_women: Option<u32>,
    start_month: Option<String>,
    age_cutoff: Option<String>,
    #[serde(default)]
    exclusions: Vec<String>,
    payments_max: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateTable {
    from: String,
    tiers: Vec<RawTier>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    min_years: Option<u32>,
    category: Option<String>,
    amount: String,
    #[serde(default)]
    local_only: bool,
    label: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShares {
    default: RawShareWeights,
    #[serde(default)]
    rules: Vec<RawShareRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShareWeights {
    #[serde(default)]
    province: i64,
    #[serde(default)]
    city: i64,
    #[serde(default)]
    county: i64,
    #[serde(default)]
    local: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShareRule {
    regions: Vec<String>,
    // Listed out rather than `#[serde(flatten)]`: flatten silently disables deny_unknown_fields.
    #[serde(default)]
    province: i64,
    #[serde(default)]
    city: i64,
    #[serde(default)]
    county: i64,
    #[serde(default)]
    local: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalSplits {
    default: Option<RawLocalSplit>,
    #[serde(default)]
    cities: BTreeMap<String, RawLocalSplit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalSplit {
    city: i64,
    county: i64,
}

// ---------------------------------------------------------------------------------------------------------
// The validated definition.
// ---------------------------------------------------------------------------------------------------------

/// Who a program pays.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BeneficiaryKind {
    Teacher,
    Child,
    Student,
}

impl BeneficiaryKind {
    /// Child and student programs pay from the semester the person enrolled in.
    pub fn is_enrolled(self) -> bool {
        matches!(self, BeneficiaryKind::Child | BeneficiaryKind::Student)
    }

    /// The word used in definition files.
    pub fn as_str(self) -> &'static str {
        match self {
            BeneficiaryKind::Teacher => "teacher",
            BeneficiaryKind::Child => "child",
            BeneficiaryKind::Student => "student",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            BeneficiaryKind::Teacher => "教师",
            BeneficiaryKind::Child => "幼儿",
            BeneficiaryKind::Student => "学生",
        }
    }
}

/// When a program pays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every month, each month in full.
    Monthly,
    /// Once per semester, in the given calendar months (1..=12, ascending): the last month of each term.
    Semester { payout_months: Vec<u32> },
    /// Once, in the first month the person is eligible.
    OneOff,
}

/// Who qualifies and from when; every field is a policy parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eligibility {
    pub min_semesters: Option<u32>,
    /// (men, women); `None` when the program has no age condition.
    pub age: Option<(u32, u32)>,
    pub start_month: YearMonth,
    pub age_cutoff: NaiveDate,
    /// The exclusion reasons the program knows; a person carrying one is never paid.
    pub exclusions: Vec<String>,
    pub payments_max: Option<u32>,
}

/// The rates in force from `from` until the next table's month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateTable {
    pub from: YearMonth,
    pub tiers: Vec<Tier>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub selector: TierSelector,
    pub amount: TierAmount,
    /// Funded by city and county alone: the province's weight is 0 for this tier.
    pub local_only: bool,
    pub label: String,
}

/// How a tier picks its people. All tiers of one table use the same kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TierSelector {
    /// Everyone (a table with a single flat rate).
    Everyone,
    /// Service years of at least this many (tiers are listed from the highest down).
    MinYears(u32),
    /// The person's `category` attribute equals this (e.g. school stage).
    Category(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierAmount {
    /// Per payment: per month for monthly programs, per semester for semester ones.
    Fixed(Fen),
    /// Each city sets it in `city_rates`.
    ByCity,
}

/// Percentages of the cost borne by each level; `local` is divided between city and county by the city's
/// local split. They always add up to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareWeights {
    pub province: i64,
    pub city: i64,
    pub county: i64,
    pub local: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRule {
    /// County or city codes; a county matches when its own code or its city's code is listed.
    pub regions: Vec<String>,
    pub weights: ShareWeights,
}

/// How a city divides the local part between itself and its counties (weights, not percentages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalSplit {
    pub city: i64,
    pub county: i64,
}

/// Until a city sets its split, the county bears the whole local part: the county is the level that
/// pays out, and DOMAIN/MBDK 分担 leaves the split to "当地市级人民政府".
pub const LOCAL_SPLIT_DEFAULT: LocalSplit = LocalSplit {
    city: 0,
    county: 100,
};

/// A program after every check passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    pub code: String,
    pub name: String,
    pub beneficiary: BeneficiaryKind,
    pub excludes: Vec<String>,
    pub schedule: Schedule,
    pub eligibility: Eligibility,
    pub rates: Vec<RateTable>,
    pub city_rates: BTreeMap<String, Fen>,
    pub share_rules: Vec<ShareRule>,
    pub share_default: ShareWeights,
    pub local_split_default: LocalSplit,
    pub local_split: BTreeMap<String, LocalSplit>,
}

// ---------------------------------------------------------------------------------------------------------
// Parsing and validation.
// ---------------------------------------------------------------------------------------------------------

/// Parses and validates one definition file; `source` names it in errors.
pub(super) fn parse(text: &str, source: &str) -> Result<Definition, ProgramError> {
    let raw: RawProgram = toml::from_str(text).map_err(|e| syntax_error(text, source, &e))?;
    validate(raw, source)
}

/// A serde/TOML error as one line: file, line:column, the key path at that place, and the message.
fn syntax_error(text: &str, source: &str, error: &toml::de::Error) -> ProgramError {
    let span = error.span().unwrap_or(0..0);
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let key = super::keypath::key_path_at(text, span.start).unwrap_or_else(|| "(top level)".into());
    ProgramError::Syntax {
        file: source.to_owned(),
        line,
        column,
        key,
        message: error.message().trim().replace('\n', " "),
    }
}

/// Collects the first broken rule with the key it concerns.
struct Checker<'a> {
    source: &'a str,
}

impl Checker<'_> {
    fn fail<T>(&self, key: impl Into<String>, rule: impl Into<String>) -> Result<T, ProgramError> {
        Err(ProgramError::Invalid {
            file: self.source.to_owned(),
            key: key.into(),
            rule: rule.into(),
        })
    }

    fn month(&self, key: &str, text: &str) -> Result<YearMonth, ProgramError> {
        text.parse::<YearMonth>()
            .or_else(|_| self.fail(key, format!("{text:?} is not a month: write \"YYYY-MM\"")))
    }

    fn amount(&self, key: &str, text: &str) -> Result<Fen, ProgramError> {
        parse_amount(text, SignRule::Positive).or_else(|e| {
            self.fail(
                key,
                format!("{e}; write a positive amount such as \"900.00\""),
            )
        })
    }

    fn region_code(&self, key: &str, code: &str) -> Result<(), ProgramError> {
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            self.fail(
                key,
                format!("{code:?} is not a 6-digit region code (GB/T 2260)"),
            )
        }
    }
}

fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= CODE_LEN_MAX
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn validate(raw: RawProgram, source: &str) -> Result<Definition, ProgramError> {
    let check = Checker { source };
    if !is_code(&raw.code) {
        return check.fail(
            "code",
            format!(
                "{:?} must be 1-{CODE_LEN_MAX} characters of A-Z, 0-9 and _",
                raw.code
            ),
        );
    }
    if raw.name.trim().is_empty() {
        return check.fail("name", "the program needs a name");
    }
    let mut seen = BTreeSet::new();
    for (i, other) in raw.excludes.iter().enumerate() {
        let key = format!("excludes[{i}]");
        if !is_code(other) {
            return check.fail(key, format!("{other:?} is not a program code"));
        }
        if *other == raw.code {
            return check.fail(key, "a program cannot exclude itself");
        }
        if !seen.insert(other) {
            return check.fail(key, format!("{other} is listed twice"));
        }
    }
    let schedule = validate_schedule(&check, raw.schedule)?;
    let eligibility = validate_eligibility(&check, raw.eligibility, &schedule)?;
    let rates = validate_rates(&check, raw.rates, eligibility.start_month)?;
    let mut city_rates = BTreeMap::new();
    for (city, amount) in &raw.city_rates {
        let key = format!("city_rates.\"{city}\"");
        check.region_code(&key, city)?;
        city_rates.insert(city.clone(), check.amount(&key, amount)?);
    }
    let (share_default, share_rules) = validate_shares(&check, raw.shares)?;
    let any_local_only = rates.iter().flat_map(|t| &t.tiers).any(|t| t.local_only);
    if any_local_only {
        // MBDK 补助标准: the 1-9 year tier is "由市、县自行筹集", so every region must have a local part.
        let rules = share_rules.iter().enumerate();
        let keyed = rules.map(|(i, r)| (format!("shares.rules[{i}]"), r.weights));
        for (key, w) in std::iter::once(("shares.default".to_owned(), share_default)).chain(keyed) {
            if w.city + w.county + w.local == 0 {
                return check.fail(
                    key,
                    "a local_only tier exists, so city, county or local must be above 0",
                );
            }
        }
    }
    let (local_split_default, local_split) = validate_local_split(&check, raw.local_split)?;
    Ok(Definition {
        code: raw.code,
        name: raw.name,
        beneficiary: raw.beneficiary,
        excludes: raw.excludes,
        schedule,
        eligibility,
        rates,
        city_rates,
        share_rules,
        share_default,
        local_split_default,
        local_split,
    })
}

fn validate_schedule(check: &Checker<'_>, raw: RawSchedule) -> Result<Schedule, ProgramError> {
    match (raw.kind, raw.payout_months) {
        (ScheduleKind::Semester, Some(months)) => {
            if months.is_empty() || months.len() > 12 {
                return check.fail("schedule.payout_months", "list 1 to 12 months, e.g. [1, 7]");
            }
            for (i, m) in months.iter().enumerate() {
                let key = format!("schedule.payout_months[{i}]");
                if !(1..=12).contains(m) {
                    return check.fail(key, format!("{m} is not a month 1-12"));
                }
                if i > 0 && months[i - 1] >= *m {
                    return check.fail(key, "months must be in ascending order, each once");
                }
            }
            Ok(Schedule::Semester {
                payout_months: months,
            })
        }
        (ScheduleKind::Semester, None) => check.fail(
            "schedule.payout_months",
            "a semester schedule needs its payout months, e.g. [1, 7]",
        ),
        (_, Some(_)) => check.fail(
            "schedule.payout_months",
            "only a semester schedule has payout months",
        ),
        (ScheduleKind::Monthly, None) => Ok(Schedule::Monthly),
        (ScheduleKind::OneOff, None) => Ok(Schedule::OneOff),
    }
}

fn validate_eligibility(
    check: &Checker<'_>,
    raw: RawEligibility,
    schedule: &Schedule,
) -> Result<Eligibility, ProgramError> {
    let start_month = match &raw.start_month {
        Some(text) => check.month("eligibility.start_month", text)?,
        None => YearMonth {
            year: 2019,
            month: 1,
        },
    };
    // MBDK 发放时间(一)/(二): the cutoff C is the last day before the start month S unless the file says
    // otherwise.
    let age_cutoff = match &raw.age_cutoff {
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").or_else(|_| {
            check.fail(
                "eligibility.age_cutoff",
                format!("{text:?} is not a date: write \"YYYY-MM-DD\""),
            )
        })?,
        None => start_month.prev().last_day(),
    };
    if age_cutoff >= start_month.first_day() {
        return check.fail(
            "eligibility.age_cutoff",
            format!("{age_cutoff} must be before the start month {start_month}"),
        );
    }
    let age = match (raw.age_men, raw.age_women) {
        (None, None) => None,
        (Some(men), Some(women)) => {
            for (key, years) in [
                ("eligibility.age_men", men),
                ("eligibility.age_women", women),
            ] {
                if !(1..=AGE_YEARS_MAX).contains(&years) {
                    return check.fail(key, format!("{years} is not an age 1-{AGE_YEARS_MAX}"));
                }
            }
            Some((men, women))
        }
        (Some(_), None) => return check.fail("eligibility.age_women", "give both ages or neither"),
        (None, Some(_)) => return check.fail("eligibility.age_men", "give both ages or neither"),
    };
    if raw.min_semesters == Some(0) {
        return check.fail(
            "eligibility.min_semesters",
            "must be at least 1 (or left out)",
        );
    }
    let payments_max = match (schedule, raw.payments_max) {
        (_, Some(0)) => {
            return check.fail(
                "eligibility.payments_max",
                "must be at least 1 (or left out)",
            );
        }
        (Schedule::OneOff, Some(n)) if n != 1 => {
            return check.fail(
                "eligibility.payments_max",
                "a one_off program pays exactly once",
            );
        }
        (Schedule::OneOff, _) => Some(1),
        (_, n) => n,
    };
    let mut seen = BTreeSet::new();
    for (i, reason) in raw.exclusions.iter().enumerate() {
        let key = format!("eligibility.exclusions[{i}]");
        let plain = !reason.is_empty()
            && reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !plain {
            return check.fail(key, format!("{reason:?} must be lower-case a-z, 0-9 and _"));
        }
        if !seen.insert(reason) {
            return check.fail(key, format!("{reason} is listed twice"));
        }
    }
    Ok(Eligibility {
        min_semesters: raw.min_semesters,
        age,
        start_month,
        age_cutoff,
        exclusions: raw.exclusions,
        payments_max,
    })
}

fn validate_rates(
    check: &Checker<'_>,
    raw: Vec<RawRateTable>,
    start_month: YearMonth,
) -> Result<Vec<RateTable>, ProgramError> {
    if raw.is_empty() || raw.len() > RATE_TABLES_MAX {
        return check.fail("rates", format!("list 1 to {RATE_TABLES_MAX} rate tables"));
    }
    let mut tables: Vec<RateTable> = Vec::with_capacity(raw.len());
    for (i, table) in raw.into_iter().enumerate() {
        let from = check.month(&format!("rates[{i}].from"), &table.from)?;
        if let Some(previous) = tables.last()
            && previous.from >= from
        {
            return check.fail(
                format!("rates[{i}].from"),
                format!(
                    "{from} must be after the previous table's {}",
                    previous.from
                ),
            );
        }
        if i == 0 && from > start_month {
            return check.fail(
                "rates[0].from",
                format!("{from} is after the start month {start_month}: the first months would have no rate"),
            );
        }
        let tiers = validate_tiers(check, i, table.tiers)?;
        tables.push(RateTable { from, tiers });
    }
    Ok(tables)
}

fn validate_tiers(
    check: &Checker<'_>,
    table: usize,
    raw: Vec<RawTier>,
) -> Result<Vec<Tier>, ProgramError> {
    let base = format!("rates[{table}].tiers");
    if raw.is_empty() || raw.len() > TIERS_MAX {
        return check.fail(base, format!("list 1 to {TIERS_MAX} tiers"));
    }
    let by_years = raw[0].min_years.is_some();
    let by_category = raw[0].category.is_some();
    let mut tiers: Vec<Tier> = Vec::with_capacity(raw.len());
    for (i, tier) in raw.iter().enumerate() {
        let key = format!("{base}[{i}]");
        let selector = match (tier.min_years, &tier.category) {
            (Some(_), Some(_)) => return check.fail(key, "give min_years or category, not both"),
            (Some(years), None) if by_years => {
                if years == 0 {
                    return check.fail(format!("{key}.min_years"), "must be at least 1");
                }
                if let Some(TierSelector::MinYears(above)) = tiers.last().map(|t| &t.selector)
                    && *above <= years
                {
                    return check.fail(
                        format!("{key}.min_years"),
                        format!("{years} must be below the previous tier's {above}: list tiers from the highest down, each once"),
                    );
                }
                TierSelector::MinYears(years)
            }
            (None, Some(category)) if by_category => {
                if category.trim().is_empty() {
                    return check.fail(format!("{key}.category"), "must not be empty");
                }
                if tiers
                    .iter()
                    .any(|t| t.selector == TierSelector::Category(category.clone()))
                {
                    return check.fail(
                        format!("{key}.category"),
                        format!("{category:?} is listed twice"),
                    );
                }
                TierSelector::Category(category.clone())
            }
            (None, None) if raw.len() == 1 => TierSelector::Everyone,
            _ => {
                return check.fail(
                    key,
                    "all tiers of a table use min_years, or all use category, or the table has one tier with neither",
                );
            }
        };
        let amount = if tier.amount.trim() == BY_CITY {
            if !tier.local_only {
                // MBDK 补助标准: a rate set by each city is "所需资金由市、县自行筹集".
                return check.fail(
                    format!("{key}.local_only"),
                    "a \"by city\" tier must be local_only = true",
                );
            }
            TierAmount::ByCity
        } else {
            TierAmount::Fixed(check.amount(&format!("{key}.amount"), &tier.amount)?)
        };
        let label = match &tier.label {
            Some(label) if !label.trim().is_empty() => label.clone(),
            Some(_) => {
                return check.fail(format!("{key}.label"), "must not be empty (or left out)");
            }
            None => default_label(&selector, tiers.last().map(|t| &t.selector)),
        };
        tiers.push(Tier {
            selector,
            amount,
            local_only: tier.local_only,
            label,
        });
    }
    Ok(tiers)
}

/// `30年及以上`, `20-29年`, …: the band from this tier's minimum to just below the tier above.
fn default_label(selector: &TierSelector, above: Option<&TierSelector>) -> String {
    match (selector, above) {
        (TierSelector::MinYears(min), Some(TierSelector::MinYears(upper))) => {
            if upper - 1 == *min {
                format!("{min}年")
            } else {
                format!("{min}-{}年", upper - 1)
            }
        }
        (TierSelector::MinYears(min), _) => format!("{min}年及以上"),
        (TierSelector::Category(category), _) => category.clone(),
        (TierSelector::Everyone, _) => "标准".to_owned(),
    }
}

fn validate_weights(
    check: &Checker<'_>,
    key: &str,
    raw: &RawShareWeights,
) -> Result<ShareWeights, ProgramError> {
    let parts = [
        ("province", raw.province),
        ("city", raw.city),
        ("county", raw.county),
        ("local", raw.local),
    ];
    for (name, value) in parts {
        if !(0..=100).contains(&value) {
            return check.fail(
                format!("{key}.{name}"),
                format!("{value} is not a percentage 0-100"),
            );
        }
    }
    let total: i64 = parts.iter().map(|(_, v)| v).sum();
    if total != 100 {
        return check.fail(
            key,
            format!(
                "province + city + county + local add up to {total}%, they must add up to 100%"
            ),
        );
    }
    Ok(ShareWeights {
        province: raw.province,
        city: raw.city,
        county: raw.county,
        local: raw.local,
    })
}

fn validate_shares(
    check: &Checker<'_>,
    raw: RawShares,
) -> Result<(ShareWeights, Vec<ShareRule>), ProgramError> {
    let default = validate_weights(check, "shares.default", &raw.default)?;
    if raw.rules.len() > SHARE_RULES_MAX {
        return check.fail("shares.rules", format!("at most {SHARE_RULES_MAX} rules"));
    }
    let mut listed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, rule) in raw.rules.iter().enumerate() {
        let key = format!("shares.rules[{i}]");
        if rule.regions.is_empty() {
            return check.fail(format!("{key}.regions"), "list at least one region code");
        }
        for (j, code) in rule.regions.iter().enumerate() {
            let code_key = format!("{key}.regions[{j}]");
            check.region_code(&code_key, code)?;
            if let Some(first) = listed.insert(code, i) {
                return check.fail(
                    code_key,
                    format!("{code} is already listed in shares.rules[{first}]"),
                );
            }
        }
        let raw_weights = RawShareWeights {
            province: rule.province,
            city: rule.city,
            county: rule.county,
            local: rule.local,
        };
        let weights = validate_weights(check, &key, &raw_weights)?;
        rules.push(ShareRule {
            regions: rule.regions.clone(),
            weights,
        });
    }
    Ok((default, rules))
}

fn validate_split(
    check: &Checker<'_>,
    key: &str,
    raw: &RawLocalSplit,
) -> Result<LocalSplit, ProgramError> {
    if raw.city < 0 || raw.county < 0 {
        return check.fail(key, "weights must not be negative");
    }
    if raw.city == 0 && raw.county == 0 {
        return check.fail(key, "at least one of city and county must be above 0");
    }
    // Bounded so that weight products stay far from overflow.
    if raw.city > 1_000_000 || raw.county > 1_000_000 {
        return check.fail(key, "weights above 1,000,000 are not supported");
    }
    Ok(LocalSplit {
        city: raw.city,
        county: raw.county,
    })
}

fn validate_local_split(
    check: &Checker<'_>,
    raw: RawLocalSplits,
) -> Result<(LocalSplit, BTreeMap<String, LocalSplit>), ProgramError> {
    let default = match &raw.default {
        Some(split) => validate_split(check, "local_split.default", split)?,
        None => LOCAL_SPLIT_DEFAULT,
    };
    let mut cities = BTreeMap::new();
    for (city, split) in &raw.cities {
        let key = format!("local_split.cities.\"{city}\"");
        check.region_code(&key, city)?;
        cities.insert(city.clone(), validate_split(check, &key, split)?);
    }
    Ok((default, cities))
}
