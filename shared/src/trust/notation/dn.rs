//! Distinguished names as Notation compares them (notation-go `internal/pkix`): an RFC 4514 string
//! becomes a map from attribute type to value; multi-valued RDNs, repeated attribute types and
//! `#`-hex values are refused. A trusted identity matches a certificate subject when every one of
//! its attributes is in the subject with the same value (the subject may have more, e.g. CN).

use std::collections::BTreeMap;

/// Attribute type (upper case, e.g. `CN`, `ST`) → value (unescaped).
pub(super) type Dn = BTreeMap<String, String>;

/// Does `subject` contain every attribute of `identity`, with the same value?
pub(super) fn is_subset(identity: &Dn, subject: &Dn) -> bool {
    identity
        .iter()
        .all(|(kind, value)| subject.get(kind) == Some(value))
}

/// Parses an RFC 4514 DN such as `CN=e2e,O=Notary,L=Seattle,ST=WA,C=US` (spaces around `,` and `=`
/// are allowed; `\,`-style and `\2C`-style escapes are understood).
pub(super) fn parse(text: &str) -> Result<Dn, String> {
    let invalid = |why: &str| format!("distinguished name {text:?} is invalid: {why}");
    if text.contains("=#") {
        return Err(invalid("#-encoded values are not supported"));
    }
    let mut dn = Dn::new();
    let mut chars = text.chars().peekable();
    loop {
        let kind: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_uppercase();
        if kind.is_empty()
            || !kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(invalid("an attribute type is missing or malformed"));
        }
        let (value, separator) = parse_value(&mut chars).map_err(&invalid)?;
        if separator == Some('+') {
            return Err(invalid("multi-valued RDNs are not supported"));
        }
        if value.is_empty() {
            return Err(invalid("an attribute value is empty"));
        }
        if dn.insert(kind, value).is_some() {
            return Err(invalid("an attribute type is repeated"));
        }
        if separator.is_none() {
            return Ok(dn);
        }
    }
}

/// Reads one value up to an unescaped `,`, `;` or `+` (returned) or the end (`None`).
fn parse_value(
    chars: &mut std::iter::Peekable<std::str::Chars>,
) -> Result<(String, Option<char>), &'static str> {
    let mut bytes: Vec<u8> = Vec::new();
    // Length of `bytes` up to the last escaped byte: trailing spaces before it are kept.
    let mut kept = 0;
    while chars.peek() == Some(&' ') {
        chars.next();
    }
    let mut separator = None;
    while let Some(c) = chars.next() {
        match c {
            ',' | ';' | '+' => {
                separator = Some(c);
                break;
            }
            '\\' => {
                let next = chars.next().ok_or("a value ends with a lone backslash")?;
                if next.is_ascii_hexdigit() {
                    let low = chars
                        .next()
                        .filter(char::is_ascii_hexdigit)
                        .ok_or("a \\XX escape is incomplete")?;
                    let pair: String = [next, low].iter().collect();
                    bytes.push(u8::from_str_radix(&pair, 16).map_err(|_| "a \\XX escape is not hex")?);
                } else {
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                }
                kept = bytes.len();
            }
            '"' => return Err("quoted values are not supported"),
            _ => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    while bytes.len() > kept && bytes.last() == Some(&b' ') {
        bytes.pop();
    }
    let value = String::from_utf8(bytes).map_err(|_| "a value is not UTF-8")?;
    Ok((value, separator))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(pairs: &[(&str, &str)]) -> Dn {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_certificate_subject_string_parses_into_its_attributes() {
        let parsed = parse("CN=e2e,O=Notary,L=Seattle,ST=WA,C=US").unwrap();
        assert_eq!(
            parsed,
            dn(&[
                ("CN", "e2e"),
                ("O", "Notary"),
                ("L", "Seattle"),
                ("ST", "WA"),
                ("C", "US")
            ])
        );
    }

    #[test]
    fn spaces_case_and_escapes_are_understood() {
        let parsed = parse(" c = US , st=WA, o=Acme\\, Inc., cn=a\\2Bb\\ ").unwrap();
        assert_eq!(
            parsed,
            dn(&[("C", "US"), ("ST", "WA"), ("O", "Acme, Inc."), ("CN", "a+b ")])
        );
    }

    #[test]
    fn malformed_names_are_refused() {
        for text in [
            "",
            "C",
            "=US",
            "C=US,",
            "C=US,C=CA",
            "C=US+ST=WA",
            "C=#0101",
            "C=\"US\"",
            "C=US\\",
            "C=\\4",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn an_identity_matches_a_subject_that_has_all_its_attributes() {
        let subject = parse("CN=e2e,O=Notary,L=Seattle,ST=WA,C=US").unwrap();
        assert!(is_subset(&parse("C=US, ST=WA, O=Notary").unwrap(), &subject));
        assert!(is_subset(&subject, &subject));
        assert!(!is_subset(&parse("C=US, ST=WA, O=Other").unwrap(), &subject));
        assert!(!is_subset(
            &parse("C=US, ST=WA, O=Notary, OU=Build").unwrap(),
            &subject
        ));
    }
}
