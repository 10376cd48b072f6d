//! Client-to-node TLS for Cassandra (rustls, aws-lc-rs): the node's certificate is checked
//! against a CA file of the operator's own, or against the system's roots.

use confab_core::ports::{PortError, PortErrorKind, PortResult};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::sync::Arc;

/// The TLS client configuration: roots from `ca_file` (PEM) when given, else the system's.
pub(crate) fn client_config(ca_file: &str) -> PortResult<Arc<rustls::ClientConfig>> {
    let fatal = |what: String| PortError::new(PortErrorKind::Fatal, what);
    let mut roots = RootCertStore::empty();
    if ca_file.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
    } else {
        let certs =
            CertificateDer::pem_file_iter(ca_file).map_err(|e| fatal(format!("cassandra.ca_file {ca_file}: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| fatal(format!("cassandra.ca_file {ca_file}: {e}")))?;
            roots.add(cert).map_err(|e| fatal(format!("cassandra.ca_file {ca_file}: {e}")))?;
        }
    }
    if roots.is_empty() {
        return Err(fatal("cassandra TLS: no CA certificate to check the nodes against".into()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fatal(format!("cassandra TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
