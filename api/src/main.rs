//! `clockworks-api`: the HTTP API of clockworks. It validates and authenticates requests and
//! stores timers in PostgreSQL; it keeps no state of its own, so any number of copies can run.
//!
//! - [`config`]: the command line and every setting.
//! - [`app`]: shared state, routers, layers, listeners and shutdown.
//! - [`auth`]: bearer keys and scopes. [`body`]: JSON request bodies.
//! - [`timers`]: the timer routes; [`conditional`]: `If-Match` and `If-None-Match`.
//! - [`lifecycle`]: pause, resume and trigger. [`listing`]: the timer list and fire history.
//! - [`preview`]: the next fires of a timer or a schedule. [`query`]: query strings.
//! - [`health`]: liveness and readiness. [`openapi`]: the OpenAPI document and its page.
//! - [`operations`]: batch requests and their operations. [`groups`]: group listing and
//!   actions.
//! - [`problem`]: the API error type and its problem details.
//! - [`database`]: time-bounded database access. [`observe`]: request metrics and logs.
//! - [`keys_cmd`]: the `keys` commands.

mod app;
mod auth;
mod body;
mod conditional;
mod config;
mod database;
mod groups;
mod health;
mod keys_cmd;
mod lifecycle;
mod listing;
mod observe;
mod openapi;
mod operations;
mod preview;
mod problem;
mod query;
mod timers;

use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Command, DatabaseUrl};

/// Runs the command; a failure is one line on standard error with its causes, never a
/// backtrace, and exit status 1.
#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("clockworks-api: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.into_command() {
        Command::Serve(args) => {
            clockworks::telemetry::init_logs(&args.telemetry);
            let prometheus = clockworks::telemetry::init_metrics();
            app::serve(args, prometheus).await
        }
        Command::Migrate(database) => migrate(&database).await,
        Command::Keys(command) => keys_cmd::run(command).await,
    }
}

async fn migrate(database: &DatabaseUrl) -> anyhow::Result<()> {
    let applied = clockworks::db::migrate(&database.database_url).await?;
    if applied.is_empty() {
        println!("The database is up to date.");
    }
    for migration in applied {
        println!("Applied {migration}.");
    }
    Ok(())
}
