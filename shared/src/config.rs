//! Settings that both binaries share. Each is a command-line flag that can also be set from
//! the environment (`DATABASE_URL`, `AMQP_URL`, `CLOCKWORKS_*`); the defaults work against a
//! local PostgreSQL and RabbitMQ.

use clap::{Args, ValueEnum};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/clockworks";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_EXCHANGE: &str = "clockworks.fired";

/// How to reach PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL. The password, if any, is never logged.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Apply pending migrations when the process starts.
    #[arg(
        long,
        env = "CLOCKWORKS_MIGRATE_ON_START",
        hide_env_values = true,
        default_value_t = false
    )]
    pub migrate_on_start: bool,
}

/// The connection pool of a process that serves many requests at once (the api).
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// Largest number of connections this process keeps to PostgreSQL.
    #[arg(
        long,
        env = "CLOCKWORKS_DB_POOL_SIZE",
        hide_env_values = true,
        default_value_t = 16
    )]
    pub db_pool_size: usize,

    /// Longest wait, in milliseconds, for a free pooled connection before giving up.
    #[arg(
        long,
        env = "CLOCKWORKS_DB_POOL_WAIT_MS",
        hide_env_values = true,
        default_value_t = 1000
    )]
    pub db_pool_wait_ms: u64,
}

/// How to reach RabbitMQ and where fired events go.
#[derive(Debug, Clone, Args)]
pub struct AmqpArgs {
    /// RabbitMQ connection URL. The password, if any, is never logged.
    #[arg(long, env = "AMQP_URL", hide_env_values = true, default_value = DEFAULT_AMQP_URL)]
    pub amqp_url: String,

    /// Durable topic exchange that fired events are published to.
    #[arg(
        long,
        env = "CLOCKWORKS_EXCHANGE",
        hide_env_values = true,
        default_value = DEFAULT_EXCHANGE
    )]
    pub exchange: String,
}

impl AmqpArgs {
    /// The alternate exchange that collects fired events no queue was bound for.
    pub fn unrouted_exchange(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }

    /// The durable queue bound to the alternate exchange.
    pub fn unrouted_queue(&self) -> String {
        format!("{}.unrouted", self.exchange)
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event, for terminals.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs and the admin port (metrics, health).
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Log format.
    #[arg(
        long,
        env = "CLOCKWORKS_LOG_FORMAT",
        hide_env_values = true,
        value_enum,
        default_value_t = LogFormat::Human
    )]
    pub log_format: LogFormat,

    /// Log filter in the `RUST_LOG` syntax, e.g. `info` or `clockworks=debug,info`.
    #[arg(
        long,
        env = "CLOCKWORKS_LOG",
        hide_env_values = true,
        default_value = "info"
    )]
    pub log: String,
}

/// A URL with its password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacting_a_url_hides_the_password_only() {
        assert_eq!(
            redact_url("amqp://guest:secret@host:5672/%2f"),
            "amqp://guest:***@host:5672/%2f"
        );
        assert_eq!(
            redact_url("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
    }
}
