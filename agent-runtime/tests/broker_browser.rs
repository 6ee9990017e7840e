//! The embedded broker serving the real PeerJS 1.5.5 client in headless Chromium: id allocation
//! across origins (CORS), `OPEN`, a DataConnection negotiated through the broker, `ID-TAKEN` →
//! `unavailable-id`, `EXPIRE` → `peer-unavailable`. Everything stays on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod signaling_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use agent_runtime::broker::{Broker, BrokerOptions};
use signaling_support::repo_root;

const SCRIPT: &str = r#"
const http = require('node:http');
const { chromium } = require('playwright-core');
const [, , brokerPort, peerjsPath, chromiumPath] = process.argv;

(async () => {
  // A page on a different origin than the broker, like a real Kibitz page.
  const site = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>t</title>');
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--allow-loopback-in-peer-connection'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${site.address().port}/`);
    await page.addScriptTag({ path: peerjsPath });
    const result = await page.evaluate(async (port) => {
      const opts = { host: '127.0.0.1', port: Number(port), path: '/', secure: false, pingInterval: 5000,
        config: { iceServers: [] } };
      const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error('timeout: ' + what)), ms));
      const opened = (p) => new Promise((res, rej) => { p.on('open', res); p.on('error', (e) => rej(new Error(e.type))); });
      const a = new Peer(opts);
      const b = new Peer(opts);
      const [ida, idb] = await Promise.race([Promise.all([opened(a), opened(b)]), timeout(10000, 'open')]);
      const got = new Promise((res) => b.on('connection', (c) => c.on('data', (d) => res({ d, label: c.label }))));
      const conn = a.connect(idb, { reliable: true });
      conn.on('open', () => conn.send({ hello: 'kibitz', n: [1, 2, 3] }));
      const data = await Promise.race([got, timeout(20000, 'data')]);
      const taken = await Promise.race([new Promise((res) => {
        const p = new Peer(ida, opts);
        p.on('error', (e) => res(e.type));
        p.on('open', () => res('opened'));
      }), timeout(10000, 'taken')]);
      const unavailable = await Promise.race([new Promise((res) => {
        a.on('error', (e) => res(e.type));
        a.connect('kbz-v1-nobody-here');
      }), timeout(10000, 'expire')]);
      return { ida, idb, data, taken, unavailable };
    }, brokerPort);
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await browser.close();
    site.close();
  }
})().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
"#;

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is missing at {}: run the test setup script (scripts/install-test-deps.sh) first",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_peerjs_in_chromium_uses_the_embedded_broker() {
    let js = repo_root().join("tests/js");
    let node_modules = require(js.join("node_modules"), "tests/js/node_modules");
    let _ = require(
        node_modules.join("playwright-core/package.json"),
        "npm playwright-core",
    );
    let peerjs = require(
        node_modules.join("peerjs/dist/peerjs.min.js"),
        "npm peerjs 1.5.5",
    );
    let chromium = require(
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())),
        "Chromium",
    );

    let opts = BrokerOptions {
        expire_timeout: Duration::from_millis(1000),
        ..BrokerOptions::default()
    };
    let (broker, task) = Broker::bind(([127, 0, 0, 1], 0).into(), opts)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("peerjs-check.cjs");
    std::fs::write(&script, SCRIPT).unwrap();
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .arg(broker.local_addr().port().to_string())
        .arg(&peerjs)
        .arg(&chromium)
        .env("NODE_PATH", &node_modules)
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("browser check finished within 90 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser check failed: {stderr}");
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();

    let ida = result["ida"].as_str().unwrap();
    let idb = result["idb"].as_str().unwrap();
    assert_eq!(ida.len(), 36, "{result}");
    assert_ne!(ida, idb);
    assert_eq!(
        result["data"]["d"],
        serde_json::json!({"hello": "kibitz", "n": [1, 2, 3]})
    );
    assert!(result["data"]["label"].as_str().unwrap().starts_with("dc_"));
    assert_eq!(result["taken"], "unavailable-id");
    assert_eq!(result["unavailable"], "peer-unavailable");

    broker.shutdown();
    task.await.unwrap().unwrap();
}
