"""Keeping a probe session alive on a real serial link: wait until the firmware answers (bytes sent
while a board boots, or while a debugger's VCP resets it when the port is opened, are lost), get
through a board reset in the middle of a session (resynchronise, check it still runs the same model,
repeat the request once), size timeouts for the line rate, and keep the transfer time apart from the
inference time."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .protocol import ProbeClient, ProbeError, ProbeTimeout

QEMU_SOCKET_BYTES_PER_S = 2500.0  # the slowest host->guest rate measured on QEMU's STM32 USART


@dataclass
class LinkStats:
    """What the link did during a session (kept in the probe record)."""

    ready_s: float = 0.0            # from opening the port to the first answer
    ready_attempts: int = 0         # PINGs sent until then
    resyncs: list[str] = field(default_factory=list)  # commands repeated after the board stopped answering

    def as_dict(self) -> dict:
        return {"ready_s": round(self.ready_s, 4), "ready_attempts": self.ready_attempts, "resyncs": self.resyncs}


def line_rate(client: ProbeClient, baud: int | None = None) -> float:
    """Bytes per second the line carries: baud / 10 (8N1) for a serial device, QEMU's slowest for a socket."""
    if client.name.startswith("socket://"):
        return QEMU_SOCKET_BYTES_PER_S
    b = baud or getattr(client.port, "baudrate", None) or 115200
    return float(b) / 10.0


def transfer_timeout(client: ProbeClient, nbytes: int, base: float, baud: int | None = None) -> float:
    """``base`` seconds plus twice the time ``nbytes`` take on the line (a slow link never looks dead)."""
    return base + 2.0 * nbytes / line_rate(client, baud)


def wait_ready(client: ProbeClient, window: float = 5.0, attempt: float = 0.25,
               stats: LinkStats | None = None) -> float:
    """PING until the firmware answers (each try ``attempt`` s, no resends), at most ``window`` s; the
    seconds it took. ProbeTimeout with what to check when it never answers."""
    t0 = time.monotonic()
    retries, client.retries = client.retries, 0
    n = 0
    try:
        while True:
            n += 1
            try:
                client.request(0x01, b"sync", timeout=attempt)
                break
            except ProbeTimeout:
                if time.monotonic() - t0 >= window:
                    raise ProbeTimeout(client.name, "PING", f"no answer from the firmware within {window:g} s "
                                       f"({n} tries): is it flashed and running, is --baud right, does another "
                                       "program hold the port?") from None
    finally:
        client.retries = retries
    took = time.monotonic() - t0
    if stats is not None:
        stats.ready_s, stats.ready_attempts = took, n
    return took


def call_with_resync(client: ProbeClient, what: str, fn, *, model_hash: int, stats: LinkStats,
                     window: float = 10.0):
    """``fn()``; if the board stops answering (reset mid-session, a dropped line), wait until it answers
    again, check it runs the same model and repeat ``fn()`` once."""
    try:
        return fn()
    except ProbeTimeout as first:
        try:
            wait_ready(client, window)
        except ProbeTimeout:
            raise first from None
        info = client.info(refresh=True)
        if info.model_hash != model_hash:
            raise ProbeError(client.name, what, f"the board came back running model hash {info.model_hash:08x}, "
                             f"not {model_hash:08x}") from None
        stats.resyncs.append(what)
        return fn()
