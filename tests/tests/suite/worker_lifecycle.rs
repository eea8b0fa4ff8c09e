//! The worker as an operator meets it: help on every command, readiness that follows what it
//! can reach, and a clean exit when asked to stop.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use clockworks_tests::Stack;
use clockworks_tests::process::{binary, free_port, run_to_completion};
use reqwest::StatusCode;
use tokio::process::Command;

#[tokio::test]
async fn every_command_explains_itself_with_help() -> Result<()> {
    for args in [&["--help"][..], &["run", "--help"], &["tail", "--help"]] {
        let help = run_to_completion("clockworks-worker", args, &[]).await?;
        assert!(
            help.contains("Usage: clockworks-worker"),
            "{args:?}: {help}"
        );
    }
    let run_help = run_to_completion("clockworks-worker", &["run", "--help"], &[]).await?;
    for flag in [
        "--admin-listen",
        "--batch-size",
        "--confirm-timeout-ms",
        "--claim-hold-secs",
        "--migrate-on-start",
    ] {
        assert!(run_help.contains(flag), "run --help lacks {flag}");
    }
    Ok(())
}

#[tokio::test]
async fn a_worker_that_cannot_reach_the_broker_is_alive_but_not_ready() -> Result<()> {
    let stack = Stack::new().await?;
    let admin = format!("127.0.0.1:{}", free_port());
    // Nothing listens on this port: connecting is refused at once.
    let unreachable = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let _worker = Command::new(binary("clockworks-worker"))
        .arg("run")
        .env("DATABASE_URL", &stack.db.url)
        .env("AMQP_URL", &unreachable)
        .env("CLOCKWORKS_EXCHANGE", &stack.exchange)
        .env("CLOCKWORKS_WORKER_ADMIN_LISTEN", &admin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let alive = loop {
        if let Ok(response) = stack
            .http
            .get(format!("http://{admin}/healthz"))
            .send()
            .await
        {
            break response.status();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the admin port never answered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(alive, StatusCode::OK);

    // Long enough for the database connection and several broker attempts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready = stack
        .http
        .get(format!("http://{admin}/readyz"))
        .send()
        .await?;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.text().await?.contains("broker"));

    stack.db.drop_database().await
}

#[tokio::test]
async fn an_idle_worker_asked_to_stop_exits_cleanly_and_promptly() -> Result<()> {
    let mut stack = Stack::new().await?;
    stack.start_worker(&[]).await?;

    let worker = &mut stack.workers[0];
    worker.process.signal("TERM").await?;
    let status = worker.process.wait_exit(Duration::from_secs(10)).await?;
    assert!(status.success(), "the worker exited with {status}");

    stack.shutdown().await
}
