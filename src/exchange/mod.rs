//! The exchange with department back-end systems: signed push delivery, the pull inbox, and
//! the published signing keys.

pub mod envelope;
pub mod keys;
pub mod signing;
pub mod worker;
