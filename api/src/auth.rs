//! Who is calling: the bearer key of a request, verified against its stored hash, and the
//! scope a route needs. A handler that takes [`Caller<S>`] runs only for a valid key holding
//! scope `S`, and learns the namespace every one of its queries must be limited to.
//!
//! Verified keys are remembered for the configured TTL so that a request does not cost a
//! key lookup; the secret is still compared with the stored hash on every request. A revoked
//! key therefore keeps working for at most that TTL on an api copy that verified it.
//! Unknown ids are never remembered, so a key is usable as soon as it is created.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use clockworks::keys::{PresentedKey, Scope};
use clockworks::store::keys::{self, StoredKey};

use crate::app::AppState;
use crate::problem::ApiError;

/// Most keys remembered at once; beyond it, expired entries are dropped, then all of them.
const MAX_CACHED_KEYS: usize = 10_000;

/// A scope a route requires, as a type, so that the check runs before the body is read.
pub trait RequiredScope {
    const SCOPE: Scope;
}

/// Routes that read timers.
pub struct ReadTimers;

impl RequiredScope for ReadTimers {
    const SCOPE: Scope = Scope::TimersRead;
}

/// Routes that create, change or delete timers.
pub struct WriteTimers;

impl RequiredScope for WriteTimers {
    const SCOPE: Scope = Scope::TimersWrite;
}

/// The verified holder of a key with scope `S`.
pub struct Caller<S> {
    /// The namespace the key belongs to; every query of the request is limited to it.
    pub namespace: String,
    /// The key's public id, for logs.
    pub key_id: String,
    scope: PhantomData<S>,
}

impl<S: RequiredScope> FromRequestParts<AppState> for Caller<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        let presented = PresentedKey::parse(token).ok_or(ApiError::InvalidCredential)?;

        let key = state.keys.verify(&presented, state).await?;

        if !key.scopes.allows(S::SCOPE) {
            tracing::debug!(key.id = %key.id, scope = %S::SCOPE, "key lacks the scope");
            return Err(ApiError::Forbidden(S::SCOPE));
        }
        Ok(Caller {
            namespace: key.namespace,
            key_id: key.id,
            scope: PhantomData,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header. A request with no header, or with
/// another scheme, presented no credential; a bearer header that is not text, or has no
/// token, presented an invalid one.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::MissingCredential)?;
    let value = value.to_str().map_err(|_| ApiError::InvalidCredential)?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::MissingCredential);
    }
    Ok(token.trim())
}

/// Keys verified recently, by id.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, CachedKey>>,
}

struct CachedKey {
    key: StoredKey,
    looked_up_at: Instant,
}

impl KeyCache {
    /// A cache that trusts a looked-up key for `ttl`; zero looks keys up on every request.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The stored key that `presented` is, if it exists, is not revoked (as of at most the
    /// TTL ago) and its secret matches.
    async fn verify(
        &self,
        presented: &PresentedKey<'_>,
        state: &AppState,
    ) -> Result<StoredKey, ApiError> {
        let key = match self.fresh(presented.id) {
            Some(key) => key,
            None => {
                let client = state.db.connection().await?;
                let found = state
                    .db
                    .bounded(keys::find_active(&**client, presented.id))
                    .await?;
                let key = found.ok_or(ApiError::InvalidCredential)?;
                self.remember(&key);
                key
            }
        };

        if !presented.matches(&key.secret_hash) {
            tracing::debug!(key.id = %key.id, "key secret does not match");
            return Err(ApiError::InvalidCredential);
        }
        Ok(key)
    }

    fn fresh(&self, id: &str) -> Option<StoredKey> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self
            .entries
            .lock()
            .expect("no thread panics holding the key cache");
        entries
            .get(id)
            .filter(|entry| entry.looked_up_at.elapsed() < self.ttl)
            .map(|entry| entry.key.clone())
    }

    fn remember(&self, key: &StoredKey) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self
            .entries
            .lock()
            .expect("no thread panics holding the key cache");
        if entries.len() >= MAX_CACHED_KEYS {
            entries.retain(|_, entry| entry.looked_up_at.elapsed() < self.ttl);
        }
        if entries.len() >= MAX_CACHED_KEYS {
            entries.clear();
        }
        entries.insert(
            key.id.clone(),
            CachedKey {
                key: key.clone(),
                looked_up_at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(
            bearer_token(&with_authorization("bearer cw_x")).unwrap(),
            "cw_x"
        );
        assert_eq!(
            bearer_token(&with_authorization("Bearer cw_x")).unwrap(),
            "cw_x"
        );
    }

    #[test]
    fn no_header_or_another_scheme_presents_no_credential() {
        assert!(matches!(
            bearer_token(&HeaderMap::new()),
            Err(ApiError::MissingCredential)
        ));
        assert!(matches!(
            bearer_token(&with_authorization("Basic dXNlcjpwdw==")),
            Err(ApiError::MissingCredential)
        ));
    }
}
