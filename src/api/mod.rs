//! The shared service (`earmark serve`): a JSON API over the same domain functions as the CLI, with
//! identity and scope (`crate::service`), an append-only audit log of every state-changing request,
//! an OpenAPI document generated from the handlers themselves, and the dashboard pages.
//!
//! Every error is a JSON body `{"error": {"status", "code", "message", "details"}}` with a 4xx status
//! naming what was wrong; a 5xx means a fault of the server or its database, never of the request.

mod dashboard;
mod handlers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::inspect::InspectError;
use crate::service::{self, AuthError, User};
use crate::store::{Store, StoreError};

/// The largest request body accepted (a roster or a bank result file fits; a mistake does not).
pub const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    /// Where payout batches' bank files are written.
    pub out_dir: PathBuf,
}

pub type Shared = Arc<AppState>;

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub status: u16,
    /// A stable code: `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `too_large`, `unsupported_media_type`, `refused`, a ledger code (`E1016`), or `internal`.
    pub code: String,
    pub message: String,
    /// One line per problem where a request had several (a file's rows, a batch's lines).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// A refusal or a fault, rendered as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: Vec::new(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn refused(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "refused", message)
    }
    pub fn with_details(mut self, details: Vec<String>) -> ApiError {
        self.details = details;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = %self.code, "{}", self.message);
        }
        let body = ErrorBody {
            error: ErrorDetail {
                status: self.status.as_u16(),
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Ledger(error) | StoreError::Refused { error, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                error.code(),
                format!("{error}; nothing was written"),
            ),
            StoreError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            StoreError::Invalid(message) => ApiError::refused(message),
            StoreError::NotInitialised { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_initialised",
                e.to_string(),
            ),
            StoreError::Database(_) | StoreError::Migrate(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

impl From<InspectError> for ApiError {
    fn from(e: InspectError) -> ApiError {
        match e {
            InspectError::Store(inner) => ApiError::from(inner),
            InspectError::Database(inner) => ApiError::from(StoreError::Database(inner)),
            InspectError::NotFound(message) => ApiError::not_found(message),
            InspectError::UnknownReport { .. } => ApiError::not_found(e.to_string()),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<crate::inspect::sample::SampleError> for ApiError {
    fn from(e: crate::inspect::sample::SampleError) -> ApiError {
        ApiError::refused(e.to_string())
    }
}

/// A JSON body whose rejections are JSON errors too (400 syntax, 422 wrong types or missing
/// fields, 415 not JSON, 413 too large).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
                    _ => "bad_request",
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

/// Query parameters whose rejections are JSON errors.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                let rejection: QueryRejection = rejection;
                Err(ApiError::bad_request(rejection.body_text()))
            }
        }
    }
}

/// The authenticated user of a request (put there by the authentication layer).
pub struct Auth(pub User);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<User>()
            .cloned()
            .map(Auth)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    AuthError::Missing.to_string(),
                )
            })
    }
}

/// What a state-changing request did, filled in by its handler for the audit log.
#[derive(Clone, Default)]
pub struct AuditSlot(Arc<Mutex<(Vec<String>, String)>>);

impl AuditSlot {
    /// Notes entry keys (or ranges of them) the request posted.
    pub fn entries(&self, keys: impl IntoIterator<Item = String>) {
        if let Ok(mut slot) = self.0.lock() {
            slot.0.extend(keys);
        }
    }
    /// A one-line description of what the request did.
    pub fn detail(&self, text: impl Into<String>) {
        if let Ok(mut slot) = self.0.lock() {
            slot.1 = text.into();
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuditSlot {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<AuditSlot>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The token of a request: `Authorization: Bearer …`, or the dashboard's cookie.
fn token_of(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let text = value.to_str().ok()?.trim();
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))?;
        return Some(token.trim().to_string());
    }
    dashboard::cookie_token(parts)
}

fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/health" | "/openapi.json" | "/" | "/login" | "/logout" | "/favicon.ico"
    )
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Authenticates, gives the request an id, and writes the audit log for state-changing requests.
async fn gate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let request_id = service::request_id();
    let (mut parts, body) = request.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let audited = changes_state(&method) && path != "/login" && path != "/logout";
    let mut user = None;
    let mut refusal = None;
    match token_of(&parts) {
        Some(token) => match service::authenticate(&state.store, &token).await {
            Ok(u) => user = Some(u),
            // A stale cookie must not keep anyone from the login page or the public documents.
            Err(AuthError::Unknown | AuthError::Revoked(_) | AuthError::Expired(_))
                if is_public(&path) => {}
            Err(AuthError::Store(e)) => refusal = Some(ApiError::from(e)),
            Err(e) => {
                refusal = Some(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    e.to_string(),
                ))
            }
        },
        None if !is_public(&path) => {
            refusal = Some(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                AuthError::Missing.to_string(),
            ))
        }
        None => {}
    }
    // Read the body here (once) so the audit log can keep its digest.
    let (bytes, too_large) = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => (bytes, false),
        Err(_) => (axum::body::Bytes::new(), true),
    };
    if too_large && refusal.is_none() {
        refusal = Some(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request body is over the limit of {} MiB",
                BODY_LIMIT / 1024 / 1024
            ),
        ));
    }
    // A page of the dashboard without a valid login goes to the login form instead.
    if refusal.is_some() && !too_large && !path.starts_with("/api/") && path != "/openapi.json" {
        return with_request_id(dashboard::to_login(), &request_id);
    }
    let slot = AuditSlot::default();
    let response = match refusal {
        Some(error) => error.into_response(),
        None => {
            if let Some(u) = &user {
                parts.extensions.insert(u.clone());
            }
            parts.extensions.insert(slot.clone());
            let request = Request::from_parts(parts, Body::from(bytes.clone()));
            next.run(request).await
        }
    };
    if audited {
        let anonymous = User {
            name: "(anonymous)".into(),
            role: service::Role::Inspector,
            scope: "-".into(),
            personal_data: false,
        };
        let (entries, detail) = slot.0.lock().map(|s| s.clone()).unwrap_or_default();
        if let Err(e) = service::audit(
            &state.store,
            &request_id,
            user.as_ref().unwrap_or(&anonymous),
            method.as_str(),
            &path,
            response.status().as_u16(),
            &bytes,
            &entries.join(" "),
            &detail,
        )
        .await
        {
            tracing::error!(request_id, "the audit log could not be written: {e}");
        }
    }
    with_request_id(response, &request_id)
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint: see /openapi.json")
}

/// The router and its OpenAPI document, both from the same handler list.
pub fn router(state: Shared) -> (axum::Router, OpenApi) {
    let (api_router, mut api) = handlers::routes().split_for_parts();
    api.info.title = "earmark 专项资金台账 API".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.contact = None;
    api.info.license = Some(utoipa::openapi::License::new(env!("CARGO_PKG_LICENSE")));
    api.info.description = Some(
        "The shared service of the earmark ledger. Authenticate with `Authorization: Bearer <token>` \
         (tokens from `earmark user token NAME`). Amounts are strings in yuan with at most two decimals."
            .into(),
    );
    api.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    let document = Arc::new(api.clone());
    let router = api_router
        .merge(dashboard::routes())
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { Json((*document).clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method: see /openapi.json",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
    (router, api)
}

/// The OpenAPI document as JSON text (for `earmark serve --openapi`).
pub fn openapi_json(state: Shared) -> String {
    let (_, api) = router(state);
    serde_json::to_string_pretty(&api).unwrap_or_default()
}

/// Serves until Ctrl-C (or SIGTERM), then finishes the requests in flight.
pub async fn serve(
    state: Shared,
    addr: SocketAddr,
    sweep_every: Option<std::time::Duration>,
) -> std::io::Result<()> {
    if let Some(every) = sweep_every {
        tokio::spawn(scheduled_sweep(state.clone(), every));
    }
    let (router, _) = router(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    // Tests and scripts read this line to learn the port when they asked for port 0.
    println!("earmark serving on http://{local} (OpenAPI at http://{local}/openapi.json)");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("a SIGTERM handler");
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            #[cfg(not(unix))]
            {
                let _ = ctrl_c.await;
            }
        })
        .await
}

/// The scheduled cross-check sweep: every `every`, run all rules and record new findings.
async fn scheduled_sweep(state: Shared, every: std::time::Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await; // the first tick is now: the first sweep runs one interval after start
    loop {
        ticker.tick().await;
        let as_of = chrono::Local::now().date_naive();
        match crate::inspect::checks::sweep(&state.store, as_of).await {
            Ok(found) => match crate::inspect::checks::record(&state.store, &found, as_of).await {
                Ok(added) => {
                    tracing::info!(as_of = %as_of, found = found.len(), added, "scheduled sweep")
                }
                Err(e) => tracing::error!("scheduled sweep could not record findings: {e}"),
            },
            Err(e) => tracing::error!("scheduled sweep failed: {e}"),
        }
    }
}
