//! Encryption at rest for secret values (SSM SecureString parameters,
//! Secrets Manager secrets): envelope encryption with AES-256-GCM from the
//! `aes-gcm` crate.
//!
//! Each value gets a fresh random data key; the value is sealed with the
//! data key, and the data key is sealed with the server's master key. Both
//! seals bind the caller's context (`aad`: which record, which version), so
//! a sealed value copied onto another record does not open. Stored records
//! hold only [`Sealed`]; the plaintext exists in memory for as long as a
//! request needs it.
//!
//! The master key is 32 random bytes, kept base64-encoded in a file with
//! mode 0600 (created on first start) or given by the operator.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the master key {0}")]
    BadMasterKey(String),
    #[error("the master key file {path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// The value does not open with this master key and context: the key
    /// is not the one it was sealed with, or the record was tampered with.
    #[error("a sealed value did not open (wrong master key, or altered data)")]
    Open,
    #[error("a sealed value is malformed: {0}")]
    Malformed(String),
    #[error("sealing failed")]
    Seal,
}

/// The server's master key.
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new random key.
    pub fn generate() -> Self {
        let k = Aes256Gcm::generate_key(OsRng);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&k);
        MasterKey { key }
    }

    /// Reads a key given as base64 text (a file's content or an
    /// environment variable's value).
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = Zeroizing::new(
            B64.decode(text.trim())
                .map_err(|e| SealError::BadMasterKey(format!("is not base64: {e}")))?,
        );
        if bytes.len() != 32 {
            return Err(SealError::BadMasterKey(format!(
                "must be 32 bytes (base64 of 32 random bytes); it is {} bytes",
                bytes.len()
            )));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Ok(MasterKey { key })
    }

    /// Reads the key file at `path`.
    pub fn read(path: &Path) -> Result<Self, SealError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|error| SealError::Io {
                    path: path.display().to_string(),
                    error,
                })?,
            );
        Self::from_base64(&text)
            .map_err(|e| SealError::BadMasterKey(format!("in {}: {e}", path.display())))
    }

    /// Reads the key file at `path`, creating it (mode 0600, a new random
    /// key) when there is none. Refuses a file others can read.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        let io = |error| SealError::Io {
            path: path.display().to_string(),
            error,
        };
        match std::fs::metadata(path) {
            Ok(meta) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = meta.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        return Err(SealError::BadMasterKey(format!(
                            "file {} is readable by others (mode {mode:o}); chmod 600 it",
                            path.display()
                        )));
                    }
                }
                #[cfg(not(unix))]
                let _ = meta;
                Self::read(path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut opts = OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path).map_err(io)?;
                let text = Zeroizing::new(B64.encode(*key.key));
                f.write_all(text.as_bytes()).map_err(io)?;
                f.write_all(b"\n").map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&*self.key))
    }

    /// Seals `plaintext`, bound to `aad` (which must be given again to
    /// open it).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, SealError> {
        let mut data_key = Zeroizing::new([0u8; 32]);
        data_key.copy_from_slice(&Aes256Gcm::generate_key(OsRng));
        let data = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&*data_key));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = data
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| SealError::Seal)?;
        let key_nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let wrapped = self
            .cipher()
            .encrypt(
                &key_nonce,
                Payload {
                    msg: &*data_key,
                    aad,
                },
            )
            .map_err(|_| SealError::Seal)?;
        Ok(Sealed {
            v: 1,
            wrapped_key: B64.encode(wrapped),
            key_nonce: B64.encode(key_nonce),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ciphertext),
        })
    }

    /// Opens a sealed value with the `aad` it was sealed with.
    pub fn open(&self, aad: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.v != 1 {
            return Err(SealError::Malformed(format!("version {}", sealed.v)));
        }
        let field = |name: &str, s: &str| {
            B64.decode(s)
                .map_err(|e| SealError::Malformed(format!("{name}: {e}")))
        };
        let nonce_of = |name: &str, s: &str| -> Result<Vec<u8>, SealError> {
            let n = field(name, s)?;
            if n.len() != 12 {
                return Err(SealError::Malformed(format!("{name} is not 96 bits")));
            }
            Ok(n)
        };
        let key_nonce = nonce_of("key_nonce", &sealed.key_nonce)?;
        let nonce = nonce_of("nonce", &sealed.nonce)?;
        let wrapped = field("wrapped_key", &sealed.wrapped_key)?;
        let ciphertext = field("ciphertext", &sealed.ciphertext)?;
        let data_key = Zeroizing::new(
            self.cipher()
                .decrypt(
                    Nonce::from_slice(&key_nonce),
                    Payload { msg: &wrapped, aad },
                )
                .map_err(|_| SealError::Open)?,
        );
        if data_key.len() != 32 {
            return Err(SealError::Malformed("data key is not 256 bits".into()));
        }
        let data = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key));
        data.decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
    }
}

/// A sealed value as records store it (base64 fields, serde).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub v: u8,
    pub wrapped_key: String,
    pub key_nonce: String,
    pub nonce: String,
    pub ciphertext: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_bound_to_context() {
        let k = MasterKey::generate();
        let s = k.seal(b"ssm:/db/password:1", b"hunter2").unwrap();
        assert_eq!(&*k.open(b"ssm:/db/password:1", &s).unwrap(), b"hunter2");
        // Another record's context, or another master key, does not open it.
        assert!(matches!(
            k.open(b"ssm:/db/password:2", &s),
            Err(SealError::Open)
        ));
        assert!(matches!(
            MasterKey::generate().open(b"ssm:/db/password:1", &s),
            Err(SealError::Open)
        ));
        // The stored form holds no plaintext, and two seals differ.
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("hunter2"));
        assert_ne!(s, k.seal(b"ssm:/db/password:1", b"hunter2").unwrap());
    }

    #[test]
    fn tampering_is_detected() {
        let k = MasterKey::generate();
        let mut s = k.seal(b"a", b"value").unwrap();
        let mut ct = B64.decode(&s.ciphertext).unwrap();
        ct[0] ^= 1;
        s.ciphertext = B64.encode(ct);
        assert!(matches!(k.open(b"a", &s), Err(SealError::Open)));
    }

    #[test]
    fn key_file_is_created_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let sealed = a.seal(b"x", b"secret").unwrap();
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(&*b.open(b"x", &sealed).unwrap(), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = MasterKey::load_or_create(&path).unwrap_err();
            assert!(e.to_string().contains("readable by others"), "{e}");
        }
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        assert!(MasterKey::from_base64("not base64!").is_err());
        let e = MasterKey::from_base64(&B64.encode([0u8; 16])).unwrap_err();
        assert!(e.to_string().contains("32 bytes"), "{e}");
    }
}
