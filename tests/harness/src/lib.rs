//! Test support for kibitz-agent: real components only.
//!
//! - [`PeerJsServer`]: the npm `peer` PeerJS broker on `127.0.0.1`, killed on drop.
//! - [`Browser`]: headless Debian Chromium running Kibitz participant pages
//!   (`tests/js/page/`), driven through `tests/js/harness.mjs` over JSON lines.
//!
//! Missing prerequisites (node, the npm modules, chromium) are errors that name
//! `scripts/install-test-deps.sh`: tests using this crate fail loudly, they never skip.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use kibitz_test_harness::{Browser, BrowserOptions, PeerJsServer, PeerOptions, Role};
//! let broker = PeerJsServer::start().await?;
//! let browser = Browser::launch(BrowserOptions::default()).await?;
//! let alice = browser
//!     .open_peer("alice", &PeerOptions::new(Role::Host, "standup", "Alice", &broker))
//!     .await?;
//! browser.chat("alice", "hello").await?;
//! # let _ = alice; Ok(()) }
//! ```

mod broker;
mod browser;
mod event;
mod paths;

pub use broker::PeerJsServer;
pub use browser::{Browser, BrowserOptions, Opened, PeerOptions, Role};
pub use event::Event;
pub use paths::{js_dir, repo_root, INSTALL_HINT};
