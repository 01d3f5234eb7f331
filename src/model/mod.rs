//! The nouns every layer shares, and nothing else: this module imports nothing from the
//! rest of the crate, so it can be learned first and depended on by all.
//!
//! - [`spec`]: a validated scenario (what `scenario` loads, what `plan` compiles);
//! - [`plan`]: a compiled plan (what the swarm runs and a repro stores);
//! - [`history`]: what a run saw (attempts, causes, counters, probes, violations);
//! - [`names`]: phases, oracle kinds, stop reasons and verdicts;
//! - [`learned`]: invariants learned by calibration, and what calibration observed;
//! - [`bad_token`]: the bad-token catalogue;
//! - [`path`]: field paths (plain names, dotted paths, JSON Pointers) into messages;
//! - [`units`]: durations as integer microseconds in serde;
//! - [`text`]: text read from files, UTF-8 or the place where it is not;
//! - [`url`]: the port of a target URL;
//! - [`words`]: plurals and "did you mean" for messages.

pub mod bad_token;
pub mod history;
pub mod json;
pub mod learned;
pub mod names;
pub mod path;
pub mod plan;
pub mod spec;
pub mod text;
pub mod units;
pub mod url;
pub mod words;

pub use bad_token::{BadToken, Policy, StatedClaims};
pub use history::{keep_attempt, ATTEMPTS_KEPT_FIRST, ATTEMPTS_KEPT_LATEST};
pub use history::{
    Answer, Attempt, BarrierStats, CaptureTally, Cause, CheckedMet, ClientStalls, ConnReport,
    Counters, ExpectCounts, Involved, LenientAcceptance, Misread, Outcome, Probe, RendezvousInfo,
    SequenceMissed, Stall, StreamEnded, Tally, Violation,
};
pub use learned::{LearnedOracles, LearnedReply, Observation, SEQUENCE_SET_ASIDE_WHY};
pub use names::{OracleKind, Phase, Phases, StopReason, Verdict};
pub use plan::{
    planned_jti, script_rendezvous, script_size, Action, AuthPlan, BarrierPlan, ConnPlan,
    ExpectPlan, ExpectRare, Leftovers, Plan, RendezvousPlan, ScriptRendezvous, ScriptSize, Shard,
    TokenPlan, MARKER, RUN_SUFFIX,
};
pub use spec::*;
pub use text::{utf8_text, NotUtf8};
