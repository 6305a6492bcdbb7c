//! The operator scripts beside `deploy/up` pass their arguments to the query-service
//! subcommand they wrap: `--help` answers without touching the stack, an unknown argument is
//! refused with status 2.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::path::PathBuf;
use std::process::{Command, Output};

fn deploy_script(name: &str, args: &[&str]) -> Output {
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let state = std::env::temp_dir().join(harness::unique_name());
    let output = Command::new(deploy.join(name))
        .args(args)
        .env("QUERY_SERVICE_BIN", harness::binary("query-service"))
        .env("CQRS_STATE_DIR", &state)
        .output()
        .unwrap_or_else(|error| panic!("run deploy/{name}: {error}"));
    let _ = std::fs::remove_dir_all(state);
    output
}

#[test]
fn each_script_passes_help_to_its_subcommand() {
    for (script, subcommand) in [
        ("rebuild", "rebuild-read-models"),
        ("replay-dead-letters", "replay-dead-letters"),
    ] {
        let output = deploy_script(script, &["--help"]);
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "deploy/{script} --help: {output:?}"
        );
        assert!(
            help.contains(&format!("Usage: query-service {subcommand}"))
                && help.contains("--dry-run"),
            "deploy/{script} --help:\n{help}"
        );
    }
}

#[test]
fn each_script_refuses_an_unknown_argument() {
    for script in ["rebuild", "replay-dead-letters"] {
        let output = deploy_script(script, &["--no-such-flag"]);
        assert_eq!(output.status.code(), Some(2), "deploy/{script}: {output:?}");
    }
}
