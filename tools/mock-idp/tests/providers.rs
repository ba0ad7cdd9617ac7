//! The mock providers page, authenticate, fail and count as the real ones do.

use std::collections::HashSet;

use mock_idp::{AccountState, Credentials, Directory, Fault, FaultKind, MockConfig, MockIdp};
use reqwest::StatusCode;
use serde_json::Value;

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
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        mock.url(),
        credentials.microsoft_tenant
    );
    let body: Value = reqwest::Client::new()
        .post(url)
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn graph_users_page_with_next_link() {
    let mock = start(2_500).await;
    let token = microsoft_token(&mock).await;
    let client = reqwest::Client::new();

    let mut url = format!(
        "{}/v1.0/users?$select=id,mail,userPrincipalName,accountEnabled,userType&$top=999",
        mock.url()
    );
    let mut ids = HashSet::new();
    let mut pages = 0;
    loop {
        let page: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for user in page["value"].as_array().unwrap() {
            assert!(
                user.get("accountEnabled").is_some(),
                "selected properties are returned"
            );
            assert!(
                user.get("givenName").is_none(),
                "unselected properties are not"
            );
            ids.insert(user["id"].as_str().unwrap().to_owned());
        }
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(ids.len(), 2_500);
    assert_eq!(pages, 3);
    assert_eq!(mock.request_counts()["microsoft.users"], 3);
}

#[tokio::test]
async fn graph_defaults_and_guests() {
    let mock = start(100).await;
    let token = microsoft_token(&mock).await;
    let page: Value = reqwest::Client::new()
        .get(format!("{}/v1.0/users", mock.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let client = reqwest::Client::new();
    let unauthorised = client
        .get(format!("{}/v1.0/users", mock.url()))
        .bearer_auth("made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), StatusCode::UNAUTHORIZED);
    let token = microsoft_token(&mock).await;
    let too_big = client
        .get(format!("{}/v1.0/users?$top=1000", mock.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::BAD_REQUEST);
    let wrong_secret = client
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            mock.url(),
            Credentials::default().microsoft_tenant
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "microsoft-client"),
            ("client_secret", "wrong"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn graph_faults_on_demand() {
    let mock = start(300).await;
    let token = microsoft_token(&mock).await;
    let client = reqwest::Client::new();

    for retry_after in [Some("0.249"), Some("3"), None] {
        mock.inject(Fault {
            endpoint: "microsoft.users".into(),
            kind: FaultKind::Throttle {
                retry_after: retry_after.map(str::to_owned),
            },
            count: 1,
        });
        let throttled = client
            .get(format!("{}/v1.0/users", mock.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
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
    mock.inject(Fault {
        endpoint: "microsoft.users".into(),
        kind: FaultKind::ExpiredPageToken,
        count: 1,
    });
    let first: Value = client
        .get(format!("{}/v1.0/users?$top=100", mock.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = first["@odata.nextLink"].as_str().unwrap();
    let expired = client.get(next).bearer_auth(&token).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::BAD_REQUEST);
    let body: Value = expired.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Directory_ExpiredPageToken");
}

#[tokio::test]
async fn graph_delta_reports_changes() {
    let mock = start(150).await;
    let token = microsoft_token(&mock).await;
    let client = reqwest::Client::new();

    let mut url = format!("{}/v1.0/users/delta?$select=id,mail&$top=100", mock.url());
    let mut seen = 0;
    let delta_link = loop {
        let page: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += page["value"].as_array().unwrap().len();
        if let Some(next) = page["@odata.nextLink"].as_str() {
            url = next.to_owned();
            continue;
        }
        break page["@odata.deltaLink"].as_str().unwrap().to_owned();
    };
    assert_eq!(seen, 150);

    let removed_id = mock
        .with_state(|state| state.config.microsoft.users[0].id.clone())
        .unwrap();
    mock.with_state(|state| state.remove_microsoft_user(&removed_id));
    let changes: Value = client
        .get(&delta_link)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let values = changes["value"].as_array().unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0]["id"], removed_id.as_str());
    assert!(values[0]["@removed"].is_object());

    mock.inject(Fault {
        endpoint: "microsoft.users_delta".into(),
        kind: FaultKind::ExpiredDeltaToken,
        count: 1,
    });
    let gone = client
        .get(&delta_link)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::GONE);
}

async fn okta_token(mock: &MockIdp) -> String {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "okta-client"),
        ("client_secret", "okta-secret"),
        ("scope", "okta.users.read"),
    ];
    let body: Value = reqwest::Client::new()
        .post(format!("{}/oauth2/v1/token", mock.url()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.ends_with("rel=\"next\""))
        .map(|v| {
            v.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
}

#[tokio::test]
async fn okta_pages_by_link_header() {
    let mock = start(450).await;
    let token = okta_token(&mock).await;
    let client = reqwest::Client::new();
    let directory = Directory::generate("initech.example", 450, 3);
    let deprovisioned = directory
        .users
        .iter()
        .filter(|u| u.state == AccountState::Deprovisioned)
        .count();
    assert!(deprovisioned > 0);

    let mut url = format!("{}/api/v1/users?limit=200", mock.url());
    let mut listed = 0;
    loop {
        let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
        let links = response.headers().get_all("link").iter().count();
        assert!(links >= 1, "links come as separate headers");
        let next = next_link(response.headers());
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(
            page.iter().all(|u| u["status"] != "DEPROVISIONED"),
            "the default list hides deprovisioned users"
        );
        listed += page.len();
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(listed, 450 - deprovisioned);

    let filtered: Vec<Value> = client
        .get(format!(
            "{}/api/v1/users?filter=status%20eq%20%22DEPROVISIONED%22",
            mock.url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered.len(), deprovisioned);
}

#[tokio::test]
async fn okta_rate_limit_headers() {
    let mock = start(10).await;
    let token = okta_token(&mock).await;
    mock.inject(Fault {
        endpoint: "okta.users".into(),
        kind: FaultKind::OktaRateLimit {
            reset_after_seconds: 30,
        },
        count: 1,
    });
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/users", mock.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let reset: i64 = response.headers()["x-rate-limit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let date =
        chrono::DateTime::parse_from_rfc2822(response.headers()["date"].to_str().unwrap()).unwrap();
    assert_eq!(
        reset - date.timestamp(),
        30,
        "the reset is an epoch on the server's clock"
    );
    assert_eq!(response.headers()["x-rate-limit-remaining"], "0");
}

#[tokio::test]
async fn google_users_list_pages_and_faults() {
    let mock = start(1_200).await;
    let client = reqwest::Client::new();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "google-client"),
        ("client_secret", "google-secret"),
        ("refresh_token", "google-refresh"),
    ];
    let token: Value = client
        .post(format!("{}/token", mock.url()))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    let mut page_token: Option<String> = None;
    let mut ids = HashSet::new();
    let mut suspended = 0;
    loop {
        let mut url = format!(
            "{}/admin/directory/v1/users?customer=my_customer&maxResults=500",
            mock.url()
        );
        if let Some(page_token) = &page_token {
            url.push_str(&format!("&pageToken={page_token}"));
        }
        let page: Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for user in page["users"].as_array().unwrap() {
            ids.insert(user["id"].as_str().unwrap().to_owned());
            if user["suspended"] == true {
                suspended += 1;
            }
        }
        page_token = page["nextPageToken"].as_str().map(str::to_owned);
        if page_token.is_none() {
            break;
        }
    }
    assert_eq!(ids.len(), 1_200);
    assert!(suspended > 0);
    assert_eq!(mock.request_counts()["google.users"], 3);

    for reason in ["forbidden", "userRateLimitExceeded"] {
        mock.inject(Fault {
            endpoint: "google.users".into(),
            kind: FaultKind::GoogleForbidden {
                reason: reason.into(),
            },
            count: 1,
        });
        let response = client
            .get(format!(
                "{}/admin/directory/v1/users?customer=my_customer",
                mock.url()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["errors"][0]["reason"], reason);
    }
    let over_limit = client
        .get(format!(
            "{}/admin/directory/v1/users?customer=my_customer&maxResults=501",
            mock.url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(over_limit.status(), StatusCode::BAD_REQUEST);
    mock.inject(Fault {
        endpoint: "google.token".into(),
        kind: FaultKind::InvalidGrant,
        count: 1,
    });
    let revoked = client
        .post(format!("{}/token", mock.url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::BAD_REQUEST);
}
