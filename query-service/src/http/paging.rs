use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use service_support::docs::{integer_schema, parameter};
use service_support::params::{page_limit, whole_number};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::IntoParams;

use super::ApiError;
use crate::store::{Cursor, Page, Start};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// Deeper pages are reached with `cursor`: skipping costs what is skipped on every server.
pub const MAX_OFFSET: u64 = 10_000;

/// `limit` (1..=500, default 50), and where the page starts: `offset` items (0 to 10 000,
/// default 0) after `cursor` (from the previous page's `Link: rel="next"`) or after the
/// listing's beginning, as given in the query string. Documented by [`Paging`].
#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    limit: Option<String>,
    offset: Option<String>,
    cursor: Option<String>,
}

/// The largest list position a cursor may name.
const MAX_POSITION: i64 = i64::MAX;

/// A cursor as `Link` headers give it: a list position.
fn read_cursor(text: &str) -> Option<Cursor> {
    whole_number(text)
        .and_then(|position| i64::try_from(position).ok())
        .filter(|position| (1..=MAX_POSITION).contains(position))
        .map(Cursor::Position)
}

impl PageParams {
    /// The page asked for.
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit =
            page_limit(self.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT).map_err(|message| {
                ApiError::InvalidParameter {
                    name: "limit",
                    message,
                }
            })?;
        let after = match &self.cursor {
            None => None,
            Some(text) => Some(read_cursor(text).ok_or_else(|| ApiError::InvalidParameter {
                name: "cursor",
                message: format!(
                    "must be a cursor from a previous page's Link header, got {text:?}"
                ),
            })?),
        };
        let skip = match &self.offset {
            None => 0,
            Some(text) => whole_number(text)
                .filter(|offset| *offset <= MAX_OFFSET)
                .ok_or_else(|| ApiError::InvalidParameter {
                    name: "offset",
                    message: format!(
                        "must be a whole number from 0 to {MAX_OFFSET} (use cursor for deeper pages), got {text:?}"
                    ),
                })?,
        };
        Ok(Page {
            limit,
            start: Start { after, skip },
        })
    }
}

/// The paging parameters of every listing, for its document.
pub struct Paging;

impl IntoParams for Paging {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let query = |name: &str, description: &str, schema: ObjectBuilder| {
            parameter(name, ParameterIn::Query, description, schema)
        };
        vec![
            query(
                "limit",
                "Items per page (default 50). A full page answers `Link: <…>; rel=\"next\"`.",
                integer_schema(1..=i64::from(MAX_LIMIT)),
            ),
            query(
                "offset",
                "Items to skip (default 0), after `cursor` when one is given; deeper pages are \
             reached with `cursor`.",
                integer_schema(0..=i64::try_from(MAX_OFFSET).unwrap_or(i64::MAX)),
            ),
            query(
                "cursor",
                "Where the page starts, as the previous page's `Link: rel=\"next\"` gives it.",
                integer_schema(1..=MAX_POSITION),
            ),
        ]
    }
}

/// A JSON array of `items`; when `next` says where a next page starts, a
/// `Link: <…>; rel="next"` header points to it, keeping the other query parameters.
pub fn page_response<T: Serialize>(
    request: &HttpRequest,
    page: &Page,
    extra_params: &[(&str, &str)],
    items: Vec<T>,
    next: Option<Start>,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(next) = next {
        let mut params: Vec<(&str, String)> = extra_params
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect();
        params.push(("limit", page.limit.to_string()));
        match next.after {
            None => {}
            Some(Cursor::Position(position)) => params.push(("cursor", position.to_string())),
        }
        if next.skip > 0 {
            params.push(("offset", next.skip.to_string()));
        }
        if let Ok(query) = serde_urlencoded::to_string(&params) {
            response.insert_header((
                header::LINK,
                format!("<{}?{query}>; rel=\"next\"", request.path()),
            ));
        }
    }
    response.json(items)
}
