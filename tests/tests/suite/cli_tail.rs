//! `clockworks tail` prints the events of timers created and triggered with `clockworks`
//! itself: the command line from one end of a timer to the other.

use crate::cli_support;

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use clockworks_tests::Stack;
use clockworks_tests::stack::amqp_url;
use tokio::io::{AsyncBufReadExt, BufReader};

use cli_support::{clockworks, command, write_key};

/// Generous bound for a fire to reach the tail on a busy machine.
const LINE_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn tail_prints_the_events_of_timers_created_and_triggered_by_the_cli() -> Result<()> {
    let stack = Stack::start(1).await?;
    let key = write_key(&stack).await?;
    let key = Some(key.as_str());

    let mut tail = command(&["tail", "--namespace", "acme"])
        .env("AMQP_URL", amqp_url())
        .env("CLOCKWORKS_EXCHANGE", &stack.exchange)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Anything published before the queue is bound would be missed.
    let mut notes = BufReader::new(tail.stderr.take().context("stderr is piped")?).lines();
    let note = tokio::time::timeout(LINE_LIMIT, notes.next_line())
        .await
        .context("tail did not bind in time")??
        .context("tail exited")?;
    assert!(note.starts_with("watching acme.# on exchange "), "{note}");

    let due_now = ["timers", "create", "--id", "now-1", "--after", "0s"];
    clockworks(
        &stack,
        key,
        &[&due_now[..], &["--routing-key", "orders.now"]].concat(),
    )
    .await?
    .out();
    let later = ["timers", "create", "--id", "later-1", "--after", "1h"];
    clockworks(
        &stack,
        key,
        &[&later[..], &["--routing-key", "orders.later"]].concat(),
    )
    .await?
    .out();
    let triggered = clockworks(&stack, key, &["timers", "trigger", "later-1"]).await?;
    assert_eq!(triggered.fields()["state"], "scheduled");

    let mut lines = BufReader::new(tail.stdout.take().context("stdout is piped")?).lines();
    let mut events = Vec::new();
    for _ in 0..2 {
        let line = tokio::time::timeout(LINE_LIMIT, lines.next_line())
            .await
            .context("no event in time")??
            .context("tail exited")?;
        let fields: Vec<String> = line.split(' ').skip(1).take(3).map(str::to_owned).collect();
        events.push(fields.join(" "));
    }
    events.sort();
    assert_eq!(
        events,
        [
            "acme.orders.later later-1 fire_seq=1",
            "acme.orders.now now-1 fire_seq=1"
        ]
    );

    tail.kill().await?;
    stack.shutdown().await
}
