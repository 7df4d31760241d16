//! Error types shared by the crate's parsers.

use core::fmt;

/// A wire value that is not one of a vocabulary's names; carries the vocabulary's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownValue(pub &'static str);

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {}", self.0)
    }
}

impl core::error::Error for UnknownValue {}
