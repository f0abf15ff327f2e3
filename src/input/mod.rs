//! Reading users' files: text in UTF-8 or GBK (what Excel on a Chinese Windows writes), and the
//! posting file of `earmark post`.

pub mod postings;
pub mod table;

use std::path::Path;

/// How to read a text file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// UTF-8 (with or without BOM); otherwise GBK/GB18030 when the bytes are valid GBK.
    Auto,
    #[value(alias = "utf-8")]
    Utf8,
    Gbk,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: {reason}")]
    Encoding { file: String, reason: String },
    #[error("{file}: {message}")]
    Format { file: String, message: String },
    /// One or more rows break a rule: each line names file, row, column and rule.
    #[error("{}", .lines.join("\n"))]
    Rows { lines: Vec<String> },
}

/// What a file was read as, for the user to see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAs {
    Utf8,
    Gbk,
}

/// Reads a whole text file, decoding it as asked. A file that is neither valid UTF-8 nor valid GBK
/// is refused by name; it is never read with replacement characters.
pub fn read_text(path: &Path, encoding: Encoding) -> Result<(String, ReadAs), InputError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| InputError::Unreadable {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    decode(&bytes, encoding, &file)
}

pub fn decode(
    bytes: &[u8],
    encoding: Encoding,
    file: &str,
) -> Result<(String, ReadAs), InputError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let gbk = |bytes: &[u8]| {
        let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
        (!had_errors).then(|| text.into_owned())
    };
    match encoding {
        Encoding::Utf8 => match std::str::from_utf8(bytes) {
            Ok(text) => Ok((text.to_string(), ReadAs::Utf8)),
            Err(e) => Err(InputError::Encoding {
                file: file.to_string(),
                reason: format!(
                    "is not UTF-8 text (bad byte at offset {}); if Excel saved it as GBK, use --encoding gbk",
                    e.valid_up_to()
                ),
            }),
        },
        Encoding::Gbk => gbk(bytes)
            .map(|t| (t, ReadAs::Gbk))
            .ok_or_else(|| InputError::Encoding {
                file: file.to_string(),
                reason: "is not valid GBK/GB18030 text".into(),
            }),
        Encoding::Auto => match std::str::from_utf8(bytes) {
            Ok(text) => Ok((text.to_string(), ReadAs::Utf8)),
            Err(_) => gbk(bytes)
                .map(|t| (t, ReadAs::Gbk))
                .ok_or_else(|| InputError::Encoding {
                    file: file.to_string(),
                    reason: "is neither UTF-8 nor GBK text: save it from Excel as \"CSV UTF-8\""
                        .into(),
                }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_from_excel_is_read_correctly() {
        let (bytes, _, _) = encoding_rs::GBK.encode("账户,金额\n县财政,100.00\n");
        let (text, read_as) = decode(&bytes, Encoding::Auto, "x.csv").unwrap();
        assert_eq!(text, "账户,金额\n县财政,100.00\n");
        assert_eq!(read_as, ReadAs::Gbk);
    }

    #[test]
    fn gbk_is_refused_by_name_when_utf8_is_demanded() {
        let (bytes, _, _) = encoding_rs::GBK.encode("县财政");
        let err = decode(&bytes, Encoding::Utf8, "x.csv").unwrap_err();
        assert!(
            err.to_string().starts_with("x.csv: is not UTF-8 text"),
            "{err}"
        );
    }

    #[test]
    fn a_utf8_bom_is_dropped() {
        let (text, _) = decode(b"\xEF\xBB\xBFa,b", Encoding::Auto, "x.csv").unwrap();
        assert_eq!(text, "a,b");
    }

    #[test]
    fn binary_garbage_is_refused() {
        let err = decode(&[0xff, 0xfe, 0xff, 0x00, 0x81], Encoding::Auto, "x.csv").unwrap_err();
        assert!(err.to_string().contains("neither UTF-8 nor GBK"), "{err}");
    }
}
