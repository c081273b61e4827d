//! How the log's subscriptions stand (Berth's own route, not Harbor's): `GET /subscriptions`, system
//! admins only. One entry per subscription: its state (`new`, `replaying`, `live`), checkpoint,
//! events behind (counted up to a limit) and lag in seconds (`app::subscriptions::status`).

use axum::response::Response;

use super::caller::{Caller, SysAdmin};
use super::{ok, ApiError};

pub(super) async fn list(caller: Caller<SysAdmin>) -> Result<Response, ApiError> {
    let status = caller.registry().subscriptions().await.map_err(ApiError::from)?;
    ok(&status)
}
