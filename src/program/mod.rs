//! Subsidy programs (专项资金) as data: a validated definition per program and the entitlements it gives each person.
//!
//! A program's rules, rates, share ratios and payout schedule live in a TOML file (`programs/*.toml`, the
//! format is documented at the top of `programs/mbdk.toml`); a new program of the same shapes is a new file,
//! not new code. MBDK and XQZZ are built in; others are loaded with [`Program::from_toml`].

mod definition;
mod entitlement;
mod keypath;
pub mod tables;
#[cfg(test)]
mod year_table_tests;

pub use definition::{
    BY_CITY, BeneficiaryKind, CODE_LEN_MAX, Eligibility, LOCAL_SPLIT_DEFAULT, LocalSplit,
    RateTable, Schedule, ShareRule, ShareWeights, Tier, TierAmount, TierSelector,
};
pub use entitlement::{
    Beneficiary, Entitlement, Shares, WALK_MONTHS_MAX, entitlements, reaches_age, service_years,
};

use crate::calendar::YearMonth;
use crate::money::Fen;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The built-in definitions, embedded so the binary works without its data directory.
pub const BUILTIN: [(&str, &str); 2] = [
    (
        "programs/mbdk.toml",
        include_str!("../../programs/mbdk.toml"),
    ),
    (
        "programs/xqzz.toml",
        include_str!("../../programs/xqzz.toml"),
    ),
];

/// A definition file larger than this is not a program definition.
pub const FILE_BYTES_MAX: u64 = 1024 * 1024;

/// Why a definition was refused or an entitlement could not be computed. One line each; ID numbers only
/// ever appear masked.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProgramError {
    #[error("{file}:{line}:{column}: at `{key}`: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
    #[error("{file}: at `{key}`: {rule}")]
    Invalid {
        file: String,
        key: String,
        rule: String,
    },
    #[error("{path}: cannot read the program file: {reason}")]
    Io { path: String, reason: String },
    #[error("program {code} is defined twice ({first} and {second})")]
    DuplicateCode {
        code: String,
        first: String,
        second: String,
    },
    #[error("program {program} excludes {other}, which is not a known program")]
    UnknownExclude { program: String, other: String },
    #[error(
        "program {program}: city {city} has not set its rate for 1-9 service years; add city_rates.\"{city}\" to the program file"
    )]
    CityRateMissing { program: String, city: String },
    #[error("program {program}: person {person} has no {attribute}, which this program needs")]
    MissingAttribute {
        program: String,
        person: String,
        attribute: &'static str,
    },
    #[error(
        "program {program}: person {person} has exclusion {exclusion:?}, which is not in the program's eligibility.exclusions"
    )]
    UnknownExclusion {
        program: String,
        person: String,
        exclusion: String,
    },
    #[error(
        "program {program}: person {person} has category {category:?}, which no rate tier names"
    )]
    UnknownCategory {
        program: String,
        person: String,
        category: String,
    },
    #[error("months {from} to {to} span more than {months_max} months; ask for a shorter range")]
    RangeTooLong {
        from: YearMonth,
        to: YearMonth,
        months_max: i64,
    },
    #[error("program {program}: cannot split an amount between levels: {reason}")]
    Split { program: String, reason: String },
}

/// A parsed and validated program definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    definition: definition::Definition,
}

impl Program {
    /// Parses and validates a definition; `source` (usually the file path) names it in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Program, ProgramError> {
        definition::parse(text, source).map(|definition| Program { definition })
    }

    /// Reads and validates one definition file.
    pub fn from_file(path: &Path) -> Result<Program, ProgramError> {
        let io = |reason: String| ProgramError::Io {
            path: path.display().to_string(),
            reason,
        };
        let size = std::fs::metadata(path)
            .map_err(|e| io(e.to_string()))?
            .len();
        if size > FILE_BYTES_MAX {
            return Err(io(format!(
                "{size} bytes is more than the {FILE_BYTES_MAX} a definition may have"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| io(e.to_string()))?;
        Program::from_toml(&text, &path.display().to_string())
    }

    /// MBDK and XQZZ.
    ///
    /// # Panics
    /// If an embedded file is invalid: a build defect that the tests catch.
    pub fn builtin() -> Vec<Program> {
        BUILTIN
            .iter()
            .map(|(source, text)| {
                Program::from_toml(text, source)
                    .unwrap_or_else(|e| panic!("built-in program is invalid: {e}"))
            })
            .collect()
    }

    /// Checks a set of programs together: codes unique, every `excludes` entry a program of the set.
    /// `sources` names each program's file, in the same order.
    pub fn check_set(programs: &[Program], sources: &[&str]) -> Result<(), ProgramError> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, program) in programs.iter().enumerate() {
            if let Some(first) = seen.insert(program.code(), i) {
                let name = |j: usize| {
                    sources
                        .get(j)
                        .map_or_else(|| format!("#{j}"), |s| (*s).to_owned())
                };
                return Err(ProgramError::DuplicateCode {
                    code: program.code().to_owned(),
                    first: name(first),
                    second: name(i),
                });
            }
        }
        for program in programs {
            if let Some(other) = program
                .excludes()
                .iter()
                .find(|o| !seen.contains_key(o.as_str()))
            {
                return Err(ProgramError::UnknownExclude {
                    program: program.code().to_owned(),
                    other: other.clone(),
                });
            }
        }
        Ok(())
    }

    pub fn code(&self) -> &str {
        &self.definition.code
    }

    pub fn name(&self) -> &str {
        &self.definition.name
    }

    pub fn beneficiary(&self) -> BeneficiaryKind {
        self.definition.beneficiary
    }

    /// Programs a person may not receive in the same period as this one.
    pub fn excludes(&self) -> &[String] {
        &self.definition.excludes
    }

    pub fn schedule(&self) -> &Schedule {
        &self.definition.schedule
    }

    /// The calendar months (1..=12) in which the program pays: all twelve for monthly and one-off programs.
    pub fn payout_months(&self) -> &[u32] {
        const EVERY_MONTH: [u32; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        match &self.definition.schedule {
            Schedule::Semester { payout_months } => payout_months,
            Schedule::Monthly | Schedule::OneOff => &EVERY_MONTH,
        }
    }

    pub fn eligibility(&self) -> &Eligibility {
        &self.definition.eligibility
    }

    pub fn start_month(&self) -> YearMonth {
        self.definition.eligibility.start_month
    }

    pub fn age_cutoff(&self) -> NaiveDate {
        self.definition.eligibility.age_cutoff
    }

    pub fn payments_max(&self) -> Option<u32> {
        self.definition.eligibility.payments_max
    }

    /// The rate tables, oldest first.
    pub fn rate_tables(&self) -> &[RateTable] {
        &self.definition.rates
    }

    /// The rate a city has set for the "by city" tier, if it has.
    pub fn city_rate(&self, city: &str) -> Option<Fen> {
        self.definition.city_rates.get(city).copied()
    }

    /// A readable multi-line description for `earmark program show`.
    pub fn summary(&self) -> String {
        let d = &self.definition;
        let e = &d.eligibility;
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(out, "{} {}", d.code, d.name);
        let _ = writeln!(
            out,
            "对象 beneficiary: {} ({})",
            d.beneficiary.label_zh(),
            d.beneficiary.as_str()
        );
        let excludes = if d.excludes.is_empty() {
            "无".to_owned()
        } else {
            d.excludes.join(", ")
        };
        let _ = writeln!(out, "不可同时享受 excludes: {excludes}");
        let schedule = match &d.schedule {
            Schedule::Monthly => "按月发放 monthly".to_owned(),
            Schedule::OneOff => "一次性发放 one-off".to_owned(),
            Schedule::Semester { payout_months } => {
                let months: Vec<String> = payout_months.iter().map(|m| format!("{m}月")).collect();
                format!("按学期发放 per semester, in {}", months.join("、"))
            }
        };
        let _ = writeln!(out, "发放周期 schedule: {schedule}");
        let _ = writeln!(out, "起始月份 start month: {}", e.start_month);
        if let Some(min) = e.min_semesters {
            let _ = writeln!(out, "任教学期 min semesters: {min}");
        }
        if let Some((men, women)) = e.age {
            let cutoff = e.age_cutoff;
            let _ = writeln!(
                out,
                "年龄 age: 男 {men} 周岁 / 女 {women} 周岁 (截止 cutoff {cutoff})"
            );
        }
        if !e.exclusions.is_empty() {
            let _ = writeln!(out, "不列入 exclusions: {}", e.exclusions.join(", "));
        }
        if let Some(max) = e.payments_max {
            let _ = writeln!(out, "最多发放 payments max: {max}");
        }
        for table in &d.rates {
            let _ = writeln!(out, "补助标准 rates from {}:", table.from);
            for tier in &table.tiers {
                let who = match &tier.selector {
                    TierSelector::Everyone => "所有对象".to_owned(),
                    TierSelector::MinYears(min) => format!("工作年限 ≥ {min}"),
                    TierSelector::Category(category) => format!("category = {category}"),
                };
                let amount = match tier.amount {
                    TierAmount::Fixed(amount) => amount.to_string(),
                    TierAmount::ByCity => "各市制定 by city".to_owned(),
                };
                let local = if tier.local_only {
                    " (市县负担 local only)"
                } else {
                    ""
                };
                let _ = writeln!(out, "  {} [{who}]: {amount}{local}", tier.label);
            }
        }
        if d.rates
            .iter()
            .flat_map(|t| &t.tiers)
            .any(|t| t.amount == TierAmount::ByCity)
        {
            if d.city_rates.is_empty() {
                let _ = writeln!(out, "各市标准 city rates: 未设置 none set");
            } else {
                let rates: Vec<String> = d
                    .city_rates
                    .iter()
                    .map(|(c, a)| format!("{c} {a}"))
                    .collect();
                let _ = writeln!(out, "各市标准 city rates: {}", rates.join(", "));
            }
        }
        let _ = writeln!(out, "分担比例 shares:");
        for rule in &d.share_rules {
            let _ = writeln!(
                out,
                "  {}: {}",
                rule.regions.join(" "),
                describe_weights(rule.weights)
            );
        }
        let others = if d.share_rules.is_empty() {
            "所有地区 everywhere"
        } else {
            "其他地区 elsewhere"
        };
        let _ = writeln!(out, "  {others}: {}", describe_weights(d.share_default));
        let uses_local = std::iter::once(d.share_default)
            .chain(d.share_rules.iter().map(|r| r.weights))
            .any(|w| w.local > 0)
            || d.rates.iter().flat_map(|t| &t.tiers).any(|t| t.local_only);
        if uses_local {
            let split = d.local_split_default;
            let _ = writeln!(
                out,
                "市县分担 local split: 默认 default 市 {} : 县 {}",
                split.city, split.county
            );
            for (city, split) in &d.local_split {
                let _ = writeln!(out, "  {city}: 市 {} : 县 {}", split.city, split.county);
            }
        }
        out
    }
}

fn describe_weights(w: ShareWeights) -> String {
    let parts = [
        ("省", w.province),
        ("市", w.city),
        ("县", w.county),
        ("地方", w.local),
    ];
    let listed: Vec<String> = parts
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(name, v)| format!("{name} {v}%"))
        .collect();
    listed.join(" / ")
}

#[cfg(test)]
mod tests;
