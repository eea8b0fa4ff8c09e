//! The command line of `clockworks-api`: its commands and every setting of the server, each a
//! flag that can also come from the environment. With no command, the api serves.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use clockworks::config::{DEFAULT_DATABASE_URL, DatabaseArgs, PoolArgs, TelemetryArgs};
use clockworks::keys::Scope;
use clockworks::timer::DEFAULT_MAX_PAYLOAD_BYTES;

/// Default address of the public HTTP API.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default address of the admin port (metrics, health).
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:9090";
/// Default limit of a request body: room for large batches.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Default number of requests handled at once before new ones are shed with a 503.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;
/// Default time a verified key is trusted before it is looked up again. A revoked key keeps
/// working on an api copy that verified it for at most this long.
pub const DEFAULT_KEY_CACHE_TTL_MS: u64 = 10_000;
/// Default longest time one request's database work may take before it is answered 503.
pub const DEFAULT_DB_QUERY_TIMEOUT_MS: u64 = 5_000;

/// The clockworks HTTP API: validates, authenticates and stores timers.
#[derive(Debug, Parser)]
#[command(
    name = "clockworks-api",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings of `serve`, which also runs when no command is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The command to run; `serve` when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// What `clockworks-api` does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseUrl),
    /// Create, revoke and list API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// Everything the server needs.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the public HTTP API.
    #[arg(
        long,
        env = "CLOCKWORKS_API_LISTEN",
        hide_env_values = true,
        default_value = DEFAULT_LISTEN
    )]
    pub listen: SocketAddr,

    /// Address of the admin port: `/metrics` (Prometheus), `/healthz`, `/readyz`.
    #[arg(
        long,
        env = "CLOCKWORKS_API_ADMIN_LISTEN",
        hide_env_values = true,
        default_value = DEFAULT_ADMIN_LISTEN
    )]
    pub admin_listen: SocketAddr,

    /// Largest accepted request body, in bytes; a larger one is answered 413.
    #[arg(
        long,
        env = "CLOCKWORKS_MAX_BODY_BYTES",
        hide_env_values = true,
        default_value_t = DEFAULT_MAX_BODY_BYTES
    )]
    pub max_body_bytes: usize,

    /// Largest accepted timer payload, in bytes of JSON; a larger one is answered 400.
    #[arg(
        long,
        env = "CLOCKWORKS_MAX_PAYLOAD_BYTES",
        hide_env_values = true,
        default_value_t = DEFAULT_MAX_PAYLOAD_BYTES
    )]
    pub max_payload_bytes: usize,

    /// Requests handled at once; beyond it, requests are answered 503 with `Retry-After: 1`.
    #[arg(
        long,
        env = "CLOCKWORKS_API_MAX_IN_FLIGHT",
        hide_env_values = true,
        default_value_t = DEFAULT_MAX_IN_FLIGHT,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub max_in_flight: usize,

    /// How long, in milliseconds, a verified API key is trusted without looking it up
    /// again; this bounds how long a revoked key keeps working. 0 looks keys up every time.
    #[arg(
        long,
        env = "CLOCKWORKS_API_KEY_CACHE_TTL_MS",
        hide_env_values = true,
        default_value_t = DEFAULT_KEY_CACHE_TTL_MS
    )]
    pub key_cache_ttl_ms: u64,

    /// Longest time, in milliseconds, one request may spend in database queries before it
    /// is answered 503 with `Retry-After: 1`.
    #[arg(
        long,
        env = "CLOCKWORKS_API_DB_QUERY_TIMEOUT_MS",
        hide_env_values = true,
        default_value_t = DEFAULT_DB_QUERY_TIMEOUT_MS
    )]
    pub db_query_timeout_ms: u64,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub pool: PoolArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// The database that a one-shot command works on.
#[derive(Debug, Clone, Args)]
pub struct DatabaseUrl {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// The `keys` commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once; only its hash is stored.
    Create {
        /// Namespace the key acts in: 1 to 63 of `a-z 0-9 _ -`, starting with a letter or
        /// digit. It is the first word of the routing key of every fired event.
        #[arg(long)]
        namespace: String,

        /// Comma-separated scopes: timers:read, timers:write, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<Scope>,

        /// A label for people, e.g. the application that holds the key.
        #[arg(long, default_value = "")]
        name: String,

        #[command(flatten)]
        database: DatabaseUrl,
    },
    /// Revoke a key by its id (the part after `cw_` and before the next `_`).
    Revoke {
        /// The key's id.
        id: String,

        #[command(flatten)]
        database: DatabaseUrl,
    },
    /// List the keys of a namespace, revoked ones included. Secrets are never shown.
    List {
        /// The namespace whose keys to list.
        #[arg(long)]
        namespace: String,

        #[command(flatten)]
        database: DatabaseUrl,
    },
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
    fn no_command_means_serve() {
        let cli = Cli::try_parse_from(["clockworks-api", "--listen", "127.0.0.1:1"]).unwrap();
        match cli.into_command() {
            Command::Serve(args) => assert_eq!(args.listen.port(), 1),
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn scopes_are_read_from_a_comma_separated_list() {
        let cli = Cli::try_parse_from([
            "clockworks-api",
            "keys",
            "create",
            "--namespace",
            "acme",
            "--scopes",
            "timers:read,timers:write",
        ])
        .unwrap();
        let Some(Command::Keys(KeysCommand::Create { scopes, .. })) = cli.command else {
            panic!("expected keys create");
        };
        assert_eq!(scopes, [Scope::TimersRead, Scope::TimersWrite]);
    }
}
