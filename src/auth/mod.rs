//! Identity: OpenID Connect login, server-side sessions, CSRF protection, roles as
//! extractors, and department API tokens.

pub mod doctor;
pub mod extract;
pub mod identity;
pub mod oidc;
pub mod session;
pub mod tokens;
