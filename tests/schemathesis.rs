//! The API fuzzed from its own OpenAPI document: schemathesis (a property-based API tester) generates
//! requests for every operation in `/openapi.json`, valid and invalid, and the test demands that no
//! answer is a 5xx (`--checks not_a_server_error`). Then the books must still prove themselves
//! (`earmark check`, `earmark verify`): whatever the fuzzer managed to post is posted correctly.
//!
//! The ledger is the small demo (four counties, a year of releases, payouts and recoveries); the caller
//! is an admin with the personal-data right, so every operation is reachable. So that the generated
//! requests get past "no such unit" and reach the ledger's logic, a schemathesis.toml binds the
//! parameters to dictionaries of real values (units, people, counties, programs, months, batches,
//! entry keys, report names) taken from the demo through the API itself, and amounts from a cent to
//! the largest the ledger holds; the fuzzer picks from them about half of the time and generates the
//! rest.
//!
//! Needs schemathesis 4 (`pip install schemathesis`; written against 4.32.5): the test fails, not
//! skips, when it is missing. `EARMARK_SCHEMATHESIS` names another executable;
//! `EARMARK_FUZZ_EXAMPLES` (default 40) sets the examples per operation and `EARMARK_FUZZ_SEED`
//! (default 2025) the seed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const INSTALL: &str = "pip install schemathesis   (version 4; tested with 4.32.5)";

fn earmark(db: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_earmark"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run earmark")
}

fn earmark_ok(db: &Path, args: &[&str]) -> String {
    let out = earmark(db, args);
    assert!(
        out.status.success(),
        "earmark {args:?} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The schemathesis executable and its version, or a failure that says how to install it.
fn schemathesis() -> (String, String) {
    let exe = std::env::var("EARMARK_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let out = match Command::new(&exe).arg("--version").output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!(
            "`{exe} --version` failed ({:?}): {}\nInstall it with: {INSTALL}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "schemathesis is not installed ({exe}: {e}). This test needs it; install it with:\n    \
             {INSTALL}\n(or set EARMARK_SCHEMATHESIS to its path)"
        ),
    };
    // "schemathesis, version 4.32.5"
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let version = text.rsplit(' ').next().unwrap_or_default().to_string();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 4,
        "schemathesis {version} is too old for this test's command line (it needs 4.x, which also \
         reads OpenAPI 3.1): pip install --upgrade 'schemathesis>=4'"
    );
    (exe, version)
}

/// The server, stopped when dropped (also when the test fails).
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    fn start(db: &Path, dir: &Path) -> Server {
        let out = dir.join("serve.out");
        let log = dir.join("serve.err");
        let mut child = Command::new(env!("CARGO_BIN_EXE_earmark"))
            .arg("--db")
            .arg(db)
            .args(["serve", "--addr", "127.0.0.1:0", "--sweep-every-hours", "0"])
            .arg("--out")
            .arg(dir.join("bank-files"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("serve.out"))
            .stderr(std::fs::File::create(&log).expect("serve.err"))
            .spawn()
            .expect("start earmark serve");
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            // "earmark serving on http://127.0.0.1:PORT (OpenAPI at …)"
            if let Some(url) = text
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
            {
                return Server {
                    child,
                    url: url.to_string(),
                    log,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "earmark serve exited ({status}) before listening:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "earmark serve did not say where it listens within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn get_json(url: &str, token: &str) -> Value {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    );
    let mut response = agent
        .get(url)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .unwrap_or_default();
    assert_eq!(status, 200, "GET {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
}

fn toml_list(values: &BTreeSet<String>) -> String {
    let quoted: Vec<String> = values
        .iter()
        .map(|v| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// Real values from the demo ledger, as schemathesis dictionaries bound to the API's parameters.
fn config(server: &Server, token: &str, demo_out: &Path) -> String {
    let api = |path: &str| get_json(&format!("{}{path}", server.url), token);
    let programs: BTreeSet<String> = api("/api/v1/programs")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["code"].as_str().map(str::to_string))
        .collect();
    let balances = api("/api/v1/balances");
    let rows = balances.as_array().cloned().unwrap_or_default();
    let field = |row: &Value, name: &str| row[name].as_str().unwrap_or_default().to_string();
    let counties: BTreeSet<String> = rows.iter().map(|r| field(r, "county")).collect();
    let is_region = |o: &str| o.len() == 6 && o.bytes().all(|b| b.is_ascii_digit());
    let is_person = |o: &str| o.len() == 18;
    let units: BTreeSet<String> = rows
        .iter()
        .filter(|r| field(r, "kind") == "held")
        .map(|r| field(r, "owner"))
        .filter(|o| !is_region(o) && !is_person(o))
        .collect();
    assert!(!units.is_empty(), "the demo has no units with funds");
    let mut people = BTreeSet::new();
    for unit in &units {
        for program in &programs {
            let list = api(&format!(
                "/api/v1/units/{unit}/people?program={program}&full=true"
            ));
            people.extend(
                list.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["id_number"].as_str().map(str::to_string))
                    .take(15),
            );
        }
    }
    assert!(!people.is_empty(), "the demo's units have no people");
    let reports: BTreeSet<String> = api("/api/v1/reports")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect();
    // Batches: the demo's bank files are named after them (E44010300-MBDK-2025-01-1.txt).
    let batches: BTreeSet<String> = std::fs::read_dir(demo_out.join("bank"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.split('.').next().map(str::to_string)
                })
                .take(40)
                .collect()
        })
        .unwrap_or_default();
    // Entry keys: the exported journal's transactions (`2025-01-09 * KEY | memo`).
    let journal =
        std::fs::read_to_string(demo_out.join("reports/ledger.journal")).unwrap_or_default();
    let mut keys = BTreeSet::new();
    for line in journal.lines() {
        if let Some((_, rest)) = line.split_once(" * ")
            && let Some((key, _)) = rest.split_once(" | ")
        {
            // A sample of each kind of entry.
            let kind = key.split(':').next().unwrap_or_default().to_string();
            if keys
                .iter()
                .filter(|k: &&String| k.starts_with(&kind))
                .count()
                < 4
            {
                keys.insert(key.to_string());
            }
        }
    }
    let months: BTreeSet<String> = (1..=12).map(|m| format!("2025-{m:02}")).collect();
    let dates = set(&["2025-01-15", "2025-06-30", "2025-12-31", "2026-01-05"]);
    let mut owners = units.clone();
    owners.extend(counties.iter().cloned());

    format!(
        r#"# Written by tests/schemathesis.rs: real values of the demo ledger for the fuzzer to use.
[dictionaries]
programs = {{ values = {programs} }}
counties = {{ values = {counties} }}
units = {{ values = {units} }}
owners = {{ values = {owners} }}
people = {{ values = {people} }}
months = {{ values = {months} }}
dates = {{ values = {dates} }}
batches = {{ values = {batches} }}
keys = {{ values = {keys} }}
reports = {{ values = {reports} }}
levels = {{ values = ["province", "city", "county"] }}
methods = {{ values = ["simple", "stratified", "monetary"] }}
formats = {{ values = ["json", "csv", "xlsx", "html", "daifa", "pain001"] }}
return_to = {{ values = ["province", "city"] }}
amounts = {{ values = ["0.01", "800.00", "1,234.56", "¥2,000.00", "100.001", "-5.00", "0", "92233720368547758.07", "92233720368547758.08"] }}

[parameters]
"path.program" = {{ dictionary = "programs", probability = 0.6 }}
"query.program" = {{ dictionary = "programs", probability = 0.6 }}
"body.program" = {{ dictionary = "programs", probability = 0.6 }}
"query.county" = {{ dictionary = "counties", probability = 0.5 }}
"body.county" = {{ dictionary = "counties", probability = 0.5 }}
"path.unit" = {{ dictionary = "units", probability = 0.6 }}
"body.unit" = {{ dictionary = "units", probability = 0.6 }}
"path.id_number" = {{ dictionary = "people", probability = 0.5 }}
"body.id_number" = {{ dictionary = "people", probability = 0.5 }}
"body.lines[*].id_number" = {{ dictionary = "people", probability = 0.6 }}
"body.lines[*].month" = {{ dictionary = "months", probability = 0.6 }}
"body.month" = {{ dictionary = "months", probability = 0.5 }}
"query.from" = {{ dictionary = "months", probability = 0.5 }}
"query.to" = {{ dictionary = "months", probability = 0.5 }}
"body.date" = {{ dictionary = "dates", probability = 0.3 }}
"query.as_of" = {{ dictionary = "dates", probability = 0.3 }}
"path.batch_id" = {{ dictionary = "batches", probability = 0.6 }}
"path.key" = {{ dictionary = "keys", probability = 0.6 }}
"path.name" = {{ dictionary = "reports", probability = 0.6 }}
"body.amount" = {{ dictionary = "amounts", probability = 0.5 }}
"body.level" = {{ dictionary = "levels", probability = 0.5 }}
"body.method" = {{ dictionary = "methods", probability = 0.5 }}
"query.format" = {{ dictionary = "formats", probability = 0.4 }}
"body.format" = {{ dictionary = "formats", probability = 0.4 }}

# `from` and `to` are months in most bodies, but a unit or county and a level in a return.
[[operations]]
include-name = "POST /api/v1/returns"
parameters = {{ "body.from" = {{ dictionary = "owners", probability = 0.6 }}, "body.to" = {{ dictionary = "return_to", probability = 0.6 }} }}

[[operations]]
include-name = ["POST /api/v1/allocations", "POST /api/v1/disbursements", "POST /api/v1/spot-checks"]
parameters = {{ "body.from" = {{ dictionary = "months", probability = 0.6 }}, "body.to" = {{ dictionary = "months", probability = 0.6 }} }}
"#,
        programs = toml_list(&programs),
        counties = toml_list(&counties),
        units = toml_list(&units),
        owners = toml_list(&owners),
        people = toml_list(&people),
        months = toml_list(&months),
        dates = toml_list(&dates),
        batches = toml_list(&batches),
        keys = toml_list(&keys),
        reports = toml_list(&reports),
    )
}

/// The lines of the server's log that report a fault.
fn server_errors(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(str::to_string)
        .collect()
}

#[test]
fn schemathesis_finds_no_server_error() {
    let (exe, version) = schemathesis();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("ledger.db");
    let demo_out = dir.path().join("demo-output");
    earmark_ok(
        &db,
        &[
            "demo",
            "--scale",
            "small",
            "--out",
            demo_out.to_str().expect("utf-8 path"),
        ],
    );
    earmark_ok(
        &db,
        &[
            "user",
            "add",
            "fuzzer",
            "--role",
            "admin",
            "--scope",
            "*",
            "--personal-data",
        ],
    );
    let token = earmark_ok(&db, &["user", "token", "fuzzer"])
        .trim()
        .to_string();
    assert!(!token.is_empty(), "no token printed");

    let mut server = Server::start(&db, dir.path());
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, config(&server, &token, &demo_out)).expect("write config");

    let examples = std::env::var("EARMARK_FUZZ_EXAMPLES").unwrap_or_else(|_| "40".into());
    let seed = std::env::var("EARMARK_FUZZ_SEED").unwrap_or_else(|_| "2025".into());
    let schema = format!("{}/openapi.json", server.url);
    let args: Vec<String> = vec![
        "--config-file".into(),
        config_path.display().to_string(),
        "run".into(),
        schema.clone(),
        "--checks".into(),
        "not_a_server_error".into(),
        "--header".into(),
        format!("Authorization: Bearer {token}"),
        "--max-examples".into(),
        examples.clone(),
        "--seed".into(),
        seed.clone(),
        "--request-timeout".into(),
        "60".into(),
        "--generation-database".into(),
        "none".into(),
        "--continue-on-failure".into(),
        "--no-color".into(),
    ];
    let started = Instant::now();
    let run = Command::new(&exe)
        .args(&args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let errors = server_errors(&server.log);
    let shown_args = args
        .iter()
        .map(|a| {
            if a.starts_with("Authorization:") {
                "'Authorization: Bearer <token>'".to_string()
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!(
        "schemathesis {version}: {exe} {shown_args}\n(exit {:?} in {:.0} s)\n{}",
        run.status.code(),
        took.as_secs_f64(),
        stdout
            .lines()
            .skip_while(|l| !l.contains("SUMMARY"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        run.status.success(),
        "schemathesis found a problem (exit {:?}); seed {seed}, {examples} examples per \
         operation.\n--- schemathesis stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- the \
         server's ERROR lines ---\n{}",
        run.status.code(),
        errors.join("\n")
    );
    assert!(
        stdout.contains("passed") && !stdout.contains("No operations"),
        "schemathesis ran no tests:\n{stdout}"
    );
    assert!(
        errors.is_empty(),
        "no 5xx answer, but the server logged errors:\n{}",
        errors.join("\n")
    );

    // Whatever the fuzzer posted, the books still prove themselves.
    server.stop();
    earmark_ok(&db, &["check"]);
    earmark_ok(&db, &["verify"]);
}
