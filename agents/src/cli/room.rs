//! `kibitz-agent room …`: check Kibitz room links.

use std::path::PathBuf;

use capability_manifest::{verify_room_manifest, GateMode, RoomLink};
use clap::{Args, Subcommand};
use serde_json::json;

use super::exit::{self, CliError};
use super::files::{load_public_key, print_json};
use super::{format_time, now_secs, Ctx, RunCommand};

const EXAMPLES: &str = "\
Examples:
  kibitz-agent room verify-link --link 'https://kibitz.chat/#standup?g=google&gk=…&gm=…' --key agent.pub.jwk";

/// Arguments of `room`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct RoomArgs {
    #[command(subcommand)]
    command: RoomCommand,
}

#[derive(Debug, Subcommand)]
enum RoomCommand {
    /// Check that a link's signed room manifest (gm, verified with gk) allow-lists an agent key.
    VerifyLink(VerifyLinkArgs),
}

impl RunCommand for RoomArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        match self.command {
            RoomCommand::VerifyLink(a) => a.run(ctx),
        }
    }
}

const VERIFY_LINK_EXAMPLES: &str = "\
Examples:
  kibitz-agent room verify-link --link 'https://kibitz.chat/#standup?g=google&gk=…&gm=…' --key agent.pub.jwk
  kibitz-agent room verify-link --link \"$LINK\" --key agent.jwk --json

Exit codes: 11 the manifest does not list the key, 14 malformed key file, 20 malformed link
(or no signed manifest in it), 21 room manifest refused (bad signature, wrong room or mode,
expired, no members).";

/// Arguments of `room verify-link`.
#[derive(Debug, Args)]
#[command(after_help = VERIFY_LINK_EXAMPLES)]
struct VerifyLinkArgs {
    /// The room link (or `room?g=…&gk=…&gm=…`).
    #[arg(long)]
    link: String,
    /// The agent's public (or private) JWK file.
    #[arg(long)]
    key: PathBuf,
    /// Check expiry against this time (epoch seconds) instead of the clock.
    #[arg(long, value_name = "SECS")]
    now: Option<u64>,
}

impl RunCommand for VerifyLinkArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        let agent = load_public_key(&self.key)?;
        let link = RoomLink::parse(&self.link)
            .map_err(|e| CliError::new(exit::BAD_LINK, format!("bad link: {e}")))?;
        let mode = link.gate_mode();
        if mode == GateMode::Open {
            return Err(CliError::new(
                exit::BAD_LINK,
                "the link is an open room (no g=…): it carries no signed room manifest",
            ));
        }
        if link.enc_manifest.is_some() {
            return Err(CliError::new(
                exit::BAD_LINK,
                "the link's manifest is sealed (ge=…) under a passphrase",
            ));
        }
        let creator = link.creator_public_key().ok_or_else(|| {
            CliError::new(exit::BAD_LINK, "the link has no usable creator key (gk)")
        })?;
        let token = link
            .manifest
            .as_deref()
            .ok_or_else(|| CliError::new(exit::BAD_LINK, "the link has no room manifest (gm)"))?;
        let room = link.room_key();
        let now = self.now.unwrap_or_else(now_secs);
        let manifest = verify_room_manifest(token, &creator, &room, now, mode.manifest_mode())
            .map_err(|e| {
                CliError::new(exit::ROOM_MANIFEST, format!("room manifest refused: {e}"))
            })?;
        let Some((index, entry)) = manifest.find_agent(&agent) else {
            return Err(CliError::new(
                exit::WRONG_KEY,
                format!(
                    "room {room:?} does not allow-list key {}",
                    agent.thumbprint()
                ),
            ));
        };
        if ctx.json {
            print_json(&json!({
                "ok": true,
                "room": room,
                "mode": mode.as_str(),
                "expires_at": manifest.exp,
                "key_thumbprint": agent.thumbprint(),
                "index": index,
                "label": entry.label,
                "caps": entry.caps.as_ref().map(|c| c.to_value()),
            }));
        } else {
            let caps = match &entry.caps {
                Some(c) => c.to_value().to_string(),
                None => "none (peers apply Kibitz's read-only agent default)".to_owned(),
            };
            outln!(
                "OK: room {room} ({} gate, manifest expires {}) allow-lists key {} as entry {index}{}",
                mode.as_str(),
                format_time(manifest.exp),
                agent.thumbprint(),
                entry.label.as_deref().map(|l| format!(" ({l})")).unwrap_or_default()
            );
            outln!("caps: {caps}");
        }
        Ok(())
    }
}
