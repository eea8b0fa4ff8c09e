//! A test's own database, exchange names and processes.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::amqp::Consumer;
use crate::process::{Api, Worker, run_to_completion};

const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Prefix of every database a test creates; `.ci/run` drops leftovers with it.
pub const TEST_DATABASE_PREFIX: &str = "cw_test_";

fn server_url() -> String {
    std::env::var("CLOCKWORKS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.into())
}

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.into())
}

/// A database of one test's own, migrated, dropped when [`TestDb::drop_database`] runs.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Result<TestDb> {
        let name = format!("{TEST_DATABASE_PREFIX}{}", Uuid::new_v4().simple());
        let server = server_url();
        let admin = connect(&server).await?;
        admin
            .batch_execute(&format!("create database {name}"))
            .await
            .context("creating the test database")?;
        let url = with_database(&server, &name);
        clockworks::db::migrate(&url)
            .await
            .context("migrating the test database")?;
        Ok(TestDb { name, url })
    }

    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        connect(&self.url).await
    }

    /// Drops the database, ending any session still connected to it.
    pub async fn drop_database(&self) -> Result<()> {
        let admin = connect(&server_url()).await?;
        admin
            .batch_execute(&format!(
                "drop database if exists {} with (force)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server_url, String::new()),
    };
    let base = base.rsplit_once('/').map_or(base, |(head, _)| head);
    format!("{base}/{database}{query}")
}

/// Everything one test runs against: its database, its exchange, an api and workers.
pub struct Stack {
    pub db: TestDb,
    /// The test's own fired-events exchange (its alternate exchange and queue derive from it).
    pub exchange: String,
    pub api: Option<Api>,
    pub workers: Vec<Worker>,
    pub http: reqwest::Client,
}

impl Stack {
    /// A fresh database and exchange name, with no process running yet.
    pub async fn new() -> Result<Stack> {
        let db = TestDb::create().await?;
        let exchange = format!("cw_test.{}.fired", Uuid::new_v4().simple());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Stack {
            db,
            exchange,
            api: None,
            workers: Vec::new(),
            http,
        })
    }

    /// A stack with an api and `workers` workers running.
    pub async fn start(workers: usize) -> Result<Stack> {
        let mut stack = Stack::new().await?;
        stack.start_api(&[]).await?;
        for _ in 0..workers {
            stack.start_worker(&[]).await?;
        }
        Ok(stack)
    }

    pub async fn start_api(&mut self, env: &[(&str, &str)]) -> Result<&Api> {
        let api = Api::spawn(&self.db.url, env).await?;
        self.api = Some(api);
        Ok(self.api.as_ref().expect("just set"))
    }

    pub async fn start_worker(&mut self, env: &[(&str, &str)]) -> Result<&Worker> {
        let worker = Worker::spawn(&self.db.url, &amqp_url(), &self.exchange, env).await?;
        self.workers.push(worker);
        Ok(self.workers.last().expect("just pushed"))
    }

    pub fn api(&self) -> &Api {
        self.api.as_ref().expect("the api was started")
    }

    /// `http://127.0.0.1:<port><path>` of the running api.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api().base_url)
    }

    /// Creates an API key with the `clockworks-api keys create` command; returns the token.
    pub async fn create_key(&self, namespace: &str, scopes: &[&str]) -> Result<String> {
        let scopes = scopes.join(",");
        let output = run_to_completion(
            "clockworks-api",
            &[
                "keys",
                "create",
                "--namespace",
                namespace,
                "--scopes",
                &scopes,
            ],
            &[("DATABASE_URL", self.db.url.as_str())],
        )
        .await?;
        let token = output
            .lines()
            .map(str::trim)
            .rfind(|line| line.starts_with("cw_"))
            .context("keys create printed no key")?;
        Ok(token.to_owned())
    }

    /// A consumer bound to this test's exchange with `binding` (e.g. `"acme.#"`).
    pub async fn consumer(&self, binding: &str) -> Result<Consumer> {
        Consumer::bind(&amqp_url(), &self.exchange, binding).await
    }

    /// Stops every process and drops the database and the test's exchanges.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(api) = self.api.as_mut() {
            api.kill();
        }
        for worker in &mut self.workers {
            worker.kill();
        }
        crate::amqp::delete_topology(&amqp_url(), &self.exchange).await?;
        self.db.drop_database().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_part_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
