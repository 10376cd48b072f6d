//! Which `Host` a gateway's listeners answer to. A browser page on an attacker's domain that
//! resolves, later, to 127.0.0.1 (DNS rebinding) sends its own host name: refusing unknown
//! hosts keeps such a page from driving a local Confab, on the public listener and on the admin
//! listener (the admin API, the registry's writes, `/metrics`). Anything else gets 421.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use confab_core::config::{Config, Mode};
use confab_core::ErrorCode;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::http::ApiError;

/// Host names (lowercase, no port, IPv6 without brackets); `None` admits any. With
/// `any_address`, every IP address is admitted too.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Option<HashSet<String>>, bool);

impl AllowedHosts {
    /// `gateway.allowed_hosts` if set; otherwise loopback names and the listener's own address
    /// in embedded mode, and any host in distributed mode (a load balancer decides there).
    pub fn for_listener(cfg: &Config, listening: SocketAddr) -> Self {
        if !cfg.gateway.allowed_hosts.is_empty() {
            return Self(Some(cfg.gateway.allowed_hosts.iter().map(|h| normalize(h)).collect()), false);
        }
        if cfg.mode != Mode::Embedded {
            return Self(None, false);
        }
        let mut hosts: HashSet<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
        if !listening.ip().is_unspecified() {
            hosts.insert(listening.ip().to_string());
        }
        Self(Some(hosts), false)
    }

    /// The admin listener, in both modes: `localhost`, any IP address, and
    /// `gateway.admin_allowed_hosts`.
    pub fn for_admin_listener(cfg: &Config) -> Self {
        let mut hosts: HashSet<String> = cfg.gateway.admin_allowed_hosts.iter().map(|h| normalize(h)).collect();
        hosts.insert("localhost".into());
        Self(Some(hosts), true)
    }

    pub fn admits(&self, host: Option<&str>) -> bool {
        match (&self.0, host) {
            (None, _) => true,
            (Some(allowed), Some(host)) => {
                let name = normalize(strip_port(host));
                allowed.contains(&name) || (self.1 && name.parse::<std::net::IpAddr>().is_ok())
            }
            (Some(_), None) => false,
        }
    }
}

fn normalize(host: &str) -> String {
    host.trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()
}

/// `example.org:8080` -> `example.org`, `[::1]:8080` -> `[::1]`, `::1` stays.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Middleware: refuses requests whose `Host` (or, over HTTP/2, authority) is not admitted.
pub async fn check(State(allowed): State<Arc<AllowedHosts>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    if allowed.admits(host.as_deref()) {
        return next.run(request).await;
    }
    let message = "this server does not answer for that host name (gateway.allowed_hosts, gateway.admin_allowed_hosts)";
    ApiError::new(StatusCode::MISDIRECTED_REQUEST, ErrorCode::Forbidden, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded(listen: &str, allowed: &[&str]) -> AllowedHosts {
        let mut cfg = Config { mode: Mode::Embedded, ..Config::default() };
        cfg.gateway.allowed_hosts = allowed.iter().map(|s| s.to_string()).collect();
        AllowedHosts::for_listener(&cfg, listen.parse().unwrap())
    }

    #[test]
    fn loopback_names_pass_and_a_rebound_name_does_not() {
        let hosts = embedded("127.0.0.1:8080", &[]);
        for ok in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST", "127.0.0.1"] {
            assert!(hosts.admits(Some(ok)), "{ok}");
        }
        for bad in ["evil.example:8080", "evil.example", "127.0.0.1.evil.example", ""] {
            assert!(!hosts.admits(Some(bad)), "{bad}");
        }
        assert!(!hosts.admits(None));
    }

    #[test]
    fn configured_hosts_replace_the_defaults_and_distributed_admits_any() {
        let hosts = embedded("0.0.0.0:8080", &["chat.example.org"]);
        assert!(hosts.admits(Some("chat.example.org:443")));
        assert!(!hosts.admits(Some("localhost")));
        let cfg = Config { mode: Mode::Distributed, ..Config::default() };
        assert!(AllowedHosts::for_listener(&cfg, "0.0.0.0:80".parse().unwrap()).admits(Some("anything")));
    }

    #[test]
    fn the_admin_listener_admits_addresses_and_its_names_in_both_modes_and_no_rebound_name() {
        for mode in [Mode::Embedded, Mode::Distributed] {
            let mut cfg = Config { mode, ..Config::default() };
            cfg.gateway.admin_allowed_hosts = vec!["confab-admin.ops.svc".into()];
            let hosts = AllowedHosts::for_admin_listener(&cfg);
            for ok in ["localhost:8090", "127.0.0.1:8090", "[::1]:8090", "10.1.2.3:8090", "confab-admin.ops.svc"] {
                assert!(hosts.admits(Some(ok)), "{ok}");
            }
            for bad in ["evil.example:8090", "127.0.0.1.evil.example", "1.2.3.4.nip.io", ""] {
                assert!(!hosts.admits(Some(bad)), "{bad}");
            }
            assert!(!hosts.admits(None));
        }
    }
}
