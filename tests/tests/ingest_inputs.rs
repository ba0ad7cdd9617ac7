//! The status and problem details ingest returns for every kind of bad input, over HTTP through the local runner, and
//! that nothing from a rejected request reaches storage.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use ingest::{Config, Ingest};
use reqwest::StatusCode;
use rollcall::aws::Clients;
use rollcall::table::{self, ExtensionKeyItem, ProfileItem};
use rollcall_tests::{TestStack, heartbeat, login, telemetry_body};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    authorization: Option<String>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_rejected_with_reason() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("acme").await;
    let revoked_key = stack.seed_tenant("revoked").await;
    let revoked = rollcall::extension_key::parse(&revoked_key).unwrap();
    let mut item: ExtensionKeyItem = stack
        .item("revoked", &table::extension_key_sk(&revoked.key_id))
        .await
        .unwrap();
    item.revoked_at = Some(Utc::now().to_rfc3339());
    stack.store.put_extension_key(&item).await.unwrap();
    let runner = stack.start_runner().await;

    let bearer = |token: &str| Some(format!("Bearer {token}"));
    let valid = json_bytes(&telemetry_body(
        "rejected-1",
        None,
        vec![heartbeat("e-1", -10)],
    ));
    let wrong_secret = format!("{}x", &key[..key.len() - 1]);
    let unknown_key_id = {
        let mut parts: Vec<&str> = key.splitn(3, '.').collect();
        parts[1] = "0000000000000000";
        parts.join(".")
    };
    let oversized = {
        let mut body = telemetry_body("rejected-2", None, vec![heartbeat("e-1", -10)]);
        body["padding"] = json!("x".repeat(300 * 1024));
        json_bytes(&body)
    };
    let too_many = json_bytes(&telemetry_body(
        "rejected-3",
        None,
        (0..101)
            .map(|i| heartbeat(&format!("e-{i}"), -10))
            .collect(),
    ));
    let all_invalid = json_bytes(&telemetry_body(
        "rejected-4",
        None,
        vec![json!({"id": "e-1", "time": "not a time", "type": "heartbeat"})],
    ));

    let cases = vec![
        Case {
            name: "no key",
            authorization: None,
            content_type: Some("application/json"),
            body: valid.clone(),
            status: StatusCode::UNAUTHORIZED,
        },
        Case {
            name: "basic scheme",
            authorization: Some("Basic dXNlcjpwYXNz".into()),
            content_type: Some("application/json"),
            body: valid.clone(),
            status: StatusCode::UNAUTHORIZED,
        },
        Case {
            name: "malformed key",
            authorization: bearer("not-a-key"),
            content_type: Some("application/json"),
            body: valid.clone(),
            status: StatusCode::UNAUTHORIZED,
        },
        Case {
            name: "wrong secret",
            authorization: bearer(&wrong_secret),
            content_type: Some("application/json"),
            body: valid.clone(),
            status: StatusCode::UNAUTHORIZED,
        },
        Case {
            name: "unknown key id",
            authorization: bearer(&unknown_key_id),
            content_type: Some("application/json"),
            body: valid.clone(),
            status: StatusCode::UNAUTHORIZED,
        },
        Case {
            name: "revoked key",
            authorization: bearer(&revoked_key),
            content_type: Some("application/json"),
            body: valid.clone(),
            status: StatusCode::UNAUTHORIZED,
        },
        Case {
            name: "oversized body",
            authorization: bearer(&key),
            content_type: Some("application/json"),
            body: oversized,
            status: StatusCode::PAYLOAD_TOO_LARGE,
        },
        Case {
            name: "101 events",
            authorization: bearer(&key),
            content_type: Some("application/json"),
            body: too_many,
            status: StatusCode::PAYLOAD_TOO_LARGE,
        },
        Case {
            name: "malformed JSON",
            authorization: bearer(&key),
            content_type: Some("application/json"),
            body: b"{\"schema_version\": 1,".to_vec(),
            status: StatusCode::BAD_REQUEST,
        },
        Case {
            name: "JSON array",
            authorization: bearer(&key),
            content_type: Some("application/json"),
            body: b"[]".to_vec(),
            status: StatusCode::BAD_REQUEST,
        },
        Case {
            name: "empty body",
            authorization: bearer(&key),
            content_type: Some("application/json"),
            body: Vec::new(),
            status: StatusCode::BAD_REQUEST,
        },
        Case {
            name: "XML content type",
            authorization: bearer(&key),
            content_type: Some("application/xml"),
            body: valid.clone(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
        Case {
            name: "no content type",
            authorization: bearer(&key),
            content_type: None,
            body: valid.clone(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        },
        Case {
            name: "every event invalid",
            authorization: bearer(&key),
            content_type: Some("application/json"),
            body: all_invalid,
            status: StatusCode::BAD_REQUEST,
        },
    ];

    let client = reqwest::Client::new();
    for case in cases {
        let mut request = client
            .post(format!("{}/v1/telemetry", runner.url()))
            .body(case.body);
        if let Some(authorization) = &case.authorization {
            request = request.header("authorization", authorization);
        }
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), case.status, "{}", case.name);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert_eq!(content_type, "application/problem+json", "{}", case.name);
        if case.status == StatusCode::UNAUTHORIZED {
            assert!(
                response.headers().contains_key("www-authenticate"),
                "{}",
                case.name
            );
        }
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], case.status.as_u16(), "{}", case.name);
        assert!(
            !problem["detail"].as_str().unwrap_or("").is_empty(),
            "{}: a problem says why",
            case.name
        );
        assert!(
            !problem.to_string().contains(&key),
            "{}: the key is never echoed",
            case.name
        );
    }

    let get = client
        .get(format!("{}/v1/telemetry", runner.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.status(),
        StatusCode::NOT_FOUND,
        "no GET route, as in API Gateway"
    );

    runner
        .wait_until_idle(&["TelemetryQueue"], Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        stack.items("acme", "PROFILE#").await.is_empty(),
        "rejected requests stored nothing"
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_events_listed_valid_accepted() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("acme").await;
    let runner = stack.start_runner().await;
    let body = telemetry_body(
        "install-1",
        None,
        vec![
            login("e-1", -60, "github.com", "a@example.com", "password"),
            json!({"id": "e-2", "time": rollcall_tests::time(-60), "type": "login", "app": {"domain": "github.com"}, "login_method": "carrier pigeon"}),
            json!({"id": "e-3", "time": rollcall_tests::time(3_600), "type": "heartbeat"}),
            login("e-1", -60, "github.com", "a@example.com", "password"),
        ],
    );

    // sendBeacon sends text/plain.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/telemetry", runner.url()))
        .bearer_auth(&key)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"], 2);
    assert_eq!(answer["duplicates"], 1);
    assert_eq!(answer["errors"][0]["index"], 1);
    assert_eq!(answer["errors"][0]["field"], "login_method");
    assert_eq!(answer["errors"][1]["index"], 2);
    assert_eq!(answer["errors"][1]["field"], "time");

    runner
        .wait_until_idle(&["TelemetryQueue"], Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(stack.items("acme", "EVENT#").await.len(), 1);
    runner.stop().await;
}

/// Builds a payload 2.0 event for the ingest route.
fn api_event(key: &str, content_type: &str, body: &str, base64: bool) -> String {
    json!({
        "version": "2.0",
        "routeKey": "POST /v1/telemetry",
        "rawPath": "/v1/telemetry",
        "rawQueryString": "",
        "headers": {"authorization": format!("Bearer {key}"), "content-type": content_type},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": "POST", "path": "/v1/telemetry", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "test"},
            "requestId": "req-1", "routeKey": "POST /v1/telemetry", "stage": "$default",
            "time": "04/Dec/2026:09:00:00 +0000", "timeEpoch": 1764838800000_i64
        },
        "body": if base64 { STANDARD.encode(body) } else { body.to_owned() },
        "isBase64Encoded": base64,
    })
    .to_string()
}

#[tokio::test]
async fn base64_body_parses_like_json() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("acme").await;
    let ingest = Ingest::new(
        &Clients::new(&stack.sdk),
        Config::from_lookup(&stack.environment("IngestFunction")).unwrap(),
    );
    let body = telemetry_body("install-1", None, vec![heartbeat("e-1", -10)]).to_string();

    for content_type in ["application/json", "text/plain"] {
        let request =
            lambda_http::request::from_str(&api_event(&key, content_type, &body, true)).unwrap();
        let response = ingest.handle(request).await;
        assert_eq!(response.status().as_u16(), 202, "{content_type}");
    }
}

#[tokio::test]
async fn queue_outage_answers_503() {
    let stack = TestStack::create().await;
    let key = stack.seed_tenant("acme").await;
    let mut environment = stack.environment("IngestFunction");
    let missing_queue =
        environment["TELEMETRY_QUEUE_URL"].replace("TelemetryQueue", "MissingQueue");
    environment.insert("TELEMETRY_QUEUE_URL".into(), missing_queue);
    let ingest = Ingest::new(
        &Clients::new(&stack.sdk),
        Config::from_lookup(&environment).unwrap(),
    );
    let body = telemetry_body("install-1", None, vec![heartbeat("e-1", -10)]).to_string();

    let response = ingest
        .handle(
            lambda_http::request::from_str(&api_event(&key, "application/json", &body, false))
                .unwrap(),
        )
        .await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    assert!(
        stack
            .item::<ProfileItem>("acme", "PROFILE#install-1")
            .await
            .is_none()
    );
}
