//! Shipped Kibitz agents: the transcriber engine and whisper model acquisition.
//!
//! The `kibitz-agent` binary (in `main.rs`) builds on these modules.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod builtin;
pub mod models;
pub mod transcriber;
