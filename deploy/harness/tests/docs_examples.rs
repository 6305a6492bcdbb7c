//! The README's "Try it" and the walkthrough in docs/operating.md, run as written: each shell
//! command of their `sh` blocks runs in `sh` against a stack of its own (its gateway, metrics
//! ports and log files standing for the local stack's), and each answer is compared with the
//! lines the page prints under the command: status, headers, the JSON body's shape, log lines
//! and metric samples.
//!
//! How a page writes an example: a command (continued with `\`), then, with no blank line
//! between, `# ` lines of what it prints. A comment after a blank line is prose. In what it
//! prints, `<...>` stands for any one word (an id), `…` for any text (in JSON: any value, or
//! more members), and a log line's time stamp and durations may differ.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic

use std::time::{Duration, Instant};

use harness::ServiceStack;
use regex::Regex;
use serde_json::Value;

/// The order id the README's example shows; the test puts the id of the order it placed.
const README_ORDER_ID: &str = "01a2076e-24f1-7022-9882-1acf7172ab56";

#[derive(Debug)]
struct Example {
    command: String,
    prints: Vec<String>,
}

/// The text of `page`'s section under `heading`, down to the next heading of its level or above.
fn section(page: &str, heading: &str) -> String {
    let text = std::fs::read_to_string(harness::repository().join(page))
        .unwrap_or_else(|error| panic!("read {page}: {error}"));
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("{page} has no heading {heading:?}"));
    let body = &text[start + heading.len() + 2..];
    let mut offset = 0;
    let mut in_code = false;
    for line in body.lines() {
        in_code ^= line.trim_start().starts_with("```");
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !in_code && hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
            break;
        }
        offset += line.len() + 1;
    }
    let end = offset.min(body.len());
    body[..end].to_owned()
}

/// The examples of every `sh` block in `text`, indented blocks (in a list) included.
fn examples(text: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut in_block = false;
    let mut current: Option<Example> = None;
    let mut continued = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with("```") {
            in_block = line == "```sh";
            examples.extend(current.take());
            continue;
        }
        if !in_block {
            continue;
        }
        if continued {
            let example = current.as_mut().expect("a continued command");
            example.command.push(' ');
            example.command.push_str(line.trim_end_matches('\\'));
            continued = line.ends_with('\\');
        } else if line.is_empty() {
            examples.extend(current.take());
        } else if let Some(printed) = line.strip_prefix('#') {
            if let Some(example) = current.as_mut() {
                example.prints.push(printed.trim().to_owned());
            }
        } else {
            examples.extend(current.take());
            current = Some(Example {
                command: line.trim_end_matches('\\').to_owned(),
                prints: Vec::new(),
            });
            continued = line.ends_with('\\');
        }
    }
    examples.extend(current);
    examples
}

/// What a command printed, split as curl prints it.
struct Printed {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: String,
}

fn split_curl_output(output: &str) -> Printed {
    let output = output.replace('\r', "");
    if !output.starts_with("HTTP/") {
        return Printed {
            status: None,
            headers: Vec::new(),
            body: output,
        };
    }
    let (head, body) = output.split_once("\n\n").unwrap_or((&output, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Printed {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A regex for a printed line: `<...>` any word, `…` anything, durations any number.
fn pattern(line: &str) -> Regex {
    let placeholder = Regex::new(r"<[^>]+>|…|[0-9]+\.[0-9]+ms").unwrap();
    let mut regex = String::new();
    let mut last = 0;
    for found in placeholder.find_iter(line) {
        regex.push_str(&regex::escape(&line[last..found.start()]));
        regex.push_str(match found.as_str() {
            "…" => ".*",
            text if text.ends_with("ms") => r"[0-9.]+ms",
            _ => r"\S+",
        });
        last = found.end();
    }
    regex.push_str(&regex::escape(&line[last..]));
    Regex::new(&regex).unwrap()
}

/// Whether `actual` has the shape `expected` shows: the same members (more where `expected`
/// had `…`), the same literal values, any value where it shows `…` or a placeholder.
fn same_shape(expected: &Value, actual: &Value, open: bool) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(shown), _) if shown == "…" => Ok(()),
        (Value::String(shown), Value::String(got))
            if shown.contains('<') || shown.contains('…') =>
        {
            pattern(shown)
                .is_match(got)
                .then_some(())
                .ok_or_else(|| format!("{got:?} does not read as {shown:?}"))
        }
        (Value::Object(shown), Value::Object(got)) => {
            for (key, value) in shown {
                let got_value = got.get(key).ok_or_else(|| format!("no member {key:?}"))?;
                same_shape(value, got_value, false)
                    .map_err(|problem| format!("{key}: {problem}"))?;
            }
            let extra: Vec<&String> = got.keys().filter(|key| !shown.contains_key(*key)).collect();
            if !open && !extra.is_empty() {
                return Err(format!("members the page does not show: {extra:?}"));
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{actual} where the page shows {expected}")),
    }
}

/// Parses a JSON line as a page writes it: `…` as a value stands for any value, `,…` before
/// a closing brace for more members.
fn shown_json(line: &str) -> Option<(Value, bool)> {
    let open = line.contains(",…}") || line.contains(",…,");
    let text = line.replace(",…,", ",").replace(",…}", "}");
    serde_json::from_str(&text).ok().map(|value| (value, open))
}

/// Checks one printed line against what the command printed; the problem, if any.
fn check_line(shown: &str, printed: &Printed) -> Result<(), String> {
    if let Some(rest) = shown.strip_prefix("HTTP/1.1 ") {
        let code: u16 = rest.split_whitespace().next().unwrap().parse().unwrap();
        return (printed.status == Some(code))
            .then_some(())
            .ok_or_else(|| format!("status {:?}, the page shows {code}", printed.status));
    }
    if let Some((value, open)) = shown_json(shown) {
        let body: Value = serde_json::from_str(printed.body.trim())
            .map_err(|error| format!("the body is not JSON ({error}): {}", printed.body))?;
        return same_shape(&value, &body, open);
    }
    if printed.status.is_some() {
        if let Some((name, value)) = shown.split_once(": ") {
            let name = name.to_ascii_lowercase();
            let matcher = pattern(value);
            return printed
                .headers
                .iter()
                .any(|(got_name, got)| *got_name == name && matcher.is_match(got))
                .then_some(())
                .ok_or_else(|| format!("no header {name}: {value} in {:?}", printed.headers));
        }
    }
    // A log line or a metric sample: some printed line reads as it (a log line's time stamp
    // is the page's example).
    let line = shown
        .split_once(' ')
        .filter(|(first, _)| first.contains('T') && first.ends_with('Z'));
    let matcher = match line {
        Some((_, rest)) => pattern(rest),
        None => metric_pattern(shown),
    };
    printed
        .body
        .lines()
        .any(|got| matcher.is_match(got))
        .then_some(())
        .ok_or_else(|| format!("no line reads as it in:\n{}", printed.body))
}

/// A metric sample as a page shows it: its name and labels exact, a whole count exact, a
/// measured (fractional) value any number.
fn metric_pattern(shown: &str) -> Regex {
    let (series, value) = shown.rsplit_once(' ').unwrap_or((shown, ""));
    let value = if value.contains('.') {
        r"[0-9.e+-]+".to_owned()
    } else {
        regex::escape(value)
    };
    Regex::new(&format!("^{} {value}$", regex::escape(series))).unwrap()
}

/// How long a read-only example may keep answering otherwise than the page shows: what the
/// services count (a metric, a log line) may land a moment after the read that showed the
/// order.
const SETTLE: Duration = Duration::from_secs(10);

/// Runs `examples` with `rewrite` applied to each command, checking what each prints; every
/// problem, named by its command. A command that changes nothing (no `-X POST`) is run again
/// until it prints what the page shows or [`SETTLE`] has passed.
fn run_examples(examples: &[Example], rewrite: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut problems = Vec::new();
    for example in examples {
        let read_only = !example.command.contains("-X POST");
        let deadline = Instant::now() + SETTLE;
        loop {
            let found = run_example(example, rewrite);
            if found.is_empty() || !read_only || Instant::now() >= deadline {
                problems.extend(found);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    problems
}

/// Runs one example once; what differs from the page.
fn run_example(example: &Example, rewrite: &dyn Fn(&str) -> String) -> Vec<String> {
    match execute(&rewrite(&example.command)) {
        Ok(printed) => differences(example, &printed, rewrite),
        Err(failure) => vec![format!("`{}` failed: {failure}", example.command)],
    }
}

/// Runs `command` in `sh`; what it printed, or its error output when it failed.
fn execute(command: &str) -> Result<Printed, String> {
    let output = std::process::Command::new("sh")
        .args(["-c", command])
        .output()
        .unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(split_curl_output(&String::from_utf8_lossy(&output.stdout)))
}

/// The lines `example` shows that `printed` does not read as.
fn differences(
    example: &Example,
    printed: &Printed,
    rewrite: &dyn Fn(&str) -> String,
) -> Vec<String> {
    example
        .prints
        .iter()
        .filter_map(|shown| {
            check_line(&rewrite(shown), printed)
                .err()
                .map(|problem| format!("`{}` printed no `{shown}`: {problem}", example.command))
        })
        .collect()
}

/// Runs the first example, which places an order: what it printed, and the order's id.
fn place_order(examples: &[Example], rewrite: &dyn Fn(&str) -> String) -> (Printed, String) {
    let post = &examples[0];
    assert!(
        post.command.contains("POST"),
        "the first example places an order"
    );
    let printed = execute(&rewrite(&post.command))
        .unwrap_or_else(|failure| panic!("`{}` failed: {failure}", post.command));
    let body: Value = serde_json::from_str(printed.body.trim()).unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    (printed, id)
}

/// A stack whose services log text lines, as the local stack's do.
async fn stack_for_examples() -> ServiceStack {
    ServiceStack::start_with(&[("LOG_FORMAT", "text".to_owned())]).await
}

fn local_stack_rewrite(stack: &ServiceStack) -> impl Fn(&str) -> String + '_ {
    move |text: &str| {
        text.replace("http://127.0.0.1:8080", &stack.gateway.url(""))
            .replace(
                "http://127.0.0.1:9181",
                &format!("http://127.0.0.1:{}", stack.command.metrics_port()),
            )
            .replace(
                "http://127.0.0.1:9182",
                &format!("http://127.0.0.1:{}", stack.query.metrics_port()),
            )
            .replace(
                ".stack/logs/*.log",
                &format!(
                    "{} {}",
                    stack.command.log_path().display(),
                    stack.query.log_path().display()
                ),
            )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_try_it_answers_as_the_readme_shows() {
    let stack = stack_for_examples().await;
    let examples = examples(&section("README.md", "### Try it"));
    assert!(examples.len() >= 5, "{examples:#?}");
    let local = local_stack_rewrite(&stack);
    let (placed, id) = place_order(&examples, &local);
    let rewrite = |text: &str| local(text).replace(README_ORDER_ID, &id);

    let mut problems = differences(&examples[0], &placed, &rewrite);
    problems.extend(tokio::task::block_in_place(|| {
        run_examples(&examples[1..], &rewrite)
    }));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operating_walkthrough_answers_as_the_page_shows() {
    let stack = stack_for_examples().await;
    let examples = examples(&section(
        "docs/operating.md",
        "## Walkthrough: an order from the docs page to the metrics",
    ));
    // The local stack's part; the compose part needs a token from compose.
    let examples: Vec<Example> = examples
        .into_iter()
        .take_while(|example| !example.command.contains("docker compose"))
        .collect();
    assert!(examples.len() >= 4, "{examples:#?}");
    let local = local_stack_rewrite(&stack);
    let (placed, id) = place_order(&examples, &local);
    let rewrite = |text: &str| local(text).replace("<id>", &id);

    let mut problems = differences(&examples[0], &placed, &rewrite);
    problems.extend(tokio::task::block_in_place(|| {
        run_examples(&examples[1..], &rewrite)
    }));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_page_example_is_read_as_a_command_and_what_it_prints() {
    let text =
        "```sh\ncurl -i \\\n  http://x\n# HTTP/1.1 200 OK\n# {\"a\":1,…}\n\n# prose\ncurl y\n```\n";
    let examples = examples(text);
    assert_eq!(examples.len(), 2, "{examples:?}");
    assert_eq!(examples[0].command, "curl -i  http://x");
    assert_eq!(examples[0].prints, ["HTTP/1.1 200 OK", "{\"a\":1,…}"]);
    assert!(examples[1].prints.is_empty());
}

#[test]
fn a_shown_answer_fails_when_the_real_one_differs() {
    let printed = split_curl_output(
        "HTTP/1.1 412 Precondition Failed\r\netag: \"2\"\r\n\r\n{\"error\":\"version_mismatch\",\"id\":\"x\"}",
    );
    assert!(check_line("HTTP/1.1 412 Precondition Failed", &printed).is_ok());
    assert!(check_line("HTTP/1.1 409 Conflict", &printed).is_err());
    assert!(check_line("etag: \"2\"", &printed).is_ok());
    assert!(check_line("etag: \"1\"", &printed).is_err());
    assert!(check_line("{\"error\":\"version_mismatch\",\"id\":\"<id>\"}", &printed).is_ok());
    assert!(check_line(
        "{\"error\":\"order_already_cancelled\",\"id\":\"<id>\"}",
        &printed
    )
    .is_err());
    assert!(check_line("{\"error\":\"version_mismatch\"}", &printed).is_err());
    assert!(check_line("{\"error\":\"version_mismatch\",…}", &printed).is_ok());

    let logs =
        split_curl_output("2026-12-02T10:00:00Z INFO  http: POST /orders 202 3.1ms request_id=a\n");
    assert!(check_line(
        "2026-11-23T12:52:32.815Z INFO  http: POST /orders 202 11.8ms request_id=a",
        &logs
    )
    .is_ok());
    assert!(check_line(
        "2026-11-23T12:52:32.815Z INFO  x: accepted order <id> for a@b",
        &logs
    )
    .is_err());

    let metrics = split_curl_output("events_applied_total 1\nprojection_lag_seconds_sum 0.02\n");
    assert!(check_line("events_applied_total 1", &metrics).is_ok());
    assert!(check_line("events_applied_total 2", &metrics).is_err());
    assert!(check_line("projection_lag_seconds_sum 0.156012458", &metrics).is_ok());
}
