//! Sans-I/O room state machines: the presence star (participant and authority roles), the
//! claim-or-join loop, the data-mesh planner, `caps` acceptance and chat de-duplication.
//!
//! Every machine here is a plain struct in the style of str0m / quinn-proto: inputs carry an
//! explicit `now: Instant`, outputs are queued and drained with `poll_output()`/`poll_action()`,
//! and `poll_timeout()` says when to call `handle_timeout(now)`. Nothing here touches a socket,
//! a clock or an async runtime; the tokio shell does, and tests drive the machines on a virtual
//! clock. Specs: kibitz-wire.md §2.3–2.4, §4, §5.1–5.4, §7; kibitz-agents.md §0.3, §3.5–3.10, §6.

pub mod allow_list;
pub mod authority;
pub mod caps_policy;
pub mod chat_dedupe;
pub mod gate;
pub mod join_loop;
pub mod lobby;
pub mod mesh_plan;
pub mod participant;
pub mod roster;
pub mod timers;

pub use allow_list::AllowListVerifier;
pub use authority::{
    AuthorityEvent, AuthorityOptions, AuthorityOutput, AuthorityState, AuthorityStats,
};
pub use caps_policy::{
    generation_of, member_generation, CapsContext, CapsPolicy, CapsRejected, Generation,
};
pub use chat_dedupe::{scope_mid, ChatDedupe, ChatVerdict, MidSequence};
pub use gate::{
    canonical_fingerprint, AllowAll, Credentials, GateDecision, GateOptions, IdentityVerifier,
};
pub use join_loop::{
    ClaimOutcome, ClaimPolicy, ConnectFailure, GiveUpReason, JoinAction, JoinEvent, JoinInput,
    JoinLoop, JoinLoopOptions,
};
pub use lobby::Knocker;
pub use mesh_plan::{
    should_initiate, MediaHealth, MeshAction, MeshEvent, MeshOptions, MeshPlanner,
};
pub use participant::{
    AssertionProvider, JoinParams, ParticipantError, ParticipantEvent, ParticipantOptions,
    ParticipantOutput, ParticipantState,
};
pub use roster::{roster_contains, roster_diff};
