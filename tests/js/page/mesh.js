// The Kibitz data mesh between voiceIds: `sig` DataConnections (+ optional `bulk`),
// glare rule, `cap`/`mh`/`bye` control, watchdogs and re-dial. Content (discriminator
// `k`) is handed to `onContent`; media control (`m-*`, `mh-dead`) to the media hooks.
// Spec: kibitz-wire.md §5.1–§5.3, §6.5 (mh).

import { BYE, CAP, mhMsg } from './wire.js'

/** Timings of the current build (wire §13). */
export const MESH_TIMING = {
  HEARTBEAT_MS: 2000,
  SIG_DEAD_MS: 8000,
  STUCK_MS: 8000,
  REDIAL_DELAY_MS: 800,
  DROP_GRACE_MS: 7000,
  BYE_CLOSE_MS: 250,
  MAX_RECOVER: 3,
}

/** JS string order decides who dials: the smaller voiceId. */
export const shouldInitiate = (selfId, peerId) => selfId < peerId

/**
 * Media hooks (all optional) — the seam where the `m-sdp`/`m-ice` media mesh plugs in:
 * - `onSigOpen(peerId, mesh)`: a `sig` link to `peerId` opened (initiator: start media).
 * - `onSignal(peerId, msg, mesh)`: a `m-sdp` / `m-ice` / `m-recreate` / `m-dial` / `mh-dead`
 *    control message arrived on `sig`.
 * - `onPeerGone(peerId)`: the peer left the mesh (bye, drop grace expired).
 * - `health(peerId)`: `{v, a, ov, oa}` kbps for the next `mh` (zeros when absent).
 * - `onTick(peerId, mesh)`: every heartbeat per open `sig` (the answerer's `m-dial` goes here).
 * - `onGrantsChanged()`: this browser's grant view changed (re-apply `hear-audio` gating).
 * `mesh.sendSig(peerId, msg)` sends a control message on `sig`.
 */
export const NO_MEDIA = Object.freeze({})

export function createMesh({ peer, selfId, emit, onContent, hooks = NO_MEDIA, bulk = true }) {
  /** peerId → { sig, bulk, dialled, wanted, lastRecv, openedAt, recover, dropTimer, redialTimer, queue } */
  const links = new Map()
  let closed = false

  const linkOf = (id) => {
    let l = links.get(id)
    if (!l) {
      l = { sig: null, bulk: null, dialled: false, wanted: false, lastRecv: 0, dialledAt: 0, recover: 0, dropTimer: null, redialTimer: null, queue: [], health: null }
      links.set(id, l)
    }
    return l
  }

  const isOpen = (c) => !!c && c.open
  const send = (c, msg) => {
    try {
      c.send(msg)
      return true
    } catch (e) {
      emit({ type: 'error', where: 'mesh.send', message: String(e) })
      return false
    }
  }

  const wire = (conn, role, initiator) => {
    const id = conn.peer
    const l = linkOf(id)
    conn.on('open', () => {
      if (l[role] !== conn) return
      l.lastRecv = Date.now()
      emit({ type: 'link', remote: id, state: 'open', label: role, initiator })
      if (role === 'sig') {
        if (bulk) send(conn, CAP)
        hooks.onSigOpen?.(id, api)
      }
      const q = l.queue
      l.queue = []
      for (const m of q) sendContent(id, m)
    })
    conn.on('data', (data) => {
      if (l[role] !== conn) return
      l.lastRecv = Date.now()
      if (data && typeof data === 'object' && !(data instanceof ArrayBuffer) && typeof data.t === 'string') {
        control(id, l, data)
        return
      }
      onContent(id, data, role)
    })
    const gone = () => {
      if (l[role] !== conn) return
      l[role] = null
      emit({ type: 'link', remote: id, state: 'closed', label: role, initiator })
      if (role === 'sig' && initiator && l.wanted && !closed) {
        clearTimeout(l.redialTimer)
        l.redialTimer = setTimeout(() => {
          if (l.wanted && !l.sig && !closed) dial(id)
        }, MESH_TIMING.REDIAL_DELAY_MS)
      }
    }
    conn.on('close', gone)
    conn.on('error', gone)
  }

  const dial = (id) => {
    const l = linkOf(id)
    const prev = l.sig
    l.sig = null // detach first: the old link's close must not look like a drop
    if (prev) {
      try {
        prev.close()
      } catch {
        /* ignore */
      }
    }
    const conn = peer.connect(id, { reliable: true })
    l.sig = conn
    l.dialled = true
    l.dialledAt = Date.now()
    wire(conn, 'sig', true)
  }

  const dialBulk = (id) => {
    const l = linkOf(id)
    if (isOpen(l.bulk)) return
    const conn = peer.connect(id, { reliable: true, label: 'bulk' })
    l.bulk = conn
    wire(conn, 'bulk', true)
  }

  const control = (id, l, msg) => {
    switch (msg.t) {
      case 'cap':
        // The pair's initiator answers a bulk-capable peer with a second link.
        if (bulk && msg.bulk && shouldInitiate(selfId, id)) dialBulk(id)
        break
      case 'mh':
        l.health = { v: msg.v, a: msg.a, ov: msg.ov, oa: msg.oa }
        break
      case 'bye':
        emit({ type: 'bye', remote: id })
        drop(id)
        break
      case 'm-sdp':
      case 'm-ice':
      case 'm-recreate':
      case 'm-dial':
      case 'mh-dead':
        hooks.onSignal?.(id, msg, api)
        break
      default:
        break // unknown control: ignored (additive protocol)
    }
  }

  const drop = (id) => {
    const l = links.get(id)
    if (!l) return
    clearTimeout(l.dropTimer)
    clearTimeout(l.redialTimer)
    l.wanted = false
    links.delete(id)
    for (const c of [l.sig, l.bulk]) {
      try {
        c?.close()
      } catch {
        /* ignore */
      }
    }
    hooks.onPeerGone?.(id)
  }

  peer.on('connection', (conn) => {
    const role = conn.label === 'bulk' ? 'bulk' : 'sig'
    const l = linkOf(conn.peer)
    const prev = l[role]
    l[role] = conn
    if (role === 'sig') l.dialled = false
    if (prev && prev !== conn) {
      try {
        prev.close()
      } catch {
        /* ignore */
      }
    }
    wire(conn, role, false)
  })

  /** Follow a roster: dial members we initiate to; drop the missing after a grace. */
  const plan = (members) => {
    if (closed) return
    const ids = new Set(members.map((m) => m.id).filter((id) => id && id !== selfId))
    for (const id of ids) {
      const l = linkOf(id)
      l.wanted = true
      clearTimeout(l.dropTimer)
      l.dropTimer = null
      if (shouldInitiate(selfId, id) && !l.sig) dial(id)
    }
    for (const [id, l] of links) {
      if (ids.has(id) || l.dropTimer) continue
      l.wanted = false
      l.dropTimer = setTimeout(() => {
        const cur = links.get(id)
        if (cur && !cur.wanted) drop(id)
      }, MESH_TIMING.DROP_GRACE_MS)
    }
  }

  const heartbeat = setInterval(() => {
    const now = Date.now()
    for (const [id, l] of links) {
      if (isOpen(l.sig)) {
        const h = hooks.health?.(id) ?? { v: 0, a: 0, ov: 0, oa: 0 }
        send(l.sig, mhMsg(h))
        hooks.onTick?.(id, api)
        // Dead-but-open: the dialler re-dials, bounded.
        if (l.dialled && now - l.lastRecv > MESH_TIMING.SIG_DEAD_MS && l.recover < MESH_TIMING.MAX_RECOVER) {
          l.recover += 1
          emit({ type: 'link', remote: id, state: 'dead', label: 'sig', initiator: true })
          dial(id)
        }
      } else if (l.sig && l.dialled && l.wanted && now - l.dialledAt > MESH_TIMING.STUCK_MS && l.recover < MESH_TIMING.MAX_RECOVER) {
        l.recover += 1
        emit({ type: 'link', remote: id, state: 'stuck', label: 'sig', initiator: true })
        dial(id)
      }
    }
  }, MESH_TIMING.HEARTBEAT_MS)

  /** Content goes on `bulk` when open, else `sig`; buffered until a link opens. */
  const sendContent = (id, msg) => {
    const l = links.get(id)
    if (!l) return false
    const c = isOpen(l.bulk) ? l.bulk : isOpen(l.sig) ? l.sig : null
    if (!c) {
      l.queue.push(msg)
      return true
    }
    return send(c, msg)
  }

  const api = {
    plan,
    sendContent,
    /** Control message on `sig` (media signalling). */
    sendSig: (id, msg) => {
      const l = links.get(id)
      return !!l && isOpen(l.sig) && send(l.sig, msg)
    },
    /** Raw broadcast to every open link (caps: bypasses content gates). */
    broadcastRaw: (msg) => {
      for (const id of links.keys()) sendContent(id, msg)
    },
    peers: () => [...links.keys()],
    state: () =>
      [...links].map(([id, l]) => ({
        peer: id,
        sig: isOpen(l.sig),
        bulk: isOpen(l.bulk),
        dialled: l.dialled,
        wanted: l.wanted,
        health: l.health,
      })),
    isOpen: (id) => isOpen(links.get(id)?.sig),
    /** The PeerJS DataConnection for `id` (`'sig'` or `'bulk'`), for diagnostics and media. */
    conn: (id, role = 'sig') => links.get(id)?.[role] ?? null,
    /** Graceful leave: `bye` on every open sig, close 250 ms later. */
    bye: () =>
      new Promise((resolve) => {
        closed = true
        clearInterval(heartbeat)
        for (const l of links.values()) if (isOpen(l.sig)) send(l.sig, BYE)
        setTimeout(() => {
          for (const id of [...links.keys()]) drop(id)
          resolve()
        }, MESH_TIMING.BYE_CLOSE_MS)
      }),
  }
  return api
}
