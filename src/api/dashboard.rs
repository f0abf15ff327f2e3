//! The dashboard: server-rendered pages in Chinese with inline styles and SVG charts, so they work
//! offline on a government intranet (no script, font or stylesheet is fetched from anywhere).
//! Login takes an API token and keeps it in an HttpOnly, SameSite=Strict cookie.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{ApiError, ApiQuery, Auth, Shared};
use crate::money::Fen;
use crate::report::{Cell, Sheet};
use crate::service::{self, Role, User};

const COOKIE: &str = "earmark_token";

pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/", get(index))
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout))
        .route("/dashboard", get(dashboard))
        .route("/dashboard/trace", get(trace_page))
        .route("/dashboard/spot-check", post(spot_check))
}

pub(super) fn cookie_token(parts: &Parts) -> Option<String> {
    let cookies = parts.headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty()).then(|| value.to_string())
    })
}

pub(super) fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:0;color:#222;background:#f6f7f9}\
header{background:#8b1a1a;color:#fff;padding:10px 24px;display:flex;justify-content:space-between;align-items:center}\
header a{color:#fff}main{padding:16px 24px;max-width:1200px}\
section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:12px 16px;margin-bottom:16px}\
h1{font-size:20px;margin:0}h2{font-size:17px;margin:4px 0 10px}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border:1px solid #ccc;padding:4px 6px;text-align:left}\
th{background:#eef0f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.bad{color:#b00020;font-weight:bold}.ok{color:#176b2c}form.inline{display:flex;gap:8px;flex-wrap:wrap;align-items:end}\
label{display:flex;flex-direction:column;font-size:13px}input,select,button{font-size:14px;padding:4px 6px}\
.muted{color:#666;font-size:12px}";

fn page(title: &str, user: Option<&User>, body: &str) -> Html<String> {
    let who = user
        .map(|u| {
            format!(
                "<span>{} · {} · {}</span> <a href=\"/logout\">退出 Log out</a>",
                escape(&u.name),
                u.role.label_zh(),
                escape(&u.scope)
            )
        })
        .unwrap_or_default();
    Html(format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · earmark 专项资金台账</title><style>{STYLE}</style></head><body>\
         <header><h1><a href=\"/dashboard\" style=\"text-decoration:none\">earmark 专项资金台账</a></h1>{who}</header>\
         <main>{body}</main></body></html>",
        escape(title)
    ))
}

async fn index(request: axum::extract::Request) -> Response {
    if request.extensions().get::<User>().is_some() {
        Redirect::to("/dashboard").into_response()
    } else {
        to_login()
    }
}

async fn login_form() -> Html<String> {
    login_page("")
}

fn login_page(message: &str) -> Html<String> {
    page(
        "登录",
        None,
        &format!(
            "<section><h2>登录 Log in</h2>{}\
             <form method=\"post\" action=\"/login\" class=\"inline\">\
             <label>访问令牌 API token<input type=\"password\" name=\"token\" id=\"token\" size=\"60\" required></label>\
             <button type=\"submit\" id=\"login\">登录</button></form>\
             <p class=\"muted\">令牌由管理员用 <code>earmark user token NAME</code> 签发。\
             Tokens are issued with <code>earmark user token NAME</code>.</p></section>",
            if message.is_empty() {
                String::new()
            } else {
                format!("<p class=\"bad\">{}</p>", escape(message))
            }
        ),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(state): State<Shared>, Form(form): Form<LoginForm>) -> Response {
    match service::authenticate(&state.store, &form.token).await {
        Ok(_) => {
            let mut response = Redirect::to("/dashboard").into_response();
            if let Ok(value) = HeaderValue::from_str(&format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                form.token.trim()
            )) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => (
            StatusCode::UNAUTHORIZED,
            login_page(&format!("登录失败: {e}")),
        )
            .into_response(),
    }
}

async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("earmark_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

#[derive(Deserialize)]
struct DashboardParams {
    program: Option<String>,
    as_of: Option<chrono::NaiveDate>,
}

fn money_of(cell: Option<&Cell>) -> Fen {
    match cell {
        Some(Cell::Money(f)) => *f,
        _ => Fen::ZERO,
    }
}

fn column(sheet: &Sheet, name: &str) -> Option<usize> {
    sheet.columns.iter().position(|c| c.name == name)
}

/// A horizontal bar chart in SVG: one bar per label, the available amount in grey and the paid
/// part over it in red, with the execution rate (支出进度) written beside it.
fn progress_chart(rows: &[(String, Fen, Fen)]) -> String {
    if rows.is_empty() {
        return "<p class=\"muted\">暂无数据 No data yet.</p>".into();
    }
    let max = rows
        .iter()
        .map(|r| r.1.get().max(r.2.get()))
        .max()
        .unwrap_or(1)
        .max(1);
    let bar_h = 18;
    let height = rows.len() * (bar_h + 6) + 10;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"支出进度\" width=\"100%\" viewBox=\"0 0 900 {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">"
    );
    for (i, (label, available, paid)) in rows.iter().enumerate() {
        let y = 5 + i * (bar_h + 6);
        // Widths are whole pixels computed in integers (no floating point anywhere in money).
        let w_avail = (i128::from(available.get()) * 560 / i128::from(max)).max(0);
        let w_paid = (i128::from(paid.get()) * 560 / i128::from(max)).max(0);
        let rate = if available.get() > 0 {
            let tenths = i128::from(paid.get()) * 1000 / i128::from(available.get());
            format!("{}.{}%", tenths / 10, tenths % 10)
        } else {
            "—".into()
        };
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\">{}</text>\
             <rect x=\"150\" y=\"{y}\" width=\"{w_avail}\" height=\"{bar_h}\" fill=\"#d5d8dc\"/>\
             <rect x=\"150\" y=\"{y}\" width=\"{w_paid}\" height=\"{bar_h}\" fill=\"#8b1a1a\"/>\
             <text x=\"720\" y=\"{}\">{} / {} 元 · {rate}</text>",
            y + 13,
            escape(label),
            y + 13,
            paid.grouped(),
            available.grouped()
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn table_html(sheet: &Sheet) -> String {
    let mut out = String::from("<table><thead><tr>");
    for c in &sheet.columns {
        out.push_str(&format!("<th>{}</th>", escape(&c.label)));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &sheet.rows {
        out.push_str("<tr>");
        for cell in row {
            let class = if matches!(cell, Cell::Money(_) | Cell::Int(_)) {
                " class=\"n\""
            } else {
                ""
            };
            out.push_str(&format!("<td{class}>{}</td>", escape(&cell.display())));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if sheet.rows.is_empty() {
        out.push_str("<p class=\"muted\">无 None.</p>");
    }
    out
}

async fn dashboard(
    State(state): State<Shared>,
    Auth(user): Auth,
    ApiQuery(params): ApiQuery<DashboardParams>,
) -> Result<Html<String>, ApiError> {
    let store = &state.store;
    let programs = store.programs().await?;
    let program = params
        .program
        .map(|p| p.trim().to_ascii_uppercase())
        .or_else(|| programs.first().map(|p| p.0.clone()))
        .unwrap_or_default();
    let as_of = params
        .as_of
        .unwrap_or_else(|| chrono::Local::now().date_naive());
    let regions = store.regions().await?;
    let units = store.units().await?;
    let mut body = String::new();
    body.push_str("<section><form method=\"get\" action=\"/dashboard\" class=\"inline\"><label>项目 Program<select name=\"program\">");
    for (code, name) in &programs {
        body.push_str(&format!(
            "<option value=\"{}\"{}>{} {}</option>",
            escape(code),
            if *code == program { " selected" } else { "" },
            escape(code),
            escape(name)
        ));
    }
    body.push_str(&format!(
        "</select></label><label>截至 As of<input type=\"date\" name=\"as_of\" value=\"{as_of}\"></label>\
         <button type=\"submit\">刷新</button></form></section>"
    ));

    if matches!(user.role, Role::Admin | Role::Finance | Role::Inspector) && !program.is_empty() {
        // Release and execution progress per county (from the reconciliation report).
        let def = crate::inspect::engine::find("reconciliation")?;
        let sheet =
            crate::inspect::engine::run(store, &def, &[("program".into(), program.clone())])
                .await?;
        let (cc, cn, av, pd) = (
            column(&sheet, "county_code"),
            column(&sheet, "county_name"),
            column(&sheet, "available"),
            column(&sheet, "paid"),
        );
        let mut by_county = Vec::new();
        let mut by_city: std::collections::BTreeMap<String, (Fen, Fen)> = Default::default();
        for row in &sheet.rows {
            let code = cc
                .and_then(|i| row.get(i))
                .map(Cell::display)
                .unwrap_or_default();
            if !user.covers_county(&regions, &units, &code) {
                continue;
            }
            let name = cn
                .and_then(|i| row.get(i))
                .map(Cell::display)
                .unwrap_or_default();
            let available = money_of(av.and_then(|i| row.get(i)));
            let paid = money_of(pd.and_then(|i| row.get(i)));
            let city = regions
                .city_of(&code)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let entry = by_city.entry(city).or_insert((Fen::ZERO, Fen::ZERO));
            entry.0 = entry.0.checked_add(available).unwrap_or(entry.0);
            entry.1 = entry.1.checked_add(paid).unwrap_or(entry.1);
            by_county.push((format!("{name} {code}"), available, paid));
        }
        let cities: Vec<(String, Fen, Fen)> =
            by_city.into_iter().map(|(k, (a, p))| (k, a, p)).collect();
        body.push_str(&format!(
            "<section id=\"progress-city\"><h2>各市下达与支出进度 Release and execution by city</h2>{}</section>",
            progress_chart(&cities)
        ));
        body.push_str(&format!(
            "<section id=\"progress-county\"><h2>各县区支出进度 Execution by county</h2>{}</section>",
            progress_chart(&by_county)
        ));
    }

    if user.role == Role::Unit {
        let unit = units.iter().find(|u| u.code == user.scope);
        if let Some(unit) = unit {
            let people = store.roster_entries_for_unit(&program, &unit.code).await?;
            body.push_str(&format!(
                "<section id=\"people\"><h2>{} 的发放对象 People ({})</h2><table><tr><th>身份证号</th><th>姓名</th><th>状态</th></tr>",
                escape(&unit.name),
                people.len()
            ));
            for p in people.iter().take(500) {
                let status = if let Some(d) = p.death_date {
                    format!("<span class=\"bad\">已故 {d}</span>")
                } else if let Some(d) = p.left_date {
                    format!("退出 {d}")
                } else {
                    "<span class=\"ok\">在册</span>".into()
                };
                body.push_str(&format!(
                    "<tr><td><a href=\"/dashboard/trace?person_ref={}\">{}</a></td><td>{}</td><td>{status}</td></tr>",
                    person_ref(&p.id_number),
                    escape(&crate::id_number::IdNumber::parse(&p.id_number).map(|i| i.masked()).unwrap_or_default()),
                    escape(&p.name)
                ));
            }
            body.push_str("</table></section>");
            let def = crate::inspect::engine::find("payout_lines")?;
            let county = unit.county.clone();
            let sheet = crate::inspect::engine::run(
                store,
                &def,
                &[
                    ("program".into(), program.clone()),
                    ("county".into(), county),
                ],
            )
            .await;
            if let Ok(mut sheet) = sheet {
                if let Some(uc) = column(&sheet, "unit_code") {
                    sheet
                        .rows
                        .retain(|r| r.get(uc).map(Cell::display).as_deref() == Some(&unit.code));
                }
                body.push_str(&format!(
                    "<section id=\"batches\"><h2>发放批次与失败 Batches and failures</h2>{}</section>",
                    table_html(&sheet)
                ));
            }
        }
    }

    if matches!(user.role, Role::Admin | Role::Inspector | Role::Finance) {
        let report = crate::flow::deadlines::report(store, as_of, None, Some(&program)).await?;
        let sheet = crate::flow::deadlines::sheet(&report, as_of, false);
        let sheet = super::handlers::scope_sheet(&user, &regions, &units, sheet, "county");
        body.push_str(&format!(
            "<section id=\"deadlines\"><h2>超期滞留 Held past the deadline (as of {as_of})</h2>{}</section>",
            table_html(&sheet)
        ));
        let recorded = crate::inspect::checks::list(store, as_of).await?;
        let recorded: Vec<_> = recorded
            .into_iter()
            .filter(|f| user.covers_county(&regions, &units, &f.county))
            .collect();
        let mut sheet = crate::inspect::checks::list_sheet(&recorded, as_of, false);
        // Drill-down: the masked ID links to the trace of that person, by the finding's number, so
        // no full ID number appears in the page or the address bar.
        let id_col = sheet.columns.iter().position(|c| c.name == "id_number");
        for (row, finding) in sheet.rows.iter_mut().zip(&recorded) {
            if let (Some(i), Some(_)) = (id_col, &finding.id_number) {
                let masked = row.get(i).map(Cell::display).unwrap_or_default();
                row[i] = Cell::text(format!("{masked}\u{1}finding={}", finding.id));
            }
        }
        let html = table_html(&sheet);
        // Turn "masked\u{1}finding=N" cells into links to the trace page.
        let html = link_marked(&html);
        body.push_str(&format!(
            "<section id=\"findings\"><h2>交叉核查发现 Findings ({})</h2>{html}</section>",
            recorded.len()
        ));
        body.push_str(&format!(
            "<section id=\"spot-check\"><h2>抽查 Spot check</h2>\
             <form method=\"post\" action=\"/dashboard/spot-check\" class=\"inline\">\
             <input type=\"hidden\" name=\"program\" value=\"{}\">\
             <label>县区代码 County<input name=\"county\" id=\"sc-county\" value=\"{}\"></label>\
             <label>起 From<input name=\"from\" id=\"sc-from\" placeholder=\"YYYY-MM\" required></label>\
             <label>止 To<input name=\"to\" id=\"sc-to\" placeholder=\"YYYY-MM\" required></label>\
             <label>方法 Method<select name=\"method\"><option value=\"simple\">简单随机</option>\
             <option value=\"stratified\">分层</option><option value=\"monetary\">货币单位</option></select></label>\
             <label>样本量 Size<input name=\"size\" id=\"sc-size\" value=\"20\"></label>\
             <label>种子 Seed<input name=\"seed\" id=\"sc-seed\" value=\"1\"></label>\
             <button type=\"submit\" id=\"sc-submit\">下载底稿 Download workpaper</button></form></section>",
            escape(&program),
            if regions.get(&user.scope).is_some_and(|r| r.county_role) {
                escape(&user.scope)
            } else {
                String::new()
            }
        ));
    }
    Ok(page("总览", Some(&user), &body))
}

fn link_marked(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('\u{1}') {
        let before = &rest[..at];
        let cell_start = before.rfind('>').map(|i| i + 1).unwrap_or(0);
        out.push_str(&before[..cell_start]);
        let masked = &before[cell_start..];
        let after = &rest[at + 1..];
        let end = after.find('<').unwrap_or(after.len());
        let id = &after[..end];
        out.push_str(&format!(
            "<a class=\"trace\" href=\"/dashboard/trace?{id}\">{masked}</a>"
        ));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[derive(Deserialize)]
struct TraceParams {
    person: Option<String>,
    /// A finding's number: the trace of the person it names.
    finding: Option<i64>,
    /// An opaque reference to one of a unit's people (see `person_ref`).
    person_ref: Option<String>,
    entry: Option<String>,
}

/// An opaque reference to a person for links in pages: the page never carries the full ID number.
fn person_ref(id_number: &str) -> String {
    service::sha256_hex(format!("earmark-person:{id_number}").as_bytes())[..24].to_string()
}

async fn trace_page(
    State(state): State<Shared>,
    Auth(user): Auth,
    ApiQuery(params): ApiQuery<TraceParams>,
) -> Result<Html<String>, ApiError> {
    let store = &state.store;
    let regions = store.regions().await?;
    let units = store.units().await?;
    let mut person = params.person.clone();
    if let Some(n) = params.finding {
        let today = chrono::Local::now().date_naive();
        let finding = crate::inspect::checks::list(store, today)
            .await?
            .into_iter()
            .find(|f| f.id == n)
            .ok_or_else(|| ApiError::not_found(format!("no finding {n}")))?;
        if !user.covers_county(&regions, &units, &finding.county) {
            return Err(ApiError::forbidden("this finding is outside your scope"));
        }
        person = Some(
            finding
                .id_number
                .ok_or_else(|| ApiError::not_found(format!("finding {n} names no person")))?,
        );
    }
    if let Some(reference) = &params.person_ref {
        let mut found = None;
        for (code, _) in store.programs().await? {
            for unit in units.iter().filter(|u| user.covers_unit(&regions, u)) {
                for p in store.roster_entries_for_unit(&code, &unit.code).await? {
                    if person_ref(&p.id_number) == *reference {
                        found = Some(p.id_number);
                    }
                }
            }
        }
        person = Some(found.ok_or_else(|| ApiError::not_found("no such person in your scope"))?);
    }
    let trace = match (&person, &params.entry) {
        (Some(id), _) => {
            let id = id.trim().to_ascii_uppercase();
            let counties = super::handlers::person_counties(store, &id).await?;
            let allowed = match user.role {
                Role::Unit => {
                    store
                        .roster_entries_by_id(
                            &store
                                .programs()
                                .await?
                                .first()
                                .map(|p| p.0.clone())
                                .unwrap_or_default(),
                            std::slice::from_ref(&id),
                        )
                        .await?
                        .iter()
                        .any(|p| p.unit.as_deref() == Some(user.scope.as_str()))
                        || counties.is_empty()
                }
                _ => counties
                    .iter()
                    .any(|c| user.covers_county(&regions, &units, c)),
            };
            if !allowed {
                return Err(ApiError::forbidden("this person is outside your scope"));
            }
            crate::inspect::trace::trace_person(store, &id, false).await?
        }
        (None, Some(key)) => {
            if user.role == Role::Unit {
                return Err(ApiError::forbidden("units trace their people, not entries"));
            }
            crate::inspect::trace::trace_entry(store, key, false).await?
        }
        (None, None) => return Err(ApiError::bad_request("name a person or an entry")),
    };
    let mut body = format!(
        "<section id=\"trace\"><h2>{}</h2>{}",
        escape(&trace.title),
        trace
            .subtitle
            .iter()
            .map(|s| format!("<p class=\"muted\">{}</p>", escape(s)))
            .collect::<String>()
    );
    for section in &trace.sections {
        body.push_str(&format!("<h3>{}</h3>", escape(&section.title)));
        body.push_str(&table_html(section));
    }
    body.push_str("</section>");
    Ok(page("追溯", Some(&user), &body))
}

#[derive(Deserialize)]
struct SpotCheckForm {
    program: String,
    county: Option<String>,
    from: String,
    to: String,
    method: String,
    size: Option<String>,
    seed: String,
}

async fn spot_check(
    State(state): State<Shared>,
    Auth(user): Auth,
    Form(form): Form<SpotCheckForm>,
) -> Result<Response, ApiError> {
    if !matches!(user.role, Role::Admin | Role::Inspector | Role::Finance) {
        return Err(ApiError::forbidden("units do not run spot checks"));
    }
    let regions = state.store.regions().await?;
    let units = state.store.units().await?;
    let county = form
        .county
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    match &county {
        Some(c) if !user.covers_county(&regions, &units, c) => {
            return Err(ApiError::forbidden(format!(
                "county {c} is outside your scope"
            )));
        }
        None if user.role != Role::Admin
            && regions
                .get(&user.scope)
                .is_none_or(|r| r.level != crate::region::Level::Province) =>
        {
            return Err(ApiError::forbidden("name a county of your scope"));
        }
        _ => {}
    }
    let month = |field: &str, t: &str| {
        t.trim()
            .parse()
            .map_err(|_| ApiError::refused(format!("{field}: \"{t}\" is not a month YYYY-MM")))
    };
    let method = match form.method.as_str() {
        "stratified" => crate::inspect::sample::Method::Stratified,
        "monetary" => crate::inspect::sample::Method::Monetary,
        _ => crate::inspect::sample::Method::Simple,
    };
    let size = match form
        .size
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) => Some(
            s.parse::<usize>()
                .map_err(|_| ApiError::refused(format!("size: \"{s}\" is not a whole number")))?,
        ),
        None => None,
    };
    let seed =
        form.seed.trim().parse::<u64>().map_err(|_| {
            ApiError::refused(format!("seed: \"{}\" is not a whole number", form.seed))
        })?;
    let request = crate::inspect::workpaper::SpotCheckRequest {
        program: form.program.trim().to_ascii_uppercase(),
        county,
        from: month("from", &form.from)?,
        to: month("to", &form.to)?,
        method,
        size,
        confidence: rust_decimal::Decimal::from(95),
        tolerable: rust_decimal::Decimal::from(5),
        seed,
    };
    let check = crate::inspect::workpaper::spot_check(&state.store, request).await?;
    super::handlers::workpaper_response(&check, &format!("workpaper-{seed}.xlsx"))
}
