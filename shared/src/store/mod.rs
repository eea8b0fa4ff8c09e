//! The SQL of clockworks, one module per table or per concern that spans tables (retention,
//! vacuuming, gauges). Every value is a bound parameter.

pub mod fires;
pub mod firing;
pub mod gauges;
pub mod keys;
pub mod operations;
pub mod retention;
pub mod timers;
pub mod vacuum;
