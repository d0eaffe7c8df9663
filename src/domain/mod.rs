//! The domain core: pure rules with no HTTP and no SQL, unit-tested on their own.

pub mod catalogue;
pub mod ids;
pub mod lang;
