//! The session registry: at most one live connection per token `jti`.
//!
//! The correct path claims a `jti` with one check-and-insert under a lock
//! ([`Registry::try_claim`]), so a synchronized burst of same-token upgrades
//! admits exactly one. The claim is a [`JtiGuard`]: it releases on drop, so the
//! entry goes away however the connection ends, including an upgrade that fails
//! after the claim. The unguarded methods exist only for the planted bugs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::stats::Stats;

/// Live `jti` → owning connection id.
#[derive(Debug)]
pub(crate) struct Registry {
    live: Mutex<HashMap<String, u64>>,
    stats: Arc<Stats>,
}

impl Registry {
    pub(crate) fn new(stats: Arc<Stats>) -> Self {
        Self {
            live: Mutex::new(HashMap::new()),
            stats,
        }
    }

    /// A poisoned lock only means another thread panicked mid-update of a plain
    /// map; the map itself is still consistent, so keep serving.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Atomically claims `jti` for `conn_id`; `None` if it is already live.
    pub(crate) fn try_claim(self: &Arc<Self>, jti: &str, conn_id: u64) -> Option<JtiGuard> {
        {
            let mut live = self.lock();
            if live.contains_key(jti) {
                return None;
            }
            live.insert(jti.to_owned(), conn_id);
        }
        self.stats.notify();
        Some(JtiGuard::adopt(self, jti, conn_id))
    }

    /// Whether `jti` is live right now (a check only; planted bugs use it).
    pub(crate) fn contains(&self, jti: &str) -> bool {
        self.lock().contains_key(jti)
    }

    /// Inserts without a guard, overwriting any owner (planted bugs use it).
    pub(crate) fn insert_unguarded(&self, jti: &str, conn_id: u64) {
        self.lock().insert(jti.to_owned(), conn_id);
        self.stats.notify();
    }

    /// Removes `jti` if `conn_id` still owns it.
    pub(crate) fn release(&self, jti: &str, conn_id: u64) {
        let removed = {
            let mut live = self.lock();
            match live.get(jti) {
                Some(owner) if *owner == conn_id => live.remove(jti).is_some(),
                _ => false,
            }
        };
        if removed {
            self.stats.notify();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Ownership of one registry entry; releasing it (explicitly or on drop)
/// frees the `jti` for the next connection.
#[derive(Debug)]
pub(crate) struct JtiGuard {
    registry: Arc<Registry>,
    jti: String,
    conn_id: u64,
    /// Planted bug `reconnect-lag`: release this long after the end.
    release_delay: Option<Duration>,
    released: bool,
}

impl JtiGuard {
    /// Takes ownership of an entry already in the registry.
    pub(crate) fn adopt(registry: &Arc<Registry>, jti: &str, conn_id: u64) -> Self {
        Self {
            registry: Arc::clone(registry),
            jti: jti.to_owned(),
            conn_id,
            release_delay: None,
            released: false,
        }
    }

    pub(crate) fn with_release_delay(mut self, delay: Duration) -> Self {
        self.release_delay = Some(delay);
        self
    }

    /// Forgets the entry without releasing it: from here on, cleanup is
    /// somebody else's job (planted bug `abort-leak` relies on that).
    pub(crate) fn leak(mut self) {
        self.released = true;
    }

    /// Releases now. Called before the server's Close frame goes out, so a
    /// client that has seen the Close can reconnect with the same token.
    pub(crate) fn release(mut self) {
        self.release_now();
    }

    fn release_now(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        let delayed = self
            .release_delay
            .and_then(|delay| Some((delay, tokio::runtime::Handle::try_current().ok()?)));
        match delayed {
            Some((delay, runtime)) => {
                let registry = Arc::clone(&self.registry);
                let jti = std::mem::take(&mut self.jti);
                let conn_id = self.conn_id;
                runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    registry.release(&jti, conn_id);
                });
            }
            None => self.registry.release(&self.jti, self.conn_id),
        }
    }
}

impl Drop for JtiGuard {
    fn drop(&mut self) {
        self.release_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Arc<Registry> {
        Arc::new(Registry::new(Arc::new(Stats::new())))
    }

    #[test]
    fn second_claim_fails_until_release() {
        let registry = registry();
        let first = registry.try_claim("j", 1).unwrap();
        assert!(registry.try_claim("j", 2).is_none());
        first.release();
        assert!(registry.try_claim("j", 3).is_some());
    }

    #[test]
    fn drop_releases_and_only_the_owner_releases() {
        let registry = registry();
        drop(registry.try_claim("j", 1).unwrap());
        assert_eq!(registry.len(), 0);
        let _owner = registry.try_claim("j", 2).unwrap();
        registry.release("j", 99);
        assert!(registry.contains("j"));
    }

    #[test]
    fn concurrent_claims_admit_exactly_one() {
        let registry = registry();
        let handles: Vec<_> = (0..16)
            .map(|id| {
                let registry = Arc::clone(&registry);
                std::thread::spawn(move || registry.try_claim("same", id).map(std::mem::forget))
            })
            .collect();
        let wins = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .count();
        assert_eq!(wins, 1);
    }
}
