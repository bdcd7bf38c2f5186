//! The `audiolab` binary's roles as separate processes (cloud mode): PostgreSQL, Redis and an
//! S3-compatible object store (`s3s-fs`) shared, each process with a data directory of its own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BINARY: &str = env!("CARGO_BIN_EXE_audiolab");

/// A child process, killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary with `args` in `env` and returns it with the first line it prints (what
/// it is doing, once it is ready).
fn spawn(args: &[&str], env: &[(&str, String)]) -> (Process, String) {
    let mut child = Command::new(BINARY)
        .args(args)
        .env_remove("PORT")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Process(child), line)
}

/// Starts `audiolab <role> --port 0` and returns it with its URL.
pub fn start(role: &str, env: &[(&str, String)]) -> (Process, String) {
    let (process, line) = spawn(&[role, "--port", "0"], env);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{role}: {line:?}"))
        .to_owned();
    (process, url)
}

/// Starts `audiolab worker` (it serves no HTTP) and waits until it is connected.
pub fn start_worker(env: &[(&str, String)]) -> Process {
    let (process, line) = spawn(&["worker"], env);
    assert!(line.contains("taking jobs from JobQueue::Redis"), "{line:?}");
    process
}

/// The settings every process of one test deployment shares: its database, Redis, a queue of
/// its own (named after `tag`), the internal secret, and quick heartbeats so failover is
/// seen within seconds.
pub fn cluster_env(database_url: &str, redis_url: &str, tag: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("AUDIOLAB_NODE_HEARTBEAT_SECS", "1".to_owned()),
        ("AUDIOLAB_NODE_STALE_SECS", "3".to_owned()),
        ("AUDIOLAB_QUEUE_NAME", format!("{tag}-{}", uuid::Uuid::new_v4().simple())),
        ("AUDIOLAB_INTERNAL_SECRET", secret.to_owned()),
    ]
}

/// A `redis-server` of the test's own on a free port, to stop and restart.
pub struct OwnRedis {
    pub port: u16,
    process: Option<Process>,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, process: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it and waits until its port is closed.
    pub fn stop(&mut self) {
        self.process = None;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it (again), empty, and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        self.process = Some(Process(child));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An S3-compatible server over a temporary directory (buckets are its sub-directories).
pub struct ObjectStore {
    pub dir: tempfile::TempDir,
    pub port: u16,
    _process: Process,
}

impl ObjectStore {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "audiolab", "--secret-key", "audiolab-secret"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs must be installed: cargo install s3s-fs@0.14.1 --features binary");
        let process = Process(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { dir, port, _process: process }
    }

    /// The settings that point a process at this store, under a fresh short prefix (s3s-fs
    /// keeps metadata in a file named after the base64 of the key, and file names stop at 255
    /// bytes), and the directory the prefix's objects land in.
    pub fn env(&self, tag: &str) -> (Vec<(&'static str, String)>, std::path::PathBuf) {
        let prefix = format!("{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let bucket_dir = self.dir.path().join("audiolab").join(&prefix);
        std::fs::create_dir_all(&bucket_dir).unwrap();
        let env = vec![
            ("AUDIOLAB_STORAGE_URL", format!("s3://audiolab/{prefix}")),
            ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "audiolab".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "audiolab-secret".to_owned()),
        ];
        (env, bucket_dir)
    }
}

/// A whole cloud deployment: one node, one worker and one api process on a database of their
/// own, the machine's Redis (a queue of their own) and an object store.
pub struct Deployment {
    pub api: String,
    _api: Process,
    _worker: Process,
    _node: Process,
    _objects: ObjectStore,
    _data_dirs: Vec<tempfile::TempDir>,
}

impl Deployment {
    pub fn start(database_url: &str, internal_secret: &str) -> Self {
        let objects = ObjectStore::start();
        let (mut env, _) = objects.env("d");
        env.extend(cluster_env(database_url, "redis://127.0.0.1:6379", "deployment", internal_secret));
        let data_dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let with_dir =
            |i: usize| [&env[..], &[("AUDIOLAB_DATA_DIR", data_dirs[i].path().display().to_string())]].concat();
        let (node, _) = start("node", &with_dir(0));
        let worker = start_worker(&with_dir(1));
        let (api_process, api) = start("api", &with_dir(2));
        Self { api, _api: api_process, _worker: worker, _node: node, _objects: objects, _data_dirs: data_dirs }
    }
}
