//! The consumer examples (`tests/examples/consumer.rs` and `consumer.py`) against a real
//! worker and RabbitMQ: each prints both events of two timers once, and prints a message that
//! the test publishes twice with one `message_id` once, as it drops a redelivered fire.
//!
//! The Python example runs with the interpreter in `CLOCKWORKS_TEST_PYTHON`, by default the
//! virtualenv `target/python` that `scripts/test.sh` creates with pika in it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clockworks_tests::Stack;
use clockworks_tests::stack::amqp_url;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Generous bound for one event to reach the consumer on a busy machine.
const LINE_LIMIT: Duration = Duration::from_secs(30);

/// `target/<profile>`, where this test binary's `deps` folder is.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// The Rust example, built first so that the test never runs a stale one.
fn rust_example() -> Result<Command> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args([
        "build",
        "--quiet",
        "-p",
        "clockworks-tests",
        "--example",
        "consumer",
    ]);
    if profile_dir().ends_with("release") {
        build.arg("--release");
    }
    ensure!(
        build.status()?.success(),
        "building the consumer example failed"
    );
    Ok(Command::new(
        profile_dir().join("examples").join("consumer"),
    ))
}

/// The Python example under the interpreter that has pika.
fn python_example() -> Result<Command> {
    let python = std::env::var_os("CLOCKWORKS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| profile_dir().join("../python/bin/python"));
    if !python.exists() {
        bail!(
            "no Python with pika at {}: run scripts/test.sh, which creates target/python, \
             or set CLOCKWORKS_TEST_PYTHON",
            python.display()
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/consumer.py");
    let mut command = Command::new(python);
    command.arg(script);
    Ok(command)
}

/// A running example: its printed events, and its notes from standard error.
struct Example {
    _child: Child,
    events: Lines<BufReader<ChildStdout>>,
    notes: mpsc::UnboundedReceiver<String>,
}

impl Example {
    /// Starts the example and waits until its queue is bound.
    async fn start(mut command: Command, stack: &Stack, extra_args: &[&str]) -> Result<Example> {
        let mut child = command
            .args(["--namespace", "acme", "--exchange", &stack.exchange])
            .args(extra_args)
            .env("AMQP_URL", amqp_url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the example")?;

        let mut stderr = BufReader::new(child.stderr.take().context("stderr is piped")?).lines();
        let (sender, mut notes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = tokio::time::timeout(LINE_LIMIT, notes.recv())
            .await
            .context("the example did not bind in time")?
            .context("the example exited before it was bound")?;
        ensure!(ready.starts_with("consuming from queue "), "{ready}");

        let events = BufReader::new(child.stdout.take().context("stdout is piped")?).lines();
        Ok(Example {
            _child: child,
            events,
            notes,
        })
    }

    /// The next printed event, split into its words.
    async fn next_event(&mut self) -> Result<Vec<String>> {
        let line = tokio::time::timeout(LINE_LIMIT, self.events.next_line())
            .await
            .context("no event printed in time")??
            .context("the example exited")?;
        Ok(line.split(' ').map(str::to_owned).collect())
    }

    async fn next_note(&mut self) -> Result<String> {
        tokio::time::timeout(LINE_LIMIT, self.notes.recv())
            .await
            .context("no note in time")?
            .context("the example exited")
    }
}

/// Publishes `body` to the test's exchange with `message_id`, confirmed by the broker.
async fn publish(stack: &Stack, routing_key: &str, message_id: &str, body: &[u8]) -> Result<()> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let properties = BasicProperties::default()
        .with_message_id(message_id.into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    channel
        .basic_publish(
            stack.exchange.as_str().into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await?
        .await?;
    let _ = connection.close(200, "published".into()).await;
    Ok(())
}

fn fired_body(timer_id: &str) -> Vec<u8> {
    let event = json!({
        "timer_id": timer_id,
        "namespace": "acme",
        "group": null,
        "fire_seq": 1,
        "scheduled_at": "2027-01-01T09:00:00Z",
        "fired_at": "2027-01-01T09:00:00.004Z",
        "payload": {"replayed": true}
    });
    serde_json::to_vec(&event).expect("JSON serializes")
}

/// What each example must do: two timers' events printed once each; a repeat of a fire the
/// worker published, and a message published twice with one id, dropped; then a last
/// message printed, which shows that the repeats before it were consumed and not printed.
async fn prints_each_event_once(example: Command, extra_args: &[&str]) -> Result<()> {
    let stack = Stack::start(1).await?;
    let key = stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await?;
    let mut example = Example::start(example, &stack, extra_args).await?;

    for id in ["first", "second"] {
        let timer = json!({"id": id, "schedule": {"after": "0s"}, "routing_key": "orders"});
        let response = stack
            .http
            .post(stack.url("/v1/timers"))
            .bearer_auth(&key)
            .json(&timer)
            .send()
            .await?;
        ensure!(
            response.status() == 201,
            "creating {id}: {}",
            response.status()
        );
    }
    let mut fired = vec![example.next_event().await?, example.next_event().await?];
    fired.sort();
    assert_eq!(
        fired[0][..3],
        ["acme.orders", "first", "fire_seq=1"],
        "{fired:?}"
    );
    assert_eq!(
        fired[1][..3],
        ["acme.orders", "second", "fire_seq=1"],
        "{fired:?}"
    );
    let first_id = fired[0][3]
        .strip_prefix("message_id=")
        .context("each event names its message id")?
        .to_owned();

    let replayed_id = Uuid::new_v4().to_string();
    publish(&stack, "acme.orders", &first_id, &fired_body("first")).await?;
    publish(
        &stack,
        "acme.replayed",
        &replayed_id,
        &fired_body("replayed"),
    )
    .await?;
    publish(
        &stack,
        "acme.replayed",
        &replayed_id,
        &fired_body("replayed"),
    )
    .await?;
    let last_id = Uuid::new_v4().to_string();
    publish(&stack, "acme.last", &last_id, &fired_body("last")).await?;

    let replayed = example.next_event().await?;
    assert_eq!(replayed[..2], ["acme.replayed", "replayed"], "{replayed:?}");
    assert_eq!(replayed[3], format!("message_id={replayed_id}"));
    let last = example.next_event().await?;
    assert_eq!(last[..2], ["acme.last", "last"], "{last:?}");
    assert_eq!(
        example.next_note().await?,
        format!("duplicate {first_id} dropped")
    );
    assert_eq!(
        example.next_note().await?,
        format!("duplicate {replayed_id} dropped")
    );

    stack.shutdown().await
}

#[tokio::test]
async fn the_rust_consumer_prints_each_event_once_from_a_durable_queue() -> Result<()> {
    let queue = format!("cw_test.{}.consumer", Uuid::new_v4().simple());
    let outcome = prints_each_event_once(rust_example()?, &["--queue", &queue]).await;

    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await?;
    outcome
}

#[tokio::test]
async fn the_python_consumer_prints_each_event_once_from_an_exclusive_queue() -> Result<()> {
    prints_each_event_once(python_example()?, &[]).await
}
