#!/usr/bin/python3
"""A userspace TCP port forwarder between two network namespaces: the only way out of a namespace with no UDP path.

    tcp_forward.py LISTEN_NETNS ADDR:PORT[,ADDR:PORT...]

Runs in the namespace it connects from (start it with `ip netns exec <target> ...`); each listening socket is opened
inside LISTEN_NETNS (a path like /var/run/netns/<name>) and every accepted connection is relayed to the same address
and port in the namespace the process runs in. Prints "ready" once listening; stops when stdin closes.
"""
import ctypes
import os
import selectors
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


def pump(a, b):
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ, b)
    selector.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in selector.select():
                data = key.fileobj.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def serve(listener, target):
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection(target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()


def main():
    listen_ns, targets = sys.argv[1], [t.rsplit(":", 1) for t in sys.argv[2].split(",")]
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    away = os.open(listen_ns, os.O_RDONLY)
    listeners = []
    setns(away)  # sockets belong to the namespace they are created in, whatever the thread does later
    try:
        for host, port in targets:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, int(port)))
            listener.listen(64)
            listeners.append((listener, (host, int(port))))
    finally:
        setns(home)
    for listener, target in listeners:
        threading.Thread(target=serve, args=(listener, target), daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
