//! Test vectors made by an independent implementation (Python `cryptography` 48 and `hashlib`), so
//! the tests check interoperability and not only that Berth agrees with itself.
//! THROWAWAY KEYS: generated for these tests, never used anywhere else.

/// A P-256 key in PKCS#8 PEM.
pub const P256_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8RDILpyh9LL3wBqP
Usan4hVeNZCVaOzHFKNrH2ijZ+yhRANCAARvym7+l+77OkgST4+oXfwcuhIOnPbQ
ZSbONcSxkrFpztiDt45uner2HTjlQkq9WmOimYH/6/jeJyP8ZLwOrD95
-----END PRIVATE KEY-----
";

/// Its public point's coordinates, base64url.
pub const P256_X: &str = "b8pu_pfu-zpIEk-PqF38HLoSDpz20GUmzjXEsZKxac4";
pub const P256_Y: &str = "2IO3jm6d6vYdOOVCSr1aY6KZgf_r-N4nI_xkvA6sP3k";

/// Its RFC 7638 thumbprint: base64url(SHA-256(`{"crv":"P-256","kty":"EC","x":..,"y":..}`)).
pub const P256_KID: &str = "nuJ-GdLP0hiFIlJAxr6_z9XFuQXy4Z9ZFUDFIXWXIgw";

/// An ES256 token signed by that key with header `{"alg":"ES256","typ":"JWT","kid":P256_KID}` and
/// claims iss "python", sub "alice", aud "berth.test", nbf = iat = 1700000000, exp = 4102444800,
/// jti "vector-1", access repository library/alpine pull.
pub const ES256_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Im51Si1HZExQMGhpRklsSkF4cjZfejlYRnVRWHk0WjlaRlVERklYV1hJZ3cifQ.eyJpc3MiOiJweXRob24iLCJzdWIiOiJhbGljZSIsImF1ZCI6ImJlcnRoLnRlc3QiLCJleHAiOjQxMDI0NDQ4MDAsIm5iZiI6MTcwMDAwMDAwMCwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiJ2ZWN0b3ItMSIsImFjY2VzcyI6W3sidHlwZSI6InJlcG9zaXRvcnkiLCJuYW1lIjoibGlicmFyeS9hbHBpbmUiLCJhY3Rpb25zIjpbInB1bGwiXX1dfQ.BPGMyUXB2IjC_3Q4KEHPEs6V2AjjYe29Z2VxarxqoRAGP-8O_MQBRgs6biC7QrUTXhBWHou7c9vqAWFPYLWPzw";

/// The same P-256 key in SEC1 ("EC PRIVATE KEY") PEM, which is not PKCS#8.
pub const P256_SEC1_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIPEQyC6cofSy98Aaj1LGp+IVXjWQlWjsxxSjax9oo2fsoAoGCCqGSM49
AwEHoUQDQgAEb8pu/pfu+zpIEk+PqF38HLoSDpz20GUmzjXEsZKxac7Yg7eObp3q
9h045UJKvVpjopmB/+v43icj/GS8Dqw/eQ==
-----END EC PRIVATE KEY-----
";

/// Its public key in SubjectPublicKeyInfo PEM.
pub const P256_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEb8pu/pfu+zpIEk+PqF38HLoSDpz2
0GUmzjXEsZKxac7Yg7eObp3q9h045UJKvVpjopmB/+v43icj/GS8Dqw/eQ==
-----END PUBLIC KEY-----
";

/// A P-384 key in PKCS#8 PEM: the right format, the wrong curve.
pub const P384_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDB6d5JaZyaTAC8uKpfT
2iLAlrdBLwGsRjMjMV6MR8SvTY7A+nxaIR2XaaYCN1obwfahZANiAATA2n8Fi9oy
ihKVhIIFo86009tUYmB3e5djcS+YWuTkUYiVffW+kvkuHnILYire4bBVUoSWgHg7
VfKiUHQbTGKwRYUDFTR5FHugDWDJqig6L/Hyz4mTb93y9UOCBBlWTLg=
-----END PRIVATE KEY-----
";
