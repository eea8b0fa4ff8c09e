//! The worker's command line: `run` (the default) claims and fires timers; `tail` prints the
//! fired events of a namespace as they arrive. Every flag of `run` can also be set from the
//! environment.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use clockworks::config::{AmqpArgs, DatabaseArgs, TelemetryArgs};
use clockworks::duration::Millis;
use clockworks::store::retention::Retention;

/// Where the admin port (metrics, health, readiness) listens unless told otherwise.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9091";
/// Most due timers claimed in one transaction by default. Each claim, confirm wait and commit
/// has a fixed cost, so a burst fires faster in larger batches (about twice as fast in
/// batches of 2000 as of 500 on the two-core benchmark machine); a batch is held in memory
/// whole, so timers with large payloads may call for smaller ones.
pub const DEFAULT_BATCH_SIZE: i64 = 2_000;
/// Largest claim batch accepted; one batch is published and confirmed as a whole.
pub const MAX_BATCH_SIZE: i64 = 10_000;
/// Longest wait for the broker to confirm a batch, by default.
pub const DEFAULT_CONFIRM_TIMEOUT_MS: u64 = 5_000;
/// Longest a frozen worker can hold claimed timers, by default.
pub const DEFAULT_CLAIM_HOLD_SECS: u64 = 10;
/// Fewest dead rows a table gathers before a worker vacuums it, by default. At a thousand
/// fires a second that is a vacuum of `timers` about every second (every few seconds once it
/// holds hundreds of thousands of rows), which keeps the dead entries a claim walks past to a
/// page or two of the due index.
pub const DEFAULT_VACUUM_DEAD_ROWS: i64 = 1_000;
/// Longest exchange or queue name AMQP allows, in bytes.
const MAX_AMQP_NAME_LEN: usize = 255;

/// clockworks worker: claims due timers and publishes their fired events to RabbitMQ.
#[derive(Debug, Parser)]
#[command(
    name = "clockworks-worker",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// With no command, the worker runs with these settings.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Claim due timers and publish their fired events (the default command).
    Run(RunArgs),
    /// Print the fired events of one namespace as they arrive, one line each.
    Tail(TailArgs),
}

/// Settings of a running worker.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Address of the admin port, which serves `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "CLOCKWORKS_WORKER_ADMIN_LISTEN",
        hide_env_values = true,
        default_value = DEFAULT_ADMIN_LISTEN
    )]
    pub admin_listen: SocketAddr,

    /// Most due timers claimed, published and marked fired in one transaction.
    #[arg(
        long,
        env = "CLOCKWORKS_CLAIM_BATCH_SIZE",
        hide_env_values = true,
        default_value_t = DEFAULT_BATCH_SIZE,
        value_parser = clap::value_parser!(i64).range(1..=MAX_BATCH_SIZE)
    )]
    pub batch_size: i64,

    /// Longest wait, in milliseconds, for the broker to confirm a batch; after it the batch
    /// is rolled back and its timers come due again.
    #[arg(
        long,
        env = "CLOCKWORKS_CONFIRM_TIMEOUT_MS",
        hide_env_values = true,
        default_value_t = DEFAULT_CONFIRM_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub confirm_timeout_ms: u64,

    /// Longest time, in seconds, that a frozen worker can hold the timers it claimed: the
    /// claiming session's transaction and statement timeouts. Must exceed the confirm timeout.
    #[arg(
        long,
        env = "CLOCKWORKS_CLAIM_HOLD_SECS",
        hide_env_values = true,
        default_value_t = DEFAULT_CLAIM_HOLD_SECS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub claim_hold_secs: u64,

    /// Fewest dead row versions a clockworks table gathers before a worker vacuums it (a
    /// table waits for a hundredth of its live rows if that is more); 0 leaves vacuuming to
    /// autovacuum. The worker's database role must own the tables.
    #[arg(
        long,
        env = "CLOCKWORKS_VACUUM_DEAD_ROWS",
        hide_env_values = true,
        default_value_t = DEFAULT_VACUUM_DEAD_ROWS,
        value_parser = clap::value_parser!(i64).range(0..)
    )]
    pub vacuum_dead_rows: i64,

    /// How long a completed timer is kept before it is deleted (`24h`, `30m`, `P1D`).
    #[arg(
        long,
        env = "CLOCKWORKS_COMPLETED_TIMER_RETENTION",
        hide_env_values = true,
        default_value = "24h"
    )]
    pub completed_timer_retention: Millis,

    /// How long a fire record is kept (`GET /v1/timers/{id}/fires`).
    #[arg(
        long,
        env = "CLOCKWORKS_FIRE_RETENTION",
        hide_env_values = true,
        default_value = "7d"
    )]
    pub fire_retention: Millis,

    /// How long a finished batch operation, with its item results, is kept.
    #[arg(
        long,
        env = "CLOCKWORKS_OPERATION_RETENTION",
        hide_env_values = true,
        default_value = "7d"
    )]
    pub operation_retention: Millis,
}

impl RunArgs {
    pub fn confirm_timeout(&self) -> Duration {
        Duration::from_millis(self.confirm_timeout_ms)
    }

    pub fn claim_hold(&self) -> Duration {
        Duration::from_secs(self.claim_hold_secs)
    }

    pub fn retention(&self) -> Retention {
        let span = |millis: Millis| Duration::from_millis(millis.as_millis().unsigned_abs());
        Retention {
            operations: span(self.operation_retention),
            fires: span(self.fire_retention),
            completed_timers: span(self.completed_timer_retention),
        }
    }

    /// Checks the settings that only make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.amqp.unrouted_exchange().len() > MAX_AMQP_NAME_LEN {
            return Err(format!(
                "--exchange {:?} is too long: with \".unrouted\" appended it must fit in {} bytes",
                self.amqp.exchange, MAX_AMQP_NAME_LEN
            ));
        }
        if self.confirm_timeout() >= self.claim_hold() {
            return Err(format!(
                "--confirm-timeout-ms ({} ms) must be shorter than --claim-hold-secs ({} s): \
                 PostgreSQL would otherwise end the claiming session of every slow batch",
                self.confirm_timeout_ms, self.claim_hold_secs
            ));
        }
        Ok(())
    }
}

/// Settings of `tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub amqp: AmqpArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// The namespace whose fired events to print.
    #[arg(long)]
    pub namespace: String,

    /// A topic pattern within the namespace, such as `acme.orders.*`; by default `<ns>.#`,
    /// every event of the namespace.
    #[arg(long)]
    pub binding: Option<String>,

    /// Print each event's body exactly as received, one per line, instead of a summary.
    #[arg(long)]
    pub json: bool,
}

impl TailArgs {
    /// The binding pattern to use, which must stay within the namespace.
    pub fn binding(&self) -> Result<String, String> {
        clockworks::tail::binding(&self.namespace, self.binding.as_deref())
            .map_err(|problem| problem.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn no_command_means_run_with_the_top_level_flags() {
        let cli = parse(&["clockworks-worker", "--batch-size", "7"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.run.batch_size, 7);
    }

    #[test]
    fn run_accepts_every_documented_flag() {
        let cli = parse(&[
            "clockworks-worker",
            "run",
            "--admin-listen",
            "127.0.0.1:0",
            "--batch-size",
            "20",
            "--confirm-timeout-ms",
            "100",
            "--claim-hold-secs",
            "3",
            "--migrate-on-start",
        ]);
        let Some(Command::Run(args)) = cli.command else {
            panic!("expected run");
        };
        assert_eq!(args.batch_size, 20);
        assert!(args.database.migrate_on_start);
        assert!(args.validate().is_ok());
    }

    #[test]
    fn retention_defaults_to_the_documented_spans_and_reads_durations() {
        let cli = parse(&["clockworks-worker"]);
        assert_eq!(cli.run.retention(), Retention::default());

        let cli = parse(&[
            "clockworks-worker",
            "--completed-timer-retention",
            "90s",
            "--fire-retention",
            "PT2H",
            "--operation-retention",
            "1d",
        ]);
        let retention = cli.run.retention();
        assert_eq!(retention.completed_timers, Duration::from_secs(90));
        assert_eq!(retention.fires, Duration::from_secs(2 * 3600));
        assert_eq!(retention.operations, Duration::from_secs(86_400));

        assert!(Cli::try_parse_from(["clockworks-worker", "--fire-retention=-1s"]).is_err());
        assert!(Cli::try_parse_from(["clockworks-worker", "--fire-retention", "1mo"]).is_err());
    }

    #[test]
    fn a_confirm_timeout_as_long_as_the_claim_hold_is_refused() {
        let cli = parse(&["clockworks-worker", "--confirm-timeout-ms", "10000"]);
        assert!(cli.run.validate().is_err());
    }

    #[test]
    fn a_batch_size_out_of_range_is_refused() {
        assert!(Cli::try_parse_from(["clockworks-worker", "--batch-size", "0"]).is_err());
    }

    #[test]
    fn tail_binds_the_whole_namespace_unless_told_a_pattern_within_it() {
        let Some(Command::Tail(args)) =
            parse(&["clockworks-worker", "tail", "--namespace", "acme"]).command
        else {
            panic!("expected tail");
        };
        assert_eq!(args.binding().unwrap(), "acme.#");

        let Some(Command::Tail(args)) = parse(&[
            "clockworks-worker",
            "tail",
            "--namespace",
            "acme",
            "--binding",
            "other.#",
        ])
        .command
        else {
            panic!("expected tail");
        };
        assert!(args.binding().is_err());
    }
}
