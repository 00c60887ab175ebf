//! The webhook's bearer token: read from a file (a mounted Kubernetes Secret is a file) and
//! compared in constant time, so response timing does not leak how much of a guess was right.

use std::path::Path;

use anyhow::{Context, Result, bail};
use subtle::ConstantTimeEq;

/// The token Alertmanager must send as `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct BearerToken(Vec<u8>);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    /// A token from its text; surrounding whitespace (a Secret's trailing newline) is dropped.
    pub fn new(token: &str) -> Result<Self> {
        let t = token.trim();
        if t.is_empty() {
            bail!("the webhook token is empty");
        }
        Ok(Self(t.as_bytes().to_vec()))
    }

    /// Reads the token from a file, e.g. a Secret mounted at `/var/run/secrets/homeostat/token`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the webhook token from {}", path.display()))?;
        Self::new(&text).with_context(|| path.display().to_string())
    }

    /// Whether an `Authorization` header value carries this token. The scheme is
    /// case-insensitive (RFC 7235); the token is compared in constant time (only its length can
    /// be learnt from timing).
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, token)) = split_scheme(value) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer") && bool::from(token.ct_eq(&self.0))
    }
}

fn split_scheme(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    let token = rest.trim_ascii();
    Some((scheme, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_with_the_bearer_scheme_passes() {
        let t = BearerToken::new("s3cret\n").unwrap();
        assert!(t.accepts(Some(b"Bearer s3cret")));
        assert!(t.accepts(Some(b"bearer s3cret")));
        assert!(!t.accepts(None));
        assert!(!t.accepts(Some(b"Bearer s3cre")));
        assert!(!t.accepts(Some(b"Bearer s3cret2")));
        assert!(!t.accepts(Some(b"Basic s3cret")));
        assert!(!t.accepts(Some(b"s3cret")));
        assert!(!t.accepts(Some(b"Bearer ")));
        assert!(BearerToken::new(" \n").is_err());
        assert_eq!(format!("{t:?}"), "BearerToken(..)");
    }
}
