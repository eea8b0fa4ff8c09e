//! `clockworks operations ...`: showing a batch operation, and following one until it
//! finishes. Following polls the operation without its items, backing off to a poll a
//! second, and shows the items once at the end.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::cli::OperationsCommand;
use crate::client::Client;
use crate::print;
use crate::table::{Table, cell, fields};
use crate::timers::pretty;

/// First wait between two polls of an operation; most small batches finish within it.
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait between two polls.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Runs one `operations` command.
pub async fn run(command: OperationsCommand, client: &Client, json: bool) -> Result<()> {
    match command {
        OperationsCommand::Get { id } => {
            let operation = fetch(client, &id, true).await?;
            show(&operation, json);
            Ok(())
        }
        OperationsCommand::Wait { id, timeout_secs } => wait(client, &id, timeout_secs, json).await,
    }
}

/// Polls the operation until it succeeded or failed, then shows it. A failed operation, or
/// one still unfinished after `timeout_secs`, is an error.
pub async fn wait(client: &Client, id: &str, timeout_secs: u64, json: bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    let mut interval = FIRST_POLL_INTERVAL;
    loop {
        let operation = fetch(client, id, false).await?;
        let status = operation["status"].as_str().unwrap_or_default();
        if matches!(status, "succeeded" | "failed") {
            break;
        }
        if Instant::now() + interval > deadline {
            bail!("operation {id} is still {status} after {timeout_secs} s");
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
    }

    let operation = fetch(client, id, true).await?;
    show(&operation, json);
    if operation["status"] == "failed" {
        bail!("operation {id} failed: {}", cell(&operation["error"]));
    }
    Ok(())
}

/// The operation, with its first page of item results when `items`.
async fn fetch(client: &Client, id: &str, items: bool) -> Result<Value> {
    let url = client.url(&["v1", "operations", id], &[("items", items.to_string())]);
    let answer = client.send(Method::GET, url, None).await?;
    answer
        .body
        .with_context(|| format!("no operation {id:?} in this key's namespace"))
}

fn show(operation: &Value, json: bool) {
    if json {
        print(&pretty(operation));
        return;
    }

    // Counts of outcomes that happened; the api lists every outcome, zeros included.
    let counts: Vec<String> = operation["counts"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, count)| count.as_u64().is_some_and(|count| count > 0))
        .map(|(outcome, count)| format!("{outcome}={count}"))
        .collect();
    let mut pairs = vec![
        ("id", cell(&operation["id"])),
        ("kind", cell(&operation["kind"])),
        ("status", cell(&operation["status"])),
        ("item_count", cell(&operation["item_count"])),
        (
            "counts",
            if counts.is_empty() {
                "-".into()
            } else {
                counts.join(" ")
            },
        ),
        ("submitted_at", cell(&operation["submitted_at"])),
        ("started_at", cell(&operation["started_at"])),
        ("finished_at", cell(&operation["finished_at"])),
    ];
    if !operation["error"].is_null() {
        pairs.push(("error", cell(&operation["error"])));
    }
    let mut text = fields(&pairs);

    if let Some(items) = operation["items"]
        .as_array()
        .filter(|items| !items.is_empty())
    {
        let mut table = Table::new(&["INDEX", "TIMER", "OUTCOME", "ERROR"]);
        for item in items {
            table.push(vec![
                cell(&item["index"]),
                cell(&item["id"]),
                cell(&item["outcome"]),
                cell(&item["error"]),
            ]);
        }
        text.push('\n');
        text.push_str(&table.render());
    }
    print(&text);
    if let Some(offset) = operation["next_offset"].as_u64() {
        eprintln!(
            "more items follow: GET /v1/operations/{}?offset={offset} lists them",
            cell(&operation["id"])
        );
    }
}
