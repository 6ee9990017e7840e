// The Kibitz media mesh for test pages: one owned RTCPeerConnection per peer pair,
// signalled over the `sig` data link (`m-sdp`, `m-ice`, `m-recreate`, `m-dial`, `mh-dead`),
// perfect negotiation, m-lines audio/video/video, flowing placeholders, the per-peer
// `hear-audio` / `see-screen` sender gate, the recovery ladder, and real `mh` numbers.
// Spec: kibitz-wire.md §5.2, §6, §7; kibitz-agents.md §1.6.
//
// Loaded by kibitz-peer.js for `open({media: 'media.js', mediaOptions})`; `createMedia`
// returns the hooks documented in mesh.js (`NO_MEDIA`) plus `stats()` for the driver.
// The pure helpers at the top have no DOM dependency (unit-tested by test/media-units).

/** Timings and thresholds of the current build (wire §6.5, §13). */
export const MEDIA_TIMING = {
  STATS_MS: 2000,
  RECOVER_AFTER_MS: 9000,
  MIN_FLOW_KBPS: 1,
  MAX_RECOVER: 3,
}

/** Capture constraints for the mic (wire §6.3). */
export const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true }

/** JS string order decides the pair's initiator: the smaller voiceId. */
export const isInitiator = (selfId, peerId) => selfId < peerId

/** Media control messages on `sig`, with Kibitz's key order (wire §5.2). */
export const mSdp = (desc, relay) => ({ t: 'm-sdp', d: { type: desc.type, sdp: desc.sdp }, relay: !!relay })
export const mIce = (c) => ({ t: 'm-ice', c })
export const mRecreate = (relay) => ({ t: 'm-recreate', relay: !!relay })
export const M_DIAL = Object.freeze({ t: 'm-dial' })
export const MH_DEAD = Object.freeze({ t: 'mh-dead' })

/** Which capability gates a lane; `null` = never gated (wire §6.4). */
export const GATE_CAP = Object.freeze({ audio: 'hear-audio', video: null, share: 'see-screen' })

/**
 * The track a peer gets on a lane: allowed → the real track; withheld → the flowing
 * placeholder, or `null` (fail closed) when none exists.
 */
export const gatedTrack = (allowed, real, placeholder) => (allowed ? real : placeholder ?? null)

/** Ladder step for recovery attempt `n` (wire §6.5): restart, recreate, relay. */
export function redialPlan(n, connectedNeverFlowed) {
  if (connectedNeverFlowed) return 'relay'
  if (n <= 0) return 'restart'
  if (n === 1) return 'recreate'
  return 'relay'
}

/**
 * Should a pc be recovered (wire §6.5)? Inbound below 1 kbps for more than 9 s and either
 * the peer reports sending (half-open) or the pc connected but never received media.
 */
export function shouldRecover({ now, lastFlow, inKbps, peerOutKbps, connected, everFlowed }) {
  if (inKbps >= MEDIA_TIMING.MIN_FLOW_KBPS) return false
  if (now - lastFlow <= MEDIA_TIMING.RECOVER_AFTER_MS) return false
  return peerOutKbps >= MEDIA_TIMING.MIN_FLOW_KBPS || (connected && !everFlowed)
}

/** kbps between two byte counters `ms` apart, one decimal. */
export const kbps = (bytesNow, bytesBefore, ms) =>
  ms > 0 && bytesNow >= bytesBefore ? Math.round(((bytesNow - bytesBefore) * 8) / ms * 10) / 10 : 0

/**
 * The sender of a lane on `pc`: the first audio transceiver is the mic, the first video
 * the camera, the second video the screen share. Keyed by the receiver's negotiated kind.
 */
export function laneSender(pc, lane) {
  const txs = pc.getTransceivers().filter((t) => !t.stopped)
  const kind = lane === 'audio' ? 'audio' : 'video'
  const of = txs.filter((t) => (t.receiver.track?.kind ?? t.sender.track?.kind) === kind)
  return (lane === 'share' ? of[1] : of[0])?.sender ?? null
}

// --- placeholders (DOM) ----------------------------------------------------------------

let audioCtx = null
let silentGain = null

/** A flowing silent track: a zero-gain oscillator through WebAudio (wire §6.3). */
function silentAudioTrack() {
  try {
    audioCtx = audioCtx ?? new AudioContext()
    void audioCtx.resume().catch(() => {})
    if (!silentGain) {
      const osc = audioCtx.createOscillator()
      silentGain = audioCtx.createGain()
      silentGain.gain.value = 0
      osc.connect(silentGain)
      osc.start()
    }
    const dst = audioCtx.createMediaStreamDestination()
    silentGain.connect(dst)
    return dst.stream.getAudioTracks()[0] ?? null
  } catch {
    return null
  }
}

const painters = []
let paintTimer = null

/**
 * A 2×2 canvas captured at 1 fps; `fill` colours it (black placeholder by default).
 * Chromium captures a canvas only when it is painted, so every canvas is repainted once a
 * second: the placeholder keeps flowing instead of going silent after the first frame.
 */
function canvasTrack(fill = '#000') {
  try {
    const canvas = document.createElement('canvas')
    canvas.width = 2
    canvas.height = 2
    const g = canvas.getContext('2d')
    const paint = () => {
      g.fillStyle = fill
      g.fillRect(0, 0, 2, 2)
    }
    paint()
    painters.push(paint)
    paintTimer = paintTimer ?? setInterval(() => painters.forEach((p) => p()), 1000)
    return canvas.captureStream(1).getVideoTracks()[0] ?? null
  } catch {
    return null
  }
}

// --- the mesh ----------------------------------------------------------------------------

/**
 * Build the media side of one page. `ctx`: `{voiceId, emit, grantOf, canPerceive, session,
 * options}`; options: `mic` (default true: the real fake-device mic is live — "unmuted" —
 * on the audio lane; false = joined muted, placeholder only), `rtcConfig` (default
 * `{iceServers: []}`), `recover` (default true: run the §6.5 ladder), `share` (default
 * false: start "screen sharing" a green 2×2 canvas on lane 3; the `share(on)` hook toggles it).
 */
export function createMedia({ voiceId, emit, grantOf, canPerceive, options = {} }) {
  const rtcConfig = options.rtcConfig ?? { iceServers: [] }
  const recoverOn = options.recover !== false
  /** peerId → link */
  const links = new Map()
  const relayLatched = new Set()
  const pendingRelay = new Set()
  const recoverCount = new Map()
  /** peerId → ICE that arrived before the answerer's pc exists (mic still opening). */
  const earlyIce = new Map()
  const audioEls = new Map()
  let mesh = null
  let closed = false

  // The local stream: mic lane, camera placeholder, dormant share lane (wire §6.2–§6.3).
  const gatePh = { audio: silentAudioTrack(), video: canvasTrack(), share: canvasTrack() }
  const lanePh = { audio: silentAudioTrack(), video: canvasTrack(), share: canvasTrack() }
  // What an allowed peer gets per lane; the share lane is dormant until `share(true)`.
  const real = { audio: lanePh.audio, video: lanePh.video, share: lanePh.share }
  let micTrack = null
  let shareTrack = null
  let micError = null
  const ready = (async () => {
    if (options.mic === false) return
    try {
      const s = await navigator.mediaDevices.getUserMedia({ audio: AUDIO_CONSTRAINTS })
      micTrack = s.getAudioTracks()[0] ?? null
      if (micTrack) real.audio = micTrack
    } catch (e) {
      micError = String(e?.name ?? e)
      emit({ type: 'error', where: 'media.getUserMedia', message: micError })
    }
  })()
  const localStream = new MediaStream([lanePh.audio, lanePh.video, lanePh.share].filter(Boolean))

  const sendSig = (id, msg) => !!mesh && mesh.sendSig(id, msg)
  const allowed = (id, lane) => {
    const cap = GATE_CAP[lane]
    return !cap || canPerceive(grantOf(id), cap)
  }
  const trackName = (t) => (!t ? 'none' : t === micTrack ? 'mic' : t === shareTrack ? 'share' : 'placeholder')

  /** Start (a green canvas, like a presenter's screen) or stop screen sharing on lane 3. */
  const setShare = (on) => {
    if (on && !shareTrack) shareTrack = canvasTrack('#0f0')
    real.share = on && shareTrack ? shareTrack : lanePh.share
    for (const [id, link] of links) applyGate(id, link)
  }
  if (options.share) setShare(true)

  /** Swap each lane's sender on one pc to what this peer may receive. */
  const applyGate = (id, link) => {
    const pc = link.pc
    const view = {}
    for (const lane of ['audio', 'video', 'share']) {
      const ok = allowed(id, lane)
      const want = gatedTrack(ok, real[lane], gatePh[lane])
      const sender = laneSender(pc, lane)
      if (!want) {
        view[lane] = 'none' // no placeholder could be minted: fail closed
        sender?.replaceTrack(null).catch(() => {})
        continue
      }
      if (sender && sender.track !== want) {
        sender.replaceTrack(want).catch(() => {
          /* pc closing */
        })
      }
      view[lane] = trackName(want)
    }
    const key = JSON.stringify(view)
    if (key !== link.gateKey) {
      link.gateKey = key
      emit({ type: 'media-gate', remote: id, ...view })
    }
  }

  const createPc = (id, initiatedByUs, relay = false) => {
    const useRelay = relay || relayLatched.has(id)
    if (useRelay) relayLatched.add(id)
    const prev = links.get(id)
    if (prev) closePc(id, prev)
    const pc = new RTCPeerConnection({ ...rtcConfig, ...(useRelay ? { iceTransportPolicy: 'relay' } : {}) })
    const link = {
      pc,
      initiatedByUs,
      polite: !isInitiator(voiceId, id),
      makingOffer: false,
      remoteSet: false,
      pendingIce: initiatedByUs ? [] : earlyIce.get(id) ?? [],
      relay: useRelay,
      createdAt: Date.now(),
      lastFlow: Date.now(),
      everFlowed: false,
      sample: null,
      rates: { v: 0, a: 0, ov: 0, oa: 0 },
      gateKey: '',
    }
    links.set(id, link)
    earlyIce.delete(id)
    // addTrack (not addTransceiver): the answerer's transceivers are then reused by the
    // offer's m-lines, so both sides keep exactly audio, video, video (sendrecv).
    for (const t of localStream.getTracks()) pc.addTrack(t, localStream)
    const kinds = () => pc.getTransceivers().map((t) => t.receiver.track?.kind)
    if (!kinds().includes('audio')) pc.addTransceiver('audio')
    if (!kinds().includes('video')) pc.addTransceiver('video')
    pc.ontrack = (e) => {
      if (e.track.kind !== 'audio' || closed) return
      // Play remote audio out (muted element volume aside, this makes Chromium decode it).
      let el = audioEls.get(id)
      if (!el) {
        el = document.createElement('audio')
        el.autoplay = true
        document.body.appendChild(el)
        audioEls.set(id, el)
      }
      el.srcObject = e.streams[0] ?? new MediaStream([e.track])
      el.play().catch(() => {})
    }
    pc.onicecandidate = (e) => {
      if (e.candidate && links.get(id) === link) sendSig(id, mIce(e.candidate.toJSON()))
    }
    pc.onnegotiationneeded = async () => {
      try {
        link.makingOffer = true
        await pc.setLocalDescription()
        const ld = pc.localDescription
        if (ld && links.get(id) === link) sendSig(id, mSdp(ld, relayLatched.has(id)))
      } catch (e) {
        emit({ type: 'error', where: 'media.offer', message: String(e) })
      } finally {
        link.makingOffer = false
      }
    }
    pc.onconnectionstatechange = () => {
      if (links.get(id) !== link) return
      emit({ type: 'media', remote: id, state: pc.connectionState, relay: link.relay, initiator: initiatedByUs })
      if (pc.connectionState === 'failed' && recoverOn && !closed) recover(id)
    }
    applyGate(id, link)
    emit({ type: 'media', remote: id, state: 'new', relay: useRelay, initiator: initiatedByUs })
    return link
  }

  const closePc = (id, link) => {
    if (links.get(id) === link) links.delete(id)
    try {
      link.pc.close()
    } catch {
      /* already closed */
    }
    emit({ type: 'media', remote: id, state: 'closed', relay: link.relay, initiator: link.initiatedByUs })
  }

  /** Initiator: make sure a pc exists (idempotent); its negotiationneeded offers. */
  const startMedia = async (id) => {
    if (closed || !isInitiator(voiceId, id)) return
    await ready
    if (closed || links.has(id) || !mesh?.isOpen(id)) return
    createPc(id, true)
  }

  const onSignal = async (id, msg) => {
    if (closed) return
    switch (msg.t) {
      case 'm-dial':
        if (isInitiator(voiceId, id)) await startMedia(id)
        return
      case 'mh-dead':
        if (recoverOn) reDial(id)
        return
      case 'm-recreate': {
        earlyIce.delete(id)
        const link = links.get(id)
        if (link) closePc(id, link)
        if (msg.relay) {
          pendingRelay.add(id)
          relayLatched.add(id)
        } else pendingRelay.delete(id)
        return
      }
      case 'm-sdp':
        return onSdp(id, msg)
      case 'm-ice': {
        const link = links.get(id)
        if (!msg.c || typeof msg.c !== 'object') return
        if (!link) {
          // Before the answerer's first pc: keep a bounded few for it.
          if (isInitiator(voiceId, id)) return
          const q = earlyIce.get(id) ?? []
          if (q.length < 64) q.push(msg.c)
          earlyIce.set(id, q)
          return
        }
        if (link.remoteSet) await link.pc.addIceCandidate(msg.c).catch(() => {})
        else link.pendingIce.push(msg.c)
        return
      }
      default:
        return
    }
  }

  const onSdp = async (id, msg) => {
    const desc = msg.d
    if (!desc || (desc.type !== 'offer' && desc.type !== 'answer') || typeof desc.sdp !== 'string') return
    if (msg.relay) relayLatched.add(id)
    let link = links.get(id)
    // An offer on a dead pc is the peer's re-dial: rebuild (wire §6.1).
    if (link && desc.type === 'offer' && ['closed', 'failed'].includes(link.pc.connectionState)) {
      closePc(id, link)
      link = undefined
    }
    if (!link) {
      if (desc.type !== 'offer') return
      await ready
      if (closed) return
      link = links.get(id) ?? createPc(id, false, pendingRelay.has(id))
      pendingRelay.delete(id)
    }
    const pc = link.pc
    const collision = desc.type === 'offer' && (link.makingOffer || pc.signalingState !== 'stable')
    if (collision && !link.polite) return // impolite: our own offer wins
    try {
      if (collision) await Promise.all([pc.setLocalDescription({ type: 'rollback' }), pc.setRemoteDescription(desc)])
      else await pc.setRemoteDescription(desc)
      link.remoteSet = true
      for (const c of link.pendingIce.splice(0)) await pc.addIceCandidate(c).catch(() => {})
      if (desc.type === 'offer') {
        await pc.setLocalDescription()
        const la = pc.localDescription
        if (la && links.get(id) === link) sendSig(id, mSdp(la, relayLatched.has(id)))
      }
      applyGate(id, link)
    } catch (e) {
      emit({ type: 'error', where: 'media.sdp', message: String(e) })
    }
  }

  // --- recovery ladder (wire §6.5) ---
  const recover = (id) => {
    if (isInitiator(voiceId, id)) reDial(id)
    else sendSig(id, MH_DEAD)
  }

  const reDial = (id, forced) => {
    if (closed || !isInitiator(voiceId, id) || !mesh?.isOpen(id)) return
    const n = recoverCount.get(id) ?? 0
    if (n >= MEDIA_TIMING.MAX_RECOVER) return
    recoverCount.set(id, n + 1)
    const link = links.get(id)
    const neverFlowed = !!link && link.pc.connectionState === 'connected' && !link.everFlowed
    const step = forced ?? (link ? redialPlan(n, neverFlowed) : 'recreate')
    emit({ type: 'media-recover', remote: id, attempt: n + 1, step })
    if (step === 'restart' && link) {
      link.lastFlow = Date.now()
      link.pc.restartIce()
      return
    }
    const relay = step === 'relay'
    sendSig(id, mRecreate(relay))
    createPc(id, true, relay)
  }

  /** Sample getStats of every pc: kbps for `mh`, flow tracking, recovery decisions. */
  const sample = async () => {
    const now = Date.now()
    for (const [id, link] of [...links]) {
      let st
      try {
        st = await statsOf(link.pc)
      } catch {
        continue
      }
      const prev = link.sample
      link.sample = { at: now, ...st.bytes }
      if (prev) {
        const ms = now - prev.at
        link.rates = {
          v: kbps(st.bytes.inV, prev.inV, ms),
          a: kbps(st.bytes.inA, prev.inA, ms),
          ov: kbps(st.bytes.outV, prev.outV, ms),
          oa: kbps(st.bytes.outA, prev.outA, ms),
        }
      }
      const inK = link.rates.v + link.rates.a
      if (inK >= MEDIA_TIMING.MIN_FLOW_KBPS) {
        link.lastFlow = now
        link.everFlowed = true
        const peer = peerHealth(id)
        if (peer && peer.v + peer.a >= MEDIA_TIMING.MIN_FLOW_KBPS) recoverCount.delete(id)
      }
      if (!recoverOn || closed || links.get(id) !== link) continue
      const peer = peerHealth(id) ?? { ov: 0, oa: 0 }
      const go = shouldRecover({
        now,
        lastFlow: link.lastFlow,
        inKbps: inK,
        peerOutKbps: (peer.ov ?? 0) + (peer.oa ?? 0),
        connected: link.pc.connectionState === 'connected',
        everFlowed: link.everFlowed,
      })
      if (go) {
        link.lastFlow = now // one attempt per window
        recover(id)
      }
    }
  }
  const sampler = setInterval(() => void sample(), MEDIA_TIMING.STATS_MS)

  const peerHealth = (id) => mesh?.state().find((l) => l.peer === id)?.health ?? null

  const hooks = {
    onSigOpen(id, m) {
      mesh = m
      void startMedia(id)
    },
    onSignal(id, msg, m) {
      mesh = m
      void onSignal(id, msg)
    },
    onTick(id, m) {
      mesh = m
      // The answerer nudges its initiator while no media pc exists (wire §5.2).
      if (!closed && !isInitiator(voiceId, id) && !links.has(id)) sendSig(id, M_DIAL)
    },
    health(id) {
      return links.get(id)?.rates ?? { v: 0, a: 0, ov: 0, oa: 0 }
    },
    onPeerGone(id) {
      const link = links.get(id)
      if (link) closePc(id, link)
      recoverCount.delete(id)
      earlyIce.delete(id)
      relayLatched.delete(id)
      pendingRelay.delete(id)
      const el = audioEls.get(id)
      if (el) {
        el.srcObject = null
        el.remove()
        audioEls.delete(id)
      }
    },
    onGrantsChanged() {
      for (const [id, link] of links) applyGate(id, link)
    },
    /** Per-peer media stats for the driver (`stats` command). */
    async stats() {
      await ready
      const peers = []
      for (const [id, link] of links) {
        const st = await statsOf(link.pc).catch(() => null)
        peers.push({
          peer: id,
          state: link.pc.connectionState,
          initiator: link.initiatedByUs,
          relay: link.relay,
          lanes: laneView(link.pc),
          mh: link.rates,
          ...(st ?? {}),
        })
      }
      return { voiceId, mic: micTrack ? micTrack.readyState : 'none', micError, peers }
    },
    /** Start/stop screen sharing (a green canvas) on the share lane, through the gate. */
    share(on) {
      setShare(on !== false)
      return { sharing: real.share === shareTrack && !!shareTrack }
    },
    /** Mean RGB of the frame `id` sends us on its share lane (the second video m-line). */
    async remoteShareColor(id) {
      const link = links.get(id)
      if (!link) throw new Error(`no media pc to ${id}`)
      const video = link.pc.getTransceivers().filter((t) => t.receiver.track?.kind === 'video')[1]
      if (!video) throw new Error('no share lane negotiated')
      return await meanColor(video.receiver.track)
    },
    /** Test hook: run one rung of the initiator's recovery ladder for `id` now (`step`:
     *  `restart` / `recreate` / `relay` forces the rung; default = the ladder's choice). */
    redial(id, step) {
      if (!isInitiator(voiceId, id)) throw new Error('only the initiator re-dials')
      if (step !== undefined && !['restart', 'recreate', 'relay'].includes(step)) throw new Error(`bad step ${step}`)
      reDial(id, step)
      return { attempt: recoverCount.get(id) ?? 0 }
    },
    close() {
      closed = true
      clearInterval(sampler)
      for (const [id, link] of [...links]) closePc(id, link)
    },
  }
  return hooks
}

/** Mean RGB of the current frame of a remote video track (drawn through a <video>). */
async function meanColor(track) {
  const el = document.createElement('video')
  el.muted = true
  el.srcObject = new MediaStream([track])
  await el.play().catch(() => {})
  const t0 = Date.now()
  while (el.videoWidth === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100))
  const w = el.videoWidth
  const h = el.videoHeight
  if (!w || !h) {
    el.srcObject = null
    return { frames: false, r: 0, g: 0, b: 0 }
  }
  const canvas = document.createElement('canvas')
  canvas.width = w
  canvas.height = h
  const g = canvas.getContext('2d')
  g.drawImage(el, 0, 0, w, h)
  const px = g.getImageData(0, 0, w, h).data
  el.srcObject = null
  const sum = [0, 0, 0]
  for (let i = 0; i < px.length; i += 4) for (let c = 0; c < 3; c++) sum[c] += px[i + c]
  const n = px.length / 4
  return { frames: true, width: w, height: h, r: sum[0] / n, g: sum[1] / n, b: sum[2] / n }
}

/** What each lane's sender carries: kinds in m-line order and their track ids. */
function laneView(pc) {
  return pc.getTransceivers().map((t) => ({
    mid: t.mid,
    kind: t.receiver.track?.kind,
    direction: t.currentDirection ?? t.direction,
    sending: t.sender.track ? t.sender.track.label || t.sender.track.id : null,
  }))
}

/** Byte counters and audio energy of one pc (inbound/outbound RTP). */
async function statsOf(pc) {
  const report = await pc.getStats()
  const bytes = { inA: 0, inV: 0, outA: 0, outV: 0 }
  const audioIn = { bytesReceived: 0, packetsReceived: 0, audioLevel: 0, totalAudioEnergy: 0, totalSamplesDuration: 0 }
  const audioOut = { bytesSent: 0, packetsSent: 0 }
  const sources = []
  report.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      if (s.kind === 'audio') {
        bytes.inA += s.bytesReceived ?? 0
        audioIn.bytesReceived += s.bytesReceived ?? 0
        audioIn.packetsReceived += s.packetsReceived ?? 0
        audioIn.audioLevel = Math.max(audioIn.audioLevel, s.audioLevel ?? 0)
        audioIn.totalAudioEnergy += s.totalAudioEnergy ?? 0
        audioIn.totalSamplesDuration += s.totalSamplesDuration ?? 0
      } else bytes.inV += s.bytesReceived ?? 0
    } else if (s.type === 'outbound-rtp') {
      if (s.kind === 'audio') {
        bytes.outA += s.bytesSent ?? 0
        audioOut.bytesSent += s.bytesSent ?? 0
        audioOut.packetsSent += s.packetsSent ?? 0
      } else bytes.outV += s.bytesSent ?? 0
    } else if (s.type === 'media-source' && s.kind === 'audio') {
      sources.push({ audioLevel: s.audioLevel ?? 0, totalAudioEnergy: s.totalAudioEnergy ?? 0 })
    }
  })
  return { bytes, audioIn, audioOut, audioSources: sources }
}
