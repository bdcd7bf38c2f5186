// The project's socket as the studio uses it (§4): connects (and reconnects, catching up on
// what changed meanwhile with `subscribe {since}`), sends control commands and resolves each
// with its `control_response`, measures the clock offset with `ping`, and hands every other
// message to the studio's handler of its type. `SERVER_MESSAGES` is every message the AsyncAPI
// document lists (a test keeps the two equal); a studio must handle each one.

import { api } from './api.js';

export const SERVER_MESSAGES = [
  'pong', 'error', 'control_response', 'attached', 'device_changed', 'mic_ack', 'detached',
  'position_update', 'playback_started', 'playback_paused', 'playback_stopped', 'playback_seeked',
  'loop_event', 'recording_status', 'track_update', 'model_changed', 'missed', 'resync',
  'job_progress', 'clip_ready',
];

export class ProjectSocket {
  /**
   * `handlers` has a function per server message type (`data` → nothing); `revision()` says
   * which project revision the page shows, `state(text, kind)` reports the connection.
   */
  constructor(projectId, { handlers, revision, state }) {
    const missing = SERVER_MESSAGES.filter((type) => typeof handlers[type] !== 'function');
    if (missing.length) throw new Error(`the studio handles no ${missing.join(', ')}`);
    Object.assign(this, { projectId, handlers, revision, state });
    this.pending = new Map();
    this.clockOffset = 0;
    this.closed = false;
    this.wasLost = false;
  }

  connect(delay = 500) {
    if (this.closed) return;
    const socket = new WebSocket(api.socketUrl(this.projectId));
    this.socket = socket;
    socket.onopen = () => {
      this.state('live', 'live');
      this.pingSent = Date.now() / 1000;
      socket.send(JSON.stringify({ type: 'ping' }));
      if (this.wasLost) {
        this.wasLost = false;
        this.state('live', 'restored');
        // What changed while away comes as `missed` (or `resync` when too much did).
        socket.send(JSON.stringify({ type: 'subscribe', data: { since: this.revision() } }));
      }
    };
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = (event) => {
      for (const waiting of this.pending.values()) waiting.reject(new Error('the connection was lost before the answer'));
      this.pending.clear();
      if (this.closed) return;
      if (event.code === 1000 || event.code === 1008) {
        this.state(event.reason || 'This project is no longer available.', 'closed');
        return;
      }
      this.wasLost = true;
      this.state('connection lost — reconnecting…', 'lost');
      setTimeout(() => this.connect(Math.min(delay * 2, 8000)), delay);
    };
  }

  close() {
    this.closed = true;
    this.socket?.close();
  }

  get open() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Sends a control command; resolves with its result, rejects with the server's reason. */
  command(command, data = {}) {
    return new Promise((resolve, reject) => {
      if (!this.open) return reject(Object.assign(new Error('Not connected to the server: reconnecting…'), { offline: true }));
      const id = `s${Math.random().toString(36).slice(2)}`;
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ type: 'control', id, command, data }));
    });
  }

  receive({ type, data }) {
    if (type === 'pong') {
      const now = Date.now() / 1000;
      this.clockOffset = data.server_time - (this.pingSent + now) / 2;
    }
    if (type === 'control_response') {
      const waiting = this.pending.get(data.id);
      this.pending.delete(data.id);
      if (waiting && data.success) waiting.resolve(data.result);
      else if (waiting) waiting.reject(new Error(`${data.command}: ${data.error}`));
    }
    this.handlers[type]?.(data);
  }
}
