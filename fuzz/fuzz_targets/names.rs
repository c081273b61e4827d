//! Repository names and references: `RepoName` (`from_str`, `in_project`, `project`), `Tag`,
//! `Reference`, and the handlers' readers of path segments (`oci::http::repo`, `reference`,
//! `lookup_reference`, `upload_id`), project, user and robot names, `project_of`, the accessory
//! tag schemes (`sha256-<hex>.sig`...).
#![no_main]

use berth::domain::access::{ProjectName, RobotName, Username};
use berth::domain::accessory::SchemeTag;
use berth::domain::{Reference, RepoName, Tag};
use berth::oci::http;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    if let Ok(repo) = s.parse::<RepoName>() {
        assert_eq!(repo.as_str().parse::<RepoName>().ok().as_ref(), Some(&repo));
        let _ = repo.project();
    }
    if let Ok(repo) = RepoName::in_project(s) {
        let _ = repo.project();
    }
    let _ = http::repo(s);
    if let Ok(tag) = s.parse::<Tag>() {
        assert_eq!(tag.as_str(), s);
        let _ = SchemeTag::parse(&tag);
    }
    if let Ok(reference) = s.parse::<Reference>() {
        let _ = format!("{reference:?}");
    }
    let _ = http::reference(s);
    let _ = http::lookup_reference(s);
    let _ = http::upload_id(s);
    let _ = berth::oci::auth::project_of(s);
    let _ = ProjectName::parse(s);
    let _ = Username::parse(s);
    if let Ok(robot) = RobotName::parse(s) {
        let _ = robot.project();
    }
    if let Ok(project) = ProjectName::parse(s) {
        let _ = RobotName::new(&project, s);
    }
});
