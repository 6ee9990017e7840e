//! The built-in agents `kibitz-agent join --agent <name>` can run, by name.
//!
//! Adding one is one line in [`REGISTRY`]: a name and a function building the agent from
//! [`BuiltinOptions`].

mod chat_logger;

use std::path::PathBuf;

use agent_runtime::agent::{Agent, AgentError, AgentEvent, Context, Lanes};
use async_trait::async_trait;

pub use chat_logger::ChatLogger;

/// What a built-in agent may be configured with on the command line.
#[derive(Debug, Clone, Default)]
pub struct BuiltinOptions {
    /// Directory for the agent's files (`--out`); `None`: artifacts go to stdout only.
    pub out: Option<PathBuf>,
}

/// Builds one built-in agent.
pub type Factory = fn(&BuiltinOptions) -> Result<BuiltinAgent, BuiltinError>;

/// Every built-in agent: its `--agent` name and how to build it.
pub const REGISTRY: &[(&str, Factory)] = &[("chat-logger", chat_logger::build)];

/// The names `--agent` accepts.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _)| *name).collect()
}

/// Build the built-in agent called `name`.
pub fn build(name: &str, opts: &BuiltinOptions) -> Result<BuiltinAgent, BuiltinError> {
    match REGISTRY.iter().find(|(n, _)| *n == name) {
        Some((_, factory)) => factory(opts),
        None => Err(BuiltinError::Unknown {
            name: name.to_owned(),
            known: names().join(", "),
        }),
    }
}

/// Why a built-in agent could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuiltinError {
    /// No built-in agent has that name.
    #[error("unknown agent {name:?} (built-in agents: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// The agent's output file could not be opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A built-in agent behind one type, so the host can spawn any of them.
pub struct BuiltinAgent(Box<dyn Agent>);

impl BuiltinAgent {
    /// Wrap an agent.
    pub fn new(agent: impl Agent) -> BuiltinAgent {
        BuiltinAgent(Box::new(agent))
    }
}

impl std::fmt::Debug for BuiltinAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BuiltinAgent")
            .field(&self.0.lanes())
            .finish()
    }
}

#[async_trait]
impl Agent for BuiltinAgent {
    fn lanes(&self) -> Lanes {
        self.0.lanes()
    }

    async fn on_start(&mut self, cx: &mut Context) -> Result<(), AgentError> {
        self.0.on_start(cx).await
    }

    async fn on_event(&mut self, cx: &mut Context, ev: AgentEvent) -> Result<(), AgentError> {
        self.0.on_event(cx, ev).await
    }

    async fn on_stop(&mut self, cx: &mut Context) -> Result<(), AgentError> {
        self.0.on_stop(cx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capability_manifest::Capability;

    #[test]
    fn registry_builds_known_names_only() {
        assert!(names().contains(&"chat-logger"));
        let a = build("chat-logger", &BuiltinOptions::default()).unwrap();
        assert!(a.lanes().is_required(Capability::ReadChat));
        let err = build("nope", &BuiltinOptions::default()).unwrap_err();
        assert!(err.to_string().contains("chat-logger"), "{err}");
    }
}
