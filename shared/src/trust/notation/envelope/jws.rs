//! The JWS envelope (`application/jose+json`, spec `signature-envelope-jws.md`): RFC 7515 flattened
//! JSON serialization, `{payload, protected, header: {x5c, ...}, signature}`; the signature is over
//! ASCII(`protected` "." `payload`) as they appear in the envelope.

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    Algorithm, Cert, Envelope, SignedAttributes, AUTHENTIC_SIGNING_TIME, EXPIRY, SIGNING_SCHEME, SIGNING_TIME,
};

#[derive(Deserialize)]
struct Jws {
    payload: String,
    protected: String,
    header: Header,
    signature: String,
}

#[derive(Deserialize)]
struct Header {
    x5c: Vec<String>,
}

pub(super) fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    let jws: Jws = serde_json::from_slice(bytes).map_err(|e| format!("not a flattened JWS: {e}"))?;
    let payload = Base64UrlUnpadded::decode_vec(&jws.payload).map_err(|_| "the payload is not base64url")?;
    let signature =
        Base64UrlUnpadded::decode_vec(&jws.signature).map_err(|_| "the signature is not base64url")?;
    let attributes = attributes(&jws.protected)?;
    let chain = jws
        .header
        .x5c
        .iter()
        .map(|b64| {
            let der = Base64::decode_vec(b64).map_err(|_| "x5c holds something that is not base64")?;
            Cert::from_der(&der)
        })
        .collect::<Result<Vec<_>, String>>()?;
    let signing_input = format!("{}.{}", jws.protected, jws.payload).into_bytes();
    attributes.into_envelope(payload, chain, signing_input, signature)
}

/// The signed attributes in the base64url protected header.
fn attributes(protected: &str) -> Result<SignedAttributes, String> {
    let json =
        Base64UrlUnpadded::decode_vec(protected).map_err(|_| "the protected header is not base64url")?;
    let header: Map<String, Value> =
        serde_json::from_slice(&json).map_err(|_| "the protected header is not a JSON object")?;
    let text = |name: &str| header.get(name).and_then(Value::as_str).map(str::to_owned);
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        let Some(value) = header.get(name) else {
            return Ok(None);
        };
        let time = value.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        time.map(|t| Some(t.with_timezone(&Utc)))
            .ok_or_else(|| format!("{name} is not an RFC 3339 time"))
    };
    let critical = match header.get("crit") {
        None => Vec::new(),
        Some(value) => value
            .as_array()
            .and_then(|names| {
                names
                    .iter()
                    .map(|n| n.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or("crit is not a list of header names")?,
    };
    Ok(SignedAttributes {
        algorithm: text("alg").as_deref().and_then(Algorithm::from_jws),
        content_type: text("cty"),
        scheme: text(SIGNING_SCHEME),
        signing_time: time(SIGNING_TIME)?,
        authentic_signing_time: time(AUTHENTIC_SIGNING_TIME)?,
        expiry: time(EXPIRY)?,
        critical,
        present: header.keys().cloned().collect(),
    })
}
