//! The Kubernetes manifests under `deploy/k8s/`: validated against the Kubernetes API schemas
//! by kubernetes-validate (strict: unknown fields are errors), then checked for what a schema
//! cannot see: references between resources, probes and resources on every container, an
//! autoscaler per service, each service holding only its own credentials (in Secrets that
//! `deploy/k8s/make-secrets` writes and no manifest holds), and the gateway's configuration
//! matching `deploy/nginx/gateway.conf.template`. The overlays' custom resources
//! (KEDA in `deploy/k8s/keda/`, the RabbitMQ and CloudNativePG operators in
//! `deploy/k8s/operators/`) are validated against their projects' published CRD schemas, kept
//! in `deploy/harness/fixtures/crds/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::{run_validator, yaml_documents, PROJECTION_QUEUE};
use serde_json::{json, Value};

const KUBERNETES_VERSION: &str = "1.31.0";
const GATEWAY_CONFIG_MAP: &str = "gateway-template.yaml";

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s")
}

fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(k8s_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        })
        .filter(|path| !path.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    files
}

/// The connection URLs `make-secrets` is given in these tests; nothing connects to them.
const TEST_URLS: [(&str, &str); 4] = [
    (
        "DATABASE_URL",
        "postgres://orders:pw@postgres.test.invalid:5432/orders",
    ),
    (
        "MONGODB_URI",
        "mongodb://orders:pw@mongodb.test.invalid:27017",
    ),
    (
        "PUBLISHER_AMQP_URL",
        "amqp://orders-publisher:pw@rabbitmq.test.invalid:5672/%2f",
    ),
    (
        "CONSUMER_AMQP_URL",
        "amqp://orders-consumer:pw@rabbitmq.test.invalid:5672/%2f",
    ),
];

/// The Secrets `deploy/k8s/make-secrets` writes (with `--operators` or not), as the
/// kustomization's secretGenerator makes them: by name, their keys and values.
fn generated_secrets(operators: bool) -> HashMap<String, BTreeMap<String, String>> {
    let dir = std::env::temp_dir().join(harness::unique_name());
    let mut command = Command::new(k8s_dir().join("make-secrets"));
    command.arg("--dir").arg(&dir).envs(TEST_URLS);
    if operators {
        command
            .arg("--operators")
            .envs([("PUBLISHER_PASSWORD", "pw"), ("CONSUMER_PASSWORD", "pw")]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "make-secrets: {output:?}");
    let kustomization = &yaml_documents(&k8s_dir().join("kustomization.yaml"))[0];
    let secrets = kustomization["secretGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .map(|generator| {
            let file = generator["envs"][0].as_str().unwrap();
            let text = std::fs::read_to_string(dir.join(file.trim_start_matches("secrets/")))
                .unwrap_or_else(|error| panic!("make-secrets wrote no {file}: {error}"));
            let values = text
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect();
            (generator["name"].as_str().unwrap().to_owned(), values)
        })
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    secrets
}

/// Every resource, by (kind, name), the generated Secrets among them.
fn resources() -> HashMap<(String, String), Value> {
    let generated = generated_secrets(false).into_iter().map(|(name, values)| {
        json!({"kind": "Secret", "metadata": {"name": name}, "stringData": values})
    });
    manifest_files()
        .iter()
        .flat_map(|file| yaml_documents(file))
        .chain(generated)
        .map(|resource| {
            let key = (
                resource["kind"].as_str().unwrap().to_owned(),
                resource["metadata"]["name"].as_str().unwrap().to_owned(),
            );
            (key, resource)
        })
        .collect()
}

#[test]
fn no_manifest_holds_a_secret_and_make_secrets_keeps_its_own_out_of_git() {
    for file in manifest_files() {
        for resource in yaml_documents(&file) {
            assert_ne!(
                resource["kind"],
                "Secret",
                "{} holds a Secret",
                file.display()
            );
        }
    }
    let ignored = Command::new("git")
        .args([
            "check-ignore",
            "-q",
            "deploy/k8s/secrets/command-service.env",
        ])
        .current_dir(k8s_dir().join("../.."))
        .status()
        .unwrap();
    assert!(
        ignored.success(),
        "deploy/k8s/secrets/ is not ignored by git"
    );
    let secrets = generated_secrets(false);
    let command = &secrets["command-service-secrets"];
    let query = &secrets["query-service-secrets"];
    for key in ["APP_AUTH__HS256_SECRET", "ADMIN_TOKEN"] {
        assert_eq!(
            command[key], query[key],
            "{key} differs between the services"
        );
        assert!(
            service_support::secrets::weakness(&command[key], 32).is_none(),
            "{key}={}",
            command[key]
        );
    }
}

fn named<'a>(resources: &'a HashMap<(String, String), Value>, kind: &str) -> Vec<&'a Value> {
    resources
        .iter()
        .filter(|((found, _), _)| found == kind)
        .map(|(_, resource)| resource)
        .collect()
}

#[test]
fn every_manifest_is_valid_against_the_kubernetes_schemas() {
    let files = manifest_files();
    let mut args: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let version_flag = [
        Path::new("--strict"),
        Path::new("-k"),
        Path::new(KUBERNETES_VERSION),
    ];
    args.splice(0..0, version_flag);

    run_validator("kubernetes-validate", &args).unwrap_or_else(|problems| panic!("{problems}"));
}

#[test]
fn the_validator_refuses_an_unknown_field() {
    let dir = std::env::temp_dir().join(harness::unique_name());
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.yaml");
    let text = std::fs::read_to_string(k8s_dir().join("command-service.yaml"))
        .unwrap()
        .replacen("readinessProbe:", "readinesProbe:", 1);
    std::fs::write(&file, text).unwrap();

    let checked = run_validator(
        "kubernetes-validate",
        &[
            Path::new("--strict"),
            Path::new("-k"),
            Path::new(KUBERNETES_VERSION),
            &file,
        ],
    );

    assert!(checked.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_kustomization_lists_every_manifest() {
    let kustomization = yaml_documents(&k8s_dir().join("kustomization.yaml")).remove(0);
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();
    let present: BTreeSet<String> = manifest_files()
        .iter()
        .map(|path| path.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, present);
}

#[test]
fn every_container_has_probes_on_its_ports_and_resource_requests() {
    let resources = resources();
    for deployment in named(&resources, "Deployment") {
        let name = &deployment["metadata"]["name"];
        for container in deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
        {
            let ports: Vec<&Value> = container["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|port| &port["name"])
                .collect();
            for probe in ["readinessProbe", "livenessProbe"] {
                let port = &container[probe]["httpGet"]["port"];
                assert!(
                    ports.contains(&port),
                    "{name}: {probe} on undeclared port {port}"
                );
            }
            let resources = &container["resources"];
            for request in ["cpu", "memory"] {
                assert!(
                    resources["requests"][request].is_string(),
                    "{name}: no {request} request"
                );
            }
            assert!(
                resources["limits"]["memory"].is_string(),
                "{name}: no memory limit"
            );
        }
    }
}

#[test]
fn each_service_has_an_autoscaler_and_a_service_that_select_its_pods() {
    let resources = resources();
    let deployments: HashMap<&str, &Value> = named(&resources, "Deployment")
        .into_iter()
        .map(|deployment| (deployment["metadata"]["name"].as_str().unwrap(), deployment))
        .collect();
    for name in ["command-service", "query-service", "gateway"] {
        let deployment = deployments[name];
        let autoscaler = &resources[&("HorizontalPodAutoscaler".to_owned(), name.to_owned())];
        assert_eq!(autoscaler["spec"]["scaleTargetRef"]["name"], name);
        assert_eq!(autoscaler["spec"]["scaleTargetRef"]["kind"], "Deployment");
        let service = &resources[&("Service".to_owned(), name.to_owned())];
        let labels = deployment["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .unwrap();
        for (key, value) in service["spec"]["selector"].as_object().unwrap() {
            assert_eq!(
                labels.get(key),
                Some(value),
                "{name}: the Service selects no pod"
            );
        }
    }
}

/// The keys a Deployment's first container gets from its ConfigMaps and Secrets, each of
/// which must exist.
fn environment_keys(resources: &HashMap<(String, String), Value>, name: &str) -> BTreeSet<String> {
    let deployment = &resources[&("Deployment".to_owned(), name.to_owned())];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut keys = BTreeSet::new();
    for source in container["envFrom"].as_array().unwrap() {
        let (kind, reference, data) = if source["configMapRef"].is_object() {
            ("ConfigMap", &source["configMapRef"]["name"], "data")
        } else {
            ("Secret", &source["secretRef"]["name"], "stringData")
        };
        let referenced = resources
            .get(&(kind.to_owned(), reference.as_str().unwrap().to_owned()))
            .unwrap_or_else(|| panic!("{name} refers to a missing {kind} {reference}"));
        keys.extend(referenced[data].as_object().unwrap().keys().cloned());
    }
    keys
}

#[test]
fn each_service_gets_only_its_own_credentials_and_auth_is_on() {
    let resources = resources();
    let command = environment_keys(&resources, "command-service");
    let query = environment_keys(&resources, "query-service");

    assert!(command.contains("DATABASE_URL") && command.contains("AMQP_URL"));
    assert!(
        !command.contains("MONGODB_URI"),
        "the command side has MongoDB credentials"
    );
    assert!(query.contains("MONGODB_URI") && query.contains("AMQP_URL"));
    assert!(
        !query.contains("DATABASE_URL"),
        "the query side has PostgreSQL credentials"
    );
    for (name, config) in [
        ("command-service-config", "command"),
        ("query-service-config", "query"),
    ] {
        let map = &resources[&("ConfigMap".to_owned(), name.to_owned())];
        assert_eq!(
            map["data"]["APP_AUTH__ENABLED"], "true",
            "{config} side without auth"
        );
    }
    let secrets = |name: &str| {
        resources[&("Secret".to_owned(), name.to_owned())]["stringData"]["AMQP_URL"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(secrets("command-service-secrets").contains("orders-publisher"));
    assert!(secrets("query-service-secrets").contains("orders-consumer"));
}

/// The ConfigMap that mounts the gateway's template, as it must be written.
fn gateway_config_map(template: &str) -> String {
    let mut text = String::from(
        "# Generated from deploy/nginx/gateway.conf.template by the manifests test; rerun it with\n\
         # UPDATE_K8S=1 after changing the template.\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gateway-template\ndata:\n  gateway.conf.template: |\n",
    );
    for line in template.lines() {
        if !line.is_empty() {
            text.push_str("    ");
            text.push_str(line);
        }
        text.push('\n');
    }
    text
}

#[test]
fn the_gateway_config_map_is_the_gateway_template() {
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../nginx/gateway.conf.template"),
    )
    .unwrap();
    let expected = gateway_config_map(&template);
    let path = k8s_dir().join(GATEWAY_CONFIG_MAP);
    if std::env::var_os("UPDATE_K8S").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == expected,
        "{} differs from the gateway template; rerun this test with UPDATE_K8S=1",
        path.display()
    );
    let parsed = yaml_documents(&path).remove(0);
    assert_eq!(parsed["data"]["gateway.conf.template"], template.as_str());
}

fn keda_overlay() -> Vec<Value> {
    yaml_documents(&k8s_dir().join("keda/query-service-scaledobject.yaml"))
}

fn overlay_resource(kind: &str) -> Value {
    keda_overlay()
        .into_iter()
        .find(|resource| resource["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the KEDA overlay"))
}

/// Refuses fields a schema does not name, as the API server's strict field validation does:
/// every object schema with properties gets `additionalProperties: false`, unless it keeps
/// unknown fields on purpose.
fn strict(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let keeps_unknown =
        object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if object.contains_key("properties")
        && !object.contains_key("additionalProperties")
        && !keeps_unknown
    {
        object.insert("additionalProperties".to_owned(), Value::Bool(false));
    }
    for key in ["properties", "items", "additionalProperties"] {
        match object.get_mut(key) {
            Some(Value::Object(children)) if key == "properties" => {
                children.values_mut().for_each(strict);
            }
            Some(child) => strict(child),
            None => {}
        }
    }
}

/// Checks `resource` against the `openAPIV3Schema` of the vendored CRD `crd`, made strict.
fn check_against_crd(resource: &Value, crd: &str) -> Result<(), String> {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/crds")
        .join(crd);
    let definition = &yaml_documents(&fixture)[0];
    let mut schema = definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    strict(&mut schema);
    let dir = std::env::temp_dir().join(harness::unique_name());
    std::fs::create_dir_all(&dir).unwrap();
    let (schema_file, instance) = (dir.join("schema.json"), dir.join("resource.json"));
    std::fs::write(&schema_file, schema.to_string()).unwrap();
    std::fs::write(&instance, resource.to_string()).unwrap();
    let checked = run_validator(
        "check-jsonschema",
        &[Path::new("--schemafile"), &schema_file, &instance],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    checked
}

#[test]
fn the_keda_overlay_is_valid_against_keda_s_published_schemas() {
    let scaled_object = overlay_resource("ScaledObject");
    let authentication = overlay_resource("TriggerAuthentication");
    check_against_crd(&scaled_object, "keda.sh_scaledobjects.yaml")
        .unwrap_or_else(|problems| panic!("{problems}"));
    check_against_crd(&authentication, "keda.sh_triggerauthentications.yaml")
        .unwrap_or_else(|problems| panic!("{problems}"));

    let mut wrong_type = scaled_object.clone();
    wrong_type["spec"]["minReplicaCount"] = "two".into();
    let mut unknown_field = scaled_object;
    unknown_field["spec"]["triggers"][0]["queueName"] = PROJECTION_QUEUE.into();
    for broken in [wrong_type, unknown_field] {
        assert!(
            check_against_crd(&broken, "keda.sh_scaledobjects.yaml").is_err(),
            "{broken}"
        );
    }
}

#[test]
fn keda_scales_the_query_service_on_its_queue_and_the_command_side_keeps_its_cpu_autoscaler() {
    let base = resources();
    let scaled_object = overlay_resource("ScaledObject");
    let target = &scaled_object["spec"]["scaleTargetRef"];
    assert_eq!(target["kind"], "Deployment");
    assert!(base.contains_key(&(
        "Deployment".to_owned(),
        target["name"].as_str().unwrap().to_owned()
    )));
    assert_eq!(target["name"], "query-service");
    let trigger = &scaled_object["spec"]["triggers"][0];
    assert_eq!(trigger["type"], "rabbitmq");
    assert_eq!(trigger["metadata"]["queueName"], PROJECTION_QUEUE);
    assert_eq!(trigger["metadata"]["mode"], "QueueLength");

    // The trigger's credentials are the query side's own, from a secret that holds them.
    let authentication = overlay_resource("TriggerAuthentication");
    assert_eq!(
        trigger["authenticationRef"]["name"],
        authentication["metadata"]["name"]
    );
    for reference in authentication["spec"]["secretTargetRef"]
        .as_array()
        .unwrap()
    {
        assert_eq!(reference["name"], "query-service-secrets");
        let secret = &base[&("Secret".to_owned(), "query-service-secrets".to_owned())];
        let key = reference["key"].as_str().unwrap();
        assert!(
            secret["stringData"].get(key).is_some(),
            "no {key} in the secret"
        );
    }

    // The overlay builds on the base, drops the query side's CPU autoscaler (KEDA makes its
    // own), and leaves the command side's.
    let kustomization = &yaml_documents(&k8s_dir().join("keda/kustomization.yaml"))[0];
    let listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resource| resource.as_str().unwrap())
        .collect();
    assert_eq!(listed, ["..", "query-service-scaledobject.yaml"]);
    let patches = kustomization["patches"].as_array().unwrap();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0]["target"]["kind"], "HorizontalPodAutoscaler");
    assert_eq!(patches[0]["target"]["name"], "query-service");
    assert!(patches[0]["patch"]
        .as_str()
        .unwrap()
        .contains("$patch: delete"));
    assert!(base.contains_key(&(
        "HorizontalPodAutoscaler".to_owned(),
        "command-service".to_owned()
    )));
}

/// The resources `file` of the operators overlay defines, by kind.
fn operators_resource(file: &str, kind: &str) -> Value {
    yaml_documents(&k8s_dir().join("operators").join(file))
        .into_iter()
        .find(|resource| resource["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in operators/{file}"))
}

#[test]
fn the_operators_overlay_is_valid_against_the_operators_published_schemas() {
    let rabbitmq = operators_resource("rabbitmq-cluster.yaml", "RabbitmqCluster");
    let postgres = operators_resource("postgres-cluster.yaml", "Cluster");
    check_against_crd(&rabbitmq, "rabbitmq.com_rabbitmqclusters.yaml")
        .unwrap_or_else(|problems| panic!("{problems}"));
    check_against_crd(&postgres, "postgresql.cnpg.io_clusters.yaml")
        .unwrap_or_else(|problems| panic!("{problems}"));

    let mut wrong_type = rabbitmq.clone();
    wrong_type["spec"]["replicas"] = "three".into();
    let mut unknown_field = rabbitmq;
    unknown_field["spec"]["rabbitmq"]["partitionHandling"] = "autoheal".into();
    for broken in [wrong_type, unknown_field] {
        assert!(
            check_against_crd(&broken, "rabbitmq.com_rabbitmqclusters.yaml").is_err(),
            "{broken}"
        );
    }
    let mut wrong_method = postgres.clone();
    wrong_method["spec"]["postgresql"]["synchronous"]["method"] = "all".into();
    let mut misplaced = postgres;
    misplaced["spec"]["synchronous"] = json!({"method": "any", "number": 1});
    for broken in [wrong_method, misplaced] {
        assert!(
            check_against_crd(&broken, "postgresql.cnpg.io_clusters.yaml").is_err(),
            "{broken}"
        );
    }
}

#[test]
fn the_operators_overlay_replicates_both_engines_and_points_the_services_at_them() {
    let base = resources();
    let rabbitmq = operators_resource("rabbitmq-cluster.yaml", "RabbitmqCluster");
    assert_eq!(rabbitmq["spec"]["replicas"], 3);
    let broker = rabbitmq["metadata"]["name"].as_str().unwrap();
    let postgres = operators_resource("postgres-cluster.yaml", "Cluster");
    assert!(postgres["spec"]["instances"].as_u64().unwrap() >= 2);
    assert_eq!(postgres["spec"]["postgresql"]["synchronous"]["number"], 1);
    assert_eq!(
        postgres["spec"]["bootstrap"]["initdb"]["database"],
        "orders"
    );

    // Each service names every node by its pod's stable name, as its own user.
    let nodes: Vec<String> = (0..3)
        .map(|n| format!("{broker}-server-{n}.{broker}-nodes:5672"))
        .collect();
    let secrets = generated_secrets(true);
    for name in ["command-service-secrets", "query-service-secrets"] {
        let base_url = base[&("Secret".to_owned(), name.to_owned())]["stringData"]["AMQP_URL"]
            .as_str()
            .unwrap();
        let user = base_url
            .trim_start_matches("amqp://")
            .split(':')
            .next()
            .unwrap();
        let hosts: Vec<&str> = secrets[name]["AMQP_URL"]
            .split(',')
            .map(|address| {
                let rest = address
                    .strip_prefix(&format!("amqp://{user}:"))
                    .unwrap_or_else(|| panic!("{name}: {address} is not {user}'s"));
                rest.split_once('@').unwrap().1.split('/').next().unwrap()
            })
            .collect();
        assert_eq!(hosts, nodes, "{name}");
    }
    assert!(
        !secrets["command-service-secrets"].contains_key("DATABASE_URL"),
        "with the operators, the database URL comes from CloudNativePG's secret"
    );

    // The command side's database URL is the one CloudNativePG keeps for the orders database.
    let patch = &yaml_documents(&k8s_dir().join("operators/command-service-database.yaml"))[0];
    assert!(base.contains_key(&("Deployment".to_owned(), "command-service".to_owned())));
    let env = &patch["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(env["name"], "DATABASE_URL");
    let reference = &env["valueFrom"]["secretKeyRef"];
    assert_eq!(
        reference["name"],
        format!("{}-app", postgres["metadata"]["name"].as_str().unwrap()).as_str()
    );
    assert_eq!(reference["key"], "uri");

    let kustomization = &yaml_documents(&k8s_dir().join("operators/kustomization.yaml"))[0];
    assert_eq!(
        kustomization["resources"],
        json!(["..", "rabbitmq-cluster.yaml", "postgres-cluster.yaml"])
    );
    assert_eq!(
        kustomization["patches"],
        json!([{"path": "command-service-database.yaml"}])
    );
}

#[test]
fn each_overlay_puts_what_it_adds_in_the_base_s_namespace() {
    let base = &yaml_documents(&k8s_dir().join("kustomization.yaml"))[0];
    for overlay in ["keda", "operators"] {
        let kustomization = &yaml_documents(&k8s_dir().join(overlay).join("kustomization.yaml"))[0];
        assert_eq!(kustomization["namespace"], base["namespace"], "{overlay}");
    }
}
