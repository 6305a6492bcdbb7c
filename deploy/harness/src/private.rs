//! Servers owned by one test, for tests that stop and restart them: a PostgreSQL cluster and a
//! RabbitMQ node (the read store is in `read_store`), each on its own reserved ports and in its
//! own directory, so breaking them cannot disturb tests running in parallel on the shared servers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::polling::accepting_connections;
use crate::{eventually, unique_name, ReservedPort};

pub(crate) fn run(command: &mut Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn scratch_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{}_{kind}", unique_name()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A scratch directory that the `postgres` user owns, for a cluster.
fn postgres_dir(kind: &str) -> PathBuf {
    let dir = scratch_dir(kind);
    run(
        Command::new("chown").args(["postgres:postgres"]).arg(&dir),
        "chown the cluster directory",
    );
    dir
}

/// A PostgreSQL cluster of its own, with trust authentication on 127.0.0.1.
pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: ReservedPort,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed (deploy/test installs it)")
            .filter_map(Result::ok)
            .map(|entry| entry.path().join("bin"))
            .max()
            .expect("a PostgreSQL version");
        let dir = postgres_dir("postgres");
        let cluster = Self {
            port: ReservedPort::new(),
            dir,
            bin,
        };
        run(
            cluster
                .as_postgres("initdb")
                .args(["-A", "trust", "-U", "postgres", "-D"])
                .arg(cluster.data()),
            "initdb",
        );
        cluster.start_server();
        run(
            cluster.as_postgres("psql").args([
                "-h",
                "127.0.0.1",
                "-p",
                &cluster.port().to_string(),
                "-U",
                "postgres",
                "-qc",
                "CREATE DATABASE orders",
            ]),
            "create the orders database",
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program));
        command
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port(),
            self.dir.display()
        );
        run(
            self.as_postgres("pg_ctl")
                .args(["-D"])
                .arg(self.data())
                .args(["-l"])
                .arg(self.dir.join("server.log"))
                .args(["-o", &options, "-w", "-m", "fast", action]),
            &format!("pg_ctl {action}"),
        );
    }

    fn start_server(&self) {
        self.pg_ctl("start");
    }

    pub fn port(&self) -> u16 {
        self.port.number()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/orders", self.port())
    }

    fn psql(&self, sql: &str) -> String {
        let output = self
            .as_postgres("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port().to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-qtAc", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// A streaming standby of this cluster (`pg_basebackup` into a cluster of its own, on its
    /// own port, after an immediate checkpoint), made synchronous: from now on a commit this
    /// primary acknowledges is on both.
    pub async fn start_synchronous_standby(&self) -> Self {
        let dir = postgres_dir("postgres-standby");
        let standby = Self {
            port: ReservedPort::new(),
            dir,
            bin: self.bin.clone(),
        };
        run(
            standby
                .as_postgres("pg_basebackup")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port().to_string(),
                    "-U",
                    "postgres",
                ])
                .args(["-X", "stream", "-R", "--checkpoint=fast", "-D"])
                .arg(standby.data()),
            "pg_basebackup",
        );
        standby.start_server();
        self.psql("ALTER SYSTEM SET synchronous_standby_names = '*'");
        self.psql("SELECT pg_reload_conf()");
        eventually(
            "the standby to replicate synchronously",
            Duration::from_secs(30),
            || {
                let state =
                    self.psql("SELECT string_agg(sync_state, ',') FROM pg_stat_replication");
                async move { (state == "sync").then_some(()) }
            },
        )
        .await;
        standby
    }

    /// Kills the postmaster with SIGKILL, as a crash of the machine would end it.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .expect("the postmaster's pid file");
        let pid = pid.lines().next().expect("a pid").trim().to_owned();
        run(
            Command::new("kill").args(["-KILL", &pid]),
            "kill the postmaster",
        );
    }

    /// Makes this standby a primary (`pg_ctl promote`, waiting until it accepts writes).
    pub fn promote(&self) {
        run(
            self.as_postgres("pg_ctl")
                .args(["-D"])
                .arg(self.data())
                .args(["-w", "promote"]),
            "pg_ctl promote",
        );
    }

    /// libpq's URL of both servers, `primary` first, for a client that must always write to
    /// whichever of them is the primary (`target_session_attrs=read-write`).
    pub fn url_of_pair(primary: &Self, standby: &Self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/orders?target_session_attrs=read-write",
            primary.port(),
            standby.port()
        )
    }

    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    pub fn start_again(&self) {
        self.start_server();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-D"])
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A RabbitMQ node of its own (user `guest`; every listener on loopback), with the management
/// plugin.
pub struct PrivateRabbit {
    dir: PathBuf,
    node: String,
    amqp_port: ReservedPort,
    dist_port: ReservedPort,
    management_port: ReservedPort,
    /// Set for the nodes of a [`PrivateRabbitCluster`]: a short distribution tick.
    clustered: bool,
}

impl PrivateRabbit {
    pub async fn start() -> Self {
        let node = Self::prepare(&unique_name(), false);
        node.start_node().await;
        node
    }

    /// A node's directory, ports and Erlang cookie, not started.
    fn prepare(cookie: &str, clustered: bool) -> Self {
        let dir = scratch_dir("rabbitmq");
        let cookie_file = dir.join(".erlang.cookie");
        std::fs::write(&cookie_file, cookie).expect("write the Erlang cookie");
        std::fs::set_permissions(&cookie_file, std::fs::Permissions::from_mode(0o400))
            .expect("make the Erlang cookie private");
        if clustered {
            std::fs::write(
                dir.join("rabbitmq.conf"),
                "cluster_partition_handling = autoheal\n",
            )
            .expect("write rabbitmq.conf");
        }
        Self {
            node: format!("{}@localhost", unique_name()),
            amqp_port: ReservedPort::new(),
            dist_port: ReservedPort::new(),
            management_port: ReservedPort::new(),
            dir,
            clustered,
        }
    }

    fn command(&self, program: &str) -> Command {
        let dir = &self.dir;
        let mut command = Command::new(Path::new("/usr/lib/rabbitmq/bin").join(program));
        command
            .current_dir(dir)
            .env("HOME", dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.amqp_port.number().to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", self.dist_port.number().to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("node.pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_ENABLED_PLUGINS", "rabbitmq_management")
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                format!(
                    "-rabbitmq_management tcp_config [{{ip,\"127.0.0.1\"}},{{port,{}}}] \
                     -kernel inet_dist_use_interface {{127,0,0,1}} \
                     +sbwt none +sbwtdcpu none +sbwtdio none {}",
                    self.management_port.number(),
                    self.net_ticktime()
                ),
            )
            .env("RABBITMQ_CTL_ERL_ARGS", self.net_ticktime());
        command
    }

    /// A cluster's nodes declare a silent peer down after about 4 s instead of 60 s (every
    /// node of a cluster and its command-line tools must agree on this value).
    fn net_ticktime(&self) -> &'static str {
        if self.clustered {
            "-kernel net_ticktime 4"
        } else {
            ""
        }
    }

    fn ctl(&self, action: &str) {
        run(
            self.command("rabbitmqctl")
                .args(["-q", "-n", &self.node, action]),
            &format!("rabbitmqctl {action}"),
        );
    }

    /// `rabbitmqctl -q -n <node> <args>` given at most 10 s: for questions to a node that may
    /// not answer (frozen, half-healed), which must not hang a test.
    fn ctl_within_10s(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        let ctl = self.command("rabbitmqctl");
        Command::new("timeout")
            .arg("10")
            .arg(ctl.get_program())
            .args(["-q", "-n", &self.node])
            .args(args)
            .envs(
                ctl.get_envs()
                    .filter_map(|(key, value)| value.map(|value| (key, value))),
            )
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
    }

    fn launch(&self) {
        run(
            self.command("rabbitmq-server").arg("-detached"),
            "start a RabbitMQ node",
        );
    }

    async fn start_node(&self) {
        self.launch();
        self.wait_until_serving().await;
    }

    async fn wait_until_serving(&self) {
        let url = format!(
            "http://127.0.0.1:{}/api/overview",
            self.management_port.number()
        );
        let client = crate::http_client();
        // A cluster member that was killed, or that autoheal stopped, loads its tables from its
        // peers before it serves, retrying 30 s at a time while they are busy healing: a fault
        // scenario's restart once took longer than a standalone node's minute.
        let deadline = if self.clustered {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(60)
        };
        eventually("the private RabbitMQ node to serve", deadline, || {
            let request = client.get(&url).basic_auth("guest", Some("guest")).send();
            async move { request.await.ok().filter(|r| r.status().is_success()) }
        })
        .await;
        accepting_connections(
            "the private RabbitMQ node to accept AMQP",
            self.amqp_port.number(),
            Duration::from_secs(60),
        )
        .await;
    }

    pub fn amqp_url(&self) -> String {
        format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            self.amqp_port.number()
        )
    }

    /// `rabbitmqctl stop_app`: the node stays up, the broker inside it stops.
    pub fn stop_app(&self) {
        self.ctl("stop_app");
    }

    pub async fn start_app(&self) {
        self.ctl("start_app");
        self.wait_until_serving().await;
    }

    /// Stops the whole node and starts it again on the same data.
    pub async fn restart(&self) {
        self.ctl("stop");
        self.start_node().await;
    }

    /// The node's Erlang name, as the management API names cluster members.
    pub fn name(&self) -> &str {
        &self.node
    }

    fn pid(&self) -> Option<String> {
        let pid = std::fs::read_to_string(self.dir.join("node.pid")).ok()?;
        Some(pid.trim().to_owned()).filter(|pid| !pid.is_empty())
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the node's pid file");
        run(
            Command::new("kill").args([signal, &pid]),
            &format!("kill {signal} the RabbitMQ node"),
        );
    }

    /// Kills the node's Erlang VM with SIGKILL, as a crash of its machine would end it; it
    /// comes back with [`Self::start_again`] on the same data.
    pub fn kill(&self) {
        self.signal("-KILL");
        let _ = std::fs::remove_file(self.dir.join("node.pid"));
    }

    pub async fn start_again(&self) {
        self.start_node().await;
    }

    /// Freezes the node with SIGSTOP: its sockets stay open and nothing answers, as when a
    /// network partition cuts it off.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        // Killed, not stopped: the data goes too, and a frozen or half-clustered node would
        // not answer `rabbitmqctl stop`.
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-KILL", &pid]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three RabbitMQ nodes joined into one cluster (one Erlang cookie, `join_cluster`), set up as
/// a cluster is deployed: `cluster_partition_handling = autoheal` (once a partition heals, the
/// losing side restarts and rejoins; with `pause_minority`, RabbitMQ 3.10 left a node that had
/// been frozen paused for good), and a short distribution tick. Queues declared after it formed
/// are replicated on all three.
pub struct PrivateRabbitCluster {
    pub nodes: [PrivateRabbit; 3],
    client: reqwest::Client,
    /// The node whose management API answered last, asked first next time.
    answering: std::sync::atomic::AtomicUsize,
}

impl PrivateRabbitCluster {
    pub async fn start() -> Self {
        let cookie = unique_name();
        let nodes = [(); 3].map(|()| PrivateRabbit::prepare(&cookie, true));
        for node in &nodes {
            node.launch();
        }
        for node in &nodes {
            node.wait_until_serving().await;
        }
        for node in &nodes[1..] {
            node.ctl("stop_app");
            run(
                node.command("rabbitmqctl").args([
                    "-q",
                    "-n",
                    &node.node,
                    "join_cluster",
                    &nodes[0].node,
                ]),
                "rabbitmqctl join_cluster",
            );
            node.start_app().await;
        }
        let cluster = Self {
            nodes,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
            answering: std::sync::atomic::AtomicUsize::new(0),
        };
        cluster.wait_until_whole(&[]).await;
        cluster
    }

    /// Every node's AMQP URL for the default vhost, in the order of `first`'s rotation (the
    /// node at `first`, then the next ones), joined with commas as the services read them,
    /// each with `options` (a query string).
    pub fn amqp_urls(&self, first: usize, options: &str) -> String {
        (0..self.nodes.len())
            .map(|offset| &self.nodes[(first + offset) % self.nodes.len()])
            .map(|node| format!("{}?{options}", node.amqp_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// GET on the management API of the first node that answers, starting with the one that
    /// answered last (a frozen node holds each request until the client's timeout).
    async fn api(&self, path: &str) -> Option<serde_json::Value> {
        use std::sync::atomic::Ordering;
        let first = self.answering.load(Ordering::Relaxed);
        for index in (0..self.nodes.len()).map(|offset| (first + offset) % self.nodes.len()) {
            let node = &self.nodes[index];
            let url = format!(
                "http://127.0.0.1:{}/api{path}",
                node.management_port.number()
            );
            let request = self.client.get(&url).basic_auth("guest", Some("guest"));
            if let Ok(response) = request.send().await {
                if response.status().is_success() {
                    self.answering.store(index, Ordering::Relaxed);
                    return response.json().await.ok();
                }
            }
        }
        None
    }

    /// What each node says of the cluster (`rabbitmqctl cluster_status`), for a failure.
    fn cluster_status(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                let output = node.ctl_within_10s(&["cluster_status"]);
                match output {
                    Ok(output) => format!(
                        "{}: {}{}",
                        node.node,
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    ),
                    Err(error) => format!("{}: {error}", node.node),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The node leading `queue` (a quorum queue of the default vhost) and its members that
    /// are online, as the management API reports them.
    pub async fn queue_leader(&self, queue: &str) -> Option<(String, Vec<String>)> {
        let info = self.api(&format!("/queues/%2F/{queue}")).await?;
        let leader = info["leader"].as_str()?.to_owned();
        let online = info["online"]
            .as_array()?
            .iter()
            .filter_map(|member| member.as_str().map(str::to_owned))
            .collect();
        Some((leader, online))
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.node == name)
            .unwrap_or_else(|| panic!("{name} is not a node of this cluster"))
    }

    /// Waits until all three nodes run, see each other with no partition, and every queue in
    /// `queues` has all three members online; panics with what it last saw after 180 s.
    pub async fn wait_until_whole(&self, queues: &[&str]) {
        if let Err(seen) = self.whole_within(queues, Duration::from_secs(180)).await {
            panic!(
                "the RabbitMQ cluster is not whole after 180 s: {seen}\n{}",
                self.cluster_status()
            );
        }
    }

    /// Waits up to `limit` for the cluster to be whole (see [`Self::wait_until_whole`]); what it
    /// last saw when it is not.
    pub async fn whole_within(&self, queues: &[&str], limit: Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let seen = self.whole_or_what_is_seen(queues).await;
            if seen.is_ok() || std::time::Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The operator's recovery from a partition that stays (RabbitMQ's "Clustering and
    /// Network Partitions" guide): restarts the RabbitMQ application of every node on either
    /// side of a partition record (a node keeps its record until its application restarts),
    /// and the whole node of any that cannot say (neither its statistics nor `rabbitmqctl`
    /// answer). What it restarted, for the report.
    pub async fn restart_unhealed_nodes(&self) -> Vec<String> {
        let states: Vec<(String, Option<Vec<String>>)> = self
            .api("/nodes")
            .await
            .and_then(|nodes| nodes.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|node| {
                let name = node["name"].as_str().unwrap_or_default().to_owned();
                (name, self.partitions_of(node))
            })
            .collect();
        let listed: Vec<&String> = states
            .iter()
            .filter_map(|(_, partitions)| partitions.as_ref())
            .flatten()
            .collect();
        let mut restarted = Vec::new();
        for node in &self.nodes {
            let own = states
                .iter()
                .find(|(name, _)| *name == node.node)
                .and_then(|(_, partitions)| partitions.as_ref());
            match own {
                None => {
                    node.kill();
                    node.start_again().await;
                    restarted.push("a node that answered nothing, restarted whole".to_owned());
                }
                Some(own) if !own.is_empty() || listed.contains(&&node.node) => {
                    node.ctl("stop_app");
                    node.start_app().await;
                    restarted
                        .push("a node in a partition record, its application restarted".to_owned());
                }
                Some(_) => {}
            }
        }
        restarted
    }

    /// The nodes `node` (an entry of the management API's node list) lists as partitioned
    /// away: as the API reports them, or, when it has no statistics of the node (for a while
    /// after a thaw), as the node itself says (`rabbit_node_monitor:partitions()`).
    fn partitions_of(&self, node: &serde_json::Value) -> Option<Vec<String>> {
        if let Some(listed) = node["partitions"].as_array() {
            return Some(
                listed
                    .iter()
                    .filter_map(|name| name.as_str().map(str::to_owned))
                    .collect(),
            );
        }
        let name = node["name"].as_str()?;
        let ours = self.nodes.iter().find(|ours| ours.node == name)?;
        let output = ours
            .ctl_within_10s(&["eval", "rabbit_node_monitor:partitions()."])
            .ok()
            .filter(|output| output.status.success())?;
        let text = String::from_utf8_lossy(&output.stdout);
        let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
        Some(
            inner
                .split(',')
                .map(|name| name.trim().trim_matches('\'').to_owned())
                .filter(|name| !name.is_empty())
                .collect(),
        )
    }

    async fn whole_or_what_is_seen(&self, queues: &[&str]) -> Result<(), String> {
        let nodes = self
            .api("/nodes")
            .await
            .ok_or("no management API answers")?;
        let nodes = nodes.as_array().ok_or("no node list")?;
        let states: Vec<(String, bool, Option<Vec<String>>)> = nodes
            .iter()
            .map(|node| {
                (
                    node["name"].to_string(),
                    node["running"] == true,
                    self.partitions_of(node),
                )
            })
            .collect();
        let healthy = states.len() == self.nodes.len()
            && states.iter().all(|(_, running, partitions)| {
                *running && partitions.as_ref().is_some_and(Vec::is_empty)
            });
        if !healthy {
            let states: Vec<String> = states
                .iter()
                .map(|(name, running, partitions)| {
                    format!("{name} running {running} partitions {partitions:?}")
                })
                .collect();
            return Err(states.join("; "));
        }
        for queue in queues {
            let (_, online) = self
                .queue_leader(queue)
                .await
                .ok_or_else(|| format!("{queue} has no leader"))?;
            if online.len() != self.nodes.len() {
                return Err(format!("{queue} online on {online:?}"));
            }
        }
        Ok(())
    }
}
