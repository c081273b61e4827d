//! Harbor's garbage collection routes (`/system/gc`, swagger tag `gc`), system admins only:
//! the history of runs (`GET /system/gc`, `GET /system/gc/{gc_id}`, `GET /system/gc/{gc_id}/log`)
//! as the `gc` stream records them; `PUT /system/gc/{gc_id}`, which asks a run to stop (it ends
//! at its next safe point); and `GET|POST|PUT /system/gc/schedule`: `Manual` starts a run now
//! (201, `Location: /api/v2.0/system/gc/{id}`; 409 while one is under way), `Hourly`, `Daily`,
//! `Weekly`, `Custom` and `Schedule` keep a recurring schedule (`berth serve` and the janitor
//! function run it), `None` removes it.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::app::{grace_from_env, GcOptions, GcRecord};
use crate::domain::access::AccessCommand;
use crate::domain::lifecycle::schedule::{default_cron, GcScheduleSpec, RECURRING_KINDS};

use super::caller::{Caller, Sent, SysAdmin};
use super::request::{numeric_id, Query};
use super::{created, ok, pagination, timestamp, ApiError};

/// Harbor's names for the job.
const JOB_NAME: &str = "GARBAGE_COLLECTION";

#[derive(Debug, Serialize)]
struct ScheduleObj {
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Harbor's `GCHistory`.
#[derive(Debug, Serialize)]
struct GcHistoryJson {
    id: u64,
    job_name: &'static str,
    job_kind: &'static str,
    /// JSON, as Harbor sends it: `{"delete_untagged":…,"dry_run":…}`.
    job_parameters: String,
    schedule: ScheduleObj,
    /// `Running`, `Success`, `Error` or `Stopped`.
    job_status: String,
    deleted: bool,
    creation_time: String,
    update_time: String,
}

fn to_json(record: &GcRecord) -> GcHistoryJson {
    let parameters = json!({"delete_untagged": record.delete_untagged, "dry_run": record.dry_run});
    GcHistoryJson {
        id: record.id,
        job_name: JOB_NAME,
        job_kind: if record.scheduled_for.is_some() {
            "SCHEDULE"
        } else {
            "MANUAL"
        },
        job_parameters: parameters.to_string(),
        schedule: ScheduleObj {
            kind: if record.scheduled_for.is_some() {
                "Schedule"
            } else {
                "Manual"
            },
        },
        job_status: (record.finished.as_ref()).map_or_else(|| "Running".to_string(), |f| f.status.clone()),
        deleted: false,
        creation_time: timestamp(record.started_at),
        update_time: timestamp(record.finished.as_ref().map_or(record.started_at, |f| f.at)),
    }
}

/// The run `raw` names.
async fn record_of(caller: &Caller<SysAdmin>, raw: &str) -> Result<GcRecord, ApiError> {
    let id = numeric_id(raw, "the gc id")?;
    (caller.registry().gc_history().await?.into_iter())
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::not_found(format!("garbage collection run {id} does not exist")))
}

/// `GET /system/gc`: the runs, newest first, paged.
pub(super) async fn list(query: Query, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let mut runs = caller.registry().gc_history().await?;
    runs.reverse();
    let items: Vec<GcHistoryJson> = runs.iter().map(to_json).collect();
    pagination::respond(items, "/system/gc", &query)
}

/// `GET /system/gc/{gc_id}`.
pub(super) async fn get(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    ok(&to_json(&record_of(&caller, &raw).await?))
}

/// `PUT /system/gc/{gc_id}`: asks the run to stop (200; a finished run is left as it is).
pub(super) async fn stop(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let id = numeric_id(&raw, "the gc id")?;
    let ctx = crate::app::RequestContext::as_principal(caller.principal.clone());
    if !caller.registry().stop_gc(&ctx, id).await? {
        return Err(ApiError::not_found(format!(
            "garbage collection run {id} does not exist"
        )));
    }
    Ok(StatusCode::OK.into_response())
}

/// `GET /system/gc/{gc_id}/log`: the run's parameters, progress and outcome, as text.
pub(super) async fn log(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let record = record_of(&caller, &raw).await?;
    let mut lines = vec![format!(
        "{} garbage collection run {} started (delete_untagged={}, dry_run={})",
        timestamp(record.started_at),
        record.id,
        record.delete_untagged,
        record.dry_run
    )];
    for (at, line) in &record.log {
        lines.push(format!("{} {line}", timestamp(*at)));
    }
    match &record.finished {
        None => lines.push("running".to_string()),
        Some(f) => {
            lines.push(format!(
                "{} {}: {} manifests deleted, {} blob links removed, {} blobs deleted, {} bytes freed, in {} ms",
                timestamp(f.at),
                f.status,
                f.manifests_deleted,
                f.links_removed,
                f.blobs_deleted,
                f.bytes_freed,
                f.duration_ms
            ));
            if let Some(error) = &f.error {
                lines.push(format!("error: {error}"));
            }
        }
    }
    let body = lines.join("\n") + "\n";
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}

/// `GET /system/gc/schedule`: the recurring schedule (`None` without one), its parameters and
/// when it fires next.
pub(super) async fn schedule(caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let Some(schedule) = &caller.directory.gc_schedule else {
        return ok(&json!({"schedule": {"type": "None"}}));
    };
    let mut obj = json!({"type": schedule.spec.kind, "cron": schedule.spec.cron});
    if let Some(next) = schedule.cron.next_after(chrono::Utc::now()) {
        obj["next_scheduled_time"] = json!(timestamp(next));
    }
    ok(&json!({
        "schedule": obj,
        "parameters": {"delete_untagged": schedule.spec.delete_untagged, "dry_run": schedule.spec.dry_run},
        "creation_time": timestamp(schedule.since),
        "update_time": timestamp(schedule.since),
    }))
}

#[derive(Debug, Deserialize)]
pub(super) struct ScheduleRequest {
    #[serde(default)]
    schedule: Option<ScheduleObjRequest>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ScheduleObjRequest {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// Harbor's cron expression (six fields, seconds first): for `Custom` and `Schedule`, and
    /// instead of the type's own for `Hourly`, `Daily` and `Weekly`.
    #[serde(default)]
    cron: Option<String>,
}

/// A boolean parameter of the run (absent is false).
fn flag(parameters: &Map<String, Value>, name: &str) -> Result<bool, ApiError> {
    match parameters.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ApiError::bad_request(format!(
            "parameters.{name} must be a boolean, not {other}"
        ))),
    }
}

/// `PUT /system/gc/schedule`: as POST (Harbor's update of the schedule), answering 200.
pub(super) async fn update_schedule(sent: Sent<SysAdmin, ScheduleRequest>) -> Result<Response, ApiError> {
    let answer = create_schedule(sent).await?;
    Ok(
        if answer.status() == StatusCode::CREATED && answer.headers().get(header::LOCATION).is_none() {
            StatusCode::OK.into_response()
        } else {
            answer
        },
    )
}

/// `POST /system/gc/schedule`: `Manual` starts a run now (201 with its `Location`); a recurring
/// type (`Hourly`, `Daily`, `Weekly`: Harbor's crons unless one is given; `Custom`, `Schedule`:
/// the cron given) keeps the schedule and its parameters; `None` removes it.
pub(super) async fn create_schedule(
    Sent(caller, request): Sent<SysAdmin, ScheduleRequest>,
) -> Result<Response, ApiError> {
    let (kind, cron) = request.schedule.map_or((None, None), |s| (s.kind, s.cron));
    let kind = kind.unwrap_or_default();
    let parameters = request.parameters.clone().unwrap_or_default();
    // Checked whatever the type: a body the document refuses is refused.
    let (delete_untagged, dry_run) = (
        flag(&parameters, "delete_untagged")?,
        flag(&parameters, "dry_run")?,
    );
    // Harbor's parallel deletion workers: accepted and ignored, but a number if given.
    if let Some(workers) = parameters.get("workers").filter(|w| !w.is_null() && !w.is_i64()) {
        return Err(ApiError::bad_request(format!(
            "parameters.workers must be a whole number, not {workers}"
        )));
    }
    match kind.as_str() {
        "Manual" => {}
        "None" => {
            caller
                .change(AccessCommand::SetGcSchedule { schedule: None })
                .await?;
            return Ok(StatusCode::CREATED.into_response());
        }
        recurring if RECURRING_KINDS.contains(&recurring) => {
            let cron = (cron.filter(|c| !c.trim().is_empty()))
                .or_else(|| default_cron(recurring).map(str::to_string))
                .ok_or_else(|| ApiError::bad_request(format!("schedule type {recurring} needs a cron")))?;
            let spec = GcScheduleSpec {
                kind: recurring.to_string(),
                cron: cron.trim().to_string(),
                delete_untagged,
                dry_run,
            };
            caller
                .change(AccessCommand::SetGcSchedule { schedule: Some(spec) })
                .await?;
            return Ok(StatusCode::CREATED.into_response());
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "schedule.type must be one of Manual, None, {}, not {other:?}",
                RECURRING_KINDS.join(", ")
            )))
        }
    }
    if !caller.background_jobs() {
        return Err(ApiError::bad_request(
            "this host cannot run a garbage collection after answering (a Lambda function): \
             run `berth gc --storage aws` or let the janitor function's schedule run it",
        ));
    }
    let options = GcOptions {
        delete_untagged,
        dry_run,
        grace: grace_from_env(),
        ..GcOptions::default()
    };
    let registry = caller.registry().clone();
    let run = registry.start_gc(options).await?;
    let id = run.id;
    tokio::spawn(async move {
        if let Err(e) = registry.finish_gc(run).await {
            tracing::error!(run = id, error = %e, "garbage collection run failed");
        }
    });
    created(&format!("/system/gc/{id}"))
}
