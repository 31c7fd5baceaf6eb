//! The authorization matrix (API.md, "Conventions" and "Routes"): every route the
//! declaration has, called end to end through the gateway by six kinds of caller, each
//! answered with the status API.md gives it. The table is printed, then every cell is
//! asserted; a declared route without a row fails the test, so a new route cannot be left out.
//!
//! The callers: no token, a forged token (signed with another key), an expired token, the
//! owner of the resource the path names, another signed-in customer, and an admin. The
//! owner has a profile and a confirmed order of a product the admin created; the other
//! customer has no profile. A call that changes something is made on a resource of its own
//! where a later cell would otherwise see the change (the deletes), or in an order that
//! keeps each answer the same (another customer's cancel before the owner's).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use e2e::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

mod saga_support;
use saga_support::{place_lines, wait_for};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NoToken,
    ForgedToken,
    ExpiredToken,
    Owner,
    Other,
    Admin,
}

const KINDS: [Kind; 6] = [
    Kind::NoToken,
    Kind::ForgedToken,
    Kind::ExpiredToken,
    Kind::Other,
    Kind::Owner,
    Kind::Admin,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::NoToken => "no token",
            Kind::ForgedToken => "forged token",
            Kind::ExpiredToken => "expired token",
            Kind::Owner => "owner",
            Kind::Other => "another user",
            Kind::Admin => "admin",
        }
    }
}

/// The people and things the calls name.
struct World {
    owner: String,
    other: String,
    admin: String,
    sku: String,
    order_id: String,
}

impl World {
    async fn new() -> Self {
        let owner = fresh_user_id();
        let admin = fresh_admin_id();
        register(&owner).await;
        let sku = fresh_sku("AUTHZ");
        create_product(&sku, "12.00", "EUR", 1000).await;
        let order_id = place_lines(&owner, &[(&sku, 1)], "tok_visa").await;
        let o = wait_for(&owner, &order_id, &["CONFIRMED", "REJECTED"]).await;
        assert_eq!(o["status"], "CONFIRMED", "{o}");
        Self {
            owner,
            other: fresh_user_id(),
            admin,
            sku,
            order_id,
        }
    }

    /// The bearer token of `kind` (the owner's for an owner), none for `NoToken`.
    fn bearer(&self, kind: Kind, owner: &str) -> Option<String> {
        match kind {
            Kind::NoToken => None,
            Kind::ForgedToken => Some(sign(&claims(owner, false), "not-the-gateways-key")),
            Kind::ExpiredToken => {
                let mut c = claims(owner, false);
                c["iat"] = json!(chrono::Utc::now().timestamp() - 7200);
                c["exp"] = json!(chrono::Utc::now().timestamp() - 60);
                let secret = std::env::var("LOCAL_JWT_SECRET")
                    .unwrap_or_else(|_| "local-development-only".into());
                Some(sign(&c, &secret))
            }
            Kind::Owner => Some(token(owner, false)),
            Kind::Other => Some(token(&self.other, false)),
            Kind::Admin => Some(token(&self.admin, true)),
        }
    }
}

async fn register(user: &str) {
    let res = http()
        .post(format!("{}/users", api_url()))
        .bearer_auth(token(user, false))
        .json(&json!({"email": format!("{user}@example.com"), "name": "Owner", "country": "DE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// The status each caller gets on each route (API.md): (owner, another user, admin). A
/// public route answers everyone; any other route answers 401 to a caller without a valid
/// token.
const ROWS: &[(&str, (u16, u16, u16))] = &[
    ("GET /health", (200, 200, 200)),
    // For itself: the owner has a profile; the other customer and the admin do not.
    ("POST /users", (409, 201, 201)),
    ("GET /users/{user_id}", (200, 403, 200)),
    ("PATCH /users/{user_id}", (200, 403, 200)),
    // The owner and the admin each erase a profile made for their call.
    ("DELETE /users/{user_id}", (204, 403, 204)),
    ("PUT /products/{sku}", (403, 403, 200)),
    ("GET /products/{sku}", (200, 200, 200)),
    ("GET /products", (200, 200, 200)),
    ("POST /products/{sku}/stock", (403, 403, 200)),
    ("POST /orders", (202, 202, 202)),
    ("GET /orders/{order_id}", (200, 403, 200)),
    ("GET /orders", (200, 200, 200)),
    // The other customer first; then the owner cancels, and asking again is harmless.
    ("POST /orders/{order_id}/cancel", (202, 403, 202)),
    ("GET /orders/{order_id}/payment", (200, 403, 200)),
    ("GET /orders/{order_id}/risk", (403, 403, 200)),
    // Admins only; the order is not under review.
    ("POST /orders/{order_id}/review", (403, 403, 409)),
    ("GET /analytics/sales", (403, 403, 200)),
];

fn expected(route: &str) -> Option<(u16, u16, u16)> {
    ROWS.iter().find(|(r, _)| *r == route).map(|(_, e)| *e)
}

/// Calls `route` as `kind`; the status.
async fn call(world: &World, route: &str, public: bool, kind: Kind) -> u16 {
    let (method, template) = route.split_once(' ').unwrap();
    // Whose resource the path names: the world's owner, or (for an erasure) a profile made
    // for this call, so each erasure finds one.
    let mut owner = world.owner.clone();
    if route == "DELETE /users/{user_id}" && matches!(kind, Kind::Owner | Kind::Admin) {
        owner = fresh_user_id();
        register(&owner).await;
    }
    let path = template
        .replace("{user_id}", &owner)
        .replace("{sku}", &world.sku)
        .replace("{order_id}", &world.order_id);
    let query = match route {
        "GET /analytics/sales" => "?from=2026-01-01&to=2026-01-31",
        "GET /products" | "GET /orders" => "?limit=5",
        _ => "",
    };
    let body = match route {
        "POST /users" => {
            Some(json!({"email": "who@example.com", "name": "Someone", "country": "GB"}))
        }
        "PATCH /users/{user_id}" => Some(json!({"name": "Renamed"})),
        "PUT /products/{sku}" => {
            Some(json!({"name": "Mug", "price": {"amount": "12.00", "currency": "EUR"}}))
        }
        "POST /products/{sku}/stock" => Some(json!({"delta": 1})),
        "POST /orders" => Some(order_body(&[(&world.sku, 1)], "tok_visa")),
        "POST /orders/{order_id}/review" => Some(json!({"decision": "approve"})),
        _ => None,
    };
    let mut req = http().request(
        method.parse().unwrap(),
        format!("{}{path}{query}", api_url()),
    );
    if let Some(bearer) = world.bearer(kind, &owner) {
        req = req.bearer_auth(bearer);
    }
    if route == "POST /orders" {
        req = req.header("idempotency-key", ulid::Ulid::new().to_string());
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if status == 401 && !public {
        // The authorizer's answer is a problem document too.
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["status"], 401, "{route}: {problem}");
    }
    status
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_api_md_says() {
    let world = World::new().await;
    let decl = declaration();
    let mut routes: Vec<(String, bool)> = decl["functions"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|spec| {
            let route = spec.get("route")?.as_str()?.to_owned();
            Some((
                route,
                spec.get("auth").and_then(Value::as_str) == Some("none"),
            ))
        })
        .collect();
    routes.sort();
    let missing: Vec<&str> = routes
        .iter()
        .filter(|(r, _)| expected(r).is_none())
        .map(|(r, _)| r.as_str())
        .collect();
    assert!(missing.is_empty(), "routes without a row: {missing:?}");

    let mut table = vec![format!("| route | {} |", KINDS.map(Kind::name).join(" | "))];
    table.push(format!("|---|{}", "---:|".repeat(KINDS.len())));
    let mut wrong = Vec::new();
    for (route, public) in &routes {
        let (owner, other, admin) = expected(route).unwrap();
        let mut row = format!("| `{route}` |");
        for kind in KINDS {
            let want = match kind {
                _ if *public => owner,
                Kind::NoToken | Kind::ForgedToken | Kind::ExpiredToken => 401,
                Kind::Owner => owner,
                Kind::Other => other,
                Kind::Admin => admin,
            };
            let got = call(&world, route, *public, kind).await;
            if got == want {
                row.push_str(&format!(" {got} |"));
            } else {
                row.push_str(&format!(" **{got}** (API.md: {want}) |"));
                wrong.push(format!(
                    "{route} as {}: {got}, API.md says {want}",
                    kind.name()
                ));
            }
        }
        table.push(row);
    }
    println!(
        "\nAuthorization matrix ({} routes):\n{}\n",
        routes.len(),
        table.join("\n")
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    // And no row names a route that is not declared.
    let declared: BTreeSet<&str> = routes.iter().map(|(r, _)| r.as_str()).collect();
    let rows: BTreeSet<&str> = ROWS.iter().map(|(r, _)| *r).collect();
    assert_eq!(declared, rows);
}
