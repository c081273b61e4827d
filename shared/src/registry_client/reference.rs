//! Image references as docker and cosign write them: `host[:port]/repo[:tag|@digest]`
//! (distribution's `reference` grammar, simplified: no reference without a tag or digest is
//! refused, `latest` is implied as docker does).

use std::fmt;
use std::net::IpAddr;

/// Docker Hub, as references name it and as signatures record it (`index.docker.io/...`,
/// what cosign writes in `docker-reference`).
const DOCKER_HUB: &str = "index.docker.io";
/// Where Docker Hub's registry API is actually served.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry as named in signatures: `host[:port]` (`index.docker.io` for Docker Hub).
    pub registry: String,
    /// The repository path inside the registry (`library/app`).
    pub repository: String,
    /// The tag, when the reference names one (`latest` when it names neither tag nor digest).
    pub tag: Option<String>,
    /// The digest, when the reference names one (`sha256:<hex>`).
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `host[:port]/repo[:tag|@digest]`; a name without a registry host is Docker Hub's
    /// (`app` is `index.docker.io/library/app`).
    pub fn parse(text: &str) -> Result<ImageRef, String> {
        let bad = |why: &str| format!("{text:?} is not an image reference: {why}");
        let (name_tag, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(parse_digest(digest).map_err(|e| bad(&e))?)),
            None => (text, None),
        };
        let last_slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&name_tag[..colon], Some(name_tag[colon + 1..].to_string()))
            }
            _ => (name_tag, None),
        };
        if let Some(tag) = &tag {
            if !valid_tag(tag) {
                return Err(bad(
                    "the tag must be 1 to 128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_repository(&repository) {
            return Err(bad(
                "the repository must be lowercase path components of [a-z0-9] joined by . _ __ or -",
            ));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `host/repo`: what a signature's `docker-reference` names.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host the registry API is served from.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// True for a loopback registry (`localhost`, `127.0.0.0/8`, `[::1]`), which docker and skopeo
    /// reach over plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or(bracketed),
            None => self.registry.split(':').next().unwrap_or(&self.registry),
        };
        host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The tag or digest to ask the registry for.
    pub fn reference(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest,
            (None, Some(tag)) => tag,
            (None, None) => "latest",
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// `sha256:<64 lowercase hex>`: the only algorithm cosign's tag scheme and Berth use.
pub fn parse_digest(text: &str) -> Result<String, String> {
    match text.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(text.to_string())
        }
        _ => Err(format!("{text:?} is not a sha256:<64 lowercase hex> digest")),
    }
}

/// `sha256-<hex>`: the tag cosign derives from a digest (`.sig` is appended for signatures; the
/// bare form is also OCI 1.1's referrers fallback tag).
pub fn digest_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

fn valid_tag(tag: &str) -> bool {
    let first_ok = tag
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    first_ok
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn valid_repository(repository: &str) -> bool {
    let component_ok = |c: &str| {
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let bytes = c.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(&first), Some(&last)) => {
                alnum(first) && alnum(last) && bytes.iter().all(|&b| alnum(b) || b"._-".contains(&b))
            }
            _ => false,
        }
    };
    repository.len() <= 255 && repository.split('/').all(component_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";

    #[test]
    fn references_parse_into_registry_repository_tag_and_digest() {
        // (reference, registry, repository, tag, digest)
        type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (
                "127.0.0.1:5000/library/app:v1",
                "127.0.0.1:5000",
                "library/app",
                Some("v1"),
                None,
            ),
            (
                "127.0.0.1:5000/library/app",
                "127.0.0.1:5000",
                "library/app",
                Some("latest"),
                None,
            ),
            ("localhost/a/b/c:1.0", "localhost", "a/b/c", Some("1.0"), None),
            ("ghcr.io/org/app:v1", "ghcr.io", "org/app", Some("v1"), None),
            ("app", "index.docker.io", "library/app", Some("latest"), None),
            (
                "docker.io/org/app:x",
                "index.docker.io",
                "org/app",
                Some("x"),
                None,
            ),
            ("[::1]:5000/app:v1", "[::1]:5000", "app", Some("v1"), None),
        ];
        for (text, registry, repository, tag, digest) in cases {
            let r = ImageRef::parse(text).unwrap();
            assert_eq!(
                (
                    r.registry.as_str(),
                    r.repository.as_str(),
                    r.tag.as_deref(),
                    r.digest.as_deref()
                ),
                (*registry, *repository, *tag, *digest),
                "{text}"
            );
        }
        let r = ImageRef::parse(&format!("127.0.0.1:5000/library/app@{DIGEST}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(DIGEST)));
        let r = ImageRef::parse(&format!("127.0.0.1:5000/library/app:v1@{DIGEST}")).unwrap();
        assert_eq!(r.reference(), DIGEST);
    }

    #[test]
    fn malformed_references_are_refused() {
        for text in [
            "127.0.0.1:5000/Library/app:v1",
            "127.0.0.1:5000/app:-bad",
            "127.0.0.1:5000/app@sha256:abc",
            "127.0.0.1:5000/app@md5:0123",
            "127.0.0.1:5000/",
            "127.0.0.1:5000/a//b",
            "",
        ] {
            assert!(ImageRef::parse(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for (text, loopback) in [
            ("localhost:5000/a", true),
            ("127.0.0.1:5000/a", true),
            ("127.1.2.3/a", true),
            ("[::1]:5000/a", true),
            ("registry.example:5000/a", false),
            ("10.0.0.1:5000/a", false),
        ] {
            assert_eq!(ImageRef::parse(text).unwrap().is_loopback(), loopback, "{text}");
        }
    }

    #[test]
    fn digest_tags_replace_the_colon() {
        assert_eq!(digest_tag(DIGEST), format!("sha256-{}", &DIGEST[7..]));
    }
}
