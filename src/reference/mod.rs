//! Reference data built into the binary: Guangdong's divisions and China's working-day calendar,
//! loaded into a new ledger by `earmark init`.

pub const REGIONS_CSV: &str = include_str!("guangdong_regions.csv");
pub const CALENDAR_CSV: &str = include_str!("cn_calendar.csv");

/// The programs every ledger knows from `init`: code and name. Their full definitions come with the
/// program engine; the ledger needs only to know that the code exists.
pub const PROGRAMS: [(&str, &str); 2] = [
    ("MBDK", "原民办代课教师生活困难补助"),
    ("XQZZ", "学前教育资助"),
];
