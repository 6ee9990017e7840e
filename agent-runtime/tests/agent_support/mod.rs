//! Fixtures for agent, gate and egress tests: signed manifests and a fake room.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use agent_runtime::agent::{AgentSpec, PortError, RoomPort};
use agent_runtime::wire::presence::Roster;
use async_trait::async_trait;
use capability_manifest::{
    sign_manifest, AgentKey, AgentManifest, Capability, Grant, ValidateOptions,
    VerifyManifestOptions,
};
use serde_json::{json, Value};

/// A manifest declaring `caps` as local lanes (plus remote lanes to `remote` endpoints).
pub(crate) fn manifest_json(caps: &[Capability], remote: &[(Capability, &str)]) -> Value {
    let mut lanes: Vec<Value> = caps
        .iter()
        .map(|c| {
            json!({"capability": c.as_str(), "purpose": "test", "processor": "test",
                   "destination": {"type": "local", "model": "none", "runs_on": "cpu"}})
        })
        .collect();
    let mut egress = Vec::new();
    for (c, endpoint) in remote {
        lanes.push(
            json!({"capability": c.as_str(), "purpose": "test", "processor": "llm",
            "destination": {"type": "remote", "provider": "test", "endpoint": endpoint,
                            "model": "m", "retention": "none"}}),
        );
        let u = url::Url::parse(endpoint).unwrap();
        egress.push(format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap(),
            u.port_or_known_default().unwrap()
        ));
    }
    json!({
        "kind": "kibitz-agent-manifest.v1",
        "agent": {"name": "Test agent", "version": "0.1.0", "publisher": "tests"},
        "lanes": lanes,
        "egress": egress,
        "issued_at": 1_700_000_000u64,
    })
}

/// Options that accept loopback `http://` endpoints, at a fixed time.
pub(crate) fn verify_opts() -> VerifyManifestOptions {
    let mut v = VerifyManifestOptions::at(1_700_000_100);
    v.validate = ValidateOptions {
        allow_insecure_local: true,
    };
    v
}

/// Sign a manifest value; returns the token.
pub(crate) fn sign(value: &Value) -> String {
    let m = AgentManifest::from_value(value).unwrap();
    let key = AgentKey::generate();
    sign_manifest(
        &m,
        &key,
        ValidateOptions {
            allow_insecure_local: true,
        },
    )
    .unwrap()
    .token
}

/// An [`AgentSpec`] for a manifest declaring `caps` (local lanes only).
pub(crate) fn spec(caps: &[Capability]) -> AgentSpec {
    AgentSpec {
        verify: verify_opts(),
        ..AgentSpec::new(sign(&manifest_json(caps, &[])))
    }
}

/// What the fake room saw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sent {
    Chat(String),
    ChatTo(String, String),
    App(Value),
    AppTo(String, Value),
}

/// A fake room: records sends, serves a fixed roster and host grant.
#[derive(Debug, Default)]
pub(crate) struct FakeRoom {
    pub(crate) sent: Mutex<Vec<Sent>>,
    pub(crate) roster: Mutex<Option<Roster>>,
    pub(crate) grant: Mutex<Option<Grant>>,
}

impl FakeRoom {
    pub(crate) fn with_grant(grant: Grant) -> Arc<FakeRoom> {
        Arc::new(FakeRoom {
            grant: Mutex::new(Some(grant)),
            ..FakeRoom::default()
        })
    }

    pub(crate) fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl RoomPort for FakeRoom {
    fn self_id(&self) -> String {
        "agent-voice-id".into()
    }
    fn roster(&self) -> Option<Roster> {
        self.roster.lock().unwrap().clone()
    }
    fn host_grant(&self) -> Grant {
        self.grant
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(Grant::agent_default)
    }
    async fn send_chat(&self, text: &str) -> Result<(), PortError> {
        self.sent.lock().unwrap().push(Sent::Chat(text.into()));
        Ok(())
    }
    async fn send_chat_to(&self, to: &str, text: &str) -> Result<(), PortError> {
        self.sent
            .lock()
            .unwrap()
            .push(Sent::ChatTo(to.into(), text.into()));
        Ok(())
    }
    async fn send_app(&self, data: &Value) -> Result<(), PortError> {
        self.sent.lock().unwrap().push(Sent::App(data.clone()));
        Ok(())
    }
    async fn send_app_to(&self, to: &str, data: &Value) -> Result<(), PortError> {
        self.sent
            .lock()
            .unwrap()
            .push(Sent::AppTo(to.into(), data.clone()));
        Ok(())
    }
}

/// A grant with the given lists.
pub(crate) fn grant(perceive: &[Capability], act: &[Capability]) -> Grant {
    Grant {
        perceive: perceive.to_vec(),
        act: act.to_vec(),
        ..Grant::default()
    }
}
