//! The command line of `clockworks`: global connection flags, and one subcommand per thing a
//! person does with timers. Every flag that names a place or a secret can also come from the
//! environment.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use clockworks::config::AmqpArgs;

/// Where the api listens when run locally with its defaults.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// The flags that define a timer, which a definition read from a file replaces.
const DEFINITION_FLAGS: [&str; 13] = [
    "id",
    "group",
    "routing_key",
    "payload",
    "headers",
    "expire_after",
    "timezone",
    "start_at",
    "end_at",
    "max_fires",
    "on_missed",
    "dst_gap",
    "dst_overlap",
];
/// Where the global flags appear in each command's help: after the command's own.
const GLOBAL_FLAGS_ORDER: usize = 1_000;
/// Longest `operations wait` follows an operation unless told otherwise.
pub const DEFAULT_WAIT_TIMEOUT_SECS: u64 = 300;

/// clockworks: create, inspect and watch timers from a terminal.
///
/// Talks to a clockworks-api over HTTP (plain http://; reach a cluster through a port-forward
/// or a proxy) and, for `tail`, to RabbitMQ. Tables by default, the API's JSON with --json.
/// Errors are one line on standard error and a non-zero exit status.
#[derive(Debug, Parser)]
#[command(name = "clockworks", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub api: ApiArgs,

    /// Print the API's JSON (for `tail`, each event's raw body) instead of tables.
    #[arg(long, global = true, display_order = GLOBAL_FLAGS_ORDER)]
    pub json: bool,
}

/// How to reach the api.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Base URL of the clockworks api.
    #[arg(
        long,
        env = "CLOCKWORKS_URL",
        hide_env_values = true,
        default_value = DEFAULT_URL,
        global = true,
        display_order = GLOBAL_FLAGS_ORDER
    )]
    pub url: String,

    /// API key, sent as `Authorization: Bearer <key>`; create one with
    /// `clockworks-api keys create`.
    #[arg(
        long,
        env = "CLOCKWORKS_KEY",
        hide_env_values = true,
        global = true,
        display_order = GLOBAL_FLAGS_ORDER
    )]
    pub key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, read, list, pause, resume, trigger and delete timers.
    #[command(subcommand)]
    Timers(TimersCommand),
    /// Read batch operations, or follow one until it finishes.
    #[command(subcommand)]
    Operations(OperationsCommand),
    /// API keys are not managed over HTTP: this says where they are.
    Keys {
        /// Ignored: whatever follows `keys` gets the same answer.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
    /// Print the fired events of a namespace as they arrive, one line each, until Ctrl-C.
    Tail(TailArgs),
}

#[derive(Debug, Subcommand)]
pub enum TimersCommand {
    /// Create a timer from flags, or one or many from a JSON file.
    Create(Box<CreateArgs>),
    /// Show one timer.
    Get(TimerId),
    /// List timers, in id order, a page at a time.
    List(ListArgs),
    /// Pause a timer: it does not fire until resumed.
    Pause(TimerId),
    /// Resume a paused timer.
    Resume(TimerId),
    /// Fire a timer now, out of its schedule.
    Trigger(TimerId),
    /// Delete a timer; a timer deleted before it is due never fires.
    Delete(TimerId),
}

/// The timer a command acts on. A timer that does not exist in the key's namespace is an
/// error (exit status 1).
#[derive(Debug, Args)]
pub struct TimerId {
    /// The timer's id.
    pub id: String,
}

/// A timer definition from flags, or timers from a file: exactly one of `--file`, `--at`,
/// `--after`, `--every` and `--cron`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("kind").required(true)))]
pub struct CreateArgs {
    /// Read the definition from a JSON file (`-` for standard input): an object creates one
    /// timer; an array is a batch, accepted as an operation.
    #[arg(long, value_name = "PATH", group = "kind", conflicts_with_all = DEFINITION_FLAGS)]
    pub file: Option<PathBuf>,

    /// The timer's id (up to 128 of A-Za-z0-9._~:-); generated when left out.
    #[arg(long)]
    pub id: Option<String>,

    /// A label for listing and group actions.
    #[arg(long)]
    pub group: Option<String>,

    #[command(flatten)]
    pub schedule: ScheduleArgs,

    /// Published as `<namespace>.<routing key>`.
    #[arg(long, required_unless_present = "file")]
    pub routing_key: Option<String>,

    /// The payload, as JSON (`'{"order": 42}'`).
    #[arg(long, value_name = "JSON")]
    pub payload: Option<String>,

    /// An extra AMQP header, `NAME=VALUE`; repeat for more.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,

    /// A fire later than its due instant plus this (`1h`) is recorded as expired instead of
    /// published.
    #[arg(long, value_name = "DURATION")]
    pub expire_after: Option<String>,

    /// For a batch: follow the operation until it finishes.
    #[arg(long, requires = "file")]
    pub wait: bool,
}

/// The schedule flags: one of `--at`, `--after`, `--every`, `--cron`, with the options of
/// recurring schedules. The api checks the combination.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Fire once at an RFC 3339 instant (`2027-01-01T09:00:00Z`).
    #[arg(long, group = "kind")]
    pub at: Option<String>,

    /// Fire once after a delay (`30s`, `1h30m`, `PT90M`).
    #[arg(long, group = "kind")]
    pub after: Option<String>,

    /// Fire every interval (`5m`).
    #[arg(long, group = "kind")]
    pub every: Option<String>,

    /// Fire on a cron pattern (`"0 9 * * MON-FRI"`), 5 fields or 6 with seconds.
    #[arg(long, group = "kind")]
    pub cron: Option<String>,

    /// IANA time zone of a cron pattern (`Europe/Paris`).
    #[arg(long)]
    pub timezone: Option<String>,

    /// First instant a recurring timer may fire.
    #[arg(long)]
    pub start_at: Option<String>,

    /// Instant after which a recurring timer no longer fires.
    #[arg(long)]
    pub end_at: Option<String>,

    /// Most fires of a recurring timer.
    #[arg(long)]
    pub max_fires: Option<u64>,

    /// Fires missed while paused or during an outage: fire_once, skip or fire_all.
    #[arg(long)]
    pub on_missed: Option<String>,

    /// A cron time skipped when clocks spring forward: shift (fire when the gap ends, the
    /// default) or skip.
    #[arg(long)]
    pub dst_gap: Option<String>,

    /// A cron time that repeats when clocks fall back: once (the earlier instant, the
    /// default) or both.
    #[arg(long)]
    pub dst_overlap: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only timers of this group.
    #[arg(long)]
    pub group: Option<String>,

    /// Only timers in this state: scheduled, paused, completed or failed.
    #[arg(long)]
    pub state: Option<String>,

    /// Timers per page (the api's default when left out).
    #[arg(long)]
    pub limit: Option<u32>,

    /// Start after this cursor, as printed after the previous page.
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,

    /// Follow every page to the end.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum OperationsCommand {
    /// Show an operation with its counts and per-item results.
    Get {
        /// The operation's id (a UUID, from the `Location` of a 202).
        id: String,
    },
    /// Follow an operation until it succeeds (exit 0) or fails (exit 1), then show it.
    Wait {
        /// The operation's id.
        id: String,

        /// Give up after this many seconds (exit 1).
        #[arg(long, default_value_t = DEFAULT_WAIT_TIMEOUT_SECS)]
        timeout_secs: u64,
    },
}

/// Settings of `tail`, which reads RabbitMQ directly rather than the api.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub amqp: AmqpArgs,

    /// The namespace whose fired events to print.
    #[arg(long)]
    pub namespace: String,

    /// A topic pattern within the namespace, such as `acme.orders.*`; by default `<ns>.#`.
    #[arg(long)]
    pub binding: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_may_follow_the_subcommand() {
        let cli = Cli::try_parse_from([
            "clockworks",
            "timers",
            "get",
            "t-1",
            "--url",
            "http://h:1",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.api.url, "http://h:1");
        assert!(cli.json);
    }

    #[test]
    fn a_timer_needs_one_schedule_kind_and_a_routing_key_unless_read_from_a_file() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["clockworks", "timers", "create"].iter().chain(args))
        };
        assert!(parse(&["--after", "5s", "--routing-key", "x"]).is_ok());
        assert!(parse(&["--after", "5s", "--at", "2027-01-01T00:00:00Z"]).is_err());
        assert!(parse(&["--after", "5s"]).is_err());
        assert!(parse(&["--routing-key", "x"]).is_err());
        assert!(parse(&["--file", "timers.json"]).is_ok());
        assert!(parse(&["--file", "timers.json", "--after", "5s"]).is_err());
    }

    #[test]
    fn keys_accepts_anything_after_it() {
        let cli = Cli::try_parse_from(["clockworks", "keys", "create", "--namespace", "x"]);
        assert!(matches!(cli.unwrap().command, Command::Keys { .. }));
    }
}
