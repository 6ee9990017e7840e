// Unit checks of media.js's pure parts: control-message shapes (wire §5.2), the gate
// (wire §6.4), the recovery ladder and trigger (wire §6.5), lane addressing (wire §6.2).
// Run: node --test tests/js/test/
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  GATE_CAP,
  M_DIAL,
  MH_DEAD,
  gatedTrack,
  isInitiator,
  kbps,
  laneSender,
  mIce,
  mRecreate,
  mSdp,
  redialPlan,
  shouldRecover,
} from '../page/media.js'

test('media control messages keep Kibitz key order (wire §5.2)', () => {
  const sdp = mSdp({ type: 'offer', sdp: 'v=0\r\n', extra: 1 }, false)
  assert.deepEqual(Object.keys(sdp), ['t', 'd', 'relay'])
  assert.deepEqual(sdp, { t: 'm-sdp', d: { type: 'offer', sdp: 'v=0\r\n' }, relay: false })
  const c = { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'u' }
  assert.deepEqual(mIce(c), { t: 'm-ice', c })
  assert.deepEqual(mRecreate(1), { t: 'm-recreate', relay: true })
  assert.deepEqual(M_DIAL, { t: 'm-dial' })
  assert.deepEqual(MH_DEAD, { t: 'mh-dead' })
})

test('glare rule and gate (wire §5.1, §6.4)', () => {
  assert.equal(isInitiator('a', 'b'), true)
  assert.equal(isInitiator('b', 'a'), false)
  assert.equal(isInitiator('Z', 'a'), true) // UTF-16 code-unit order
  assert.deepEqual(GATE_CAP, { audio: 'hear-audio', video: null, share: 'see-screen' })
  assert.equal(gatedTrack(true, 'mic', 'ph'), 'mic')
  assert.equal(gatedTrack(false, 'mic', 'ph'), 'ph')
  assert.equal(gatedTrack(false, 'mic', null), null) // fail closed
})

test('recovery ladder and trigger (wire §6.5)', () => {
  assert.equal(redialPlan(0, false), 'restart')
  assert.equal(redialPlan(1, false), 'recreate')
  assert.equal(redialPlan(2, false), 'relay')
  assert.equal(redialPlan(0, true), 'relay')
  const base = { now: 20000, lastFlow: 10000, inKbps: 0, peerOutKbps: 0, connected: true, everFlowed: true }
  assert.equal(shouldRecover(base), false) // quiet peer on a pc that flowed: left alone
  assert.equal(shouldRecover({ ...base, peerOutKbps: 5 }), true) // half-open
  assert.equal(shouldRecover({ ...base, everFlowed: false }), true) // connected, never flowed
  assert.equal(shouldRecover({ ...base, peerOutKbps: 5, lastFlow: 11000 }), false) // not 9 s yet
  assert.equal(shouldRecover({ ...base, peerOutKbps: 5, inKbps: 1 }), false)
  assert.equal(kbps(2000, 1000, 2000), 4)
  assert.equal(kbps(1000, 2000, 2000), 0) // counter reset (new pc)
})

test('lane senders follow m-line order (wire §6.2)', () => {
  const tx = (kind, name) => ({ stopped: false, receiver: { track: { kind } }, sender: { name, track: null } })
  const pc = { getTransceivers: () => [tx('audio', 'mic'), tx('video', 'cam'), tx('video', 'share')] }
  assert.equal(laneSender(pc, 'audio').name, 'mic')
  assert.equal(laneSender(pc, 'video').name, 'cam')
  assert.equal(laneSender(pc, 'share').name, 'share')
  assert.equal(laneSender({ getTransceivers: () => [tx('audio', 'mic')] }, 'share'), null)
})
