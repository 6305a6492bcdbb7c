//! `docker-compose.yml`, which no Docker engine runs here: validated against the Compose
//! specification's JSON Schema by check-jsonschema (its vendored `compose-spec` schema), then
//! checked for what a schema cannot see: every service others wait on has a health check,
//! the scalable services have no fixed name or host port, every container's log is bounded,
//! the gateway runs the template the tests render with the variables it uses, every file it
//! mounts exists, and no secret has a value in it (each is a required variable that
//! `deploy/compose-env` writes).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::{repository, run_validator, yaml_documents, GATEWAY_TEMPLATE};
use serde_json::Value;

/// The services `docker compose up --scale` runs several of.
const SCALABLE: [&str; 2] = ["command-service", "query-service"];

fn compose_file() -> PathBuf {
    repository().join("docker-compose.yml")
}

fn compose() -> Value {
    yaml_documents(&compose_file()).remove(0)
}

fn schema_problems(file: &Path) -> Result<(), String> {
    run_validator(
        "check-jsonschema",
        &[
            "--builtin-schema".as_ref(),
            "vendor.compose-spec".as_ref(),
            file.as_os_str(),
        ],
    )
}

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"].as_object().expect("services")
}

#[test]
fn the_compose_file_is_valid_by_the_compose_specification() {
    schema_problems(&compose_file()).unwrap_or_else(|problems| panic!("{problems}"));
}

#[test]
fn a_compose_file_breaking_the_specification_is_refused() {
    let text = std::fs::read_to_string(compose_file()).unwrap();
    let broken = text.replacen("    restart: unless-stopped", "    restart: [sometimes]", 1);
    assert_ne!(
        broken, text,
        "the compose file has no restart policy to break"
    );
    let dir = std::env::temp_dir().join(harness::unique_name());
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("docker-compose.yml");
    std::fs::write(&file, broken).unwrap();
    let checked = schema_problems(&file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        checked.is_err(),
        "a restart policy that is a list was accepted"
    );
}

/// Whether `service` has a health check, in compose or in the Dockerfile it is built from.
fn has_health_check(service: &Value) -> bool {
    if service.get("healthcheck").is_some() {
        return true;
    }
    service["build"]["dockerfile"]
        .as_str()
        .is_some_and(|dockerfile| {
            std::fs::read_to_string(repository().join(dockerfile))
                .unwrap_or_else(|error| panic!("{dockerfile}: {error}"))
                .lines()
                .any(|line| line.starts_with("HEALTHCHECK"))
        })
}

#[test]
fn every_service_others_wait_for_has_a_health_check() {
    let compose = compose();
    let services = services(&compose);
    for (name, service) in services {
        let Some(depends_on) = service["depends_on"].as_object() else {
            continue;
        };
        for (dependency, condition) in depends_on {
            let dependency_service = services
                .get(dependency)
                .unwrap_or_else(|| panic!("{name} depends on {dependency}, which is not defined"));
            if condition["condition"] == "service_healthy" {
                assert!(
                    has_health_check(dependency_service),
                    "{name} waits for {dependency} to be healthy, which has no health check"
                );
            }
        }
    }
}

#[test]
fn the_scalable_services_have_no_fixed_name_or_host_port() {
    let compose = compose();
    for name in SCALABLE {
        let service = &services(&compose)[name];
        for fixed in ["container_name", "ports", "hostname"] {
            assert!(
                service.get(fixed).is_none(),
                "{name} sets {fixed}: it could not be scaled"
            );
        }
    }
}

#[test]
fn every_container_s_log_is_bounded() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let logging = &service["logging"];
        assert_eq!(
            logging["driver"], "json-file",
            "{name}: Docker's own log files"
        );
        for option in ["max-size", "max-file"] {
            assert!(
                logging["options"][option].is_string(),
                "{name}'s log has no {option}: it grows without end"
            );
        }
    }
}

#[test]
fn the_gateway_runs_the_template_the_tests_render_with_every_variable_it_uses() {
    let compose = compose();
    let gateway = &services(&compose)["gateway"];
    let mounted: Vec<&str> = gateway["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|volume| volume.as_str().unwrap())
        .collect();
    let template_mount = format!("./{GATEWAY_TEMPLATE}:/etc/nginx/templates/");
    assert!(
        mounted
            .iter()
            .any(|volume| volume.starts_with(&template_mount)),
        "the gateway does not mount {GATEWAY_TEMPLATE}: {mounted:?}"
    );
    let template = std::fs::read_to_string(repository().join(GATEWAY_TEMPLATE)).unwrap();
    let used: BTreeSet<&str> = template
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect();
    let set: BTreeSet<&str> = gateway["environment"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(used, set, "the template's variables and the gateway's");
}

#[test]
fn every_file_compose_mounts_or_builds_from_exists() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let volumes = service["volumes"].as_array().into_iter().flatten();
        let sources = volumes
            .filter_map(|volume| volume.as_str()?.split(':').next())
            .filter(|source| source.starts_with("./"));
        let dockerfile = service["build"]["dockerfile"].as_str();
        for path in sources.chain(dockerfile) {
            assert!(
                repository().join(path).exists(),
                "{name} uses {path}, which does not exist"
            );
        }
    }
}

/// Each `${NAME…}` of the compose file with what follows its name (`:?message`, `:-default`).
fn variables(text: &str) -> Vec<(String, String)> {
    let reference = regex::Regex::new(r"\$\{([A-Z0-9_]+)([^}]*)\}").unwrap();
    reference
        .captures_iter(text)
        .map(|found| (found[1].to_owned(), found[2].to_owned()))
        .collect()
}

fn is_secret(name: &str) -> bool {
    ["PASSWORD", "SECRET", "TOKEN", "PASS"]
        .iter()
        .any(|word| name.contains(word))
}

#[test]
fn no_secret_has_a_value_in_the_compose_file() {
    let text = std::fs::read_to_string(compose_file()).unwrap();
    let compose = compose();
    let mut checked = 0;
    for service in services(&compose).values() {
        let Some(environment) = service["environment"].as_object() else {
            continue;
        };
        for (name, value) in environment {
            let value = value.as_str().unwrap_or_default();
            let credentials_in_url = value.contains("://") && value.contains('@');
            if is_secret(name) || credentials_in_url {
                checked += 1;
                assert!(
                    value.contains("${"),
                    "{name} has a value in the compose file: {value}"
                );
            }
        }
    }
    assert!(
        checked >= 8,
        "only {checked} secrets found: is the test blind?"
    );
    for (name, operator) in variables(&text) {
        // An empty admin token leaves the operator endpoints off: the one default allowed.
        if is_secret(&name) && name != "ADMIN_TOKEN" {
            assert!(
                operator.starts_with(":?"),
                "${{{name}{operator}}}: a secret must be required (:?), never defaulted"
            );
        }
    }
}

#[test]
fn compose_env_writes_every_secret_the_compose_file_requires_and_keeps_them() {
    let text = std::fs::read_to_string(compose_file()).unwrap();
    let required: BTreeSet<String> = variables(&text)
        .into_iter()
        .filter(|(_, operator)| operator.starts_with(":?"))
        .map(|(name, _)| name)
        .collect();
    let dir = std::env::temp_dir().join(harness::unique_name());
    std::fs::create_dir_all(&dir).unwrap();
    let env_file = dir.join(".env");
    let write = || {
        let output = Command::new(repository().join("deploy/compose-env"))
            .arg(&env_file)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        std::fs::read_to_string(&env_file).unwrap()
    };

    let first = write();
    let second = write();

    let written: BTreeSet<String> = first
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            assert!(
                service_support::secrets::weakness(value, 32).is_none(),
                "{name}={value}"
            );
            name.to_owned()
        })
        .collect();
    let missing: Vec<&String> = required.difference(&written).collect();
    assert!(missing.is_empty(), "compose-env does not write {missing:?}");
    assert_eq!(first, second, "a second run changed the values");
    let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
    std::fs::remove_dir_all(&dir).unwrap();
}
