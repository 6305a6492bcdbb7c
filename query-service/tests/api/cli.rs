//! The binary's command line, run as a process: what it answers, that `--help` and
//! `--version` touch no server, and that the dry runs change nothing.

use std::process::Output;

use tokio::process::Command;

use chrono::Utc;
use harness::{take_message, Lookout};
use query_service::broker::dead_letter_queue_name;

use crate::helpers::spawn_app;

async fn query_service(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_query-service"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run query-service")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn help_lists_the_subcommands_and_touches_no_server() {
    let lookout = Lookout::new();
    let (mongodb, amqp, event_log) = (
        lookout.url("mongodb"),
        lookout.url("amqp"),
        lookout.url("http"),
    );
    let env = [
        ("MONGODB_URI", mongodb.as_str()),
        ("AMQP_URL", amqp.as_str()),
        ("APP_REBUILD__EVENT_LOG_URL", event_log.as_str()),
    ];

    for args in [
        &["--help"][..],
        &["--version"],
        &["replay-dead-letters", "--help"],
        &["rebuild-read-models", "--help"],
        &["issue-token", "--help"],
    ] {
        let output = query_service(args, &env).await;
        assert!(output.status.success(), "{args:?}: {output:?}");
    }
    let help = stdout(&query_service(&["--help"], &env).await);
    for word in [
        "Usage: query-service",
        "serve",
        "replay-dead-letters",
        "rebuild-read-models",
        "issue-token",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    for subcommand in ["replay-dead-letters", "rebuild-read-models"] {
        let help = stdout(&query_service(&[subcommand, "--help"], &env).await);
        assert!(help.contains("--dry-run"), "{subcommand}:\n{help}");
    }
    assert_eq!(
        stdout(&query_service(&["--version"], &env).await).trim(),
        format!("query-service {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(!lookout.was_contacted(), "--help connected to a server");
}

#[tokio::test]
async fn an_unknown_argument_is_refused_with_the_usage_and_status_2() {
    for args in [
        &["--frobnicate"][..],
        &["frobnicate"],
        &["replay-dead-letters", "--dry"],
    ] {
        let output = query_service(args, &[]).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("Usage:"));
    }
}

#[tokio::test]
async fn replaying_dead_letters_as_a_dry_run_counts_them_and_moves_none() {
    let app = spawn_app().await;
    let dead_letters = dead_letter_queue_name(&app.broker.queue);
    let event = app.placed("ada@example.com", 5, Utc::now());
    for _ in 0..2 {
        app.publisher
            .publish_to_queue(&dead_letters, &serde_json::to_vec(&event).unwrap())
            .await;
    }

    let output = query_service(
        &["replay-dead-letters", "--dry-run"],
        &[
            ("AMQP_URL", &app.amqp_url),
            ("APP_BROKER__QUEUE", &app.broker.queue),
        ],
    )
    .await;

    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output).trim(),
        format!(
            "dry run: would replay 2 messages from {dead_letters} to {}; nothing was moved",
            app.broker.queue
        )
    );
    for _ in 0..2 {
        assert!(take_message(&app.amqp_url, &dead_letters).await.is_some());
    }
}
