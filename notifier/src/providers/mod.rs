//! One client per push service, each speaking the service's real protocol, and
//! what they share: the HTTP client, `Retry-After`, transport failures.

pub mod apns;
pub mod ece;
pub mod fcm;
pub mod google_auth;
pub mod webpush;

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::{PushError, SendOutcome};

/// How long a provider waits on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection (TCP and TLS).
    pub connect: Duration,
    /// For one whole request, answer included.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(5), request: Duration::from_secs(10) }
    }
}

/// An HTTP client for one provider. `http2_only` speaks HTTP/2 from the first byte
/// (prior knowledge: over TLS the only ALPN offered is `h2`; over cleartext, h2c),
/// which APNs requires; otherwise HTTP/1.1 or HTTP/2 as ALPN decides. Connections
/// are pooled and kept alive, so a send normally costs one round trip.
pub(crate) fn http_client(http2_only: bool, timeouts: Timeouts) -> Result<reqwest::Client, PushError> {
    Ok(http_client_builder(http2_only, timeouts).build()?)
}

/// The builder behind [`http_client`]. No provider follows redirects: a push service answers
/// where it was asked, and a redirect is how a request is steered somewhere it should not go.
pub(crate) fn http_client_builder(http2_only: bool, timeouts: Timeouts) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .user_agent(concat!("confab-notifier/", env!("CARGO_PKG_VERSION")));
    if http2_only {
        builder = builder
            .http2_prior_knowledge()
            .http2_keep_alive_interval(Duration::from_secs(60))
            .http2_keep_alive_while_idle(true);
    }
    builder
}

/// A base URL without its trailing slash, checked to be http(s).
pub(crate) fn base_url(text: &str) -> Result<String, PushError> {
    let url = url::Url::parse(text).map_err(|e| PushError::Config(format!("base URL {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PushError::Config(format!("base URL {text:?} is not http(s)")));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// The provider's `Retry-After`, as delta-seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// A request that got no answer (connect refused, reset, timed out) is transient.
pub(crate) fn transport_failure(provider: &str, error: &reqwest::Error) -> SendOutcome {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    SendOutcome::retry(format!("{provider}: {what}: {error}"))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
        let later = SystemTime::now() + Duration::from_secs(3600);
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap());
        let after = retry_after(&headers).unwrap();
        assert!(after > Duration::from_secs(3590) && after <= Duration::from_secs(3600), "{after:?}");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), Some(Duration::ZERO), "a date in the past means now");
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn base_url_drops_the_trailing_slash() {
        assert_eq!(base_url("https://api.push.apple.com/").unwrap(), "https://api.push.apple.com");
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("not a url").is_err());
    }
}
