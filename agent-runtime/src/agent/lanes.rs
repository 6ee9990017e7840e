//! [`Lanes`]: the capabilities an agent asks for, and the checks made before it starts.

use capability_manifest::{AgentManifest, Capability, Grant, SignedManifestError};

/// The capabilities an agent uses: required ones (it cannot work without them) and optional
/// ones (it uses them when granted). Built with [`Lanes::new`] and the chained methods.
///
/// ```
/// use agent_runtime::agent::Lanes;
/// use capability_manifest::Capability;
/// let lanes = Lanes::new()
///     .require(Capability::ReadChat)
///     .optional(Capability::HearAudio);
/// assert!(lanes.is_required(Capability::ReadChat));
/// assert!(!lanes.is_required(Capability::HearAudio));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lanes {
    required: Vec<Capability>,
    optional: Vec<Capability>,
}

impl Lanes {
    /// No lanes.
    pub fn new() -> Lanes {
        Lanes::default()
    }

    /// Add a required capability (moves it out of the optional set if it was there).
    pub fn require(mut self, cap: Capability) -> Lanes {
        self.optional.retain(|c| *c != cap);
        if !self.required.contains(&cap) {
            self.required.push(cap);
        }
        self
    }

    /// Add an optional capability (ignored if already required).
    pub fn optional(mut self, cap: Capability) -> Lanes {
        if !self.required.contains(&cap) && !self.optional.contains(&cap) {
            self.optional.push(cap);
        }
        self
    }

    /// Required capabilities, in the order added.
    pub fn required(&self) -> &[Capability] {
        &self.required
    }

    /// Optional capabilities, in the order added.
    pub fn optional_caps(&self) -> &[Capability] {
        &self.optional
    }

    /// Whether `cap` is required.
    pub fn is_required(&self, cap: Capability) -> bool {
        self.required.contains(&cap)
    }

    /// Every capability, required first.
    pub fn all(&self) -> impl Iterator<Item = Capability> + '_ {
        self.required.iter().chain(self.optional.iter()).copied()
    }

    /// The checks made before an agent starts:
    ///
    /// 1. every lane must be declared by the manifest, else
    ///    [`StartError::LanesExceedManifest`] listing all undeclared ones;
    /// 2. every lane required by the agent and not marked `optional` in the manifest must be in
    ///    `effective`, else [`StartError::RequiredLaneDenied`].
    ///
    /// Kibitz's agent default grants only `read-chat`, `read-roster` and `receive-directed`, and
    /// hosts widen grants after admission, so lanes that arrive later (`hear-audio`, …) should be
    /// optional: the agent starts, and the lane opens when the host grants it.
    pub fn check(
        &self,
        agent: &str,
        manifest: &AgentManifest,
        effective: &Grant,
    ) -> Result<(), StartError> {
        let undeclared: Vec<Capability> =
            self.all().filter(|c| manifest.lane(*c).is_none()).collect();
        if !undeclared.is_empty() {
            return Err(StartError::LanesExceedManifest {
                agent: agent.to_owned(),
                undeclared: names(&undeclared),
                declared: names(
                    &manifest
                        .lanes
                        .iter()
                        .map(|l| l.capability)
                        .collect::<Vec<_>>(),
                ),
            });
        }
        for cap in &self.required {
            let optional_in_manifest = manifest.lane(*cap).is_some_and(|l| l.optional);
            if !optional_in_manifest && !effective.allows(*cap) {
                return Err(StartError::RequiredLaneDenied {
                    agent: agent.to_owned(),
                    cap: *cap,
                });
            }
        }
        Ok(())
    }
}

fn names(caps: &[Capability]) -> String {
    caps.iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an agent was not started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The signed manifest did not verify (signature, key pin, schema, expiry).
    #[error("agent manifest rejected: {0}")]
    Unverified(#[from] SignedManifestError),
    /// The agent's `lanes()` ask for capabilities its manifest does not declare.
    #[error(
        "agent {agent:?} asks for lanes its manifest does not declare: {undeclared} \
         (the manifest declares: {declared}); add them to the manifest and sign it again"
    )]
    LanesExceedManifest {
        /// The agent's name.
        agent: String,
        /// The undeclared capabilities, comma-separated.
        undeclared: String,
        /// What the manifest declares, comma-separated.
        declared: String,
    },
    /// A required lane is not in the effective grant.
    #[error(
        "agent {agent:?} requires {cap}, which the effective grant does not include; \
         ask the host to grant it or make the lane optional"
    )]
    RequiredLaneDenied {
        /// The agent's name.
        agent: String,
        /// The denied capability.
        cap: Capability,
    },
    /// The egress client could not be built.
    #[error("egress client: {0}")]
    Egress(#[from] crate::egress::EgressError),
}
