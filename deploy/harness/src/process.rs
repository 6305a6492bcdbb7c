use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::eventually;

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

/// The workspace's binary `name`, as `cargo build` leaves it.
fn binary(name: &str) -> PathBuf {
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
    child: Child,
    pub port: u16,
}

impl ServiceProcess {
    /// Starts binary `name` with `env` on a free port and waits until it answers
    /// `/health/live`.
    pub async fn start(name: &str, env: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut command = Command::new(binary(name));
        command
            .env("APP_HTTP__PORT", port.to_string())
            .env(
                "RUST_LOG",
                std::env::var("TEST_SERVICE_LOG").unwrap_or_else(|_| "warn,lapin=error".into()),
            )
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start service process");
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/health/live");
        eventually(
            &format!("{name} to answer {url}"),
            Duration::from_secs(30),
            || {
                let request = client.get(&url).send();
                async move { request.await.ok().filter(|r| r.status().is_success()) }
            },
        )
        .await;
        assert!(
            child.try_wait().expect("poll child").is_none(),
            "{name} exited during start-up"
        );
        Self { child, port }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends SIGKILL and waits for the process to be gone.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill service");
    }
}
