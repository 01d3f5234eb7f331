use super::*;
use crate::model::{SecretText, DEV_SECRET};

const URL: &str = "ws://127.0.0.1:9/ws";

fn env(name: &str) -> SecretSource {
    SecretSource::Env {
        name: name.into(),
        default: Some(SecretText::from(DEV_SECRET)),
    }
}

/// The tester's case: no variable set. The notice says it is unset, that the development
/// secret is in use, and which variable to set, with no "or what it holds" aside.
#[test]
fn the_development_secret_notice_names_the_unset_variable_to_set() {
    let note = development_secret_note(URL, &env("STAMPEDE_JWT_SECRET"), |_| false);
    assert_eq!(
        note,
        "notice: STAMPEDE_JWT_SECRET is not set, so stampede's public development secret is \
         in use: tokens for ws://127.0.0.1:9/ws are signed with it. Fine for a test server; \
         for any other, set STAMPEDE_JWT_SECRET to the server's secret"
    );
    assert!(!note.contains('('), "{note}");
    assert!(!note.contains(DEV_SECRET), "{note}");
}

#[test]
fn the_development_secret_notice_names_where_else_it_came_from() {
    let set = development_secret_note(URL, &env("CHAT_SECRET"), |name| name == "CHAT_SECRET");
    assert!(
        set.starts_with("notice: CHAT_SECRET holds stampede's public development secret:"),
        "{set}"
    );
    assert!(
        set.ends_with("set CHAT_SECRET to the server's secret"),
        "{set}"
    );
    let file = SecretSource::File {
        path: "dev.key".into(),
    };
    let from_file = development_secret_note(URL, &file, |_| false);
    assert!(
        from_file.contains("the secret file dev.key holds"),
        "{from_file}"
    );
    let literal = development_secret_note(URL, &SecretSource::literal(DEV_SECRET), |_| true);
    assert!(literal.contains("set [auth] secret to"), "{literal}");
    for note in [set, from_file, literal] {
        assert!(!note.contains(DEV_SECRET), "{note}");
    }
}

#[test]
fn threads_is_a_positive_count_given_before_or_after_the_subcommand() {
    use clap::Parser;
    let after = Cli::try_parse_from(["stampede", "run", "s.toml", "--threads", "1"]);
    let before = Cli::try_parse_from(["stampede", "--threads", "3", "run", "s.toml"]);
    assert_eq!(
        after.ok().and_then(|c| c.thread_count()).map(|n| n.get()),
        Some(1)
    );
    assert_eq!(
        before.ok().and_then(|c| c.thread_count()).map(|n| n.get()),
        Some(3)
    );
    let zero = Cli::try_parse_from(["stampede", "run", "s.toml", "--threads", "0"]);
    assert!(zero.is_err(), "0 threads cannot run anything");
    // A count that would exhaust the machine at the runtime's start is refused up front.
    let huge = Cli::try_parse_from(["stampede", "--threads", "100000", "run", "s.toml"]);
    let said = huge.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(said.contains("from 1 to 1024, found \"100000\""), "{said}");
    let most = Cli::try_parse_from(["stampede", "--threads", "1024", "run", "s.toml"]);
    assert_eq!(
        most.ok().and_then(|c| c.thread_count()).map(|n| n.get()),
        Some(1024)
    );
    // After the name of every command that drives connections, before that of any.
    for command in [
        &["learn", "s.toml"][..],
        &["hunt", "s.toml"],
        &["replay", "r.json"],
        &["shrink", "r.json"],
        &["serve"],
    ] {
        let mut args = vec!["stampede"];
        args.extend(command);
        args.extend(["--threads", "2"]);
        let cli = Cli::try_parse_from(&args);
        assert_eq!(
            cli.ok().and_then(|c| c.thread_count()).map(|n| n.get()),
            Some(2),
            "{args:?}"
        );
    }
    let before = Cli::try_parse_from(["stampede", "--threads", "2", "validate", "s.toml"]);
    assert!(before.is_ok(), "{before:?}");
}

/// `--threads` is shown, and taken after the command's name, only on the commands that
/// drive connections: `validate`, `plan`, `compare`, `report`, `merge`, `completions`
/// and `man` drive none.
#[test]
fn only_the_commands_that_drive_connections_show_threads() {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    // As the binary's help is: built, so that a global argument reaches every command.
    cli.build();
    for name in ["run", "learn", "hunt", "replay", "shrink", "serve"] {
        let help = cli
            .find_subcommand_mut(name)
            .unwrap()
            .render_help()
            .to_string();
        assert!(help.contains("--threads <N>"), "{name}: {help}");
    }
    for name in [
        "validate",
        "plan",
        "compare",
        "report",
        "merge",
        "completions",
        "man",
    ] {
        let help = cli
            .find_subcommand_mut(name)
            .unwrap()
            .render_help()
            .to_string();
        assert!(!help.contains("--threads"), "{name}: {help}");
    }
}

#[test]
fn the_thread_count_in_the_environment_is_read_apart_and_named_when_bad() {
    assert_eq!(threads_in_env(None), Ok(None));
    assert_eq!(
        threads_in_env(Some("  ")),
        Ok(None),
        "empty means the default"
    );
    assert_eq!(
        threads_in_env(Some("2")).map(|n| n.map(|n| n.get())),
        Ok(Some(2))
    );
    for bad in ["0", "abc", "100000"] {
        let said = threads_in_env(Some(bad)).err().unwrap_or_default();
        assert!(
            said.starts_with("STAMPEDE_THREADS: expected a whole number"),
            "{said}"
        );
    }
}

/// A round that could not judge the target says its verdict and what the verdict saw,
/// never a violation count (an auth misconfiguration's refused tokens are liveness
/// "violations" that are no findings); a judged round counts its violations.
#[test]
fn a_round_line_says_the_verdict_of_a_round_that_could_not_judge() {
    let round = |violations: u64, unjudged: Option<(crate::model::Verdict, &str)>| {
        hunt::round_result(&crate::hunt::Progress {
            round: 0,
            connections: 20,
            planned: 20,
            violations,
            unjudged: unjudged.map(|(verdict, hint)| crate::hunt::Unjudged {
                verdict,
                hint: hint.into(),
            }),
            not_judged: None,
            interrupted: false,
            elapsed: std::time::Duration::ZERO,
            pressure: None,
        })
    };
    assert_eq!(round(3, None), "3 violations");
    assert_eq!(round(1, None), "1 violation");
    let auth = (
        crate::model::Verdict::AuthMisconfigured,
        "every token signed with the scenario's key was refused (http_401 ×20): check the signing \
         secret or key",
    );
    assert_eq!(
        round(20, Some(auth)),
        "auth misconfigured — every token signed with the scenario's key was refused (http_401 ×20)"
    );
    // A colon inside the parentheses (a close reason) is part of what was seen.
    let door = (
        crate::model::Verdict::AuthMisconfigured,
        "the server closed the connection of every token signed with the scenario's key before \
         accepting it (close_4401 \"auth: no\" ×2): check",
    );
    assert_eq!(
        round(2, Some(door)),
        "auth misconfigured — the server closed the connection of every token signed with the \
         scenario's key before accepting it (close_4401 \"auth: no\" ×2)"
    );
    let bare = (crate::model::Verdict::TargetUnusable, "");
    assert_eq!(round(0, Some(bare)), "target unusable — not judged");
}

/// A round line counts the connections the round dialled, and of how many it planned when
/// it stopped before the rest started (a closed port stops a round after its first
/// refusals), never the plan's count alone: "200 connections" of a round that tried 10
/// said it tried them all.
#[test]
fn a_round_line_counts_the_connections_the_round_dialled() {
    let line = |connections: usize, planned: usize| {
        hunt::round_connections(
            &crate::hunt::Progress {
                round: 0,
                connections,
                planned,
                violations: 0,
                unjudged: None,
                not_judged: None,
                interrupted: false,
                elapsed: std::time::Duration::ZERO,
                pressure: None,
            },
            5,
        )
    };
    assert_eq!(line(10, 200), "10 of 200 connections");
    assert_eq!(line(0, 3), "0 of 3 connections");
    assert_eq!(line(200, 200), "  200 connections");
    assert_eq!(line(1, 1), "    1 connection ");
}

/// A round that ran but judged no race (the hunt goes on) says so and why, not
/// "0 violations", which reads as a pass.
#[test]
fn a_round_line_says_a_round_made_inconclusive_by_shedding_judged_nothing() {
    let shed = crate::hunt::Unjudged {
        verdict: crate::model::Verdict::Inconclusive,
        hint: "shedding ate the race's coverage: on 4 of the 5 shared tokens the handshakes \
               overlapped only with ones the server shed (HTTP 429/503, close 1013 or a \
               `reject.shed` code: they never reach its session logic), and none was left"
            .into(),
    };
    let round = |violations: u64, not_judged: Option<crate::hunt::Unjudged>| {
        hunt::round_result(&crate::hunt::Progress {
            round: 3,
            connections: 20,
            planned: 20,
            violations,
            unjudged: None,
            not_judged,
            interrupted: false,
            elapsed: std::time::Duration::ZERO,
            pressure: None,
        })
    };
    assert_eq!(
        round(0, Some(shed)),
        "inconclusive — shedding ate the race's coverage"
    );
    assert_eq!(round(0, None), "0 violations");
}

/// A round Ctrl-C stopped says so when it found nothing (what it ran proves nothing); one
/// that found violations before the stop counts them.
#[test]
fn a_round_line_says_a_round_ctrl_c_stopped_found_nothing_before_it() {
    let round = |violations: u64| {
        hunt::round_result(&crate::hunt::Progress {
            round: 2,
            connections: 20,
            planned: 20,
            violations,
            unjudged: None,
            not_judged: None,
            interrupted: true,
            elapsed: std::time::Duration::ZERO,
            pressure: None,
        })
    };
    assert_eq!(
        round(0),
        "interrupted — no violation before Ctrl-C stopped it"
    );
    assert_eq!(round(2), "2 violations");
}

/// A shrink Ctrl-C stops writes the smaller plan it kept beside the minimal repro's path
/// (`-o FILE`, else the input), never at it, and the notice printed at the Ctrl-C names
/// the very file.
#[test]
fn an_interrupted_shrink_writes_and_names_the_partial_beside_its_output() {
    use clap::Parser;
    let partial = |args: &[&str]| {
        let cli = Cli::try_parse_from(args).expect("valid arguments");
        let Command::Shrink(shrink) = &cli.command else {
            panic!("parsed as another command");
        };
        (
            shrink.partial_out(),
            cli.command
                .interrupt_notice()
                .expect("a notice without -q")
                .into_owned(),
        )
    };
    let (path, notice) = partial(&["stampede", "shrink", "int.json", "-o", "int.min.json"]);
    assert_eq!(path, PathBuf::from("int.min.partial.json"));
    assert!(
        notice.ends_with(
            "(a smaller repro, if one was confirmed by then, is written to int.min.partial.json)"
        ),
        "{notice}"
    );
    let (path, notice) = partial(&["stampede", "shrink", "out/repro-identity-0a1b.json"]);
    assert_eq!(path, PathBuf::from("out/repro-identity-0a1b.partial.json"));
    assert!(
        notice.contains("out/repro-identity-0a1b.partial.json"),
        "{notice}"
    );
    let (path, _) = partial(&["stampede", "shrink", "r.json", "--out", "minimal"]);
    assert_eq!(path, PathBuf::from("minimal.partial"));
}

/// Minted tokens that some connection places are signed with the secret and reach the
/// server: the notice is due. With every placement `"none"` (Twitch EventSub sockets carry
/// no credentials) no token reaches a server, and none is.
#[test]
fn the_development_secret_notice_is_due_only_when_a_token_is_placed() {
    let load = |placement: &str| {
        let text = format!(
            "name = \"s\"\nduration = \"1s\"\n[auth]\nplacement = {placement}\n[[group]]\nname = \"g\"\nusers = 2\nsteps = [{{ close = 1000 }}]\n"
        );
        let scenario = crate::scenario::load_str(&text, "s.toml").unwrap();
        crate::plan::build(&scenario, 1)
    };
    assert!(crate::run::signs_tokens(&load("\"header\"")));
    assert!(!crate::run::signs_tokens(&load("\"none\"")));
}

/// Under `--no-results`, the last line says a run's violations were not kept, except
/// when the verdict is a misconfiguration (wrong secret, unusable target): those are no
/// findings, and "run without it to keep every violation" would ask for them.
#[test]
fn the_no_results_line_asks_to_keep_only_findings() {
    let line = |verdict| {
        let s = crate::results::Summary {
            verdict,
            ..crate::results::fixture::summary()
        };
        assert!(s.violations.total > 0);
        let mut out = Vec::new();
        super::results_line(&mut out, None, &s).expect("writing to a Vec cannot fail");
        String::from_utf8(out).expect("UTF-8")
    };
    assert!(
        line(crate::model::Verdict::Violations)
            .starts_with("results      none written (--no-results)"),
        "{}",
        line(crate::model::Verdict::Violations)
    );
    for verdict in [
        crate::model::Verdict::AuthMisconfigured,
        crate::model::Verdict::TargetUnusable,
    ] {
        assert_eq!(line(verdict), "", "{verdict}");
    }
}

/// `run --help` lists every exit code of the table; `hunt`, `replay`, `shrink` and `learn`
/// their own, shrink's 1 (a smaller repro written) among them.
#[test]
fn the_commands_that_judge_a_target_list_their_exit_codes_in_their_help() {
    use clap::CommandFactory;
    let help = |name: &str| {
        let mut cli = Cli::command();
        let sub = cli
            .find_subcommand_mut(name)
            .unwrap_or_else(|| panic!("no {name} command"));
        sub.render_help().to_string()
    };
    let run = help("run");
    for code in [
        exit::CLEAN,
        exit::VIOLATIONS,
        exit::USAGE,
        exit::INTERNAL,
        exit::INCONCLUSIVE,
        exit::TARGET_UNUSABLE,
        exit::AUTH_MISCONFIGURED,
        exit::INCOMPLETE,
        exit::CLIENT_LIMITED,
        exit::UNREADABLE,
        exit::INTERRUPTED,
    ] {
        assert!(
            run.lines().any(|l| l.starts_with(&format!("  {code} "))),
            "exit {code} missing from run --help:\n{run}"
        );
    }
    let shrink = help("shrink");
    assert!(
        shrink.contains("  1    it reproduces: a smaller repro"),
        "{shrink}"
    );
    assert!(shrink.contains("  4    no smaller repro"), "{shrink}");
    for name in ["hunt", "replay"] {
        let text = help(name);
        assert!(text.contains("Exit codes:\n  0 "), "{name}: {text}");
        assert!(text.contains("  1    "), "{name}: {text}");
    }
    // `compare` exits 8 when what got worse was measured by a client that fell behind.
    let compare = help("compare");
    assert!(compare.contains("Exit codes:\n  0 "), "{compare}");
    assert!(compare.contains("  8    not judged"), "{compare}");
    // `merge` exits with the merged result's code, 2 for runs that do not merge.
    let merge = help("merge");
    assert!(merge.contains("Exit codes:\n  0 "), "{merge}");
    assert!(
        merge.contains("  2    bad usage: runs that do not merge"),
        "{merge}"
    );
    // `learn` exits 5 or 6 when the target accepted no calibration connection.
    let learn = help("learn");
    assert!(learn.contains("Exit codes:\n  0 "), "{learn}");
    for code in [exit::TARGET_UNUSABLE, exit::AUTH_MISCONFIGURED] {
        assert!(learn.contains(&format!("  {code}    ")), "{learn}");
    }
}
