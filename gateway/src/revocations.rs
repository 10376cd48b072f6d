//! Token revocation as every gateway sees it. A revocation (`POST .../revoke-tokens`) is kept
//! in the store; each gateway loads those of the last `auth.max_token_lifetime_secs` at start
//! (older ones cover only expired tokens), then follows new ones every [`POLL_INTERVAL`]. A
//! revoked token is refused at once by every API, and its open sockets are closed (4003).
//!
//! A deactivated user (`POST .../deactivate`) is refused whatever their token's age until an
//! admin reactivates them: the directory keeps deactivations for good, each gateway reads them
//! all before it accepts any token, and the change itself travels as a revocation record (so
//! open sockets close within the same interval).

use confab_core::ports::{Deactivation, TokenRevocation};
use confab_core::Claims;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use uuid::Uuid;

use crate::state::AppState;

/// How often a gateway looks for revocations made elsewhere.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Revocations are re-read this far back on each look (clocks of gateways differ a little).
const OVERLAP_MS: i64 = 10_000;

/// What a gateway knows of one user's tokens.
#[derive(Debug, Clone, Copy)]
struct UserTokens {
    /// Tokens issued at or before this (Unix seconds) are revoked.
    revoked_before: i64,
    deactivated: bool,
    /// When `deactivated` was last set (Unix ms): a later change wins, whatever order the
    /// gateway hears of them in.
    deactivation_at_ms: i64,
}

impl Default for UserTokens {
    fn default() -> Self {
        Self { revoked_before: i64::MIN, deactivated: false, deactivation_at_ms: i64::MIN }
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its user's tokens up to some time were revoked.
    Revoked,
    /// Its user is deactivated: no token works.
    Deactivated,
    /// Its workspace was deleted (marked like a deactivation of the nil user).
    WorkspaceDeleted,
    /// The gateway has not read the deactivated users yet (it just started, or the store is
    /// unreachable): every token is refused rather than one of a deactivated user accepted.
    NotReady,
}

/// `(workspace, user)` -> what is revoked; filled from the store before any token is accepted.
#[derive(Default)]
pub struct Revocations {
    users: RwLock<HashMap<(Uuid, Uuid), UserTokens>>,
    loaded: AtomicBool,
}

impl Revocations {
    /// Whether (and why) a token with these claims is refused.
    pub fn refusal(&self, claims: &Claims) -> Option<Refusal> {
        if !self.loaded.load(Ordering::Acquire) {
            return Some(Refusal::NotReady);
        }
        let users = self.users.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if users.get(&(claims.workspace_id, Uuid::nil())).is_some_and(|w| w.deactivated) {
            return Some(Refusal::WorkspaceDeleted);
        }
        let user = users.get(&(claims.workspace_id, claims.user_id))?;
        if user.deactivated {
            Some(Refusal::Deactivated)
        } else {
            (claims.issued_at() <= user.revoked_before).then_some(Refusal::Revoked)
        }
    }

    /// Takes a revocation in; true if it refuses more than was known (so sockets must close).
    pub fn apply(&self, r: &TokenRevocation) -> bool {
        let mut users = self.users.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let user = users.entry((r.workspace_id, r.user_id)).or_default();
        let mut refuses_more = false;
        if r.revoked_before > user.revoked_before {
            user.revoked_before = r.revoked_before;
            refuses_more = true;
        }
        if let Some(deactivated) = r.deactivated {
            if r.at_ms >= user.deactivation_at_ms {
                refuses_more |= deactivated && !user.deactivated;
                user.deactivated = deactivated;
                user.deactivation_at_ms = r.at_ms;
            }
        }
        refuses_more
    }

    /// Takes in the deactivated users read from the store when the gateway starts; from then
    /// on tokens are checked.
    pub fn load(&self, deactivated: &[Deactivation]) {
        for d in deactivated {
            let r = TokenRevocation {
                workspace_id: d.workspace_id,
                user_id: d.user_id,
                revoked_before: i64::MIN,
                at_ms: d.at_ms,
                deactivated: Some(true),
            };
            self.apply(&r);
        }
        self.loaded.store(true, Ordering::Release);
    }

    /// Whether the user is deactivated, as this gateway knows.
    fn deactivated(&self, ws: Uuid, user: Uuid) -> bool {
        let users = self.users.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        users.get(&(ws, user)).is_some_and(|u| u.deactivated)
    }
}

/// How long a starting gateway waits for the deactivated users before it listens anyway (and
/// answers 503 to every token until they are read).
const LOAD_AT_START: Duration = Duration::from_secs(5);

/// Reads the deactivated users before the gateway listens, when the store answers within
/// [`LOAD_AT_START`]; otherwise [`follow`] keeps trying.
pub async fn load_at_start(st: &AppState) {
    match tokio::time::timeout(LOAD_AT_START, st.store.deactivated_users()).await {
        Ok(Ok(found)) => {
            tracing::info!(deactivated = found.len(), "deactivated users loaded");
            st.revocations.load(&found);
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read deactivated users yet; refusing every token until they are read")
        }
        Err(_) => tracing::warn!("deactivated users not read within 5 s; refusing every token until they are"),
    }
}

/// Reads every deactivated user (retrying until the store answers), so the gateway can
/// start checking tokens.
async fn load_deactivated(st: &AppState) {
    if st.revocations.loaded.load(Ordering::Acquire) {
        return;
    }
    let mut backoff = confab_core::Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut shutdown = st.shutdown.clone();
    loop {
        match st.store.deactivated_users().await {
            Ok(found) => {
                tracing::info!(deactivated = found.len(), "deactivated users loaded");
                st.revocations.load(&found);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read deactivated users; refusing every token until they are read");
                st.health.set("revocations", Err(e.to_string()));
            }
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(backoff.next_wait()) => {}
        }
    }
}

/// Follows revocations until shutdown, closing the sockets of each newly revoked user.
pub async fn follow(st: Arc<AppState>) {
    let mut since = chrono::Utc::now().timestamp_millis() - st.cfg.auth.max_token_lifetime_secs * 1000;
    load_deactivated(&st).await;
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
        let deactivated = st.revocations.deactivated(r.workspace_id, r.user_id);
        let issued_up_to = if deactivated { i64::MAX } else { r.revoked_before };
        let closed = if r.user_id.is_nil() {
            st.hub.close_workspace(r.workspace_id)
        } else {
            st.hub.close_revoked(r.workspace_id, r.user_id, issued_up_to)
        };
        tracing::info!(workspace_id = %r.workspace_id, user_id = %r.user_id, deactivated, closed, "tokens revoked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocation(ws: Uuid, user: Uuid, revoked_before: i64, at_ms: i64, deactivated: Option<bool>) -> TokenRevocation {
        TokenRevocation { workspace_id: ws, user_id: user, revoked_before, at_ms, deactivated }
    }

    #[test]
    fn a_revocation_covers_tokens_issued_at_or_before_it_only() {
        let (ws, user) = (Uuid::new_v4(), Uuid::new_v4());
        let r = Revocations::default();
        let token = |iat| Claims { workspace_id: ws, user_id: user, exp: iat + 100, iat };
        assert_eq!(r.refusal(&token(5)), Some(Refusal::NotReady), "nothing is accepted before the load");
        r.load(&[]);
        assert_eq!(r.refusal(&token(5)), None);
        let revoked = revocation(ws, user, 10, 10_000, None);
        assert!(r.apply(&revoked));
        assert!(!r.apply(&revoked), "seen twice: nothing new");
        assert_eq!(r.refusal(&token(10)), Some(Refusal::Revoked));
        assert_eq!(r.refusal(&token(0)), Some(Refusal::Revoked));
        assert_eq!(r.refusal(&token(11)), None, "a token issued after it works");
        assert_eq!(r.refusal(&Claims { user_id: Uuid::new_v4(), ..token(1) }), None, "another user");
    }

    #[test]
    fn a_deactivation_refuses_every_token_until_a_later_reactivation() {
        let (ws, user) = (Uuid::new_v4(), Uuid::new_v4());
        let r = Revocations::default();
        let token = |iat| Claims { workspace_id: ws, user_id: user, exp: iat + 100, iat };
        r.load(&[Deactivation { workspace_id: ws, user_id: user, at_ms: 5_000 }]);
        assert_eq!(r.refusal(&token(1_000_000)), Some(Refusal::Deactivated), "even a token from the future");
        r.apply(&revocation(ws, user, 5, 5_000, Some(true)));
        assert!(!r.apply(&revocation(ws, user, 5, 5_000, Some(true))), "seen twice: nothing new");
        r.apply(&revocation(ws, user, 20, 20_000, Some(false)));
        assert_eq!(r.refusal(&token(21)), None, "reactivated: a token issued after it works");
        assert_eq!(r.refusal(&token(20)), Some(Refusal::Revoked), "tokens from before the reactivation stay dead");
        assert!(
            !r.apply(&revocation(ws, user, 5, 5_000, Some(true))),
            "an older deactivation heard late changes nothing"
        );
        assert_eq!(r.refusal(&token(21)), None);
        assert!(r.apply(&revocation(ws, user, 30, 30_000, Some(true))), "deactivated again");
        assert_eq!(r.refusal(&token(31)), Some(Refusal::Deactivated));
    }

    #[test]
    fn a_deleted_workspace_refuses_every_token_of_every_user() {
        let (ws, other) = (Uuid::new_v4(), Uuid::new_v4());
        let r = Revocations::default();
        r.load(&[Deactivation { workspace_id: ws, user_id: Uuid::nil(), at_ms: 5_000 }]);
        let token = |ws, iat| Claims { workspace_id: ws, user_id: Uuid::new_v4(), exp: iat + 100, iat };
        assert_eq!(r.refusal(&token(ws, 1_000_000)), Some(Refusal::WorkspaceDeleted));
        assert_eq!(r.refusal(&token(other, 1_000_000)), None, "another workspace");
    }
}
