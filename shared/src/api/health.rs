//! Harbor's liveness and health routes, open to anyone (load balancers and harbor-cli call them
//! signed out): `GET /ping` answers `Pong` while the API serves; `GET /health` probes each
//! component (`app::health`) and answers 200 with Harbor's `OverallHealthStatus`: `healthy` only when
//! every component is, each `unhealthy` one with its `error`. As in Harbor, the status code stays
//! 200 either way; read `status`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{json, Api, ApiError};

pub(super) async fn ping() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "Pong").into_response()
}

#[derive(Serialize)]
struct Component {
    name: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Overall {
    status: &'static str,
    components: Vec<Component>,
}

fn word(healthy: bool) -> &'static str {
    if healthy {
        "healthy"
    } else {
        "unhealthy"
    }
}

pub(super) async fn health(State(api): State<Api>) -> Result<Response, ApiError> {
    let components = api.registry.health().await;
    let overall = Overall {
        status: word(components.iter().all(|c| c.healthy())),
        components: (components.into_iter())
            .map(|c| Component {
                name: c.name,
                status: word(c.healthy()),
                error: c.error,
            })
            .collect(),
    };
    json(StatusCode::OK, &overall)
}
