//! Finds the TOML key path (`shares.rules[0].province`) at a byte offset, so serde's errors can name the key.
//!
//! serde reports a position, not a path; the spanned document tree maps the position back to the
//! deepest key or array element that covers it.

use toml::de::{DeTable, DeValue};

/// Deep enough for any definition; a deeper document is not a program file.
const DEPTH_MAX: usize = 16;

/// The key path covering byte `offset` of `text`, or `None` when the text does not parse or the offset is
/// outside every key (e.g. a missing top-level key).
pub(super) fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let document = DeTable::parse(text).ok()?;
    let mut path = String::new();
    walk_table(document.get_ref(), offset, &mut path, 0).then_some(path)
}

fn covers(span: &std::ops::Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

fn segment(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

/// A table written with a `[header]` has a span covering only its header, so children are searched even
/// when the table's own span does not cover the offset.
fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut String, depth: usize) -> bool {
    for (key, value) in table {
        let mark = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(&segment(key.get_ref()));
        if covers(&key.span(), offset) {
            return true;
        }
        if walk_value(value.get_ref(), offset, path, depth + 1) || covers(&value.span(), offset) {
            return true;
        }
        path.truncate(mark);
    }
    false
}

fn walk_value(value: &DeValue<'_>, offset: usize, path: &mut String, depth: usize) -> bool {
    if depth > DEPTH_MAX {
        return false;
    }
    match value {
        DeValue::Table(table) => walk_table(table, offset, path, depth),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let mark = path.len();
                path.push_str(&format!("[{i}]"));
                if walk_value(item.get_ref(), offset, path, depth + 1)
                    || covers(&item.span(), offset)
                {
                    return true;
                }
                path.truncate(mark);
            }
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> Option<String> {
        key_path_at(text, text.find(needle).expect("needle in text"))
    }

    #[test]
    fn names_keys_in_inline_and_header_tables() {
        let text = "code = \"A\"\n[shares]\ndefault = { province = 0, local = 100 }\n\n[[shares.rules]]\nregions = [\"440500\"]\nprovince = 50\n\n[[shares.rules]]\nregions = [\"440200\"]\nlokal = 50\n";
        assert_eq!(at(text, "code").as_deref(), Some("code"));
        assert_eq!(
            at(text, "local = 100").as_deref(),
            Some("shares.default.local")
        );
        assert_eq!(at(text, "lokal").as_deref(), Some("shares.rules[1].lokal"));
        assert_eq!(
            at(text, "\"440500\"").as_deref(),
            Some("shares.rules[0].regions[0]")
        );
        assert_eq!(
            at(text, "[[shares.rules]]\nregions = [\"440200").as_deref(),
            Some("shares.rules[1]")
        );
    }
}
