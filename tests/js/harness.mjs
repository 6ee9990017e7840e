#!/usr/bin/env node
// Drives Kibitz test participants (page/kibitz-peer.html) in headless Debian Chromium.
//
// Protocol: JSON lines. Commands on stdin, `{"id":N,"cmd":"...",...}`; each is answered on
// stdout with `{"id":N,"ok":true,...result}` or `{"id":N,"ok":false,"error":"..."}`.
// Page events are streamed on stdout as `{"ev":"<type>","peer":"<name>",...}`. Page console
// output and diagnostics go to stderr (`{"ev":"console",...}`). Exits when stdin closes.
//
// Options (argv): --audio FILE.wav (default fake microphone), --chromium PATH,
// --profile-root DIR (where fresh Chromium user-data dirs go; default the OS temp dir).
// Environment: CHROMIUM (browser path, default /usr/bin/chromium), KBZ_HARNESS_DEBUG=1.

import http from 'node:http'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const PAGE_DIR = path.join(HERE, 'page')
const PEERJS = path.join(HERE, 'node_modules', 'peerjs', 'dist', 'peerjs.min.js')
const DEBUG = process.env.KBZ_HARNESS_DEBUG === '1'
const PROFILE_ROOT = process.argv.includes('--profile-root') ? process.argv[process.argv.indexOf('--profile-root') + 1] : os.tmpdir()

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const diag = (obj) => process.stderr.write(JSON.stringify(obj) + '\n')

function arg(name) {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

// --- static server (127.0.0.1, random port) -------------------------------------------

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.map': 'application/json' }

function serveFile(res, file) {
  fs.readFile(file, (err, body) => {
    if (err) {
      res.writeHead(404).end('not found')
      return
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' })
    res.end(body)
  })
}

function startServer() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1')
    if (url.pathname === '/vendor/peerjs.min.js') return serveFile(res, PEERJS)
    if (url.pathname === '/vendor/peerjs.min.js.map') return serveFile(res, PEERJS + '.map')
    if (url.pathname.startsWith('/page/')) {
      const rel = path.normalize(decodeURIComponent(url.pathname.slice('/page/'.length)))
      if (rel.startsWith('..') || path.isAbsolute(rel)) return res.writeHead(403).end()
      return serveFile(res, path.join(PAGE_DIR, rel))
    }
    if (url.pathname === '/favicon.ico') return res.writeHead(204).end()
    res.writeHead(404).end('not found')
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

// --- chromium ----------------------------------------------------------------------------

const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  // media.js: the silent placeholder's AudioContext and remote <audio> must run without a gesture.
  '--autoplay-policy=no-user-gesture-required',
]

let chromiumPkg = null
async function chromiumType() {
  if (!chromiumPkg) chromiumPkg = (await import('playwright-core')).chromium
  return chromiumPkg
}

/** One Chromium per fake-audio file (the flag is per process); '' is the default one. */
const browsers = new Map()
const tempDirs = []

async function browserFor(audio) {
  const key = audio || ''
  let entry = browsers.get(key)
  if (entry) return await entry
  entry = (async () => {
    const executablePath = arg('--chromium') || process.env.CHROMIUM || '/usr/bin/chromium'
    if (!fs.existsSync(executablePath)) {
      throw new Error(`Chromium not found at ${executablePath}; run scripts/install-test-deps.sh or set CHROMIUM`)
    }
    const userDataDir = fs.mkdtempSync(path.join(PROFILE_ROOT, 'kbz-chromium-'))
    tempDirs.push(userDataDir)
    const args = [...CHROMIUM_FLAGS]
    if (audio) args.push(`--use-file-for-fake-audio-capture=${audio}`)
    const type = await chromiumType()
    // headless:false keeps Playwright from adding its own --headless; ours is --headless=new.
    const context = await type.launchPersistentContext(userDataDir, {
      executablePath,
      headless: false,
      args,
      viewport: { width: 640, height: 480 },
      permissions: ['microphone', 'camera'],
    })
    // A persistent context opens about:blank; keep it as a spare so the process stays up.
    return context
  })()
  browsers.set(key, entry)
  try {
    return await entry
  } catch (e) {
    browsers.delete(key)
    throw e
  }
}

// --- peers ---------------------------------------------------------------------------------

let baseUrl = ''
/** name → { page, audio } */
const peers = new Map()

async function openPage(name, audio) {
  const context = await browserFor(audio ?? arg('--audio'))
  const page = await context.newPage()
  page.on('console', (msg) => {
    const type = msg.type()
    if (type === 'error' || type === 'warning' || DEBUG) diag({ ev: 'console', peer: name, type, text: msg.text() })
  })
  page.on('pageerror', (err) => diag({ ev: 'console', peer: name, type: 'pageerror', text: String(err && err.stack ? err.stack : err) }))
  page.on('crash', () => out({ ev: 'error', peer: name, where: 'page', message: 'page crashed' }))
  await page.exposeBinding('kbzEmit', (_source, ev) => {
    if (!ev || typeof ev !== 'object') return
    const { type, ...rest } = ev
    if (type === 'ready') return
    out({ ev: type, ...rest, peer: name })
  })
  await page.goto(`${baseUrl}/page/kibitz-peer.html`)
  await page.waitForFunction(() => !!window.kbz, null, { timeout: 15000 })
  return page
}

const pageCall = (page, cmd, args) => page.evaluate(([c, a]) => window.kbz.command(c, a), [cmd, args])

function peerOf(cmd) {
  const p = peers.get(cmd.peer)
  if (!p) throw new Error(`unknown peer ${JSON.stringify(cmd.peer)}; open it first`)
  return p
}

const HANDLERS = {
  async open(cmd) {
    if (!cmd.peer) throw new Error('open needs "peer" (a name for this browser peer)')
    if (peers.has(cmd.peer)) throw new Error(`peer ${cmd.peer} is already open`)
    const page = await openPage(cmd.peer, cmd.audio)
    peers.set(cmd.peer, { page, audio: cmd.audio })
    const { id, cmd: _c, peer: _p, audio: _a, ...opts } = cmd
    try {
      return await pageCall(page, 'open', opts)
    } catch (e) {
      peers.delete(cmd.peer)
      await page.close().catch(() => {})
      throw e
    }
  },
  admit: (cmd) => pageCall(peerOf(cmd).page, 'admit', { who: cmd.who ?? cmd.name ?? cmd.knock }),
  deny: (cmd) => pageCall(peerOf(cmd).page, 'deny', { who: cmd.who ?? cmd.name ?? cmd.knock }),
  chat: (cmd) => pageCall(peerOf(cmd).page, 'chat', { text: cmd.text, to: cmd.to }),
  grant: (cmd) =>
    pageCall(peerOf(cmd).page, 'grant', { target: cmd.voiceId ?? cmd.target ?? cmd.name, grant: cmd.grant ?? null }),
  lobby: (cmd) => pageCall(peerOf(cmd).page, 'lobby', { on: cmd.on }),
  lock: (cmd) => pageCall(peerOf(cmd).page, 'lock', { on: cmd.on }),
  kick: (cmd) => pageCall(peerOf(cmd).page, 'kick', { target: cmd.voiceId ?? cmd.target ?? cmd.name }),
  reset: (cmd) => pageCall(peerOf(cmd).page, 'reset', {}),
  /** Fault injection: presence links stay open but carry nothing (`on`, default true). */
  silence: (cmd) => pageCall(peerOf(cmd).page, 'silence', { on: cmd.on }),
  state: (cmd) => pageCall(peerOf(cmd).page, 'state', {}),
  /** Media stats of a peer opened with `media: "media.js"` (per-peer bytes, audio energy). */
  stats: (cmd) => pageCall(peerOf(cmd).page, 'stats', {}),
  leave: (cmd) => pageCall(peerOf(cmd).page, 'leave', {}),
  /** Close the tab abruptly (no bye/leave): what a crashed browser looks like. */
  async close(cmd) {
    const p = peerOf(cmd)
    peers.delete(cmd.peer)
    await p.page.close()
    return { closed: true }
  },
  /** Escape hatch: evaluate `expr` (an async function body; `kbz` and `arg` in scope) in the page. */
  eval: (cmd) =>
    peerOf(cmd).page.evaluate(
      ([body, a]) => new (Object.getPrototypeOf(async () => {}).constructor)('kbz', 'arg', body)(window.kbz, a),
      [String(cmd.expr ?? cmd.js ?? ''), cmd.arg ?? null],
    ),
  peers: () => ({ peers: [...peers.keys()] }),
  ping: () => ({ pong: true }),
}

async function dispatch(line) {
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (e) {
    out({ id: null, ok: false, error: `bad JSON: ${e.message}` })
    return
  }
  const h = HANDLERS[cmd.cmd]
  if (!h) {
    out({ id: cmd.id ?? null, ok: false, error: `unknown cmd ${JSON.stringify(cmd.cmd)}` })
    return
  }
  try {
    const res = await h(cmd)
    const body = res && typeof res === 'object' && !Array.isArray(res) ? res : { value: res ?? null }
    out({ ...body, id: cmd.id ?? null, ok: true })
  } catch (e) {
    out({ id: cmd.id ?? null, ok: false, error: String(e && e.message ? e.message : e) })
  }
}

// --- lifecycle --------------------------------------------------------------------------------

let shuttingDown = false
async function shutdown(code) {
  if (shuttingDown) return
  shuttingDown = true
  const closing = [...browsers.values()].map(async (b) => {
    try {
      await (await b).close()
    } catch {
      /* already gone */
    }
  })
  await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 5000))])
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true })
  process.exit(code)
}

process.on('SIGTERM', () => void shutdown(0))
process.on('SIGINT', () => void shutdown(0))
process.on('SIGHUP', () => void shutdown(0))

async function main() {
  const server = await startServer()
  baseUrl = `http://127.0.0.1:${server.address().port}`
  // Launch the default browser now, so a missing Chromium fails at start-up.
  await browserFor(arg('--audio'))
  // Commands run concurrently; each answer carries its id.
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  rl.on('line', (line) => {
    if (line.trim()) void dispatch(line)
  })
  rl.on('close', () => void shutdown(0))
  out({ ev: 'ready', url: baseUrl, chromium: arg('--chromium') || process.env.CHROMIUM || '/usr/bin/chromium' })
}

main().catch((e) => {
  out({ ev: 'fatal', error: String(e && e.message ? e.message : e) })
  diag({ ev: 'fatal', error: String(e && e.stack ? e.stack : e) })
  void shutdown(1)
})
