//! Listings: tags (lexical order, `n`/`last`, `Link`) and the catalog.

use serde_json::Value;

use crate::harness::*;

const REPO: &str = "e2e/list";

fn tags_page(reg: &Registry, query: &str) -> (Vec<String>, Option<String>) {
    let resp = reg.get(&format!("/v2/{REPO}/tags/list{query}"));
    assert_eq!(resp.status().as_u16(), 200, "GET tags/list{query}");
    let link = next_link(&resp);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["name"], REPO);
    (strings(&body["tags"]), link)
}

#[test]
fn tags_are_listed_in_lexical_order_and_paginated_with_n_last_and_link() {
    if skip_unless_berth("distribution 2.8 lists tags in directory order and does not paginate them") {
        return;
    }
    let reg = Registry::start();
    let (_, bytes) = reg.push_small_image(REPO, "v1.0");
    let tags = ["v2.0", "latest", "alpha", "v1.1", "beta", "v0.9", "zeta"];
    for tag in tags {
        reg.push_manifest(REPO, tag, OCI_MANIFEST, &bytes);
    }
    let mut sorted: Vec<String> = tags
        .iter()
        .map(|t| t.to_string())
        .chain(["v1.0".into()])
        .collect();
    sorted.sort();
    assert_eq!(tags_page(&reg, "").0, sorted, "the full list in lexical order");

    let (first, link) = tags_page(&reg, "?n=3");
    assert_eq!(first, sorted[..3], "n=3 gives the first three");
    assert!(link.is_some(), "a Link header when more tags follow (n=3 of 8)");
    let paged: Vec<String> = reg
        .pages(&format!("/v2/{REPO}/tags/list?n=3"))
        .iter()
        .flat_map(|p| strings(&p["tags"]))
        .collect();
    assert_eq!(paged, sorted, "following Link gives every tag once, in order");
    assert_eq!(
        tags_page(&reg, "?n=2&last=latest").0,
        ["v0.9", "v1.0"],
        "n=2 after `latest`"
    );
    assert_eq!(
        tags_page(&reg, "?last=v2.0").0,
        ["zeta"],
        "everything after `v2.0`"
    );
}

#[test]
fn asking_for_zero_tags_gives_an_empty_list_and_no_link() {
    if skip_unless_berth("distribution 2.8 does not paginate tags") {
        return;
    }
    let reg = Registry::start();
    let (_, bytes) = reg.push_small_image(REPO, "a");
    reg.push_manifest(REPO, "b", OCI_MANIFEST, &bytes);
    // Spec (Listing Tags): "When n is zero, this endpoint MUST return an empty list, and MUST NOT
    // include a Link header."
    let (tags, link) = tags_page(&reg, "?n=0");
    assert_eq!(tags, Vec::<String>::new(), "n=0: an empty list");
    assert_eq!(link, None, "n=0: no Link header");
}

#[test]
fn tags_are_listed_in_case_insensitive_order_as_the_spec_says() {
    if skip_unless_berth("distribution 2.8 lists tags in directory order") {
        return;
    }
    let reg = Registry::start();
    let (_, bytes) = reg.push_small_image(REPO, "gamma");
    for tag in ["Beta", "alpha", "Delta"] {
        reg.push_manifest(REPO, tag, OCI_MANIFEST, &bytes);
    }
    // Spec (Listing Tags): "the tags MUST be in lexical order (i.e. case-insensitive alphanumeric order)".
    assert_eq!(tags_page(&reg, "").0, ["alpha", "Beta", "Delta", "gamma"]);
}

#[test]
fn the_catalog_lists_repositories_in_order_with_pagination() {
    let reg = Registry::start();
    let repos = ["e2e/cat-c", "e2e/cat-a", "library/app", "e2e/cat-b", "aaa/first"];
    for repo in repos {
        reg.push_small_image(repo, "v1");
    }
    let mut sorted: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
    sorted.sort();
    let resp = reg.get("/v2/_catalog?n=2");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        next_link(&resp).is_some(),
        "a Link header when more repositories follow"
    );
    assert_eq!(
        strings(&resp.json::<Value>().unwrap()["repositories"]),
        sorted[..2]
    );
    let pages = reg.pages("/v2/_catalog?n=2");
    assert_eq!(pages.len(), 3, "5 repositories in pages of 2");
    let all: Vec<String> = pages.iter().flat_map(|p| strings(&p["repositories"])).collect();
    assert_eq!(all, sorted);
    let after = strings(
        &reg.get("/v2/_catalog?n=10&last=e2e/cat-b")
            .json::<Value>()
            .unwrap()["repositories"],
    );
    assert_eq!(after, ["e2e/cat-c", "library/app"]);
}

#[test]
fn asking_for_zero_repositories_gives_an_empty_catalog_and_no_link_to_loop_on() {
    let reg = Registry::start();
    reg.push_small_image("e2e/cat-a", "v1");
    reg.push_small_image("e2e/cat-b", "v1");
    let resp = reg.get("/v2/_catalog?n=0");
    assert_eq!(resp.status().as_u16(), 200);
    let link = next_link(&resp);
    let body: Value = resp.json().unwrap();
    assert_eq!(
        strings(&body["repositories"]),
        Vec::<String>::new(),
        "n=0: no repositories"
    );
    // As for tags (spec: n=0 "MUST NOT include a Link header"): a Link back to `?n=0` would
    // answer this same page again, and a client following Link would never stop.
    assert_eq!(link, None, "n=0: no Link header");
}

/// The health route probes the registry's real storage on each target (redb and disk; DynamoDB and
/// S3; the same through the Lambda function), anonymously, as a load balancer would.
#[test]
fn health_reports_every_component_healthy_and_ping_answers_pong() {
    if skip_unless_berth("/api/v2.0 is Berth's (Harbor's API)") {
        return;
    }
    let reg = Registry::start();
    let (status, body) = api_call(&reg, None, "GET", "/health", Value::Null);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy", "{body}");
    let names: Vec<&str> = (body["components"].as_array().unwrap().iter())
        .filter(|c| c["status"] == "healthy")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["core", "log", "blobs"], "{body}");
    let pong = bare().get(reg.url("/api/v2.0/ping")).send().unwrap();
    assert_eq!(pong.status().as_u16(), 200);
    assert_eq!(pong.text().unwrap(), "Pong");
}
