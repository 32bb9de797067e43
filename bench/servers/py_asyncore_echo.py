"""Anchor for the benchmark suite: the echo server of Python's asyncore
documentation, on Python 3.11 (the last release with asyncore).

    python3 bench/servers/py_asyncore_echo.py [PORT] [HOST]

Same command line and "listening on HOST:PORT" line as
bench/echo_server.ts. It runs asyncore.loop(use_poll=True): select() cannot
watch descriptors above 1023, and the idle scenario opens 10,000.
"""

import sys
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import asyncore


class EchoHandler(asyncore.dispatcher_with_send):
    def handle_read(self):
        data = self.recv(8192)
        if data:
            self.send(data)


class EchoServer(asyncore.dispatcher):
    def __init__(self, host, port):
        super().__init__()
        self.create_socket()
        self.set_reuse_addr()
        self.bind((host, port))
        # Same backlog as the Deno servers: the load generator opens
        # hundreds of connections at once.
        self.listen(1024)

    def handle_accepted(self, sock, addr):
        EchoHandler(sock)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8007
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    server = EchoServer(host, port)
    bound_host, bound_port = server.socket.getsockname()[:2]
    print(f"listening on {bound_host}:{bound_port}", flush=True)
    asyncore.loop(use_poll=True)


if __name__ == "__main__":
    main()
