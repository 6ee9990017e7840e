//! `chat-logger`: a read-only agent that records every chat line it is allowed to read.

use std::fs::{File, OpenOptions};
use std::io::Write as _;

use agent_runtime::agent::{Agent, AgentError, AgentEvent, Artifact, Context, Lanes};
use async_trait::async_trait;
use capability_manifest::Capability;
use serde_json::json;

use super::{BuiltinAgent, BuiltinError, BuiltinOptions};

/// Emits each chat line as a `custom` artifact of kind `chat`
/// (`{"from","name","text","dm"}`) and, with an output directory, appends it to
/// `chat.jsonl` there. Requires `read-chat`; `read-roster` is optional.
#[derive(Debug, Default)]
pub struct ChatLogger {
    file: Option<File>,
}

impl ChatLogger {
    /// A logger that appends to `file` when given.
    pub fn new(file: Option<File>) -> ChatLogger {
        ChatLogger { file }
    }
}

pub(super) fn build(opts: &BuiltinOptions) -> Result<BuiltinAgent, BuiltinError> {
    let file = match &opts.out {
        Some(dir) => {
            let io = |source| BuiltinError::Io {
                path: dir.clone(),
                source,
            };
            std::fs::create_dir_all(dir).map_err(io)?;
            let path = dir.join("chat.jsonl");
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| BuiltinError::Io { path, source })?;
            Some(file)
        }
        None => None,
    };
    Ok(BuiltinAgent::new(ChatLogger::new(file)))
}

#[async_trait]
impl Agent for ChatLogger {
    fn lanes(&self) -> Lanes {
        Lanes::new()
            .require(Capability::ReadChat)
            .optional(Capability::ReadRoster)
    }

    async fn on_event(&mut self, cx: &mut Context, ev: AgentEvent) -> Result<(), AgentError> {
        if let AgentEvent::Chat {
            from,
            name,
            text,
            dm,
        } = ev
        {
            let line = json!({"from": from, "name": name, "text": text, "dm": dm});
            if let Some(file) = &mut self.file {
                writeln!(file, "{line}")?;
                file.flush()?;
            }
            cx.emit(Artifact::Custom {
                kind: "chat".into(),
                data: line,
            });
        }
        Ok(())
    }
}
