//! Sizes checked up front: a scenario too big to plan or run is refused with the figure,
//! the limit and where it is written, not aborted on allocation or run with 0 connections.

use super::*;

fn group(users: &str, extra: &str, steps: &str) -> String {
    format!(
        "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"g\"\nusers = {users}\n{extra}steps = {steps}\n"
    )
}

#[test]
fn a_billion_users_is_refused_with_the_figure_and_the_limit() {
    let (line, column, message) = problem(&group("1000000000", "", "[{ think = \"1ms\" }]"));
    assert_eq!((line, column), (5, 9));
    assert!(message.contains("1000000000 connections"), "{message}");
    assert!(message.contains(&MAX_CONNECTIONS.to_string()), "{message}");
    assert!(message.contains("GiB"), "{message}");
}

#[test]
fn users_times_connections_of_two_to_the_32_does_not_wrap_to_zero() {
    let text = group(
        "65536",
        "connections_per_user = 65536\n",
        "[{ think = \"1ms\" }]",
    );
    let (line, _, message) = problem(&text);
    assert_eq!(line, 5);
    assert!(message.contains("4294967296 connections"), "{message}");
}

#[test]
fn groups_that_fit_alone_but_not_together_are_refused() {
    let half = MAX_CONNECTIONS / 2 + 1;
    let text = format!(
        "name = \"t\"\nduration = \"10s\"\n[[group]]\nname = \"a\"\nusers = {half}\nsteps = [{{ think = \"1ms\" }}]\n\
         [[group]]\nname = \"b\"\nusers = {half}\nsteps = [{{ think = \"1ms\" }}]\n"
    );
    let (_, _, message) = problem(&text);
    assert!(
        message.contains(&format!("add up to {} connections", 2 * half)),
        "{message}"
    );
}

#[test]
fn a_repeat_past_the_action_limit_is_refused_where_the_steps_are() {
    let text = group(
        "1",
        "",
        "[{ repeat = 4294967295, steps = [{ think = \"1ms\" }] }]",
    );
    let (line, column, message) = problem(&text);
    assert_eq!((line, column), (6, 9));
    assert!(message.contains("4294967296 actions"), "{message}");
    assert!(
        message.contains(&MAX_ACTIONS_PER_CONNECTION.to_string()),
        "{message}"
    );
    // Nested repeats multiply, without overflow.
    let nested = "[{ repeat = 4294967295, steps = [{ repeat = 4294967295, steps = [{ repeat = 4294967295, steps = [{ think = \"1ms\" }] }] }] }]";
    let (_, _, message) = problem(&group("1", "", nested));
    assert!(
        message.contains("18446744073709551615 actions"),
        "{message}"
    );
}

#[test]
fn a_long_loop_within_the_limit_loads() {
    let s = load(&group(
        "1000",
        "",
        "[{ repeat = 1000000, steps = [{ send = { type = \"m\" } }] }]",
    ));
    assert_eq!(script_size(&s.groups[0].steps).sends, 1_000_000);
}

#[test]
fn many_problems_list_the_first_hundred_and_count_the_rest() {
    // 20,000 groups with two mistakes each: 40,000 problems in a 2.4 MB file. Linear
    // validation takes well under a second here; the quadratic one took minutes. The time
    // is printed, not asserted.
    let mut text = String::from("name = \"t\"\nduration = \"10s\"\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "[[group]]\nname = \"g{i}\"\nusers = 0\nbogus = 1\nsteps = [{{ think = \"1ms\" }}]\n# {}\n",
            "padding ".repeat(6)
        ));
    }
    let started = std::time::Instant::now();
    let err = load_str(&text, "big.toml").unwrap_err();
    println!("{} bytes, validated in {:?}", text.len(), started.elapsed());
    let ScenarioError::Invalid { problems } = &err else {
        panic!("{err}")
    };
    assert_eq!(problems.len(), 40_000);
    let last = &problems[problems.len() - 1];
    assert_eq!(last.line, 2 + 20_000 * 6 - 2, "{last:?}");
    let shown = err.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), PROBLEMS_SHOWN + 1);
    assert!(lines[0].starts_with("big.toml:5:9: "), "{}", lines[0]);
    assert_eq!(lines[PROBLEMS_SHOWN], "... and 39900 more problems");
}

#[test]
fn the_buffer_byte_bound_is_configurable_and_has_a_floor() {
    let s = load(&with_top("[oracles]\nmax_buffered_bytes = 65536"));
    assert_eq!(s.oracles.max_buffered_bytes, 65536);
    let s = load(&with_top(""));
    assert_eq!(s.oracles.max_buffered_bytes, DEFAULT_MAX_BUFFERED_BYTES);
    assert_problem(
        &with_top("[oracles]\nmax_buffered_bytes = 10"),
        "max_buffered_bytes",
    );
}

/// Per-connection bounds past what any machine holds are refused, with the figure and the
/// limit: they would bound nothing (1,000 connections × 1 TB of buffered messages).
#[test]
fn per_connection_bounds_have_a_ceiling() {
    for (section, key, over) in [
        ("oracles", "max_buffered_bytes", "1073741825"),
        ("oracles", "max_buffered", "1000001"),
        ("limits", "max_message_bytes", "1000000000000"),
        ("limits", "max_in_flight", "1000000000"),
    ] {
        let text = with_top(&format!("[{section}]\n{key} = {over}"));
        let err = load_str(&text, "big.toml").unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(over), "{err}");
        assert!(
            err.contains("1073741824") || err.contains("1000000"),
            "the limit is named: {err}"
        );
    }
    let s = load(&with_top("[oracles]\nmax_buffered_bytes = 1073741824"));
    assert_eq!(s.oracles.max_buffered_bytes, 1 << 30);
}
