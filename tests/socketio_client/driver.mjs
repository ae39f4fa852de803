// One socket.io-client 4 socket driven by a test over stdio (see node.py): JSON lines both ways.
//
// Environment: SIO_URL, SIO_OPTIONS (JSON: the io() options), SIO_RESUBSCRIBE (JSON
// [event, data]: emitted with an ack on every connect, as an app re-subscribes after a
// reconnection), SIO_LIFETIME_MS (the process exits by itself after this long), SIO_KEEPER
// (a second namespace of the same Manager, still waiting for its auth, so the Engine.IO
// session stays open when "/" disconnects, as in an app with several namespaces).
// Out ("connect" carries socket.recovered): {type: "open"|"connect"|"upgrade"|"connect_error"|"disconnect"|"reconnect"|"event"|"ack"|"resubscribed", ...}
// In:  {do: "emit", event, data?, ack?, id?} | {do: "connect", auth?} | {do: "disconnect"} | {do: "close"}
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const out = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
const options = JSON.parse(process.env.SIO_OPTIONS || "{}");
const resubscribe = process.env.SIO_RESUBSCRIBE ? JSON.parse(process.env.SIO_RESUBSCRIBE) : null;
setTimeout(() => process.exit(3), Number(process.env.SIO_LIFETIME_MS || 60000)).unref();

const socket = io(process.env.SIO_URL, options);
if (process.env.SIO_KEEPER) {
  // Active (it waits for its auth callback) but never sends a CONNECT: the Manager keeps the
  // Engine.IO session open while "/" is disconnected, and "/" reconnects on that same session.
  socket.io.socket("/keeper", { auth: () => {} }).connect();
}

socket.io.on("open", () => {
  const engine = socket.io.engine;
  out({ type: "open", transport: engine.transport.name });
  engine.once("upgrade", (transport) => out({ type: "upgrade", transport: transport.name }));
});
socket.on("connect", () => {
  out({ type: "connect", id: socket.id, transport: socket.io.engine.transport.name, engineId: socket.io.engine.id,
        recovered: socket.recovered, pid: socket._pid ?? null });
  if (resubscribe) {
    socket.timeout(5000).emit(resubscribe[0], resubscribe[1], (err, reply) =>
      out({ type: "resubscribed", error: err ? err.message : null, reply }));
  }
});
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message, data: err.data ?? null }));
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
socket.io.on("reconnect", (attempt) => out({ type: "reconnect", attempt }));
socket.onAny((event, ...args) => out({ type: "event", event, args }));

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const cmd = JSON.parse(line);
  if (cmd.do === "emit") {
    const args = "data" in cmd ? [cmd.event, cmd.data] : [cmd.event];
    if (cmd.ack) {
      socket.timeout(5000).emit(...args, (err, reply) => out({ type: "ack", id: cmd.id, error: err ? err.message : null, reply }));
    } else {
      socket.emit(...args);
    }
  } else if (cmd.do === "connect") {
    if ("auth" in cmd) socket.auth = cmd.auth;
    socket.connect();
  } else if (cmd.do === "disconnect") {
    socket.disconnect();
    out({ type: "disconnected", engine: socket.io.engine ? socket.io.engine.readyState : null,
          engineId: socket.io.engine ? socket.io.engine.id : null });
  } else if (cmd.do === "close") {
    socket.close();
    out({ type: "closed" });
    setTimeout(() => process.exit(0), 20);
  }
});
lines.on("close", () => {
  socket.close();
  process.exit(0);
});
