//! Join time on loopback: the release `kibitz-agent join` process against the Chromium test
//! peer, on the embedded broker and on the npm `peer` server, in the same run.
//!
//! `cargo bench -p kibitz-test-harness --bench join` (plain `harness = false`, std::time only).
//! Without `--bench` (`cargo test -p kibitz-test-harness --benches`) it is a one-round smoke
//! run that still fails on any failed join.
//!
//! Per broker, a Chromium **host** page holds room R with the lobby off (admission is
//! immediate, the same for both joiners). Then, `JOIN_RUNS` times (default 10, after
//! `JOIN_WARMUP` unmeasured rounds, default 1), alternating so both see the same machine load:
//!
//! - **agent**: spawn `kibitz-agent join --json --room R --broker ws://… --name … --loopback`;
//!   t0 = just before the spawn; "admitted" = its `{"status":"admitted"}` stderr line (first
//!   roster containing its voiceId), "link open" = `{"status":"link-open","detail":<host
//!   voiceId>}` (the `sig` data link to the host). Lines are timestamped when the bench reads
//!   them. Then SIGINT (graceful leave) and a bounded wait for exit 0.
//! - **browser**: a fresh page in the already running Chromium; t0 = just before the `open`
//!   command (page creation, navigation and script load included, browser process start
//!   excluded); "admitted" = the page's first `roster` event containing its voiceId, "link
//!   open" = its `link {state:'open', label:'sig', remote:<host>}` event, both stamped in the
//!   page (`Date.now()`, same machine clock). Then `leave` and the tab is closed.
//!
//! The browser process launch (node driver + Chromium, `Browser::launch`) is timed once per
//! broker and reported separately, with the cold-browser estimate launch + page p50.
//!
//! Every wait is bounded (`JOIN_TIMEOUT_SECS`, default 30); a failed run is printed with its
//! reason and counted, and the bench exits non-zero when any run failed.
//!
//! The agent binary is `<target>/release/kibitz-agent` (`$CARGO_TARGET_DIR`, else the target
//! directory this bench runs from); when missing it is built first with
//! `cargo build --release -p kibitz-agents --bin kibitz-agent`. `KIBITZ_AGENT_BIN` overrides.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_runtime::broker::{Broker, BrokerHandle, BrokerOptions};
use anyhow::{bail, Context as _, Result};
use kibitz_test_harness::{repo_root, Browser, BrowserOptions, PeerJsServer, PeerOptions, Role};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// Pause between runs so the host has processed the previous leave.
const SETTLE: Duration = Duration::from_millis(500);
/// Bound on an agent's graceful exit after SIGINT.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The bench's targets (issue 3, "Measure").
const TARGET_P50: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
struct Config {
    runs: usize,
    warmup: usize,
    timeout: Duration,
    agent_bin: PathBuf,
}

/// The two milestones of one join, measured from its start.
#[derive(Debug, Clone)]
struct Sample {
    admitted: Duration,
    link_open: Duration,
    /// Earlier phases, first occurrence each (agent: `registered`, `knocking`; page:
    /// `participant`, `opened`), for finding where the time goes.
    phases: Vec<(String, Duration)>,
}

/// One run: the sample, or why it failed; plus anything odd about leaving.
#[derive(Debug)]
struct Outcome {
    result: Result<Sample, String>,
    leave_note: Option<String>,
}

/// A broker under test, alive as long as this value.
struct Target {
    label: &'static str,
    ws_url: String,
    browser_json: Value,
    embedded: Option<BrokerHandle>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(b) = &self.embedded {
            b.shutdown();
        }
    }
}

/// Results of one broker.
struct Report {
    label: &'static str,
    launch: Duration,
    agent: Vec<Outcome>,
    browser: Vec<Outcome>,
}

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("join bench: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    match rt.block_on(run()) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("join bench failed: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Runs everything; `Ok(false)` when some run failed.
async fn run() -> Result<bool> {
    let cfg = config()?;
    println!(
        "join bench: {} runs (+{} warm-up) per broker, timeout {:?}, agent {}",
        cfg.runs,
        cfg.warmup,
        cfg.timeout,
        cfg.agent_bin.display()
    );
    let npm = PeerJsServer::start()
        .await
        .context("starting the npm peer broker")?;
    let (embedded, _task) = Broker::bind(([127, 0, 0, 1], 0).into(), BrokerOptions::default())
        .await
        .context("binding the embedded broker")?;
    let targets = [
        Target {
            label: "embedded",
            ws_url: embedded.ws_url(),
            browser_json: json!({
                "host": "127.0.0.1",
                "port": embedded.local_addr().port(),
                "path": "/",
                "key": "peerjs",
                "secure": false,
            }),
            embedded: Some(embedded),
        },
        Target {
            label: "npm peer",
            ws_url: format!("ws://127.0.0.1:{}/", npm.port()),
            browser_json: npm.broker_json(),
            embedded: None,
        },
    ];
    let mut reports = Vec::new();
    for target in &targets {
        reports.push(bench_broker(&cfg, target, &npm).await?);
    }
    let mut all_ok = true;
    for r in &reports {
        all_ok &= print_report(r, cfg.runs);
    }
    print_markdown(&reports);
    Ok(all_ok)
}

fn config() -> Result<Config> {
    let num = |name: &str, default: u64| -> Result<u64> {
        match std::env::var(name) {
            Ok(v) => v
                .trim()
                .parse()
                .with_context(|| format!("{name}={v:?} is not a number")),
            Err(_) => Ok(default),
        }
    };
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) one smoke round.
    let bench = std::env::args().any(|a| a == "--bench");
    let runs = num("JOIN_RUNS", if bench { 10 } else { 1 })?.max(1) as usize;
    let warmup = num("JOIN_WARMUP", u64::from(bench))? as usize;
    let timeout = Duration::from_secs(num("JOIN_TIMEOUT_SECS", 30)?.max(1));
    let agent_bin = match std::env::var_os("KIBITZ_AGENT_BIN") {
        Some(p) => PathBuf::from(p),
        None => release_agent(bench)?,
    };
    if !agent_bin.is_file() {
        bail!("agent binary {} does not exist", agent_bin.display());
    }
    Ok(Config {
        runs,
        warmup,
        timeout,
        agent_bin,
    })
}

/// `<target>/release/kibitz-agent`, built first when missing. In smoke mode (`bench` false)
/// the binary of this run's own profile is used when the release one is missing.
fn release_agent(bench: bool) -> Result<PathBuf> {
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        // This bench runs as <target>/<profile>/deps/join-<hash>.
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
            .filter(|dir| dir.join("release").is_dir() || dir.join("debug").is_dir())
            .unwrap_or_else(|| repo_root().join("target")),
    };
    let bin = target_dir.join("release").join("kibitz-agent");
    if bin.is_file() {
        warn_if_stale(&bin);
        return Ok(bin);
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(2).map(|d| d.join("kibitz-agent")))
        .filter(|p| p.is_file());
    if let (false, Some(sibling)) = (bench, sibling) {
        println!("smoke mode: using {}", sibling.display());
        return Ok(sibling);
    }
    println!(
        "{} is missing: cargo build --release -p kibitz-agents --bin kibitz-agent",
        bin.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "kibitz-agents",
            "--bin",
            "kibitz-agent",
        ])
        .current_dir(repo_root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release of kibitz-agent failed ({status})");
    }
    Ok(bin)
}

/// Says so when a source file of the agent is newer than the binary (it is not rebuilt).
fn warn_if_stale(bin: &Path) {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let root = repo_root();
    let newer = ["agents/src", "agent-runtime/src", "capability-manifest/src"]
        .iter()
        .any(|dir| newest_mtime(&root.join(dir)).is_some_and(|t| t > built));
    if newer {
        println!(
            "warning: {} is older than its sources; rebuild with \
             `cargo build --release -p kibitz-agents --bin kibitz-agent` to measure the current code",
            bin.display()
        );
    }
}

fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
                newest = newest.max(Some(t));
            }
        }
    }
    newest
}

async fn bench_broker(cfg: &Config, target: &Target, npm: &PeerJsServer) -> Result<Report> {
    println!("\n== {} broker ({}) ==", target.label, target.ws_url);
    let launch_start = Instant::now();
    let browser = Browser::launch(BrowserOptions {
        echo_stderr: false,
        ..BrowserOptions::default()
    })
    .await
    .context("launching the browser harness")?;
    let launch = launch_start.elapsed();
    println!("browser launch (node driver + Chromium): {}", ms(launch));

    let room = format!("join bench {}", target.label);
    let host = browser
        .open_peer(
            "host",
            &page_opts(Role::Host, &room, "Bench Host", target, npm),
        )
        .await
        .context("opening the Chromium host page")?;
    if !host.authority {
        bail!("the Chromium host page did not become the room authority");
    }
    let host_id = host.voice_id;

    let mut agent = Vec::new();
    let mut pages = Vec::new();
    for i in 0..cfg.warmup + cfg.runs {
        let warm = i < cfg.warmup;
        let tag = if warm {
            format!("warm-up {}", i + 1)
        } else {
            format!("run {}", i + 1 - cfg.warmup)
        };
        let a = agent_run(cfg, target, &room, &host_id, i).await;
        print_outcome("agent", &tag, &a);
        tokio::time::sleep(SETTLE).await;
        let b = browser_run(cfg, &browser, target, npm, &room, &host_id, i).await;
        print_outcome("browser", &tag, &b);
        tokio::time::sleep(SETTLE).await;
        if !warm {
            agent.push(a);
            pages.push(b);
        }
    }
    if let Err(e) = browser.shutdown().await {
        println!("note: browser shutdown: {e:#}");
    }
    Ok(Report {
        label: target.label,
        launch,
        agent,
        browser: pages,
    })
}

fn page_opts(
    role: Role,
    room: &str,
    name: &str,
    target: &Target,
    npm: &PeerJsServer,
) -> PeerOptions {
    let mut opts = PeerOptions::new(role, room, name, npm).lobby(false);
    opts.broker = target.browser_json.clone();
    opts
}

/// One `kibitz-agent join` process: spawn → admitted → link to the host open → SIGINT → exit.
async fn agent_run(cfg: &Config, target: &Target, room: &str, host_id: &str, i: usize) -> Outcome {
    let name = format!("Bench Agent {i}");
    let t0 = Instant::now();
    let spawned = Command::new(&cfg.agent_bin)
        .args(["join", "--json", "--room", room, "--broker", &target.ws_url])
        .args(["--name", &name, "--loopback"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                result: Err(format!("spawn failed: {e}")),
                leave_note: None,
            }
        }
    };
    let (tx, mut lines) = mpsc::unbounded_channel::<(Instant, String)>();
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
    }

    let deadline = tokio::time::Instant::now() + cfg.timeout;
    let mut admitted = None;
    let mut link_open = None;
    let mut phases: Vec<(String, Duration)> = Vec::new();
    let mut tail: Vec<String> = Vec::new();
    let result = loop {
        if let (Some(admitted), Some(link_open)) = (admitted, link_open) {
            break Ok(Sample {
                admitted,
                link_open,
                phases: std::mem::take(&mut phases),
            });
        }
        let (at, line) = match tokio::time::timeout_at(deadline, lines.recv()).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                let status = tokio::time::timeout(EXIT_TIMEOUT, child.wait()).await;
                break Err(format!(
                    "agent exited ({}) before joining; stderr: {}",
                    match status {
                        Ok(Ok(s)) => s.to_string(),
                        _ => "?".into(),
                    },
                    tail.join(" | ")
                ));
            }
            Err(_) => {
                break Err(format!(
                    "no {} within {:?}; stderr: {}",
                    if admitted.is_none() {
                        "admission"
                    } else {
                        "link to the host"
                    },
                    cfg.timeout,
                    tail.join(" | ")
                ))
            }
        };
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let status = v.get("status").and_then(Value::as_str).unwrap_or_default();
        let detail = v.get("detail").and_then(Value::as_str).unwrap_or_default();
        match status {
            "admitted" if admitted.is_none() => admitted = Some(at - t0),
            "link-open" if detail == host_id && link_open.is_none() => link_open = Some(at - t0),
            "registered" | "knocking" if !phases.iter().any(|(p, _)| p == status) => {
                phases.push((status.to_owned(), at - t0));
            }
            _ => {}
        }
        if tail.len() >= 12 {
            tail.remove(0);
        }
        tail.push(line);
    };
    let leave_note = stop_agent(&mut child).await;
    Outcome { result, leave_note }
}

/// SIGINT (the agent leaves gracefully), then a bounded wait; killed if it lingers.
async fn stop_agent(child: &mut tokio::process::Child) -> Option<String> {
    if let Ok(Some(status)) = child.try_wait() {
        return (!status.success()).then(|| format!("had already exited ({status})"));
    }
    let Some(pid) = child.id() else {
        return Some("no pid".into());
    };
    let sent = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .await;
    if !matches!(sent, Ok(s) if s.success()) {
        let _ = child.start_kill();
        return Some(format!("could not send SIGINT ({sent:?}); killed"));
    }
    match tokio::time::timeout(EXIT_TIMEOUT, child.wait()).await {
        Ok(Ok(s)) if s.success() => None,
        Ok(Ok(s)) => Some(format!("left with {s}")),
        Ok(Err(e)) => Some(format!("wait failed: {e}")),
        Err(_) => {
            let _ = child.start_kill();
            Some(format!(
                "did not exit within {EXIT_TIMEOUT:?} of SIGINT; killed"
            ))
        }
    }
}

/// One fresh Chromium page: open → in its own roster → sig link to the host open → leave.
async fn browser_run(
    cfg: &Config,
    browser: &Browser,
    target: &Target,
    npm: &PeerJsServer,
    room: &str,
    host_id: &str,
    i: usize,
) -> Outcome {
    let peer = format!("bench-{i}");
    let opts = page_opts(
        Role::Participant,
        room,
        &format!("Bench Browser {i}"),
        target,
        npm,
    );
    let since = browser.cursor();
    let start = Instant::now();
    let t0 = unix_ms();
    let result = async {
        let opened = tokio::time::timeout(cfg.timeout, browser.open_peer(&peer, &opts))
            .await
            .map_err(|_| format!("open did not answer within {:?}", cfg.timeout))?
            .map_err(|e| format!("open failed: {e:#}"))?;
        let me = opened.voice_id;
        let left = cfg.timeout.saturating_sub(start.elapsed());
        let roster = browser
            .wait_event_since(
                since,
                |e| e.is(&peer, "roster") && e.member_ids().contains(&me.as_str()),
                left,
            )
            .await
            .map_err(|e| format!("never in its own roster: {}", first_line(&e)))?;
        let left = cfg.timeout.saturating_sub(start.elapsed());
        let link = browser
            .wait_event_since(
                since,
                |e| {
                    e.is(&peer, "link")
                        && e.str("state") == Some("open")
                        && e.str("label") == Some("sig")
                        && e.str("remote") == Some(host_id)
                },
                left,
            )
            .await
            .map_err(|e| format!("sig link to the host never opened: {}", first_line(&e)))?;
        let at = |e: &kibitz_test_harness::Event| {
            e.get("at")
                .and_then(Value::as_f64)
                .map(|at| Duration::from_secs_f64((at - t0).max(0.0) / 1000.0))
                .ok_or_else(|| format!("`{}` event without `at`", e.ev))
        };
        let mut phases = Vec::new();
        for ev in ["participant", "opened"] {
            let found = browser
                .events()
                .into_iter()
                .skip(since)
                .find(|e| e.is(&peer, ev));
            if let Some(e) = found {
                phases.push((ev.to_owned(), at(&e)?));
            }
        }
        Ok(Sample {
            admitted: at(&roster)?,
            link_open: at(&link)?,
            phases,
        })
    }
    .await;
    let mut notes = Vec::new();
    if let Err(e) = browser.leave(&peer).await {
        notes.push(format!("leave: {}", first_line(&e)));
    }
    if let Err(e) = browser.close_peer(&peer).await {
        notes.push(format!("close: {}", first_line(&e)));
    }
    Outcome {
        result,
        leave_note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn print_outcome(who: &str, tag: &str, o: &Outcome) {
    let mut line = match &o.result {
        Ok(s) => {
            let phases: Vec<String> = s
                .phases
                .iter()
                .map(|(p, d)| format!("{p} {}", ms(*d)))
                .collect();
            format!(
                "{who:<8} {tag:<10} admitted {:>7}  link open {:>7}  [{}]",
                ms(s.admitted),
                ms(s.link_open),
                phases.join(", ")
            )
        }
        Err(e) => format!("{who:<8} {tag:<10} FAILED: {e}"),
    };
    if let Some(note) = &o.leave_note {
        line.push_str(&format!("  (leave: {note})"));
    }
    println!("{line}");
}

/// Order statistics of one series.
#[derive(Debug, Clone, Copy)]
struct Stats {
    p50: Duration,
    p95: Duration,
    min: Duration,
    max: Duration,
}

impl Stats {
    fn of(mut v: Vec<Duration>) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        v.sort();
        // Nearest rank: the smallest value with at least p of the samples at or below it.
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Self {
            p50: rank(0.50),
            p95: rank(0.95),
            min: v[0],
            max: v[v.len() - 1],
        })
    }
}

struct Series {
    agent_admitted: Option<Stats>,
    agent_link: Option<Stats>,
    browser_admitted: Option<Stats>,
    browser_link: Option<Stats>,
}

fn series(r: &Report) -> Series {
    let pick = |runs: &[Outcome], f: fn(&Sample) -> Duration| {
        Stats::of(
            runs.iter()
                .filter_map(|o| o.result.as_ref().ok())
                .map(f)
                .collect(),
        )
    };
    Series {
        agent_admitted: pick(&r.agent, |s| s.admitted),
        agent_link: pick(&r.agent, |s| s.link_open),
        browser_admitted: pick(&r.browser, |s| s.admitted),
        browser_link: pick(&r.browser, |s| s.link_open),
    }
}

/// Statistics of one earlier phase over the successful runs that reached it.
fn phase_stats(runs: &[Outcome], name: &str) -> Option<Stats> {
    Stats::of(
        runs.iter()
            .filter_map(|o| o.result.as_ref().ok())
            .filter_map(|s| s.phases.iter().find(|(p, _)| p == name).map(|(_, d)| *d))
            .collect(),
    )
}

fn ratio(a: Option<Stats>, b: Option<Stats>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let b = b.p50.as_secs_f64();
    (b > 0.0).then(|| a.p50.as_secs_f64() / b)
}

/// Prints one broker's table; false when a run failed.
fn print_report(r: &Report, runs: usize) -> bool {
    let ok = |v: &[Outcome]| v.iter().filter(|o| o.result.is_ok()).count();
    let (agent_ok, browser_ok) = (ok(&r.agent), ok(&r.browser));
    println!(
        "\n== {} broker: agent {agent_ok}/{runs} ok, browser {browser_ok}/{runs} ok ==",
        r.label
    );
    for (who, v) in [("agent", &r.agent), ("browser", &r.browser)] {
        for (i, o) in v.iter().enumerate() {
            if let Err(e) = &o.result {
                println!("failed {who} run {}: {e}", i + 1);
            }
        }
    }
    let s = series(r);
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>9}",
        "milestone (ms)", "p50", "p95", "min", "max"
    );
    for (name, st) in [
        ("agent admitted", s.agent_admitted),
        ("agent link open", s.agent_link),
        ("browser admitted", s.browser_admitted),
        ("browser link open", s.browser_link),
    ] {
        match st {
            Some(st) => println!(
                "{name:<20} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
                st.p50.as_secs_f64() * 1e3,
                st.p95.as_secs_f64() * 1e3,
                st.min.as_secs_f64() * 1e3,
                st.max.as_secs_f64() * 1e3
            ),
            None => println!("{name:<20} (no successful run)"),
        }
    }
    for (who, v, names) in [
        ("agent", &r.agent, ["registered", "knocking"]),
        ("browser", &r.browser, ["participant", "opened"]),
    ] {
        let parts: Vec<String> = names
            .iter()
            .map(|name| match phase_stats(v, name) {
                Some(st) => format!("{name} {}", ms(st.p50)),
                None => format!("{name} n/a"),
            })
            .collect();
        println!("{who} earlier phases (p50): {}", parts.join(", "));
    }
    let fmt_ratio = |x: Option<f64>| x.map_or("n/a".to_owned(), |x| format!("{x:.2}"));
    println!(
        "ratio agent/browser (p50): admitted {}, link open {}",
        fmt_ratio(ratio(s.agent_admitted, s.browser_admitted)),
        fmt_ratio(ratio(s.agent_link, s.browser_link))
    );
    if let Some(b) = s.browser_link {
        println!(
            "browser incl. process launch (launch + link-open p50): {}",
            ms(r.launch + b.p50)
        );
    }
    if let (Some(a), Some(b)) = (s.agent_link, s.browser_link) {
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        println!(
            "target agent link-open p50 <= {}: {}; agent <= 1/2 browser (p50): {}",
            ms(TARGET_P50),
            verdict(a.p50 <= TARGET_P50),
            verdict(a.p50.as_secs_f64() * 2.0 <= b.p50.as_secs_f64())
        );
    }
    agent_ok == r.agent.len() && browser_ok == r.browser.len()
}

/// The same numbers as a Markdown table, for `BENCHMARKS.md`.
fn print_markdown(reports: &[Report]) {
    println!("\n| broker | milestone | agent p50 | agent p95 | agent min | agent max | browser p50 | browser p95 | browser min | browser max | agent/browser (p50) |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let cell = |st: Option<Stats>, f: fn(&Stats) -> Duration| {
        st.map_or("–".to_owned(), |st| {
            format!("{:.0}", f(&st).as_secs_f64() * 1e3)
        })
    };
    for r in reports {
        let s = series(r);
        for (name, a, b) in [
            ("admitted", s.agent_admitted, s.browser_admitted),
            ("link open", s.agent_link, s.browser_link),
        ] {
            println!(
                "| {} | {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.label,
                cell(a, |x| x.p50),
                cell(a, |x| x.p95),
                cell(a, |x| x.min),
                cell(a, |x| x.max),
                cell(b, |x| x.p50),
                cell(b, |x| x.p95),
                cell(b, |x| x.min),
                cell(b, |x| x.max),
                ratio(a, b).map_or("–".to_owned(), |x| format!("{x:.2}")),
            );
        }
    }
    for r in reports {
        println!(
            "\n{} broker: browser process launch (node driver + Chromium) {}",
            r.label,
            ms(r.launch)
        );
    }
}
