//! What the local stack exposes beyond this machine, or to the machine's other users: nothing;
//! and how its servers share the machine's cores. Runs against the servers `deploy/test`
//! started the way `deploy/up` does, with both services and the gateway running.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use harness::{command_lines, listening_sockets, ServiceStack};

/// The programs of the local stack, by the short name the kernel gives their processes. The
/// read stores come last: which of them runs depends on `LOCAL_READ_STORE` (deploy/test runs
/// both), and neither does where `MONGODB_URI` names another server.
const STACK_PROGRAMS: [&str; 9] = [
    "postgres",
    "beam.smp",
    "epmd",
    "nginx",
    "command-service",
    "query-service",
    // Jaeger, as deploy/scripts/infra.sh installs it (jaeger-<version>).
    "jaeger-v1.75.0",
    "secantusd-rs",
    "ferretdb",
];
const ALWAYS_RUNNING: usize = 7;

#[tokio::test]
async fn every_server_of_the_local_stack_listens_on_loopback_only() {
    let _stack = ServiceStack::start().await;
    let sockets: Vec<_> = listening_sockets()
        .into_iter()
        .filter(|socket| STACK_PROGRAMS.contains(&socket.program.as_str()))
        .collect();
    for program in &STACK_PROGRAMS[..ALWAYS_RUNNING] {
        assert!(
            sockets.iter().any(|socket| socket.program == *program),
            "no listening socket of {program} found among {sockets:?}"
        );
    }
    let exposed: Vec<_> = sockets
        .iter()
        .filter(|socket| !socket.address.is_loopback())
        .collect();
    assert!(exposed.is_empty(), "listening beyond loopback: {exposed:?}");
}

#[tokio::test]
async fn the_local_broker_refuses_guest_and_the_old_documented_password() {
    let api = std::env::var("RABBITMQ_API_URL").unwrap_or_else(|_| "http://127.0.0.1:15672".into());
    let user = std::env::var("RABBITMQ_API_USER").unwrap_or_else(|_| "cqrs".into());
    let client = harness::http_client();
    for (user, password) in [("guest", "guest"), (user.as_str(), "cqrs")] {
        let status = client
            .get(format!("{api}/api/whoami"))
            .basic_auth(user, Some(password))
            .send()
            .await
            .expect("the management API answers")
            .status();
        assert_eq!(status, 401, "{user}/{password} was let in");
    }
}

#[tokio::test]
async fn no_password_is_on_a_command_line() {
    let _stack = ServiceStack::start().await;
    let credentials_in_url = regex::Regex::new(r"://[^/@\s:]+:[^/@\s]+@").unwrap();
    // The local stack's processes, and the tests' own servers, which have the same names.
    let lines: Vec<(String, String)> = command_lines()
        .into_iter()
        .filter(|(program, _)| STACK_PROGRAMS.contains(&program.as_str()))
        .collect();
    assert!(
        lines.iter().any(|(program, _)| program == "nginx"),
        "no process of the stack found: {lines:?}"
    );
    let exposed: Vec<_> = lines
        .iter()
        .filter(|(_, line)| credentials_in_url.is_match(line) || line.contains("password"))
        .collect();
    assert!(
        exposed.is_empty(),
        "passwords on command lines: {exposed:?}"
    );
}

#[test]
fn the_local_stack_s_logs_are_not_readable_by_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let logs = state_dir().join("logs");
    let mode = std::fs::metadata(&logs)
        .unwrap_or_else(|error| panic!("{}: {error} (deploy/test makes it)", logs.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o007, 0, "{} is {mode:o}", logs.display());
}

/// The servers the scripts start (the read stores and Jaeger here, the services too under
/// `deploy/up`), found by the pid files they keep, each lead a session of their own: the
/// scheduler's groups (autogroup) then share the cores between servers as a deployment's
/// containers are shared. Jaeger's runs at the lowest priority.
#[test]
fn each_server_the_scripts_start_leads_a_session_of_its_own() {
    let run = state_dir().join("run");
    let started: Vec<(String, String)> = std::fs::read_dir(&run)
        .unwrap_or_else(|error| panic!("{}: {error} (deploy/test makes it)", run.display()))
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.strip_suffix(".pid")?.to_owned();
            let pid = std::fs::read_to_string(entry.path())
                .ok()?
                .trim()
                .to_owned();
            // The log rotation is a shell loop, no server: it sleeps in the scripts' session.
            (name != "log-rotation").then_some((name, pid))
        })
        .collect();
    assert!(
        started.iter().any(|(name, _)| name == "jaeger"),
        "no Jaeger pid file in {}: {started:?}",
        run.display()
    );
    for (name, pid) in &started {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // not running (a read store of the other kind, stopped)
        };
        // The fields after the command's name in parentheses: state, ppid, pgrp, session, …
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        assert_eq!(fields[3], pid, "{name} ({pid}) leads no session of its own");
        if name == "jaeger" {
            assert_eq!(fields[16], "19", "Jaeger's niceness");
            if let Ok(group) = std::fs::read_to_string(format!("/proc/{pid}/autogroup")) {
                assert!(
                    group.trim_end().ends_with("nice 19"),
                    "Jaeger's group: {group}"
                );
            }
        }
    }
}

/// `CQRS_STATE_DIR`, or the checkout's `.stack`.
fn state_dir() -> std::path::PathBuf {
    std::env::var("CQRS_STATE_DIR").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.stack"),
        std::path::PathBuf::from,
    )
}
