//! Commands stampede runs for the user (`--reset CMD`, `[auth] tokens = { command = … }`)
//! run in a process group of their own, so that giving up on one (its timeout, Ctrl-C)
//! stops everything it started. Killing only the shell left its children running,
//! reparented to PID 1: `--reset "sleep 601; echo done" --reset-timeout 2s` said
//! `(killed)` and left the `sleep` behind.
//!
//! A second Ctrl-C leaves at once (`std::process::exit`), which runs no destructor: the
//! groups still running are listed here, and [`kill_running`] kills them on the way out.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

/// The groups of the commands running now: every armed [`GroupKill`]'s. Process-wide,
/// because what reads it is: the immediate exit, in `main`, knows nothing of the futures
/// that started the commands (and does not wait for them to drop).
static RUNNING: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// [`RUNNING`], whatever a thread that panicked holding it left: a set of ids stays valid
/// at every step, and an exit must still find the groups.
fn running() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kills the process group of every command still running (SIGKILL, as when one is given
/// up on), for an immediate exit, which drops nothing: without it a `--reset` or token
/// command, and all it started, ran on after stampede had gone. Sends the signals and
/// returns; it waits for nothing.
pub fn kill_running() {
    for group in std::mem::take(&mut *running()) {
        kill_group(group);
    }
}

/// Makes `command` start in a new process group, the child its leader (its group id is its
/// process id). Elsewhere than Unix, nothing.
pub fn own_group(command: &mut tokio::process::Command) -> &mut tokio::process::Command {
    #[cfg(unix)]
    command.process_group(0);
    command
}

/// Kills the process group of a child started with [`own_group`] when dropped while
/// armed: when its command is given up on (a timeout, Ctrl-C dropping the future that ran
/// it). [`disarm`](GroupKill::disarm) it once the command has ended on its own: what it
/// left running on purpose (a server a reset restarted in the background) then stays.
#[derive(Debug)]
pub struct GroupKill {
    /// The group's id (its leader's pid); `None` once disarmed, or when the child had
    /// none (it had already been reaped).
    group: Option<u32>,
}

impl GroupKill {
    /// Armed for the group `child` leads (`child.id()`, read before the child is moved),
    /// and listed for [`kill_running`].
    pub fn new(child: Option<u32>) -> Self {
        if let Some(group) = child {
            running().insert(group);
        }
        Self { group: child }
    }

    /// The command ended by itself: leave its group alone.
    pub fn disarm(&mut self) {
        if let Some(group) = self.group.take() {
            running().remove(&group);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            running().remove(&group);
            kill_group(group);
        }
    }
}

/// Sends SIGKILL to every process of group `group`. A group that is gone already is no
/// error (nothing is left to stop). Elsewhere than Linux, nothing: the child itself is
/// still killed by `kill_on_drop`.
fn kill_group(group: u32) {
    #[cfg(target_os = "linux")]
    {
        let pid = i32::try_from(group)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = group;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No such group: ids above `i32::MAX` are never process ids, so no kill is sent.
    const NONE: u32 = u32::MAX - 7;

    #[test]
    fn a_running_command_is_listed_until_disarmed_or_dropped() {
        let mut kill = GroupKill::new(Some(NONE));
        assert!(running().contains(&NONE));
        kill.disarm();
        assert!(!running().contains(&NONE));
        let kill = GroupKill::new(Some(NONE - 1));
        assert!(running().contains(&(NONE - 1)));
        drop(kill);
        assert!(!running().contains(&(NONE - 1)));
    }
}

/// For tests of the commands' callers: a command that starts a grandchild (`sleep 300`,
/// its pid written to a file) and waits for it, and a bounded wait for that pid to end.
#[cfg(all(test, target_os = "linux"))]
// Test helpers: a failed expectation is the test's failure.
#[allow(clippy::expect_used)]
pub(crate) mod testing {
    use std::path::Path;
    use std::time::Duration;

    /// `sh` text that starts `sleep 300` in the background, writes its pid to `pidfile`
    /// and waits for it: a command that outlives any timeout, through its child.
    pub fn sleeping_grandchild(pidfile: &Path) -> String {
        format!("sleep 300 & echo $! > '{}'; wait", pidfile.display())
    }

    /// The pid in `pidfile` (written by [`sleeping_grandchild`]), waiting for it to be
    /// written for at most 5 s.
    pub async fn grandchild(pidfile: &Path) -> String {
        let found = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let text = std::fs::read_to_string(pidfile).unwrap_or_default();
                if text.ends_with('\n') {
                    return text.trim().to_string();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        found.expect("the command wrote its grandchild's pid within 5s")
    }

    /// Whether process `pid` runs: it exists and is no zombie (one left for PID 1 to reap
    /// has ended).
    pub fn running(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => false,
            // The state follows the command's name, which is in parentheses.
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        }
    }

    /// Whether process `pid` has ended within 5 s.
    pub async fn ends(pid: &str) -> bool {
        ends_within(pid, Duration::from_secs(5)).await
    }

    /// Whether process `pid` has ended within `limit`.
    pub async fn ends_within(pid: &str, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            while running(pid) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok()
    }

    /// Ends `pid` if a test failed before its command's group did (no stray `sleep 300`).
    pub fn cleanup(pid: &str) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
}
