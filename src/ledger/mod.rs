//! The ledger's pure core: accounts, entries and the rules an entry must keep before it may be stored.
//!
//! Nothing here touches a database. The store (`crate::store`) asks these types whether an entry is
//! well formed, and applies the balance rules (`apply`) inside its posting transaction.

pub mod hash;

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;

use crate::money::Fen;

/// An entry may carry at most this many postings (TigerBeetle style: every collection has a limit).
/// A payout batch is one entry with a leg per line and the unit's, so this bounds a batch too.
pub const POSTINGS_PER_ENTRY_MAX: usize = 100_000;
/// Longest idempotency key, memo and owner code we accept, in characters.
pub const KEY_CHARS_MAX: usize = 200;
/// The largest amount one posting may carry: 1,000亿元 (10^13 fen). No subsidy movement comes near
/// it, and it keeps every sum a report takes over a province's postings far inside i64.
pub const POSTING_FEN_MAX: i64 = 10_000_000_000_000;
pub const MEMO_CHARS_MAX: usize = 500;
pub const OWNER_CHARS_MAX: usize = 40;

/// What an account holds. Debits are positive, credits negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A level's appropriation for one county's flow (a source: its balance runs negative as it releases).
    Budget,
    /// Funds on hand at a finance department or a disbursing unit. Never negative.
    Held,
    /// Owed to a person: entitlement accrued and not yet paid.
    Payable,
    /// Paid out to a person's account.
    Paid,
    /// Owed back by a person (追回).
    Receivable,
    /// Returned upward (结余退回).
    Returned,
}

impl AccountKind {
    pub const ALL: [AccountKind; 6] = [
        AccountKind::Budget,
        AccountKind::Held,
        AccountKind::Payable,
        AccountKind::Paid,
        AccountKind::Receivable,
        AccountKind::Returned,
    ];

    pub fn code(self) -> &'static str {
        match self {
            AccountKind::Budget => "budget",
            AccountKind::Held => "held",
            AccountKind::Payable => "payable",
            AccountKind::Paid => "paid",
            AccountKind::Receivable => "receivable",
            AccountKind::Returned => "returned",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            AccountKind::Budget => "预算指标",
            AccountKind::Held => "在途资金",
            AccountKind::Payable => "应付个人",
            AccountKind::Paid => "已发放",
            AccountKind::Receivable => "应追回",
            AccountKind::Returned => "已退回",
        }
    }

    pub fn parse(text: &str) -> Option<AccountKind> {
        AccountKind::ALL
            .into_iter()
            .find(|kind| kind.code() == text.trim().to_ascii_lowercase())
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One side of an account's identity inside a county's books: who owns it and what kind it is.
/// Written `OWNER:KIND` in files, e.g. `440000:budget`, `U440511001:held`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AccountRef {
    pub owner: String,
    pub kind: AccountKind,
}

impl AccountRef {
    pub fn new(owner: impl Into<String>, kind: AccountKind) -> AccountRef {
        AccountRef {
            owner: owner.into(),
            kind,
        }
    }

    /// Parses `OWNER:KIND`.
    pub fn parse(text: &str) -> Result<AccountRef, LedgerError> {
        let text = text.trim();
        let (owner, kind) = text
            .rsplit_once(':')
            .ok_or_else(|| LedgerError::BadAccount {
                account: text.to_string(),
                reason: "must be written OWNER:KIND, e.g. 440000:budget".into(),
            })?;
        let kind = AccountKind::parse(kind).ok_or_else(|| LedgerError::BadAccount {
            account: text.to_string(),
            reason: format!(
                "unknown account kind \"{kind}\" (one of budget, held, payable, paid, receivable, returned)"
            ),
        })?;
        let owner = owner.trim();
        if owner.is_empty()
            || owner.chars().count() > OWNER_CHARS_MAX
            || !owner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(LedgerError::BadAccount {
                account: text.to_string(),
                reason: format!("owner must be 1 to {OWNER_CHARS_MAX} letters, digits, '-' or '_'"),
            });
        }
        Ok(AccountRef::new(owner.to_ascii_uppercase(), kind))
    }
}

impl fmt::Display for AccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.owner, self.kind)
    }
}

/// An account's full key: the county whose books it is in, the program whose money it holds, and its ref.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AccountKey {
    pub county: String,
    pub program: String,
    pub owner: String,
    pub kind: AccountKind,
}

/// How an entry acts on balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Posted at once.
    Normal,
    /// Two-phase, first phase: its credits to `held` are reserved, nothing moves yet.
    Pending,
    /// Second phase: the pending entry it resolves takes effect, with the same postings.
    Post,
    /// Second phase: the pending entry it resolves is cancelled and its reservation released.
    Void,
    /// A correction: the negation of the entry it reverses.
    Reversal,
}

impl EntryKind {
    pub fn code(self) -> &'static str {
        match self {
            EntryKind::Normal => "normal",
            EntryKind::Pending => "pending",
            EntryKind::Post => "post",
            EntryKind::Void => "void",
            EntryKind::Reversal => "reversal",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        [
            EntryKind::Normal,
            EntryKind::Pending,
            EntryKind::Post,
            EntryKind::Void,
            EntryKind::Reversal,
        ]
        .into_iter()
        .find(|k| k.code() == text)
    }

    /// Whether this entry's own postings move balances (a pending entry's only reserve).
    pub fn moves_balances(self) -> bool {
        matches!(
            self,
            EntryKind::Normal | EntryKind::Post | EntryKind::Reversal
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Posting {
    pub account: AccountRef,
    pub amount: Fen,
}

/// An entry as a caller proposes it. Only `validate` decides whether it is well formed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewEntry {
    /// Idempotency key: the document number, the bank batch and line, the file's hash and row.
    pub key: String,
    pub date: NaiveDate,
    pub county: String,
    pub program: String,
    pub kind: EntryKind,
    pub memo: String,
    pub postings: Vec<Posting>,
    /// For `Post`, `Void` and `Reversal`: the key of the entry this one acts on.
    pub refers_to: Option<String>,
}

impl NewEntry {
    pub fn normal(
        key: impl Into<String>,
        date: NaiveDate,
        county: impl Into<String>,
        program: impl Into<String>,
        memo: impl Into<String>,
        postings: Vec<Posting>,
    ) -> NewEntry {
        NewEntry {
            key: key.into(),
            date,
            county: county.into(),
            program: program.into(),
            kind: EntryKind::Normal,
            memo: memo.into(),
            postings,
            refers_to: None,
        }
    }

    pub fn pending(mut self) -> NewEntry {
        self.kind = EntryKind::Pending;
        self
    }

    /// Checks everything that can be known without the store: the rules of a well-formed entry.
    /// Errors are ordered by precedence: the first broken rule is the one reported.
    pub fn validate(&self) -> Result<(), LedgerError> {
        let key = self.key.trim();
        if key.is_empty()
            || key != self.key
            || key.chars().count() > KEY_CHARS_MAX
            || key.chars().any(char::is_control)
        {
            return Err(LedgerError::BadKey {
                key: self.key.clone(),
            });
        }
        if self.memo.chars().count() > MEMO_CHARS_MAX || self.memo.chars().any(char::is_control) {
            return Err(LedgerError::MemoTooLong {
                key: self.key.clone(),
            });
        }
        let needs_ref = matches!(
            self.kind,
            EntryKind::Post | EntryKind::Void | EntryKind::Reversal
        );
        if needs_ref != self.refers_to.is_some() {
            return Err(LedgerError::BadReference {
                key: self.key.clone(),
            });
        }
        if needs_ref {
            // The store copies (post) or negates (reversal) the referred entry's postings itself.
            if !self.postings.is_empty() {
                return Err(LedgerError::BadReference {
                    key: self.key.clone(),
                });
            }
            return Ok(());
        }
        if self.postings.len() < 2 {
            return Err(LedgerError::TooFewPostings {
                key: self.key.clone(),
                count: self.postings.len(),
            });
        }
        if self.postings.len() > POSTINGS_PER_ENTRY_MAX {
            return Err(LedgerError::TooManyPostings {
                key: self.key.clone(),
                count: self.postings.len(),
            });
        }
        let mut sum = Fen::ZERO;
        let mut seen: HashMap<&AccountRef, ()> = HashMap::with_capacity(self.postings.len());
        for posting in &self.postings {
            if posting.amount.is_zero() {
                return Err(LedgerError::ZeroPosting {
                    key: self.key.clone(),
                    account: posting.account.to_string(),
                });
            }
            if posting.amount.get().unsigned_abs() > POSTING_FEN_MAX.unsigned_abs() {
                return Err(LedgerError::TooLarge {
                    key: self.key.clone(),
                    account: posting.account.to_string(),
                    amount: posting.amount,
                });
            }
            if seen.insert(&posting.account, ()).is_some() {
                return Err(LedgerError::DuplicateAccount {
                    key: self.key.clone(),
                    account: posting.account.to_string(),
                });
            }
            sum = sum
                .checked_add(posting.amount)
                .ok_or_else(|| LedgerError::Overflow {
                    key: self.key.clone(),
                })?;
        }
        if !sum.is_zero() {
            return Err(LedgerError::Unbalanced {
                key: self.key.clone(),
                sum,
            });
        }
        Ok(())
    }
}

/// A stored account balance: `balance` counts posted entries; `reserved` is what pending entries
/// will take out of it (only `held` accounts reserve). Available = balance − reserved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub balance: Fen,
    pub reserved: Fen,
}

impl Balance {
    pub fn available(self) -> Option<Fen> {
        self.balance.checked_sub(self.reserved)
    }
}

/// Applies one entry's effect to the balances it touches, refusing an overdraft of `held`.
/// Accounts are named by any key `K` (the store uses account ids); `describe` names one for errors.
/// `pending_postings` are the postings of the pending entry that a `Post`/`Void` resolves.
/// On error nothing in `balances` has changed. Returns the accounts whose balance or reservation it
/// changed (a pending entry's credits change nothing until it is posted).
pub fn apply<K: Clone + Eq + std::hash::Hash>(
    kind: EntryKind,
    postings: &[(K, AccountKind, Fen)],
    pending_postings: &[(K, AccountKind, Fen)],
    balances: &mut HashMap<K, Balance>,
    entry_key: &str,
    describe: &dyn Fn(&K) -> String,
) -> Result<Vec<K>, LedgerError> {
    let overflow = || LedgerError::Overflow {
        key: entry_key.to_string(),
    };
    // Stage every change first, so that a refusal leaves `balances` untouched.
    let mut next: Vec<(K, AccountKind, Balance)> = Vec::with_capacity(postings.len());
    // Where each staged account is in `next` (a payout batch's entry has a leg per line).
    let mut staged: HashMap<K, usize> = HashMap::with_capacity(postings.len());
    let mut stage = |account: &K,
                     account_kind: AccountKind,
                     balance_change: Fen,
                     reserved_change: Fen|
     -> Result<(), LedgerError> {
        let position = staged.get(account).copied();
        let current = match position {
            Some(p) => next[p].2,
            None => balances.get(account).copied().unwrap_or_default(),
        };
        let updated = Balance {
            balance: current
                .balance
                .checked_add(balance_change)
                .ok_or_else(overflow)?,
            reserved: current
                .reserved
                .checked_add(reserved_change)
                .ok_or_else(overflow)?,
        };
        match position {
            Some(p) => next[p].2 = updated,
            None => {
                staged.insert(account.clone(), next.len());
                next.push((account.clone(), account_kind, updated));
            }
        }
        Ok(())
    };
    // A resolved pending entry releases what it reserved: its credits to `held`.
    if matches!(kind, EntryKind::Post | EntryKind::Void) {
        for (account, account_kind, amount) in pending_postings {
            if *account_kind == AccountKind::Held && amount.is_negative() {
                stage(account, *account_kind, Fen::ZERO, *amount)?;
            }
        }
    }
    for (account, account_kind, amount) in postings {
        if kind.moves_balances() {
            stage(account, *account_kind, *amount, Fen::ZERO)?;
        } else if kind == EntryKind::Pending
            && *account_kind == AccountKind::Held
            && amount.is_negative()
        {
            let reserve = amount.checked_neg().ok_or_else(overflow)?;
            stage(account, *account_kind, Fen::ZERO, reserve)?;
        }
    }
    for (account, account_kind, balance) in &next {
        if *account_kind != AccountKind::Held {
            continue;
        }
        let available = balance.available().ok_or_else(overflow)?;
        if available.is_negative() || balance.reserved.is_negative() {
            let before = balances
                .get(account)
                .copied()
                .unwrap_or_default()
                .available()
                .unwrap_or(Fen::ZERO);
            return Err(LedgerError::Overdraft {
                key: entry_key.to_string(),
                account: describe(account),
                available: before,
                needed: before.checked_sub(available).unwrap_or(Fen::ZERO),
            });
        }
    }
    let mut changed = Vec::with_capacity(next.len());
    for (account, _, balance) in next {
        balances.insert(account.clone(), balance);
        changed.push(account);
    }
    Ok(changed)
}

/// Every way the ledger refuses an entry, most fundamental first. Each names the entry's key.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LedgerError {
    #[error(
        "entry key \"{key}\" is empty, longer than {KEY_CHARS_MAX} characters, padded with spaces or holds control characters"
    )]
    BadKey { key: String },
    #[error(
        "entry \"{key}\": memo is longer than {MEMO_CHARS_MAX} characters or holds control characters"
    )]
    MemoTooLong { key: String },
    #[error(
        "entry \"{key}\": post, void and reversal entries name one earlier entry and bring no postings of their own; other entries name none"
    )]
    BadReference { key: String },
    #[error("account \"{account}\": {reason}")]
    BadAccount { account: String, reason: String },
    #[error("entry \"{key}\" has {count} posting(s): an entry needs at least two")]
    TooFewPostings { key: String, count: usize },
    #[error("entry \"{key}\" has {count} postings: at most {POSTINGS_PER_ENTRY_MAX} are allowed")]
    TooManyPostings { key: String, count: usize },
    #[error("entry \"{key}\": posting to {account} is zero")]
    ZeroPosting { key: String, account: String },
    #[error("entry \"{key}\": account {account} appears twice")]
    DuplicateAccount { key: String, account: String },
    #[error("entry \"{key}\" does not balance: its postings sum to {sum}, they must sum to 0.00")]
    Unbalanced { key: String, sum: Fen },
    #[error(
        "entry \"{key}\" mixes programs {first} and {second}: 专款专用, one entry moves one program's money"
    )]
    TwoPrograms {
        key: String,
        first: String,
        second: String,
    },
    #[error(
        "entry \"{key}\" touches counties {first} and {second}: an entry stays inside one county's books"
    )]
    TwoCounties {
        key: String,
        first: String,
        second: String,
    },
    #[error("entry \"{key}\": amounts overflow")]
    Overflow { key: String },
    #[error(
        "entry \"{key}\": {amount} on {account} is over the most one posting may carry (100,000,000,000.00)"
    )]
    TooLarge {
        key: String,
        account: String,
        amount: Fen,
    },
    #[error("entry \"{key}\": unknown program \"{program}\"")]
    UnknownProgram { key: String, program: String },
    #[error(
        "entry \"{key}\": \"{county}\" is not a county (or a city without districts) in the region table"
    )]
    UnknownCounty { key: String, county: String },
    #[error("entry \"{key}\": account {account} is not open in county {county}: {reason}")]
    UnknownAccount {
        key: String,
        account: String,
        county: String,
        reason: String,
    },
    #[error(
        "entry \"{key}\" would overdraw {account}: available {available}, the entry needs {needed}"
    )]
    Overdraft {
        key: String,
        account: String,
        available: Fen,
        needed: Fen,
    },
    #[error(
        "entry \"{key}\" was already posted with different content: a key names one entry forever"
    )]
    ExistsWithDifferentContent { key: String },
    #[error("entry \"{key}\" refers to \"{target}\", which does not exist")]
    ReferenceNotFound { key: String, target: String },
    #[error("entry \"{key}\": \"{target}\" {reason}")]
    ReferenceInvalid {
        key: String,
        target: String,
        reason: String,
    },
    #[error("entry \"{key}\": \"{target}\" was already {how} by entry \"{by}\"")]
    AlreadyResolved {
        key: String,
        target: String,
        how: String,
        by: String,
    },
}

impl LedgerError {
    /// A stable code per rule, for scripts and for the API.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::BadKey { .. } => "E1001",
            LedgerError::MemoTooLong { .. } => "E1002",
            LedgerError::BadReference { .. } => "E1003",
            LedgerError::BadAccount { .. } => "E1004",
            LedgerError::TooFewPostings { .. } => "E1005",
            LedgerError::TooManyPostings { .. } => "E1006",
            LedgerError::ZeroPosting { .. } => "E1007",
            LedgerError::DuplicateAccount { .. } => "E1008",
            LedgerError::Unbalanced { .. } => "E1009",
            LedgerError::TwoPrograms { .. } => "E1010",
            LedgerError::TwoCounties { .. } => "E1011",
            LedgerError::Overflow { .. } => "E1012",
            LedgerError::UnknownProgram { .. } => "E1013",
            LedgerError::UnknownCounty { .. } => "E1014",
            LedgerError::UnknownAccount { .. } => "E1015",
            LedgerError::Overdraft { .. } => "E1016",
            LedgerError::ExistsWithDifferentContent { .. } => "E1017",
            LedgerError::ReferenceNotFound { .. } => "E1018",
            LedgerError::ReferenceInvalid { .. } => "E1019",
            LedgerError::AlreadyResolved { .. } => "E1020",
            LedgerError::TooLarge { .. } => "E1021",
        }
    }

    /// The entry key the error is about, where it has one.
    pub fn entry_key(&self) -> Option<&str> {
        match self {
            LedgerError::BadAccount { .. } => None,
            LedgerError::BadKey { key }
            | LedgerError::MemoTooLong { key }
            | LedgerError::BadReference { key }
            | LedgerError::TooFewPostings { key, .. }
            | LedgerError::TooManyPostings { key, .. }
            | LedgerError::ZeroPosting { key, .. }
            | LedgerError::DuplicateAccount { key, .. }
            | LedgerError::Unbalanced { key, .. }
            | LedgerError::TwoPrograms { key, .. }
            | LedgerError::TwoCounties { key, .. }
            | LedgerError::Overflow { key }
            | LedgerError::TooLarge { key, .. }
            | LedgerError::UnknownProgram { key, .. }
            | LedgerError::UnknownCounty { key, .. }
            | LedgerError::UnknownAccount { key, .. }
            | LedgerError::Overdraft { key, .. }
            | LedgerError::ExistsWithDifferentContent { key }
            | LedgerError::ReferenceNotFound { key, .. }
            | LedgerError::ReferenceInvalid { key, .. }
            | LedgerError::AlreadyResolved { key, .. } => Some(key),
        }
    }
}
