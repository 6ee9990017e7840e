//! The Kibitz `Grant` (agents spec §1, wire spec §7): what a participant may perceive and do.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::capability::{Capability, ALL_ACT, ALL_CAPABILITIES, ALL_PERCEIVE};

/// Kibitz clamps `backend` to this many characters.
pub const MAX_BACKEND_CHARS: usize = 80;

/// A participant's grant, serialised exactly as Kibitz JSON:
/// `{"perceive":[…],"act":[…],"backend"?:"…","egress"?:true,"expiresAt"?:<epoch s>}`.
///
/// `egress` is a plain `bool` because Kibitz only ever writes it as `true`: `false` is omitted on
/// output. Deserialising always goes through [`Grant::sanitize`], so a grant parsed from peer JSON
/// can never carry an unknown capability, a duplicate or an oversized `backend`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// Capabilities for content flowing to the participant (enforced sender-side).
    pub perceive: Vec<Capability>,
    /// Capabilities for what the participant may emit (enforced receiver-side).
    pub act: Vec<Capability>,
    /// Disclosure: the model/backend the participant routes to (at most 80 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Disclosure: what it perceives leaves the room. Serialised only when `true`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub egress: bool,
    /// Auto-revoke at this epoch-seconds time; `None` (or 0) means no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// `grantSummary`: a partition of all ten capabilities for a consent UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantSummary {
    /// Capabilities the grant confers, in canonical order.
    pub can: Vec<Capability>,
    /// Capabilities it does not confer, in canonical order.
    pub cannot: Vec<Capability>,
}

impl Grant {
    /// `fullGrant()`: everything (the human default).
    pub fn full() -> Grant {
        Grant {
            perceive: ALL_PERCEIVE.to_vec(),
            act: ALL_ACT.to_vec(),
            ..Grant::default()
        }
    }

    /// `defaultGrant('agent')`: perceive `read-chat`, `read-roster`, `receive-directed`; act nothing.
    pub fn agent_default() -> Grant {
        Grant {
            perceive: vec![
                Capability::ReadChat,
                Capability::ReadRoster,
                Capability::ReceiveDirected,
            ],
            ..Grant::default()
        }
    }

    /// `emptyGrant()`: nothing (revoked, expired or denied).
    pub fn empty() -> Grant {
        Grant::default()
    }

    /// `sanitizeGrant`: build a grant from arbitrary JSON the way Kibitz does.
    ///
    /// * unknown names (and act names in `perceive`, perceive names in `act`) are dropped, and
    ///   duplicates removed keeping the first occurrence;
    /// * a missing list becomes `[]`; a list that is not an array is also treated as `[]` (Kibitz
    ///   would throw there; failing closed is the safe equivalent);
    /// * `backend` is kept only if it is a non-empty string, cut to 80 characters counted in UTF-16
    ///   code units like JS `slice(0, 80)`; a surrogate pair straddling the cut is dropped whole
    ///   (JS would keep a lone high surrogate, which Rust strings cannot hold);
    /// * `egress` becomes `true` when the value is JS-truthy;
    /// * `expiresAt` is kept only if it is a number greater than 0; a fractional value is rounded
    ///   up so `is_expired` answers exactly as Kibitz does for integer `now`;
    /// * `null` or any non-object becomes the empty grant.
    pub fn sanitize(value: &Value) -> Grant {
        let Some(obj) = value.as_object() else {
            return Grant::empty();
        };
        let list = |key: &str, perceive: bool| -> Vec<Capability> {
            let mut out: Vec<Capability> = Vec::new();
            if let Some(items) = obj.get(key).and_then(Value::as_array) {
                for item in items {
                    let Some(cap) = item.as_str().and_then(Capability::from_name) else {
                        continue;
                    };
                    if cap.is_perceive() == perceive && !out.contains(&cap) {
                        out.push(cap);
                    }
                }
            }
            out
        };
        let backend = obj
            .get("backend")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| clamp_utf16(s, MAX_BACKEND_CHARS));
        let expires_at = obj
            .get("expiresAt")
            .and_then(Value::as_f64)
            .filter(|n| *n > 0.0)
            .map(|n| {
                if n >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    n.ceil() as u64
                }
            });
        Grant {
            perceive: list("perceive", true),
            act: list("act", false),
            backend,
            egress: obj.get("egress").is_some_and(js_truthy),
            expires_at,
        }
    }

    /// Parse and sanitise a grant from JSON text.
    pub fn from_json_str(s: &str) -> Result<Grant, serde_json::Error> {
        serde_json::from_str::<Value>(s).map(|v| Grant::sanitize(&v))
    }

    /// This grant as Kibitz JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// `isExpired`: `expiresAt` is set (non-zero) and `now_sec >= expiresAt`.
    pub fn is_expired(&self, now_sec: u64) -> bool {
        matches!(self.expires_at, Some(exp) if exp != 0 && now_sec >= exp)
    }

    /// `effectiveGrant`: the empty grant once expired, else a copy of this grant.
    pub fn effective(&self, now_sec: u64) -> Grant {
        if self.is_expired(now_sec) {
            Grant::empty()
        } else {
            self.clone()
        }
    }

    /// `canPerceive`: membership in `perceive`.
    pub fn can_perceive(&self, cap: Capability) -> bool {
        self.perceive.contains(&cap)
    }

    /// `canAct`: membership in `act`.
    pub fn can_act(&self, cap: Capability) -> bool {
        self.act.contains(&cap)
    }

    /// Membership in whichever list `cap` belongs to.
    pub fn allows(&self, cap: Capability) -> bool {
        if cap.is_perceive() {
            self.can_perceive(cap)
        } else {
            self.can_act(cap)
        }
    }

    /// `intersectGrant(request, allowed)`: each list keeps the request's items that `allowed`
    /// also holds (request order); `backend` and `egress` come from the request; `expiresAt` is
    /// the smaller of the two non-zero values.
    pub fn intersect(request: &Grant, allowed: &Grant) -> Grant {
        let keep = |req: &[Capability], allow: &[Capability]| -> Vec<Capability> {
            req.iter().copied().filter(|c| allow.contains(c)).collect()
        };
        let expires_at = [request.expires_at, allowed.expires_at]
            .into_iter()
            .flatten()
            .filter(|e| *e != 0)
            .min();
        Grant {
            perceive: keep(&request.perceive, &allowed.perceive),
            act: keep(&request.act, &allowed.act),
            backend: request.backend.clone().filter(|b| !b.is_empty()),
            egress: request.egress,
            expires_at,
        }
    }

    /// `grantSummary`: which of the ten capabilities this grant does and does not confer.
    pub fn summary(&self) -> GrantSummary {
        let (can, cannot) = ALL_CAPABILITIES.into_iter().partition(|c| self.allows(*c));
        GrantSummary { can, cannot }
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Grant::sanitize(&value))
    }
}

/// JS truthiness of a JSON value.
fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Cut `s` to at most `max` UTF-16 code units without splitting a character.
pub(crate) fn clamp_utf16(s: &str, max: usize) -> String {
    let mut units = 0;
    let mut out = String::new();
    for c in s.chars() {
        units += c.len_utf16();
        if units > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use Capability::*;

    #[test]
    fn defaults() {
        assert_eq!(Grant::full().perceive, ALL_PERCEIVE.to_vec());
        assert_eq!(Grant::full().act, ALL_ACT.to_vec());
        assert_eq!(
            serde_json::to_string(&Grant::agent_default()).unwrap(),
            r#"{"perceive":["read-chat","read-roster","receive-directed"],"act":[]}"#
        );
        assert_eq!(
            serde_json::to_string(&Grant::empty()).unwrap(),
            r#"{"perceive":[],"act":[]}"#
        );
    }

    #[test]
    fn sanitize_table() {
        let cases: Vec<(Value, &str)> = vec![
            (Value::Null, r#"{"perceive":[],"act":[]}"#),
            (json!(5), r#"{"perceive":[],"act":[]}"#),
            (json!({}), r#"{"perceive":[],"act":[]}"#),
            (
                json!({"perceive":["read-chat","bogus","read-chat","send-chat",7,"hear-audio"],"act":["act","read-chat","act","speak"]}),
                r#"{"perceive":["read-chat","hear-audio"],"act":["act","speak"]}"#,
            ),
            (
                json!({"perceive":"read-chat","act":{"a":1}}),
                r#"{"perceive":[],"act":[]}"#,
            ),
            (
                json!({"act":["send-chat"]}),
                r#"{"perceive":[],"act":["send-chat"]}"#,
            ),
            (json!({"backend":""}), r#"{"perceive":[],"act":[]}"#),
            (json!({"backend":5}), r#"{"perceive":[],"act":[]}"#),
            (
                json!({"backend":"Claude"}),
                r#"{"perceive":[],"act":[],"backend":"Claude"}"#,
            ),
            (
                json!({"egress":1}),
                r#"{"perceive":[],"act":[],"egress":true}"#,
            ),
            (
                json!({"egress":"yes"}),
                r#"{"perceive":[],"act":[],"egress":true}"#,
            ),
            (
                json!({"egress":[]}),
                r#"{"perceive":[],"act":[],"egress":true}"#,
            ),
            (json!({"egress":0}), r#"{"perceive":[],"act":[]}"#),
            (json!({"egress":""}), r#"{"perceive":[],"act":[]}"#),
            (json!({"egress":false}), r#"{"perceive":[],"act":[]}"#),
            (json!({"egress":null}), r#"{"perceive":[],"act":[]}"#),
            (json!({"expiresAt":-5}), r#"{"perceive":[],"act":[]}"#),
            (json!({"expiresAt":0}), r#"{"perceive":[],"act":[]}"#),
            (json!({"expiresAt":"9"}), r#"{"perceive":[],"act":[]}"#),
            (
                json!({"expiresAt":1700003600}),
                r#"{"perceive":[],"act":[],"expiresAt":1700003600}"#,
            ),
            (
                json!({"expiresAt":10.5}),
                r#"{"perceive":[],"act":[],"expiresAt":11}"#,
            ),
            (
                json!({"expiresAt":5,"egress":true,"backend":"b","act":[],"perceive":[]}),
                r#"{"perceive":[],"act":[],"backend":"b","egress":true,"expiresAt":5}"#,
            ),
        ];
        for (input, want) in cases {
            let got = serde_json::to_string(&Grant::sanitize(&input)).unwrap();
            assert_eq!(got, want, "input {input}");
            // Deserialize goes through sanitize too.
            let via_serde: Grant = serde_json::from_value(input.clone()).unwrap();
            assert_eq!(serde_json::to_string(&via_serde).unwrap(), want);
        }
    }

    #[test]
    fn backend_is_cut_to_80_utf16_units() {
        let long = "x".repeat(100);
        assert_eq!(
            Grant::sanitize(&json!({ "backend": long }))
                .backend
                .unwrap()
                .len(),
            80
        );
        // 79 ASCII + an astral char (2 UTF-16 units) straddling the cut: the pair is dropped.
        let s = format!("{}😀z", "a".repeat(79));
        assert_eq!(
            Grant::sanitize(&json!({ "backend": s })).backend.unwrap(),
            "a".repeat(79)
        );
        let s = format!("{}😀", "a".repeat(78));
        assert_eq!(
            Grant::sanitize(&json!({ "backend": s }))
                .backend
                .unwrap()
                .chars()
                .count(),
            79
        );
        let s = "é".repeat(90);
        assert_eq!(
            Grant::sanitize(&json!({ "backend": s }))
                .backend
                .unwrap()
                .chars()
                .count(),
            80
        );
    }

    #[test]
    fn expiry_table() {
        let g = Grant {
            expires_at: Some(1000),
            ..Grant::full()
        };
        for (now, expired) in [(0, false), (999, false), (1000, true), (5000, true)] {
            assert_eq!(g.is_expired(now), expired, "now {now}");
            assert_eq!(g.effective(now) == Grant::empty(), expired);
        }
        let never = Grant {
            expires_at: Some(0),
            ..Grant::full()
        };
        assert!(!never.is_expired(u64::MAX));
        assert!(!Grant::full().is_expired(u64::MAX));
    }

    #[test]
    fn membership() {
        let g = Grant::agent_default();
        assert!(g.can_perceive(ReadChat));
        assert!(!g.can_perceive(HearAudio));
        assert!(!g.can_act(SendChat));
        assert!(Grant::full().can_act(Act));
        assert!(!Grant::empty().allows(ReadRoster));
    }

    #[test]
    fn intersect_table() {
        let request = Grant {
            perceive: vec![HearAudio, ReadChat, SeeScreen],
            act: vec![SendChat, Speak],
            backend: Some("local whisper".into()),
            egress: true,
            expires_at: Some(500),
        };
        let allowed = Grant {
            perceive: vec![ReadChat, HearAudio],
            act: vec![Speak],
            expires_at: Some(300),
            ..Grant::default()
        };
        let got = Grant::intersect(&request, &allowed);
        assert_eq!(got.perceive, vec![HearAudio, ReadChat]);
        assert_eq!(got.act, vec![Speak]);
        assert_eq!(got.backend.as_deref(), Some("local whisper"));
        assert!(got.egress);
        assert_eq!(got.expires_at, Some(300));

        // Disclosure comes only from the request; expiry from whichever side sets one.
        let allowed2 = Grant {
            backend: Some("x".into()),
            egress: true,
            ..Grant::full()
        };
        let req2 = Grant {
            perceive: vec![ReadChat],
            expires_at: Some(900),
            ..Grant::default()
        };
        let got2 = Grant::intersect(&req2, &allowed2);
        assert_eq!(got2.backend, None);
        assert!(!got2.egress);
        assert_eq!(got2.expires_at, Some(900));
        assert_eq!(
            Grant::intersect(&Grant::full(), &Grant::empty()),
            Grant::empty()
        );
        assert_eq!(
            Grant::intersect(&Grant::agent_default(), &Grant::full()),
            Grant::agent_default()
        );
    }

    #[test]
    fn summary_partitions_all_ten() {
        let s = Grant::agent_default().summary();
        assert_eq!(s.can, vec![ReadChat, ReadRoster, ReceiveDirected]);
        assert_eq!(s.cannot.len(), 7);
        assert_eq!(s.cannot[0], SeeScreen);
        assert_eq!(Grant::full().summary().cannot, Vec::<Capability>::new());
    }
}
