//! Reproducible audit sampling (不定期抽查): a seeded random number generator written here, so that
//! the same seed draws the same sample on any machine and from either database, and three ways to
//! draw payments: simple random, stratified by county, and monetary-unit sampling (MUS), with the
//! attribute sample size and the MUS upper misstatement limit. No floating point anywhere: amounts
//! are fen, rates and factors `Decimal`.
//!
//! The population is always sorted by item id before drawing: the database's row order never
//! decides who is picked.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::{Decimal, RoundingStrategy};

use crate::money::Fen;

/// The largest attribute sample `attribute_size` computes: beyond it the rate asked for is too small
/// to be a spot check.
pub const ATTRIBUTE_SIZE_MAX: usize = 10_000;

/// The largest population one draw takes (a province's year of monthly payments fits).
pub const POPULATION_MAX: usize = 50_000_000;

/// SplitMix64 (Steele, Lea, Flood 2014; the seeding generator of xoshiro): a 64-bit state advanced by
/// the golden-ratio increment and mixed by two multiply-xorshift rounds. Small, fast, and fully
/// specified by its seed: the same seed gives the same sequence everywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..bound` without modulo bias (draws above the largest multiple of
    /// `bound` are thrown back).
    ///
    /// # Panics
    /// If `bound` is 0: a caller's defect.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no value to give");
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % bound;
            }
        }
    }
}

/// One payment of the population: its stable id (`BATCH:LINE`), its stratum (county) and amount.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Item {
    pub id: String,
    pub stratum: String,
    pub amount: Fen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Simple random sampling without replacement.
    Simple,
    /// By county, proportional allocation (largest remainder), at least one per county.
    Stratified,
    /// Monetary-unit sampling: probability proportional to amount.
    Monetary,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Simple => "simple",
            Method::Stratified => "stratified",
            Method::Monetary => "monetary",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Method::Simple => "简单随机抽样",
            Method::Stratified => "分层随机抽样（按县区比例分配）",
            Method::Monetary => "货币单位抽样（MUS）",
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SampleError {
    #[error(
        "a sample of {size} is larger than the population of {population} payments: ask for at most {population}"
    )]
    TooLarge { size: usize, population: usize },
    #[error("the population is empty: there is nothing to sample")]
    EmptyPopulation,
    #[error("a sample size of 0 draws nothing: ask for at least 1")]
    ZeroSize,
    #[error("the population has {population} payments, more than the {max} one draw takes")]
    PopulationTooLarge { population: usize, max: usize },
    #[error("payment {id} appears twice in the population")]
    DuplicateItem { id: String },
    #[error("monetary-unit sampling needs positive amounts: payment {id} is {amount}")]
    NotPositive { id: String, amount: Fen },
    #[error("{what} must be between 0 and 100 percent, exclusive; {value} is not")]
    BadPercent { what: &'static str, value: Decimal },
    #[error(
        "sampling at {confidence}% confidence and {tolerable}% tolerable deviation needs more than {max} items"
    )]
    SizeTooLarge {
        confidence: Decimal,
        tolerable: Decimal,
        max: usize,
    },
    #[error("no reliability factors for {confidence}% confidence: use 90 or 95")]
    UnknownConfidence { confidence: Decimal },
    #[error(
        "{errors} misstatements below the sampling interval exceed the factor table (0 to {max}): the population cannot be accepted on this sample; extend it or reject"
    )]
    TooManyErrors { errors: usize, max: usize },
    #[error("amounts overflow")]
    Overflow,
}

/// One picked item, in the order drawn.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Picked {
    pub item: Item,
    /// MUS: taken because its amount is at least the sampling interval (the top stratum).
    pub top_stratum: bool,
    /// MUS: the monetary unit (cumulative fen, 1-based, over the items below the interval) that
    /// selected it.
    pub hit: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    pub method: Method,
    pub seed: u64,
    /// The size asked for; MUS may take fewer distinct items (see [`monetary`]).
    pub size_requested: usize,
    pub population_count: usize,
    pub population_total: Fen,
    /// MUS: the sampling interval J in fen.
    pub interval: Option<Fen>,
    /// MUS: the random start in `1..=J`.
    pub random_start: Option<i64>,
    pub picked: Vec<Picked>,
}

fn percent(what: &'static str, value: Decimal) -> Result<Decimal, SampleError> {
    if value <= Decimal::ZERO || value >= Decimal::ONE_HUNDRED {
        return Err(SampleError::BadPercent { what, value });
    }
    Ok(value / Decimal::ONE_HUNDRED)
}

/// The attribute (deviation) sample size for `confidence` percent and a `tolerable` deviation rate
/// in percent, expecting no deviation: the smallest n with (1 − r)^n ≤ 1 − C, i.e. a sample of n
/// without a deviation shows with confidence C that the deviation rate is below r. Exact decimal
/// arithmetic: 45 at 90%/5%, 59 at 95%/5%.
pub fn attribute_size(confidence: Decimal, tolerable: Decimal) -> Result<usize, SampleError> {
    let c = percent("the confidence", confidence)?;
    let r = percent("the tolerable deviation rate", tolerable)?;
    let keep = Decimal::ONE - r;
    let risk = Decimal::ONE - c;
    let mut power = Decimal::ONE;
    for n in 1..=ATTRIBUTE_SIZE_MAX {
        power = power.checked_mul(keep).ok_or(SampleError::Overflow)?;
        if power <= risk {
            return Ok(n);
        }
    }
    Err(SampleError::SizeTooLarge {
        confidence,
        tolerable,
        max: ATTRIBUTE_SIZE_MAX,
    })
}

/// Checks the population and sorts it by id: the one order every draw starts from.
fn prepared(population: &[Item], size: usize) -> Result<(Vec<&Item>, Fen), SampleError> {
    if population.is_empty() {
        return Err(SampleError::EmptyPopulation);
    }
    if population.len() > POPULATION_MAX {
        return Err(SampleError::PopulationTooLarge {
            population: population.len(),
            max: POPULATION_MAX,
        });
    }
    if size == 0 {
        return Err(SampleError::ZeroSize);
    }
    if size > population.len() {
        return Err(SampleError::TooLarge {
            size,
            population: population.len(),
        });
    }
    // Sorted by reference: a province-year's population is 2.3 million items, and only the
    // sample's few are copied out. Ids are unique (checked next), so the unstable sort's order is
    // the one order of the ids.
    let mut sorted: Vec<&Item> = population.iter().collect();
    sorted.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for pair in sorted.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(SampleError::DuplicateItem {
                id: pair[0].id.clone(),
            });
        }
    }
    let total = sorted
        .iter()
        .try_fold(Fen::ZERO, |a, i| a.checked_add(i.amount))
        .ok_or(SampleError::Overflow)?;
    Ok((sorted, total))
}

/// `size` items of `items` by a partial Fisher-Yates shuffle, in the order drawn.
fn draw_without_replacement(items: &[&Item], size: usize, rng: &mut SplitMix64) -> Vec<Item> {
    let mut pool: Vec<&Item> = items.to_vec();
    let mut out = Vec::with_capacity(size);
    for i in 0..size.min(pool.len()) {
        let j = i + rng.below((pool.len() - i) as u64) as usize;
        pool.swap(i, j);
        out.push(pool[i].clone());
    }
    out
}

fn plain(items: Vec<Item>) -> Vec<Picked> {
    items
        .into_iter()
        .map(|item| Picked {
            item,
            top_stratum: false,
            hit: None,
        })
        .collect()
}

/// Simple random sampling without replacement.
pub fn simple(population: &[Item], size: usize, seed: u64) -> Result<Sample, SampleError> {
    let (sorted, total) = prepared(population, size)?;
    let mut rng = SplitMix64::new(seed);
    Ok(Sample {
        method: Method::Simple,
        seed,
        size_requested: size,
        population_count: sorted.len(),
        population_total: total,
        interval: None,
        random_start: None,
        picked: plain(draw_without_replacement(&sorted, size, &mut rng)),
    })
}

/// How many of `size` each stratum gets: proportional to its count, whole numbers by largest
/// remainder (ties to the stratum that sorts first); then, when `size` is at least the number of
/// strata, every stratum left with none takes one from the stratum with the most (ties: the last in
/// order).
pub fn allocate(counts: &BTreeMap<String, usize>, size: usize) -> BTreeMap<String, usize> {
    let total: usize = counts.values().sum();
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    if total == 0 {
        return out;
    }
    let mut remainders: Vec<(usize, &String)> = Vec::new();
    let mut given = 0;
    for (stratum, count) in counts {
        // size * count fits: both are bounded by POPULATION_MAX.
        let exact = size * count;
        out.insert(stratum.clone(), exact / total);
        given += exact / total;
        remainders.push((exact % total, stratum));
    }
    // Largest remainder first; a stable sort keeps key order among equal remainders.
    remainders.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (_, stratum) in remainders.iter().take(size - given) {
        *out.get_mut(*stratum).expect("known stratum") += 1;
    }
    let nonempty = counts.values().filter(|c| **c > 0).count();
    if size >= nonempty {
        let empty: Vec<String> = counts
            .iter()
            .filter(|(s, c)| **c > 0 && out[*s] == 0)
            .map(|(s, _)| s.clone())
            .collect();
        for stratum in empty {
            let donor = out
                .iter()
                .filter(|(_, n)| **n > 1)
                .max_by(|a, b| a.1.cmp(b.1))
                .map(|(s, _)| s.clone());
            let Some(donor) = donor else { break };
            *out.get_mut(&donor).expect("known stratum") -= 1;
            *out.get_mut(&stratum).expect("known stratum") += 1;
        }
    }
    out
}

/// Stratified by `stratum` (county): sizes by [`allocate`], then a simple random draw inside each
/// stratum, strata in code order, one generator for all.
pub fn stratified(population: &[Item], size: usize, seed: u64) -> Result<Sample, SampleError> {
    let (sorted, total) = prepared(population, size)?;
    let mut strata: BTreeMap<&str, Vec<&Item>> = BTreeMap::new();
    for item in &sorted {
        strata.entry(item.stratum.as_str()).or_default().push(item);
    }
    let counts: BTreeMap<String, usize> = strata
        .iter()
        .map(|(s, v)| (s.to_string(), v.len()))
        .collect();
    let sizes = allocate(&counts, size);
    let mut rng = SplitMix64::new(seed);
    let mut picked = Vec::with_capacity(size);
    for (stratum, items) in &strata {
        let n = sizes.get(*stratum).copied().unwrap_or(0);
        picked.extend(plain(draw_without_replacement(items, n, &mut rng)));
    }
    Ok(Sample {
        method: Method::Stratified,
        seed,
        size_requested: size,
        population_count: sorted.len(),
        population_total: total,
        interval: None,
        random_start: None,
        picked,
    })
}

/// Monetary-unit sampling. The sampling interval is J = total / n, rounded up to the fen (so at most n
/// selections). Every item of at least J is taken (the top stratum: it would be hit for sure). The
/// other items, in id order, are laid end to end as monetary units 1, 2, …; a random start s in
/// 1..=J is drawn and the items holding units s, s + J, s + 2J, … are taken. An item below J holds
/// fewer than J units and so is hit at most once; the sample may hold fewer than n distinct items.
pub fn monetary(population: &[Item], size: usize, seed: u64) -> Result<Sample, SampleError> {
    let (sorted, total) = prepared(population, size)?;
    if let Some(item) = sorted.iter().find(|i| !i.amount.is_positive()) {
        return Err(SampleError::NotPositive {
            id: item.id.clone(),
            amount: item.amount,
        });
    }
    let n = size as i64;
    let interval = Fen((total.get() + n - 1) / n);
    let mut rng = SplitMix64::new(seed);
    let start = 1 + rng.below(interval.get() as u64) as i64;
    let mut picked = Vec::new();
    for item in sorted.iter().filter(|i| i.amount >= interval) {
        picked.push(Picked {
            item: (*item).clone(),
            top_stratum: true,
            hit: None,
        });
    }
    let mut next = start;
    let mut cumulative: i64 = 0;
    for item in sorted.iter().filter(|i| i.amount < interval) {
        let end = cumulative
            .checked_add(item.amount.get())
            .ok_or(SampleError::Overflow)?;
        if next > cumulative && next <= end {
            picked.push(Picked {
                item: (*item).clone(),
                top_stratum: false,
                hit: Some(next),
            });
            next = next
                .checked_add(interval.get())
                .ok_or(SampleError::Overflow)?;
        }
        cumulative = end;
    }
    Ok(Sample {
        method: Method::Monetary,
        seed,
        size_requested: size,
        population_count: sorted.len(),
        population_total: total,
        interval: Some(interval),
        random_start: Some(start),
        picked,
    })
}

/// Draws with the method asked for.
pub fn draw(
    method: Method,
    population: &[Item],
    size: usize,
    seed: u64,
) -> Result<Sample, SampleError> {
    match method {
        Method::Simple => simple(population, size, seed),
        Method::Stratified => stratified(population, size, seed),
        Method::Monetary => monetary(population, size, seed),
    }
}

/// The most misstatements below the interval the factor tables cover.
pub const ERRORS_MAX: usize = 5;

/// Poisson reliability factors for 0..=5 overstatements (AICPA Audit Sampling guide, table C-3).
pub const FACTORS_90: [Decimal; ERRORS_MAX + 1] = [
    Decimal::from_parts(231, 0, 0, false, 2),
    Decimal::from_parts(389, 0, 0, false, 2),
    Decimal::from_parts(533, 0, 0, false, 2),
    Decimal::from_parts(669, 0, 0, false, 2),
    Decimal::from_parts(800, 0, 0, false, 2),
    Decimal::from_parts(928, 0, 0, false, 2),
];
pub const FACTORS_95: [Decimal; ERRORS_MAX + 1] = [
    Decimal::from_parts(300, 0, 0, false, 2),
    Decimal::from_parts(475, 0, 0, false, 2),
    Decimal::from_parts(630, 0, 0, false, 2),
    Decimal::from_parts(776, 0, 0, false, 2),
    Decimal::from_parts(916, 0, 0, false, 2),
    Decimal::from_parts(1052, 0, 0, false, 2),
];

/// The factors for a confidence in percent (90 or 95).
pub fn reliability_factors(
    confidence: Decimal,
) -> Result<&'static [Decimal; ERRORS_MAX + 1], SampleError> {
    if confidence == Decimal::from(90) {
        Ok(&FACTORS_90)
    } else if confidence == Decimal::from(95) {
        Ok(&FACTORS_95)
    } else {
        Err(SampleError::UnknownConfidence { confidence })
    }
}

/// What the audit of one sampled item found: the amount booked (paid) and the amount it should
/// have been (audited: the entitlement), and whether it came from the top stratum.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Audited {
    pub book: Fen,
    pub audited: Fen,
    pub top_stratum: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Uml {
    pub interval: Fen,
    pub confidence: Decimal,
    /// Reliability factor for no error × J.
    pub basic_precision: Fen,
    /// Σ tainting × J over the misstatements below J.
    pub projected: Fen,
    /// Σ projected misstatement × (factor increment − 1), largest tainting first.
    pub incremental_allowance: Fen,
    /// Σ actual misstatements of top-stratum items (no sampling risk: all of them were examined).
    pub top_stratum_errors: Fen,
    /// The sum of the four, rounded up to the fen.
    pub limit: Fen,
    /// Overstatements found below J and in the top stratum.
    pub overstatements: usize,
    /// Understatements (paid less than owed) are not projected into the overstatement limit; they
    /// are counted here and listed in the workpaper.
    pub understatements: usize,
}

/// The upper misstatement limit of an MUS sample (overstatement, Poisson / AICPA method):
///
/// UML = RF(0) × J  (basic precision)
///     + Σ tᵢ × J  for each item below J with an overstatement, tainting tᵢ = (book − audited) / book
///     + Σ tᵢ × J × (RF(i) − RF(i−1) − 1), taintings ranked from the largest (incremental allowance)
///     + Σ (book − audited) for overstated top-stratum items (their error is known, not projected).
///
/// Intermediate values are exact decimals; the limit is rounded up to the fen.
pub fn upper_misstatement_limit(
    results: &[Audited],
    interval: Fen,
    confidence: Decimal,
) -> Result<Uml, SampleError> {
    let factors = reliability_factors(confidence)?;
    let j = interval.to_decimal();
    let mut taintings: Vec<Decimal> = Vec::new();
    let mut top = Decimal::ZERO;
    let mut understatements = 0;
    for r in results {
        let error = r.book.get() - r.audited.get();
        if error < 0 {
            understatements += 1;
            continue;
        }
        if error == 0 {
            continue;
        }
        if r.top_stratum {
            top += Fen(error).to_decimal();
        } else if r.book.is_positive() {
            taintings.push(Decimal::from(error) / Decimal::from(r.book.get()));
        }
    }
    if taintings.len() > ERRORS_MAX {
        return Err(SampleError::TooManyErrors {
            errors: taintings.len(),
            max: ERRORS_MAX,
        });
    }
    taintings.sort_by(|a, b| b.cmp(a));
    let basic = factors[0] * j;
    let mut projected = Decimal::ZERO;
    let mut allowance = Decimal::ZERO;
    for (k, t) in taintings.iter().enumerate() {
        let pm = *t * j;
        projected += pm;
        allowance += pm * (factors[k + 1] - factors[k] - Decimal::ONE);
    }
    let up = |d: Decimal| {
        Fen::from_decimal_rounded(d, RoundingStrategy::AwayFromZero)
            .map_err(|_| SampleError::Overflow)
    };
    let limit = up(basic + projected + allowance + top)?;
    Ok(Uml {
        interval,
        confidence,
        basic_precision: up(basic)?,
        projected: up(projected)?,
        incremental_allowance: up(allowance)?,
        top_stratum_errors: up(top)?,
        limit,
        overstatements: taintings.len()
            + results
                .iter()
                .filter(|r| r.top_stratum && r.book > r.audited)
                .count(),
        understatements,
    })
}

/// The ids of a sample, in the order drawn.
pub fn ids(sample: &Sample) -> Vec<String> {
    sample.picked.iter().map(|p| p.item.id.clone()).collect()
}

/// Whether a sample picked each id at most once.
pub fn distinct(sample: &Sample) -> bool {
    let set: BTreeSet<&str> = sample.picked.iter().map(|p| p.item.id.as_str()).collect();
    set.len() == sample.picked.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().expect("test decimal")
    }

    fn population(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item {
                id: format!("B{:03}:{}", i / 10, i % 10 + 1),
                stratum: ["440511", "440512", "440513"][i % 3].to_string(),
                amount: Fen(50_000 + (i as i64 * 7_919 % 97) * 1_000),
            })
            .collect()
    }

    #[test]
    fn splitmix64_gives_the_published_sequence() {
        // Reference values of SplitMix64 from seed 0 (as in the xoshiro authors' C code).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn attribute_sizes_are_45_at_90_and_59_at_95_percent() {
        assert_eq!(attribute_size(d("90"), d("5")), Ok(45));
        assert_eq!(attribute_size(d("95"), d("5")), Ok(59));
        assert_eq!(attribute_size(d("95"), d("10")), Ok(29));
        assert!(matches!(
            attribute_size(d("100"), d("5")),
            Err(SampleError::BadPercent { .. })
        ));
    }

    #[test]
    fn the_same_seed_draws_the_same_sample_whatever_the_row_order() {
        let pop = population(100);
        let mut reversed = pop.clone();
        reversed.reverse();
        for method in [Method::Simple, Method::Stratified, Method::Monetary] {
            let a = draw(method, &pop, 20, 7).expect("draw");
            let b = draw(method, &reversed, 20, 7).expect("draw");
            assert_eq!(ids(&a), ids(&b), "{method:?}");
            assert!(distinct(&a));
            let c = draw(method, &pop, 20, 8).expect("draw");
            assert_ne!(ids(&a), ids(&c), "{method:?}: another seed, another sample");
        }
    }

    #[test]
    fn a_sample_larger_than_the_population_is_refused_in_one_line() {
        let err = simple(&population(10), 11, 1).expect_err("too large");
        assert_eq!(
            err,
            SampleError::TooLarge {
                size: 11,
                population: 10
            }
        );
        assert!(!err.to_string().contains('\n'));
        assert_eq!(
            simple(&population(10), 10, 1).expect("all").picked.len(),
            10
        );
    }

    #[test]
    fn stratified_allocation_is_proportional_with_one_per_stratum() {
        let counts: BTreeMap<String, usize> = [
            ("A".to_string(), 90),
            ("B".to_string(), 9),
            ("C".to_string(), 1),
        ]
        .into();
        let sizes = allocate(&counts, 10);
        assert_eq!(sizes.values().sum::<usize>(), 10);
        assert_eq!(sizes["C"], 1, "every non-empty stratum gets one");
        assert_eq!(sizes["B"], 1);
        assert_eq!(sizes["A"], 8);
        let sample = stratified(&population(99), 9, 3).expect("draw");
        let per: BTreeMap<&str, usize> = sample.picked.iter().fold(BTreeMap::new(), |mut m, p| {
            *m.entry(p.item.stratum.as_str()).or_default() += 1;
            m
        });
        assert_eq!(per.values().copied().collect::<Vec<_>>(), vec![3, 3, 3]);
    }

    #[test]
    fn mus_takes_every_item_of_at_least_the_interval() {
        let mut pop = population(50);
        pop.push(Item {
            id: "BIG:1".into(),
            stratum: "440511".into(),
            amount: Fen(100_000_000),
        });
        let sample = monetary(&pop, 10, 42).expect("draw");
        let j = sample.interval.expect("interval");
        for item in pop.iter().filter(|i| i.amount >= j) {
            assert!(
                sample
                    .picked
                    .iter()
                    .any(|p| p.item.id == item.id && p.top_stratum)
            );
        }
        assert!(sample.picked.len() <= 10);
        assert!(distinct(&sample));
    }

    #[test]
    fn uml_with_no_error_is_the_basic_precision() {
        let j = Fen(1_000_000);
        let clean = vec![
            Audited {
                book: Fen(500),
                audited: Fen(500),
                top_stratum: false
            };
            3
        ];
        let uml = upper_misstatement_limit(&clean, j, d("95")).expect("uml");
        assert_eq!(uml.limit, Fen(3_000_000));
        let uml = upper_misstatement_limit(&clean, j, d("90")).expect("uml");
        assert_eq!(uml.limit, Fen(2_310_000));
    }

    #[test]
    fn uml_projects_taintings_and_adds_top_stratum_errors() {
        // J = 10,000.00; one item of 900.00 fully overstated (tainting 1), one of 1,000.00 half
        // overstated (0.5), one top-stratum item 300.00 over.
        let j = Fen(1_000_000);
        let results = [
            Audited {
                book: Fen(90_000),
                audited: Fen::ZERO,
                top_stratum: false,
            },
            Audited {
                book: Fen(100_000),
                audited: Fen(50_000),
                top_stratum: false,
            },
            Audited {
                book: Fen(2_000_000),
                audited: Fen(1_970_000),
                top_stratum: true,
            },
        ];
        let uml = upper_misstatement_limit(&results, j, d("95")).expect("uml");
        // 3.00 J + (1 + 0.5) J + 1 J × 0.75 + 0.5 J × 0.55 + 300.00
        assert_eq!(uml.basic_precision, Fen(3_000_000));
        assert_eq!(uml.projected, Fen(1_500_000));
        assert_eq!(uml.incremental_allowance, Fen(750_000 + 275_000));
        assert_eq!(uml.limit, Fen(3_000_000 + 1_500_000 + 1_025_000 + 30_000));
        assert_eq!(uml.overstatements, 3);
    }
}
