/**
 * Ports for servers that a test starts in another process.
 *
 * A port the kernel hands out for `listen(0)` comes from the ephemeral range (Linux: 32768–60999, see
 * /proc/sys/net/ipv4/ip_local_port_range), the same range every outgoing connection of the parallel test files takes
 * its local port from. Between closing the probe and the child binding it, another connection may take it ("address
 * already in use" in the child). These ports are drawn below that range instead, away from the test stack's fixed
 * ports (13000+, 17017+, 17233+ with TEST_PORT_OFFSET up to 900) and checked free by binding.
 */
import * as net from "node:net";

const LOW = 20000;
const HIGH = 32000; // exclusive; below the ephemeral range

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 outside the ephemeral range. With `span` > 1, the `span` consecutive ports starting at
 * the returned one are all free (the API takes API_PORT+1 and +2 for the worker's metrics).
 * @throws Error when 200 random tries find none.
 */
export async function freePort(span = 1): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW - span));
    const range = Array.from({ length: span }, (_, i) => port + i);
    if (range.some((p) => handedOut.has(p))) continue;
    let free = true;
    for (const p of range) if (!(await canBind(p))) free = false;
    if (!free) continue;
    range.forEach((p) => handedOut.add(p));
    return port;
  }
  throw new Error(`no free port range of ${span} between ${LOW} and ${HIGH}`);
}
