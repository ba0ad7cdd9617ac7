//! Fires scheduled functions: on their `rate(...)` expression while the runner runs, and at once
//! on request (`POST /_local/schedules/<function>`, optionally `?time=<RFC 3339>` to set the
//! event's scheduled time, which is how a test lets 90 days pass).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::functions::Handler;

#[derive(Clone, Default)]
pub struct Schedules {
    entries: Arc<BTreeMap<String, Vec<ScheduledFunction>>>,
}

#[derive(Clone)]
pub struct ScheduledFunction {
    pub function: String,
    pub name: String,
    pub expression: String,
    pub handler: Handler,
}

#[derive(Debug)]
pub enum FireError {
    Unknown,
    Failed(String),
}

impl Schedules {
    pub fn new(entries: Vec<ScheduledFunction>) -> Self {
        let mut by_function: BTreeMap<String, Vec<ScheduledFunction>> = BTreeMap::new();
        for entry in entries {
            by_function
                .entry(entry.function.clone())
                .or_default()
                .push(entry);
        }
        Self {
            entries: Arc::new(by_function),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &ScheduledFunction> {
        self.entries.values().flatten()
    }

    /// Invokes every schedule of `function` once, with `time` as the event's scheduled time
    /// (now when `None`). Returns how many fired.
    pub async fn fire(
        &self,
        function: &str,
        time: Option<DateTime<Utc>>,
    ) -> Result<usize, FireError> {
        let entries = self.entries.get(function).ok_or(FireError::Unknown)?;
        for entry in entries {
            entry.invoke_at(time).await.map_err(FireError::Failed)?;
        }
        Ok(entries.len())
    }
}

impl ScheduledFunction {
    pub async fn invoke(&self) -> Result<(), String> {
        self.invoke_at(None).await
    }

    async fn invoke_at(&self, time: Option<DateTime<Utc>>) -> Result<(), String> {
        let Handler::Schedule(handler) = &self.handler else {
            return Err(format!(
                "function {} is not a scheduled function",
                self.function
            ));
        };
        let result = handler(scheduled_event(&self.name, time.unwrap_or_else(Utc::now)))
            .await
            .map_err(|e| e.to_string());
        match &result {
            Ok(()) => info!(
                function = self.function,
                schedule = self.name,
                "schedule fired"
            ),
            Err(error) => warn!(
                function = self.function,
                schedule = self.name,
                error,
                "scheduled invocation failed"
            ),
        }
        result
    }

    /// Runs the schedule on its rate until the task is aborted. Cron expressions only fire on
    /// request.
    pub async fn run(self) {
        let Some(period) = rate_period(&self.expression) else {
            info!(
                function = self.function,
                expression = self.expression,
                "not a rate expression; fires only on request"
            );
            return;
        };
        let mut interval = tokio::time::interval(period);
        interval.tick().await;
        loop {
            interval.tick().await;
            let _ = self.invoke().await;
        }
    }
}

/// Builds the EventBridge "Scheduled Event" a rule delivers to its target.
fn scheduled_event(rule: &str, time: DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/{rule}")],
        "detail": {},
    })
}

/// Parses `rate(1 hour)`, `rate(5 minutes)`, `rate(1 day)`.
pub fn rate_period(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(' ')?;
    let count: u64 = count.parse().ok().filter(|c| *c > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_expressions_parse() {
        assert_eq!(
            rate_period("rate(1 hour)"),
            Some(Duration::from_secs(3_600))
        );
        assert_eq!(
            rate_period("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            rate_period("rate(1 day)"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(rate_period("cron(0 * * * ? *)"), None);
        assert_eq!(rate_period("rate(0 hours)"), None);
    }
}
