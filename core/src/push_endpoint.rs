//! Web Push endpoints are URLs a client chooses and the notifier then `POST`s to: without rules
//! that is a request forgery from inside the network (`https://169.254.169.254/...`, the cloud
//! metadata service; `https://10.0.0.5:9200/`, an internal cluster). A subscription is checked
//! when it is registered ([`validate_web_push_subscription`]) and again at every send, where
//! the notifier also resolves the host itself and connects only to public addresses
//! ([`is_public_ip`]: DNS can change between the two) and never follows a redirect.

use base64::Engine;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an endpoint may be besides a public `https` URL (local test servers only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// `http://` endpoints.
    pub allow_http: bool,
    /// Loopback, private, link-local and other non-public hosts.
    pub allow_private_networks: bool,
}

/// Bytes of a subscription's `p256dh` (an uncompressed P-256 point) and `auth` secret.
const P256DH_BYTES: usize = 65;
const AUTH_BYTES: usize = 16;

/// Host name suffixes that never name a public host (RFC 6761, RFC 8375, common internal ones).
const PRIVATE_SUFFIXES: &[&str] = &[".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet", ".corp"];

/// Checks a browser's Web Push subscription: a public `https` endpoint without credentials
/// and keys of the sizes RFC 8291 fixes. Returns the parsed endpoint.
pub fn validate_web_push_subscription(
    endpoint: &str,
    p256dh: &str,
    auth: &str,
    policy: EndpointPolicy,
) -> Result<url::Url, String> {
    let url = validate_endpoint(endpoint, policy)?;
    let p256dh = decode_b64url(p256dh).ok_or("p256dh is not base64url")?;
    if p256dh.len() != P256DH_BYTES || p256dh[0] != 0x04 {
        return Err(format!("p256dh must be an uncompressed P-256 point ({P256DH_BYTES} bytes starting 0x04)"));
    }
    let auth = decode_b64url(auth).ok_or("auth is not base64url")?;
    if auth.len() != AUTH_BYTES {
        return Err(format!("auth must be {AUTH_BYTES} bytes"));
    }
    Ok(url)
}

/// Checks an endpoint URL alone (see [`validate_web_push_subscription`]).
pub fn validate_endpoint(endpoint: &str, policy: EndpointPolicy) -> Result<url::Url, String> {
    let url = url::Url::parse(endpoint).map_err(|e| format!("endpoint is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        other => return Err(format!("endpoint scheme {other:?} is not allowed (https only)")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("endpoint must not carry credentials".into());
    }
    let public = match url.host() {
        None => return Err("endpoint has no host".into()),
        Some(url::Host::Ipv4(ip)) => is_public_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_public_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => is_public_host_name(name),
    };
    if !public && !policy.allow_private_networks {
        return Err("endpoint must be a public host, not a loopback, private or link-local one".into());
    }
    Ok(url)
}

/// Whether a host name may name a public host: at least two labels, no private suffix.
fn is_public_host_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.contains('.') && name != "localhost" && !PRIVATE_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Whether `ip` is on the public internet: not loopback, private, link-local, shared (CGNAT),
/// unspecified, broadcast, multicast, documentation, benchmarking or reserved; IPv6 addresses
/// that embed an IPv4 one are judged by it.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0];
    if nat64 {
        return is_public_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const STRICT: EndpointPolicy = EndpointPolicy { allow_http: false, allow_private_networks: false };

    #[test]
    fn a_public_https_subscription_passes() {
        let ok = validate_web_push_subscription("https://fcm.googleapis.com/fcm/send/abc", P256DH, AUTH, STRICT);
        assert!(ok.is_ok(), "{ok:?}");
        assert!(validate_endpoint("https://updates.push.services.mozilla.com/wpush/v2/x", STRICT).is_ok());
        assert!(validate_endpoint("https://[2606:4700::1111]/x", STRICT).is_ok());
    }

    #[test]
    fn endpoints_inside_the_network_are_refused() {
        for endpoint in [
            "https://169.254.169.254/latest/meta-data/",
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://10.1.2.3:9200/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[64:ff9b::a00:1]/",
            "https://localhost/",
            "https://metadata.google.internal/",
            "https://printer.local/",
            "https://intranet/",
            "http://push.example.com/",
            "file:///etc/passwd",
            "https://user:pass@push.example.com/",
        ] {
            assert!(validate_endpoint(endpoint, STRICT).is_err(), "{endpoint} was accepted");
        }
    }

    #[test]
    fn the_test_policy_lets_local_servers_through() {
        let local = EndpointPolicy { allow_http: true, allow_private_networks: true };
        assert!(validate_endpoint("http://127.0.0.1:8080/push/1", local).is_ok());
        assert!(validate_endpoint("file:///etc/passwd", local).is_err());
    }

    #[test]
    fn keys_of_the_wrong_size_are_refused() {
        let url = "https://push.example.com/x";
        assert!(validate_web_push_subscription(url, "AAAA", AUTH, STRICT).is_err());
        assert!(validate_web_push_subscription(url, P256DH, "AAAA", STRICT).is_err());
        assert!(validate_web_push_subscription(url, "not base64!", AUTH, STRICT).is_err());
        let compressed = format!("A{}", &P256DH[1..]); // first byte 0x00, not 0x04
        assert!(validate_web_push_subscription(url, &compressed, AUTH, STRICT).is_err());
    }
}
