//! Rollcall's local runner: hosts every function of the SAM template in one process against a
//! local AWS stand-in (moto), so the system runs and is tested without AWS or Docker.

pub mod demo;
pub mod functions;
pub mod http;
pub mod jwt;
pub mod poller;
pub mod providers;
pub mod scenario;
pub mod schedule;
pub mod stack;
pub mod template;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use rollcall::aws::Clients;
use rollcall::error::{AwsError, BoxError};
use tokio::task::JoinSet;
use tracing::info;

use crate::functions::Registry;
use crate::http::{HttpState, Route};
use crate::poller::Poller;
use crate::schedule::{ScheduledFunction, Schedules};
use crate::stack::Stack;
use crate::template::Template;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("function {function} could not start: {source}")]
    Function {
        function: String,
        #[source]
        source: BoxError,
    },
    #[error(transparent)]
    Stack(#[from] stack::StackError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("HTTP listener could not bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("queues still had messages after {0:?}: {1}")]
    NotIdle(Duration, String),
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Address of the HTTP API; port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// How long a failed SQS message waits before it is received again.
    pub retry_delay: Duration,
    /// Fire `rate(...)` schedules on their timers (they can always be fired on request).
    pub run_schedules: bool,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            retry_delay: Duration::ZERO,
            run_schedules: false,
        }
    }
}

/// A running local system. Dropping it stops every task it started.
pub struct Runner {
    jwt: jwt::LocalJwt,
    http_addr: SocketAddr,
    stack: Stack,
    sqs: aws_sdk_sqs::Client,
    schedules: Schedules,
    tasks: JoinSet<()>,
}

impl Runner {
    /// Builds every function of `template` with its resolved environment, then starts the HTTP
    /// listener, one poller per SQS event source and the schedule timers.
    pub async fn start(
        clients: &Clients,
        template: &Template,
        stack: Stack,
        registry: &dyn Registry,
        config: RunnerConfig,
    ) -> Result<Self, RunnerError> {
        let sqs = clients.sqs.clone();
        let mut routes = Vec::new();
        let mut pollers = Vec::new();
        let mut scheduled = Vec::new();

        for function in template.functions.values() {
            let environment = stack.environment(function)?;
            let handler = registry
                .build(&function.logical_id, &environment, clients)
                .map_err(|source| RunnerError::Function {
                    function: function.logical_id.clone(),
                    source,
                })?;
            for route in &function.http_routes {
                routes.push(Route {
                    function: function.logical_id.clone(),
                    method: route.method.clone(),
                    path: route.path.clone(),
                    authorizer: route.authorizer.clone(),
                    handler: handler.clone(),
                });
            }
            for source in &function.queue_sources {
                pollers.push(Poller {
                    function: function.logical_id.clone(),
                    queue: stack.queue(&source.queue)?.clone(),
                    source: source.clone(),
                    handler: handler.clone(),
                    client: sqs.clone(),
                    function_timeout: Duration::from_secs(function.timeout_seconds),
                    retry_delay: config.retry_delay,
                });
            }
            for schedule in &function.schedules {
                scheduled.push(ScheduledFunction {
                    function: function.logical_id.clone(),
                    name: schedule.name.clone(),
                    expression: schedule.expression.clone(),
                    handler: handler.clone(),
                });
            }
        }

        let mut tasks = JoinSet::new();
        let schedules = Schedules::new(scheduled);
        if config.run_schedules {
            for entry in schedules.all() {
                tasks.spawn(entry.clone().run());
            }
        }
        for poller in pollers {
            info!(
                function = poller.function,
                queue = poller.queue.name,
                batch_size = poller.source.batch_size,
                "polling queue"
            );
            tasks.spawn(poller.run());
        }

        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| RunnerError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| RunnerError::Bind {
            addr: config.http_addr,
            source,
        })?;
        let jwt = jwt::LocalJwt::default();
        let app = http::router(HttpState {
            routes: Arc::new(routes),
            schedules: schedules.clone(),
            jwt: jwt.clone(),
        })
        .into_make_service_with_connect_info::<SocketAddr>();
        tasks.spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(error = %error, "HTTP listener stopped");
            }
        });
        info!(%http_addr, "HTTP API listening");

        Ok(Self {
            jwt,
            http_addr,
            stack,
            sqs,
            schedules,
            tasks,
        })
    }

    /// Fires every schedule of `function` once, with `time` as the event's scheduled time (now
    /// when `None`), and waits for it to finish.
    pub async fn fire_schedule(
        &self,
        function: &str,
        time: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<usize, schedule::FireError> {
        self.schedules.fire(function, time).await
    }

    /// Mints an administrator token that this runner's JWT authorizer accepts.
    pub fn admin_token(&self, tenant_id: &str, email: &str, lifetime_seconds: i64) -> String {
        self.jwt.mint(tenant_id, email, lifetime_seconds)
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn stack(&self) -> &Stack {
        &self.stack
    }

    /// Returns, per queue logical id, the messages waiting and the messages in flight.
    pub async fn queue_depths(&self) -> Result<BTreeMap<String, (u64, u64)>, AwsError> {
        let mut depths = BTreeMap::new();
        for (logical_id, queue) in &self.stack.queues {
            let output = self
                .sqs
                .get_queue_attributes()
                .queue_url(&queue.url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                .send()
                .await
                .map_err(|e| AwsError::sqs("GetQueueAttributes", e))?;
            let attributes = output.attributes.unwrap_or_default();
            let number = |name: &QueueAttributeName| {
                attributes
                    .get(name)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let waiting = number(&QueueAttributeName::ApproximateNumberOfMessages)
                + number(&QueueAttributeName::ApproximateNumberOfMessagesDelayed);
            depths.insert(
                logical_id.clone(),
                (
                    waiting,
                    number(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                ),
            );
        }
        Ok(depths)
    }

    /// Waits until the queues named in `consumed` hold no message, waiting or in flight, on two
    /// checks in a row.
    pub async fn wait_until_idle(
        &self,
        consumed: &[&str],
        timeout: Duration,
    ) -> Result<(), RunnerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut quiet_checks = 0;
        loop {
            let depths = self.queue_depths().await?;
            let busy: Vec<String> = consumed
                .iter()
                .filter_map(|name| {
                    depths
                        .get(*name)
                        .filter(|(w, f)| w + f > 0)
                        .map(|(w, f)| format!("{name}: {w} waiting, {f} in flight"))
                })
                .collect();
            if busy.is_empty() {
                quiet_checks += 1;
                if quiet_checks == 2 {
                    return Ok(());
                }
            } else {
                quiet_checks = 0;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RunnerError::NotIdle(timeout, busy.join("; ")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the listener, the pollers and the schedule timers.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}
