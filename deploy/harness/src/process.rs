use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::json_when_ok;

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

/// The workspace's binary `name`, as `cargo build` leaves it.
pub(crate) fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (deploy/test does)",
        path.display()
    );
    path
}

/// One of the services, running as its real binary on its own port; killed when dropped.
pub struct ServiceProcess {
    name: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
    pub port: u16,
}

impl ServiceProcess {
    /// Starts binary `name` with `env` on a free port and waits until it answers
    /// `/health/live`.
    pub async fn start(name: &str, env: &[(&str, String)]) -> Self {
        let mut service = Self {
            name: name.to_owned(),
            env: env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
            child: None,
            port: free_port(),
        };
        service.start_again().await;
        service
    }

    /// Starts the process again, on the same port and with the same environment.
    pub async fn start_again(&mut self) {
        let port = self.port;
        let child = Command::new(binary(&self.name))
            .env("APP_HTTP__PORT", port.to_string())
            .env(
                "RUST_LOG",
                std::env::var("TEST_SERVICE_LOG").unwrap_or_else(|_| "warn,lapin=error".into()),
            )
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start service process");
        self.child = Some(child);
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/health/live");
        json_when_ok(&client, &url, Duration::from_secs(30)).await;
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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
