//! The list reads, timed on an idle stack after the load: the first page of each listing and a
//! page deep in the orders listing, which should cost what the first one does.

use std::time::Instant;

use serde::Serialize;

use crate::stats::{Latencies, Summary};

/// Pages followed through `Link: rel="next"` to reach the deep page.
const DEEP_PAGES: usize = 20;
const PAGE_SIZE: u32 = 50;

/// Latencies of the idle list reads.
#[derive(Debug, Clone, Serialize)]
pub struct ListReads {
    pub orders_first_page: Summary,
    pub orders_deep_page: Option<Summary>,
    pub customers_first_page: Summary,
    pub customer_orders: Summary,
}

/// The `rel="next"` target of a response's `Link` header, as a path with its query.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    let start = link.find('<')? + 1;
    let end = link[start..].find('>')? + start;
    link[end..]
        .contains("rel=\"next\"")
        .then(|| link[start..end].to_owned())
}

async fn timed(client: &reqwest::Client, url: &str, times: usize) -> anyhow::Result<Summary> {
    let mut latencies = Latencies::default();
    for _ in 0..times {
        let started = Instant::now();
        let response = client.get(url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {url} answered {}",
            response.status()
        );
        response.bytes().await?;
        latencies.record(started.elapsed());
    }
    Ok(latencies.summary())
}

/// Times each list read `times` times, one request at a time. `customer` is an email with
/// orders in the read model.
pub async fn run(
    client: &reqwest::Client,
    gateway: &str,
    customer: &str,
    times: usize,
) -> anyhow::Result<ListReads> {
    let first = format!("{gateway}/orders?limit={PAGE_SIZE}");
    let mut deep = Some(first.clone());
    for _ in 0..DEEP_PAGES {
        let Some(url) = deep.take() else { break };
        let response = client.get(&url).send().await?;
        deep = next_link(response.headers()).map(|path| format!("{gateway}{path}"));
        response.bytes().await?;
    }
    let orders_deep_page = match deep {
        Some(url) => Some(timed(client, &url, times).await?),
        None => None,
    };
    Ok(ListReads {
        orders_first_page: timed(client, &first, times).await?,
        orders_deep_page,
        customers_first_page: timed(
            client,
            &format!("{gateway}/customers?limit={PAGE_SIZE}"),
            times,
        )
        .await?,
        customer_orders: timed(
            client,
            &format!("{gateway}/orders?limit={PAGE_SIZE}&email={customer}"),
            times,
        )
        .await?,
    })
}

impl ListReads {
    pub fn rows(&self) -> Vec<(String, Summary)> {
        let mut rows = vec![(
            "idle GET /orders first page".to_owned(),
            self.orders_first_page,
        )];
        if let Some(deep) = self.orders_deep_page {
            rows.push((format!("idle GET /orders page {}", DEEP_PAGES + 1), deep));
        }
        rows.push((
            "idle GET /customers first page".to_owned(),
            self.customers_first_page,
        ));
        rows.push((
            "idle GET /orders?email= first page".to_owned(),
            self.customer_orders,
        ));
        rows
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_link_is_read_from_the_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            reqwest::header::HeaderValue::from_static(
                "</orders?limit=50&cursor=p123>; rel=\"next\"",
            ),
        );
        assert_eq!(
            super::next_link(&headers).as_deref(),
            Some("/orders?limit=50&cursor=p123")
        );
        headers.insert(
            reqwest::header::LINK,
            reqwest::header::HeaderValue::from_static("</orders?limit=50>; rel=\"prev\""),
        );
        assert_eq!(super::next_link(&headers), None);
    }
}
