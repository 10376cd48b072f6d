//! The JWKS an app's backend signs RS256 / EdDSA tokens with (`auth.jwks`): a file or an
//! `https://` URL, read at start and every `auth.jwks_refresh_secs` after, and early (at most
//! once per [`MIN_REFRESH_INTERVAL`]) when a token names a key the set does not hold, so a
//! rotated key works within seconds. A failed read keeps the keys already loaded (a JWKS
//! server outage does not log everyone out) and marks the gateway's health.

use confab_core::auth::JwtKeys;
use std::sync::Arc;
use std::time::Duration;

use crate::state::AppState;

/// Longest a JWKS document may be.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Shortest time between two reads, however many tokens name unknown keys.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// Reads the JWKS once: from a URL (bounded in time and size) or a file.
pub async fn load(source: &str) -> Result<JwtKeys, String> {
    let bytes = if source.starts_with("https://") || source.starts_with("http://") {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let mut response = client.get(source).send().await.map_err(|e| format!("fetching {source}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("fetching {source}: {}", response.status()));
        }
        // read at most one byte past the limit, whatever Content-Length claims
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading {source}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                break;
            }
        }
        body
    } else {
        tokio::fs::read(source).await.map_err(|e| format!("reading {source}: {e}"))?
    };
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(format!("{source}: a JWKS over {MAX_JWKS_BYTES} bytes"));
    }
    JwtKeys::from_jwks(&bytes).map_err(|e| format!("{source}: {e}"))
}

/// Re-reads the JWKS every `auth.jwks_refresh_secs`, or sooner when asked through
/// `st.jwks_refresh` (a token named an unknown key), until shutdown (the first read happened at
/// start).
pub async fn refresh(st: Arc<AppState>) {
    let source = st.cfg.auth.jwks.clone();
    // the pause after each read below counts towards the period
    let every = Duration::from_secs(st.cfg.auth.jwks_refresh_secs).saturating_sub(MIN_REFRESH_INTERVAL);
    let mut shutdown = st.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
            _ = st.jwks_refresh.notified() => tracing::info!("a token names an unknown key; reading the jwks early"),
        }
        match load(&source).await {
            Ok(keys) => {
                st.verifier.jwt().set_keys(keys);
                st.health.set("jwks", Ok(()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the jwks; keeping the keys loaded before");
                st.health.set("jwks", Err(e));
            }
        }
        // however often unknown keys are named, the JWKS source is read at most this often
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(MIN_REFRESH_INTERVAL) => {}
        }
    }
}
