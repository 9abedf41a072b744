//! SSH signatures on ledger commits, verified in-process: who wrote a commit
//! is proven by a key the ledger's config lists for that actor, never by a
//! name the pusher wrote. Signatures follow git's `gpg.format=ssh`
//! convention (an armored SSHSIG over the commit without its `gpgsig`
//! header, namespace `git`), so `git verify-commit` reads them too.

use ssh_key::{Algorithm, PublicKey, SshSig};

/// The namespace git uses for commit signatures.
pub const NAMESPACE: &str = "git";

/// The largest armored signature accepted.
pub const MAX_SIGNATURE: usize = 4096;

/// Parse an allowed key (`ssh-ed25519 AAAA… comment`). Only ed25519 keys are
/// accepted: one small, fast, well-reviewed algorithm to verify on servers.
pub fn parse_key(text: &str) -> Result<PublicKey, String> {
    if text.len() > super::config::bounds::KEY_BYTES {
        return Err("a key is longer than 1024 bytes".into());
    }
    let key = PublicKey::from_openssh(text.trim())
        .map_err(|e| format!("{} is not an OpenSSH public key: {e}", super::ids::shown(text)))?;
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(format!(
            "{} is a {} key; only ssh-ed25519 keys can sign the ledger (ssh-keygen -t ed25519)",
            super::ids::shown(text),
            key.algorithm()
        ));
    }
    Ok(key)
}

/// Check that `signature` (armored) signs `payload` in the `git` namespace
/// with one of `allowed` (OpenSSH public keys).
pub fn verify(payload: &[u8], signature: &str, allowed: &[String]) -> Result<(), String> {
    if signature.len() > MAX_SIGNATURE {
        return Err("the signature is larger than 4 KiB".into());
    }
    let sig = SshSig::from_pem(signature.trim()).map_err(|e| format!("the signature does not parse: {e}"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!("the signature is for namespace {:?}, not \"git\"", sig.namespace()));
    }
    let key = allowed
        .iter()
        .filter_map(|k| parse_key(k).ok())
        .find(|k| k.key_data() == sig.public_key())
        .ok_or_else(|| "it is signed by a key not listed for it".to_string())?;
    key.verify(NAMESPACE, payload, &sig).map_err(|_| "the signature does not match the commit".to_string())
}

/// The fingerprint of a signature's key, for messages (`SHA256:…`).
pub fn signer_fingerprint(signature: &str) -> Option<String> {
    let sig = SshSig::from_pem(signature.trim()).ok()?;
    Some(sig.public_key().fingerprint(ssh_key::HashAlg::Sha256).to_string())
}
