//! Repro files: a self-contained plan plus the violation it reproduces.
//!
//! The file holds the expanded plan, not a seed: replay never depends on RNG or sampling
//! stability (docs/race-patterns.md, "Replay and shrinking"). Tokens are re-minted at
//! replay time with fresh `jti`s, so one replay's leaked session cannot make the next one
//! fail.

use crate::model::units::opt_duration_us;
use crate::model::Plan;
use crate::model::{OracleKind, Violation};
use crate::reference::Bug;
use crate::results::{write_atomic, WriteError};
use crate::run::Target;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bumped when the format changes meaning. Version 2 added [`Repro::reference`]: in a
/// version 2 file its absence means an external target.
pub const REPRO_VERSION: u32 = 2;

/// The oldest version still read. A version 1 file says nothing about what its target
/// was: one whose `target` is a loopback URL is taken as made against the built-in server
/// (correct, no bug known: every version 1 file in `scenarios/regressions` was made that
/// way, on a port that is long gone), any other as made against that URL.
pub const OLDEST_READ: u32 = 1;

/// A found race, replayable without its scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repro {
    pub version: u32,
    pub tool_version: String,
    pub scenario: String,
    pub scenario_hash: String,
    /// The seed and round that produced the plan.
    pub seed: u64,
    pub round: u32,
    /// Where it was found (replay may point elsewhere).
    pub target: String,
    /// `Some` when `target` was the built-in reference server, started for the hunt: what
    /// was planted in it. Replay and shrink start the same server again; `None`: they go
    /// to `target` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceServer>,
    /// The oracle whose violation this reproduces: the signature replay and shrink keep.
    pub oracle: OracleKind,
    /// The violations seen when it was found.
    pub evidence: Vec<Violation>,
    /// Reproduction rate measured so far: `(reproduced, runs)`.
    #[serde(default)]
    pub rate: Option<(u32, u32)>,
    /// A broken-target finding ([`OracleKind::TargetHealth`]): the probe, its answers
    /// before and after, and the rounds that ran before `plan` since the last reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::HealthFinding>,
    /// The policy rule the hunt that found it judged by (the early-send family's refusal
    /// closes): replay and shrink set aside the same violations. Absent in repros of
    /// other hunts and in files written before it existed (then nothing is excused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<super::Excuse>,
    pub plan: Plan,
}

/// The built-in reference server a repro was made against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceServer {
    /// The planted bug; `None`: the correct server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bug: Option<Bug>,
    /// The bug's race window (µs in the file); `None`: the server's default.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_us"
    )]
    pub window: Option<Duration>,
}

impl ReferenceServer {
    /// What `target` was, when it was the built-in server.
    pub fn of(target: &Target) -> Option<ReferenceServer> {
        match target {
            Target::Reference { bug, window } => Some(ReferenceServer {
                bug: *bug,
                window: *window,
            }),
            Target::Url(_) => None,
        }
    }
}

/// Why a repro file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error("cannot read repro {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is a scenario, not a repro: run it with `stampede run`, or find a repro with \
         `stampede hunt`"
    )]
    Scenario { path: String },
    #[error("{path} is not a stampede repro: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: repro version {found}, this stampede reads {OLDEST_READ} to {REPRO_VERSION}")]
    Version { path: String, found: u32 },
    #[error("{path}: invalid plan: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{0}")]
    Write(#[from] WriteError),
    #[error("cannot encode repro: {0}")]
    Encode(serde_json::Error),
}

impl Repro {
    /// A repro of `plan` (built from `scenario` with `seed`) against `target`, judged by
    /// `oracle`: this build's version, round 0, no evidence, rate, health finding, policy
    /// rule or built-in server yet (set the fields that apply).
    pub fn for_plan(
        scenario: &crate::model::Scenario,
        seed: u64,
        plan: Plan,
        target: String,
        oracle: OracleKind,
    ) -> Repro {
        Repro {
            version: REPRO_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: scenario.name.clone(),
            scenario_hash: scenario.hash.clone(),
            seed,
            round: 0,
            target,
            reference: None,
            oracle,
            evidence: Vec::new(),
            rate: None,
            health: None,
            policy: None,
            plan,
        }
    }

    /// Reads a repro file, checking its plan. A version 1 file is brought up to the
    /// current version in memory (see [`OLDEST_READ`] for how its target is read).
    pub fn load(path: &Path) -> Result<Repro, ReproError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ReproError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut repro: Repro = serde_json::from_slice(&bytes).map_err(|source| {
            // A scenario given where a repro belongs: say which command takes it.
            if path.extension().is_some_and(|e| e == "toml") {
                ReproError::Scenario {
                    path: shown.clone(),
                }
            } else {
                ReproError::Parse {
                    path: shown.clone(),
                    source,
                }
            }
        })?;
        if !(OLDEST_READ..=REPRO_VERSION).contains(&repro.version) {
            return Err(ReproError::Version {
                path: shown,
                found: repro.version,
            });
        }
        if repro.version == 1 {
            repro.reference = is_loopback(&repro.target).then(ReferenceServer::default);
            repro.version = REPRO_VERSION;
        }
        repro.plan.check().map_err(|reason| ReproError::Invalid {
            path: shown,
            reason,
        })?;
        // Header values that came from the environment are stored as written: read them
        // again from this process's environment (a run refuses one still missing).
        repro.plan.fill_env(&|name| std::env::var(name).ok());
        Ok(repro)
    }

    /// Writes `repro-<oracle>-<plan hash>.json` into `dir`, or, when a file of that name
    /// is there already (an earlier hunt of the same scenario, maybe against another
    /// target or for another bug), `repro-<oracle>-<plan hash>-2.json`, `-3`, …: a repro
    /// is never overwritten. Returns the path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, ReproError> {
        std::fs::create_dir_all(dir).map_err(|source| WriteError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let stem = format!("repro-{}-{}", self.oracle.name(), &self.plan.hash()[..12]);
        let path = (1u32..)
            .map(|n| match n {
                1 => dir.join(format!("{stem}.json")),
                n => dir.join(format!("{stem}-{n}.json")),
            })
            .find(|p| !p.exists())
            .unwrap_or_else(|| dir.join(format!("{stem}.json")));
        self.save_as(&path)?;
        Ok(path)
    }

    pub fn save_as(&self, path: &Path) -> Result<(), ReproError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(ReproError::Encode)?;
        write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Whether `v` is the server's policy by the rule the hunt that found this judged by
    /// ([`Repro::policy`]): such a violation never counts as reproducing it.
    pub fn excuses(&self, v: &Violation) -> bool {
        self.policy.is_some_and(|rule| rule.excuses(v))
    }

    /// Connections in the plan.
    pub fn size(&self) -> usize {
        self.plan.conns.len()
    }

    /// Where it replays unless told otherwise: the built-in server with what was planted
    /// in it when it was made against that, else its stored target.
    pub fn replay_target(&self) -> Target {
        match self.reference {
            Some(r) => Target::Reference {
                bug: r.bug,
                window: r.window,
            },
            None => Target::Url(self.target.clone()),
        }
    }
}

/// Whether a `ws://` or `wss://` URL names this machine (`localhost`, `127.0.0.0/8`, `::1`).
fn is_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<tokio_tungstenite::tungstenite::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repro() -> Repro {
        let text = "name = \"r\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nusers = 2\nconnections_per_user = 2\ntoken = \"per-user\"\nsteps = [{ close = 1000 }]\n";
        let s = crate::scenario::load_str(text, "r.toml").unwrap();
        Repro {
            version: REPRO_VERSION,
            tool_version: "t".into(),
            scenario: s.name.clone(),
            scenario_hash: s.hash.clone(),
            seed: 1,
            round: 0,
            target: "ws://127.0.0.1:1/ws".into(),
            reference: Some(ReferenceServer {
                bug: Some(Bug::IdentitySwap),
                window: Some(Duration::from_millis(50)),
            }),
            oracle: OracleKind::Exclusivity,
            evidence: Vec::new(),
            rate: Some((3, 4)),
            health: None,
            policy: None,
            plan: crate::plan::build(&s, 1),
        }
    }

    #[test]
    fn a_written_repro_holds_every_field_the_scenario_loader_knows_it_by() {
        let json = serde_json::to_value(repro()).unwrap();
        for field in crate::scenario::REPRO_FIELDS {
            assert!(json.get(field).is_some(), "a repro file lacks {field}");
        }
    }

    #[test]
    fn a_repro_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = repro();
        let path = r.save(dir.path()).unwrap();
        assert_eq!(Repro::load(&path).unwrap(), r);
    }

    /// A second repro of the same plan and oracle (another hunt of the scenario, against
    /// another target or for another bug) goes beside the first, never over it.
    #[test]
    fn a_repro_of_the_same_plan_never_overwrites_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = repro();
        let mut second = repro();
        second.target = "ws://127.0.0.1:2/elsewhere".into();
        let a = first.save(dir.path()).unwrap();
        let b = second.save(dir.path()).unwrap();
        let c = second.save(dir.path()).unwrap();
        assert_ne!(a, b);
        assert!(b.to_string_lossy().ends_with("-2.json"), "{}", b.display());
        assert!(c.to_string_lossy().ends_with("-3.json"), "{}", c.display());
        assert_eq!(Repro::load(&a).unwrap(), first);
        assert_eq!(Repro::load(&b).unwrap(), second);
    }

    #[test]
    fn a_hand_edited_repro_with_a_dangling_token_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = repro();
        r.plan.conns[0].token = 99;
        let path = dir.path().join("bad.json");
        r.save_as(&path).unwrap();
        let err = Repro::load(&path).unwrap_err().to_string();
        assert!(err.contains("token 99"), "{err}");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(Repro::load(&path), Err(ReproError::Parse { .. })));
        let scenario = dir.path().join("golden-path.toml");
        std::fs::write(&scenario, "name = \"g\"\n").unwrap();
        let err = Repro::load(&scenario).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a scenario, not a repro: run it with `stampede run`"),
            "{err}"
        );
    }

    /// A repro edited to nest loops past what a scenario may (2^32 - 1 times 2^32 - 1
    /// sends) is refused as the scenario would be, with the figure and the limit, not
    /// replayed.
    #[test]
    fn a_hand_edited_repro_with_loops_past_the_action_limit_is_refused() {
        use crate::model::Step;
        let dir = tempfile::tempdir().unwrap();
        let mut r = repro();
        let send = Step::Send {
            template: serde_json::json!({ "type": "x" }),
        };
        let inner = Step::Repeat {
            times: u32::MAX,
            steps: vec![send],
            every: None,
        };
        r.plan.scripts[0] = vec![Step::Repeat {
            times: u32::MAX,
            steps: vec![inner],
            every: None,
        }];
        let path = dir.path().join("nested.json");
        r.save_as(&path).unwrap();
        let err = Repro::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("group 0's script expands to") && err.contains("at most 4294967295"),
            "{err}"
        );
    }

    #[test]
    fn a_repro_replays_where_it_was_made() {
        let r = repro();
        assert_eq!(
            r.replay_target(),
            Target::Reference {
                bug: Some(Bug::IdentitySwap),
                window: Some(Duration::from_millis(50)),
            }
        );
        let external = Repro {
            target: "ws://127.0.0.1:8080/ws".into(),
            reference: None,
            ..r
        };
        assert_eq!(
            external.replay_target(),
            Target::Url("ws://127.0.0.1:8080/ws".into())
        );
    }

    #[test]
    fn a_version_1_repro_on_a_loopback_target_was_made_against_the_built_in_server() {
        let dir = tempfile::tempdir().unwrap();
        for (target, built_in) in [
            ("ws://127.0.0.1:36971/ws", true),
            ("ws://localhost:9/ws", true),
            ("wss://[::1]:443/ws", true),
            ("wss://chat.example.com/ws", false),
            ("ws://10.0.0.5:8080/ws", false),
        ] {
            let mut json = serde_json::to_value(repro()).unwrap();
            let map = json.as_object_mut().unwrap();
            map.insert("version".into(), 1.into());
            map.insert("target".into(), target.into());
            map.remove("reference");
            let path = dir.path().join("v1.json");
            std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
            let r = Repro::load(&path).unwrap();
            assert_eq!(r.version, REPRO_VERSION);
            let want = if built_in {
                Target::Reference {
                    bug: None,
                    window: None,
                }
            } else {
                Target::Url(target.into())
            };
            assert_eq!(r.replay_target(), want, "{target}");
        }
    }

    #[test]
    fn every_regression_file_loads_as_made_against_the_built_in_server() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "json") {
                let r = Repro::load(&path).unwrap();
                assert!(
                    matches!(r.replay_target(), Target::Reference { bug: None, .. }),
                    "{}",
                    path.display()
                );
            }
        }
    }
}
