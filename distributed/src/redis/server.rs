//! How a process reaches Redis: a `redis::Client` made once from `[redis]` and handed to every
//! adapter. `rediss://` is TLS (rustls), checked against the system's roots or `redis.ca_file`;
//! an ACL user and password ride in the URL. Every key an adapter touches starts with
//! `<namespace>:`, so an ACL user can be confined to its namespace (`~<ns>:*`), and the Lua
//! scripts name every key they touch in `KEYS`.

use confab_core::config::RedisConfig;
use confab_core::ports::{PortError, PortErrorKind, PortResult};
use redis::{Client, TlsCertificates};

use super::error::port;

/// The client for `cfg` (no connection is made yet).
pub fn client(cfg: &RedisConfig) -> PortResult<Client> {
    choose_tls_provider();
    if cfg.ca_file.is_empty() {
        return Client::open(cfg.url.as_str()).map_err(port);
    }
    let ca = std::fs::read(&cfg.ca_file)
        .map_err(|e| PortError::new(PortErrorKind::Fatal, format!("reading redis.ca_file {}: {e}", cfg.ca_file)))?;
    let certificates = TlsCertificates { client_tls: None, root_cert: Some(ca) };
    Client::build_with_tls(cfg.url.as_str(), certificates).map_err(port)
}

/// Makes aws-lc-rs the process's TLS provider unless one was chosen already: redis asks rustls
/// for the process default, which rustls cannot pick by itself when two providers are built in
/// (and then `rediss://` connections fail).
fn choose_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
