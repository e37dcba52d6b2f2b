//! The upstream's TLS client configuration.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

use super::SetupError;

/// rustls with the ring provider. Without `ca_file` the platform's trust
/// store is used (as mail-send does); with it, only that CA is trusted.
pub(super) fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, SetupError> {
    let Some(path) = ca_file else {
        return mail_send::smtp::tls::build_tls_connector(false).map_err(SetupError::Tls);
    };
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let ca_error = |message: String| SetupError::CaFile {
        path: path.to_owned(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| ca_error(e.to_string()))?;
        roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ca_error("no certificate in file".into()));
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
