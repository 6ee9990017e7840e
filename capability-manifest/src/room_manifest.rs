//! The room manifest signed by a room's creator (agents spec §4): its `agentKeys` allow-list,
//! verification, agent admission, and the room link that carries it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::assertion::{verify_assertion, AssertionOptions};
use crate::b64;
use crate::error::{AssertionError, LinkError, RoomManifestError};
use crate::grant::Grant;
use crate::keys::{AgentKey, AgentPublicKey};
use crate::normalize::{js_trim, normalize_room};
use crate::token::{sign_token, verify_token};

/// Links longer than this are refused by [`RoomLink::parse`].
pub const MAX_LINK_CHARS: usize = 65_536;

/// One pre-authorised agent: `{"key":<public JWK>,"caps"?:<Grant>,"label"?:"…"}`.
///
/// `key` is kept as the JSON found in the manifest (it may fail to import; such entries are
/// skipped at verification, like the browser does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentEntry {
    /// The agent's public JWK, verbatim.
    pub key: Value,
    /// The grant given on admission (sanitised on parse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<Grant>,
    /// Display and audit name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl AgentEntry {
    /// Read an entry leniently from manifest JSON: `caps` is kept when truthy (and sanitised),
    /// `label` when it is a string.
    pub fn from_value(v: &Value) -> AgentEntry {
        let caps = v
            .get("caps")
            .filter(|c| !matches!(c, Value::Null | Value::Bool(false)))
            .map(Grant::sanitize);
        AgentEntry {
            key: v.get("key").cloned().unwrap_or(Value::Null),
            caps,
            label: v.get("label").and_then(Value::as_str).map(str::to_owned),
        }
    }

    /// The entry's key, if it imports for verification.
    pub fn public_key(&self) -> Option<AgentPublicKey> {
        AgentPublicKey::from_jwk(&self.key).ok()
    }
}

/// The allow-list entry for `key`, as JSON in Kibitz's order `{key, caps?, label?}`. The key is
/// written in WebCrypto's public export shape.
pub fn agent_entry_for(key: &AgentPublicKey, caps: Option<&Grant>, label: Option<&str>) -> Value {
    let mut entry = Map::new();
    entry.insert("key".into(), key.to_jwk());
    if let Some(caps) = caps {
        entry.insert("caps".into(), caps.to_value());
    }
    if let Some(label) = label {
        entry.insert("label".into(), Value::String(label.to_owned()));
    }
    Value::Object(entry)
}

/// A room manifest. Field order on output is `members, mh?, domains?, mode, room, exp, invitees?,
/// agentKeys?`, as Kibitz's `buildVerifiedRoster` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomManifest {
    /// Allowed e-mails (may be empty).
    #[serde(default)]
    pub members: Vec<String>,
    /// Hashed allow-list (privacy mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mh: Option<Vec<String>>,
    /// Allowed e-mail domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    /// `invite`, `google` or `names`.
    pub mode: String,
    /// The normalised room id.
    pub room: String,
    /// Expiry, epoch seconds.
    pub exp: u64,
    /// Pre-entry preview rows, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitees: Option<Vec<Value>>,
    /// Pre-authorised agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_keys: Option<Vec<AgentEntry>>,
}

impl RoomManifest {
    /// Read a verified payload leniently (wrongly typed optional members become absent).
    pub fn from_value(v: &Value) -> RoomManifest {
        let strings = |key: &str| -> Option<Vec<String>> {
            v.get(key).and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
        };
        RoomManifest {
            members: strings("members").unwrap_or_default(),
            mh: strings("mh"),
            domains: strings("domains"),
            mode: v
                .get("mode")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            room: v
                .get("room")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            exp: v.get("exp").and_then(Value::as_f64).map_or(0, |e| {
                if e <= 0.0 {
                    0
                } else {
                    e as u64
                }
            }),
            invitees: v.get("invitees").and_then(Value::as_array).cloned(),
            agent_keys: v
                .get("agentKeys")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(AgentEntry::from_value).collect()),
        }
    }

    /// The agent entries (empty when absent).
    pub fn agent_entries(&self) -> &[AgentEntry] {
        self.agent_keys.as_deref().unwrap_or(&[])
    }

    /// The first entry whose key has the same thumbprint as `key`.
    pub fn find_agent(&self, key: &AgentPublicKey) -> Option<(usize, &AgentEntry)> {
        let want = key.thumbprint();
        self.agent_entries()
            .iter()
            .enumerate()
            .find(|(_, e)| e.public_key().is_some_and(|k| k.thumbprint() == want))
    }
}

/// Sign a room manifest as its creator (the §3.3 token container).
pub fn sign_room_manifest(creator: &AgentKey, manifest: &RoomManifest) -> String {
    sign_token(
        creator,
        &serde_json::to_value(manifest).unwrap_or(Value::Null),
    )
}

/// `verifyManifest(token, creatorPub, {room, now, mode?})`, in Kibitz's order: signature ("bad
/// signature"), room ("wrong room"), pinned mode ("wrong mode"), `exp` is a number and
/// `now < exp` ("expired"), a non-empty `members`, `mh` or `agentKeys` ("no members").
pub fn verify_room_manifest(
    token: &str,
    creator_pub: &AgentPublicKey,
    room: &str,
    now: u64,
    mode: Option<&str>,
) -> Result<RoomManifest, RoomManifestError> {
    let m = verify_token(token, creator_pub).map_err(|_| RoomManifestError::BadSignature)?;
    if matches!(&m, Value::Null | Value::Bool(false))
        || m.as_str() == Some("")
        || m.as_f64() == Some(0.0)
    {
        return Err(RoomManifestError::BadSignature);
    }
    if m.get("room").and_then(Value::as_str) != Some(room) {
        return Err(RoomManifestError::WrongRoom);
    }
    if let Some(mode) = mode {
        if m.get("mode").and_then(Value::as_str) != Some(mode) {
            return Err(RoomManifestError::WrongMode);
        }
    }
    match m.get("exp").and_then(Value::as_f64) {
        Some(exp) if (now as f64) < exp => {}
        _ => return Err(RoomManifestError::Expired),
    }
    let non_empty = |k: &str| {
        m.get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if !non_empty("members") && !non_empty("mh") && !non_empty("agentKeys") {
        return Err(RoomManifestError::NoMembers);
    }
    Ok(RoomManifest::from_value(&m))
}

/// The outcome of admitting an agent by a room manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentAdmission {
    /// Thumbprint of the matching key.
    pub key_id: String,
    /// Index of the matching entry in `agentKeys`.
    pub index: usize,
    /// The entry's sanitised `caps`, exactly what the browser engine records; `None` when the
    /// entry has none (peers then fall back to the `meta.role` default).
    pub caps: Option<Grant>,
    /// The entry's label.
    pub label: Option<String>,
}

impl AgentAdmission {
    /// The documented grant: the entry's caps, or `defaultGrant('agent')` when absent.
    pub fn grant_or_default(&self) -> Grant {
        self.caps.clone().unwrap_or_else(Grant::agent_default)
    }
}

/// The agent part of `withAgentGate`: refuse when the manifest lists no agents, else verify the
/// assertion against the entries' keys for `room_key` and return the matched entry's caps.
pub fn admit_agent(
    manifest: &RoomManifest,
    assertion: &str,
    room_key: &str,
    remote_fp: &str,
    now: u64,
    opts: AssertionOptions,
) -> Result<AgentAdmission, AssertionError> {
    let entries = manifest.agent_entries();
    if entries.is_empty() {
        return Err(AssertionError::RoomAdmitsNoAgents);
    }
    let keys: Vec<Value> = entries.iter().map(|e| e.key.clone()).collect();
    let ok = verify_assertion(assertion, &keys, room_key, remote_fp, now, opts)?;
    let entry = &entries[ok.key_index];
    Ok(AgentAdmission {
        key_id: ok.key_id,
        index: ok.key_index,
        caps: entry.caps.clone(),
        label: entry.label.clone(),
    })
}

/// The gate mode named by a link's `g` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateMode {
    /// No gate (also any unknown or absent `g`).
    Open,
    /// Signed invites.
    Invite,
    /// Pick-a-name list.
    Names,
    /// OIDC (Google) sign-in.
    Google,
    /// Short code.
    Code,
    /// E-mail code.
    Email,
}

impl GateMode {
    /// Parse `g`; anything unknown is `Open`, like Kibitz.
    pub fn from_param(g: Option<&str>) -> GateMode {
        match g {
            Some("invite") => GateMode::Invite,
            Some("names") => GateMode::Names,
            Some("google") => GateMode::Google,
            Some("code") => GateMode::Code,
            Some("email") => GateMode::Email,
            _ => GateMode::Open,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            GateMode::Open => "open",
            GateMode::Invite => "invite",
            GateMode::Names => "names",
            GateMode::Google => "google",
            GateMode::Code => "code",
            GateMode::Email => "email",
        }
    }

    /// The manifest `mode` to pin for this gate, when the gate uses a room manifest.
    pub fn manifest_mode(self) -> Option<&'static str> {
        match self {
            GateMode::Invite => Some("invite"),
            GateMode::Names => Some("names"),
            GateMode::Google => Some("google"),
            _ => None,
        }
    }
}

/// The gate keys whose presence in the fragment makes Kibitz read the fragment, not the query.
pub const GATE_KEYS: [&str; 15] = [
    "g", "gn", "gk", "gm", "ge", "gc", "gt", "gh", "ghk", "ghn", "gho", "gl", "d", "ag", "n",
];

/// A parsed room link: `https://kibitz.chat/#standup?g=google&gk=…&gm=…` or a bare room name.
///
/// `gk`, `gm`, `ge` and `gn` are decoded only when `g` names a mode other than `open`; host fields
/// (`gh`, `ghk`, `ghn`, `gho`, `gl`) and `gc` are decoded for every mode. A corrupt `gk`/`gh`
/// is left `None` (the raw value stays available through [`RoomLink::param`]). The room is taken
/// verbatim from the fragment (no percent-decoding); use [`RoomLink::room_key`] for the id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoomLink {
    /// The room name as written in the link.
    pub room: String,
    /// Every gate parameter in order (fragment form, or the legacy query).
    pub params: Vec<(String, String)>,
    /// `g`.
    pub mode: Option<GateMode>,
    /// `gn`, split on `,`, trimmed, empties dropped.
    pub names: Option<Vec<String>>,
    /// `gk`: the creator's public JWK.
    pub creator_key: Option<Value>,
    /// `gm`: the cleartext room manifest token (absent when `ge` is present).
    pub manifest: Option<String>,
    /// `ge`: the sealed manifest.
    pub enc_manifest: Option<String>,
    /// `gc`: the OAuth client id.
    pub client_id: Option<String>,
    /// `gh`: the host public JWK.
    pub host_key: Option<Value>,
    /// `ghk`: the sealed host private key.
    pub host_key_sealed: Option<String>,
    /// `ghn`: the soft host name.
    pub host_name: Option<String>,
    /// `gho`: the OIDC host e-mail.
    pub host_email: Option<String>,
    /// `gl=1`: the lobby starts on.
    pub lobby_on_start: bool,
}

impl RoomLink {
    /// Parse a link or a bare room name (optionally followed by `?params`).
    pub fn parse(input: &str) -> Result<RoomLink, LinkError> {
        if input.len() > MAX_LINK_CHARS {
            return Err(LinkError::TooLong);
        }
        let input = js_trim(input);
        let (pre_hash, hash) = match input.find('#') {
            Some(i) => (&input[..i], Some(&input[i + 1..])),
            None if input.contains("://") => (input, None),
            None => ("", Some(input)),
        };
        let search = pre_hash.find('?').map(|i| &pre_hash[i + 1..]).unwrap_or("");
        let (room, frag) = match hash {
            Some(h) => match h.find('?') {
                Some(q) => (&h[..q], &h[q + 1..]),
                None => (h, ""),
            },
            None => ("", ""),
        };
        let frag_params = parse_query(frag);
        let params = if frag_params
            .iter()
            .any(|(k, _)| GATE_KEYS.contains(&k.as_str()))
        {
            frag_params
        } else {
            parse_query(search)
        };
        if room.is_empty() {
            return Err(LinkError::NoRoom);
        }
        let mut link = RoomLink {
            room: room.to_owned(),
            params,
            ..RoomLink::default()
        };
        link.decode_gate();
        Ok(link)
    }

    /// `normalize_room(room)`: the room key signed payloads use.
    pub fn room_key(&self) -> String {
        normalize_room(&self.room)
    }

    /// The first value of parameter `name`, like `URLSearchParams.get`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The gate mode (`Open` when absent or unknown).
    pub fn gate_mode(&self) -> GateMode {
        self.mode.unwrap_or(GateMode::Open)
    }

    /// The creator key from `gk`, imported for verification.
    pub fn creator_public_key(&self) -> Option<AgentPublicKey> {
        self.creator_key
            .as_ref()
            .and_then(|k| AgentPublicKey::from_jwk(k).ok())
    }

    fn decode_gate(&mut self) {
        let params = std::mem::take(&mut self.params);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mode = GateMode::from_param(
            params
                .iter()
                .find(|(k, _)| k == "g")
                .map(|(_, v)| v.as_str()),
        );
        self.mode = Some(mode);
        self.host_key = get("gh").and_then(|v| decode_json_b64(&v));
        self.host_key_sealed = get("ghk");
        self.host_name = get("ghn");
        self.host_email = get("gho");
        self.lobby_on_start = params
            .iter()
            .find(|(k, _)| k == "gl")
            .is_some_and(|(_, v)| v == "1");
        self.client_id = get("gc");
        if mode != GateMode::Open {
            self.names = get("gn").map(|v| {
                v.split(',')
                    .map(|s| js_trim(s).to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            });
            self.creator_key = get("gk").and_then(|v| decode_json_b64(&v));
            match (get("ge"), get("gm")) {
                (Some(ge), _) => self.enc_manifest = Some(ge),
                (None, Some(gm)) => self.manifest = Some(gm),
                (None, None) => {}
            }
        }
        self.params = params;
    }
}

/// Build a fragment-form room link: `{base}#{room}?g={mode}&gk={b64url(JSON(creator))}&gm={token}`.
pub fn build_room_link(
    base: &str,
    room: &str,
    mode: GateMode,
    creator: &AgentPublicKey,
    manifest_token: &str,
) -> String {
    let gk = b64::encode(creator.to_jwk().to_string());
    let mut out = format!("{base}#{room}?");
    let pairs = [
        ("g", mode.as_str()),
        ("gk", gk.as_str()),
        ("gm", manifest_token),
    ];
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    out.push_str(&ser.finish());
    out
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn decode_json_b64(v: &str) -> Option<Value> {
    let bytes = b64::decode(v)?;
    let text = String::from_utf8_lossy(&bytes);
    serde_json::from_str(text.strip_prefix('\u{feff}').unwrap_or(&text)).ok()
}
