//! The posting engine: validates a batch of entries against the stored ledger and writes it in one
//! transaction with multi-row statements. Everything is decided in memory first (idempotency,
//! references, owners, overdrafts, sequence numbers, hashes), then written; a refusal writes nothing.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::bulk::{BoundScript, BulkInsert, Cell, Script};
use super::{Backend, Store, StoreError, backend_of, fetch_in, packed};
use crate::ledger::hash::{self, EntryContent, Hash};
use crate::ledger::{self, AccountKey, AccountKind, Balance, EntryKind, LedgerError, NewEntry};
use crate::money::Fen;
use crate::region::Level;

/// What to do when an entry of a batch is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMode {
    /// Refuse the whole batch: nothing is written.
    AllOrNothing,
    /// Post the good entries; report the refused ones in their outcome.
    SkipRefused,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Posted {
        county: String,
        seq: i64,
    },
    /// The same key with the same content was posted before: nothing was written.
    AlreadyPosted {
        county: String,
        seq: i64,
    },
    Refused(LedgerError),
}

/// A stored entry as the engine needs it to judge a new one.
#[derive(Clone, Debug)]
struct Stored {
    county: String,
    seq: i64,
    kind: EntryKind,
    program: String,
    content_hash: Hash,
}

/// An entry that a post, void or reversal acts on, with its postings.
#[derive(Clone, Debug)]
struct Target {
    key: String,
    county: String,
    seq: i64,
    kind: EntryKind,
    program: String,
    postings: Vec<(String, AccountKind, Fen)>,
}

/// An entry of the batch, its county, program and postings settled.
struct Settled {
    county: String,
    program: String,
    postings: Vec<(String, AccountKind, Fen)>,
    /// Whether it acts on an earlier entry (post, void, reversal).
    has_target: bool,
    /// The postings of the entry it acts on, as far as known before judging (their accounts are
    /// loaded with the batch's; the judged postings come from the entry actually posted).
    target_postings: Vec<(String, AccountKind, Fen)>,
}

/// What `prepare` decided for a batch: each entry's outcome and the rows to write.
struct Plan {
    outcomes: Vec<Option<Outcome>>,
    entry_rows: Vec<EntryRow>,
    posting_rows: Vec<PostingRow>,
    balances: HashMap<i64, Balance>,
    touched: HashSet<i64>,
    /// Each county's chain head after the batch.
    heads: HashMap<String, Head>,
    account_ids: HashMap<AccountKey, i64>,
    created_at: String,
}

struct Head {
    seq: i64,
    hash: Hash,
}

struct EntryRow {
    county: String,
    seq: i64,
    key: String,
    program: String,
    date: String,
    kind: EntryKind,
    refers_seq: Option<i64>,
    memo: String,
    content_hash: Hash,
    chain_hash: Hash,
}

struct PostingRow {
    county: String,
    seq: i64,
    leg: i64,
    account: i64,
    amount: Fen,
    date: String,
    pending: bool,
}

impl Store {
    /// Posts one entry, all or nothing.
    pub async fn post_one(&self, entry: NewEntry) -> Result<Outcome, StoreError> {
        let mut outcomes = self.post(&[entry], BatchMode::AllOrNothing).await?;
        Ok(outcomes.remove(0))
    }

    /// Posts a batch in one transaction. In `AllOrNothing` mode the first refused entry refuses the
    /// batch (`StoreError::Refused`) and nothing is written.
    pub async fn post(
        &self,
        entries: &[NewEntry],
        mode: BatchMode,
    ) -> Result<Vec<Outcome>, StoreError> {
        self.post_with(entries, mode, &[]).await
    }

    /// Posts a batch and, in the same transaction, writes `side` rows (the flow's records about its
    /// entries: releases, batches, lines). A side row tied to an entry is written only when that entry
    /// is posted or was posted before; rows already present are left as they are.
    pub async fn post_with(
        &self,
        entries: &[NewEntry],
        mode: BatchMode,
        side: &[SideRow],
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; entries.len()];
        let refuse = |outcomes: &mut Vec<Option<Outcome>>, index: usize, error: LedgerError| {
            refuse_in(mode, outcomes, index, error)
        };
        for (index, entry) in entries.iter().enumerate() {
            if let Err(error) = entry.validate() {
                refuse(&mut outcomes, index, error)?;
            }
        }
        if self.backend == Backend::Sqlite
            && let Some(done) = self
                .post_from_reading(entries, mode, side, &outcomes)
                .await?
        {
            return Ok(done);
        }
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            self.lock_counties(&mut tx, entries).await?;
        }
        let plan = self.prepare(&mut tx, entries, mode, outcomes, true).await?;
        self.finish(tx, plan, side).await
    }

    /// SQLite: judges the batch on a read transaction, outside the writer's turn (so one stream
    /// reads and judges while another writes), then takes the turn and writes what was decided if
    /// no county it writes an entry in has had an entry since the reading. Everything the judging
    /// used that a writer can change (balances, resolutions, sequence numbers, the chain) belongs
    /// to one of those counties and moves only with an entry of it, so the reading is still the
    /// ledger. `None`: post it the ordinary way, under the turn (a county that moved on since the
    /// reading, a key or a new account that another county's entry took at the same moment).
    /// A county that moved is found by writing, not by reading its head first: see
    /// `write_if_unmoved`.
    async fn post_from_reading(
        &self,
        entries: &[NewEntry],
        mode: BatchMode,
        side: &[SideRow],
        outcomes: &[Option<Outcome>],
    ) -> Result<Option<Vec<Outcome>>, StoreError> {
        let mut read = self.begin_read().await?;
        let plan = self
            .prepare(&mut read, entries, mode, outcomes.to_vec(), false)
            .await;
        read.rollback().await?;
        // A refusal stands: it was right on a reading of the ledger taken during this call.
        self.write_if_unmoved(plan?, side).await
    }

    /// Under the writer's turn: writes `plan` if none of the counties it writes an entry in has
    /// had an entry since it was read; `None` (nothing written) if one has, or if one of its keys or
    /// new accounts was taken meanwhile.
    ///
    /// A county's entries are numbered one after another from its chain head, and an entry's
    /// number is its primary key with the county's: a county that moved on since the reading
    /// already holds the number the plan's first entry there takes, so writing that entry fails
    /// as a duplicate before anything of the plan is committed. That failure is the check (the
    /// heads were read again first, one more round trip inside the turn: 0.7–1.7 s of a 30-county
    /// demo's 30 s of turns). Only the heads of counties the plan writes an entry in are written
    /// (`finish`), so a county whose entries were all refused keeps whatever head it has now.
    async fn write_if_unmoved(
        &self,
        plan: Plan,
        side: &[SideRow],
    ) -> Result<Option<Vec<Outcome>>, StoreError> {
        // A plan whose accounts all exist is gathered and bound before the turn; one that opens
        // accounts gets their ids under it.
        let ready =
            if self.backend == Backend::Sqlite && plan.account_ids.values().all(|id| *id >= 0) {
                Ok(compose(None, self.backend, plan, side).await?)
            } else {
                Err(plan)
            };
        let tx = self.begin_write().await?;
        let written = match ready {
            Ok(written) => self.apply(tx, written).await,
            Err(plan) => self.finish(tx, plan, side).await,
        };
        match written {
            // A county that moved (its next number taken), or another county's entry that took a
            // key (keys are unique across counties), or an account opened meanwhile: the
            // transaction is rolled back as it is dropped, and the batch is judged again under
            // the turn.
            Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Reads what the batch needs and judges every entry: the rows to write and each entry's
    /// outcome. Under the writer's turn it opens the accounts the batch needs; on a reading
    /// (`under_turn: false`) it gives them provisional ids, for `finish` to open.
    async fn prepare(
        &self,
        tx: &mut super::Tx,
        entries: &[NewEntry],
        mode: BatchMode,
        mut outcomes: Vec<Option<Outcome>>,
        under_turn: bool,
    ) -> Result<Plan, StoreError> {
        let refuse = |outcomes: &mut Vec<Option<Outcome>>, index: usize, error: LedgerError| {
            refuse_in(mode, outcomes, index, error)
        };
        let regions = self.regions().await?;
        let programs = self.known_programs().await?;

        // What the database already holds: the batch's own keys and the keys it refers to.
        let mut wanted: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        wanted.extend(entries.iter().filter_map(|e| e.refers_to.as_deref()));
        let stored = fetch_stored(tx, &wanted).await?;
        let referred: Vec<&Stored> = entries
            .iter()
            .filter_map(|e| e.refers_to.as_deref())
            .filter_map(|k| stored.get(k))
            .collect();
        let (mut targets, target_accounts) = fetch_targets(tx, &stored, &referred).await?;
        let (mut resolved, mut reversed) = fetch_resolutions(tx, &referred).await?;

        // Settle each entry's county, program and postings (copied from what it refers to).
        let referred_in_batch: HashSet<&str> = entries
            .iter()
            .filter_map(|e| e.refers_to.as_deref())
            .collect();
        let mut in_batch: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut settled: Vec<Option<Settled>> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let result = if outcomes[index].is_some() {
                None
            } else {
                match settle(entry, index, &in_batch, &settled, &targets) {
                    Ok(s) => Some(s),
                    Err(error) => {
                        refuse(&mut outcomes, index, error)?;
                        None
                    }
                }
            };
            in_batch.entry(entry.key.as_str()).or_default().push(index);
            settled.push(result);
        }

        // Check counties, programs and owners; collect the accounts the batch touches.
        let owners = self.owner_counties(tx, &settled).await?;
        let mut account_keys: HashSet<AccountKey> = HashSet::new();
        for (index, entry) in entries.iter().enumerate() {
            let Some(s) = &settled[index] else { continue };
            if let Err(error) = check_scope(entry, s, &regions, &programs, &owners) {
                refuse(&mut outcomes, index, error)?;
                settled[index] = None;
                continue;
            }
            for (owner, kind, _) in s.postings.iter().chain(&s.target_postings) {
                account_keys.insert(account_key(s, owner, *kind));
            }
        }
        let (account_ids, opened) = self
            .account_ids(tx, account_keys, target_accounts, under_turn)
            .await?;
        let mut balances = fetch_balances(tx, account_ids.values().copied()).await?;
        // The same ids by borrowed key: judging looks two or more up per entry, without building
        // an owned key (three strings) for each.
        let id_of: HashMap<(&str, &str, &str, AccountKind), i64> = account_ids
            .iter()
            .map(|(k, id)| {
                (
                    (
                        k.county.as_str(),
                        k.program.as_str(),
                        k.owner.as_str(),
                        k.kind,
                    ),
                    *id,
                )
            })
            .collect();
        let counties: Vec<String> = {
            let set: HashSet<&str> = settled
                .iter()
                .flatten()
                .map(|s| s.county.as_str())
                .collect();
            let mut v: Vec<String> = set.into_iter().map(str::to_string).collect();
            v.sort();
            v
        };
        let mut heads = self.lock_heads(tx, &counties).await?;

        // Judge and apply each entry in order.
        let created_at = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let mut entry_rows: Vec<EntryRow> = Vec::new();
        let mut posting_rows: Vec<PostingRow> = Vec::new();
        let mut posted_in_batch: HashMap<&str, (String, i64, Hash)> = HashMap::new();
        let mut touched: HashSet<i64> = opened.into_iter().collect();
        let describe = |id: &i64| {
            account_ids
                .iter()
                .find(|(_, v)| *v == id)
                .map(|(k, _)| {
                    format!(
                        "{}:{} (county {}, {})",
                        k.owner, k.kind, k.county, k.program
                    )
                })
                .unwrap_or_else(|| format!("account #{id}"))
        };
        for (index, entry) in entries.iter().enumerate() {
            let Some(s) = settled[index].take() else {
                continue;
            };
            // Stored targets were fetched; targets posted earlier in this batch were added as posted.
            let target: Option<Target> = entry
                .refers_to
                .as_deref()
                .and_then(|k| targets.get(k))
                .cloned();
            if s.has_target && target.is_none() {
                let target_key = entry.refers_to.clone().unwrap_or_default();
                refuse(
                    &mut outcomes,
                    index,
                    LedgerError::ReferenceInvalid {
                        key: entry.key.clone(),
                        target: target_key,
                        reason: "was refused earlier in this batch".into(),
                    },
                )?;
                continue;
            }
            // The postings judged: a post copies, a reversal negates, the entry actually posted.
            let effective: Vec<(String, AccountKind, Fen)> = match (&target, entry.kind) {
                (Some(t), EntryKind::Post) => t.postings.clone(),
                (Some(t), EntryKind::Reversal) => t
                    .postings
                    .iter()
                    .map(|(o, k, a)| (o.clone(), *k, Fen(-a.get())))
                    .collect(),
                (Some(_), _) => Vec::new(),
                (None, _) => s.postings.clone(),
            };
            let date = entry.date.to_string(); // ISO 8601, YYYY-MM-DD
            let content = hash::content_hash(&EntryContent {
                key: &entry.key,
                date: &date,
                county: &s.county,
                program: &s.program,
                kind: entry.kind.code(),
                refers_seq: target.as_ref().map(|t| t.seq),
                memo: &entry.memo,
                postings: &effective
                    .iter()
                    .map(|(o, k, a)| (o.as_str(), *k, *a))
                    .collect::<Vec<_>>(),
            });
            // Idempotency: a key names one entry forever.
            let earlier = stored
                .get(entry.key.as_str())
                .map(|st| (st.county.clone(), st.seq, st.content_hash))
                .or_else(|| posted_in_batch.get(entry.key.as_str()).cloned());
            if let Some((county, seq, earlier_hash)) = earlier {
                if earlier_hash == content {
                    outcomes[index] = Some(Outcome::AlreadyPosted { county, seq });
                } else {
                    refuse(
                        &mut outcomes,
                        index,
                        LedgerError::ExistsWithDifferentContent {
                            key: entry.key.clone(),
                        },
                    )?;
                }
                continue;
            }
            // What a post, void or reversal acts on must still be open to it.
            if let Some(t) = &target
                && let Err(error) = check_target(entry, t, &resolved, &reversed)
            {
                refuse(&mut outcomes, index, error)?;
                continue;
            }
            let ids =
                |list: &[(String, AccountKind, Fen)]| -> Option<Vec<(i64, AccountKind, Fen)>> {
                    list.iter()
                        .map(|(o, k, a)| {
                            id_of
                                .get(&(s.county.as_str(), s.program.as_str(), o.as_str(), *k))
                                .map(|id| (*id, *k, *a))
                        })
                        .collect()
                };
            let resolved_postings: &[(String, AccountKind, Fen)] = match (&target, entry.kind) {
                (Some(t), EntryKind::Post | EntryKind::Void) => &t.postings,
                _ => &[],
            };
            let (Some(postings), Some(pending_postings)) =
                (ids(&effective), ids(resolved_postings))
            else {
                // Only reachable if an entry's accounts changed between settling and judging.
                refuse(
                    &mut outcomes,
                    index,
                    LedgerError::ReferenceInvalid {
                        key: entry.key.clone(),
                        target: entry.refers_to.clone().unwrap_or_default(),
                        reason:
                            "changed within this batch: post the reference in a batch of its own"
                                .into(),
                    },
                )?;
                continue;
            };
            let changed = match ledger::apply(
                entry.kind,
                &postings,
                &pending_postings,
                &mut balances,
                &entry.key,
                &describe,
            ) {
                Ok(changed) => changed,
                Err(error) => {
                    refuse(&mut outcomes, index, error)?;
                    continue;
                }
            };
            // Accepted: give it the county's next number and link it into the chain.
            let head = heads
                .get_mut(&s.county)
                .expect("head locked for every county of the batch");
            let seq = head.seq + 1;
            let chain = hash::chain_hash(&head.hash, seq, &created_at, &content);
            head.seq = seq;
            head.hash = chain;
            // Only the balances that moved are written again (a batch's pending entry moves the
            // unit's reservation, not its 600 people's balances).
            touched.extend(changed);
            let pending = entry.kind == EntryKind::Pending;
            for (leg, (account, _, amount)) in postings.iter().enumerate() {
                posting_rows.push(PostingRow {
                    county: s.county.clone(),
                    seq,
                    leg: leg as i64,
                    account: *account,
                    amount: *amount,
                    date: date.clone(),
                    pending,
                });
            }
            if let Some(t) = &target {
                let place = (t.county.clone(), t.seq);
                if entry.kind == EntryKind::Reversal {
                    reversed.insert(place, entry.key.clone());
                } else {
                    resolved.insert(place, (entry.kind, entry.key.clone()));
                }
            }
            // Kept as a target only when a later entry of this batch refers to it.
            if matches!(
                entry.kind,
                EntryKind::Normal | EntryKind::Pending | EntryKind::Post
            ) && referred_in_batch.contains(entry.key.as_str())
            {
                targets.insert(
                    entry.key.clone(),
                    Target {
                        key: entry.key.clone(),
                        county: s.county.clone(),
                        seq,
                        kind: entry.kind,
                        program: s.program.clone(),
                        postings: effective.clone(),
                    },
                );
            }
            posted_in_batch.insert(entry.key.as_str(), (s.county.clone(), seq, content));
            entry_rows.push(EntryRow {
                county: s.county.clone(),
                seq,
                key: entry.key.clone(),
                program: s.program.clone(),
                date,
                kind: entry.kind,
                refers_seq: target.as_ref().map(|t| t.seq),
                memo: entry.memo.clone(),
                content_hash: content,
                chain_hash: chain,
            });
            outcomes[index] = Some(Outcome::Posted {
                county: s.county.clone(),
                seq,
            });
        }

        Ok(Plan {
            outcomes,
            entry_rows,
            posting_rows,
            balances,
            touched,
            heads,
            account_ids,
            created_at,
        })
    }

    /// Under the writer's turn: opens the accounts the plan first saw on a reading, writes it
    /// and commits.
    async fn finish(
        &self,
        mut tx: super::Tx,
        plan: Plan,
        side: &[SideRow],
    ) -> Result<Vec<Outcome>, StoreError> {
        let plan = self.open_provisional(&mut tx, plan).await?;
        let written = compose(Some(&mut tx), self.backend, plan, side).await?;
        self.apply(tx, written).await
    }

    /// Accounts first seen on a reading (provisional, negative ids): opened now, under the turn,
    /// and their provisional ids replaced in the plan.
    async fn open_provisional(
        &self,
        tx: &mut super::Tx,
        mut plan: Plan,
    ) -> Result<Plan, StoreError> {
        let mut provisional: Vec<(AccountKey, i64)> = plan
            .account_ids
            .iter()
            .filter(|(_, id)| **id < 0)
            .map(|(k, id)| (k.clone(), *id))
            .collect();
        if provisional.is_empty() {
            return Ok(plan);
        }
        provisional.sort_by_key(|(_, id)| std::cmp::Reverse(*id));
        let keys: Vec<AccountKey> = provisional.iter().map(|(k, _)| k.clone()).collect();
        let opened = self.open_accounts(tx, &keys).await?;
        let real: HashMap<i64, i64> = provisional.iter().map(|(_, id)| *id).zip(opened).collect();
        let real_of = |id: i64| if id < 0 { real[&id] } else { id };
        for row in &mut plan.posting_rows {
            row.account = real_of(row.account);
        }
        plan.balances = std::mem::take(&mut plan.balances)
            .into_iter()
            .map(|(id, b)| (real_of(id), b))
            .collect();
        plan.touched = std::mem::take(&mut plan.touched)
            .into_iter()
            .map(real_of)
            .collect();
        for id in plan.account_ids.values_mut() {
            *id = real_of(*id);
        }
        Ok(plan)
    }

    /// Runs what `compose` gathered and commits.
    async fn apply(&self, mut tx: super::Tx, written: Written) -> Result<Vec<Outcome>, StoreError> {
        let Written {
            script,
            outcomes,
            account_ids,
            rows,
        } = written;
        script.run(&mut tx).await.map_err(claim_conflict)?;
        tx.commit().await?;
        self.remember_accounts(account_ids);
        self.grew(rows).await;
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every entry has an outcome"))
            .collect())
    }

    async fn known_programs(&self) -> Result<HashSet<String>, StoreError> {
        {
            let cache = self.cache.lock().expect("cache lock");
            if !cache.programs.is_empty() {
                return Ok(cache.programs.clone());
            }
        }
        let programs: HashSet<String> =
            self.programs().await?.into_iter().map(|(c, _)| c).collect();
        self.cache.lock().expect("cache lock").programs = programs.clone();
        Ok(programs)
    }

    /// The county of every owner that is a unit or a person (regions are checked against the table).
    async fn owner_counties(
        &self,
        tx: &mut super::Tx,
        settled: &[Option<Settled>],
    ) -> Result<HashMap<String, String>, StoreError> {
        let regions = self.regions().await?;
        let mut counties: HashMap<String, String> = HashMap::new();
        let mut unknown: Vec<String> = Vec::new();
        {
            let cache = self.cache.lock().expect("cache lock");
            let mut seen: HashSet<&str> = HashSet::new();
            for s in settled.iter().flatten() {
                for (owner, _, _) in &s.postings {
                    if !seen.insert(owner.as_str()) || regions.get(owner).is_some() {
                        continue;
                    }
                    match cache.owners.get(owner) {
                        Some(county) => {
                            counties.insert(owner.clone(), county.clone());
                        }
                        None => unknown.push(owner.clone()),
                    }
                }
            }
        }
        // Persons first (a payout batch names thousands), then units among what is left (a few):
        // two lists of one parameter per owner, not one list bound twice.
        for (table, key) in [("persons", "id_number"), ("units", "code")] {
            let wanted: Vec<String> = unknown
                .iter()
                .filter(|o| !counties.contains_key(o.as_str()))
                .cloned()
                .collect();
            let mut found: Vec<(String, String)> = Vec::new();
            packed::fetch_in(
                tx,
                self.backend,
                &[key, "county_code"],
                None,
                &format!("FROM {table} WHERE {key} IN ({{list}})"),
                &[],
                &wanted,
                |row| {
                    found.push((
                        packed::text(row, 0)?.to_string(),
                        packed::text(row, 1)?.to_string(),
                    ));
                    Ok(())
                },
            )
            .await?;
            let mut cache = self.cache.lock().expect("cache lock");
            for (code, county) in found {
                cache.owners.insert(code.clone(), county.clone());
                counties.insert(code, county);
            }
        }
        Ok(counties)
    }

    /// Account ids for `keys`: from the cache, then the database; missing accounts are opened
    /// (their ids are returned too: their balance rows are still to be written).
    async fn account_ids(
        &self,
        tx: &mut super::Tx,
        keys: HashSet<AccountKey>,
        known: HashMap<AccountKey, i64>,
        open: bool,
    ) -> Result<(HashMap<AccountKey, i64>, Vec<i64>), StoreError> {
        let mut ids: HashMap<AccountKey, i64> = HashMap::with_capacity(keys.len());
        let mut missing: Vec<AccountKey> = Vec::new();
        {
            let cache = self.cache.lock().expect("cache lock");
            for key in keys {
                match cache.accounts.get(&key).or_else(|| known.get(&key)) {
                    Some(id) => {
                        ids.insert(key, *id);
                    }
                    None => missing.push(key),
                }
            }
        }
        // Looked up by owner within each (county, program): one parameter per owner, not four per
        // key (a payout batch's 8,000 keys made 30,000-parameter statements, slow to parse), and
        // the unique index (county_code, program, owner, kind) seeks each owner.
        let mut found: Vec<(AccountKey, i64)> = Vec::new();
        {
            let mut groups: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
            for key in &missing {
                let owners = groups
                    .entry((key.county.as_str(), key.program.as_str()))
                    .or_default();
                owners.push(key.owner.as_str());
            }
            let wanted: HashSet<&AccountKey> = missing.iter().collect();
            for ((county, program), mut owners) in groups {
                owners.sort_unstable();
                owners.dedup();
                let owners: Vec<String> = owners.into_iter().map(str::to_string).collect();
                let sql = "SELECT id, county_code, program, owner, kind FROM accounts \
                           WHERE county_code = $1 AND program = $2 AND owner IN ({list})";
                for row in fetch_in(tx, self.backend, sql, &[county, program], &owners).await? {
                    let key = account_key_from_row(&row, 1)?;
                    if wanted.contains(&key) {
                        found.push((key, row.try_get(0)?));
                    }
                }
            }
        }
        ids.extend(found);
        let to_open: Vec<AccountKey> = missing
            .into_iter()
            .filter(|k| !ids.contains_key(k))
            .collect();
        // On a reading (no writer's turn) new accounts get provisional ids, -1, -2, ..., which
        // `finish` replaces with real ones under the turn.
        if !open {
            let provisional: Vec<i64> = (1..=to_open.len() as i64).map(|n| -n).collect();
            for (key, id) in to_open.into_iter().zip(&provisional) {
                ids.insert(key, *id);
            }
            return Ok((ids, provisional));
        }
        let new_ids = self.open_accounts(tx, &to_open).await?;
        for (key, id) in to_open.into_iter().zip(&new_ids) {
            ids.insert(key, *id);
        }
        Ok((ids, new_ids))
    }

    /// Opens `keys`' accounts and gives their ids, from the table's own counter (SQLite: the write
    /// lock is held, so MAX(id) is ours; PostgreSQL: the id sequence), so the insert needs no
    /// RETURNING (8,000 returned rows cost more than the insert). Their balance rows are written
    /// with the batch's other balances.
    async fn open_accounts(
        &self,
        tx: &mut super::Tx,
        keys: &[AccountKey],
    ) -> Result<Vec<i64>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.backend;
        let new_ids: Vec<i64> = match backend {
            Backend::Sqlite => {
                let top: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM accounts")
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get(0)?;
                (1..=keys.len() as i64).map(|n| top + n).collect()
            }
            Backend::Postgres => {
                let rows = sqlx::query(
                    "SELECT nextval(pg_get_serial_sequence('accounts', 'id')) \
                     FROM generate_series(1, $1::int8)",
                )
                .bind(keys.len() as i64)
                .fetch_all(&mut **tx)
                .await?;
                rows.iter()
                    .map(|r| r.try_get::<i64, _>(0))
                    .collect::<Result<_, _>>()?
            }
        };
        BulkInsert {
            head: "INSERT INTO accounts (id, county_code, program, owner, kind)",
            columns: 5,
            suffix: "",
        }
        .run(tx, backend, keys.len(), |r, c| {
            let key = &keys[r];
            match c {
                0 => Cell::Int(new_ids[r]),
                1 => Cell::Text(&key.county),
                2 => Cell::Text(&key.program),
                3 => Cell::Text(&key.owner),
                _ => Cell::Text(key.kind.code()),
            }
        })
        .await?;
        Ok(new_ids)
    }

    fn remember_accounts(&self, ids: HashMap<AccountKey, i64>) {
        let mut cache = self.cache.lock().expect("cache lock");
        // Bounded: a province has a few million accounts at most; past this we stop caching.
        const CACHED_ACCOUNTS_MAX: usize = 4_000_000;
        if cache.accounts.len() + ids.len() <= CACHED_ACCOUNTS_MAX {
            cache.accounts.extend(ids);
        }
    }

    /// Reads (and on PostgreSQL locks, in code order so that writers cannot deadlock) the chain head
    /// of every county the batch touches. A county's writers queue here: its balances, sequence and
    /// hash chain change only under this lock. On SQLite, BEGIN IMMEDIATE already serialises writers.
    /// PostgreSQL: takes each county's writer lock (a transaction-scoped advisory lock) before the
    /// batch reads anything, in county order, so two writers in one county queue whole and the second
    /// reads what the first committed (keys, accounts, balances), as BEGIN IMMEDIATE does on SQLite.
    /// The counties are the entries' own and those of the entries they resolve or reverse.
    async fn lock_counties(
        &self,
        tx: &mut super::Tx,
        entries: &[NewEntry],
    ) -> Result<(), StoreError> {
        let mut counties: std::collections::BTreeSet<String> = entries
            .iter()
            .filter(|e| !e.county.is_empty())
            .map(|e| e.county.clone())
            .collect();
        let targets: Vec<String> = entries.iter().filter_map(|e| e.refers_to.clone()).collect();
        let sql = "SELECT DISTINCT county_code FROM entries WHERE idem_key IN ({list})";
        for row in fetch_in(tx, self.backend, sql, &[], &targets).await? {
            counties.insert(row.try_get(0)?);
        }
        for county in counties {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('earmark county ' || $1))::text")
                .bind(county)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn lock_heads(
        &self,
        tx: &mut super::Tx,
        counties: &[String],
    ) -> Result<HashMap<String, Head>, StoreError> {
        let mut heads = HashMap::with_capacity(counties.len());
        let lock = match self.backend {
            Backend::Postgres => " ORDER BY county_code FOR UPDATE",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT county_code, seq, chain_hash FROM chain_heads WHERE county_code IN ({{list}}){lock}"
        );
        for row in fetch_in(tx, self.backend, &sql, &[], counties).await? {
            let bytes: Vec<u8> = row.try_get(2)?;
            heads.insert(
                row.try_get::<String, _>(0)?,
                Head {
                    seq: row.try_get(1)?,
                    hash: hash::from_bytes(&bytes).ok_or_else(|| {
                        StoreError::Invalid(
                            "a chain head hash is damaged: run `earmark verify`".into(),
                        )
                    })?,
                },
            );
        }
        for county in counties {
            heads.entry(county.clone()).or_insert(Head {
                seq: 0,
                hash: hash::GENESIS,
            });
        }
        Ok(heads)
    }
}

/// A refused entry: in `AllOrNothing` mode the batch's refusal, in `SkipRefused` its outcome.
fn refuse_in(
    mode: BatchMode,
    outcomes: &mut [Option<Outcome>],
    index: usize,
    error: LedgerError,
) -> Result<(), StoreError> {
    match mode {
        BatchMode::AllOrNothing => Err(StoreError::Refused { index, error }),
        BatchMode::SkipRefused => {
            outcomes[index] = Some(Outcome::Refused(error));
            Ok(())
        }
    }
}

fn account_key(s: &Settled, owner: &str, kind: AccountKind) -> AccountKey {
    AccountKey {
        county: s.county.clone(),
        program: s.program.clone(),
        owner: owner.to_string(),
        kind,
    }
}

fn account_key_from_row(row: &sqlx::any::AnyRow, first: usize) -> Result<AccountKey, StoreError> {
    let kind: String = row.try_get(first + 3)?;
    Ok(AccountKey {
        county: row.try_get(first)?,
        program: row.try_get(first + 1)?,
        owner: row.try_get(first + 2)?,
        kind: AccountKind::parse(&kind)
            .ok_or_else(|| StoreError::Invalid(format!("stored account kind {kind} is unknown")))?,
    })
}

/// Settles an entry's county, program and postings: its own, or those of the entry it refers to.
fn settle(
    entry: &NewEntry,
    index: usize,
    in_batch: &HashMap<&str, Vec<usize>>,
    settled: &[Option<Settled>],
    targets: &HashMap<String, Target>,
) -> Result<Settled, LedgerError> {
    let Some(target_key) = entry.refers_to.as_deref() else {
        return Ok(Settled {
            county: entry.county.clone(),
            program: entry.program.clone(),
            postings: entry
                .postings
                .iter()
                .map(|p| (p.account.owner.clone(), p.account.kind, p.amount))
                .collect(),
            has_target: false,
            target_postings: Vec::new(),
        });
    };
    let (county, program, postings) = if let Some(t) = targets.get(target_key) {
        (t.county.clone(), t.program.clone(), t.postings.clone())
    } else if let Some(seen) = in_batch
        .get(target_key)
        .filter(|v| v.iter().any(|&j| j < index))
    {
        // The latest earlier occurrence that is still standing; judging picks the one really posted.
        let Some(s) = seen
            .iter()
            .rev()
            .filter(|&&j| j < index)
            .find_map(|&j| settled[j].as_ref())
        else {
            return Err(LedgerError::ReferenceInvalid {
                key: entry.key.clone(),
                target: target_key.to_string(),
                reason: "was refused earlier in this batch".into(),
            });
        };
        (s.county.clone(), s.program.clone(), s.postings.clone())
    } else {
        return Err(LedgerError::ReferenceNotFound {
            key: entry.key.clone(),
            target: target_key.to_string(),
        });
    };
    // A caller may name the county and program; they must then be the target's.
    for (given, actual) in [(&entry.county, &county), (&entry.program, &program)] {
        if !given.is_empty() && given != actual {
            return Err(LedgerError::ReferenceInvalid {
                key: entry.key.clone(),
                target: target_key.to_string(),
                reason: format!(
                    "is in {county} / {program}, not {} / {}",
                    entry.county, entry.program
                ),
            });
        }
    }
    Ok(Settled {
        county,
        program,
        postings: Vec::new(),
        has_target: true,
        target_postings: postings,
    })
}

/// The county keeps county books, the program exists, and every owner may hold accounts there.
fn check_scope(
    entry: &NewEntry,
    s: &Settled,
    regions: &crate::region::RegionTable,
    programs: &HashSet<String>,
    owners: &HashMap<String, String>,
) -> Result<(), LedgerError> {
    if !programs.contains(&s.program) {
        return Err(LedgerError::UnknownProgram {
            key: entry.key.clone(),
            program: s.program.clone(),
        });
    }
    if !regions.get(&s.county).is_some_and(|r| r.county_role) {
        return Err(LedgerError::UnknownCounty {
            key: entry.key.clone(),
            county: s.county.clone(),
        });
    }
    let chain = regions.chain_up(&s.county);
    for (owner, kind, _) in &s.postings {
        let refusal = |reason: String| LedgerError::UnknownAccount {
            key: entry.key.clone(),
            account: format!("{owner}:{kind}"),
            county: s.county.clone(),
            reason,
        };
        if let Some(region) = regions.get(owner) {
            if region.level == Level::Township {
                return Err(refusal(format!(
                    "{owner} is a township: a township office pays as a registered unit"
                )));
            }
            if !chain.iter().any(|r| r.code == *owner) {
                return Err(refusal(format!(
                    "{} ({owner}) is not this county nor a level above it",
                    region.name
                )));
            }
        } else {
            match owners.get(owner) {
                Some(county) if county == &s.county => {}
                Some(county) => {
                    return Err(refusal(format!("{owner} belongs to county {county}")));
                }
                None => {
                    return Err(refusal(format!(
                        "{owner} is no region, registered unit or person on a roster"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn check_target(
    entry: &NewEntry,
    target: &Target,
    resolved: &HashMap<(String, i64), (EntryKind, String)>,
    reversed: &HashMap<(String, i64), String>,
) -> Result<(), LedgerError> {
    let invalid = |reason: &str| LedgerError::ReferenceInvalid {
        key: entry.key.clone(),
        target: target.key.clone(),
        reason: reason.to_string(),
    };
    let place = (target.county.clone(), target.seq);
    match entry.kind {
        EntryKind::Post | EntryKind::Void => {
            if target.kind != EntryKind::Pending {
                return Err(invalid(
                    "is not a pending entry: only pending entries are posted or voided",
                ));
            }
            if let Some((how, by)) = resolved.get(&place) {
                return Err(LedgerError::AlreadyResolved {
                    key: entry.key.clone(),
                    target: target.key.clone(),
                    how: if *how == EntryKind::Post {
                        "posted"
                    } else {
                        "voided"
                    }
                    .into(),
                    by: by.clone(),
                });
            }
        }
        EntryKind::Reversal => {
            match target.kind {
                EntryKind::Pending => {
                    return Err(invalid("is pending: void it instead of reversing it"));
                }
                EntryKind::Normal | EntryKind::Post => {}
                _ => {
                    return Err(invalid(
                        "is itself a void or a reversal and cannot be reversed",
                    ));
                }
            }
            if let Some(by) = reversed.get(&place) {
                return Err(LedgerError::AlreadyResolved {
                    key: entry.key.clone(),
                    target: target.key.clone(),
                    how: "reversed".into(),
                    by: by.clone(),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

async fn fetch_stored(
    tx: &mut super::Tx,
    keys: &[&str],
) -> Result<HashMap<String, Stored>, StoreError> {
    let unique: Vec<String> = {
        let set: HashSet<&str> = keys.iter().copied().collect();
        set.into_iter().map(str::to_string).collect()
    };
    let mut stored = HashMap::new();
    let backend = backend_of(tx);
    let hash = packed::hex(backend, "content_hash");
    packed::fetch_in(
        tx,
        backend,
        &[
            "idem_key",
            "county_code",
            "CAST(seq AS TEXT)",
            "kind",
            "program",
            &hash,
        ],
        None,
        "FROM entries WHERE idem_key IN ({list})",
        &[],
        &unique,
        |row| {
            let kind = packed::text(row, 3)?;
            stored.insert(
                packed::text(row, 0)?.to_string(),
                Stored {
                    county: packed::text(row, 1)?.to_string(),
                    seq: packed::int(row, 2)?,
                    kind: EntryKind::parse(kind).ok_or_else(|| {
                        StoreError::Invalid(format!("stored entry kind {kind} is unknown"))
                    })?,
                    program: packed::text(row, 4)?.to_string(),
                    content_hash: hash::from_hex(packed::text(row, 5)?).unwrap_or([0xff; 32]),
                },
            );
            Ok(())
        },
    )
    .await?;
    Ok(stored)
}

/// The postings of every stored entry the batch refers to.
async fn fetch_targets(
    tx: &mut super::Tx,
    stored: &HashMap<String, Stored>,
    referred: &[&Stored],
) -> Result<(HashMap<String, Target>, HashMap<AccountKey, i64>), StoreError> {
    // A set, not a scan of `referred` per stored key: that was quadratic (16 M comparisons for a
    // bank answer of 4,000 lines).
    let referred: HashSet<(&str, i64)> = referred
        .iter()
        .map(|r| (r.county.as_str(), r.seq))
        .collect();
    let mut by_place: HashMap<(String, i64), Target> = HashMap::new();
    for (key, st) in stored {
        if referred.contains(&(st.county.as_str(), st.seq)) {
            by_place.insert(
                (st.county.clone(), st.seq),
                Target {
                    key: key.clone(),
                    county: st.county.clone(),
                    seq: st.seq,
                    kind: st.kind,
                    program: st.program.clone(),
                    postings: Vec::new(),
                },
            );
        }
    }
    let places: Vec<(String, i64)> = by_place.keys().cloned().collect();
    let mut accounts: HashMap<AccountKey, i64> = HashMap::new();
    // By county, an IN list of sequence numbers: one parameter per target (not a VALUES list of
    // pairs), and SQLite walks the list in order, so the rows come in (seq, leg) order unsorted.
    for (county, chunk) in seqs_by_county(places.iter().map(|(c, s)| (c.as_str(), *s))) {
        let backend = backend_of(tx);
        packed::fetch_in(
            tx,
            backend,
            &[
                "CAST(p.seq AS TEXT)",
                "a.owner",
                "a.kind",
                "CAST(p.amount AS TEXT)",
                "CAST(a.id AS TEXT)",
                "a.program",
            ],
            Some("p.seq, p.leg"),
            match backend {
                // SQLite walks a CROSS JOIN in the order written: the postings by key, then each
                // one's account by id.
                super::Backend::Sqlite => {
                    "FROM postings p CROSS JOIN accounts a \
                     WHERE p.county_code = $1 AND p.seq IN ({list}) AND a.id = p.account_id"
                }
                // PostgreSQL reorders joins as it estimates: with statistics a few million rows
                // stale it expected 43,000 postings, not 1,200, and hashed all 1.4 million
                // accounts for each bank answer (1 s of a 600-line batch). A lateral subquery
                // that cannot be flattened (OFFSET 0) looks each posting's account up by id.
                super::Backend::Postgres => {
                    "FROM postings p CROSS JOIN LATERAL \
                     (SELECT x.owner, x.kind, x.id, x.program FROM accounts x \
                      WHERE x.id = p.account_id OFFSET 0) a \
                     WHERE p.county_code = $1 AND p.seq IN ({list})"
                }
            },
            &[county],
            &chunk,
            |row| {
                let place = (county.to_string(), packed::int(row, 0)?);
                let Some(target) = by_place.get_mut(&place) else {
                    return Ok(());
                };
                let owner = packed::text(row, 1)?;
                let kind = packed::text(row, 2)?;
                let kind = AccountKind::parse(kind).ok_or_else(|| {
                    StoreError::Invalid(format!("stored account kind {kind} is unknown"))
                })?;
                // The accounts are read here anyway: the batch need not look them up again.
                accounts.insert(
                    AccountKey {
                        county: place.0.clone(),
                        program: packed::text(row, 5)?.to_string(),
                        owner: owner.to_string(),
                        kind,
                    },
                    packed::int(row, 4)?,
                );
                target
                    .postings
                    .push((owner.to_string(), kind, Fen(packed::int(row, 3)?)));
                Ok(())
            },
        )
        .await?;
    }
    Ok((
        by_place.into_values().map(|t| (t.key.clone(), t)).collect(),
        accounts,
    ))
}

/// Sequence numbers grouped by county (each county's list is one IN lookup).
fn seqs_by_county<'a>(places: impl Iterator<Item = (&'a str, i64)>) -> HashMap<&'a str, Vec<i64>> {
    let mut by_county: HashMap<&str, Vec<i64>> = HashMap::new();
    for (county, seq) in places {
        by_county.entry(county).or_default().push(seq);
    }
    by_county
}

type Resolutions = (
    HashMap<(String, i64), (EntryKind, String)>,
    HashMap<(String, i64), String>,
);

/// Which referred entries are already posted, voided or reversed.
async fn fetch_resolutions(
    tx: &mut super::Tx,
    referred: &[&Stored],
) -> Result<Resolutions, StoreError> {
    let mut resolved = HashMap::new();
    let mut reversed = HashMap::new();
    for (county, chunk) in seqs_by_county(referred.iter().map(|st| (st.county.as_str(), st.seq))) {
        // `refers_seq IN (…)` lets SQLite use the partial reference index (an explicit
        // `IS NOT NULL` would turn it into a range scan of the county's referring entries).
        let sql = "SELECT e.county_code, e.refers_seq, e.kind, e.idem_key FROM entries e \
                   WHERE e.county_code = $1 AND e.refers_seq IN ({list}) \
                   AND e.kind IN ('post', 'void', 'reversal')";
        let backend = backend_of(tx);
        for row in fetch_in(tx, backend, sql, &[county], &chunk).await? {
            let place = (row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
            let kind: String = row.try_get(2)?;
            let key: String = row.try_get(3)?;
            match kind.as_str() {
                "reversal" => {
                    reversed.insert(place, key);
                }
                "post" => {
                    resolved.insert(place, (EntryKind::Post, key));
                }
                _ => {
                    resolved.insert(place, (EntryKind::Void, key));
                }
            }
        }
    }
    Ok((resolved, reversed))
}

async fn fetch_balances(
    tx: &mut super::Tx,
    ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, Balance>, StoreError> {
    let ids: Vec<i64> = ids.collect();
    let mut balances = HashMap::with_capacity(ids.len());
    let backend = backend_of(tx);
    packed::fetch_in(
        tx,
        backend,
        &[
            "CAST(account_id AS TEXT)",
            "CAST(balance AS TEXT)",
            "CAST(reserved AS TEXT)",
        ],
        None,
        "FROM balances WHERE account_id IN ({list})",
        &[],
        &ids,
        |row| {
            balances.insert(
                packed::int(row, 0)?,
                Balance {
                    balance: Fen(packed::int(row, 1)?),
                    reserved: Fen(packed::int(row, 2)?),
                },
            );
            Ok(())
        },
    )
    .await?;
    Ok(balances)
}

/// A judged plan's rows as the statements that write them, and what its writer keeps after the
/// commit.
struct Written {
    script: BoundScript,
    outcomes: Vec<Option<Outcome>>,
    account_ids: HashMap<AccountKey, i64>,
    /// Rows written (entries, postings and side rows), for `Store::grew`.
    rows: usize,
}

/// Gathers the statements that write `plan` (whose accounts all have their ids) and `side`, with
/// their values bound. On PostgreSQL they run as they are gathered, on `conn`, the write's own
/// transaction; on SQLite they are only gathered (`conn` unused, and may be `None`), in one script
/// to run under the writer's turn: a batch judged on a reading is gathered before it takes the
/// turn, so the turn only runs it.
async fn compose(
    mut conn: Option<&mut sqlx::AnyConnection>,
    backend: Backend,
    plan: Plan,
    side: &[SideRow],
) -> Result<Written, StoreError> {
    let Plan {
        outcomes,
        entry_rows,
        posting_rows,
        balances,
        touched,
        mut heads,
        account_ids,
        created_at,
        ..
    } = plan;
    debug_assert!(account_ids.values().all(|id| *id >= 0));
    // Gathered in one script: the small statements in one round trip, then the large ones.
    let mut script = Script::default();
    write_entries(
        conn.as_deref_mut(),
        backend,
        &entry_rows,
        &created_at,
        &mut script,
    )
    .await?;
    write_postings(conn.as_deref_mut(), backend, &posting_rows, &mut script).await?;
    write_balances(
        conn.as_deref_mut(),
        backend,
        &balances,
        &touched,
        &mut script,
    )
    .await?;
    // Only the heads that moved: a county of the batch whose entries were all refused (or
    // were posted before) keeps its head, which on a reading may be older than the ledger's.
    let written: HashSet<&str> = entry_rows.iter().map(|r| r.county.as_str()).collect();
    heads.retain(|county, _| written.contains(county.as_str()));
    write_heads(conn.as_deref_mut(), backend, &heads, &mut script).await?;
    let standing = |i: usize| {
        matches!(
            outcomes.get(i),
            Some(Some(Outcome::Posted { .. } | Outcome::AlreadyPosted { .. }))
        )
    };
    let new = |i: usize| matches!(outcomes.get(i), Some(Some(Outcome::Posted { .. })));
    // A claim is made only by an entry posted now: a repeated request claims nothing again.
    write_side_rows(
        conn,
        backend,
        side.iter().filter(|r| {
            if CLAIM_TABLES.contains(&r.table) {
                r.entry.is_none_or(new)
            } else {
                r.entry.is_none_or(standing)
            }
        }),
        &mut script,
    )
    .await?;
    Ok(Written {
        script: script.bind(),
        rows: entry_rows.len() + posting_rows.len() + side.len(),
        outcomes,
        account_ids,
    })
}

async fn write_entries(
    conn: Option<&mut sqlx::AnyConnection>,
    backend: Backend,
    rows: &[EntryRow],
    created_at: &str,
    script: &mut Script,
) -> Result<(), StoreError> {
    BulkInsert {
        head: "INSERT INTO entries (county_code, seq, idem_key, program, entry_date, kind, refers_seq, \
               memo, created_at, content_hash, chain_hash)",
        columns: 11,
        suffix: "",
    }
    .run_or_script(conn, backend, rows.len(), |r, c| {
        let row = &rows[r];
        match c {
            0 => Cell::Text(&row.county),
            1 => Cell::Int(row.seq),
            2 => Cell::Text(&row.key),
            3 => Cell::Text(&row.program),
            4 => Cell::Text(&row.date),
            5 => Cell::Text(row.kind.code()),
            6 => row.refers_seq.map(Cell::Int).unwrap_or(Cell::NullInt),
            7 => Cell::Text(&row.memo),
            8 => Cell::Text(created_at),
            9 => Cell::Bytes(&row.content_hash),
            _ => Cell::Bytes(&row.chain_hash),
        }
    }, script)
    .await?;
    Ok(())
}

async fn write_postings(
    conn: Option<&mut sqlx::AnyConnection>,
    backend: Backend,
    rows: &[PostingRow],
    script: &mut Script,
) -> Result<(), StoreError> {
    BulkInsert {
        head: "INSERT INTO postings (county_code, seq, leg, account_id, amount, entry_date, pending)",
        columns: 7,
        suffix: "",
    }
    .run_or_script(conn, backend, rows.len(), |r, c| {
        let row = &rows[r];
        match c {
            0 => Cell::Text(&row.county),
            1 => Cell::Int(row.seq),
            2 => Cell::Int(row.leg),
            3 => Cell::Int(row.account),
            4 => Cell::Int(row.amount.get()),
            5 => Cell::Text(&row.date),
            _ => Cell::Int(i64::from(row.pending)),
        }
    }, script)
    .await?;
    Ok(())
}

async fn write_balances(
    conn: Option<&mut sqlx::AnyConnection>,
    backend: Backend,
    balances: &HashMap<i64, Balance>,
    touched: &HashSet<i64>,
    script: &mut Script,
) -> Result<(), StoreError> {
    let rows: Vec<(i64, Balance)> = touched
        .iter()
        .map(|id| (*id, balances.get(id).copied().unwrap_or_default()))
        .collect();
    BulkInsert {
        head: "INSERT INTO balances (account_id, balance, reserved)",
        columns: 3,
        suffix: "ON CONFLICT (account_id) DO UPDATE SET balance = excluded.balance, reserved = excluded.reserved",
    }
    .run_or_script(conn, backend, rows.len(), |r, c| {
        let (id, b) = &rows[r];
        Cell::Int(match c {
            0 => *id,
            1 => b.balance.get(),
            _ => b.reserved.get(),
        })
    }, script)
    .await?;
    Ok(())
}

async fn write_heads(
    conn: Option<&mut sqlx::AnyConnection>,
    backend: Backend,
    heads: &HashMap<String, Head>,
    script: &mut Script,
) -> Result<(), StoreError> {
    let heads: Vec<(&String, &Head)> = heads.iter().collect();
    BulkInsert {
        head: "INSERT INTO chain_heads (county_code, seq, chain_hash)",
        columns: 3,
        suffix: "ON CONFLICT (county_code) DO UPDATE SET seq = excluded.seq, chain_hash = excluded.chain_hash",
    }
    .run_or_script(conn, backend, heads.len(), |r, c| {
        let (county, head) = heads[r];
        match c {
            0 => Cell::Text(county),
            1 => Cell::Int(head.seq),
            _ => Cell::Bytes(&head.hash),
        }
    }, script)
    .await?;
    Ok(())
}

/// A value of a side row.
#[derive(Clone, Debug)]
pub enum SideValue {
    Text(String),
    Int(i64),
    /// A NULL text; PostgreSQL types a parameter, so an integer NULL is its own value.
    Null,
    NullInt,
}

impl From<&str> for SideValue {
    fn from(t: &str) -> SideValue {
        SideValue::Text(t.to_string())
    }
}
impl From<String> for SideValue {
    fn from(t: String) -> SideValue {
        SideValue::Text(t)
    }
}
impl From<i64> for SideValue {
    fn from(n: i64) -> SideValue {
        SideValue::Int(n)
    }
}
impl From<Fen> for SideValue {
    fn from(f: Fen) -> SideValue {
        SideValue::Int(f.get())
    }
}
impl From<Option<String>> for SideValue {
    fn from(o: Option<String>) -> SideValue {
        o.map(SideValue::Text).unwrap_or(SideValue::Null)
    }
}
impl From<Option<i64>> for SideValue {
    fn from(o: Option<i64>) -> SideValue {
        o.map(SideValue::Int).unwrap_or(SideValue::NullInt)
    }
}

/// Tables whose rows are claims: a row already there means another writer got there first, so the
/// whole batch is refused (other side rows are facts, and writing one twice is a no-op).
const CLAIM_TABLES: &[&str] = &["payout_claims"];

/// A row for one of the flow's own tables, written with the entries it describes.
#[derive(Clone, Debug)]
pub struct SideRow {
    /// The index of the entry it belongs to in the batch, or `None` to write it whatever happens.
    pub entry: Option<usize>,
    pub table: &'static str,
    pub columns: &'static [&'static str],
    pub values: Vec<SideValue>,
}

async fn write_side_rows<'a>(
    mut conn: Option<&mut sqlx::AnyConnection>,
    backend: Backend,
    rows: impl Iterator<Item = &'a SideRow>,
    script: &mut Script,
) -> Result<(), StoreError> {
    let rows: Vec<&SideRow> = rows.collect();
    // Each claim's (program, month) is listed once in payout_claim_months, through which a
    // person's claims are found (SQLite's claims key leads with the month; migration 0014): written
    // here, with the claims, so that no writer of claims can leave one out.
    let months = claim_months(&rows);
    // Group the rows by table (tables in order of first appearance, rows in their order) so they go
    // in multi-row statements: a payout batch's claim and line rows alternate, and grouping only
    // consecutive rows wrote them one row per statement.
    let mut tables: Vec<(&'static str, Vec<&SideRow>)> = Vec::new();
    for row in rows.into_iter().chain(&months) {
        match tables.iter_mut().find(|(t, _)| *t == row.table) {
            Some((_, group)) => group.push(row),
            None => tables.push((row.table, vec![row])),
        }
    }
    let rows: Vec<&SideRow> = tables.into_iter().flat_map(|(_, g)| g).collect();
    let mut start = 0;
    while start < rows.len() {
        let table = rows[start].table;
        let columns = rows[start].columns;
        let mut end = start;
        while end < rows.len() && rows[end].table == table && rows[end].columns == columns {
            end += 1;
        }
        let claim = CLAIM_TABLES.contains(&table);
        let group = &rows[start..end];
        let head = format!("INSERT INTO {table} ({})", columns.join(", "));
        let written = BulkInsert {
            head: &head,
            columns: columns.len(),
            suffix: if claim { "" } else { "ON CONFLICT DO NOTHING" },
        }
        .run_or_script(
            conn.as_deref_mut(),
            backend,
            group.len(),
            |r, c| match &group[r].values[c] {
                SideValue::Text(t) => Cell::Text(t),
                SideValue::Int(n) => Cell::Int(*n),
                SideValue::Null => Cell::NullText,
                SideValue::NullInt => Cell::NullInt,
            },
            script,
        )
        .await;
        match written {
            Err(sqlx::Error::Database(e)) if claim && e.is_unique_violation() => {
                return Err(claimed_meanwhile(table));
            }
            other => {
                other?;
            }
        }
        start = end;
    }
    Ok(())
}

/// The table listing every month that has claims, per program: what a person's claims are looked
/// up by (see migration 0014).
const CLAIM_MONTHS: &str = "payout_claim_months";

/// One `payout_claim_months` row for each (program, month) the claims among `rows` name, in the
/// order first named.
fn claim_months(rows: &[&SideRow]) -> Vec<SideRow> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for row in rows.iter().filter(|r| CLAIM_TABLES.contains(&r.table)) {
        let value = |name: &str| {
            row.columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| match &row.values[i] {
                    SideValue::Text(t) => Some(t.as_str()),
                    _ => None,
                })
        };
        if let (Some(program), Some(month)) = (value("program"), value("month"))
            && !seen.contains(&(program, month))
        {
            seen.push((program, month));
        }
    }
    seen.into_iter()
        .map(|(program, month)| SideRow {
            entry: None,
            table: CLAIM_MONTHS,
            columns: &["program", "month"],
            values: vec![program.into(), month.into()],
        })
        .collect()
}

fn claimed_meanwhile(table: &str) -> StoreError {
    StoreError::Conflict(format!(
        "another writer claimed the same {table} row at the same moment \
         (a person-month already in a payout or payment); nothing was written"
    ))
}

/// A script's failure: a claim already made (its statement is known by the table SQLite names in
/// the message) is a conflict, as when its statement runs alone; anything else as it is.
fn claim_conflict(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(e) = &error
        && e.is_unique_violation()
        && let Some(table) = CLAIM_TABLES
            .iter()
            .find(|t| e.message().contains(&format!("{t}.")))
    {
        return claimed_meanwhile(table);
    }
    error.into()
}

/// The SQLite path that judges a batch on a reading and writes it under the writer's turn only if
/// the reading still holds: each case stops between the two steps, lets another writer in, and
/// checks what is written. (Every other store test goes through the same path on SQLite.)
#[cfg(test)]
mod tests {
    use super::*;
    use crate::id_number::make_id;
    use crate::ledger::{AccountRef, Posting};
    use crate::store::{PersonOwner, Unit};
    use chrono::NaiveDate;

    fn transfer(key: &str, county: &str, to: &str, from: &str, fen: i64) -> NewEntry {
        let posting = |account: &str, fen: i64| Posting {
            account: AccountRef::parse(account).expect("test account"),
            amount: Fen(fen),
        };
        NewEntry::normal(
            key,
            NaiveDate::from_ymd_opt(2025, 3, 1).expect("date"),
            county,
            "MBDK",
            "",
            vec![posting(to, fen), posting(from, -fen)],
        )
    }

    /// Two counties, each with 10,000 released; 6,000 of 440511's passed on to its unit U-A.
    async fn ledger() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.db");
        let store = Store::open(path.to_str().expect("path"))
            .await
            .expect("open");
        store.init().await.expect("init");
        let unit = |code: &str, county: &str| Unit {
            code: code.into(),
            name: format!("{code} 学校"),
            county: county.into(),
            township: None,
            kind: "school".into(),
        };
        store
            .register_units(&[unit("U-A", "440511"), unit("U-B", "441900")])
            .await
            .expect("units");
        for entry in [
            transfer("R-1", "440511", "440511:held", "440000:budget", 10_000),
            transfer("R-2", "441900", "441900:held", "440000:budget", 10_000),
            transfer("A-1", "440511", "U-A:held", "440511:held", 6_000),
            transfer("B-1", "441900", "U-B:held", "441900:held", 6_000),
        ] {
            store.post_one(entry).await.expect("set-up entry posts");
        }
        (store, dir)
    }

    /// Judges `entries` on a reading, as `post_with` does on SQLite, without writing.
    async fn reading(store: &Store, entries: &[NewEntry]) -> Plan {
        reading_in(store, entries, BatchMode::AllOrNothing).await
    }

    /// `reading` in the given mode.
    async fn reading_in(store: &Store, entries: &[NewEntry], mode: BatchMode) -> Plan {
        let mut read = store.begin_read().await.expect("reading");
        let plan = store
            .prepare(&mut read, entries, mode, vec![None; entries.len()], false)
            .await
            .expect("judged on the reading");
        read.rollback().await.expect("end the reading");
        plan
    }

    async fn balance(store: &Store, county: &str, owner: &str, kind: &str) -> i64 {
        sqlx::query(
            "SELECT b.balance FROM balances b JOIN accounts a ON a.id = b.account_id \
             WHERE a.county_code = $1 AND a.owner = $2 AND a.kind = $3",
        )
        .bind(county)
        .bind(owner)
        .bind(kind)
        .fetch_one(&store.pool)
        .await
        .expect("balance row")
        .try_get(0)
        .expect("balance")
    }

    async fn assert_sound(store: &Store) {
        let check = store.check().await.expect("check runs");
        assert!(check.problems.is_empty(), "{:?}", check.problems);
        let verify = store.verify().await.expect("verify runs");
        assert!(verify.broken.is_empty(), "{:?}", verify.broken);
    }

    /// The store checkpoints SQLite's log itself, outside the writer's turn, every so many rows:
    /// with a checkpoint every 1,000 rows the log starts over and stays a few batches long, where
    /// without one (SQLite's own mark is 200,000 pages) it would hold every batch written.
    #[tokio::test]
    async fn the_store_checkpoints_the_log_every_so_many_rows() {
        let (store, dir) = ledger().await;
        store.checkpoint_every(1_000);
        let wal = dir.path().join("ledger.db-wal");
        let mut sizes = Vec::new();
        for batch in 0..40 {
            // 100 entries of two legs: 300 rows, and every few batches a checkpoint.
            let entries: Vec<NewEntry> = (0..100)
                .map(|i| {
                    transfer(
                        &format!("T-{batch}-{i}"),
                        "440511",
                        "U-A:held",
                        "440511:held",
                        1,
                    )
                })
                .collect();
            store
                .post(&entries, BatchMode::AllOrNothing)
                .await
                .expect("batch posts");
            sizes.push(std::fs::metadata(&wal).expect("the log exists").len());
        }
        // The log file is reused from its start after a checkpoint, so it stops growing: the last
        // half of the batches did not make it longer than the first half did.
        let (first, last) = sizes.split_at(20);
        assert!(
            last.iter().max() <= first.iter().max(),
            "the log kept growing: {sizes:?}"
        );
        assert_eq!(
            balance(&store, "440511", "U-A", "held").await,
            6_000 + 4_000
        );
        assert_sound(&store).await;
    }

    #[tokio::test]
    async fn a_reading_overtaken_in_its_county_is_not_written_and_is_judged_again() {
        let (store, _dir) = ledger().await;
        // On the reading the county holds 4,000, so passing all of it on is judged fine.
        let late = transfer("A-2", "440511", "U-A:held", "440511:held", 4_000);
        let plan = reading(&store, std::slice::from_ref(&late)).await;
        // Meanwhile another writer passes 3,000 of it on.
        store
            .post_one(transfer("A-3", "440511", "U-A:held", "440511:held", 3_000))
            .await
            .expect("the other writer posts");
        let written = store.write_if_unmoved(plan, &[]).await.expect("no error");
        assert!(
            written.is_none(),
            "a moved county must not get a stale plan"
        );
        assert_eq!(balance(&store, "440511", "440511", "held").await, 1_000);
        // Posted now, it is judged again under the turn: the county no longer holds 4,000.
        match store.post_one(late).await {
            Err(StoreError::Refused {
                error: LedgerError::Overdraft { key, .. },
                ..
            }) => assert_eq!(key, "A-2"),
            other => panic!("expected an overdraft, got {other:?}"),
        }
        assert_eq!(balance(&store, "440511", "440511", "held").await, 1_000);
        assert_eq!(balance(&store, "440511", "U-A", "held").await, 9_000);
        assert_sound(&store).await;
    }

    /// A county whose entries were all refused on the reading is not checked by writing (nothing
    /// is written there), so its head must not be written either: it moved on meanwhile.
    #[tokio::test]
    async fn a_county_whose_entries_were_all_refused_keeps_the_head_it_has_now() {
        let (store, _dir) = ledger().await;
        let batch = [
            // 440511 holds 4,000: refused.
            transfer("A-2", "440511", "U-A:held", "440511:held", 9_999),
            transfer("B-2", "441900", "U-B:held", "441900:held", 1_000),
        ];
        let plan = reading_in(&store, &batch, BatchMode::SkipRefused).await;
        // Meanwhile 440511 moves on by an entry of its own.
        store
            .post_one(transfer("A-3", "440511", "U-A:held", "440511:held", 500))
            .await
            .expect("the other writer posts");
        let outcomes = store
            .write_if_unmoved(plan, &[])
            .await
            .expect("no error")
            .expect("441900 did not move");
        assert!(
            matches!(&outcomes[..], [Outcome::Refused { .. }, Outcome::Posted { county, .. }] if county == "441900"),
            "{outcomes:?}"
        );
        let head: i64 = sqlx::query("SELECT seq FROM chain_heads WHERE county_code = '440511'")
            .fetch_one(&store.pool)
            .await
            .expect("head")
            .try_get(0)
            .expect("seq");
        assert_eq!(
            head, 3,
            "440511's head is the other writer's entry, not the reading's"
        );
        assert_eq!(balance(&store, "440511", "U-A", "held").await, 6_500);
        assert_eq!(balance(&store, "441900", "U-B", "held").await, 7_000);
        assert_sound(&store).await;
    }

    #[tokio::test]
    async fn a_reading_that_still_holds_is_written_as_judged() {
        let (store, _dir) = ledger().await;
        let plan = reading(
            &store,
            &[transfer("A-2", "440511", "U-A:held", "440511:held", 4_000)],
        )
        .await;
        // Another county's writer does not move this one.
        store
            .post_one(transfer("B-2", "441900", "U-B:held", "441900:held", 4_000))
            .await
            .expect("the other county posts");
        let outcomes = store
            .write_if_unmoved(plan, &[])
            .await
            .expect("no error")
            .expect("the reading still holds");
        assert!(
            matches!(&outcomes[..], [Outcome::Posted { county, seq: 3 }] if county == "440511"),
            "{outcomes:?}"
        );
        assert_eq!(balance(&store, "440511", "440511", "held").await, 0);
        assert_eq!(balance(&store, "440511", "U-A", "held").await, 10_000);
        assert_eq!(balance(&store, "441900", "441900", "held").await, 0);
        assert_sound(&store).await;
    }

    #[tokio::test]
    async fn a_key_taken_in_another_county_since_the_reading_is_judged_again() {
        let (store, _dir) = ledger().await;
        let ours = transfer("K", "440511", "U-A:held", "440511:held", 1_000);
        let plan = reading(&store, std::slice::from_ref(&ours)).await;
        store
            .post_one(transfer("K", "441900", "U-B:held", "441900:held", 1_000))
            .await
            .expect("the other county takes the key");
        let written = store.write_if_unmoved(plan, &[]).await.expect("no error");
        assert!(
            written.is_none(),
            "the key clash sends it back to be judged"
        );
        assert_eq!(balance(&store, "440511", "440511", "held").await, 4_000);
        match store.post_one(ours).await {
            Err(StoreError::Refused {
                error: LedgerError::ExistsWithDifferentContent { key },
                ..
            }) => assert_eq!(key, "K"),
            other => panic!("expected the key to be refused, got {other:?}"),
        }
        assert_sound(&store).await;
    }

    #[tokio::test]
    async fn accounts_first_seen_on_a_reading_are_opened_under_the_turn() {
        let (store, _dir) = ledger().await;
        let born = NaiveDate::from_ymd_opt(1960, 1, 1).expect("date");
        let ours = make_id("440511", born, 1).full().to_string();
        let theirs = make_id("441900", born, 2).full().to_string();
        store
            .register_persons(&[
                PersonOwner {
                    id_number: ours.clone(),
                    name: "张三".into(),
                    county: "440511".into(),
                },
                PersonOwner {
                    id_number: theirs.clone(),
                    name: "李四".into(),
                    county: "441900".into(),
                },
            ])
            .await
            .expect("persons");
        let plan = reading(
            &store,
            &[transfer(
                "PAY-1",
                "440511",
                &format!("{ours}:paid"),
                "U-A:held",
                500,
            )],
        )
        .await;
        assert!(
            plan.account_ids.values().any(|id| *id < 0),
            "the person's account does not exist yet: it has a provisional id"
        );
        // Meanwhile another county's payment opens an account: the next id is taken.
        store
            .post_one(transfer(
                "PAY-2",
                "441900",
                &format!("{theirs}:paid"),
                "U-B:held",
                700,
            ))
            .await
            .expect("the other county pays");
        store
            .write_if_unmoved(plan, &[])
            .await
            .expect("no error")
            .expect("the reading still holds");
        assert_eq!(balance(&store, "440511", &ours, "paid").await, 500);
        assert_eq!(balance(&store, "441900", &theirs, "paid").await, 700);
        assert_eq!(balance(&store, "440511", "U-A", "held").await, 5_500);
        let negative: i64 = sqlx::query("SELECT COUNT(*) FROM accounts WHERE id <= 0")
            .fetch_one(&store.pool)
            .await
            .expect("count")
            .try_get(0)
            .expect("count");
        assert_eq!(negative, 0, "no provisional id is stored");
        assert_sound(&store).await;
    }

    /// A person-month claimed already refuses the whole batch as a conflict, and writes nothing,
    /// whether its claim goes in the write's one round trip of small statements or in a statement
    /// of 64 rows of its own (which runs after the small ones).
    #[tokio::test]
    async fn a_claim_made_twice_is_a_conflict_and_writes_nothing() {
        let (store, _dir) = ledger().await;
        // The payout flow's own claim rows, one person-month each.
        let claims = |people: std::ops::Range<usize>, key: &str| -> Vec<SideRow> {
            people
                .map(|i| {
                    crate::flow::payout::Claim {
                        program: "MBDK",
                        id_number: &format!("P{i:03}"),
                        month: "2025-03".parse().expect("month"),
                        attempt: 0,
                        payment_key: &format!("{key}:{i}"),
                        county: "440511",
                        amount: Fen(1),
                        line: None,
                    }
                    .row(0)
                })
                .collect()
        };
        let pay = |key: &str| [transfer(key, "440511", "U-A:held", "440511:held", 100)];
        let entries = |store: &Store| {
            let pool = store.pool.clone();
            async move {
                sqlx::query("SELECT COUNT(*) FROM entries")
                    .fetch_one(&pool)
                    .await
                    .expect("count")
                    .try_get::<i64, _>(0)
                    .expect("count")
            }
        };
        // One claim, in the small statements; then 64, a statement of their own.
        for (first, second) in [(0..1, 0..1), (1..65, 1..71)] {
            store
                .post_with(
                    &pay(&format!("C-{}", first.start)),
                    BatchMode::AllOrNothing,
                    &claims(first, "a"),
                )
                .await
                .expect("the first claim is made");
            let before = (
                entries(&store).await,
                balance(&store, "440511", "U-A", "held").await,
            );
            let again = store
                .post_with(
                    &pay(&format!("D-{}", second.start)),
                    BatchMode::AllOrNothing,
                    &claims(second, "b"),
                )
                .await;
            match again {
                Err(StoreError::Conflict(message)) => {
                    assert!(message.contains("payout_claims"), "{message}")
                }
                other => panic!("expected a conflict, got {other:?}"),
            }
            assert_eq!(
                before,
                (
                    entries(&store).await,
                    balance(&store, "440511", "U-A", "held").await
                ),
                "a refused batch wrote something"
            );
        }
        assert_sound(&store).await;
    }
}
