//! Immutable tag rules: Harbor's routes, and tags they hold refused a move or a deletion with
//! Harbor's 412 and message, while pushes of the same digest and accessories stay free.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;
use crate::app::AppError;
use crate::domain::{Digest, Reference};

const RULES: &str = "/projects/team/immutabletagrules";

fn rule(repositories: &str, tags: &str) -> Value {
    json!({
        "action": "immutable", "template": "immutable_template", "disabled": false, "priority": 0,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags}],
        "scope_selectors": {"repository": [
            {"kind": "doublestar", "decoration": "repoMatches", "pattern": repositories}
        ]},
    })
}

/// An empty OCI index, told apart by `n`: a distinct manifest per `n`, with no blobs.
async fn push_index(registry: &Registry, repo: &str, reference: &str, n: u32) -> Result<Digest, AppError> {
    let ctx = RequestContext::as_principal(Principal::User("alice".parse().unwrap()));
    let body = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [],
        "annotations": {"n": n.to_string()},
    });
    let pushed = registry
        .push_manifest(
            &ctx,
            &repo.parse().unwrap(),
            reference.parse().unwrap(),
            "application/vnd.oci.image.index.v1+json",
            body.to_string().into(),
        )
        .await?;
    Ok(pushed.digest)
}

#[tokio::test]
async fn rules_are_added_listed_changed_and_deleted_with_harbors_shapes() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let created = given
        .call(Method::POST, RULES, Some(ALICE), Some(rule("**", "v*")))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = created.location();
    let id: u64 = path.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(path, format!("{RULES}/{id}"));

    let listed = given.get(RULES, Some(ALICE)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.header("x-total-count"), "1");
    let first = &listed.body[0];
    assert_eq!(first["id"], id);
    assert_eq!(first["action"], "immutable");
    assert_eq!(first["template"], "immutable_template");
    assert_eq!(first["disabled"], false);
    assert_eq!(first["tag_selectors"][0]["pattern"], "v*");
    assert_eq!(first["tag_selectors"][0]["decoration"], "matches");
    assert_eq!(
        first["scope_selectors"]["repository"][0]["decoration"],
        "repoMatches"
    );

    // Harbor's UI disables a rule by sending it back changed; the project may also be named by id.
    let mut disabled = first.clone();
    disabled["disabled"] = json!(true);
    let put = given
        .call(Method::PUT, &path, Some(ALICE), Some(disabled.clone()))
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(given.get(RULES, Some(ALICE)).await.body[0]["disabled"], true);
    disabled["id"] = json!(id + 100);
    given
        .call(Method::PUT, &path, Some(ALICE), Some(disabled))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    let deleted = given.call(Method::DELETE, &path, Some(ALICE), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(given.get(RULES, Some(ALICE)).await.body, json!([]));
    given
        .call(Method::DELETE, &path, Some(ALICE), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    given
        .call(
            Method::PUT,
            &format!("{RULES}/{id}"),
            Some(ALICE),
            Some(rule("**", "**")),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn only_maintainers_and_admins_see_and_change_the_rules() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    given.add_member("team", "bob", 2).await; // developer
    given
        .get(RULES, Some(BOB))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    given
        .call(Method::POST, RULES, Some(BOB), Some(rule("**", "**")))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    // Not a member of a private project: it does not exist for carol.
    given
        .get(RULES, Some(CAROL))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    given.add_member("team", "carol", 4).await; // maintainer
    let created = given
        .call(Method::POST, RULES, Some(CAROL), Some(rule("**", "**")))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let listed = given.get(RULES, Some(ADMIN)).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_rules_are_refused_and_a_project_holds_at_most_fifteen() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let mut bad_decoration = rule("**", "**");
    bad_decoration["tag_selectors"][0]["decoration"] = json!("repoMatches");
    let mut bad_pattern = rule("[", "**");
    let mut other_scope = rule("**", "**");
    other_scope["scope_selectors"] = json!({"namespace": [
        {"kind": "doublestar", "decoration": "nsMatches", "pattern": "**"}
    ]});
    let mut no_tags = rule("**", "**");
    no_tags["tag_selectors"] = json!([]);
    let mut no_scope = rule("**", "**");
    no_scope["scope_selectors"] = json!({});
    let mut retain = rule("**", "**");
    retain["action"] = json!("retain");
    let mut label = rule("**", "**");
    label["tag_selectors"][0]["kind"] = json!("label");
    bad_pattern["priority"] = json!(1);
    for body in [
        bad_decoration,
        bad_pattern,
        other_scope,
        no_tags,
        no_scope,
        retain,
        label,
        json!([]),
    ] {
        let answer = given
            .call(Method::POST, RULES, Some(ALICE), Some(body.clone()))
            .await;
        answer.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    for n in 0..15 {
        let answer = given
            .call(
                Method::POST,
                RULES,
                Some(ALICE),
                Some(rule("**", &format!("v{n}"))),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    let sixteenth = given
        .call(Method::POST, RULES, Some(ALICE), Some(rule("**", "v15")))
        .await;
    sixteenth.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(
        sixteenth.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 15"),
        "{}",
        sixteenth.body
    );
    assert_eq!(given.get(RULES, Some(ALICE)).await.header("x-total-count"), "15");
}

#[tokio::test]
async fn a_held_tag_is_pushed_again_but_never_moved_or_deleted_and_accessories_stay_free() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let created = given
        .call(Method::POST, RULES, Some(ALICE), Some(rule("app", "v*")))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let registry = &given.registry;

    let first = push_index(registry, "team/app", "v1", 1).await.unwrap();
    assert_eq!(push_index(registry, "team/app", "v1", 1).await.unwrap(), first);
    let moved = push_index(registry, "team/app", "v1", 2).await.unwrap_err();
    assert!(matches!(moved, AppError::Immutable(_)), "{moved:?}");
    assert_eq!(
        moved.to_string(),
        "Failed to process request due to 'team/app:v1' configured as immutable."
    );
    // Tags no rule selects move freely, in the same repository and elsewhere.
    push_index(registry, "team/app", "latest", 1).await.unwrap();
    push_index(registry, "team/app", "latest", 2).await.unwrap();
    push_index(registry, "team/app", "latest", 1).await.unwrap();
    push_index(registry, "team/other", "v1", 1).await.unwrap();
    push_index(registry, "team/other", "v1", 2).await.unwrap();

    // Re-signing: the signature's scheme tag moves to a new signature manifest.
    let sig_tag = format!("{}.sig", first.tag_form());
    push_index(registry, "team/app", &sig_tag, 10).await.unwrap();
    push_index(registry, "team/app", &sig_tag, 11).await.unwrap();

    let artifact = format!("/projects/team/repositories/app/artifacts/{first}");
    let tags = given.get(&format!("{artifact}/tags"), Some(ALICE)).await;
    assert_eq!(tags.status, StatusCode::OK, "{}", tags.body);
    let immutable: Vec<(String, bool)> = (tags.body.as_array().unwrap().iter())
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["immutable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        immutable,
        [("latest".to_string(), false), ("v1".to_string(), true)]
    );
    let listed = given
        .get("/projects/team/repositories/app/artifacts", Some(ALICE))
        .await;
    let with_v1 = (listed.body.as_array().unwrap().iter())
        .find(|a| a["digest"] == first.to_string())
        .unwrap();
    assert!(with_v1["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["immutable"] == true));

    let refused = given
        .call(Method::DELETE, &format!("{artifact}/tags/v1"), Some(ALICE), None)
        .await;
    refused.assert_error(StatusCode::PRECONDITION_FAILED, "PRECONDITION");
    assert_eq!(
        refused.body["errors"][0]["message"],
        "Failed to process request due to 'team/app:v1' configured as immutable."
    );
    given
        .call(Method::DELETE, &artifact, Some(ALICE), None)
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED, "PRECONDITION");
    let ctx = RequestContext::as_principal(Principal::User("alice".parse().unwrap()));
    let repo = "team/app".parse().unwrap();
    let by_v2 = registry
        .delete_manifest(&ctx, &repo, &Reference::Tag("v1".parse().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(by_v2, AppError::Immutable(_)), "{by_v2:?}");

    // A tag no rule holds is deleted; a tag not on the artifact is not found.
    let latest = given
        .call(
            Method::DELETE,
            &format!("{artifact}/tags/latest"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(latest.status, StatusCode::OK, "{}", latest.body);
    given
        .call(
            Method::DELETE,
            &format!("{artifact}/tags/nope"),
            Some(ALICE),
            None,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    // The signature goes, by its scheme tag, though its subject is held.
    registry
        .delete_manifest(&ctx, &repo, &Reference::Tag(sig_tag.parse().unwrap()))
        .await
        .unwrap();

    // Once the rule is disabled, the tag moves and the artifact goes.
    let path = created.location();
    let mut off = given.get(RULES, Some(ALICE)).await.body[0].clone();
    off["disabled"] = json!(true);
    let put = given.call(Method::PUT, &path, Some(ALICE), Some(off)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    push_index(registry, "team/app", "v1", 2).await.unwrap();
    let gone = given.call(Method::DELETE, &artifact, Some(ALICE), None).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
}
