//! Administrative divisions (GB/T 2260): levels, parents, and which regions keep a county's books.
//!
//! Dongguan (441900) and Zhongshan (442000) are 不设区的地级市: they have no county level, so the city
//! itself plays the county's role ("县级或不设区的地级市" in every policy text).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Province,
    City,
    County,
    Township,
}

impl Level {
    pub fn code(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        [Level::Province, Level::City, Level::County, Level::Township]
            .into_iter()
            .find(|l| l.code() == text.trim())
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Level::Province => "省",
            Level::City => "市",
            Level::County => "县",
            Level::Township => "乡镇",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    pub code: String,
    pub name: String,
    pub level: Level,
    pub parent: Option<String>,
    /// Keeps a county's books: a county, or a city without districts.
    pub county_role: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RegionError {
    #[error("{source_name}: {message}")]
    File {
        source_name: String,
        message: String,
    },
    #[error("{source_name} row {row}, column {column}: {rule}")]
    Row {
        source_name: String,
        row: u64,
        column: &'static str,
        rule: String,
    },
}

/// A set of regions with their hierarchy.
#[derive(Clone, Debug, Default)]
pub struct RegionTable {
    regions: BTreeMap<String, Region>,
}

impl RegionTable {
    /// Reads `code,name,level,parent_code` (header required). Every row is checked: the code is 6 or 9
    /// digits, the level known, the parent present (in this file or in `known`) and one level up.
    pub fn from_csv<R: std::io::Read>(
        reader: R,
        source_name: &str,
        known: &RegionTable,
    ) -> Result<RegionTable, RegionError> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let file_error = |message: String| RegionError::File {
            source_name: source_name.to_string(),
            message,
        };
        let headers = csv
            .headers()
            .map_err(|e| file_error(format!("cannot read the header: {e}")))?
            .clone();
        let wanted = ["code", "name", "level", "parent_code"];
        if headers.len() < 4
            || wanted
                .iter()
                .zip(headers.iter())
                .any(|(w, h)| w != &h.trim_start_matches('\u{feff}'))
        {
            return Err(file_error(format!(
                "the header must be code,name,level,parent_code (found {})",
                headers.iter().collect::<Vec<_>>().join(",")
            )));
        }
        let mut table = RegionTable::default();
        let mut parents: Vec<(u64, String, Option<String>, Level)> = Vec::new();
        for (index, record) in csv.records().enumerate() {
            let row = index as u64 + 2;
            let row_error = |column: &'static str, rule: String| RegionError::Row {
                source_name: source_name.to_string(),
                row,
                column,
                rule,
            };
            let record = record.map_err(|e| row_error("-", format!("unreadable row: {e}")))?;
            let code = record.get(0).unwrap_or("").to_string();
            if !(code.len() == 6 || code.len() == 9) || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(row_error(
                    "code",
                    format!("\"{code}\" is not a 6- or 9-digit division code"),
                ));
            }
            let name = record.get(1).unwrap_or("").to_string();
            if name.is_empty() {
                return Err(row_error("name", "the name is empty".into()));
            }
            let level_text = record.get(2).unwrap_or("");
            let level = Level::parse(level_text).ok_or_else(|| {
                row_error(
                    "level",
                    format!("\"{level_text}\" is not one of province, city, county, township"),
                )
            })?;
            let parent = record.get(3).map(str::to_string).filter(|p| !p.is_empty());
            if level == Level::Province && parent.is_some() {
                return Err(row_error("parent_code", "a province has no parent".into()));
            }
            if level != Level::Province && parent.is_none() {
                return Err(row_error(
                    "parent_code",
                    format!("a {level} needs a parent"),
                ));
            }
            if table.regions.contains_key(&code) || known.regions.contains_key(&code) {
                return Err(row_error("code", format!("{code} is listed twice")));
            }
            parents.push((row, code.clone(), parent.clone(), level));
            table.regions.insert(
                code.clone(),
                Region {
                    code,
                    name,
                    level,
                    parent,
                    county_role: false,
                },
            );
        }
        for (row, _code, parent, level) in parents {
            let Some(parent) = parent else { continue };
            let parent_level = table
                .regions
                .get(&parent)
                .or_else(|| known.regions.get(&parent))
                .map(|r| r.level);
            let ok = match (parent_level, level) {
                (None, _) => false,
                (Some(Level::Province), Level::City) => true,
                (Some(Level::City), Level::County | Level::Township) => true,
                (Some(Level::County), Level::Township) => true,
                _ => false,
            };
            if !ok {
                return Err(RegionError::Row {
                    source_name: source_name.to_string(),
                    row,
                    column: "parent_code",
                    rule: match parent_level {
                        None => format!("parent {parent} is not in this file nor loaded before"),
                        Some(p) => format!("a {level} cannot sit under a {p} ({parent})"),
                    },
                });
            }
        }
        Ok(table)
    }

    /// Adds `other` and recomputes which regions keep county books.
    pub fn merge(&mut self, other: RegionTable) {
        self.regions.extend(other.regions);
        self.assign_county_roles();
    }

    pub fn from_regions(regions: impl IntoIterator<Item = Region>) -> RegionTable {
        let mut table = RegionTable {
            regions: regions.into_iter().map(|r| (r.code.clone(), r)).collect(),
        };
        table.assign_county_roles();
        table
    }

    fn assign_county_roles(&mut self) {
        let cities_with_counties: std::collections::HashSet<String> = self
            .regions
            .values()
            .filter(|r| r.level == Level::County)
            .filter_map(|r| r.parent.clone())
            .collect();
        for region in self.regions.values_mut() {
            region.county_role = match region.level {
                Level::County => true,
                Level::City => !cities_with_counties.contains(&region.code),
                _ => false,
            };
        }
    }

    pub fn get(&self, code: &str) -> Option<&Region> {
        self.regions.get(code)
    }

    pub fn len(&self) -> usize {
        self.regions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }

    /// The regions that keep a county's books, in code order.
    pub fn counties(&self) -> impl Iterator<Item = &Region> {
        self.regions.values().filter(|r| r.county_role)
    }

    /// The county itself, then each level above it up to the province: the finance departments whose
    /// accounts may appear in this county's books.
    pub fn chain_up(&self, county: &str) -> Vec<&Region> {
        let mut chain = Vec::new();
        let mut next = self.regions.get(county);
        while let Some(region) = next {
            if chain.len() > 4 {
                break; // a cycle in bad data must not loop forever
            }
            chain.push(region);
            next = region.parent.as_deref().and_then(|p| self.regions.get(p));
        }
        chain
    }

    /// The city (地级市) a county belongs to; a city without districts is its own city.
    pub fn city_of(&self, county: &str) -> Option<&Region> {
        self.chain_up(county)
            .into_iter()
            .find(|r| r.level == Level::City)
    }

    pub fn province_of(&self, county: &str) -> Option<&Region> {
        self.chain_up(county)
            .into_iter()
            .find(|r| r.level == Level::Province)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guangdong() -> RegionTable {
        let mut table = RegionTable::default();
        let parsed = RegionTable::from_csv(
            crate::reference::REGIONS_CSV.as_bytes(),
            "guangdong_regions.csv",
            &table,
        )
        .unwrap();
        table.merge(parsed);
        table
    }

    #[test]
    fn guangdong_has_its_real_counts() {
        let table = guangdong();
        let count = |level| table.iter().filter(|r| r.level == level).count();
        assert_eq!(count(Level::Province), 1);
        assert_eq!(count(Level::City), 21);
        assert_eq!(count(Level::County), 122);
        assert_eq!(count(Level::Township), 1757);
    }

    #[test]
    fn dongguan_and_zhongshan_play_the_county_role() {
        let table = guangdong();
        assert!(table.get("441900").unwrap().county_role);
        assert!(table.get("442000").unwrap().county_role);
        assert!(
            !table.get("440500").unwrap().county_role,
            "Shantou has districts"
        );
        assert_eq!(table.counties().count(), 124);
        let up: Vec<_> = table
            .chain_up("441900")
            .iter()
            .map(|r| r.code.clone())
            .collect();
        assert_eq!(up, ["441900", "440000"]);
        assert_eq!(table.city_of("441900").unwrap().code, "441900");
    }

    #[test]
    fn a_county_chains_up_to_city_and_province() {
        let table = guangdong();
        let up: Vec<_> = table
            .chain_up("440783")
            .iter()
            .map(|r| r.code.clone())
            .collect();
        assert_eq!(up, ["440783", "440700", "440000"]);
    }

    #[test]
    fn a_row_with_an_unknown_parent_is_refused_with_its_row() {
        let data = "code,name,level,parent_code\n450000,广西壮族自治区,province,\n450100,南宁市,city,450000\n450102,兴宁区,county,459900\n";
        let err =
            RegionTable::from_csv(data.as_bytes(), "gx.csv", &RegionTable::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "gx.csv row 4, column parent_code: parent 459900 is not in this file nor loaded before"
        );
    }

    #[test]
    fn a_bad_level_is_refused() {
        let data = "code,name,level,parent_code\n450000,广西,state,\n";
        let err =
            RegionTable::from_csv(data.as_bytes(), "gx.csv", &RegionTable::default()).unwrap_err();
        assert!(
            err.to_string().starts_with("gx.csv row 2, column level:"),
            "{err}"
        );
    }
}
