//! docs/configuration.md states every setting of each service's built-in defaults
//! (`<service>/config/default.toml`) with the default that file gives it, and no setting the
//! file does not hold unless its default is said in words (`http.workers`: one per core), so
//! the page cannot drift from what the services read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::collections::BTreeMap;

use harness::repository;
use serde_json::Value;

/// A table row: the settings its first cell names (`http.host`, `http.port`) and its second
/// cell, which shows their defaults in code spans in the same order (`127.0.0.1`, `8081`).
#[derive(Debug)]
struct Row {
    settings: Vec<String>,
    default_cell: String,
}

fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Each table's rows under the line that introduces the table ("command-service:").
fn tables(page: &str) -> Vec<(String, Vec<Row>)> {
    let mut tables: Vec<(String, Vec<Row>)> = Vec::new();
    let mut title = "";
    for line in page.lines() {
        if line.starts_with("| `") {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let named = cells[1].split(" (or ").next().expect("split yields a part");
            let row = Row {
                settings: code_spans(named),
                default_cell: cells[2].to_owned(),
            };
            match tables.last_mut() {
                Some((last, rows)) if last == title => rows.push(row),
                _ => tables.push((title.to_owned(), vec![row])),
            }
        } else if !line.starts_with('|') && line.ends_with(':') {
            title = line;
        }
    }
    tables
}

/// What the page says of `service`'s settings: its own table and those for both services.
/// `None` for a setting whose default is said in words.
fn documented(page: &str, service: &str) -> BTreeMap<String, Option<String>> {
    let own = format!("{service}:");
    let mut settings = BTreeMap::new();
    for (title, rows) in tables(page) {
        if title != own && !title.starts_with("Both services") {
            continue;
        }
        for row in rows {
            let defaults = code_spans(&row.default_cell);
            let stated = defaults.len() == row.settings.len();
            for (i, setting) in row.settings.iter().enumerate() {
                let default = if row.default_cell.starts_with("empty") {
                    Some(String::new())
                } else if stated {
                    Some(defaults[i].clone())
                } else {
                    None
                };
                settings.insert(setting.clone(), default);
            }
        }
    }
    settings
}

/// `service`'s built-in defaults, flattened to dotted keys, each value as the page writes it.
fn built_in_defaults(service: &str) -> BTreeMap<String, String> {
    let file = repository().join(service).join("config/default.toml");
    let defaults: Value = config::Config::builder()
        .add_source(config::File::from(file))
        .build()
        .expect("the built-in defaults parse")
        .try_deserialize()
        .expect("the defaults are a table");
    let mut flat = BTreeMap::new();
    flatten("", &defaults, &mut flat);
    flat
}

fn flatten(prefix: &str, value: &Value, flat: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(table) => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, value, flat);
            }
        }
        Value::String(text) => {
            flat.insert(prefix.to_owned(), text.clone());
        }
        other => {
            flat.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// Where the page and the file disagree for `service`.
fn disagreements(page: &str, service: &str) -> Vec<String> {
    let documented = documented(page, service);
    let defaults = built_in_defaults(service);
    let mut wrong = Vec::new();
    for (setting, default) in &defaults {
        match documented.get(setting) {
            None => wrong.push(format!("{service}: {setting} is not documented")),
            Some(Some(shown)) if shown != default => wrong.push(format!(
                "{service}: {setting} is documented with default {shown:?}, the file has {default:?}"
            )),
            Some(_) => {}
        }
    }
    for (setting, default) in &documented {
        let family = setting.ends_with(".*");
        if default.is_some() && !family && !defaults.contains_key(setting) {
            wrong.push(format!(
                "{service}: {setting} is documented with a default the file does not hold"
            ));
        }
    }
    wrong
}

#[test]
fn the_configuration_page_states_every_built_in_setting_with_its_default() {
    let page = std::fs::read_to_string(repository().join("docs/configuration.md"))
        .expect("docs/configuration.md is readable");
    let mut wrong = disagreements(&page, "command-service");
    wrong.extend(disagreements(&page, "query-service"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// What the test reports of query-service once `from` is replaced by `to` on the page.
fn reported_after_edit(from: &str, to: &str) -> Vec<String> {
    let page = std::fs::read_to_string(repository().join("docs/configuration.md"))
        .expect("docs/configuration.md is readable");
    assert!(page.contains(from), "the page holds {from:?}");
    disagreements(&page.replace(from, to), "query-service")
}

#[test]
fn a_setting_left_out_or_a_default_changed_or_invented_is_reported() {
    assert_eq!(
        reported_after_edit("| `http.host`, `http.port` | `127.0.0.1`, `8082` |", ""),
        [
            "query-service: http.host is not documented",
            "query-service: http.port is not documented"
        ]
    );
    assert_eq!(
        reported_after_edit(
            "| `broker.batch_size` | `128` |",
            "| `broker.batch_size` | `64` |"
        ),
        [r#"query-service: broker.batch_size is documented with default "64", the file has "128""#]
    );
    assert_eq!(
        reported_after_edit(
            "| `broker.lanes` | `8` |",
            "| `broker.speed` | `11` | faster |\n| `broker.lanes` | `8` |"
        ),
        ["query-service: broker.speed is documented with a default the file does not hold"]
    );
}
