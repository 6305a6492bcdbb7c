//! A MongoDB-wire read store owned by one test, for tests that kill, freeze or restart it: of
//! the kind the run tests against (`READ_STORE`, which `deploy/scripts/infra.sh` sets beside
//! `MONGODB_URI`), on its own reserved port and in its own directory, set up as the local stack
//! sets up its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::process::Child;

use crate::polling::accepting_connections;
use crate::private::{run, scratch_dir};
use crate::ReservedPort;

/// The two MongoDB-wire servers the local stack can run (docs/local-read-stores.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStoreKind {
    /// secantusd-rs: the wire protocol over WiredTiger, the local default.
    Secantusd,
    /// FerretDB 1.24 on a PostgreSQL database.
    FerretDb,
}

impl ReadStoreKind {
    /// The kind `MONGODB_URI` names in this run: `READ_STORE`, secantusd-rs unless it says
    /// ferretdb.
    pub fn of_this_run() -> Self {
        match std::env::var("READ_STORE").as_deref() {
            Ok("ferretdb") => Self::FerretDb,
            _ => Self::Secantusd,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Secantusd => "secantusd-rs",
            Self::FerretDb => "ferretdb",
        }
    }

    fn binary(self) -> PathBuf {
        let (variable, home_path) = match self {
            Self::Secantusd => ("SECANTUSD_BIN", ".cargo/bin/secantusd-rs"),
            Self::FerretDb => ("FERRETDB_BIN", "go/bin/ferretdb"),
        };
        std::env::var_os(variable).map_or_else(
            || {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                PathBuf::from(home).join(home_path)
            },
            PathBuf::from,
        )
    }
}

/// Whether secantusd-rs syncs its log on every commit, as the local stack runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    SyncOnCommit,
    /// The server's default, which loses acknowledged writes to a SIGKILL; for the test that
    /// shows it.
    ServerDefault,
}

/// A read store of its own. FerretDB stores into a fresh database of the shared PostgreSQL (so
/// stopping it is a MongoDB outage that leaves PostgreSQL alone), a copy of `template1` with the
/// GIN indexes of `deploy/ferretdb/index-twins.sql`, connected with the local stack's options
/// (`FERRETDB_POSTGRESQL_URL`'s query string); secantusd-rs into its own directory.
pub struct PrivateReadStore {
    kind: ReadStoreKind,
    durability: Durability,
    dir: PathBuf,
    child: Option<Child>,
    port: ReservedPort,
    /// FerretDB's storage database; dropped after the child is killed.
    storage: Option<crate::TestDatabase>,
}

fn log_file(path: &Path) -> Stdio {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

impl PrivateReadStore {
    /// A store of the kind this run tests, durable as the local stack runs it.
    pub async fn start() -> Self {
        Self::start_kind(ReadStoreKind::of_this_run(), Durability::SyncOnCommit).await
    }

    pub async fn start_kind(kind: ReadStoreKind, durability: Durability) -> Self {
        let mut store = Self {
            kind,
            durability,
            dir: scratch_dir(kind.name()),
            child: None,
            port: ReservedPort::new(),
            storage: (kind == ReadStoreKind::FerretDb).then(crate::fresh_postgres_database),
        };
        if kind == ReadStoreKind::Secantusd {
            std::fs::write(store.dir.join("secantusd.toml"), "").expect("an empty configuration");
        }
        store.start_again().await;
        store
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port.number())
    }

    /// FerretDB's PostgreSQL database (without FerretDB's connection options).
    pub fn ferretdb_storage_url(&self) -> Option<&str> {
        self.storage.as_ref().map(|storage| storage.url.as_str())
    }

    fn arguments(&self) -> Vec<String> {
        let port = self.port.number();
        match self.kind {
            ReadStoreKind::Secantusd => {
                let mut arguments = vec![
                    format!("--config={}", self.dir.join("secantusd.toml").display()),
                    "--host=127.0.0.1".to_owned(),
                    format!("--port={port}"),
                    format!("--storage-path={}", self.dir.join("data").display()),
                    "--standalone".to_owned(),
                    "--cache-size=128M".to_owned(),
                    // Each log file is allocated in full: small ones for a test's few documents.
                    "--log-file-max=16MB".to_owned(),
                    "--log-level=WARNING".to_owned(),
                ];
                if self.durability == Durability::SyncOnCommit {
                    arguments.push("--sync-on-commit".to_owned());
                }
                arguments
            }
            ReadStoreKind::FerretDb => {
                vec![
                    "--handler=postgresql".to_owned(),
                    format!("--state-dir={}", self.dir.display()),
                    format!("--listen-addr=127.0.0.1:{port}"),
                    // No debug listener: its fixed default port would clash with other instances.
                    "--telemetry=disable".to_owned(),
                    "--log-level=warn".to_owned(),
                    "--debug-addr=-".to_owned(),
                ]
            }
        }
    }

    /// What the server reads from its environment, as the local stack starts it
    /// (`read_store_environment` in deploy/scripts/infra.sh): secantusd-rs without its oplog;
    /// FerretDB's PostgreSQL URL, which holds a password and so stays off the command line,
    /// where every user of the machine reads it.
    fn environment(&self) -> Vec<(&'static str, String)> {
        if self.kind == ReadStoreKind::Secantusd {
            return vec![("SECANTUS_DISABLE_OPLOG", "1".to_owned())];
        }
        let Some(storage) = &self.storage else {
            return Vec::new();
        };
        let options = std::env::var("FERRETDB_POSTGRESQL_URL")
            .ok()
            .and_then(|url| url.split_once('?').map(|(_, options)| options.to_owned()));
        let url = match options {
            Some(options) => format!("{}?{options}", storage.url),
            None => storage.url.clone(),
        };
        vec![("FERRETDB_POSTGRESQL_URL", url)]
    }

    /// Starts the server (again, after [`Self::kill`]) on the same data and port.
    pub async fn start_again(&mut self) {
        let binary = self.kind.binary();
        let child = tokio::process::Command::new(&binary)
            .args(self.arguments())
            .envs(self.environment())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(&self.dir.join("server.log")))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "start {} at {} (deploy/test installs it): {error}",
                    self.kind.name(),
                    binary.display()
                )
            });
        self.child = Some(child);
        accepting_connections(
            "the private read store to listen",
            self.port.number(),
            Duration::from_secs(30),
        )
        .await;
    }

    /// Kills the server with SIGKILL, as a crash ends it, and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL the read store");
        }
    }

    /// Freezes the server with SIGSTOP: its connections stay open and nothing answers on them.
    /// Returns once every thread of it is seen stopped, since a signal is delivered after
    /// `kill` returns.
    pub fn pause(&self) {
        self.signal("-STOP");
        let tasks = PathBuf::from(format!("/proc/{}/task", self.pid()));
        let every_thread_stopped = || {
            std::fs::read_dir(&tasks).is_ok_and(|threads| {
                threads.filter_map(Result::ok).all(|thread| {
                    std::fs::read_to_string(thread.path().join("stat")).is_ok_and(|stat| {
                        // The state follows the parenthesised command name.
                        stat.rsplit_once(") ")
                            .is_some_and(|(_, rest)| rest.starts_with(['T', 't']))
                    })
                })
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !every_thread_stopped() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} not stopped 5 s after SIGSTOP",
                self.kind.name()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("the read store is running")
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid();
        run(
            Command::new("kill").args([signal, &pid.to_string()]),
            &format!("kill {signal} {}", self.kind.name()),
        );
    }
}

impl Drop for PrivateReadStore {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The names of `collection`'s indexes as the server lists them, sorted.
pub async fn index_names(collection: &mongodb::Collection<mongodb::bson::Document>) -> Vec<String> {
    let mut names = collection
        .list_index_names()
        .await
        .unwrap_or_else(|error| panic!("list the indexes of {}: {error}", collection.name()));
    names.sort();
    names
}
