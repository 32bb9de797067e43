// Anchor for the benchmark suite: an echo server on Node's `net` module.
//
//     node bench/servers/node_net_echo.mjs [PORT] [HOST]
//
// Same command line and "listening on HOST:PORT" line as
// bench/echo_server.ts.
import net from "node:net";
import process from "node:process";

const port = Number(process.argv[2] ?? 8007);
const host = process.argv[3] ?? "127.0.0.1";

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on("error", () => {}); // a reset peer ends its connection only
  socket.pipe(socket);
});
server.listen({ port, host, backlog: 1024 }, () => {
  const { address, port: bound } = server.address();
  console.log(`listening on ${address}:${bound}`);
});
