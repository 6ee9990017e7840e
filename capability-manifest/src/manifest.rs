//! The agent manifest: our own signed document declaring each lane an agent wants, what
//! processes it and **where that data goes**.
//!
//! ```json
//! {
//!   "kind": "kibitz-agent-manifest.v1",
//!   "agent": { "name": "…", "version": "…", "publisher": "…", "homepage"?: "…", "description"?: "…" },
//!   "lanes": [
//!     { "capability": "hear-audio", "purpose": "…", "processor": "…", "optional": false,
//!       "destination": { "type": "local", "model": "whisper tiny.en", "runs_on": "…" } },
//!     { "capability": "read-chat", "purpose": "…", "processor": "…", "optional": false,
//!       "destination": { "type": "remote", "provider": "…", "endpoint": "https://…",
//!                        "model": "…", "region"?: "…", "retention": "…" } }
//!   ],
//!   "egress": ["https://api.example.com:443"],
//!   "issued_at": 1700000000,
//!   "expires_at"?: 1702592000
//! }
//! ```
//!
//! Every object also accepts an optional `"$comment"` string, since JSON has no comments.
//! Unknown members are refused (a signed document should say exactly what it means).
//!
//! [`AgentManifest::validate`] enforces: the `kind`; non-empty names; at least one lane; no two
//! lanes for one capability; every remote endpoint is `https://` (plain `http://` to
//! `127.0.0.1`, `localhost` or `[::1]` only with [`ValidateOptions::allow_insecure_local`], meant
//! for local tests); `egress` equals exactly the set of origins (`scheme://host:port`) of the
//! remote destinations; `expires_at > issued_at`. Unknown capabilities and lanes without a
//! destination are reported with their own errors by [`AgentManifest::from_json`].

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::capability::{Capability, ALL_ACT, ALL_PERCEIVE};
use crate::error::ManifestError;
use crate::grant::{clamp_utf16, Grant, MAX_BACKEND_CHARS};

/// The manifest's `kind`.
pub const MANIFEST_KIND: &str = "kibitz-agent-manifest.v1";
/// Manifests (JSON or signed token) larger than this are refused.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// An agent manifest (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentManifest {
    /// Free-form explanation (ignored).
    #[serde(rename = "$comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Always `kibitz-agent-manifest.v1`.
    pub kind: String,
    /// Who the agent is.
    pub agent: AgentInfo,
    /// One entry per Kibitz capability the agent asks for.
    pub lanes: Vec<Lane>,
    /// The origins (`scheme://host:port`) data may be sent to: exactly those of the remote lanes.
    #[serde(default)]
    pub egress: Vec<String>,
    /// When the manifest was signed, epoch seconds (set by `manifest sign`).
    #[serde(default)]
    pub issued_at: u64,
    /// When the manifest stops being valid, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// The agent's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInfo {
    /// Free-form explanation (ignored).
    #[serde(rename = "$comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Display name.
    pub name: String,
    /// Version of the agent.
    pub version: String,
    /// Who publishes and answers for the agent.
    pub publisher: String,
    /// Where to learn more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// What the agent does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One capability the agent asks for, and where the data of that lane goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lane {
    /// Free-form explanation (ignored).
    #[serde(rename = "$comment", default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The Kibitz capability name.
    pub capability: Capability,
    /// Why the agent needs it.
    pub purpose: String,
    /// What processes the data (component name).
    pub processor: String,
    /// The agent still works without this lane.
    #[serde(default)]
    pub optional: bool,
    /// Where the lane's data goes.
    pub destination: Destination,
}

/// Where a lane's data goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Destination {
    /// Processed on the agent's own machine; nothing leaves it.
    Local {
        /// Free-form explanation (ignored).
        #[serde(rename = "$comment", default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        /// The local model, e.g. `whisper tiny.en`.
        model: String,
        /// Where it runs, e.g. `cpu (2 threads)`.
        runs_on: String,
    },
    /// Sent to a remote service.
    Remote {
        /// Free-form explanation (ignored).
        #[serde(rename = "$comment", default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        /// Who runs the service, e.g. `OpenAI-compatible`.
        provider: String,
        /// The `https://` URL data is sent to.
        endpoint: String,
        /// The remote model.
        model: String,
        /// Where the service runs, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// What the service keeps and for how long.
        retention: String,
    },
}

impl Destination {
    /// True for a remote destination.
    pub fn is_remote(&self) -> bool {
        matches!(self, Destination::Remote { .. })
    }

    /// The model named by the destination.
    pub fn model(&self) -> &str {
        match self {
            Destination::Local { model, .. } | Destination::Remote { model, .. } => model,
        }
    }

    /// The short human description used in disclosures: `local <model>` or
    /// `<provider> <model> @ <host>`.
    pub fn describe(&self) -> String {
        match self {
            Destination::Local { model, .. } => format!("local {model}"),
            Destination::Remote {
                provider,
                endpoint,
                model,
                ..
            } => {
                let host = url::Url::parse(endpoint)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| endpoint.clone());
                format!("{provider} {model} @ {host}")
            }
        }
    }
}

/// Options for [`AgentManifest::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidateOptions {
    /// Accept `http://` remote endpoints on `127.0.0.1`, `localhost` and `[::1]`. For local tests
    /// against a model server on the loopback interface only; off by default.
    pub allow_insecure_local: bool,
}

impl AgentManifest {
    /// Parse manifest JSON, reporting unknown capabilities and lanes without a destination with
    /// their own errors, then check the schema. Does not run [`validate`](Self::validate).
    pub fn from_json(s: &str) -> Result<AgentManifest, ManifestError> {
        if s.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(MAX_MANIFEST_BYTES));
        }
        let value: Value =
            serde_json::from_str(s).map_err(|e| ManifestError::Schema(e.to_string()))?;
        AgentManifest::from_value(&value)
    }

    /// Like [`from_json`](Self::from_json), from a parsed value.
    pub fn from_value(value: &Value) -> Result<AgentManifest, ManifestError> {
        if let Some(kind) = value.get("kind").and_then(Value::as_str) {
            if kind != MANIFEST_KIND {
                return Err(ManifestError::WrongKind(kind.to_owned()));
            }
        }
        if let Some(lanes) = value.get("lanes").and_then(Value::as_array) {
            for (i, lane) in lanes.iter().enumerate() {
                let cap = lane.get("capability").and_then(Value::as_str);
                if let Some(name) = cap {
                    if Capability::from_name(name).is_none() {
                        return Err(ManifestError::UnknownCapability {
                            lane: i,
                            name: name.to_owned(),
                        });
                    }
                }
                if lane.is_object() && lane.get("destination").is_none_or(Value::is_null) {
                    return Err(ManifestError::LaneWithoutDestination {
                        lane: i,
                        capability: cap.unwrap_or("?").to_owned(),
                    });
                }
            }
        }
        AgentManifest::deserialize(value).map_err(|e| ManifestError::Schema(e.to_string()))
    }

    /// Parse and validate.
    pub fn parse_and_validate(
        s: &str,
        opts: ValidateOptions,
    ) -> Result<AgentManifest, ManifestError> {
        let m = AgentManifest::from_json(s)?;
        m.validate(opts)?;
        Ok(m)
    }

    /// Check the consistency rules listed in the module docs.
    pub fn validate(&self, opts: ValidateOptions) -> Result<(), ManifestError> {
        if self.kind != MANIFEST_KIND {
            return Err(ManifestError::WrongKind(self.kind.clone()));
        }
        non_empty("agent.name", &self.agent.name)?;
        non_empty("agent.version", &self.agent.version)?;
        non_empty("agent.publisher", &self.agent.publisher)?;
        if self.lanes.is_empty() {
            return Err(ManifestError::NoLanes);
        }
        let mut seen = BTreeSet::new();
        let mut derived = BTreeSet::new();
        for (i, lane) in self.lanes.iter().enumerate() {
            if !seen.insert(lane.capability) {
                return Err(ManifestError::DuplicateLane(lane.capability));
            }
            non_empty(&format!("lanes[{i}].purpose"), &lane.purpose)?;
            non_empty(&format!("lanes[{i}].processor"), &lane.processor)?;
            match &lane.destination {
                Destination::Local { model, runs_on, .. } => {
                    non_empty(&format!("lanes[{i}].destination.model"), model)?;
                    non_empty(&format!("lanes[{i}].destination.runs_on"), runs_on)?;
                }
                Destination::Remote {
                    provider,
                    endpoint,
                    model,
                    retention,
                    ..
                } => {
                    non_empty(&format!("lanes[{i}].destination.provider"), provider)?;
                    non_empty(&format!("lanes[{i}].destination.model"), model)?;
                    non_empty(&format!("lanes[{i}].destination.retention"), retention)?;
                    derived.insert(endpoint_origin(i, endpoint, opts)?);
                }
            }
        }
        let mut declared = BTreeSet::new();
        for entry in &self.egress {
            declared.insert(
                egress_origin(entry).ok_or_else(|| ManifestError::BadEgress(entry.clone()))?,
            );
        }
        if let Some(missing) = derived.difference(&declared).next() {
            return Err(ManifestError::MissingEgress(missing.clone()));
        }
        if let Some(extra) = declared.difference(&derived).next() {
            return Err(ManifestError::UndeclaredEgress(extra.clone()));
        }
        if let Some(exp) = self.expires_at {
            if exp <= self.issued_at {
                return Err(ManifestError::ExpiryBeforeIssue);
            }
        }
        Ok(())
    }

    /// The origins data may go to, derived from the remote destinations (sorted, unique). Endpoints
    /// that are not valid URLs are skipped (validation refuses them).
    pub fn allowed_origins(&self) -> Vec<String> {
        let set: BTreeSet<String> = self
            .lanes
            .iter()
            .filter_map(|l| match &l.destination {
                Destination::Remote { endpoint, .. } => {
                    url::Url::parse(endpoint).ok().and_then(|u| origin_of(&u))
                }
                Destination::Local { .. } => None,
            })
            .collect();
        set.into_iter().collect()
    }

    /// True when any lane's data leaves the agent's machine.
    pub fn leaves_machine(&self) -> bool {
        self.lanes.iter().any(|l| l.destination.is_remote())
    }

    /// True when the manifest asks for no act capability.
    pub fn is_read_only(&self) -> bool {
        self.lanes.iter().all(|l| l.capability.is_perceive())
    }

    /// The lane for `cap`, if declared.
    pub fn lane(&self, cap: Capability) -> Option<&Lane> {
        self.lanes.iter().find(|l| l.capability == cap)
    }

    /// The grant the manifest asks for: its lanes' capabilities in canonical order, the backend
    /// summary as `backend`, `egress` when data leaves the machine, and `expires_at`.
    pub fn requested_grant(&self) -> Grant {
        let has = |c: &Capability| self.lane(*c).is_some();
        let backend = self.backend_summary();
        Grant {
            perceive: ALL_PERCEIVE.into_iter().filter(has).collect(),
            act: ALL_ACT.into_iter().filter(has).collect(),
            backend: (!backend.is_empty()).then_some(backend),
            egress: self.leaves_machine(),
            expires_at: self.expires_at,
        }
    }

    /// At most 80 characters saying where the data goes, e.g. `local whisper tiny.en` or
    /// `OpenAI-compatible gpt-4o-mini @ api.example.com`. Remote destinations come first (they are
    /// what a host most needs to see), then `local <model>, <model>…`; parts joined with ` + ` are
    /// added only while they fit whole, and a single part longer than 80 characters is cut.
    pub fn backend_summary(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for lane in self.lanes.iter().filter(|l| l.destination.is_remote()) {
            let d = lane.destination.describe();
            if !parts.contains(&d) {
                parts.push(d);
            }
        }
        let mut local_models: Vec<&str> = Vec::new();
        for lane in self.lanes.iter().filter(|l| !l.destination.is_remote()) {
            let model = lane.destination.model();
            if !local_models.contains(&model) {
                local_models.push(model);
            }
        }
        if !local_models.is_empty() {
            parts.push(format!("local {}", local_models.join(", ")));
        }
        let mut out = String::new();
        for part in parts {
            let candidate = if out.is_empty() {
                part
            } else {
                format!("{out} + {part}")
            };
            if candidate.encode_utf16().count() > MAX_BACKEND_CHARS {
                if out.is_empty() {
                    out = clamp_utf16(&candidate, MAX_BACKEND_CHARS);
                }
                break;
            }
            out = candidate;
        }
        out
    }

    /// Compact JSON (the exact payload `manifest sign` signs).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Pretty JSON for files.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The JSON Schema of the manifest.
    pub fn json_schema() -> schemars::schema::RootSchema {
        schemars::schema_for!(AgentManifest)
    }
}

fn non_empty(field: &str, v: &str) -> Result<(), ManifestError> {
    if v.trim().is_empty() {
        Err(ManifestError::EmptyField(field.to_owned()))
    } else {
        Ok(())
    }
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn origin_of(u: &url::Url) -> Option<String> {
    let host = u.host_str()?;
    let port = u.port_or_known_default()?;
    Some(format!("{}://{}:{}", u.scheme(), host, port))
}

fn endpoint_origin(
    lane: usize,
    endpoint: &str,
    opts: ValidateOptions,
) -> Result<String, ManifestError> {
    let bad = |reason: &str| ManifestError::BadEndpoint {
        lane,
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let u = url::Url::parse(endpoint).map_err(|e| bad(&e.to_string()))?;
    let host = u.host_str().ok_or_else(|| bad("no host"))?.to_owned();
    match u.scheme() {
        "https" => {}
        "http" if opts.allow_insecure_local && is_loopback_host(&host) => {}
        _ => {
            return Err(ManifestError::InsecureEndpoint {
                lane,
                endpoint: endpoint.to_owned(),
            })
        }
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("credentials must not appear in a public manifest"));
    }
    origin_of(&u).ok_or_else(|| bad("no port"))
}

fn egress_origin(entry: &str) -> Option<String> {
    let u = url::Url::parse(entry).ok()?;
    if !matches!(u.scheme(), "http" | "https")
        || !u.username().is_empty()
        || u.password().is_some()
        || u.query().is_some()
        || u.fragment().is_some()
        || u.path() != "/"
    {
        return None;
    }
    origin_of(&u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn summarizer() -> Value {
        json!({
            "$comment": "test",
            "kind": MANIFEST_KIND,
            "agent": {"name": "Summarizer", "version": "0.1.0", "publisher": "Example"},
            "lanes": [
                {"capability": "read-chat", "purpose": "summarise", "processor": "llm", "optional": false,
                 "destination": {"type": "remote", "provider": "OpenAI-compatible", "endpoint": "https://api.example.com/v1/chat/completions",
                                 "model": "gpt-4o-mini", "retention": "none"}},
                {"capability": "read-roster", "purpose": "names", "processor": "roster",
                 "destination": {"type": "local", "model": "none", "runs_on": "cpu", "$comment": "ok"}}
            ],
            "egress": ["https://api.example.com:443"],
            "issued_at": 100
        })
    }

    fn parse(v: &Value) -> Result<AgentManifest, ManifestError> {
        let m = AgentManifest::from_json(&v.to_string())?;
        m.validate(ValidateOptions::default())?;
        Ok(m)
    }

    #[test]
    fn valid_manifest_and_helpers() {
        let m = parse(&summarizer()).unwrap();
        assert_eq!(
            m.allowed_origins(),
            vec!["https://api.example.com:443".to_owned()]
        );
        assert!(m.leaves_machine());
        assert!(m.is_read_only());
        let g = m.requested_grant();
        assert_eq!(
            g.perceive,
            vec![Capability::ReadChat, Capability::ReadRoster]
        );
        assert!(g.act.is_empty());
        assert!(g.egress);
        assert_eq!(
            m.backend_summary(),
            "OpenAI-compatible gpt-4o-mini @ api.example.com + local none"
        );
        // Round trip keeps every field.
        assert_eq!(AgentManifest::from_json(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn bad_manifests() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, ManifestError)> = vec![
            (
                Box::new(|v| v["lanes"][0]["capability"] = json!("read-minds")),
                ManifestError::UnknownCapability {
                    lane: 0,
                    name: "read-minds".into(),
                },
            ),
            (
                Box::new(|v| {
                    v["lanes"][1].as_object_mut().unwrap().remove("destination");
                }),
                ManifestError::LaneWithoutDestination {
                    lane: 1,
                    capability: "read-roster".into(),
                },
            ),
            (
                Box::new(|v| {
                    v["lanes"][0]["destination"]["endpoint"] = json!("http://api.example.com/v1")
                }),
                ManifestError::InsecureEndpoint {
                    lane: 0,
                    endpoint: "http://api.example.com/v1".into(),
                },
            ),
            (
                Box::new(|v| {
                    v["lanes"][0]["destination"]["endpoint"] = json!("http://127.0.0.1:8080/v1")
                }),
                ManifestError::InsecureEndpoint {
                    lane: 0,
                    endpoint: "http://127.0.0.1:8080/v1".into(),
                },
            ),
            (
                Box::new(|v| v["egress"] = json!([])),
                ManifestError::MissingEgress("https://api.example.com:443".into()),
            ),
            (
                Box::new(|v| {
                    v["egress"] = json!(["https://api.example.com", "https://evil.example:443"])
                }),
                ManifestError::UndeclaredEgress("https://evil.example:443".into()),
            ),
            (
                Box::new(|v| v["egress"] = json!(["https://api.example.com/path"])),
                ManifestError::BadEgress("https://api.example.com/path".into()),
            ),
            (
                Box::new(|v| {
                    let lane = v["lanes"][1].clone();
                    v["lanes"].as_array_mut().unwrap().push(lane);
                }),
                ManifestError::DuplicateLane(Capability::ReadRoster),
            ),
            (Box::new(|v| v["lanes"] = json!([])), ManifestError::NoLanes),
            (
                Box::new(|v| v["kind"] = json!("other")),
                ManifestError::WrongKind("other".into()),
            ),
            (
                Box::new(|v| v["agent"]["name"] = json!("  ")),
                ManifestError::EmptyField("agent.name".into()),
            ),
            (
                Box::new(|v| v["expires_at"] = json!(50)),
                ManifestError::ExpiryBeforeIssue,
            ),
        ];
        for (mutate, want) in cases {
            let mut v = summarizer();
            mutate(&mut v);
            assert_eq!(parse(&v).unwrap_err(), want);
        }
        let mut v = summarizer();
        v["surprise"] = json!(1);
        assert!(matches!(parse(&v), Err(ManifestError::Schema(_))));
        let mut v = summarizer();
        v["lanes"][0]["destination"]["type"] = json!("cloud");
        assert!(matches!(parse(&v), Err(ManifestError::Schema(_))));
        let mut v = summarizer();
        v["lanes"][0]["destination"]["extra"] = json!(1);
        assert!(matches!(parse(&v), Err(ManifestError::Schema(_))));
        assert!(matches!(
            AgentManifest::from_json("{"),
            Err(ManifestError::Schema(_))
        ));
        let huge = format!("{{\"kind\":\"{}\"}}", "x".repeat(MAX_MANIFEST_BYTES));
        assert_eq!(
            AgentManifest::from_json(&huge),
            Err(ManifestError::TooLarge(MAX_MANIFEST_BYTES))
        );
    }

    #[test]
    fn insecure_local_only_with_flag() {
        let mut v = summarizer();
        v["lanes"][0]["destination"]["endpoint"] =
            json!("http://127.0.0.1:8080/v1/chat/completions");
        v["egress"] = json!(["http://127.0.0.1:8080"]);
        let m = AgentManifest::from_json(&v.to_string()).unwrap();
        assert!(matches!(
            m.validate(ValidateOptions::default()),
            Err(ManifestError::InsecureEndpoint { .. })
        ));
        let local = ValidateOptions {
            allow_insecure_local: true,
        };
        assert_eq!(m.validate(local), Ok(()));
        assert_eq!(
            m.allowed_origins(),
            vec!["http://127.0.0.1:8080".to_owned()]
        );
        v["lanes"][0]["destination"]["endpoint"] = json!("http://10.0.0.1:8080/v1");
        v["egress"] = json!(["http://10.0.0.1:8080"]);
        let m = AgentManifest::from_json(&v.to_string()).unwrap();
        assert!(matches!(
            m.validate(local),
            Err(ManifestError::InsecureEndpoint { .. })
        ));
        v["lanes"][0]["destination"]["endpoint"] = json!("https://user:pw@api.example.com/v1");
        v["egress"] = json!(["https://api.example.com"]);
        let m = AgentManifest::from_json(&v.to_string()).unwrap();
        assert!(matches!(
            m.validate(local),
            Err(ManifestError::BadEndpoint { .. })
        ));
    }

    #[test]
    fn backend_summary_fits_whole_parts() {
        let mut v = summarizer();
        v["lanes"][1]["destination"]["model"] = json!("x".repeat(40));
        let m = AgentManifest::from_value(&v).unwrap();
        assert_eq!(
            m.backend_summary(),
            "OpenAI-compatible gpt-4o-mini @ api.example.com"
        );
        v["lanes"][0]["destination"]["model"] = json!("y".repeat(100));
        let m = AgentManifest::from_value(&v).unwrap();
        assert_eq!(m.backend_summary().chars().count(), 80);
        v["lanes"][0]["destination"] =
            json!({"type":"local","model":"whisper tiny.en","runs_on":"cpu"});
        v["lanes"][1]["destination"]["model"] = json!("whisper tiny.en");
        let m = AgentManifest::from_value(&v).unwrap();
        assert_eq!(m.backend_summary(), "local whisper tiny.en");
    }

    #[test]
    fn schema_mentions_capabilities_and_comment() {
        let schema = serde_json::to_string(&AgentManifest::json_schema()).unwrap();
        assert!(schema.contains("receive-directed"));
        assert!(schema.contains("$comment"));
        assert!(schema.contains("remote"));
    }
}
