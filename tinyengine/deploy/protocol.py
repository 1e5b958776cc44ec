"""The probe wire protocol (firmware/PROTOCOL.md), host side: frame codec, a resynchronising decoder and
:class:`ProbeClient`, which talks to the probe firmware over any pyserial port object -- a board's
``/dev/ttyACM0`` or QEMU's ``socket://127.0.0.1:PORT`` alike."""
from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Iterable

import tinyml_errors
from tinyml_errors import TinyMLError

MAGIC = b"\xa5\x5a"
VERSION = 1
HEADER = struct.Struct("<2sBBBBIH")  # magic, version, cmd, seq, flags, payload length, header check
HEADER_BYTES = HEADER.size           # 12
CRC_BYTES = 4
OVERHEAD = HEADER_BYTES + CRC_BYTES
RESPONSE = 0x80
HOST_MAX_PAYLOAD = 16 << 20          # what the host decoder accepts from a device


class Cmd(IntEnum):
    PING = 0x01
    INFO = 0x02
    INFER = 0x03
    BENCH = 0x04
    PROFILE = 0x05
    LAYERS = 0x06
    ERROR = 0xFF


class ErrorCode(IntEnum):
    HEADER = 1
    VERSION = 2
    TOO_LONG = 3
    CRC = 4
    TIMEOUT = 5
    UNKNOWN_CMD = 6
    BAD_LENGTH = 7
    BAD_ARG = 8
    MODEL = 9


TRANSPORT_ERRORS = {ErrorCode.HEADER, ErrorCode.CRC, ErrorCode.TIMEOUT}  # the request was damaged: resend


class TimerKind(IntEnum):
    DWT = 0      # DWT CYCCNT, core cycles
    SYSTICK = 1  # SysTick at the core clock (QEMU: instructions = ticks * 40 / 2**shift)
    HOST = 2     # host build: nanoseconds


# --------------------------------------------------------------------------- codec
def header_check(first10: bytes) -> int:
    """Low 16 bits of the CRC32 of header bytes 0..9."""
    return zlib.crc32(first10) & 0xFFFF


def encode_frame(cmd: int, payload: bytes = b"", seq: int = 0, flags: int = 0, version: int = VERSION) -> bytes:
    """One frame: header (with its check), payload, CRC32 (zlib) of everything before it."""
    payload = bytes(payload)
    head10 = struct.pack("<2sBBBBI", MAGIC, version, cmd & 0xFF, seq & 0xFF, flags & 0xFF, len(payload))
    body = head10 + struct.pack("<H", header_check(head10)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


@dataclass(frozen=True)
class Frame:
    """A valid frame."""

    cmd: int
    seq: int
    payload: bytes
    flags: int = 0

    @property
    def is_error(self) -> bool:
        return self.cmd == Cmd.ERROR

    def error(self) -> "ErrorFrame":
        """The fields of an error frame's payload."""
        if len(self.payload) < 8:
            raise ProtocolError(f"error frame with a {len(self.payload)}-byte payload (want 8)")
        code, cmd, _, detail = struct.unpack_from("<BBHI", self.payload)
        return ErrorFrame(code, cmd, self.seq, detail)


@dataclass(frozen=True)
class ErrorFrame:
    """What an error frame says: the error code, the offending command (0 if unknown), seq and detail."""

    code: int
    cmd: int
    seq: int
    detail: int

    @property
    def name(self) -> str:
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return f"error {self.code}"


def encode_error(seq: int, code: int, cmd: int = 0, detail: int = 0) -> bytes:
    return encode_frame(Cmd.ERROR, struct.pack("<BBHI", code, cmd, 0, detail), seq)


@dataclass(frozen=True)
class Garbled:
    """The decoder dropped bytes: a frame whose header check, version, length or CRC was bad."""

    reason: str       # 'header' | 'version' | 'too_long' | 'crc'
    nbytes: int       # bytes consumed
    cmd: int = 0      # from the header when its check passed, else 0
    seq: int = 0
    length: int = 0   # declared payload length (header check passed)


class FrameDecoder:
    """Incremental decoder with the firmware parser's resynchronisation rules: bytes before a magic are
    skipped, a header whose check fails is dropped one byte at a time (scanning resumes after its first
    magic byte), an oversize or wrong-version header is dropped whole, a CRC failure drops the frame.
    :meth:`feed` returns the :class:`Frame` and :class:`Garbled` events in stream order."""

    def __init__(self, max_payload: int = HOST_MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray()
        self.skipped = 0  # bytes skipped while hunting for a magic

    def pending(self) -> int:
        """Bytes held (part of a frame or a possible magic)."""
        return len(self.buf)

    def feed(self, data: bytes | bytearray | Iterable[int]) -> list[Frame | Garbled]:
        self.buf += bytes(data)
        out: list[Frame | Garbled] = []
        buf = self.buf
        while True:
            i = buf.find(MAGIC)
            if i < 0:
                keep = 1 if buf[-1:] == MAGIC[:1] else 0
                self.skipped += len(buf) - keep
                del buf[:len(buf) - keep]
                return out
            if i:
                self.skipped += i
                del buf[:i]
            if len(buf) < HEADER_BYTES:
                return out
            _, ver, cmd, seq, flags, n, chk = HEADER.unpack_from(buf)
            if chk != header_check(bytes(buf[:10])):
                out.append(Garbled("header", 1))
                del buf[:1]
                continue
            if ver != VERSION or n > self.max_payload:
                out.append(Garbled("version" if ver != VERSION else "too_long", HEADER_BYTES, cmd, seq, n))
                del buf[:HEADER_BYTES]
                continue
            total = HEADER_BYTES + n + CRC_BYTES
            if len(buf) < total:
                return out
            body = bytes(buf[:HEADER_BYTES + n])
            (crc,) = struct.unpack_from("<I", buf, HEADER_BYTES + n)
            del buf[:total]
            if crc != zlib.crc32(body):
                out.append(Garbled("crc", total, cmd, seq, n))
                continue
            out.append(Frame(cmd, seq, body[HEADER_BYTES:], flags))


def decode_all(data: bytes, max_payload: int = HOST_MAX_PAYLOAD) -> tuple[list[Frame | Garbled], int]:
    """Decode a complete byte string: (events, bytes left over as an incomplete frame)."""
    d = FrameDecoder(max_payload)
    events = d.feed(data)
    return events, d.pending()


# --------------------------------------------------------------------------- errors
class ProtocolError(TinyMLError):
    """A malformed or unexpected response."""


class ProbeError(tinyml_errors.ProbeError):
    """A request failed; the message names the port and the command."""

    def __init__(self, port: str, command: str, message: str):
        super().__init__(f"{port}: {command}: {message}")
        self.port, self.command = port, command


class ProbeTimeout(ProbeError):
    """No valid response within the timeout, after every retry."""


class DeviceError(ProbeError):
    """The device answered with an error frame."""

    def __init__(self, port: str, command: str, err: ErrorFrame):
        super().__init__(port, command, f"device error {err.name} (code {err.code}, detail {err.detail})")
        self.error = err


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class DeviceInfo:
    """The INFO response."""

    protocol_version: int
    timer: TimerKind
    flags: int
    timer_hz: int
    clock_hz: int
    model_hash: int
    arena_bytes: int
    weight_bytes: int
    macs: int
    max_payload: int
    num_layers: int
    input_bytes: int
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, ...]
    input_scale: float
    input_zero_point: int
    output_bytes: int
    output_scale: float
    output_zero_point: int
    bench_max: int
    model_status: int
    frame_timeout_ms: int
    board: str
    core: str
    model: str
    status: str = ""  # a board port's line: clock reached, ready waits that timed out (optional 4th string)

    @property
    def dsp(self) -> bool:
        return bool(self.flags & 1)

    @property
    def rx_in_arena(self) -> bool:
        """Requests are received into the model's arena (BENCH then takes no input)."""
        return bool(self.flags & 2)

    _FIXED = struct.Struct("<BBHIIIIIIIII3HH4HfiIfiIiI")

    @classmethod
    def parse(cls, payload: bytes) -> "DeviceInfo":
        f = cls._FIXED
        if len(payload) < f.size:
            raise ProtocolError(f"INFO payload of {len(payload)} bytes, want at least {f.size}")
        v = f.unpack_from(payload)
        strings, off = [], f.size
        for _ in range(3):
            if off >= len(payload):
                raise ProtocolError("INFO payload truncated in its strings")
            n = payload[off]
            s = payload[off + 1:off + 1 + n]
            if len(s) != n:
                raise ProtocolError("INFO payload truncated in its strings")
            strings.append(s.decode("utf-8", "replace"))
            off += 1 + n
        status = ""
        if off < len(payload) and off + 1 + payload[off] <= len(payload):  # firmware without a port omits it
            status = payload[off + 1:off + 1 + payload[off]].decode("utf-8", "replace")
        rank = min(v[15], 4)
        return cls(protocol_version=v[0], timer=TimerKind(v[1]), flags=v[2], timer_hz=v[3], clock_hz=v[4],
                   model_hash=v[5], arena_bytes=v[6], weight_bytes=v[7], macs=v[8], max_payload=v[9],
                   num_layers=v[10], input_bytes=v[11], input_shape=(v[12], v[13], v[14]),
                   output_shape=tuple(v[16:16 + rank]), input_scale=v[20], input_zero_point=v[21],
                   output_bytes=v[22], output_scale=v[23], output_zero_point=v[24], bench_max=v[25],
                   model_status=v[26], frame_timeout_ms=v[27], board=strings[0], core=strings[1], model=strings[2],
                   status=status)


@dataclass(frozen=True)
class LayerTiming:
    index: int
    name: str
    macs: int
    ticks: int


@dataclass(frozen=True)
class Profile:
    """PROFILE: the whole inference and each layer, in timer ticks (see DeviceInfo.timer)."""

    total_ticks: int
    layers: list[LayerTiming] = field(default_factory=list)

    @property
    def ticks(self) -> list[int]:
        return [la.ticks for la in self.layers]


def ticks_to_instructions(ticks: int, icount_shift: int = 0, timer_hz: int = 25_000_000) -> float:
    """QEMU -icount shift=N: every instruction is 2**N ns of virtual time, so a SysTick at ``timer_hz``
    (MPS2: 25 MHz, 40 instructions per tick at shift 0; netduinoplus2: 168 MHz) gives
    instructions = ticks * 1e9 / timer_hz / 2**N."""
    return ticks * 1e9 / timer_hz / (1 << icount_shift)


# --------------------------------------------------------------------------- client
class ProbeClient:
    """Request/response client for the probe firmware over a pyserial port object.

    ``timeout`` bounds each attempt (seconds); a request whose frame or response was damaged on the line
    (CRC/header/timeout error frame, garbled or missing response) is resent up to ``retries`` times with
    the same sequence number (every command is idempotent); responses with another sequence number are
    stale and dropped."""

    def __init__(self, port: Any, *, timeout: float = 5.0, retries: int = 2, name: str | None = None):
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.name = name or str(getattr(port, "portstr", None) or getattr(port, "port", None) or port)
        self.decoder = FrameDecoder()
        self.stray: list[Frame | Garbled] = []  # unrelated frames/garbage seen while waiting (diagnostics)
        self._seq = 0
        self._info: DeviceInfo | None = None
        self._layers: list[tuple[str, int]] | None = None
        self.last_round_trip = 0.0

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, timeout: float = 5.0, retries: int = 2) -> "ProbeClient":
        """Open ``url`` (``/dev/ttyACM0``, ``socket://127.0.0.1:PORT``, ...) with pyserial."""
        import serial  # pyserial

        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ProbeError(url, "open", str(exc)) from exc
        client = cls(port, timeout=timeout, retries=retries, name=url)
        try:
            port.reset_input_buffer()
        except Exception:  # noqa: BLE001 - not every port type supports it
            pass
        return client

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "ProbeClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transport
    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1  # 1..255; 0 marks error frames about unattributable garbage
        return self._seq

    def _read_some(self) -> bytes:
        n = 1
        try:
            n = max(1, int(self.port.in_waiting))
        except Exception:  # noqa: BLE001
            pass
        return self.port.read(n)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests: garbage, hand-made frames)."""
        self.port.write(data)
        self.port.flush()

    def read_frames(self, duration: float) -> list[Frame | Garbled]:
        """Everything that arrives within ``duration`` seconds, decoded."""
        end, out = time.monotonic() + duration, []
        while time.monotonic() < end:
            data = self._read_some()
            if data:
                out += self.decoder.feed(data)
        return out

    def request(self, cmd: int, payload: bytes = b"", *, timeout: float | None = None) -> Frame:
        """Send one request and return its response frame; raise DeviceError for an error frame."""
        cname = Cmd(cmd).name if cmd in Cmd._value2member_map_ else f"command 0x{cmd:02x}"
        seq = self._next_seq()
        frame = encode_frame(cmd, payload, seq)
        limit = self.timeout if timeout is None else timeout
        why = "no response"
        for _attempt in range(self.retries + 1):
            t0 = time.monotonic()
            try:
                self.send_raw(frame)
            except Exception as exc:  # noqa: BLE001 - serial/socket errors
                raise ProbeError(self.name, cname, f"write failed: {exc}") from exc
            deadline = t0 + limit
            resend = False
            while not resend and time.monotonic() < deadline:
                try:
                    data = self._read_some()
                except Exception as exc:  # noqa: BLE001
                    raise ProbeError(self.name, cname, f"read failed: {exc}") from exc
                if not data:
                    continue
                for ev in self.decoder.feed(data):
                    if isinstance(ev, Garbled):  # most likely our response, damaged: ask again
                        self.stray.append(ev)
                        why, resend = f"garbled response ({ev.reason})", True
                        continue
                    if ev.seq != seq:
                        self.stray.append(ev)
                        continue
                    if ev.is_error:
                        err = ev.error()
                        if err.code in TRANSPORT_ERRORS:
                            why, resend = f"request damaged on the line ({err.name})", True
                            break
                        raise DeviceError(self.name, cname, err)
                    if ev.cmd == cmd | RESPONSE:
                        self.last_round_trip = time.monotonic() - t0
                        return ev
                    self.stray.append(ev)
        raise ProbeTimeout(self.name, cname, f"{why} after {self.retries + 1} attempt(s) of {limit:g} s")

    # -- commands
    def ping(self, payload: bytes = b"") -> float:
        """Round trip in seconds; the device echoes ``payload``."""
        r = self.request(Cmd.PING, payload)
        if r.payload != bytes(payload):
            raise ProbeError(self.name, "PING", "echo differs from what was sent")
        return self.last_round_trip

    def info(self, refresh: bool = False) -> DeviceInfo:
        if self._info is None or refresh:
            try:
                self._info = DeviceInfo.parse(self.request(Cmd.INFO).payload)
            except ProtocolError as exc:
                raise ProbeError(self.name, "INFO", str(exc)) from exc
        return self._info

    def layers(self) -> list[tuple[str, int]]:
        """(name, MACs) of every layer, in schedule order."""
        if self._layers is None:
            p = self.request(Cmd.LAYERS).payload
            try:
                (n,), off, out = struct.unpack_from("<I", p), 4, []
                for _ in range(n):
                    macs, ln = struct.unpack_from("<IB", p, off)
                    out.append((p[off + 5:off + 5 + ln].decode("utf-8", "replace"), macs))
                    off += 5 + ln
            except struct.error as exc:
                raise ProbeError(self.name, "LAYERS", f"malformed response: {exc}") from exc
            self._layers = out
        return self._layers

    def _check_input(self, command: str, data: bytes) -> bytes:
        data = bytes(data)
        want = self.info().input_bytes
        if len(data) != want:
            raise ProbeError(self.name, command, f"input is {len(data)} bytes, the model takes {want}")
        return data

    def infer(self, input_bytes: bytes, *, timeout: float | None = None) -> tuple[bytes, int]:
        """(output bytes, ticks of te_model_invoke) for one int8 input."""
        r = self.request(Cmd.INFER, self._check_input("INFER", input_bytes), timeout=timeout)
        if len(r.payload) < 8:
            raise ProbeError(self.name, "INFER", f"response of {len(r.payload)} bytes")
        (ticks,) = struct.unpack_from("<Q", r.payload)
        return r.payload[8:], ticks

    def bench(self, n: int, input_bytes: bytes | None = None, *, timeout: float | None = None) -> list[int]:
        """Ticks of ``n`` inferences (on ``input_bytes``, else an all-zero-point input)."""
        payload = struct.pack("<I", n) + (b"" if input_bytes is None else self._check_input("BENCH", input_bytes))
        p = self.request(Cmd.BENCH, payload, timeout=timeout).payload
        (m,) = struct.unpack_from("<I", p)
        if m != n or len(p) != 4 + 8 * n:
            raise ProbeError(self.name, "BENCH", f"asked for {n} runs, got {m} ({len(p)} bytes)")
        return list(struct.unpack_from(f"<{n}Q", p, 4))

    def profile(self, input_bytes: bytes | None = None, *, timeout: float | None = None) -> Profile:
        """Per-layer ticks of one inference, with the layers' names and MACs."""
        payload = b"" if input_bytes is None else self._check_input("PROFILE", input_bytes)
        p = self.request(Cmd.PROFILE, payload, timeout=timeout).payload
        (n,) = struct.unpack_from("<I", p)
        if len(p) != 12 + 8 * n:
            raise ProbeError(self.name, "PROFILE", f"{n} layers in a {len(p)}-byte response")
        (total,) = struct.unpack_from("<Q", p, 4)
        ticks = struct.unpack_from(f"<{n}Q", p, 12)
        names = self.layers()
        if len(names) != n:
            raise ProbeError(self.name, "PROFILE", f"{n} layer timings but {len(names)} layer names")
        return Profile(total, [LayerTiming(i, nm, macs, t) for i, ((nm, macs), t) in enumerate(zip(names, ticks))])
