//! 发放: payout batches. A batch pays each eligible person of one unit for one month: one pending
//! entry for the batch (a leg per line: the person's paid account ← the unit's held funds) reserves
//! the unit's funds, each line's claim records the month owed, and the bank file is written. The
//! bank's first answer posts the entry (voids it if nothing was paid); each line's answer is kept in
//! `payout_results`, and a failed line's money comes back to the unit by an entry of its own, its
//! month staying owed (its claim says so) until a later batch pays it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sqlx::Row;

use super::bank::{self, BankFormat, LineStatus, PayoutBatch, PayoutLine};
use crate::calendar::YearMonth;
use crate::id_number::IdNumber;
use crate::inspect::checks::Rule;
use crate::ledger::{AccountKind, AccountRef, EntryKind, NewEntry, Posting};
use crate::money::Fen;
use crate::program::{Program, entitlements};
use crate::store::{BatchMode, Outcome, SideRow, SideValue, Store, StoreError, portable};

/// Someone the screen kept off the batch, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenHit {
    pub id_masked: String,
    pub name: String,
    pub reason: String,
    /// The cross-check rule (R01…) that blocks the line, or warns about it, at posting time.
    pub rule: Option<Rule>,
}

impl ScreenHit {
    /// `R01 死亡后仍发放: died 2025-05-10`, or the reason alone when no rule is concerned.
    pub fn describe(&self) -> String {
        match self.rule {
            Some(rule) => format!("{}: {}", rule.label(), self.reason),
            None => self.reason.clone(),
        }
    }
}

/// Why a person is owed nothing for `month`, and the posting-time rule that says so (R01 death,
/// R02 employment, R06 age), or `None` for reasons of the roster itself (an exclusion, leaving).
fn not_owed(
    program: &Program,
    person: &crate::roster::RosterEntry,
    month: YearMonth,
) -> (Option<Rule>, String) {
    if let Some(d) = person.death_date.filter(|d| *d < month.first_day()) {
        return (Some(Rule::PaidAfterDeath), format!("died {d}"));
    }
    if let Some(x) = &person.exclusion {
        return (None, format!("excluded: {x}"));
    }
    if let Some(d) = person.employed_from.filter(|d| *d < month.first_day()) {
        return (
            Some(Rule::PaidWhileEmployed),
            format!("employed as staff from {d}"),
        );
    }
    if let (Some(d), Some(r)) = (person.left_date, &person.left_reason) {
        return (None, format!("left the roster {d} ({r})"));
    }
    if let Some((first, reached, years)) =
        crate::inspect::checks::first_month_by_age(program, person.sex, person.birth_date)
        && month < first
    {
        return (
            Some(Rule::UnderAge),
            format!("reaches {years} on {reached}: payable from {first}"),
        );
    }
    (None, format!("nothing is owed for {month}"))
}

fn describe(rule: Option<Rule>, reason: String) -> String {
    match rule {
        Some(rule) => format!("{}: {reason}", rule.label()),
        None => reason,
    }
}

/// R04 at posting time: the person-months already paid (or waiting on the bank) by a program this
/// one cannot be combined with (either way). Returns id → the other program.
async fn paid_by_excluded(
    store: &Store,
    program: &Program,
    month: YearMonth,
    ids: &[String],
) -> Result<HashMap<String, String>, StoreError> {
    // Exclusion works both ways: the programs this one excludes, and those that exclude it.
    let mut others: Vec<String> = program.excludes().to_vec();
    for (code, _) in store.programs().await? {
        if code != program.code()
            && !others.contains(&code)
            && store
                .program(&code)
                .await?
                .excludes()
                .iter()
                .any(|x| x == program.code())
        {
            others.push(code);
        }
    }
    let mut out = HashMap::new();
    for other in &others {
        for (id, states) in line_states(store, other, month, ids).await? {
            if states.iter().any(|(s, _)| *s != "failed") {
                out.insert(id, other.clone());
            }
        }
    }
    Ok(out)
}

#[derive(Clone, Debug)]
pub struct PayoutReport {
    pub batch_id: String,
    pub lines: usize,
    pub total: Fen,
    pub file: PathBuf,
    pub retries: usize,
    pub screened: Vec<ScreenHit>,
    /// Lines paid, with a posting-time warning (R05: one account for several persons).
    pub warnings: Vec<ScreenHit>,
}

/// R05 at posting time: lines of a batch whose bank account is also another person's (siblings of
/// one guardian excepted). They are paid; the warning says to check them.
fn shared_accounts(
    payable: &[(
        &crate::roster::RosterEntry,
        crate::program::Entitlement,
        String,
        i64,
    )],
) -> Vec<ScreenHit> {
    let mut by_account: HashMap<&str, Vec<&crate::roster::RosterEntry>> = HashMap::new();
    for (person, _, account, _) in payable {
        by_account.entry(account.as_str()).or_default().push(person);
    }
    let mut out = Vec::new();
    for (account, people) in by_account {
        let guardians: HashSet<Option<&str>> = people
            .iter()
            .map(|p| p.guardian_id_number.as_deref())
            .collect();
        if people.len() < 2 || (guardians.len() == 1 && !guardians.contains(&None)) {
            continue;
        }
        let tail: String = account
            .chars()
            .skip(account.chars().count().saturating_sub(4))
            .collect();
        for p in &people {
            out.push(ScreenHit {
                id_masked: IdNumber::parse(&p.id_number)
                    .map(|i| i.masked())
                    .unwrap_or_default(),
                name: p.name.clone(),
                reason: format!(
                    "account ****{tail} is also on the line of {} other person(s)",
                    people.len() - 1
                ),
                rule: Some(Rule::SharedAccount),
            });
        }
    }
    out.sort_by(|a, b| a.reason.cmp(&b.reason).then(a.id_masked.cmp(&b.id_masked)));
    out
}

pub struct PayoutRequest<'a> {
    pub program: &'a Program,
    pub unit: &'a str,
    pub month: YearMonth,
    pub date: NaiveDate,
    pub format: BankFormat,
    pub out_dir: &'a Path,
    /// Only these people of the unit (a retry of a batch's failed lines, see [`retry`]); everyone
    /// the unit pays when `None`.
    pub only: Option<&'a [String]>,
}

/// The state of every payout attempt of a person-month: paid, still with the bank, or failed.
/// Read from the claims that batch lines and direct payments make (see `payout_claims`).
async fn line_states(
    store: &Store,
    program: &str,
    month: YearMonth,
    ids: &[String],
) -> Result<HashMap<String, Vec<(&'static str, String)>>, StoreError> {
    let mut states: HashMap<String, Vec<(&'static str, String)>> = HashMap::new();
    for chunk in ids.chunks(4_000) {
        let mut query = sqlx::query(portable(
            store.backend(),
            line_states_statement(chunk.len()),
        ))
        .bind(program.to_string())
        .bind(month.to_string());
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(store.pool()).await? {
            let answer: Option<String> = row.try_get(2)?;
            let direct: i64 = row.try_get(3)?;
            let state = match (direct, answer.as_deref()) {
                (0, None) => "pending",
                (0, Some("failed")) => "failed",
                _ => "paid",
            };
            states
                .entry(row.try_get(0)?)
                .or_default()
                .push((state, row.try_get(1)?));
        }
    }
    Ok(states)
}

/// How many batches a unit has made for a program's month: the next batch's number is one more.
/// Answered by the index `payout_batches_unit` (migration 0015), not by reading every batch.
pub const BATCHES_OF_A_UNIT_MONTH: &str =
    "SELECT COUNT(*) FROM payout_batches WHERE unit_code = $1 AND program = $2 AND month = $3";

/// [`line_states`]' statement for `n` people: their attempts at one program-month, found in the
/// claims' key (program, month, ID number).
fn line_states_statement(n: usize) -> String {
    format!(
        "SELECT c.id_number, c.payment_key, r.status, \
           (SELECT COUNT(*) FROM entries n WHERE n.idem_key = c.payment_key AND n.kind = 'normal') \
         FROM payout_claims c LEFT JOIN payout_results r ON r.payment_key = c.payment_key \
         WHERE c.program = $1 AND c.month = $2 AND c.id_number IN ({})",
        crate::store::in_list(3, n)
    )
}

/// What the state of a person-month's attempts allows: `Ok(attempt)` for the next attempt's number,
/// or the reason nobody may pay it now.
fn next_attempt(earlier: &[(&'static str, String)], month: YearMonth) -> Result<i64, String> {
    if earlier.iter().any(|(s, _)| *s == "paid") {
        return Err(format!("already paid for {month}"));
    }
    if earlier.iter().any(|(s, _)| *s == "pending") {
        return Err(format!(
            "already in a batch for {month} waiting on the bank"
        ));
    }
    Ok(earlier.len() as i64)
}

/// The payout lines of the persons that `ids` picks (SQL after `id_number`: `= $1`, `IN (…)`), as a
/// table to select from (`FROM {person_lines} l`): a line its claim names is found through the claim
/// (see [`person_claims`]); a line no claim names (`claimed = 0`: written before claims were kept,
/// or by an import that wrote lines alone) through the index that keeps only those (migration 0012).
pub(crate) fn person_lines(ids: &str) -> String {
    format!(
        "(SELECT l.* FROM {} \
           JOIN payout_lines l ON l.batch_id = c.batch_id AND l.line_no = c.line_no \
         UNION ALL \
         SELECT l.* FROM payout_lines l WHERE l.claimed = 0 AND l.id_number {ids})",
        person_claims(ids)
    )
}

/// The claims of the persons that `ids` picks (SQL after `id_number`), as a table to select from
/// (`FROM {person_claims}`, named `c`), looked up month by month, each month that has claims
/// (`payout_claim_months`, a few dozen rows) taken first: on SQLite the claims' key leads with
/// program and month (migration 0014), and `CROSS JOIN` keeps it from scanning the claims instead;
/// PostgreSQL's key still leads with the ID number, and the same lookup finds them there.
pub fn person_claims(ids: &str) -> String {
    format!(
        "(SELECT c.* FROM payout_claim_months m CROSS JOIN payout_claims c \
           WHERE c.program = m.program AND c.month = m.month AND c.id_number {ids}) c"
    )
}

/// A person-month's attempt, claimed with its payment entry (see `payout_claims`): with the county
/// whose books pay it and the amount owed, from which reports take what was owed for the month.
pub(crate) struct Claim<'a> {
    pub(crate) program: &'a str,
    pub(crate) id_number: &'a str,
    pub(crate) month: YearMonth,
    pub(crate) attempt: i64,
    pub(crate) payment_key: &'a str,
    pub(crate) county: &'a str,
    pub(crate) amount: Fen,
    /// The batch line (batch, line number) the attempt is, or `None` for a payment made directly:
    /// a person's lines are found through their claims (see migration 0012).
    pub(crate) line: Option<(&'a str, i64)>,
}

impl Claim<'_> {
    /// The claim's row, written with the entry at `entry` (and only if that entry is).
    pub(crate) fn row(&self, entry: usize) -> SideRow {
        SideRow {
            entry: Some(entry),
            table: "payout_claims",
            columns: &[
                "program",
                "id_number",
                "month",
                "attempt",
                "payment_key",
                "county_code",
                "amount",
                "batch_id",
                "line_no",
            ],
            values: vec![
                self.program.into(),
                self.id_number.into(),
                self.month.to_string().into(),
                SideValue::Int(self.attempt),
                self.payment_key.into(),
                self.county.into(),
                self.amount.into(),
                self.line.map(|(batch, _)| batch.to_string()).into(),
                self.line.map(|(_, line_no)| line_no).into(),
            ],
        }
    }
}

/// 补发: pays again, in a new batch of the same unit, program and month, the people of `batch_id`'s
/// lines that the bank failed (户名不符, a closed card), each with the account the roster holds now
/// (a unit corrects a failed account on the roster before it retries). A person-month a later batch
/// has paid meanwhile, or that is no longer owed (a death found since), is screened out as
/// [`create`] screens it.
pub async fn retry(
    store: &Store,
    batch_id: &str,
    date: NaiveDate,
    format: BankFormat,
    out_dir: &Path,
) -> Result<PayoutReport, StoreError> {
    let Some(batch) =
        sqlx::query("SELECT unit_code, program, month FROM payout_batches WHERE batch_id = $1")
            .bind(batch_id.to_string())
            .fetch_optional(store.pool())
            .await?
    else {
        return Err(StoreError::Invalid(format!(
            "no payout batch {batch_id}: nothing to pay again"
        )));
    };
    let unit: String = batch.try_get(0)?;
    let program = store.program(&batch.try_get::<String, _>(1)?).await?;
    let month_text: String = batch.try_get(2)?;
    let month: YearMonth = month_text
        .parse()
        .map_err(|e| StoreError::Invalid(format!("batch {batch_id}: month {month_text}: {e}")))?;
    let failed: Vec<String> = sqlx::query(
        "SELECT l.id_number FROM payout_lines l \
         JOIN payout_results r ON r.payment_key = l.payment_key \
         WHERE l.batch_id = $1 AND r.status = 'failed' ORDER BY l.line_no",
    )
    .bind(batch_id.to_string())
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|row| row.try_get(0))
    .collect::<Result<_, _>>()?;
    if failed.is_empty() {
        return Err(StoreError::Invalid(format!(
            "batch {batch_id}: the bank failed none of its lines (or has not answered yet): nothing to pay again"
        )));
    }
    create(
        store,
        PayoutRequest {
            program: &program,
            unit: &unit,
            month,
            date,
            format,
            out_dir,
            only: Some(&failed),
        },
    )
    .await
}

/// Builds, posts and writes one payout batch.
pub async fn create(store: &Store, request: PayoutRequest<'_>) -> Result<PayoutReport, StoreError> {
    let program = request.program;
    let unit = store
        .unit(request.unit)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("unit {} is not registered", request.unit)))?;
    let regions = store.regions().await?;
    let month = request.month;
    let people = match request.only {
        None => {
            store
                .roster_entries_for_unit(program.code(), &unit.code)
                .await?
        }
        // Read by ID, not the unit's whole roster: a retry names a few people of hundreds.
        Some(ids) => store
            .roster_entries_by_id(program.code(), ids)
            .await?
            .into_iter()
            .filter(|p| p.unit.as_deref() == Some(unit.code.as_str()))
            .collect(),
    };
    if people.is_empty() && request.only.is_some() {
        return Err(StoreError::Invalid(format!(
            "none of the {} people to pay again is on unit {}'s {} roster now; no batch written",
            request.only.map_or(0, <[String]>::len),
            unit.code,
            program.code()
        )));
    }
    if people.is_empty() {
        return Err(StoreError::Invalid(format!(
            "nobody on the {} roster is paid by unit {}",
            program.code(),
            unit.code
        )));
    }
    let ids: Vec<String> = people.iter().map(|p| p.id_number.clone()).collect();
    let states = line_states(store, program.code(), month, &ids).await?;
    let excluded = paid_by_excluded(store, program, month, &ids).await?;
    let mut screened = Vec::new();
    let mut payable = Vec::new();
    for person in &people {
        let masked = IdNumber::parse(&person.id_number)
            .map(|i| i.masked())
            .unwrap_or_default();
        let hit = |rule: Option<Rule>, reason: String| ScreenHit {
            id_masked: masked.clone(),
            name: person.name.clone(),
            reason,
            rule,
        };
        let rows = entitlements(program, &person.beneficiary(&regions), month, month)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let Some(owed) = rows.into_iter().next() else {
            // Not owed this month: say why, naming the rule that blocks the line.
            let (rule, reason) = not_owed(program, person, month);
            if rule.is_some() || !reason.starts_with("nothing is owed") {
                screened.push(hit(rule, reason));
            }
            continue;
        };
        if let Some(other) = excluded.get(&person.id_number) {
            screened.push(hit(
                Some(Rule::ExcludedPrograms),
                format!(
                    "paid by {other} for {month}, which {} cannot be combined with",
                    program.code()
                ),
            ));
            continue;
        }
        let earlier = states.get(&person.id_number).cloned().unwrap_or_default();
        let attempt = match next_attempt(&earlier, month) {
            Ok(attempt) => attempt,
            Err(reason) => {
                screened.push(hit(Some(Rule::PaidTwice), reason));
                continue;
            }
        };
        let Some(account) = person.bank_account.clone() else {
            screened.push(hit(None, "no bank account on the roster".into()));
            continue;
        };
        payable.push((person, owed, account, attempt));
    }
    if payable.len() >= crate::ledger::POSTINGS_PER_ENTRY_MAX {
        return Err(StoreError::Invalid(format!(
            "unit {} owes {} people for {month} in {}: a batch is one entry of at most {} lines; no batch written",
            unit.code,
            payable.len(),
            program.code(),
            crate::ledger::POSTINGS_PER_ENTRY_MAX - 1
        )));
    }
    let warnings = shared_accounts(&payable);
    let batches_before = sqlx::query(BATCHES_OF_A_UNIT_MONTH)
        .bind(unit.code.clone())
        .bind(program.code().to_string())
        .bind(month.to_string())
        .fetch_one(store.pool())
        .await?
        .try_get::<i64, _>(0)?;
    let batch_id = format!(
        "{}-{}-{}-{}",
        unit.code,
        program.code(),
        month,
        batches_before + 1
    );
    if payable.is_empty() {
        let mut reasons: std::collections::BTreeMap<String, usize> =
            std::collections::BTreeMap::new();
        for hit in &screened {
            // "died 2025-05-10" and the like count together as "died"; other reasons stay whole.
            let dated = ["died", "employed as staff", "left the roster", "reaches"]
                .into_iter()
                .find(|prefix| hit.reason.starts_with(prefix));
            let reason = dated
                .map(str::to_string)
                .unwrap_or_else(|| hit.reason.clone());
            *reasons.entry(reason).or_default() += 1;
        }
        let why: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        return Err(StoreError::Invalid(format!(
            "unit {} owes nobody for {month} in {}: no batch written ({} screened out: {})",
            unit.code,
            program.code(),
            screened.len(),
            if why.is_empty() {
                "nobody is owed this month".to_string()
            } else {
                why.join(", ")
            }
        )));
    }
    let mut legs = Vec::with_capacity(payable.len() + 1);
    let mut side = Vec::new();
    let mut lines = Vec::new();
    let mut total = Fen::ZERO;
    let mut retries = 0;
    for (index, (person, owed, account, attempt)) in payable.iter().enumerate() {
        let line_no = index as u32 + 1;
        let amount = owed.amount;
        total = total
            .checked_add(amount)
            .ok_or_else(|| StoreError::Invalid("batch total overflows".into()))?;
        if *attempt > 0 {
            retries += 1;
        }
        // The line's own key: its claim, its bank answer and (if the bank fails it) the entry
        // that returns its money name the line by it.
        let payment_key = format!("payment:{batch_id}:{line_no}");
        side.push(
            Claim {
                program: program.code(),
                id_number: &person.id_number,
                month,
                attempt: *attempt,
                payment_key: &payment_key,
                county: &unit.county,
                amount,
                line: Some((&batch_id, i64::from(line_no))),
            }
            .row(0),
        );
        legs.push(Posting {
            account: AccountRef::new(person.id_number.clone(), AccountKind::Paid),
            amount,
        });
        side.push(SideRow {
            entry: None,
            table: "payout_lines",
            columns: &[
                "batch_id",
                "line_no",
                "id_number",
                "name",
                "account",
                "amount",
                "month",
                "payment_key",
                "claimed",
            ],
            values: vec![
                batch_id.clone().into(),
                SideValue::Int(i64::from(line_no)),
                person.id_number.clone().into(),
                person.name.clone().into(),
                account.clone().into(),
                amount.into(),
                month.to_string().into(),
                payment_key.into(),
                // Its claim (above) names it: the person's lines are found through their claims.
                SideValue::Int(1),
            ],
        });
        lines.push(PayoutLine {
            line_no,
            name: person.name.clone(),
            account: account.clone(),
            amount,
            id_number: person.id_number.clone(),
            purpose: format!("{} {month}", program.name()),
        });
    }
    // One pending entry pays the batch, as the bank pays it: each line's person's paid account
    // (a leg per line, in line order) ← the unit's held funds, reserved until the bank answers.
    // Posted, the people's accounts take it and the failed lines' money is returned line by line;
    // voided (the whole batch rejected), nothing moved. Each line's claim says what month it owes.
    legs.push(Posting {
        account: AccountRef::new(unit.code.clone(), AccountKind::Held),
        amount: Fen(-total.get()),
    });
    let entries = [NewEntry::normal(
        batch_entry_key(&batch_id),
        request.date,
        &unit.county,
        program.code(),
        format!("发放 {batch_id} {month} {}行", legs.len() - 1),
        legs,
    )
    .pending()];
    let batch = PayoutBatch {
        batch_id: batch_id.clone(),
        unit_code: unit.code.clone(),
        unit_name: unit.name.clone(),
        // The unit's own account is kept by its bank; the file names the unit by code (letters and
        // digits only, as the bank formats allow).
        payer_account: unit
            .code
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect(),
        business_date: request.date,
        lines,
    };
    let created_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let bytes = bank::write_batch(&batch, request.format, &created_at)
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let file = request.out_dir.join(format!(
        "{batch_id}.{}",
        bank::file_extension(request.format)
    ));
    side.push(SideRow {
        entry: None,
        table: "payout_batches",
        columns: &[
            "batch_id",
            "unit_code",
            "program",
            "county_code",
            "month",
            "business_date",
            "format",
            "file_name",
            "line_count",
            "control_total",
            "created_at",
        ],
        values: vec![
            batch_id.clone().into(),
            unit.code.clone().into(),
            program.code().into(),
            unit.county.clone().into(),
            month.to_string().into(),
            request.date.format("%Y-%m-%d").to_string().into(),
            format!("{:?}", request.format).to_lowercase().into(),
            file.display().to_string().into(),
            SideValue::Int(batch.lines.len() as i64),
            total.into(),
            created_at.into(),
        ],
    });
    // Write the file beside its final name first, so a refused batch leaves no file behind and a
    // posted batch always has its file.
    let partial = file.with_extension("partial");
    std::fs::write(&partial, &bytes)
        .map_err(|e| StoreError::Invalid(format!("{}: cannot write: {e}", partial.display())))?;
    match store
        .post_with(&entries, BatchMode::AllOrNothing, &side)
        .await
    {
        Ok(_) => {
            std::fs::rename(&partial, &file).map_err(|e| {
                StoreError::Invalid(format!("{}: cannot write: {e}", file.display()))
            })?;
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    }
    Ok(PayoutReport {
        batch_id,
        lines: batch.lines.len(),
        total,
        file,
        retries,
        screened,
        warnings,
    })
}

#[derive(Clone, Debug, Default)]
pub struct ResultReport {
    pub batch_id: String,
    pub paid: usize,
    pub failed: usize,
    pub already: usize,
    pub deceased: Vec<String>,
    pub failures: Vec<(u32, String, String)>,
}

/// A line of a written batch, as stored.
#[derive(Clone, Debug)]
pub struct StoredLine {
    pub line_no: i64,
    pub id_number: String,
    pub name: String,
    pub account: String,
    pub amount: Fen,
    pub payment_key: String,
    /// What the bank has said of the line so far: paid (true), failed (false), nothing yet (None).
    pub answer: Option<bool>,
}

/// The lines of a written batch, in line order, with the bank's answer to each so far (none for
/// an unknown batch). Read packed: a province-year answers 3.3 million lines.
pub async fn batch_lines(store: &Store, batch_id: &str) -> Result<Vec<StoredLine>, StoreError> {
    use crate::store::packed;
    let sql = packed::select(
        &[
            "CAST(l.line_no AS TEXT)",
            "l.id_number",
            "l.name",
            "l.account",
            "CAST(l.amount AS TEXT)",
            "l.payment_key",
            "r.status",
        ],
        Some("l.line_no"),
        "FROM payout_lines l LEFT JOIN payout_results r ON r.payment_key = l.payment_key \
         WHERE l.batch_id = $1",
    );
    let query = sqlx::query(portable(store.backend(), sql)).bind(batch_id.to_string());
    let mut lines = Vec::new();
    packed::fetch(query, store.pool(), 7, |row| {
        lines.push(StoredLine {
            line_no: packed::int(row, 0)?,
            id_number: packed::text(row, 1)?.to_string(),
            name: packed::text(row, 2)?.to_string(),
            account: packed::text(row, 3)?.to_string(),
            amount: Fen(packed::int(row, 4)?),
            payment_key: packed::text(row, 5)?.to_string(),
            answer: row[6].map(|status| status == "paid"),
        });
        Ok(())
    })
    .await?;
    Ok(lines)
}

/// The key of a batch's one payment entry (its lines are `payment:BATCH:LINE`).
pub fn batch_entry_key(batch_id: &str) -> String {
    format!("payment:{batch_id}")
}

/// Reads the bank's answer for a batch. The batch's first answer settles its one pending entry
/// (posted, or voided if the bank paid none of it); each failed line's money comes back to the unit
/// (`failed:payment:BATCH:LINE`, Dr unit held / Cr person paid) and its month stays owed. Reading the same
/// answer again changes nothing; an answer that contradicts an earlier one is refused.
pub async fn result(
    store: &Store,
    path: &Path,
    date: NaiveDate,
) -> Result<ResultReport, StoreError> {
    result_files(store, &[path], date).await
}

/// One answer file of a batch, read: its name, bytes and lines.
struct AnswerFile {
    name: String,
    bytes: Vec<u8>,
    answer: bank::BankResult,
    /// The bank refused the whole batch: (code, reason).
    rejected: Option<(String, String)>,
}

/// Reads several answer files of one batch together (the bank's success file and its failure
/// file), as one answer: recorded in one transaction, or refused as a whole.
pub async fn result_files(
    store: &Store,
    paths: &[&Path],
    date: NaiveDate,
) -> Result<ResultReport, StoreError> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| StoreError::Invalid(format!("{name}: cannot read: {e}")))?;
        // A bank that rejects the whole batch fails every line of it.
        let (answer, rejected) = match bank::read_result(&bytes, &name) {
            Ok(answer) => (answer, None),
            Err(bank::BankError::BatchRejected {
                batch_id,
                code,
                reason,
                ..
            }) => (
                bank::BankResult {
                    batch_id,
                    lines: Vec::new(),
                    format: "pain.002",
                },
                Some((code, reason)),
            ),
            Err(e) => return Err(StoreError::Invalid(e.to_string())),
        };
        files.push(AnswerFile {
            name,
            bytes,
            answer,
            rejected,
        });
    }
    let Some(first) = files.first() else {
        return Err(StoreError::Invalid(
            "no bank answer file given: name the batch's success and failure files".into(),
        ));
    };
    let batch_id = first.answer.batch_id.clone();
    if let Some(other) = files.iter().find(|f| f.answer.batch_id != batch_id) {
        return Err(StoreError::Invalid(format!(
            "{}: answers batch {}, but {} answers batch {batch_id}: read one batch's files at a time; nothing was recorded",
            other.name, other.answer.batch_id, first.name
        )));
    }
    let batch = sqlx::query(
        "SELECT unit_code, program, county_code FROM payout_batches WHERE batch_id = $1",
    )
    .bind(batch_id.clone())
    .fetch_optional(store.pool())
    .await?
    .ok_or_else(|| {
        StoreError::Invalid(format!(
            "{}: batch {batch_id} is unknown: no such batch was written",
            first.name
        ))
    })?;
    let program: String = batch.try_get(1)?;
    let stored: HashMap<i64, StoredLine> = batch_lines(store, &batch_id)
        .await?
        .into_iter()
        .map(|l| (l.line_no, l))
        .collect();
    for file in &mut files {
        if let Some((code, reason)) = file.rejected.clone() {
            let mut numbers: Vec<i64> = stored.keys().copied().collect();
            numbers.sort();
            file.answer.lines = numbers
                .into_iter()
                .map(|n| bank::ResultLine {
                    line_no: n as u32,
                    account: None,
                    name: None,
                    amount: None,
                    status: LineStatus::Failed {
                        code: code.clone(),
                        reason: reason.clone(),
                    },
                    deceased: false,
                    source_row: 0,
                })
                .collect();
        }
    }
    let mut report = ResultReport {
        batch_id: batch_id.clone(),
        ..ResultReport::default()
    };
    let mut errors = Vec::new();
    // Each line answered, with the file and row that first answered it.
    let mut seen: HashMap<u32, (usize, u64)> = HashMap::new();
    let mut wanted = Vec::new();
    for (index, answer_file) in files.iter().enumerate() {
        let file = &answer_file.name;
        for line in &answer_file.answer.lines {
            let Some(StoredLine {
                id_number: id,
                account,
                payment_key,
                amount,
                ..
            }) = stored.get(&i64::from(line.line_no))
            else {
                errors.push(format!(
                    "{file} row {}: batch {batch_id} has no line {}",
                    line.source_row, line.line_no
                ));
                continue;
            };
            if let Some((other, row)) = seen.get(&line.line_no) {
                errors.push(if *other == index {
                    format!(
                        "{file} row {}: line {} is answered twice",
                        line.source_row, line.line_no
                    )
                } else {
                    format!(
                        "{file} row {}: line {} is answered twice (also by {} row {row})",
                        line.source_row, line.line_no, files[*other].name
                    )
                });
                continue;
            }
            seen.insert(line.line_no, (index, line.source_row));
            if let Some(a) = line.amount.filter(|a| a != amount) {
                errors.push(format!(
                    "{file} row {}, column amount: line {} was {} in the batch, the bank says {a}",
                    line.source_row, line.line_no, amount
                ));
                continue;
            }
            if let Some(acc) = line.account.as_ref().filter(|acc| *acc != account) {
                errors.push(format!(
                    "{file} row {}, column account: line {} went to another account than {acc}",
                    line.source_row, line.line_no
                ));
                continue;
            }
            wanted.push((index, line, id.clone(), payment_key.clone()));
        }
    }
    if !errors.is_empty() {
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        errors.push(format!(
            "{}: refused, nothing was recorded",
            names.join(", ")
        ));
        return Err(StoreError::Invalid(errors.join("\n")));
    }
    // What the bank said of each line before, and whether the batch's entry is settled yet.
    let earlier: HashMap<&str, bool> = stored
        .values()
        .filter_map(|l| Some((l.payment_key.as_str(), l.answer?)))
        .collect();
    let entry_key = batch_entry_key(&batch_id);
    let settled = store
        .existing_keys(&[format!("post:{entry_key}"), format!("void:{entry_key}")])
        .await?;
    let county: String = batch.try_get(2)?;
    let unit: String = batch.try_get(0)?;
    let mut results = Vec::new();
    let mut returns = Vec::new();
    // What each file recorded anew: (paid, failed).
    let mut counts = vec![(0_i64, 0_i64); files.len()];
    for (index, line, id, payment_key) in &wanted {
        let file = &files[*index].name;
        let paid_now = line.status == LineStatus::Paid;
        if let Some(paid_before) = earlier.get(payment_key.as_str()) {
            if *paid_before == paid_now {
                report.already += 1;
                continue;
            }
            return Err(StoreError::Invalid(format!(
                "{file} row {}: line {} was recorded as {} before; the bank now says otherwise: refused, nothing was recorded",
                line.source_row,
                line.line_no,
                if *paid_before { "paid" } else { "failed" }
            )));
        }
        let (status, memo) = match &line.status {
            LineStatus::Paid => {
                report.paid += 1;
                counts[*index].0 += 1;
                ("paid", None)
            }
            LineStatus::Failed { code, reason } => {
                report.failed += 1;
                counts[*index].1 += 1;
                report
                    .failures
                    .push((line.line_no, code.clone(), reason.clone()));
                let amount = stored[&i64::from(line.line_no)].amount;
                returns.push((
                    payment_key.clone(),
                    id.clone(),
                    amount,
                    line.line_no,
                    code,
                    reason,
                ));
                (
                    "failed",
                    Some(
                        format!("银行失败 {code} {reason}")
                            .chars()
                            .take(200)
                            .collect::<String>(),
                    ),
                )
            }
        };
        if line.deceased {
            report.deceased.push(id.clone());
        }
        results.push(SideRow {
            entry: None,
            table: "payout_results",
            columns: &["payment_key", "status", "entry_date", "memo"],
            values: vec![
                payment_key.clone().into(),
                status.into(),
                date.format("%Y-%m-%d").to_string().into(),
                memo.map_or(SideValue::Null, SideValue::from),
            ],
        });
    }
    // The batch's first answer settles its entry, as the bank takes a batch's money at once: voided
    // if the bank failed every line of it (a rejected batch), else posted; the money of each failed
    // line comes back to the unit. A line not answered yet stays pending in the claims' and the
    // reports' eyes (sent, not confirmed) until an answer names it.
    let mut entries = Vec::new();
    let everything_failed = report.paid == 0 && earlier.is_empty() && returns.len() == stored.len();
    if !results.is_empty() && settled.is_empty() {
        let (kind, prefix) = if everything_failed {
            (EntryKind::Void, "void")
        } else {
            (EntryKind::Post, "post")
        };
        entries.push(NewEntry {
            key: format!("{prefix}:{entry_key}"),
            date,
            county: String::new(),
            program: String::new(),
            kind,
            memo: format!(
                "银行应答 {batch_id}: {} 成功, {} 失败",
                report.paid, report.failed
            ),
            postings: Vec::new(),
            refers_to: Some(entry_key.clone()),
        });
    }
    // (A batch voided has no failed line to return: nothing of it moved.)
    if !everything_failed {
        for (payment_key, id, amount, line_no, code, reason) in returns {
            let memo = format!("银行退回 {batch_id} 第{line_no}行 {code} {reason}");
            entries.push(NewEntry::normal(
                format!("failed:{payment_key}"),
                date,
                &county,
                &program,
                memo.chars().take(200).collect::<String>(),
                vec![
                    Posting {
                        account: AccountRef::new(unit.clone(), AccountKind::Held),
                        amount,
                    },
                    Posting {
                        account: AccountRef::new(id, AccountKind::Paid),
                        amount: Fen(-amount.get()),
                    },
                ],
            ));
        }
    }
    // Each file read is kept by its hash (so the same file read again is known), with what it
    // recorded anew.
    let read_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut side = results;
    for (file, (paid, failed)) in files.iter().zip(counts) {
        let hash = crate::ledger::hash::to_hex(&{
            use sha2::Digest;
            let digest: [u8; 32] = sha2::Sha256::digest(&file.bytes).into();
            digest
        });
        side.push(SideRow {
            entry: None,
            table: "bank_results",
            columns: &[
                "file_hash",
                "batch_id",
                "file_name",
                "read_at",
                "paid",
                "failed",
            ],
            values: vec![
                hash.into(),
                batch_id.clone().into(),
                file.name.clone().into(),
                read_at.clone().into(),
                SideValue::Int(paid),
                SideValue::Int(failed),
            ],
        });
    }
    store
        .post_with(&entries, BatchMode::AllOrNothing, &side)
        .await?;
    // A return coded as deceased (MD07) marks the person for the death check.
    for id in &report.deceased {
        store
            .roster_note(&program, id, "bank_reported_deceased", date, &batch_id)
            .await?;
    }
    Ok(report)
}

/// The outcome of a recovery scan.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// (masked ID, name, month, amount, reason)
    pub found: Vec<(String, String, YearMonth, Fen, String)>,
    pub posted: usize,
    pub already: usize,
}

/// 追回: finds payments for months after a person's death, employment as staff or leaving, and
/// posts what they owe back as a receivable (Dr receivable, Cr paid).
pub async fn recover(
    store: &Store,
    program: &Program,
    date: NaiveDate,
) -> Result<RecoveryReport, StoreError> {
    let people = store.roster_entries(program.code(), None).await?;
    let ended: HashMap<String, (YearMonth, String, String, String)> = people
        .iter()
        .filter_map(|p| {
            let ends = [
                p.death_date.map(|d| (d, format!("died {d}"))),
                p.employed_from
                    .map(|d| (d, format!("employed as staff from {d}"))),
                p.left_date
                    .filter(|_| p.left_reason.as_deref() != Some("death"))
                    .map(|d| (d, format!("left the roster {d}"))),
            ];
            let (day, reason) = ends.into_iter().flatten().min_by_key(|(d, _)| *d)?;
            Some((
                p.id_number.clone(),
                (YearMonth::of(day), reason, p.name.clone(), p.county.clone()),
            ))
        })
        .collect();
    // Only the paid lines of people whose entitlement ended: reading every paid line of the program
    // (2.4 million at province scale) held over a gigabyte for the few hundred that matter.
    let mut ids: Vec<String> = ended.keys().cloned().collect();
    ids.sort();
    let mut conn = store.pool().acquire().await?;
    let mut rows = crate::store::fetch_in(
        &mut conn,
        store.backend(),
        &format!(
            "SELECT l.id_number, l.month, l.amount FROM {} l \
             JOIN payout_batches b ON b.batch_id = l.batch_id \
             WHERE b.program = $1 \
               AND EXISTS (SELECT 1 FROM payout_results r WHERE r.payment_key = l.payment_key AND r.status = 'paid')",
            person_lines("IN ({list})")
        ),
        &[program.code()],
        &ids,
    )
    .await?
    .into_iter()
    .map(|row| {
        Ok::<_, StoreError>((
            row.try_get::<String, _>(0)?,
            row.try_get::<String, _>(1)?,
            Fen(row.try_get(2)?),
        ))
    })
    .collect::<Result<Vec<_>, _>>()?;
    drop(conn);
    rows.sort();
    let mut report = RecoveryReport::default();
    let mut entries = Vec::new();
    let mut side = Vec::new();
    for (id, month, amount) in rows {
        let Some((end, reason, name, county)) = ended.get(&id) else {
            continue;
        };
        let Ok(month) = month.parse::<YearMonth>() else {
            continue;
        };
        // Paid through the month of the event (MBDK 发放时间(三)); later months were not owed.
        if month <= *end {
            continue;
        }
        let masked = IdNumber::parse(&id).map(|i| i.masked()).unwrap_or_default();
        report
            .found
            .push((masked, name.clone(), month, amount, reason.clone()));
        let key = format!("recovery:{}:{id}:{month}", program.code());
        side.push(super::event_row(
            entries.len(),
            &key,
            "recovery",
            program.code(),
            county,
            None,
            &id,
            &id,
            reason,
            date,
            amount,
            None,
            Some((month, month)),
        ));
        entries.push(NewEntry::normal(
            key,
            date,
            county,
            program.code(),
            format!("追回 {month}: {reason}"),
            vec![
                Posting {
                    account: AccountRef::new(id.clone(), AccountKind::Receivable),
                    amount,
                },
                Posting {
                    account: AccountRef::new(id.clone(), AccountKind::Paid),
                    amount: Fen(-amount.get()),
                },
            ],
        ));
    }
    if entries.is_empty() {
        return Ok(report);
    }
    let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    let existing = store.existing_keys(&keys).await?;
    report.already = existing.len();
    let fresh: Vec<usize> = (0..entries.len())
        .filter(|i| !existing.contains(&entries[*i].key))
        .collect();
    let new_entries: Vec<NewEntry> = fresh.iter().map(|i| entries[*i].clone()).collect();
    let new_side: Vec<SideRow> = side
        .into_iter()
        .filter_map(|mut r| {
            let position = fresh.iter().position(|i| Some(*i) == r.entry)?;
            r.entry = Some(position);
            Some(r)
        })
        .collect();
    let outcomes = store
        .post_with(&new_entries, BatchMode::AllOrNothing, &new_side)
        .await?;
    report.posted = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Posted { .. }))
        .count();
    Ok(report)
}

/// Money recovered from a person comes back to the unit that paid it (Dr unit held, Cr receivable).
pub async fn receive(
    store: &Store,
    program: &Program,
    id_number: &str,
    unit: &str,
    amount: Fen,
    document: &str,
    date: NaiveDate,
) -> Result<Outcome, StoreError> {
    let unit_county = store
        .unit(unit)
        .await?
        .map(|u| u.county)
        .ok_or_else(|| StoreError::Invalid(format!("unit {unit} is not registered")))?;
    let key = format!("recovered:{document}:{id_number}");
    let side = [super::event_row(
        0,
        &key,
        "recovery_receipt",
        program.code(),
        &unit_county,
        None,
        id_number,
        unit,
        document,
        date,
        amount,
        None,
        None,
    )];
    let entry = NewEntry::normal(
        key,
        date,
        &unit_county,
        program.code(),
        format!("追回款到账 {document}"),
        vec![
            Posting {
                account: AccountRef::new(unit, AccountKind::Held),
                amount,
            },
            Posting {
                account: AccountRef::new(id_number, AccountKind::Receivable),
                amount: Fen(-amount.get()),
            },
        ],
    );
    let mut outcomes = store
        .post_with(&[entry], BatchMode::AllOrNothing, &side)
        .await?;
    Ok(outcomes.remove(0))
}

/// One person-month a unit records as paid (a counter payment, or one its bank confirmed outside a
/// batch file).
#[derive(Clone, Debug)]
pub struct PaymentLine {
    pub id_number: String,
    pub month: YearMonth,
}

/// What became of one payment line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PaymentOutcome {
    pub id_number: String,
    pub month: String,
    pub amount: Fen,
    /// `paid` (posted now) or `already` (this very payment was posted before: nothing changed).
    pub status: &'static str,
    pub entry_key: String,
}

/// The lines of a payment request that may not be paid, each with its reason; nothing was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRefusal {
    pub lines: Vec<(usize, String)>,
}

/// 直接发放: records payments a unit made, one entry per person-month (the person's paid account
/// ← the unit's held funds). Every line is checked first (on this unit's roster, owed that month,
/// not paid or waiting on the bank); one bad line refuses the request and nothing is written.
/// The payment's key is the person-month and attempt, so a client's retry is a no-op, and a claim
/// per person-month attempt makes a concurrent second payment collide instead of paying twice.
pub async fn pay(
    store: &Store,
    program: &Program,
    unit_code: &str,
    date: NaiveDate,
    lines: &[PaymentLine],
) -> Result<Result<Vec<PaymentOutcome>, PaymentRefusal>, StoreError> {
    if lines.is_empty() {
        return Err(StoreError::Invalid(
            "a payment needs at least one line".into(),
        ));
    }
    let unit = store
        .unit(unit_code)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("unit {unit_code} is not registered")))?;
    let regions = store.regions().await?;
    let ids: Vec<String> = lines.iter().map(|l| l.id_number.clone()).collect();
    let people: HashMap<String, crate::roster::RosterEntry> = store
        .roster_entries_by_id(program.code(), &ids)
        .await?
        .into_iter()
        .map(|p| (p.id_number.clone(), p))
        .collect();
    // Line states per month asked for.
    let mut by_month: HashMap<YearMonth, Vec<String>> = HashMap::new();
    for line in lines {
        by_month
            .entry(line.month)
            .or_default()
            .push(line.id_number.clone());
    }
    let mut states: HashMap<(YearMonth, String), Vec<(&'static str, String)>> = HashMap::new();
    let mut excluded: HashMap<YearMonth, HashMap<String, String>> = HashMap::new();
    for (month, ids) in &by_month {
        for (id, s) in line_states(store, program.code(), *month, ids).await? {
            states.insert((*month, id), s);
        }
        excluded.insert(*month, paid_by_excluded(store, program, *month, ids).await?);
    }
    let mut refused = Vec::new();
    let mut seen = HashSet::new();
    let mut planned = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let row = index + 1;
        let month = line.month;
        if !seen.insert((line.id_number.clone(), month)) {
            refused.push((row, format!("{month} is listed twice for this person")));
            continue;
        }
        if month > YearMonth::of(date) {
            refused.push((
                row,
                format!("{month} has not begun on {date}: nothing is paid in advance"),
            ));
            continue;
        }
        let Some(person) = people.get(&line.id_number) else {
            refused.push((row, format!("not on the {} roster", program.code())));
            continue;
        };
        if person.unit.as_deref() != Some(unit.code.as_str()) {
            refused.push((row, format!("not on unit {}'s roster", unit.code)));
            continue;
        }
        let owed = entitlements(program, &person.beneficiary(&regions), month, month)
            .map_err(|e| StoreError::Invalid(e.to_string()))?
            .into_iter()
            .next();
        let Some(owed) = owed else {
            let (rule, reason) = not_owed(program, person, month);
            refused.push((row, describe(rule, reason)));
            continue;
        };
        if let Some(other) = excluded
            .get(&month)
            .and_then(|by_id| by_id.get(&line.id_number))
        {
            refused.push((
                row,
                describe(
                    Some(Rule::ExcludedPrograms),
                    format!(
                        "paid by {other} for {month}, which {} cannot be combined with",
                        program.code()
                    ),
                ),
            ));
            continue;
        }
        let earlier = states
            .get(&(month, line.id_number.clone()))
            .cloned()
            .unwrap_or_default();
        let attempt = earlier.len() as i64;
        let key = format!(
            "pay:{}:{}:{month}:{attempt}",
            program.code(),
            line.id_number
        );
        // This very payment, posted before (a retry whose answer was lost): report it as it stands.
        let earlier_same = earlier.iter().any(|(s, k)| {
            *s == "paid"
                && *k
                    == format!(
                        "pay:{}:{}:{month}:{}",
                        program.code(),
                        line.id_number,
                        attempt - 1
                    )
        });
        if earlier_same {
            planned.push((
                line,
                person,
                owed.amount,
                format!(
                    "pay:{}:{}:{month}:{}",
                    program.code(),
                    line.id_number,
                    attempt - 1
                ),
                attempt - 1,
                true,
            ));
            continue;
        }
        if let Err(reason) = next_attempt(&earlier, month) {
            refused.push((row, describe(Some(Rule::PaidTwice), reason)));
            continue;
        }
        planned.push((line, person, owed.amount, key, attempt, false));
    }
    if !refused.is_empty() {
        return Ok(Err(PaymentRefusal { lines: refused }));
    }
    let mut entries = Vec::new();
    let mut side = Vec::new();
    let mut outcomes = Vec::new();
    for (line, person, amount, key, attempt, already) in &planned {
        outcomes.push(PaymentOutcome {
            id_number: person.id_number.clone(),
            month: line.month.to_string(),
            amount: *amount,
            status: if *already { "already" } else { "paid" },
            entry_key: key.clone(),
        });
        if *already {
            continue;
        }
        side.push(
            Claim {
                program: program.code(),
                id_number: &person.id_number,
                month: line.month,
                attempt: *attempt,
                payment_key: key,
                county: &unit.county,
                amount: *amount,
                line: None,
            }
            .row(entries.len()),
        );
        entries.push(NewEntry::normal(
            key.clone(),
            date,
            &unit.county,
            program.code(),
            format!("发放 {} {}", unit.code, line.month),
            vec![
                Posting {
                    account: AccountRef::new(person.id_number.clone(), AccountKind::Paid),
                    amount: *amount,
                },
                Posting {
                    account: AccountRef::new(unit.code.clone(), AccountKind::Held),
                    amount: Fen(-amount.get()),
                },
            ],
        ));
    }
    if !entries.is_empty() {
        let posted = store
            .post_with(&entries, BatchMode::AllOrNothing, &side)
            .await?;
        // A concurrent identical request may have posted the same payment first: say so.
        for outcome in outcomes.iter_mut().filter(|o| o.status == "paid") {
            let index = entries.iter().position(|e| e.key == outcome.entry_key);
            if let Some(Outcome::AlreadyPosted { .. }) = index.and_then(|i| posted.get(i)) {
                outcome.status = "already";
            }
        }
    }
    Ok(Ok(outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite_plan as plan;

    /// A new batch's number counts the unit's batches of the month through the unit's index
    /// (migration 0015): read by scanning, every batch of a year cost more than the one before.
    #[tokio::test]
    async fn a_new_batch_counts_its_units_batches_of_the_month_through_their_index() {
        let (store, _dir) = crate::store::temp_sqlite().await;
        let details = plan(
            &store,
            BATCHES_OF_A_UNIT_MONTH,
            &["E44051100", "MBDK", "2025-03"],
        )
        .await;
        assert!(
            details.iter().any(|d| d
                .starts_with("SEARCH payout_batches USING COVERING INDEX payout_batches_unit")
                && d.contains("unit_code=? AND program=? AND month=?")),
            "{details:?}"
        );
        assert!(
            !details.iter().any(|d| d.starts_with("SCAN")),
            "{details:?}"
        );
    }

    /// On SQLite the claims are keyed by program and month first (migration 0014), so a batch's
    /// claims land together; a person's are then found month by month, each claimed month looked
    /// up in the key, never by reading every claim. And a batch's check of its people's earlier
    /// attempts (`line_states`) looks its month up the same way.
    #[tokio::test]
    async fn a_persons_claims_and_a_batchs_are_looked_up_in_the_claims_key() {
        let (store, _dir) = crate::store::temp_sqlite().await;
        let looked_up = |plan: &[String]| {
            plan.iter().any(|d| {
                d.starts_with("SEARCH c USING INDEX sqlite_autoindex_payout_claims_1")
                    && d.contains("program=? AND month=? AND id_number=?")
            }) && !plan.iter().any(|d| d.starts_with("SCAN c"))
        };
        for (sql, binds) in [
            (
                format!("SELECT c.payment_key FROM {}", person_claims("= $1")),
                vec!["440511199001010011"],
            ),
            (
                format!("SELECT c.payment_key FROM {}", person_claims("IN ($1, $2)")),
                vec!["440511199001010011", "440511199001010029"],
            ),
            (
                format!("SELECT l.amount FROM {} l", person_lines("IN ($1, $2)")),
                vec!["440511199001010011", "440511199001010029"],
            ),
            (
                line_states_statement(2),
                vec![
                    "MBDK",
                    "2025-03",
                    "440511199001010011",
                    "440511199001010029",
                ],
            ),
        ] {
            let plan = plan(&store, &sql, &binds).await;
            assert!(looked_up(&plan), "{sql}: {plan:?}");
        }
        // Without the months taken first, the same question reads every claim: what the test
        // above rules out.
        let scan = plan(
            &store,
            "SELECT c.payment_key FROM payout_claims c WHERE c.id_number = $1",
            &["440511199001010011"],
        )
        .await;
        assert!(!looked_up(&scan), "{scan:?}");
    }
}
