//! The domain core: pure rules with no HTTP and no SQL, unit-tested on their own.

pub mod calendar;
pub mod case;
pub mod catalogue;
pub mod catalogue_edit;
pub mod deadline;
pub mod form;
pub mod ids;
pub mod lang;
