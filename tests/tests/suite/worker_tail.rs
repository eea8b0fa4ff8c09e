//! `clockworks-worker tail`, the terminal view of a namespace's fired events: one line per
//! event, or the raw body with `--json`, and nothing from other namespaces.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use clockworks::message::FiredEvent;
use clockworks_tests::Stack;
use clockworks_tests::process::binary;
use clockworks_tests::seed::{self, SeedTimer};
use clockworks_tests::stack::amqp_url;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const LINE_LIMIT: Duration = Duration::from_secs(15);

/// A running `tail`, bound to the exchange by the time this returns.
struct Tail {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Tail {
    async fn start(stack: &Stack, extra_args: &[&str]) -> Result<Tail> {
        let mut child = Command::new(binary("clockworks-worker"))
            .args(["tail", "--namespace", "acme"])
            .args(extra_args)
            .env("AMQP_URL", amqp_url())
            .env("CLOCKWORKS_EXCHANGE", &stack.exchange)
            .env("CLOCKWORKS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;

        // The tail logs once its queue is bound; anything published before would be missed.
        let mut log = BufReader::new(child.stderr.take().context("stderr is piped")?).lines();
        tokio::time::timeout(LINE_LIMIT, async {
            while let Some(line) = log.next_line().await? {
                if line.contains("tailing fired events") {
                    return Ok(());
                }
            }
            anyhow::bail!("tail exited before it was bound")
        })
        .await
        .context("tail did not bind in time")??;
        tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });

        let lines = BufReader::new(child.stdout.take().context("stdout is piped")?).lines();
        Ok(Tail {
            _child: child,
            lines,
        })
    }

    async fn next_line(&mut self) -> Result<String> {
        tokio::time::timeout(LINE_LIMIT, self.lines.next_line())
            .await
            .context("no line in time")??
            .context("tail exited")
    }
}

#[tokio::test]
async fn tail_prints_one_line_per_fired_event_of_its_namespace_only() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;
    let mut summary = Tail::start(&stack, &[]).await?;
    let mut json = Tail::start(&stack, &["--json"]).await?;
    let client = stack.db.client().await?;

    let due = seed::due_in(&client, -1000).await?;
    let mut other = SeedTimer::at("other", "elsewhere", due);
    other.next_fire_at = seed::due_in(&client, -2000).await?;
    let mut ours = SeedTimer::at("acme", "order-42", due);
    ours.payload = serde_json::json!({"order": 42});
    seed::insert(&client, &[other, ours]).await?;

    let line = summary.next_line().await?;
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 7, "{line}");
    assert_eq!(
        &fields[1..4],
        ["acme.fired", "order-42", "fire_seq=1"],
        "{line}"
    );
    assert_eq!(fields[4], format!("scheduled_at={due}"));
    assert!(fields[5].starts_with("lateness_ms="), "{line}");
    assert_eq!(fields[6], r#"{"order":42}"#);

    let body: FiredEvent = serde_json::from_str(&json.next_line().await?)?;
    assert_eq!(body.timer_id, "order-42");
    assert_eq!(body.namespace, "acme");

    stack.shutdown().await
}
