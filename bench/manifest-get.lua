-- wrk script: GET a manifest by tag, asking for the OCI manifest media type.
-- The path comes from the URL given to wrk (…/v2/bench/big/manifests/1).
-- (HEAD is measured with oha, not wrk: wrk 4.1 cannot read HEAD responses, see README.md.)
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json"
