//! Harbor's garbage collection routes (`/system/gc`, swagger tag `gc`), system admins only:
//! the history of runs (`GET /system/gc`, `GET /system/gc/{gc_id}`, `GET /system/gc/{gc_id}/log`)
//! as the `gc` stream records them, and `POST /system/gc/schedule` with `schedule.type: "Manual"`,
//! which starts a run now (201, `Location: /api/v2.0/system/gc/{id}`; 409 while one is under
//! way). Recurring schedules are not kept yet: `GET /system/gc/schedule` answers `None`, and
//! `Hourly`, `Daily`, `Weekly`, `Custom` and `Schedule` are refused (run `berth gc` from cron, or
//! the janitor function's schedule, docs/lifecycle.md). Stopping a run (`PUT /system/gc/{id}`) is
//! not offered: a run is never half-applied, and one that stops is finished by the next.

use std::time::Duration;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::app::{GcOptions, GcRecord, DEFAULT_GC_GRACE};

use super::caller::{Caller, Sent, SysAdmin};
use super::request::{numeric_id, Query};
use super::{created, ok, pagination, timestamp, ApiError};

/// Harbor's names for the job.
const JOB_NAME: &str = "GARBAGE_COLLECTION";
const JOB_KIND: &str = "MANUAL";

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
    /// `Running`, `Success` or `Error`.
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
        job_kind: JOB_KIND,
        job_parameters: parameters.to_string(),
        schedule: ScheduleObj { kind: "Manual" },
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

/// `GET /system/gc/{gc_id}/log`: the run's parameters and outcome, as text.
pub(super) async fn log(Path(raw): Path<String>, caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let record = record_of(&caller, &raw).await?;
    let mut lines = vec![format!(
        "{} garbage collection run {} started (delete_untagged={}, dry_run={})",
        timestamp(record.started_at),
        record.id,
        record.delete_untagged,
        record.dry_run
    )];
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

/// `GET /system/gc/schedule`: no recurring schedule is kept.
pub(super) async fn schedule(_caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    ok(&json!({"schedule": {"type": "None"}}))
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
    /// Harbor's cron expression: read (a string or null) but not kept, as no recurring schedule
    /// is yet.
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

/// `POST /system/gc/schedule`: `Manual` starts a run now; `None` sets no schedule.
pub(super) async fn create_schedule(
    Sent(caller, request): Sent<SysAdmin, ScheduleRequest>,
) -> Result<Response, ApiError> {
    let (kind, _cron) = request.schedule.map_or((None, None), |s| (s.kind, s.cron));
    let kind = kind.unwrap_or_default();
    match kind.as_str() {
        "Manual" => {}
        "None" => return Ok(StatusCode::CREATED.into_response()),
        "Hourly" | "Daily" | "Weekly" | "Custom" | "Schedule" => {
            return Err(ApiError::bad_request(format!(
                "schedule type {kind} is not kept yet: trigger Manual runs (or run berth gc from cron)"
            )))
        }
        other => {
            return Err(ApiError::bad_request(format!(
            "schedule.type must be Manual or None (or Harbor's recurring types, not kept yet), not {other:?}"
        )))
        }
    }
    if !caller.background_jobs() {
        return Err(ApiError::bad_request(
            "this host cannot run a garbage collection after answering (a Lambda function): \
             run `berth gc --storage aws` or let the janitor function's schedule run it",
        ));
    }
    let parameters = request.parameters.unwrap_or_default();
    // Harbor's parallel deletion workers: accepted and ignored, but a number if given.
    if let Some(workers) = parameters.get("workers").filter(|w| !w.is_null() && !w.is_i64()) {
        return Err(ApiError::bad_request(format!(
            "parameters.workers must be a whole number, not {workers}"
        )));
    }
    let options = GcOptions {
        delete_untagged: flag(&parameters, "delete_untagged")?,
        dry_run: flag(&parameters, "dry_run")?,
        resume: false,
        grace: grace_from_env(),
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

/// `BERTH_GC_GRACE_SECS` (as `berth gc --grace-secs` reads it), else the default grace window;
/// a value that is no number of seconds is logged and the default (the safer, longer one) used.
fn grace_from_env() -> Duration {
    let Ok(value) = std::env::var("BERTH_GC_GRACE_SECS") else {
        return DEFAULT_GC_GRACE;
    };
    value.trim().parse().map(Duration::from_secs).unwrap_or_else(|_| {
        tracing::error!(value = %value, "BERTH_GC_GRACE_SECS is not a number of seconds; using the default grace window");
        DEFAULT_GC_GRACE
    })
}
