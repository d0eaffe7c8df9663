//! Rate limits on what a stranger can call: login starts, submissions, uploads, drafts,
//! public status queries and department API calls.
//!
//! Each kind of call ([`Class`]) has a quota per minute (the burst is the same number, so
//! a minute's allowance may be spent at once). The algorithm is GCRA both ways: in
//! process it is `governor`'s keyed limiter; with Redis configured it is the same GCRA as
//! a Lua script ([`GCRA_SCRIPT`]) run atomically by Redis on Redis's own clock, so every
//! instance shares one budget per caller. Should Redis fail, the in-process limiter
//! answers for this instance (logged once per outage) rather than refusing everyone.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitSettings;
use crate::http::error::Message;

/// A kind of call with a budget of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `GET /auth/login`, `GET /auth/staff/login`: per client address.
    LoginStart,
    /// Lodging an application (API, apply page, window intake): per session.
    Submission,
    /// Uploading a file: per session.
    Upload,
    /// Saving a draft (API, the apply page's steps): per session.
    Draft,
    /// The public case query (API and `/status`): per client address.
    PublicQuery,
    /// The department API: per token.
    DeptApi,
}

impl Class {
    /// Every class.
    pub const ALL: [Class; 6] = [
        Class::LoginStart,
        Class::Submission,
        Class::Upload,
        Class::Draft,
        Class::PublicQuery,
        Class::DeptApi,
    ];

    /// Stable short name: in cache keys and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            Class::LoginStart => "login",
            Class::Submission => "submit",
            Class::Upload => "upload",
            Class::Draft => "draft",
            Class::PublicQuery => "public_query",
            Class::DeptApi => "dept_api",
        }
    }

    /// The configured calls per minute (0: no limit).
    fn per_minute(self, s: &LimitSettings) -> u32 {
        match self {
            Class::LoginStart => s.limit_login_per_minute,
            Class::Submission => s.limit_submit_per_minute,
            Class::Upload => s.limit_upload_per_minute,
            Class::Draft => s.limit_draft_per_minute,
            Class::PublicQuery => s.limit_public_query_per_minute,
            Class::DeptApi => s.limit_dept_api_per_minute,
        }
    }

    /// What the caller was doing, for the message.
    fn doing(self) -> (&'static str, &'static str) {
        match self {
            Class::LoginStart => ("登录", "login attempts"),
            Class::Submission => ("提交申请", "submissions"),
            Class::Upload => ("上传文件", "uploads"),
            Class::Draft => ("保存草稿", "draft saves"),
            Class::PublicQuery => ("办件查询", "case queries"),
            Class::DeptApi => ("接口调用", "API calls with this token"),
        }
    }

    /// The message of a refusal, naming the wait in whole seconds.
    pub fn message(self, wait_secs: u64) -> Message {
        let (zh, en) = self.doing();
        Message::new(
            format!("{zh}过于频繁，请{wait_secs}秒后再试。"),
            format!("Too many {en}. Please try again in {wait_secs} seconds."),
        )
    }
}

/// The decision on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the budget.
    Allowed,
    /// Over it: try again after this long.
    Limited(Duration),
}

/// GCRA (the generic cell rate algorithm, as `governor` runs it) in one atomic script.
/// The key holds the theoretical arrival time in microseconds of Redis's clock.
/// ARGV[1]: emission interval T (µs); ARGV[2]: burst tolerance τ = T·(burst−1) (µs).
/// Returns 0 when the call is allowed, else the microseconds until it would be.
pub const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then
  return math.ceil(tat - now - tolerance)
end
local new_tat = tat + emission
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
";

/// The shared form: GCRA in Redis.
struct RedisGcra {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    script: redis::Script,
    /// Set while Redis fails, so the outage is logged once, not per request.
    failing: AtomicBool,
}

/// One gateway's rate limiter: governor in process, shared through Redis when set.
pub struct Limiter {
    quotas: HashMap<Class, Quota>,
    local: HashMap<Class, DefaultKeyedRateLimiter<String>>,
    redis: Option<RedisGcra>,
    checks: AtomicU64,
}

/// Checks between two sweeps of forgotten callers out of the in-process limiter.
const SWEEP_EVERY: u64 = 4096;

impl Limiter {
    /// The in-process limiter alone (one instance, or no Redis).
    pub fn local(settings: &LimitSettings) -> Limiter {
        let quotas: HashMap<Class, Quota> = Class::ALL
            .iter()
            .filter_map(|c| {
                NonZeroU32::new(c.per_minute(settings)).map(|n| (*c, Quota::per_minute(n)))
            })
            .collect();
        let local = quotas
            .iter()
            .map(|(c, q)| (*c, RateLimiter::keyed(*q)))
            .collect();
        Limiter {
            quotas,
            local,
            redis: None,
            checks: AtomicU64::new(0),
        }
    }

    /// The limiter of a gateway: shared through Redis when `redis_url` is set.
    pub async fn connect(
        settings: &LimitSettings,
        redis_url: Option<&str>,
        prefix: &str,
    ) -> anyhow::Result<Limiter> {
        let mut limiter = Limiter::local(settings);
        if let Some(url) = redis_url {
            let client = redis::Client::open(url)?;
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_secs(2)))
                .set_number_of_retries(1);
            let conn = tokio::time::timeout(
                Duration::from_secs(5),
                redis::aio::ConnectionManager::new_with_config(client, config),
            )
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))??;
            limiter.redis = Some(RedisGcra {
                conn,
                prefix: prefix.to_owned(),
                script: redis::Script::new(GCRA_SCRIPT),
                failing: AtomicBool::new(false),
            });
        }
        Ok(limiter)
    }

    /// `"redis"` when the budgets are shared, else `"memory"`.
    pub fn backend(&self) -> &'static str {
        if self.redis.is_some() {
            "redis"
        } else {
            "memory"
        }
    }

    /// Counts one call of `class` by `caller` and says whether it may go ahead.
    pub async fn check(&self, class: Class, caller: &str) -> Verdict {
        let Some(quota) = self.quotas.get(&class) else {
            return Verdict::Allowed;
        };
        if let Some(r) = &self.redis {
            match r.check(class, caller, quota).await {
                Ok(v) => {
                    if r.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("rate limits are shared through Redis again");
                    }
                    return v;
                }
                Err(e) => {
                    if !r.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "rate limits cannot reach Redis: this instance limits on its own until it is back");
                    }
                }
            }
        }
        self.check_local(class, caller)
    }

    fn check_local(&self, class: Class, caller: &str) -> Verdict {
        let Some(limiter) = self.local.get(&class) else {
            return Verdict::Allowed;
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            for l in self.local.values() {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        match limiter.check_key(&caller.to_owned()) {
            Ok(()) => Verdict::Allowed,
            Err(not_until) => {
                Verdict::Limited(not_until.wait_time_from(DefaultClock::default().now()))
            }
        }
    }
}

impl RedisGcra {
    async fn check(
        &self,
        class: Class,
        caller: &str,
        quota: &Quota,
    ) -> redis::RedisResult<Verdict> {
        let emission = quota.replenish_interval().as_micros().max(1) as u64;
        let tolerance = emission * u64::from(quota.burst_size().get() - 1);
        let key = format!("{}rl:{}:{caller}", self.prefix, class.code());
        let mut conn = self.conn.clone();
        let wait: u64 = self
            .script
            .key(key)
            .arg(emission)
            .arg(tolerance)
            .invoke_async(&mut conn)
            .await?;
        Ok(if wait == 0 {
            Verdict::Allowed
        } else {
            Verdict::Limited(Duration::from_micros(wait))
        })
    }
}

/// A shared limiter handle.
pub type SharedLimiter = Arc<Limiter>;

/// Whole seconds to announce in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    let s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_minute: u32) -> LimitSettings {
        LimitSettings {
            limit_login_per_minute: per_minute,
            limit_submit_per_minute: 0,
            ..LimitSettings::default()
        }
    }

    #[tokio::test]
    async fn a_burst_is_allowed_then_the_caller_waits_alone() {
        let l = Limiter::local(&settings(3));
        for _ in 0..3 {
            assert_eq!(l.check(Class::LoginStart, "ip:1").await, Verdict::Allowed);
        }
        let Verdict::Limited(wait) = l.check(Class::LoginStart, "ip:1").await else {
            panic!("the fourth call in a minute is limited");
        };
        // one call comes back every 20 s
        assert!(wait <= Duration::from_secs(20) && wait > Duration::from_secs(15));
        assert_eq!(retry_after_secs(wait), 20);
        assert_eq!(
            l.check(Class::LoginStart, "ip:2").await,
            Verdict::Allowed,
            "another caller has a budget of its own"
        );
    }

    #[tokio::test]
    async fn zero_turns_a_class_off() {
        let l = Limiter::local(&settings(1));
        for _ in 0..100 {
            assert_eq!(l.check(Class::Submission, "s:x").await, Verdict::Allowed);
        }
    }

    #[test]
    fn messages_name_the_wait_in_both_languages() {
        let m = Class::PublicQuery.message(7);
        assert!(m.zh.contains("7秒"), "{}", m.zh);
        assert!(m.en.contains("7 seconds"), "{}", m.en);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
