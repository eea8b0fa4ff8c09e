//! `clockworks-worker`: claims due timers from PostgreSQL and publishes their fired events to
//! RabbitMQ (`run`, the default), or prints a namespace's fired events as they arrive (`tail`).
//!
//! - [`config`]: the command line.
//! - [`claim`]: the claim loop, which claims, publishes and records fires.
//! - [`fire`]: the message of one fire and the timer's next fire.
//! - [`publish`]: the broker connection, its topology and publishing with confirms.
//! - [`wake`]: due announcements from the database and the database clock offset.
//! - [`operations`]: applying batch operations, and retention.
//! - [`gauges`]: backlog and state gauges of the whole timer table.
//! - [`vacuum`]: vacuuming the tables the fire path churns.
//! - [`admin`]: metrics, liveness and readiness.
//! - [`tail`]: the `tail` command.

mod admin;
mod backoff;
mod claim;
mod config;
mod fire;
mod gauges;
mod operations;
mod publish;
mod shutdown;
mod tail;
mod vacuum;
mod wake;

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use clockworks::telemetry;
use tokio::sync::watch;

use crate::claim::{ClaimLoop, Settings};
use crate::config::{Cli, Command, RunArgs};

/// Runs the command; a failure is one line on standard error with its causes, never a
/// backtrace, and exit status 1.
#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(args) => run(args).await,
        Command::Tail(args) => {
            telemetry::init_logs(&args.telemetry);
            tail::run(args).await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("clockworks-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> Result<()> {
    telemetry::init_logs(&args.telemetry);
    args.validate().map_err(|problem| anyhow!(problem))?;
    let metrics = telemetry::init_metrics();
    claim::describe_metrics();

    if args.database.migrate_on_start {
        let applied = clockworks::db::migrate(&args.database.database_url)
            .await
            .context("applying migrations")?;
        tracing::info!(migrations = ?applied, "migrations applied");
    }
    let admin_listener = tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding the admin port {}", args.admin_listen))?;
    tracing::info!(admin.listen = %args.admin_listen, "worker starting");

    let health = admin::Health::default();
    tokio::spawn(admin::serve(admin_listener, metrics, health.clone()));
    let due = wake::DueSignal::default();
    wake::spawn_listener(args.database.database_url.clone(), due.clone());

    let (stop_sender, stop) = watch::channel(false);
    let stopping = health.clone();
    tokio::spawn(async move {
        shutdown::requested().await;
        tracing::info!("stop requested; finishing the batch in flight");
        stopping.set_stopping();
        let _ = stop_sender.send(true);
    });

    let settings = Settings {
        database_url: args.database.database_url.clone(),
        amqp: args.amqp.clone(),
        batch_size: args.batch_size,
        confirm_timeout: args.confirm_timeout(),
        claim_hold: args.claim_hold(),
    };
    tokio::spawn(gauges::run(
        args.database.database_url.clone(),
        stop.clone(),
    ));
    tokio::spawn(vacuum::run(
        args.database.database_url.clone(),
        args.vacuum_dead_rows,
        stop.clone(),
    ));
    let applying = tokio::spawn(operations::run(
        args.database.database_url.clone(),
        args.retention(),
        stop.clone(),
    ));
    // The claim loop is a task of its own rather than the main thread's future, so that it
    // runs on the runtime's worker threads with the connections it waits on: on the main
    // thread every round trip of the fire path would cross threads twice more.
    let claiming = tokio::spawn(ClaimLoop::new(settings, health, due).run(stop));
    claiming.await.context("the claim loop panicked")?;
    // An operation being applied commits before the process exits.
    applying.await.context("the operations loop panicked")?;
    Ok(())
}
