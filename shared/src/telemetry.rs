//! Logs and metrics set-up shared by both binaries.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, TelemetryArgs};

/// Installs the global log subscriber: readable lines or JSON, filtered by `args.log`.
pub fn init_logs(args: &TelemetryArgs) {
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Fire lateness and other latencies span from a millisecond to minutes.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Installs the global Prometheus recorder; render its handle on the admin port.
pub fn init_metrics() -> PrometheusHandle {
    PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .expect("the bucket list is not empty")
        .install_recorder()
        .expect("the metrics recorder is installed once per process")
}
