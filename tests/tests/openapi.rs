//! `docs/openapi.yaml` documents exactly the admin routes the template declares and the
//! admin-api and oauth-callback functions serve, and every operation documents its error
//! responses.

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

const ADMIN_FUNCTIONS: [&str; 2] = ["AdminApiFunction", "OAuthCallbackFunction"];

#[test]
fn openapi_matches_served_routes() {
    let documented: BTreeSet<String> = documented_routes(&document())
        .into_iter()
        .filter(|route| route.contains(" /v1/admin/"))
        .collect();
    let served: BTreeSet<String> = admin_api::ROUTES
        .iter()
        .chain(oauth_callback::ADMIN_ROUTES)
        .map(|r| r.to_string())
        .collect();
    let template = template();
    let declared: BTreeSet<String> = ADMIN_FUNCTIONS
        .iter()
        .flat_map(|f| &template.functions[*f].http_routes)
        .filter(|route| route.path.starts_with("/v1/admin/"))
        .map(|route| format!("{} {}", route.method, route.path))
        .collect();

    assert_eq!(
        documented, served,
        "docs/openapi.yaml and the functions' admin routes differ"
    );
    assert_eq!(
        declared, served,
        "the template and the functions' admin routes differ"
    );
    let callback: Vec<String> = template.functions["OAuthCallbackFunction"]
        .http_routes
        .iter()
        .filter(|route| !route.path.starts_with("/v1/admin/"))
        .map(|route| format!("{} {}", route.method, route.path))
        .collect();
    assert_eq!(callback, vec![oauth_callback::CALLBACK_ROUTE.to_owned()]);
    assert!(
        callback[0].starts_with("GET /v1/oauth/callback/"),
        "the public callback is the only route outside /v1/admin"
    );
}

#[test]
fn admin_routes_require_the_authorizer() {
    let template = template();
    let routes = ADMIN_FUNCTIONS
        .iter()
        .flat_map(|f| &template.functions[*f].http_routes)
        .filter(|route| route.path.starts_with("/v1/admin/"));
    for route in routes {
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
            let public = operation
                .get("security")
                .is_some_and(|s| s.as_sequence().is_some_and(|s| s.is_empty()));
            let statuses: &[&str] = if public { &["400"] } else { &["401", "403"] };
            for status in statuses {
                assert!(
                    responses.contains_key(*status),
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
