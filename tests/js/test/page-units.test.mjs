// Unit checks of the test page's pure parts against the spec's frozen vectors:
// room-id normalisation, grants, and the BinaryPack bytes of browser-shaped messages.
// Run: node --test tests/js/test/
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pack, unpack } from 'peerjs-js-binarypack'
import { normalizeRoom, peerIdFor } from '../page/room.js'
import { agentDefault, effectiveGrant, fullGrant, grantOf, sanitizeGrant } from '../page/grants.js'
import { CAP, BYE, PING, LEAVE, capsMsg, chatMsg, knockMsg, lobbyMsg, mhMsg, voiceMsg } from '../page/wire.js'

const hex = (buf) => Buffer.from(buf).toString('hex')
const packed = async (v) => hex(await new Response(pack(v)).arrayBuffer())

test('room ids (wire §2.3 vectors)', () => {
  assert.equal(peerIdFor('standup'), 'kbz-v1-standup')
  assert.equal(peerIdFor('My Room'), 'kbz-v1-my-room')
  assert.equal(peerIdFor('  Hello, World!  '), 'kbz-v1-hello-world')
  assert.equal(peerIdFor('room-3f9k2mq7p1'), 'kbz-v1-room-3f9k2mq7p1')
  assert.equal(normalizeRoom('A-B-C'), 'a-b-c')
  assert.equal(normalizeRoom('café ☕ chat'), 'caf-chat')
  assert.equal(normalizeRoom('x'.repeat(50)).length, 40)
  assert.equal(normalizeRoom('a'.repeat(39) + '-b'), 'a'.repeat(39) + '-')
  assert.equal(normalizeRoom(null), '')
})

test('grants (agents §1.3–§1.5)', () => {
  assert.deepEqual(sanitizeGrant(null), { perceive: [], act: [] })
  assert.deepEqual(
    sanitizeGrant({ perceive: ['read-chat', 'bogus', 'read-chat'], act: ['send-chat'], egress: 1, expiresAt: -5, backend: 'x'.repeat(90) }),
    { perceive: ['read-chat'], act: ['send-chat'], backend: 'x'.repeat(80), egress: true },
  )
  assert.deepEqual(effectiveGrant({ perceive: ['read-chat'], act: [], expiresAt: 1000 }, 999).perceive, ['read-chat'])
  assert.deepEqual(effectiveGrant({ perceive: ['read-chat'], act: [], expiresAt: 1000 }, 1000), { perceive: [], act: [] })
  assert.deepEqual(agentDefault({ role: 'agent', backend: 'Claude' }), {
    perceive: ['read-chat', 'read-roster', 'receive-directed'], act: [], backend: 'Claude', egress: true,
  })
  const members = [{ id: 'h', meta: {} }, { id: 'a', meta: { role: 'agent' } }]
  const view = { selfId: 's', overrides: new Map(), members }
  assert.deepEqual(grantOf('h', view), fullGrant())
  assert.deepEqual(grantOf('a', view).act, [])
  assert.deepEqual(grantOf('s', view), fullGrant())
  view.overrides.set('a', { perceive: [], act: ['send-chat'] })
  assert.deepEqual(grantOf('a', view).act, ['send-chat'])
})

test('BinaryPack bytes match the spec vectors (wire §3)', async () => {
  assert.equal(await packed(PING), '81b174b470696e67')
  assert.equal(await packed(LEAVE), '81b174b56c65617665')
  assert.equal(await packed(lobbyMsg('waiting')), '82b174b56c6f626279b6737461747573b777616974696e67')
  assert.equal(await packed(CAP), '82b174b3636170b462756c6b01')
  assert.equal(await packed(BYE), '81b174b3627965')
  assert.equal(await packed(mhMsg({ a: 12 })), '85b174b26d68b17600b1610cb26f7600b26f6100')
  assert.equal(
    await packed(chatMsg({ text: 'hi', mid: 'v1#1', ts: 1700000000000 })),
    '84b16bb463686174b474657874b26869b36d6964b476312331b27473d30000018bcfe56800',
  )
  assert.equal(
    await packed(capsMsg({ v1: { perceive: ['read-chat'], act: [] } })),
    '82b16bb463617073b66772616e747381b2763182b8706572636569766591b9726561642d63686174b361637490',
  )
  assert.equal(
    await packed(knockMsg({ name: 'Bot', avatar: '', token: 'tok1', voiceId: undefined })),
    '88b174b56b6e6f636bb46e616d65b3426f74b6617661746172b0b5746f6b656eb4746f6b31b7766f6963654964c0b36a7774c0be6167656e74417373657274696f6ec0bb6167656e74437265646974c0',
  )
  assert.equal(
    await packed(voiceMsg({
      on: true, cam: false, name: 'Bot', avatar: '', voiceId: 'v1', token: 'tok1',
      meta: { role: 'agent', '~kbz': { v: '0.1.0', b: 'dev', p: 1, f: ['chat.v1'] } },
    })),
    '8bb174b5766f696365b26f6ec3b363616dc2b46e616d65b3426f74b6617661746172b0b7766f6963654964b27631b5746f6b656eb4746f6b31b46d65746182b4726f6c65b56167656e74b47e6b627a84b176b5302e312e30b162b3646576b17001b16691b7636861742e7631b36a7774c0be6167656e74417373657274696f6ec0bb6167656e74437265646974c0',
  )
  assert.deepEqual(unpack(Uint8Array.from(Buffer.from('81b174b470696e67', 'hex')).buffer), { t: 'ping' })
})
