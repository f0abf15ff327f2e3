//! The ledger against a reference model: random sequences of valid and invalid operations (releases,
//! pass-ons, payments, two-phase payments with their post or void, reversals, re-posts of old keys,
//! unbalanced entries, overdrafts, out-of-scope owners, unknown references), alone or in batches of
//! either mode. After every step the store must agree with an independent in-memory model written
//! from the rules (not from `earmark::ledger::apply`), and keep its invariants:
//!
//! 1. conservation: all postings sum to zero;
//! 2. no `held` balance below zero;
//! 3. stored balances equal the sum of postings (`Store::check` finds no problem);
//! 4. no overdraft: balance − reserved ≥ 0 on `held`;
//! 5. a reservation is never spent twice: reserved amounts equal the model's, and a pending entry
//!    resolved a second time is refused;
//! 6. a refused operation changes nothing.
//!
//! Cases: 24 by default, `PROPTEST_CASES` to change.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{Kind, day, posting};
use earmark::ledger::{EntryKind, NewEntry};
use earmark::store::{BalanceFilter, BatchMode, Outcome, PersonOwner, Store, StoreError};
use proptest::prelude::*;
use proptest::test_runner::Config;
use sqlx::Row;

const COUNTY: &str = "440511";
const PROGRAM: &str = "MBDK";
const PERSON: &str = "440511196001011234";
/// The owners that may hold accounts in 440511's books in this test.
const IN_SCOPE: [&str; 5] = ["440000", "440500", COUNTY, "U-A", PERSON];

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Province (or city) budget → county held.
    Release { city: bool, fen: i64 },
    /// County held → unit held.
    PassOn { fen: i64 },
    /// Unit held → unit paid.
    Spend { fen: i64 },
    /// Two-phase: unit held → person paid, pending.
    PendingSpend { fen: i64 },
    /// Post or void an earlier entry: a pending one (possibly already resolved) unless `any`.
    Resolve { void: bool, pick: usize, any: bool },
    /// Reverse an earlier entry: a normal or posted one (possibly already reversed) unless `any`.
    Reverse { pick: usize, any: bool },
    /// Send an earlier key again, with the same content or with another memo.
    Repost { pick: usize, change: bool },
    /// An entry whose postings do not sum to zero.
    Unbalanced { fen: i64, off: i64 },
    /// A payment of more than the unit has available.
    Overdraft { extra: i64 },
    /// A post, void or reversal of a key that was never posted.
    UnknownReference { how: u8 },
    /// Another county's unit in 440511's books.
    OutOfScope,
}

#[derive(Clone, Debug)]
enum Step {
    One(Op),
    Batch { ops: Vec<Op>, all_or_nothing: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 1_i64..=100_000).prop_map(|(city, fen)| Op::Release { city, fen }),
        4 => (1_i64..=20_000).prop_map(|fen| Op::PassOn { fen }),
        2 => (1_i64..=5_000).prop_map(|fen| Op::Spend { fen }),
        4 => (1_i64..=5_000).prop_map(|fen| Op::PendingSpend { fen }),
        4 => (any::<bool>(), any::<usize>(), prop::bool::weighted(0.15))
            .prop_map(|(void, pick, any)| Op::Resolve { void, pick, any }),
        3 => (any::<usize>(), prop::bool::weighted(0.2))
            .prop_map(|(pick, any)| Op::Reverse { pick, any }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, change)| Op::Repost { pick, change }),
        1 => (1_i64..=1_000, 1_i64..=5).prop_map(|(fen, off)| Op::Unbalanced { fen, off }),
        1 => (1_i64..=100).prop_map(|extra| Op::Overdraft { extra }),
        1 => (0_u8..3).prop_map(|how| Op::UnknownReference { how }),
        1 => Just(Op::OutOfScope),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => op().prop_map(Step::One),
        1 => (prop::collection::vec(op(), 2..=4), any::<bool>())
            .prop_map(|(ops, all_or_nothing)| Step::Batch { ops, all_or_nothing }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

/// An account in 440511's MBDK books, `OWNER:kind`.
type Account = String;

#[derive(Clone, Debug)]
struct Stored {
    /// The entry exactly as it was sent (its content, for idempotency).
    sent: NewEntry,
    seq: i64,
    /// The postings it stands for: its own, the pending entry's for a post, negated for a reversal.
    postings: Vec<(Account, i64)>,
    /// Posted or voided by this key (pending entries).
    resolved_by: Option<String>,
    /// Reversed by this key (normal and posted entries).
    reversed_by: Option<String>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    /// Balance and reservation per account.
    balances: BTreeMap<Account, (i64, i64)>,
    entries: HashMap<String, Stored>,
    /// Keys in the order they were posted.
    order: Vec<String>,
    last_seq: i64,
    counts: BTreeMap<String, i64>,
}

/// What the model expects of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Posted(i64),
    Already(i64),
    /// Refused with this error code, found at this stage of the store's judgement
    /// (0 well-formed, 1 reference, 2 scope, 3 against the ledger's state).
    Refused {
        code: &'static str,
        stage: u8,
    },
}

fn refused(code: &'static str, stage: u8) -> Expect {
    Expect::Refused { code, stage }
}

fn account_name(owner: &str, kind: &str) -> Account {
    format!("{owner}:{kind}")
}

fn is_held(account: &str) -> bool {
    account.ends_with(":held")
}

impl Model {
    fn available(&self, account: &str) -> i64 {
        let (balance, reserved) = self.balances.get(account).copied().unwrap_or_default();
        balance - reserved
    }

    /// Judges and, when accepted, applies one entry, following the rules in the order the store
    /// states them: well-formed, reference found, owners in scope, idempotency, the referred entry
    /// still open, no overdraft.
    fn apply(&mut self, e: &NewEntry) -> Expect {
        // 0. Well-formed.
        let needs_ref = matches!(
            e.kind,
            EntryKind::Post | EntryKind::Void | EntryKind::Reversal
        );
        if needs_ref != e.refers_to.is_some() || (needs_ref && !e.postings.is_empty()) {
            return refused("E1003", 0);
        }
        let own: Vec<(Account, i64)> = e
            .postings
            .iter()
            .map(|p| {
                (
                    account_name(&p.account.owner, p.account.kind.code()),
                    p.amount.get(),
                )
            })
            .collect();
        if !needs_ref {
            if own.len() < 2 {
                return refused("E1005", 0);
            }
            if own.iter().any(|(_, fen)| *fen == 0) {
                return refused("E1007", 0);
            }
            for (i, (a, _)) in own.iter().enumerate() {
                if own[..i].iter().any(|(b, _)| a == b) {
                    return refused("E1008", 0);
                }
            }
            if own.iter().map(|(_, fen)| fen).sum::<i64>() != 0 {
                return refused("E1009", 0);
            }
        }
        // 1. The referred entry exists.
        let target = match &e.refers_to {
            Some(key) => match self.entries.get(key) {
                Some(t) => Some(t.clone()),
                None => return refused("E1018", 1),
            },
            None => None,
        };
        // 2. Every owner may hold an account in 440511's books.
        if own
            .iter()
            .any(|(a, _)| !IN_SCOPE.iter().any(|o| a.starts_with(&format!("{o}:"))))
        {
            return refused("E1015", 2);
        }
        // 3a. A key names one entry forever.
        if let Some(earlier) = self.entries.get(&e.key) {
            return if earlier.sent == *e {
                Expect::Already(earlier.seq)
            } else {
                refused("E1017", 3)
            };
        }
        // 3b. What a post, void or reversal acts on must still be open to it.
        if let Some(t) = &target {
            match e.kind {
                EntryKind::Post | EntryKind::Void => {
                    if t.sent.kind != EntryKind::Pending {
                        return refused("E1019", 3);
                    }
                    if t.resolved_by.is_some() {
                        return refused("E1020", 3);
                    }
                }
                _ => {
                    if !matches!(t.sent.kind, EntryKind::Normal | EntryKind::Post) {
                        return refused("E1019", 3);
                    }
                    if t.reversed_by.is_some() {
                        return refused("E1020", 3);
                    }
                }
            }
        }
        // 3c. The effect on balances and reservations, and the overdraft rule.
        let target_postings = target
            .as_ref()
            .map(|t| t.postings.clone())
            .unwrap_or_default();
        let mut changes: Vec<(Account, i64, i64)> = Vec::new();
        let stands_for: Vec<(Account, i64)> = match e.kind {
            EntryKind::Normal => {
                changes.extend(own.iter().map(|(a, fen)| (a.clone(), *fen, 0)));
                own.clone()
            }
            EntryKind::Pending => {
                for (a, fen) in &own {
                    if is_held(a) && *fen < 0 {
                        changes.push((a.clone(), 0, -fen));
                    }
                }
                own.clone()
            }
            EntryKind::Post | EntryKind::Void => {
                for (a, fen) in &target_postings {
                    if is_held(a) && *fen < 0 {
                        changes.push((a.clone(), 0, *fen));
                    }
                }
                if e.kind == EntryKind::Post {
                    changes.extend(target_postings.iter().map(|(a, fen)| (a.clone(), *fen, 0)));
                    target_postings.clone()
                } else {
                    Vec::new()
                }
            }
            EntryKind::Reversal => {
                let negated: Vec<(Account, i64)> = target_postings
                    .iter()
                    .map(|(a, fen)| (a.clone(), -fen))
                    .collect();
                changes.extend(negated.iter().map(|(a, fen)| (a.clone(), *fen, 0)));
                negated
            }
        };
        let mut next = self.balances.clone();
        for (a, balance, reserved) in &changes {
            let entry = next.entry(a.clone()).or_default();
            entry.0 += balance;
            entry.1 += reserved;
        }
        for (a, _, _) in &changes {
            let (balance, reserved) = next[a];
            if is_held(a) && (balance - reserved < 0 || reserved < 0) {
                return refused("E1016", 3);
            }
        }
        // Accepted.
        self.balances = next;
        self.last_seq += 1;
        if let Some(t) = &target {
            let t = self.entries.get_mut(&t.sent.key).expect("target");
            if e.kind == EntryKind::Reversal {
                t.reversed_by = Some(e.key.clone());
            } else {
                t.resolved_by = Some(e.key.clone());
            }
        }
        self.entries.insert(
            e.key.clone(),
            Stored {
                sent: e.clone(),
                seq: self.last_seq,
                postings: stands_for,
                resolved_by: None,
                reversed_by: None,
            },
        );
        self.order.push(e.key.clone());
        *self.counts.entry(e.kind.code().to_string()).or_default() += 1;
        Expect::Posted(self.last_seq)
    }

    /// The balances the store should list: every account with a balance or a reservation.
    fn listed(&self) -> BTreeMap<Account, (i64, i64)> {
        self.balances
            .iter()
            .filter(|(_, (b, r))| *b != 0 || *r != 0)
            .map(|(a, v)| (a.clone(), *v))
            .collect()
    }

    fn pick(&self, pick: usize, wanted: impl Fn(&Stored) -> bool) -> String {
        let candidates: Vec<&String> = self
            .order
            .iter()
            .filter(|k| wanted(&self.entries[*k]))
            .collect();
        let pool: Vec<&String> = if candidates.is_empty() {
            self.order.iter().collect()
        } else {
            candidates
        };
        if pool.is_empty() {
            "NEVER-POSTED".to_string()
        } else {
            pool[pick % pool.len()].clone()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Building entries
// ---------------------------------------------------------------------------------------------

fn normal(key: &str, to: &str, from: &str, fen: i64) -> NewEntry {
    NewEntry::normal(
        key,
        day("2025-03-01"),
        COUNTY,
        PROGRAM,
        "",
        vec![posting(to, fen), posting(from, -fen)],
    )
}

fn referring(key: &str, kind: EntryKind, target: String) -> NewEntry {
    NewEntry {
        key: key.into(),
        date: day("2025-03-05"),
        county: String::new(),
        program: String::new(),
        kind,
        memo: String::new(),
        postings: Vec::new(),
        refers_to: Some(target),
    }
}

/// Turns an operation into an entry, looking at the model for what it refers to.
fn build(op: &Op, model: &Model, key: &str) -> NewEntry {
    let person_paid = format!("{PERSON}:paid");
    let county_held = format!("{COUNTY}:held");
    match op {
        Op::Release { city, fen } => {
            let from = if *city {
                "440500:budget"
            } else {
                "440000:budget"
            };
            normal(key, &county_held, from, *fen)
        }
        Op::PassOn { fen } => normal(key, "U-A:held", &county_held, *fen),
        Op::Spend { fen } => normal(key, "U-A:paid", "U-A:held", *fen),
        Op::PendingSpend { fen } => normal(key, &person_paid, "U-A:held", *fen).pending(),
        Op::Resolve { void, pick, any } => {
            let target = model.pick(*pick, |s| *any || s.sent.kind == EntryKind::Pending);
            let kind = if *void {
                EntryKind::Void
            } else {
                EntryKind::Post
            };
            referring(key, kind, target)
        }
        Op::Reverse { pick, any } => {
            let target = model.pick(*pick, |s| {
                *any || matches!(s.sent.kind, EntryKind::Normal | EntryKind::Post)
            });
            referring(key, EntryKind::Reversal, target)
        }
        Op::Repost { pick, change } => {
            if model.order.is_empty() {
                return normal(key, &county_held, "440000:budget", 1);
            }
            let old = &model.order[pick % model.order.len()];
            let mut entry = model.entries[old].sent.clone();
            if *change {
                entry.memo.push_str("changed");
            }
            entry
        }
        Op::Unbalanced { fen, off } => {
            let mut entry = normal(key, &county_held, "440000:budget", *fen);
            entry.postings[0].amount = earmark::Fen(fen + off);
            entry
        }
        Op::Overdraft { extra } => {
            let fen = model.available("U-A:held").max(0) + extra;
            normal(key, "U-A:paid", "U-A:held", fen)
        }
        Op::UnknownReference { how } => {
            let kind = match how {
                0 => EntryKind::Post,
                1 => EntryKind::Void,
                _ => EntryKind::Reversal,
            };
            referring(key, kind, format!("NEVER-{key}"))
        }
        Op::OutOfScope => normal(key, "U-B:held", &county_held, 1),
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing the store with the model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Snapshot {
    balances: BTreeMap<Account, (i64, i64)>,
    counts: BTreeMap<String, i64>,
    postings: i64,
    head: i64,
}

async fn scalar(store: &Store, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .expect(sql)
        .try_get::<i64, _>(0)
        .expect(sql)
}

async fn snapshot(store: &Store) -> Snapshot {
    let mut balances = BTreeMap::new();
    for row in store
        .balances(&BalanceFilter::default())
        .await
        .expect("balances")
    {
        assert_eq!(
            (row.county_code.as_str(), row.program.as_str()),
            (COUNTY, PROGRAM),
            "an account outside 440511's MBDK books: {row:?}"
        );
        balances.insert(
            account_name(&row.owner, &row.kind),
            (row.balance.get(), row.reserved.get()),
        );
    }
    Snapshot {
        balances,
        counts: store
            .entry_counts()
            .await
            .expect("entry counts")
            .into_iter()
            .collect(),
        postings: scalar(store, "SELECT COUNT(*) FROM postings").await,
        head: scalar(
            store,
            "SELECT COALESCE(MAX(seq), 0) FROM chain_heads WHERE county_code = '440511'",
        )
        .await,
    }
}

fn matches_expect(outcome: &Outcome, expect: &Expect) -> bool {
    match (outcome, expect) {
        (Outcome::Posted { county, seq }, Expect::Posted(s)) => county == COUNTY && seq == s,
        (Outcome::AlreadyPosted { county, seq }, Expect::Already(s)) => {
            county == COUNTY && seq == s
        }
        (Outcome::Refused(error), Expect::Refused { code, .. }) => error.code() == *code,
        _ => false,
    }
}

/// The invariants, and the store equal to the model.
async fn check_invariants(store: &Store, model: &Model, context: &str) -> Snapshot {
    let now = snapshot(store).await;
    // 1. Conservation.
    let total = scalar(
        store,
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM postings",
    )
    .await;
    assert_eq!(total, 0, "{context}: all postings must sum to zero");
    let moved = scalar(
        store,
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM postings WHERE pending = 0",
    )
    .await;
    assert_eq!(moved, 0, "{context}: posted postings must sum to zero");
    assert_eq!(
        now.balances.values().map(|(b, _)| b).sum::<i64>(),
        0,
        "{context}: balances must sum to zero"
    );
    for (account, (balance, reserved)) in &now.balances {
        if is_held(account) {
            // 2. No held balance below zero.
            assert!(*balance >= 0, "{context}: {account} is {balance}");
            // 4. No overdraft.
            assert!(
                balance - reserved >= 0 && *reserved >= 0,
                "{context}: {account} has {balance} with {reserved} reserved"
            );
        } else {
            assert_eq!(*reserved, 0, "{context}: only held accounts reserve");
        }
    }
    // 3. Stored balances equal the postings.
    let report = store.check().await.expect("check");
    assert!(
        report.problems.is_empty(),
        "{context}: check found {:?}",
        report.problems
    );
    // 5. (and everything else) The store agrees with the model, reservations included.
    assert_eq!(now.balances, model.listed(), "{context}: balances");
    assert_eq!(now.counts, model.counts, "{context}: entries per kind");
    assert_eq!(now.head, model.last_seq, "{context}: chain head");
    now
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

async fn run_case(kind: Kind, steps: &[Step]) {
    let (store, _db) = common::ledger(kind).await;
    store
        .register_persons(&[PersonOwner {
            id_number: PERSON.into(),
            name: "王五".into(),
            county: COUNTY.into(),
        }])
        .await
        .expect("person");
    let mut model = Model::default();
    let mut next_key = 0_usize;
    let mut before = check_invariants(&store, &model, &format!("{kind:?} start")).await;
    for (n, step) in steps.iter().enumerate() {
        let (ops, mode) = match step {
            Step::One(op) => (std::slice::from_ref(op), BatchMode::AllOrNothing),
            Step::Batch {
                ops,
                all_or_nothing,
            } => (
                ops.as_slice(),
                if *all_or_nothing {
                    BatchMode::AllOrNothing
                } else {
                    BatchMode::SkipRefused
                },
            ),
        };
        // Build and judge the entries in order on a working copy of the model.
        let mut work = model.clone();
        let mut entries = Vec::with_capacity(ops.len());
        let mut expects = Vec::with_capacity(ops.len());
        for op in ops {
            next_key += 1;
            let entry = build(op, &work, &format!("K{next_key}"));
            expects.push(work.apply(&entry));
            entries.push(entry);
        }
        let context = format!("{kind:?} step {n} {mode:?} {entries:#?}\nexpected {expects:?}");
        // In AllOrNothing mode the first refusal of the earliest stage refuses the batch.
        let first_refusal = expects
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Expect::Refused { code, stage } => Some((*stage, i, *code)),
                _ => None,
            })
            .min();
        let result = store.post(&entries, mode).await;
        let anything_written = match (mode, first_refusal) {
            (BatchMode::AllOrNothing, Some((_, index, code))) => {
                match &result {
                    Err(StoreError::Refused { index: i, error }) => assert!(
                        *i == index && error.code() == code,
                        "{context}\nstore refused entry {i} with {error:?}"
                    ),
                    other => panic!("{context}\nstore answered {other:?}"),
                }
                false
            }
            _ => {
                let outcomes = match &result {
                    Ok(outcomes) => outcomes,
                    Err(error) => panic!("{context}\nstore failed: {error:?}"),
                };
                assert_eq!(outcomes.len(), expects.len(), "{context}");
                for (i, (outcome, expect)) in outcomes.iter().zip(&expects).enumerate() {
                    assert!(
                        matches_expect(outcome, expect),
                        "{context}\nentry {i}: store {outcome:?}, model {expect:?}"
                    );
                }
                model = work;
                expects.iter().any(|e| matches!(e, Expect::Posted(_)))
            }
        };
        let after = check_invariants(&store, &model, &context).await;
        // 6. A refused operation changed nothing.
        if !anything_written {
            assert_eq!(after, before, "{context}: a refusal changed the ledger");
        }
        before = after;
    }
    let verify = store.verify().await.expect("verify");
    assert!(
        verify.broken.is_empty(),
        "{kind:?}: verify found {:?}",
        verify.broken
    );
    assert_eq!(verify.entries, model.last_seq, "{kind:?}");
    store.close().await;
}

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    Config {
        cases,
        // Each case opens fresh databases: keep shrinking bounded, and write no regression files.
        max_shrink_iters: 100,
        max_shrink_time: 30_000,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_ledger_agrees_with_its_model_and_keeps_its_invariants(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        runtime.block_on(async {
            for kind in common::backends() {
                run_case(kind, &steps).await;
            }
        });
    }
}
