//! `soak`: a long run of mixed load against a real api and real workers while their
//! connections to RabbitMQ and PostgreSQL are cut again and again. It prints its figures as
//! one JSON object on standard output (progress goes to standard error) and exits non-zero
//! when a promise was broken. `scripts/soak.sh` builds and runs it (docs/operations.md).
//!
//! The run: a fresh database; one proxy in front of PostgreSQL, which the api and the workers
//! use, and one in front of RabbitMQ, which the workers use; the api and the workers as child
//! processes, started from the binaries next to this one; a consumer bound straight to the
//! broker. Timers are created at a fixed rate, each due a random 1 to 30 s later, and a share
//! of them is deleted halfway to their due instant. A create or delete answered 503 is sent
//! again after its `Retry-After`; a create is safe to repeat because it names its timer's id.
//!
//! The promises checked: every timer whose create was answered 2xx and that was not cancelled
//! fired; none fired before its due instant; a timer delivered more than once carried the same
//! message id each time; none fired after a delete had found it still scheduled; no request
//! was answered 500.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use clockworks_tests::amqp::delete_topology;
use clockworks_tests::process::free_port;
use clockworks_tests::proxy::{Proxy, url_through};
use clockworks_tests::stack::{TestDb, amqp_url};
use clockworks_tests::{Consumer, Fired};
use jiff::Timestamp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The namespace of the soak's timers; fired events are routed as `soak.<routing key>`.
const NAMESPACE: &str = "soak";
/// Longest wait for one HTTP answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times a request answered 503 (or not at all) is sent, in all.
const MAX_ATTEMPTS: u32 = 60;
/// Wait before sending again when a 503 names no `Retry-After`, or no answer came.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Most requests in flight at once, so that a cut database cannot pile up unbounded tasks.
const MAX_IN_FLIGHT: usize = 2_000;
/// How long a child process may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// After the load stops, how long the last timers have to fire, beyond the longest delay.
const DRAIN: Duration = Duration::from_secs(180);
/// After the last expected fire, how long to keep listening for repeated ones.
const QUIET_WINDOW: Duration = Duration::from_secs(5);
/// How often a progress line is written to standard error.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(10);

/// Soak test for clockworks: mixed load with repeated broker and database cuts.
#[derive(Debug, Clone, Parser)]
#[command(name = "soak")]
struct Cli {
    /// How long load is applied, in seconds; the run then waits for the last fires.
    #[arg(long, default_value_t = 600)]
    duration_secs: u64,

    /// Timers created per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,

    /// Shortest delay from a timer's creation to its due instant, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    min_delay_ms: u64,

    /// Longest delay from a timer's creation to its due instant, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    max_delay_ms: u64,

    /// Share of the created timers that are deleted halfway to their due instant.
    #[arg(long, default_value_t = 0.1)]
    delete_share: f64,

    /// Workers to run.
    #[arg(long, default_value_t = 2)]
    workers: usize,

    /// Seconds between the starts of two broker cuts.
    #[arg(long, default_value_t = 60)]
    broker_cut_every_secs: u64,

    /// Seconds each broker cut lasts.
    #[arg(long, default_value_t = 10)]
    broker_cut_secs: u64,

    /// Seconds between the starts of two database cuts.
    #[arg(long, default_value_t = 90)]
    database_cut_every_secs: u64,

    /// Seconds each database cut lasts.
    #[arg(long, default_value_t = 5)]
    database_cut_secs: u64,

    /// Where the logs of the api and the workers are written.
    #[arg(long, default_value = ".run/soak")]
    log_dir: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(report) => {
            let passed = report["passed"] == json!(true);
            println!("{report:#}");
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("soak: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<Value> {
    anyhow::ensure!(
        cli.min_delay_ms >= 1 && cli.min_delay_ms <= cli.max_delay_ms,
        "--min-delay-ms must be at least 1 and at most --max-delay-ms"
    );
    std::fs::create_dir_all(&cli.log_dir)?;
    let db = TestDb::create()
        .await
        .context("creating the soak database")?;
    let exchange = format!("cw_soak.{}.fired", uuid::Uuid::new_v4().simple());
    let outcome = soak(&cli, &db, &exchange).await;

    delete_topology(&amqp_url(), &exchange).await?;
    db.drop_database().await?;
    outcome
}

async fn soak(cli: &Cli, db: &TestDb, exchange: &str) -> Result<Value> {
    let database_proxy = Proxy::start(upstream(&db.url).await?).await?;
    let broker_proxy = Proxy::start(upstream(&amqp_url()).await?).await?;
    let database_url = url_through(&db.url, &database_proxy);
    let broker_url = url_through(&amqp_url(), &broker_proxy);

    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()?;
    let mut children = Vec::new();
    for n in 0..cli.workers {
        let worker = start_worker(cli, &http, &database_url, &broker_url, exchange, n).await?;
        children.push(worker);
    }
    let (api, api_url) = start_api(cli, &http, &database_url).await?;
    children.push(api);
    let key = create_key(&db.url).await?;
    let consumer = Consumer::bind(&amqp_url(), exchange, &format!("{NAMESPACE}.#")).await?;
    eprintln!(
        "soak: {} workers and an api running; {} timers/s for {} s",
        cli.workers, cli.rate, cli.duration_secs
    );

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let receiving = tokio::spawn(receive(consumer, deliveries.clone()));
    let load = Load {
        cli: cli.clone(),
        http,
        api_url,
        key,
        ledger: ledger.clone(),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    };
    let started = Instant::now();
    let until = started + Duration::from_secs(cli.duration_secs);
    let faults = Faults::default();
    tokio::join!(
        load.run(until),
        faults.inject(cli, &broker_proxy, &database_proxy, started, until),
        progress(&ledger, &deliveries, until),
    );
    broker_proxy.restore();
    database_proxy.restore();

    eprintln!("soak: load stopped; waiting for the last fires");
    load.settle().await;
    drain(cli, &ledger, &deliveries).await;
    receiving.abort();
    for mut child in children {
        let _ = child.kill().await;
    }

    let ledger = ledger.lock().expect("no task panicked").clone();
    let deliveries = deliveries.lock().expect("no task panicked").clone();
    Ok(report(cli, &ledger, &deliveries, &faults))
}

/// The socket address behind a `scheme://[user@]host:port/...` URL.
async fn upstream(url: &str) -> Result<std::net::SocketAddr> {
    let authority = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?']).next())
        .context("a URL with a scheme")?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    tokio::net::lookup_host(host_port)
        .await?
        .next()
        .context("the host resolves")
}

/// A binary built next to this one (`target/<profile>/`).
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .context("the binary has a directory")?
        .join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing; build it first",
        path.display()
    );
    Ok(path)
}

fn spawn(name: &str, args: &[&str], env: &[(&str, &str)], log: &Path) -> Result<Child> {
    let log = std::fs::File::create(log)?;
    Command::new(sibling(name)?)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {name}"))
}

async fn wait_ready(http: &reqwest::Client, url: &str, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if child.try_wait()?.is_some() {
            bail!("the process behind {url} exited before it was ready; see its log");
        }
        if Instant::now() > deadline {
            bail!("{url} was not ready within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_worker(
    cli: &Cli,
    http: &reqwest::Client,
    database_url: &str,
    broker_url: &str,
    exchange: &str,
    n: usize,
) -> Result<Child> {
    let admin = format!("127.0.0.1:{}", free_port());
    let log = cli.log_dir.join(format!("worker-{n}.log"));
    let env = [
        ("DATABASE_URL", database_url),
        ("AMQP_URL", broker_url),
        ("CLOCKWORKS_EXCHANGE", exchange),
        ("CLOCKWORKS_WORKER_ADMIN_LISTEN", admin.as_str()),
        ("CLOCKWORKS_LOG", "info"),
    ];
    let mut child = spawn("clockworks-worker", &["run"], &env, &log)?;
    wait_ready(http, &format!("http://{admin}/readyz"), &mut child).await?;
    Ok(child)
}

async fn start_api(
    cli: &Cli,
    http: &reqwest::Client,
    database_url: &str,
) -> Result<(Child, String)> {
    let listen = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let env = [
        ("DATABASE_URL", database_url),
        ("CLOCKWORKS_API_LISTEN", listen.as_str()),
        ("CLOCKWORKS_API_ADMIN_LISTEN", admin.as_str()),
        ("CLOCKWORKS_LOG", "info"),
    ];
    let mut child = spawn(
        "clockworks-api",
        &["serve"],
        &env,
        &cli.log_dir.join("api.log"),
    )?;
    let url = format!("http://{listen}");
    wait_ready(http, &format!("{url}/healthz"), &mut child).await?;
    Ok((child, url))
}

/// A read-write key of the soak's namespace, created straight in the database.
async fn create_key(database_url: &str) -> Result<String> {
    let output = Command::new(sibling("clockworks-api")?)
        .args(["keys", "create", "--namespace", NAMESPACE])
        .args(["--scopes", "timers:read,timers:write"])
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(output.status.success(), "keys create failed");
    String::from_utf8(output.stdout)?
        .lines()
        .map(str::trim)
        .rfind(|line| line.starts_with("cw_"))
        .map(str::to_owned)
        .context("keys create printed no key")
}

/// What became of each timer the load generator created, as far as the api said.
#[derive(Debug, Clone, Default)]
struct Ledger {
    creates_sent: u64,
    creates_accepted: u64,
    creates_refused: u64,
    creates_unanswered: u64,
    deletes_sent: u64,
    deletes_cancelled: u64,
    deletes_after_fire: u64,
    deletes_uncertain: u64,
    /// Answers with status 503, each followed by a retry.
    answered_503: u64,
    /// Answers with status 500 (or another 5xx than 503): always a failure.
    server_errors: u64,
    timers: HashMap<String, Fate>,
}

/// What a consumer must see of an accepted timer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// Accepted and not cancelled: must fire, once or repeated with the same message id.
    Fires,
    /// A delete found it still scheduled at this instant: must not fire after it.
    Cancelled { at: Timestamp },
    /// A delete's outcome is unknown: it may fire or not.
    Either,
}

/// The load generator: creates at a fixed rate, deletes a share of what it created.
#[derive(Clone)]
struct Load {
    cli: Cli,
    http: reqwest::Client,
    api_url: String,
    key: String,
    ledger: Arc<Mutex<Ledger>>,
    in_flight: Arc<Semaphore>,
}

impl Load {
    /// Starts one create every `1 / rate` seconds until `until`, each on its own task.
    async fn run(&self, until: Instant) {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.cli.rate.max(1)));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut n: u64 = 0;
        while Instant::now() < until {
            ticks.tick().await;
            let load = self.clone();
            let id = format!("soak-{n:08}");
            n += 1;
            tokio::spawn(async move { load.create_and_maybe_delete(id).await });
        }
    }

    /// Waits until every request task has finished.
    async fn settle(&self) {
        let _all = self
            .in_flight
            .acquire_many(u32::try_from(MAX_IN_FLIGHT).unwrap_or(u32::MAX))
            .await;
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .expect("no task panicked holding the ledger")
    }

    async fn create_and_maybe_delete(self, id: String) {
        let Ok(_permit) = self.in_flight.clone().acquire_owned().await else {
            return;
        };
        let delay_ms = rand::random_range(self.cli.min_delay_ms..=self.cli.max_delay_ms);
        let timer = json!({
            "id": id,
            "schedule": {"after": format!("{delay_ms}ms")},
            "routing_key": "fired",
            "payload": {"delay_ms": delay_ms},
        });
        self.ledger().creates_sent += 1;
        let url = format!("{}/v1/timers", self.api_url);
        let accepted = match self.send(reqwest::Method::POST, &url, Some(&timer)).await {
            Answer::Done(status, _) if status.is_success() => true,
            Answer::Done(..) => {
                self.ledger().creates_refused += 1;
                false
            }
            Answer::GaveUp => {
                self.ledger().creates_unanswered += 1;
                false
            }
        };
        if !accepted {
            return;
        }
        {
            let mut ledger = self.ledger();
            ledger.creates_accepted += 1;
            ledger.timers.insert(id.clone(), Fate::Fires);
        }

        if rand::random_bool(self.cli.delete_share.clamp(0.0, 1.0)) {
            tokio::time::sleep(Duration::from_millis(delay_ms / 2)).await;
            self.delete(&id).await;
        }
    }

    async fn delete(&self, id: &str) {
        self.ledger().deletes_sent += 1;
        let url = format!("{}/v1/timers/{id}", self.api_url);
        let answer = self.send(reqwest::Method::DELETE, &url, None).await;
        let mut ledger = self.ledger();
        let fate = match answer {
            Answer::Done(StatusCode::OK, Some(deleted)) => match deleted["state"].as_str() {
                Some("scheduled" | "paused") => Fate::Cancelled {
                    at: Timestamp::now(),
                },
                _ => Fate::Fires,
            },
            // Nothing was there (an earlier attempt answered 503 may have deleted it), or
            // no answer came: either way the timer may have fired or not.
            _ => Fate::Either,
        };
        match fate {
            Fate::Cancelled { .. } => ledger.deletes_cancelled += 1,
            Fate::Fires => ledger.deletes_after_fire += 1,
            Fate::Either => ledger.deletes_uncertain += 1,
        }
        ledger.timers.insert(id.to_owned(), fate);
    }

    /// Sends until answered other than 503, at most [`MAX_ATTEMPTS`] times.
    async fn send(&self, method: reqwest::Method, url: &str, body: Option<&Value>) -> Answer {
        for _ in 0..MAX_ATTEMPTS {
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(&self.key);
            if let Some(body) = body {
                request = request.json(body);
            }
            let wait = match request.send().await {
                Ok(response) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                    self.ledger().answered_503 += 1;
                    retry_after(&response)
                }
                Ok(response) => {
                    let status = response.status();
                    if status.is_server_error() {
                        self.ledger().server_errors += 1;
                    }
                    let text = response.text().await.unwrap_or_default();
                    let body = serde_json::from_str(&text).ok();
                    return Answer::Done(status, body);
                }
                Err(_) => DEFAULT_RETRY_AFTER,
            };
            tokio::time::sleep(wait).await;
        }
        Answer::GaveUp
    }
}

/// The final answer to a request, or none after every attempt.
enum Answer {
    Done(StatusCode, Option<Value>),
    GaveUp,
}

fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

/// Records every delivery until aborted.
async fn receive(mut consumer: Consumer, deliveries: Arc<Mutex<Vec<Fired>>>) {
    while let Some(fired) = consumer.next(Duration::from_secs(3_600)).await {
        deliveries.lock().expect("no task panicked").push(fired);
    }
}

/// The cuts made so far.
#[derive(Debug, Default)]
struct Faults {
    broker_cuts: Mutex<u32>,
    database_cuts: Mutex<u32>,
}

impl Faults {
    /// Cuts the broker and the database on their own periods until `until`.
    async fn inject(
        &self,
        cli: &Cli,
        broker: &Proxy,
        database: &Proxy,
        started: Instant,
        until: Instant,
    ) {
        let broker_cuts = cut_periodically(
            "broker",
            broker,
            started,
            until,
            Duration::from_secs(cli.broker_cut_every_secs),
            Duration::from_secs(cli.broker_cut_secs),
            &self.broker_cuts,
        );
        let database_cuts = cut_periodically(
            "database",
            database,
            started,
            until,
            Duration::from_secs(cli.database_cut_every_secs),
            Duration::from_secs(cli.database_cut_secs),
            &self.database_cuts,
        );
        tokio::join!(broker_cuts, database_cuts);
    }
}

async fn cut_periodically(
    name: &str,
    proxy: &Proxy,
    started: Instant,
    until: Instant,
    every: Duration,
    lasting: Duration,
    count: &Mutex<u32>,
) {
    if every.is_zero() || lasting.is_zero() {
        return;
    }
    let mut next = started + every;
    while next + lasting <= until {
        tokio::time::sleep_until(next).await;
        proxy.cut().await;
        *count.lock().expect("no task panicked") += 1;
        eprintln!(
            "soak: {name} cut at {:.0} s for {} s",
            started.elapsed().as_secs_f64(),
            lasting.as_secs()
        );
        tokio::time::sleep(lasting).await;
        proxy.restore();
        next += every;
    }
}

async fn progress(ledger: &Mutex<Ledger>, deliveries: &Mutex<Vec<Fired>>, until: Instant) {
    let mut ticks = tokio::time::interval(PROGRESS_INTERVAL);
    ticks.tick().await;
    while Instant::now() < until {
        ticks.tick().await;
        let (accepted, answered_503) = {
            let ledger = ledger.lock().expect("no task panicked");
            (ledger.creates_accepted, ledger.answered_503)
        };
        let delivered = deliveries.lock().expect("no task panicked").len();
        eprintln!(
            "soak: {accepted} timers accepted, {delivered} fires delivered, \
             {answered_503} answers 503 so far"
        );
    }
}

/// Waits until every timer that must fire did, or the drain limit passed; then listens for
/// a quiet window more.
async fn drain(cli: &Cli, ledger: &Mutex<Ledger>, deliveries: &Mutex<Vec<Fired>>) {
    let deadline = Instant::now() + Duration::from_millis(cli.max_delay_ms) + DRAIN;
    loop {
        let waiting = {
            let fired: BTreeSet<String> = deliveries
                .lock()
                .expect("no task panicked")
                .iter()
                .map(|fired| fired.timer_id().to_owned())
                .collect();
            ledger
                .lock()
                .expect("no task panicked")
                .timers
                .iter()
                .filter(|(id, fate)| **fate == Fate::Fires && !fired.contains(*id))
                .count()
        };
        if waiting == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(QUIET_WINDOW).await;
}

/// The figures of the run, and whether every promise held.
fn report(cli: &Cli, ledger: &Ledger, deliveries: &[Fired], faults: &Faults) -> Value {
    let mut by_timer: HashMap<&str, Vec<&Fired>> = HashMap::new();
    for fired in deliveries {
        by_timer.entry(fired.timer_id()).or_default().push(fired);
    }

    let early = deliveries
        .iter()
        .filter(|fired| fired.received_at < fired.scheduled_at())
        .count();
    let with_another_message_id = by_timer
        .values()
        .filter(|fires| {
            let ids: BTreeSet<&Option<String>> = fires.iter().map(|f| &f.message_id).collect();
            ids.len() > 1
        })
        .count();
    let expected: Vec<&String> = ledger
        .timers
        .iter()
        .filter(|(_, fate)| **fate == Fate::Fires)
        .map(|(id, _)| id)
        .collect();
    let missing: Vec<&&String> = expected
        .iter()
        .filter(|id| !by_timer.contains_key(id.as_str()))
        .collect();
    let fired_after_cancel = ledger
        .timers
        .iter()
        .filter_map(|(id, fate)| match fate {
            Fate::Cancelled { at } => by_timer.get(id.as_str()).map(|fires| (fires, *at)),
            _ => None,
        })
        .filter(|(fires, cancelled_at)| fires.iter().any(|fired| fired_at(fired) > *cancelled_at))
        .count();
    let unaccepted = by_timer
        .keys()
        .filter(|id| !ledger.timers.contains_key(**id))
        .count();
    let repeated = deliveries.len() - by_timer.len();

    let mut lateness_ms: Vec<i64> = by_timer
        .values()
        .filter_map(|fires| {
            fires
                .iter()
                .map(|fired| fired.received_at)
                .min()
                .zip(fires.first())
        })
        .map(|(received, fired)| received.duration_since(fired.scheduled_at()).as_millis() as i64)
        .collect();
    lateness_ms.sort_unstable();
    let percentile = |p: f64| -> Value {
        if lateness_ms.is_empty() {
            return Value::Null;
        }
        let index = ((lateness_ms.len() - 1) as f64 * p).round() as usize;
        json!(lateness_ms[index])
    };

    let passed = missing.is_empty()
        && early == 0
        && with_another_message_id == 0
        && fired_after_cancel == 0
        && ledger.server_errors == 0;
    json!({
        "duration_secs": cli.duration_secs,
        "rate_per_sec": cli.rate,
        "delay_ms": [cli.min_delay_ms, cli.max_delay_ms],
        "workers": cli.workers,
        "faults": {
            "broker_cuts": *faults.broker_cuts.lock().expect("no task panicked"),
            "broker_cut_secs": cli.broker_cut_secs,
            "database_cuts": *faults.database_cuts.lock().expect("no task panicked"),
            "database_cut_secs": cli.database_cut_secs,
        },
        "requests": {
            "creates_sent": ledger.creates_sent,
            "creates_accepted": ledger.creates_accepted,
            "creates_refused": ledger.creates_refused,
            "creates_unanswered": ledger.creates_unanswered,
            "deletes_sent": ledger.deletes_sent,
            "deletes_cancelled": ledger.deletes_cancelled,
            "deletes_after_fire": ledger.deletes_after_fire,
            "deletes_uncertain": ledger.deletes_uncertain,
            "answered_503_and_retried": ledger.answered_503,
            "server_errors": ledger.server_errors,
        },
        "fires": {
            "expected": expected.len(),
            "fired": expected.len() - missing.len(),
            "missing": missing.len(),
            "missing_examples": missing.iter().take(10).collect::<Vec<_>>(),
            "early": early,
            "deliveries": deliveries.len(),
            "repeated": repeated,
            "repeated_with_another_message_id": with_another_message_id,
            "fired_after_cancel": fired_after_cancel,
            "fired_without_an_accepted_create": unaccepted,
        },
        "lateness_ms": {
            "p50": percentile(0.5),
            "p99": percentile(0.99),
            "p999": percentile(0.999),
            "max": lateness_ms.last(),
        },
        "passed": passed,
    })
}

/// When the worker published a fire, by the database clock (the event's `fired_at`).
fn fired_at(fired: &Fired) -> Timestamp {
    fired.body["fired_at"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or(fired.received_at)
}
