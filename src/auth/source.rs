//! Tokens stampede does not mint: read from a file or the scenario's list, or printed by a
//! command, once before the load; or fetched by a login request before each upgrade (the
//! swarm does that, with [`Token::with_value`]).
//!
//! Such tokens are opaque: no claims, no `jti`. Each gets a stable label in its place
//! (`file#12`, `list#3`, `command#2`, `login#5`) that names where it came from and never
//! shows any part of it.

use super::{repeats, AuthError, Token};
use crate::model::{SecretText, TokenPlan, TokenSource};
use crate::process_group::{own_group, GroupKill};
use std::process::Stdio;
use tokio::io::AsyncReadExt;

/// Most bytes a token command may print: a token list, not a data dump.
const MAX_COMMAND_OUTPUT: u64 = 16 << 20;

/// One opaque token and its label.
#[derive(Clone)]
pub struct Opaque {
    label: String,
    value: String,
}

/// Reads the tokens of `source` (runs its command), in order; empty for a login source,
/// whose tokens come per dial. An empty result from any other source is an error, and so
/// is one token given twice ([`repeats`]): each token gets one label.
pub async fn read_tokens(source: &TokenSource) -> Result<Vec<Opaque>, AuthError> {
    let (kind, text) = match source {
        TokenSource::Login(_) => return Ok(Vec::new()),
        TokenSource::List { values } => return list_tokens(values),
        TokenSource::File { path } => {
            let bytes = std::fs::read(path).map_err(|source| AuthError::File {
                what: "auth.tokens file",
                path: path.clone(),
                source,
            })?;
            let text = crate::model::utf8_text(bytes).map_err(|at| AuthError::NotUtf8 {
                what: "auth.tokens file",
                path: path.clone(),
                at,
            })?;
            ("file", text)
        }
        TokenSource::Command { run, dir, timeout } => {
            ("command", run_command(run, dir.as_deref(), *timeout).await?)
        }
    };
    let what = if kind == "file" {
        "auth.tokens file"
    } else {
        "auth.tokens command's output"
    };
    // Labels and messages count lines from 1, as editors do.
    let lines: Vec<(usize, &str)> = token_lines(&text).map(|(i, l)| (i + 1, l)).collect();
    no_repeats(what, "lines", &lines)?;
    let tokens = lines
        .iter()
        .map(|(line, value)| Opaque {
            label: format!("{kind}#{line}"),
            value: value.to_string(),
        })
        .collect();
    non_empty(tokens, what)
}

/// The scenario's listed tokens, labelled `list#N` (N: the entry, from 1).
fn list_tokens(values: &[SecretText]) -> Result<Vec<Opaque>, AuthError> {
    let what = "auth.tokens list";
    let mut entries = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        entries.push((i + 1, v.value().ok_or(AuthError::ListNotStored)?));
    }
    no_repeats(what, "entries", &entries)?;
    let tokens = entries
        .iter()
        .map(|(entry, value)| Opaque {
            label: format!("list#{entry}"),
            value: value.to_string(),
        })
        .collect();
    non_empty(tokens, what)
}

/// Fails when a token of `tokens` (position, text) repeats an earlier one, naming the
/// first such pair by position (`unit`: `entries`, `lines`).
fn no_repeats(what: &'static str, unit: &str, tokens: &[(usize, &str)]) -> Result<(), AuthError> {
    match repeats(tokens.iter().copied()).first() {
        Some(repeat) => Err(AuthError::Repeated {
            what,
            said: repeat.describe(unit),
        }),
        None => Ok(()),
    }
}

/// The tokens of a file or a command's output: one per line, trimmed, blank lines
/// skipped; with each one's 0-based line number. The scenario loader counts a token file's
/// by this same rule.
pub fn token_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.trim()))
        .filter(|(_, line)| !line.is_empty())
}

fn non_empty(tokens: Vec<Opaque>, what: &'static str) -> Result<Vec<Opaque>, AuthError> {
    if tokens.is_empty() {
        return Err(AuthError::Empty(what));
    }
    Ok(tokens)
}

/// Runs `sh -c RUN` (in a process group of its own) and returns its stdout; killed, with
/// all it started, when `limit` passes. Its stdout is never
/// shown (it holds tokens); a failure names the exit status and stderr's last line.
async fn run_command(
    run: &str,
    dir: Option<&str>,
    limit: std::time::Duration,
) -> Result<String, AuthError> {
    let failed = |reason: String| AuthError::Command {
        run: run.to_string(),
        reason,
    };
    let mut command = tokio::process::Command::new("sh");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = own_group(
        command
            .arg("-c")
            .arg(run)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true),
    )
    .spawn()
    .map_err(|e| failed(format!("cannot start sh: {e}")))?;
    // Given up on (the timeout, or Ctrl-C dropping this future), the whole group goes:
    // killing the shell alone left what it started running.
    let mut group = GroupKill::new(child.id());
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(failed("its output could not be read".into()));
    };
    let collect = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut stdout = stdout.take(MAX_COMMAND_OUTPUT);
        let mut stderr = stderr.take(64 << 10);
        let (o, e) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let status = child.wait().await;
        (o.and(e).and(status), out, err)
    };
    let (status, out, err) = tokio::time::timeout(limit, collect).await.map_err(|_| {
        failed(format!(
            "it did not finish within {limit:?} (auth.tokens timeout); it was killed"
        ))
    })?;
    group.disarm();
    let status = status.map_err(|e| failed(format!("reading its output failed: {e}")))?;
    if !status.success() {
        let err = String::from_utf8_lossy(&err);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let last: String = last.chars().take(200).collect();
        let said = if last.is_empty() {
            String::new()
        } else {
            format!("; its stderr ends: {last}")
        };
        let status = match status.code() {
            Some(code) => format!("it exited with code {code}"),
            None => "it was stopped by a signal".to_string(),
        };
        return Err(failed(format!("{status}{said}")));
    }
    String::from_utf8(out).map_err(|_| failed("its output is not UTF-8".into()))
}

/// Puts the source's tokens on the valid (unforged) slots of `tokens`: the `k`-th valid
/// slot gets token `k mod n`, so with fewer tokens than slots they are reused in turn.
/// For a login source each valid slot is marked to log in before it dials, labelled
/// `login#K` (K: the slot's ordinal among valid slots, from 1).
pub fn assign(tokens: &mut [Token], slots: &[TokenPlan], source: &TokenSource, opaque: &[Opaque]) {
    let valid = slots
        .iter()
        .zip(tokens.iter_mut())
        .filter(|(slot, _)| slot.forge.is_none());
    for (k, (_, token)) in valid.enumerate() {
        match (source, opaque.get(k % opaque.len().max(1))) {
            // Not minted: when these expire is their issuer's to know.
            (TokenSource::Login(_), _) => {
                token.jwt = None;
                token.login = true;
                token.jti = format!("login#{}", k + 1);
                token.exp = None;
            }
            (_, Some(o)) => {
                token.jwt = Some(o.value.clone());
                token.jti = o.label.clone();
                token.exp = None;
            }
            (_, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token command past its timeout is killed with everything it started: its
    /// grandchild (`sleep 300`) ends too, instead of running on under PID 1.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_token_command_past_its_timeout_is_killed_with_what_it_started() {
        use crate::process_group::testing::{cleanup, ends, grandchild, sleeping_grandchild};
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let command = sleeping_grandchild(&pidfile);
        let done = run_command(&command, None, std::time::Duration::from_secs(2)).await;
        let err = done.expect_err("the command runs past its timeout");
        assert!(err.to_string().contains("it was killed"), "{err}");
        let pid = grandchild(&pidfile).await;
        let ended = ends(&pid).await;
        cleanup(&pid);
        assert!(
            ended,
            "the token command's grandchild {pid} still runs after its timeout"
        );
    }
}
