//! The library both clockworks binaries use.
//!
//! - [`config`]: the settings every binary shares (database, broker, telemetry).
//! - [`db`]: the PostgreSQL pool and the embedded SQL migrations.
//! - [`duration`]: durations as the API accepts them (`1h30m`, `PT90M`, milliseconds).
//! - [`schedule`]: when a timer fires: once, after a delay, every N, or on a cron pattern.
//! - [`timer`]: the timer definition as clients send it, validated, and as it is stored.
//! - [`lifecycle`]: replacing, pausing, resuming and triggering a stored timer.
//! - [`validation`]: field errors that name what is wrong with a request.
//! - [`keys`]: API keys, their scopes and how they are hashed.
//! - [`message`]: the AMQP contract of a fired event.
//! - [`store`]: the SQL for each table.
//! - [`telemetry`]: logs and metrics set-up.
//! - [`tail`]: printing a namespace's fired events as they arrive, for terminals.

pub mod config;
pub mod db;
pub mod duration;
pub mod keys;
pub mod lifecycle;
pub mod message;
pub mod schedule;
pub mod store;
pub mod tail;
pub mod telemetry;
pub mod timer;
pub mod validation;
