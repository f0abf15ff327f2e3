//! Canonical forms and SHA-256 hashes: an entry's content hash (for idempotency) and each county's
//! hash chain (for tamper evidence).
//!
//! The canonical form is versioned and field-separated by the ASCII unit separator (0x1F), a byte
//! that cannot occur in any validated field, so two different entries never share a form.

use sha2::{Digest, Sha256};

use super::AccountKind;
use crate::money::Fen;

pub type Hash = [u8; 32];

/// The hash that precedes a county's first entry.
pub const GENESIS: Hash = [0u8; 32];

const SEPARATOR: &[u8] = &[0x1F];

/// The fields of an entry that its content hash covers: everything a caller chose.
pub struct EntryContent<'a> {
    pub key: &'a str,
    pub date: &'a str,
    pub county: &'a str,
    pub program: &'a str,
    pub kind: &'a str,
    pub refers_seq: Option<i64>,
    pub memo: &'a str,
    pub postings: &'a [(&'a str, AccountKind, Fen)],
}

pub fn content_hash(content: &EntryContent<'_>) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(b"earmark-entry-v1");
    for field in [
        content.key,
        content.date,
        content.county,
        content.program,
        content.kind,
    ] {
        hasher.update(SEPARATOR);
        hasher.update(field.as_bytes());
    }
    hasher.update(SEPARATOR);
    if let Some(seq) = content.refers_seq {
        hasher.update(seq.to_string().as_bytes());
    }
    hasher.update(SEPARATOR);
    hasher.update(content.memo.as_bytes());
    for (owner, kind, amount) in content.postings {
        hasher.update(SEPARATOR);
        hasher.update(owner.as_bytes());
        hasher.update(b":");
        hasher.update(kind.code().as_bytes());
        hasher.update(b"=");
        hasher.update(amount.get().to_string().as_bytes());
    }
    hasher.finalize().into()
}

/// Links an entry into its county's chain: H(previous hash, sequence number, time stored, content).
pub fn chain_hash(previous: &Hash, seq: i64, created_at: &str, content: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(b"earmark-chain-v1");
    hasher.update(previous);
    hasher.update(seq.to_be_bytes());
    hasher.update(created_at.as_bytes());
    hasher.update(SEPARATOR);
    hasher.update(content);
    hasher.finalize().into()
}

pub fn to_hex(hash: &[u8]) -> String {
    use std::fmt::Write;
    hash.iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Reads a hash written by [`to_hex`] (or a database's hex of the stored bytes); anything else is
/// treated as damage, not a panic.
pub fn from_hex(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Reads a hash stored as bytes; anything of the wrong length is treated as damage, not a panic.
pub fn from_bytes(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_reads_back_from_its_hex_and_damage_is_refused() {
        let h = chain_hash(&[7; 32], 3, "2025-01-01T00:00:00Z", &[9; 32]);
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(from_hex(&to_hex(&h).to_uppercase()), Some(h));
        assert_eq!(from_hex(&to_hex(&h)[..62]), None);
        assert_eq!(from_hex(&format!("zz{}", &to_hex(&h)[2..])), None);
    }

    fn content<'a>(postings: &'a [(&'a str, AccountKind, Fen)], memo: &'a str) -> EntryContent<'a> {
        EntryContent {
            key: "R-1",
            date: "2025-01-15",
            county: "440511",
            program: "MBDK",
            kind: "normal",
            refers_seq: None,
            memo,
            postings,
        }
    }

    #[test]
    fn any_changed_amount_changes_the_content_hash() {
        let a = [
            ("440511", AccountKind::Held, Fen(100)),
            ("440000", AccountKind::Budget, Fen(-100)),
        ];
        let b = [
            ("440511", AccountKind::Held, Fen(101)),
            ("440000", AccountKind::Budget, Fen(-101)),
        ];
        assert_ne!(
            content_hash(&content(&a, "")),
            content_hash(&content(&b, ""))
        );
        assert_eq!(
            content_hash(&content(&a, "")),
            content_hash(&content(&a, ""))
        );
    }

    #[test]
    fn memo_cannot_pose_as_a_posting() {
        let a = [("440511", AccountKind::Held, Fen(100))];
        let with_memo = content_hash(&content(&[], "440511:held=100"));
        assert_ne!(with_memo, content_hash(&content(&a, "")));
    }

    #[test]
    fn chain_depends_on_previous_hash() {
        let c = [7u8; 32];
        assert_ne!(
            chain_hash(&GENESIS, 1, "t", &c),
            chain_hash(&[1u8; 32], 1, "t", &c)
        );
        assert_eq!(to_hex(&[0xab, 0x01]), "ab01");
    }
}
