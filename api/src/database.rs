//! The api's access to PostgreSQL: every wait for a connection and every request's queries
//! are bounded in time, and database failures become 503 (retry) or 500 (a bug) answers.

use std::error::Error as _;
use std::time::Duration;

use clockworks::store::timers::StoreError;
use deadpool_postgres::{Object, Pool, PoolError};
use tokio_postgres::error::SqlState;

use crate::problem::ApiError;

/// The pool, with the time limits a request may spend on it.
#[derive(Clone)]
pub struct Database {
    pool: Pool,
    /// Longest wait for a connection, including opening a new one.
    connection_wait: Duration,
    /// Longest time one request's queries may take together.
    query_timeout: Duration,
}

impl Database {
    /// Access to `pool` that waits at most `connection_wait` for a connection and lets a
    /// request's queries take at most `query_timeout`.
    pub fn new(pool: Pool, connection_wait: Duration, query_timeout: Duration) -> Self {
        Self {
            pool,
            connection_wait,
            query_timeout,
        }
    }

    /// The pool itself, for its gauges.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A pooled connection. The pool bounds its own wait for a free slot; the outer bound
    /// also covers opening a new connection to a database that does not answer.
    pub async fn connection(&self) -> Result<Object, ApiError> {
        match tokio::time::timeout(self.connection_wait, self.pool.get()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(err)) => Err(pool_error(err)),
            Err(_) => Err(ApiError::Unavailable(
                format!("no connection within {:?}", self.connection_wait).into(),
            )),
        }
    }

    /// Runs a request's database work, answering 503 if it takes longer than allowed. A
    /// database that stopped answering mid-query then fails the request instead of hanging.
    pub async fn bounded<T, E>(
        &self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, ApiError>
    where
        E: Into<ApiError>,
    {
        match tokio::time::timeout(self.query_timeout, work).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(ApiError::Unavailable(
                format!("queries took longer than {:?}", self.query_timeout).into(),
            )),
        }
    }
}

/// A connection that cannot be had, for want of a slot or because opening one failed,
/// is the database being unavailable to this process.
fn pool_error(err: PoolError) -> ApiError {
    match err {
        PoolError::Backend(_) | PoolError::Timeout(_) | PoolError::Closed => {
            ApiError::Unavailable(err.into())
        }
        other => ApiError::Internal(other.into()),
    }
}

/// Whether a failure is the database being away or overwhelmed, which a retry may outlive,
/// rather than a mistake in a query.
fn is_transient(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => {
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                    SqlState::QUERY_CANCELED,
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                ]
                .contains(code)
        }
        // Without a SQL state, an I/O error underneath means the connection failed.
        None => err
            .source()
            .is_some_and(|source| source.is::<std::io::Error>()),
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(err: tokio_postgres::Error) -> Self {
        if is_transient(&err) {
            ApiError::Unavailable(err.into())
        } else {
            ApiError::Internal(err.into())
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Database(err) => err.into(),
            StoreError::Contended { .. } => ApiError::Unavailable(err.into()),
            StoreError::Unreadable { .. } => ApiError::Internal(err.into()),
        }
    }
}
