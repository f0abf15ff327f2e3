//! The load client of `benches/api.sh`: many concurrent clients against a running `earmark serve`,
//! on std threads with ureq's blocking client (one connection per client, kept alive).
//!
//! ```text
//! EARMARK_BENCH_TOKEN=<admin token with --personal-data> cargo bench --bench api_load -- \
//!     --url http://127.0.0.1:PORT --units TOKENS.csv [--program MBDK] [--months 2025-01..2025-12]
//!     [--date 2025-12-20] [--clients 32] [--duration 10] [--runs 3] [--batch 50]
//!     [--trace-clients 8] [--server-pid PID] [--backend sqlite] [--seed 7]
//! ```
//!
//! `TOKENS.csv` has one `unit_code,token` line per unit (a unit-scoped user's token): payments are
//! posted with the token of the unit they are paid from. The admin token lists the units' people
//! (full ID numbers), reads balances, traces people and runs /check and /verify.
//!
//! Every person-month owed is handed to exactly one request. The phases, each `--runs` times:
//! payments with 1 line per request; payments with `--batch` lines per request; traces of random
//! people with one client and with `--clients` clients; payments with `--trace-clients` trace clients
//! beside them. Then the proof: a sample of answered requests is sent again (each line must come back
//! `already`, nothing is paid twice), every unit's `held` balance must equal what it held before minus
//! what the server answered as paid, the people's `paid` accounts must have grown by exactly that, and
//! /check and /verify must pass. Exit code 0 when all of that holds, 1 otherwise.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Arguments

struct Args {
    url: String,
    admin_token: String,
    units_file: String,
    program: String,
    months: Vec<String>,
    date: String,
    clients: usize,
    duration: Duration,
    runs: usize,
    batch: usize,
    trace_clients: usize,
    server_pid: Option<u32>,
    backend: String,
    seed: u64,
}

fn usage(problem: &str) -> ! {
    eprintln!("api_load: {problem}");
    eprintln!(
        "usage: EARMARK_BENCH_TOKEN=T cargo bench --bench api_load -- --url URL --units TOKENS.csv \
         [--program P] [--months YYYY-MM..YYYY-MM] [--date YYYY-MM-DD] [--clients N] [--duration S] \
         [--runs N] [--batch N] [--trace-clients N] [--server-pid PID] [--backend NAME] [--seed N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut raw: BTreeMap<String, String> = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` adds `--bench` to a harness-less bench's arguments.
        if flag == "--bench" {
            continue;
        }
        let Some(name) = flag.strip_prefix("--") else {
            usage(&format!("unexpected argument {flag:?}"));
        };
        let Some(value) = it.next() else {
            usage(&format!("--{name} needs a value"));
        };
        raw.insert(name.to_string(), value);
    }
    let get = |name: &str, default: &str| raw.get(name).cloned().unwrap_or(default.to_string());
    let num = |name: &str, default: &str| -> u64 {
        get(name, default)
            .parse()
            .unwrap_or_else(|_| usage(&format!("--{name} is not a whole number")))
    };
    let months = months_between(&get("months", "2025-01..2025-12"));
    let admin_token = std::env::var("EARMARK_BENCH_TOKEN")
        .unwrap_or_else(|_| usage("EARMARK_BENCH_TOKEN (an admin token) is not set"));
    Args {
        url: raw
            .get("url")
            .cloned()
            .unwrap_or_else(|| usage("--url is needed"))
            .trim_end_matches('/')
            .to_string(),
        admin_token: admin_token.trim().to_string(),
        units_file: raw
            .get("units")
            .cloned()
            .unwrap_or_else(|| usage("--units is needed")),
        program: get("program", "MBDK"),
        months,
        date: get("date", "2025-12-20"),
        clients: num("clients", "32").max(1) as usize,
        duration: Duration::from_secs(num("duration", "10").max(1)),
        runs: num("runs", "3").max(1) as usize,
        batch: num("batch", "50").max(1) as usize,
        trace_clients: num("trace-clients", "8") as usize,
        server_pid: raw.get("server-pid").and_then(|p| p.parse().ok()),
        backend: get("backend", "sqlite"),
        seed: num("seed", "7"),
    }
}

/// "2025-01..2025-03" → ["2025-01", "2025-02", "2025-03"].
fn months_between(text: &str) -> Vec<String> {
    let parse = |m: &str| -> (i32, u32) {
        let (y, mo) = m
            .trim()
            .split_once('-')
            .unwrap_or_else(|| usage(&format!("{m:?} is not YYYY-MM")));
        match (y.parse(), mo.parse()) {
            (Ok(y), Ok(mo)) if (1..=12).contains(&mo) => (y, mo),
            _ => usage(&format!("{m:?} is not YYYY-MM")),
        }
    };
    let (from, to) = text.split_once("..").unwrap_or((text, text));
    let (mut y, mut m) = parse(from);
    let end = parse(to);
    let mut out = Vec::new();
    while (y, m) <= end {
        out.push(format!("{y:04}-{m:02}"));
        m += 1;
        if m == 13 {
            y += 1;
            m = 1;
        }
    }
    if out.is_empty() {
        usage(&format!("--months {text}: no months"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .max_idle_connections(4)
            .max_idle_connections_per_host(4)
            .build(),
    )
}

/// What one request got: status (0 for a transport error), body, time taken.
struct Answer {
    status: u16,
    body: String,
    took: Duration,
}

fn read_body(response: &mut ureq::http::Response<ureq::Body>) -> String {
    response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap_or_else(|e| format!("(body not read: {e})"))
}

fn get(agent: &ureq::Agent, url: &str, token: &str) -> Answer {
    let start = Instant::now();
    match agent
        .get(url)
        .header("Authorization", format!("Bearer {token}"))
        .call()
    {
        Ok(mut response) => {
            let body = read_body(&mut response);
            Answer {
                status: response.status().as_u16(),
                body,
                took: start.elapsed(),
            }
        }
        Err(e) => Answer {
            status: 0,
            body: e.to_string(),
            took: start.elapsed(),
        },
    }
}

fn post(agent: &ureq::Agent, url: &str, token: &str, body: &Value) -> Answer {
    let start = Instant::now();
    match agent
        .post(url)
        .header("Authorization", format!("Bearer {token}"))
        .send_json(body)
    {
        Ok(mut response) => {
            let body = read_body(&mut response);
            Answer {
                status: response.status().as_u16(),
                body,
                took: start.elapsed(),
            }
        }
        Err(e) => Answer {
            status: 0,
            body: e.to_string(),
            took: start.elapsed(),
        },
    }
}

/// A GET that must answer 200 with JSON, or the bench stops.
fn get_json(agent: &ureq::Agent, url: &str, token: &str) -> Value {
    let answer = get(agent, url, token);
    if answer.status != 200 {
        eprintln!(
            "api_load: GET {url} answered {}: {}",
            answer.status, answer.body
        );
        std::process::exit(1);
    }
    serde_json::from_str(&answer.body).unwrap_or_else(|e| {
        eprintln!("api_load: GET {url}: not JSON ({e})");
        std::process::exit(1);
    })
}

/// "1,234.56" / "-900.00" → fen.
fn fen(text: &str) -> i64 {
    let t: String = text.trim().chars().filter(|c| *c != ',').collect();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, t),
    };
    let (whole, frac) = t.split_once('.').unwrap_or((&t, "0"));
    let value = whole.parse::<i64>().unwrap_or(0) * 100
        + format!("{frac:0<2}")[..2].parse::<i64>().unwrap_or(0);
    if negative { -value } else { value }
}

fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let whole = (fen.abs() / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", fen.abs() % 100)
}

/// Percent-encodes a path segment.
fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The work: every person-month owed, handed out once

struct UnitWork {
    unit: String,
    token: String,
    /// (id_number, month), month by month.
    items: Vec<(String, String)>,
    next: usize,
}

struct Pool {
    units: Vec<UnitWork>,
    turn: usize,
}

/// One payment request: which unit, which lines.
#[derive(Clone)]
struct Chunk {
    unit: usize,
    lines: Vec<(String, String)>,
}

impl Pool {
    /// The next `n` person-months of the next unit that has some (units take turns).
    fn take(&mut self, n: usize) -> Option<Chunk> {
        for _ in 0..self.units.len() {
            let index = self.turn % self.units.len();
            self.turn += 1;
            let u = &mut self.units[index];
            if u.next < u.items.len() {
                let end = (u.next + n).min(u.items.len());
                let lines = u.items[u.next..end].to_vec();
                u.next = end;
                return Some(Chunk { unit: index, lines });
            }
        }
        None
    }

    fn left(&self) -> usize {
        self.units.iter().map(|u| u.items.len() - u.next).sum()
    }
}

fn payment_body(args: &Args, unit: &str, lines: &[(String, String)]) -> Value {
    json!({
        "unit": unit,
        "program": args.program,
        "date": args.date,
        "lines": lines
            .iter()
            .map(|(id, month)| json!({"id_number": id, "month": month}))
            .collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------------------------
// Measurements

#[derive(Default)]
struct Tally {
    requests: u64,
    ok: u64,
    /// Non-200 answers by status (0: transport error), and a few of them as they were.
    errors: BTreeMap<u16, u64>,
    error_samples: Vec<String>,
    /// Payment lines the server answered `paid`, and their fen, per unit index.
    paid_lines: u64,
    paid_fen: BTreeMap<usize, i64>,
    /// Lines answered `already` in a first attempt (should not happen: each line is sent once).
    already_lines: u64,
    /// Latencies in microseconds.
    latencies: Vec<u32>,
    /// Requests that failed, to send again after the phase.
    failed: Vec<Chunk>,
    /// Some answered payment requests, to send again in the proof.
    answered: Vec<Chunk>,
    ran_out: bool,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for s in other.error_samples {
            if self.error_samples.len() < 5 {
                self.error_samples.push(s);
            }
        }
        self.paid_lines += other.paid_lines;
        for (k, v) in other.paid_fen {
            *self.paid_fen.entry(k).or_default() += v;
        }
        self.already_lines += other.already_lines;
        self.latencies.extend(other.latencies);
        self.failed.extend(other.failed);
        self.answered.extend(other.answered);
        self.ran_out |= other.ran_out;
    }

    fn error(&mut self, what: &str, answer: &Answer) {
        *self.errors.entry(answer.status).or_default() += 1;
        if self.error_samples.len() < 5 {
            let body: String = answer.body.chars().take(300).collect();
            self.error_samples
                .push(format!("{what} -> {} {body}", answer.status));
        }
    }

    /// Counts an answer to a payment request.
    fn payment(&mut self, chunk: &Chunk, answer: &Answer, first_attempt: bool) {
        self.requests += 1;
        self.latencies
            .push(answer.took.as_micros().min(u32::MAX as u128) as u32);
        if answer.status != 200 {
            self.error(
                &format!("POST /api/v1/payments ({} lines)", chunk.lines.len()),
                answer,
            );
            self.failed.push(chunk.clone());
            return;
        }
        self.ok += 1;
        let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        for line in value["lines"].as_array().into_iter().flatten() {
            match line["status"].as_str() {
                Some("paid") => {
                    self.paid_lines += 1;
                    *self.paid_fen.entry(chunk.unit).or_default() +=
                        fen(line["amount"].as_str().unwrap_or("0"));
                }
                Some("already") if first_attempt => self.already_lines += 1,
                _ => {}
            }
        }
        if self.ok % 16 == 1 && self.answered.len() < 64 {
            self.answered.push(chunk.clone());
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One run of one phase, as figures.
#[derive(Clone, Default)]
struct Figures {
    elapsed: f64,
    requests_per_s: f64,
    lines_per_s: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    errors: u64,
    ran_out: bool,
}

fn figures(tally: &mut Tally, elapsed: Duration) -> Figures {
    tally.latencies.sort_unstable();
    let secs = elapsed.as_secs_f64();
    Figures {
        elapsed: secs,
        requests_per_s: tally.ok as f64 / secs,
        lines_per_s: tally.paid_lines as f64 / secs,
        p50: percentile(&tally.latencies, 50.0),
        p95: percentile(&tally.latencies, 95.0),
        p99: percentile(&tally.latencies, 99.0),
        errors: tally.errors.values().sum(),
        ran_out: tally.ran_out,
    }
}

// ---------------------------------------------------------------------------------------------
// The workers

fn payment_worker(
    args: Arc<Args>,
    pool: Arc<Mutex<Pool>>,
    tokens: Arc<Vec<(String, String)>>,
    lines_per_request: usize,
    deadline: Instant,
) -> Tally {
    let agent = agent();
    let url = format!("{}/api/v1/payments", args.url);
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let chunk = match pool.lock() {
            Ok(mut pool) => pool.take(lines_per_request),
            Err(_) => None,
        };
        let Some(chunk) = chunk else {
            tally.ran_out = true;
            break;
        };
        let (unit, token) = &tokens[chunk.unit];
        let body = payment_body(&args, unit, &chunk.lines);
        let answer = post(&agent, &url, token, &body);
        tally.payment(&chunk, &answer, true);
    }
    tally
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn trace_worker(
    args: Arc<Args>,
    people: Arc<Vec<String>>,
    seed: u64,
    deadline: Instant,
    stop: Arc<AtomicBool>,
) -> Tally {
    let agent = agent();
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let id = &people[(rng.next() % people.len() as u64) as usize];
        let url = format!("{}/api/v1/trace/person/{}", args.url, segment(id));
        let answer = get(&agent, &url, &args.admin_token);
        tally.requests += 1;
        tally
            .latencies
            .push(answer.took.as_micros().min(u32::MAX as u128) as u32);
        if answer.status == 200 {
            tally.ok += 1;
        } else {
            tally.error("GET /api/v1/trace/person/{id}", &answer);
        }
    }
    tally
}

/// What every phase shares.
struct Shared {
    args: Arc<Args>,
    pool: Arc<Mutex<Pool>>,
    tokens: Arc<Vec<(String, String)>>,
    people: Arc<Vec<String>>,
}

/// Runs `payers` payment clients and `tracers` trace clients until the deadline (or the work runs
/// out), then returns (payments, traces, elapsed). Traces beside payments stop with the payments.
fn run_phase(
    shared: &Shared,
    payers: usize,
    lines_per_request: usize,
    tracers: usize,
    seed: u64,
) -> (Tally, Tally, Duration) {
    let start = Instant::now();
    let deadline = start + shared.args.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let mut pay_handles = Vec::new();
    for _ in 0..payers {
        let (args, pool, tokens) = (
            shared.args.clone(),
            shared.pool.clone(),
            shared.tokens.clone(),
        );
        pay_handles.push(thread::spawn(move || {
            payment_worker(args, pool, tokens, lines_per_request, deadline)
        }));
    }
    let mut trace_handles = Vec::new();
    for t in 0..tracers {
        let (args, people, stop) = (shared.args.clone(), shared.people.clone(), stop.clone());
        let seed = seed
            .wrapping_mul(1_000_003)
            .wrapping_add(t as u64 * 7919 + 1);
        trace_handles.push(thread::spawn(move || {
            trace_worker(args, people, seed, deadline, stop)
        }));
    }
    let mut payments = Tally::default();
    for h in pay_handles {
        payments.merge(h.join().expect("a payment client panicked"));
    }
    if payers > 0 {
        stop.store(true, Ordering::Relaxed);
    }
    let elapsed_payments = start.elapsed();
    let mut traces = Tally::default();
    for h in trace_handles {
        traces.merge(h.join().expect("a trace client panicked"));
    }
    let elapsed = if payers > 0 {
        elapsed_payments
    } else {
        start.elapsed()
    };
    (payments, traces, elapsed)
}

/// Sends the failed requests of a phase again, one at a time, until each is answered (at most three
/// tries each); lines answered `already` on a retry were posted by a request that answered an error.
fn retry_failed(args: &Args, tokens: &[(String, String)], tally: &mut Tally) -> (u64, u64) {
    let agent = agent();
    let url = format!("{}/api/v1/payments", args.url);
    let failed = std::mem::take(&mut tally.failed);
    let (mut still_failed, mut posted_despite_error) = (0, 0);
    for chunk in failed {
        let (unit, token) = &tokens[chunk.unit];
        let body = payment_body(args, unit, &chunk.lines);
        let mut done = false;
        for _ in 0..3 {
            let answer = post(&agent, &url, token, &body);
            if answer.status == 200 {
                let mut retry = Tally::default();
                retry.payment(&chunk, &answer, false);
                let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
                posted_despite_error += value["lines"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|l| l["status"] == "already")
                    .count() as u64;
                tally.paid_lines += retry.paid_lines;
                for (k, v) in retry.paid_fen {
                    *tally.paid_fen.entry(k).or_default() += v;
                }
                done = true;
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        if !done {
            still_failed += 1;
        }
    }
    (still_failed, posted_despite_error)
}

// ---------------------------------------------------------------------------------------------
// The server process

fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------

/// Balances by (owner, kind), in fen, for the program.
fn balances(agent: &ureq::Agent, args: &Args) -> BTreeMap<(String, String), i64> {
    let rows = get_json(
        agent,
        &format!("{}/api/v1/balances?program={}", args.url, args.program),
        &args.admin_token,
    );
    let mut out = BTreeMap::new();
    for row in rows.as_array().into_iter().flatten() {
        let owner = row["owner"].as_str().unwrap_or_default().to_string();
        let kind = row["kind"].as_str().unwrap_or_default().to_string();
        *out.entry((owner, kind)).or_default() += fen(row["balance"].as_str().unwrap_or("0"));
    }
    out
}

struct Row {
    name: String,
    clients: String,
    lines: String,
    runs: Vec<Figures>,
    payments: bool,
}

fn main() {
    let args = Arc::new(parse_args());
    let admin = agent();

    // Who we are and what the server runs on.
    let health = get_json(&admin, &format!("{}/api/v1/health", args.url), "");
    let me = get_json(
        &admin,
        &format!("{}/api/v1/me", args.url),
        &args.admin_token,
    );
    if me["personal_data"] != true {
        eprintln!("api_load: the admin token's user needs --personal-data (to list full IDs)");
        std::process::exit(2);
    }

    // The units, their tokens and their people.
    let text = std::fs::read_to_string(&args.units_file)
        .unwrap_or_else(|e| usage(&format!("{}: {e}", args.units_file)));
    let tokens: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.trim().split_once(','))
        .map(|(u, t)| (u.trim().to_string(), t.trim().to_string()))
        .collect();
    if tokens.is_empty() {
        usage(&format!("{}: no unit,token lines", args.units_file));
    }
    let listing = Instant::now();
    let mut units = Vec::new();
    let mut people = Vec::new();
    for (unit, token) in &tokens {
        let list = get_json(
            &admin,
            &format!(
                "{}/api/v1/units/{}/people?program={}&full=true",
                args.url,
                segment(unit),
                args.program
            ),
            &args.admin_token,
        );
        let ids: Vec<String> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["death_date"].is_null() && p["exclusion"].is_null() && p["left_date"].is_null()
            })
            .filter_map(|p| p["id_number"].as_str().map(str::to_string))
            .collect();
        let mut items = Vec::with_capacity(ids.len() * args.months.len());
        for month in &args.months {
            for id in &ids {
                items.push((id.clone(), month.clone()));
            }
        }
        people.extend(ids);
        units.push(UnitWork {
            unit: unit.clone(),
            token: token.clone(),
            items,
            next: 0,
        });
    }
    let listed = listing.elapsed();
    let person_months: usize = units.iter().map(|u| u.items.len()).sum();
    let before = balances(&admin, &args);
    let tokens = Arc::new(
        units
            .iter()
            .map(|u| (u.unit.clone(), u.token.clone()))
            .collect::<Vec<_>>(),
    );
    let people = Arc::new(people);
    let pool = Arc::new(Mutex::new(Pool { units, turn: 0 }));

    println!(
        "earmark API load: {} on {} ({}), {} units, {} people, {} person-months owed and unpaid \
         (listed through the API in {:.1} s)",
        args.url,
        args.backend,
        health["backend"].as_str().unwrap_or("?"),
        tokens.len(),
        people.len(),
        person_months,
        listed.as_secs_f64()
    );
    println!(
        "{} runs x {} s per phase, {} payment clients, payment date {}",
        args.runs,
        args.duration.as_secs(),
        args.clients,
        args.date
    );

    let mut rows = vec![
        Row {
            name: "payments, 1 line per request".into(),
            clients: args.clients.to_string(),
            lines: "1".into(),
            runs: Vec::new(),
            payments: true,
        },
        Row {
            name: format!("payments, {} lines per request", args.batch),
            clients: args.clients.to_string(),
            lines: args.batch.to_string(),
            runs: Vec::new(),
            payments: true,
        },
        Row {
            name: "trace, alone".into(),
            clients: "1".into(),
            lines: "-".into(),
            runs: Vec::new(),
            payments: false,
        },
        Row {
            name: "trace, alone".into(),
            clients: args.clients.to_string(),
            lines: "-".into(),
            runs: Vec::new(),
            payments: false,
        },
        Row {
            name: format!("payments, {} lines, beside traces", args.batch),
            clients: args.clients.to_string(),
            lines: args.batch.to_string(),
            runs: Vec::new(),
            payments: true,
        },
        Row {
            name: "trace, beside those payments".into(),
            clients: args.trace_clients.to_string(),
            lines: "-".into(),
            runs: Vec::new(),
            payments: false,
        },
    ];
    let shared = Shared {
        args: args.clone(),
        pool: pool.clone(),
        tokens: tokens.clone(),
        people: people.clone(),
    };
    let mut total = Tally::default();
    let mut problems: Vec<String> = Vec::new();
    let mut all_errors: Vec<String> = Vec::new();
    let (mut still_failed, mut posted_despite_error) = (0, 0);
    for run in 0..args.runs {
        let seed = args.seed + run as u64 * 101;
        // (payments row, payers, lines per request, trace row, tracers)
        let phases: [(usize, usize, usize, usize, usize); 5] = [
            (0, args.clients, 1, 0, 0),
            (1, args.clients, args.batch, 0, 0),
            (0, 0, 0, 2, 1),
            (0, 0, 0, 3, args.clients),
            (4, args.clients, args.batch, 5, args.trace_clients),
        ];
        for (pay_row, payers, lines, trace_row, tracers) in phases {
            let (mut pay, mut trace, elapsed) = run_phase(&shared, payers, lines, tracers, seed);
            if payers > 0 {
                let f = figures(&mut pay, elapsed);
                eprintln!(
                    "   run {} {:<42} {:>7.0} payouts/s {:>6.0} req/s  p95 {:>7.1} ms  errors {}{}",
                    run + 1,
                    rows[pay_row].name,
                    f.lines_per_s,
                    f.requests_per_s,
                    f.p95,
                    f.errors,
                    if f.ran_out { "  (work ran out)" } else { "" }
                );
                rows[pay_row].runs.push(f);
                let (failed, posted) = retry_failed(&args, &tokens, &mut pay);
                still_failed += failed;
                posted_despite_error += posted;
                all_errors.extend(pay.error_samples.iter().cloned());
                total.merge(pay);
            }
            if tracers > 0 {
                let f = figures(&mut trace, elapsed);
                eprintln!(
                    "   run {} {:<42} {:>7.0} req/s  p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms  errors {}",
                    run + 1,
                    format!("{} ({} clients)", rows[trace_row].name, tracers),
                    f.requests_per_s,
                    f.p50,
                    f.p95,
                    f.p99,
                    f.errors
                );
                rows[trace_row].runs.push(f);
                all_errors.extend(trace.error_samples.iter().cloned());
            }
        }
    }
    all_errors.truncate(10);

    // ---- The proof: nothing paid twice, every fen accounted for.
    let replay_agent = agent();
    let url = format!("{}/api/v1/payments", args.url);
    let (mut replayed, mut replay_lines, mut paid_again, mut replay_errors) = (0, 0, 0, 0);
    let mut singles = Vec::new();
    for chunk in &total.answered {
        let (unit, token) = &tokens[chunk.unit];
        // The same request again, and its first line alone.
        let mut sends = vec![chunk.lines.clone()];
        if chunk.lines.len() > 1 {
            sends.push(chunk.lines[..1].to_vec());
        }
        for lines in sends {
            let answer = post(
                &replay_agent,
                &url,
                token,
                &payment_body(&args, unit, &lines),
            );
            replayed += 1;
            if answer.status != 200 {
                replay_errors += 1;
                if singles.len() < 3 {
                    singles.push(format!("replay -> {} {}", answer.status, answer.body));
                }
                continue;
            }
            let value: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
            for line in value["lines"].as_array().into_iter().flatten() {
                replay_lines += 1;
                if line["status"] != "already" {
                    paid_again += 1;
                }
            }
            if fen(value["total_paid_now"].as_str().unwrap_or("")) != 0 {
                paid_again += 1;
            }
        }
    }
    let after = balances(&admin, &args);
    let mut unit_mismatch = Vec::new();
    let mut paid_fen_total = 0i64;
    for (index, (unit, _)) in tokens.iter().enumerate() {
        let key = (unit.clone(), "held".to_string());
        let held_before = before.get(&key).copied().unwrap_or(0);
        let held_after = after.get(&key).copied().unwrap_or(0);
        let paid = total.paid_fen.get(&index).copied().unwrap_or(0);
        paid_fen_total += paid;
        if held_after != held_before - paid {
            unit_mismatch.push(format!(
                "{unit}: held {} after, {} before, {} answered as paid",
                yuan(held_after),
                yuan(held_before),
                yuan(paid)
            ));
        }
    }
    let is_person =
        |owner: &str| owner.len() == 18 && owner[..17].bytes().all(|b| b.is_ascii_digit());
    let person_paid = |b: &BTreeMap<(String, String), i64>| -> i64 {
        b.iter()
            .filter(|((o, k), _)| k == "paid" && is_person(o))
            .map(|(_, v)| *v)
            .sum()
    };
    let people_paid_delta = person_paid(&after) - person_paid(&before);
    let check = get_json(
        &admin,
        &format!("{}/api/v1/check", args.url),
        &args.admin_token,
    );
    let verify = get_json(
        &admin,
        &format!("{}/api/v1/verify", args.url),
        &args.admin_token,
    );
    let left = pool.lock().map(|p| p.left()).unwrap_or(0);

    // ---- The table.
    let rss = args.server_pid.and_then(|pid| {
        Some((
            proc_status(pid, "VmHWM:")?,
            proc_status(pid, "VmRSS:")?,
            proc_status(pid, "RssAnon:").unwrap_or(0),
            proc_status(pid, "RssFile:").unwrap_or(0),
        ))
    });
    println!();
    println!(
        "{:<38} {:>7} {:>9} {:>9} {:>10} {:>10} {:>8} {:>8} {:>8} {:>7}",
        "phase (median of runs)",
        "clients",
        "lines/req",
        "req/s",
        "payouts/s",
        "entries/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors"
    );
    for row in &rows {
        let m = |f: fn(&Figures) -> f64| median(&row.runs.iter().map(f).collect::<Vec<_>>());
        let errors: u64 = row.runs.iter().map(|f| f.errors).sum();
        let (payouts, entries) = if row.payments {
            let p = m(|f| f.lines_per_s);
            (format!("{p:.0}"), format!("{:.0}", 2.0 * p))
        } else {
            ("-".to_string(), "-".to_string())
        };
        println!(
            "{:<38} {:>7} {:>9} {:>9.0} {:>10} {:>10} {:>8.1} {:>8.1} {:>8.1} {:>7}{}",
            row.name,
            row.clients,
            row.lines,
            m(|f| f.requests_per_s),
            payouts,
            entries,
            m(|f| f.p50),
            m(|f| f.p95),
            m(|f| f.p99),
            errors,
            if row.runs.iter().any(|f| f.ran_out) {
                "  (work ran out)"
            } else {
                ""
            }
        );
    }
    println!();
    println!(
        "payouts/s: payment lines (person-months) posted per second; each posts 1 entry (发放: the \
         person's paid account from the unit's held funds), 2 posting rows."
    );
    for row in rows.iter().filter(|r| r.payments) {
        println!(
            "   {:<38} runs: {}",
            row.name,
            row.runs
                .iter()
                .map(|f| format!("{:.0}/s in {:.1} s", f.lines_per_s, f.elapsed))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for row in rows.iter().filter(|r| !r.payments) {
        println!(
            "   {:<38} p95 per run: {}",
            format!("{} ({} clients)", row.name, row.clients),
            row.runs
                .iter()
                .map(|f| format!("{:.1} ms", f.p95))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    match rss {
        Some((hwm, now, anon, file)) => println!(
            "server peak RSS (VmHWM): {:.1} MiB; now {:.1} MiB, of which {:.1} MiB heap and stacks \
             (RssAnon) and {:.1} MiB mapped files (RssFile: the binary and, on SQLite, its mmap of the \
             ledger)",
            hwm as f64 / 1024.0,
            now as f64 / 1024.0,
            anon as f64 / 1024.0,
            file as f64 / 1024.0
        ),
        None => println!("server peak RSS: unknown (no --server-pid or no /proc)"),
    }
    let best_batch = median(
        &rows[1]
            .runs
            .iter()
            .map(|f| f.lines_per_s)
            .collect::<Vec<_>>(),
    );
    let single = median(
        &rows[0]
            .runs
            .iter()
            .map(|f| f.lines_per_s)
            .collect::<Vec<_>>(),
    );
    let trace_one_p95 = median(&rows[2].runs.iter().map(|f| f.p95).collect::<Vec<_>>());
    let trace_p95 = median(&rows[3].runs.iter().map(|f| f.p95).collect::<Vec<_>>());
    let trace_loaded_p95 = median(&rows[5].runs.iter().map(|f| f.p95).collect::<Vec<_>>());
    println!(
        "target >= 2,000 payout postings/s with {} clients: {:.0} payouts/s ({:.0} entries/s) at 1 \
         line/request, {:.0} payouts/s ({:.0} entries/s) at {} lines/request",
        args.clients,
        single,
        2.0 * single,
        best_batch,
        2.0 * best_batch,
        args.batch
    );
    println!(
        "target trace p95 < 50 ms: {:.1} ms with 1 client, {:.1} ms with {} clients, {:.1} ms with {} \
         clients beside {} payment clients",
        trace_one_p95, trace_p95, args.clients, trace_loaded_p95, args.trace_clients, args.clients
    );
    if !all_errors.is_empty() {
        println!("errors seen (first {}):", all_errors.len());
        for e in &all_errors {
            println!("   {e}");
        }
    }

    // ---- The proof, printed.
    println!();
    println!(
        "proof: {} payment lines answered `paid` ({} yuan), {} person-months left unpaid",
        total.paid_lines,
        yuan(paid_fen_total),
        left
    );
    if total.already_lines > 0 {
        problems.push(format!(
            "{} lines sent once were answered `already`",
            total.already_lines
        ));
    }
    if still_failed > 0 {
        problems.push(format!(
            "{still_failed} failed requests still failed after 3 retries"
        ));
    }
    if posted_despite_error > 0 {
        problems.push(format!(
            "{posted_despite_error} lines of requests answered with an error had been posted \
             (the retry said `already`)"
        ));
    }
    println!(
        "   replay: {replayed} answered requests sent again ({replay_lines} lines): {} paid again, {} errors",
        paid_again, replay_errors
    );
    if paid_again > 0 || replay_errors > 0 {
        problems.push(format!(
            "replay: {paid_again} lines paid again, {replay_errors} errors {singles:?}"
        ));
    }
    println!(
        "   units' held = before - answered paid: {} of {} units; people's paid accounts grew by {} \
         (answered paid: {})",
        tokens.len() - unit_mismatch.len(),
        tokens.len(),
        yuan(people_paid_delta),
        yuan(paid_fen_total)
    );
    if !unit_mismatch.is_empty() {
        problems.push(format!("held balances off: {unit_mismatch:?}"));
    }
    if people_paid_delta != paid_fen_total {
        problems.push(format!(
            "people's paid accounts grew by {}, the server answered {} as paid",
            yuan(people_paid_delta),
            yuan(paid_fen_total)
        ));
    }
    println!(
        "   /check: {} ({} entries); /verify: {} ({} counties)",
        if check["ok"] == true { "OK" } else { "FAILED" },
        check["entries"],
        if verify["ok"] == true { "OK" } else { "FAILED" },
        verify["counties"]
    );
    if check["ok"] != true {
        problems.push(format!("/check: {}", check["problems"]));
    }
    if verify["ok"] != true {
        problems.push(format!("/verify: {}", verify["broken"]));
    }
    if problems.is_empty() {
        println!("proof: OK, nothing double-paid, every fen accounted for");
    } else {
        println!("proof: FAILED");
        for p in &problems {
            println!("   {p}");
        }
        std::process::exit(1);
    }
}
