"""tinyengine/probe_link.py against a simulated board on the other end of the line: bytes lost while it
boots, a reset in the middle of a session, a board that never answers, a board that comes back with
another model, timeouts sized for the line rate."""
from __future__ import annotations

import pytest

from tinyengine.deploy.probe_link import LinkStats, call_with_resync, line_rate, transfer_timeout, wait_ready
from tinyengine.deploy.protocol import (
    Cmd,
    DeviceInfo,
    FrameDecoder,
    ProbeClient,
    ProbeError,
    ProbeTimeout,
    encode_frame,
)


def info_payload(model_hash: int) -> bytes:
    f = DeviceInfo._FIXED
    fixed = f.pack(1, 0, 0, 216_000_000, 216_000_000, model_hash, 1000, 2000, 3000, 256, 1, 16, 4, 4, 1, 1,
                   10, 0, 0, 0, 0.5, 0, 10, 0.25, 0, 100, 0, 250)
    return fixed + b"".join(bytes([len(s)]) + s for s in (b"b", b"cortex-m7", b"m", b"216000000 Hz PLL"))


class FakeBoard:
    """A pyserial-like port: the firmware ignores the first ``deaf`` requests (booting), answers PING
    and INFO, and after ``reset()`` runs ``next_hash`` and is deaf again."""

    def __init__(self, deaf: int = 0, model_hash: int = 0x1234):
        self.deaf, self.hash, self.next_hash = deaf, model_hash, model_hash
        self.dec, self.out, self.baudrate, self.seen = FrameDecoder(), bytearray(), 115200, 0

    def reset(self, deaf: int) -> None:
        self.deaf, self.hash = deaf, self.next_hash

    def write(self, data: bytes) -> None:
        for fr in self.dec.feed(data):
            self.seen += 1
            if self.deaf > 0:
                self.deaf -= 1
                continue
            if fr.cmd == Cmd.PING:
                self.out += encode_frame(Cmd.PING | 0x80, fr.payload, fr.seq)
            elif fr.cmd == Cmd.INFO:
                self.out += encode_frame(Cmd.INFO | 0x80, info_payload(self.hash), fr.seq)

    def flush(self) -> None:
        pass

    @property
    def in_waiting(self) -> int:
        return len(self.out)

    def read(self, n: int) -> bytes:
        data, self.out = bytes(self.out[:n]), self.out[n:]
        return data


def test_wait_ready_pings_through_the_boot(monkeypatch):
    board = FakeBoard(deaf=3)
    c = ProbeClient(board, timeout=0.05, retries=2, name="/dev/ttyACM0")
    stats = LinkStats()
    wait_ready(c, window=2.0, attempt=0.05, stats=stats)
    assert stats.ready_attempts == 4 and c.retries == 2  # 3 lost, the 4th answered; retries restored


def test_wait_ready_gives_up_with_what_to_check():
    c = ProbeClient(FakeBoard(deaf=10**6), timeout=0.05, retries=1, name="/dev/ttyACM0")
    with pytest.raises(ProbeTimeout, match=r"no answer from the firmware within 0.3 s .*--baud"):
        wait_ready(c, window=0.3, attempt=0.05)


def test_a_reset_mid_session_is_resynchronised_and_the_request_repeated_once():
    board = FakeBoard()
    c = ProbeClient(board, timeout=0.05, retries=0, name="/dev/ttyACM0")
    stats = LinkStats()
    calls = []

    def ping():
        calls.append(1)
        if len(calls) == 1:
            board.reset(deaf=2)  # the board reboots: this request and the next one are lost
        return c.ping(b"x")

    call_with_resync(c, "PING", ping, model_hash=0x1234, stats=stats, window=2.0)
    assert stats.resyncs == ["PING"] and len(calls) == 2


def test_a_board_back_with_another_model_is_an_error():
    board = FakeBoard()
    board.next_hash = 0xBEEF
    c = ProbeClient(board, timeout=0.05, retries=0, name="/dev/ttyACM0")

    def ping():
        board.reset(deaf=1)
        return c.ping(b"x")

    with pytest.raises(ProbeError, match="came back running model hash 0000beef, not 00001234"):
        call_with_resync(c, "PING", ping, model_hash=0x1234, stats=LinkStats(), window=2.0)


def test_timeouts_follow_the_line_rate():
    c = ProbeClient(FakeBoard(), name="/dev/ttyACM0")
    assert line_rate(c) == 11520.0 and line_rate(c, 1_000_000) == 100_000.0
    assert transfer_timeout(c, 115_200, 1.0) == pytest.approx(1.0 + 2 * 10.0)  # 100 KB at 115200 Bd: 10 s
    q = ProbeClient(FakeBoard(), name="socket://127.0.0.1:4444")
    assert line_rate(q) == 2500.0


def test_info_status_string_is_optional():
    p = info_payload(7)
    assert DeviceInfo.parse(p).status == "216000000 Hz PLL"
    cut = p[:-len(b"216000000 Hz PLL") - 1]
    assert DeviceInfo.parse(cut).status == "" and DeviceInfo.parse(cut).model == "m"
