//! The operator scripts: `deploy/up`, `deploy/down` and `deploy/test` answer `--help` without
//! touching anything; those beside them pass their arguments to the query-service subcommand
//! they wrap. An unknown argument is refused with status 2.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::path::PathBuf;
use std::process::{Command, Output};

/// `deploy/<name> args…`'s output, and whether it wrote anything to its state directory.
fn run_deploy_script(name: &str, args: &[&str]) -> (Output, bool) {
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let state = std::env::temp_dir().join(harness::unique_name());
    let output = Command::new(deploy.join(name))
        .args(args)
        .env("QUERY_SERVICE_BIN", harness::binary("query-service"))
        .env("CQRS_STATE_DIR", &state)
        .output()
        .unwrap_or_else(|error| panic!("run deploy/{name}: {error}"));
    let touched = state.exists();
    let _ = std::fs::remove_dir_all(state);
    (output, touched)
}

fn deploy_script(name: &str, args: &[&str]) -> Output {
    run_deploy_script(name, args).0
}

#[test]
fn the_stack_s_scripts_answer_help_and_refuse_an_unknown_argument_touching_nothing() {
    for script in ["up", "down", "test"] {
        let (help, touched) = run_deploy_script(script, &["--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "deploy/{script} --help: {help:?}");
        assert!(
            text.starts_with(&format!("Usage: deploy/{script}\n")),
            "deploy/{script} --help:\n{text}"
        );
        assert!(
            !touched,
            "deploy/{script} --help wrote to its state directory"
        );

        let (refused, touched) = run_deploy_script(script, &["--no-such-flag"]);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "deploy/{script}: {refused:?}"
        );
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("unknown argument --no-such-flag"),
            "deploy/{script}: {refused:?}"
        );
        assert!(
            !touched,
            "deploy/{script} --no-such-flag wrote to its state directory"
        );
    }
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
