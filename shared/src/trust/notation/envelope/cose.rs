//! The COSE envelope (`application/cose`, spec `signature-envelope-cose.md`): RFC 9052 COSE_Sign1
//! (CBOR tag 18) `[protected bstr, unprotected {33: x5chain, ...}, payload bstr, signature bstr]`;
//! the signature is over the CBOR Sig_structure `["Signature1", protected, h'', payload]`.

use chrono::{DateTime, Utc};
use ciborium::Value;

use super::{
    Algorithm, Cert, Envelope, SignedAttributes, AUTHENTIC_SIGNING_TIME, EXPIRY, SIGNING_SCHEME, SIGNING_TIME,
};

const COSE_SIGN1_TAG: u64 = 18;
const ALG: i128 = 1;
const CRIT: i128 = 2;
const CONTENT_TYPE: i128 = 3;
const X5CHAIN: i128 = 33;

type Map = Vec<(Value, Value)>;

pub(super) fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    let value: Value = ciborium::from_reader(bytes).map_err(|e| format!("not CBOR: {e}"))?;
    let value = match value {
        Value::Tag(COSE_SIGN1_TAG, inner) => *inner,
        Value::Tag(tag, _) => return Err(format!("CBOR tag {tag} is not COSE_Sign1 (18)")),
        untagged => untagged,
    };
    let Value::Array(parts) = value else {
        return Err("not a COSE_Sign1 array".to_owned());
    };
    let Ok(
        [Value::Bytes(protected), Value::Map(unprotected), Value::Bytes(payload), Value::Bytes(signature)],
    ) = <[Value; 4]>::try_from(parts)
    else {
        return Err("not a COSE_Sign1 [protected, unprotected, payload, signature] array".to_owned());
    };
    let attributes = attributes(&protected)?;
    let chain = x5chain(&unprotected)?;
    let sig_structure = Value::Array(vec![
        Value::Text("Signature1".to_owned()),
        Value::Bytes(protected),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.clone()),
    ]);
    let mut signing_input = Vec::new();
    ciborium::into_writer(&sig_structure, &mut signing_input).map_err(|e| e.to_string())?;
    attributes.into_envelope(payload, chain, signing_input, signature)
}

/// The signed attributes in the protected header (a CBOR map in a byte string).
fn attributes(protected: &[u8]) -> Result<SignedAttributes, String> {
    let header: Value = ciborium::from_reader(protected).map_err(|_| "the protected header is not CBOR")?;
    let Value::Map(header) = header else {
        return Err("the protected header is not a map".to_owned());
    };
    let get = |label: Label| header.iter().find(|(k, _)| label.is(k)).map(|(_, v)| v);
    let text = |label: Label| get(label).and_then(Value::as_text).map(str::to_owned);
    let time = |name: &'static str| -> Result<Option<DateTime<Utc>>, String> {
        let Some(value) = get(Label::Text(name)) else {
            return Ok(None);
        };
        cose_time(value)
            .map(Some)
            .ok_or_else(|| format!("{name} is not a CBOR epoch time"))
    };
    let critical = match get(Label::Int(CRIT)) {
        None => Vec::new(),
        Some(Value::Array(names)) => names.iter().map(label_name).collect(),
        Some(_) => return Err("crit is not a list of header labels".to_owned()),
    };
    Ok(SignedAttributes {
        algorithm: get(Label::Int(ALG))
            .and_then(Value::as_integer)
            .and_then(|i| Algorithm::from_cose(i.into())),
        content_type: text(Label::Int(CONTENT_TYPE)),
        scheme: text(Label::Text(SIGNING_SCHEME)),
        signing_time: time(SIGNING_TIME)?,
        authentic_signing_time: time(AUTHENTIC_SIGNING_TIME)?,
        expiry: time(EXPIRY)?,
        critical,
        present: header.iter().map(|(k, _)| label_name(k)).collect(),
    })
}

/// The certificate chain in the unprotected header: one certificate, or a list, leaf first.
fn x5chain(unprotected: &Map) -> Result<Vec<Cert>, String> {
    let x5chain = unprotected
        .iter()
        .find(|(k, _)| Label::Int(X5CHAIN).is(k))
        .map(|(_, v)| v);
    match x5chain {
        Some(Value::Bytes(der)) => Ok(vec![Cert::from_der(der)?]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Bytes(der) => Cert::from_der(der),
                _ => Err("x5chain holds something that is not a certificate".to_owned()),
            })
            .collect(),
        _ => Err("the unprotected header has no x5chain".to_owned()),
    }
}

/// A COSE header label: an integer or a text string.
#[derive(Clone, Copy)]
enum Label {
    Int(i128),
    Text(&'static str),
}

impl Label {
    fn is(self, key: &Value) -> bool {
        match (self, key) {
            (Label::Int(label), Value::Integer(i)) => i128::from(*i) == label,
            (Label::Text(label), Value::Text(text)) => text == label,
            _ => false,
        }
    }
}

fn label_name(key: &Value) -> String {
    match key {
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Text(text) => text.clone(),
        _ => String::new(),
    }
}

/// A time in a COSE header: tag 1 (epoch-based date/time) around an integer.
fn cose_time(value: &Value) -> Option<DateTime<Utc>> {
    let Value::Tag(1, inner) = value else {
        return None;
    };
    let seconds = i64::try_from(i128::from(inner.as_integer()?)).ok()?;
    DateTime::from_timestamp(seconds, 0)
}
