//! `earmark serve` and `earmark user`: the shared service and who may use it.

use std::process::ExitCode;
use std::sync::Arc;

use earmark::api::{self, AppState};
use earmark::service::{self, Role};
use earmark::store::Store;

use super::commands::Failure;
use super::{ServeArgs, UserCommand};

type Result<T> = std::result::Result<T, Failure>;

pub async fn serve(store: Store, args: ServeArgs) -> Result<ExitCode> {
    store.require_initialised().await?;
    let state = Arc::new(AppState {
        store,
        out_dir: args.out.clone(),
    });
    if args.openapi {
        println!("{}", api::openapi_json(state));
        return Ok(ExitCode::SUCCESS);
    }
    if service::users(&state.store).await?.is_empty() {
        eprintln!(
            "note: no users yet: add one with `earmark user add NAME --role admin` and issue a token \
             with `earmark user token NAME`"
        );
    }
    let sweep = (args.sweep_every_hours > 0)
        .then(|| std::time::Duration::from_secs(args.sweep_every_hours * 3600));
    let served = api::serve(state.clone(), args.addr, sweep).await;
    state.store.close().await;
    served.map_err(|e| Failure::trouble(format!("error: cannot serve on {}: {e}", args.addr)))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn user(store: &Store, command: UserCommand) -> Result<ExitCode> {
    match command {
        UserCommand::Add {
            name,
            role,
            scope,
            personal_data,
        } => {
            let role = Role::parse(&role)
                .map_err(|e| Failure::refused(format!("refused: --role: {e}")))?;
            let user = service::add_user(store, &name, role, &scope, personal_data).await?;
            println!(
                "added {} ({} {}, scope {}){}",
                user.name,
                user.role,
                user.role.label_zh(),
                user.scope,
                if user.personal_data {
                    ", may see personal data"
                } else {
                    ""
                }
            );
        }
        UserCommand::Token { name, days } => {
            let token = service::issue_token(store, &name, days).await?;
            println!("{}", token.secret);
            eprintln!(
                "token {} for {name}{}: shown once, keep it safe (only its hash is stored); revoke with `earmark user revoke {}`",
                token.token_id,
                token
                    .expires_at
                    .map(|e| format!(", valid until {e} UTC"))
                    .unwrap_or_default(),
                token.token_id
            );
        }
        UserCommand::Revoke { token_or_user } => {
            let n = service::revoke(store, &token_or_user).await?;
            println!("revoked {n} token(s)");
        }
        UserCommand::List => {
            println!(
                "{:<20} {:<10} {:<12} 个人信息",
                "用户 user", "角色 role", "范围 scope"
            );
            for u in service::users(store).await? {
                println!(
                    "{:<20} {:<10} {:<12} {}",
                    u.name,
                    u.role.code(),
                    u.scope,
                    if u.personal_data { "yes" } else { "no" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
