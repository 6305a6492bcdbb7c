//! The binary's command line, run as a process: what it answers, and that `--help` and
//! `--version` touch no server.

use std::process::{Command, Output};

use actix_web::http::header;
use actix_web::test::TestRequest;
use harness::Lookout;
use service_support::auth::{AuthError, AuthSettings, Authenticator, Principal, TokenAlgorithm};

const SECRET: &str = "9d4b7e1c3a8f2d6b0e5c9a7f1b3d8e4c";
const ISSUER: &str = "https://issuer.test.invalid";

fn command_service(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_command-service"))
        .args(args)
        .env("APP_AUTH__HS256_SECRET", SECRET)
        .env("APP_AUTH__ISSUER", ISSUER)
        .env_remove("APP_AUTH__AUDIENCE")
        .envs(env.iter().copied())
        .output()
        .expect("run command-service")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_lists_the_subcommands_and_touches_no_server() {
    let lookout = Lookout::new();
    let servers = [
        ("DATABASE_URL", lookout.url("postgres")),
        ("AMQP_URL", lookout.url("amqp")),
    ];
    let env: Vec<(&str, &str)> = servers.iter().map(|(k, v)| (*k, v.as_str())).collect();

    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["--version"],
        &["migrate", "--help"],
    ] {
        let output = command_service(args, &env);
        assert!(output.status.success(), "{args:?}: {output:?}");
    }
    let help = stdout(&command_service(&["--help"], &env));
    for word in ["Usage: command-service", "serve", "migrate", "issue-token"] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    let version = stdout(&command_service(&["--version"], &env));
    assert_eq!(
        version.trim(),
        format!("command-service {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(!lookout.was_contacted(), "--help connected to a server");
}

#[test]
fn an_unknown_argument_is_refused_with_the_usage_and_status_2() {
    for args in [&["--frobnicate"][..], &["frobnicate"], &["serve", "extra"]] {
        let output = command_service(args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(stderr(&output).contains("Usage:"), "{}", stderr(&output));
    }
}

#[test]
fn migrate_runs_the_pending_migrations_once_and_exits() {
    let database = harness::fresh_postgres_database();
    let env = [("DATABASE_URL", database.url.as_str())];

    let first = command_service(&["migrate"], &env);
    assert!(first.status.success(), "{first:?}");
    assert!(stdout(&first).starts_with("applied "), "{}", stdout(&first));

    let again = command_service(&["migrate"], &env);
    assert!(again.status.success(), "{again:?}");
    assert!(
        stdout(&again).contains("no migration to run"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn migrate_against_a_database_that_does_not_answer_fails_with_a_reason() {
    let silent_database = Lookout::new();
    let url = silent_database.url("postgres");
    let output = command_service(
        &["migrate"],
        &[
            ("DATABASE_URL", &url),
            ("APP_DATABASE__ACQUIRE_TIMEOUT_MS", "500"),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains("migration failed"), "{output:?}");
}

fn authenticator() -> Authenticator {
    Authenticator::from_settings(&AuthSettings {
        enabled: true,
        algorithm: TokenAlgorithm::HS256,
        hs256_secret: SECRET.into(),
        rs256_public_key: String::new(),
        audience: "orders-api".to_owned(),
        issuer: ISSUER.to_owned(),
        leeway_seconds: 5,
    })
    .unwrap()
}

fn issue_token(args: &[&str]) -> String {
    let output = command_service(&[&["issue-token"][..], args].concat(), &[]);
    assert!(output.status.success(), "{output:?}");
    stdout(&output).trim().to_owned()
}

fn authorize(token: &str, scope: &'static str) -> Result<Principal, AuthError> {
    let request = TestRequest::default()
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .to_http_request();
    authenticator()
        .authorize(&request, scope)
        .map(|(principal, _)| principal)
}

#[test]
fn an_issued_token_grants_exactly_the_scopes_asked_for() {
    let token = issue_token(&["--scope", "orders:read", "--subject", "reporting"]);

    assert_eq!(
        authorize(&token, "orders:read").unwrap(),
        Principal::Subject("reporting".to_owned())
    );
    assert!(matches!(
        authorize(&token, "orders:write"),
        Err(AuthError::InsufficientScope { .. })
    ));
}

#[test]
fn an_operator_token_reads_everybody_s_orders_and_writes_nothing() {
    let token = issue_token(&[
        "--scope",
        "orders:read",
        "--scope",
        "orders:read-all",
        "--subject",
        "operator",
    ]);
    let request = TestRequest::default()
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .to_http_request();

    let (_, scopes) = authenticator().authorize(&request, "orders:read").unwrap();

    assert_eq!(
        scopes.iter().collect::<Vec<_>>(),
        ["orders:read", "orders:read-all"]
    );
    assert!(matches!(
        authorize(&token, "orders:write"),
        Err(AuthError::InsufficientScope { .. })
    ));
}

#[test]
fn without_scopes_an_issued_token_grants_both() {
    let token = issue_token(&[]);

    assert!(authorize(&token, "orders:read").is_ok());
    assert!(authorize(&token, "orders:write").is_ok());
}

#[test]
fn issue_token_refuses_a_bad_value_naming_it() {
    for (args, named) in [
        (
            &["issue-token", "--ttl-secs", "soon"][..],
            "'--ttl-secs <SECONDS>'",
        ),
        (
            &["issue-token", "--scope", "orders:everything"],
            "'--scope <SCOPE>'",
        ),
    ] {
        let output = command_service(args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(
            stderr(&output).contains("invalid value") && stderr(&output).contains(named),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn issue_token_without_a_secret_says_which_variable_to_set() {
    let output = Command::new(env!("CARGO_BIN_EXE_command-service"))
        .arg("issue-token")
        .env_remove("APP_AUTH__HS256_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains("APP_AUTH__HS256_SECRET is not set"));
}

#[test]
fn issue_token_without_an_issuer_says_which_variable_to_set() {
    let output = Command::new(env!("CARGO_BIN_EXE_command-service"))
        .arg("issue-token")
        .env("APP_AUTH__HS256_SECRET", SECRET)
        .env_remove("APP_AUTH__ISSUER")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains("APP_AUTH__ISSUER is not set"));
}

#[test]
fn serve_refuses_a_placeholder_secret_or_admin_token_naming_the_setting() {
    let lookout = Lookout::new();
    let servers = [
        ("DATABASE_URL", lookout.url("postgres")),
        ("AMQP_URL", lookout.url("amqp")),
    ];
    for (setting, variable, placeholder) in [
        (
            "auth.hs256_secret",
            "APP_AUTH__HS256_SECRET",
            "compose-demo-secret-change-me-0123456789",
        ),
        ("admin.token", "ADMIN_TOKEN", "change-me-operator-token"),
    ] {
        let mut env: Vec<(&str, &str)> = servers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend([("APP_AUTH__ENABLED", "true"), (variable, placeholder)]);
        let output = command_service(&["serve"], &env);

        assert_eq!(output.status.code(), Some(1), "{setting}: {output:?}");
        assert!(stderr(&output).contains(setting), "{}", stderr(&output));
    }
    assert!(!lookout.was_contacted(), "started with a placeholder");
}
