//! The mock providers page, authenticate, fail and count as the real ones do.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_idp::{
    AccountState, Credentials, Directory, Fault, FaultKind, MailRule, MockConfig, MockIdp,
    UnknownProvider,
};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn start(users: usize) -> MockIdp {
    let config = MockConfig {
        microsoft: Directory::generate("contoso.example", users, 1),
        google: Directory::generate("fabrikam.example", users, 2),
        okta: Directory::generate("initech.example", users, 3),
        credentials: Credentials::default(),
    };
    MockIdp::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("mock starts")
}

/// Returns a copy of the directory the mock serves for `provider`.
fn served_directory(mock: &MockIdp, provider: &str) -> Directory {
    mock.with_state(|state| state.directory(provider).clone())
        .unwrap()
}

fn fault(endpoint: &str, kind: FaultKind) -> Fault {
    Fault {
        endpoint: endpoint.into(),
        kind,
        count: 1,
    }
}

async fn post_form(url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn get(url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Returns the JSON body of `response`, failing unless its status is `status`.
async fn json_with_status(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "{}", response.url());
    response.json().await.unwrap()
}

/// Gets `url` and returns its JSON body, failing unless the status is 200.
async fn get_json(url: &str, token: &str) -> Value {
    json_with_status(get(url, token).await, StatusCode::OK).await
}

/// Gets `url` and returns its JSON error body, failing unless the status is `status`.
async fn get_error(url: &str, token: &str, status: StatusCode) -> Value {
    json_with_status(get(url, token).await, status).await
}

/// Posts a token request and returns its access token, failing unless the status is 200.
async fn access_token(url: &str, form: &[(&str, &str)]) -> String {
    let body = json_with_status(post_form(url, form).await, StatusCode::OK).await;
    body["access_token"].as_str().unwrap().to_owned()
}

fn microsoft_token_url(mock: &MockIdp) -> String {
    format!(
        "{}/{}/oauth2/v2.0/token",
        mock.url(),
        Credentials::default().microsoft_tenant
    )
}

async fn microsoft_token(mock: &MockIdp) -> String {
    let credentials = Credentials::default();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", credentials.microsoft_client_id.as_str()),
        (
            "client_secret",
            credentials.microsoft_client_secret.as_str(),
        ),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    access_token(&microsoft_token_url(mock), &form).await
}

async fn okta_token(mock: &MockIdp) -> String {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "okta-client"),
        ("client_secret", "okta-secret"),
        ("scope", "okta.users.read"),
    ];
    access_token(&format!("{}/oauth2/v1/token", mock.url()), &form).await
}

/// A refresh-token grant with the configured Google client and refresh token.
const GOOGLE_REFRESH_FORM: [(&str, &str); 4] = [
    ("grant_type", "refresh_token"),
    ("client_id", "google-client"),
    ("client_secret", "google-secret"),
    ("refresh_token", "google-refresh"),
];

async fn google_token(mock: &MockIdp) -> String {
    access_token(&format!("{}/token", mock.url()), &GOOGLE_REFRESH_FORM).await
}

/// Returns the URL of an Okta `Link` header with relation `rel`.
fn link(headers: &reqwest::header::HeaderMap, rel: &str) -> Option<String> {
    let suffix = format!("rel=\"{rel}\"");
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.ends_with(&suffix))
        .map(|v| {
            v.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
}

/// Follows `@odata.nextLink` from `url` and returns every page body.
async fn graph_pages(url: &str, token: &str) -> Vec<Value> {
    let mut url = url.to_owned();
    let mut pages = Vec::new();
    loop {
        let page = get_json(&url, token).await;
        let next = page["@odata.nextLink"].as_str().map(str::to_owned);
        pages.push(page);
        match next {
            Some(next) => url = next,
            None => return pages,
        }
    }
}

/// Follows `@odata.nextLink` from `url` and returns every item and the number of pages.
async fn graph_collect(url: &str, token: &str) -> (Vec<Value>, usize) {
    let pages = graph_pages(url, token).await;
    let items = pages
        .iter()
        .flat_map(|page| page["value"].as_array().unwrap().iter().cloned())
        .collect();
    (items, pages.len())
}

/// Follows Okta's `Link: rel="next"` headers from `url` and returns every item and the number of
/// pages. Every page must have a `self` link, with each link in its own header.
async fn okta_collect(url: &str, token: &str) -> (Vec<Value>, usize) {
    let mut url = url.to_owned();
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let response = get(&url, token).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        assert!(link(response.headers(), "self").is_some(), "GET {url}");
        for value in response.headers().get_all("link") {
            let value = value.to_str().unwrap();
            assert_eq!(value.matches("rel=").count(), 1, "one link per header");
        }
        let next = link(response.headers(), "next");
        let page: Vec<Value> = response.json().await.unwrap();
        pages += 1;
        items.extend(page);
        match next {
            Some(next) => url = next,
            None => return (items, pages),
        }
    }
}

/// Follows Google's `nextPageToken` from `url` and returns every item of the `field` list and
/// the number of pages.
async fn google_collect(url: &str, field: &str, token: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut page_token: Option<String> = None;
    loop {
        let mut page_url = url.to_owned();
        if let Some(page_token) = &page_token {
            page_url.push_str(&format!("&pageToken={page_token}"));
        }
        let page = get_json(&page_url, token).await;
        pages += 1;
        if let Some(list) = page[field].as_array() {
            items.extend(list.iter().cloned());
        }
        page_token = page["nextPageToken"].as_str().map(str::to_owned);
        if page_token.is_none() {
            return (items, pages);
        }
    }
}

/// A client that returns redirects instead of following them, as a test of a browser flow needs.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a redirect has a Location")
        .to_str()
        .unwrap()
        .to_owned()
}

fn query_of(url: &str) -> HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Builds a JWT-bearer assertion signed with a throwaway key, which the mock does not check.
fn assertion(mock: &MockIdp, subject: &str, scopes: &[&str], lifetime_seconds: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": Credentials::default().google_service_account,
        "sub": subject,
        "aud": format!("{}/token", mock.url()),
        "scope": scopes.join(" "),
        "iat": now - 10,
        "exp": now - 10 + lifetime_seconds,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(b"test-only-key").unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

async fn jwt_bearer(mock: &MockIdp, assertion: &str) -> reqwest::Response {
    post_form(
        &format!("{}/token", mock.url()),
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ],
    )
    .await
}

/// Returns a JWT-bearer access token for the delegated admin with the authorised scopes.
async fn delegated_token(mock: &MockIdp) -> String {
    let credentials = Credentials::default();
    let scopes: Vec<&str> = credentials
        .google_delegation_scopes
        .iter()
        .map(String::as_str)
        .collect();
    let assertion = assertion(mock, &credentials.google_delegated_admin, &scopes, 3600);
    let body = json_with_status(jwt_bearer(mock, &assertion).await, StatusCode::OK).await;
    body["access_token"].as_str().unwrap().to_owned()
}

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

const GOOGLE_REDIRECT: &str = "http://127.0.0.1:3000/v1/oauth/callback/google";
const MICROSOFT_REDIRECT: &str = "http://127.0.0.1:3000/v1/oauth/callback/microsoft";
const GOOGLE_SCOPE: &str =
    "openid email https://www.googleapis.com/auth/admin.directory.user.readonly";
const PKCE_VERIFIER: &str = "verifier-0123456789-abcdefghijklmnopqrstuvwxyz-ABC";

/// Sends a browser to Google's authorization endpoint and returns the response.
async fn google_authorize(
    mock: &MockIdp,
    redirect_uri: &str,
    challenge: &str,
) -> reqwest::Response {
    let url = Url::parse_with_params(
        &format!("{}/o/oauth2/v2/auth", mock.url()),
        [
            ("response_type", "code"),
            ("client_id", "google-client"),
            ("redirect_uri", redirect_uri),
            ("scope", GOOGLE_SCOPE),
            ("state", "st-42"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("access_type", "offline"),
            ("prompt", "consent"),
        ],
    )
    .unwrap();
    browser().get(url).send().await.unwrap()
}

async fn exchange_code(mock: &MockIdp, code: &str, verifier: &str) -> reqwest::Response {
    post_form(
        &format!("{}/token", mock.url()),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", GOOGLE_REDIRECT),
            ("client_id", "google-client"),
            ("client_secret", "google-secret"),
        ],
    )
    .await
}

async fn admin_consent(mock: &MockIdp, client_id: &str, redirect_uri: &str) -> reqwest::Response {
    let url = Url::parse_with_params(
        &format!("{}/organizations/v2.0/adminconsent", mock.url()),
        [
            ("client_id", client_id),
            ("scope", "https://graph.microsoft.com/.default"),
            ("redirect_uri", redirect_uri),
            ("state", "abc123"),
        ],
    )
    .unwrap();
    browser().get(url).send().await.unwrap()
}

/// Reads the `Date` and `X-Rate-Limit-Reset` headers of an Okta 429, as Unix seconds.
fn rate_limit_clock(response: &reqwest::Response) -> (i64, i64) {
    let headers = response.headers();
    let date = chrono::DateTime::parse_from_rfc2822(headers["date"].to_str().unwrap()).unwrap();
    let reset: i64 = headers["x-rate-limit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    (date.timestamp(), reset)
}

#[tokio::test]
async fn graph_users_page_with_next_link() {
    let mock = start(2_500).await;
    let token = microsoft_token(&mock).await;

    let (users, pages) = graph_collect(
        &format!(
            "{}/v1.0/users?$select=id,mail,userPrincipalName,accountEnabled,userType&$top=999",
            mock.url()
        ),
        &token,
    )
    .await;
    for user in &users {
        assert!(
            user.get("accountEnabled").is_some(),
            "selected properties are returned"
        );
        assert!(
            user.get("givenName").is_none(),
            "unselected properties are not"
        );
    }
    let ids: HashSet<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2_500);
    assert_eq!(pages, 3);
    assert_eq!(mock.request_counts()["microsoft.users"], 3);
}

#[tokio::test]
async fn graph_defaults_and_guests() {
    let mock = start(100).await;
    let token = microsoft_token(&mock).await;
    let page = get_json(&format!("{}/v1.0/users", mock.url()), &token).await;
    let users = page["value"].as_array().unwrap();
    assert!(
        users.iter().all(|u| u.get("accountEnabled").is_none()),
        "not returned unless selected"
    );
    assert!(
        users
            .iter()
            .any(|u| u["userPrincipalName"].as_str().unwrap().contains("#EXT#")),
        "guests have #EXT# names"
    );
    assert!(
        users.iter().any(|u| u["mail"].is_null()),
        "users without a mailbox have a null mail"
    );
}

#[tokio::test]
async fn graph_rejects_bad_tokens_and_sizes() {
    let mock = start(10).await;
    let users = format!("{}/v1.0/users", mock.url());
    get_error(&users, "made-up", StatusCode::UNAUTHORIZED).await;

    let token = microsoft_token(&mock).await;
    get_error(
        &format!("{users}?$top=1000"),
        &token,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let wrong_secret = post_form(
        &microsoft_token_url(&mock),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "microsoft-client"),
            ("client_secret", "wrong"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn graph_faults_on_demand() {
    let mock = start(300).await;
    let token = microsoft_token(&mock).await;
    let users = format!("{}/v1.0/users", mock.url());

    for retry_after in [Some("0.249"), Some("3"), None] {
        let throttle = FaultKind::Throttle {
            retry_after: retry_after.map(str::to_owned),
        };
        mock.inject(fault("microsoft.users", throttle));
        let throttled = get(&users, &token).await;
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            throttled
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            retry_after
        );
    }

    // An expired page token fails only the request that carries one.
    mock.inject(fault("microsoft.users", FaultKind::ExpiredPageToken));
    let first = get_json(&format!("{users}?$top=100"), &token).await;
    let next = first["@odata.nextLink"].as_str().unwrap();
    let body = get_error(next, &token, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"]["code"], "Directory_ExpiredPageToken");
}

/// Runs an initial delta sync from `url` and returns the number of users and the delta link.
async fn delta_sync(url: &str, token: &str) -> (usize, String) {
    let pages = graph_pages(url, token).await;
    let users = pages
        .iter()
        .map(|page| page["value"].as_array().unwrap().len())
        .sum();
    let last = pages.last().unwrap();
    (users, last["@odata.deltaLink"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn graph_delta_reports_changes() {
    let mock = start(150).await;
    let token = microsoft_token(&mock).await;

    let url = format!("{}/v1.0/users/delta?$select=id,mail&$top=100", mock.url());
    let (seen, delta_link) = delta_sync(&url, &token).await;
    assert_eq!(seen, 150);

    let removed_id = mock
        .with_state(|state| state.config.microsoft.users[0].id.clone())
        .unwrap();
    mock.with_state(|state| state.remove_microsoft_user(&removed_id));
    let changes = get_json(&delta_link, &token).await;
    let values = changes["value"].as_array().unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0]["id"], removed_id.as_str());
    assert!(values[0]["@removed"].is_object());

    mock.inject(fault("microsoft.users_delta", FaultKind::ExpiredDeltaToken));
    get_error(&delta_link, &token, StatusCode::GONE).await;
}

#[tokio::test]
async fn graph_delta_expired_page_token() {
    let mock = start(250).await;
    let token = microsoft_token(&mock).await;
    let url = format!("{}/v1.0/users/delta?$top=100", mock.url());

    // The fault waits while requests carry no page token.
    mock.inject(fault("microsoft.users_delta", FaultKind::ExpiredPageToken));
    let first = get_json(&url, &token).await;
    let next = first["@odata.nextLink"].as_str().unwrap().to_owned();
    assert!(next.contains("$skiptoken="));

    let expired = get_error(&next, &token, StatusCode::BAD_REQUEST).await;
    assert_eq!(expired["error"]["code"], "Directory_ExpiredPageToken");

    let retried = get_json(&next, &token).await;
    assert_eq!(
        retried["value"].as_array().unwrap().len(),
        100,
        "one fault fails one request"
    );
    assert_eq!(mock.request_counts()["microsoft.users_delta"], 3);
}

#[tokio::test]
async fn graph_delta_link_keeps_page_fault() {
    let mock = start(150).await;
    let token = microsoft_token(&mock).await;
    let url = format!("{}/v1.0/users/delta?$top=100", mock.url());
    let (_, delta_link) = delta_sync(&url, &token).await;

    mock.inject(fault("microsoft.users_delta", FaultKind::ExpiredPageToken));
    let changes = get_json(&delta_link, &token).await;
    assert_eq!(changes["value"], json!([]));

    let first = get_json(&url, &token).await;
    let next = first["@odata.nextLink"].as_str().unwrap();
    let expired = get_error(next, &token, StatusCode::BAD_REQUEST).await;
    assert_eq!(expired["error"]["code"], "Directory_ExpiredPageToken");
}

#[tokio::test]
async fn graph_delta_throttle_and_server_error() {
    let mock = start(150).await;
    let token = microsoft_token(&mock).await;
    let url = format!("{}/v1.0/users/delta?$top=100", mock.url());
    let first = get_json(&url, &token).await;
    let next = first["@odata.nextLink"].as_str().unwrap().to_owned();
    let (_, delta_link) = delta_sync(&url, &token).await;

    for request in [&url, &next, &delta_link] {
        let throttle = FaultKind::Throttle {
            retry_after: Some("2".into()),
        };
        mock.inject(fault("microsoft.users_delta", throttle));
        let throttled = get(request, &token).await;
        assert_eq!(
            throttled.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{request}"
        );
        assert_eq!(throttled.headers()["retry-after"], "2", "{request}");
        let body: Value = throttled.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TooManyRequests", "{request}");

        mock.inject(fault("microsoft.users_delta", FaultKind::ServerError));
        let unavailable = get_error(request, &token, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(
            unavailable["error"]["code"], "serviceNotAvailable",
            "{request}"
        );

        get_json(request, &token).await;
    }
}

#[tokio::test]
async fn microsoft_upsert_and_remove_reach_delta() {
    let mock = start(150).await;
    let token = microsoft_token(&mock).await;
    let url = format!("{}/v1.0/users/delta?$select=id,givenName", mock.url());
    let (_, delta_link) = delta_sync(&url, &token).await;

    let directory = served_directory(&mock, "microsoft");
    let mut renamed = directory.users[3].clone();
    renamed.given_name = "Renamed".into();
    let mut added = directory.users[4].clone();
    added.id = "00000000-0000-4000-8000-00000000abcd".into();
    added.email = "new.hire@contoso.example".into();
    let removed = directory.users[5].id.clone();
    let restored = directory.users[6].clone();
    mock.with_state(|state| -> Result<(), UnknownProvider> {
        state.upsert_user("microsoft", renamed.clone())?;
        state.upsert_user("microsoft", added.clone())?;
        state.remove_user("microsoft", &removed)?;
        state.remove_user("microsoft", &restored.id)?;
        state.upsert_user("microsoft", restored.clone())
    })
    .unwrap()
    .unwrap();

    let changes = get_json(&delta_link, &token).await;
    let values = changes["value"].as_array().unwrap();
    let by_id: HashMap<&str, &Value> = values
        .iter()
        .map(|v| (v["id"].as_str().unwrap(), v))
        .collect();
    assert_eq!(values.len(), 4, "{values:?}");
    assert_eq!(by_id[renamed.id.as_str()]["givenName"], "Renamed");
    assert!(by_id.contains_key(added.id.as_str()));
    assert!(by_id[removed.as_str()]["@removed"].is_object());
    assert!(
        by_id[restored.id.as_str()].get("@removed").is_none(),
        "a user added back is present"
    );

    let (users, _) = graph_collect(&format!("{}/v1.0/users", mock.url()), &token).await;
    assert_eq!(users.len(), 150);

    let next_link = changes["@odata.deltaLink"].as_str().unwrap();
    let quiet = get_json(next_link, &token).await;
    assert_eq!(quiet["value"], json!([]), "no changes since the last link");
}

#[tokio::test]
async fn upsert_rejects_unknown_provider() {
    let mock = start(10).await;
    let user = served_directory(&mock, "microsoft").users.remove(0);
    let result = mock
        .with_state(|state| state.upsert_user("azure", user))
        .unwrap();
    let error = result.unwrap_err();
    assert_eq!(error, UnknownProvider("azure".into()));
    assert_eq!(
        error.to_string(),
        r#"unknown provider "azure": expected "microsoft", "google" or "okta""#
    );
    let removed = mock
        .with_state(|state| state.remove_user("", "anyone"))
        .unwrap();
    assert_eq!(removed, Err(UnknownProvider(String::new())));
}

#[tokio::test]
async fn okta_pages_by_link_header() {
    let mock = start(450).await;
    let token = okta_token(&mock).await;
    let directory = served_directory(&mock, "okta");
    let deprovisioned = directory
        .users
        .iter()
        .filter(|u| u.state == AccountState::Deprovisioned)
        .count();
    assert!(deprovisioned > 0);

    let (listed, _) = okta_collect(&format!("{}/api/v1/users?limit=200", mock.url()), &token).await;
    assert!(
        listed.iter().all(|u| u["status"] != "DEPROVISIONED"),
        "the default list hides deprovisioned users"
    );
    assert_eq!(listed.len(), 450 - deprovisioned);

    let filtered = get_json(
        &format!(
            "{}/api/v1/users?filter=status%20eq%20%22DEPROVISIONED%22",
            mock.url()
        ),
        &token,
    )
    .await;
    assert_eq!(filtered.as_array().unwrap().len(), deprovisioned);
}

#[tokio::test]
async fn okta_rate_limit_headers() {
    let mock = start(10).await;
    let token = okta_token(&mock).await;
    let rate_limit = FaultKind::OktaRateLimit {
        reset_after_seconds: 30,
        server_clock_offset_seconds: 0,
    };
    mock.inject(fault("okta.users", rate_limit));
    let response = get(&format!("{}/api/v1/users", mock.url()), &token).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let (date, reset) = rate_limit_clock(&response);
    assert_eq!(
        reset - date,
        30,
        "the reset is an epoch on the server's clock"
    );
    assert_eq!(response.headers()["x-rate-limit-remaining"], "0");
}

#[tokio::test]
async fn okta_rate_limit_server_clock_behind() {
    let mock = start(10).await;
    let token = okta_token(&mock).await;
    let rate_limit = FaultKind::OktaRateLimit {
        reset_after_seconds: 30,
        server_clock_offset_seconds: -120,
    };
    mock.inject(fault("okta.users", rate_limit));

    let before = chrono::Utc::now().timestamp();
    let response = get(&format!("{}/api/v1/users", mock.url()), &token).await;
    let after = chrono::Utc::now().timestamp();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let (date, reset) = rate_limit_clock(&response);
    assert!(
        (before - 120..=after - 120).contains(&date),
        "Date {date} is 120 s behind the client's clock ({before} to {after})"
    );
    assert_eq!(reset - date, 30, "the reset is on the server's clock");
    assert!(
        reset < before,
        "read on the client's clock, the reset is already past"
    );
}

#[tokio::test]
async fn okta_rate_limit_offset_defaults_to_zero() {
    let without: Fault = serde_json::from_value(json!({
        "endpoint": "okta.users",
        "kind": {"type": "okta_rate_limit", "reset_after_seconds": 30},
    }))
    .unwrap();
    assert_eq!(
        without.kind,
        FaultKind::OktaRateLimit {
            reset_after_seconds: 30,
            server_clock_offset_seconds: 0,
        }
    );
    let with: Fault = serde_json::from_value(json!({
        "endpoint": "okta.users",
        "kind": {"type": "okta_rate_limit", "reset_after_seconds": 30, "server_clock_offset_seconds": -120},
    }))
    .unwrap();
    assert_eq!(
        with.kind,
        FaultKind::OktaRateLimit {
            reset_after_seconds: 30,
            server_clock_offset_seconds: -120,
        }
    );

    // The control endpoint accepts the form without the offset too.
    let mock = start(10).await;
    let token = okta_token(&mock).await;
    let injected = reqwest::Client::new()
        .post(format!("{}/_mock/faults", mock.url()))
        .json(&json!({
            "endpoint": "okta.users",
            "kind": {"type": "okta_rate_limit", "reset_after_seconds": 30},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), StatusCode::NO_CONTENT);
    let before = chrono::Utc::now().timestamp();
    let response = get(&format!("{}/api/v1/users", mock.url()), &token).await;
    let after = chrono::Utc::now().timestamp();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let (date, reset) = rate_limit_clock(&response);
    assert!((before..=after).contains(&date), "Date {date} is now");
    assert_eq!(reset - date, 30);
}

#[tokio::test]
async fn okta_rate_limit_extreme_values() {
    let mock = start(10).await;
    let token = okta_token(&mock).await;
    for (reset_after_seconds, server_clock_offset_seconds) in
        [(i64::MAX, i64::MAX), (i64::MIN, i64::MIN), (30, i64::MIN)]
    {
        let rate_limit = FaultKind::OktaRateLimit {
            reset_after_seconds,
            server_clock_offset_seconds,
        };
        mock.inject(fault("okta.users", rate_limit));
        let response = get(&format!("{}/api/v1/users", mock.url()), &token).await;
        assert_eq!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{reset_after_seconds} {server_clock_offset_seconds}"
        );
        assert!(response.headers().contains_key("date"));
        assert!(response.headers().contains_key("x-rate-limit-reset"));
    }
    get_json(&format!("{}/api/v1/users", mock.url()), &token).await;
}

#[tokio::test]
async fn google_users_list_pages_and_faults() {
    let mock = start(1_200).await;
    let token = google_token(&mock).await;
    let users = format!(
        "{}/admin/directory/v1/users?customer=my_customer",
        mock.url()
    );

    let (listed, pages) = google_collect(&format!("{users}&maxResults=500"), "users", &token).await;
    let ids: HashSet<&str> = listed.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1_200);
    assert!(listed.iter().any(|u| u["suspended"] == true));
    assert_eq!(pages, 3);
    assert_eq!(mock.request_counts()["google.users"], 3);

    for reason in ["forbidden", "userRateLimitExceeded"] {
        let forbidden = FaultKind::GoogleForbidden {
            reason: reason.into(),
        };
        mock.inject(fault("google.users", forbidden));
        let body = get_error(&users, &token, StatusCode::FORBIDDEN).await;
        assert_eq!(body["error"]["errors"][0]["reason"], reason);
    }
    get_error(
        &format!("{users}&maxResults=501"),
        &token,
        StatusCode::BAD_REQUEST,
    )
    .await;
    mock.inject(fault("google.token", FaultKind::InvalidGrant));
    let revoked = post_form(&format!("{}/token", mock.url()), &GOOGLE_REFRESH_FORM).await;
    assert_eq!(revoked.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn google_upsert_and_remove_users() {
    let mock = start(100).await;
    let token = google_token(&mock).await;
    let directory = served_directory(&mock, "google");
    let mut added = directory.users[0].clone();
    added.id = "115000000000000000001".into();
    added.email = "new.hire@fabrikam.example".into();
    added.aliases.clear();
    let removed = directory.users[1].id.clone();
    mock.with_state(|state| -> Result<(), UnknownProvider> {
        state.upsert_user("google", added.clone())?;
        state.remove_user("google", &removed)
    })
    .unwrap()
    .unwrap();

    let (users, _) = google_collect(
        &format!(
            "{}/admin/directory/v1/users?customer=my_customer",
            mock.url()
        ),
        "users",
        &token,
    )
    .await;
    let ids: HashSet<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(users.len(), 100);
    assert!(ids.contains(added.id.as_str()));
    assert!(!ids.contains(removed.as_str()));
    get_error(
        &format!("{}/admin/directory/v1/users/{removed}/tokens", mock.url()),
        &token,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn okta_upsert_sets_last_updated() {
    let mock = start(100).await;
    let token = okta_token(&mock).await;
    let directory = served_directory(&mock, "okta");
    // A second of margin, because `gt` is strict and the mock records milliseconds.
    let since = (chrono::Utc::now() - chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut changed = directory.users[7].clone();
    changed.family_name = "Changed".into();
    let removed = directory.users[8].id.clone();
    mock.with_state(|state| -> Result<(), UnknownProvider> {
        state.upsert_user("okta", changed.clone())?;
        state.remove_user("okta", &removed)
    })
    .unwrap()
    .unwrap();

    let search = Url::parse_with_params(
        &format!("{}/api/v1/users", mock.url()),
        [("search", format!("lastUpdated gt \"{since}\""))],
    )
    .unwrap();
    let (found, _) = okta_collect(search.as_str(), &token).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"], changed.id.as_str());
    assert_eq!(found[0]["profile"]["lastName"], "Changed");
    let last_updated = found[0]["lastUpdated"].as_str().unwrap();
    assert!(last_updated > since.as_str(), "{last_updated} > {since}");

    let stored = mock
        .with_state(|state| state.config.okta.users[7].last_updated.clone())
        .unwrap();
    assert_eq!(stored.as_deref(), Some(last_updated));
    let body = get_error(
        &format!("{}/api/v1/users/{removed}/factors", mock.url()),
        &token,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["errorCode"], "E0000007");
}

#[tokio::test]
async fn admin_consent_redirects_with_tenant() {
    let mock = start(10).await;
    let tenant = Credentials::default().microsoft_tenant;

    let response = admin_consent(&mock, "microsoft-client", MICROSOFT_REDIRECT).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = location(&response);
    assert_eq!(
        location,
        format!(
            "{MICROSOFT_REDIRECT}?admin_consent=True&tenant={tenant}&state=abc123&scope=https%3a%2f%2fgraph.microsoft.com%2f.default"
        )
    );
    let consented = mock
        .with_state(|state| state.consented_scopes.get(&tenant).cloned())
        .unwrap();
    assert_eq!(
        consented,
        Some(vec!["https://graph.microsoft.com/.default".to_owned()])
    );
    assert_eq!(mock.request_counts()["microsoft.admin_consent"], 1);
}

#[tokio::test]
async fn admin_consent_declined_or_cancelled() {
    let mock = start(10).await;

    mock.inject(fault("microsoft.admin_consent", FaultKind::ConsentDeclined));
    let declined = admin_consent(&mock, "microsoft-client", MICROSOFT_REDIRECT).await;
    assert_eq!(declined.status(), StatusCode::FOUND);
    assert_eq!(
        location(&declined),
        format!(
            "{MICROSOFT_REDIRECT}?error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent+to+access+the+app.&admin_consent=True&state=abc123"
        )
    );

    mock.inject(fault(
        "microsoft.admin_consent",
        FaultKind::ConsentCancelled,
    ));
    let cancelled = admin_consent(&mock, "microsoft-client", MICROSOFT_REDIRECT).await;
    assert_eq!(cancelled.status(), StatusCode::FOUND);
    assert_eq!(
        location(&cancelled),
        format!("{MICROSOFT_REDIRECT}?error=access_denied&error_subcode=cancel&state=abc123")
    );
    let consented = mock
        .with_state(|state| state.consented_scopes.len())
        .unwrap();
    assert_eq!(consented, 0, "a declined consent grants nothing");
}

#[tokio::test]
async fn admin_consent_rejects_unknown_redirect() {
    let mock = start(10).await;

    // A trailing slash is enough to differ from the registered URI.
    let mismatch =
        admin_consent(&mock, "microsoft-client", &format!("{MICROSOFT_REDIRECT}/")).await;
    assert!(mismatch.headers().get("location").is_none());
    let body = json_with_status(mismatch, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error_codes"], json!([50011]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS50011")
    );

    let unknown_app = admin_consent(&mock, "someone-else", MICROSOFT_REDIRECT).await;
    assert!(unknown_app.headers().get("location").is_none());
    let body = json_with_status(unknown_app, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error_codes"], json!([700016]));
}

#[tokio::test]
async fn google_code_flow_with_pkce() {
    let mock = start(10).await;
    let challenge = pkce_challenge(PKCE_VERIFIER);

    let authorized = google_authorize(&mock, GOOGLE_REDIRECT, &challenge).await;
    assert_eq!(authorized.status(), StatusCode::FOUND);
    let location = location(&authorized);
    assert!(location.starts_with(&format!("{GOOGLE_REDIRECT}?state=st-42&code=")));
    let params = query_of(&location);
    assert_eq!(params["state"], "st-42");
    assert_eq!(params["scope"], GOOGLE_SCOPE);
    let code = params["code"].clone();

    let exchanged = exchange_code(&mock, &code, PKCE_VERIFIER).await;
    let tokens = json_with_status(exchanged, StatusCode::OK).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], GOOGLE_SCOPE);
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    let access_token = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let users = format!(
        "{}/admin/directory/v1/users?customer=my_customer",
        mock.url()
    );
    get_json(&users, access_token).await;

    let refreshed = post_form(
        &format!("{}/token", mock.url()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "google-client"),
            ("client_secret", "google-secret"),
        ],
    )
    .await;
    let refreshed = json_with_status(refreshed, StatusCode::OK).await;
    assert_eq!(refreshed["scope"], GOOGLE_SCOPE);
    assert!(refreshed["access_token"].is_string());

    let reused = exchange_code(&mock, &code, PKCE_VERIFIER).await;
    let body = json_with_status(reused, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn google_code_rejects_bad_requests() {
    let mock = start(10).await;
    let challenge = pkce_challenge(PKCE_VERIFIER);

    let authorized = google_authorize(&mock, GOOGLE_REDIRECT, &challenge).await;
    let code = query_of(&location(&authorized))["code"].clone();
    let wrong_verifier = exchange_code(&mock, &code, &PKCE_VERIFIER.replace('A', "B")).await;
    let body = json_with_status(wrong_verifier, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "Invalid code verifier.");

    let mismatch = google_authorize(&mock, "http://127.0.0.1:3000/elsewhere", &challenge).await;
    assert!(mismatch.headers().get("location").is_none());
    let body = json_with_status(mismatch, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "redirect_uri_mismatch");

    let no_challenge = google_authorize(&mock, GOOGLE_REDIRECT, "").await;
    assert_eq!(no_challenge.status(), StatusCode::BAD_REQUEST);

    mock.inject(fault("google.authorize", FaultKind::ConsentDeclined));
    let declined = google_authorize(&mock, GOOGLE_REDIRECT, &challenge).await;
    assert_eq!(declined.status(), StatusCode::FOUND);
    assert_eq!(
        location(&declined),
        format!("{GOOGLE_REDIRECT}?error=access_denied&state=st-42")
    );
}

#[tokio::test]
async fn google_jwt_bearer_delegation() {
    let mock = start(10).await;
    let credentials = Credentials::default();
    let scopes: Vec<&str> = credentials
        .google_delegation_scopes
        .iter()
        .map(String::as_str)
        .collect();
    let admin = credentials.google_delegated_admin.as_str();

    let accepted = jwt_bearer(&mock, &assertion(&mock, admin, &scopes, 3600)).await;
    let body = json_with_status(accepted, StatusCode::OK).await;
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    let users = format!(
        "{}/admin/directory/v1/users?customer=my_customer",
        mock.url()
    );
    get_json(&users, token).await;

    let reversed: Vec<&str> = scopes.iter().rev().copied().collect();
    let reordered = jwt_bearer(&mock, &assertion(&mock, admin, &reversed, 3600)).await;
    assert_eq!(
        reordered.status(),
        StatusCode::OK,
        "scope order does not matter"
    );

    let mut extra = scopes.clone();
    extra.push("https://www.googleapis.com/auth/admin.directory.group.readonly");
    let cases = [
        (
            "other subject",
            assertion(&mock, "someone@fabrikam.example", &scopes, 3600),
        ),
        ("extra scope", assertion(&mock, admin, &extra, 3600)),
        ("fewer scopes", assertion(&mock, admin, &scopes[..1], 3600)),
    ];
    for (case, assertion) in cases {
        let rejected = jwt_bearer(&mock, &assertion).await;
        assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED, "{case}");
        let body: Value = rejected.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized_client", "{case}");
        assert_eq!(
            body["error_description"],
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }

    let expired = jwt_bearer(&mock, &assertion(&mock, admin, &scopes, 5)).await;
    let body = json_with_status(expired, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn token_endpoints_invalid_scope() {
    let mock = start(10).await;
    mock.inject(fault("okta.token", FaultKind::InvalidScope));
    mock.inject(fault("google.token", FaultKind::InvalidScope));
    mock.inject(fault("microsoft.token", FaultKind::InvalidScope));

    let okta = post_form(
        &format!("{}/oauth2/v1/token", mock.url()),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "okta-client"),
            ("client_secret", "okta-secret"),
            ("scope", "okta.apps.read"),
        ],
    )
    .await;
    let body = json_with_status(okta, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(
        body["error_description"],
        "The following scopes are not allowed: okta.apps.read"
    );

    let google = post_form(
        &format!("{}/token", mock.url()),
        &[("grant_type", "refresh_token"), ("scope", "bogus")],
    )
    .await;
    let body = json_with_status(google, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_scope");

    let microsoft = post_form(
        &microsoft_token_url(&mock),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let body = json_with_status(microsoft, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(body["error_codes"], json!([70011]));
}

#[tokio::test]
async fn graph_groups_and_members_page() {
    let mock = start(600).await;
    let token = microsoft_token(&mock).await;
    let directory = served_directory(&mock, "microsoft");

    let (groups, pages) = graph_collect(
        &format!(
            "{}/v1.0/groups?$top=5&$select=id,displayName,mail",
            mock.url()
        ),
        &token,
    )
    .await;
    assert_eq!(groups.len(), 12);
    assert_eq!(pages, 3);
    for group in &groups {
        let keys: HashSet<&str> = group
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, HashSet::from(["id", "displayName", "mail"]));
    }
    assert!(
        groups.iter().any(|g| g["mail"].is_null()),
        "security groups have no mail"
    );

    let parent = &directory.groups[0];
    let (members, pages) = graph_collect(
        &format!("{}/v1.0/groups/{}/members?$top=20", mock.url(), parent.id),
        &token,
    )
    .await;
    assert_eq!(pages, 3);
    let users: Vec<&Value> = members
        .iter()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.user")
        .collect();
    let nested: Vec<&Value> = members
        .iter()
        .filter(|m| m["@odata.type"] == "#microsoft.graph.group")
        .collect();
    assert_eq!(users.len(), parent.members.len());
    assert_eq!(users.len() + nested.len(), members.len());
    assert_eq!(nested.len(), 1);
    assert_eq!(nested[0]["id"], directory.groups[1].id.as_str());
    assert!(users.iter().all(|u| u["userPrincipalName"].is_string()));

    let body = get_error(
        &format!("{}/v1.0/groups/no-such-group/members", mock.url()),
        &token,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    assert_eq!(mock.request_counts()["microsoft.group_members"], 4);
}

#[tokio::test]
async fn graph_registration_details_follow_mfa() {
    let mock = start(250).await;
    let token = microsoft_token(&mock).await;
    let directory = served_directory(&mock, "microsoft");

    let (details, pages) = graph_collect(
        &format!(
            "{}/v1.0/reports/authenticationMethods/userRegistrationDetails",
            mock.url()
        ),
        &token,
    )
    .await;
    assert_eq!(pages, 3);
    assert_eq!(details.len(), 250);
    for (detail, user) in details.iter().zip(&directory.users) {
        assert_eq!(detail["id"], user.id.as_str());
        assert_eq!(detail["isMfaRegistered"], user.mfa_enrolled);
        assert_eq!(detail["isMfaCapable"], user.mfa_enrolled);
        assert_eq!(detail["isAdmin"], user.is_admin);
        let methods = detail["methodsRegistered"].as_array().unwrap();
        assert_eq!(methods.is_empty(), !user.mfa_enrolled);
        let user_type = if user.guest { "guest" } else { "member" };
        assert_eq!(detail["userType"], user_type);
        assert!(detail["userPrincipalName"].is_string());
        assert!(detail["userDisplayName"].is_string());
    }
}

#[tokio::test]
async fn graph_grants_name_their_apps() {
    let mock = start(200).await;
    let token = microsoft_token(&mock).await;
    let directory = served_directory(&mock, "microsoft");

    let (grants, _) = graph_collect(
        &format!("{}/v1.0/oauth2PermissionGrants?$top=3", mock.url()),
        &token,
    )
    .await;
    let expected: usize = directory.users.iter().map(|u| u.grants.len()).sum();
    assert_eq!(grants.len(), expected);
    let (principals, _) =
        graph_collect(&format!("{}/v1.0/servicePrincipals", mock.url()), &token).await;
    let names: HashMap<&str, &str> = principals
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap(),
                p["displayName"].as_str().unwrap(),
            )
        })
        .collect();
    for grant in &grants {
        assert_eq!(grant["consentType"], "Principal");
        assert_eq!(
            names[grant["resourceId"].as_str().unwrap()],
            "Microsoft Graph"
        );
        let app = names[grant["clientId"].as_str().unwrap()];
        let user = directory
            .users
            .iter()
            .find(|u| u.id == grant["principalId"].as_str().unwrap())
            .expect("the principal is a user");
        assert!(user.grants.iter().any(|g| g.app_name == app));
        let scope = grant["scope"].as_str().unwrap();
        assert!(
            !scope.contains("://"),
            "Graph scopes use short names: {scope}"
        );
    }
    let mail_merge = grants
        .iter()
        .find(|g| names[g["clientId"].as_str().unwrap()] == "Mail Merge")
        .unwrap();
    assert_eq!(mail_merge["scope"], "Mail.ReadWrite Mail.Send");

    let first_user = &directory.users[0].id;
    let (filtered, _) = graph_collect(
        &format!(
            "{}/v1.0/oauth2PermissionGrants?$filter=principalId%20eq%20'{first_user}'",
            mock.url()
        ),
        &token,
    )
    .await;
    assert_eq!(filtered.len(), directory.users[0].grants.len());
}

#[tokio::test]
async fn graph_message_rules_for_guest() {
    let mock = start(100).await;
    let token = microsoft_token(&mock).await;
    let guest = mock
        .with_state(|state| {
            let guest = state
                .config
                .microsoft
                .users
                .iter_mut()
                .find(|u| u.guest)
                .unwrap();
            guest.mail_rules.push(MailRule {
                id: "AQAAAJ5dZp8=".into(),
                name: "Forward everything".into(),
                forward_to: vec!["someone@elsewhere.example".into()],
                redirect_to: Vec::new(),
                delete: false,
                mark_read: true,
                move_to_folder: None,
            });
            guest.clone()
        })
        .unwrap();
    let upn = format!(
        "{}#EXT#@contoso.onmicrosoft.com",
        guest.email.replace('@', "_")
    );

    let url = format!(
        "{}/v1.0/users/{}/mailFolders/inbox/messageRules",
        mock.url(),
        upn.replace('#', "%23")
    );
    let rules = get_json(&url, &token).await;
    let rules = rules["value"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["displayName"], "Forward everything");
    assert_eq!(rules[0]["sequence"], 1);
    assert_eq!(rules[0]["isEnabled"], true);
    assert_eq!(rules[0]["conditions"], json!({}));
    let actions = &rules[0]["actions"];
    assert_eq!(
        actions["forwardTo"][0]["emailAddress"]["address"],
        "someone@elsewhere.example"
    );
    assert_eq!(actions["markAsRead"], true);
    assert!(
        actions.get("delete").is_none(),
        "unset actions are left out"
    );

    let by_id = get_json(
        &format!(
            "{}/v1.0/users/{}/mailFolders/inbox/messageRules",
            mock.url(),
            guest.id
        ),
        &token,
    )
    .await;
    assert_eq!(by_id["value"].as_array().unwrap().len(), 1);

    let mover = get_json(
        &format!(
            "{}/v1.0/users/{}/mailFolders/inbox/messageRules",
            mock.url(),
            served_directory(&mock, "microsoft").users[59].email
        ),
        &token,
    )
    .await;
    assert_eq!(mover["value"][0]["actions"]["moveToFolder"], "Newsletters");

    let body = get_error(
        &format!(
            "{}/v1.0/users/nobody@contoso.example/mailFolders/inbox/messageRules",
            mock.url()
        ),
        &token,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");

    let no_mailbox = served_directory(&mock, "microsoft").users[44].id.clone();
    let body = get_error(
        &format!(
            "{}/v1.0/users/{no_mailbox}/mailFolders/inbox/messageRules",
            mock.url()
        ),
        &token,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["error"]["code"], "MailboxNotEnabledForRESTAPI");
}

#[tokio::test]
async fn google_groups_and_members_page() {
    let mock = start(600).await;
    let token = google_token(&mock).await;
    let directory = served_directory(&mock, "google");

    let (groups, pages) = google_collect(
        &format!(
            "{}/admin/directory/v1/groups?customer=my_customer&maxResults=5",
            mock.url()
        ),
        "groups",
        &token,
    )
    .await;
    assert_eq!(groups.len(), 12);
    assert_eq!(pages, 3);
    assert!(groups.iter().all(|g| g["kind"] == "admin#directory#group"));
    assert!(
        groups.iter().all(|g| g["email"].is_string()),
        "Google groups always have an address"
    );

    let parent = &groups[0];
    let (members, pages) = google_collect(
        &format!(
            "{}/admin/directory/v1/groups/{}/members?maxResults=20",
            mock.url(),
            parent["email"].as_str().unwrap()
        ),
        "members",
        &token,
    )
    .await;
    assert_eq!(pages, 3);
    assert_eq!(members.len(), directory.groups[0].members.len() + 1);
    assert_eq!(
        parent["directMembersCount"],
        members.len().to_string(),
        "int64 counts are strings"
    );
    for member in &members {
        assert_eq!(member["kind"], "admin#directory#member");
        assert_eq!(member["status"], "ACTIVE");
        assert!(["OWNER", "MEMBER"].contains(&member["role"].as_str().unwrap()));
    }
    assert_eq!(members.iter().filter(|m| m["role"] == "OWNER").count(), 1);
    let nested: Vec<&Value> = members.iter().filter(|m| m["type"] == "GROUP").collect();
    assert_eq!(nested.len(), 1);
    assert_eq!(nested[0]["id"], directory.groups[1].id.as_str());

    let (derived, _) = google_collect(
        &format!(
            "{}/admin/directory/v1/groups/{}/members?includeDerivedMembership=true",
            mock.url(),
            directory.groups[0].id
        ),
        "members",
        &token,
    )
    .await;
    let derived_users = derived.iter().filter(|m| m["type"] == "USER").count();
    assert_eq!(
        derived_users,
        directory.groups[0].members.len() + directory.groups[1].members.len()
    );

    get_error(
        &format!(
            "{}/admin/directory/v1/groups?customer=my_customer&maxResults=201",
            mock.url()
        ),
        &token,
        StatusCode::BAD_REQUEST,
    )
    .await;
    get_error(
        &format!(
            "{}/admin/directory/v1/groups/nobody@fabrikam.example/members",
            mock.url()
        ),
        &token,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn google_tokens_list_third_party_apps() {
    let mock = start(100).await;
    let token = google_token(&mock).await;
    let directory = served_directory(&mock, "google");

    let tokens_of = |key: &str| format!("{}/admin/directory/v1/users/{key}/tokens", mock.url());

    let first = &directory.users[0];
    let tokens = get_json(&tokens_of(&first.email), &token).await;
    assert_eq!(tokens["kind"], "admin#directory#tokenList");
    let items = tokens["items"].as_array().unwrap();
    assert_eq!(items.len(), first.grants.len());
    for (item, grant) in items.iter().zip(&first.grants) {
        assert_eq!(item["kind"], "admin#directory#token");
        assert_eq!(item["clientId"], grant.client_id.as_str());
        assert_eq!(item["displayText"], grant.app_name.as_str());
        assert_eq!(item["userKey"], first.id.as_str());
        assert_eq!(item["anonymous"], false);
        assert_eq!(item["nativeApp"], false);
        let scopes = item["scopes"].as_array().unwrap();
        assert!(
            scopes
                .iter()
                .all(|s| !s.as_str().unwrap().contains("graph.microsoft.com"))
        );
    }

    let by_id = get_json(&tokens_of(&directory.users[1].id), &token).await;
    assert!(
        by_id.get("items").is_none(),
        "Google leaves out an empty list"
    );

    get_error(
        &tokens_of("nobody@fabrikam.example"),
        &token,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn gmail_filters_and_forwarding() {
    let mock = start(300).await;
    let token = google_token(&mock).await;
    let directory = served_directory(&mock, "google");
    let settings = |n: usize, what: &str| {
        format!(
            "{}/gmail/v1/users/{}/settings/{what}",
            mock.url(),
            directory.users[n].email
        )
    };

    // User 149 forwards everything outside the domain.
    let filters = get_json(&settings(149, "filters"), &token).await;
    let filter = &filters["filter"][0];
    assert!(filter["id"].is_string());
    assert!(filter["criteria"].is_object());
    let forward = filter["action"]["forward"].as_str().unwrap();
    assert!(forward.ends_with("@personal-mail.example"));
    let addresses = get_json(&settings(149, "forwardingAddresses"), &token).await;
    assert_eq!(
        addresses["forwardingAddresses"],
        json!([{"forwardingEmail": forward, "verificationStatus": "accepted"}])
    );

    // User 59 files mail into a label and marks it read.
    let filters = get_json(&settings(59, "filters"), &token).await;
    let action = &filters["filter"][0]["action"];
    let removed: Vec<&str> = action["removeLabelIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(removed, ["INBOX", "UNREAD"]);
    assert!(
        action["addLabelIds"][0]
            .as_str()
            .unwrap()
            .starts_with("Label_")
    );
    assert!(action.get("forward").is_none());

    // Users without rules get an empty object, as Gmail leaves out empty lists.
    assert_eq!(get_json(&settings(1, "filters"), &token).await, json!({}));
    assert_eq!(
        get_json(&settings(1, "forwardingAddresses"), &token).await,
        json!({})
    );

    get_error(
        &format!(
            "{}/gmail/v1/users/nobody@fabrikam.example/settings/filters",
            mock.url()
        ),
        &token,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn gmail_me_is_the_delegated_user() {
    let mock = start(10).await;
    let credentials = Credentials::default();
    mock.with_state(|state| {
        let mut admin = state.config.google.users[1].clone();
        admin.id = "admin-id".into();
        admin.email = credentials.google_delegated_admin.clone();
        admin.mail_rules = state.config.google.users[0].mail_rules.clone();
        admin.mail_rules.push(MailRule {
            id: "ANe1BmjAdmin".into(),
            name: "Trash newsletters".into(),
            forward_to: Vec::new(),
            redirect_to: Vec::new(),
            delete: true,
            mark_read: false,
            move_to_folder: None,
        });
        state.config.google.users.push(admin);
    });
    let token = delegated_token(&mock).await;

    let filters = get_json(
        &format!("{}/gmail/v1/users/me/settings/filters", mock.url()),
        &token,
    )
    .await;
    assert_eq!(filters["filter"][0]["id"], "ANe1BmjAdmin");
    assert_eq!(
        filters["filter"][0]["action"]["addLabelIds"],
        json!(["TRASH"])
    );
}

#[tokio::test]
async fn google_customer_and_fields_mask() {
    let mock = start(1_200).await;
    let token = google_token(&mock).await;

    let customer = get_json(
        &format!("{}/admin/directory/v1/customers/my_customer", mock.url()),
        &token,
    )
    .await;
    assert_eq!(customer["kind"], "admin#directory#customer");
    assert_eq!(customer["id"], "C01abc234");
    assert_eq!(customer["customerDomain"], "fabrikam.example");
    assert!(customer["etag"].is_string());
    assert!(customer["customerCreationTime"].is_string());

    let users_url = format!(
        "{}/admin/directory/v1/users?customer=my_customer&maxResults=500",
        mock.url()
    );
    let trimmed = get_json(
        &format!("{users_url}&fields=users(id,primaryEmail)"),
        &token,
    )
    .await;
    assert!(
        trimmed.get("nextPageToken").is_none(),
        "the mask hides the next page too"
    );
    assert!(trimmed.get("kind").is_none());
    for user in trimmed["users"].as_array().unwrap() {
        let keys: HashSet<&str> = user
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, HashSet::from(["id", "primaryEmail"]));
    }

    let (users, pages) = google_collect(
        &format!("{users_url}&fields=nextPageToken,users(id,suspended,name/fullName)"),
        "users",
        &token,
    )
    .await;
    assert_eq!(pages, 3);
    assert_eq!(users.len(), 1_200);
    assert!(users.iter().all(|u| u.get("archived").is_none()));
    assert!(users.iter().all(|u| u["suspended"].is_boolean()));
    assert!(
        users
            .iter()
            .all(|u| u["name"].as_object().unwrap().len() == 1)
    );

    get_error(
        &format!("{users_url}&fields=users(id"),
        &token,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn google_fields_mask_depth_is_bounded() {
    let mock = start(10).await;
    let token = google_token(&mock).await;
    let customer = format!("{}/admin/directory/v1/customers/my_customer", mock.url());

    let nested = "a(".repeat(15_000) + "id" + &")".repeat(15_000);
    let long_path = vec!["a"; 30_000].join("/");
    for spec in [nested, long_path] {
        let body = get_error(
            &format!("{customer}?fields={spec}"),
            &token,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(body["error"]["errors"][0]["reason"], "invalidParameter");
    }
    let trimmed = get_json(&format!("{customer}?fields=id"), &token).await;
    assert_eq!(trimmed, json!({"id": "C01abc234"}), "the server still runs");
}

#[tokio::test]
async fn okta_groups_apps_and_factors() {
    let mock = start(450).await;
    let token = okta_token(&mock).await;
    let directory = served_directory(&mock, "okta");

    let (groups, pages) =
        okta_collect(&format!("{}/api/v1/groups?limit=4", mock.url()), &token).await;
    assert_eq!(groups.len(), 9);
    assert_eq!(pages, 3);
    assert!(groups.iter().all(|g| g["type"] == "OKTA_GROUP"));
    assert!(groups.iter().all(|g| g["profile"]["name"].is_string()));

    let group = &directory.groups[0];
    let (members, pages) = okta_collect(
        &format!("{}/api/v1/groups/{}/users?limit=20", mock.url(), group.id),
        &token,
    )
    .await;
    assert_eq!(pages, 3);
    assert_eq!(
        members.len(),
        group.members.len(),
        "Okta groups do not nest"
    );
    assert!(members.iter().all(|m| m["profile"]["login"].is_string()));

    let (apps, pages) = okta_collect(&format!("{}/api/v1/apps?limit=3", mock.url()), &token).await;
    assert_eq!(apps.len(), 8);
    assert_eq!(pages, 3);
    for app in &apps {
        assert_eq!(app["status"], "ACTIVE");
        assert!(app["label"].is_string());
        assert!(app["name"].is_string());
        assert!(app["signOnMode"].is_string());
        assert!(app["_links"]["users"]["href"].is_string());
    }
    assert!(apps.iter().any(|a| a["signOnMode"] == "SAML_2_0"));
    assert!(apps.iter().any(|a| a["signOnMode"] == "OPENID_CONNECT"));

    let app = &directory.apps[0];
    let (assigned, pages) = okta_collect(
        &format!("{}/api/v1/apps/{}/users?limit=100", mock.url(), app.id),
        &token,
    )
    .await;
    let active_assigned = directory
        .users
        .iter()
        .filter(|u| app.assigned.contains(&u.id) && u.state != AccountState::Deprovisioned)
        .count();
    assert_eq!(assigned.len(), active_assigned);
    assert_eq!(pages, active_assigned.div_ceil(100));
    for assignment in &assigned {
        assert_eq!(assignment["scope"], "USER");
        assert!(assignment["credentials"]["userName"].is_string());
    }

    for user in &directory.users[..6] {
        let factors = get_json(
            &format!("{}/api/v1/users/{}/factors", mock.url(), user.id),
            &token,
        )
        .await;
        let factors = factors.as_array().unwrap();
        assert_eq!(factors.is_empty(), !user.mfa_enrolled, "user {}", user.id);
        for factor in factors {
            assert_eq!(factor["status"], "ACTIVE");
            assert!(
                ["push", "token:software:totp"].contains(&factor["factorType"].as_str().unwrap())
            );
            assert!(["OKTA", "GOOGLE"].contains(&factor["provider"].as_str().unwrap()));
        }
    }
    let body = get_error(
        &format!("{}/api/v1/users/00u-missing/factors", mock.url()),
        &token,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["errorCode"], "E0000007");
}

#[tokio::test]
async fn okta_token_accepts_basic_auth() {
    let mock = start(10).await;
    let client = reqwest::Client::new();
    let url = format!("{}/oauth2/v1/token", mock.url());
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "okta.users.read"),
    ];

    let basic = client
        .post(&url)
        .basic_auth("okta-client", Some("okta-secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let body = json_with_status(basic, StatusCode::OK).await;
    let token = body["access_token"].as_str().unwrap();
    get_json(&format!("{}/api/v1/users", mock.url()), token).await;

    let wrong = client
        .post(&url)
        .basic_auth("okta-client", Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let both = client
        .post(&url)
        .basic_auth("okta-client", Some("okta-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", "okta-secret"),
        ])
        .send()
        .await
        .unwrap();
    let body = json_with_status(both, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn okta_forbidden_and_last_updated() {
    let mock = start(100).await;
    let token = okta_token(&mock).await;

    mock.inject(fault("okta.users", FaultKind::OktaForbidden));
    let body = get_error(
        &format!("{}/api/v1/users", mock.url()),
        &token,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["errorCode"], "E0000006");
    assert_eq!(
        body["errorSummary"],
        "You do not have permission to perform the requested action"
    );

    // User 52 is deprovisioned, and a search still includes it, as Okta's does.
    let changed = mock
        .with_state(|state| {
            let users = &mut state.config.okta.users;
            for n in [5, 52] {
                users[n].last_updated = Some("2027-01-15T10:00:00.000Z".into());
            }
            [users[5].id.clone(), users[52].id.clone()]
        })
        .unwrap();
    for parameter in ["search", "filter"] {
        let (users, _) = okta_collect(
            &format!(
                "{}/api/v1/users?{parameter}=lastUpdated%20gt%20%222027-01-01T00:00:00.000Z%22",
                mock.url()
            ),
            &token,
        )
        .await;
        let ids: Vec<&str> = users.iter().map(|u| u["id"].as_str().unwrap()).collect();
        assert_eq!(ids, changed, "{parameter}");
        assert_eq!(users[1]["status"], "DEPROVISIONED");
        assert_eq!(users[0]["lastUpdated"], "2027-01-15T10:00:00.000Z");
    }

    let (paged, pages) = okta_collect(
        &format!(
            "{}/api/v1/users?limit=30&search=lastUpdated%20lt%20%222027-01-01T00:00:00.000Z%22",
            mock.url()
        ),
        &token,
    )
    .await;
    assert_eq!(paged.len(), 98, "the next link repeats the search");
    assert_eq!(pages, 4);

    get_error(
        &format!(
            "{}/api/v1/users?search=lastUpdated%20gt%20%22soon%22",
            mock.url()
        ),
        &token,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn directory_round_trips_through_json() {
    let directory = Directory::generate("contoso.example", 600, 1);
    let text = serde_json::to_string(&directory).unwrap();
    let parsed: Directory = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, directory);

    assert_eq!(directory.groups.len(), 12);
    assert_eq!(
        directory.groups[0].member_groups,
        [directory.groups[1].id.clone()]
    );
    assert_eq!(directory.apps.len(), 8);
    assert!(directory.users[20].grants.len() == 1);
    assert!(directory.users[149].mail_rules[0].forward_to[0].ends_with("@personal-mail.example"));

    // A seed file may leave out everything added after users.
    let minimal: Directory = serde_json::from_value(json!({
        "domain": "example.org",
        "users": [{"id": "u1", "email": "a@example.org", "given_name": "A", "family_name": "B"}],
    }))
    .unwrap();
    assert!(minimal.groups.is_empty());
    assert!(minimal.users[0].grants.is_empty());
    assert!(minimal.users[0].has_mailbox);
}
