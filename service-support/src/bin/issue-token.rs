//! Prints an HS256 bearer token for development set-ups (docker compose, `AUTH=on deploy/up`),
//! signed with the services' own secret. In production an identity provider issues tokens,
//! RS256 ideally, and this tool is not needed.
//!
//! usage: issue-token [--scope SCOPE]... [--subject NAME] [--ttl-secs N]
//! The secret comes from APP_AUTH__HS256_SECRET, the audience from APP_AUTH__AUDIENCE
//! (default orders-api), as the services read them.

use std::process::ExitCode;
use std::time::Duration;

use service_support::auth::{TokenIssuer, READ_SCOPE, WRITE_SCOPE};

const USAGE: &str =
    "usage: issue-token [--scope orders:read|orders:write]... [--subject NAME] [--ttl-secs N]
  (no --scope: both scopes; default subject: developer; default lifetime: 3600 s)
  reads APP_AUTH__HS256_SECRET and APP_AUTH__AUDIENCE as the services do";

struct Request {
    scopes: Vec<String>,
    subject: String,
    lifetime: Duration,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Request, String> {
    let mut request = Request {
        scopes: Vec::new(),
        subject: "developer".to_owned(),
        lifetime: Duration::from_secs(3600),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--scope" => request.scopes.push(value()?),
            "--subject" => request.subject = value()?,
            "--ttl-secs" => {
                let text = value()?;
                let seconds = text
                    .parse()
                    .map_err(|_| format!("--ttl-secs must be whole seconds, got {text:?}"))?;
                request.lifetime = Duration::from_secs(seconds);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if request.scopes.is_empty() {
        request.scopes = vec![READ_SCOPE.to_owned(), WRITE_SCOPE.to_owned()];
    }
    Ok(request)
}

fn main() -> ExitCode {
    let request = match parse(std::env::args().skip(1)) {
        Ok(request) => request,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(secret) = std::env::var("APP_AUTH__HS256_SECRET") else {
        eprintln!("APP_AUTH__HS256_SECRET is not set\n{USAGE}");
        return ExitCode::FAILURE;
    };
    let audience = std::env::var("APP_AUTH__AUDIENCE").unwrap_or_else(|_| "orders-api".into());
    let scopes: Vec<&str> = request.scopes.iter().map(String::as_str).collect();
    match TokenIssuer::hs256(&secret, &audience).issue(&request.subject, &scopes, request.lifetime)
    {
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
