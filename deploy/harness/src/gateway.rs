use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::{json_when_ok, unique_name, ReservedPort};

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Replaces each `${NAME}` in `template` with its value.
fn render(template: &Path, values: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(template)
        .unwrap_or_else(|error| panic!("read {}: {error}", template.display()));
    for (name, value) in values {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    text
}

/// The gateway's nginx template, from the repository's root: the tests render it, and compose
/// and the Kubernetes manifests deploy it.
pub const GATEWAY_TEMPLATE: &str = "deploy/nginx/gateway.conf.template";

/// The real nginx, running [`GATEWAY_TEMPLATE`] in front of two services.
pub struct Gateway {
    child: Child,
    state_dir: PathBuf,
    port: ReservedPort,
}

impl Gateway {
    pub async fn start(command_service: &str, query_service: &str) -> Self {
        let reserved = ReservedPort::new();
        let port = reserved.number();
        let state_dir = std::env::temp_dir().join(unique_name());
        std::fs::create_dir_all(&state_dir).expect("gateway state dir");
        let state = state_dir.to_str().expect("utf-8 temp path");
        let port_text = port.to_string();
        let nginx_dir = deploy_dir().join("nginx");
        std::fs::write(
            state_dir.join("gateway.conf"),
            render(
                &crate::repository().join(GATEWAY_TEMPLATE),
                &[
                    (
                        "COMMAND_SERVICE_SERVERS",
                        &format!("server {command_service};"),
                    ),
                    ("QUERY_SERVICE_SERVERS", &format!("server {query_service};")),
                    ("GATEWAY_PORT", &format!("127.0.0.1:{port_text}")),
                    ("GATEWAY_ACCESS_LOG", &format!("{state}/access.log")),
                ],
            ),
        )
        .expect("write gateway.conf");
        let main_config = state_dir.join("nginx.conf");
        std::fs::write(
            &main_config,
            render(
                &nginx_dir.join("nginx-local.conf.template"),
                &[("GATEWAY_STATE_DIR", state)],
            ),
        )
        .expect("write nginx.conf");
        let child = Command::new(std::env::var("NGINX_BIN").unwrap_or_else(|_| "nginx".into()))
            .arg("-c")
            .arg(&main_config)
            // One process, so that killing it leaves no worker holding the port.
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start nginx (is it installed? deploy/test installs it)");
        let client = crate::http_client();
        let url = format!("http://127.0.0.1:{port}/health");
        json_when_ok(&client, &url, Duration::from_secs(10)).await;
        Self {
            child,
            state_dir,
            port: reserved,
        }
    }

    pub fn port(&self) -> u16 {
        self.port.number()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port())
    }

    /// The lines nginx has logged so far, one per request: `… "GET /orders/{id} HTTP/1.1" 200
    /// … consistency_token=…` (the route, never the path: `gateway.conf.template`).
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.state_dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}
