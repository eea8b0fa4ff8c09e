//! Test support for black-box tests of clockworks: a fresh database and fresh exchange names
//! per test, the real `clockworks-api` and `clockworks-worker` binaries as child processes,
//! an HTTP client, and an AMQP consumer that records every fired event.
//!
//! Connection settings come from `CLOCKWORKS_TEST_DATABASE_URL` (a server URL whose database
//! part is replaced per test; default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! `AMQP_URL` (default the local guest account).

pub mod amqp;
pub mod process;
pub mod proxy;
pub mod seed;
pub mod stack;

pub use amqp::{Consumer, Fired};
pub use process::{Api, Worker};
pub use proxy::Proxy;
pub use stack::{Stack, TestDb};
