//! `clockworks timers create --file` with a batch, and `clockworks operations get|wait`:
//! following an operation that no worker applies yet, then one that a worker finishes.

use crate::cli_support;

use anyhow::{Context, Result};
use clockworks_tests::Stack;
use clockworks_tests::process::log_path;
use serde_json::json;
use uuid::Uuid;

use cli_support::{Run, clockworks, fields, write_key};

/// A batch of `count` one-shot timers, far in the future, written to a file of its own.
fn batch_file(prefix: &str, count: usize) -> Result<String> {
    let timers: Vec<_> = (0..count)
        .map(|index| {
            json!({
                "id": format!("{prefix}-{index}"),
                "schedule": {"at": "2099-01-01T00:00:00Z"},
                "routing_key": "batch"
            })
        })
        .collect();
    let path = log_path(&format!("cli-batch-{}", Uuid::new_v4().simple())).with_extension("json");
    std::fs::create_dir_all(path.parent().context("a file has a directory")?)?;
    std::fs::write(&path, serde_json::to_vec(&timers)?)?;
    Ok(path.to_string_lossy().into_owned())
}

/// The outcome column of each row of the items table of an operation listing.
fn item_outcomes(run: &Run) -> Vec<String> {
    let text = run.out();
    let (_, items) = text
        .split_once("\n\n")
        .expect("an items table follows the fields");
    items
        .lines()
        .skip(1)
        .map(|row| row.split_whitespace().nth(2).unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_operation_is_followed_until_a_worker_finishes_it_and_a_timeout_says_so() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_api(&[]).await?;
    let key = write_key(&stack).await?;
    let key = Some(key.as_str());

    let file = batch_file("first", 3)?;
    let accepted = clockworks(&stack, key, &["timers", "create", "--file", &file]).await?;
    let id = accepted
        .out()
        .strip_prefix("accepted as operation ")
        .and_then(|rest| rest.split(';').next())
        .context("the accepted operation's id is printed")?
        .to_owned();

    // No worker runs yet, so the operation stays pending.
    let waited = clockworks(
        &stack,
        key,
        &["operations", "wait", &id, "--timeout-secs", "1"],
    )
    .await?;
    assert_eq!(
        waited.error_line(),
        format!("clockworks: operation {id} is still pending after 1 s")
    );

    stack.start_worker(&[]).await?;
    let finished = clockworks(&stack, key, &["operations", "wait", &id]).await?;
    assert_eq!(finished.fields()["status"], "succeeded");
    assert_eq!(finished.fields()["counts"], "created=3");
    assert_eq!(item_outcomes(&finished), ["created", "created", "created"]);

    let read = clockworks(&stack, key, &["operations", "get", &id, "--json"]).await?;
    let operation = read.json();
    assert_eq!(operation["status"], "succeeded");
    assert_eq!(operation["items"].as_array().map(Vec::len), Some(3));

    let file = batch_file("second", 2)?;
    let followed = clockworks(
        &stack,
        key,
        &["timers", "create", "--file", &file, "--wait"],
    )
    .await?;
    assert_eq!(fields(followed.out())["status"], "succeeded");
    assert_eq!(item_outcomes(&followed), ["created", "created"]);

    let unknown = Uuid::new_v4().to_string();
    let missing = clockworks(&stack, key, &["operations", "get", &unknown]).await?;
    assert_eq!(
        missing.error_line(),
        format!("clockworks: no operation {unknown:?} in this key's namespace")
    );

    stack.shutdown().await
}
