// A Kibitz participant for tests: presence (room.js), data mesh (mesh.js), content with
// the sender-side PERCEIVE and receiver-side ACT gates, `caps` distribution/acceptance,
// and an event stream for the driver (`window.kbzEmit`, installed by harness.mjs).
// Spec: kibitz-wire.md §1–§5, §7, §11, §15; kibitz-agents.md §0, §1.5–1.7, §6.

import { joinRoom, keepAlive, makePeer, normalizeRoom, setPresenceMuted } from './room.js'
import { createMesh } from './mesh.js'
import { capsMsg, chatMsg } from './wire.js'
import {
  canAct,
  canPerceive,
  grantDetail,
  grantOf as resolveGrant,
  sanitizeGrant,
} from './grants.js'

/** Engine block announced under the reserved meta key (no xfer tags: we take legacy chat). */
export const ENGINE = { v: '0.1.0', b: 'test', p: 1, f: ['chat.v1', 'caps.v1'] }
const CHAT_MAX_LEN = 500
const AUDIT_MAX = 80
const REANNOUNCE_MS = 3000
const REANNOUNCE_EARLY_MS = [600, 1800]
const OPEN_TIMEOUT_MS = 20000
const CONTENT_KINDS = new Set([
  'chat', 'img', 'xbegin', 'xaccept', 'xdecline', 'xresume', 'xack', 'xchunk', 'xend', 'xcancel',
  'app', 'pay', 'ink', 'idtoken', 'caps', 'schema', 'ledger', 'chatledger', 'ctl', 'widget', 'wevt',
])

/** Everything observable, in order; also pushed to the driver. */
const log = []
const emit = (ev) => {
  const out = { ...ev, at: Date.now() }
  log.push(out)
  if (log.length > 2000) log.shift()
  try {
    window.kbzEmit?.(out)
  } catch {
    /* driver gone */
  }
}

let mediaHooks = {}
let session = null

/** Install media hooks (see mesh.js `NO_MEDIA` for the contract) before `open`. */
export function setMediaHooks(hooks) {
  mediaHooks = hooks || {}
}

const waitOpen = (peer, what) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: broker did not open within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS)
    peer.once('open', (id) => {
      clearTimeout(timer)
      resolve(id)
    })
    peer.once('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`${what}: ${e?.type ?? 'error'}: ${e?.message ?? ''}`))
    })
  })

/**
 * Join `o.room` on `o.broker`. `o.role`: `'host'` (must win the room id) or
 * `'participant'` (claim-or-join like any Kibitz tab). Options: `name`, `avatar`, `cam`,
 * `meta` (merged under `~kbz`), `lobby` (lobby on start), `cryptoHost` (the room commits
 * a host key: caps are trusted from `roster.host`; a host-role authority is that host),
 * `bulk` (advertise/accept the bulk link, default true), `token`.
 */
async function open(o) {
  if (session) throw new Error('already open; leave first')
  if (!o || !o.room || !o.broker) throw new Error('open needs room and broker')
  const role = o.role === 'host' ? 'host' : 'participant'
  const cryptoHost = !!o.cryptoHost
  const name = o.name || 'Guest'
  const avatar = o.avatar ?? ''
  const cam = !!o.cam
  const meta = { ...(o.meta && typeof o.meta === 'object' ? o.meta : {}), '~kbz': ENGINE }
  window.kbzLoopbackOnly = o.loopbackOnly !== false

  // The media peer first: our voiceId must be live before we announce it.
  const media = makePeer(undefined, o.broker)
  const voiceId = await waitOpen(media, 'media peer')
  const stopMediaKA = keepAlive(media)
  media.on('error', (e) => emit({ type: 'error', where: 'media-peer', kind: e?.type, message: e?.message }))

  const s = {
    voiceId,
    presenceId: '',
    authority: false,
    members: [],
    hostId: '',
    lobby: false,
    locked: false,
    overrides: new Map(),
    audit: [],
    seenMids: new Set(),
    dupes: 0,
    ownLines: [],
    heldLines: [],
    recvSeq: 0,
    seq: 0,
    knocks: [],
    lastRosterKey: '',
    lastCapsKey: new Map(),
    timers: [],
    cryptoHost,
  }
  session = s
  const view = () => ({ selfId: voiceId, overrides: s.overrides, members: s.members })
  const grantOf = (id) => resolveGrant(id, view())
  const memberOf = (id) => s.members.find((m) => m.id === id)
  const isAgent = (id) => memberOf(id)?.meta?.role === 'agent'
  const audit = (id, kind, detail) => {
    s.audit.push({ ts: Date.now(), id, kind, detail })
    if (s.audit.length > AUDIT_MAX) s.audit.shift()
  }

  const broadcastCaps = () => {
    if (!s.authority) return // only the authority distributes
    s.mesh.broadcastRaw(capsMsg(Object.fromEntries(s.overrides)))
  }

  const onCaps = (from, msg) => {
    const reasons = []
    if (!cryptoHost) reasons.push('room has no cryptographic host')
    if (!s.hostId) reasons.push('roster.host is empty')
    else if (from !== s.hostId) reasons.push('not from roster.host')
    if (s.authority) reasons.push('we are the authority')
    const accepted = reasons.length === 0
    const grants = msg.grants && typeof msg.grants === 'object' ? msg.grants : {}
    if (accepted) {
      s.overrides = new Map(Object.entries(grants).map(([id, g]) => [id, sanitizeGrant(g)]))
      s.hooks.onGrantsChanged?.()
    }
    const key = JSON.stringify([accepted, grants])
    if (s.lastCapsKey.get(from) !== key) {
      s.lastCapsKey.set(from, key)
      emit({ type: 'caps', from, grants, accepted, reason: reasons.join('; ') || undefined })
    }
  }

  const onContent = (from, data, label) => {
    if (!data || typeof data !== 'object' || data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
      emit({ type: 'content', from, kind: 'binary', dropped: 'not advertised' })
      return
    }
    const k = data.k
    if (!CONTENT_KINDS.has(k)) return // unknown kinds are dropped silently (frozen rule)
    if (k === 'caps') return onCaps(from, data)
    // ACT gate: every non-idtoken kind from a sender without send-chat is dropped.
    if (k !== 'idtoken' && !canAct(grantOf(from), 'send-chat')) {
      const agent = isAgent(from)
      if (agent) audit(from, 'blocked', k)
      emit({ type: 'blocked', from, kind: k, agent, name: memberOf(from)?.name })
      return
    }
    if (k === 'chat') {
      if (typeof data.text !== 'string') return
      const text = data.text.slice(0, CHAT_MAX_LEN).trim()
      if (!text) return
      const name = memberOf(from)?.name ?? 'Guest'
      if (data.dm) {
        // Private and never replayed: shown as it comes.
        emit({ type: 'chat', from, name, text, mid: data.mid, dm: true, ts: data.ts, label })
        return
      }
      // Public lines are merged by mid. A live line's mid must be sender-scoped; a replayed
      // line (carrying `from`/`name`) keeps its author's mid and is shown under that author.
      const replay = typeof data.from === 'string' && data.from !== ''
      const ts = typeof data.ts === 'number' ? data.ts : Date.now()
      let mid = typeof data.mid === 'string' ? data.mid : ''
      if (!mid || (!replay && !mid.startsWith(`${from}#`))) mid = `${from}#r${++s.recvSeq}`
      if (s.seenMids.has(mid)) {
        s.dupes += 1
        return
      }
      s.seenMids.add(mid)
      const author = replay ? data.from : from
      const authorName = replay
        ? memberOf(author)?.name ?? (typeof data.name === 'string' ? data.name : 'Guest')
        : name
      s.heldLines.push({ k: 'chat', text, mid, ts, from: author, name: authorName })
      emit({ type: 'chat', from: author, name: authorName, text, mid, dm: false, ts, label, via: replay ? from : undefined })
      return
    }
    if (k === 'app') {
      emit({ type: 'app', from, data: data.data })
      return
    }
    emit({ type: 'content', from, kind: k })
  }

  // Media plugs in here: `o.media` names a page module (e.g. 'media.js') whose
  // `createMedia(ctx)` returns the hooks documented in mesh.js (NO_MEDIA).
  let hooks = mediaHooks
  if (o.media) {
    if (!/^[a-z0-9-]+\.js$/.test(o.media)) throw new Error(`bad media module name ${o.media}`)
    const mod = await import(`./${o.media}`)
    hooks = mod.createMedia({ voiceId, emit, grantOf, canPerceive, session: s, options: o.mediaOptions ?? {} })
  }
  s.hooks = hooks
  s.mesh = createMesh({ peer: media, selfId: voiceId, emit, onContent, hooks, bulk: o.bulk !== false })

  // Late-joiner sync: on a membership change, re-broadcast the public lines we hold —
  // our own as sent, others' with their author's `from`/`name` (receivers dedupe by mid).
  const rebroadcastLines = () => {
    if (o.replayChat === false) return
    const lines = [...s.ownLines, ...s.heldLines]
    for (const m of s.members) {
      if (m.id === voiceId || !canPerceive(grantOf(m.id), 'read-chat')) continue
      for (const line of lines) s.mesh.sendContent(m.id, line)
    }
  }

  let joined = false
  const announce = () => s.room.setSelf(true, cam, name, avatar, voiceId, meta)

  let roleResolve
  const roleKnown = new Promise((resolve) => (roleResolve = resolve))
  const cb = {
    role: (authority, presenceId) => {
      s.authority = authority
      s.presenceId = presenceId
      emit({ type: authority ? 'authority' : 'participant', presenceId, room: normalizeRoom(o.room) })
      roleResolve({ authority, presenceId })
    },
    roster: ({ members, host, lobby, locked }) => {
      const prevIds = s.members.map((m) => m.id).sort().join(',')
      s.members = members
      s.hostId = host || ''
      s.lobby = !!lobby
      s.locked = !!locked
      // Self-heal: a roster without us means our announce was lost (or a new authority).
      if (joined && !s.authority && !members.some((m) => m.id === voiceId)) announce()
      s.mesh.plan(members)
      const ids = members.map((m) => m.id).sort().join(',')
      if (ids !== prevIds) {
        rebroadcastLines()
        s.hooks.onGrantsChanged?.()
      }
      if (s.overrides.size > 0) broadcastCaps()
      const key = JSON.stringify([members, s.hostId, s.lobby, s.locked])
      if (key !== s.lastRosterKey) {
        s.lastRosterKey = key
        emit({ type: 'roster', members, host: s.hostId, lobby: s.lobby, locked: s.locked })
      }
    },
    lobby: (status) => emit({ type: 'lobby', status }),
    knocks: (list) => {
      for (const k of list) {
        const prev = s.knocks.find((x) => x.id === k.id)
        if (!prev || prev.name !== k.name || prev.avatar !== k.avatar) emit({ type: 'knock', ...k })
      }
      s.knocks = list
      emit({ type: 'knocks', list })
    },
    kicked: () => {
      emit({ type: 'kicked' })
      void leave()
    },
    reset: () => emit({ type: 'reset' }),
    gone: (reason) => emit({ type: 'authority-lost', reason }),
  }
  s.room = joinRoom(o.room, {
    broker: o.broker,
    token: o.token,
    lobbyOnStart: !!o.lobby,
    claimHost: cryptoHost && role === 'host',
    knockName: name,
  }, cb)

  const first = await Promise.race([
    roleKnown,
    new Promise((_, reject) => setTimeout(() => reject(new Error('room: no role within 20 s')), OPEN_TIMEOUT_MS)),
  ]).catch((e) => {
    void leave()
    throw e
  })
  if (role === 'host' && !first.authority) {
    await leave()
    throw new Error(`room ${normalizeRoom(o.room)} already has an authority; host role must claim it`)
  }
  // Join the call: announce now, at 600/1800 ms, then every 3 s.
  joined = true
  announce()
  for (const ms of REANNOUNCE_EARLY_MS) s.timers.push(setTimeout(announce, ms))
  s.timers.push(setInterval(announce, REANNOUNCE_MS))
  s.stopMediaKA = stopMediaKA
  s.media = media
  emit({ type: 'opened', presenceId: s.presenceId, voiceId, authority: s.authority, token: s.room.token })

  s.api = {
    grantOf,
    memberOf,
    broadcastCaps,
    audit,
    send: (id, msg) => s.mesh.sendContent(id, msg),
  }
  return { voiceId, presenceId: s.presenceId, authority: s.authority, token: s.room.token }
}

const need = () => {
  if (!session) throw new Error('not open')
  return session
}

/** A roster member by voiceId or display name. */
const resolveMember = (s, who) => {
  const m = s.members.find((x) => x.id === who) || s.members.find((x) => x.name === who)
  if (!m) throw new Error(`no roster member ${JSON.stringify(who)}`)
  return m
}

const authorityOps = (s) => {
  const ops = s.room.ops()
  if (!s.authority || !ops.admit) throw new Error('not the room authority')
  return ops
}

function admit({ who }) {
  const s = need()
  const ops = authorityOps(s)
  const k = ops.knocks().find((x) => x.id === who) || ops.knocks().find((x) => x.name === who)
  if (!k) throw new Error(`no knock from ${JSON.stringify(who)}; waiting: ${JSON.stringify(ops.knocks())}`)
  ops.admit(k.id)
  return { id: k.id, name: k.name }
}

function deny({ who }) {
  const s = need()
  const ops = authorityOps(s)
  const k = ops.knocks().find((x) => x.id === who) || ops.knocks().find((x) => x.name === who)
  if (!k) throw new Error(`no knock from ${JSON.stringify(who)}`)
  ops.deny(k.id)
  return { id: k.id, name: k.name }
}

/** Send a chat line: broadcast to peers this browser lets `read-chat`, or directed (`to`)
 *  if the target may `receive-directed` and `read-chat`. */
function chat({ text, to }) {
  const s = need()
  if (typeof text !== 'string' || !text.trim()) throw new Error('chat needs text')
  const body = text.slice(0, CHAT_MAX_LEN)
  const mid = `${s.voiceId}#${++s.seq}`
  const ts = Date.now()
  const sent = []
  const withheld = []
  if (to) {
    const m = resolveMember(s, to)
    const g = s.api.grantOf(m.id)
    if (canPerceive(g, 'receive-directed') && canPerceive(g, 'read-chat')) {
      s.mesh.sendContent(m.id, chatMsg({ text: body, dm: true, mid, ts }))
      sent.push(m.id)
    } else withheld.push(m.id)
    return { mid, sent, withheld }
  }
  const line = chatMsg({ text: body, mid, ts })
  s.ownLines.push(line)
  for (const m of s.members) {
    if (m.id === s.voiceId) continue
    if (canPerceive(s.api.grantOf(m.id), 'read-chat')) {
      s.mesh.sendContent(m.id, line)
      sent.push(m.id)
    } else withheld.push(m.id)
  }
  return { mid, sent, withheld }
}

/** Set (or with `grant: null` clear) this browser's override for a member; the authority
 *  then distributes its whole map as `caps`. */
function grant({ target, grant: g }) {
  const s = need()
  const id = s.members.some((m) => m.id === target) ? target : resolveMember(s, target).id
  const clean = g === null || g === undefined ? null : sanitizeGrant(g)
  if (clean) s.overrides.set(id, clean)
  else s.overrides.delete(id)
  s.api.audit(id, 'granted', grantDetail(clean))
  emit({ type: 'granted', id, grant: clean })
  s.api.broadcastCaps()
  s.hooks.onGrantsChanged?.()
  return { id, grant: clean, distributed: s.authority }
}

function lobby({ on }) {
  authorityOps(need()).setLobby(on !== false)
  return { lobby: on !== false }
}

function lock({ on }) {
  authorityOps(need()).setLocked(on !== false)
  return { locked: on !== false }
}

function kick({ target }) {
  const s = need()
  const ops = authorityOps(s)
  const m = resolveMember(s, target)
  return { id: m.id, removed: ops.remove(m.id) }
}

function reset() {
  authorityOps(need()).reset()
  return {}
}

/** Graceful leave: `bye` on the mesh, `voice on:false` + `leave` on presence, close peers. */
async function leave() {
  const s = session
  if (!s) return { left: false }
  session = null
  for (const t of s.timers) {
    clearTimeout(t)
    clearInterval(t)
  }
  await s.mesh?.bye()
  s.hooks?.close?.() // media: close every pc
  try {
    s.room.setSelf(false, false, '', '', s.voiceId, undefined)
    s.room.close()
  } catch (e) {
    emit({ type: 'error', where: 'leave', message: String(e) })
  }
  await new Promise((r) => setTimeout(r, 150))
  try {
    s.stopMediaKA?.()
    s.media?.destroy()
  } catch {
    /* ignore */
  }
  emit({ type: 'left' })
  return { left: true }
}

function state() {
  const s = session
  if (!s) return { open: false }
  return {
    open: true,
    voiceId: s.voiceId,
    presenceId: s.presenceId,
    authority: s.authority,
    members: s.members,
    host: s.hostId,
    lobby: s.lobby,
    locked: s.locked,
    overrides: Object.fromEntries(s.overrides),
    grants: Object.fromEntries(s.members.map((m) => [m.id, s.api?.grantOf(m.id)])),
    audit: s.audit,
    links: s.mesh.state(),
    knocks: s.knocks,
    chatSeen: s.seenMids.size,
    chatDupes: s.dupes,
  }
}

/** Fault injection: keep the presence links open but silent (`on`), or resume. */
function silence({ on }) {
  setPresenceMuted(on !== false)
  emit({ type: 'silenced', on: on !== false })
  return { silenced: on !== false }
}

/** Media stats (media.js `stats`): per-peer pc state, lanes, bytes and audio energy. */
async function stats() {
  const s = need()
  if (!s.hooks?.stats) throw new Error('no media module loaded (open with media: "media.js")')
  return await s.hooks.stats()
}

const COMMANDS = { open, admit, deny, chat, grant, lobby, lock, kick, reset, leave, state, silence, stats }

/** Driver entry point: `await kbz.command(name, args)`. */
async function command(name, args) {
  const f = COMMANDS[name]
  if (!f) throw new Error(`unknown page command ${name}`)
  return await f(args || {})
}

window.kbz = { command, events: () => log, setMediaHooks, session: () => session, ENGINE }
window.addEventListener('error', (e) => emit({ type: 'error', where: 'window', message: String(e.message) }))
window.addEventListener('unhandledrejection', (e) => emit({ type: 'error', where: 'promise', message: String(e.reason) }))
emit({ type: 'ready' })
