//! Rules the SAM template must keep: every queue has a dead-letter queue, every SQS event
//! source reports partial batch failures, visibility timeouts cover retries, functions build
//! for arm64 with cargo-lambda, and the table matches the layout the code uses.

use std::collections::BTreeSet;

use rollcall_tests::{template, workspace_root};
use serde_yaml_ng::Value;

fn raw_template() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("infra/template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

fn resources(root: &Value, resource_type: &str) -> Vec<(String, Value)> {
    root["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(resource_type))
        .map(|(name, resource)| (name.as_str().unwrap().to_owned(), resource.clone()))
        .collect()
}

#[test]
fn every_queue_has_dead_letter_queue() {
    let template = template();
    let root = raw_template();
    let dead_letter_targets: BTreeSet<String> = template
        .queues
        .values()
        .filter_map(|properties| properties.get("RedrivePolicy"))
        .filter_map(|policy| {
            match local_runner::template::reference(&policy["deadLetterTargetArn"]) {
                Some(local_runner::template::Reference::GetAtt(queue, _)) => Some(queue),
                _ => None,
            }
        })
        .collect();

    for (name, properties) in &template.queues {
        if dead_letter_targets.contains(name) {
            assert!(
                properties.get("RedrivePolicy").is_none(),
                "{name}: a dead-letter queue has no redrive of its own"
            );
            continue;
        }
        let policy = properties
            .get("RedrivePolicy")
            .unwrap_or_else(|| panic!("{name} has no RedrivePolicy"));
        let max_receive_count = policy["maxReceiveCount"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} has no maxReceiveCount"));
        assert!(
            (1..=10).contains(&max_receive_count),
            "{name}: maxReceiveCount {max_receive_count}"
        );
    }
    assert_eq!(
        dead_letter_targets.len(),
        template.queues.len() - dead_letter_targets.len(),
        "one dead-letter queue per queue"
    );
    assert!(!resources(&root, "AWS::SQS::Queue").is_empty());
}

#[test]
fn sqs_sources_report_batch_item_failures() {
    let template = template();
    let mut sources = 0;
    for function in template.functions.values() {
        for source in &function.queue_sources {
            sources += 1;
            assert!(
                source.report_batch_item_failures,
                "{} on {} lacks ReportBatchItemFailures",
                function.logical_id, source.queue
            );
            let visibility = template.queues[&source.queue]["VisibilityTimeout"]
                .as_u64()
                .unwrap_or(30);
            assert!(
                visibility >= 6 * function.timeout_seconds,
                "{}: visibility timeout {visibility} s is under six times the {} s function timeout",
                source.queue,
                function.timeout_seconds
            );
        }
    }
    assert!(sources > 0);
}

#[test]
fn functions_build_for_arm64_with_cargo_lambda() {
    let root = raw_template();
    let globals = &root["Globals"]["Function"];
    let workspace = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    for (name, resource) in resources(&root, "AWS::Serverless::Function") {
        let properties = &resource["Properties"];
        let runtime = properties.get("Runtime").unwrap_or(&globals["Runtime"]);
        assert_eq!(runtime.as_str(), Some("provided.al2023"), "{name}");
        let architectures = properties
            .get("Architectures")
            .unwrap_or(&globals["Architectures"]);
        assert_eq!(architectures[0].as_str(), Some("arm64"), "{name}");
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}"
        );
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} names no binary"));
        assert!(
            workspace.contains(&format!("\"functions/{binary}\"")),
            "{name}: binary {binary} is a workspace member"
        );
        assert!(
            properties.get("Policies").is_some(),
            "{name} has its own least-privilege policies"
        );
    }
}

#[test]
fn table_matches_code_layout() {
    let root = raw_template();
    let (_, table) = resources(&root, "AWS::DynamoDB::Table")
        .into_iter()
        .next()
        .expect("a table");
    let properties = &table["Properties"];
    assert_eq!(properties["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
    assert_eq!(
        properties["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some(rollcall::table::EXPIRES_AT)
    );
    assert_eq!(
        properties["KeySchema"][0]["AttributeName"].as_str(),
        Some(rollcall::table::PK)
    );
    assert_eq!(
        properties["KeySchema"][1]["AttributeName"].as_str(),
        Some(rollcall::table::SK)
    );
    let index = &properties["GlobalSecondaryIndexes"][0];
    assert_eq!(index["IndexName"].as_str(), Some(rollcall::table::GSI1));
    assert_eq!(
        index["KeySchema"][0]["AttributeName"].as_str(),
        Some(rollcall::table::GSI1_PK)
    );
    assert_eq!(
        index["KeySchema"][1]["AttributeName"].as_str(),
        Some(rollcall::table::GSI1_SK)
    );
}
