use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use service_support::params::page_limit;
use utoipa::IntoParams;

use super::ApiError;
use crate::store::Page;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// `limit` (1..=500, default 50) and `offset` (default 0), as given in the query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 500 (default 50). A full page answers `Link: <…>; rel="next"`.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// Items to skip (default 0).
    #[param(value_type = Option<u64>)]
    offset: Option<String>,
}

impl TryFrom<&PageParams> for Page {
    type Error = ApiError;

    fn try_from(params: &PageParams) -> Result<Self, Self::Error> {
        let limit =
            page_limit(params.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT).map_err(|message| {
                ApiError::InvalidParameter {
                    name: "limit",
                    message,
                }
            })?;
        let offset = match &params.offset {
            None => 0,
            Some(text) => text.parse().map_err(|_| ApiError::InvalidParameter {
                name: "offset",
                message: format!("must be a whole number from 0, got {text:?}"),
            })?,
        };
        Ok(Page { limit, offset })
    }
}

/// A JSON array of `items`; when the page is full, a `Link: <…>; rel="next"` header points to
/// the next one, keeping the other query parameters.
pub fn page_response<T: Serialize>(
    request: &HttpRequest,
    page: Page,
    extra_params: &[(&str, &str)],
    items: Vec<T>,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if items.len() == page.limit as usize {
        let mut params: Vec<(&str, String)> = extra_params
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect();
        params.push(("limit", page.limit.to_string()));
        params.push(("offset", (page.offset + u64::from(page.limit)).to_string()));
        if let Ok(query) = serde_urlencoded::to_string(&params) {
            response.insert_header((
                header::LINK,
                format!("<{}?{query}>; rel=\"next\"", request.path()),
            ));
        }
    }
    response.json(items)
}
