//! The PostgreSQL side: a bounded connection pool and the embedded SQL migrations.

use std::time::Duration;

use deadpool_postgres::{
    Config, ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime, Timeouts,
};
use thiserror::Error;
use tokio_postgres::NoTls;

use crate::config::PoolArgs;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Longest time to open one new connection before the attempt counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Key of the advisory lock that lets only one process migrate at a time.
const MIGRATION_LOCK_KEY: i64 = 0x636c_6f63_6b77_6f72;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("invalid database configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
}

/// A pool of at most `db_pool_size` connections to `database_url` whose callers wait at most
/// `db_pool_wait_ms`.
pub fn pool(database_url: &str, args: &PoolArgs) -> Result<Pool, DbError> {
    let mut config = Config::new();
    config.url = Some(database_url.to_owned());
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.application_name = Some("clockworks".to_owned());
    config.manager = Some(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    config.pool = Some(PoolConfig {
        max_size: args.db_pool_size,
        timeouts: Timeouts {
            wait: Some(Duration::from_millis(args.db_pool_wait_ms)),
            create: Some(CONNECT_TIMEOUT),
            recycle: Some(CONNECT_TIMEOUT),
        },
        ..PoolConfig::default()
    });
    config
        .create_pool(Some(Runtime::Tokio1), NoTls)
        .map_err(|err| DbError::Config(err.to_string()))
}

/// Opens one connection outside any pool; the connection task runs until the client drops.
pub async fn connect(database_url: &str) -> Result<tokio_postgres::Client, DbError> {
    let mut config: tokio_postgres::Config = database_url.parse()?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(cause = %err, "database connection closed");
        }
    });
    Ok(client)
}

/// Applies every migration not applied yet and returns the names of those it applied.
/// Safe to run from several processes at once: they take turns under an advisory lock.
pub async fn migrate(database_url: &str) -> Result<Vec<String>, DbError> {
    let mut client = connect(database_url).await?;
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    Ok(report?
        .applied_migrations()
        .iter()
        .map(|migration| migration.to_string())
        .collect())
}
