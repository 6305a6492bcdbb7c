//! Log lines for people (the default) or for a log pipeline (`LOG_FORMAT=json`: one JSON
//! object per line). Either way a line written while serving a request, relaying its event or
//! projecting it carries that request's id, and the trace's id when it runs in a span
//! (`crate::traces`). `RUST_LOG` filters as usual.

use std::io::Write;

use chrono::{SecondsFormat, Utc};
use env_logger::fmt::Formatter;
use log::Record;
use serde_json::json;

use crate::RequestId;

/// lapin logs every returned message at WARN; the relay already reports it in one line. Its
/// spans, through `tracing`'s `log` feature, would each write an INFO line when created.
const DEFAULT_FILTER: &str = "info,lapin::returned_messages=error,tracing::span=warn";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// Reads `LOG_FORMAT`: `json`, or anything else for text.
    pub fn from_env() -> Self {
        match std::env::var("LOG_FORMAT") {
            Ok(value) if value.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

/// Installs the process-wide logger. Call once, first thing in `main`.
pub fn init() {
    let format = LogFormat::from_env();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(DEFAULT_FILTER))
        .format(move |out, record| write_line(out, record, format))
        .init();
}

fn write_line(out: &mut Formatter, record: &Record<'_>, format: LogFormat) -> std::io::Result<()> {
    let line = render(
        record,
        format,
        RequestId::current(),
        crate::traces::current_trace_id(),
        &Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    writeln!(out, "{line}")
}

fn render(
    record: &Record<'_>,
    format: LogFormat,
    request_id: Option<RequestId>,
    trace_id: Option<String>,
    timestamp: &str,
) -> String {
    match format {
        LogFormat::Json => {
            let mut line = json!({
                "timestamp": timestamp,
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            if let Some(id) = request_id {
                line["requestId"] = json!(id.as_str());
            }
            if let Some(id) = trace_id {
                line["traceId"] = json!(id);
            }
            line.to_string()
        }
        LogFormat::Text => {
            let mut line = format!(
                "{timestamp} {:<5} {}: {}",
                record.level(),
                record.target(),
                record.args()
            );
            if let Some(id) = request_id {
                line.push_str(" request_id=");
                line.push_str(id.as_str());
            }
            if let Some(id) = trace_id {
                line.push_str(" trace_id=");
                line.push_str(&id);
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn rendered(format: LogFormat, request_id: Option<&str>) -> String {
        render(
            &Record::builder()
                .args(format_args!("order \"accepted\""))
                .level(log::Level::Info)
                .target("command_service::http")
                .build(),
            format,
            request_id.and_then(RequestId::parse),
            request_id.map(|_| TRACE_ID.to_owned()),
            "2026-11-23T12:00:00.000Z",
        )
    }

    #[test]
    fn a_json_line_is_one_object_with_the_request_and_trace_ids() {
        let line: serde_json::Value =
            serde_json::from_str(&rendered(LogFormat::Json, Some("req-1"))).unwrap();
        assert_eq!(line["message"], "order \"accepted\"");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], "command_service::http");
        assert_eq!(line["requestId"], "req-1");
        assert_eq!(line["traceId"], TRACE_ID);
    }

    #[test]
    fn a_text_line_ends_with_the_request_id_and_the_trace_id() {
        assert_eq!(
            rendered(LogFormat::Text, Some("req-1")),
            "2026-11-23T12:00:00.000Z INFO  command_service::http: order \"accepted\" request_id=req-1 \
             trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn lines_outside_a_request_have_no_id() {
        assert!(!rendered(LogFormat::Text, None).contains("request_id"));
        let line: serde_json::Value =
            serde_json::from_str(&rendered(LogFormat::Json, None)).unwrap();
        assert!(line.get("requestId").is_none());
    }
}
