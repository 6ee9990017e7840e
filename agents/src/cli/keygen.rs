//! `kibitz-agent keygen`: a new P-256 agent key.

use std::path::PathBuf;

use capability_manifest::AgentKey;
use clap::Args;
use serde_json::json;

use super::exit::CliError;
use super::files::{print_json, public_path_for, write_file};
use super::{Ctx, RunCommand};

const EXAMPLES: &str = "\
Examples:
  kibitz-agent keygen                      # writes agent.jwk (0600) and agent.pub.jwk
  kibitz-agent keygen --out bot.jwk --force
  kibitz-agent keygen --out bot.jwk --json

The private key stays with the agent. Hand the public key (or its `allow-entry`) to whoever
creates the room; the thumbprint identifies the key in manifests and audit logs.";

/// Arguments of `keygen`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct KeygenArgs {
    /// Where to write the private JWK (the public JWK goes next to it as `*.pub.jwk`).
    #[arg(long, default_value = "agent.jwk")]
    out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

impl RunCommand for KeygenArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        let key = AgentKey::generate();
        let public_path = public_path_for(&self.out);
        if !self.force && public_path.exists() {
            return Err(CliError::new(
                super::exit::EXISTS,
                format!(
                    "{} already exists (pass --force to replace it)",
                    public_path.display()
                ),
            ));
        }
        write_file(
            &self.out,
            &format!("{}\n", key.to_jwk_string()),
            self.force,
            true,
        )?;
        write_file(
            &public_path,
            &format!("{}\n", key.public().to_jwk_string()),
            self.force,
            false,
        )?;
        if ctx.json {
            print_json(&json!({
                "private_key_file": self.out.display().to_string(),
                "public_key_file": public_path.display().to_string(),
                "thumbprint": key.thumbprint(),
                "public_jwk": key.public().to_jwk(),
            }));
        } else {
            outln!(
                "private key: {} (mode 0600, keep it secret)",
                self.out.display()
            );
            outln!("public key:  {}", public_path.display());
            outln!("thumbprint:  {}", key.thumbprint());
            outln!("public JWK:  {}", key.public().to_jwk_string());
        }
        Ok(())
    }
}
