//! The SQL of clockworks, one module per table. Every value is a bound parameter.

pub mod firing;
pub mod keys;
pub mod timers;
