//! The operator scripts: `deploy/up`, `deploy/down` and `deploy/test` answer `--help` without
//! touching anything; those beside them pass their arguments to the query-service subcommand
//! they wrap. An unknown argument, or a setting out of its range, is refused with status 2. The
//! local stack's logs are rotated past their size.

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
    for script in ["up", "down", "test", "scripts/rotate-logs"] {
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
fn the_stack_s_scripts_refuse_a_setting_out_of_range_touching_nothing() {
    for (setting, value) in [
        ("LOCAL_READ_STORE", "mongod"),
        ("JAEGER_MAX_TRACES", "0"),
        ("JAEGER_MAX_TRACES", "50k"),
        ("SECANTUSD_CACHE_SIZE", "1.5G"),
        ("SECANTUSD_CACHE_SIZE", "512"),
    ] {
        for script in ["up", "test"] {
            let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let state = std::env::temp_dir().join(harness::unique_name());
            let refused = Command::new(deploy.join(script))
                .env(setting, value)
                .env("CQRS_STATE_DIR", &state)
                .output()
                .unwrap();
            assert_eq!(
                refused.status.code(),
                Some(2),
                "{setting}={value} deploy/{script}: {refused:?}"
            );
            let error = String::from_utf8_lossy(&refused.stderr);
            assert!(
                error.contains(&format!("error: {setting} is")) && error.contains(value),
                "{setting}={value} deploy/{script}: {error}"
            );
            assert!(
                !state.exists(),
                "{setting}={value} deploy/{script} wrote to its state directory"
            );
        }
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

#[test]
fn a_log_past_64_mb_is_copied_aside_and_emptied_and_the_others_are_left_alone() {
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let state = std::env::temp_dir().join(harness::unique_name());
    let (logs, gateway) = (state.join("logs"), state.join("gateway"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&gateway).unwrap();
    let past = 64 * 1024 * 1024 + 1;
    // Sparse: its size is what counts.
    std::fs::File::create(logs.join("command-service-8081.log"))
        .unwrap()
        .set_len(past)
        .unwrap();
    std::fs::write(logs.join("query-service-8082.log"), "a line\n").unwrap();
    std::fs::File::create(gateway.join("access.log"))
        .unwrap()
        .set_len(past)
        .unwrap();

    let rotate = || {
        let output = Command::new(deploy.join("scripts/rotate-logs"))
            .env("CQRS_STATE_DIR", &state)
            .output()
            .unwrap();
        assert!(output.status.success(), "rotate-logs: {output:?}");
    };
    rotate();
    let size = |path: PathBuf| std::fs::metadata(&path).map(|metadata| metadata.len()).ok();
    for rotated in [
        logs.join("command-service-8081.log"),
        gateway.join("access.log"),
    ] {
        assert_eq!(size(rotated.clone()), Some(0), "{}", rotated.display());
        let copy = PathBuf::from(format!("{}.1", rotated.display()));
        assert_eq!(size(copy.clone()), Some(past), "{}", copy.display());
    }
    assert_eq!(size(logs.join("query-service-8082.log")), Some(7));
    assert_eq!(size(logs.join("query-service-8082.log.1")), None);

    // Rotated again once it has grown past the size again, the older copy kept as .2.
    std::fs::OpenOptions::new()
        .write(true)
        .open(logs.join("command-service-8081.log"))
        .unwrap()
        .set_len(past)
        .unwrap();
    rotate();
    assert_eq!(size(logs.join("command-service-8081.log.2")), Some(past));
    assert_eq!(size(gateway.join("access.log.2")), None);
    std::fs::remove_dir_all(state).unwrap();
}
