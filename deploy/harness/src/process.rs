use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use service_support::startup::Service;
use tokio::process::{Child, Command};

use crate::{eventually, json_when_ok, ReservedPort};

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

/// The workspace's binary `name`, as `cargo test --workspace` (which builds every binary of
/// the packages with integration tests before running any test) or `cargo build` leaves it.
pub fn binary(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, or `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// One of the services, running as its real binary on its own reserved ports (kept across
/// restarts); killed when dropped. It
/// logs JSON lines (`LOG_FORMAT=json`) to `target/service-logs/<name>-<port>.log`.
pub struct ServiceProcess {
    name: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
    port: ReservedPort,
    metrics_port: ReservedPort,
}

impl ServiceProcess {
    /// Starts binary `name` with `env` on a port of its own and waits until it answers
    /// `/health/live`.
    pub async fn start(name: &str, env: &[(&str, String)]) -> Self {
        let mut service = Self {
            name: name.to_owned(),
            env: env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
            child: None,
            port: ReservedPort::new(),
            metrics_port: ReservedPort::new(),
        };
        service.start_again().await;
        service
    }

    /// Starts the process again, on the same port and with the same environment.
    pub async fn start_again(&mut self) {
        let port = self.port();
        let log_path = self.log_path();
        std::fs::create_dir_all(log_path.parent().expect("the log directory"))
            .expect("create target/service-logs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open the service's log file");
        let child = Command::new(binary(&self.name))
            .env("APP_HTTP__PORT", port.to_string())
            .env("APP_METRICS__PORT", self.metrics_port().to_string())
            .env("LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                std::env::var("TEST_SERVICE_LOG").unwrap_or_else(|_| "info,lapin=error".into()),
            )
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("share the log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start service process");
        self.child = Some(child);
        let client = crate::http_client();
        let url = format!("http://127.0.0.1:{port}/health/live");
        json_when_ok(&client, &url, Duration::from_secs(30)).await;
    }

    pub fn port(&self) -> u16 {
        self.port.number()
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("the service is running")
    }

    /// Waits up to 30 s until the service's readiness probe reports `dependency` up.
    pub async fn wait_until_ready(&self, dependency: &str) {
        let client = crate::http_client();
        let url = format!("http://{}/health/ready", self.address());
        eventually(
            &format!("{url} to report {dependency} up"),
            Duration::from_secs(30),
            || {
                let request = client.get(&url).send();
                async move {
                    let body: serde_json::Value = request.await.ok()?.json().await.ok()?;
                    (body["checks"][dependency] == "up").then_some(())
                }
            },
        )
        .await;
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_port.number()
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    pub fn log_path(&self) -> PathBuf {
        target_dir()
            .join("service-logs")
            .join(format!("{}-{}.log", self.name, self.port()))
    }

    /// Every JSON log line the process wrote so far (lines that are not JSON are skipped).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill service");
        }
    }

    /// Sends SIGTERM and waits up to `deadline` for the process to exit by itself.
    pub async fn terminate(&mut self, deadline: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the service is running");
        let pid = child.id().expect("a running child has a pid");
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(signalled.success(), "could not signal {}", self.name);
        tokio::time::timeout(deadline, child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within {deadline:?} of SIGTERM", self.name))
            .expect("wait for the service")
    }
}

/// The addresses of a service running in the test's process.
pub struct InProcess {
    pub address: String,
    pub metrics_address: String,
}

/// Builds a service and runs it on a task of the test's runtime, as `main` would run it.
pub async fn run_in_background<S, E>(build: impl Future<Output = Result<S, E>>) -> InProcess
where
    S: Service + Send + 'static,
    E: std::fmt::Display,
{
    let service = build
        .await
        .unwrap_or_else(|error| panic!("cannot build the service: {error}"));
    let running = InProcess {
        address: format!("http://127.0.0.1:{}", service.port()),
        metrics_address: format!("http://127.0.0.1:{}", service.metrics_port()),
    };
    tokio::spawn(service.run_until_stopped());
    running
}
