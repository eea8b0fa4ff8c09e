//! What the `clockworks` command-line tests share: running the real binary against a test's
//! api with a key, and reading what it printed.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};

use anyhow::{Context, Result};
use clockworks_tests::Stack;
use clockworks_tests::process::binary;
use clockworks_tests::stack::amqp_url;
use tokio::process::Command;

/// One finished run of `clockworks`.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Standard output of a run that must have succeeded.
    pub fn out(&self) -> &str {
        assert!(self.status.success(), "clockworks failed: {self:?}");
        &self.stdout
    }

    /// The one line of standard error of a run that must have failed, with nothing on
    /// standard output.
    pub fn error_line(&self) -> &str {
        assert!(!self.status.success(), "clockworks succeeded: {self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line on stderr: {self:?}");
        lines[0]
    }

    /// A `field  value` listing of one resource, as a map.
    pub fn fields(&self) -> BTreeMap<String, String> {
        fields(self.out())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.out()).expect("--json prints JSON")
    }
}

/// The `field  value` lines of `text` up to its first blank line.
pub fn fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(' '))
        .map(|(name, value)| (name.to_owned(), value.trim_start().to_owned()))
        .collect()
}

/// A `clockworks` command with no settings inherited from the environment of the tests.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(binary("clockworks"));
    command
        .args(args)
        .env_remove("CLOCKWORKS_URL")
        .env_remove("CLOCKWORKS_KEY")
        .env_remove("CLOCKWORKS_EXCHANGE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `clockworks <args>` against the stack's api with `key` (none when `None`).
pub async fn clockworks(stack: &Stack, key: Option<&str>, args: &[&str]) -> Result<Run> {
    let mut command = command(args);
    command
        .env("CLOCKWORKS_URL", &stack.api().base_url)
        .env("AMQP_URL", amqp_url())
        .env("CLOCKWORKS_EXCHANGE", &stack.exchange);
    if let Some(key) = key {
        command.env("CLOCKWORKS_KEY", key);
    }
    let output = command.output().await.context("running clockworks")?;
    Ok(Run {
        status: output.status,
        stdout: String::from_utf8(output.stdout)?,
        stderr: String::from_utf8(output.stderr)?,
    })
}

/// A read-write key of namespace `acme`.
pub async fn write_key(stack: &Stack) -> Result<String> {
    stack
        .create_key("acme", &["timers:read", "timers:write"])
        .await
}
