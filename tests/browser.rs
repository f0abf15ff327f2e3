//! The dashboard in a real browser (issue 7): headless Chromium, driven through chromedriver's W3C
//! WebDriver protocol, logs in with an inspector's token, opens the dashboard of a demo year,
//! follows a finding to its trace and downloads a spot-check workpaper.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); `CHROMEDRIVER` may
//! name another chromedriver binary.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use calamine::Reader;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_earmark");
/// The demo's year: findings are swept and the dashboard is read as of its last day.
const AS_OF: &str = "2025-12-31";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const SEED: &str = "7";

/// Runs the CLI on the demo database and returns its stdout, failing the test on a non-zero exit.
fn earmark(db: &Path, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run earmark");
    assert!(
        output.status.success(),
        "earmark {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Kills what the test started, even when an assertion fails: the browser session first (so
/// chromedriver closes Chromium), then chromedriver and the server.
struct Guard {
    children: Vec<(&'static str, Child)>,
    session: Option<(ureq::Agent, String)>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some((agent, url)) = self.session.take() {
            let _ = agent.delete(&url).call();
        }
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A WebDriver session: the few commands the test needs.
struct Browser {
    agent: ureq::Agent,
    session: String,
}

impl Browser {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        };
        let mut response = result.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = response.status();
        let answer: Value = response
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: unreadable answer: {e}"));
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {}",
            answer["value"]
        );
        answer["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn source(&self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (up to 15 s) for an element to be on the page, since clicks start navigations.
    fn wait_for(&self, css: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(e) = self.find_all(css).into_iter().next() {
                return e;
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!(
                    "no {css} on {} after 15 s; the page:\n{}",
                    self.url(),
                    self.source()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to 15 s) for the page's path to start with `prefix`.
    fn wait_for_path(&self, prefix: &str) -> String {
        let start = Instant::now();
        loop {
            let url = self.url();
            if path_of(&url).starts_with(prefix) {
                return url;
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!(
                    "still at {url}, not {prefix}, after 15 s; the page:\n{}",
                    self.source()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.call("GET", &format!("/element/{element}/attribute/{name}"), None)
            .as_str()
            .map(str::to_string)
    }

    fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), None);
    }

    /// Replaces the value of an input by typing `text` into it.
    fn fill(&self, css: &str, text: &str) {
        let element = self.wait_for(css);
        self.call("POST", &format!("/element/{element}/clear"), None);
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }
}

/// The path and query of an absolute URL.
fn path_of(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url)
}

/// A masked ID number as the dashboard shows it: 6 digits, 8 stars, 3 digits and a check character.
fn is_masked_id(text: &str) -> bool {
    let chars: Vec<char> = text.trim().chars().collect();
    chars.len() == 18
        && chars[..6].iter().all(char::is_ascii_digit)
        && chars[6..14].iter().all(|&c| c == '*')
        && chars[14..17].iter().all(char::is_ascii_digit)
        && (chars[17].is_ascii_digit() || chars[17] == 'X')
}

/// Starts `earmark serve` on a free port and returns it with the base URL it printed.
fn start_server(db: &Path, bank: &Path, log: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(db)
        .args(["serve", "--addr", "127.0.0.1:0", "--out"])
        .arg(bank)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("server log"))
        .spawn()
        .expect("start earmark serve");
    let stdout = child.stdout.take().expect("the server's stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let first = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server printed no address ({other:?}); its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    };
    let base = first
        .strip_prefix("earmark serving on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line from the server: {first}"))
        .trim_end_matches('/')
        .to_string();
    assert!(
        base.starts_with("http://127.0.0.1:"),
        "unexpected address in: {first}"
    );
    (child, base)
}

/// Starts chromedriver on a free port and waits for `/status` to say it is ready.
fn start_chromedriver(agent: &ureq::Agent, log: &Path) -> (Child, String) {
    let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let port = free_port();
    let mut child = Command::new(&binary)
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {binary} ({e}): the browser test needs headless Chromium, \
                 `apt-get install -y chromium chromium-driver`"
            )
        });
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        let ready = agent
            .get(format!("{base}/status"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
            .is_some_and(|v| v["value"]["ready"] == json!(true));
        if ready {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromedriver on port {port} not ready after 20 s; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, base)
}

#[test]
fn an_inspector_logs_in_follows_a_finding_to_its_trace_and_downloads_a_workpaper() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let downloads = tempfile::tempdir().expect("download dir");
    let db = dir.path().join("demo.db");

    // A reproducible small province-year, its findings recorded, and an inspector of Guangdong.
    let demo = earmark(
        &db,
        &[
            "demo",
            "--scale",
            "small",
            "--out",
            &dir.path().join("demo-output").display().to_string(),
        ],
    );
    assert!(demo.contains("deaths found"), "{demo}");
    let sweep = earmark(&db, &["checks", "sweep", "--as-of", AS_OF, "--record"]);
    assert!(
        sweep.contains("R01"),
        "the demo's deaths are findings:\n{sweep}"
    );
    earmark(
        &db,
        &[
            "user",
            "add",
            "insp",
            "--role",
            "inspector",
            "--scope",
            "440000",
        ],
    );
    let token = earmark(&db, &["user", "token", "insp"]).trim().to_string();
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "{token:?}"
    );

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    // What the dashboard should do but does not: reported together at the end, so that one defect
    // does not hide the rest of the walk.
    let mut defects: Vec<String> = Vec::new();
    let mut guard = Guard {
        children: Vec::new(),
        session: None,
    };
    let server_log = dir.path().join("server.log");
    let (server, base) = start_server(&db, &dir.path().join("bank"), &server_log);
    guard.children.push(("earmark serve", server));
    let driver_log = dir.path().join("chromedriver.log");
    let (driver, driver_url) = start_chromedriver(&agent, &driver_log);
    guard.children.push(("chromedriver", driver));

    let capabilities = json!({
        "capabilities": {
            "alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:chromeOptions": {
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--window-size=1280,1024",
                    ],
                    "prefs": {
                        "download.default_directory": downloads.path().display().to_string(),
                        "download.prompt_for_download": false,
                        "download.directory_upgrade": true,
                        "safebrowsing.enabled": false,
                    },
                },
            },
        },
    });
    let mut created = agent
        .post(format!("{driver_url}/session"))
        .send_json(&capabilities)
        .expect("create a WebDriver session");
    let status = created.status();
    let answer: Value = created.body_mut().read_json().expect("session answer");
    let session_id = answer["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "no session ({status}): {}\nchromedriver log:\n{}",
                answer["value"],
                std::fs::read_to_string(&driver_log).unwrap_or_default()
            )
        })
        .to_string();
    let session = format!("{driver_url}/session/{session_id}");
    guard.session = Some((agent.clone(), session.clone()));
    let browser = Browser {
        agent: agent.clone(),
        session,
    };

    // Without a login, the dashboard sends the browser to the login form.
    browser.goto(&format!("{base}/dashboard"));
    let url = browser.wait_for_path("/login");
    assert_eq!(path_of(&url), "/login", "{url}");
    browser.wait_for("input#token");
    browser.wait_for("button#login");

    // Log in through the form: type the token, click the button, land on the dashboard.
    browser.fill("input#token", &token);
    let login = browser.wait_for("button#login");
    browser.click(&login);
    let url = browser.wait_for_path("/dashboard");
    assert!(
        path_of(&url) == "/dashboard" || path_of(&url).starts_with("/dashboard?"),
        "after login: {url}"
    );
    browser.wait_for("section#findings");

    // The demo year's dashboard: the progress chart, the deadlines and the recorded findings.
    let dashboard = format!("{base}/dashboard?program=MBDK&as_of={AS_OF}");
    browser.goto(&dashboard);
    browser.wait_for_path("/dashboard?");
    browser.wait_for("section#progress-city svg rect");
    browser.wait_for("section#deadlines");
    let findings = browser.wait_for("section#findings");
    let heading = browser.text(&browser.wait_for("section#findings h2"));
    assert!(heading.contains("Findings"), "{heading}");
    let links = browser.find_all("section#findings a.trace");
    assert!(
        !links.is_empty(),
        "no trace link among the findings: {}",
        browser.text(&findings)
    );
    // The first finding is a death (R01) of a person: its masked ID cell links to the trace.
    let cells: Vec<String> = browser
        .find_all("section#findings tbody tr:first-child td")
        .iter()
        .map(|c| browser.text(c))
        .collect();
    assert!(cells.iter().any(|c| c == "R01"), "{cells:?}");
    let masked = cells
        .iter()
        .find(|c| is_masked_id(c))
        .unwrap_or_else(|| panic!("the finding shows a masked ID number: {cells:?}"))
        .clone();
    let link = browser
        .find_all("section#findings tbody tr:first-child a.trace")
        .into_iter()
        .next()
        .expect("the first finding links to its trace");
    let href = browser.attribute(&link, "href").unwrap_or_default();
    assert!(
        href.starts_with("/dashboard/trace?finding="),
        "a finding's link goes to the trace of its person: {href}"
    );
    let link_text = browser.text(&link);
    if link_text != masked {
        defects.push(format!(
            "the trace link is on the cell {link_text:?}, not on the masked ID number {masked:?} \
             (src/api/dashboard.rs takes the first column whose name contains \"id\", the finding's \
             number, instead of \"id_number\")"
        ));
    }

    // Follow the finding to the person's trail.
    browser.click(&link);
    let url = browser.wait_for_path("/dashboard/trace");
    assert!(url.contains("finding="), "{url}");
    let trace = browser.wait_for("section#trace");
    let title = browser.text(&browser.wait_for("section#trace h2"));
    assert!(
        title.contains(&masked),
        "the trace names the person of the finding ({masked}): {title}"
    );
    let tables = browser.find_all("section#trace table");
    assert!(
        tables.len() >= 2,
        "the trail, roster and payments: {}",
        browser.text(&trace)
    );
    let rows = browser.find_all("section#trace table tbody tr");
    assert!(
        !rows.is_empty(),
        "the trail has rows: {}",
        browser.text(&trace)
    );
    let trace_text = browser.text(&trace);
    assert!(
        trace_text.contains("资金轨迹") && trace_text.contains("MBDK"),
        "{trace_text}"
    );

    // Back to the dashboard, and a spot check of one county's first half-year as a workpaper.
    browser.call("POST", "/back", None);
    let url = browser.wait_for_path("/dashboard?");
    assert!(url.contains(&format!("as_of={AS_OF}")), "{url}");
    browser.wait_for("section#spot-check form");
    browser.fill("#sc-county", "440103");
    browser.fill("#sc-from", "2025-01");
    browser.fill("#sc-to", "2025-06");
    browser.fill("#sc-size", "10");
    browser.fill("#sc-seed", SEED);
    let simple = browser.wait_for("section#spot-check select option[value=\"simple\"]");
    browser.click(&simple);
    let submit = browser.wait_for("button#sc-submit");
    browser.click(&submit);

    let expected = format!("workpaper-{SEED}.xlsx");
    let file = wait_for_download(downloads.path(), &expected, Duration::from_secs(30))
        .unwrap_or_else(|seen| {
            panic!(
                "no {expected} in the download folder after 30 s (saw {seen:?}); the page at {}:\n{}\nserver log:\n{}",
                browser.url(),
                browser.source(),
                std::fs::read_to_string(&server_log).unwrap_or_default()
            )
        });

    let mut workbook = calamine::open_workbook_auto(&file).expect("open the workpaper");
    let sheets = workbook.sheet_names();
    assert!(sheets.len() >= 2, "cover and sample: {sheets:?}");
    assert_eq!(sheets[0], "封面", "{sheets:?}");
    let cover = workbook
        .worksheet_range(&sheets[0])
        .expect("the cover sheet");
    let lines: Vec<Vec<String>> = cover
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let seed_line = lines
        .iter()
        .find(|r| r.first().is_some_and(|c| c.contains("随机种子")))
        .unwrap_or_else(|| panic!("the cover names the seed: {lines:?}"));
    assert_eq!(
        seed_line.get(1).map(|s| s.trim()),
        Some(SEED),
        "{seed_line:?}"
    );
    assert!(
        lines.iter().flatten().any(|c| c.contains("440103")),
        "the cover names the county: {lines:?}"
    );
    let sample = workbook
        .worksheet_range(&sheets[1])
        .expect("the sample sheet");
    assert!(sample.height() > 1, "a header and sampled payments");

    drop(guard);
    eprintln!(
        "browser test done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        defects.is_empty(),
        "the dashboard is not as intended:\n- {}",
        defects.join("\n- ")
    );
}

/// Polls the download folder until `name` is there and complete (Chromium writes `.crdownload`
/// first); on timeout, what the folder held.
fn wait_for_download(dir: &Path, name: &str, timeout: Duration) -> Result<PathBuf, Vec<String>> {
    let start = Instant::now();
    loop {
        let seen: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let path = dir.join(name);
        let partial = seen.iter().any(|s| s.ends_with(".crdownload"));
        if !partial && path.is_file() && std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            return Ok(path);
        }
        if start.elapsed() > timeout {
            return Err(seen);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
