//! The real binaries as child processes. The first use in a test process builds them with
//! cargo, so a test never runs a stale binary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// How long a process may take to answer its health check after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// The path of a workspace binary, built (once per test process) if needed.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command.args([
            "build",
            "--quiet",
            "-p",
            "clockworks-api",
            "-p",
            "clockworks-worker",
        ]);
        if target_dir().ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the clockworks binaries failed");
    });
    target_dir().join(name)
}

/// Where a child's output goes: `target/test-logs/<name>.log`, kept for reading after a run.
pub fn log_path(name: &str) -> PathBuf {
    target_dir()
        .join("..")
        .join("test-logs")
        .join(format!("{name}.log"))
}

fn log_file(name: &str) -> Result<std::fs::File> {
    let path = log_path(name);
    std::fs::create_dir_all(path.parent().expect("a log file has a directory"))?;
    Ok(std::fs::File::create(path)?)
}

/// A free TCP port on 127.0.0.1 (free when asked; the child binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("the loopback interface has free ports")
}

/// Runs a binary to completion and returns its standard output; fails on a non-zero exit.
pub async fn run_to_completion(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    let output = Command::new(binary(name))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {name}"))?;
    if !output.status.success() {
        bail!(
            "{name} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// A running child process with an admin or health endpoint.
pub struct Process {
    child: Child,
    pub log_name: String,
}

impl Process {
    async fn spawn(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        log_name: String,
    ) -> Result<Process> {
        let log = log_file(&log_name)?;
        let child = Command::new(binary(name))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Process { child, log_name })
    }

    /// Everything the process has written to standard output and error so far.
    pub fn log(&self) -> Result<String> {
        Ok(std::fs::read_to_string(log_path(&self.log_name))?)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// SIGKILL: the process dies at once, in whatever it was doing.
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// SIGKILL, then waits until the process is gone.
    pub async fn kill_and_wait(&mut self) {
        self.kill();
        let _ = self.child.wait().await;
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`) with the system's `kill` command.
    pub async fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// Waits for the process to exit by itself, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        Ok(tokio::time::timeout(limit, self.child.wait())
            .await
            .context("the process did not exit in time")??)
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

async fn wait_until_ok(url: &str, process: &mut Process) -> Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if process.has_exited() {
            bail!(
                "{} exited before it was ready; see its log",
                process.log_name
            );
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer 2xx within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `clockworks-api serve`.
pub struct Api {
    pub process: Process,
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    /// `http://127.0.0.1:<admin port>` (metrics).
    pub admin_url: String,
}

impl Api {
    pub async fn spawn(database_url: &str, env: &[(&str, &str)]) -> Result<Api> {
        let listen = format!("127.0.0.1:{}", free_port());
        let admin = format!("127.0.0.1:{}", free_port());
        let mut all_env = vec![
            ("DATABASE_URL", database_url),
            ("CLOCKWORKS_API_LISTEN", listen.as_str()),
            ("CLOCKWORKS_API_ADMIN_LISTEN", admin.as_str()),
            ("CLOCKWORKS_LOG", "info,clockworks=debug"),
        ];
        all_env.extend_from_slice(env);
        let log_name = format!("api-{}", listen.replace([':', '.'], "_"));
        let mut process = Process::spawn("clockworks-api", &["serve"], &all_env, log_name).await?;
        let base_url = format!("http://{listen}");
        wait_until_ok(&format!("{base_url}/healthz"), &mut process).await?;
        Ok(Api {
            process,
            base_url,
            admin_url: format!("http://{admin}"),
        })
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// A running `clockworks-worker run`.
pub struct Worker {
    pub process: Process,
    /// `http://127.0.0.1:<admin port>` (metrics, health, readiness).
    pub admin_url: String,
}

impl Worker {
    /// Starts a worker and waits until it reports ready (database and broker reached).
    pub async fn spawn(
        database_url: &str,
        amqp_url: &str,
        exchange: &str,
        env: &[(&str, &str)],
    ) -> Result<Worker> {
        let admin = format!("127.0.0.1:{}", free_port());
        let mut all_env = vec![
            ("DATABASE_URL", database_url),
            ("AMQP_URL", amqp_url),
            ("CLOCKWORKS_EXCHANGE", exchange),
            ("CLOCKWORKS_WORKER_ADMIN_LISTEN", admin.as_str()),
            ("CLOCKWORKS_LOG", "info,clockworks=debug"),
        ];
        all_env.extend_from_slice(env);
        let log_name = format!("worker-{}", admin.replace([':', '.'], "_"));
        let mut process = Process::spawn("clockworks-worker", &["run"], &all_env, log_name).await?;
        let admin_url = format!("http://{admin}");
        wait_until_ok(&format!("{admin_url}/readyz"), &mut process).await?;
        Ok(Worker { process, admin_url })
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }
}
