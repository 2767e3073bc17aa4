//! Encryption at rest for cluster credentials: XChaCha20-Poly1305 with a
//! random nonce per message. The key comes from GANTRY_SECRET_KEY (base64 of
//! 32 bytes), from a key file, or is generated in the data directory (mode
//! 0600) on first start.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

/// Where the key came from, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(String),
    Generated(String),
}

fn decode_key(text: &str, origin: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("{origin}: the secret key is not base64: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("{origin}: the secret key must be 32 bytes, got {}", b.len()))
}

impl Sealer {
    pub fn from_key(key: [u8; 32]) -> Sealer {
        Sealer { cipher: XChaCha20Poly1305::new(&key.into()) }
    }

    /// Loads the key from the environment value, the file, or generates one
    /// in `data_dir` when neither is given.
    pub fn load(
        env_value: Option<&str>,
        key_file: Option<&Path>,
        data_dir: &Path,
    ) -> Result<(Sealer, KeySource), String> {
        if let Some(value) = env_value {
            // Set but empty, as from a Secret without the value: generating a
            // key here would give each replica its own, and lose it at restart.
            if value.trim().is_empty() {
                return Err("GANTRY_SECRET_KEY is set but empty (a Secret without its value?); set it to base64 of 32 bytes, or unset it to keep a key in the data directory".into());
            }
            return Ok((Sealer::from_key(decode_key(value, "GANTRY_SECRET_KEY")?), KeySource::Environment));
        }
        if let Some(path) = key_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--secret-key-file: cannot read {}: {e}", path.display()))?;
            return Ok((
                Sealer::from_key(decode_key(&text, "--secret-key-file")?),
                KeySource::File(path.display().to_string()),
            ));
        }
        let path = data_dir.join("secret.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            return Ok((
                Sealer::from_key(decode_key(&text, &path.display().to_string())?),
                KeySource::File(path.display().to_string()),
            ));
        }
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("--data-dir: cannot create {}: {e}", data_dir.display()))?;
        write_private(&path, base64::engine::general_purpose::STANDARD.encode(key).as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok((Sealer::from_key(key), KeySource::Generated(path.display().to_string())))
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption with a valid key and nonce cannot fail.
        out.extend(self.cipher.encrypt(XNonce::from_slice(&nonce), plaintext).unwrap_or_default());
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < 24 {
            return Err("sealed data is too short".into());
        }
        let (nonce, ciphertext) = sealed.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| "cannot decrypt: wrong key or corrupted data".to_string())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_detects_tampering() {
        let sealer = Sealer::from_key([7; 32]);
        let sealed = sealer.seal(b"kubeconfig");
        assert_ne!(&sealed[24..], b"kubeconfig");
        assert_eq!(sealer.open(&sealed).unwrap(), b"kubeconfig");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&tampered).is_err());
        assert!(Sealer::from_key([8; 32]).open(&sealed).is_err(), "another key cannot open it");
        assert_ne!(sealer.seal(b"x"), sealer.seal(b"x"), "nonces differ");
    }

    #[test]
    fn generates_a_private_key_file_once() {
        let dir = std::env::temp_dir().join(format!("gantry-key-{}", rand::random::<u32>()));
        let (first, source) = Sealer::load(None, None, &dir).unwrap();
        assert!(matches!(source, KeySource::Generated(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, source) = Sealer::load(None, None, &dir).unwrap();
        assert!(matches!(source, KeySource::File(_)));
        assert_eq!(second.open(&first.seal(b"same key")).unwrap(), b"same key");
        assert!(Sealer::load(Some("not base64!"), None, &dir).is_err());
        assert!(Sealer::load(Some("c2hvcnQ="), None, &dir).unwrap_err().contains("32 bytes"));
        assert!(Sealer::load(Some(""), None, &dir).unwrap_err().contains("set but empty"));
        std::fs::remove_dir_all(dir).ok();
    }
}
