use super::*;
use crate::results::fixture::summary;

fn text(s: &Summary) -> String {
    let mut out = Vec::new();
    render(s, &mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("the report is UTF-8")
}

/// The fixture's violations are two completeness ones of conn 7; listed, each shows this.
const LISTED: &str = "conn 7 user 3 jti jti-7";

#[test]
fn a_run_that_could_not_judge_its_target_counts_its_violations_on_one_line() {
    for verdict in [
        Verdict::AuthMisconfigured,
        Verdict::TargetUnusable,
        Verdict::Unreadable,
        Verdict::ClientLimited,
    ] {
        let s = Summary {
            verdict,
            ..summary()
        };
        let out = text(&s);
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("violations"))
            .collect();
        assert_eq!(lines.len(), 1, "{verdict}: {out}");
        assert!(
            lines[0].starts_with("violations   2  (completeness 2)  not findings: see the verdict"),
            "{verdict}: {out}"
        );
        assert!(!out.contains(LISTED), "{verdict} lists them: {out}");
        assert!(!out.contains("… "), "{verdict}: {out}");
    }
}

#[test]
fn findings_are_still_listed() {
    let s = Summary {
        verdict: Verdict::Violations,
        ..summary()
    };
    let out = text(&s);
    assert!(out.contains("violations   2  (completeness 2)\n"), "{out}");
    assert_eq!(out.matches(LISTED).count(), 2, "{out}");
    assert!(!out.contains("not findings"), "{out}");
}
