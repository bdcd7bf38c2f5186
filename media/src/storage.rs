//! Audio objects addressed by keys like `projects/<id>/clips/<id>.wav`: local files, mirrored to
//! an S3-compatible object store in cloud mode.

use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Objects up to this size are sent in one request; larger ones in parts of this size.
pub const MULTIPART_BYTES: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
#[error("invalid storage key {0:?}: keys are relative paths of plain names")]
pub struct InvalidKey(pub String);

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Key(#[from] InvalidKey),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("object storage: {0}")]
    Remote(#[from] object_store::Error),
}

/// Audio objects: files in a local directory, mirrored to an object store when the processes
/// of a deployment do not share a disk (cloud mode). Code reads and writes the local files;
/// [`Storage::publish`] sends a finished object to the store and [`Storage::fetch`] brings one
/// that another process published. Objects are immutable once published, so a local copy is
/// never stale.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
    remote: Option<Arc<dyn ObjectStore>>,
}

impl Storage {
    /// Objects in the directory `root` only.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), remote: None }
    }

    /// Objects in `remote`, with `root` as this process's working copy.
    pub fn mirrored(root: impl Into<PathBuf>, remote: Arc<dyn ObjectStore>) -> Self {
        Self { root: root.into(), remote: Some(remote) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local file for `key`. Keys with `..`, absolute paths, empty parts or odd characters
    /// are refused, so no key reaches outside the root.
    pub fn path(&self, key: &str) -> Result<PathBuf, InvalidKey> {
        let safe_chars = key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
        let relative = Path::new(key);
        let plain = relative.components().all(|c| matches!(c, Component::Normal(_)));
        if key.is_empty() || !safe_chars || !plain || key.contains("//") || key.ends_with('/') {
            return Err(InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(relative))
    }

    /// Sends the local file `key` to the object store (nothing to do without one).
    /// Files larger than [`MULTIPART_BYTES`] go up in parts, so memory stays bounded.
    pub async fn publish(&self, key: &str) -> Result<(), StorageError> {
        use tokio::io::AsyncReadExt;
        let Some(remote) = &self.remote else { return Ok(()) };
        let location = object_store::path::Path::from(key);
        let mut file = tokio::fs::File::open(self.path(key)?).await?;
        if file.metadata().await?.len() <= MULTIPART_BYTES as u64 {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).await?;
            remote.put(&location, PutPayload::from(bytes)).await?;
            return Ok(());
        }
        let mut upload =
            object_store::WriteMultipart::new_with_chunk_size(remote.put_multipart(&location).await?, MULTIPART_BYTES);
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let read = file.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            upload.wait_for_capacity(2).await?;
            upload.write(&buffer[..read]);
        }
        upload.finish().await?;
        Ok(())
    }

    /// Whether objects are mirrored to an object store (cloud mode).
    pub fn is_mirrored(&self) -> bool {
        self.remote.is_some()
    }

    /// Sends every file directly inside the local directory `key` to the object store.
    pub async fn publish_dir(&self, key: &str) -> Result<(), StorageError> {
        self.publish_new(key, &mut std::collections::HashSet::new(), |_, _| true).await
    }

    /// Sends the files directly inside the local directory `key` that are not in `sent` and
    /// that `ready(name, length)` accepts, adding each to `sent` once it is in the store.
    pub async fn publish_new(
        &self,
        key: &str,
        sent: &mut std::collections::HashSet<String>,
        ready: impl Fn(&str, u64) -> bool,
    ) -> Result<(), StorageError> {
        if self.remote.is_none() {
            return Ok(());
        }
        let mut entries = tokio::fs::read_dir(self.path(key)?).await?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let metadata = entry.metadata().await?;
            if metadata.is_file() && !sent.contains(&name) && ready(&name, metadata.len()) {
                self.publish(&format!("{key}/{name}")).await?;
                sent.insert(name);
            }
        }
        Ok(())
    }

    /// The local file for `key`, brought from the object store first if this process does not
    /// have it. Errors: `Io` NotFound when the object exists nowhere.
    pub async fn fetch(&self, key: &str) -> Result<PathBuf, StorageError> {
        let path = self.path(key)?;
        let Some(remote) = &self.remote else { return Ok(path) };
        if tokio::fs::try_exists(&path).await? {
            return Ok(path);
        }
        let object = match remote.get(&object_store::path::Path::from(key)).await {
            Err(object_store::Error::NotFound { .. }) => {
                return Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no object {key}")).into());
            }
            other => other?,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // Whole or not at all: a reader never sees half an object.
        let partial = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial).await?;
        let mut stream = object.into_stream();
        while let Some(bytes) = stream.try_next().await? {
            tokio::io::AsyncWriteExt::write_all(&mut file, &bytes).await?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file).await?;
        drop(file);
        tokio::fs::rename(&partial, &path).await?;
        Ok(path)
    }

    /// The local directory `key`, with every object under it in the object store brought here.
    pub async fn fetch_dir(&self, key: &str) -> Result<PathBuf, StorageError> {
        let dir = self.path(key)?;
        let Some(remote) = &self.remote else { return Ok(dir) };
        let prefix = object_store::path::Path::from(key);
        let objects: Vec<_> = remote.list(Some(&prefix)).try_collect().await?;
        for object in objects {
            self.fetch(object.location.as_ref()).await?;
        }
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        let storage = Storage::new("/data/audio");
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

#[cfg(test)]
mod mirrored {
    use super::*;

    #[tokio::test]
    async fn an_object_published_by_one_process_is_fetched_whole_by_another() {
        let shared: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (writer, reader) = (Storage::mirrored(a.path(), shared.clone()), Storage::mirrored(b.path(), shared));
        let capture = writer.path("captures/s1").unwrap();
        std::fs::create_dir_all(&capture).unwrap();
        std::fs::write(capture.join("manifest"), "channels=1\n").unwrap();
        std::fs::write(capture.join("chunk-000000.f32"), [1u8, 2, 3, 4]).unwrap();
        writer.publish_dir("captures/s1").await.unwrap();

        let fetched = reader.fetch_dir("captures/s1").await.unwrap();
        assert_eq!(std::fs::read(fetched.join("chunk-000000.f32")).unwrap(), [1, 2, 3, 4]);
        assert_eq!(std::fs::read_to_string(fetched.join("manifest")).unwrap(), "channels=1\n");
        let missing = reader.fetch("captures/s2/manifest").await.unwrap_err();
        assert!(matches!(missing, StorageError::Io(ref e) if e.kind() == std::io::ErrorKind::NotFound), "{missing}");
        assert!(reader.fetch("../etc/passwd").await.is_err());
    }

    #[tokio::test]
    async fn a_large_object_goes_up_in_parts_and_comes_back_whole() {
        let shared: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (writer, reader) = (Storage::mirrored(a.path(), shared.clone()), Storage::mirrored(b.path(), shared));
        let key = "projects/p/mixdowns/j/mix.wav";
        let path = writer.path(key).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..2 * MULTIPART_BYTES + 12_345).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        writer.publish(key).await.unwrap();
        let fetched = reader.fetch(key).await.unwrap();
        assert_eq!(std::fs::read(fetched).unwrap(), bytes);
    }
}
