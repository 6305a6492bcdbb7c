//! What both services' command lines share: the `issue-token` subcommand.

use std::process::ExitCode;
use std::time::Duration;

use crate::auth::{TokenIssuer, READ_ALL_SCOPE, READ_SCOPE, WRITE_SCOPE};

const SECRET_VARIABLE: &str = "APP_AUTH__HS256_SECRET";
const ISSUER_VARIABLE: &str = "APP_AUTH__ISSUER";

/// Prints an HS256 bearer token for development set-ups (docker compose, a stack with auth on),
/// signed with the services' own secret, which it reads from APP_AUTH__HS256_SECRET as the
/// services do (never from the command line, where other users of the machine could read
/// it). In production an identity provider issues tokens, RS256 ideally, and this is not
/// needed.
#[derive(Debug, clap::Args)]
pub struct IssueToken {
    /// A scope the token grants; repeat it for several (default: orders:read and
    /// orders:write). orders:read-all, with orders:read, reads every owner's orders.
    #[arg(
        long = "scope",
        value_name = "SCOPE",
        value_parser = [READ_SCOPE, WRITE_SCOPE, READ_ALL_SCOPE]
    )]
    scopes: Vec<String>,
    /// The principal the token names (its `sub` claim).
    #[arg(long, value_name = "NAME", default_value = "developer")]
    subject: String,
    /// How long the token is valid, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    ttl_secs: u64,
    /// The audience the services expect.
    #[arg(long, env = "APP_AUTH__AUDIENCE", default_value = "orders-api")]
    audience: String,
    /// The issuer the services expect (their auth.issuer).
    #[arg(long, env = ISSUER_VARIABLE)]
    issuer: Option<String>,
}

impl IssueToken {
    /// Prints the token on standard output.
    pub fn run(&self) -> ExitCode {
        let scopes: Vec<&str> = if self.scopes.is_empty() {
            vec![READ_SCOPE, WRITE_SCOPE]
        } else {
            self.scopes.iter().map(String::as_str).collect()
        };
        let Ok(secret) = std::env::var(SECRET_VARIABLE) else {
            eprintln!(
                "{SECRET_VARIABLE} is not set: it holds the secret the services verify tokens with"
            );
            return ExitCode::FAILURE;
        };
        let Some(issuer) = &self.issuer else {
            eprintln!(
                "{ISSUER_VARIABLE} is not set (or --issuer): it names the issuer the services expect"
            );
            return ExitCode::FAILURE;
        };
        let lifetime = Duration::from_secs(self.ttl_secs);
        match TokenIssuer::hs256(&secret, &self.audience, issuer).issue(
            &self.subject,
            &scopes,
            lifetime,
        ) {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("cannot sign the token: {error}");
                ExitCode::FAILURE
            }
        }
    }
}
