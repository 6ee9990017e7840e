//! `kibitz-agent allow-entry`: the `agentKeys` entry a room creator pastes into a room manifest.

use std::path::PathBuf;

use capability_manifest::{agent_entry_for, Capability, Grant};
use clap::Args;

use super::exit::{self, CliError};
use super::files::load_public_key;
use super::{Ctx, RunCommand};

const EXAMPLES: &str = "\
Examples:
  kibitz-agent allow-entry --key agent.pub.jwk
  kibitz-agent allow-entry --key agent.pub.jwk --caps perceive:read-chat,perceive:hear-audio --label transcriber
  kibitz-agent allow-entry --key agent.jwk --caps read-chat,read-roster,act:send-chat --label notes-bot

Capabilities: perceive see-screen, hear-audio, read-chat, read-roster, receive-directed,
read-media, read-files; act send-chat, speak, act. A bare name is placed in its own list.
Without --caps the entry has no caps: Kibitz then applies its agent default (read-only).";

/// Arguments of `allow-entry`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct AllowEntryArgs {
    /// The agent's public (or private) JWK file.
    #[arg(long)]
    key: PathBuf,
    /// Comma-separated capabilities, each `perceive:NAME`, `act:NAME` or a bare NAME.
    #[arg(long)]
    caps: Option<String>,
    /// A display and audit label.
    #[arg(long)]
    label: Option<String>,
}

/// Parse `perceive:read-chat,act:send-chat,…` into a grant.
pub(crate) fn parse_caps(spec: &str) -> Result<Grant, CliError> {
    let mut grant = Grant::empty();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (list, name) = match item.split_once(':') {
            Some((list, name)) => (Some(list.trim()), name.trim()),
            None => (None, item),
        };
        let cap = Capability::from_name(name).ok_or_else(|| {
            CliError::new(
                exit::UNKNOWN_CAPABILITY,
                format!("unknown capability {name:?}"),
            )
        })?;
        match list {
            None => {}
            Some("perceive") if cap.is_perceive() => {}
            Some("act") if cap.is_act() => {}
            Some(other @ ("perceive" | "act")) => {
                return Err(CliError::new(
                    exit::UNKNOWN_CAPABILITY,
                    format!("{name} is not a {other} capability"),
                ));
            }
            Some(other) => {
                return Err(CliError::new(
                    exit::USAGE,
                    format!("unknown list {other:?} (use perceive: or act:)"),
                ));
            }
        }
        let target = if cap.is_perceive() {
            &mut grant.perceive
        } else {
            &mut grant.act
        };
        if !target.contains(&cap) {
            target.push(cap);
        }
    }
    Ok(grant)
}

impl RunCommand for AllowEntryArgs {
    fn run(self, _ctx: Ctx) -> Result<(), CliError> {
        let key = load_public_key(&self.key)?;
        let caps = self.caps.as_deref().map(parse_caps).transpose()?;
        // The entry is JSON either way; one line so it pastes cleanly.
        outln!(
            "{}",
            agent_entry_for(&key, caps.as_ref(), self.label.as_deref())
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_parsing() {
        let g = parse_caps("perceive:read-chat, act:send-chat,read-roster,read-chat").unwrap();
        assert_eq!(
            g.perceive,
            vec![Capability::ReadChat, Capability::ReadRoster]
        );
        assert_eq!(g.act, vec![Capability::SendChat]);
        assert_eq!(
            parse_caps("perceive:send-chat").unwrap_err().code,
            exit::UNKNOWN_CAPABILITY
        );
        assert_eq!(
            parse_caps("read-minds").unwrap_err().code,
            exit::UNKNOWN_CAPABILITY
        );
        assert_eq!(parse_caps("see:read-chat").unwrap_err().code, exit::USAGE);
        assert_eq!(parse_caps("").unwrap(), Grant::empty());
    }
}
