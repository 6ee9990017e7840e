// Kibitz capability grants, as each browser resolves them locally.
// Spec: kibitz-agents.md §1 (grant model), §1.5 (resolution), wire §7.

/** Perceive capabilities, canonical order (current build). */
export const ALL_PERCEIVE = [
  'see-screen',
  'hear-audio',
  'read-chat',
  'read-roster',
  'receive-directed',
  'read-media',
  'read-files',
]

/** Act capabilities, canonical order. */
export const ALL_ACT = ['send-chat', 'speak', 'act']

/** The human default: everything. */
export const fullGrant = () => ({ perceive: [...ALL_PERCEIVE], act: [...ALL_ACT] })

/** The revoked grant. */
export const emptyGrant = () => ({ perceive: [], act: [] })

const pickKnown = (list, known) => {
  const out = []
  if (!Array.isArray(list)) return out
  for (const c of list) if (typeof c === 'string' && known.includes(c) && !out.includes(c)) out.push(c)
  return out
}

/** Drop unknown names and duplicates, clamp `backend`, keep `egress` only if truthy and
 *  `expiresAt` only if a positive number. `null` is the empty grant. */
export function sanitizeGrant(g) {
  if (!g || typeof g !== 'object') return emptyGrant()
  const out = { perceive: pickKnown(g.perceive, ALL_PERCEIVE), act: pickKnown(g.act, ALL_ACT) }
  if (typeof g.backend === 'string' && g.backend.length > 0) out.backend = g.backend.slice(0, 80)
  if (g.egress) out.egress = true
  if (typeof g.expiresAt === 'number' && g.expiresAt > 0) out.expiresAt = g.expiresAt
  return out
}

/** The default grant of a roster member whose `meta.role === 'agent'`, with its disclosure. */
export function agentDefault(meta) {
  const g = { perceive: ['read-chat', 'read-roster', 'receive-directed'], act: [] }
  const backend = meta && typeof meta.backend === 'string' && meta.backend ? meta.backend.slice(0, 80) : ''
  if (backend) g.backend = backend
  if ((meta && meta.egress === true) || backend) g.egress = true
  return g
}

/** An expired (or missing) grant means empty. */
export function effectiveGrant(g, nowSec) {
  if (!g) return emptyGrant()
  if (typeof g.expiresAt === 'number' && nowSec >= g.expiresAt) return emptyGrant()
  return g
}

export const canPerceive = (g, cap) => !!g && Array.isArray(g.perceive) && g.perceive.includes(cap)
export const canAct = (g, cap) => !!g && Array.isArray(g.act) && g.act.includes(cap)

/**
 * This browser's view of participant `id`'s grant: self → full; a local override
 * (set here or accepted from `caps`) → that, expiry applied; roster `meta.role ===
 * 'agent'` → the agent default; otherwise (humans, unknown ids) → full.
 */
export function grantOf(id, { selfId, overrides, members }) {
  if (id && id === selfId) return fullGrant()
  if (overrides.has(id)) return effectiveGrant(overrides.get(id), Math.floor(Date.now() / 1000))
  const m = members.find((x) => x.id === id)
  const meta = m && m.meta && typeof m.meta === 'object' ? m.meta : undefined
  if (meta && meta.role === 'agent') return agentDefault(meta)
  return fullGrant()
}

/** `"read-chat, send-chat"`, `"nothing"` — the audit detail Kibitz writes on a grant change. */
export function grantDetail(g) {
  if (!g) return 'cleared'
  const all = [...g.perceive, ...g.act]
  return all.length ? all.join(', ') : 'nothing'
}
