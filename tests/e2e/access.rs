//! Projects, principals and roles through the Docker token flow, as a client sees them: every
//! request goes out without credentials first, follows the 401 challenge to the token service with
//! the principal's Basic credentials (if any), and retries with the token, as docker and skopeo do.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

/// A management API call with Basic credentials (Harbor's API takes them directly).
fn api(reg: &Registry, who: &Who, method: &str, path: &str, body: Value) -> (u16, String) {
    let mut request = bare().request(method.parse().unwrap(), reg.url(&format!("/api/v2.0{path}")));
    if let Some((user, secret)) = &who.creds {
        request = request.basic_auth(user, Some(secret));
    }
    if !body.is_null() {
        request = request.json(&body);
    }
    let resp = request.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().unwrap())
}

/// Runs `berth admin …` (the server stopped: the embedded store is single-process); stdout.
fn admin(reg: &Registry, args: &[&str]) -> String {
    let out = reg.berth_cli("admin", args);
    assert!(
        out.status.success(),
        "berth admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Pushes a fresh single-layer image as `who`: the first status that is not a success, or the
/// manifest PUT's.
fn push(reg: &Registry, who: &Who, repo: &str, tag: &str) -> (u16, String) {
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}, "comment": hex::encode(random_bytes(8))}))
    .unwrap();
    let layer = random_bytes(128);
    for blob in [&config, &layer] {
        let path = format!("/v2/{repo}/blobs/uploads/?digest={}", sha256(blob));
        let (status, body) = call(
            reg,
            who,
            "POST",
            &path,
            Some(("application/octet-stream", blob.clone())),
        );
        if status != 201 {
            return (status, body);
        }
    }
    let manifest = image_manifest(
        &Descriptor::of(OCI_CONFIG, &config),
        &[Descriptor::of(OCI_LAYER, &layer)],
        None,
        None,
    );
    call(
        reg,
        who,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        Some((OCI_MANIFEST, manifest)),
    )
}

const OPS: [&str; 9] = [
    "pull",
    "push",
    "delete tag",
    "delete manifest",
    "list tags",
    "catalog",
    "referrers",
    "manage members",
    "manage robots",
];

/// What each principal may do in the project (`public` or not), per Harbor's roles: `Some(true)`
/// allowed, `Some(false)` refused, `None` refused at authentication (bad credentials).
fn may(who: &str, op: &str, public: bool) -> Option<bool> {
    let pull = matches!(op, "pull" | "list tags" | "catalog" | "referrers");
    let push = op == "push";
    let delete = op.starts_with("delete");
    let manage = op.starts_with("manage");
    let any_role = match who {
        "expired robot" | "disabled robot" => return None,
        "system admin" | "project admin" => true,
        "maintainer" => pull || push || delete,
        "developer" | "robot with push" => pull || push,
        "guest" | "robot with pull" => pull,
        // The catalog needs a signed-in caller (as Harbor's does).
        "anonymous" => pull && public && op != "catalog",
        "other project's admin" => pull && public,
        other => panic!("unknown principal {other}"),
    };
    Some(any_role && (!manage || matches!(who, "system admin" | "project admin")))
}

struct World {
    reg: Registry,
    who: Vec<Who>,
}

/// A registry with projects `open` (public) and `closed` (private), each with one member per role,
/// robots, and `other` whose admin is a stranger to both.
fn world() -> World {
    world_with(vec![])
}

fn world_with(mut env: Vec<(String, String)>) -> World {
    // The matrix sends an expired and a disabled robot's secrets over and over on purpose: that is
    // what the sign-in throttle stops (429, tested in `limits`), so it is set out of reach here.
    env.push(("BERTH_AUTH_MAX_FAILURES".into(), "100000".into()));
    let mut reg = Registry::start_with_env(env);
    reg.stop();
    let mut who = vec![Who {
        name: "anonymous",
        creds: None,
    }];
    admin(&reg, &["create-project", "open", "--public"]);
    admin(&reg, &["create-project", "closed"]);
    admin(&reg, &["create-project", "other"]);
    for (name, role) in [
        ("guest", "guest"),
        ("developer", "developer"),
        ("maintainer", "maintainer"),
        ("project admin", "project-admin"),
        ("other project's admin", "project-admin"),
    ] {
        let user = name.replace([' ', '\''], "-");
        let password = admin(&reg, &["create-user", &user]);
        let projects: &[&str] = if name == "other project's admin" {
            &["other"]
        } else {
            &["open", "closed"]
        };
        for project in projects {
            admin(&reg, &["add-member", project, &user, role]);
        }
        who.push(Who {
            name,
            creds: Some((user, password)),
        });
    }
    // One robot per project and kind: a robot acts in its own project only.
    for (name, actions, extra) in [
        ("robot with pull", "pull", vec![]),
        ("robot with push", "pull,push", vec![]),
        (
            "expired robot",
            "pull,push,delete",
            vec!["--expires-in-days", "0"],
        ),
        ("disabled robot", "pull,push,delete", vec![]),
    ] {
        let short = name.replace(' ', "-");
        let mut secrets = BTreeMap::new();
        for project in ["open", "closed"] {
            let mut args = vec!["create-robot", project, short.as_str(), "--actions", actions];
            args.extend(extra.iter().copied());
            secrets.insert(project, admin(&reg, &args));
            if name == "disabled robot" {
                admin(&reg, &["disable-robot", &format!("robot${project}+{short}")]);
            }
        }
        // The matrix runs each project with its own robot: stored as `<project>` → secret.
        who.push(Who {
            name,
            creds: Some((short, serde_json::to_string(&secrets).unwrap())),
        });
    }
    who.push(Who {
        name: "system admin",
        creds: Some(("admin".into(), ADMIN_PASSWORD.into())),
    });
    reg.restart();
    World { reg, who }
}

/// `who` as it acts in `project` (robots are per project).
fn in_project(who: &Who, project: &str) -> Who {
    let creds = who.creds.as_ref().map(|(user, secret)| {
        if who.name.contains("robot") {
            let secrets: BTreeMap<String, String> = serde_json::from_str(secret).unwrap();
            (format!("robot${project}+{user}"), secrets[project].clone())
        } else {
            (user.clone(), secret.clone())
        }
    });
    Who {
        name: who.name,
        creds,
    }
}

/// Runs one cell: (status, body, whether it was allowed by what the client saw).
fn run_cell(reg: &Registry, who: &Who, project: &str, op: &str, n: usize) -> (u16, String, bool) {
    let repo = format!("{project}/app");
    let admin = Who {
        name: "system admin",
        creds: Some(("admin".into(), ADMIN_PASSWORD.into())),
    };
    // A fresh tag and manifest for the operations that read or delete one.
    let needs_image = matches!(op, "pull" | "delete tag" | "delete manifest" | "referrers");
    let digest = if needs_image {
        reg.push_small_image(&repo, &format!("t{n}")).0
    } else {
        String::new()
    };
    let (status, body) = match op {
        "pull" => call(reg, who, "GET", &format!("/v2/{repo}/manifests/t{n}"), None),
        "push" => push(reg, who, &repo, &format!("pushed-{n}")),
        "delete tag" => call(reg, who, "DELETE", &format!("/v2/{repo}/manifests/t{n}"), None),
        "delete manifest" => call(
            reg,
            who,
            "DELETE",
            &format!("/v2/{repo}/manifests/{digest}"),
            None,
        ),
        "list tags" => call(reg, who, "GET", &format!("/v2/{repo}/tags/list"), None),
        "referrers" => call(reg, who, "GET", &format!("/v2/{repo}/referrers/{digest}"), None),
        "catalog" => {
            let (status, body) = call(reg, who, "GET", "/v2/_catalog", None);
            if status != 200 {
                return (status, body, false);
            }
            let listed: Value = serde_json::from_str(&body).unwrap();
            let seen = listed["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == &json!(repo));
            return (status, body, seen);
        }
        "manage members" => {
            let user = format!("member-{n}");
            let (created, _) = api(
                reg,
                &admin,
                "POST",
                "/users",
                json!({"username": user, "password": "Passw0rd-long", "email": format!("{user}@example.com"), "realname": user}),
            );
            assert_eq!(created, 201, "the admin creates user {user}");
            api(
                reg,
                who,
                "POST",
                &format!("/projects/{project}/members"),
                json!({"role_id": 3, "member_user": {"username": user}}),
            )
        }
        "manage robots" => api(
            reg,
            who,
            "POST",
            "/robots",
            json!({"name": format!("made-{n}"), "duration": -1, "level": "project", "disable": false,
                "permissions": [{"kind": "project", "namespace": project,
                    "access": [{"resource": "repository", "action": "pull"}]}]}),
        ),
        other => panic!("unknown op {other}"),
    };
    let ok = (200..300).contains(&status);
    (status, body, ok)
}

fn matrix(public: bool) {
    if skip_unless_berth("projects and roles are Berth's") {
        return;
    }
    let World { reg, who } = world();
    let project = if public { "open" } else { "closed" };
    let mut wrong = vec![];
    let mut n = 0;
    for principal in &who {
        let acting = in_project(principal, project);
        for op in OPS {
            n += 1;
            let (status, body, allowed) = run_cell(&reg, &acting, project, op, n);
            let expected = may(principal.name, op, public);
            let fine = match expected {
                Some(true) => allowed,
                // Anonymous callers are challenged; known ones are told no (management API: 404
                // when they may not know a private project exists).
                Some(false) if principal.name == "anonymous" => status == 401,
                Some(false) if op == "catalog" => !allowed && status == 200,
                Some(false) if op.starts_with("manage") => status == 403 || (!public && status == 404),
                Some(false) => status == 403 && body.contains("DENIED"),
                // Expired or disabled: their credentials are refused.
                None => status == 401,
            };
            if !fine {
                wrong.push(format!(
                    "{} × {op} in {project}: expected {expected:?}, got {status} {}",
                    principal.name,
                    body.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cells wrong:\n{}",
        wrong.len(),
        who.len() * OPS.len(),
        wrong.join("\n")
    );
}

#[test]
fn every_principal_gets_exactly_its_rights_in_a_public_project() {
    matrix(true);
}

#[test]
fn every_principal_gets_exactly_its_rights_in_a_private_project() {
    matrix(false);
}

#[test]
fn a_private_project_and_a_missing_one_answer_alike() {
    if skip_unless_berth("projects are Berth's") {
        return;
    }
    // Without auto-creation: a push to a missing project is refused.
    let World { reg, who } = world_with(vec![("BERTH_AUTO_CREATE_PROJECTS".into(), "false".into())]);
    reg.push_small_image("closed/app", "v1");
    let stranger = who.iter().find(|w| w.name == "other project's admin").unwrap();
    let anonymous = who.iter().find(|w| w.name == "anonymous").unwrap();
    for principal in [stranger, anonymous] {
        let (private, private_body) = call(&reg, principal, "GET", "/v2/closed/app/manifests/v1", None);
        let (missing, missing_body) = call(&reg, principal, "GET", "/v2/nothere/app/manifests/v1", None);
        assert_eq!(
            private, missing,
            "{}: {private_body} vs {missing_body}",
            principal.name
        );
        let strip = |b: &str| b.replace("closed", "X").replace("nothere", "X");
        assert_eq!(strip(&private_body), strip(&missing_body), "{}", principal.name);
    }
    // The admin is told the truth, with what to do.
    let (status, body) = call(
        &reg,
        who.last().unwrap(),
        "PUT",
        "/v2/nothere/app/manifests/v1",
        Some((OCI_MANIFEST, b"{}".to_vec())),
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("NAME_UNKNOWN") && body.contains("project nothere does not exist"),
        "{body}"
    );
}

#[test]
fn a_token_is_good_for_its_repository_its_key_and_its_bytes_only() {
    if skip_unless_berth("the token service is Berth's") {
        return;
    }
    let World { reg, who } = world();
    reg.push_small_image("closed/app", "v1");
    reg.push_small_image("closed/other", "v1");
    let developer = who.iter().find(|w| w.name == "developer").unwrap();
    let realm = reg.url("/service/token");
    let get_token = |scope: &str| {
        let mut params = BTreeMap::new();
        params.insert("realm".to_string(), realm.clone());
        params.insert("service".to_string(), "berth".to_string());
        params.insert("scope".to_string(), scope.to_string());
        token(developer, &params).unwrap()
    };
    let pull = |token: &str, repo: &str| {
        let resp = bare()
            .get(reg.url(&format!("/v2/{repo}/manifests/v1")))
            .header("accept", accept_all())
            .bearer_auth(token)
            .send()
            .unwrap();
        resp.status().as_u16()
    };
    let app = get_token("repository:closed/app:pull");
    assert_eq!(pull(&app, "closed/app"), 200);
    // Another repository, even one the developer may read: the client must ask again.
    assert_eq!(pull(&app, "closed/other"), 401);

    // Any changed character is refused.
    let mut tampered: Vec<char> = app.chars().collect();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    assert_eq!(pull(&tampered.iter().collect::<String>(), "closed/app"), 401);
    assert_eq!(pull("not.a.token", "closed/app"), 401);

    // A token another registry signed (same service name, its own key) is refused.
    let elsewhere = Registry::start();
    elsewhere.push_small_image("library/x", "v1");
    let mut params = BTreeMap::new();
    params.insert("realm".to_string(), elsewhere.url("/service/token"));
    params.insert("service".to_string(), "berth".to_string());
    params.insert("scope".to_string(), "repository:closed/app:pull".to_string());
    let admin = Who {
        name: "admin",
        creds: Some(("admin".into(), ADMIN_PASSWORD.into())),
    };
    let foreign = token(&admin, &params).unwrap();
    assert_eq!(pull(&foreign, "closed/app"), 401);

    // Wrong credentials at the token service: 401, and no token.
    let liar = Who {
        name: "liar",
        creds: Some(("developer".into(), "wrong-password".into())),
    };
    let mut params = BTreeMap::new();
    params.insert("realm".to_string(), realm.clone());
    params.insert("service".to_string(), "berth".to_string());
    let (status, body) = token(&liar, &params).unwrap_err();
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("token\""), "{body}");
}

#[test]
fn skopeo_pushes_and_pulls_with_credentials_and_is_refused_cleanly() {
    if skip_unless_berth("projects and robots are Berth's") {
        return;
    }
    let World { mut reg, who } = world();
    let developer = who.iter().find(|w| w.name == "developer").unwrap();
    let (user, password) = developer.creds.clone().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&tmp.path().join("src"));
    let image = layout.add_image("amd64", &sample_layers("creds"));
    layout.tag(&image.manifest, "v1");
    let src = crate::skopeo::oci_ref(&tmp.path().join("src"), "v1");
    let dest = format!("docker://{}/closed/skopeo:v1", reg.host());
    let creds = format!("--dest-creds={user}:{password}");
    skopeo_ok(&["copy", "--dest-tls-verify=false", &creds, &src, &dest]);
    let pulled = tempfile::tempdir().unwrap();
    let local = format!("oci:{}:v1", pulled.path().display());
    let src_creds = format!("--src-creds={user}:{password}");
    skopeo_ok(&["copy", "--src-tls-verify=false", &src_creds, &dest, &local]);

    // A wrong password: refused, and nothing stored.
    let other = format!("docker://{}/closed/skopeo:v2", reg.host());
    let wrong = format!("--dest-creds={user}:not-the-password");
    let out = skopeo(&["copy", "--dest-tls-verify=false", &wrong, &src, &other]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        stderr.contains("401") || stderr.contains("unauthorized"),
        "{stderr}"
    );
    assert_eq!(reg.manifest_status("closed/skopeo", "v2"), 404);

    // An expired robot: refused the same way.
    let expired = in_project(who.iter().find(|w| w.name == "expired robot").unwrap(), "closed");
    let (robot, secret) = expired.creds.unwrap();
    let robot_creds = format!("--dest-creds={robot}:{secret}");
    let out = skopeo(&["copy", "--dest-tls-verify=false", &robot_creds, &src, &other]);
    assert!(!out.status.success());
    assert_eq!(reg.manifest_status("closed/skopeo", "v2"), 404);

    // A project whose quota the image exceeds: 403 with the limit and the usage, nothing stored.
    reg.stop();
    admin(&reg, &["create-project", "tiny", "--quota-bytes", "1000"]);
    admin(&reg, &["add-member", "tiny", &user, "developer"]);
    reg.restart();
    let tiny = format!("docker://{}/tiny/skopeo:v1", reg.host());
    let out = skopeo(&["copy", "--dest-tls-verify=false", &creds, &src, &tiny]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("quota exceeded") && stderr.contains("1000 bytes"),
        "{stderr}"
    );
    assert_eq!(reg.manifest_status("tiny/skopeo", "v1"), 404);
    assert!(
        reg.catalog().iter().all(|r| !r.starts_with("tiny/")),
        "{:?}",
        reg.catalog()
    );
}

#[test]
fn secrets_never_reach_the_server_log_or_the_event_log() {
    if skip_unless_berth("Berth's logs") {
        return;
    }
    let World { mut reg, who } = world();
    // Every principal signs in at least once (Basic and the token flow).
    for principal in &who {
        let acting = in_project(principal, "open");
        call(&reg, &acting, "GET", "/v2/open/app/tags/list", None);
        if let Some((user, secret)) = &acting.creds {
            let resp = bare()
                .get(reg.url("/v2/open/app/tags/list"))
                .basic_auth(user, Some(secret))
                .send()
                .unwrap();
            let _ = resp.status();
        }
    }
    reg.stop();
    let log = reg.server_log();
    let events = serde_json::to_string(&reg.log_events()).unwrap();
    let mut secrets: Vec<String> = vec![ADMIN_PASSWORD.to_string()];
    for principal in &who {
        for project in ["open", "closed"] {
            if let Some((_, secret)) = in_project(principal, project).creds {
                secrets.push(secret);
            }
        }
    }
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret is in the server log");
        assert!(!events.contains(&secret), "a secret is in the event log");
    }
    assert!(!events.contains("passwordHash") && !events.contains("secretHash"));
}

#[test]
fn an_expired_token_is_refused() {
    if skip_unless_berth("the token service is Berth's") {
        return;
    }
    let reg = Registry::start_with_env(vec![("BERTH_TOKEN_TTL_SECS".into(), "1".into())]);
    reg.push_small_image("library/app", "v1");
    let admin = Who {
        name: "admin",
        creds: Some(("admin".into(), ADMIN_PASSWORD.into())),
    };
    let mut params = BTreeMap::new();
    params.insert("realm".to_string(), reg.url("/service/token"));
    params.insert("service".to_string(), "berth".to_string());
    params.insert(
        "scope".to_string(),
        "repository:library/app:pull,push".to_string(),
    );
    let token = token(&admin, &params).unwrap();
    let put = |token: &str| {
        let (config, layer) = (random_bytes(16), random_bytes(16));
        let manifest = image_manifest(
            &Descriptor::of(OCI_CONFIG, &config),
            &[Descriptor::of(OCI_LAYER, &layer)],
            None,
            None,
        );
        // Blobs that do not exist: a valid token gets 400 MANIFEST_BLOB_UNKNOWN, an expired one 401.
        let resp = bare()
            .put(reg.url("/v2/library/app/manifests/x"))
            .header("content-type", OCI_MANIFEST)
            .bearer_auth(token)
            .body(manifest)
            .send()
            .unwrap();
        resp.status().as_u16()
    };
    assert_eq!(put(&token), 400, "a fresh token is honoured");
    // Its `exp` is a second away; verifiers allow 30 s of clock skew.
    std::thread::sleep(Duration::from_secs(33));
    assert_eq!(put(&token), 401, "an expired token is refused");
}
