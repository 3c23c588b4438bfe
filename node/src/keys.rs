//! Key files: a secret key as 64 hex digits (the seed), the format every `keel` command and the
//! devnet read and write.

use std::path::{Path, PathBuf};

use keel_state::SecretKey;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It does not hold a key.
    #[error("{} must hold a key: 64 hex digits", path.display())]
    NotAKey {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a key file.
pub fn read_key(path: &Path) -> Result<SecretKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let bad = || KeyFileError::NotAKey {
        path: path.to_owned(),
    };
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    SecretKey::from_bytes(&seed).map_err(|_| bad())
}

/// Makes a new random key in a new file readable and writable by its owner alone (mode 0600);
/// refuses a file that exists.
pub fn create_key(path: &Path) -> Result<SecretKey, KeyFileError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(io)?;
    let key = SecretKey::random(rand_core::OsRng);
    file.write_all(hex::encode(key.to_bytes()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    Ok(key)
}

/// Writes a key file.
pub fn write_key(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    std::fs::write(path, hex::encode(key.to_bytes())).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_and_anything_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = SecretKey::from_seed(&[7; 32]);
        write_key(&path, &key).unwrap();
        assert_eq!(read_key(&path).unwrap().public_key(), key.public_key());
        for bad in ["", "zz", "00", &"ab".repeat(33)] {
            std::fs::write(&path, bad).unwrap();
            assert!(
                matches!(read_key(&path), Err(KeyFileError::NotAKey { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            read_key(&dir.path().join("missing")),
            Err(KeyFileError::Io { .. })
        ));
    }
}
