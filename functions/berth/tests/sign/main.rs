//! `berth key generate`, `berth sign` and `berth verify` end to end, against `berth serve` and
//! against docker-registry 2.8 (skipped with a notice when it is not installed): each scenario
//! runs on both, so the CLI is checked to work with any OCI registry.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use harness::{Registry, Workdir};
use serde_json::{json, Value};

const REPO: &str = "library/app";
const SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Runs `scenario` on a fresh Berth.
fn on_berth(scenario: fn(&Registry)) {
    scenario(&Registry::berth());
}

/// Runs `scenario` on a fresh docker-registry 2.8, when installed.
fn on_distribution(scenario: fn(&Registry)) {
    if let Some(registry) = Registry::distribution() {
        scenario(&registry);
    }
}

/// `sha256-<hex>.sig`'s manifest.
fn sig_manifest(registry: &Registry, digest: &str) -> Option<Value> {
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    registry.get_json(&format!("/v2/{REPO}/manifests/{tag}"), OCI_MANIFEST)
}

fn tag_scheme_signatures_verify_and_other_keys_do_not(registry: &Registry) {
    let digest = registry.push_image(REPO, "v1");
    let cli = Workdir::new();
    cli.generate_key("cosign");
    cli.generate_key("other");
    let image = format!("{}/{REPO}:v1", registry.host());

    let signed = cli.berth(&["sign", "--key", "cosign.key", &image]);
    assert!(signed.ok, "{signed:?}");
    let pushed = signed.stdout.trim();
    assert!(
        pushed.starts_with(&format!("{}/{REPO}@sha256:", registry.host())),
        "{signed:?}"
    );
    let manifest = sig_manifest(registry, &digest).expect("the .sig manifest");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], SIMPLE_SIGNING);
    assert!(manifest["layers"][0]["annotations"][SIGNATURE].is_string());
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );

    let verified = cli.berth(&["verify", "--key", "cosign.pub", &image]);
    assert!(verified.ok, "{verified:?}");
    assert!(
        verified.stderr.contains(&format!("Verification for {image} --")),
        "{verified:?}"
    );
    assert!(verified
        .stderr
        .contains("The signatures were verified against the specified public key"));
    let payloads = verified.json();
    assert_eq!(payloads.as_array().unwrap().len(), 1, "{verified:?}");
    let critical = &payloads[0]["critical"];
    assert_eq!(critical["image"]["docker-manifest-digest"], digest.as_str());
    assert_eq!(
        critical["identity"]["docker-reference"],
        format!("{}/{REPO}", registry.host())
    );
    assert_eq!(critical["type"], "cosign container image signature");

    // By digest too.
    let by_digest = format!("{}/{REPO}@{digest}", registry.host());
    let verified = cli.berth(&["verify", "--key", "cosign.pub", &by_digest]);
    assert!(verified.ok, "{verified:?}");

    let wrong = cli.berth(&["verify", "--key", "other.pub", &image]);
    assert!(!wrong.ok, "{wrong:?}");
    assert!(wrong.stderr.contains("no matching signatures"), "{wrong:?}");
    assert!(wrong.stdout.trim().is_empty(), "{wrong:?}");
}

fn signatures_of_two_keys_accumulate_in_one_sig_manifest(registry: &Registry) {
    let digest = registry.push_image(REPO, "v2");
    let cli = Workdir::new();
    cli.generate_key("alice");
    cli.generate_key("bob");
    let image = format!("{}/{REPO}:v2", registry.host());
    assert!(cli.berth(&["sign", "--key", "alice.key", &image]).ok);
    let bob = cli.berth(&["sign", "--key", "bob.key", "-a", "team=blue", &image]);
    assert!(bob.ok, "{bob:?}");

    let manifest = sig_manifest(registry, &digest).expect("the .sig manifest");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "{manifest:#}");
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value =
        serde_json::from_slice(&registry.get_bytes(&format!("/v2/{REPO}/blobs/{config_digest}"))).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        json!([layers[0]["digest"], layers[1]["digest"]]),
        "one diff_id per signature layer: {config:#}"
    );
    assert_eq!(config["history"].as_array().map(Vec::len), Some(2));

    // The same payload signed again with the same key adds nothing: cosign's duplicate detection
    // (an existing layer with that payload whose signature the key verifies).
    let again = cli.berth(&["sign", "--key", "alice.key", &image]);
    assert!(again.ok, "{again:?}");
    assert!(
        again.stderr.contains("already carries this signature"),
        "{again:?}"
    );
    let manifest = sig_manifest(registry, &digest).unwrap();
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2, "{manifest:#}");

    for key in ["alice.pub", "bob.pub"] {
        let run = cli.berth(&["verify", "--key", key, &image]);
        assert!(run.ok, "{key}: {run:?}");
        assert_eq!(run.json().as_array().unwrap().len(), 1, "{run:?}");
    }
    let annotated = cli.berth(&["verify", "--key", "bob.pub", "-a", "team=blue", &image]);
    assert!(annotated.ok, "{annotated:?}");
    assert_eq!(annotated.json()[0]["optional"]["team"], "blue");
    assert!(annotated
        .stderr
        .contains("The specified annotations were verified"));
    let missing = cli.berth(&["verify", "--key", "alice.pub", "-a", "team=blue", &image]);
    assert!(!missing.ok, "{missing:?}");
    assert!(missing.stderr.contains("team=blue"), "{missing:?}");
}

fn referrer_signatures_are_listed_and_verified(registry: &Registry) {
    let digest = registry.push_image(REPO, "v3");
    let cli = Workdir::new();
    cli.generate_key("cosign");
    let image = format!("{}/{REPO}:v3", registry.host());
    let signed = cli.berth(&["sign", "--referrer", "--key", "cosign.key", &image]);
    assert!(signed.ok, "{signed:?}");
    let pushed = signed.stdout.trim().rsplit('@').next().unwrap().to_string();

    assert!(
        sig_manifest(registry, &digest).is_none(),
        "no .sig tag with --referrer"
    );
    let referrer = registry
        .get_json(&format!("/v2/{REPO}/manifests/{pushed}"), OCI_MANIFEST)
        .expect("the referrer manifest");
    assert_eq!(referrer["artifactType"], SIG_ARTIFACT);
    assert_eq!(referrer["subject"]["digest"], digest.as_str());
    assert_eq!(
        referrer["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        referrer["config"]["digest"],
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(referrer["layers"][0]["mediaType"], SIMPLE_SIGNING);

    // The referrers API where the registry has one, else the referrers tag schema's index.
    let index_accept = "application/vnd.oci.image.index.v1+json";
    let filter = SIG_ARTIFACT.replace('+', "%2B");
    let api = format!("/v2/{REPO}/referrers/{digest}?artifactType={filter}");
    let listed = match registry.get_json(&api, index_accept) {
        Some(index) => index,
        None => {
            let tag = digest.replacen(':', "-", 1);
            let fallback = registry.get_json(&format!("/v2/{REPO}/manifests/{tag}"), index_accept);
            fallback.expect("the referrers fallback index")
        }
    };
    let manifests = listed["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{listed:#}");
    assert_eq!(manifests[0]["digest"], pushed.as_str());
    assert_eq!(manifests[0]["artifactType"], SIG_ARTIFACT);

    let verified = cli.berth(&["verify", "--key", "cosign.pub", &image]);
    assert!(verified.ok, "{verified:?}");
    assert_eq!(
        verified.json()[0]["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
}

fn a_tampered_payload_fails_verification(registry: &Registry) {
    let digest = registry.push_image(REPO, "v4");
    let cli = Workdir::new();
    cli.generate_key("cosign");
    let image = format!("{}/{REPO}:v4", registry.host());
    assert!(cli.berth(&["sign", "--key", "cosign.key", &image]).ok);

    // Rewrite the signed payload (keeping its signature) to claim another repository.
    let mut manifest = sig_manifest(registry, &digest).unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap().to_string();
    let payload = registry.get_bytes(&format!("/v2/{REPO}/blobs/{layer_digest}"));
    let tampered = String::from_utf8(payload)
        .unwrap()
        .replace(&format!("{}/{REPO}", registry.host()), "evil.example/app")
        .into_bytes();
    let tampered_digest = registry.push_blob(REPO, &tampered);
    manifest["layers"][0]["digest"] = json!(tampered_digest);
    manifest["layers"][0]["size"] = json!(tampered.len());
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    registry.put_manifest(REPO, &tag, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());

    let run = cli.berth(&["verify", "--key", "cosign.pub", &image]);
    assert!(!run.ok, "{run:?}");
    assert!(run.stderr.contains("no matching signatures"), "{run:?}");
    assert!(
        run.stderr.contains(&tampered_digest),
        "the rejected layer is named: {run:?}"
    );
}

fn an_unsigned_image_fails_verification(registry: &Registry) {
    registry.push_image(REPO, "unsigned");
    let cli = Workdir::new();
    cli.generate_key("cosign");
    let run = cli.berth(&[
        "verify",
        "--key",
        "cosign.pub",
        &format!("{}/{REPO}:unsigned", registry.host()),
    ]);
    assert!(!run.ok, "{run:?}");
    assert!(run.stderr.contains("no signatures found"), "{run:?}");
}

#[test]
fn tag_scheme_signatures_verify_and_other_keys_do_not_on_berth() {
    on_berth(tag_scheme_signatures_verify_and_other_keys_do_not);
}

#[test]
fn tag_scheme_signatures_verify_and_other_keys_do_not_on_distribution() {
    on_distribution(tag_scheme_signatures_verify_and_other_keys_do_not);
}

#[test]
fn signatures_of_two_keys_accumulate_in_one_sig_manifest_on_berth() {
    on_berth(signatures_of_two_keys_accumulate_in_one_sig_manifest);
}

#[test]
fn signatures_of_two_keys_accumulate_in_one_sig_manifest_on_distribution() {
    on_distribution(signatures_of_two_keys_accumulate_in_one_sig_manifest);
}

#[test]
fn referrer_signatures_are_listed_and_verified_on_berth() {
    on_berth(referrer_signatures_are_listed_and_verified);
}

#[test]
fn referrer_signatures_are_listed_and_verified_on_distribution() {
    on_distribution(referrer_signatures_are_listed_and_verified);
}

#[test]
fn a_tampered_payload_fails_verification_on_berth() {
    on_berth(a_tampered_payload_fails_verification);
}

#[test]
fn a_tampered_payload_fails_verification_on_distribution() {
    on_distribution(a_tampered_payload_fails_verification);
}

#[test]
fn an_unsigned_image_fails_verification_on_berth() {
    on_berth(an_unsigned_image_fails_verification);
}

#[test]
fn key_generate_writes_a_private_key_for_the_owner_only_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt as _;
    let cli = Workdir::new();
    cli.generate_key("cosign");
    let key = std::fs::read_to_string(cli.path("cosign.key")).unwrap();
    assert!(key.contains("ENCRYPTED SIGSTORE PRIVATE KEY"), "{key}");
    let public = std::fs::read_to_string(cli.path("cosign.pub")).unwrap();
    assert!(public.contains("BEGIN PUBLIC KEY"), "{public}");
    let mode = std::fs::metadata(cli.path("cosign.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let again = cli.berth(&["key", "generate"]);
    assert!(!again.ok, "{again:?}");
    assert!(again.stderr.contains("--force"), "{again:?}");
    assert_eq!(
        std::fs::read_to_string(cli.path("cosign.key")).unwrap(),
        key,
        "untouched"
    );
    let forced = cli.berth(&["key", "generate", "--force"]);
    assert!(forced.ok, "{forced:?}");
    assert_ne!(std::fs::read_to_string(cli.path("cosign.key")).unwrap(), key);
}

#[test]
fn a_key_with_the_wrong_password_cannot_sign() {
    let registry = Registry::berth();
    registry.push_image(REPO, "v1");
    let cli = Workdir::new();
    cli.generate_key("cosign");
    let image = format!("{}/{REPO}:v1", registry.host());
    let run = cli.berth_with(
        &["sign", "--key", "cosign.key", &image],
        &[("COSIGN_PASSWORD", "wrong"), ("BERTH_USERNAME", "admin")],
    );
    assert!(!run.ok, "{run:?}");
    assert!(run.stderr.contains("cannot decrypt"), "{run:?}");
}

#[test]
fn signing_on_berth_without_credentials_is_refused_with_the_registry_error() {
    let registry = Registry::berth();
    registry.push_image(REPO, "v1");
    let cli = Workdir::new();
    cli.generate_key("cosign");
    let image = format!("{}/{REPO}:v1", registry.host());
    let run = cli.berth_with(&["sign", "--key", "cosign.key", &image], &[]);
    assert!(!run.ok, "{run:?}");
    assert!(
        run.stderr.contains("401") || run.stderr.contains("403"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("UNAUTHORIZED") || run.stderr.contains("DENIED"),
        "{run:?}"
    );

    // Credentials from ~/.docker/config.json work.
    let auth = {
        use base64ct::Encoding as _;
        base64ct::Base64::encode_string(format!("admin:{}", harness::ADMIN_PASSWORD).as_bytes())
    };
    let config = json!({ "auths": { registry.host(): { "auth": auth } } });
    std::fs::create_dir_all(cli.path(".docker")).unwrap();
    std::fs::write(cli.path(".docker/config.json"), config.to_string()).unwrap();
    let run = cli.berth_with(&["sign", "--key", "cosign.key", &image], &[]);
    assert!(run.ok, "{run:?}");
}
