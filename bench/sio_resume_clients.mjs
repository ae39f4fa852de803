// socket.io-client 4.8 sockets for bench/resume.py: JSON lines on stdin (commands) and stdout (replies).
//
// Each socket is a real `io(url, options)` with a Manager of its own (forceNew), the websocket
// transport, its token in `auth`, and socket.io-client's own reconnection with the backoff options
// given (randomized, as real clients reconnect). Connection state recovery is the client's:
// it keeps the pid and the last offset and sends them in its CONNECT; `socket.recovered` says
// whether the server recovered the session (docs/socketio.md#recovery).
//
// Environment: SIO_URL, SIO_TOKENS (file, one token a line), SIO_OFFSET, SIO_COUNT, SIO_OPTIONS (JSON,
// merged into the io() options). Commands ({cmd: ...}) and replies:
//   connect {concurrency}      -> {connected, failed, errors}: every socket connected and subscribed
//   reset {expect}             -> {reset}: forget the events received so far; `expect` are to come
//   away                       -> {away}: reconnection off, transport closed (the replay-rate client)
//   back                       -> {back}: socket.connect() again (it recovers), reconnection on
//   wait {timeout}             -> {done_at: [epoch ms], recovered, exact, stuck: [...]}: when every
//                                 socket is connected again with `expect` events (or the timeout)
//   quit
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const EVENT = "inventory:updated";
const out = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
const tokens = readFileSync(process.env.SIO_TOKENS, "utf8").split(/\s+/).filter(Boolean);
const offset = Number(process.env.SIO_OFFSET || 0);
const count = Number(process.env.SIO_COUNT || 1);
const options = JSON.parse(process.env.SIO_OPTIONS || "{}");

class Client {
  constructor(token) {
    this.token = token;
    this.numbers = [];
    this.expect = 0;
    this.connects = 0;
    this.recovered = null;
    this.attempts = 0;
    this.errors = 0;
    this.lastError = null;
    this.disconnect = null;
    this.doneAt = null;
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = (this.socket = io(process.env.SIO_URL, {
        forceNew: true, transports: ["websocket"], auth: { token: this.token }, ...options,
      }));
      socket.on(EVENT, (payload) => {
        this.numbers.push(payload.data.n);
        this.check();
      });
      socket.on("connect", () => {
        this.connects += 1;
        this.recovered = socket.recovered;
        this.check();
      });
      socket.on("disconnect", (reason) => (this.disconnect = reason));
      socket.on("connect_error", (err) => {
        this.errors += 1;
        this.lastError = err.data?.code ?? err.message;
      });
      socket.io.on("reconnect_attempt", (attempt) => (this.attempts = attempt));
      socket.once("connected", () => {
        socket.timeout(60000).emit("subscribe:inventory", {}, (err, reply) => {
          if (err || reply.error) reject(new Error(err ? err.message : JSON.stringify(reply.error)));
          else resolve();
        });
      });
      socket.once("connect_error", (err) => setTimeout(() => {
        if (!socket.connected && this.connects === 0) reject(new Error(err.data?.code ?? err.message));
      }, 60000));
    });
  }

  check() {
    if (this.doneAt === null && this.expect > 0 && this.socket.connected && this.numbers.length >= this.expect) {
      this.doneAt = Date.now();
    }
  }

  exact() {
    return this.numbers.length === this.expect && this.numbers.every((n, i) => n === i);
  }

  state() {
    return { connected: this.socket.connected, recovered: this.recovered, connects: this.connects,
             received: this.numbers.length, first: this.numbers.slice(0, 3), attempts: this.attempts,
             connectErrors: this.errors, lastError: this.lastError, lastDisconnect: this.disconnect };
  }
}

const clients = tokens.slice(offset, offset + count).map((t) => new Client(t));

async function connectAll(concurrency) {
  let next = 0, connected = 0;
  const errors = [];
  async function worker() {
    while (next < clients.length) {
      const client = clients[next++];
      try {
        await client.open();
        connected += 1;
      } catch (e) {
        errors.push(e.message);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { connected, failed: errors.length, errors: errors.slice(0, 5) };
}

async function waitAll(timeoutMs) {
  const start = Date.now(), until = start + timeoutMs;
  let report = start + 10000;
  while (clients.some((c) => c.doneAt === null) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
    if (Date.now() >= report) {  // progress on stderr (the bench's own)
      report += 10000;
      const done = clients.filter((c) => c.doneAt !== null).length;
      process.stderr.write(`[sio clients ${offset}] ${done}/${clients.length} live after ${(Date.now() - start) / 1000} s\n`);
    }
  }
  await new Promise((r) => setTimeout(r, 300)); // anything more would be a duplicate
  const stuck = clients.filter((c) => c.doneAt === null || !c.exact() || !c.recovered);
  const kinds = {};
  for (const c of stuck) {
    const key = `connected=${c.socket.connected} recovered=${c.recovered} received=${c.numbers.length} ` +
                `lastError=${c.lastError} lastDisconnect=${c.disconnect}`;
    kinds[key] = (kinds[key] || 0) + 1;
  }
  return {
    stuck_kinds: kinds,
    done_at: clients.filter((c) => c.doneAt !== null).map((c) => c.doneAt),
    recovered: clients.filter((c) => c.recovered === true).length,
    exact: clients.filter((c) => c.exact()).length,
    stuck: stuck.length,
    stuck_states: stuck.slice(0, 10).map((c) => c.state()),
  };
}

const lines = createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const cmd = JSON.parse(line);
  if (cmd.cmd === "connect") {
    out(await connectAll(cmd.concurrency || 100));
  } else if (cmd.cmd === "reset") {
    for (const c of clients) Object.assign(c, { numbers: [], expect: cmd.expect, doneAt: null, attempts: 0 });
    out({ reset: clients.length });
  } else if (cmd.cmd === "away") {
    for (const c of clients) {
      c.socket.io.reconnection(false);
      c.socket.io.engine.close();
    }
    out({ away: clients.length });
  } else if (cmd.cmd === "back") {
    for (const c of clients) {
      c.backAt = Date.now();
      c.socket.connect();
      c.socket.io.reconnection(true);
    }
    out({ back: Date.now() });
  } else if (cmd.cmd === "wait") {
    out(await waitAll(cmd.timeout * 1000));
  } else if (cmd.cmd === "quit") {
    for (const c of clients) c.socket?.close();
    process.exit(0);
  }
});
lines.on("close", () => process.exit(0));
out({ ready: true });
