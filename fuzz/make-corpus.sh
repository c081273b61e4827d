#!/usr/bin/env bash
# Writes the seed corpora, fuzz/seeds/<target>/, from the tests' fixtures (tests/vectors: real
# cosign and Notation signatures, their manifests and OCI layouts) and the request shapes the
# library's and the end-to-end tests send. Re-run after changing a target's input form; commit
# the result. Reads nothing outside this repository.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
vectors="$root/tests/vectors"
seeds="$here/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"

# seed TARGET NAME: standard input becomes seeds/TARGET/NAME.
seed() {
    mkdir -p "$seeds/$1"
    cat > "$seeds/$1/$2"
}

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json
DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json
ADMIN_BASIC="Basic $(printf 'admin:Admin12345' | base64 -w0)"
ALICE_BASIC="Basic $(printf 'alice:Alice12345' | base64 -w0)"
D1=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
D2=sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9

# --- manifest: "<Content-Type>\n<body>" ---------------------------------------------------------
n=0
for m in "$vectors"/cosign/*/manifest.json; do
    n=$((n + 1))
    { printf '%s\n' "$DOCKER_MANIFEST"; cat "$m"; } | seed manifest "cosign-vector-$n"
done
n=0
for blob in "$vectors"/notation/*/oci-layout/blobs/sha256/*; do
    head -c1 "$blob" | grep -q '{' || continue
    grep -q schemaVersion "$blob" || continue
    n=$((n + 1))
    mt=$(grep -o '"mediaType": *"[^"]*"' "$blob" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
    { printf '%s\n' "${mt:-$OCI_MANIFEST}"; cat "$blob"; } | seed manifest "notation-layout-$n"
done
for index in "$vectors"/notation/*/oci-layout/index.json; do
    n=$((n + 1))
    { printf '%s\n' "$OCI_INDEX"; cat "$index"; } | seed manifest "layout-index-$n"
done
printf '%s\n{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.example+type","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":517}],"subject":{"mediaType":"%s","digest":"%s","size":517},"annotations":{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' \
    "$OCI_MANIFEST" "$OCI_MANIFEST" "$D1" "$D2" "$OCI_MANIFEST" "$D2" | seed manifest artifact-with-subject
printf '%s\n{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":517,"platform":{"architecture":"amd64","os":"linux"}}],"subject":{"mediaType":"%s","digest":"%s","size":517}}' \
    "$OCI_INDEX" "$OCI_INDEX" "$OCI_MANIFEST" "$D2" "$OCI_MANIFEST" "$D1" | seed manifest index-with-subject
printf '%s\n{"schemaVersion":2,"mediaType":"%s","manifests":[{"mediaType":"%s","digest":"%s","size":517,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}' \
    "$DOCKER_LIST" "$DOCKER_LIST" "$DOCKER_MANIFEST" "$D2" | seed manifest docker-list
printf '\n{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[]}' \
    "$D1" | seed manifest no-content-type
printf '%s\n{"schemaVersion":1,"name":"library/app","tag":"v1","fsLayers":[]}' \
    "application/vnd.docker.distribution.manifest.v1+prettyjws" | seed manifest schema1

# --- digest ----------------------------------------------------------------------------------------
printf '%s' "$D1" | seed digest sha256
printf '%s' "$D2" | seed digest sha256-b
printf 'sha512:%s' "$(printf x | sha512sum | cut -d' ' -f1)" | seed digest sha512
printf 'sha256:%s' "$(printf x | sha256sum | cut -d' ' -f1 | tr a-f A-F)" | seed digest upper-hex
printf 'sha384:%s' "$(printf x | sha384sum | cut -d' ' -f1)" | seed digest unsupported
printf 'sha256:abc' | seed digest short
printf ':%s' "${D1#sha256:}" | seed digest no-algorithm

# --- names: repository names, tags, references, project/user/robot names -------------------------
for name in library/app library/app/sub/component a a/b-c_d.e/f__g library//app library/../app \
    Library/App v1 latest 1.0.0-rc_1 "$D1" "sha256-${D1#sha256:}.sig" "sha256-${D1#sha256:}.att" \
    "sha256-${D1#sha256:}" 'robot$library+ci' 'robot$ci' alice .hidden -dash \
    upload-0190f2a4-7c1e-7b6a-9f3e-2b1c0d9e8f7a 550e8400-e29b-41d4-a716-446655440000; do
    file=$(printf '%s' "$name" | sha256sum | cut -c1-12)
    printf '%s' "$name" | seed names "$file"
done
printf 'library/%0200d' 0 | seed names long-name

# --- range: <size u64 LE><Content-Length u64 LE><flags><header value> ------------------------------
# flags: bit 0 sends the Content-Length, bit 1 takes the size modulo 4096.
u64() { printf "$(printf '%016x' "$1" | sed 's/\(..\)/\1 /g' | awk '{for(i=NF;i>0;i--) printf "\\x%s", $i}')"; }
range() { { u64 "$1"; u64 "$2"; printf "\\x$(printf '%02x' "$3")"; printf '%s' "$4"; } | seed range "$5"; }
range 1000 100 1 'bytes=0-99' first-hundred
range 1000 0 0 'bytes=-10' suffix
range 1000 0 0 'bytes=990-' open-end
range 1000 0 0 'bytes=0-0,5-9' multiple
range 0 0 0 'bytes=0-' empty-blob
range 5000 1024 1 '0-1023' chunk
range 5000 1024 1 'bytes 1024-2047' chunk-bytes-prefix
range 5000 0 1 '0-18446744073709551615' two-to-the-64  # the overflow the first run found
range 18446744073709551615 0 0 'bytes=18446744073709551614-' huge-blob
range 100 0 0 'bytes=50-10' backwards

# --- authorization: <mode byte><rest> ---------------------------------------------------------------
{ printf '\x00'; printf '%s' "$ADMIN_BASIC"; } | seed authorization basic-admin
{ printf '\x00'; printf 'basic %s' "$(printf 'robot$library+ci:secret' | base64 -w0)"; } | seed authorization basic-robot
{ printf '\x00'; printf 'Basic %s' "$(printf 'no-colon' | base64 -w0)"; } | seed authorization basic-no-colon
jwt_header=$(printf '{"alg":"ES256","typ":"JWT","kid":"ABCD"}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
jwt_claims=$(printf '{"iss":"berth-token-service","sub":"alice","aud":"berth","exp":1767225900,"nbf":1767225600,"iat":1767225600,"jti":"x","access":[{"type":"repository","name":"library/app","actions":["pull"]}]}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
jwt="$jwt_header.$jwt_claims.$(head -c64 /dev/zero | base64 -w0 | tr '+/' '-_' | tr -d '=')"
{ printf '\x00'; printf 'Bearer %s' "$jwt"; } | seed authorization bearer
{ printf '\x01'; printf '%s' "$jwt"; } | seed authorization token
{ printf '\x02'; printf '{"iss":"berth-token-service","sub":"robot$library+ci","aud":"berth","exp":1767225900,"nbf":1767225600,"iat":1767225600,"jti":"x","access":[{"type":"repository","name":"library/app","actions":["pull","push"]}],"berth_credential_version":3}'; } | seed authorization claims
{ printf '\x02'; printf '{"iss":"","sub":"","aud":"berth","exp":0,"nbf":0,"iat":0,"jti":""}'; } | seed authorization claims-expired
printf '\x03\x00\x00\x00\x00\x01' | seed authorization tamper

# --- token_query: <who byte: odd = admin><query string> ---------------------------------------------
{ printf '\x00'; printf 'service=berth&scope=repository:library/app:pull'; } | seed token_query anonymous-pull
{ printf '\x01'; printf 'service=berth&scope=repository:library/app:pull,push&scope=registry:catalog:*'; } | seed token_query admin-push
{ printf '\x01'; printf 'scope=repository%%3Alibrary%%2Fapp%%3Apull%%20repository%%3Alibrary%%2Fother%%3Adelete'; } | seed token_query spaces
{ printf '\x00'; printf 'scope=repository(plugin):localhost:5000/library/app:*&account=admin&offline_token=true&client_id=docker'; } | seed token_query class-and-host
{ printf '\x00'; printf 'service=other'; } | seed token_query wrong-service

# --- api_json: <operation byte><JSON body> (operations as listed in fuzz_targets/api_json.rs) -------
api() { { printf "\\x$(printf '%02x' "$1")"; printf '%s' "$2"; } | seed api_json "$3"; }
api 0 '{"project_name":"team","public":true,"metadata":{"public":"true","enable_content_trust_cosign":"false"},"storage_limit":-1}' project-create
api 1 '{"metadata":{"public":"false","enable_content_trust":"true"},"storage_limit":1073741824}' project-update
api 2 '{"public":"true","enable_content_trust":"false"}' metadatas
api 3 '{"public":"false"}' metadata-one
api 4 '{"role_id":3,"member_user":{"username":"alice"}}' member-add
api 5 '{"role_id":4}' member-role
api 6 '{"role_id":1}' member-role-2
api 7 '{"name":"build","description":"ci","duration":30,"level":"project","disable":false,"permissions":[{"kind":"project","namespace":"library","access":[{"resource":"repository","action":"pull","effect":"allow"},{"resource":"artifact","action":"delete"}]}]}' robot-create
api 7 '{"name":"sys","level":"system","duration":-1,"permissions":[{"kind":"project","namespace":"*","access":[{"resource":"repository","action":"push"}]}],"secret":"Secret12345"}' robot-system
api 8 '{"description":"renamed","duration":7,"disable":true,"level":"project","permissions":[{"kind":"project","namespace":"library","access":[{"resource":"repository","action":"pull"}]}]}' robot-update
api 9 '{"secret":"NewSecret123"}' robot-refresh
api 10 '{"username":"dave","password":"Dave123456","email":"dave@example.com","realname":"Dave","comment":"x"}' user-create
api 11 '{"old_password":"Alice12345","new_password":"Alice67890"}' password
api 12 '{"sysadmin_flag":true}' sysadmin
api 13 '{"hard":{"storage":1048576}}' quota
api 14 '{"cosign":{"enabled":true,"keys":[]},"notation":{"enabled":false}}' content-trust
api 0 '[1,2]' array
api 0 '  ' blank

# --- cosign: <payload>\0<signature base64>\0<bundle JSON>[\0<public key PEM>] -----------------------
for dir in "$vectors"/cosign/*/; do
    name=$(basename "$dir")
    {
        cat "$dir/payload.json"; printf '\0'; tr -d '\n' < "$dir/signature.b64"
        if [ -f "$dir/bundle.json" ]; then printf '\0'; cat "$dir/bundle.json"; fi
    } | seed cosign "$name"
    for key in "$dir"/*.pub; do
        [ -f "$key" ] || continue
        { cat "$dir/payload.json"; printf '\0'; tr -d '\n' < "$dir/signature.b64"; printf '\0\0'; cat "$key"; } \
            | seed cosign "$name-$(basename "$key" .pub)"
    done
done

# --- notation_jws / notation_cose: one envelope ------------------------------------------------------
cp "$vectors/notation/jws-valid/signature.jws.json" "$(mkdir -p "$seeds/notation_jws" && echo "$seeds/notation_jws")/jws-valid"
cp "$vectors/notation/jws-expired/signature.jws.json" "$seeds/notation_jws/jws-expired"
cp "$vectors/notation/notation-go-jws-cose/jws_signature.sig" "$seeds/notation_jws/notation-go"
mkdir -p "$seeds/notation_cose"
cp "$vectors/notation/notation-go-jws-cose/cose_signature.sig" "$seeds/notation_cose/notation-go"
# The invalid-envelope vector's layer (a tar where an envelope should be) is a seed for both.
for blob in "$vectors"/notation/invalid-envelope/oci-layout/blobs/sha256/*; do
    head -c1 "$blob" | grep -q '{' && continue
    cp "$blob" "$seeds/notation_jws/invalid-envelope"
    cp "$blob" "$seeds/notation_cose/invalid-envelope"
done

# --- pagination: <listing byte><query string> (listings as in fuzz_targets/pagination.rs) -----------
page() { { printf "\\x$(printf '%02x' "$1")"; printf '%s' "$2"; } | seed pagination "$3"; }
page 0 'n=1&last=library/app' catalog
page 1 'n=2&last=v2' tags
page 1 'n=18446744073709551616' tags-huge-n
page 2 'artifactType=application/vnd.dev.cosign.artifact.sig.v1+json' referrers
page 3 'page=2&page_size=1&name=lib&public=true&with_detail=true' projects
page 4 'q=Level%3Dproject,ProjectID%3D1,name%3D~ci&page=1&page_size=100' robots
page 5 'q=operation%3Dcreate,resource%3D~library,op_time%3D%5B2025-01-01%2000%3A00%3A00~2027-01-01%2000%3A00%3A00%5D&page_size=5' audit
page 6 'page=9223372036854775807&page_size=10&with_tag=true&with_signature=true' artifacts

# --- router: "<METHOD> <path>\n<Header: value>...\n\n<body>" ----------------------------------------
req() { seed router "$1"; }
layer='berth fuzz layer'  # berth_fuzz::LAYER, which setup pushes
manifest=$(sed -n 's/^pub const MANIFEST: &str = r#"\(.*\)"#;$/\1/p' "$here/src/lib.rs" \
    | sed "s/sha256:LAYER/sha256:$(printf '%s' "$layer" | sha256sum | cut -d' ' -f1)/; s/LAYER_SIZE/${#layer}/")
printf 'GET /v2/\n\n' | req base
printf 'GET /v2/\nAuthorization: %s\n\n' "$ADMIN_BASIC" | req base-admin
printf 'GET /v2/library/app/manifests/v1\nAccept: %s\n\n' "$OCI_MANIFEST" | req manifest-get
printf 'HEAD /v2/library/app/manifests/%s\n\n' "$D2" | req manifest-head-digest
printf 'GET /v2/library/app/blobs/%s\nRange: bytes=0-3\n\n' "$D1" | req blob-range
printf 'POST /v2/library/app/blobs/uploads/\nAuthorization: %s\n\n' "$ADMIN_BASIC" | req upload-start
printf 'POST /v2/library/app/blobs/uploads/?digest=%s\nAuthorization: %s\nContent-Type: application/octet-stream\n\n{}' "$D1" "$ADMIN_BASIC" | req upload-monolithic
printf 'PATCH /v2/library/app/blobs/uploads/0190f2a4-7c1e-7b6a-9f3e-2b1c0d9e8f7a\nAuthorization: %s\nContent-Range: 0-3\nContent-Length: 4\n\nabcd' "$ADMIN_BASIC" | req upload-chunk
printf 'POST /v2/library/other/blobs/uploads/?mount=%s&from=library/app\nAuthorization: %s\n\n' "$D1" "$ADMIN_BASIC" | req mount
printf 'PUT /v2/library/app/manifests/v9\nAuthorization: %s\nContent-Type: %s\n\n%s' "$ADMIN_BASIC" "$OCI_MANIFEST" "$manifest" | req manifest-put
printf 'DELETE /v2/library/app/manifests/v9\nAuthorization: %s\n\n' "$ADMIN_BASIC" | req manifest-delete
printf 'GET /v2/library/app/tags/list?n=2&last=v1\nAuthorization: %s\n\n' "$ALICE_BASIC" | req tags
printf 'GET /v2/_catalog?n=10\nAuthorization: %s\n\n' "$ADMIN_BASIC" | req catalog
printf 'GET /v2/library/app/referrers/%s?artifactType=x\n\n' "$D2" | req referrers
printf 'GET /service/token?service=berth&scope=repository:library/app:pull,push\nAuthorization: %s\n\n' "$ADMIN_BASIC" | req token
printf 'GET /v2/library/app/manifests/v1\nAuthorization: Bearer %s\n\n' "$jwt" | req bearer
printf 'GET /api/v2.0/projects?page=1&page_size=2\nAuthorization: %s\n\n' "$ADMIN_BASIC" | req api-projects
printf 'POST /api/v2.0/projects\nAuthorization: %s\nContent-Type: application/json\n\n{"project_name":"fuzzed","public":false}' "$ADMIN_BASIC" | req api-project-create
printf 'GET /api/v2.0/projects/library/repositories/app/artifacts/v1?with_signature=true\nAuthorization: %s\n\n' "$ADMIN_BASIC" | req api-artifact
printf 'GET /api/v2.0/users/current\nAuthorization: %s\n\n' "$ALICE_BASIC" | req api-current-user
printf 'GET /api/v2.0/openapi.json\n\n' | req api-openapi

echo "seeds: $(find "$seeds" -type f | wc -l) files in $(find "$seeds" -mindepth 1 -type d | wc -l) targets"
