//! `kibitz-agent manifest …`: create, sign, verify and inspect agent manifests.

use std::path::PathBuf;

use capability_manifest::{
    sign_manifest, verify_signed_manifest, AgentManifest, Destination, Disclosure, SignedManifest,
    ValidateOptions, VerifyManifestOptions,
};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::exit::{self, CliError};
use super::files::{load_private_key, load_public_key, print_json, read_text, write_file};
use super::{format_time, now_secs, parse_duration, Ctx, RunCommand};

const TRANSCRIBER: &str = include_str!("../../../examples/manifests/transcriber.json");
const SUMMARIZER: &str = include_str!("../../../examples/manifests/summarizer.json");

const EXAMPLES: &str = "\
Examples:
  kibitz-agent manifest init --kind transcriber --out transcriber.json
  kibitz-agent manifest sign --key agent.jwk --in transcriber.json --out transcriber.jws --expires-in 30d
  kibitz-agent manifest verify transcriber.jws --key agent.pub.jwk
  kibitz-agent manifest inspect transcriber.jws
  kibitz-agent manifest schema > manifest.schema.json";

/// Arguments of `manifest`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ManifestArgs {
    #[command(subcommand)]
    command: ManifestCommand,
}

/// The `manifest` subcommands.
#[derive(Debug, Subcommand)]
enum ManifestCommand {
    /// Write a starting manifest (explanations live in "$comment" fields).
    Init(InitArgs),
    /// Validate a manifest and sign it as a JWS (ES256) with the agent key.
    Sign(SignArgs),
    /// Verify a signed manifest: signature, key, expiry, schema, lane/egress consistency.
    Verify(VerifyArgs),
    /// Summarise a manifest (signed or not) for a host: who, which lanes, where data goes.
    Inspect(InspectArgs),
    /// Print the manifest's JSON Schema.
    Schema(SchemaArgs),
}

impl RunCommand for ManifestArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        match self.command {
            ManifestCommand::Init(a) => a.run(ctx),
            ManifestCommand::Sign(a) => a.run(ctx),
            ManifestCommand::Verify(a) => a.run(ctx),
            ManifestCommand::Inspect(a) => a.run(ctx),
            ManifestCommand::Schema(a) => a.run(ctx),
        }
    }
}

/// Which starting manifest `init` writes.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// Local-only whisper transcriber (hear-audio, read-roster).
    Transcriber,
    /// Chat summarizer with a remote OpenAI-compatible backend.
    Summarizer,
}

const INIT_EXAMPLES: &str = "\
Examples:
  kibitz-agent manifest init                       # transcriber template on stdout
  kibitz-agent manifest init --kind summarizer --out summarizer.json";

/// Arguments of `manifest init`.
#[derive(Debug, Args)]
#[command(after_help = INIT_EXAMPLES)]
struct InitArgs {
    /// Which template.
    #[arg(long, value_enum, default_value = "transcriber")]
    kind: Kind,
    /// Write to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    force: bool,
}

impl RunCommand for InitArgs {
    fn run(self, _ctx: Ctx) -> Result<(), CliError> {
        let text = match self.kind {
            Kind::Transcriber => TRANSCRIBER,
            Kind::Summarizer => SUMMARIZER,
        };
        match self.out {
            Some(path) => {
                write_file(&path, text, self.force, false)?;
                errln!("wrote {}; edit it, then: kibitz-agent manifest sign --key agent.jwk --in {} --out manifest.jws", path.display(), path.display());
            }
            None => out!("{text}"),
        }
        Ok(())
    }
}

const SIGN_EXAMPLES: &str = "\
Examples:
  kibitz-agent manifest sign --key agent.jwk --in transcriber.json --out transcriber.jws
  kibitz-agent manifest sign --key agent.jwk --in summarizer.json --out summarizer.jws --expires-in 30d

Signing sets issued_at to now (or --now) and, with --expires-in, expires_at.";

/// Arguments of `manifest sign`.
#[derive(Debug, Args)]
#[command(after_help = SIGN_EXAMPLES)]
struct SignArgs {
    /// The agent's private JWK file.
    #[arg(long)]
    key: PathBuf,
    /// The manifest JSON.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Where to write the JWS (stdout when absent).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Validity period: 30d, 12h, 90m, 45s, 2w.
    #[arg(long, value_parser = parse_duration)]
    expires_in: Option<u64>,
    /// Accept http:// endpoints on 127.0.0.1/localhost (local tests only).
    #[arg(long)]
    allow_insecure_local: bool,
    /// Use this time (epoch seconds) instead of the clock.
    #[arg(long, value_name = "SECS")]
    now: Option<u64>,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

impl RunCommand for SignArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        let key = load_private_key(&self.key)?;
        let mut manifest = AgentManifest::from_json(&read_text(&self.input)?)?;
        let now = self.now.unwrap_or_else(now_secs);
        manifest.issued_at = now;
        if let Some(secs) = self.expires_in {
            manifest.expires_at = Some(now.saturating_add(secs));
        }
        let opts = ValidateOptions {
            allow_insecure_local: self.allow_insecure_local,
        };
        let signed = sign_manifest(&manifest, &key, opts)?;
        match &self.out {
            Some(path) => write_file(path, &format!("{}\n", signed.token), self.force, false)?,
            None if !ctx.json => outln!("{}", signed.token),
            None => {}
        }
        if ctx.json {
            print_json(&json!({
                "token": signed.token,
                "key_thumbprint": signed.key_thumbprint,
                "issued_at": manifest.issued_at,
                "expires_at": manifest.expires_at,
                "out": self.out.as_ref().map(|p| p.display().to_string()),
            }));
        } else if let Some(path) = &self.out {
            outln!(
                "signed {} {} with key {}",
                manifest.agent.name,
                manifest.agent.version,
                signed.key_thumbprint
            );
            outln!("expires: {}", expiry_text(manifest.expires_at, now));
            outln!("wrote {}", path.display());
        }
        Ok(())
    }
}

/// Flags shared by `verify` and `inspect`.
#[derive(Debug, Args)]
struct CheckFlags {
    /// Require this signer: a public (or private) JWK file.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Accept http:// endpoints on 127.0.0.1/localhost (local tests only).
    #[arg(long)]
    allow_insecure_local: bool,
    /// Check against this time (epoch seconds) instead of the clock.
    #[arg(long, value_name = "SECS")]
    now: Option<u64>,
}

impl CheckFlags {
    fn verify(&self, token: &str) -> Result<SignedManifest, CliError> {
        let expected_key = self
            .key
            .as_deref()
            .map(load_public_key)
            .transpose()?
            .map(|k| k.thumbprint());
        let opts = VerifyManifestOptions {
            expected_key,
            validate: ValidateOptions {
                allow_insecure_local: self.allow_insecure_local,
            },
            ..VerifyManifestOptions::at(self.now())
        };
        Ok(verify_signed_manifest(token, &opts)?)
    }

    fn now(&self) -> u64 {
        self.now.unwrap_or_else(now_secs)
    }
}

const VERIFY_EXAMPLES: &str = "\
Examples:
  kibitz-agent manifest verify transcriber.jws
  kibitz-agent manifest verify transcriber.jws --key agent.pub.jwk --json

Exit codes: 10 bad signature, 11 wrong key, 12 expired, 13 invalid manifest, 15 malformed token,
16 unknown capability, 17 lane without destination, 18 non-https endpoint, 19 egress mismatch.";

/// Arguments of `manifest verify`.
#[derive(Debug, Args)]
#[command(after_help = VERIFY_EXAMPLES)]
struct VerifyArgs {
    /// The signed manifest (JWS) file.
    file: PathBuf,
    #[command(flatten)]
    flags: CheckFlags,
}

impl RunCommand for VerifyArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        let token = read_text(&self.file)?;
        let signed = self.flags.verify(token.trim())?;
        let m = &signed.manifest;
        if ctx.json {
            print_json(&json!({
                "ok": true,
                "agent": m.agent.name,
                "version": m.agent.version,
                "key_thumbprint": signed.key_thumbprint,
                "issued_at": m.issued_at,
                "expires_at": m.expires_at,
                "leaves_machine": m.leaves_machine(),
                "allowed_origins": m.allowed_origins(),
            }));
        } else {
            outln!(
                "OK: {} {} by {}, signed by key {}, expires {}",
                m.agent.name,
                m.agent.version,
                m.agent.publisher,
                signed.key_thumbprint,
                expiry_text(m.expires_at, self.flags.now())
            );
        }
        Ok(())
    }
}

const INSPECT_EXAMPLES: &str = "\
Examples:
  kibitz-agent manifest inspect transcriber.jws
  kibitz-agent manifest inspect summarizer.json        # an unsigned draft
  kibitz-agent manifest inspect summarizer.jws --json

A signed manifest is verified first (same checks and exit codes as `verify`).";

/// Arguments of `manifest inspect`.
#[derive(Debug, Args)]
#[command(after_help = INSPECT_EXAMPLES)]
struct InspectArgs {
    /// A signed manifest (JWS) or a manifest JSON file.
    file: PathBuf,
    #[command(flatten)]
    flags: CheckFlags,
}

impl RunCommand for InspectArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        let text = read_text(&self.file)?;
        let text = text.trim();
        let (manifest, signed) = if text.starts_with('{') {
            let opts = ValidateOptions {
                allow_insecure_local: self.flags.allow_insecure_local,
            };
            (AgentManifest::parse_and_validate(text, opts)?, None)
        } else {
            let s = self.flags.verify(text)?;
            (s.manifest.clone(), Some(s))
        };
        let now = self.flags.now();
        if ctx.json {
            print_json(&inspect_json(&manifest, signed.as_ref()));
        } else {
            out!("{}", inspect_text(&manifest, signed.as_ref(), now));
        }
        Ok(())
    }
}

fn inspect_json(m: &AgentManifest, signed: Option<&SignedManifest>) -> Value {
    json!({
        "signed": signed.is_some(),
        "key_thumbprint": signed.map(|s| s.key_thumbprint.clone()),
        "read_only": m.is_read_only(),
        "leaves_machine": m.leaves_machine(),
        "allowed_origins": m.allowed_origins(),
        "requested_grant": m.requested_grant().to_value(),
        "disclosure": signed.map(|s| Disclosure::from_signed(s).to_meta()),
        "manifest": serde_json::to_value(m).unwrap_or(Value::Null),
    })
}

fn inspect_text(m: &AgentManifest, signed: Option<&SignedManifest>, now: u64) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let a = &m.agent;
    line(format!(
        "Agent:      {} {} — published by {}",
        a.name, a.version, a.publisher
    ));
    if let Some(h) = &a.homepage {
        line(format!("Homepage:   {h}"));
    }
    if let Some(d) = &a.description {
        line(format!("About:      {d}"));
    }
    match signed {
        Some(s) => line(format!(
            "Signed by:  key {} (signature verified)",
            s.key_thumbprint
        )),
        None => line("Signed by:  NOT SIGNED (draft JSON; sign it before publishing)".to_owned()),
    }
    if m.issued_at > 0 {
        line(format!("Issued:     {}", format_time(m.issued_at)));
    }
    line(format!("Expires:    {}", expiry_text(m.expires_at, now)));
    line(format!(
        "Read-only:  {}",
        if m.is_read_only() {
            "yes (asks for no act capability)"
        } else {
            "no (asks to act in the room)"
        }
    ));
    if m.leaves_machine() {
        line(format!(
            "Leaves this machine: YES, to {}",
            m.allowed_origins().join(", ")
        ));
    } else {
        line("Leaves this machine: NO, every lane is processed locally".to_owned());
    }
    line("Lanes:".to_owned());
    for lane in &m.lanes {
        let need = if lane.optional {
            "optional"
        } else {
            "required"
        };
        line(format!(
            "  {} ({}), {need}",
            lane.capability,
            lane.capability.label()
        ));
        line(format!("      purpose:   {}", lane.purpose));
        line(format!("      processor: {}", lane.processor));
        match &lane.destination {
            Destination::Local { model, runs_on, .. } => {
                line(format!(
                    "      data goes: LOCAL, model {model} on {runs_on}"
                ));
            }
            Destination::Remote {
                provider,
                endpoint,
                model,
                region,
                retention,
                ..
            } => {
                let region = region
                    .as_deref()
                    .map(|r| format!(" (region {r})"))
                    .unwrap_or_default();
                line(format!(
                    "      data goes: REMOTE, {provider} model {model} at {endpoint}{region}"
                ));
                line(format!("      retention: {retention}"));
            }
        }
    }
    line(format!(
        "Requested grant: {}",
        m.requested_grant().to_value()
    ));
    if let Some(s) = signed {
        line(format!(
            "Roster disclosure: {}",
            Disclosure::from_signed(s).to_meta()
        ));
    }
    out
}

fn expiry_text(expires_at: Option<u64>, now: u64) -> String {
    match expires_at {
        None => "never".to_owned(),
        Some(e) if e <= now => format!("{} (EXPIRED)", format_time(e)),
        Some(e) => {
            let left = e - now;
            let human = if left >= 86_400 {
                format!("{} days", left / 86_400)
            } else if left >= 3600 {
                format!("{} hours", left / 3600)
            } else {
                format!("{} minutes", left.div_ceil(60))
            };
            format!("{} (in {human})", format_time(e))
        }
    }
}

const SCHEMA_EXAMPLES: &str = "\
Examples:
  kibitz-agent manifest schema > manifest.schema.json";

/// Arguments of `manifest schema`.
#[derive(Debug, Args)]
#[command(after_help = SCHEMA_EXAMPLES)]
struct SchemaArgs {}

impl RunCommand for SchemaArgs {
    fn run(self, _ctx: Ctx) -> Result<(), CliError> {
        let schema = serde_json::to_value(AgentManifest::json_schema())
            .map_err(|e| CliError::new(exit::INTERNAL, e.to_string()))?;
        print_json(&schema);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_templates_are_valid() {
        for t in [TRANSCRIBER, SUMMARIZER] {
            AgentManifest::parse_and_validate(t, ValidateOptions::default()).unwrap();
        }
        let t = AgentManifest::from_json(TRANSCRIBER).unwrap();
        assert!(!t.leaves_machine());
        assert_eq!(
            t.backend_summary(),
            "local whisper tiny.en, speaker labels (no model)"
        );
        let s = AgentManifest::from_json(SUMMARIZER).unwrap();
        assert!(s.leaves_machine());
        assert!(!s.is_read_only());
    }

    #[test]
    fn inspect_says_where_data_goes() {
        let s = AgentManifest::from_json(SUMMARIZER).unwrap();
        let text = inspect_text(&s, None, 0);
        assert!(text.contains("Leaves this machine: YES, to https://api.example.com:443"));
        assert!(text.contains("retention: not stored"));
        assert!(text.contains("NOT SIGNED"));
        let t = AgentManifest::from_json(TRANSCRIBER).unwrap();
        assert!(inspect_text(&t, None, 0).contains("Leaves this machine: NO"));
    }
}
