//! The `WWW-Authenticate: Bearer` challenge of a 401 (distribution "Token Authentication
//! Specification", "How to authenticate"; RFC 6750 §3 for `error`):
//!
//! ```text
//! Bearer realm="https://host/service/token",service="berth",scope="repository:a/b:pull,push repository:c/d:pull",error="insufficient_scope"
//! ```
//!
//! Several scopes go in one `scope` parameter, separated by spaces (RFC 6749 §3.3), as distribution
//! sends them for a cross-repository mount. The realm's base is the configured public URL or,
//! without one, the request's `Host` and `X-Forwarded-Proto`, which a client controls: the host is
//! used only if it is a well-formed `host[:port]` and the scheme only if it is `http` or `https`,
//! and every parameter is quoted with `"` and `\` escaped, so no request can inject parameters.

use axum::http::{header, HeaderMap, HeaderName};

use super::auth::AuthConfig;

/// The header a 401 carries.
pub const WWW_AUTHENTICATE: HeaderName = HeaderName::from_static("www-authenticate");
/// The realm's host when the request's `Host` is missing or malformed.
const FALLBACK_HOST: &str = "localhost";
/// Longest `Host` used in a realm: a 253-character DNS name with a port.
const MAX_HOST_LEN: usize = 260;

/// Why a token was refused (RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// The token is malformed, expired, revoked or signed by an unknown key.
    InvalidToken,
    /// The token is good but does not carry what the request needs.
    InsufficientScope,
}

impl BearerError {
    fn as_str(self) -> &'static str {
        match self {
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
        }
    }
}

/// The challenge for one request.
pub struct Challenge {
    realm: String,
    service: String,
}

impl Challenge {
    /// The challenge `config` gives for a request with `headers`.
    pub fn new(config: &AuthConfig, headers: &HeaderMap) -> Challenge {
        Challenge {
            realm: realm(config, headers),
            service: config.service.clone(),
        }
    }

    /// The header value naming `scopes` (none for the `/v2/` ping) and why a token failed.
    pub fn header(&self, scopes: &[String], error: Option<BearerError>) -> String {
        let mut value = format!(
            "Bearer realm={},service={}",
            quoted(&self.realm),
            quoted(&self.service)
        );
        if !scopes.is_empty() {
            value.push_str(&format!(",scope={}", quoted(&scopes.join(" "))));
        }
        if let Some(error) = error {
            value.push_str(&format!(",error={}", quoted(error.as_str())));
        }
        value
    }
}

/// `<base>/service/token` for a request with `headers`.
pub fn realm(config: &AuthConfig, headers: &HeaderMap) -> String {
    let base = match &config.public_url {
        Some(url) => url.clone(),
        None => {
            let host = (headers.get(header::HOST))
                .and_then(|h| h.to_str().ok())
                .filter(|h| is_authority(h))
                .unwrap_or(FALLBACK_HOST);
            let proto = match headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
                Some(p) if p.eq_ignore_ascii_case("https") => "https",
                _ => "http",
            };
            format!("{proto}://{host}")
        }
    };
    format!("{base}/service/token")
}

/// Whether `s` is `host[:port]`: a DNS name or IPv4 address, or a bracketed IPv6 address.
fn is_authority(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_HOST_LEN {
        return false;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(s), None),
        }
    };
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// `"value"` with `"` and `\` escaped (RFC 9110 §5.6.4 quoted-string).
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(host: &str, proto: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", HeaderValue::from_str(p).unwrap());
        }
        h
    }

    #[test]
    fn a_well_formed_host_names_the_realm() {
        let config = AuthConfig::default();
        for (host, proto, want) in [
            ("127.0.0.1:5000", None, "http://127.0.0.1:5000/service/token"),
            (
                "registry.example.com",
                Some("https"),
                "https://registry.example.com/service/token",
            ),
            ("[::1]:5000", None, "http://[::1]:5000/service/token"),
            ("[::1]", Some("HTTPS"), "https://[::1]/service/token"),
        ] {
            assert_eq!(realm(&config, &headers(host, proto)), want, "{host}");
        }
    }

    #[test]
    fn a_malformed_host_or_scheme_never_reaches_the_realm() {
        let config = AuthConfig::default();
        for host in [
            "evil\",error=\"x",
            "a b",
            "host:99999",
            "host:",
            "-a.example",
            "a..b",
            "[::1",
            "[::1]x",
            "user@host",
            "host/path",
        ] {
            assert_eq!(
                realm(&config, &headers(host, None)),
                "http://localhost/service/token",
                "{host:?}"
            );
        }
        assert_eq!(
            realm(&config, &headers("a.example", Some("javascript"))),
            "http://a.example/service/token"
        );
    }

    #[test]
    fn the_configured_public_url_wins_over_the_request() {
        let config = AuthConfig {
            public_url: Some("https://berth.example".to_string()),
            ..AuthConfig::default()
        };
        assert_eq!(
            realm(&config, &headers("attacker.example", Some("http"))),
            "https://berth.example/service/token"
        );
    }

    #[test]
    fn a_challenge_quotes_every_parameter_and_joins_scopes_with_spaces() {
        let config = AuthConfig {
            service: "odd\"service\\".to_string(),
            ..AuthConfig::default()
        };
        let c = Challenge::new(&config, &headers("h:1", None));
        assert_eq!(
            c.header(
                &[
                    "repository:a/b:pull,push".to_string(),
                    "repository:c/d:pull".to_string()
                ],
                Some(BearerError::InsufficientScope)
            ),
            "Bearer realm=\"http://h:1/service/token\",service=\"odd\\\"service\\\\\",\
             scope=\"repository:a/b:pull,push repository:c/d:pull\",error=\"insufficient_scope\""
        );
        assert_eq!(
            c.header(&[], None),
            "Bearer realm=\"http://h:1/service/token\",service=\"odd\\\"service\\\\\""
        );
    }
}
