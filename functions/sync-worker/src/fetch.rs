//! GET requests to a provider's API with its throttling rules: `Retry-After` in whole or
//! fractional seconds, Okta's `X-Rate-Limit-Reset` read against the response's own `Date`,
//! Google's 403 reasons, and exponential backoff with jitter where the provider names no wait.
//! Every wait counts against the run's backoff cap and the invocation's deadline.

use std::time::{Duration, Instant};

use chrono::DateTime;
use rand::Rng;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tracing::{info, warn};

/// Attempts of one request before a server error ends the run.
const MAX_ATTEMPTS: u32 = 6;
/// Maximum single wait a provider can request; a longer one stops the run.
const MAX_SINGLE_WAIT: Duration = Duration::from_secs(900);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("throttled beyond the run's backoff cap")]
    Throttled,
    /// The provider asked for a wait that outlasts this invocation; the run continues later.
    #[error("the provider asked to wait {0:?}, past this invocation's deadline")]
    OutOfTime(Duration),
    #[error("the page token expired")]
    ExpiredPageToken,
    #[error("the delta token expired")]
    DeltaExpired,
    #[error("the access token was rejected (HTTP 401)")]
    Unauthorized,
    /// A permission error: the integration needs an administrator.
    #[error("access denied (HTTP {status}, {reason})")]
    Denied { status: u16, reason: String },
    #[error("the request failed: {0}")]
    Failed(String),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// Backoff state shared by every request of one invocation.
pub struct Fetcher<'a> {
    pub http: &'a reqwest::Client,
    pub token: String,
    pub deadline: Instant,
    /// Time already spent waiting in this run, carried across invocations.
    pub backoff_spent: Duration,
    pub backoff_cap: Duration,
    pub backoff_base: Duration,
    pub requests: u64,
}

impl Fetcher<'_> {
    /// Fetches a JSON document, waiting and retrying on throttling and server errors.
    pub async fn get(&mut self, url: &str) -> Result<(Value, HeaderMap), FetchError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests += 1;
            let response = self.http.get(url).bearer_auth(&self.token).send().await;
            let wait = match response {
                Err(error) => {
                    let error = error.without_url().to_string();
                    if attempt >= MAX_ATTEMPTS {
                        return Err(FetchError::Unavailable(error));
                    }
                    warn!(error, attempt, "provider request failed; retrying");
                    self.exponential(attempt)
                }
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    if status.is_success() {
                        return Ok((body, headers));
                    }
                    match classify(status.as_u16(), &headers, &body) {
                        Answer::Wait(Some(wait)) => wait,
                        Answer::Wait(None) => self.exponential(attempt),
                        Answer::Retry if attempt < MAX_ATTEMPTS => self.exponential(attempt),
                        Answer::Retry => {
                            return Err(FetchError::Unavailable(format!("HTTP {status}")));
                        }
                        Answer::Fail(error) => return Err(error),
                    }
                }
            };
            self.wait(wait).await?;
        }
    }

    fn exponential(&self, attempt: u32) -> Duration {
        let base = self.backoff_base.saturating_mul(1 << attempt.min(10));
        let jitter = rand::rng().random_range(0..=base.as_millis().max(1) as u64 / 2);
        base + Duration::from_millis(jitter)
    }

    async fn wait(&mut self, wait: Duration) -> Result<(), FetchError> {
        if wait > MAX_SINGLE_WAIT || self.backoff_spent + wait > self.backoff_cap {
            warn!(
                wait_ms = wait.as_millis() as u64,
                spent_ms = self.backoff_spent.as_millis() as u64,
                "backoff cap reached"
            );
            return Err(FetchError::Throttled);
        }
        if Instant::now() + wait > self.deadline {
            return Err(FetchError::OutOfTime(wait));
        }
        info!(
            wait_ms = wait.as_millis() as u64,
            "provider throttled; waiting"
        );
        self.backoff_spent += wait;
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

enum Answer {
    /// Wait as the provider asked, or back off exponentially when it named no wait.
    Wait(Option<Duration>),
    /// A transient server error.
    Retry,
    Fail(FetchError),
}

fn classify(status: u16, headers: &HeaderMap, body: &Value) -> Answer {
    let graph_code = body["error"]["code"].as_str().unwrap_or_default();
    let google_reason = body["error"]["errors"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    match status {
        429 => Answer::Wait(requested_wait(headers)),
        403 if matches!(
            google_reason,
            "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded"
        ) =>
        {
            Answer::Wait(requested_wait(headers))
        }
        400 if graph_code == "Directory_ExpiredPageToken" => {
            Answer::Fail(FetchError::ExpiredPageToken)
        }
        410 => Answer::Fail(FetchError::DeltaExpired),
        401 => Answer::Fail(FetchError::Unauthorized),
        403 => {
            let reason = [
                google_reason,
                graph_code,
                body["errorCode"].as_str().unwrap_or_default(),
            ]
            .into_iter()
            .find(|r| !r.is_empty())
            .unwrap_or("forbidden")
            .to_owned();
            Answer::Fail(FetchError::Denied { status, reason })
        }
        500..=599 => Answer::Retry,
        _ => {
            let code = [
                graph_code,
                google_reason,
                body["errorCode"].as_str().unwrap_or_default(),
            ]
            .into_iter()
            .find(|r| !r.is_empty())
            .unwrap_or("unknown");
            Answer::Fail(FetchError::Failed(format!("HTTP {status} ({code})")))
        }
    }
}

/// Returns the wait a throttled response requests: `Retry-After` in whole or fractional
/// seconds, else Okta's `X-Rate-Limit-Reset` minus the response's `Date`. The reset is an epoch
/// on the server's clock, which may differ from the local one. `None` when no wait is named.
pub fn requested_wait(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<f64>().ok())
        && seconds.is_finite()
        && seconds >= 0.0
    {
        return Some(Duration::from_millis((seconds * 1000.0).ceil() as u64));
    }
    let reset = header("x-rate-limit-reset")?.trim().parse::<i64>().ok()?;
    let date = DateTime::parse_from_rfc2822(header("date")?).ok()?;
    let seconds = (reset - date.timestamp()).max(0) as u64;
    let jitter = rand::rng().random_range(0..=250);
    Some(Duration::from_secs(seconds) + Duration::from_millis(jitter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_whole_and_fractional() {
        assert_eq!(
            requested_wait(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            requested_wait(&headers(&[("retry-after", "0.249")])),
            Some(Duration::from_millis(249))
        );
        assert_eq!(requested_wait(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(requested_wait(&HeaderMap::new()), None);
    }

    #[test]
    fn okta_reset_is_read_against_the_server_date() {
        // The server's clock is far behind ours; only reset minus Date matters.
        let wait = requested_wait(&headers(&[
            ("x-rate-limit-reset", "1000000060"),
            ("date", "Sun, 09 Sep 2001 01:46:40 GMT"),
        ]))
        .unwrap();
        assert!(wait >= Duration::from_secs(60));
        assert!(wait <= Duration::from_millis(60_250), "jitter stays small");
    }
}
