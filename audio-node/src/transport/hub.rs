//! Per-project broadcast of WebSocket messages: every client of a project gets every event.
//!
//! One fan-out task per project writes each message to its clients' sockets one after another,
//! always in the order they joined. A fixed order keeps each client's spacing between
//! `position_update`s at the sender's cadence (a client late in the round is late by the same
//! amount every round), where one task per client would let the scheduler reshuffle them.
//! A client whose socket is not ready misses the message instead of holding up the others,
//! and is told how many it missed once it drains.

use audiolab_domain::user::Revocation;
use futures_util::{FutureExt, Sink, SinkExt};
use poem::web::websocket::Message as Frame;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use audiolab_domain::ProjectId;

/// A serialised `{"type", "data"}` message, shared by every receiver.
pub type Message = Arc<str>;

/// Builds a `{"type": kind, "data": data}` message (for tests of the fan-out itself).
#[cfg(test)]
fn message(kind: &str, data: serde_json::Value) -> Message {
    serde_json::json!({ "type": kind, "data": data }).to_string().into()
}

type BoxSink = Pin<Box<dyn Sink<Frame, Error = poem::Error> + Send>>;

/// A socket's sink that, once it has failed, fails at once ever after without being polled
/// again: the socket's own sink panics when polled after its error (a client gone while a
/// reply, a broadcast and a monitor frame were all on their way).
struct Fused {
    inner: BoxSink,
    failed: bool,
}

impl Fused {
    fn closed() -> poem::Error {
        poem::Error::from_string("the connection is closed", poem::http::StatusCode::BAD_GATEWAY)
    }

    fn watch<T>(&mut self, poll: std::task::Poll<Result<T, poem::Error>>) -> std::task::Poll<Result<T, poem::Error>> {
        if let std::task::Poll::Ready(Err(_)) = &poll {
            self.failed = true;
        }
        poll
    }
}

impl Sink<Frame> for Fused {
    type Error = poem::Error;

    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        if self.failed {
            return std::task::Poll::Ready(Err(Self::closed()));
        }
        let poll = self.inner.as_mut().poll_ready(cx);
        self.watch(poll)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Frame) -> Result<(), Self::Error> {
        if self.failed {
            return Err(Self::closed());
        }
        let sent = self.inner.as_mut().start_send(item);
        self.failed |= sent.is_err();
        sent
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        if self.failed {
            return std::task::Poll::Ready(Err(Self::closed()));
        }
        let poll = self.inner.as_mut().poll_flush(cx);
        self.watch(poll)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        if self.failed {
            return std::task::Poll::Ready(Err(Self::closed()));
        }
        let poll = self.inner.as_mut().poll_close(cx);
        self.watch(poll)
    }
}

/// Broadcasts one client may have waiting for its socket; beyond this the client is slow and
/// misses them (and is told how many).
const PENDING_LIMIT: usize = 256;

/// The sending half of one client's socket, shared by its connection (replies) and the
/// project's fan-out (events).
///
/// A broadcast is queued, then written by whoever can take the socket at once: the fan-out if
/// it is free, else whoever holds it (the connection sending a reply, or a flush under way)
/// right after releasing it. So a broadcast that meets the socket busy waits its turn instead
/// of being lost; only a full kernel buffer or a full queue drops messages.
pub struct Outbox {
    sink: tokio::sync::Mutex<BoxSink>,
    pending: Mutex<std::collections::VecDeque<Message>>,
    missed: AtomicUsize,
}

impl Outbox {
    pub fn new<S>(sink: S) -> Arc<Self>
    where
        S: Sink<Frame> + Send + 'static,
        S::Error: std::fmt::Display,
    {
        let sink = sink.sink_map_err(|e| poem::Error::from_string(e.to_string(), poem::http::StatusCode::BAD_GATEWAY));
        let sink = Fused { inner: Box::pin(sink), failed: false };
        Arc::new(Self {
            sink: tokio::sync::Mutex::new(Box::pin(sink)),
            pending: Mutex::default(),
            missed: AtomicUsize::new(0),
        })
    }

    /// Sends a reply to this client, waiting for the socket.
    pub async fn send(self: &Arc<Self>, text: String) -> bool {
        let sent = self.sink.lock().await.send(Frame::Text(text)).await.is_ok();
        // Broadcasts that came while the reply held the socket go out now.
        self.deliver();
        sent
    }

    /// Sends a binary audio frame to this client, waiting for the socket.
    pub async fn send_binary(self: &Arc<Self>, bytes: Vec<u8>) -> bool {
        let sent = self.sink.lock().await.send(Frame::Binary(bytes)).await.is_ok();
        self.deliver();
        sent
    }

    /// Sends a control frame (`close` to end the connection, or a ping), waiting for the socket.
    pub async fn send_control(self: &Arc<Self>, frame: Frame) {
        let _ = self.sink.lock().await.send(frame).await;
        self.deliver();
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Message>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a broadcast and writes it out if the socket is free.
    fn offer(self: &Arc<Self>, message: &Message) {
        // Only the project's fan-out task queues broadcasts: with nothing queued and the socket
        // free, the message goes straight out.
        if self.pending().is_empty()
            && let Ok(mut sink) = self.sink.try_lock()
        {
            self.write(&mut sink, std::iter::once(message.clone()));
            return;
        }
        {
            let mut pending = self.pending();
            if pending.len() >= PENDING_LIMIT {
                self.missed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            pending.push_back(message.clone());
        }
        self.deliver();
    }

    /// Writes the queued broadcasts if the socket can be taken at once; if not, its holder
    /// calls this again after releasing it. Never waits.
    fn deliver(self: &Arc<Self>) {
        while !self.pending().is_empty() {
            let Ok(mut sink) = self.sink.try_lock() else { return };
            let queued = std::iter::from_fn(|| self.pending().pop_front());
            if !self.write(&mut sink, queued) {
                return;
            }
            // Released: anything queued while the socket was held is written on the next turn.
        }
    }

    /// Feeds `messages` to the held socket without waiting (telling the client first how many
    /// it missed, if any), then flushes. Returns false when the flush goes on in a task of its
    /// own (the kernel buffer is full), which delivers what is queued once done.
    fn write(
        self: &Arc<Self>,
        sink: &mut tokio::sync::MutexGuard<'_, BoxSink>,
        messages: impl Iterator<Item = Message>,
    ) -> bool {
        let missed = self.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            let text = format!("{missed} messages were dropped because the connection is slow");
            let notice = audiolab_transport::protocol::ServerMessage::Error { message: text }.frame();
            if sink.feed(Frame::Text(notice.to_string())).now_or_never().is_none() {
                // Still full: these are missed too, and told about later.
                self.missed.fetch_add(missed + messages.count(), Ordering::Relaxed);
                return true;
            }
        }
        for message in messages {
            if sink.feed(Frame::Text(message.to_string())).now_or_never().is_none() {
                // The kernel buffer is full: a slow client misses what does not fit.
                self.missed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if sink.flush().now_or_never().is_none() {
            // Finish the write without holding up the round; then deliver what came meanwhile.
            let outbox = self.clone();
            tokio::spawn(async move {
                let _ = outbox.sink.lock().await.flush().await;
                outbox.deliver();
            });
            return false;
        }
        true
    }
}

struct Channel {
    clients: Vec<(u64, Arc<Outbox>)>,
    queue: mpsc::UnboundedSender<Message>,
}

pub struct Hub {
    channels: Arc<Mutex<HashMap<ProjectId, Channel>>>,
    next_client: AtomicU64,
    /// Cancelled when a project's sockets must close (the project was deleted), with the reason.
    closings: Mutex<HashMap<ProjectId, (CancellationToken, Arc<Mutex<String>>)>>,
    /// Rights taken away (§8), told to every connection of the node: each closes if it relied
    /// on one (its token, its membership).
    revocations: tokio::sync::broadcast::Sender<Arc<Revocation>>,
}

/// Revocations a connection may fall behind by before it re-checks its rights itself.
const REVOCATION_BACKLOG: usize = 256;

impl Default for Hub {
    fn default() -> Self {
        Self {
            channels: Arc::default(),
            next_client: AtomicU64::new(0),
            closings: Mutex::default(),
            revocations: tokio::sync::broadcast::channel(REVOCATION_BACKLOG).0,
        }
    }
}

/// What a connection watches to learn that its project is gone.
#[derive(Clone)]
pub struct Closing {
    token: CancellationToken,
    reason: Arc<Mutex<String>>,
}

impl Closing {
    /// Resolves once the project's sockets must close; returns why.
    pub async fn closed(&self) -> String {
        self.token.cancelled().await;
        self.reason.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// A client's place in a project's fan-out; leaving is dropping it.
pub struct Membership {
    channels: Arc<Mutex<HashMap<ProjectId, Channel>>>,
    project: ProjectId,
    client: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get_mut(&self.project) {
            channel.clients.retain(|(id, _)| *id != self.client);
            if channel.clients.is_empty() {
                // Dropping the queue's sender ends the fan-out task.
                channels.remove(&self.project);
            }
        }
    }
}

impl Hub {
    /// Adds a client to `project`'s broadcasts, after those already there. Must be called
    /// inside the async runtime (the project's fan-out task starts with its first client).
    pub fn join(&self, project: ProjectId, outbox: Arc<Outbox>) -> Membership {
        let client = self.next_client.fetch_add(1, Ordering::Relaxed);
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = channels.entry(project).or_insert_with(|| {
            let (queue, incoming) = mpsc::unbounded_channel();
            // Unconstrained: a round is one poll that writes to every socket, and tokio's
            // cooperative budget would otherwise turn every write after the 128th into Pending.
            tokio::spawn(tokio::task::unconstrained(fan_out(self.channels.clone(), project, incoming)));
            Channel { clients: Vec::new(), queue }
        });
        channel.clients.push((client, outbox));
        Membership { channels: self.channels.clone(), project, client }
    }

    /// Sends to every client of `project` (nobody listening is fine). Callable from any thread.
    pub fn publish(&self, project: ProjectId, message: Message) {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(&project) {
            let _ = channel.queue.send(message);
        }
    }

    /// What a connection to `project` watches to be told to close.
    pub fn closing(&self, project: ProjectId) -> Closing {
        let mut closings = self.closings.lock().unwrap_or_else(|p| p.into_inner());
        let (token, reason) = closings.entry(project).or_default();
        Closing { token: token.clone(), reason: reason.clone() }
    }

    /// What a connection watches to learn that a right was taken away.
    pub fn revocations(&self) -> tokio::sync::broadcast::Receiver<Arc<Revocation>> {
        self.revocations.subscribe()
    }

    /// Tells every connection of the node that a right was taken away: those that relied on it close.
    pub fn revoke(&self, revocation: Revocation) {
        let _ = self.revocations.send(Arc::new(revocation));
    }

    /// Closes every connection to `project`, telling each `reason`, and ends its broadcasts.
    pub fn close_project(&self, project: ProjectId, reason: &str) {
        let closing = self.closings.lock().unwrap_or_else(|p| p.into_inner()).remove(&project);
        if let Some((token, why)) = closing {
            *why.lock().unwrap_or_else(|p| p.into_inner()) = reason.to_owned();
            token.cancel();
        }
        self.channels.lock().unwrap_or_else(|p| p.into_inner()).remove(&project);
    }

    /// Whether any client is connected to `project`.
    pub fn has_listeners(&self, project: ProjectId) -> bool {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.get(&project).is_some_and(|c| !c.clients.is_empty())
    }
}

async fn fan_out(
    channels: Arc<Mutex<HashMap<ProjectId, Channel>>>,
    project: ProjectId,
    mut incoming: mpsc::UnboundedReceiver<Message>,
) {
    let mut round: Vec<Arc<Outbox>> = Vec::new();
    while let Some(message) = incoming.recv().await {
        round.clear();
        {
            let channels = channels.lock().unwrap_or_else(|p| p.into_inner());
            let Some(channel) = channels.get(&project) else { return };
            round.extend(channel.clients.iter().map(|(_, outbox)| outbox.clone()));
        }
        for outbox in &round {
            outbox.offer(&message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::{Context, Poll};

    /// A client socket that takes frames while `open` and is full (not ready) otherwise.
    struct Client {
        frames: Arc<Mutex<Vec<String>>>,
        open: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Sink<Frame> for Client {
        type Error = std::io::Error;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            if self.open.load(Ordering::SeqCst) { Poll::Ready(Ok(())) } else { Poll::Pending }
        }
        fn start_send(self: Pin<&mut Self>, frame: Frame) -> Result<(), Self::Error> {
            let Frame::Text(text) = frame else { panic!("text frames only") };
            self.frames.lock().unwrap().push(text);
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    fn client(open: bool) -> (Arc<Outbox>, Arc<Mutex<Vec<String>>>, Arc<std::sync::atomic::AtomicBool>) {
        let frames = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(std::sync::atomic::AtomicBool::new(open));
        (Outbox::new(Client { frames: frames.clone(), open: open.clone() }), frames, open)
    }

    async fn settle(frames: &Mutex<Vec<String>>, count: usize) {
        for _ in 0..1000 {
            if frames.lock().unwrap().len() >= count {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("expected {count} frames, got {:?}", frames.lock().unwrap());
    }

    #[tokio::test]
    async fn a_stalled_client_misses_messages_without_holding_up_the_others_and_is_told() {
        let hub = Hub::default();
        let project = ProjectId::new();
        let (fast, fast_frames, _) = client(true);
        let (slow, slow_frames, slow_open) = client(false);
        let _fast = hub.join(project, fast);
        let _slow = hub.join(project, slow);
        assert!(hub.has_listeners(project));

        for n in 0..3 {
            hub.publish(project, message("n", serde_json::json!(n)));
        }
        settle(&fast_frames, 3).await;
        assert!(slow_frames.lock().unwrap().is_empty());

        slow_open.store(true, Ordering::SeqCst);
        hub.publish(project, message("n", serde_json::json!(3)));
        settle(&slow_frames, 2).await;
        let slow_frames = slow_frames.lock().unwrap().clone();
        assert!(slow_frames[0].contains("3 messages were dropped"), "{slow_frames:?}");
        assert_eq!(slow_frames[1], r#"{"data":3,"type":"n"}"#);
        settle(&fast_frames, 4).await;
        let expected: Vec<String> = (0..4).map(|n| format!(r#"{{"data":{n},"type":"n"}}"#)).collect();
        assert_eq!(*fast_frames.lock().unwrap(), expected);
    }

    #[tokio::test]
    async fn a_broadcast_meeting_the_socket_busy_with_a_reply_follows_it_instead_of_being_lost() {
        let hub = Hub::default();
        let project = ProjectId::new();
        let (outbox, frames, _) = client(true);
        let _member = hub.join(project, outbox.clone());
        let replying = outbox.sink.lock().await; // the connection is writing a reply
        hub.publish(project, message("n", serde_json::json!(1)));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(frames.lock().unwrap().is_empty(), "the socket was busy");
        drop(replying);
        assert!(outbox.send(r#"{"type":"pong"}"#.into()).await);
        settle(&frames, 2).await;
        assert_eq!(*frames.lock().unwrap(), [r#"{"type":"pong"}"#, r#"{"data":1,"type":"n"}"#]);
    }

    #[tokio::test]
    async fn the_last_client_leaving_ends_the_project_channel() {
        let hub = Hub::default();
        let project = ProjectId::new();
        let (outbox, _, _) = client(true);
        let membership = hub.join(project, outbox);
        drop(membership);
        assert!(!hub.has_listeners(project));
        hub.publish(project, message("n", serde_json::json!(0)));
    }
}
