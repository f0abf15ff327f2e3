//! Reference data built into the binary: Guangdong's divisions and China's working-day calendar,
//! loaded into a new ledger by `earmark init`.

pub const REGIONS_CSV: &str = include_str!("guangdong_regions.csv");
pub const CALENDAR_CSV: &str = include_str!("cn_calendar.csv");
