//! Harbor's replication executions: a push-based policy run by hand copies each selected image
//! with its signature and its referrers to another Berth, blobs crossing once (mounted there when
//! another repository already has them), and a second run finds everything in place.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::registry_client::documents::sha256_digest;
use crate::registry_client::testing::{admin_client, berth_on_loopback};
use crate::registry_client::RegistryClient;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Pushes blobs and an OCI manifest of them; its bytes and digest.
async fn push_image(
    client: &RegistryClient,
    config: &[u8],
    layers: &[&[u8]],
    extra: Value,
    tag: &str,
) -> (Vec<u8>, String) {
    let mut descriptors = vec![];
    for layer in layers {
        let digest = client.push_blob(layer).await.unwrap();
        descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": layer.len()}));
    }
    let config_digest = client.push_blob(config).await.unwrap();
    let mut manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    });
    if let (Some(m), Some(extra)) = (manifest.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let (digest, _) = client
        .put_manifest(tag, OCI_MANIFEST, bytes.clone())
        .await
        .unwrap();
    (bytes, digest)
}

/// Waits for an execution to end; its body.
async fn ended(given: &Given, path: &str) -> Value {
    for _ in 0..300 {
        let execution = given.get(path, Some(ADMIN)).await;
        assert_eq!(execution.status, StatusCode::OK, "{}", execution.body);
        if execution.body["status"] != "InProgress" {
            return execution.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path} did not end");
}

#[tokio::test]
async fn a_signed_image_replicates_with_its_signature_and_referrers_and_bytes_cross_once() {
    let given = given().await;
    // The source is this registry, served on loopback to push into it.
    let app = crate::oci::router(
        given.registry.clone(),
        crate::oci::Host::container(),
        crate::oci::AuthConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source_at = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (destination_at, _destination_dir) = berth_on_loopback().await;

    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let app_client = admin_client(&source_at, "app");
    let (image, image_digest) = push_image(
        &app_client,
        br#"{"architecture":"amd64","os":"linux"}"#,
        &[&layer],
        json!({}),
        "v1",
    )
    .await;
    // A cosign signature (by its scheme tag) and an SBOM referrer (by its subject).
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": image_digest, "size": image.len()});
    let sig_tag = format!("{}.sig", image_digest.replace(':', "-"));
    let signature = json!({"layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
        "digest": app_client.push_blob(b"{\"critical\":{}}").await.unwrap(), "size": 15,
        "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}]});
    let (_, signature_digest) = push_image(&app_client, b"{}", &[], signature, &sig_tag).await;
    let sbom = json!({"artifactType": "application/spdx+json", "subject": subject});
    let (_, sbom_digest) = push_image(&app_client, b"{\"spdx\":1}", &[], sbom, &sbom_digest_tag()).await;
    // Another image that shares the layer.
    let other_client = admin_client(&source_at, "other");
    let (_, other_digest) = push_image(
        &other_client,
        br#"{"architecture":"arm64","os":"linux"}"#,
        &[&layer],
        json!({}),
        "v1",
    )
    .await;

    let registry = json!({"name": "dr", "type": "harbor", "url": format!("http://{destination_at}"),
        "credential": {"type": "basic", "access_key": "admin", "access_secret": "Admin12345"}});
    let added = given
        .call(Method::POST, "/registries", Some(ADMIN), Some(registry))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let registry_id: u64 = added.location().rsplit('/').next().unwrap().parse().unwrap();
    let policy = json!({"name": "to-dr", "dest_registry": {"id": registry_id}, "enabled": true, "override": true,
        "filters": [{"type": "name", "value": "library/**"}, {"type": "tag", "value": "v*"}]});
    let created = given
        .call(Method::POST, "/replication/policies", Some(ADMIN), Some(policy))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let policy_id: u64 = created.location().rsplit('/').next().unwrap().parse().unwrap();

    given
        .call(
            Method::POST,
            "/replication/executions",
            Some(ALICE),
            Some(json!({"policy_id": policy_id})),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let started = given
        .call(
            Method::POST,
            "/replication/executions",
            Some(ADMIN),
            Some(json!({"policy_id": policy_id})),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let path = started.location();
    let execution = ended(&given, &path).await;
    assert_eq!(execution["status"], "Succeed", "{execution}");
    assert_eq!(
        (execution["total"].as_u64(), execution["succeed"].as_u64()),
        (Some(2), Some(2)),
        "{execution}"
    );
    assert_eq!(execution["trigger"], "MANUAL");
    assert_eq!(execution["policy_id"], policy_id);
    let listed = given
        .get(
            &format!("/replication/executions?policy_id={policy_id}"),
            Some(ADMIN),
        )
        .await;
    assert_eq!(listed.header("x-total-count"), "1");

    let tasks = given.get(&format!("{path}/tasks"), Some(ADMIN)).await;
    assert_eq!(tasks.status, StatusCode::OK, "{}", tasks.body);
    assert_eq!(tasks.body[0]["src_resource"], "library/app:v1");
    assert_eq!(tasks.body[0]["dst_resource"], "library/app:v1");
    assert_eq!(tasks.body[0]["resource_type"], "image");
    let first_log = given.get(&format!("{path}/tasks/1/log"), Some(ADMIN)).await;
    let first_log = first_log.body.as_str().unwrap().to_string();
    assert!(
        first_log.contains("2 accessories after it") && first_log.contains("Succeed"),
        "{first_log}"
    );
    let second_log = given.get(&format!("{path}/tasks/2/log"), Some(ADMIN)).await;
    assert!(
        second_log.body.as_str().unwrap().contains("1 mounted"),
        "the shared layer is mounted, not sent again: {}",
        second_log.body
    );

    // At the destination: the image by tag, its signature by its scheme tag, its SBOM as a referrer.
    let there = admin_client(&destination_at, "app");
    let fetched = there.manifest("v1", &[OCI_MANIFEST]).await.unwrap().unwrap();
    assert_eq!(fetched.digest, image_digest);
    let signature_there = there.manifest(&sig_tag, &[OCI_MANIFEST]).await.unwrap().unwrap();
    assert_eq!(signature_there.digest, signature_digest);
    let referrers = there
        .referrers(&image_digest, "application/spdx+json")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        referrers.iter().map(|d| d.digest.clone()).collect::<Vec<_>>(),
        vec![sbom_digest]
    );
    assert_eq!(there.blob(&sha256_digest(&layer), 1 << 20).await.unwrap(), layer);
    let other_there = admin_client(&destination_at, "other");
    assert_eq!(
        other_there
            .manifest("v1", &[OCI_MANIFEST])
            .await
            .unwrap()
            .unwrap()
            .digest,
        other_digest
    );

    // Again: everything is in place, nothing crosses.
    let again = given
        .call(
            Method::POST,
            "/replication/executions",
            Some(ADMIN),
            Some(json!({"policy_id": policy_id})),
        )
        .await;
    let again_path = again.location();
    assert_ne!(again_path, path);
    assert_eq!(ended(&given, &again_path).await["status"], "Succeed");
    let log = given.get(&format!("{again_path}/tasks/1/log"), Some(ADMIN)).await;
    assert!(
        log.body.as_str().unwrap().contains("0 blob(s) sent (0 bytes)"),
        "{}",
        log.body
    );

    // A stopped execution stays stopped; unknown ones are 404.
    let stop = given.call(Method::PUT, &again_path, Some(ADMIN), None).await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.body);
    assert_eq!(
        given.get(&again_path, Some(ADMIN)).await.body["status"],
        "Succeed"
    );
    given
        .get("/replication/executions/99999", Some(ADMIN))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    given
        .call(
            Method::POST,
            "/replication/executions",
            Some(ADMIN),
            Some(json!({"policy_id": 99_999})),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

/// The SBOM is pushed by digest in practice; a throwaway tag keeps the helper simple.
fn sbom_digest_tag() -> String {
    "sbom".to_string()
}
