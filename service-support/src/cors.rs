//! Which web pages may call the API from a browser: none, unless `http.cors_allowed_origins`
//! lists their origins. Without the setting no CORS header is ever sent, so a browser lets no
//! other site read an answer, and a preflight (which no route takes) is refused like any
//! unknown method. With it, `actix-cors` answers the listed origins, and a preflight from any
//! other is refused with a JSON 403 (`errors::library_errors_as_json`) instead of that
//! crate's plain-text 400.

use actix_cors::Cors;
use actix_web::http::header;
use actix_web::middleware::Condition;

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE_SECONDS: usize = 600;

/// The origins of a comma-separated list, each `scheme://host[:port]` as a browser sends it in
/// `Origin`; why the list is not one.
pub fn parse_origins(list: &str) -> Result<Vec<String>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .ok_or_else(|| format!("{origin}: an origin starts with https:// or http://"))?;
            if rest.is_empty() || rest.contains(['/', '*', '?', '#', ' ']) {
                return Err(format!(
                    "{origin}: an origin is a scheme, a host and a port only (no path, no *)"
                ));
            }
            Ok(origin.to_ascii_lowercase())
        })
        .collect()
}

/// The middleware for `origins`: off when there are none.
pub fn policy(origins: &[String]) -> Condition<Cors> {
    let cors = origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods(["GET", "HEAD", "POST"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-consistency-token"),
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("traceparent"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::LINK,
            header::HeaderName::from_static("idempotent-replayed"),
            header::HeaderName::from_static("x-consistency-token"),
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("traceparent"),
            header::HeaderName::from_static("traceresponse"),
        ])
        .max_age(PREFLIGHT_MAX_AGE_SECONDS);
    Condition::new(!origins.is_empty(), cors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_list_is_origins_only() {
        assert_eq!(
            parse_origins(" https://shop.example.com, http://localhost:5173 ,"),
            Ok(vec![
                "https://shop.example.com".to_owned(),
                "http://localhost:5173".to_owned()
            ])
        );
        assert_eq!(parse_origins(""), Ok(vec![]));
        for bad in [
            "*",
            "shop.example.com",
            "https://shop.example.com/",
            "https://*.example.com",
        ] {
            assert!(parse_origins(bad).is_err(), "{bad}");
        }
    }
}
