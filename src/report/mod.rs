//! Tables for people: one `Sheet` (title, columns with Chinese and English headers, rows, totals)
//! rendered as CSV (UTF-8 with BOM, so Excel opens it), XLSX (money formatted, header frozen, totals
//! row), HTML (a printable page) or JSON.

use std::io::Write;
use std::path::Path;

use chrono::NaiveDate;
use rust_xlsxwriter::{Format, FormatAlign, Workbook};
use serde_json::json;

use crate::money::Fen;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Money(Fen),
    Date(NaiveDate),
}

impl Cell {
    pub fn text(value: impl Into<String>) -> Cell {
        Cell::Text(value.into())
    }

    /// The cell as it is written to CSV and shown in HTML.
    pub fn display(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(t) => t.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Money(f) => f.to_string(),
            Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }
}

impl From<&str> for Cell {
    fn from(t: &str) -> Cell {
        Cell::Text(t.to_string())
    }
}
impl From<String> for Cell {
    fn from(t: String) -> Cell {
        Cell::Text(t)
    }
}
impl From<Fen> for Cell {
    fn from(f: Fen) -> Cell {
        Cell::Money(f)
    }
}
impl From<i64> for Cell {
    fn from(i: i64) -> Cell {
        Cell::Int(i)
    }
}
impl From<NaiveDate> for Cell {
    fn from(d: NaiveDate) -> Cell {
        Cell::Date(d)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(o: Option<T>) -> Cell {
        o.map(Into::into).unwrap_or(Cell::Empty)
    }
}

#[derive(Clone, Debug)]
pub struct Column {
    /// English name: the CSV/JSON key.
    pub name: String,
    /// Chinese header, for the people who read the table.
    pub label: String,
    /// Whether the totals row sums this column.
    pub total: bool,
}

impl Column {
    pub fn new(name: &str, label: &str) -> Column {
        Column {
            name: name.into(),
            label: label.into(),
            total: false,
        }
    }
    pub fn summed(name: &str, label: &str) -> Column {
        Column {
            total: true,
            ..Column::new(name, label)
        }
    }
}

#[derive(Clone, Debug)]
pub struct Sheet {
    pub title: String,
    /// Lines under the title: region, period, parameters, when it was made.
    pub subtitle: Vec<String>,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format_ {
    Csv,
    Xlsx,
    Html,
    Json,
}

pub use Format_ as OutputFormat;

impl Sheet {
    pub fn new(title: impl Into<String>, columns: Vec<Column>) -> Sheet {
        Sheet {
            title: title.into(),
            subtitle: Vec::new(),
            columns,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(
            row.len(),
            self.columns.len(),
            "row width matches the columns"
        );
        self.rows.push(row);
    }

    /// The totals row: sums of the summed columns, "合计" in the first column.
    pub fn totals(&self) -> Option<Vec<Cell>> {
        if !self.columns.iter().any(|c| c.total) {
            return None;
        }
        let mut totals: Vec<Cell> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if !c.total {
                    return Cell::Empty;
                }
                let mut money = Fen::ZERO;
                let mut ints = 0_i64;
                let mut is_money = false;
                for row in &self.rows {
                    match &row[i] {
                        Cell::Money(f) => {
                            is_money = true;
                            money = money.checked_add(*f).unwrap_or(money);
                        }
                        Cell::Int(n) => ints = ints.saturating_add(*n),
                        _ => {}
                    }
                }
                if is_money {
                    Cell::Money(money)
                } else {
                    Cell::Int(ints)
                }
            })
            .collect();
        if !self.columns[0].total {
            totals[0] = Cell::text("合计");
        }
        Some(totals)
    }

    pub fn write(&self, format: OutputFormat, path: &Path) -> std::io::Result<()> {
        match format {
            OutputFormat::Csv => {
                let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
                self.write_csv(&mut file)?;
                file.flush()
            }
            OutputFormat::Xlsx => self.write_xlsx(path),
            OutputFormat::Html => std::fs::write(path, self.to_html()),
            OutputFormat::Json => std::fs::write(path, self.to_json()),
        }
    }

    /// UTF-8 with BOM; the header row carries the Chinese label and the English name, e.g. `金额 amount`.
    pub fn write_csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(b"\xEF\xBB\xBF")?;
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(self.columns.iter().map(|c| c.name.as_str()))?;
        for row in self.rows.iter().chain(self.totals().as_ref()) {
            writer.write_record(row.iter().map(Cell::display))?;
        }
        writer.flush()
    }

    pub fn write_xlsx(&self, path: &Path) -> std::io::Result<()> {
        let to_io = |e: rust_xlsxwriter::XlsxError| std::io::Error::other(e.to_string());
        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        let title: String = self
            .title
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect();
        sheet.set_name(title).map_err(to_io)?;
        let bold = Format::new().set_bold();
        let heading = Format::new().set_bold().set_font_size(14);
        let header = Format::new()
            .set_bold()
            .set_align(FormatAlign::Center)
            .set_background_color("#DDEBF7");
        let money = Format::new().set_num_format("#,##0.00");
        let money_bold = Format::new().set_num_format("#,##0.00").set_bold();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let plain = Format::new();
        sheet
            .write_string_with_format(0, 0, &self.title, &heading)
            .map_err(to_io)?;
        let mut row_index: u32 = 1;
        for line in &self.subtitle {
            sheet.write_string(row_index, 0, line).map_err(to_io)?;
            row_index += 1;
        }
        let header_row = row_index;
        for (i, column) in self.columns.iter().enumerate() {
            sheet
                .write_string_with_format(header_row, i as u16, &column.label, &header)
                .map_err(to_io)?;
            // Column width in characters: a CJK character is about two.
            let width = (column
                .label
                .chars()
                .count()
                .max(column.name.len() / 2)
                .max(6)
                * 2
                + 2)
            .min(40) as u32;
            sheet.set_column_width(i as u16, width).map_err(to_io)?;
        }
        sheet.set_freeze_panes(header_row + 1, 0).map_err(to_io)?;
        let totals = self.totals();
        for (offset, row) in self.rows.iter().chain(totals.as_ref()).enumerate() {
            let r = header_row + 1 + offset as u32;
            let is_total = totals.is_some() && offset == self.rows.len();
            for (i, cell) in row.iter().enumerate() {
                let c = i as u16;
                match cell {
                    Cell::Empty => {}
                    Cell::Text(t) if is_total => {
                        sheet
                            .write_string_with_format(r, c, t, &bold)
                            .map_err(to_io)?;
                    }
                    Cell::Text(t) => {
                        sheet.write_string(r, c, t).map_err(to_io)?;
                    }
                    Cell::Int(n) => {
                        sheet
                            .write_with_format(
                                r,
                                c,
                                rust_decimal::Decimal::from(*n),
                                if is_total { &bold } else { &plain },
                            )
                            .map_err(to_io)?;
                    }
                    Cell::Money(f) => {
                        sheet
                            .write_with_format(
                                r,
                                c,
                                f.to_decimal(),
                                if is_total { &money_bold } else { &money },
                            )
                            .map_err(to_io)?;
                    }
                    Cell::Date(d) => {
                        let dt = rust_xlsxwriter::ExcelDateTime::from_ymd(
                            d.format("%Y").to_string().parse().unwrap_or(1900),
                            d.format("%m").to_string().parse().unwrap_or(1),
                            d.format("%d").to_string().parse().unwrap_or(1),
                        )
                        .map_err(to_io)?;
                        sheet
                            .write_datetime_with_format(r, c, &dt, &date)
                            .map_err(to_io)?;
                    }
                }
            }
        }
        workbook.save(path).map_err(to_io)
    }

    pub fn to_html(&self) -> String {
        let escape = |t: &str| {
            t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut html = String::from(
            "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
             <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
             th,td{border:1px solid #999;padding:.25em .5em}th{background:#ddebf7}\
             td.n{text-align:right;font-variant-numeric:tabular-nums}tr.total td{font-weight:bold}\
             @media print{body{margin:0}}</style>",
        );
        html.push_str(&format!(
            "<title>{}</title></head><body>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        ));
        for line in &self.subtitle {
            html.push_str(&format!("<p>{}</p>\n", escape(line)));
        }
        html.push_str("<table>\n<thead><tr>");
        for c in &self.columns {
            html.push_str(&format!(
                "<th title=\"{}\">{}</th>",
                escape(&c.name),
                escape(&c.label)
            ));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        let totals = self.totals();
        for (i, row) in self.rows.iter().chain(totals.as_ref()).enumerate() {
            let class = if totals.is_some() && i == self.rows.len() {
                " class=\"total\""
            } else {
                ""
            };
            html.push_str(&format!("<tr{class}>"));
            for cell in row {
                let numeric = matches!(cell, Cell::Money(_) | Cell::Int(_));
                let shown = match cell {
                    Cell::Money(f) => f.grouped(),
                    other => other.display(),
                };
                html.push_str(&format!(
                    "<td{}>{}</td>",
                    if numeric { " class=\"n\"" } else { "" },
                    escape(&shown)
                ));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody></table>\n</body></html>\n");
        html
    }

    /// Money as strings of yuan ("1234.56"), so no reader turns it into a float.
    pub fn to_json(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut object = serde_json::Map::new();
                for (c, cell) in self.columns.iter().zip(row) {
                    let value = match cell {
                        Cell::Empty => serde_json::Value::Null,
                        Cell::Int(n) => json!(n),
                        other => json!(other.display()),
                    };
                    object.insert(c.name.clone(), value);
                }
                serde_json::Value::Object(object)
            })
            .collect();
        let columns: Vec<serde_json::Value> = self
            .columns
            .iter()
            .map(|c| json!({"name": c.name, "label": c.label}))
            .collect();
        let totals = self
            .totals()
            .map(|t| t.iter().map(Cell::display).collect::<Vec<_>>());
        serde_json::to_string_pretty(&json!({
            "title": self.title,
            "subtitle": self.subtitle,
            "columns": columns,
            "rows": rows,
            "totals": totals,
        }))
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet() -> Sheet {
        let mut s = Sheet::new(
            "发放对象人数汇总表",
            vec![
                Column::new("tier", "档次"),
                Column::summed("persons", "人数"),
                Column::summed("amount", "金额(元)"),
            ],
        );
        s.push(vec![
            "30年以上".into(),
            Cell::Int(2),
            Cell::Money(Fen(180_000)),
        ]);
        s.push(vec![
            "20-29年".into(),
            Cell::Int(1),
            Cell::Money(Fen(80_000)),
        ]);
        s
    }

    #[test]
    fn totals_sum_money_and_counts() {
        assert_eq!(
            sheet().totals().unwrap(),
            vec![Cell::text("合计"), Cell::Int(3), Cell::Money(Fen(260_000))]
        );
    }

    #[test]
    fn csv_has_a_bom_and_a_totals_row() {
        let mut out = Vec::new();
        sheet().write_csv(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert!(text.ends_with("合计,3,2600.00\n"), "{text}");
    }

    #[test]
    fn html_escapes_and_groups_money() {
        let mut s = sheet();
        s.push(vec![
            "<b>".into(),
            Cell::Int(0),
            Cell::Money(Fen(123_456_789)),
        ]);
        let html = s.to_html();
        assert!(html.contains("&lt;b&gt;"));
        assert!(html.contains("1,234,567.89"));
    }

    #[test]
    fn xlsx_is_written_and_reads_back() {
        use calamine::{Data, Reader, Xlsx, open_workbook};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xlsx");
        sheet().write_xlsx(&path).unwrap();
        let mut book: Xlsx<_> = open_workbook(&path).unwrap();
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        assert_eq!(range.get_value((1, 0)), Some(&Data::String("档次".into())));
        assert_eq!(range.get_value((4, 0)), Some(&Data::String("合计".into())));
        assert_eq!(range.get_value((4, 1)), Some(&Data::Float(3.0)));
    }
}
