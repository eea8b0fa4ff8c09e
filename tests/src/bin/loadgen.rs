//! `loadgen`: the load generator behind `docs/benchmarks.md`. It drives a running clockworks
//! api over HTTP, consumes the fired events of its own timers over AMQP, and prints what it
//! measured as one JSON object on standard output; progress lines go to standard error.
//!
//! - `burst`: many timers due at one instant; how soon and how fast they all fire.
//! - `steady`: open-loop creation at a fixed rate, each timer due a random delay later;
//!   lateness over time, and anything early, missing or doubled.
//! - `ingest`: how fast timers are created, in batches and one at a time.
//!
//! Lateness is the consumer's receive time minus the event's `scheduled_at`, both by this
//! machine's clock, so it means something only when the generator shares a clock with the
//! workers. It includes the broker hop and the generator's own scheduling delay.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Parser, Subcommand, ValueEnum};
use clockworks::config::{DEFAULT_AMQP_URL, DEFAULT_EXCHANGE};
use clockworks::message::FiredEvent;
use futures::StreamExt;
use jiff::Timestamp;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Longest wait for one HTTP response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the broker to accept the consumer's connection.
const AMQP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a batch operation's status is asked for.
const OPERATION_POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Longest a batch operation may take from its 202 to a final status.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(600);
/// How many times a batch answered 503 is sent again, each after its `Retry-After`.
const MAX_BATCH_RETRIES: u32 = 10;
/// Wait before sending a batch again when a 503 names no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often a progress line is written to standard error.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// How often the wait for fires checks whether every expected one arrived.
const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// After the last expected fire, how long to keep listening for duplicates.
const QUIET_WINDOW: Duration = Duration::from_secs(2);
/// How far ahead ingest and probe timers are due: far enough that none fires during a run.
const FAR_FUTURE_MS: i64 = 24 * 3_600 * 1_000;
/// The burst's due instant leaves the probed create time times this factor...
const CREATE_ESTIMATE_FACTOR: f64 = 1.5;
/// ...plus this many seconds, so that a slower stretch of creation still ends before it.
const CREATE_ESTIMATE_MARGIN_SECS: f64 = 2.0;
/// The burst probe creates this fraction of the burst's count (at most one batch).
const PROBE_FRACTION: usize = 10;
/// A steady-mode request sent this much after its planned instant counts as a late start.
const LATE_START_US: i64 = 10_000;
/// Most characters of an error response body quoted in a message.
const MAX_QUOTED_BODY: usize = 300;

/// Load generator for clockworks benchmarks: drives a running api and worker fleet and
/// prints its figures as JSON on standard output.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Create many timers due at one instant and measure how they fire.
    Burst(BurstArgs),
    /// Create timers at a fixed rate, each due a random delay later, and measure lateness.
    Steady(SteadyArgs),
    /// Measure how fast timers are created, in batches and one at a time.
    Ingest(IngestArgs),
}

/// Where the api and the broker are, and whose timers these are.
#[derive(Debug, Clone, Args)]
struct Target {
    /// Base URL of the clockworks api.
    #[arg(long, default_value = "http://127.0.0.1:18080")]
    api_url: String,

    /// API key with the timers:write scope, in the namespace given by --namespace.
    #[arg(long, env = "CLOCKWORKS_BENCH_KEY", hide_env_values = true)]
    key: String,

    /// RabbitMQ connection URL.
    #[arg(long, env = "AMQP_URL", default_value = DEFAULT_AMQP_URL)]
    amqp_url: String,

    /// The exchange the workers publish fired events to.
    #[arg(long, default_value = DEFAULT_EXCHANGE)]
    exchange: String,

    /// Namespace of the key; fired events are routed as `<namespace>.<routing key>`.
    #[arg(long, default_value = "bench")]
    namespace: String,

    /// Routing key of the generated timers.
    #[arg(long, default_value = "loadgen")]
    routing_key: String,
}

/// How the burst's timers are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CreateWith {
    /// Batch POSTs of a JSON array, each polled until its operation is final.
    Batch,
    /// Concurrent single POSTs.
    Single,
}

impl CreateWith {
    fn name(self) -> &'static str {
        match self {
            CreateWith::Batch => "batch",
            CreateWith::Single => "single",
        }
    }
}

#[derive(Debug, Args)]
struct BurstArgs {
    #[command(flatten)]
    target: Target,

    /// Timers in the burst.
    #[arg(long, default_value_t = 100_000)]
    count: usize,

    /// Least time, in seconds, from the start of creation to the burst's due instant; more
    /// is taken when the probe says creation needs it.
    #[arg(long, default_value_t = 30)]
    due_in_secs: u64,

    /// How the timers are created.
    #[arg(long, value_enum, default_value_t = CreateWith::Batch)]
    create: CreateWith,

    /// Timers per batch POST.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,

    /// Batch operations in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    in_flight: u64,

    /// Concurrent clients when creating with single POSTs.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,

    /// Longest wait, in seconds after the due instant, for every timer to fire.
    #[arg(long, default_value_t = 120)]
    drain_secs: u64,
}

#[derive(Debug, Args)]
struct SteadyArgs {
    #[command(flatten)]
    target: Target,

    /// Timers created per second.
    #[arg(long, default_value_t = 1_000.0)]
    rate: f64,

    /// How long creation goes on, in seconds.
    #[arg(long, default_value_t = 300)]
    duration_secs: u64,

    /// Shortest delay, in seconds, from a timer's creation to its due instant.
    #[arg(long, default_value_t = 1)]
    min_delay_secs: u64,

    /// Longest delay, in seconds, from a timer's creation to its due instant.
    #[arg(long, default_value_t = 60)]
    max_delay_secs: u64,

    /// Requests in flight at most; a request that finds none free starts late.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,

    /// How long, in seconds after the last due instant, fires are still waited for.
    #[arg(long, default_value_t = 10)]
    drain_secs: u64,
}

#[derive(Debug, Args)]
struct IngestArgs {
    #[command(flatten)]
    target: Target,

    /// Timers created through batch POSTs.
    #[arg(long, default_value_t = 100_000)]
    batch_count: usize,

    /// Timers per batch POST.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: u64,

    /// Batch operations in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    in_flight: u64,

    /// Timers created through single POSTs.
    #[arg(long, default_value_t = 20_000)]
    single_count: usize,

    /// Concurrent clients for single POSTs, each sending its next request when the last one
    /// was answered.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
}

/// The report of a run, and whether the run measured what it set out to.
struct Outcome {
    report: Value,
    complete: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().mode {
        Mode::Burst(args) => burst(args).await,
        Mode::Steady(args) => steady(args).await,
        Mode::Ingest(args) => ingest(args).await,
    };
    match result {
        Ok(outcome) => {
            println!("{:#}", outcome.report);
            if outcome.complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------------

/// `burst`: probe the create rate, pick a due instant creation can beat, create every timer
/// for it, then receive the fires.
async fn burst(args: BurstArgs) -> Result<Outcome> {
    let run = Run::new(&args.target);
    let api = Api::new(&args.target)?;
    let progress = Progress::start("probing");
    let consumer = FireConsumer::start(&args.target, &run, progress.clone()).await?;
    let creator = Creator {
        api: &api,
        with: args.create,
        batch_size: to_usize(args.batch_size),
        in_flight: to_usize(args.in_flight),
        clients: to_usize(args.clients),
    };

    let probe_count = (args.count / PROBE_FRACTION).clamp(1, creator.probe_limit());
    let far = now_ms() + FAR_FUTURE_MS;
    let started = Instant::now();
    let probe = creator
        .create(probe_count, &progress, |n| run.timer("p", n, far))
        .await;
    ensure!(
        probe.failed == 0,
        "the probe could not create its timers: {:?}",
        probe.reasons
    );
    let probe_rate = probe_count as f64 / started.elapsed().as_secs_f64();
    let estimate_secs =
        args.count as f64 / probe_rate * CREATE_ESTIMATE_FACTOR + CREATE_ESTIMATE_MARGIN_SECS;
    let lead_secs = estimate_secs.max(args.due_in_secs as f64);
    let due_ms = now_ms() + (lead_secs * 1_000.0).ceil() as i64;
    eprintln!(
        "[loadgen] probe: {probe_count} timers at {probe_rate:.0}/s; the burst is due at {} \
         ({lead_secs:.1} s from now)",
        at_text(due_ms)
    );

    progress.set_phase("creating");
    let started = Instant::now();
    let created = creator
        .create(args.count, &progress, |n| run.timer("b", n, due_ms))
        .await;
    let created_secs = started.elapsed().as_secs_f64();
    let margin_ms = due_ms - now_ms();
    let mut report = json!({
        "mode": "burst",
        "count": args.count,
        "create": args.create.name(),
        "created_secs": round3(created_secs),
        "created_per_sec": round3(args.count as f64 / created_secs),
        "due_at": at_text(due_ms),
        "created_before_due_ms": margin_ms,
    });
    if created.failed > 0 || margin_ms <= 0 {
        report["error"] = if created.failed > 0 {
            json!(format!(
                "{} timers were not created: {:?}",
                created.failed, created.reasons
            ))
        } else {
            json!("the create phase did not finish before the due instant; raise --due-in-secs")
        };
        consumer.finish().await?;
        progress.stop();
        return Ok(Outcome {
            report,
            complete: false,
        });
    }

    progress.set_phase("firing");
    let expected: HashMap<String, i64> = (0..args.count)
        .map(|n| (run.timer_id("b", n), due_ms * 1_000))
        .collect();
    let drain = Duration::from_secs(args.drain_secs);
    wait_for_fires(&progress, expected.len(), due_ms * 1_000, drain).await;
    let deliveries = consumer.finish().await?;
    progress.stop();

    let mut fires = Matched::new(&expected, &deliveries);
    let first = fires.first_received_us.map(|us| ms(us - due_ms * 1_000));
    let last = fires.last_received_us.map(|us| us - due_ms * 1_000);
    let fires_per_sec = last
        .filter(|&us| us > 0)
        .map(|us| round3(fires.received as f64 / (us as f64 / 1e6)));
    report["received"] = json!(fires.received);
    report["first_fire_after_due_ms"] = json!(first);
    report["last_fire_after_due_ms"] = json!(last.map(ms));
    report["fires_per_sec"] = json!(fires_per_sec);
    report["lateness_ms"] = fires.lateness.summary(&[("p50", 0.5), ("p99", 0.99)]);
    fires.add_counts(&mut report, &deliveries);
    Ok(Outcome {
        report,
        complete: true,
    })
}

/// `steady`: create on a fixed schedule whatever the responses, then receive every fire
/// until the last due instant plus the drain time.
async fn steady(args: SteadyArgs) -> Result<Outcome> {
    ensure!(
        args.rate > 0.0 && args.rate.is_finite(),
        "--rate must be positive"
    );
    ensure!(
        args.min_delay_secs <= args.max_delay_secs,
        "--min-delay-secs must not exceed --max-delay-secs"
    );
    let run = Run::new(&args.target);
    let api = Api::new(&args.target)?;
    let progress = Progress::start("creating");
    let consumer = FireConsumer::start(&args.target, &run, progress.clone()).await?;

    let start_us = now_us();
    let mut sent = send_open_loop(&api, &run, &args, &progress).await;
    eprintln!(
        "[loadgen] creation done: {} created, {} failed",
        sent.created.len(),
        sent.tally.failed
    );

    progress.set_phase("draining");
    let last_due_us = sent.created.values().copied().max().unwrap_or(start_us);
    let drain = Duration::from_secs(args.drain_secs);
    wait_for_fires(&progress, sent.created.len(), last_due_us, drain).await;
    let deliveries = consumer.finish().await?;
    progress.stop();

    let mut fires = Matched::new(&sent.created, &deliveries);
    let late_starts = sent.lags.0.iter().filter(|&&us| us > LATE_START_US).count();
    let mut report = json!({
        "mode": "steady",
        "rate": args.rate,
        "duration_secs": args.duration_secs,
        "clients": args.clients,
        "sent_per_sec": round3(sent.attempts as f64 / sent.send_secs),
        "created": sent.created.len(),
        "create_errors": sent.tally.failed,
        "create_error_reasons": sent.tally.reasons,
        "create_latency_ms": sent.latencies.summary(&[("p50", 0.5), ("p99", 0.99)]),
        "generator_lag_ms": sent.lags.summary(&[("p50", 0.5), ("p99", 0.99)]),
        "late_starts": late_starts,
        "consumed": fires.received,
        "lateness_ms": fires.lateness.summary(&[("p50", 0.5), ("p99", 0.99), ("p999", 0.999)]),
        "per_minute_p99_ms": fires.per_minute_p99(start_us),
    });
    fires.add_counts(&mut report, &deliveries);
    Ok(Outcome {
        report,
        complete: true,
    })
}

/// `ingest`: batch create rate, then single create rate and latency; nothing fires.
async fn ingest(args: IngestArgs) -> Result<Outcome> {
    let run = Run::new(&args.target);
    let api = Api::new(&args.target)?;
    let progress = Progress::start("batch creating");
    let far = now_ms() + FAR_FUTURE_MS;
    let batches = Creator {
        api: &api,
        with: CreateWith::Batch,
        batch_size: to_usize(args.batch_size),
        in_flight: to_usize(args.in_flight),
        clients: to_usize(args.clients),
    };

    let started = Instant::now();
    let batch = batches
        .create(args.batch_count, &progress, |n| run.timer("ib", n, far))
        .await;
    let batch_secs = started.elapsed().as_secs_f64();

    progress.set_phase("single creating");
    let started = Instant::now();
    let single = create_singly(
        &api,
        args.single_count,
        to_usize(args.clients),
        &progress,
        |n| run.timer("is", n, far),
    )
    .await;
    let single_secs = started.elapsed().as_secs_f64();
    progress.stop();

    let mut latencies = single.latencies;
    let report = json!({
        "mode": "ingest",
        "batch": {
            "count": args.batch_count,
            "batch_size": args.batch_size,
            "in_flight": args.in_flight,
            "created": batch.created,
            "failed": batch.failed,
            "failure_reasons": batch.reasons,
            "secs": round3(batch_secs),
            "timers_per_sec": round3(batch.created as f64 / batch_secs),
        },
        "single": {
            "count": args.single_count,
            "clients": args.clients,
            "created": single.tally.created,
            "failed": single.tally.failed,
            "failure_reasons": single.tally.reasons,
            "secs": round3(single_secs),
            "timers_per_sec": round3(single.tally.created as f64 / single_secs),
            "latency_ms": latencies.summary(&[("p50", 0.5), ("p99", 0.99)]),
        },
    });
    Ok(Outcome {
        report,
        complete: batch.failed == 0 && single.tally.failed == 0,
    })
}

// ---------------------------------------------------------------------------------------------
// Creating timers
// ---------------------------------------------------------------------------------------------

/// This run's timer ids, group and routing key. Ids start with a prefix unique to the run,
/// so fires of timers from earlier runs are told apart.
struct Run {
    prefix: String,
    routing_key: String,
}

impl Run {
    fn new(target: &Target) -> Run {
        Run {
            prefix: format!("lg-{:x}-", now_ms()),
            routing_key: target.routing_key.clone(),
        }
    }

    /// Id of timer `n` of a kind; a steady-mode id also carries its due instant.
    fn timer_id(&self, kind: &str, n: usize) -> String {
        format!("{}{kind}{n}", self.prefix)
    }

    /// The create request of timer `n` of a kind, due at `due_ms` (Unix milliseconds).
    fn timer(&self, kind: &str, n: usize, due_ms: i64) -> Value {
        self.timer_with_id(&self.timer_id(kind, n), kind, due_ms)
    }

    fn timer_with_id(&self, id: &str, kind: &str, due_ms: i64) -> Value {
        json!({
            "id": id,
            "group": format!("{}{kind}", self.prefix),
            "schedule": {"at": at_text(due_ms)},
            "routing_key": self.routing_key,
        })
    }
}

/// The clockworks api as the generator calls it: one shared client that keeps connections
/// alive across requests.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
}

/// How one single create ended.
enum Answer {
    /// 201, or 200 for a retry that found the same timer.
    Created,
    Refused(StatusCode),
    Unsent(reqwest::Error),
}

impl Api {
    fn new(target: &Target) -> Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", target.key))
            .context("--key is not a valid header value")?;
        auth.set_sensitive(true);
        Ok(Api {
            http,
            base: target.api_url.trim_end_matches('/').to_owned(),
            auth,
        })
    }

    /// POSTs one timer. The response body is read to its end so the connection is reused.
    async fn create_one(&self, timer: &Value) -> Answer {
        let sent = self
            .http
            .post(format!("{}/v1/timers", self.base))
            .header(AUTHORIZATION, self.auth.clone())
            .json(timer)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return Answer::Unsent(err),
        };
        let status = response.status();
        if let Err(err) = response.bytes().await {
            return Answer::Unsent(err);
        }
        match status {
            StatusCode::CREATED | StatusCode::OK => Answer::Created,
            status => Answer::Refused(status),
        }
    }

    /// Creates a batch and waits for its operation; answers how many items failed.
    async fn create_batch(&self, timers: &[Value]) -> Result<usize> {
        let location = self.submit_batch(timers).await?;
        let operation = self.await_operation(&location).await?;
        match operation["status"].as_str() {
            Some("succeeded") => Ok(failed_items(&operation, timers.len())),
            _ => bail!(
                "operation {location} failed: {}",
                quote(&operation["error"].to_string())
            ),
        }
    }

    /// POSTs a batch until it is accepted (a 503 is sent again after its `Retry-After`);
    /// answers the operation's location.
    async fn submit_batch(&self, timers: &[Value]) -> Result<String> {
        let mut retries = 0;
        loop {
            let response = self
                .http
                .post(format!("{}/v1/timers", self.base))
                .header(AUTHORIZATION, self.auth.clone())
                .json(timers)
                .send()
                .await
                .context("sending a batch")?;
            let status = response.status();

            if status == StatusCode::SERVICE_UNAVAILABLE && retries < MAX_BATCH_RETRIES {
                retries += 1;
                let wait = retry_after(&response);
                let _ = response.bytes().await;
                tokio::time::sleep(wait).await;
                continue;
            }
            if status != StatusCode::ACCEPTED {
                let body = response.text().await.unwrap_or_default();
                bail!("a batch was answered {status}: {}", quote(&body));
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .context("a 202 without a Location header")?
                .to_owned();
            let _ = response.bytes().await;
            return Ok(location);
        }
    }

    /// Polls an operation until its status is final; answers its last representation,
    /// without per-item results (its counts say enough).
    async fn await_operation(&self, location: &str) -> Result<Value> {
        let mut url = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        };
        url.push_str(if url.contains('?') { "&" } else { "?" });
        url.push_str("items=false");
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        loop {
            let response = self
                .http
                .get(&url)
                .header(AUTHORIZATION, self.auth.clone())
                .send()
                .await
                .with_context(|| format!("polling {url}"))?;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            ensure!(
                status == StatusCode::OK,
                "{url} answered {status}: {}",
                quote(&body)
            );
            ensure!(
                !body.is_empty(),
                "{url} answered that no such operation exists"
            );
            let operation: Value = serde_json::from_str(&body)
                .with_context(|| format!("{url} answered something other than an operation"))?;

            match operation["status"].as_str() {
                Some("succeeded" | "failed") => return Ok(operation),
                Some("pending" | "running") => {}
                other => bail!("{url} has an unknown status {other:?}"),
            }
            ensure!(
                Instant::now() < deadline,
                "{url} was not final after {OPERATION_TIMEOUT:?}"
            );
            tokio::time::sleep(OPERATION_POLL_INTERVAL).await;
        }
    }
}

/// Items of a succeeded operation that neither created a timer nor found the same one: its
/// `item_count` less its `created` and `existing` counts.
fn failed_items(operation: &Value, submitted: usize) -> usize {
    let count = |field: &str| to_usize(operation["counts"][field].as_u64().unwrap_or(0));
    let items = operation["item_count"].as_u64().map_or(submitted, to_usize);
    items.saturating_sub(count("created") + count("existing"))
}

/// The wait a 503 asks for, in whole seconds.
fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

/// How many timers were created and, for the rest, why not.
#[derive(Debug, Default)]
struct Tally {
    created: usize,
    failed: usize,
    /// Failures by reason: an HTTP status, `transport`, or an operation's error.
    reasons: BTreeMap<String, usize>,
}

impl Tally {
    fn record(&mut self, answer: &Answer) {
        match answer {
            Answer::Created => self.created += 1,
            Answer::Refused(status) => self.fail(status.as_u16().to_string(), 1),
            Answer::Unsent(err) if err.is_timeout() => self.fail("timeout".to_owned(), 1),
            Answer::Unsent(_) => self.fail("transport".to_owned(), 1),
        }
    }

    fn fail(&mut self, reason: String, count: usize) {
        self.failed += count;
        *self.reasons.entry(reason).or_default() += count;
    }

    fn merge(&mut self, other: Tally) {
        self.created += other.created;
        for (reason, count) in other.reasons {
            self.fail(reason, count);
        }
    }
}

/// Creates timers in batches or with concurrent single POSTs.
struct Creator<'a> {
    api: &'a Api,
    with: CreateWith,
    batch_size: usize,
    in_flight: usize,
    clients: usize,
}

impl Creator<'_> {
    /// The largest probe worth making: one batch, or ten requests per client.
    fn probe_limit(&self) -> usize {
        match self.with {
            CreateWith::Batch => self.batch_size,
            CreateWith::Single => self.clients * 10,
        }
    }

    /// Creates timers `0..count`, the request of each made by `timer`.
    async fn create(
        &self,
        count: usize,
        progress: &Progress,
        timer: impl Fn(usize) -> Value + Sync,
    ) -> Tally {
        match self.with {
            CreateWith::Batch => self.create_in_batches(count, progress, &timer).await,
            CreateWith::Single => {
                create_singly(self.api, count, self.clients, progress, &timer)
                    .await
                    .tally
            }
        }
    }

    async fn create_in_batches(
        &self,
        count: usize,
        progress: &Progress,
        timer: &(impl Fn(usize) -> Value + Sync),
    ) -> Tally {
        let mut tally = Tally::default();
        let mut batches = futures::stream::iter((0..count).step_by(self.batch_size))
            .map(|first| {
                let items: Vec<Value> = (first..count.min(first + self.batch_size))
                    .map(timer)
                    .collect();
                async move { (items.len(), self.api.create_batch(&items).await) }
            })
            .buffer_unordered(self.in_flight);

        while let Some((size, result)) = batches.next().await {
            match result {
                Ok(failed) => {
                    tally.created += size - failed;
                    if failed > 0 {
                        tally.fail("item not created".to_owned(), failed);
                    }
                    progress.created.fetch_add(size - failed, Ordering::Relaxed);
                }
                Err(err) => {
                    eprintln!("[loadgen] a batch of {size} failed: {err:#}");
                    tally.fail(format!("{err:#}"), size);
                }
            }
            progress.failed.store(tally.failed, Ordering::Relaxed);
        }
        tally
    }
}

/// What a closed loop of single creates did.
struct SingleCreates {
    tally: Tally,
    /// Response times in microseconds.
    latencies: Samples,
}

/// Creates timers `0..count` with `clients` concurrent single POSTs, each client sending its
/// next request as soon as the last was answered.
async fn create_singly(
    api: &Api,
    count: usize,
    clients: usize,
    progress: &Progress,
    timer: impl Fn(usize) -> Value + Sync,
) -> SingleCreates {
    let next = AtomicUsize::new(0);
    let client = || async {
        let mut tally = Tally::default();
        let mut latencies = Vec::new();
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= count {
                break;
            }
            let body = timer(n);
            let started = Instant::now();
            let answer = api.create_one(&body).await;
            latencies.push(micros(started.elapsed()));
            tally.record(&answer);
            progress.count(&answer);
        }
        (tally, latencies)
    };

    let results = futures::future::join_all((0..clients).map(|_| client())).await;
    let mut all = SingleCreates {
        tally: Tally::default(),
        latencies: Samples::default(),
    };
    for (tally, latencies) in results {
        all.tally.merge(tally);
        all.latencies.0.extend(latencies);
    }
    all
}

/// What the open-loop sender of `steady` did.
struct OpenLoop {
    /// Each timer answered 2xx, with its due instant in Unix microseconds.
    created: HashMap<String, i64>,
    tally: Tally,
    attempts: usize,
    send_secs: f64,
    /// How late each request started after its planned instant, in microseconds.
    lags: Samples,
    /// Response times in microseconds.
    latencies: Samples,
}

/// One steady-mode request, as its task reports it.
struct Sent {
    id: String,
    due_us: i64,
    answer: Answer,
    latency_us: i64,
}

/// Sends request `n` at `start + n / rate` whatever earlier requests are doing. When all
/// `clients` are busy the request waits for one, and the wait is recorded as generator lag
/// rather than hidden.
async fn send_open_loop(
    api: &Api,
    run: &Run,
    args: &SteadyArgs,
    progress: &Arc<Progress>,
) -> OpenLoop {
    let total = (args.rate * args.duration_secs as f64).round() as usize;
    let delay_ms = to_i64(args.min_delay_secs) * 1_000..=to_i64(args.max_delay_secs) * 1_000;
    let permits = Arc::new(Semaphore::new(to_usize(args.clients)));
    let (results, mut answers) = mpsc::unbounded_channel::<Sent>();
    let api = Arc::new(api.clone());
    let mut lags = Samples::default();
    let start = Instant::now();

    for n in 0..total {
        let planned = start + Duration::from_secs_f64(n as f64 / args.rate);
        if planned > Instant::now() {
            tokio::time::sleep_until(planned.into()).await;
        }
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        lags.0
            .push(micros(started.saturating_duration_since(planned)));

        let due_ms = now_ms() + rand::random_range(delay_ms.clone());
        let id = format!("{}s{n}-{due_ms}", run.prefix);
        let body = run.timer_with_id(&id, "s", due_ms);
        let api = Arc::clone(&api);
        let results = results.clone();
        let progress = Arc::clone(progress);
        tokio::spawn(async move {
            let answer = api.create_one(&body).await;
            let latency_us = micros(started.elapsed());
            drop(permit);
            progress.count(&answer);
            let _ = results.send(Sent {
                id,
                due_us: due_ms * 1_000,
                answer,
                latency_us,
            });
        });
    }
    let send_secs = start.elapsed().as_secs_f64();
    drop(results);

    let mut open_loop = OpenLoop {
        created: HashMap::with_capacity(total),
        tally: Tally::default(),
        attempts: total,
        send_secs,
        lags,
        latencies: Samples::default(),
    };
    while let Some(sent) = answers.recv().await {
        open_loop.tally.record(&sent.answer);
        open_loop.latencies.0.push(sent.latency_us);
        if matches!(sent.answer, Answer::Created) {
            open_loop.created.insert(sent.id, sent.due_us);
        }
    }
    open_loop
}

// ---------------------------------------------------------------------------------------------
// Receiving fires
// ---------------------------------------------------------------------------------------------

/// One fire of this run's timers, the first delivery of its message id.
struct Fire {
    timer_id: String,
    scheduled_us: i64,
    received_us: i64,
}

/// Everything the consumer received during a run.
#[derive(Default)]
struct Deliveries {
    fires: Vec<Fire>,
    /// Deliveries whose message id had been received before.
    duplicates: usize,
    /// Fired events of timers not created by this run.
    foreign: usize,
    /// Messages that were not fired events.
    undecodable: usize,
}

/// An exclusive queue bound to this run's routing key, drained by a task that stamps each
/// delivery with its receive time as soon as it is read.
struct FireConsumer {
    connection: Connection,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Deliveries>>,
}

impl FireConsumer {
    async fn start(target: &Target, run: &Run, progress: Arc<Progress>) -> Result<FireConsumer> {
        let binding = format!("{}.{}", target.namespace, target.routing_key);
        let connection = tokio::time::timeout(
            AMQP_CONNECT_TIMEOUT,
            Connection::connect(&target.amqp_url, ConnectionProperties::default()),
        )
        .await
        .context("the broker did not answer in time")?
        .context("connecting to the broker")?;
        let channel = connection.create_channel().await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                target.exchange.as_str().into(),
                binding.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| {
                format!(
                    "binding to {}; a worker declares it when it starts",
                    target.exchange
                )
            })?;
        // Without acknowledgements the broker pushes as fast as the socket takes them, so
        // the consumer adds as little as it can to the measured lateness.
        let deliveries = channel
            .basic_consume(
                queue.name().clone(),
                "clockworks-loadgen".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;

        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(receive(deliveries, run.prefix.clone(), progress, stopped));
        Ok(FireConsumer {
            connection,
            stop,
            task,
        })
    }

    /// Stops receiving and answers everything received.
    async fn finish(self) -> Result<Deliveries> {
        let _ = self.stop.send(());
        let deliveries = self.task.await.context("the consumer task panicked")??;
        let _ = self.connection.close(200, "loadgen done".into()).await;
        Ok(deliveries)
    }
}

async fn receive(
    mut consumer: lapin::Consumer,
    prefix: String,
    progress: Arc<Progress>,
    mut stopped: oneshot::Receiver<()>,
) -> Result<Deliveries> {
    let mut received = Deliveries::default();
    let mut message_ids = HashSet::new();
    loop {
        let delivery = tokio::select! {
            _ = &mut stopped => break,
            delivery = consumer.next() => delivery,
        };
        let Some(delivery) = delivery else {
            bail!("the broker ended the consumer");
        };
        let delivery = delivery.context("receiving from the broker")?;
        let received_us = now_us();

        let Ok(event) = serde_json::from_slice::<FiredEvent>(&delivery.data) else {
            received.undecodable += 1;
            continue;
        };
        if !event.timer_id.starts_with(&prefix) {
            received.foreign += 1;
            continue;
        }
        let message_id = match delivery.properties.message_id() {
            Some(id) => id.to_string(),
            None => format!("{}#{}", event.timer_id, event.fire_seq),
        };
        if !message_ids.insert(message_id) {
            received.duplicates += 1;
            continue;
        }
        received.fires.push(Fire {
            timer_id: event.timer_id,
            scheduled_us: event.scheduled_at.as_microsecond(),
            received_us,
        });
        progress.fired.fetch_add(1, Ordering::Relaxed);
    }
    Ok(received)
}

/// Waits until `expected` distinct fires arrived (then a quiet window more, for duplicates)
/// or until `drain` after `last_due_us`, whichever is first.
async fn wait_for_fires(progress: &Progress, expected: usize, last_due_us: i64, drain: Duration) {
    let deadline_us = last_due_us + micros(drain);
    loop {
        if progress.fired.load(Ordering::Relaxed) >= expected {
            tokio::time::sleep(QUIET_WINDOW).await;
            return;
        }
        if now_us() >= deadline_us {
            return;
        }
        tokio::time::sleep(WAIT_POLL_INTERVAL).await;
    }
}

/// The fires received, held against the timers created.
struct Matched {
    /// Receive time minus `scheduled_at` of each expected fire, in microseconds.
    lateness: Samples,
    /// `(scheduled_at, lateness)` of each expected fire, in microseconds.
    timeline: Vec<(i64, i64)>,
    received: usize,
    first_received_us: Option<i64>,
    last_received_us: Option<i64>,
    early: usize,
    missing: usize,
    /// Fires of this run's timers that were not known to be created (a request that timed
    /// out may still have created its timer).
    unexpected: usize,
    /// Fires whose `scheduled_at` is not the instant the timer was created for.
    schedule_mismatch: usize,
}

impl Matched {
    fn new(expected: &HashMap<String, i64>, deliveries: &Deliveries) -> Matched {
        let mut matched = Matched {
            lateness: Samples::default(),
            timeline: Vec::with_capacity(deliveries.fires.len()),
            received: 0,
            first_received_us: None,
            last_received_us: None,
            early: 0,
            missing: 0,
            unexpected: 0,
            schedule_mismatch: 0,
        };
        for fire in &deliveries.fires {
            let Some(&due_us) = expected.get(&fire.timer_id) else {
                matched.unexpected += 1;
                continue;
            };
            let lateness_us = fire.received_us - fire.scheduled_us;
            matched.received += 1;
            matched.lateness.0.push(lateness_us);
            matched.timeline.push((fire.scheduled_us, lateness_us));
            matched.early += usize::from(lateness_us < 0);
            matched.schedule_mismatch += usize::from(fire.scheduled_us != due_us);
            matched.first_received_us = Some(
                matched
                    .first_received_us
                    .map_or(fire.received_us, |us| us.min(fire.received_us)),
            );
            matched.last_received_us = Some(
                matched
                    .last_received_us
                    .map_or(fire.received_us, |us| us.max(fire.received_us)),
            );
        }
        matched.missing = expected.len() - matched.received;
        matched
    }

    /// p99 lateness of the fires scheduled in each minute since `start_us`, in order.
    fn per_minute_p99(&self, start_us: i64) -> Vec<Value> {
        let mut minutes: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for &(scheduled_us, lateness_us) in &self.timeline {
            let minute = (scheduled_us - start_us).max(0) / 60_000_000;
            minutes.entry(minute).or_default().push(lateness_us);
        }
        let last = minutes.keys().next_back().copied().unwrap_or(-1);
        (0..=last)
            .map(|minute| match minutes.remove(&minute) {
                Some(lateness) => json!(ms(percentile(&sorted(lateness), 0.99))),
                None => Value::Null,
            })
            .collect()
    }

    /// The correctness counts every mode reports.
    fn add_counts(&self, report: &mut Value, deliveries: &Deliveries) {
        report["missing"] = json!(self.missing);
        report["duplicates"] = json!(deliveries.duplicates);
        report["early"] = json!(self.early);
        report["unexpected"] = json!(self.unexpected);
        report["schedule_mismatch"] = json!(self.schedule_mismatch);
        report["foreign"] = json!(deliveries.foreign);
        report["undecodable"] = json!(deliveries.undecodable);
    }
}

// ---------------------------------------------------------------------------------------------
// Progress, statistics and clocks
// ---------------------------------------------------------------------------------------------

/// Counters shared by the senders and the consumer, printed to standard error every second.
struct Progress {
    phase: Mutex<&'static str>,
    created: AtomicUsize,
    failed: AtomicUsize,
    /// Distinct fires of this run's timers received so far.
    fired: AtomicUsize,
    reporter: Mutex<Option<JoinHandle<()>>>,
}

impl Progress {
    fn start(phase: &'static str) -> Arc<Progress> {
        let progress = Arc::new(Progress {
            phase: Mutex::new(phase),
            created: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            fired: AtomicUsize::new(0),
            reporter: Mutex::new(None),
        });
        let reported = Arc::clone(&progress);
        let reporter = tokio::spawn(async move {
            let started = Instant::now();
            let mut ticks = tokio::time::interval(PROGRESS_INTERVAL);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                eprintln!(
                    "[loadgen] {:>6.1} s {}: created {}, failed {}, fired {}",
                    started.elapsed().as_secs_f64(),
                    reported
                        .phase
                        .lock()
                        .expect("the phase lock is never poisoned"),
                    reported.created.load(Ordering::Relaxed),
                    reported.failed.load(Ordering::Relaxed),
                    reported.fired.load(Ordering::Relaxed),
                );
            }
        });
        *progress.reporter.lock().expect("not poisoned") = Some(reporter);
        progress
    }

    /// Starts a new phase; the create counters start again from zero.
    fn set_phase(&self, phase: &'static str) {
        *self.phase.lock().expect("the phase lock is never poisoned") = phase;
        self.created.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
    }

    fn count(&self, answer: &Answer) {
        let counter = match answer {
            Answer::Created => &self.created,
            Answer::Refused(_) | Answer::Unsent(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn stop(&self) {
        if let Some(reporter) = self.reporter.lock().expect("not poisoned").take() {
            reporter.abort();
        }
    }
}

/// Durations in microseconds, summarised in milliseconds.
#[derive(Debug, Clone, Default)]
struct Samples(Vec<i64>);

impl Samples {
    /// The named quantiles and the maximum, in milliseconds (null when there are no samples).
    fn summary(&mut self, quantiles: &[(&str, f64)]) -> Value {
        self.0.sort_unstable();
        let mut summary = serde_json::Map::new();
        for &(name, quantile) in quantiles {
            let value = (!self.0.is_empty()).then(|| ms(percentile(&self.0, quantile)));
            summary.insert(name.to_owned(), json!(value));
        }
        summary.insert("max".to_owned(), json!(self.0.last().copied().map(ms)));
        Value::Object(summary)
    }
}

fn sorted(mut values: Vec<i64>) -> Vec<i64> {
    values.sort_unstable();
    values
}

/// The nearest-rank percentile of sorted, non-empty values.
fn percentile(sorted: &[i64], quantile: f64) -> i64 {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds as milliseconds with one decimal.
fn ms(us: i64) -> f64 {
    (us as f64 / 100.0).round() / 10.0
}

fn round3(value: f64) -> f64 {
    (value * 1_000.0).round() / 1_000.0
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn now_us() -> i64 {
    Timestamp::now().as_microsecond()
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// Unix milliseconds as RFC 3339, as a schedule's `at` takes them.
fn at_text(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .expect("instants near now are within jiff's range")
        .to_string()
}

/// The start of a response body, for an error message.
fn quote(body: &str) -> &str {
    match body.char_indices().nth(MAX_QUOTED_BODY) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<i64> = (1..=1_000).collect();
        assert_eq!(percentile(&values, 0.5), 500);
        assert_eq!(percentile(&values, 0.99), 990);
        assert_eq!(percentile(&values, 0.999), 999);
        assert_eq!(percentile(&[7], 0.99), 7);
    }

    #[test]
    fn a_summary_of_no_samples_is_null() {
        let summary = Samples::default().summary(&[("p50", 0.5)]);
        assert_eq!(summary, json!({"p50": null, "max": null}));
    }

    #[test]
    fn fires_are_held_against_the_timers_created() {
        let expected = HashMap::from([
            ("lg-1-b0".to_owned(), 1_000_000),
            ("lg-1-b1".to_owned(), 1_000_000),
            ("lg-1-b2".to_owned(), 1_000_000),
        ]);
        let fire = |id: &str, scheduled_us, received_us| Fire {
            timer_id: id.to_owned(),
            scheduled_us,
            received_us,
        };
        let deliveries = Deliveries {
            fires: vec![
                fire("lg-1-b0", 1_000_000, 1_004_000),
                fire("lg-1-b1", 1_000_000, 999_000),
                fire("lg-1-b9", 1_000_000, 1_001_000),
            ],
            ..Deliveries::default()
        };

        let matched = Matched::new(&expected, &deliveries);

        assert_eq!(matched.received, 2);
        assert_eq!(matched.early, 1);
        assert_eq!(matched.missing, 1);
        assert_eq!(matched.unexpected, 1);
        assert_eq!(matched.first_received_us, Some(999_000));
        assert_eq!(matched.last_received_us, Some(1_004_000));
    }

    #[test]
    fn per_minute_p99_leaves_empty_minutes_null() {
        let matched = Matched {
            lateness: Samples::default(),
            timeline: vec![(0, 2_000), (150_000_000, 5_000)],
            received: 2,
            first_received_us: None,
            last_received_us: None,
            early: 0,
            missing: 0,
            unexpected: 0,
            schedule_mismatch: 0,
        };
        assert_eq!(
            matched.per_minute_p99(0),
            vec![json!(2.0), Value::Null, json!(5.0)]
        );
    }

    #[test]
    fn items_neither_created_nor_existing_count_as_failed() {
        let operation = json!({
            "status": "succeeded",
            "item_count": 5,
            "counts": {"created": 3, "existing": 1, "conflict": 1, "failed": 0},
        });
        assert_eq!(failed_items(&operation, 5), 1);
    }
}
