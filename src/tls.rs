//! The certificates the HTTPS clients (S3 remotes, an MLflow tracking server) trust: the
//! public webpki roots, or only the CAs of a PEM file the user names.

use std::path::Path;

use ureq::tls::{PemItem, RootCerts};

/// The webpki roots without `ca_file`; else the certificates in that PEM file. The error
/// says what is wrong with the file, for the caller to name the setting that gave it.
pub fn root_certs(ca_file: Option<&Path>) -> Result<RootCerts, String> {
    let Some(path) = ca_file else { return Ok(RootCerts::WebPki) };
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(RootCerts::new_with_certs(&certs))
}
