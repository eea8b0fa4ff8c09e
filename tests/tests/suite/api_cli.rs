//! The command line of `clockworks-api`: help on every command, the `keys` commands and
//! `migrate`, run as the real binary.

use std::process::Output;
use std::time::Duration;

use anyhow::Result;
use clockworks_tests::TestDb;
use clockworks_tests::process::binary;
use tokio::process::Command;

async fn api_command(args: &[&str], db: Option<&TestDb>) -> Result<Output> {
    let mut command = Command::new(binary("clockworks-api"));
    command.args(args);
    if let Some(db) = db {
        command.env("DATABASE_URL", &db.url);
    }
    Ok(command.output().await?)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn every_command_prints_its_help_and_succeeds() -> Result<()> {
    let commands: [&[&str]; 8] = [
        &["--help"],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["keys", "--help"],
        &["keys", "create", "--help"],
        &["keys", "revoke", "--help"],
        &["keys", "list", "--help"],
        &["help", "keys"],
    ];
    for args in commands {
        let output = api_command(args, None).await?;
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(stdout(&output).contains("Usage:"), "{args:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_created_key_is_printed_alone_on_the_last_line_with_a_warning_on_stderr() -> Result<()> {
    let db = TestDb::create().await?;

    let output = api_command(
        &[
            "keys",
            "create",
            "--namespace",
            "acme",
            "--scopes",
            "timers:read",
            "--name",
            "app",
        ],
        Some(&db),
    )
    .await?;

    assert!(output.status.success(), "{output:?}");
    let stdout = stdout(&output);
    let last_line = stdout.lines().last().unwrap_or_default();
    assert!(
        last_line.starts_with("cw_") && !last_line.contains(' '),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be shown again"), "{stderr}");
    let client = db.client().await?;
    let row = client
        .query_one("select namespace, name, scopes from api_keys", &[])
        .await?;
    assert_eq!(row.get::<_, String>(0), "acme");
    assert_eq!(row.get::<_, String>(1), "app");
    assert_eq!(row.get::<_, Vec<String>>(2), ["timers:read"]);
    db.drop_database().await
}

#[tokio::test]
async fn a_namespace_that_could_not_head_a_routing_key_is_refused() -> Result<()> {
    let db = TestDb::create().await?;

    for namespace in ["acme.eu", "Acme", "-acme", ""] {
        let output = api_command(
            &[
                "keys",
                "create",
                "--namespace",
                namespace,
                "--scopes",
                "admin",
            ],
            Some(&db),
        )
        .await?;
        assert!(!output.status.success(), "{namespace:?} was accepted");
    }

    let client = db.client().await?;
    let keys: i64 = client
        .query_one("select count(*) from api_keys", &[])
        .await?
        .get(0);
    assert_eq!(keys, 0);
    db.drop_database().await
}

#[tokio::test]
async fn listing_keys_shows_ids_and_revocations_but_never_secrets() -> Result<()> {
    let db = TestDb::create().await?;
    let created = api_command(
        &[
            "keys",
            "create",
            "--namespace",
            "acme",
            "--scopes",
            "timers:write",
        ],
        Some(&db),
    )
    .await?;
    let token = stdout(&created).trim().to_owned();
    let (id, secret) = token
        .strip_prefix("cw_")
        .and_then(|rest| rest.split_once('_'))
        .expect("a key token");

    let listed = stdout(&api_command(&["keys", "list", "--namespace", "acme"], Some(&db)).await?);
    let row = listed
        .lines()
        .find(|line| line.starts_with(id))
        .expect("the key is listed");
    assert!(
        row.contains("timers:write") && row.ends_with("\t-"),
        "{row}"
    );
    assert!(!listed.contains(secret), "{listed}");

    let revoked = api_command(&["keys", "revoke", id], Some(&db)).await?;
    assert!(revoked.status.success(), "{revoked:?}");
    let listed = stdout(&api_command(&["keys", "list", "--namespace", "acme"], Some(&db)).await?);
    let row = listed
        .lines()
        .find(|line| line.starts_with(id))
        .expect("the key is listed");
    assert!(!row.ends_with("\t-"), "a revoked key shows when: {row}");

    let again = api_command(&["keys", "revoke", id], Some(&db)).await?;
    assert!(!again.status.success(), "revoking twice must fail");
    db.drop_database().await
}

#[tokio::test]
async fn migrate_applies_the_schema_once() -> Result<()> {
    let db = TestDb::create().await?;
    db.client()
        .await?
        .batch_execute("drop schema public cascade; create schema public")
        .await?;

    let first = api_command(&["migrate"], Some(&db)).await?;
    assert!(first.status.success(), "{first:?}");
    assert!(stdout(&first).contains("Applied"), "{}", stdout(&first));
    let second = api_command(&["migrate"], Some(&db)).await?;
    assert!(second.status.success(), "{second:?}");
    assert!(
        stdout(&second).contains("up to date"),
        "{}",
        stdout(&second)
    );

    let client = db.client().await?;
    let timers: i64 = client
        .query_one("select count(*) from timers", &[])
        .await?
        .get(0);
    assert_eq!(timers, 0);
    db.drop_database().await
}

#[tokio::test]
async fn the_server_stops_cleanly_on_sigterm() -> Result<()> {
    let mut stack = clockworks_tests::Stack::new().await?;
    stack.start_api(&[]).await?;
    let api = stack.api.as_mut().expect("the api was started");

    api.process.signal("TERM").await?;
    let status = api.process.wait_exit(Duration::from_secs(20)).await?;

    assert!(status.success(), "{status:?}");
    assert!(api.process.log()?.contains("clockworks-api stopped"));
    stack.shutdown().await
}
