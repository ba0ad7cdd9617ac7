//! `docs/openapi.yaml` documents exactly the admin routes the template declares and the
//! admin-api function serves, and every operation documents its error responses.

use std::collections::BTreeSet;

use rollcall_tests::{template, workspace_root};
use serde_yaml_ng::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("docs/openapi.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn documented_routes(document: &Value) -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_mapping().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert(format!(
                    "{} {}",
                    method.to_uppercase(),
                    path.as_str().unwrap()
                ));
            }
        }
    }
    routes
}

#[test]
fn openapi_matches_served_routes() {
    let documented = documented_routes(&document());
    let served: BTreeSet<String> = admin_api::ROUTES.iter().map(|r| r.to_string()).collect();
    let declared: BTreeSet<String> = template().functions["AdminApiFunction"]
        .http_routes
        .iter()
        .map(|route| format!("{} {}", route.method, route.path))
        .collect();

    assert_eq!(
        documented, served,
        "docs/openapi.yaml and admin_api::ROUTES differ"
    );
    assert_eq!(
        declared, served,
        "the template and admin_api::ROUTES differ"
    );
}

#[test]
fn admin_routes_require_the_authorizer() {
    for route in &template().functions["AdminApiFunction"].http_routes {
        assert_eq!(
            route.authorizer.as_deref(),
            Some("AdminJwt"),
            "{} {}",
            route.method,
            route.path
        );
    }
}

#[test]
fn operations_document_errors() {
    let document = document();
    assert_eq!(document["openapi"].as_str(), Some("3.1.0"));
    for (path, item) in document["paths"].as_mapping().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let responses = operation["responses"].as_mapping().unwrap();
            for status in ["401", "403"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {} lacks {status}",
                    path.as_str().unwrap()
                );
            }
            assert!(
                operation["operationId"].is_string(),
                "{method} {}",
                path.as_str().unwrap()
            );
        }
    }
}
