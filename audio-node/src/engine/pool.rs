//! The node's render pool: a fixed set of lanes (one per core), each a render thread that
//! renders the blocks of every rolling engine placed on it when they fall due, and a read-ahead
//! thread that fills those engines' prefetchers when their audio thread asks for more.
//!
//! ```text
//!  EngineHandle::send ──wake──▶ render thread (lane i): engines on lane i, each with a deadline
//!                                  │ renders due blocks; idle engines only when woken
//!                                  ▼ fill requests (lock-free queue + unpark)
//!                               read-ahead thread (lane i): Prefetcher::fill, frees cores
//! ```
//!
//! An engine that neither plays nor records costs nothing: its render thread looks at it only
//! when a command wakes it. The render threads keep the audio-thread rules (no locks, no
//! allocation, no I/O in a render); everything that may block runs on the read-ahead thread.

use crate::engine::backend::ClockStats;
use crate::engine::{BLOCK_FRAMES, EngineCore, Prefetcher};
use crossbeam_queue::ArrayQueue;
use std::collections::HashMap;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// Engines one lane can hold; registrations beyond it wait for a free place.
const LANE_CAPACITY: usize = 4096;
/// A rolling engine this many blocks behind its schedule starts a fresh one (counting the
/// blocks it missed as late) instead of rendering a burst to catch up.
const MAX_BACKLOG_BLOCKS: u32 = 4;

/// One engine as its render thread holds it.
struct Pooled {
    core: EngineCore,
    ticket: Arc<Ticket>,
    stats: Arc<ClockStats>,
    period: Duration,
    /// When the next block is due while the engine rolls; `None` while it is idle.
    next_due: Option<Instant>,
}

impl Pooled {
    /// Renders one block (applying queued commands first), counting it; returns when it began.
    fn render_block(&mut self, buffer: &mut [f32], renders: &AtomicU64, deadline: Option<Instant>) -> Instant {
        let started = Instant::now();
        self.core.process(buffer);
        renders.fetch_add(1, Relaxed);
        record(&self.stats, started, deadline);
        started
    }

    /// The node's clock: a rolling engine's blocks when due, an idle one's when a command woke it.
    fn render_on_clock(&mut self, woken: bool, buffer: &mut [f32], renders: &AtomicU64) {
        if self.next_due.is_none() && woken {
            let started = self.render_block(buffer, renders, None);
            if self.core.needs_clock() {
                self.next_due = Some(started + self.period);
            }
        }
        while let Some(due) = self.next_due {
            let now = Instant::now();
            if due > now {
                break;
            }
            self.render_block(buffer, renders, Some(due + self.period));
            let mut next = due + self.period;
            if now.saturating_duration_since(next) > self.period * MAX_BACKLOG_BLOCKS {
                // Far behind (the machine stalled): start a fresh schedule.
                self.stats.late_blocks.fetch_add(1, Relaxed);
                next = now + self.period;
            }
            self.next_due = self.core.needs_clock().then_some(next);
        }
    }

    /// A client device is the clock: after a command's block (applied at once, even one block
    /// past the room), render while the client has room for a block; each block sent to its
    /// monitor spends that room. A block that sent nothing (the read-ahead is still locating)
    /// is retried a block period later, not spun on.
    fn render_for_client(&mut self, woken: bool, buffer: &mut [f32], renders: &AtomicU64) {
        let due = self.next_due.take().is_some_and(|due| due <= Instant::now());
        if woken || due {
            self.render_block(buffer, renders, None);
        }
        let mut budget = self.core.shared().client_credit() / BLOCK_FRAMES as i64;
        while budget > 0 && self.core.needs_clock() {
            let room = self.core.shared().client_credit();
            let started = self.render_block(buffer, renders, None);
            budget -= 1;
            if self.core.shared().client_credit() == room {
                self.next_due = Some(started + self.period);
                break;
            }
        }
    }
}

/// What the control side, the render thread and the read-ahead thread share about one engine.
#[derive(Debug)]
struct Ticket {
    id: u64,
    /// Set when the engine leaves the pool; both threads let go of their halves.
    detached: AtomicBool,
    /// Set while a fill request is queued or being served, so each engine is queued once.
    fill_requested: AtomicBool,
}

/// How an engine's audio thread asks its read-ahead thread for more blocks: wait-free (a flag,
/// a push on a bounded lock-free queue, an unpark), so a render may call it.
#[derive(Debug)]
pub struct FillSignal {
    ticket: Arc<Ticket>,
    requests: Arc<ArrayQueue<u64>>,
    reader: Thread,
}

impl FillSignal {
    /// Asks for a fill unless one is already asked for.
    pub fn request(&self) {
        if self.ticket.fill_requested.swap(true, AcqRel) {
            return;
        }
        if self.requests.push(self.ticket.id).is_err() {
            // Cannot happen (the queue holds every engine twice); asked again next block.
            self.ticket.fill_requested.store(false, Release);
        }
        self.reader.unpark();
    }
}

/// A lane's render thread and what reaches it.
struct RenderLane {
    thread: Thread,
    incoming: Mutex<rtrb::Producer<Box<Pooled>>>,
    engines: AtomicUsize,
}

/// A lane's read-ahead thread and what reaches it.
struct ReadLane {
    thread: Thread,
    requests: Arc<ArrayQueue<u64>>,
    incoming: Mutex<mpsc::Sender<(Arc<Ticket>, Prefetcher)>>,
}

/// The pool's threads and the way to reach them. Dropping it stops and joins them.
pub struct RenderPool {
    render: Vec<Arc<RenderLane>>,
    read: Vec<Arc<ReadLane>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    next_id: AtomicU64,
    /// Renders done by the pool, for tests that check idle engines cost nothing.
    renders: Arc<AtomicU64>,
}

/// An engine's place in the pool, held by its session. Dropping it takes the engine out: its
/// render thread stops rendering it and its read-ahead thread frees both halves.
pub struct PoolEntry {
    ticket: Arc<Ticket>,
    render: Arc<RenderLane>,
    read: Arc<ReadLane>,
}

impl Drop for PoolEntry {
    fn drop(&mut self) {
        self.ticket.detached.store(true, Relaxed);
        self.render.engines.fetch_sub(1, Relaxed);
        self.render.thread.unpark();
        // The read-ahead thread frees the prefetcher when it sees the ticket again.
        let _ = self.read.requests.push(self.ticket.id);
        self.read.thread.unpark();
    }
}

impl std::fmt::Debug for RenderPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderPool").field("lanes", &self.render.len()).finish()
    }
}

impl RenderPool {
    /// Starts `lanes` lanes (at least one): two threads each.
    pub fn new(lanes: usize) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let renders = Arc::new(AtomicU64::new(0));
        let mut pool = Self {
            render: Vec::new(),
            read: Vec::new(),
            stop: stop.clone(),
            threads: Vec::new(),
            next_id: AtomicU64::new(1),
            renders: renders.clone(),
        };
        for lane in 0..lanes.max(1) {
            let (retired_tx, retired_rx) = rtrb::RingBuffer::<Box<Pooled>>::new(LANE_CAPACITY);
            let requests = Arc::new(ArrayQueue::new(LANE_CAPACITY * 2));
            let (prefetchers_tx, prefetchers_rx) = mpsc::channel();
            let read_thread = {
                let (stop, requests) = (stop.clone(), requests.clone());
                std::thread::Builder::new()
                    .name(format!("audiolab-read-{lane}"))
                    .spawn(move || read_ahead(&stop, &requests, &prefetchers_rx, retired_rx))?
            };
            let read = Arc::new(ReadLane {
                thread: read_thread.thread().clone(),
                requests,
                incoming: Mutex::new(prefetchers_tx),
            });
            pool.threads.push(read_thread);
            let (incoming_tx, incoming_rx) = rtrb::RingBuffer::<Box<Pooled>>::new(LANE_CAPACITY);
            let render_thread = {
                let (stop, renders, reader) = (stop.clone(), renders.clone(), read.thread.clone());
                std::thread::Builder::new()
                    .name(format!("audiolab-render-{lane}"))
                    .spawn(move || render(&stop, &renders, incoming_rx, retired_tx, &reader))?
            };
            pool.render.push(Arc::new(RenderLane {
                thread: render_thread.thread().clone(),
                incoming: Mutex::new(incoming_tx),
                engines: AtomicUsize::new(0),
            }));
            pool.read.push(read);
            pool.threads.push(render_thread);
        }
        Ok(pool)
    }

    /// A pool with one lane per core.
    pub fn per_core() -> std::io::Result<Self> {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Threads the pool runs.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Blocks rendered so far by every lane.
    pub fn renders(&self) -> u64 {
        self.renders.load(Relaxed)
    }

    /// Places an engine's read-ahead on the lane with the fewest engines, whose read-ahead
    /// thread fills it from now on. Returns the engine's place; give its core to
    /// [`PoolEntry::render`] (the pool's clock) or, with [`PoolEntry::fill_signal`], to a
    /// sound card's callback.
    pub fn add(&self, mut prefetcher: Prefetcher) -> std::io::Result<PoolEntry> {
        let lane = (0..self.render.len()).min_by_key(|&i| self.render[i].engines.load(Relaxed)).unwrap_or(0);
        let (render, read) = (self.render[lane].clone(), self.read[lane].clone());
        let ticket = Arc::new(Ticket {
            id: self.next_id.fetch_add(1, Relaxed),
            detached: AtomicBool::new(false),
            fill_requested: AtomicBool::new(false),
        });
        prefetcher.fill();
        read.incoming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((ticket.clone(), prefetcher))
            .map_err(|_| std::io::Error::other("the render pool has stopped"))?;
        read.thread.unpark();
        render.engines.fetch_add(1, Relaxed);
        Ok(PoolEntry { ticket, render, read })
    }
}

impl PoolEntry {
    /// How the engine's core asks this entry's read-ahead thread for blocks.
    pub fn fill_signal(&self) -> FillSignal {
        FillSignal {
            ticket: self.ticket.clone(),
            requests: self.read.requests.clone(),
            reader: self.read.thread.clone(),
        }
    }

    /// Hands `core` to the lane's render thread, which renders it at `sample_rate` pace while
    /// it rolls and once per wake-up while idle, counting its blocks in `stats`.
    pub fn render(&self, mut core: EngineCore, sample_rate: u32, stats: Arc<ClockStats>) -> std::io::Result<()> {
        core.set_fill_signal(self.fill_signal());
        core.shared().set_waker(self.render.thread.clone());
        let period = Duration::from_secs_f64(BLOCK_FRAMES as f64 / f64::from(sample_rate));
        let pooled = Box::new(Pooled { core, ticket: self.ticket.clone(), stats, period, next_due: None });
        self.render
            .incoming
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pooled)
            .map_err(|_| std::io::Error::other("the render lane is full"))?;
        self.render.thread.unpark();
        Ok(())
    }
}

impl Drop for RenderPool {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for lane in &self.render {
            lane.thread.unpark();
        }
        for lane in &self.read {
            lane.thread.unpark();
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A lane's render thread: renders every rolling engine's due blocks, and an idle engine's
/// one block when a command woke it; sleeps until the earliest deadline, or until woken.
fn render(
    stop: &AtomicBool,
    renders: &AtomicU64,
    mut incoming: rtrb::Consumer<Box<Pooled>>,
    mut retired: rtrb::Producer<Box<Pooled>>,
    reader: &Thread,
) {
    raise_priority();
    let mut engines: Vec<Box<Pooled>> = Vec::with_capacity(LANE_CAPACITY);
    let mut buffer = vec![0.0f32; BLOCK_FRAMES * 2];
    while !stop.load(Relaxed) {
        while let Ok(engine) = incoming.pop() {
            engines.push(engine);
        }
        let mut earliest: Option<Instant> = None;
        let mut i = 0;
        while i < engines.len() {
            if engines[i].ticket.detached.load(Relaxed) {
                let gone = engines.swap_remove(i);
                // Freed by the read-ahead thread, not here. The ring holds every engine there is.
                let _ = retired.push(gone);
                reader.unpark();
                continue;
            }
            let engine = &mut engines[i];
            let woken = engine.core.shared().take_woken();
            if engine.core.shared().client_clocked() {
                engine.render_for_client(woken, &mut buffer, renders);
            } else {
                engine.render_on_clock(woken, &mut buffer, renders);
            }
            if let Some(due) = engine.next_due {
                earliest = Some(earliest.map_or(due, |e: Instant| e.min(due)));
            }
            i += 1;
        }
        match earliest {
            Some(due) => {
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::park_timeout(wait);
                }
            }
            None => std::thread::park(),
        }
    }
}

/// Asks the OS to run this (render) thread before ordinary ones, as audio engines do: the
/// lowest real-time priority (round robin) where allowed, else the highest ordinary one, else
/// nothing. A render is bounded work per block and the thread sleeps between blocks, so it
/// cannot starve the machine (and Linux keeps 5 % of each second for others regardless).
fn raise_priority() {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy, set_current_thread_priority,
        set_thread_priority_and_policy, thread_native_id,
    };
    static REPORTED: std::sync::Once = std::sync::Once::new();
    let realtime = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::RoundRobin);
    let how = if set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, realtime).is_ok() {
        "real-time"
    } else if set_current_thread_priority(ThreadPriority::Max).is_ok() {
        "raised"
    } else {
        "normal"
    };
    REPORTED.call_once(|| tracing::info!(priority = how, "render threads scheduled"));
}

/// Counts one rendered block: its render time, and whether it finished after `deadline`.
fn record(stats: &ClockStats, started: Instant, deadline: Option<Instant>) {
    let finished = Instant::now();
    let ns = (finished - started).as_nanos() as u64;
    stats.blocks.fetch_add(1, Relaxed);
    stats.total_render_ns.fetch_add(ns, Relaxed);
    stats.max_render_ns.fetch_max(ns, Relaxed);
    if deadline.is_some_and(|d| finished > d) {
        stats.late_blocks.fetch_add(1, Relaxed);
    }
}

/// A lane's read-ahead thread: fills the prefetchers whose engines asked, frees the halves of
/// engines that left, and sleeps until asked again.
fn read_ahead(
    stop: &AtomicBool,
    requests: &ArrayQueue<u64>,
    incoming: &mpsc::Receiver<(Arc<Ticket>, Prefetcher)>,
    mut retired: rtrb::Consumer<Box<Pooled>>,
) {
    let mut prefetchers: HashMap<u64, (Arc<Ticket>, Prefetcher)> = HashMap::new();
    while !stop.load(Relaxed) {
        for (ticket, prefetcher) in incoming.try_iter() {
            prefetchers.insert(ticket.id, (ticket, prefetcher));
        }
        while let Ok(gone) = retired.pop() {
            drop(gone);
        }
        while let Some(id) = requests.pop() {
            if !prefetchers.contains_key(&id) {
                // Registered after this pass began: an engine is registered here before its
                // core can ask for anything, so the registration is waiting in the channel.
                for (ticket, prefetcher) in incoming.try_iter() {
                    prefetchers.insert(ticket.id, (ticket, prefetcher));
                }
            }
            let Some((ticket, prefetcher)) = prefetchers.get_mut(&id) else { continue };
            if ticket.detached.load(Relaxed) {
                prefetchers.remove(&id);
                continue;
            }
            ticket.fill_requested.store(false, Release);
            prefetcher.fill();
        }
        // A request may have come in between the last pop and here: park returns at once then.
        std::thread::park();
    }
}
