//! The `kibitz-agent` command line.
//!
//! Every subcommand is an `Args` type implementing [`RunCommand`]; the [`commands!`] list below
//! generates the `Command` enum and its dispatch, so adding a subcommand is one line there.

/// `println!` that ignores a closed stdout (e.g. piped into `head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod allow_entry;
mod broker;
pub(crate) mod exit;
mod files;
mod join;
mod keygen;
mod manifest;
mod models;
mod room;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use self::exit::CliError;

/// Shared context for every subcommand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// Print machine-readable JSON instead of text.
    pub(crate) json: bool,
}

/// A subcommand.
pub(crate) trait RunCommand {
    /// Run it; print results on stdout.
    fn run(self, ctx: Ctx) -> Result<(), CliError>;
}

const EXAMPLES: &str = "\
Examples:
  kibitz-agent keygen --out agent.jwk
  kibitz-agent manifest init --kind transcriber --out transcriber.json
  kibitz-agent manifest sign --key agent.jwk --in transcriber.json --out transcriber.jws --expires-in 30d
  kibitz-agent manifest verify transcriber.jws --key agent.pub.jwk
  kibitz-agent manifest inspect transcriber.jws
  kibitz-agent allow-entry --key agent.pub.jwk --caps perceive:read-chat,act:send-chat --label notes-bot
  kibitz-agent broker --listen 127.0.0.1:9000
  kibitz-agent room verify-link --link 'https://kibitz.chat/#standup?g=google&gk=…&gm=…' --key agent.pub.jwk

Exit codes: 0 ok, 2 usage, 3 io, 4 file exists, 10 bad signature, 11 wrong key, 12 expired,
13 invalid manifest, 14 malformed key, 15 malformed token, 16 unknown capability,
17 lane without destination, 18 non-https endpoint, 19 egress mismatch, 20 bad link,
21 room manifest refused.";

/// Generates `Command` and its dispatch from one list of `Variant(ArgsType)` lines.
macro_rules! commands {
    ($( $(#[$meta:meta])* $variant:ident($args:ty), )*) => {
        /// The subcommands.
        #[derive(Debug, Subcommand)]
        pub(crate) enum Command {
            $( $(#[$meta])* $variant($args), )*
        }

        impl RunCommand for Command {
            fn run(self, ctx: Ctx) -> Result<(), CliError> {
                match self {
                    $( Command::$variant(args) => RunCommand::run(args, ctx), )*
                }
            }
        }
    };
}

commands! {
    /// Generate a P-256 agent key (private JWK file, mode 0600) and print its thumbprint.
    Keygen(keygen::KeygenArgs),
    /// Create, sign, verify and inspect agent manifests.
    Manifest(manifest::ManifestArgs),
    /// Print the room-manifest `agentKeys` entry that allow-lists an agent key.
    AllowEntry(allow_entry::AllowEntryArgs),
    /// Check Kibitz room links.
    Room(room::RoomArgs),
    /// Run the embedded PeerJS-compatible broker (loopback by default) until Ctrl-C.
    Broker(broker::BrokerArgs),
    /// Join a Kibitz room as a read-only agent; chat arrives on stdout as JSON lines.
    Join(join::JoinArgs),
    /// Fetch, list and locate whisper speech-recognition models.
    Models(models::ModelsArgs),
}

/// `kibitz-agent`: honest, read-only-by-default AI agents for Kibitz calls.
#[derive(Debug, Parser)]
#[command(name = "kibitz-agent", version, about, after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Parse the command line, run the subcommand and turn any error into one line on stderr and an
/// exit code from [`exit`].
pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::from(exit::OK)
            };
        }
    };
    let ctx = Ctx { json: cli.json };
    match cli.command.run(ctx) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            errln!("{e}");
            e.exit_code()
        }
    }
}

/// Now, epoch seconds.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Format epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), after Howard Hinnant's public-domain algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parse a duration like `30d`, `12h`, `90m`, `45s`, `2w` or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (try 30d, 12h, 90m)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use s, m, h, d or w)"
            ))
        }
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("invalid duration {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples() {
        fn walk(cmd: &clap::Command, path: &str) {
            assert!(cmd.get_after_help().is_some(), "{path} has no examples");
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&Cli::command(), "kibitz-agent");
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_duration("30d"), Ok(2_592_000));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("10"), Ok(10));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
