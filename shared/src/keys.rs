//! API keys. A key reads `cw_<id>_<secret>`: the id is public and finds the stored row, the
//! secret is 32 random bytes that only the key's holder knows. The database keeps a SHA-256
//! hash of the secret, never the secret itself; keys are high-entropy, so a fast hash is
//! enough, and the hashes are compared in constant time.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const KEY_PREFIX: &str = "cw_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Read timers, operations and fire history.
    #[serde(rename = "timers:read")]
    TimersRead,
    /// Create, change and delete timers.
    #[serde(rename = "timers:write")]
    TimersWrite,
    /// Everything, including managing the namespace's keys.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::TimersRead, Scope::TimersWrite, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TimersRead => "timers:read",
            Scope::TimersWrite => "timers:write",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| {
                format!("unknown scope {text:?}: expected timers:read, timers:write or admin")
            })
    }
}

/// The scopes a key holds. `admin` grants every other scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut scopes: Vec<Scope> = scopes.into_iter().collect();
        scopes.sort_by_key(|scope| scope.as_str());
        scopes.dedup();
        Self(scopes)
    }

    pub fn allows(&self, needed: Scope) -> bool {
        self.0.contains(&Scope::Admin) || self.0.contains(&needed)
    }

    pub fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|scope| scope.as_str().to_owned())
            .collect()
    }

    /// Reads scopes as stored; names this version does not know are dropped, never widened.
    pub fn from_names(names: &[String]) -> Self {
        Self::new(names.iter().filter_map(|name| name.parse().ok()))
    }
}

/// A key as it is created: shown once to the operator, then only its hash is kept.
pub struct NewKey {
    pub id: String,
    pub secret_hash: Vec<u8>,
    /// The whole key, `cw_<id>_<secret>`. Print it once; never log it.
    pub token: String,
}

impl NewKey {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let id = hex::encode(id);
        let secret = hex::encode(secret);
        Self {
            token: format!("{KEY_PREFIX}{id}_{secret}"),
            secret_hash: hash_secret(&secret),
            id,
        }
    }
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A bearer token split into its public id and its secret, if it has the shape of a key.
pub struct PresentedKey<'a> {
    pub id: &'a str,
    secret: &'a str,
}

impl<'a> PresentedKey<'a> {
    pub fn parse(token: &'a str) -> Option<Self> {
        let rest = token.strip_prefix(KEY_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let well_formed = id.len() == ID_BYTES * 2
            && secret.len() == SECRET_BYTES * 2
            && id
                .bytes()
                .chain(secret.bytes())
                .all(|b| b.is_ascii_hexdigit());
        well_formed.then_some(Self { id, secret })
    }

    /// Whether this key's secret hashes to `stored_hash`, compared in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        hash_secret(self.secret).ct_eq(stored_hash).into()
    }
}

fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_its_own_hash_only() {
        let key = NewKey::generate();
        let presented = PresentedKey::parse(&key.token).expect("well formed");
        assert_eq!(presented.id, key.id);
        assert!(presented.matches(&key.secret_hash));

        let other = NewKey::generate();
        assert!(!presented.matches(&other.secret_hash));
    }

    #[test]
    fn tokens_of_the_wrong_shape_are_not_keys() {
        assert!(PresentedKey::parse("").is_none());
        assert!(PresentedKey::parse("cw_abc_def").is_none());
        assert!(PresentedKey::parse("Bearer cw_").is_none());
    }

    #[test]
    fn admin_allows_every_scope_and_read_only_does_not_write() {
        let admin = Scopes::new([Scope::Admin]);
        assert!(admin.allows(Scope::TimersWrite));
        let read = Scopes::new([Scope::TimersRead]);
        assert!(read.allows(Scope::TimersRead));
        assert!(!read.allows(Scope::TimersWrite));
    }
}
