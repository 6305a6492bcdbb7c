use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use service_support::params::page_limit;
use utoipa::IntoParams;

use super::ApiError;
use crate::store::{Page, Start};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// Deeper pages are reached with `cursor`: skipping costs what is skipped on every server.
pub const MAX_OFFSET: u64 = 10_000;

/// `limit` (1..=500, default 50), and where the page starts: `cursor` (from the previous page's
/// `Link: rel="next"`) or `offset` (0 to 10 000, default 0), as given in the query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 500 (default 50). A full page answers `Link: <…>; rel="next"`.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// Items to skip, 0 to 10 000 (default 0); deeper pages are reached with `cursor`.
    #[param(value_type = Option<u64>)]
    offset: Option<String>,
    /// Where the page starts, as the previous page's `Link: rel="next"` gives it; opaque, not
    /// to be combined with `offset`.
    cursor: Option<String>,
}

/// How a listing reads the `cursor` its `Link` headers give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    /// An order's list position.
    Position,
    /// A customer's email.
    Email,
}

impl PageParams {
    /// The page asked for, in a listing whose cursors are of `kind`.
    pub fn page(&self, kind: CursorKind) -> Result<Page, ApiError> {
        let limit =
            page_limit(self.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT).map_err(|message| {
                ApiError::InvalidParameter {
                    name: "limit",
                    message,
                }
            })?;
        let invalid_cursor = |cursor: &str| ApiError::InvalidParameter {
            name: "cursor",
            message: format!("must be a cursor from a previous page's Link header, got {cursor:?}"),
        };
        let start = match (&self.offset, &self.cursor) {
            (Some(_), Some(_)) => {
                return Err(ApiError::InvalidParameter {
                    name: "cursor",
                    message: "cannot be combined with offset".to_owned(),
                })
            }
            (None, Some(cursor)) => match kind {
                CursorKind::Position => match cursor.parse::<i64>() {
                    Ok(position) if position > 0 => Start::AfterPosition(position),
                    _ => return Err(invalid_cursor(cursor)),
                },
                CursorKind::Email if !cursor.is_empty() && !cursor.chars().any(char::is_control) => {
                    Start::AfterEmail(cursor.clone())
                }
                CursorKind::Email => return Err(invalid_cursor(cursor)),
            },
            (Some(text), None) => match text.parse::<u64>() {
                Ok(0) => Start::First,
                Ok(offset) if offset <= MAX_OFFSET => Start::Skip(offset),
                _ => {
                    return Err(ApiError::InvalidParameter {
                        name: "offset",
                        message: format!(
                            "must be a whole number from 0 to {MAX_OFFSET} (use cursor for deeper pages), got {text:?}"
                        ),
                    })
                }
            },
            (None, None) => Start::First,
        };
        Ok(Page { limit, start })
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
        match next {
            Start::First => {}
            Start::Skip(offset) => params.push(("offset", offset.to_string())),
            Start::AfterPosition(position) => params.push(("cursor", position.to_string())),
            Start::AfterEmail(email) => params.push(("cursor", email)),
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
