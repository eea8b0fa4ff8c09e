//! `clockworks timers ...` against a real api: a timer's whole life from the command line,
//! paging, and errors that read as one line from the api's problem details.

use crate::cli_support;

use anyhow::Result;
use clockworks_tests::Stack;
use clockworks_tests::process::free_port;

use cli_support::{clockworks, command, write_key};

#[tokio::test]
async fn a_timer_is_created_read_listed_paused_resumed_and_deleted_from_the_command_line()
-> Result<()> {
    let stack = Stack::start(0).await?;
    let key = write_key(&stack).await?;
    let key = Some(key.as_str());

    let created = clockworks(
        &stack,
        key,
        &[
            "timers",
            "create",
            "--id",
            "order-42",
            "--group",
            "orders",
            "--after",
            "1h",
            "--routing-key",
            "orders.reminder",
            "--payload",
            r#"{"order": 42}"#,
            "--header",
            "trace-id=abc",
        ],
    )
    .await?;
    let fields = created.fields();
    assert_eq!(fields["id"], "order-42");
    assert_eq!(fields["state"], "scheduled");
    assert_eq!(fields["group"], "orders");
    assert!(fields["schedule"].starts_with("after "), "{fields:?}");
    assert_eq!(fields["payload"], r#"{"order":42}"#);

    let again = clockworks(
        &stack,
        key,
        &[
            "timers", "create", "--id", "order-42", "--group", "orders", "--after", "1h",
        ]
        .into_iter()
        .chain([
            "--routing-key",
            "orders.reminder",
            "--payload",
            r#"{"order": 42}"#,
        ])
        .chain(["--header", "trace-id=abc"])
        .collect::<Vec<_>>(),
    )
    .await?;
    assert_eq!(again.fields()["version"], fields["version"]);
    assert!(again.stderr.contains("already existed"), "{again:?}");

    let read = clockworks(&stack, key, &["timers", "get", "order-42", "--json"]).await?;
    let timer = read.json();
    assert_eq!(timer["headers"]["trace-id"], "abc");
    assert_eq!(timer["payload"]["order"], 42);

    clockworks(
        &stack,
        key,
        &["timers", "create", "--id", "other-1", "--group", "other"]
            .into_iter()
            .chain(["--at", "2099-01-01T00:00:00Z", "--routing-key", "x"])
            .collect::<Vec<_>>(),
    )
    .await?
    .out();
    let listed = clockworks(&stack, key, &["timers", "list", "--group", "orders"]).await?;
    let lines: Vec<&str> = listed.out().lines().collect();
    assert_eq!(lines.len(), 2, "{listed:?}");
    assert!(lines[0].starts_with("ID "), "{listed:?}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], ["order-42", "orders", "scheduled"], "{listed:?}");

    let paused = clockworks(&stack, key, &["timers", "pause", "order-42"]).await?;
    assert_eq!(paused.fields()["state"], "paused");
    let resumed = clockworks(&stack, key, &["timers", "resume", "order-42"]).await?;
    assert_eq!(resumed.fields()["state"], "scheduled");

    let deleted = clockworks(&stack, key, &["timers", "delete", "order-42"]).await?;
    assert_eq!(deleted.out(), "deleted timer order-42\n");
    let gone = clockworks(&stack, key, &["timers", "get", "order-42"]).await?;
    assert_eq!(
        gone.error_line(),
        r#"clockworks: no timer "order-42" in this key's namespace"#
    );
    assert_eq!(gone.status.code(), Some(1));

    stack.shutdown().await
}

#[tokio::test]
async fn a_list_shows_one_page_and_says_how_to_get_the_next_or_follows_them_all() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = write_key(&stack).await?;
    let key = Some(key.as_str());
    for id in ["t-1", "t-2", "t-3", "t-4", "t-5"] {
        let args = [
            "timers",
            "create",
            "--id",
            id,
            "--after",
            "1h",
            "--routing-key",
            "x",
        ];
        clockworks(&stack, key, &args).await?.out();
    }

    let page = clockworks(&stack, key, &["timers", "list", "--limit", "2"]).await?;
    assert_eq!(page.out().lines().count(), 3, "{page:?}");
    assert!(page.stderr.contains("--cursor"), "{page:?}");

    let all = clockworks(
        &stack,
        key,
        &["timers", "list", "--limit", "2", "--all", "--json"],
    )
    .await?
    .json();
    let ids: Vec<&str> = all["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|timer| timer["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t-1", "t-2", "t-3", "t-4", "t-5"]);
    assert!(all["next_cursor"].is_null());

    stack.shutdown().await
}

#[tokio::test]
async fn errors_are_one_line_built_from_the_problem_details_with_a_failing_status() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = write_key(&stack).await?;
    let reader = stack.create_key("acme", &["timers:read"]).await?;
    let create = ["timers", "create", "--after", "5s", "--routing-key", "x"];

    let invalid = clockworks(
        &stack,
        Some(&key),
        &["timers", "create", "--after", "soon", "--routing-key", "x"],
    )
    .await?;
    assert!(
        invalid
            .error_line()
            .starts_with("clockworks: Invalid request (400): schedule.after: "),
        "{invalid:?}"
    );

    let forbidden = clockworks(&stack, Some(&reader), &create).await?;
    assert!(
        forbidden
            .error_line()
            .starts_with("clockworks: Forbidden (403): "),
        "{forbidden:?}"
    );

    let unknown_key = clockworks(&stack, Some("cw_nope_nope"), &create).await?;
    assert!(
        unknown_key
            .error_line()
            .starts_with("clockworks: Unauthorized (401): "),
        "{unknown_key:?}"
    );

    let no_key = clockworks(&stack, None, &create).await?;
    assert!(
        no_key
            .error_line()
            .starts_with("clockworks: no API key: pass --key or set CLOCKWORKS_KEY"),
        "{no_key:?}"
    );

    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let output = command(&["timers", "get", "t-1", "--key", &key, "--url", &nowhere])
        .output()
        .await?;
    let stderr = String::from_utf8(output.stderr)?;
    assert!(!output.status.success());
    assert!(
        stderr.starts_with(&format!("clockworks: cannot reach the api at {nowhere}/: ")),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let keys = clockworks(&stack, Some(&key), &["keys", "create", "--namespace", "x"]).await?;
    assert!(
        keys.error_line().contains("clockworks-api keys"),
        "{keys:?}"
    );
    assert_eq!(keys.status.code(), Some(2));

    stack.shutdown().await
}
