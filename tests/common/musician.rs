//! The synthetic musician (a client audio device faster than real time) and a TCP proxy that
//! cuts the network, shared by the device tests in `serve` and split mode.

use super::{Socket, next_where, send};
use audiolab_transport::wire::{self, Header, Kind, SampleFormat};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The synthetic musician's round trip: its microphone hears what it played this many frames
/// earlier.
pub const LATENCY: u64 = 2_085;

/// The synthetic musician: a client device whose clock starts at client frame 50,000, which
/// plays every `MON` frame the moment it arrives, reports it, and sends as its microphone what
/// it heard `LATENCY` frames earlier (the left channel), in blocks of what it just played. It
/// keeps what the node has not acknowledged, and after a lost connection attaches again and
/// resends it, as the reference client does.
pub struct Musician {
    pub url: String,
    pub socket: Option<Socket>,
    /// The client frame of the next frame it plays.
    pub clock: u64,
    pub consumed: u64,
    /// What it heard at each client frame from 50,000 on.
    pub heard: Vec<f32>,
    /// Played runs (client, timeline, frames), kept to report again after a reconnect.
    pub runs: Vec<(u64, i64, u64)>,
    pub mic_seq: u32,
    /// Encoded microphone frames by `seq`, until the node acknowledges them.
    pub unacked: std::collections::BTreeMap<u32, Vec<u8>>,
    pub next_monitor_seq: u32,
    /// The timeline frame after the last one played.
    pub reached: i64,
    /// Every monitor frame played: its first timeline frame and its left channel.
    pub monitor: Vec<(i64, Vec<f32>)>,
    /// The largest number of microphone frames it had to keep at once.
    pub most_unacked: usize,
    /// Its clock runs this much fast (parts per million) against the stream: every
    /// 1,000,000 / ppm frames it has one frame with nothing to play (a one-frame underrun).
    pub fast_ppm: u64,
}

pub const MIC_STREAM: u32 = 7;
pub const CLOCK_START: u64 = 50_000;

pub fn attach_message() -> Value {
    json!({"type": "attach", "data": {"role": "device", "name": "laptop", "latency_frames": LATENCY}})
}

impl Musician {
    pub fn new(url: String, socket: Socket) -> Self {
        Self {
            url,
            socket: Some(socket),
            clock: CLOCK_START,
            consumed: 0,
            heard: Vec::new(),
            runs: Vec::new(),
            mic_seq: 0,
            unacked: Default::default(),
            next_monitor_seq: 0,
            reached: i64::MIN,
            monitor: Vec::new(),
            most_unacked: 0,
            fast_ppm: 0,
        }
    }

    pub fn socket(&mut self) -> &mut Socket {
        self.socket.as_mut().expect("connected")
    }

    /// Plays until the timeline reaches `until`; after a lost connection, hears silence for
    /// `away` frames (its output ran dry) and comes back.
    pub async fn play_until(&mut self, until: i64, away: u64) {
        let started = std::time::Instant::now();
        while self.reached < until {
            assert!(started.elapsed() < Duration::from_secs(60), "stuck at timeline frame {}", self.reached);
            if self.step().await.is_err() {
                self.underrun(away);
                self.reconnect().await;
            }
        }
    }

    /// Plays `frames` more frames wherever the transport goes (a loop wraps). The transport
    /// must be rolling.
    pub async fn play_for(&mut self, frames: u64) {
        let (until, started) = (self.consumed + frames, std::time::Instant::now());
        while self.consumed < until {
            assert!(started.elapsed() < Duration::from_secs(60), "stuck after {} frames", self.consumed);
            self.step().await.expect("connected");
        }
    }

    /// The transport stands: whatever monitor audio is still on its way is played, then the
    /// client's clock runs on for `frames` frames of silence, its microphone sending all along
    /// (as a sound card's does), and it says how far it has played.
    pub async fn idle(&mut self, frames: u64) {
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_millis(100), self.socket().next()).await {
            if let Message::Binary(bytes) = frame {
                self.play(wire::decode(&bytes).expect("a valid MON frame")).await.expect("connected");
            }
        }
        for _ in 0..frames.div_ceil(480) {
            self.heard.extend([0.0; 480]);
            let mic = self.capture(480);
            self.send(Message::binary(mic)).await.expect("connected");
        }
        let played = json!({"type": "played", "data": {"consumed": self.consumed}});
        self.send(Message::text(played.to_string())).await.expect("connected");
        self.reached = i64::MIN;
    }

    /// Sends a control command and plays on (as a client does) until its answer comes.
    pub async fn control(&mut self, command: &str, data: Value) -> Value {
        let id = uuid::Uuid::new_v4().to_string();
        let message = json!({"type": "control", "id": id, "command": command, "data": data});
        self.send(Message::text(message.to_string())).await.expect("connected");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            assert!(std::time::Instant::now() < deadline, "no answer to {command}");
            let frame = tokio::time::timeout(Duration::from_secs(5), self.socket().next()).await;
            match frame.expect("a message").expect("open").expect("a frame") {
                Message::Binary(bytes) => self.play(wire::decode(&bytes).unwrap()).await.expect("connected"),
                Message::Text(text) => {
                    let message: Value = serde_json::from_str(&text).unwrap();
                    if message["type"] == "control_response" && message["data"]["id"] == id.as_str() {
                        return message["data"].clone();
                    }
                }
                _ => {}
            }
        }
    }

    /// Takes the next message. Err when the connection is lost.
    async fn step(&mut self) -> Result<(), ()> {
        let frame = match tokio::time::timeout(Duration::from_millis(200), self.socket().next()).await {
            Err(_) => {
                // Nothing rendered: tell the node again how far we are (it renders as we play).
                let played = json!({"type": "played", "data": {"consumed": self.consumed}});
                return self.send(Message::text(played.to_string())).await;
            }
            Ok(Some(Ok(frame))) => frame,
            Ok(_) => return Err(()),
        };
        match frame {
            Message::Binary(bytes) => self.play(wire::decode(&bytes).expect("a valid MON frame")).await,
            Message::Text(text) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == "mic_ack" {
                    let next = message["data"]["next_seq"].as_u64().unwrap() as u32;
                    self.unacked.retain(|&seq, _| seq >= next);
                }
                Ok(())
            }
            Message::Close(_) => Err(()),
            _ => Ok(()),
        }
    }

    async fn send(&mut self, message: Message) -> Result<(), ()> {
        self.socket().send(message).await.map_err(|_| ())
    }

    async fn play(&mut self, frame: wire::AudioFrame) -> Result<(), ()> {
        if frame.header.seq < self.next_monitor_seq {
            return Ok(()); // sent again after a reconnect: already played
        }
        self.next_monitor_seq = frame.header.seq + 1;
        let frames = u64::from(frame.header.frames);
        // A timeline frame, signed: before 0 during a count-in.
        let timeline = frame.header.frame as i64;
        self.runs.push((self.clock, timeline, frames));
        let left: Vec<f32> = frame.samples.chunks(2).map(|pair| pair[0]).collect();
        self.heard.extend(&left);
        self.monitor.push((timeline, left));
        self.consumed += frames;
        let run = json!({"client": self.clock, "timeline": timeline, "frames": frames});
        let played = json!({"type": "played", "data": {"consumed": self.consumed, "runs": [run]}});
        self.reached = timeline + frames as i64;
        let mic = self.capture(frames);
        self.send(Message::text(played.to_string())).await?;
        self.send(Message::binary(mic)).await?;
        if self.fast_ppm > 0
            && self.clock / (1_000_000 / self.fast_ppm) != (self.clock - frames) / (1_000_000 / self.fast_ppm)
        {
            // The clock gained a frame on the stream: silence heard for it, the microphone runs on.
            self.heard.push(0.0);
            let mic = self.capture(1);
            self.send(Message::binary(mic)).await?;
        }
        Ok(())
    }

    /// The microphone's next `frames` frames (what was heard `LATENCY` earlier), encoded and
    /// kept until acknowledged; the clock moves on.
    fn capture(&mut self, frames: u64) -> Vec<u8> {
        let mic: Vec<f32> = (self.clock..self.clock + frames)
            .map(|c| c.checked_sub(CLOCK_START + LATENCY).map_or(0.0, |i| self.heard[i as usize]))
            .collect();
        let header = Header {
            kind: Kind::Mic,
            format: SampleFormat::F32,
            channels: 1,
            frames: frames as u16,
            stream: MIC_STREAM,
            seq: self.mic_seq,
            frame: self.clock,
        };
        let mut bytes = Vec::new();
        wire::encode(&header, &mic, &mut bytes);
        self.unacked.insert(self.mic_seq, bytes.clone());
        self.most_unacked = self.most_unacked.max(self.unacked.len());
        self.mic_seq += 1;
        self.clock += frames;
        bytes
    }

    /// The output ran dry for `frames` frames: silence heard, the microphone still captures.
    fn underrun(&mut self, frames: u64) {
        self.socket = None;
        for _ in 0..frames / 480 {
            self.heard.extend([0.0; 480]);
            self.capture(480);
        }
    }

    /// Connects again (retrying while the network is down), attaches as the same device, and
    /// resends what the node does not have: played runs and microphone frames.
    async fn reconnect(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut socket = loop {
            assert!(std::time::Instant::now() < deadline, "could not reconnect");
            if let Ok(Ok((mut socket, _))) =
                tokio::time::timeout(Duration::from_secs(1), tokio_tungstenite::connect_async(&self.url)).await
            {
                send(&mut socket, attach_message()).await;
                let attached = next_where(&mut socket, |v| v["type"] == "attached" || v["type"] == "error").await;
                assert_eq!(attached["type"], "attached", "{attached}");
                let data = &attached["data"];
                assert_eq!(data["resumed"], true, "{attached}");
                let played_until = data["played_until"].as_u64().unwrap_or(0);
                let runs: Vec<Value> = self
                    .runs
                    .iter()
                    .filter(|(client, _, frames)| client + frames > played_until)
                    .map(|&(client, timeline, frames)| {
                        let skip = played_until.saturating_sub(client);
                        json!({"client": client + skip, "timeline": timeline + skip as i64, "frames": frames - skip})
                    })
                    .collect();
                let played = json!({"type": "played", "data": {"consumed": self.consumed, "runs": runs}});
                send(&mut socket, played).await;
                let next = data["microphone"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["stream"] == MIC_STREAM)
                    .map_or(0, |m| m["next_seq"].as_u64().unwrap() as u32);
                self.unacked.retain(|&seq, _| seq >= next);
                for bytes in self.unacked.values() {
                    socket.send(Message::binary(bytes.clone())).await.unwrap();
                }
                break socket;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        send(&mut socket, json!({"type": "ping"})).await;
        self.socket = Some(socket);
    }
}

/// A TCP proxy in front of the application that can cut the network: every connection through
/// it is dropped (with what it had in flight) and new ones are refused until it is restored.
pub struct CutProxy {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl CutProxy {
    pub async fn start(target: &str) -> Self {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (accepting, linked) = (open.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                linked.lock().unwrap().push(link);
            }
        });
        Self { addr, open, links }
    }

    /// `url` (an http or ws URL of the proxied address) through the proxy.
    pub fn through(&self, url: &str, target: &str) -> String {
        url.replace(target.trim_start_matches("http://"), &self.addr.to_string())
    }

    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
