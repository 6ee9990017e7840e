// Keeps WebRTC traffic on 127.0.0.1: while `window.kbzLoopbackOnly` is true (the default;
// `open({loopbackOnly:false})` turns it off), trickled ICE candidates whose address is not
// 127.0.0.1 are never handed to PeerJS (or the media mesh), so no peer learns them.
// A classic script, loaded before peerjs.min.js so every RTCPeerConnection is wrapped.
;(() => {
  const Native = window.RTCPeerConnection
  if (!Native) return
  window.kbzLoopbackOnly = true
  const keep = (ev) => {
    if (!window.kbzLoopbackOnly) return true
    const c = ev && ev.candidate
    if (!c || !c.candidate) return true // end-of-candidates
    return / 127\.0\.0\.1 /.test(c.candidate)
  }
  const wrapped = new WeakMap()
  class LoopbackPeerConnection extends Native {
    set onicecandidate(h) {
      super.onicecandidate = typeof h === 'function' ? (ev) => (keep(ev) ? h.call(this, ev) : undefined) : h
    }
    get onicecandidate() {
      return super.onicecandidate
    }
    addEventListener(type, h, opts) {
      if (type === 'icecandidate' && typeof h === 'function') {
        let w = wrapped.get(h)
        if (!w) {
          w = (ev) => (keep(ev) ? h.call(this, ev) : undefined)
          wrapped.set(h, w)
        }
        return super.addEventListener(type, w, opts)
      }
      return super.addEventListener(type, h, opts)
    }
    removeEventListener(type, h, opts) {
      return super.removeEventListener(type, (type === 'icecandidate' && wrapped.get(h)) || h, opts)
    }
  }
  window.RTCPeerConnection = LoopbackPeerConnection
})()
