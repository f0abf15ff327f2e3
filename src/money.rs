//! Money for the ledger: amounts held as whole fen (分, 0.01 CNY), strict parsing of typed amounts, exact formatting, and a largest-remainder split whose parts always add back up to the total.
//!
//! Every amount is an integer number of fen so that sums are exact; decimal
//! values only appear at the edges (parsing, display, proportional splits), and
//! there they are handled with `rust_decimal` or integer arithmetic, never with
//! binary floating point.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;
use std::str::FromStr;

/// Fen per yuan; the fen is the smallest unit the ledger records.
const FEN_PER_YUAN: u64 = 100;

/// An amount in fen (分, 0.01 CNY).
///
/// Arithmetic is only offered in checked form: an overflow in a ledger is a
/// bug or a bad input, never something to wrap around silently.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// An amount of `fen` fen (not yuan).
    pub const fn new(fen: i64) -> Fen {
        Fen(fen)
    }

    /// The amount as a number of fen.
    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// `None` only for `i64::MIN` fen, whose negation does not fit.
    pub fn checked_neg(self) -> Option<Fen> {
        self.0.checked_neg().map(Fen)
    }

    /// Multiplies by a whole count (e.g. students × per-student amount).
    pub fn checked_mul(self, factor: i64) -> Option<Fen> {
        self.0.checked_mul(factor).map(Fen)
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The amount in yuan as a `Decimal` with exactly two decimal places.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 2)
    }

    /// Converts an amount in yuan to fen without any rounding.
    ///
    /// Refuses a value with a non-zero third (or later) decimal place, because
    /// silently dropping part of a fen would make the books disagree with the
    /// source document; use [`Fen::from_decimal_rounded`] when rounding is
    /// really intended.
    pub fn from_decimal(d: Decimal) -> Result<Fen, MoneyError> {
        // normalize() strips trailing zeros, so 12.340 counts as 12.34 here:
        // a Decimal has no "typed text", only a value.
        if d.normalize().scale() > 2 {
            return Err(MoneyError::TooManyDecimals {
                input: d.to_string(),
            });
        }
        decimal_yuan_to_fen(d, RoundingStrategy::ToZero)
    }

    /// Converts an amount in yuan to fen, rounding to the fen with an explicit
    /// `strategy` (e.g. `MidpointNearestEven` for banker's rounding).
    pub fn from_decimal_rounded(d: Decimal, strategy: RoundingStrategy) -> Result<Fen, MoneyError> {
        decimal_yuan_to_fen(d, strategy)
    }

    /// The amount in yuan with thousands separators, e.g. `1,234,567.89`.
    pub fn grouped(self) -> String {
        let abs = self.0.unsigned_abs();
        let yuan = (abs / FEN_PER_YUAN).to_string();
        let mut out = String::with_capacity(yuan.len() + yuan.len() / 3 + 4);
        if self.0 < 0 {
            out.push('-');
        }
        for (i, ch) in yuan.chars().enumerate() {
            if i > 0 && (yuan.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out.push('.');
        out.push_str(&format!("{:02}", abs % FEN_PER_YUAN));
        out
    }
}

fn decimal_yuan_to_fen(d: Decimal, strategy: RoundingStrategy) -> Result<Fen, MoneyError> {
    let overflow = || MoneyError::Overflow {
        input: d.to_string(),
    };
    let fen = d
        .checked_mul(Decimal::ONE_HUNDRED)
        .ok_or_else(overflow)?
        .round_dp_with_strategy(0, strategy);
    fen.to_i64().map(Fen).ok_or_else(overflow)
}

/// Plain yuan with exactly two decimals and no grouping: `1234.56`, `-0.05`,
/// `0.00`. This is the form written to CSV files, so it must round-trip
/// through [`parse_amount`]. Honours width/alignment flags for tables.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // unsigned_abs keeps i64::MIN printable.
        let abs = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        let text = format!("{sign}{}.{:02}", abs / FEN_PER_YUAN, abs % FEN_PER_YUAN);
        f.pad(&text)
    }
}

/// Accepts any amount [`parse_amount`] accepts, with any sign.
impl FromStr for Fen {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Fen, MoneyError> {
        parse_amount(s, SignRule::Any)
    }
}

/// Which signs an amount may have where it is being entered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SignRule {
    /// Negative, zero and positive amounts are all fine (e.g. adjustments).
    #[default]
    Any,
    /// Zero or more; a minus sign is refused even on zero.
    NonNegative,
    /// Strictly more than zero (e.g. a payment).
    Positive,
}

impl fmt::Display for SignRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignRule::Any => "any amount",
            SignRule::NonNegative => "zero or more, without a minus sign",
            SignRule::Positive => "greater than zero",
        })
    }
}

/// Why an amount was refused. Messages quote the raw input so the user can
/// find the offending cell.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum MoneyError {
    #[error("amount is empty: enter a number of yuan such as 1234.56")]
    Empty,
    #[error("amount {input:?} is not a valid amount: {reason}")]
    Malformed { input: String, reason: &'static str },
    #[error(
        "amount {input:?} has more than two decimal places: the fen (0.01) is the smallest unit"
    )]
    TooManyDecimals { input: String },
    #[error(
        "amount {input:?} is outside the range the ledger can hold (about ±92 quadrillion yuan)"
    )]
    Overflow { input: String },
    #[error("amount {input:?} is not allowed here: it must be {rule}")]
    SignNotAllowed { input: String, rule: SignRule },
    #[error("cannot split an amount by these weights: {reason}")]
    BadWeights { reason: String },
}

/// Parses an amount of yuan as people type it, into fen.
///
/// Accepted: surrounding whitespace; `1234.56`, `1234.5`, `1234`; comma
/// thousands separators in proper groups of three (`1,234.56`); one leading
/// `+` or `-`; a leading `¥` or `￥` either after or before the sign
/// (`-¥5.00`, `¥-5.00`); a trailing `元`.
///
/// Refused: `.5` and `5.` (ambiguous in handwriting and OCR), a third decimal
/// place even if it is zero (`12.340` suggests a unit error upstream), badly
/// grouped commas, spaces or any other character inside, amounts that do not
/// fit in `i64` fen, and signs forbidden by `sign`.
pub fn parse_amount(input: &str, sign: SignRule) -> Result<Fen, MoneyError> {
    let malformed = |reason: &'static str| MoneyError::Malformed {
        input: input.to_owned(),
        reason,
    };
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(MoneyError::Empty);
    }
    let mut rest = trimmed.strip_suffix('元').unwrap_or(trimmed);

    // One sign at most, either side of the currency mark.
    let mut negative = false;
    let sign_before_currency = take_sign(&mut rest, &mut negative);
    if let Some(after) = rest.strip_prefix(['¥', '￥']) {
        rest = after;
        if !sign_before_currency {
            take_sign(&mut rest, &mut negative);
        }
    }

    if rest.is_empty() {
        return Err(malformed("it contains no digits"));
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(malformed("spaces are not allowed inside an amount"));
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        return Err(malformed(
            "only digits, one decimal point, thousands commas, a leading sign or ¥ and a trailing 元 are allowed",
        ));
    }

    let (int_part, frac_part) = match rest.split_once('.') {
        Some((int_part, frac)) => (int_part, Some(frac)),
        None => (rest, None),
    };
    if int_part.is_empty() {
        return Err(malformed(
            "there must be a digit before the decimal point (write 0.5, not .5)",
        ));
    }
    if let Some(frac) = frac_part {
        if frac.contains(['.', ',']) {
            return Err(malformed(
                "it has more than one decimal point or a comma after the decimal point",
            ));
        }
        if frac.is_empty() {
            return Err(malformed(
                "there must be a digit after the decimal point (write 5 or 5.00, not 5.)",
            ));
        }
    }
    check_thousands_groups(int_part).map_err(malformed)?;
    let frac = frac_part.unwrap_or("");
    if frac.len() > 2 {
        return Err(MoneyError::TooManyDecimals {
            input: input.to_owned(),
        });
    }

    // i128 leaves room for i64::MIN fen, whose magnitude is one more than
    // i64::MAX; the final conversion catches anything beyond i64.
    let overflow = || MoneyError::Overflow {
        input: input.to_owned(),
    };
    let mut magnitude: i128 = 0;
    let padded_frac = [frac, &"00"[frac.len()..]].concat();
    for b in int_part
        .bytes()
        .filter(u8::is_ascii_digit)
        .chain(padded_frac.bytes())
    {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    let signed = if negative { -magnitude } else { magnitude };
    let fen = i64::try_from(signed).map_err(|_| overflow())?;

    let allowed = match sign {
        SignRule::Any => true,
        SignRule::NonNegative => !negative,
        SignRule::Positive => !negative && fen > 0,
    };
    if !allowed {
        return Err(MoneyError::SignNotAllowed {
            input: input.to_owned(),
            rule: sign,
        });
    }
    Ok(Fen(fen))
}

/// Consumes one leading `+` or `-`; returns whether there was one.
fn take_sign(rest: &mut &str, negative: &mut bool) -> bool {
    if let Some(after) = rest.strip_prefix('-') {
        *rest = after;
        *negative = true;
        true
    } else if let Some(after) = rest.strip_prefix('+') {
        *rest = after;
        true
    } else {
        false
    }
}

/// Commas are only trusted when they group digits exactly like thousands
/// separators; anything else (`1,23`, `12,,345`) may be a mistyped decimal
/// point, so it is refused rather than guessed.
fn check_thousands_groups(int_part: &str) -> Result<(), &'static str> {
    const BAD_GROUPS: &str = "thousands separators must separate groups of exactly three digits";
    let mut groups = int_part.split(',');
    let first = groups.next().unwrap_or("");
    if first.is_empty() || (int_part.contains(',') && first.len() > 3) {
        return Err(BAD_GROUPS);
    }
    if groups.any(|g| g.len() != 3) {
        return Err(BAD_GROUPS);
    }
    Ok(())
}

/// The most parts [`split_largest_remainder`] accepts; a split is for a few
/// levels of government or a handful of accounts, not bulk distribution.
pub const MAX_SPLIT_WEIGHTS: usize = 64;

/// Splits `total` in proportion to `weights` so that the parts always sum to
/// exactly `total` (the largest-remainder, or Hamilton, method).
///
/// Rule:
/// 1. The exact share of part *i* is `total × wᵢ / Σw`.
/// 2. Each part first gets its exact share rounded toward zero to the fen.
/// 3. The fen left over (fewer than the number of parts) are handed out one
///    each to the parts with the largest fractional remainders; equal
///    remainders go to the lower index. Callers list the higher level of
///    government first (province, city, county), so a tie favours the higher
///    level.
/// 4. A negative total is split as its absolute value and every part negated,
///    so a reversal mirrors the original split exactly.
///
/// Hence every part is within one fen of its exact share, and a zero weight
/// always receives zero. Weights must be non-negative, at least one positive,
/// and there may be at most [`MAX_SPLIT_WEIGHTS`]; otherwise
/// [`MoneyError::BadWeights`]. The computation is exact (256-bit integers),
/// whatever the scale of the weights.
pub fn split_largest_remainder(total: Fen, weights: &[Decimal]) -> Result<Vec<Fen>, MoneyError> {
    let bad = |reason: String| MoneyError::BadWeights { reason };
    if weights.is_empty() {
        return Err(bad("at least one weight is needed".to_owned()));
    }
    if weights.len() > MAX_SPLIT_WEIGHTS {
        return Err(bad(format!(
            "at most {MAX_SPLIT_WEIGHTS} weights are allowed, but {} were given",
            weights.len()
        )));
    }
    if let Some((i, w)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| w.is_sign_negative() && !w.is_zero())
    {
        return Err(bad(format!("weight {} is negative ({w})", i + 1)));
    }
    if weights.iter().all(Decimal::is_zero) {
        return Err(bad(
            "at least one weight must be greater than zero".to_owned()
        ));
    }

    // Bring every weight to a common scale so each becomes an exact integer.
    // The largest is < 2^96 × 10^28 < 2^190, the sum of 64 of them < 2^196,
    // and a product with |total| <= 2^63 stays < 2^253: all fit in U256.
    let normalized: Vec<Decimal> = weights.iter().map(Decimal::normalize).collect();
    let scale = normalized.iter().map(Decimal::scale).max().unwrap_or(0);
    let too_big = || bad("the weights are too large to split exactly".to_owned());
    let mut ints = Vec::with_capacity(normalized.len());
    for w in &normalized {
        let factor = 10u128.pow(scale - w.scale());
        let int = U256::from_u128(w.mantissa().unsigned_abs())
            .checked_mul_u128(factor)
            .ok_or_else(too_big)?;
        ints.push(int);
    }
    let sum = ints
        .iter()
        .try_fold(U256::ZERO, |acc, w| acc.checked_add(*w))
        .ok_or_else(too_big)?;

    let abs_total = u128::from(total.0.unsigned_abs());
    let mut floors: Vec<u128> = Vec::with_capacity(ints.len());
    let mut remainders: Vec<U256> = Vec::with_capacity(ints.len());
    // Fast path for the common case (whole-number weights such as 5:5 or 30:70): when the sum of
    // the weights fits in 64 bits, every product weight × |total| < 2^64 × 2^63 fits in u128, and
    // the split needs no 256-bit division (measured: the slow path was 60% of a province's
    // entitlement run).
    let small = sum.hi == 0 && sum.lo <= u128::from(u64::MAX);
    for w in &ints {
        if small {
            let product = w.lo * abs_total;
            floors.push(product / sum.lo);
            remainders.push(U256 {
                hi: 0,
                lo: product % sum.lo,
            });
            continue;
        }
        let product = w.checked_mul_u128(abs_total).ok_or_else(too_big)?;
        let (quotient, remainder) = product.div_rem(sum);
        // quotient <= abs_total because w <= sum, so it fits in the low half.
        floors.push(quotient.lo);
        remainders.push(remainder);
    }

    let handed_out: u128 = floors.iter().sum();
    let leftover = abs_total - handed_out;
    let mut order: Vec<usize> = (0..ints.len()).filter(|&i| !ints[i].is_zero()).collect();
    order.sort_by(|&a, &b| remainders[b].cmp(&remainders[a]).then(a.cmp(&b)));
    // leftover < number of non-zero remainders, so this never runs past them.
    for &i in order
        .iter()
        .take(usize::try_from(leftover).unwrap_or(usize::MAX))
    {
        floors[i] += 1;
    }

    floors
        .into_iter()
        .map(|part| {
            // part <= 2^63, so both the i128 and the negation are safe; the
            // i64 conversion only fails for +2^63, which no total can produce.
            let magnitude = i128::try_from(part).unwrap_or(i128::MAX);
            let signed = if total.0 < 0 { -magnitude } else { magnitude };
            i64::try_from(signed)
                .map(Fen)
                .map_err(|_| MoneyError::Overflow {
                    input: total.to_string(),
                })
        })
        .collect()
}

/// A minimal unsigned 256-bit integer, just enough for an exact split:
/// Decimal's 96-bit mantissas at a common scale times an i64 total exceed
/// u128, and pulling in a bignum crate for this alone is not worth it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct U256 {
    // Field order matters: the derived Ord compares `hi` first.
    hi: u128,
    lo: u128,
}

impl U256 {
    const ZERO: U256 = U256 { hi: 0, lo: 0 };

    fn from_u128(lo: u128) -> U256 {
        U256 { hi: 0, lo }
    }

    fn is_zero(self) -> bool {
        self.hi == 0 && self.lo == 0
    }

    fn checked_add(self, other: U256) -> Option<U256> {
        let (lo, carry) = self.lo.overflowing_add(other.lo);
        let hi = self
            .hi
            .checked_add(other.hi)?
            .checked_add(u128::from(carry))?;
        Some(U256 { hi, lo })
    }

    /// Assumes `self >= other`.
    fn sub(self, other: U256) -> U256 {
        let (lo, borrow) = self.lo.overflowing_sub(other.lo);
        let hi = self.hi - other.hi - u128::from(borrow);
        U256 { hi, lo }
    }

    /// Full 128 × 128 → 256-bit product.
    fn widening_mul(a: u128, b: u128) -> U256 {
        const MASK: u128 = u64::MAX as u128;
        let (a1, a0) = (a >> 64, a & MASK);
        let (b1, b0) = (b >> 64, b & MASK);
        let p00 = a0 * b0;
        let p01 = a0 * b1;
        let p10 = a1 * b0;
        let p11 = a1 * b1;
        // Middle column: at most three 64-bit values, cannot overflow u128.
        let mid = (p00 >> 64) + (p01 & MASK) + (p10 & MASK);
        let lo = (p00 & MASK) | (mid << 64);
        let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
        U256 { hi, lo }
    }

    fn checked_mul_u128(self, b: u128) -> Option<U256> {
        let low = U256::widening_mul(self.lo, b);
        let high = self.hi.checked_mul(b)?;
        Some(U256 {
            hi: low.hi.checked_add(high)?,
            lo: low.lo,
        })
    }

    fn bit(self, i: u32) -> bool {
        if i >= 128 {
            (self.hi >> (i - 128)) & 1 == 1
        } else {
            (self.lo >> i) & 1 == 1
        }
    }

    fn set_bit(&mut self, i: u32) {
        if i >= 128 {
            self.hi |= 1 << (i - 128);
        } else {
            self.lo |= 1 << i;
        }
    }

    fn shl1_with(self, low_bit: bool) -> U256 {
        U256 {
            hi: (self.hi << 1) | (self.lo >> 127),
            lo: (self.lo << 1) | u128::from(low_bit),
        }
    }

    /// Schoolbook binary long division. The remainder stays below `d`, and
    /// callers only divide by values < 2^255, so the shift never loses a bit.
    fn div_rem(self, d: U256) -> (U256, U256) {
        let mut q = U256::ZERO;
        let mut r = U256::ZERO;
        for i in (0..256).rev() {
            r = r.shl1_with(self.bit(i));
            if r >= d {
                r = r.sub(d);
                q.set_bit(i);
            }
        }
        (q, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fen(s: &str) -> Fen {
        s.parse().expect("test amount parses")
    }

    fn dec(n: i64) -> Decimal {
        Decimal::from(n)
    }

    fn split(total: &str, weights: &[i64]) -> Vec<String> {
        let ws: Vec<Decimal> = weights.iter().map(|&w| dec(w)).collect();
        split_largest_remainder(fen(total), &ws)
            .expect("valid split")
            .iter()
            .map(Fen::to_string)
            .collect()
    }

    #[test]
    fn display_is_plain_yuan_with_two_decimals() {
        assert_eq!(Fen(123_456).to_string(), "1234.56");
        assert_eq!(Fen(-5).to_string(), "-0.05");
        assert_eq!(Fen(0).to_string(), "0.00");
        assert_eq!(Fen(7).to_string(), "0.07");
        assert_eq!(Fen(100).to_string(), "1.00");
        assert_eq!(Fen(i64::MIN).to_string(), "-92233720368547758.08");
        assert_eq!(Fen(i64::MAX).to_string(), "92233720368547758.07");
        assert_eq!(format!("{:>8}", Fen(5)), "    0.05");
    }

    #[test]
    fn grouped_display_separates_thousands() {
        assert_eq!(Fen(123_456_789).grouped(), "1,234,567.89");
        assert_eq!(Fen(-5).grouped(), "-0.05");
        assert_eq!(Fen(99_999).grouped(), "999.99");
        assert_eq!(Fen(100_000).grouped(), "1,000.00");
        assert_eq!(Fen(i64::MIN).grouped(), "-92,233,720,368,547,758.08");
    }

    #[test]
    fn display_round_trips_through_parse() {
        for v in [0, 1, -1, 99, -100, 123_456, i64::MAX, i64::MIN] {
            assert_eq!(fen(&Fen(v).to_string()), Fen(v));
            assert_eq!(fen(&Fen(v).grouped()), Fen(v));
        }
    }

    #[test]
    fn plain_amounts_with_zero_one_or_two_decimals_are_accepted() {
        assert_eq!(fen("1234.56"), Fen(123_456));
        assert_eq!(fen("1234.5"), Fen(123_450));
        assert_eq!(fen("1234"), Fen(123_400));
        assert_eq!(fen("0.01"), Fen(1));
        assert_eq!(fen("  42.00 \t"), Fen(4_200));
    }

    #[test]
    fn currency_marks_and_signs_are_accepted_in_either_order() {
        assert_eq!(fen("¥5.00"), Fen(500));
        assert_eq!(fen("￥5.00"), Fen(500));
        assert_eq!(fen("-¥5.00"), Fen(-500));
        assert_eq!(fen("¥-5.00"), Fen(-500));
        assert_eq!(fen("+5"), Fen(500));
        assert_eq!(fen("5.00元"), Fen(500));
        assert_eq!(fen("¥1,234.50元"), Fen(123_450));
    }

    #[test]
    fn comma_thousands_separators_must_form_groups_of_three() {
        assert_eq!(fen("1,234.56"), Fen(123_456));
        assert_eq!(fen("12,345,678"), Fen(1_234_567_800));
        for bad in ["1,23.00", "12,,345", ",123", "1234,567", "1,2345", "1,"] {
            assert!(
                matches!(bad.parse::<Fen>(), Err(MoneyError::Malformed { .. })),
                "{bad} should be malformed"
            );
        }
    }

    #[test]
    fn a_third_decimal_place_is_refused_because_the_fen_is_the_smallest_unit() {
        for input in ["12.345", "12.340", "0.001"] {
            assert_eq!(
                input.parse::<Fen>(),
                Err(MoneyError::TooManyDecimals {
                    input: input.to_owned()
                })
            );
        }
        assert_eq!(
            "12.345".parse::<Fen>().unwrap_err().to_string(),
            r#"amount "12.345" has more than two decimal places: the fen (0.01) is the smallest unit"#
        );
    }

    #[test]
    fn bare_decimal_points_and_stray_characters_are_malformed() {
        for bad in [
            ".5", "5.", "1.2.3", "12a", "1 234", "5 元", "--5", "+-5", "-¥-5", "¥", "-", "1e5",
            "５", "0x10", "1_000",
        ] {
            let err = bad.parse::<Fen>().unwrap_err();
            assert!(
                matches!(err, MoneyError::Malformed { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn empty_or_blank_input_is_refused_as_empty() {
        assert_eq!("".parse::<Fen>(), Err(MoneyError::Empty));
        assert_eq!("   ".parse::<Fen>(), Err(MoneyError::Empty));
    }

    #[test]
    fn amounts_beyond_i64_fen_are_refused_as_overflow() {
        assert_eq!(fen("-92233720368547758.08"), Fen(i64::MIN));
        assert_eq!(fen("92233720368547758.07"), Fen(i64::MAX));
        for bad in [
            "92233720368547758.08",
            "-92233720368547758.09",
            "99999999999999999999999999999999999999999999",
        ] {
            assert!(
                matches!(bad.parse::<Fen>(), Err(MoneyError::Overflow { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_negative_rule_refuses_any_minus_sign() {
        assert_eq!(parse_amount("0", SignRule::NonNegative), Ok(Fen(0)));
        assert_eq!(parse_amount("5", SignRule::NonNegative), Ok(Fen(500)));
        for bad in ["-5", "-0", "¥-0.01"] {
            assert_eq!(
                parse_amount(bad, SignRule::NonNegative),
                Err(MoneyError::SignNotAllowed {
                    input: bad.to_owned(),
                    rule: SignRule::NonNegative
                })
            );
        }
    }

    #[test]
    fn positive_rule_refuses_zero_and_negatives() {
        assert_eq!(parse_amount("0.01", SignRule::Positive), Ok(Fen(1)));
        for bad in ["0", "0.00", "-5", "-0"] {
            assert!(matches!(
                parse_amount(bad, SignRule::Positive),
                Err(MoneyError::SignNotAllowed {
                    rule: SignRule::Positive,
                    ..
                })
            ));
        }
        assert_eq!(
            parse_amount("0", SignRule::Positive)
                .unwrap_err()
                .to_string(),
            r#"amount "0" is not allowed here: it must be greater than zero"#
        );
    }

    #[test]
    fn checked_arithmetic_reports_overflow_instead_of_wrapping() {
        assert_eq!(Fen(1).checked_add(Fen(2)), Some(Fen(3)));
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), None);
        assert_eq!(Fen(i64::MIN).checked_sub(Fen(1)), None);
        assert_eq!(Fen(i64::MIN).checked_neg(), None);
        assert_eq!(Fen(-5).checked_neg(), Some(Fen(5)));
        assert_eq!(Fen(250).checked_mul(4), Some(Fen(1000)));
        assert_eq!(Fen(i64::MAX).checked_mul(2), None);
        assert!(Fen(-1).is_negative() && Fen(1).is_positive() && Fen::ZERO.is_zero());
        assert_eq!(Fen::new(7).get(), 7);
    }

    #[test]
    fn decimal_conversion_is_exact_or_refused() {
        assert_eq!(Fen(123_456).to_decimal(), Decimal::new(123_456, 2));
        assert_eq!(
            Fen(i64::MIN).to_decimal().to_string(),
            "-92233720368547758.08"
        );
        assert_eq!(Fen::from_decimal(Decimal::new(12_340, 3)), Ok(Fen(1_234)));
        assert_eq!(Fen::from_decimal(Decimal::from(5)), Ok(Fen(500)));
        assert!(matches!(
            Fen::from_decimal(Decimal::new(12_345, 3)),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Fen::from_decimal(Decimal::MAX),
            Err(MoneyError::Overflow { .. })
        ));
    }

    #[test]
    fn decimal_rounding_uses_the_strategy_the_caller_names() {
        let half = Decimal::new(12_345, 3); // 12.345 yuan
        assert_eq!(
            Fen::from_decimal_rounded(half, RoundingStrategy::MidpointNearestEven),
            Ok(Fen(1_234))
        );
        assert_eq!(
            Fen::from_decimal_rounded(half, RoundingStrategy::MidpointAwayFromZero),
            Ok(Fen(1_235))
        );
        assert_eq!(
            Fen::from_decimal_rounded(-half, RoundingStrategy::ToZero),
            Ok(Fen(-1_234))
        );
        assert!(matches!(
            Fen::from_decimal_rounded(Decimal::MIN, RoundingStrategy::ToZero),
            Err(MoneyError::Overflow { .. })
        ));
    }

    #[test]
    fn serde_keeps_fen_as_a_bare_integer() {
        // Checked through the csv crate, the only serde format in the deps.
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize((Fen(-123),)).expect("serialize");
        let text = String::from_utf8(w.into_inner().expect("flush")).expect("utf8");
        assert_eq!(text, "-123\n");
    }

    #[test]
    fn one_hundred_yuan_split_three_ways_gives_the_extra_fen_to_the_first_part() {
        assert_eq!(split("100.00", &[1, 1, 1]), ["33.34", "33.33", "33.33"]);
    }

    #[test]
    fn a_single_fen_split_evenly_goes_to_the_higher_level() {
        assert_eq!(split("0.01", &[5, 5]), ["0.01", "0.00"]);
    }

    #[test]
    fn three_fen_split_three_to_seven_follows_the_largest_remainder() {
        // Exact shares 0.9 and 2.1 fen: floors 0 and 2, the spare fen goes to
        // the larger remainder (0.9).
        assert_eq!(split("0.03", &[3, 7]), ["0.01", "0.02"]);
    }

    #[test]
    fn nine_hundred_yuan_split_evenly_is_exact() {
        assert_eq!(split("900.00", &[5, 5]), ["450.00", "450.00"]);
    }

    #[test]
    fn negative_totals_mirror_the_positive_split() {
        assert_eq!(split("-100.00", &[1, 1, 1]), ["-33.34", "-33.33", "-33.33"]);
        assert_eq!(split("-0.01", &[5, 5]), ["-0.01", "0.00"]);
    }

    #[test]
    fn zero_weights_get_nothing_even_when_fen_are_left_over() {
        assert_eq!(
            split("0.01", &[0, 1, 0, 1]),
            ["0.00", "0.01", "0.00", "0.00"]
        );
    }

    #[test]
    fn extreme_totals_split_exactly() {
        let parts = split_largest_remainder(Fen(i64::MIN), &[dec(1), dec(1)]).expect("split");
        assert_eq!(parts, [Fen(i64::MIN / 2), Fen(i64::MIN / 2)]);
        let parts = split_largest_remainder(Fen(i64::MIN), &[dec(1)]).expect("split");
        assert_eq!(parts, [Fen(i64::MIN)]);
        let parts = split_largest_remainder(Fen(i64::MAX), &[dec(1), dec(2)]).expect("split");
        assert_eq!(parts[0].get() + parts[1].get(), i64::MAX);
    }

    #[test]
    fn very_precise_and_very_large_weights_are_still_exact() {
        let third = Decimal::ONE / Decimal::from(3); // 28 decimal places
        let two_thirds = Decimal::TWO / Decimal::from(3);
        let parts = split_largest_remainder(Fen(300), &[third, two_thirds]).expect("split");
        assert_eq!(parts, [Fen(100), Fen(200)]);
        let tiny = Decimal::new(1, 28);
        let parts = split_largest_remainder(Fen(i64::MAX), &[Decimal::MAX, tiny]).expect("split");
        assert_eq!(parts, [Fen(i64::MAX), Fen(0)]);
    }

    #[test]
    fn weights_must_be_non_negative_with_at_least_one_positive_and_at_most_64() {
        let bad = |ws: &[Decimal]| {
            matches!(
                split_largest_remainder(Fen(100), ws),
                Err(MoneyError::BadWeights { .. })
            )
        };
        assert!(bad(&[]));
        assert!(bad(&[dec(0), dec(0)]));
        assert!(bad(&[dec(1), dec(-1)]));
        assert!(bad(&vec![dec(1); 65]));
        assert!(!bad(&vec![dec(1); 64]));
        assert_eq!(
            split_largest_remainder(Fen(100), &[dec(1), dec(-2)])
                .unwrap_err()
                .to_string(),
            "cannot split an amount by these weights: weight 2 is negative (-2)"
        );
    }

    #[test]
    fn u256_multiplication_and_division_agree_with_u128_where_it_fits() {
        let a = U256::widening_mul(u128::from(u64::MAX), u128::from(u64::MAX));
        assert_eq!(
            a,
            U256::from_u128(u128::from(u64::MAX) * u128::from(u64::MAX))
        );
        let big = U256::widening_mul(u128::MAX, u128::MAX); // 2^256 - 2^129 + 1
        assert_eq!(
            big,
            U256 {
                hi: u128::MAX - 1,
                lo: 1
            }
        );
        let (q, r) = U256::from_u128(1_000_003).div_rem(U256::from_u128(7));
        assert_eq!((q.lo, r.lo), (142_857, 4));
        let (q, r) = big.div_rem(U256::from_u128(u128::MAX));
        assert_eq!((q, r), (U256::from_u128(u128::MAX), U256::ZERO));
    }

    fn weight() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (0i64..=1000).prop_map(Decimal::from),
            // Ratios such as 0.3 / 0.7 or 0.125.
            (0i64..=1000, 1u32..=3).prop_map(|(n, scale)| Decimal::new(n, scale)),
        ]
    }

    fn weights() -> impl Strategy<Value = Vec<Decimal>> {
        prop::collection::vec(weight(), 1..=6).prop_filter("at least one positive weight", |ws| {
            ws.iter().any(|w| !w.is_zero())
        })
    }

    fn total() -> impl Strategy<Value = i64> {
        prop_oneof![
            -1_000_000_000_000_000i64..=1_000_000_000_000_000,
            -10_000i64..=10_000,
            Just(i64::MAX),
            Just(i64::MIN),
        ]
    }

    proptest! {
        #[test]
        fn split_parts_sum_to_the_total_and_stay_within_a_fen_of_the_exact_share(
            total in total(),
            ws in weights(),
        ) {
            let parts = split_largest_remainder(Fen(total), &ws).expect("valid weights");
            prop_assert_eq!(parts.len(), ws.len());
            let sum: i128 = parts.iter().map(|p| i128::from(p.get())).sum();
            prop_assert_eq!(sum, i128::from(total));

            // |part - total*w/W| < 1  <=>  |part*W - total*w| < W, all exact.
            let weight_sum: Decimal = ws.iter().copied().sum();
            for (part, w) in parts.iter().zip(&ws) {
                let gap = (Decimal::from(part.get()) * weight_sum - Decimal::from(total) * *w).abs();
                prop_assert!(gap < weight_sum, "part {} weight {} gap {}", part, w, gap);
                if w.is_zero() {
                    prop_assert_eq!(*part, Fen::ZERO);
                }
            }
            let again = split_largest_remainder(Fen(total), &ws).expect("valid weights");
            prop_assert_eq!(parts, again);
        }

        #[test]
        fn any_fen_amount_round_trips_through_display_and_parse(v in any::<i64>()) {
            prop_assert_eq!(Fen(v).to_string().parse::<Fen>(), Ok(Fen(v)));
            prop_assert_eq!(Fen(v).grouped().parse::<Fen>(), Ok(Fen(v)));
            prop_assert_eq!(Fen::from_decimal(Fen(v).to_decimal()), Ok(Fen(v)));
        }
    }
}
