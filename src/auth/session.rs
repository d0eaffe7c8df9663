//! Server-side sessions in the cache (memory or Redis), so several gateway instances
//! share them and logout ends a session everywhere at once. Without Redis they are kept
//! in the database instead (sealed), so a restart of the embedded default logs nobody
//! out.
//!
//! The cookie holds a random 256-bit id; the cache key is its SHA-256, so reading the
//! cache (or a Redis dump) does not yield usable session ids. Sessions end after an idle
//! period and, however busy, at an absolute limit. A new id is issued at every login.

use std::sync::Arc;
use std::time::Duration;

use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::identity::{AccountKind, Audience, EnterpriseRep, Role};
use crate::cache::{Cache, CacheError, CacheResult};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "ow_session";
/// Name of the cookie binding a login in progress to the browser that started it.
pub const LOGIN_COOKIE: &str = "ow_login";

/// What a session knows about its user. No resident ID number: that stays in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The local account.
    pub account_id: uuid::Uuid,
    /// Account kind.
    pub kind: AccountKind,
    /// Display name.
    pub name: String,
    /// Assurance level at login.
    pub assurance: u8,
    /// The represented enterprise.
    pub enterprise: Option<EnterpriseRep>,
    /// Roles.
    pub roles: Vec<Role>,
    /// Which login (public or staff).
    pub audience: Audience,
    /// Token for CSRF-protected requests without an Origin header.
    pub csrf: String,
    /// Login time (unix seconds).
    pub created_at: i64,
    /// Last time the session was refreshed (unix seconds).
    pub last_seen: i64,
    /// The provider's ID token, as a hint for RP-initiated logout.
    pub id_token: Option<String>,
}

impl Session {
    /// Whether the user has a role with this code.
    pub fn has_role(&self, code: &str) -> bool {
        self.roles.iter().any(|r| r.code() == code)
    }
}

/// Random URL-safe text with 256 bits of entropy.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key(id: &str) -> String {
    format!("session:{}", hex::encode(Sha256::digest(id.as_bytes())))
}

/// Where sessions are kept.
#[derive(Clone)]
enum Backend {
    /// The shared cache (Redis): expiry by the cache's TTL.
    Cache(Arc<dyn Cache>),
    /// The database (no Redis): expiry by a column, expired rows purged by retention.
    Store(Arc<dyn crate::store::Store>),
}

/// The session store.
#[derive(Clone)]
pub struct Sessions {
    cache: Backend,
    idle: Duration,
    absolute: Duration,
    secure: bool,
}

/// Outcome of looking a session up.
#[derive(Debug)]
pub enum Lookup {
    /// A live session.
    Live(Box<Session>),
    /// The cookie named a session that has ended (idle, absolute limit, or logout).
    Ended,
    /// No session cookie at all.
    None,
}

impl Sessions {
    /// A store with the configured timeouts and cookie security.
    pub fn new(
        cache: Arc<dyn Cache>,
        idle: Duration,
        absolute: Duration,
        secure: bool,
    ) -> Sessions {
        Sessions {
            cache: Backend::Cache(cache),
            idle,
            absolute,
            secure,
        }
    }

    /// Sessions kept in the database (the embedded default, without Redis), so they
    /// survive a restart.
    pub fn in_store(
        store: Arc<dyn crate::store::Store>,
        idle: Duration,
        absolute: Duration,
        secure: bool,
    ) -> Sessions {
        Sessions {
            cache: Backend::Store(store),
            idle,
            absolute,
            secure,
        }
    }

    /// `"cache"` or `"database"`: where sessions are kept, for the start-up log.
    pub fn backend(&self) -> &'static str {
        match self.cache {
            Backend::Cache(_) => "cache",
            Backend::Store(_) => "database",
        }
    }

    async fn get(&self, key: &str) -> CacheResult<Option<Vec<u8>>> {
        match &self.cache {
            Backend::Cache(c) => c.get(key).await,
            Backend::Store(s) => s
                .session_get(key, chrono::Utc::now().timestamp())
                .await
                .map(|v| v.map(String::into_bytes))
                .map_err(|e| CacheError(e.to_string())),
        }
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> CacheResult<()> {
        match &self.cache {
            Backend::Cache(c) => c.set(key, value, ttl).await,
            Backend::Store(s) => {
                let text = std::str::from_utf8(value).map_err(|e| CacheError(e.to_string()))?;
                let expires = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
                s.session_put(key, text, expires)
                    .await
                    .map_err(|e| CacheError(e.to_string()))
            }
        }
    }

    async fn delete(&self, key: &str) -> CacheResult<bool> {
        match &self.cache {
            Backend::Cache(c) => c.delete(key).await,
            Backend::Store(s) => s
                .session_delete(key)
                .await
                .map_err(|e| CacheError(e.to_string())),
        }
    }

    fn ttl(&self, s: &Session, now: i64) -> Duration {
        let remaining = (s.created_at + self.absolute.as_secs() as i64 - now).max(1) as u64;
        self.idle.min(Duration::from_secs(remaining))
    }

    async fn write(&self, id: &str, s: &Session, now: i64) -> CacheResult<()> {
        let bytes = serde_json::to_vec(s).map_err(|e| CacheError(e.to_string()))?;
        self.set(&key(id), &bytes, self.ttl(s, now)).await
    }

    /// Stores a new session under a fresh id and returns the id (the cookie value).
    pub async fn create(&self, mut s: Session) -> CacheResult<String> {
        let now = chrono::Utc::now().timestamp();
        s.created_at = now;
        s.last_seen = now;
        let id = random_token();
        self.write(&id, &s, now).await?;
        Ok(id)
    }

    /// Loads a session, enforcing both timeouts and refreshing the idle one. The refresh
    /// is written at most every quarter of the idle period, not on every request.
    pub async fn load(&self, id: Option<&str>) -> CacheResult<Lookup> {
        let Some(id) = id.filter(|v| !v.is_empty()) else {
            return Ok(Lookup::None);
        };
        let Some(bytes) = self.get(&key(id)).await? else {
            return Ok(Lookup::Ended);
        };
        let Ok(mut s) = serde_json::from_slice::<Session>(&bytes) else {
            return Ok(Lookup::Ended);
        };
        let now = chrono::Utc::now().timestamp();
        let idle = self.idle.as_secs() as i64;
        if now - s.created_at >= self.absolute.as_secs() as i64 || now - s.last_seen >= idle {
            self.delete(&key(id)).await?;
            return Ok(Lookup::Ended);
        }
        if now - s.last_seen >= (idle / 4).clamp(1, 60) {
            s.last_seen = now;
            self.write(id, &s, now).await?;
        }
        Ok(Lookup::Live(Box::new(s)))
    }

    /// Ends a session.
    pub async fn destroy(&self, id: &str) -> CacheResult<()> {
        self.delete(&key(id)).await.map(|_| ())
    }

    /// The session cookie for an id.
    pub fn cookie(&self, id: String) -> Cookie<'static> {
        Cookie::build((SESSION_COOKIE, id))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .build()
    }

    /// A cookie that removes the session cookie.
    pub fn removal(&self) -> Cookie<'static> {
        let mut c = self.cookie(String::new());
        c.make_removal();
        c
    }

    /// The short-lived cookie binding a login in progress to this browser.
    pub fn login_cookie(&self, state: String) -> Cookie<'static> {
        Cookie::build((LOGIN_COOKIE, state))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .path("/auth")
            .max_age(time::Duration::minutes(10))
            .build()
    }

    /// A cookie that removes the login cookie.
    pub fn login_removal(&self) -> Cookie<'static> {
        let mut c = self.login_cookie(String::new());
        c.make_removal();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    fn session() -> Session {
        Session {
            account_id: uuid::Uuid::now_v7(),
            kind: AccountKind::Person,
            name: "王小明".into(),
            assurance: 2,
            enterprise: None,
            roles: vec![Role::Citizen],
            audience: Audience::Public,
            csrf: random_token(),
            created_at: 0,
            last_seen: 0,
            id_token: None,
        }
    }

    #[tokio::test]
    async fn sessions_live_until_destroyed() {
        let store = Sessions::new(
            Arc::new(MemoryCache::new("t:")),
            Duration::from_secs(60),
            Duration::from_secs(600),
            true,
        );
        let id = store.create(session()).await.expect("create");
        assert!(matches!(
            store.load(Some(&id)).await.expect("load"),
            Lookup::Live(_)
        ));
        assert!(matches!(
            store.load(Some("forged")).await.expect("load"),
            Lookup::Ended
        ));
        assert!(matches!(
            store.load(None).await.expect("load"),
            Lookup::None
        ));
        store.destroy(&id).await.expect("destroy");
        assert!(matches!(
            store.load(Some(&id)).await.expect("load"),
            Lookup::Ended
        ));
        let c = store.cookie(id);
        assert!(c.http_only().unwrap_or(false) && c.secure().unwrap_or(false));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
    }

    #[tokio::test]
    async fn idle_sessions_end() {
        let store = Sessions::new(
            Arc::new(MemoryCache::new("t:")),
            Duration::from_secs(1),
            Duration::from_secs(600),
            false,
        );
        let id = store.create(session()).await.expect("create");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(matches!(
            store.load(Some(&id)).await.expect("load"),
            Lookup::Ended
        ));
    }
}
