// The Kibitz presence star: claim-or-join, the authority (roster, lobby, lock, kick,
// ping/reap) and the participant (knock, voice, ping, authority-silence migration).
// Spec: kibitz-wire.md §2.3, §2.4, §4; kibitz-agents.md §0.3, §6.1.

import { KICK, LEAVE, PING, RESET, knockMsg, lobbyMsg, memberOf, rosterMsg as rosterWire, voiceMsg } from './wire.js'

const PREFIX = 'kbz-v1-'

/** Timings of the current build (wire §13). */
export const TIMING = {
  BROKER_PING_MS: 5000,
  CLAIM_TIMEOUT_MS: 8000,
  CLAIM_RETRY_MS: 3000,
  OPEN_TIMEOUT_MS: 15000,
  RETRY_BASE_MS: 2000,
  RETRY_STEP_MS: 1500,
  MAX_ATTEMPTS: 4,
  PING_MS: 2500,
  REAP_MS: 12000,
  FREEZE_GAP_MS: 6000,
  AUTHORITY_SILENCE_MS: 12000,
  RECLAIM_DELAY_MS: 1500,
}

const SELF_KEY = '__self__'

// Fault injection for tests: while muted, this page's presence links stay open but carry
// nothing in either direction (a frozen authority or participant).
let presenceMuted = false
/** Mute (or unmute) every presence link of this page. */
export const setPresenceMuted = (on) => {
  presenceMuted = !!on
}

/** Lowercase, runs of non-[a-z0-9] → '-', strip '-' at both ends, cut to 40. */
export function normalizeRoom(room) {
  return String(room ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
}

/** The room authority's PeerJS id. */
export const peerIdFor = (room) => PREFIX + normalizeRoom(room)

/** A PeerJS peer on the test broker: default (BinaryPack) serialization, loopback ICE only. */
export function makePeer(id, broker) {
  const Peer = window.peerjs.Peer
  const opts = {
    host: broker.host,
    port: broker.port,
    path: broker.path ?? '/',
    key: broker.key ?? 'peerjs',
    secure: !!broker.secure,
    pingInterval: TIMING.BROKER_PING_MS,
    config: { iceServers: [] },
    debug: 1,
  }
  return id ? new Peer(id, opts) : new Peer(opts)
}

/** Re-register with the broker (same id + token) after a WS drop. Returns a stopper that
 *  must run before `peer.destroy()`, or the reconnect races the teardown. */
export function keepAlive(peer) {
  let stopped = false
  const reconnect = () => {
    if (stopped || peer.destroyed || !peer.disconnected) return
    try {
      peer.reconnect()
    } catch {
      /* already reconnecting or destroyed */
    }
  }
  peer.on('disconnected', reconnect)
  return () => {
    stopped = true
    peer.off('disconnected', reconnect)
  }
}

const destroyPeer = (peer, stop) => {
  try {
    stop?.()
    peer.destroy()
  } catch {
    /* ignore */
  }
}

// --- transports --------------------------------------------------------------

/** Try to own `kbz-v1-<room>`: `{transport}` when we won, `'taken'`, or `'error'`. */
async function claimRoom(room, broker) {
  const peer = makePeer(peerIdFor(room), broker)
  const outcome = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve('error'), TIMING.CLAIM_TIMEOUT_MS)
    peer.once('open', () => {
      clearTimeout(timer)
      resolve('ok')
    })
    peer.once('error', (e) => {
      clearTimeout(timer)
      resolve(e && e.type === 'unavailable-id' ? 'taken' : 'error')
    })
  })
  if (outcome !== 'ok') {
    destroyPeer(peer)
    return outcome
  }
  const stop = keepAlive(peer)
  const conns = new Map()
  const h = { connect: null, message: null, disconnect: null, gone: null }
  peer.on('connection', (conn) => {
    const prev = conns.get(conn.peer)
    conns.set(conn.peer, conn)
    if (prev && prev !== conn) prev.close()
    conn.on('open', () => h.connect?.(conn.peer))
    conn.on('data', (data) => {
      if (conns.get(conn.peer) === conn && !presenceMuted) h.message?.(conn.peer, data)
    })
    const drop = () => {
      if (conns.get(conn.peer) === conn) {
        conns.delete(conn.peer)
        h.disconnect?.(conn.peer)
      }
    }
    conn.on('close', drop)
    conn.on('error', drop)
  })
  peer.on('error', (e) => {
    if (e && e.type === 'unavailable-id') h.gone?.('authority id re-claimed')
  })
  return {
    transport: {
      presenceId: peer.id,
      onConnect: (f) => (h.connect = f),
      onMessage: (f) => (h.message = f),
      onDisconnect: (f) => (h.disconnect = f),
      onGone: (f) => (h.gone = f),
      send: (id, msg) => {
        const c = conns.get(id)
        if (c && c.open && !presenceMuted) c.send(msg)
      },
      broadcast: (msg) => conns.forEach((c) => c.open && !presenceMuted && c.send(msg)),
      close: () => {
        stop()
        conns.forEach((c) => c.close())
        destroyPeer(peer)
      },
    },
  }
}

/** Dial the authority from a fresh server-id peer; retry, ping, watch for silence. */
function connectToRoom(room, broker) {
  const peer = makePeer(undefined, broker)
  const stop = keepAlive(peer)
  const h = { open: null, message: null, gone: null, presence: null }
  let conn = null
  let closedByUs = false
  let gone = false
  let attempts = 0
  let lastSeen = 0
  let lastTick = 0
  let retryTimer = null
  let openTimer = null

  const clearRetry = () => {
    if (retryTimer) clearTimeout(retryTimer)
    retryTimer = null
  }
  const clearOpen = () => {
    if (openTimer) clearTimeout(openTimer)
    openTimer = null
  }
  const giveUp = (reason) => {
    if (closedByUs || gone) return
    gone = true
    clearRetry()
    clearOpen()
    clearInterval(heartbeat)
    h.gone?.(reason)
  }
  const heartbeat = setInterval(() => {
    if (closedByUs || gone) return
    const now = Date.now()
    const gap = now - lastTick
    lastTick = now
    if (!conn || !conn.open || presenceMuted) return
    try {
      conn.send(PING)
    } catch {
      /* ignore */
    }
    if (gap > TIMING.FREEZE_GAP_MS) {
      lastSeen = now
      return
    }
    if (lastSeen && now - lastSeen > TIMING.AUTHORITY_SILENCE_MS) giveUp('authority silent')
  }, TIMING.PING_MS)

  const scheduleReconnect = () => {
    clearOpen()
    if (closedByUs || gone || retryTimer) return
    if (attempts >= TIMING.MAX_ATTEMPTS) {
      giveUp('authority unreachable')
      return
    }
    retryTimer = setTimeout(() => {
      retryTimer = null
      attempts += 1
      openConn()
    }, TIMING.RETRY_BASE_MS + attempts * TIMING.RETRY_STEP_MS)
  }
  const openConn = () => {
    if (closedByUs || gone) return
    clearOpen()
    const prev = conn
    conn = null
    if (prev) prev.close()
    const c = peer.connect(peerIdFor(room), { reliable: true })
    conn = c
    let extended = false
    const onOpenTimeout = () => {
      openTimer = null
      if (conn !== c) return
      const pc = c.peerConnection
      if (!extended && pc && pc.iceConnectionState === 'checking') {
        extended = true
        openTimer = setTimeout(onOpenTimeout, TIMING.OPEN_TIMEOUT_MS)
        return
      }
      scheduleReconnect()
    }
    openTimer = setTimeout(onOpenTimeout, TIMING.OPEN_TIMEOUT_MS)
    c.on('open', () => {
      if (conn !== c) return
      clearOpen()
      clearRetry()
      attempts = 0
      lastSeen = Date.now()
      lastTick = Date.now()
      h.open?.()
    })
    c.on('data', (data) => {
      if (conn !== c || presenceMuted) return
      lastSeen = Date.now()
      if (data && data.t === 'ping') return
      h.message?.(data)
    })
    const dead = () => {
      if (conn === c) scheduleReconnect()
    }
    c.on('close', dead)
    c.on('error', dead)
  }
  peer.on('open', (id) => {
    h.presence?.(id)
    openConn()
  })
  peer.on('error', (e) => {
    if (closedByUs || gone) return
    if (e && e.type === 'peer-unavailable') giveUp('authority gone')
    else scheduleReconnect()
  })
  return {
    onPresenceId: (f) => (h.presence = f),
    onOpen: (f) => (h.open = f),
    onMessage: (f) => (h.message = f),
    onGone: (f) => (h.gone = f),
    send: (msg) => {
      if (conn && conn.open && !presenceMuted) conn.send(msg)
    },
    close: () => {
      closedByUs = true
      clearRetry()
      clearOpen()
      clearInterval(heartbeat)
      try {
        if (conn && conn.open) conn.send(LEAVE)
      } catch {
        /* ignore */
      }
      stop()
      // Let the leave flush before the channel goes.
      setTimeout(() => {
        conn?.close()
        destroyPeer(peer)
      }, 100)
    },
  }
}

// --- the room ------------------------------------------------------------------

/**
 * Claim-or-join `room`. `cb` receives everything observable:
 * `role(authority, presenceId)`, `roster({members, host, lobby, locked})`,
 * `lobby(status)`, `knocks(list)`, `kicked()`, `reset()`, `gone(reason)`.
 *
 * Options: `broker`, `token`, `lobbyOnStart`, `cryptoHost` (the room commits a host key, so
 * `caps` may be trusted), `claimHost` (when this peer is the authority it is also the
 * verified key host: `roster.host` = its voiceId).
 */
export function joinRoom(room, opts, cb) {
  const token = opts.token || Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2)
  let authority = false
  let closed = false
  let lastRoster = []
  let lastSelf = null
  let sendSelf = null
  let sendKnock = null
  let teardownRole = null
  let lastLobbyOn = !!opts.lobbyOnStart
  let lastLockedOn = false
  let lastHostId = ''
  let ops = {}

  const deliverRoster = (members, extra) => {
    lastRoster = members
    cb.roster?.({ members, ...extra })
  }

  const becomeAuthority = (transport) => {
    authority = true
    sendKnock = null
    cb.role?.(true, transport.presenceId)
    const members = new Map()
    const lastSeenAt = new Map()
    let lastTick = Date.now()
    let lobbyOn = lastLobbyOn
    let locked = lastLockedOn
    const admitted = new Set()
    const pending = new Map()
    const admittedTokens = new Set()
    const kickedTokens = new Set()
    const kickedVoiceIds = new Set()
    const kickedConns = new Set()
    let verifiedHostId = ''
    let verifiedHostConn = ''
    const grandfathered = new Set(lastRoster.map((m) => m.id))
    const seenTokens = new Set()
    const seenVoiceIds = new Set(lastRoster.map((m) => m.id))

    const emitKnocks = () => cb.knocks?.([...pending].map(([id, p]) => ({ id, name: p.name, avatar: p.avatar })))
    const roster = () => [...members.values()].map((s) => s.member)
    const rosterMsg = () => {
      lastHostId = verifiedHostId
      return rosterWire({ members: roster(), lobby: lobbyOn, host: verifiedHostId, locked })
    }
    const fanout = (msg) => {
      if (!lobbyOn) return transport.broadcast(msg)
      for (const id of admitted) transport.send(id, msg)
    }
    const admitNow = (id, info) => {
      const wasPending = pending.delete(id)
      admitted.add(id)
      if (info.token) admittedTokens.add(info.token)
      transport.send(id, lobbyMsg('admitted'))
      transport.send(id, rosterMsg())
      if (wasPending) emitKnocks()
    }
    const gateEntry = (id, info) => {
      const silent =
        (info.token && admittedTokens.has(info.token)) || (info.voiceId && grandfathered.has(info.voiceId))
      if (silent) return admitNow(id, info)
      const prev = pending.get(id)
      pending.set(id, info)
      if (!prev) transport.send(id, lobbyMsg('waiting'))
      if (!prev || prev.name !== info.name || prev.avatar !== info.avatar) emitKnocks()
    }
    const broadcast = () => {
      const msg = rosterMsg()
      fanout(msg)
      deliverRoster(msg.members, { host: msg.host, lobby: msg.lobby, locked: msg.locked })
    }
    const isKicked = (who) =>
      (who.token && kickedTokens.has(who.token)) || (who.voiceId && kickedVoiceIds.has(who.voiceId))
    const lockedOut = (who) =>
      !((who.token && seenTokens.has(who.token)) || (who.voiceId && seenVoiceIds.has(who.voiceId)))

    transport.onConnect((id) => {
      lastSeenAt.set(id, Date.now())
      if (!lobbyOn) transport.send(id, rosterMsg())
    })
    const handle = (id, msg) => {
      if (!msg || typeof msg !== 'object' || typeof msg.t !== 'string') return
      lastSeenAt.set(id, Date.now())
      const ident = msg.t === 'voice' || msg.t === 'knock' ? { token: msg.token, voiceId: msg.voiceId } : undefined
      if (kickedConns.has(id) || (ident && isKicked(ident))) {
        kickedConns.add(id)
        transport.send(id, KICK)
        return
      }
      if (msg.t === 'mod') return // no committed host key in the test page: every mod is dropped
      if (locked && (msg.t === 'knock' || (msg.t === 'voice' && msg.on)) && lockedOut(ident)) {
        transport.send(id, lobbyMsg('locked'))
        return
      }
      const info = () => ({
        name: msg.name || 'Guest',
        avatar: msg.avatar ?? '',
        token: msg.token ?? undefined,
        voiceId: msg.voiceId ?? undefined,
      })
      if (msg.t === 'knock') {
        if (lobbyOn) gateEntry(id, info())
        return
      }
      if (lobbyOn && !admitted.has(id) && msg.t === 'voice' && msg.on) {
        gateEntry(id, info())
        if (!admitted.has(id)) return
      }
      if (msg.t === 'voice') {
        if (msg.on && msg.voiceId) {
          if (msg.token) for (const [k, v] of members) if (k !== id && v.token === msg.token) members.delete(k)
          members.set(id, { member: memberOf(msg), token: msg.token ?? undefined })
          if (msg.token) seenTokens.add(msg.token)
          seenVoiceIds.add(msg.voiceId)
        } else {
          members.delete(id)
        }
        broadcast()
      } else if (msg.t === 'leave') {
        admitted.delete(id)
        if (pending.delete(id)) emitKnocks()
        if (members.delete(id)) broadcast()
      }
    }
    transport.onMessage(handle)
    transport.onDisconnect((id) => {
      lastSeenAt.delete(id)
      admitted.delete(id)
      kickedConns.delete(id)
      const wasHost = id === verifiedHostConn
      if (wasHost) {
        verifiedHostId = ''
        verifiedHostConn = ''
      }
      if (pending.delete(id)) emitKnocks()
      if (members.delete(id) || wasHost) broadcast()
    })
    transport.onGone((reason) => {
      if (closed || !teardownRole) return
      teardownRole()
      teardownRole = null
      cb.gone?.(reason)
      setTimeout(() => void loop(), TIMING.RECLAIM_DELAY_MS)
    })
    const heartbeat = setInterval(() => {
      transport.broadcast(PING)
      const now = Date.now()
      const gap = now - lastTick
      lastTick = now
      let changed = false
      if (gap > TIMING.FREEZE_GAP_MS) {
        for (const id of lastSeenAt.keys()) lastSeenAt.set(id, now)
      } else {
        for (const [id, seen] of lastSeenAt) {
          if (now - seen > TIMING.REAP_MS) {
            lastSeenAt.delete(id)
            if (members.delete(id)) changed = true
          }
        }
      }
      const msg = rosterMsg()
      fanout(msg)
      if (changed) deliverRoster(msg.members, { host: msg.host, lobby: msg.lobby, locked: msg.locked })
    }, TIMING.PING_MS)

    sendSelf = (on, cam, name, avatar, voiceId, meta) => {
      if (on && voiceId) {
        members.set(SELF_KEY, { member: memberOf({ voiceId, name, cam, avatar, meta }) })
        // A key-tier host that is also the coordinator proves itself with a self-injected
        // `claim`: it becomes the verified host.
        if (opts.claimHost && !verifiedHostId) {
          verifiedHostId = voiceId
          verifiedHostConn = SELF_KEY
        }
      } else {
        members.delete(SELF_KEY)
        if (verifiedHostConn === SELF_KEY) {
          verifiedHostId = ''
          verifiedHostConn = ''
        }
      }
      broadcast()
    }
    ops = {
      setLobby: (on) => {
        lobbyOn = !!on
        lastLobbyOn = lobbyOn
        if (lobbyOn) {
          admitted.clear()
          for (const k of members.keys()) if (k !== SELF_KEY) admitted.add(k)
        } else {
          for (const [pid, info] of pending) admitNow(pid, info)
        }
        broadcast()
      },
      setLocked: (on) => {
        locked = !!on
        lastLockedOn = locked
        broadcast()
      },
      reset: () => fanout(RESET),
      knocks: () => [...pending].map(([id, p]) => ({ id, name: p.name, avatar: p.avatar })),
      admit: (pid) => {
        const info = pending.get(pid)
        if (!info) return false
        admitNow(pid, info)
        return true
      },
      deny: (pid) => {
        const had = pending.delete(pid)
        if (had) emitKnocks()
        transport.send(pid, lobbyMsg('denied'))
        return had
      },
      remove: (memberId) => {
        if (!memberId || memberId === members.get(SELF_KEY)?.member.id) return false
        kickedVoiceIds.add(memberId)
        let target
        for (const [cid, slot] of members) {
          if (cid !== SELF_KEY && slot.member.id === memberId) {
            target = cid
            if (slot.token) kickedTokens.add(slot.token)
            break
          }
        }
        if (target !== undefined) {
          kickedConns.add(target)
          transport.send(target, KICK)
          members.delete(target)
          admitted.delete(target)
          if (pending.delete(target)) emitKnocks()
        }
        broadcast()
        return target !== undefined
      },
    }
    teardownRole = () => {
      clearInterval(heartbeat)
      sendSelf = null
      ops = {}
      transport.close()
    }
    if (lastSelf) sendSelf(...lastSelf)
    broadcast()
  }

  const becomeParticipant = () => {
    authority = false
    ops = {}
    const transport = connectToRoom(room, opts.broker)
    transport.onPresenceId((id) => cb.role?.(false, id))
    let waiting = false
    sendKnock = () =>
      transport.send(
        knockMsg({
          name: opts.knockName || lastSelf?.[2] || 'Guest',
          avatar: lastSelf?.[3] || '',
          token,
          voiceId: lastSelf?.[4],
        }),
      )
    transport.onOpen(() => {
      sendKnock?.()
      if (lastSelf) sendSelf?.(...lastSelf)
    })
    transport.onMessage((msg) => {
      if (!msg || typeof msg !== 'object') return
      if (msg.t === 'roster') {
        lastLobbyOn = !!msg.lobby
        lastLockedOn = !!msg.locked
        lastHostId = typeof msg.host === 'string' ? msg.host : ''
        const members = Array.isArray(msg.members) ? msg.members : []
        deliverRoster(members, { host: lastHostId, lobby: lastLobbyOn, locked: lastLockedOn })
      } else if (msg.t === 'kick') cb.kicked?.()
      else if (msg.t === 'reset') cb.reset?.()
      else if (msg.t === 'lobby') {
        cb.lobby?.(msg.status)
        if (msg.status === 'waiting') waiting = true
        else if (msg.status === 'admitted') {
          if (waiting && lastSelf) sendSelf?.(...lastSelf)
          waiting = false
        }
      }
    })
    transport.onGone((reason) => {
      if (closed) return
      teardownRole = null
      sendSelf = null
      sendKnock = null
      transport.close()
      cb.gone?.(reason)
      setTimeout(() => void loop(), TIMING.RECLAIM_DELAY_MS)
    })
    sendSelf = (on, cam, name, avatar, voiceId, meta) =>
      transport.send(voiceMsg({ on, cam, name, avatar, voiceId, token, meta }))
    teardownRole = () => {
      sendSelf = null
      sendKnock = null
      transport.close()
    }
  }

  let loopGen = 0
  const loop = async () => {
    const gen = ++loopGen
    if (closed) return
    const claimed = await claimRoom(room, opts.broker)
    if (closed || gen !== loopGen) {
      if (typeof claimed === 'object') claimed.transport.close()
      return
    }
    if (claimed === 'taken') becomeParticipant()
    else if (claimed === 'error') setTimeout(() => void loop(), TIMING.CLAIM_RETRY_MS)
    else becomeAuthority(claimed.transport)
  }
  void loop()

  return {
    token,
    isAuthority: () => authority,
    hostId: () => lastHostId,
    roster: () => lastRoster,
    setSelf: (...args) => {
      lastSelf = args
      sendSelf?.(...args)
    },
    ops: () => ops,
    close: () => {
      closed = true
      teardownRole?.()
      teardownRole = null
    },
  }
}
