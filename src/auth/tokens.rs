//! API tokens for department back-end systems: random secrets shown once, stored only as
//! a SHA-256 hash, scoped to one department and a set of scopes.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix that makes a leaked token recognisable to secret scanners.
pub const TOKEN_PREFIX: &str = "owt_";

/// Scopes a department token can carry.
pub const SCOPES: [(&str, &str); 5] = [
    ("cases:read", "read the department's cases"),
    ("cases:write", "report processing steps (transitions)"),
    ("inbox", "lease and acknowledge events from the pull inbox"),
    ("materials:read", "download application materials"),
    (
        "data:read",
        "read shared data resources (under the share type and grants)",
    ),
];

/// Makes a new random token (256 bits of entropy).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks requested scopes against the known ones; an empty list is refused.
pub fn parse_scopes(list: &str) -> Result<Vec<String>, String> {
    let scopes: Vec<String> = list
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err("name at least one scope".into());
    }
    for s in &scopes {
        if !SCOPES.iter().any(|(k, _)| k == s) {
            let known: Vec<&str> = SCOPES.iter().map(|(k, _)| *k).collect();
            return Err(format!(
                "unknown scope {s:?}; known scopes: {}",
                known.join(", ")
            ));
        }
    }
    Ok(scopes)
}

/// Parses a lifetime such as `90d`, `12h` or `30m`.
pub fn parse_lifetime(s: &str) -> Result<chrono::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a lifetime like 90d, 12h or 30m"))?;
    if n <= 0 {
        return Err("the lifetime must be positive".into());
    }
    match unit {
        "d" => Ok(chrono::Duration::days(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        _ => Err(format!("{s:?} is not a lifetime like 90d, 12h or 30m")),
    }
}

/// A new token, stored by its hash: the row and the secret (to be shown once).
/// `onewindow token create` and the operator's department page both make tokens here.
pub async fn issue(
    store: &dyn crate::store::Store,
    department: &str,
    scopes: Vec<String>,
    name: String,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::store::StoreResult<(crate::store::ApiToken, String)> {
    let secret = generate();
    let t = crate::store::ApiToken {
        id: uuid::Uuid::now_v7(),
        department: department.to_owned(),
        name,
        scopes,
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    store.insert_api_token(&t, &hash(&secret)).await?;
    tracing::info!(token = %t.id, department = %t.department, "API token created");
    Ok((t, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert!(!hash(&a).contains(&a[4..]));
    }

    #[test]
    fn scopes_must_be_known() {
        assert_eq!(
            parse_scopes("cases:read,cases:write").expect("ok"),
            ["cases:read", "cases:write"]
        );
        assert!(
            parse_scopes("cases:delete")
                .expect_err("bad")
                .contains("cases:delete")
        );
        assert!(parse_scopes("").is_err());
    }

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("90d"), Ok(chrono::Duration::days(90)));
        assert_eq!(parse_lifetime("12h"), Ok(chrono::Duration::hours(12)));
        assert!(parse_lifetime("0d").is_err());
        assert!(parse_lifetime("soon").is_err());
    }
}
