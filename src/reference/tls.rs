//! TLS for `wss://`: a fresh self-signed certificate or PEM files.
//!
//! rustls is always built with the ring provider passed explicitly, so the
//! server never depends on (or fights over) a process-wide default provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use super::TargetError;

/// Names the self-signed certificate is valid for.
const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSetup {
    /// Generate a certificate for `localhost`, `127.0.0.1` and `::1` at start;
    /// clients trust it through [`super::ServerHandle::ca_pem`].
    SelfSigned,
    /// Load a certificate chain and a private key from PEM files.
    Pem {
        /// The certificate chain, leaf first.
        cert_path: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key_path: PathBuf,
    },
}

/// A ready acceptor, plus the certificate PEM when it was self-signed.
pub(crate) struct TlsMaterial {
    pub acceptor: TlsAcceptor,
    pub ca_pem: Option<String>,
}

pub(crate) fn build(setup: &TlsSetup) -> Result<TlsMaterial, TargetError> {
    match setup {
        TlsSetup::SelfSigned => {
            let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| (*n).to_owned()).collect();
            let generated = rcgen::generate_simple_self_signed(names)?;
            let cert_pem = generated.cert.pem();
            let key = PrivateKeyDer::from(generated.signing_key);
            let acceptor = acceptor(vec![generated.cert.der().clone()], key)?;
            Ok(TlsMaterial {
                acceptor,
                ca_pem: Some(cert_pem),
            })
        }
        TlsSetup::Pem {
            cert_path,
            key_path,
        } => {
            let chain = load_chain(cert_path)?;
            let key =
                PrivateKeyDer::from_pem_file(key_path).map_err(|source| TargetError::Pem {
                    path: key_path.clone(),
                    source,
                })?;
            Ok(TlsMaterial {
                acceptor: acceptor(chain, key)?,
                ca_pem: None,
            })
        }
    }
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TargetError> {
    let pem_error = |source| TargetError::Pem {
        path: path.to_owned(),
        source,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if chain.is_empty() {
        return Err(TargetError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<TlsAcceptor, TargetError> {
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
