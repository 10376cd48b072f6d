//! Token revocation as every gateway sees it. A revocation (`POST .../revoke-tokens`) is kept
//! in the store; each gateway loads those of the last `auth.max_token_lifetime_secs` at start
//! (older ones cover only expired tokens), then follows new ones every [`POLL_INTERVAL`]. A
//! revoked token is refused at once by every API, and its open sockets are closed (4003).

use confab_core::ports::TokenRevocation;
use confab_core::Claims;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

use crate::state::AppState;

/// How often a gateway looks for revocations made elsewhere.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Revocations are re-read this far back on each look (clocks of gateways differ a little).
const OVERLAP_MS: i64 = 10_000;

/// `(workspace, user)` -> tokens issued at or before this (Unix seconds) are revoked.
#[derive(Default)]
pub struct Revocations {
    before: RwLock<HashMap<(Uuid, Uuid), i64>>,
}

impl Revocations {
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let before = self.before.read().expect("revocations lock");
        before.get(&(claims.workspace_id, claims.user_id)).is_some_and(|b| claims.issued_at() <= *b)
    }

    /// Takes a revocation in; true if it revokes more than was known.
    pub fn apply(&self, r: &TokenRevocation) -> bool {
        let mut before = self.before.write().expect("revocations lock");
        let known = before.entry((r.workspace_id, r.user_id)).or_insert(i64::MIN);
        if r.revoked_before <= *known {
            return false;
        }
        *known = r.revoked_before;
        true
    }
}

/// Follows revocations until shutdown, closing the sockets of each newly revoked user.
pub async fn follow(st: Arc<AppState>) {
    let mut since = chrono::Utc::now().timestamp_millis() - st.cfg.auth.max_token_lifetime_secs * 1000;
    let mut shutdown = st.shutdown.clone();
    loop {
        match st.store.token_revocations_since(since).await {
            Ok(found) => {
                for r in &found {
                    enforce(&st, r);
                    since = since.max(r.at_ms - OVERLAP_MS);
                }
                st.health.set("revocations", Ok(()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read token revocations");
                st.health.set("revocations", Err(e.to_string()));
            }
        }
        since = since.max(chrono::Utc::now().timestamp_millis() - OVERLAP_MS - POLL_INTERVAL.as_millis() as i64);
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// Applies a revocation here: later requests are refused, open sockets closed.
pub fn enforce(st: &AppState, r: &TokenRevocation) {
    if st.revocations.apply(r) {
        let closed = st.hub.close_revoked(r.workspace_id, r.user_id, r.revoked_before);
        tracing::info!(workspace_id = %r.workspace_id, user_id = %r.user_id, closed, "tokens revoked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_covers_tokens_issued_at_or_before_it_only() {
        let (ws, user) = (Uuid::new_v4(), Uuid::new_v4());
        let r = Revocations::default();
        let token = |iat| Claims { workspace_id: ws, user_id: user, exp: iat + 100, iat };
        assert!(!r.is_revoked(&token(5)));
        let revocation = TokenRevocation { workspace_id: ws, user_id: user, revoked_before: 10, at_ms: 10_000 };
        assert!(r.apply(&revocation));
        assert!(!r.apply(&revocation), "seen twice: nothing new");
        assert!(r.is_revoked(&token(10)) && r.is_revoked(&token(0)));
        assert!(!r.is_revoked(&token(11)), "a token issued after it works");
        assert!(!r.is_revoked(&Claims { user_id: Uuid::new_v4(), ..token(1) }), "another user");
    }
}
