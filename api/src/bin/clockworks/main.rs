//! `clockworks`: the command-line client for people. It uses only what any client has: the
//! HTTP API, and RabbitMQ for `tail`. Output is tables, or the api's JSON with `--json`;
//! an error is one line on standard error and exit status 1 (2 for a usage error).
//!
//! - [`cli`]: the command line.
//! - [`client`]: requests to the api and its problem details as errors.
//! - [`timers`]: the `timers` commands. [`operations`]: `operations get` and `wait`.
//! - [`table`]: aligned plain-text tables.

mod cli;
mod client;
mod operations;
mod table;
mod timers;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use clockworks::tail::{self, Tail};

use crate::cli::{Cli, Command, TailArgs};
use crate::client::{Client, one_line};

/// Exit status of a command line that asks for something this tool does not do.
const EXIT_USAGE: u8 = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("clockworks: {}", one_line(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Timers(command) => {
            let client = Client::new(&cli.api.url, cli.api.key)?;
            timers::run(command, &client, cli.json).await?;
        }
        Command::Operations(command) => {
            let client = Client::new(&cli.api.url, cli.api.key)?;
            operations::run(command, &client, cli.json).await?;
        }
        Command::Keys { .. } => {
            eprintln!(
                "clockworks: the HTTP API has no key routes; keys are created, listed and \
                 revoked with `clockworks-api keys create|list|revoke` where DATABASE_URL \
                 reaches the database (see `clockworks-api keys --help`)"
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        Command::Tail(args) => watch(args, cli.json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `tail`: the same watcher as `clockworks-worker tail`, until Ctrl-C or SIGTERM.
async fn watch(args: TailArgs, raw: bool) -> Result<()> {
    let binding = tail::binding(&args.namespace, args.binding.as_deref())?;
    let watcher = Tail::bind(&args.amqp.amqp_url, &args.amqp.exchange, &binding).await?;
    eprintln!(
        "watching {binding} on exchange {}; Ctrl-C to stop",
        args.amqp.exchange
    );

    let mut out = std::io::stdout().lock();
    watcher.print_until(stop_requested(), raw, &mut out).await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM; if SIGTERM cannot be watched, on Ctrl-C alone.
async fn stop_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Writes command output to standard output. A reader that went away (`| head`) is not an
/// error worth a message: the output had nowhere to go.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
