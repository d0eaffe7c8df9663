//! See `super` for what this file holds.
