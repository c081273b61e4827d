//! Harbor's pagination: `page` (1-based) and `page_size` in the query; `X-Total-Count` and
//! `Link: <…?page=2&page_size=10>; rel="next", <…>; rel="prev"` on the answer. Other query
//! parameters (filters) are kept in the links.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::request::Query;
use super::{json, ApiError, API_BASE};

/// Items per page unless the client asks otherwise (Harbor's default).
const DEFAULT_PAGE_SIZE: usize = 10;
/// The largest page a client may ask for (Harbor's limit).
const MAX_PAGE_SIZE: usize = 100;
/// The last page number a client may ask for: `page` is an OpenAPI `int64` (Harbor's type).
const MAX_PAGE: usize = i64::MAX as usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Paging {
    pub page: usize,
    pub page_size: usize,
}

impl Paging {
    pub fn parse(query: &Query) -> Result<Paging, ApiError> {
        let number = |name: &str, default: usize, max: usize| match query.get(name) {
            None => Ok(default),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "{name} must be a number from 1 to {max}, not {raw:?}"
                ))),
            },
        };
        Ok(Paging {
            page: number("page", 1, MAX_PAGE)?,
            page_size: number("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?,
        })
    }
}

/// Answers one page of `items` (all of them, in order) with the pagination headers; `path` is the
/// route below [`API_BASE`], `query` the request's (its other parameters are repeated in links).
pub(super) fn respond<T: Serialize>(items: Vec<T>, path: &str, query: &Query) -> Result<Response, ApiError> {
    let paging = Paging::parse(query)?;
    let total = items.len();
    let start = (paging.page - 1).saturating_mul(paging.page_size);
    let page: Vec<T> = items.into_iter().skip(start).take(paging.page_size).collect();
    let mut response = json(StatusCode::OK, &page)?;
    let headers = response.headers_mut();
    headers.insert("x-total-count", HeaderValue::from(total));
    let mut links = Vec::new();
    if start.saturating_add(paging.page_size) < total {
        links.push(link(path, query, paging.page + 1, paging.page_size, "next")?);
    }
    if paging.page > 1 {
        links.push(link(path, query, paging.page - 1, paging.page_size, "prev")?);
    }
    if !links.is_empty() {
        let value =
            HeaderValue::from_str(&links.join(", ")).map_err(|e| ApiError::internal(&e.to_string()))?;
        headers.insert("link", value);
    }
    Ok(response)
}

fn link(path: &str, query: &Query, page: usize, page_size: usize, rel: &str) -> Result<String, ApiError> {
    let mut pairs: Vec<(String, String)> = vec![
        ("page".to_string(), page.to_string()),
        ("page_size".to_string(), page_size.to_string()),
    ];
    pairs.extend(
        (query.0.iter())
            .filter(|(k, _)| k != "page" && k != "page_size")
            .cloned(),
    );
    let encoded = serde_urlencoded::to_string(&pairs).map_err(|e| ApiError::internal(&e.to_string()))?;
    Ok(format!("<{API_BASE}{path}?{encoded}>; rel=\"{rel}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Query {
        Query::parse(Some(raw)).unwrap()
    }

    #[test]
    fn paging_defaults_to_the_first_page_of_ten() {
        assert_eq!(
            Paging::parse(&query("")).unwrap(),
            Paging {
                page: 1,
                page_size: 10
            }
        );
    }

    #[test]
    fn invalid_paging_is_refused() {
        for bad in [
            "page=0",
            "page=x",
            "page_size=0",
            "page_size=101",
            "page_size=-1",
            "page=-2",
            "page=9223372036854775808",
            "page=18446744073709551616",
        ] {
            let e = Paging::parse(&query(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn the_last_int64_page_is_an_empty_page() {
        let response = respond(vec![1, 2, 3], "/projects", &query("page=9223372036854775807")).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-total-count"], "3");
    }

    #[test]
    fn links_name_both_neighbours_and_keep_filters() {
        let response = respond(
            (0..25).collect(),
            "/projects",
            &query("page=2&page_size=10&name=a b"),
        )
        .unwrap();
        let link = response.headers()["link"].to_str().unwrap();
        assert_eq!(
            link,
            "</api/v2.0/projects?page=3&page_size=10&name=a+b>; rel=\"next\", \
             </api/v2.0/projects?page=1&page_size=10&name=a+b>; rel=\"prev\""
        );
        assert_eq!(response.headers()["x-total-count"], "25");
    }
}
