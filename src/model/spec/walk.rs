//! Every step of a script at any depth, in script order: what the scenario loader, the
//! oracles and the hunt read off a script's shape (the kinds it sends, the names it
//! expects, whether it meets at a rendezvous) without each walking the tree by hand.

use super::Step;

/// Every step of `steps` at any depth, depth first in script order: a `repeat` comes
/// just before its body, and its body once, however many times it runs. Allocates one
/// small stack (one entry per level of nesting being walked); never fails.
pub fn deep_steps(steps: &[Step]) -> DeepSteps<'_> {
    DeepSteps {
        stack: vec![steps.iter()],
    }
}

/// The iterator of [`deep_steps`].
#[derive(Debug, Clone)]
pub struct DeepSteps<'a> {
    /// The step lists being walked, outermost first.
    stack: Vec<std::slice::Iter<'a, Step>>,
}

impl<'a> Iterator for DeepSteps<'a> {
    type Item = &'a Step;

    fn next(&mut self) -> Option<&'a Step> {
        loop {
            let Some(step) = self.stack.last_mut()?.next() else {
                self.stack.pop();
                continue;
            };
            if let Step::Repeat { steps, .. } = step {
                self.stack.push(steps.iter());
            }
            return Some(step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(code: u16) -> Step {
        Step::Close { code }
    }

    fn repeat(steps: Vec<Step>) -> Step {
        Step::Repeat {
            times: 3,
            steps,
            every: None,
        }
    }

    /// Depth first, in script order, a repeat before its body and its body once; an
    /// empty repeat and an empty script are walked without a stall.
    #[test]
    fn walks_nested_repeats_in_script_order() {
        let script = vec![
            close(1),
            repeat(vec![
                close(2),
                repeat(vec![close(3)]),
                repeat(vec![]),
                close(4),
            ]),
            close(5),
        ];
        let seen: Vec<Option<u16>> = deep_steps(&script)
            .map(|s| match s {
                Step::Close { code } => Some(*code),
                _ => None,
            })
            .collect();
        assert_eq!(
            seen,
            [
                Some(1),
                None,
                Some(2),
                None,
                Some(3),
                None,
                Some(4),
                Some(5)
            ]
        );
        assert_eq!(deep_steps(&[]).count(), 0);
    }
}
