//! Password hashing on a fixed pool: a few threads (about one per core, leaving one for the
//! rest of the server) and a short queue. Argon2id takes 19 MiB and tens of milliseconds per
//! hash by design, so a burst of logins or registrations must not get a thread — and its
//! memory — each: past the queue the caller is told to come back ([`Busy`]), and memory stays
//! at a few hashes' worth whatever the burst.
//!
//! Each hashing thread keeps its Argon2 memory and reuses it ([`hash_password`],
//! [`verify_password`]): a fresh 19 MiB per hash was kept by the allocator after a burst
//! (measured: +150 MB that never came back), where one block per thread stays at one.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError};

/// The pool is full: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy(pub u64);

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of hashing threads fed through a bounded queue.
pub struct HashPool {
    jobs: SyncSender<Job>,
}

/// Jobs that may wait per hashing thread before callers are turned away.
const QUEUE_PER_THREAD: usize = 8;

impl HashPool {
    /// A pool of `threads` threads with room for `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue);
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new().name(format!("password-hash-{index}")).spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job, never while hashing.
                    let job = match receiver.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    job();
                }
            });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Self { jobs }
    }

    /// The process's pool: one thread per core but one (at least one), a queue of
    /// [`QUEUE_PER_THREAD`] per thread.
    pub fn shared() -> &'static HashPool {
        static POOL: OnceLock<HashPool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let threads = cores.saturating_sub(1).max(1);
            HashPool::new(threads, threads * QUEUE_PER_THREAD)
        })
    }

    /// Runs `work` on the pool and waits for its result. Errors: [`Busy`] at once when the
    /// queue is full (or the pool is gone).
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(Busy(1)),
        }
        result.await.map_err(|_| Busy(1))
    }
}

thread_local! {
    /// This thread's Argon2 memory, allocated on its first hash and reused by every later one.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` with `blocks` blocks of this thread's Argon2 memory.
fn with_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        work(&mut memory[..blocks])
    })
}

/// An Argon2id hash of `password` (OWASP's parameters) in PHC string format, with a new salt.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(params.block_count(), |memory| {
        argon2.hash_password_into_with_memory(password, raw_salt, &mut out, memory)
    })
    .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: params.try_into().map_err(|e: argon2::password_hash::Error| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (any Argon2 variant and parameters), in
/// time independent of where they differ. Errors: a malformed hash.
pub fn verify_password(hash: &str, password: &[u8]) -> Result<bool, String> {
    let parsed = PasswordHash::new(hash).map_err(|e| e.to_string())?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
    let version = parsed.version.map(Version::try_from).transpose().map_err(|e| e.to_string())?.unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let salt = parsed.salt.ok_or("the hash has no salt")?;
    let expected = parsed.hash.ok_or("the hash has no output")?;
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    with_memory(params.block_count(), |memory| {
        argon2.hash_password_into_with_memory(password, raw_salt, &mut out, memory)
    })
    .map_err(|e| e.to_string())?;
    // `Output`'s equality is constant-time.
    Ok(Output::new(&out).map_err(|e| e.to_string())? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn hashes_verify_against_their_own_password_and_the_library_agrees() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let hash = hash_password(b"correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password(&hash, b"correct horse").unwrap());
        assert!(!verify_password(&hash, b"correct horsf").unwrap());
        // The library reads ours, and we read the library's.
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default().hash_password(b"battery staple", &salt).unwrap().to_string();
        assert!(verify_password(&theirs, b"battery staple").unwrap());
        assert!(!verify_password(&theirs, b"battery stapler").unwrap());
        assert!(verify_password("not a hash", b"x").is_err());
    }

    #[tokio::test]
    async fn a_full_queue_turns_callers_away_at_once_and_the_pool_carries_on() {
        let pool = Arc::new(HashPool::new(1, 2));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let ran = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::new();
        // One job runs (held at the gate), two wait in the queue: a fourth is turned away.
        for _ in 0..3 {
            let (pool, gate, ran) = (pool.clone(), gate.clone(), ran.clone());
            waiting.push(tokio::spawn(async move {
                pool.run(move || {
                    let _ = gate.lock().unwrap().recv();
                    ran.fetch_add(1, Ordering::SeqCst)
                })
                .await
            }));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(pool.run(|| 0).await, Err(Busy(1)));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for job in waiting {
            assert!(job.await.unwrap().is_ok());
        }
        assert_eq!(ran.load(Ordering::SeqCst), 3);
        assert_eq!(pool.run(|| 7).await, Ok(7), "room again once the queue drained");
    }
}
