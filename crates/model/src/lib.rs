//! Domain rules of Stevedore: naming, ARNs, the store's key layout, and the
//! validation ECS applies to what users register. Everything here is pure: no
//! IO, no clock (callers pass timestamps in), no randomness.

pub mod arn;
pub mod error;
pub mod keys;
pub mod tags;
pub mod taskdef;

pub use error::{ModelError, ModelErrorKind};
