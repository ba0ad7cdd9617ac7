//! The local runner fires scheduled functions on request, with an EventBridge scheduled event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use local_runner::functions::{Handler, Registry};
use local_runner::stack::Stack;
use local_runner::template::Template;
use local_runner::{Runner, RunnerConfig};
use rollcall::aws::Clients;
use rollcall::error::BoxError;
use rollcall_tests::{endpoint, unique_prefix};
use serde_json::Value;

const FIXTURE: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  TickFunction:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 5
      Events:
        Hourly:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
"#;

struct TickRegistry {
    events: Arc<std::sync::Mutex<Vec<Value>>>,
    calls: Arc<AtomicUsize>,
}

impl Registry for TickRegistry {
    fn build(
        &self,
        logical_id: &str,
        _environment: &HashMap<String, String>,
        _clients: &Clients,
    ) -> Result<Handler, BoxError> {
        assert_eq!(logical_id, "TickFunction");
        let events = Arc::clone(&self.events);
        let calls = Arc::clone(&self.calls);
        Ok(Handler::Schedule(Arc::new(move |event| {
            calls.fetch_add(1, Ordering::SeqCst);
            events.lock().unwrap().push(event);
            Box::pin(async { Ok(()) })
        })))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_fires_on_request() {
    let sdk = rollcall::aws::local_sdk_config(&endpoint()).await;
    let template = Template::parse(FIXTURE).unwrap();
    let stack = Stack::create(&sdk, &template, &unique_prefix())
        .await
        .unwrap();
    let registry = TickRegistry {
        events: Default::default(),
        calls: Default::default(),
    };
    let runner = Runner::start(
        &Clients::new(&sdk),
        &template,
        stack,
        &registry,
        RunnerConfig::default(),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();

    let fired = client
        .post(format!("{}/_local/schedules/TickFunction", runner.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(fired.status().as_u16(), 200);
    assert_eq!(registry.calls.load(Ordering::SeqCst), 1);
    let event = registry.events.lock().unwrap()[0].clone();
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["source"], "aws.events");

    let unknown = client
        .post(format!("{}/_local/schedules/NoSuchFunction", runner.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let no_route = client
        .get(format!("{}/v1/nothing", runner.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(no_route.status().as_u16(), 404);
    runner.stop().await;
}
