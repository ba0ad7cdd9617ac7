//! Google OAuth: the authorization endpoint (authorization code with PKCE) and the token
//! endpoint's `authorization_code`, `refresh_token` and JWT-bearer grants.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::admit_token_request;
use crate::oauth::{UntrustedClient, check_client, oauth_error};
use crate::state::{AuthorizationCode, FaultKind, MockState, random_token};
use crate::urlencode::{HexCase, append_query};
use crate::{Rejection, Shared, lock, parameter, redirect};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an authorization code stays redeemable. Google does not publish the figure, so the
/// mock uses the ten-minute maximum that RFC 6749 recommends.
const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// Google accepts JWT assertions that live at most an hour.
const MAX_ASSERTION_LIFETIME: i64 = 3600;

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// Builds Google's error for a service account that may not act as the subject with these
/// scopes.
fn delegation_denied() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized_client",
        "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
    )
}

/// `GET /o/oauth2/v2/auth`. Errors about the client or the redirect URI are shown to the user
/// (here as a JSON body) instead of being sent back to the app.
pub async fn authorize(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = lock(&state)?;
    let fault = state.record("google.authorize");
    let credentials = &state.config.credentials;
    let param = |name: &str| parameter(&query, name);

    let client_id = param("client_id");
    let redirect_uri = param("redirect_uri");
    let checked = check_client(
        "google.authorize",
        &credentials.google_client_id,
        &credentials.redirect_uris,
        client_id,
        redirect_uri,
    );
    match checked {
        Ok(()) => {}
        Err(UntrustedClient::UnknownClientId) => {
            return Err(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The OAuth client was not found.",
            )
            .into());
        }
        Err(UntrustedClient::UnregisteredRedirectUri) => return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            &format!("The redirect URI in the request, {redirect_uri}, does not match the ones authorized for the OAuth client."),
        ).into()),
    }
    if param("response_type") != "code" {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            &format!("Invalid response_type: {}", param("response_type")),
        )
        .into());
    }
    let scope = param("scope");
    if scope.trim().is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: scope",
        )
        .into());
    }
    // NOTE: Google also accepts `code_challenge_method=plain` and requests without PKCE. The
    // mock accepts only S256.
    let challenge = param("code_challenge");
    if param("code_challenge_method") != "S256" {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid code_challenge_method: the mock requires S256.",
        )
        .into());
    }
    if !is_pkce_value(challenge) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing or invalid parameter: code_challenge",
        )
        .into());
    }

    let state_pair = query.get("state").map(|value| ("state", value.as_str()));
    if matches!(
        fault,
        Some(FaultKind::ConsentDeclined | FaultKind::ConsentCancelled)
    ) {
        let mut pairs = vec![("error", "access_denied")];
        pairs.extend(state_pair);
        return Ok(redirect(&append_query(
            redirect_uri,
            &pairs,
            HexCase::Upper,
        )));
    }
    let mut pairs: Vec<(&str, &str)> = state_pair.into_iter().collect();
    let code = format!("4/0A{}", random_token());
    let domain = state.config.google.domain.clone();
    pairs.extend([
        ("code", code.as_str()),
        ("scope", scope),
        ("authuser", "0"),
        ("hd", domain.as_str()),
        ("prompt", "consent"),
    ]);
    let location = append_query(redirect_uri, &pairs, HexCase::Upper);
    state.authorization_codes.insert(
        code.clone(),
        AuthorizationCode {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: challenge.to_owned(),
            scope: scope.to_owned(),
            offline: param("access_type") == "offline",
            issued_at: Instant::now(),
        },
    );
    Ok(redirect(&location))
}

/// Returns whether `value` is a valid PKCE verifier or challenge: 43 to 128 characters from
/// `A-Z a-z 0-9 - . _ ~` (RFC 7636).
fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `POST /token`.
pub async fn token(
    State(state): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = admit_token_request(&state, || {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "Some requested scopes were invalid. {{invalid=[{}]}}",
                requested_scopes(&form).join(", ")
            ),
        )
    })?;
    let grant_type = form.get("grant_type").map(String::as_str);
    if grant_type == Some(JWT_BEARER) {
        return jwt_bearer(&mut state, &form);
    }

    let credentials = &state.config.credentials;
    let client_ok = form.get("client_id") == Some(&credentials.google_client_id)
        && form.get("client_secret") == Some(&credentials.google_client_secret);
    if !client_ok {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        )
        .into());
    }
    match grant_type {
        Some("refresh_token") => refresh(&mut state, &form),
        Some("authorization_code") => exchange_code(&mut state, &form),
        _ => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        )
        .into()),
    }
}

/// Returns the scopes a token request names: its `scope`, or those of its JWT assertion.
fn requested_scopes(form: &HashMap<String, String>) -> Vec<String> {
    let scope = form.get("scope").cloned().or_else(|| {
        let claims = decode_claims(form.get("assertion")?)?;
        claims["scope"].as_str().map(str::to_owned)
    });
    scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn refresh(state: &mut MockState, form: &HashMap<String, String>) -> Result<Response, Rejection> {
    let Some(refresh_token) = form.get("refresh_token") else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: refresh_token",
        )
        .into());
    };
    let scope = if *refresh_token == state.config.credentials.google_refresh_token {
        "https://www.googleapis.com/auth/admin.directory.user.readonly".to_owned()
    } else if let Some(scope) = state.refresh_tokens.get(refresh_token) {
        scope.clone()
    } else {
        return Err(invalid_grant("Bad Request").into());
    };
    let token = state.issue_token();
    Ok(axum::Json(
        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer", "scope": scope}),
    )
    .into_response())
}

/// Redeems an authorization code. Any attempt uses the code up, so a failed exchange must
/// start over at the authorization endpoint.
fn exchange_code(
    state: &mut MockState,
    form: &HashMap<String, String>,
) -> Result<Response, Rejection> {
    let field = |name: &str| parameter(form, name);
    let reject = |reason: &str, description: &str| -> Result<Response, Rejection> {
        tracing::warn!(reason, "authorization code exchange rejected");
        Err(invalid_grant(description).into())
    };
    let Some(code) = state.authorization_codes.remove(field("code")) else {
        return reject("code is unknown or already used", "Bad Request");
    };
    if code.issued_at.elapsed() > CODE_LIFETIME {
        return reject("code expired", "Bad Request");
    }
    if code.client_id != field("client_id") {
        return reject(
            "client_id differs from the authorization request",
            "Bad Request",
        );
    }
    if code.redirect_uri != field("redirect_uri") {
        return reject(
            "redirect_uri differs from the authorization request",
            "Bad Request",
        );
    }
    let verifier = field("code_verifier");
    if verifier.is_empty() {
        return reject("code_verifier is missing", "Missing code verifier.");
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !is_pkce_value(verifier) || challenge != code.code_challenge {
        return reject(
            "code_verifier does not match the code_challenge",
            "Invalid code verifier.",
        );
    }

    let token = state.issue_token();
    let mut body = json!({"access_token": token, "expires_in": 3599, "scope": code.scope, "token_type": "Bearer"});
    if code.offline {
        let refresh_token = format!("1//0{}", random_token());
        state
            .refresh_tokens
            .insert(refresh_token.clone(), code.scope.clone());
        body["refresh_token"] = json!(refresh_token);
    }
    Ok(axum::Json(body).into_response())
}

/// Decodes the claims of a compact JWT.
// NOTE: the signature is not verified, so any key signs an assertion the mock accepts.
fn decode_claims(assertion: &str) -> Option<Value> {
    let mut parts = assertion.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Issues a token for domain-wide delegation: the service account (`iss`) acts as `sub` with
/// the scopes in `scope`.
fn jwt_bearer(
    state: &mut MockState,
    form: &HashMap<String, String>,
) -> Result<Response, Rejection> {
    let Some(claims) = form.get("assertion").and_then(|a| decode_claims(a)) else {
        return Err(invalid_grant("Invalid JWT Signature.").into());
    };
    let now = chrono::Utc::now().timestamp();
    let expiry = claims["exp"].as_i64().unwrap_or(i64::MIN);
    let issued = claims["iat"].as_i64().unwrap_or(now);
    if expiry <= now || expiry.saturating_sub(issued) > MAX_ASSERTION_LIFETIME {
        return Err(invalid_grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        ).into());
    }

    let credentials = &state.config.credentials;
    let audience = format!("{}/token", state.base_url);
    let requested: BTreeSet<&str> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let authorised: BTreeSet<&str> = credentials
        .google_delegation_scopes
        .iter()
        .map(String::as_str)
        .collect();
    let subject = claims["sub"].as_str().unwrap_or_default();
    // NOTE: Google accepts any subset of the authorised scopes. The mock requires the exact
    // set, so it rejects a client that requests fewer scopes where Google would not.
    let mismatches: Vec<&str> = [
        (
            claims["iss"] != credentials.google_service_account.as_str(),
            "iss",
        ),
        (claims["aud"] != audience.as_str(), "aud"),
        (subject != credentials.google_delegated_admin, "sub"),
        (requested != authorised, "scope"),
    ]
    .into_iter()
    .filter_map(|(differs, claim)| differs.then_some(claim))
    .collect();
    if !mismatches.is_empty() {
        tracing::warn!(
            ?mismatches,
            iss = %claims["iss"],
            sub = subject,
            "rejected a JWT-bearer assertion whose claims differ from the configured delegation"
        );
        return Err(delegation_denied().into());
    }
    let subject = subject.to_owned();
    let token = state.issue_token();
    state.token_subjects.insert(token.clone(), subject);
    Ok(
        axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
            .into_response(),
    )
}
