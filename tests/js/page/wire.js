// Wire message builders, shaped exactly as Kibitz browsers build them (key order, and
// every optional credential key present as `undefined`, which BinaryPack sends as nil).
// Spec: kibitz-wire.md §3 (vectors), §4.1, §4.2, §5.2, §5.3, §7.

/** `{t:'knock', name, avatar, token, voiceId, jwt, agentAssertion, agentCredit}` */
export const knockMsg = ({ name, avatar, token, voiceId }) => ({
  t: 'knock',
  name: name || 'Guest',
  avatar: avatar ?? '',
  token,
  voiceId,
  jwt: undefined,
  agentAssertion: undefined,
  agentCredit: undefined,
})

/** `{t:'voice', on, cam, name, avatar, voiceId, token, meta, jwt, agentAssertion, agentCredit}` */
export const voiceMsg = ({ on, cam, name, avatar, voiceId, token, meta }) => ({
  t: 'voice',
  on: !!on,
  cam: !!cam,
  name: name || 'Guest',
  avatar: avatar ?? '',
  voiceId,
  token,
  meta,
  jwt: undefined,
  agentAssertion: undefined,
  agentCredit: undefined,
})

export const PING = Object.freeze({ t: 'ping' })
export const LEAVE = Object.freeze({ t: 'leave' })
export const KICK = Object.freeze({ t: 'kick' })
export const RESET = Object.freeze({ t: 'reset' })

/** `{t:'lobby', status}` — waiting | admitted | denied | locked | unverified */
export const lobbyMsg = (status) => ({ t: 'lobby', status })

/** `{t:'roster', members, lobby, host, locked}`; members `{id, name, cam, avatar, meta}`. */
export const rosterMsg = ({ members, lobby, host, locked }) => ({
  t: 'roster',
  members,
  lobby: !!lobby,
  host: host || '',
  locked: !!locked,
})

/** A roster member built verbatim from an announce. */
export const memberOf = (voice) => ({
  id: voice.voiceId,
  name: voice.name || 'Guest',
  cam: !!voice.cam,
  avatar: voice.avatar ?? '',
  meta: voice.meta ?? undefined,
})

// --- mesh ---------------------------------------------------------------------------------

export const CAP = Object.freeze({ t: 'cap', bulk: 1 })
export const BYE = Object.freeze({ t: 'bye' })
export const mhMsg = ({ v = 0, a = 0, ov = 0, oa = 0 } = {}) => ({ t: 'mh', v, a, ov, oa })

/** Public chat `{k, text, mid, ts}`; direct chat adds `dm: true` after `text`. */
export const chatMsg = ({ text, mid, ts, dm }) =>
  dm ? { k: 'chat', text, dm: true, mid, ts } : { k: 'chat', text, mid, ts }

/** `{k:'caps', grants:{voiceId: Grant}}` */
export const capsMsg = (grants) => ({ k: 'caps', grants })
