//! Wire codecs. Every decoder here returns typed errors and never panics on peer input.

pub mod binarypack;
pub mod chunker;
pub mod content;
pub mod presence;
pub mod value;

pub use value::Value;
