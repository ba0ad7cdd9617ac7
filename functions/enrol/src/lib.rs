//! `POST /v1/enroll`: the extension redeems a self-enrolment link. That licenses the employee
//! (a seat permitting), records the extension as a source, links the browser profile, and
//! returns a new extension key for that profile. The link is marked used in the same
//! transaction, so it works once.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::Utc;
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, Response};
use rollcall::aws::Clients;
use rollcall::config::{ConfigError, Lookup, required};
use rollcall::enrolment::{self, EnrolmentItem};
use rollcall::extension_key;
use rollcall::ids::validate_opaque_id;
use rollcall::problem::{self, Problem};
use rollcall::store::{EmployeeChange, Store, StoreError, TransactError};
use rollcall::table::{self, EmployeeItem, ExtensionKeyItem, LicenceState, source};
use rollcall::telemetry::storage_time;
use serde::Deserialize;
use serde_json::json;
use tracing::{error, info, warn};

const MAX_ATTEMPTS: u32 = 4;

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
}

impl Config {
    pub fn from_lookup(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required(lookup, "TABLE_NAME")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Enrol {
    store: Store,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    token: String,
    install_id: String,
}

/// The items one redemption attempt writes.
#[derive(Clone, Copy)]
struct Redemption<'a> {
    tenant_id: &'a rollcall::ids::TenantId,
    link: &'a EnrolmentItem,
    employee: &'a EmployeeItem,
    install_id: &'a str,
    key: &'a extension_key::NewExtensionKey,
}

impl Enrol {
    pub fn new(clients: &Clients, config: Config) -> Self {
        Self {
            store: Store::new(clients.dynamodb.clone(), config.table_name),
        }
    }

    pub async fn handle(&self, request: Request) -> Response<Body> {
        match self.redeem(&request).await {
            Ok(response) => response,
            Err(problem) => {
                info!(
                    status = problem.status,
                    reason = problem.detail,
                    "enrolment rejected"
                );
                problem_response(&problem)
            }
        }
    }

    async fn redeem(&self, request: &Request) -> Result<Response<Body>, Problem> {
        let body: RedeemRequest = serde_json::from_slice(request.body().as_ref()).map_err(|e| {
            Problem::new(
                400,
                "Bad Request",
                format!("the body is not a valid enrolment request: {e}"),
            )
        })?;
        validate_opaque_id(&body.install_id).map_err(|e| {
            Problem::new(400, "Bad Request", format!("install_id: {e}"))
                .with("field", json!("install_id"))
        })?;
        let presented = enrolment::parse(&body.token).ok_or_else(|| {
            Problem::new(400, "Bad Request", "token: is not an enrolment token")
                .with("field", json!("token"))
        })?;

        let tenant_pk = table::tenant_pk(&presented.tenant_id);
        for _ in 0..MAX_ATTEMPTS {
            let link: EnrolmentItem = self
                .store
                .get(
                    &tenant_pk,
                    &enrolment::enrolment_sk(&presented.secret_sha256),
                )
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    Problem::new(
                        404,
                        "Not Found",
                        "this enrolment link is not valid; ask your administrator for a new one",
                    )
                })?;
            let now = Utc::now();
            if link.used_at.is_some() {
                return Err(Problem::new(
                    410,
                    "Gone",
                    "this enrolment link was already used; ask your administrator for a new one",
                ));
            }
            if link.expires_at <= now.timestamp() {
                return Err(Problem::new(
                    410,
                    "Gone",
                    "this enrolment link has expired; ask your administrator for a new one",
                ));
            }
            let employee: EmployeeItem = self
                .store
                .employee(&presented.tenant_id, &link.employee_id)
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    Problem::new(
                        410,
                        "Gone",
                        "the employee this link was for no longer exists",
                    )
                })?;

            let key = extension_key::generate(&presented.tenant_id);
            let licence = employee.licence_state == LicenceState::Unlicensed;
            let redemption = Redemption {
                tenant_id: &presented.tenant_id,
                link: &link,
                employee: &employee,
                install_id: &body.install_id,
                key: &key,
            };
            match self.transact(&redemption, licence).await {
                Ok(()) => {
                    self.record_activity(&presented.tenant_id, &employee).await;
                    return Ok(success(&presented.tenant_id, &employee, true, &key.token));
                }
                // Items: 0 link, 1 employee, 2 seat when licensing.
                Err(error) if error.condition_failed(0) => {
                    return Err(Problem::new(
                        410,
                        "Gone",
                        "this enrolment link was already used; ask your administrator for a new one",
                    ));
                }
                Err(error)
                    if licence && error.condition_failed(2) && !error.condition_failed(1) =>
                {
                    self.transact(&redemption, false)
                        .await
                        .map_err(transaction_problem)?;
                    self.record_activity(&presented.tenant_id, &employee).await;
                    return Ok(success(&presented.tenant_id, &employee, false, &key.token));
                }
                Err(TransactError::Store(error)) => return Err(internal(error)),
                Err(_) => continue,
            }
        }
        Err(Problem::new(
            503,
            "Service Unavailable",
            "the enrolment could not be completed now; retry",
        ))
    }

    /// Starts the employee's extension activity at the enrolment, so that an extension that
    /// never reports still frees its licence after the inactivity period. Failing here does
    /// not undo the enrolment; the extension's first report records activity as well.
    async fn record_activity(&self, tenant_id: &rollcall::ids::TenantId, employee: &EmployeeItem) {
        let now = storage_time(Utc::now());
        if let Err(error) = self
            .store
            .touch_extension_activity(tenant_id, &employee.employee_id, &now)
            .await
        {
            warn!(tenant_id = %tenant_id, employee_id = employee.employee_id, error = %error, "extension activity not recorded at enrolment");
        }
    }

    async fn transact(
        &self,
        redemption: &Redemption<'_>,
        licence: bool,
    ) -> Result<(), TransactError> {
        let Redemption {
            tenant_id,
            link,
            employee,
            install_id,
            key,
        } = *redemption;
        let now = storage_time(Utc::now());
        let use_link = Update::builder()
            .table_name(self.store.table_name())
            .key(table::PK, AttributeValue::S(link.pk.clone()))
            .key(table::SK, AttributeValue::S(link.sk.clone()))
            .update_expression("SET used_at = :now")
            .condition_expression("attribute_not_exists(used_at) AND expires_at > :epoch")
            .expression_attribute_values(":now", AttributeValue::S(now.clone()))
            .expression_attribute_values(
                ":epoch",
                AttributeValue::N(Utc::now().timestamp().to_string()),
            )
            .build()
            .expect("table, key and expression are set");

        let mut change = EmployeeChange {
            add_install_ids: vec![install_id.to_owned()],
            ..Default::default()
        };
        if !employee.sources.iter().any(|s| s == source::EXTENSION) {
            change.add_sources.push(source::EXTENSION.to_owned());
        }
        if licence {
            change.licence = Some((LicenceState::Licensed, now.clone()));
            change.licence_gsi1_pk =
                Some(table::licence_gsi1_pk(tenant_id, LicenceState::Licensed));
        }

        let mut items = vec![
            TransactWriteItem::builder().update(use_link).build(),
            self.store.update_employee(employee, &change),
        ];
        if licence {
            items.push(self.store.take_seat(&employee.pk));
        }
        items.push(
            self.store
                .link_profile(&employee.pk, install_id, &employee.employee_id),
        );
        let key_item = ExtensionKeyItem {
            pk: employee.pk.clone(),
            sk: table::extension_key_sk(&key.key_id),
            tenant_id: tenant_id.clone(),
            key_id: key.key_id.clone(),
            name: format!("self-enrolment of {install_id}"),
            secret_sha256: key.secret_sha256.clone(),
            created_at: now,
            revoked_at: None,
        };
        items.push(self.store.put_new(&key_item)?);
        self.store.transact(items).await
    }
}

fn success(
    tenant_id: &rollcall::ids::TenantId,
    employee: &EmployeeItem,
    licensed_now: bool,
    key: &str,
) -> Response<Body> {
    let licensed = licensed_now || employee.licence_state == LicenceState::Licensed;
    info!(tenant_id = %tenant_id, employee_id = employee.employee_id, licensed, "self-enrolment completed");
    let body = json!({
        "tenant_id": tenant_id,
        "employee_id": employee.employee_id,
        "licensed": licensed,
        "detail": if licensed { "enrolled and licensed" } else { "enrolled; no seat is free, so an administrator must free one to license you" },
        "extension_key": key,
    });
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn internal(error: StoreError) -> Problem {
    error!(error = %error, "storage request failed");
    Problem::new(
        503,
        "Service Unavailable",
        "the enrolment could not be completed now; retry",
    )
}

fn transaction_problem(error: TransactError) -> Problem {
    match error {
        TransactError::Store(error) => internal(error),
        _ => Problem::new(
            409,
            "Conflict",
            "the enrolment changed while the request ran; retry",
        ),
    }
}

fn problem_response(problem: &Problem) -> Response<Body> {
    let mut response = Response::new(Body::Text(problem.to_json()));
    *response.status_mut() =
        StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(problem::CONTENT_TYPE),
    );
    response
}
