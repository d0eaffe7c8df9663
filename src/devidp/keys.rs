//! The IdP's signing keys: one published P-256 key, and one "foreign" key that is never
//! published so that [`Tamper::foreign_key`](super::Tamper::foreign_key) can sign tokens
//! a correct relying party must refuse.
//!
//! Keys are generated at start and live only in memory: every run of the dev IdP has
//! fresh keys, so nothing secret is ever written down.

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rand::rngs::OsRng;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The key pair used to sign ID tokens, and the unpublished foreign one.
pub(super) struct SigningKeys {
    /// RFC 7638 thumbprint of the published key; also put on foreign-signed tokens.
    kid: String,
    /// Public coordinates (base64url, no padding).
    x: String,
    y: String,
    published: EncodingKey,
    foreign: EncodingKey,
    verifying: DecodingKey,
}

impl SigningKeys {
    /// Generates both keys from the operating system's random source.
    pub(super) fn generate() -> anyhow::Result<SigningKeys> {
        let published = p256::SecretKey::random(&mut OsRng);
        let foreign = p256::SecretKey::random(&mut OsRng);

        let point = published.public_key().to_encoded_point(false);
        let x = URL_SAFE_NO_PAD.encode(point.x().context("P-256 point without x")?);
        let y = URL_SAFE_NO_PAD.encode(point.y().context("P-256 point without y")?);

        // RFC 7638: the required members in lexicographic order, no whitespace.
        let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));

        let verifying =
            DecodingKey::from_ec_components(&x, &y).context("public key into jsonwebtoken")?;
        Ok(SigningKeys {
            kid,
            x,
            y,
            published: encoding_key(&published)?,
            foreign: encoding_key(&foreign)?,
            verifying,
        })
    }

    /// The key id put in the JWT header.
    #[cfg(test)]
    pub(super) fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWK Set document: the published key only.
    pub(super) fn jwks(&self) -> Value {
        json!({
            "keys": [{
                "kty": "EC",
                "crv": "P-256",
                "x": self.x,
                "y": self.y,
                "kid": self.kid,
                "use": "sig",
                "alg": "ES256",
            }]
        })
    }

    /// Signs claims as an ES256 JWT with the published key, or with the foreign key
    /// (still claiming the published key's `kid`) when `foreign` is set.
    pub(super) fn sign(
        &self,
        claims: &Map<String, Value>,
        foreign: bool,
    ) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let key = if foreign {
            &self.foreign
        } else {
            &self.published
        };
        jsonwebtoken::encode(&header, claims, key).context("signing an ID token")
    }

    /// The claims of a token this IdP signed with its published key, whatever its
    /// audience and even when it has expired (as an `id_token_hint` may be); `None` if the
    /// signature does not verify.
    pub(super) fn verify_ignoring_expiry(&self, token: &str) -> Option<Map<String, Value>> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Map<String, Value>>(token, &self.verifying, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

fn encoding_key(secret: &p256::SecretKey) -> anyhow::Result<EncodingKey> {
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| anyhow!("encoding a P-256 key as PKCS#8: {e}"))?;
    Ok(EncodingKey::from_ec_der(der.as_bytes()))
}
