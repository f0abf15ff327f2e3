//! The shared service through the real `earmark serve` binary, on every backend: each role does what
//! it may and is refused (403, nothing written) what it may not; bad requests get a JSON 4xx; the
//! audit log records every state-changing request; and 32 clients paying from one unit at once never
//! double-pay a person-month, never overdraw the unit, and never break a hash chain.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Ledger, on_every_backend};
use earmark::id_number::make_id;
use serde_json::{Value, json};

const PROGRAM: &str = "MBDK";
/// (unit, county): two units in Jinping (a 5:5 city's county), one in Liwan (Guangzhou).
const UNITS: [(&str, &str); 3] = [
    ("U44051101", "440511"),
    ("U44051102", "440511"),
    ("U44010301", "440103"),
];
/// People per unit.
const PEOPLE: [usize; 3] = [40, 4, 4];
const MONTHLY_FEN: i64 = 90_000;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// One answer: status and JSON body (or `Null` when the body is not JSON).
struct Answer {
    status: u16,
    body: Value,
    text: String,
}

impl Answer {
    fn show(&self) -> String {
        format!("status {} body {}", self.status, self.text)
    }
    fn error_message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("the server answers");
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, body, text }
}

impl Server {
    fn start(ledger: &Ledger) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_earmark"))
            .arg("--db")
            .arg(&ledger.db.url)
            .args(["serve", "--addr", "127.0.0.1:0", "--out", "bank"])
            .current_dir(ledger.db.dir.path())
            .env_remove("EARMARK_DB")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start earmark serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the serving line");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Server { child, base }
    }

    fn get(&self, token: &str, path: &str) -> Answer {
        answer(
            agent()
                .get(format!("{}{path}", self.base))
                .header("Authorization", format!("Bearer {token}"))
                .call(),
        )
    }

    fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        answer(
            agent()
                .post(format!("{}{path}", self.base))
                .header("Authorization", format!("Bearer {token}"))
                .send_json(body),
        )
    }

    fn post_raw(&self, token: &str, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        answer(
            agent()
                .post(format!("{}{path}", self.base))
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", content_type)
                .send(&body[..]),
        )
    }
}

fn program_toml() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/mbdk.toml");
    let text = std::fs::read_to_string(path).expect("programs/mbdk.toml");
    let text = text.replacen(
        "[local_split.cities]\n",
        "[local_split.cities]\n\"440500\" = { city = 3, county = 7 }\n\"440100\" = { city = 1, county = 2 }\n",
        1,
    );
    assert!(
        text.contains("\"440100\" = { city = 1"),
        "mbdk.toml changed shape"
    );
    text
}

/// Everyone's ID, by unit: men born 1950 with 60 semesters (30 years: the top tier every month).
fn people() -> Vec<Vec<String>> {
    UNITS
        .iter()
        .zip(PEOPLE)
        .enumerate()
        .map(|(u, ((_, county), n))| {
            (0..n)
                .map(|i| {
                    let birth = common::day(&format!("1950-{:02}-{:02}", i % 12 + 1, u * 5 + 3));
                    make_id(county, birth, 101 + 2 * (u * 100 + i) as u16)
                        .as_str()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

/// The ledger: units, the program, the roster, and users of every role. Returns tokens by user.
fn setup(ledger: &Ledger) -> BTreeMap<&'static str, String> {
    ledger.ok(&["init"]);
    let mut units = String::from("unit_code,name,county_code,township_code,kind\n");
    for (code, county) in UNITS {
        units.push_str(&format!("{code},单位{code},{county},,school\n"));
    }
    ledger.ok(&["import", "units", ledger.write("units.csv", units)]);
    ledger.ok(&["program", "load", ledger.write("mbdk.toml", program_toml())]);
    let mut roster = String::from(
        "id_number,name,sex,birth_date,semesters,county_code,township_code,unit_code,bank_account,exclusion,death_date\n",
    );
    for (u, ids) in people().iter().enumerate() {
        for (i, id) in ids.iter().enumerate() {
            let birth = &id[6..14];
            roster.push_str(&format!(
                "{id},教师{u}{i},男,{}-{}-{},60,{},,{},6222{:012},,\n",
                &birth[..4],
                &birth[4..6],
                &birth[6..],
                UNITS[u].1,
                UNITS[u].0,
                u * 1000 + i
            ));
        }
    }
    ledger.ok(&[
        "import",
        "roster",
        "--program",
        PROGRAM,
        ledger.write("roster.csv", roster),
    ]);
    let users: [(&str, &str, &str, bool); 8] = [
        ("admin", "admin", "*", true),
        ("gd-finance", "finance", "440000", false),
        ("st-finance", "finance", "440500", false),
        ("jp-finance", "finance", "440511", true),
        ("lw-finance", "finance", "440103", false),
        ("unit1", "unit", "U44051101", true),
        ("unit3", "unit", "U44010301", false),
        ("inspector", "inspector", "440000", true),
    ];
    let mut tokens = BTreeMap::new();
    for (name, role, scope, personal) in users {
        let mut args = vec!["user", "add", name, "--role", role, "--scope", scope];
        if personal {
            args.push("--personal-data");
        }
        ledger.ok(&args);
        let token = ledger
            .ok(&["user", "token", name])
            .stdout
            .trim()
            .to_string();
        assert!(token.starts_with("em_"), "token {token}");
        tokens.insert(name, token);
    }
    tokens
}

fn release(
    server: &Server,
    token: &str,
    level: &str,
    document: &str,
    county: Option<&str>,
) -> Answer {
    let mut body = json!({
        "program": PROGRAM, "level": level, "document": document, "date": "2025-01-06",
        "from": "2025-01", "to": "2025-03",
    });
    if let Some(c) = county {
        body["county"] = json!(c);
    }
    server.post(token, "/api/v1/allocations", &body)
}

/// Funds Q1 2025 through the API, each level by its own finance user, then disburses to the units.
fn fund(server: &Server, tokens: &BTreeMap<&str, String>) {
    let province = release(
        server,
        &tokens["gd-finance"],
        "province",
        "粤财教〔2025〕1号",
        None,
    );
    assert_eq!(province.status, 200, "{}", province.show());
    // Shantou's city share: only the city's finance may post it, for its own counties.
    let city = release(
        server,
        &tokens["st-finance"],
        "city",
        "汕财教〔2025〕2号",
        None,
    );
    assert_eq!(city.status, 200, "{}", city.show());
    let counties: Vec<&str> = city.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["county"].as_str().unwrap())
        .collect();
    assert!(
        counties.iter().all(|c| c.starts_with("4405")),
        "{counties:?}"
    );
    let gz = release(
        server,
        &tokens["admin"],
        "city",
        "穗财教〔2025〕3号",
        Some("440103"),
    );
    assert_eq!(gz.status, 200, "{}", gz.show());
    for (user, county, doc) in [
        ("jp-finance", "440511", "金财〔2025〕4号"),
        ("lw-finance", "440103", "荔财〔2025〕5号"),
    ] {
        let m = release(server, &tokens[user], "county", doc, Some(county));
        assert_eq!(m.status, 200, "{}", m.show());
    }
    for (user, county, doc, amounts) in [
        // Unit 2 gets only two person-months' worth: the overdraft test below pays against it.
        (
            "jp-finance",
            "440511",
            "金财拨〔2025〕6号",
            Some(json!({"U44051101": "108000.00", "U44051102": "1800.00"})),
        ),
        ("lw-finance", "440103", "荔财拨〔2025〕7号", None),
    ] {
        let mut body = json!({
            "program": PROGRAM, "county": county, "document": doc, "date": "2025-01-08",
            "from": "2025-01", "to": "2025-03",
        });
        if let Some(a) = amounts {
            body["amounts"] = a;
        }
        let d = server.post(&tokens[user], "/api/v1/disbursements", &body);
        assert_eq!(d.status, 200, "{}", d.show());
    }
}

fn held(ledger: &Ledger, unit: &str) -> i64 {
    let csv = ledger.balances(&[]);
    csv.lines()
        .find(|l| l.contains(&format!(",{unit},held,")))
        .map(|l| {
            let amount = l.rsplit(',').next().unwrap().trim();
            let (y, f) = amount.split_once('.').unwrap_or((amount, "00"));
            y.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()
        })
        .unwrap_or(0)
}

#[test]
fn roles_scope_bad_requests_and_the_audit_log() {
    on_every_backend(|ledger| {
        let tokens = setup(ledger);
        let server = Server::start(ledger);
        let people = people();

        // Who am I; no token; an unknown token; the OpenAPI document is public and lists the paths.
        let me = server.get(&tokens["unit1"], "/api/v1/me");
        assert_eq!(me.body["role"], "unit", "{}", me.show());
        let none = answer(agent().get(format!("{}/api/v1/me", server.base)).call());
        assert_eq!(none.status, 401, "{}", none.show());
        assert!(none.error_message().contains("Bearer"), "{}", none.show());
        let unknown = server.get("em_0000_nope", "/api/v1/me");
        assert_eq!(unknown.status, 401);
        assert_eq!(unknown.error_message(), "the token is not known");
        let openapi = answer(agent().get(format!("{}/openapi.json", server.base)).call());
        assert_eq!(openapi.status, 200);
        for path in [
            "/api/v1/payments",
            "/api/v1/allocations",
            "/api/v1/trace/person/{id_number}",
        ] {
            assert!(
                openapi.body["paths"].get(path).is_some(),
                "openapi lacks {path}"
            );
        }

        // Releases: a county's finance may not post the province's release; an inspector posts nothing.
        let before = ledger.snapshot();
        let wrong_level = release(&server, &tokens["jp-finance"], "province", "X1", None);
        assert_eq!(wrong_level.status, 403, "{}", wrong_level.show());
        let inspector = release(&server, &tokens["inspector"], "province", "X2", None);
        assert_eq!(inspector.status, 403, "{}", inspector.show());
        let other_city = release(&server, &tokens["st-finance"], "city", "X3", Some("440103"));
        assert_eq!(other_city.status, 403, "{}", other_city.show());
        assert_eq!(
            before,
            ledger.snapshot(),
            "a refused release wrote something"
        );

        fund(&server, &tokens);

        // A unit pays its own person; not another unit's, not from another unit's funds.
        let pay = |token: &str, unit: &str, id: &str, month: &str| {
            server.post(
                token,
                "/api/v1/payments",
                &json!({"unit": unit, "program": PROGRAM, "date": "2025-01-20",
                        "lines": [{"id_number": id, "month": month}]}),
            )
        };
        let ok = pay(&tokens["unit1"], "U44051101", &people[0][0], "2025-01");
        assert_eq!(ok.status, 200, "{}", ok.show());
        assert_eq!(ok.body["lines"][0]["status"], "paid");
        assert_eq!(ok.body["lines"][0]["amount"], "900.00");
        // Masked unless asked for (and allowed).
        assert!(
            ok.body["lines"][0]["id_number"]
                .as_str()
                .unwrap()
                .contains("********")
        );
        let again = pay(&tokens["unit1"], "U44051101", &people[0][0], "2025-01");
        assert_eq!(again.status, 200, "{}", again.show());
        assert_eq!(
            again.body["lines"][0]["status"], "already",
            "a retry is a no-op"
        );

        let before = ledger.snapshot();
        let other_funds = pay(&tokens["unit1"], "U44010301", &people[2][0], "2025-01");
        assert_eq!(other_funds.status, 403, "{}", other_funds.show());
        let other_person = pay(&tokens["unit1"], "U44051101", &people[2][0], "2025-01");
        assert_eq!(other_person.status, 422, "{}", other_person.show());
        assert!(
            other_person.body["error"]["details"][0]
                .as_str()
                .unwrap()
                .contains("not on unit U44051101's roster")
        );
        let twice = server.post(
            &tokens["unit1"],
            "/api/v1/payments",
            &json!({"unit": "U44051101", "program": PROGRAM, "date": "2025-01-20",
                    "lines": [{"id_number": people[0][1], "month": "2025-01"},
                              {"id_number": people[0][0], "month": "2025-02"},
                              {"id_number": people[0][1], "month": "2025-01"}]}),
        );
        assert_eq!(twice.status, 422, "{}", twice.show());
        assert!(twice.text.contains("listed twice"), "{}", twice.show());
        let advance = pay(&tokens["unit1"], "U44051101", &people[0][2], "9999-12");
        assert_eq!(advance.status, 422, "{}", advance.show());
        assert!(
            advance.text.contains("nothing is paid in advance"),
            "{}",
            advance.show()
        );
        let inspector_pays = pay(&tokens["inspector"], "U44051101", &people[0][2], "2025-01");
        assert_eq!(inspector_pays.status, 403, "{}", inspector_pays.show());
        let full_denied = server.post(
            &tokens["unit3"],
            "/api/v1/payments",
            &json!({"unit": "U44010301", "program": PROGRAM, "date": "2025-01-20", "full": true,
                    "lines": [{"id_number": people[2][0], "month": "2025-01"}]}),
        );
        assert_eq!(
            full_denied.status,
            403,
            "no personal-data right: {}",
            full_denied.show()
        );
        assert_eq!(
            before,
            ledger.snapshot(),
            "a refused payment wrote something"
        );

        // A county reads its own county, not another's; a unit only its own accounts.
        let own = server.get(&tokens["jp-finance"], "/api/v1/balances?county=440511");
        assert_eq!(own.status, 200, "{}", own.show());
        let other = server.get(&tokens["jp-finance"], "/api/v1/balances?county=440103");
        assert_eq!(other.status, 403, "{}", other.show());
        let trace_other = server.get(
            &tokens["jp-finance"],
            &format!("/api/v1/trace/person/{}", people[2][0]),
        );
        assert_eq!(trace_other.status, 403, "{}", trace_other.show());
        let trace_own = server.get(
            &tokens["inspector"],
            &format!("/api/v1/trace/person/{}", people[0][0]),
        );
        assert_eq!(trace_own.status, 200, "{}", trace_own.show());
        let unit_balances = server.get(&tokens["unit1"], "/api/v1/balances");
        assert_eq!(unit_balances.status, 200, "{}", unit_balances.show());
        assert!(
            unit_balances
                .body
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["owner"] == "U44051101")
        );
        let unit_report = server.get(
            &tokens["unit1"],
            "/api/v1/reports/reconciliation?program=MBDK",
        );
        assert_eq!(unit_report.status, 403);
        let county_report = server.get(
            &tokens["jp-finance"],
            "/api/v1/reports/reconciliation?program=MBDK&county=440511&format=csv",
        );
        assert_eq!(county_report.status, 200, "{}", county_report.show());
        assert!(county_report.text.starts_with('\u{feff}'), "CSV with BOM");
        let province_report = server.get(
            &tokens["jp-finance"],
            "/api/v1/reports/reconciliation?program=MBDK",
        );
        assert_eq!(province_report.status, 403, "{}", province_report.show());

        // The county's and the city's tables run on the same engine, scoped the same way.
        let city_table = server.get(
            &tokens["st-finance"],
            "/api/v1/reports/table_city_summary?program=MBDK&city=440500&year=2025",
        );
        assert_eq!(city_table.status, 200, "{}", city_table.show());
        let row = city_table.body["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["county_code"] == "440511")
            .cloned()
            .unwrap_or_default();
        assert_eq!(row["persons"], 44, "Jinping's 44 people: {row}");
        assert_eq!(row["tier_30"], 44, "all in the top tier: {row}");
        let not_theirs = server.get(
            &tokens["jp-finance"],
            "/api/v1/reports/table_city_summary?program=MBDK&city=440500&year=2025",
        );
        assert_eq!(not_theirs.status, 403, "{}", not_theirs.show());
        let roster_xlsx = server.get(
            &tokens["jp-finance"],
            "/api/v1/reports/table_roster?program=MBDK&county=440511&year=2025&format=xlsx",
        );
        assert_eq!(roster_xlsx.status, 200);
        let whole_ids = server.get(
            &tokens["lw-finance"],
            "/api/v1/reports/table_roster?program=MBDK&county=440103&year=2025",
        );
        assert_eq!(
            whole_ids.status,
            403,
            "whole IDs need the right: {}",
            whole_ids.show()
        );
        let no_year = server.get(
            &tokens["jp-finance"],
            "/api/v1/reports/table_roster?program=MBDK&county=440511",
        );
        assert_eq!(no_year.status, 400, "{}", no_year.show());
        assert!(
            no_year.error_message().contains("year"),
            "{}",
            no_year.show()
        );

        // People: masked by default, full only for a user with the right who asks.
        let masked = server.get(
            &tokens["unit1"],
            "/api/v1/units/U44051101/people?program=MBDK",
        );
        assert!(masked.body[0]["id_number"].as_str().unwrap().contains('*'));
        assert!(
            masked.body[0]["bank_account"]
                .as_str()
                .unwrap()
                .starts_with("****")
        );
        let full = server.get(
            &tokens["unit1"],
            "/api/v1/units/U44051101/people?program=MBDK&full=true",
        );
        assert_eq!(full.status, 200, "{}", full.show());
        assert!(!full.body[0]["id_number"].as_str().unwrap().contains('*'));
        let theirs = server.get(
            &tokens["unit1"],
            "/api/v1/units/U44010301/people?program=MBDK",
        );
        assert_eq!(theirs.status, 403);

        // Bad requests: JSON errors, 4xx, nothing written.
        let before = ledger.snapshot();
        let syntax = server.post_raw(
            &tokens["admin"],
            "/api/v1/payments",
            "application/json",
            b"{\"unit\":".to_vec(),
        );
        assert_eq!(syntax.status, 400, "{}", syntax.show());
        assert_eq!(syntax.body["error"]["code"], "bad_request");
        let types = server.post(
            &tokens["admin"],
            "/api/v1/payments",
            &json!({"unit": 5, "program": PROGRAM, "date": "2025-01-20", "lines": []}),
        );
        assert_eq!(types.status, 422, "{}", types.show());
        assert!(types.error_message().contains("unit"), "{}", types.show());
        let missing = server.post(
            &tokens["admin"],
            "/api/v1/payments",
            &json!({"unit": "U44051101"}),
        );
        assert_eq!(missing.status, 422, "{}", missing.show());
        assert!(
            missing.error_message().contains("missing field"),
            "{}",
            missing.show()
        );
        let bad_date = server.post(
            &tokens["admin"],
            "/api/v1/payments",
            &json!({"unit": "U44051101", "program": PROGRAM, "date": "2025-02-30", "lines": []}),
        );
        assert_eq!(bad_date.status, 422, "{}", bad_date.show());
        let not_json = server.post_raw(
            &tokens["admin"],
            "/api/v1/payments",
            "text/plain",
            b"hello".to_vec(),
        );
        assert_eq!(not_json.status, 415, "{}", not_json.show());
        let huge = server.post_raw(
            &tokens["admin"],
            "/api/v1/payments",
            "application/json",
            vec![b' '; 65 * 1024 * 1024],
        );
        assert_eq!(huge.status, 413, "{}", huge.show());
        assert_eq!(huge.body["error"]["code"], "too_large");
        let no_route = server.get(&tokens["admin"], "/api/v1/nothing-here");
        assert_eq!(no_route.status, 404);
        assert_eq!(no_route.body["error"]["code"], "not_found");
        let bad_result = server.post_raw(
            &tokens["unit1"],
            "/api/v1/bank-results?name=x.csv",
            "application/octet-stream",
            b"not,a,bank,file\n".to_vec(),
        );
        assert!(
            bad_result.status == 422 || bad_result.status == 404,
            "{}",
            bad_result.show()
        );
        assert_eq!(before, ledger.snapshot(), "a bad request wrote something");

        // Raw entries and their reversal, by the county's finance only; the hledger export.
        let entry = json!({"entries": [{"key": "adj-1", "date": "2025-01-31", "county": "440511",
            "program": PROGRAM, "memo": "调整", "postings": [
                {"account": "440511:held", "amount": "1.00"},
                {"account": "440511:budget", "amount": "-1.00"}]}]});
        let wrong_county = server.post(&tokens["lw-finance"], "/api/v1/entries", &entry);
        assert_eq!(wrong_county.status, 403, "{}", wrong_county.show());
        let raw = server.post(&tokens["jp-finance"], "/api/v1/entries", &entry);
        assert_eq!(raw.status, 200, "{}", raw.show());
        assert_eq!(raw.body[0]["status"], "posted");
        let no_reason = server.post(
            &tokens["jp-finance"],
            "/api/v1/entries/adj-1/resolution",
            &json!({"action": "reverse"}),
        );
        assert_eq!(no_reason.status, 422, "{}", no_reason.show());
        let reversed = server.post(
            &tokens["jp-finance"],
            "/api/v1/entries/adj-1/resolution",
            &json!({"action": "reverse", "reason": "录入错误"}),
        );
        assert_eq!(reversed.status, 200, "{}", reversed.show());
        assert_eq!(reversed.body["key"], "reverse:adj-1");
        let journal = server.get(&tokens["inspector"], "/api/v1/export/journal");
        assert_eq!(journal.status, 200);
        assert!(
            journal.text.contains("reverse:adj-1"),
            "the journal has the reversal"
        );
        assert_eq!(
            server
                .get(&tokens["jp-finance"], "/api/v1/export/journal")
                .status,
            403
        );
        let deaths = format!(
            "id_number,death_date,source\n{},2025-06-01,卫健\n",
            people[2][1]
        );
        let other_deaths = server.post_raw(
            &tokens["jp-finance"],
            "/api/v1/life-events/deaths?name=d.csv",
            "text/csv",
            deaths.clone().into_bytes(),
        );
        assert_eq!(other_deaths.status, 403, "{}", other_deaths.show());
        let own_deaths = server.post_raw(
            &tokens["lw-finance"],
            "/api/v1/life-events/deaths?name=d.csv",
            "text/csv",
            deaths.into_bytes(),
        );
        assert_eq!(own_deaths.status, 200, "{}", own_deaths.show());
        assert_eq!(own_deaths.body["recorded"], 1);

        // Revoked and expired tokens.
        let revoked = ledger
            .ok(&["user", "token", "unit3"])
            .stdout
            .trim()
            .to_string();
        assert_eq!(server.get(&revoked, "/api/v1/me").status, 200);
        let id = revoked.split('_').nth(1).unwrap().to_string();
        ledger.ok(&["user", "revoke", &id]);
        let after = server.get(&revoked, "/api/v1/me");
        assert_eq!(after.status, 401);
        assert!(
            after.error_message().contains("revoked"),
            "{}",
            after.show()
        );
        let expired = ledger
            .ok(&["user", "token", "unit3", "--days", "0"])
            .stdout
            .trim()
            .to_string();
        let answer = server.get(&expired, "/api/v1/me");
        assert_eq!(answer.status, 401);
        assert!(
            answer.error_message().contains("expired"),
            "{}",
            answer.show()
        );

        // The audit log: every state-changing request, refused ones too; inspectors read it, units don't.
        let log = server.get(&tokens["inspector"], "/api/v1/audit?limit=1000");
        assert_eq!(log.status, 200, "{}", log.show());
        let records = log.body.as_array().unwrap();
        let paid = records
            .iter()
            .find(|r| {
                r["user"] == "unit1"
                    && r["status"] == 200
                    && r["path"] == "/api/v1/payments"
                    && r["entries"] != ""
            })
            .expect("the payment is in the audit log");
        assert!(
            paid["entries"].as_str().unwrap().starts_with("pay:MBDK:"),
            "{paid}"
        );
        assert_eq!(paid["body_sha256"].as_str().unwrap().len(), 64);
        assert!(
            records
                .iter()
                .any(|r| r["user"] == "inspector" && r["status"] == 403)
        );
        assert!(
            records
                .iter()
                .any(|r| r["user"] == "(anonymous)" || r["status"] == 413)
        );
        assert_eq!(server.get(&tokens["unit1"], "/api/v1/audit").status, 403);

        let check = server.get(&tokens["inspector"], "/api/v1/check");
        assert_eq!(check.body["ok"], true, "{}", check.show());
        let verify = server.get(&tokens["inspector"], "/api/v1/verify");
        assert_eq!(verify.body["ok"], true, "{}", verify.show());
    });
}

#[test]
fn thirty_two_clients_paying_from_one_unit() {
    on_every_backend(|ledger| {
        let tokens = setup(ledger);
        let server = Server::start(ledger);
        fund(&server, &tokens);
        let people = Arc::new(people());
        let held_before = held(ledger, "U44051101");
        let held_before_2 = held(ledger, "U44051102");
        assert_eq!(held_before, 40 * 3 * MONTHLY_FEN);
        let base = Arc::new(server.base.clone());
        let token = Arc::new(tokens["unit1"].clone());
        let admin = Arc::new(tokens["admin"].clone());
        let months = ["2025-01", "2025-02", "2025-03"];
        // Every client tries to pay every person-month of unit 1 (in its own order), one line per
        // request, and unit 2's four people for the quarter, whose funds cover only two payments.
        let threads: Vec<_> = (0..32)
            .map(|client| {
                let (people, base, token, admin) =
                    (people.clone(), base.clone(), token.clone(), admin.clone());
                std::thread::spawn(move || {
                    let mut statuses = BTreeMap::<u16, usize>::new();
                    let agent = agent();
                    let mut work: Vec<(usize, &str, &str)> = Vec::new();
                    for (u, ids) in people.iter().enumerate().take(2) {
                        for id in ids {
                            for m in months {
                                work.push((u, id, m));
                            }
                        }
                    }
                    // A different order for each client.
                    let n = work.len();
                    for i in 0..n {
                        work.swap(i, (i * 7 + client * 13) % n);
                    }
                    for (u, id, month) in work {
                        let (unit, tok) = if u == 0 {
                            ("U44051101", token.as_str())
                        } else {
                            ("U44051102", admin.as_str())
                        };
                        let a = answer(
                            agent
                                .post(format!("{base}/api/v1/payments"))
                                .header("Authorization", format!("Bearer {tok}"))
                                .send_json(json!({"unit": unit, "program": PROGRAM,
                                    "date": "2025-03-25",
                                    "lines": [{"id_number": id, "month": month}]})),
                        );
                        assert!(a.status < 500, "a server error: {}", a.show());
                        if a.status == 422 {
                            let text = a.text.clone();
                            assert!(
                                text.contains("E1016") || text.contains("already paid"),
                                "unexpected refusal: {text}"
                            );
                        }
                        *statuses.entry(a.status).or_default() += 1;
                        if a.status == 200 && a.body["lines"][0]["status"] == "paid" {
                            *statuses.entry(0).or_default() += 1;
                        }
                    }
                    statuses
                })
            })
            .collect();
        let mut statuses = BTreeMap::<u16, usize>::new();
        for t in threads {
            for (s, n) in t.join().expect("a client panicked") {
                *statuses.entry(s).or_default() += n;
            }
        }
        eprintln!("[{:?}] statuses: {statuses:?}", ledger.kind());
        // Exactly one answer said `paid` for each person-month paid: 120 of unit 1, 2 of unit 2.
        assert_eq!(statuses.remove(&0), Some(40 * 3 + 2), "{statuses:?}");
        // Unit 1: every person-month paid exactly once.
        let paid_1 = 40 * 3 * MONTHLY_FEN;
        assert_eq!(held(ledger, "U44051101"), held_before - paid_1);
        // Unit 2: two payments fit; the rest were refused as overdrafts; never negative.
        assert_eq!(held_before_2, 2 * MONTHLY_FEN);
        assert_eq!(held(ledger, "U44051102"), 0);
        // Nobody is owed or overpaid: a refused payment accrued nothing either.
        let balances = ledger.balances(&["--all"]);
        let payable: Vec<&str> = balances
            .lines()
            .filter(|l| l.contains(",payable,") && !l.ends_with(",0.00"))
            .collect();
        assert!(payable.is_empty(), "{payable:?}");
        ledger.ok(&["check"]).assert_stdout_has("OK");
        ledger.ok(&["verify"]).assert_stdout_has("OK");
        // Everything the clients did is in the audit log, one record per request.
        let total: usize = statuses.values().sum();
        let log = server.get(&tokens["admin"], "/api/v1/audit?limit=10000");
        let posts = log
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["path"] == "/api/v1/payments")
            .count();
        assert_eq!(posts, total, "one audit record per payment request");
    });
}

#[test]
fn posting_time_rules_block_and_warn_by_name() {
    on_every_backend(|ledger| {
        let tokens = setup(ledger);
        let server = Server::start(ledger);
        let people = people();
        fund(&server, &tokens);
        let admin = &tokens["admin"];
        let pay = |id: &str, month: &str| {
            server.post(
                admin,
                "/api/v1/payments",
                &json!({"unit": "U44051101", "program": PROGRAM, "date": "2025-02-20",
                        "lines": [{"id_number": id, "month": month}]}),
            )
        };

        // R01: a death known before the month blocks the payment.
        let deaths = format!(
            "id_number,death_date,source\n{},2024-12-10,公安户籍\n",
            people[0][5]
        );
        ledger.ok(&["import", "deaths", ledger.write("deaths.csv", deaths)]);
        let dead = pay(&people[0][5], "2025-01");
        assert_eq!(dead.status, 422, "{}", dead.show());
        assert!(
            dead.text.contains("R01 死亡后仍发放: died 2024-12-10"),
            "{}",
            dead.show()
        );

        // R03: paid directly, then a batch for the month screens the person out by name.
        assert_eq!(pay(&people[0][6], "2025-01").status, 200);
        let batch = ledger.ok(&[
            "payout",
            "create",
            "--unit",
            "U44051101",
            "--program",
            PROGRAM,
            "--month",
            "2025-01",
            "--date",
            "2025-01-21",
            "--out",
            "bank",
        ]);
        batch.assert_stdout_has("R03 同一人同月重复发放: already paid for 2025-01");
        batch.assert_stdout_has("R01 死亡后仍发放: died 2024-12-10");
        let again = pay(&people[0][7], "2025-01");
        assert_eq!(again.status, 422, "waiting on the bank: {}", again.show());
        assert!(again.text.contains("R03"), "{}", again.show());

        // R05: two people sharing one bank account are paid, with a warning naming the rule.
        let roster = ledger.read("roster.csv");
        let account_1 = roster
            .lines()
            .find(|l| l.starts_with(&people[0][1]))
            .unwrap()
            .split(',')
            .nth(8)
            .unwrap()
            .to_string();
        let account_2 = roster
            .lines()
            .find(|l| l.starts_with(&people[0][2]))
            .unwrap()
            .split(',')
            .nth(8)
            .unwrap()
            .to_string();
        let shared = roster.replacen(&account_2, &account_1, 1);
        ledger.ok(&[
            "import",
            "roster",
            "--program",
            PROGRAM,
            ledger.write("roster2.csv", shared),
        ]);
        let feb = ledger.ok(&[
            "payout",
            "create",
            "--unit",
            "U44051101",
            "--program",
            PROGRAM,
            "--month",
            "2025-02",
            "--date",
            "2025-02-21",
            "--out",
            "bank",
        ]);
        feb.assert_stdout_has("paid with a warning (2)");
        feb.assert_stdout_has("R05 多人共用同一银行账户");

        // R06: someone who reaches 60 only in 2026 is not paid in 2025, by name.
        let young = make_id("440511", common::day("1966-05-05"), 901)
            .as_str()
            .to_string();
        let mut roster = ledger.read("roster2.csv");
        roster.push_str(&format!(
            "{young},青年,男,1966-05-05,60,440511,,U44051101,6222999999999999,,\n"
        ));
        ledger.ok(&[
            "import",
            "roster",
            "--program",
            PROGRAM,
            ledger.write("roster3.csv", roster),
        ]);
        let under = pay(&young, "2025-02");
        assert_eq!(under.status, 422, "{}", under.show());
        assert!(
            under
                .text
                .contains("R06 未达规定年龄即发放: reaches 60 on 2026-05-05"),
            "{}",
            under.show()
        );

        // R08: a release below the computed share is posted with a warning.
        let short = server.post(
            admin,
            "/api/v1/allocations",
            &json!({"program": PROGRAM, "level": "province", "document": "粤财教〔2025〕9号",
                    "date": "2025-04-01", "from": "2025-04", "to": "2025-04", "county": "440511",
                    "amounts": {"440511": "100.00"}}),
        );
        assert_eq!(short.status, 200, "{}", short.show());
        let warning = short.body["lines"][0]["warning"]
            .as_str()
            .unwrap_or_default();
        assert!(
            warning.starts_with("R08 分担资金未足额到位"),
            "{}",
            short.show()
        );
        ledger.ok(&["check"]);
    });
}
