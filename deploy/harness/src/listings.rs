//! Walking the query side's listings page by page, against what PostgreSQL says they hold.

use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::Value;

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    key: String,
}

fn keys(conn: &mut PgConnection, query: &str, bind: Option<&str>) -> Vec<String> {
    let rows: Vec<Key> = match bind {
        Some(value) => diesel::sql_query(query).bind::<Text, _>(value).load(conn),
        None => diesel::sql_query(query).load(conn),
    }
    .unwrap();
    rows.into_iter().map(|row| row.key).collect()
}

/// The items of each page of the listing at `path` of the server at `base`
/// (`http://host:port`), following `Link: <path>; rel="next"` to the end, in order. A page
/// that does not answer 200 with a JSON array, or a `Link` that names no page, ends the walk
/// with an error naming that page.
pub async fn listing_pages(
    client: &reqwest::Client,
    base: &str,
    path: &str,
) -> Result<Vec<Vec<Value>>, String> {
    let mut pages = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next {
        let url = format!("{base}{path}");
        let response = client
            .get(&url)
            .send()
            .await
            .map_err(|error| format!("{url}: {error}"))?;
        if response.status() != 200 {
            return Err(format!("{url}: {}", response.status()));
        }
        next = match response.headers().get("link") {
            None => None,
            Some(link) => {
                Some(next_path(link).ok_or_else(|| format!("{url}: Link {link:?} names no page"))?)
            }
        };
        pages.push(
            response
                .json()
                .await
                .map_err(|error| format!("{url}: {error}"))?,
        );
    }
    Ok(pages)
}

/// The `<path>` of a `Link: <path>; rel="next"` header.
fn next_path(link: &reqwest::header::HeaderValue) -> Option<String> {
    let link = link.to_str().ok()?;
    Some(link[link.find('<')? + 1..link.find('>')?].to_owned())
}

/// The ids (orders) or emails (customers) of each page of the listing at `path` of the query
/// side at `base` (`http://host:port`), following `Link: rel="next"` to the end, in order.
pub async fn walk_pages(client: &reqwest::Client, base: &str, path: &str) -> Vec<Vec<String>> {
    listing_pages(client, base, path)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .iter()
        .map(|page| {
            page.iter()
                .map(|item| {
                    item["id"]
                        .as_str()
                        .or(item["email"].as_str())
                        .unwrap()
                        .to_owned()
                })
                .collect()
        })
        .collect()
}

/// [`walk_pages`], the pages one after the other.
pub async fn walk_listing(client: &reqwest::Client, base: &str, path: &str) -> Vec<String> {
    walk_pages(client, base, path).await.concat()
}

/// Checks that every listing of the query side at `base` (auth off: the anonymous owner's),
/// walked `page_size` items a page, names exactly the orders and customers PostgreSQL at
/// `database_url` holds for that owner, each once and in order: orders newest first,
/// customers in the order of their first orders, and each customer's orders newest first.
pub async fn assert_listings_match_postgres(
    client: &reqwest::Client,
    base: &str,
    database_url: &str,
    page_size: usize,
) {
    let mut conn = PgConnection::establish(database_url).unwrap();
    let orders = keys(
        &mut conn,
        "SELECT id::text AS key FROM orders WHERE owner = '' ORDER BY owner_position DESC",
        None,
    );
    let listed = walk_listing(client, base, &format!("/orders?limit={page_size}")).await;
    assert_eq!(listed, orders, "{base}: the orders listing");
    let customers = keys(
        &mut conn,
        "SELECT email AS key FROM customers WHERE owner = '' ORDER BY owner_position",
        None,
    );
    let listed = walk_listing(client, base, &format!("/customers?limit={page_size}")).await;
    assert_eq!(listed, customers, "{base}: the customers listing");
    for email in &customers {
        let own = keys(
            &mut conn,
            "SELECT id::text AS key FROM orders WHERE owner = '' AND customer_email = $1
              ORDER BY customer_order DESC",
            Some(email),
        );
        let path = format!("/customers/{email}/orders?limit={page_size}");
        assert_eq!(
            walk_listing(client, base, &path).await,
            own,
            "{base}: {email}'s orders"
        );
    }
}
