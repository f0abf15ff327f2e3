//! Storing the beneficiary registry: import with the lock rules (只减不增), life events, leaving.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::Row;

use super::bulk::{BulkInsert, Cell};
use super::{
    IN_LIST_MAX, PARAMS_PER_STATEMENT_MAX, Store, StoreError, in_list, in_query, portable,
};
use crate::calendar::YearMonth;
use crate::id_number::{IdNumber, Sex};
use crate::roster::{LEAVE_REASONS, LifeEvent, RosterEntry};

const ROSTER_COLUMNS: &str = "program, id_number, name, sex, birth_date, semesters, county_code, township_code, \
     unit_code, bank_account, exclusion, death_date, guardian_name, guardian_id_number, enrolled_from, category, \
     employed_from, employer_kind, left_date, left_reason";
const ROSTER_COLUMN_COUNT: usize = 20;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RosterImportReport {
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Rows refused by the registry's rules (lock, locked service years), one line each.
    pub refused: Vec<(u64, String)>,
}

fn date_text(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A roster row's dates as the text they are stored as, kept beside the row while the bulk writer
/// borrows them.
struct DatesText {
    birth: String,
    death: Option<String>,
    enrolled_from: Option<String>,
    employed_from: Option<String>,
    left: Option<String>,
}

/// An optional text as a cell: its text, or a text NULL.
fn text(t: &Option<String>) -> Cell<'_> {
    t.as_deref().map(Cell::Text).unwrap_or(Cell::NullText)
}

fn parse_stored_date(text: Option<&str>) -> Result<Option<NaiveDate>, StoreError> {
    text.map(|t| {
        NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map_err(|_| StoreError::Invalid(format!("stored date {t} is damaged")))
    })
    .transpose()
}

/// The roster's columns packed into one text per person (see [`super::packed`]), and a county's
/// people into one row: a province-year reads about six million roster rows (each release,
/// disbursement and payout batch), which row by row through sqlx cost about 12 µs a person.
///
/// A `Narrow` filter (one unit, a list of ID numbers) is one row, not grouped: grouped by the bare
/// `county_code`, SQLite walked the `(program, county_code)` index to save the grouping's sort,
/// reading the program's whole roster to find one unit's people (52 ms a batch at province scale,
/// half the payouts' database time) where the unit's own index finds them in 0.4 ms; grouped by
/// `county_code || ''` it sorted every person once for the groups and again for the order.
fn packed_roster_sql(filter: &str, reach: Reach) -> String {
    let fields: Vec<String> = ROSTER_COLUMNS
        .split(',')
        .map(|c| match c.trim() {
            "semesters" => "CAST(semesters AS TEXT)".to_string(),
            c => c.to_string(),
        })
        .collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let rest = match reach {
        Reach::Wide => {
            format!("FROM roster WHERE {filter} GROUP BY county_code ORDER BY MIN(county_code)")
        }
        Reach::Narrow => format!("FROM roster WHERE {filter}"),
    };
    super::packed::select(&fields, Some("id_number"), &rest)
}

/// The filter of a packed read of a list of people (see [`fetch_by_ids`]).
const BY_IDS: &str = "program = $1 AND id_number IN ({list})";

/// How much of a roster a packed read's filter selects (see [`packed_roster_sql`]).
#[derive(Clone, Copy)]
enum Reach {
    /// A program's or a county's whole roster: grouped along the county index.
    Wide,
    /// One unit's people or a list of ID numbers: found by their own index.
    Narrow,
}

/// Runs a packed roster query (its parameters bound) and unpacks every county's row.
async fn fetch_packed<'c, E>(
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    conn: E,
    out: &mut Vec<RosterEntry>,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    super::packed::fetch(query, conn, ROSTER_COLUMN_COUNT, |fields| {
        out.push(entry_from_fields(fields)?);
        Ok(())
    })
    .await
}

/// `program`'s roster entries of these ID numbers (absent ones left out), read list by list: each
/// list's IN filled by [`in_query`], padded on SQLite so that a retry's few people and the next
/// retry's find the statement prepared.
async fn fetch_by_ids(
    backend: super::Backend,
    conn: &mut sqlx::AnyConnection,
    program: &str,
    ids: &[String],
    out: &mut Vec<RosterEntry>,
) -> Result<(), StoreError> {
    let sql = packed_roster_sql(BY_IDS, Reach::Narrow);
    for chunk in ids.chunks(IN_LIST_MAX) {
        let query = in_query(backend, &sql, &[program], chunk);
        fetch_packed(query, &mut *conn, out).await?;
    }
    Ok(())
}

fn entry_from_fields(f: &[Option<&str>]) -> Result<RosterEntry, StoreError> {
    let text = |i: usize| f[i].map(str::to_string);
    let required = |i: usize| {
        f[i].map(str::to_string)
            .ok_or_else(|| StoreError::Invalid("a roster row lacks a required field".into()))
    };
    let semesters = f[5]
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| StoreError::Invalid(format!("stored semesters {s} is damaged")))
        })
        .transpose()?;
    Ok(RosterEntry {
        program: required(0)?,
        id_number: required(1)?,
        name: required(2)?,
        sex: if f[3] == Some("M") {
            Sex::Male
        } else {
            Sex::Female
        },
        birth_date: parse_stored_date(f[4])?
            .ok_or_else(|| StoreError::Invalid("a roster row lacks its birth date".into()))?,
        semesters,
        county: required(6)?,
        township: text(7),
        unit: text(8),
        bank_account: text(9),
        exclusion: text(10),
        death_date: parse_stored_date(f[11])?,
        guardian_name: text(12),
        guardian_id_number: text(13),
        enrolled_from: f[14].and_then(|e| e.parse::<YearMonth>().ok()),
        category: text(15),
        employed_from: parse_stored_date(f[16])?,
        employer_kind: text(17),
        left_date: parse_stored_date(f[18])?,
        left_reason: text(19),
    })
}

impl Store {
    pub async fn roster_is_locked(&self, program: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM roster_locks WHERE program = $1")
            .bind(program.to_string())
            .fetch_optional(self.pool())
            .await?
            .is_some())
    }

    /// Freezes the registry (只减不增). Returns false when it was locked already.
    pub async fn roster_lock(&self, program: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO roster_locks (program, locked_at) VALUES ($1, $2) ON CONFLICT (program) DO NOTHING",
        )
        .bind(program.to_string())
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The stored entries of `program` for these ID numbers.
    async fn roster_by_ids(
        &self,
        tx: &mut super::Tx,
        program: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, RosterEntry>, StoreError> {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let mut entries = Vec::with_capacity(ids.len());
        fetch_by_ids(self.backend, tx, program, &ids, &mut entries).await?;
        let found = entries
            .into_iter()
            .map(|e| (e.id_number.clone(), e))
            .collect();
        Ok(found)
    }

    /// Imports checked roster rows in one transaction. On a locked registry a new person or a change
    /// of service semesters is refused; with `partial` false any refusal writes nothing.
    pub async fn roster_import(
        &self,
        program: &str,
        entries: &[(u64, RosterEntry)],
        partial: bool,
    ) -> Result<RosterImportReport, StoreError> {
        let locked = self.roster_is_locked(program).await?;
        let mut tx = self.begin_write().await?;
        let ids: Vec<&str> = entries.iter().map(|(_, e)| e.id_number.as_str()).collect();
        let existing = self.roster_by_ids(&mut tx, program, &ids).await?;
        let mut report = RosterImportReport::default();
        let mut rows: Vec<RosterEntry> = Vec::new();
        let mut events: Vec<(&str, &str, String)> = Vec::new();
        for (row, entry) in entries {
            match existing.get(&entry.id_number) {
                None if locked => report.refused.push((
                    *row,
                    format!(
                        "roster {program} is locked (只减不增): {} cannot be added after verification",
                        IdNumber::parse(&entry.id_number).map(|i| i.masked()).unwrap_or_default()
                    ),
                )),
                None => {
                    report.added += 1;
                    rows.push(entry.clone());
                    events.push((entry.id_number.as_str(), "added", String::new()));
                }
                Some(old) => {
                    // Life events recorded since are kept: a re-import does not bring the dead back.
                    let mut merged = entry.clone();
                    merged.death_date = entry.death_date.or(old.death_date);
                    merged.employed_from = old.employed_from;
                    merged.employer_kind = old.employer_kind.clone();
                    merged.left_date = old.left_date;
                    merged.left_reason = old.left_reason.clone();
                    if &merged == old {
                        report.unchanged += 1;
                    } else if locked && merged.semesters != old.semesters {
                        report.refused.push((
                            *row,
                            format!(
                                "service semesters of {} are locked at {} (工作年限核定后不再调整); the file says {}",
                                IdNumber::parse(&entry.id_number).map(|i| i.masked()).unwrap_or_default(),
                                old.semesters.map(|s| s.to_string()).unwrap_or_default(),
                                merged.semesters.map(|s| s.to_string()).unwrap_or_default()
                            ),
                        ));
                    } else if locked && (merged.birth_date != old.birth_date || merged.sex != old.sex || merged.county != old.county) {
                        report.refused.push((
                            *row,
                            "the registry is locked: birth date, sex and county cannot change; a move is a transfer (roster leave --reason transfer)".into(),
                        ));
                    } else {
                        report.changed += 1;
                        events.push((entry.id_number.as_str(), "changed", String::new()));
                        rows.push(merged);
                    }
                }
            }
        }
        if !report.refused.is_empty() && !partial {
            tx.rollback().await?;
            return Ok(RosterImportReport {
                added: 0,
                changed: 0,
                unchanged: 0,
                refused: report.refused,
            });
        }
        // Written unit by unit: a unit's people then lie together in the table (SQLite keeps rows in
        // the order they were added), and a unit's monthly batch reads a few pages of them instead
        // of one page per person spread across the county's.
        rows.sort_by(|a, b| {
            (&a.county, &a.unit, &a.id_number).cmp(&(&b.county, &b.unit, &b.id_number))
        });
        let updates: Vec<String> = ROSTER_COLUMNS
            .split(',')
            .map(str::trim)
            .filter(|c| *c != "program" && *c != "id_number")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        // The bulk writer: on PostgreSQL one array per column (a province's 500,000 children in
        // ten statements), on SQLite multi-row VALUES.
        let dates: Vec<DatesText> = rows
            .iter()
            .map(|e| DatesText {
                birth: e.birth_date.format("%Y-%m-%d").to_string(),
                death: date_text(e.death_date),
                enrolled_from: e.enrolled_from.map(|m| m.to_string()),
                employed_from: date_text(e.employed_from),
                left: date_text(e.left_date),
            })
            .collect();
        let head = format!("INSERT INTO roster ({ROSTER_COLUMNS})");
        let suffix = format!(
            "ON CONFLICT (program, id_number) DO UPDATE SET {}",
            updates.join(", ")
        );
        BulkInsert {
            head: &head,
            columns: ROSTER_COLUMN_COUNT,
            suffix: &suffix,
        }
        .run(&mut tx, self.backend, rows.len(), |r, c| {
            let (e, d) = (&rows[r], &dates[r]);
            match c {
                0 => Cell::Text(&e.program),
                1 => Cell::Text(&e.id_number),
                2 => Cell::Text(&e.name),
                3 => Cell::Text(e.sex.code()),
                4 => Cell::Text(&d.birth),
                5 => e
                    .semesters
                    .map(|n| Cell::Int(i64::from(n)))
                    .unwrap_or(Cell::NullInt),
                6 => Cell::Text(&e.county),
                7 => text(&e.township),
                8 => text(&e.unit),
                9 => text(&e.bank_account),
                10 => text(&e.exclusion),
                11 => text(&d.death),
                12 => text(&e.guardian_name),
                13 => text(&e.guardian_id_number),
                14 => text(&d.enrolled_from),
                15 => text(&e.category),
                16 => text(&d.employed_from),
                17 => text(&e.employer_kind),
                18 => text(&d.left),
                _ => text(&e.left_reason),
            }
        })
        .await?;
        // Everyone on a roster may own accounts in their county's books.
        BulkInsert {
            head: "INSERT INTO persons (id_number, name, county_code)",
            columns: 3,
            suffix: "ON CONFLICT (id_number) DO NOTHING",
        }
        .run(&mut tx, self.backend, rows.len(), |r, c| {
            let e = &rows[r];
            Cell::Text(match c {
                0 => &e.id_number,
                1 => &e.name,
                _ => &e.county,
            })
        })
        .await?;
        let recorded_at = now();
        let today = chrono::Utc::now()
            .date_naive()
            .format("%Y-%m-%d")
            .to_string();
        BulkInsert {
            head: "INSERT INTO roster_events (program, id_number, kind, event_date, detail, recorded_at)",
            columns: 6,
            suffix: "",
        }
        .run(&mut tx, self.backend, events.len(), |r, c| {
            let (id, kind, detail) = &events[r];
            Cell::Text(match c {
                0 => program,
                1 => id,
                2 => kind,
                3 => &today,
                4 => detail,
                _ => &recorded_at,
            })
        })
        .await?;
        tx.commit().await?;
        self.grew(rows.len() + events.len()).await;
        Ok(report)
    }

    /// Everyone on `program`'s roster (optionally one county), in county and ID order.
    pub async fn roster_entries(
        &self,
        program: &str,
        county: Option<&str>,
    ) -> Result<Vec<RosterEntry>, StoreError> {
        let mut out = Vec::new();
        match county {
            Some(c) => {
                let sql = packed_roster_sql("program = $1 AND county_code = $2", Reach::Wide);
                let query = sqlx::query(portable(self.backend, sql))
                    .bind(program.to_string())
                    .bind(c.to_string());
                fetch_packed(query, self.pool(), &mut out).await?;
            }
            None => {
                let sql = packed_roster_sql("program = $1", Reach::Wide);
                let query = sqlx::query(portable(self.backend, sql)).bind(program.to_string());
                fetch_packed(query, self.pool(), &mut out).await?;
            }
        }
        Ok(out)
    }

    /// Everyone on `program`'s roster paid by one unit, in ID order.
    pub async fn roster_entries_for_unit(
        &self,
        program: &str,
        unit: &str,
    ) -> Result<Vec<RosterEntry>, StoreError> {
        let sql = packed_roster_sql("program = $1 AND unit_code = $2", Reach::Narrow);
        let query = sqlx::query(portable(self.backend, sql))
            .bind(program.to_string())
            .bind(unit.to_string());
        let mut out = Vec::new();
        fetch_packed(query, self.pool(), &mut out).await?;
        Ok(out)
    }

    /// The given people on `program`'s roster, whichever unit pays them (absent ones are left out).
    pub async fn roster_entries_by_id(
        &self,
        program: &str,
        ids: &[String],
    ) -> Result<Vec<RosterEntry>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        let mut conn = self.pool().acquire().await?;
        fetch_by_ids(self.backend, &mut conn, program, ids, &mut out).await?;
        Ok(out)
    }

    /// Applies deaths and employments to every roster the person is on, in one transaction.
    /// Returns how many events were applied and the lines of persons on no roster.
    pub async fn record_life_events(
        &self,
        events: &[(u64, LifeEvent)],
        file: &str,
    ) -> Result<(usize, Vec<String>), StoreError> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = events
            .iter()
            .map(|(_, e)| e.id_number().to_string())
            .collect();
        let mut on_roster: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(PARAMS_PER_STATEMENT_MAX) {
            let sql = format!(
                "SELECT id_number, program FROM roster WHERE id_number IN ({})",
                in_list(1, chunk.len())
            );
            let mut query = sqlx::query(portable(self.backend, sql));
            for id in chunk {
                query = query.bind(id.clone());
            }
            for row in query.fetch_all(&mut *tx).await? {
                on_roster
                    .entry(row.try_get(0)?)
                    .or_default()
                    .push(row.try_get(1)?);
            }
        }
        let unknown: Vec<String> = events
            .iter()
            .filter(|(_, e)| !on_roster.contains_key(e.id_number()))
            .map(|(row, e)| {
                format!(
                    "{file} row {row}, column id_number: {} is on no roster",
                    IdNumber::parse(e.id_number())
                        .map(|i| i.masked())
                        .unwrap_or_default()
                )
            })
            .collect();
        if !unknown.is_empty() {
            tx.rollback().await?;
            return Ok((0, unknown));
        }
        let recorded_at = now();
        let mut applied = 0;
        for (_, event) in events {
            let (sql, kind, date, detail): (&'static str, &str, NaiveDate, String) = match event {
                LifeEvent::Death { date, source, .. } => (
                    "UPDATE roster SET death_date = $1 WHERE id_number = $2 AND (death_date IS NULL OR death_date <> $1)",
                    "death",
                    *date,
                    source.clone(),
                ),
                LifeEvent::Employment {
                    date,
                    employer_kind,
                    ..
                } => (
                    "UPDATE roster SET employed_from = $1, employer_kind = $3 WHERE id_number = $2 \
                     AND (employed_from IS NULL OR employed_from <> $1 OR employer_kind <> $3)",
                    "employment",
                    *date,
                    employer_kind.clone(),
                ),
            };
            let mut query = sqlx::query(sql)
                .bind(date.format("%Y-%m-%d").to_string())
                .bind(event.id_number().to_string());
            if kind == "employment" {
                query = query.bind(detail.clone());
            }
            let changed = query.execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                continue; // already known: importing the same file twice changes nothing
            }
            applied += 1;
            for program in &on_roster[event.id_number()] {
                sqlx::query(
                    "INSERT INTO roster_events (program, id_number, kind, event_date, detail, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(program.clone())
                .bind(event.id_number().to_string())
                .bind(kind)
                .bind(date.format("%Y-%m-%d").to_string())
                .bind(detail.clone())
                .bind(recorded_at.clone())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok((applied, Vec::new()))
    }

    /// A person leaves `program`'s roster from `date` for a stated reason.
    pub async fn roster_leave(
        &self,
        program: &str,
        id_number: &str,
        date: NaiveDate,
        reason: &str,
    ) -> Result<(), StoreError> {
        if !LEAVE_REASONS.iter().any(|(code, _)| *code == reason) {
            return Err(StoreError::Invalid(format!(
                "\"{reason}\" is not a reason to leave: one of death, disqualified, transfer"
            )));
        }
        let mut tx = self.begin_write().await?;
        let found = self.roster_by_ids(&mut tx, program, &[id_number]).await?;
        let Some(entry) = found.get(id_number) else {
            return Err(StoreError::Invalid(format!(
                "{} is not on the {program} roster",
                IdNumber::parse(id_number)
                    .map(|i| i.masked())
                    .unwrap_or_default()
            )));
        };
        if date < entry.birth_date {
            return Err(StoreError::Invalid(
                "the leaving date is before the birth date".into(),
            ));
        }
        let sql = if reason == "death" {
            "UPDATE roster SET death_date = $1, left_date = $1, left_reason = $2 WHERE program = $3 AND id_number = $4"
        } else {
            "UPDATE roster SET left_date = $1, left_reason = $2 WHERE program = $3 AND id_number = $4"
        };
        sqlx::query(sql)
            .bind(date.format("%Y-%m-%d").to_string())
            .bind(reason.to_string())
            .bind(program.to_string())
            .bind(id_number.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO roster_events (program, id_number, kind, event_date, detail, recorded_at) VALUES ($1, $2, 'left', $3, $4, $5)",
        )
        .bind(program.to_string())
        .bind(id_number.to_string())
        .bind(date.format("%Y-%m-%d").to_string())
        .bind(reason.to_string())
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The registry's events for one program in a date range: additions and reductions (增减情况).
    pub async fn roster_events(
        &self,
        program: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, String, NaiveDate, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id_number, kind, event_date, detail FROM roster_events WHERE program = $1 \
             AND event_date >= $2 AND event_date <= $3 ORDER BY event_date, id",
        )
        .bind(program.to_string())
        .bind(from.format("%Y-%m-%d").to_string())
        .bind(to.format("%Y-%m-%d").to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let date: String = r.try_get(2)?;
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    parse_stored_date(Some(&date))?.expect("some"),
                    r.try_get(3)?,
                ))
            })
            .collect()
    }
}

/// One recorded stage of the annual cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageRecord {
    pub id_number: String,
    pub stage: crate::roster::cycle::Stage,
    pub date: NaiveDate,
    pub actor: String,
}

impl Store {
    /// Records stages of `year`'s cycle. Recording the same stage again with the same date is a
    /// no-op; with another date it is refused (a stage happens once: correct it with a note, not an edit).
    pub async fn cycle_record(
        &self,
        program: &str,
        year: i32,
        records: &[(u64, StageRecord)],
        file: &str,
    ) -> Result<(usize, Vec<String>), StoreError> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<&str> = records.iter().map(|(_, r)| r.id_number.as_str()).collect();
        let on_roster = self.roster_by_ids(&mut tx, program, &ids).await?;
        let mut errors = Vec::new();
        let mut added = 0;
        let recorded_at = now();
        // Row 0 means the stage came from the command line, not a file.
        let at = |row: u64| {
            if row == 0 {
                format!("{file}: ")
            } else {
                format!("{file} row {row}, ")
            }
        };
        for (row, record) in records {
            let masked = IdNumber::parse(&record.id_number)
                .map(|i| i.masked())
                .unwrap_or_default();
            if !on_roster.contains_key(&record.id_number) {
                errors.push(format!(
                    "{file} row {row}, column id_number: {masked} is not on the {program} roster"
                ));
                continue;
            }
            let existing = sqlx::query(
                "SELECT stage_date FROM cycle_stages WHERE program = $1 AND year = $2 AND id_number = $3 AND stage = $4",
            )
            .bind(program.to_string())
            .bind(i64::from(year))
            .bind(record.id_number.clone())
            .bind(record.stage.code())
            .fetch_optional(&mut *tx)
            .await?;
            let date = record.date.format("%Y-%m-%d").to_string();
            if let Some(row_found) = existing {
                let stored: String = row_found.try_get(0)?;
                if stored != date {
                    errors.push(format!(
                        "{}column date: {} of {masked} was recorded on {stored} already",
                        at(*row),
                        record.stage.code()
                    ));
                }
                continue;
            }
            sqlx::query(
                "INSERT INTO cycle_stages (program, year, id_number, stage, stage_date, actor, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(program.to_string())
            .bind(i64::from(year))
            .bind(record.id_number.clone())
            .bind(record.stage.code())
            .bind(date)
            .bind(record.actor.clone())
            .bind(recorded_at.clone())
            .execute(&mut *tx)
            .await?;
            added += 1;
        }
        if errors.is_empty() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
            added = 0;
        }
        Ok((added, errors))
    }

    /// Every recorded stage of `year`'s cycle, per person.
    pub async fn cycle_progress(
        &self,
        program: &str,
        year: i32,
    ) -> Result<HashMap<String, crate::roster::cycle::Progress>, StoreError> {
        let rows = sqlx::query(
            "SELECT id_number, stage, stage_date FROM cycle_stages WHERE program = $1 AND year = $2",
        )
        .bind(program.to_string())
        .bind(i64::from(year))
        .fetch_all(self.pool())
        .await?;
        let mut progress: HashMap<String, crate::roster::cycle::Progress> = HashMap::new();
        for row in rows {
            let stage: String = row.try_get(1)?;
            let date: String = row.try_get(2)?;
            let Some(stage) = crate::roster::cycle::Stage::parse(&stage) else {
                continue;
            };
            let Some(date) = parse_stored_date(Some(&date))? else {
                continue;
            };
            progress
                .entry(row.try_get(0)?)
                .or_default()
                .done
                .insert(stage, date);
        }
        Ok(progress)
    }
}

impl Store {
    /// Notes an event about a person without changing the roster (e.g. a bank reporting a death,
    /// which must be confirmed against 公安户籍 / 卫健 data before it ends payment).
    pub async fn roster_note(
        &self,
        program: &str,
        id_number: &str,
        kind: &str,
        date: NaiveDate,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO roster_events (program, id_number, kind, event_date, detail, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(program.to_string())
        .bind(id_number.to_string())
        .bind(kind.to_string())
        .bind(date.format("%Y-%m-%d").to_string())
        .bind(detail.to_string())
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite_plan as plan;

    /// A unit's people are found through the unit's own index and a list of people through the
    /// roster's key, each read as one row: no grouping, so no sort for it. Grouped by the bare
    /// county (the control) SQLite walks the program's whole county index instead.
    #[tokio::test]
    async fn a_units_people_and_a_list_of_people_are_read_by_their_own_index_unsorted_for_groups() {
        let (store, _dir) = crate::store::temp_sqlite().await;
        let by_ids = BY_IDS.replace("{list}", &in_list(2, 2));
        for (filter, binds, index) in [
            (
                "program = $1 AND unit_code = $2",
                vec!["MBDK", "E44051100"],
                "SEARCH roster USING INDEX roster_unit (program=? AND unit_code=?)",
            ),
            (
                by_ids.as_str(),
                vec!["MBDK", "440511199001010011", "440511199001010012"],
                "SEARCH roster USING INDEX sqlite_autoindex_roster_1 (program=? AND id_number=?)",
            ),
        ] {
            let sql = packed_roster_sql(filter, Reach::Narrow);
            let details = plan(&store, &sql, &binds).await;
            assert!(details.iter().any(|d| d == index), "{filter}: {details:?}");
            assert!(
                !details.iter().any(|d| d.contains("GROUP BY")),
                "{filter}: {details:?}"
            );
        }
        let grouped = packed_roster_sql("program = $1 AND unit_code = $2", Reach::Wide);
        let details = plan(&store, &grouped, &["MBDK", "E44051100"]).await;
        assert!(
            details.iter().any(|d| d.contains("INDEX roster_county")),
            "the control: {details:?}"
        );
    }
}
