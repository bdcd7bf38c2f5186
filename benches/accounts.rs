//! What a burst of registrations and logins costs the server (§8: abuse costs the attacker).
//!
//! `cargo bench --bench accounts [-- --attempts 1000 --addresses 100 --concurrency 64]`
//!
//! Starts the `audiolab serve` binary with accounts on, then sends `attempts` requests from
//! `addresses` loopback addresses (127.0.1.x), `concurrency` at a time: half registrations, half
//! logins with a wrong password. Meanwhile it asks `/health` every 10 ms (from another address)
//! and reads the server's resident memory every 20 ms. Prints the answers by status, the RSS
//! before, at its peak and 3 s after, `/health` latency idle (the reference, measured first in
//! the same run) and under the burst, and whether a user's right password from a clean address
//! is accepted right after.

use futures_util::StreamExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_audiolab");
const PASSWORD: &str = "correct horse battery";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| {
        args.iter().position(|a| a == flag).map_or(default.to_owned(), |i| args[i + 1].clone())
    };
    let attempts: usize = value("--attempts", "1000").parse().unwrap();
    let addresses: usize = value("--addresses", "100").parse().unwrap();
    let concurrency: usize = value("--concurrency", "64").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(attempts, addresses, concurrency));
}

/// Resident memory of `pid` in MB.
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn client_from(address: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(address)).pool_max_idle_per_host(0).build().unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

/// `/health` latencies (ms) measured every 10 ms until `stop`.
async fn health_probe(base: String, stop: Arc<AtomicBool>) -> Vec<f64> {
    let client = client_from(Ipv4Addr::new(127, 0, 3, 1));
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        if client.get(format!("{base}/health")).send().await.is_ok() {
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

async fn run(attempts: usize, addresses: usize, concurrency: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BINARY)
        .args(["serve", "--port", "0"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PORT")
        .env("AUDIOLAB_AUTH", "enabled")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().trim().to_owned();
    let owner = client_from(Ipv4Addr::new(127, 0, 2, 1));
    let registered = owner
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": "owner", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);

    // The reference: /health on the idle server, in this run.
    let stop = Arc::new(AtomicBool::new(false));
    let idle = tokio::spawn(health_probe(base.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let idle = idle.await.unwrap();
    let fresh = rss_mb(pid);
    // A reference burst that hashes nothing (the same requests, to `/api/info`): what the
    // connections alone cost.
    let info: Vec<u16> = futures_util::stream::iter(0..attempts)
        .map(|i| {
            let client = client_from(Ipv4Addr::new(127, 0, 1, 1 + (i % addresses % 250) as u8));
            let url = format!("{base}/health");
            async move { client.get(url).send().await.map_or(0, |r| r.status().as_u16()) }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    assert!(info.iter().all(|&s| s == 200));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_mb(pid);
    println!("reference burst of {attempts} GET /health: server RSS {fresh:.1} → {before:.1} MB");

    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(health_probe(base.clone(), stop.clone()));
    let peak = Arc::new(AtomicU64::new(before.to_bits()));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let now = rss_mb(pid);
                if now > f64::from_bits(peak.load(Ordering::Relaxed)) {
                    peak.store(now.to_bits(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let clients: Vec<reqwest::Client> =
        (0..addresses).map(|i| client_from(Ipv4Addr::new(127, 0, 1, 1 + (i % 250) as u8))).collect();
    let started = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(0..attempts)
        .map(|i| {
            let client = clients[i % addresses].clone();
            let base = base.clone();
            async move {
                let (path, body) = if i % 2 == 0 {
                    ("register", json!({"username": format!("user{i}"), "password": PASSWORD}))
                } else {
                    ("login", json!({"username": format!("user{}", i - 1), "password": "a wrong guess"}))
                };
                match client.post(format!("{base}/api/auth/{path}")).json(&body).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let burst = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let under_load = probe.await.unwrap();
    sampler.await.unwrap();
    let peak = f64::from_bits(peak.load(Ordering::Relaxed));

    let login = owner
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "owner", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_mb(pid);
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default().trim().to_owned();
        *threads.entry(name).or_insert(0) += 1;
    }
    println!("server threads: {threads:?}");
    let _ = child.kill();
    let _ = child.wait();

    let mut counts = BTreeMap::new();
    for status in statuses {
        *counts.entry(status).or_insert(0) += 1;
    }
    println!(
        "{attempts} attempts (register / wrong login) from {addresses} addresses, {concurrency} at a time, in {:.2} s",
        burst.as_secs_f64()
    );
    println!("answers by status: {counts:?}");
    println!(
        "server RSS: {before:.1} MB before, {peak:.1} MB at peak (+{:.1}), {after:.1} MB 3 s after (+{:.1})",
        peak - before,
        after - before
    );
    println!(
        "/health idle (reference): p50 {:.2} ms, p99 {:.2} ms ({} probes)",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
        idle.len()
    );
    println!(
        "/health under the burst: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} probes); p99 ratio to idle {:.1}x",
        percentile(&under_load, 0.5),
        percentile(&under_load, 0.99),
        under_load.last().copied().unwrap_or(f64::NAN),
        under_load.len(),
        percentile(&under_load, 0.99) / percentile(&idle, 0.99)
    );
    println!("the owner's right password from a clean address right after: {login}");
}
