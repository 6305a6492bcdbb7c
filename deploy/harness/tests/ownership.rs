//! Ownership through the gateway, auth on: an order belongs to the subject of the token that
//! placed it, a customer to an owner, and every route shows and changes only the caller's own,
//! except that `orders:read-all` reads everybody's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation should panic
use std::time::Duration;

use harness::{test_auth_environment, test_token_issuer, ServiceStack};
use serde_json::{json, Value};
use service_support::auth::{READ_ALL_SCOPE, READ_SCOPE, WRITE_SCOPE};
use uuid::Uuid;

/// A caller of the API through the gateway, with its own token.
struct Caller<'a> {
    stack: &'a ServiceStack,
    client: reqwest::Client,
    token: String,
}

impl<'a> Caller<'a> {
    fn new(stack: &'a ServiceStack, subject: &str, scopes: &[&str]) -> Self {
        Self {
            stack,
            client: harness::http_client(),
            token: test_token_issuer()
                .issue(subject, scopes, Duration::from_secs(3600))
                .unwrap(),
        }
    }

    /// Places an order for `email` named `last_name`; its id and consistency token.
    async fn place(&self, email: &str, last_name: &str) -> (String, String) {
        let answer = self
            .client
            .post(self.stack.gateway.url("/orders"))
            .bearer_auth(&self.token)
            .json(&json!({
                "description": "Tea", "quantity": 2, "firstName": "Ada",
                "lastName": last_name, "email": email,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        let body: Value = answer.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["consistencyToken"].as_str().unwrap().to_owned(),
        )
    }

    async fn cancel(&self, id: &str) -> reqwest::Response {
        self.client
            .post(self.stack.gateway.url(&format!("/orders/{id}/cancel")))
            .bearer_auth(&self.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
    }

    /// `GET path` (a consistency token in it makes the read wait for that write): status and
    /// body.
    async fn get(&self, path: &str) -> (u16, Value) {
        let answer = self
            .client
            .get(self.stack.gateway.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.json().await.unwrap())
    }

    /// A listing's items as (owner, id or email).
    async fn list(&self, path: &str) -> Vec<(String, String)> {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|item| {
                let name = item.get("id").unwrap_or(&item["email"]);
                (
                    item["owner"].as_str().unwrap().to_owned(),
                    name.as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(owner, name)| ((*owner).to_owned(), (*name).to_owned()))
        .collect()
}

#[tokio::test]
async fn each_caller_sees_and_changes_only_its_own_orders_and_customers() {
    let stack = ServiceStack::start_with(&test_auth_environment()).await;
    let alice = Caller::new(&stack, "alice", &[READ_SCOPE, WRITE_SCOPE]);
    let bob = Caller::new(&stack, "bob", &[READ_SCOPE, WRITE_SCOPE]);
    let operator = Caller::new(&stack, "operator", &[READ_SCOPE, READ_ALL_SCOPE]);
    let ada = "ada@example.com";

    let (alices, alices_token) = alice.place(ada, "Lovelace").await;
    let (bobs_ada, bobs_ada_token) = bob.place(ada, "Byron").await;
    let (bobs_own, bobs_own_token) = bob.place("bob@example.com", "Bobbins").await;
    for (caller, id, token) in [
        (&alice, &alices, &alices_token),
        (&bob, &bobs_ada, &bobs_ada_token),
        (&bob, &bobs_own, &bobs_own_token),
    ] {
        let (status, order) = caller
            .get(&format!("/orders/{id}?consistencyToken={token}"))
            .await;
        assert_eq!(status, 200, "{order}");
    }

    // GET /orders/{id}: another's order answers as no order does.
    let (status, not_found) = alice.get(&format!("/orders/{bobs_ada}")).await;
    assert_eq!(status, 404);
    let (_, unknown) = alice.get(&format!("/orders/{}", Uuid::now_v7())).await;
    assert_eq!(not_found, unknown);
    let (status, order) = bob.get(&format!("/orders/{bobs_ada}")).await;
    assert_eq!((status, &order["owner"]), (200, &json!("bob")));
    assert_eq!(order["customer"]["lastName"], "Byron");
    let (status, order) = operator.get(&format!("/orders/{alices}")).await;
    assert_eq!((status, &order["owner"]), (200, &json!("alice")));

    // GET /orders, and with ?email=.
    assert_eq!(alice.list("/orders").await, pairs(&[("alice", &alices)]));
    assert_eq!(
        bob.list("/orders").await,
        pairs(&[("bob", &bobs_own), ("bob", &bobs_ada)])
    );
    let mut everybody = operator.list("/orders").await;
    everybody.sort();
    let mut expected = pairs(&[("alice", &alices), ("bob", &bobs_ada), ("bob", &bobs_own)]);
    expected.sort();
    assert_eq!(everybody, expected);
    assert_eq!(
        alice.list("/orders?email=ada%40example.com").await,
        pairs(&[("alice", &alices)])
    );
    assert_eq!(
        bob.list("/orders?email=ada%40example.com").await,
        pairs(&[("bob", &bobs_ada)])
    );

    // GET /customers/{email} and its orders: one email, two customers; Bob's order did not
    // rename Alice's.
    let (status, customer) = alice.get(&format!("/customers/{ada}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &customer["owner"],
            &customer["lastName"],
            &customer["orderCount"]
        ),
        (&json!("alice"), &json!("Lovelace"), &json!(1))
    );
    let (_, customer) = bob.get(&format!("/customers/{ada}")).await;
    assert_eq!(customer["lastName"], "Byron");
    assert_eq!(
        alice.get("/customers/bob@example.com").await.0,
        404,
        "another's customer"
    );
    assert_eq!(alice.get("/customers/bob@example.com/orders").await.0, 404);
    assert_eq!(
        alice.list(&format!("/customers/{ada}/orders")).await,
        pairs(&[("alice", &alices)])
    );

    // GET /customers.
    assert_eq!(alice.list("/customers").await, pairs(&[("alice", ada)]));
    assert_eq!(
        bob.list("/customers").await,
        pairs(&[("bob", ada), ("bob", "bob@example.com")])
    );
    let mut customers = operator.list("/customers").await;
    customers.sort();
    assert_eq!(
        customers,
        pairs(&[("alice", ada), ("bob", ada), ("bob", "bob@example.com")])
    );

    // ?owner= names whose: the caller's own always, another's only with orders:read-all.
    assert_eq!(
        alice.list("/orders?owner=alice").await,
        pairs(&[("alice", &alices)])
    );
    let (status, refused) = alice.get(&format!("/customers/{ada}?owner=bob")).await;
    assert_eq!(status, 403);
    assert_eq!(refused["error"], "insufficient_scope");
    assert_eq!(alice.get("/orders?owner=bob").await.0, 403);
    let (_, customer) = operator.get(&format!("/customers/{ada}?owner=bob")).await;
    assert_eq!(customer["lastName"], "Byron");
    assert_eq!(
        operator.list("/orders?owner=bob&limit=1").await,
        pairs(&[("bob", &bobs_own)])
    );
    let next = operator
        .client
        .get(stack.gateway.url("/orders?owner=bob&limit=1"))
        .bearer_auth(&operator.token)
        .send()
        .await
        .unwrap();
    let link = next.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("owner=bob"),
        "the next page keeps the owner: {link}"
    );
    assert_eq!(
        operator
            .list(&format!("/customers/{ada}/orders?owner=alice"))
            .await,
        pairs(&[("alice", &alices)])
    );
    assert_eq!(
        operator.list("/customers?owner=bob").await,
        pairs(&[("bob", ada), ("bob", "bob@example.com")])
    );

    // POST /orders/{id}/cancel: only the owner; reading everybody's does not let one write.
    let refused = alice.cancel(&bobs_ada).await;
    assert_eq!(refused.status(), 404);
    assert_eq!(operator.cancel(&bobs_ada).await.status(), 403);
    let cancelled = bob.cancel(&bobs_ada).await;
    assert_eq!(cancelled.status(), 202);
    let token = cancelled.json::<Value>().await.unwrap()["consistencyToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, customer) = bob
        .get(&format!("/customers/{ada}?consistencyToken={token}"))
        .await;
    assert_eq!(customer["cancelledOrderCount"], 1);
    let (_, customer) = alice.get(&format!("/customers/{ada}")).await;
    assert_eq!(customer["cancelledOrderCount"], 0);
    let (_, order) = alice.get(&format!("/orders/{alices}")).await;
    assert_eq!(order["status"], "placed");
}
