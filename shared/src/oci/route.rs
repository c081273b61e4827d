//! Routes as data: a request's method and path parsed into one distribution-spec endpoint
//! (spec "Endpoints" table, end-1 … end-13). Repository names contain slashes, so the path is
//! matched from its end.

use axum::http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// end-1 `GET /v2/`
    Base,
    /// end-2/3 `GET|HEAD /v2/<name>/blobs/<digest>`
    BlobGet {
        name: String,
        digest: String,
        head: bool,
    },
    /// end-10 `DELETE /v2/<name>/blobs/<digest>`
    BlobDelete { name: String, digest: String },
    /// end-4a/4b/11 `POST /v2/<name>/blobs/uploads/`
    UploadStart { name: String },
    /// end-5 `PATCH /v2/<name>/blobs/uploads/<reference>`
    UploadPatch { name: String, id: String },
    /// end-6 `PUT /v2/<name>/blobs/uploads/<reference>?digest=`
    UploadFinish { name: String, id: String },
    /// end-13 `GET /v2/<name>/blobs/uploads/<reference>`
    UploadStatus { name: String, id: String },
    /// `DELETE /v2/<name>/blobs/uploads/<reference>`
    UploadCancel { name: String, id: String },
    /// end-3 `GET|HEAD /v2/<name>/manifests/<reference>`
    ManifestGet {
        name: String,
        reference: String,
        head: bool,
    },
    /// end-7 `PUT /v2/<name>/manifests/<reference>`
    ManifestPut { name: String, reference: String },
    /// end-9 `DELETE /v2/<name>/manifests/<reference>`
    ManifestDelete { name: String, reference: String },
    /// end-8a/8b `GET /v2/<name>/tags/list`
    TagsList { name: String },
    /// end-12a/12b `GET /v2/<name>/referrers/<digest>`
    Referrers { name: String, digest: String },
    /// `GET /v2/_catalog`
    Catalog,
}

/// Why a request matches no endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    MethodNotAllowed,
}

/// Splits `rest` at the last `/<marker>/` whose tail has no slash: `(name, tail)`.
fn split_tail<'a>(rest: &'a str, marker: &str) -> Option<(&'a str, &'a str)> {
    let (name, tail) = rest.rsplit_once(marker)?;
    (!tail.contains('/') && !name.is_empty()).then_some((name, tail))
}

pub fn parse(method: &Method, path: &str) -> Result<Endpoint, RouteError> {
    use Endpoint as E;
    let get_or_head = method == Method::GET || method == Method::HEAD;
    let head = method == Method::HEAD;
    if path == "/v2/" || path == "/v2" {
        return if get_or_head {
            Ok(E::Base)
        } else {
            Err(RouteError::MethodNotAllowed)
        };
    }
    let rest = path.strip_prefix("/v2/").ok_or(RouteError::NotFound)?;
    if rest == "_catalog" {
        return if get_or_head {
            Ok(E::Catalog)
        } else {
            Err(RouteError::MethodNotAllowed)
        };
    }
    let s = |x: &str| x.to_string();
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return if get_or_head {
            Ok(E::TagsList { name: s(name) })
        } else {
            Err(RouteError::MethodNotAllowed)
        };
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return match *method {
            Method::POST => Ok(E::UploadStart { name: s(name) }),
            _ => Err(RouteError::MethodNotAllowed),
        };
    }
    if let Some((name, id)) = split_tail(rest, "/blobs/uploads/") {
        let (name, id) = (s(name), s(id));
        return match *method {
            Method::PATCH => Ok(E::UploadPatch { name, id }),
            Method::PUT => Ok(E::UploadFinish { name, id }),
            Method::GET => Ok(E::UploadStatus { name, id }),
            Method::DELETE => Ok(E::UploadCancel { name, id }),
            _ => Err(RouteError::MethodNotAllowed),
        };
    }
    if let Some((name, reference)) = split_tail(rest, "/manifests/") {
        let (name, reference) = (s(name), s(reference));
        return match *method {
            Method::GET | Method::HEAD => Ok(E::ManifestGet {
                name,
                reference,
                head,
            }),
            Method::PUT => Ok(E::ManifestPut { name, reference }),
            Method::DELETE => Ok(E::ManifestDelete { name, reference }),
            _ => Err(RouteError::MethodNotAllowed),
        };
    }
    if let Some((name, digest)) = split_tail(rest, "/blobs/") {
        let (name, digest) = (s(name), s(digest));
        return match *method {
            Method::GET | Method::HEAD => Ok(E::BlobGet { name, digest, head }),
            Method::DELETE => Ok(E::BlobDelete { name, digest }),
            _ => Err(RouteError::MethodNotAllowed),
        };
    }
    if let Some((name, digest)) = split_tail(rest, "/referrers/") {
        return if get_or_head {
            Ok(E::Referrers {
                name: s(name),
                digest: s(digest),
            })
        } else {
            Err(RouteError::MethodNotAllowed)
        };
    }
    Err(RouteError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint as E;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn every_spec_endpoint_parses_from_method_and_path() {
        let table = vec![
            (Method::GET, "/v2/", Ok(E::Base)),
            (Method::GET, "/v2", Ok(E::Base)),
            (Method::GET, "/v2/_catalog", Ok(E::Catalog)),
            (
                Method::GET,
                "/v2/a/b/tags/list",
                Ok(E::TagsList { name: s("a/b") }),
            ),
            (
                Method::HEAD,
                "/v2/a/blobs/sha256:x",
                Ok(E::BlobGet {
                    name: s("a"),
                    digest: s("sha256:x"),
                    head: true,
                }),
            ),
            (
                Method::DELETE,
                "/v2/a/blobs/d",
                Ok(E::BlobDelete {
                    name: s("a"),
                    digest: s("d"),
                }),
            ),
            (
                Method::POST,
                "/v2/a/b/blobs/uploads/",
                Ok(E::UploadStart { name: s("a/b") }),
            ),
            (
                Method::POST,
                "/v2/a/blobs/uploads",
                Ok(E::UploadStart { name: s("a") }),
            ),
            (
                Method::PATCH,
                "/v2/a/blobs/uploads/u1",
                Ok(E::UploadPatch {
                    name: s("a"),
                    id: s("u1"),
                }),
            ),
            (
                Method::PUT,
                "/v2/a/blobs/uploads/u1",
                Ok(E::UploadFinish {
                    name: s("a"),
                    id: s("u1"),
                }),
            ),
            (
                Method::GET,
                "/v2/a/blobs/uploads/u1",
                Ok(E::UploadStatus {
                    name: s("a"),
                    id: s("u1"),
                }),
            ),
            (
                Method::DELETE,
                "/v2/a/blobs/uploads/u1",
                Ok(E::UploadCancel {
                    name: s("a"),
                    id: s("u1"),
                }),
            ),
            (
                Method::GET,
                "/v2/a/manifests/v1",
                Ok(E::ManifestGet {
                    name: s("a"),
                    reference: s("v1"),
                    head: false,
                }),
            ),
            (
                Method::PUT,
                "/v2/x/manifests/y/manifests/v1",
                Ok(E::ManifestPut {
                    name: s("x/manifests/y"),
                    reference: s("v1"),
                }),
            ),
            (
                Method::DELETE,
                "/v2/a/manifests/v1",
                Ok(E::ManifestDelete {
                    name: s("a"),
                    reference: s("v1"),
                }),
            ),
            (
                Method::GET,
                "/v2/blobs/blobs/d",
                Ok(E::BlobGet {
                    name: s("blobs"),
                    digest: s("d"),
                    head: false,
                }),
            ),
            (
                Method::GET,
                "/v2/a/referrers/sha256:x",
                Ok(E::Referrers {
                    name: s("a"),
                    digest: s("sha256:x"),
                }),
            ),
            (
                Method::POST,
                "/v2/a/manifests/v1",
                Err(RouteError::MethodNotAllowed),
            ),
            (Method::PUT, "/v2/a/blobs/d", Err(RouteError::MethodNotAllowed)),
            (
                Method::GET,
                "/v2/a/blobs/uploads/",
                Err(RouteError::MethodNotAllowed),
            ),
            (Method::GET, "/v3/a", Err(RouteError::NotFound)),
            (Method::GET, "/v2/a/unknown", Err(RouteError::NotFound)),
            (Method::GET, "/v2//manifests/x", Err(RouteError::NotFound)),
        ];
        for (method, path, expected) in table {
            assert_eq!(parse(&method, path), expected, "{method} {path}");
        }
    }
}
