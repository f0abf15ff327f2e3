//! The beneficiary registry (名册): reading and checking roster files, and the life events
//! (deaths, employment, leaving) that end eligibility from their dates on.
//!
//! MBDK's registry is frozen once verified (只减不增): after `roster lock` nobody is added, service
//! semesters never change (工作年限核定后不再调整), and people leave only with a dated reason.

pub mod cycle;

use std::collections::HashSet;

use chrono::NaiveDate;

use crate::calendar::YearMonth;
use crate::id_number::{IdNumber, Sex, verify_against};
use crate::input::table::Table;
use crate::region::{Level, RegionTable};

/// Why a person is never paid (MBDK 不列入发放对象范围 1 and 3).
pub const EXCLUSIONS: [(&str, &str); 3] = [
    ("retired_in_plan", "纳入计划内离岗退养"),
    ("criminal_record", "有刑事犯罪记录"),
    ("dismissed", "任教期间被开除、辞退或解除聘用合同"),
];

/// Why a person leaves a locked registry.
pub const LEAVE_REASONS: [(&str, &str); 3] = [
    ("death", "去世"),
    ("disqualified", "取消资格"),
    ("transfer", "迁出/转出"),
];

/// One person on one program's roster, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterEntry {
    pub program: String,
    pub id_number: String,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub semesters: Option<u32>,
    pub county: String,
    pub township: Option<String>,
    pub unit: Option<String>,
    pub bank_account: Option<String>,
    pub exclusion: Option<String>,
    pub death_date: Option<NaiveDate>,
    pub guardian_name: Option<String>,
    pub guardian_id_number: Option<String>,
    pub enrolled_from: Option<YearMonth>,
    pub category: Option<String>,
    pub employed_from: Option<NaiveDate>,
    pub employer_kind: Option<String>,
    pub left_date: Option<NaiveDate>,
    pub left_reason: Option<String>,
}

/// A column of the roster file: English name, Chinese aliases, required for which beneficiaries.
struct Column {
    name: &'static str,
    aliases: &'static [&'static str],
}

const COLUMNS: &[Column] = &[
    Column {
        name: "id_number",
        aliases: &["身份证号", "公民身份号码", "身份证号码"],
    },
    Column {
        name: "name",
        aliases: &["姓名"],
    },
    Column {
        name: "sex",
        aliases: &["性别"],
    },
    Column {
        name: "birth_date",
        aliases: &["出生日期"],
    },
    Column {
        name: "semesters",
        aliases: &["任教学期数", "学期数", "任教学期"],
    },
    Column {
        name: "county_code",
        aliases: &["县区代码", "县代码"],
    },
    Column {
        name: "township_code",
        aliases: &["乡镇代码", "乡镇街道代码"],
    },
    Column {
        name: "unit_code",
        aliases: &["发放单位代码", "单位代码"],
    },
    Column {
        name: "bank_account",
        aliases: &["银行账号", "银行卡号"],
    },
    Column {
        name: "exclusion",
        aliases: &["排除情形"],
    },
    Column {
        name: "death_date",
        aliases: &["死亡日期", "去世日期"],
    },
    Column {
        name: "guardian_name",
        aliases: &["监护人姓名", "家长姓名"],
    },
    Column {
        name: "guardian_id_number",
        aliases: &["监护人身份证号"],
    },
    Column {
        name: "enrolled_from",
        aliases: &["起始月份", "入园学期", "入学学期"],
    },
    Column {
        name: "category",
        aliases: &["类别", "学段"],
    },
];

/// The columns a beneficiary kind must have.
pub fn required_columns(beneficiary: &str) -> &'static [&'static str] {
    match beneficiary {
        "teacher" => &[
            "id_number",
            "name",
            "sex",
            "birth_date",
            "semesters",
            "county_code",
        ],
        _ => &[
            "id_number",
            "name",
            "sex",
            "birth_date",
            "county_code",
            "unit_code",
            "enrolled_from",
        ],
    }
}

/// What reading a roster file found: good entries and one line per broken rule.
pub struct ParsedRoster {
    pub entries: Vec<(u64, RosterEntry)>,
    pub errors: Vec<RowError>,
}

#[derive(Clone, Debug)]
pub struct RowError {
    pub row: u64,
    pub cells: Vec<String>,
    pub message: String,
}

/// Reads a date as `YYYY-MM-DD`, `YYYY/MM/DD` or `YYYYMMDD` (what Excel and registry exports write).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
        .filter(|d| text.len() >= 8 && d.format("%Y").to_string().len() == 4)
}

/// Checks every row of a roster table. `units` maps a registered unit code to its county.
pub fn parse_roster(
    table: &Table,
    file: &str,
    program: &str,
    beneficiary: &str,
    regions: &RegionTable,
    units: &std::collections::HashMap<String, String>,
    exclusions: &[String],
) -> Result<ParsedRoster, String> {
    let mut positions: Vec<Option<usize>> = Vec::with_capacity(COLUMNS.len());
    for column in COLUMNS {
        let mut names = vec![column.name];
        names.extend(column.aliases);
        positions.push(table.column(&names));
    }
    let missing: Vec<&str> = required_columns(beneficiary)
        .iter()
        .copied()
        .filter(|name| {
            let i = COLUMNS
                .iter()
                .position(|c| c.name == *name)
                .expect("known column");
            positions[i].is_none()
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{file} row 1: the header lacks required column(s) {} for a {beneficiary} roster",
            missing.join(", ")
        ));
    }
    let required: HashSet<&str> = required_columns(beneficiary).iter().copied().collect();
    let mut parsed = ParsedRoster {
        entries: Vec::new(),
        errors: Vec::new(),
    };
    let mut seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (row, cells) in &table.rows {
        let cells_view = Cells {
            cells,
            positions: &positions,
        };
        let result = check_row(&cells_view, &required, program, regions, units, exclusions);
        match result {
            Ok(entry) => {
                if let Some(first) = seen.get(&entry.id_number) {
                    parsed.errors.push(RowError {
                        row: *row,
                        cells: cells.clone(),
                        message: format!(
                            "{file} row {row}, column id_number: {} is listed twice (first in row {first}): one person, one row",
                            IdNumber::parse(&entry.id_number).map(|i| i.masked()).unwrap_or_default()
                        ),
                    });
                    continue;
                }
                seen.insert(entry.id_number.clone(), *row);
                parsed.entries.push((*row, entry));
            }
            Err((column, rule)) => parsed.errors.push(RowError {
                row: *row,
                cells: cells.clone(),
                message: format!("{file} row {row}, column {column}: {rule}"),
            }),
        }
    }
    Ok(parsed)
}

type CellError = (&'static str, String);

/// One row's cells, looked up by column name.
struct Cells<'a> {
    cells: &'a [String],
    positions: &'a [Option<usize>],
}

impl Cells<'_> {
    fn get(&self, name: &str) -> &str {
        let i = COLUMNS
            .iter()
            .position(|c| c.name == name)
            .expect("known column");
        self.positions[i]
            .and_then(|p| self.cells.get(p))
            .map(String::as_str)
            .unwrap_or("")
    }
}

fn check_row(
    row: &Cells<'_>,
    required: &HashSet<&str>,
    program: &str,
    regions: &RegionTable,
    units: &std::collections::HashMap<String, String>,
    exclusions: &[String],
) -> Result<RosterEntry, CellError> {
    let cell = |name: &str| row.get(name);
    for name in required {
        if cell(name).is_empty() {
            let column = COLUMNS
                .iter()
                .find(|c| c.name == *name)
                .expect("known")
                .name;
            return Err((column, "is required and empty".into()));
        }
    }
    let id = IdNumber::parse(cell("id_number")).map_err(|e| ("id_number", e.to_string()))?;
    let name = cell("name").to_string();
    let sex = Sex::parse(cell("sex"))
        .ok_or_else(|| ("sex", format!("\"{}\" is not M/F or 男/女", cell("sex"))))?;
    let birth_date = parse_date(cell("birth_date")).ok_or_else(|| {
        (
            "birth_date",
            format!("\"{}\" is not a real date (YYYY-MM-DD)", cell("birth_date")),
        )
    })?;
    verify_against(&id, Some(birth_date), None).map_err(|e| ("birth_date", e.to_string()))?;
    verify_against(&id, None, Some(sex)).map_err(|e| ("sex", e.to_string()))?;
    let semesters = match cell("semesters") {
        "" => None,
        text => Some(text.parse::<u32>().map_err(|_| {
            (
                "semesters",
                format!("\"{text}\" is not a whole, non-negative number of semesters"),
            )
        })?),
    };
    if semesters.is_some_and(|s| s > 120) {
        return Err((
            "semesters",
            "more than 120 semesters (60 years) of teaching is not credible".into(),
        ));
    }
    let county = cell("county_code").to_string();
    if !regions.get(&county).is_some_and(|r| r.county_role) {
        return Err((
            "county_code",
            format!("{county} is not a county (or a city without districts)"),
        ));
    }
    let township = optional(cell("township_code"));
    if let Some(t) = &township {
        let ok = regions.get(t).is_some_and(|r| {
            r.level == Level::Township && r.parent.as_deref() == Some(county.as_str())
        });
        if !ok {
            return Err((
                "township_code",
                format!("{t} is not a township of {county}"),
            ));
        }
    }
    let unit = optional(cell("unit_code")).map(|u| u.to_ascii_uppercase());
    if let Some(u) = &unit {
        match units.get(u) {
            Some(c) if *c == county => {}
            Some(c) => {
                return Err((
                    "unit_code",
                    format!("unit {u} belongs to county {c}, not {county}"),
                ));
            }
            None => {
                return Err((
                    "unit_code",
                    format!("unit {u} is not registered (earmark import units)"),
                ));
            }
        }
    }
    let bank_account = optional(cell("bank_account")).map(|a| a.replace([' ', '-'], ""));
    if let Some(a) = &bank_account
        && (!(8..=32).contains(&a.len()) || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(("bank_account", "must be 8 to 32 digits".into()));
    }
    let exclusion = optional(cell("exclusion"));
    if let Some(e) = &exclusion
        && !exclusions.iter().any(|code| code == e)
    {
        return Err((
            "exclusion",
            format!(
                "\"{e}\" is not one of the program's exclusions: {}",
                exclusions.join(", ")
            ),
        ));
    }

    let death_date = match cell("death_date") {
        "" => None,
        text => Some(
            parse_date(text)
                .ok_or_else(|| ("death_date", format!("\"{text}\" is not a real date")))?,
        ),
    };
    if death_date.is_some_and(|d| d < birth_date) {
        return Err(("death_date", "is before the birth date".into()));
    }
    let guardian_id_number = match cell("guardian_id_number") {
        "" => None,
        text => Some(
            IdNumber::parse(text)
                .map_err(|e| ("guardian_id_number", e.to_string()))?
                .as_str()
                .to_string(),
        ),
    };
    let enrolled_from = match cell("enrolled_from") {
        "" => None,
        text => Some(text.parse::<YearMonth>().map_err(|_| {
            (
                "enrolled_from",
                format!("\"{text}\" is not a month written YYYY-MM"),
            )
        })?),
    };
    Ok(RosterEntry {
        program: program.to_string(),
        id_number: id.as_str().to_string(),
        name,
        sex,
        birth_date,
        semesters,
        county,
        township,
        unit,
        bank_account,
        exclusion,
        death_date,
        guardian_name: optional(cell("guardian_name")),
        guardian_id_number,
        enrolled_from,
        category: optional(cell("category")),
        employed_from: None,
        employer_kind: None,
        left_date: None,
        left_reason: None,
    })
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A life event from another department's data: a death (公安户籍 / 卫健) or an employment (社保).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifeEvent {
    Death {
        id_number: String,
        date: NaiveDate,
        source: String,
    },
    Employment {
        id_number: String,
        date: NaiveDate,
        employer_kind: String,
    },
}

impl LifeEvent {
    pub fn id_number(&self) -> &str {
        match self {
            LifeEvent::Death { id_number, .. } | LifeEvent::Employment { id_number, .. } => {
                id_number
            }
        }
    }
}

/// Events read from a file with their rows, and one line per broken rule.
pub type LifeEvents = (Vec<(u64, LifeEvent)>, Vec<String>);

/// Reads a deaths file (`id_number,death_date,source`) or an employment file
/// (`id_number,employer_kind,from_date`). Returns events and one line per broken rule.
pub fn parse_life_events(table: &Table, file: &str, deaths: bool) -> Result<LifeEvents, String> {
    let id_col = table.column(&["id_number", "身份证号", "公民身份号码"]);
    let (date_col, other_col, wanted) = if deaths {
        (
            table.column(&["death_date", "死亡日期"]),
            table.column(&["source", "来源"]),
            "id_number,death_date,source",
        )
    } else {
        (
            table.column(&["from_date", "参保日期", "起始日期"]),
            table.column(&["employer_kind", "单位性质"]),
            "id_number,employer_kind,from_date",
        )
    };
    let (Some(id_col), Some(date_col), Some(other_col)) = (id_col, date_col, other_col) else {
        return Err(format!(
            "{file} row 1: the header must name the columns {wanted}"
        ));
    };
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (row, cells) in &table.rows {
        let get = |i: usize| cells.get(i).map(String::as_str).unwrap_or("").trim();
        let id = match IdNumber::parse(get(id_col)) {
            Ok(id) => id,
            Err(e) => {
                errors.push(format!("{file} row {row}, column id_number: {e}"));
                continue;
            }
        };
        let date_name = if deaths { "death_date" } else { "from_date" };
        let Some(date) = parse_date(get(date_col)) else {
            errors.push(format!(
                "{file} row {row}, column {date_name}: \"{}\" is not a real date",
                get(date_col)
            ));
            continue;
        };
        if date < id.birth_date() {
            errors.push(format!(
                "{file} row {row}, column {date_name}: {date} is before the person's birth date"
            ));
            continue;
        }
        let other = get(other_col).to_string();
        if other.is_empty() {
            let column = if deaths { "source" } else { "employer_kind" };
            errors.push(format!(
                "{file} row {row}, column {column}: is required and empty"
            ));
            continue;
        }
        let id_number = id.as_str().to_string();
        events.push((
            *row,
            if deaths {
                LifeEvent::Death {
                    id_number,
                    date,
                    source: other,
                }
            } else {
                LifeEvent::Employment {
                    id_number,
                    date,
                    employer_kind: other,
                }
            },
        ));
    }
    Ok((events, errors))
}

impl RosterEntry {
    /// `id`'s person on `program`'s roster in `county`, known by name only: sex and birth date from
    /// the ID number, every other field empty (set them with struct update syntax).
    pub fn new(program: &str, id: &IdNumber, name: String, county: &str) -> RosterEntry {
        RosterEntry {
            program: program.to_string(),
            id_number: id.as_str().to_string(),
            name,
            sex: id.sex(),
            birth_date: id.birth_date(),
            semesters: None,
            county: county.to_string(),
            township: None,
            unit: None,
            bank_account: None,
            exclusion: None,
            death_date: None,
            guardian_name: None,
            guardian_id_number: None,
            enrolled_from: None,
            category: None,
            employed_from: None,
            employer_kind: None,
            left_date: None,
            left_reason: None,
        }
    }

    /// What the entitlement engine needs to know of this person.
    pub fn beneficiary(&self, regions: &RegionTable) -> crate::program::Beneficiary {
        let city = regions
            .city_of(&self.county)
            .map(|r| r.code.clone())
            .unwrap_or_else(|| self.county.clone());
        crate::program::Beneficiary {
            id_number: IdNumber::parse(&self.id_number)
                .expect("stored ID numbers were checked on import"),
            sex: self.sex,
            birth_date: self.birth_date,
            semesters: self.semesters,
            county: self.county.clone(),
            city,
            exclusion: self.exclusion.clone(),
            death_date: self.death_date,
            employed_from: self.employed_from,
            // A death is its own end; leaving for another reason ends payment too.
            left: self
                .left_date
                .filter(|_| self.left_reason.as_deref() != Some("death")),
            enrolled_from: self.enrolled_from,
            category: self.category.clone(),
        }
    }
}
