//! The agent's one DTLS certificate and its fingerprint (`kibitz-agents.md` §0.6, §3.5).
//!
//! Kibitz binds an agent's signed assertion to the DTLS certificate of its presence connection
//! and later matches the same fingerprint on the mesh, so every connection an agent process
//! makes must present the same certificate. [`DtlsIdentity`] is that certificate; hand one
//! `Arc<DtlsIdentity>` to the [`PeerConnectionFactory`](super::PeerConnectionFactory).
//!
//! The fingerprint is what a browser computes from `getRemoteCertificates()[0]`: SHA-256 over
//! the certificate DER, lowercase two-digit hex joined by `:` (95 characters). It is not read
//! from an SDP `a=fingerprint` line.

use rtc::crypto::SignatureScheme;
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use sha2::{Digest, Sha256};

use super::MeshError;

/// Length of a formatted SHA-256 fingerprint: 32 bytes as `xx`, 31 colons.
pub const FINGERPRINT_LEN: usize = 95;

/// Formats `SHA-256(der)` as lowercase colon-separated hex, e.g. `ba:78:16:…:ad`.
pub fn fingerprint_of_der(der: &[u8]) -> String {
    colon_hex(&Sha256::digest(der))
}

/// Lowercase colon-separated hex of `bytes`.
fn colon_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks the leading `EXPIRES` block carries at least 8 bytes: webrtc-rs slices it unchecked.
fn check_expires_block(pem: &str) -> Result<(), MeshError> {
    use base64::Engine as _;
    const BEGIN: &str = "-----BEGIN EXPIRES-----";
    const END: &str = "-----END EXPIRES-----";
    let bad = || MeshError::Certificate("missing or short EXPIRES block".to_owned());
    let start = pem.find(BEGIN).ok_or_else(bad)? + BEGIN.len();
    let len = pem[start..].find(END).ok_or_else(bad)?;
    let body: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| bad())?;
    if bytes.len() < 8 {
        return Err(bad());
    }
    Ok(())
}

/// One ECDSA P-256 DTLS certificate shared by every connection of an agent process.
#[derive(Clone)]
pub struct DtlsIdentity {
    certificate: RTCCertificate,
    der: Vec<u8>,
    fingerprint: String,
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsIdentity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl DtlsIdentity {
    /// Generates a fresh self-signed ECDSA P-256 certificate.
    pub fn generate() -> Result<Self, MeshError> {
        let provider =
            rtc::crypto::default_provider().map_err(|e| MeshError::Certificate(e.to_string()))?;
        let params = CertificateParams::new(vec!["kibitz-agent".to_owned()])
            .map_err(|e| MeshError::Certificate(e.to_string()))?;
        let certificate =
            RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
                .map_err(|e| MeshError::Certificate(e.to_string()))?;
        Self::from_certificate(certificate)
    }

    /// Loads a certificate persisted with [`DtlsIdentity::to_pem`], so the fingerprint (and
    /// with it every signed assertion) stays stable across runs.
    pub fn from_pem(pem: &str) -> Result<Self, MeshError> {
        check_expires_block(pem)?;
        let provider =
            rtc::crypto::default_provider().map_err(|e| MeshError::Certificate(e.to_string()))?;
        let certificate = RTCCertificate::from_pem(pem, provider.crypto())
            .map_err(|e| MeshError::Certificate(e.to_string()))?;
        Self::from_certificate(certificate)
    }

    /// Serialises certificate and private key as PEM (webrtc-rs layout: an `EXPIRES` block,
    /// then the key and certificate). Treat the result as a secret.
    pub fn to_pem(&self) -> Result<String, MeshError> {
        self.certificate
            .serialize_pem()
            .map_err(|e| MeshError::Certificate(e.to_string()))
    }

    fn from_certificate(certificate: RTCCertificate) -> Result<Self, MeshError> {
        let der = certificate
            .dtls_certificate
            .certificate
            .first()
            .map(|c| c.as_ref().to_vec())
            .ok_or_else(|| MeshError::Certificate("certificate chain is empty".to_owned()))?;
        let fingerprint = fingerprint_of_der(&der);
        Ok(DtlsIdentity {
            certificate,
            der,
            fingerprint,
        })
    }

    /// SHA-256 of the certificate DER, lowercase colon-hex (95 chars): the value a Kibitz
    /// authority reads from `getRemoteCertificates()[0]` and the one an agent assertion signs.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The certificate in DER form.
    pub fn certificate_der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as webrtc-rs wants it in an `RTCConfiguration`.
    pub(crate) fn rtc_certificate(&self) -> RTCCertificate {
        self.certificate.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_format_matches_spec_vector() {
        // kibitz-agents.md §3.5: SHA-256("abc").
        assert_eq!(
            fingerprint_of_der(b"abc"),
            "ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:b0:03:61:a3:96:17:7a:9c:b4:10:ff:61:f2:00:15:ad"
        );
        assert_eq!(fingerprint_of_der(b"abc").len(), FINGERPRINT_LEN);
    }

    #[test]
    fn fingerprint_of_empty_input() {
        let fp = fingerprint_of_der(b"");
        assert!(fp.starts_with("e3:b0:c4:42:98:fc:1c:14"));
        assert_eq!(fp.len(), FINGERPRINT_LEN);
        assert_eq!(fp, fp.to_lowercase());
    }

    #[test]
    fn generated_identity_fingerprints_its_der() {
        let id = DtlsIdentity::generate().unwrap();
        assert_eq!(id.fingerprint(), fingerprint_of_der(id.certificate_der()));
        assert_eq!(id.fingerprint().len(), FINGERPRINT_LEN);
        // A DER certificate starts with a SEQUENCE tag.
        assert_eq!(id.certificate_der()[0], 0x30);
        // It matches what webrtc-rs itself would put in the SDP.
        let provider = rtc::crypto::default_provider().unwrap();
        let sdp_fps = id
            .rtc_certificate()
            .get_fingerprints(provider.crypto())
            .unwrap();
        assert_eq!(sdp_fps[0].value, id.fingerprint());
        // Two generated identities differ.
        let other = DtlsIdentity::generate().unwrap();
        assert_ne!(other.fingerprint(), id.fingerprint());
    }

    #[test]
    fn pem_round_trip_keeps_fingerprint() {
        let id = DtlsIdentity::generate().unwrap();
        let pem = id.to_pem().unwrap();
        let back = DtlsIdentity::from_pem(&pem).unwrap();
        assert_eq!(back.fingerprint(), id.fingerprint());
        assert_eq!(back.certificate_der(), id.certificate_der());
    }

    #[test]
    fn bad_pem_is_a_typed_error() {
        assert!(matches!(
            DtlsIdentity::from_pem("not a pem"),
            Err(MeshError::Certificate(_))
        ));
        assert!(matches!(
            DtlsIdentity::from_pem(""),
            Err(MeshError::Certificate(_))
        ));
        // webrtc-rs would slice a short EXPIRES block out of bounds; we refuse it first.
        let short = "-----BEGIN EXPIRES-----\nAAE=\n-----END EXPIRES-----\n";
        assert!(matches!(
            DtlsIdentity::from_pem(short),
            Err(MeshError::Certificate(_))
        ));
    }
}
