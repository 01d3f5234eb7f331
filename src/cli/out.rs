//! Standard output for the commands: a reader that leaves early (`stampede run … | head
//! -1`, `compare … | grep -m1 result`) has taken what it wanted, so what it no longer reads
//! is dropped, and the command still ends as it would have: its JUnit file written, its
//! exit code its result's (a run with violations exits 1, not 0; under `set -o pipefail`
//! a failing gate stays failed).

use std::io::{self, StdoutLock, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Set once a write to stdout found its reader gone (`EPIPE`): later writes are dropped.
static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Locked stdout that drops what a reader which went away no longer reads ([`stdout`]).
pub struct Stdout(StdoutLock<'static>);

/// Standard output, locked, for one command's lines; see the module docs.
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

impl Stdout {
    /// `result` of a write, a broken pipe taken as every byte written (and remembered).
    fn unless_gone<T>(result: io::Result<T>, all: T) -> io::Result<T> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                READER_GONE.store(true, Relaxed);
                Ok(all)
            }
            other => other,
        }
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if READER_GONE.load(Relaxed) {
            return Ok(buf.len());
        }
        Self::unless_gone(self.0.write(buf), buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if READER_GONE.load(Relaxed) {
            return Ok(());
        }
        Self::unless_gone(self.0.flush(), ())
    }
}
