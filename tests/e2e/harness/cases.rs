//! A table of bad requests: each case is a request, the answers the spec allows, and what must
//! not be visible afterwards. Requests go out byte for byte (`Registry::raw`), so paths with `..`
//! or `//` reach the server unnormalised. Where distribution 2.8 departs from the spec, a case
//! carries distribution's answer (or is not run there); Berth is always held to the spec.

use super::http::error_codes;
use super::server::{Registry, Target};

/// The error codes of the distribution spec's table, and Harbor's `PROJECTPOLICYVIOLATION` and
/// `PRECONDITION` (412s).
pub const SPEC_CODES: [&str; 16] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "PROJECTPOLICYVIOLATION",
    "PRECONDITION",
];

/// What must not be visible after a rejected request.
pub enum Absent {
    /// The tag resolves to nothing and is not listed.
    Tag(String, String),
    /// No manifest with this digest in the repository.
    Manifest(String, String),
    /// The blob is not served from the repository.
    Blob(String, String),
    /// The catalog lists no repository containing this string.
    Repo(String),
}

pub struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
    /// Acceptable answers: a status and the error codes one of which must be in the body (no
    /// codes: the spec names none). Several pairs when the spec allows several answers.
    expect: Vec<Answer>,
    absent: Vec<Absent>,
    /// Distribution 2.8's answer where it departs from the spec (see the comment at each use).
    distribution: Option<Answer>,
    /// Not run against distribution 2.8 (see the comment at each use).
    skip_on_distribution: bool,
}

pub type Answer = (u16, &'static [&'static str]);

pub fn case(
    what: &'static str,
    method: &'static str,
    path: String,
    status: u16,
    codes: &'static [&'static str],
) -> Case {
    let expect = vec![(status, codes)];
    Case {
        what,
        method,
        path,
        content_type: None,
        body: Vec::new(),
        expect,
        absent: Vec::new(),
        distribution: None,
        skip_on_distribution: false,
    }
}

impl Case {
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Case {
        self.content_type = Some(content_type.to_owned());
        self.body = body;
        self
    }

    pub fn absent(mut self, absent: Absent) -> Case {
        self.absent.push(absent);
        self
    }

    /// Another answer the spec allows.
    pub fn or(mut self, status: u16, codes: &'static [&'static str]) -> Case {
        self.expect.push((status, codes));
        self
    }

    pub fn on_distribution(mut self, status: u16, codes: &'static [&'static str]) -> Case {
        self.distribution = Some((status, codes));
        self
    }

    pub fn not_on_distribution(mut self) -> Case {
        self.skip_on_distribution = true;
        self
    }
}

/// Runs every case, then fails once listing every case that went wrong.
pub fn run(reg: &Registry, cases: Vec<Case>) {
    let mut failures = Vec::new();
    let mut cases = cases;
    cases.retain(|case| !(reg.target == Target::Distribution && case.skip_on_distribution));
    for case in &cases {
        let expect = match (reg.target, case.distribution) {
            (Target::Distribution, Some(answer)) => vec![answer],
            _ => case.expect.clone(),
        };
        let headers: Vec<(&str, &str)> = case
            .content_type
            .iter()
            .map(|ct| ("Content-Type", ct.as_str()))
            .collect();
        let (got, body) = reg.raw(case.method, &case.path, &headers, &case.body);
        let got_codes = error_codes(&body);
        let matches = |(status, codes): &Answer| {
            *status == got && (codes.is_empty() || got_codes.iter().any(|c| codes.contains(&c.as_str())))
        };
        // The spec: a 4xx body's `code` "MUST be one of" its table (Berth adds Harbor's 412 code).
        let foreign: Vec<&String> = (got_codes.iter())
            .filter(|c| reg.target == Target::Berth && !SPEC_CODES.contains(&c.as_str()))
            .collect();
        if !foreign.is_empty() {
            failures.push(format!(
                "{}: codes outside the spec's table: {foreign:?}",
                case.what
            ));
        }
        if !expect.iter().any(matches) {
            let body: String = body.chars().take(300).collect();
            failures.push(format!(
                "{}: {} {} -> expected {expect:?}, got {got} {body}",
                case.what,
                case.method,
                abbreviate(&case.path)
            ));
        }
        for absent in &case.absent {
            if let Some(leak) = visible(reg, absent) {
                failures.push(format!(
                    "{}: after {} {}: {leak}",
                    case.what,
                    case.method,
                    abbreviate(&case.path)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad requests misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn abbreviate(path: &str) -> String {
    if path.len() > 140 {
        format!("{}…({} chars)", &path[..120], path.len())
    } else {
        path.to_owned()
    }
}

/// Why the thing is visible, or `None` when it is properly absent.
fn visible(reg: &Registry, absent: &Absent) -> Option<String> {
    match absent {
        Absent::Tag(repo, tag) => {
            // 400 is right too for a reference that is not a valid tag.
            let status = reg.manifest_status(repo, tag);
            if status != 404 && status != 400 {
                return Some(format!(
                    "tag {repo}:{tag} answers {status}, expected 404 (or 400)"
                ));
            }
            reg.all_tags(repo)
                .contains(tag)
                .then(|| format!("tag {repo}:{tag} is listed"))
        }
        Absent::Manifest(repo, digest) => {
            let status = reg.manifest_status(repo, digest);
            (status != 404).then(|| format!("manifest {repo}@{digest} answers {status}, expected 404"))
        }
        Absent::Blob(repo, digest) => {
            let status = reg.blob_status(repo, digest);
            (status != 404).then(|| format!("blob {repo}@{digest} answers {status}, expected 404"))
        }
        Absent::Repo(part) => {
            let catalog = reg.catalog();
            catalog
                .iter()
                .any(|r| r.to_lowercase().contains(&part.to_lowercase()))
                .then(|| format!("catalog lists {part}: {catalog:?}"))
        }
    }
}
