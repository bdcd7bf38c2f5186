//! Audio objects on the local filesystem, addressed by keys like `projects/<id>/clips/<id>.wav`.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("invalid storage key {0:?}: keys are relative paths of plain names")]
pub struct InvalidKey(pub String);

/// A directory holding audio objects.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for `key`. Keys with `..`, absolute paths, empty parts or odd characters are
    /// refused, so no key reaches outside the root.
    pub fn path(&self, key: &str) -> Result<PathBuf, InvalidKey> {
        let safe_chars = key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
        let relative = Path::new(key);
        let plain = relative.components().all(|c| matches!(c, Component::Normal(_)));
        if key.is_empty() || !safe_chars || !plain || key.contains("//") || key.ends_with('/') {
            return Err(InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(relative))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        let storage = LocalStorage::new("/data/audio");
        assert_eq!(
            storage.path("projects/p1/clips/c1.wav").unwrap(),
            PathBuf::from("/data/audio/projects/p1/clips/c1.wav")
        );
        for bad in ["", "../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a/", "a\\b", "name with space.wav", "./a"]
        {
            assert!(storage.path(bad).is_err(), "{bad:?}");
        }
    }
}
