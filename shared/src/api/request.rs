//! What handlers read from a request besides who is asking ([`caller`](super::caller)): the JSON
//! body, the query string (and typed readings of it), numeric ids, passwords.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{Api, ApiError};

/// The JSON body as `T` (400 if it is not). Every body the API takes is a required JSON object, as
/// in Harbor: an empty one is refused rather than read as `{}` (which would make an empty `PUT`
/// reset a project's content-trust configuration, say), and so is an array, which serde would
/// otherwise read as a struct's fields in order.
pub(super) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::bad_request("a JSON body is required")),
        Some(b'{') => {}
        Some(_) => return Err(ApiError::bad_request("the request body must be a JSON object")),
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// The query string's pairs, decoded.
#[derive(Debug, Clone, Default)]
pub(super) struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let pairs = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
        Ok(Query(pairs))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The terms of Harbor's `q` filter, `key=value` separated by commas, in order (400 for a term
    /// without `=`, when it is reached).
    pub fn terms(&self) -> impl Iterator<Item = Result<(&str, &str), ApiError>> {
        let terms = self.get("q").unwrap_or_default().split(',');
        terms.filter(|t| !t.is_empty()).map(|term| {
            (term.split_once('='))
                .ok_or_else(|| ApiError::bad_request(format!("query term {term:?} is not key=value")))
        })
    }

    /// A boolean parameter (`true`/`false`; 400 otherwise).
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, not {other:?}"
            ))),
        }
    }
}

/// The query string, as a handler argument (400 if it does not decode).
impl FromRequestParts<Api> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Api) -> Result<Self, ApiError> {
        Query::parse(parts.uri.query())
    }
}

/// A typed reading of the query string (400 if it does not make sense).
pub(super) trait FromQuery: Sized {
    fn from_query(query: &Query) -> Result<Self, ApiError>;
}

/// The query string and `T` read from it, as a handler argument; listed before the caller, both
/// are checked before the caller is.
pub(super) struct Params<T>(pub Query, pub T);

impl<T: FromQuery> FromRequestParts<Api> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Api) -> Result<Self, ApiError> {
        let query = Query::parse(parts.uri.query())?;
        let typed = T::from_query(&query)?;
        Ok(Params(query, typed))
    }
}

/// The largest id: the API's ids are OpenAPI `int64`s, and the directory counts them from 1.
pub(super) const MAX_ID: u64 = i64::MAX as u64;

/// A numeric id in a path or query (400 unless it is a number from 1 to [`MAX_ID`]).
pub(super) fn numeric_id(raw: &str, what: &str) -> Result<u64, ApiError> {
    match raw.parse::<u64>() {
        Ok(id) if (1..=MAX_ID).contains(&id) => Ok(id),
        _ => Err(ApiError::bad_request(format!(
            "{what} must be a number from 1 to {MAX_ID}, not {raw:?}"
        ))),
    }
}

/// Harbor's password rule: at least 8 characters (and at most 128), with an upper-case letter, a
/// lower-case letter and a digit.
pub(super) fn check_password(password: &str) -> Result<(), ApiError> {
    let long_enough = (8..=128).contains(&password.chars().count());
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    if long_enough
        && has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit)
    {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "the password must be 8-128 characters long with at least one upper-case letter, \
             one lower-case letter and one digit",
        ))
    }
}
