//! Employee routes: list, detail, manual add, licences and the hidden flag.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use rollcall::directory::{self, Activity, ActivityItem, DirectoryUserItem};
use rollcall::email::canonical_email;
use rollcall::integration::Provider;
use rollcall::problem::Problem;
use rollcall::store::{EmployeeQuery, EmployeeSort, LicenceResult, Store, TransactError};
use rollcall::table::{
    self, EmployeeItem, GroupItem, LicenceState, NewEmployee, ProfileItem, TenantItem, source,
};
use rollcall::telemetry::storage_time;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Administrator;
use crate::http::{
    MAX_BULK_IDS, bad_request, internal, json, json_body, not_found, path_parameter,
    query_parameter,
};
use crate::mail::Outbox;

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 200;
const MAX_NAME_CHARS: usize = 200;

/// An employee as lists show it.
#[derive(Debug, Serialize)]
pub struct EmployeeSummary {
    pub employee_id: String,
    pub name: Option<String>,
    pub primary_email: String,
    pub licence_state: LicenceState,
    pub licensed_at: Option<String>,
    pub hidden: bool,
    pub first_seen: String,
    pub sources: Vec<String>,
    pub groups: Vec<String>,
    pub last_extension_activity: Option<String>,
}

impl From<&EmployeeItem> for EmployeeSummary {
    fn from(employee: &EmployeeItem) -> Self {
        Self {
            employee_id: employee.employee_id.clone(),
            name: employee.name.clone(),
            primary_email: employee.primary_email.clone(),
            licence_state: employee.licence_state,
            licensed_at: employee.licensed_at.clone(),
            hidden: employee.hidden,
            first_seen: employee.first_seen.clone(),
            sources: employee.sources.clone(),
            groups: employee.groups.clone(),
            last_extension_activity: employee.last_extension_activity.clone(),
        }
    }
}

pub async fn list(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let licence = match query_parameter(request, "licence").as_deref() {
        None => None,
        Some("licensed") => Some(LicenceState::Licensed),
        Some("unlicensed") => Some(LicenceState::Unlicensed),
        Some(_) => return Err(bad_request("licence", "must be licensed or unlicensed")),
    };
    let hidden = match query_parameter(request, "hidden").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(bad_request("hidden", "must be true or false")),
    };
    let sort = match query_parameter(request, "sort").as_deref() {
        None | Some("first_seen") => EmployeeSort::FirstSeen,
        Some("name") => EmployeeSort::Name,
        Some(_) => return Err(bad_request("sort", "must be first_seen or name")),
    };
    let limit = match query_parameter(request, "limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                bad_request(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                )
            })?,
    };
    let prefix = query_parameter(request, "q")
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let query = EmployeeQuery {
        licence,
        hidden,
        group: query_parameter(request, "group"),
        prefix,
        sort,
        limit,
    };

    let cursor = query_parameter(request, "cursor");
    let page = store
        .list_employees(&admin.tenant_id, &query, cursor.as_deref())
        .await
        .map_err(internal)?;
    let page = page.map_err(|_| {
        bad_request(
            "cursor",
            "is not valid for this list; start again without it",
        )
    })?;

    let employees: Vec<EmployeeSummary> =
        page.employees.iter().map(EmployeeSummary::from).collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "employees": employees, "next_cursor": page.next_cursor }),
    ))
}

pub async fn detail(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    let employee_id = employee_id(request)?;

    let employee = store
        .employee(&admin.tenant_id, &employee_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("employee"))?;
    let mut accounts = Vec::new();
    for email in &employee.emails {
        let Ok(email) = canonical_email(email) else {
            continue;
        };
        accounts.extend(
            store
                .accounts_for_email(&admin.tenant_id, &email)
                .await
                .map_err(internal)?,
        );
    }
    let tenant_pk = table::tenant_pk(&admin.tenant_id);
    let profile_keys: Vec<(String, String)> = employee
        .install_ids
        .iter()
        .map(|id| (tenant_pk.clone(), table::profile_sk(id)))
        .collect();
    let profiles = store.get_items(&profile_keys).await.map_err(internal)?;
    let browsers: Vec<ProfileItem> = profiles
        .into_values()
        .filter_map(|item| serde_dynamo::from_item(item).ok())
        .collect();

    let group_keys: Vec<(String, String)> = employee
        .groups
        .iter()
        .map(|id| (tenant_pk.clone(), table::group_sk(id)))
        .collect();
    let groups: Vec<GroupItem> = store
        .get_items(&group_keys)
        .await
        .map_err(internal)?
        .into_values()
        .filter_map(|item| serde_dynamo::from_item(item).ok())
        .collect();

    let (directory, mut activity) = directory_view(store, &tenant_pk, &employee).await?;
    // After the inactivity sweep, browser and directory activity stay out of view until the
    // extension reports again.
    let mut browsers = browsers;
    if employee.activity_hidden_at.is_some() {
        browsers.clear();
        activity = json!({});
    }

    let body = json!({
        "employee": EmployeeSummary::from(&employee),
        "groups": groups.iter().map(|g| json!({"group_id": g.group_id, "name": g.name, "kind": g.kind})).collect::<Vec<_>>(),
        "emails": employee.emails,
        "browsers": browsers.iter().map(|b| json!({
            "install_id": b.install_id, "browser": b.browser, "browser_version": b.browser_version,
            "extension_version": b.extension_version, "managed": b.managed, "last_seen": b.last_seen,
        })).collect::<Vec<_>>(),
        "accounts": accounts.iter().map(|a| json!({
            "app_domain": a.app_domain, "app_name": a.app_name, "account_email": a.account_email,
            "login_methods": a.login_methods, "identity_providers": a.identity_providers,
            "first_seen": a.first_seen, "last_seen": a.last_seen,
        })).collect::<Vec<_>>(),
        // MFA is enrolled when any linked directory reports it, and null until one reports it.
        "mfa": directory.iter().filter_map(|d| d.user.mfa).reduce(|a, b| a || b),
        "directory": directory.iter().map(|d| json!({
            "provider": d.provider, "provider_id": d.user.id, "email": d.user.email,
            "aliases": d.user.aliases, "is_admin": d.user.is_admin, "mfa": d.user.mfa,
            "status": d.user.status, "guest": d.user.guest, "removed_at": d.removed_at,
        })).collect::<Vec<_>>(),
        "activity": activity,
        "activity_hidden_at": employee.activity_hidden_at,
    });
    Ok(json(StatusCode::OK, &body))
}

/// Reads the directory records linked to an employee, and their grants, mailbox rules, apps
/// and sign-ins by kind.
async fn directory_view(
    store: &Store,
    tenant_pk: &str,
    employee: &EmployeeItem,
) -> Result<(Vec<DirectoryUserItem>, serde_json::Value), Problem> {
    let links = [
        (Provider::Microsoft, &employee.directory_microsoft),
        (Provider::Google, &employee.directory_google),
        (Provider::Okta, &employee.directory_okta),
    ];
    let mut keys = Vec::new();
    for (provider, id) in links {
        let Some(id) = id else { continue };
        keys.push((
            tenant_pk.to_owned(),
            directory::directory_user_sk(provider, id),
        ));
        for kind in directory::ACTIVITY_KINDS {
            keys.push((
                tenant_pk.to_owned(),
                directory::activity_sk(provider, kind, id),
            ));
        }
    }
    let items = store.get_items(&keys).await.map_err(internal)?;
    let mut users = Vec::new();
    let mut activity = serde_json::Map::new();
    for key in &keys {
        let Some(item) = items.get(key) else { continue };
        if key.1.starts_with(directory::DIRECTORY_USER_SK_PREFIX) {
            users.extend(serde_dynamo::from_item::<_, DirectoryUserItem>(item.clone()).ok());
        } else if let Ok(stored) = serde_dynamo::from_item::<_, ActivityItem>(item.clone()) {
            let list = activity
                .entry(stored.activity.kind())
                .or_insert_with(|| json!([]));
            let entries = match &stored.activity {
                Activity::OauthGrants(items) => serde_json::to_value(items),
                Activity::MailRules(items) => serde_json::to_value(items),
                Activity::SsoApps(items) => serde_json::to_value(items),
                Activity::SignIns(items) => serde_json::to_value(items),
            }
            .unwrap_or_default();
            if let (Some(list), serde_json::Value::Array(entries)) = (list.as_array_mut(), entries)
            {
                list.extend(entries.into_iter().map(|mut entry| {
                    entry["provider"] = json!(stored.provider);
                    entry
                }));
            }
        }
    }
    Ok((users, serde_json::Value::Object(activity)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddEmployee {
    name: String,
    email: String,
    /// Also email the employee a self-enrolment link.
    #[serde(default)]
    send_enrolment_email: bool,
}

pub async fn add(
    store: &Store,
    outbox: &Outbox,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: AddEmployee = json_body(request)?;
    let send_enrolment_email = body.send_enrolment_email;
    let name = body.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(bad_request(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    let email = canonical_email(&body.email).map_err(|e| bad_request("email", e.to_string()))?;

    let now = storage_time(chrono::Utc::now());
    let employee = EmployeeItem::new(NewEmployee {
        tenant_id: &admin.tenant_id,
        employee_id: uuid::Uuid::new_v4().to_string(),
        name: Some(name.to_owned()),
        email: &email,
        licence_state: LicenceState::Unlicensed,
        first_seen: now.clone(),
        now,
        source: source::MANUAL.to_owned(),
        install_id: None,
    });
    let items = store.put_new_employee(&employee).map_err(internal)?;
    match store.transact(items).await {
        Ok(()) => {
            let mut body = json!(EmployeeSummary::from(&employee));
            if send_enrolment_email {
                let queued = outbox
                    .send_enrolment(store, &admin.tenant_id, &employee.employee_id, &email)
                    .await;
                if let Err(error) = &queued {
                    tracing::error!(employee_id = employee.employee_id, error = %error, "enrolment email not queued");
                }
                body["enrolment_email_queued"] = json!(queued.is_ok());
            }
            Ok(json(StatusCode::CREATED, &body))
        } // Items: 0 employee, 1 email owner.
        Err(error) if error.condition_failed(1) => Err(Problem::new(
            409,
            "Conflict",
            format!("an employee with email {email} already exists"),
        )
        .with("field", json!("email"))),
        Err(TransactError::Store(error)) => Err(internal(error)),
        Err(error) => Err(Problem::new(
            503,
            "Service Unavailable",
            format!("the employee could not be created: {error}; retry later"),
        )),
    }
}

/// Emails a new self-enrolment link to an employee. Earlier links stay valid until they expire
/// or are used.
pub async fn resend_enrolment(
    store: &Store,
    outbox: &Outbox,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let employee_id = employee_id(request)?;

    let employee = store
        .employee(&admin.tenant_id, &employee_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("employee"))?;
    let email = canonical_email(&employee.primary_email).map_err(|_| {
        Problem::new(
            500,
            "Internal Server Error",
            "the employee's stored email is not valid",
        )
    })?;
    let expires = outbox
        .send_enrolment(store, &admin.tenant_id, &employee_id, &email)
        .await
        .map_err(|error| {
            tracing::error!(employee_id, error = %error, "enrolment email not queued");
            Problem::new(
                503,
                "Service Unavailable",
                "the enrolment email could not be queued; retry later",
            )
        })?;
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({ "employee_id": employee_id, "link_expires_at": expires.to_rfc3339() }),
    ))
}

pub async fn set_licence(
    store: &Store,
    admin: &Administrator,
    request: &Request,
    state: LicenceState,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let employee_id = employee_id(request)?;

    let now = storage_time(chrono::Utc::now());
    match store
        .set_licence(&admin.tenant_id, &employee_id, state, &now)
        .await
        .map_err(internal)?
    {
        LicenceResult::NotFound => Err(not_found("employee")),
        LicenceResult::NoSeatFree => {
            let tenant = tenant(store, admin).await?;
            Err(Problem::new(
                409,
                "Conflict",
                format!(
                    "no seat is free: all {} seats of the plan are in use",
                    tenant.plan_seats
                ),
            )
            .with("plan_seats", json!(tenant.plan_seats))
            .with("licences_in_use", json!(tenant.licences_in_use)))
        }
        LicenceResult::Changed | LicenceResult::Unchanged => {
            let employee = store
                .employee(&admin.tenant_id, &employee_id)
                .await
                .map_err(internal)?
                .ok_or_else(|| not_found("employee"))?;
            Ok(json(StatusCode::OK, &EmployeeSummary::from(&employee)))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkLicences {
    action: String,
    employee_ids: Vec<String>,
}

/// Assigns or removes licences for many employees. Each change is its own conditional
/// transaction, so a bulk assignment never licenses more employees than there are free seats.
pub async fn bulk_licences(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: BulkLicences = json_body(request)?;
    let state = match body.action.as_str() {
        "assign" => LicenceState::Licensed,
        "remove" => LicenceState::Unlicensed,
        _ => return Err(bad_request("action", "must be assign or remove")),
    };
    let employee_ids = check_ids(body.employee_ids)?;

    let now = storage_time(chrono::Utc::now());
    let (mut changed, mut unchanged, mut not_found_ids, mut no_seat) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for employee_id in employee_ids {
        match store
            .set_licence(&admin.tenant_id, &employee_id, state, &now)
            .await
            .map_err(internal)?
        {
            LicenceResult::Changed => changed.push(employee_id),
            LicenceResult::Unchanged => unchanged.push(employee_id),
            LicenceResult::NotFound => not_found_ids.push(employee_id),
            LicenceResult::NoSeatFree => no_seat.push(employee_id),
        }
    }

    let tenant = tenant(store, admin).await?;
    let detail = if no_seat.is_empty() {
        format!(
            "{} changed, {} already in that state, {} not found",
            changed.len(),
            unchanged.len(),
            not_found_ids.len()
        )
    } else {
        format!(
            "{} could not be licensed because all {} seats of the plan are in use",
            no_seat.len(),
            tenant.plan_seats
        )
    };
    let body = json!({
        "changed": changed, "unchanged": unchanged, "not_found": not_found_ids, "no_seat_free": no_seat,
        "detail": detail, "plan_seats": tenant.plan_seats, "licences_in_use": tenant.licences_in_use,
    });
    Ok(json(StatusCode::OK, &body))
}

pub async fn set_hidden(
    store: &Store,
    admin: &Administrator,
    request: &Request,
    hidden: bool,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let employee_id = employee_id(request)?;

    if !store
        .set_hidden(&admin.tenant_id, &employee_id, hidden)
        .await
        .map_err(internal)?
    {
        return Err(not_found("employee"));
    }
    let employee = store
        .employee(&admin.tenant_id, &employee_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("employee"))?;
    Ok(json(StatusCode::OK, &EmployeeSummary::from(&employee)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkHidden {
    hidden: bool,
    employee_ids: Vec<String>,
}

pub async fn bulk_hidden(
    store: &Store,
    admin: &Administrator,
    request: &Request,
) -> Result<Response<Body>, Problem> {
    admin.require_write()?;
    let body: BulkHidden = json_body(request)?;
    let employee_ids = check_ids(body.employee_ids)?;

    let (mut changed, mut not_found_ids) = (Vec::new(), Vec::new());
    for employee_id in employee_ids {
        if store
            .set_hidden(&admin.tenant_id, &employee_id, body.hidden)
            .await
            .map_err(internal)?
        {
            changed.push(employee_id);
        } else {
            not_found_ids.push(employee_id);
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({ "changed": changed, "not_found": not_found_ids }),
    ))
}

/// Reads the `employee_id` path parameter; an id with characters no employee id has is 404.
fn employee_id(request: &Request) -> Result<String, Problem> {
    let id = path_parameter(request, "employee_id")?;
    rollcall::ids::validate_opaque_id(&id).map_err(|_| not_found("employee"))?;
    Ok(id)
}

fn check_ids(ids: Vec<String>) -> Result<Vec<String>, Problem> {
    if ids.is_empty() || ids.len() > MAX_BULK_IDS {
        return Err(bad_request(
            "employee_ids",
            format!("must list 1 to {MAX_BULK_IDS} employee ids"),
        ));
    }
    let mut unique = Vec::with_capacity(ids.len());
    for id in ids {
        if rollcall::ids::validate_opaque_id(&id).is_err() {
            return Err(bad_request(
                "employee_ids",
                format!("{id:?} is not an employee id"),
            ));
        }
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    Ok(unique)
}

pub async fn tenant(store: &Store, admin: &Administrator) -> Result<TenantItem, Problem> {
    store
        .get(&table::tenant_pk(&admin.tenant_id), table::TENANT_SK)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found("tenant"))
}
