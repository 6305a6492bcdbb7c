//! The validators `deploy/test` installs (`install_validators`): openapi-spec-validator for the
//! OpenAPI documents, Schemathesis for what the services answer against them, kubernetes-validate
//! for the manifests under `deploy/k8s/`, check-jsonschema for `docker-compose.yml`, and their
//! PyYAML to read YAML files.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A validator's executable, from `VALIDATORS_BIN`.
pub fn validator(name: &str) -> PathBuf {
    let dir = std::env::var_os("VALIDATORS_BIN").unwrap_or_else(|| {
        panic!("VALIDATORS_BIN is not set: run the tests with deploy/test, which installs {name}")
    });
    let path = Path::new(&dir).join(name);
    assert!(
        path.exists(),
        "{} is missing; deploy/test installs it",
        path.display()
    );
    path
}

/// Runs `validator` on `args`; the output when it refuses.
pub fn run_validator<A: AsRef<OsStr>>(name: &str, args: &[A]) -> Result<(), String> {
    let output = Command::new(validator(name))
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {name}: {error}"));
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Schemathesis's settings and hooks for the contract test.
fn schemathesis_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemathesis")
}

/// Runs Schemathesis with every check (deploy/schemathesis/schemathesis.toml says which it
/// narrows, and why) on the OpenAPI document at `location` (a URL, or a file with `--url`
/// among `args`), with a fixed seed; the report when it finds anything.
pub fn schemathesis<A: AsRef<OsStr>>(location: &str, args: &[A]) -> Result<String, String> {
    let settings = schemathesis_dir();
    // Schemathesis keeps a cache of what it found in its working directory: each run gets an
    // empty one, so runs neither share state nor write into the checkout.
    let workdir = std::env::temp_dir().join(crate::unique_name());
    std::fs::create_dir_all(&workdir).expect("create a temporary directory");
    let output = Command::new(validator("schemathesis"))
        .current_dir(&workdir)
        .arg("--config-file")
        .arg(settings.join("schemathesis.toml"))
        .args(["run", location, "--seed", "20261127", "--no-color"])
        .args(args)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &settings)
        .output()
        .unwrap_or_else(|error| panic!("cannot run schemathesis: {error}"));
    std::fs::remove_dir_all(&workdir).expect("remove Schemathesis's directory");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(report)
    } else {
        Err(report)
    }
}

/// Every document of a YAML file, as JSON, parsed by the validators' own PyYAML.
pub fn yaml_documents(file: &Path) -> Vec<Value> {
    let output = Command::new(validator("python"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(file)
        .output()
        .expect("run the validators' python");
    assert!(output.status.success(), "{}: {output:?}", file.display());
    serde_json::from_slice(&output.stdout).expect("PyYAML's JSON")
}

/// Checks `document` against the OpenAPI specification with openapi-spec-validator.
pub fn openapi_problems(document: &Value) -> Result<(), String> {
    let dir = std::env::temp_dir().join(crate::unique_name());
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    let file = dir.join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("write the document");
    let checked = run_validator("openapi-spec-validator", &[&file]);
    let _ = std::fs::remove_dir_all(&dir);
    checked
}

/// Every operation of `document`, as (upper-case method, path template).
pub fn openapi_operations(document: &Value) -> Vec<(String, String)> {
    let mut operations: Vec<(String, String)> = document["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|methods| methods.keys())
                .filter(|key| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&key.as_str())
                })
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    operations.sort();
    operations
}

/// `template` with each `{parameter}` replaced by `value`.
pub fn concrete_path(template: &str, value: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        path.push_str(&rest[..start]);
        path.push_str(value);
        rest = rest[start..].split_once('}').map_or("", |(_, after)| after);
    }
    path.push_str(rest);
    path
}

/// The service's router answer to a path it does not know.
const NO_ROUTE_MESSAGE: &str = "no such resource";

/// The operations of `document` that the service at `base_url` does not serve: its router
/// answers them 405, or 404 as a path it does not know. Path parameters get `parameter`.
async fn unserved_operations(
    client: &reqwest::Client,
    base_url: &str,
    document: &Value,
    parameter: &str,
) -> Vec<String> {
    let mut unserved = Vec::new();
    for (method, template) in openapi_operations(document) {
        let path = concrete_path(&template, parameter);
        let response = client
            .request(
                method.parse().expect("an HTTP method"),
                format!("{base_url}{path}"),
            )
            .send()
            .await
            .expect("request a documented operation");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if status == 405 || body["message"] == NO_ROUTE_MESSAGE {
            unserved.push(format!("{method} {path}: {status} {body}"));
        }
    }
    unserved
}

/// The paths of `document` that do not document the header `name` for all their operations.
fn paths_without_header(document: &Value, name: &str) -> Vec<String> {
    document["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .filter(|(_, item)| {
            !item["parameters"].as_array().is_some_and(|parameters| {
                parameters
                    .iter()
                    .any(|parameter| parameter["in"] == "header" && parameter["name"] == name)
            })
        })
        .map(|(path, _)| path.clone())
        .collect()
}

/// Checks a service's own OpenAPI document against the service at `base_url`: the document is
/// valid, lists exactly `expected` operations (method, path template), each of them is served
/// (path parameters get `parameter`), and every path documents `X-Request-Id`.
pub async fn assert_document_describes_service(
    client: &reqwest::Client,
    base_url: &str,
    document: &Value,
    parameter: &str,
    expected: &[(&str, &str)],
) {
    openapi_problems(document).unwrap_or_else(|problems| panic!("invalid document: {problems}"));
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(openapi_operations(document), expected);
    let unserved = unserved_operations(client, base_url, document, parameter).await;
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    let undocumented = paths_without_header(document, "X-Request-Id");
    assert!(
        undocumented.is_empty(),
        "X-Request-Id not documented on {undocumented:?}"
    );
    let unreadable = summaries_not_plain(document);
    assert!(
        unreadable.is_empty(),
        "operations without a plain summary (Swagger UI shows it as it is): {unreadable:?}"
    );
}

/// The operations whose summary is missing or is not plain text: Swagger UI renders a
/// summary as it is, so Markdown in it shows as backticks and stars.
fn summaries_not_plain(document: &Value) -> Vec<String> {
    openapi_operations(document)
        .into_iter()
        .filter(|(method, path)| {
            let summary = document["paths"][path][method.to_lowercase()]["summary"].as_str();
            !summary
                .is_some_and(|text| !text.is_empty() && !text.contains(['`', '*', '_', '[', '\n']))
        })
        .map(|(method, path)| format!("{method} {path}"))
        .collect()
}
