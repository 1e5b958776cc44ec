"""The probe wire protocol (firmware/PROTOCOL.md): (a) the Python codec and its resynchronisation;
(b) the firmware application built for the host under ASan/UBSan and fed fuzzed, garbled streams --
its answers must be exactly what the Python model of the parser predicts, never a crash or a hang;
(c) the firmware in QEMU through ProbeClient on a TCP serial port: INFO, bit-exact INFER, BENCH,
PROFILE, and garbage that gets only error frames while the firmware keeps answering."""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from small_models import small_arch as shared_small_arch

from codegen.emit import model_hash
from tinyengine.deploy.protocol import (
    HEADER_BYTES,
    MAGIC,
    VERSION,
    Cmd,
    DeviceError,
    DeviceInfo,
    ErrorCode,
    Frame,
    FrameDecoder,
    Garbled,
    ProbeClient,
    ProbeError,
    TimerKind,
    decode_all,
    encode_frame,
    header_check,
    ticks_to_instructions,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
APP = ROOT / "firmware" / "app"
BENCH_MAX = 100


# --------------------------------------------------------------------------- (a) Python codec
def test_known_frame_bytes():
    f = encode_frame(Cmd.PING, b"hi", seq=7)
    head = b"\xa5\x5a\x01\x01\x07\x00\x02\x00\x00\x00"
    assert f[:10] == head and f[10:12] == struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    assert f[12:14] == b"hi" and f[14:] == struct.pack("<I", zlib.crc32(f[:14])) and len(f) == 18


frames_st = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=80), st.integers(0, 255), st.integers(0, 255)),
                     min_size=1, max_size=6)
no_magic = st.binary(max_size=40).map(lambda b: b.replace(b"\xa5", b"\x00"))


@settings(max_examples=200, deadline=None)
@given(frames_st, st.lists(no_magic, min_size=7, max_size=7), st.integers(1, 50))
def test_round_trip_with_garbage_and_any_chunking(frames, garbage, chunk):
    stream = garbage[0]
    for i, (cmd, payload, seq, flags) in enumerate(frames):
        stream += encode_frame(cmd, payload, seq, flags) + garbage[i + 1]
    d = FrameDecoder()
    events = []
    for i in range(0, len(stream), chunk):
        events += d.feed(stream[i:i + chunk])
    assert events == [Frame(c, s, p, f) for c, p, s, f in frames]
    assert d.pending() == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=64), st.integers(0, 255), st.data())
def test_a_corrupted_frame_never_decodes_and_the_next_one_does(payload, seq, data):
    bad = bytearray(encode_frame(Cmd.INFER, payload, seq))
    pos = data.draw(st.integers(0, len(bad) - 1))
    bad[pos] ^= data.draw(st.integers(1, 255))
    good = encode_frame(Cmd.PING, b"ok", 9)
    events, _ = decode_all(bytes(bad) + good + good)
    frames = [e for e in events if isinstance(e, Frame)]
    # the corrupted frame may swallow the first good one as its payload (its length grew), never both
    assert frames and frames[-1] == Frame(Cmd.PING, 9, b"ok") and all(f == frames[-1] for f in frames)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_arbitrary_bytes_never_break_the_decoder(junk, chunk):
    d = FrameDecoder(max_payload=64)
    consumed = 0
    for i in range(0, len(junk), chunk):
        for e in d.feed(junk[i:i + chunk]):
            assert isinstance(e, (Frame, Garbled))
            consumed += e.nbytes if isinstance(e, Garbled) else HEADER_BYTES + len(e.payload) + 4
    assert consumed + d.skipped + d.pending() == len(junk)
    assert d.pending() <= HEADER_BYTES + 64 + 4


def test_decoder_rules_for_version_oversize_and_split_magic():
    head = struct.pack("<2sBBBBI", MAGIC, 2, 1, 3, 0, 0)
    v2 = head + struct.pack("<H", header_check(head))
    events, _ = decode_all(v2 + encode_frame(1, b"", 4))
    assert events == [Garbled("version", 12, 1, 3, 0), Frame(1, 4, b"")]
    head = struct.pack("<2sBBBBI", MAGIC, VERSION, 3, 5, 0, 1 << 20)
    big = head + struct.pack("<H", header_check(head))
    events, _ = decode_all(big + encode_frame(1, b"x", 6), max_payload=1024)
    assert events == [Garbled("too_long", 12, 3, 5, 1 << 20), Frame(1, 6, b"x")]
    f = encode_frame(2, b"abc", 1)
    d = FrameDecoder()
    assert d.feed(b"\x00\xa5") == [] and d.pending() == 1
    assert d.feed(b"\xa5" + f[1:]) == [Frame(2, 1, b"abc")]


def test_ticks_to_instructions():
    assert ticks_to_instructions(10) == 400 and ticks_to_instructions(16, 6) == 10


# --------------------------------------------------------------------------- a small model project
def small_arch():
    return shared_small_arch("probe13")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The generated project (codegen.generate.generate) and its lowering."""
    from codegen.generate import generate

    root = tmp_path_factory.mktemp("probe_model")
    arch_json = root / "probe13.json"
    arch_json.write_text(small_arch().to_json())
    proj = generate(str(arch_json), "qemu-m4", root / "proj", seed=13, calib=4)
    assert proj.reference_input.size <= 2048
    return proj


def test_model_hash_is_in_model_h_and_depends_on_weights(project):
    low = project.lowering
    h = model_hash(low)
    text = (project.root / "src" / "model.h").read_text()
    assert f"#define TE_MODEL_HASH 0x{h:08x}u" in text
    op = next(o for o in low.ops if o.arrays)
    arr = op.arrays[0]
    old = arr.values.copy()
    try:
        arr.values = old.copy()
        arr.values.reshape(-1)[0] ^= 1
        assert model_hash(low) != h
    finally:
        arr.values = old
    assert model_hash(low) == h


# --------------------------------------------------------------------------- (b) host build under ASan
def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"'{tool}' not found on PATH: install the Debian package '{package}'")
    return path


@pytest.fixture(scope="module")
def host_firmware(project, tmp_path_factory):
    cc = _need("gcc", "gcc")
    src = project.root / "src"
    exe = tmp_path_factory.mktemp("host_fw") / "probe_host"
    cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-fno-omit-frame-pointer",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-DTE_TIMING_HOST",
           '-DTE_HOOKS_HEADER="te_hooks.h"', f"-I{APP}", f"-I{src}",
           *(str(APP / f) for f in ("main.c", "te_protocol.c", "te_timing.c")),
           str(ROOT / "firmware" / "test" / "protocol_host.c"), *map(str, sorted(src.glob("*.c"))), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"host build failed:\n{' '.join(cmd)}\n{r.stderr}"
    return exe


def _run_host(exe: Path, stream: bytes) -> bytes:
    r = subprocess.run([str(exe)], input=stream, capture_output=True, timeout=60)
    assert r.returncode == 0, f"host firmware exited {r.returncode}:\n{r.stderr.decode(errors='replace')[-3000:]}"
    assert not r.stderr, r.stderr.decode(errors="replace")[-3000:]
    return r.stdout


def _fuzz_stream(rng: np.random.Generator, input_bytes: int, cap: int, pieces: int) -> tuple[bytes, list]:
    """Random bytes, valid requests (right and wrong sizes), bad CRCs, damaged headers, oversize and
    wrong-version headers, unknown commands and truncated frames, in random order."""
    out, infers = bytearray(), []

    def rand(n):
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    for _ in range(pieces):
        seq = int(rng.integers(0, 256))
        kind = int(rng.integers(0, 13))
        if kind == 0:
            b = bytearray(rand(int(rng.integers(0, 80))))
            for _ in range(int(rng.integers(0, 3))):  # plant magics to tempt the parser
                if b:
                    i = int(rng.integers(0, len(b)))
                    b[i:i + 2] = MAGIC
            out += b
        elif kind == 1:
            out += encode_frame(Cmd.PING, rand(int(rng.integers(0, 300))), seq)
        elif kind == 2:
            out += encode_frame(int(rng.choice([Cmd.INFO, Cmd.LAYERS])), rand(int(rng.choice([0, 0, 3]))), seq)
        elif kind == 3:
            x = rand(input_bytes)
            infers.append((seq, x))
            out += encode_frame(Cmd.INFER, x, seq)
        elif kind == 4:
            n = int(rng.choice([input_bytes - 1, input_bytes + 1, 0, 7]))
            out += encode_frame(Cmd.INFER, rand(max(n, 0)), seq)
        elif kind == 5:
            n = int(rng.choice([0, 1, 2, 3, BENCH_MAX + 1, 1 << 31]))
            extra = rand(input_bytes) if rng.random() < 0.3 else (rand(5) if rng.random() < 0.2 else b"")
            out += encode_frame(Cmd.BENCH, struct.pack("<I", n) + extra, seq)
        elif kind == 6:
            out += encode_frame(Cmd.PROFILE, rand(int(rng.choice([0, input_bytes, 9]))), seq)
        elif kind == 7:
            out += encode_frame(int(rng.choice([0x00, 0x07, 0x42, 0x81, 0x83, 0xFE, 0xFF])), rand(4), seq)
        elif kind == 8:  # bad CRC / damaged payload or header
            f = bytearray(encode_frame(Cmd.PING, rand(int(rng.integers(0, 40))), seq))
            i = int(rng.integers(2, len(f)))
            f[i] ^= int(rng.integers(1, 256))
            out += f
        elif kind == 9:  # oversize length with a valid header check
            n = int(rng.choice([cap + 1, 1 << 20, 0xFFFFFFFF]))
            head = struct.pack("<2sBBBBI", MAGIC, VERSION, Cmd.PING, seq, 0, n)
            out += head + struct.pack("<H", header_check(head)) + rand(int(rng.integers(0, 20)))
        elif kind == 10:  # wrong version
            head = struct.pack("<2sBBBBI", MAGIC, 2, Cmd.PING, seq, 0, 0)
            out += head + struct.pack("<H", header_check(head)) + rand(4)
        elif kind == 11:  # truncated frame (its missing tail is taken from what follows)
            f = encode_frame(Cmd.PING, rand(int(rng.integers(0, 30))), seq)
            out += f[:int(rng.integers(1, len(f)))]
        else:  # the magic split across garbage
            out += b"\xa5" + rand(1) + b"\xa5\xa5"
    return bytes(out), infers


def _predict(stream: bytes, cap: int, input_bytes: int, num_layers: int) -> list[tuple]:
    """What the firmware must answer, from the Python decoder (same resynchronisation rules)."""
    d = FrameDecoder(max_payload=cap)
    want = []
    for e in d.feed(stream):
        if isinstance(e, Garbled):
            code = {"header": ErrorCode.HEADER, "version": ErrorCode.VERSION, "too_long": ErrorCode.TOO_LONG,
                    "crc": ErrorCode.CRC}[e.reason]
            want.append(("err", e.seq, code, e.cmd))
            continue
        c, p, s = e.cmd, e.payload, e.seq
        if c == Cmd.PING:
            want.append(("ok", s, c, p))
        elif c in (Cmd.INFO, Cmd.LAYERS):
            want.append(("ok", s, c, None) if not p else ("err", s, ErrorCode.BAD_LENGTH, c))
        elif c == Cmd.INFER:
            want.append(("ok", s, c, None) if len(p) == input_bytes else ("err", s, ErrorCode.BAD_LENGTH, c))
        elif c == Cmd.BENCH:
            if len(p) not in (4, 4 + input_bytes):
                want.append(("err", s, ErrorCode.BAD_LENGTH, c))
            else:
                n = struct.unpack_from("<I", p)[0]
                ok = 1 <= n <= BENCH_MAX and len(p) == 4  # receive buffer in the arena: BENCH takes no input
                want.append(("ok", s, c, 4 + 8 * n) if ok else ("err", s, ErrorCode.BAD_ARG, c))
        elif c == Cmd.PROFILE:
            want.append(("ok", s, c, 12 + 8 * num_layers) if len(p) in (0, input_bytes)
                        else ("err", s, ErrorCode.BAD_LENGTH, c))
        else:
            want.append(("err", s, ErrorCode.UNKNOWN_CMD, c))
    if d.pending():
        want.append(("err", None, ErrorCode.TIMEOUT, None))
    return want


def _check_answers(got: bytes, want: list[tuple], reference=None) -> int:
    events, left = decode_all(got)
    assert left == 0 and all(isinstance(e, Frame) for e in events), "firmware sent a malformed frame"
    assert len(events) == len(want), f"{len(events)} frames for {len(want)} expected answers"
    n_infer = 0
    for f, w in zip(events, want):
        kind, seq, code, extra = w
        if kind == "err":
            assert f.cmd == Cmd.ERROR, (f, w)
            err = f.error()
            assert err.code == code, (err, w)
            assert (seq is None or err.seq == seq) and (extra is None or err.cmd == extra), (err, w)
        else:
            assert f.cmd == code | 0x80 and f.seq == seq, (f, w)
            if code == Cmd.PING:
                assert f.payload == extra
            elif isinstance(extra, int):
                assert len(f.payload) == extra
            if code == Cmd.INFER and reference is not None:
                reference(f)
                n_infer += 1
    return n_infer


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_host_firmware_answers_fuzzed_streams_exactly(seed, project, host_firmware):
    """ASan/UBSan host build of main.c + te_protocol.c (+ the model): every byte stream gets exactly the
    frames the Python model of the parser predicts, all well formed; no sanitizer report, no hang."""
    from tinyengine.numerics.reference import run_graph

    info = _run_host(host_firmware, encode_frame(Cmd.INFO, b"", 1))
    dev = DeviceInfo.parse(decode_all(info)[0][0].payload)
    low = project.lowering
    assert dev.model_hash == model_hash(low) and dev.timer == TimerKind.HOST
    rng = np.random.default_rng(seed)
    stream, infers = _fuzz_stream(rng, dev.input_bytes, dev.max_payload, 120)
    want = _predict(stream, dev.max_payload, dev.input_bytes, dev.num_layers)
    inputs = dict(infers)
    g = project.lowering.graph

    def reference(f):
        x = np.frombuffer(inputs[f.seq], np.int8).reshape(dev.input_shape)
        y = np.asarray(run_graph(g, x)[g.outputs[0]], np.int8).tobytes()
        assert f.payload[8:] == y, "host INFER output differs from the reference"

    got = _run_host(host_firmware, stream)
    # an INFER answered correctly is checked against run_graph when its seq is unambiguous
    seqs = [s for s, _ in infers]
    unique = {s for s in seqs if seqs.count(s) == 1}
    checked = _check_answers(got, want, lambda f: reference(f) if f.seq in unique else None)
    assert len(want) > 60 and checked >= 1


def test_host_firmware_pure_noise_and_half_frames(host_firmware):
    rng = np.random.default_rng(99)
    noise = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    got = _run_host(host_firmware, noise)
    events, left = decode_all(got)
    assert left == 0 and all(isinstance(e, Frame) and e.cmd == Cmd.ERROR for e in events)
    for cut in (1, 2, 11, 12, 13, 20):
        f = encode_frame(Cmd.PING, b"0123456789", 5)[:cut]
        events, _ = decode_all(_run_host(host_firmware, f))
        assert [e.error().code for e in events] == [ErrorCode.TIMEOUT]


# --------------------------------------------------------------------------- (c) QEMU end to end
@pytest.fixture(scope="module")
def qemu_probe(project, tmp_path_factory):
    from tinyengine.deploy.firmware_build import build_qemu_firmware
    from tinyengine.deploy.qemu import qemu_serial

    _need("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    _need("qemu-system-arm", "qemu-system-arm")
    elf = tmp_path_factory.mktemp("qemu_fw") / "probe.elf"
    build = build_qemu_firmware(project.root, "qemu-m4", elf)
    with qemu_serial(build.elf, "mps2-an386") as session:
        with ProbeClient.open(session.url, timeout=10) as client:
            yield client, session, build


def test_qemu_info_infer_bench_profile(project, qemu_probe):
    client, session, build = qemu_probe
    low = project.lowering
    proj = project
    t0 = time.monotonic()
    client.ping(b"hello")
    ping_rt = time.monotonic() - t0
    info = client.info()
    assert (info.board, info.core, info.model) == ("qemu-m4", "cortex-m4", low.name)
    assert info.timer == TimerKind.SYSTICK and info.timer_hz == 25_000_000  # DWT reads 0 in QEMU: fallback
    assert info.frame_timeout_ms == 25 and info.max_payload >= info.input_bytes + 4
    assert info.model_hash == model_hash(low) and info.arena_bytes == low.arena_bytes
    assert info.input_shape == tuple(proj.reference_input.shape) and info.input_bytes == proj.reference_input.size
    assert info.output_bytes == proj.reference_output.size and info.num_layers == len(low.ops)
    assert info.macs == low.macs and info.weight_bytes == low.weight_bytes and info.model_status == 0 and info.dsp
    g = project.lowering.graph
    tin, tout = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    assert info.input_zero_point == tin.zero_point and info.output_zero_point == tout.zero_point
    assert np.float32(info.input_scale) == np.float32(tin.scale)

    t0 = time.monotonic()
    out, ticks = client.infer(proj.reference_input.astype(np.int8).tobytes())
    infer_rt = time.monotonic() - t0
    assert out == proj.reference_output.astype(np.int8).tobytes(), "QEMU INFER differs from the reference"
    assert ticks > 0
    runs = client.bench(5)
    assert len(runs) == 5 and min(runs) > 0 and max(runs) - min(runs) <= 2 + max(runs) // 1000
    assert info.rx_in_arena  # the default: requests land in the arena, no input-sized buffer
    with pytest.raises(DeviceError, match="BAD_ARG"):  # so BENCH refuses an input (runs would clobber it)
        client.bench(2, proj.reference_input.astype(np.int8).tobytes())
    assert abs(runs[0] - ticks) <= 2 + ticks // 50  # zero-point input: the same instructions, +-2%
    prof = client.profile()
    assert len(prof.layers) == len(low.ops) and [la.name for la in prof.layers] == [o.name for o in low.ops]
    assert all(t > 0 for t in prof.ticks[:1]) and sum(prof.ticks) <= prof.total_ticks
    assert sum(prof.ticks) >= 0.9 * prof.total_ticks
    print(f"\n{low.name}: {low.macs} MACs, {ticks} ticks = {ticks_to_instructions(ticks):.0f} instructions per "
          f"inference (icount shift=0); PING round trip {ping_rt * 1e3:.2f} ms, INFER ({info.input_bytes} B in) "
          f"{infer_rt * 1e3:.0f} ms; profile sum {sum(prof.ticks)} / total {prof.total_ticks} ticks")


def test_qemu_bad_requests_get_error_frames(project, qemu_probe):
    client, _, _ = qemu_probe
    with pytest.raises(DeviceError) as e:
        client.request(Cmd.INFER, b"\x00" * 5)
    assert e.value.error.code == ErrorCode.BAD_LENGTH and e.value.error.detail == client.info().input_bytes
    assert "INFER" in str(e.value) and "socket://" in str(e.value)
    with pytest.raises(DeviceError) as e:
        client.request(0x42, b"")
    assert e.value.error.code == ErrorCode.UNKNOWN_CMD
    with pytest.raises(DeviceError) as e:
        client.bench(0)
    assert e.value.error.code == ErrorCode.BAD_ARG
    with pytest.raises(ProbeError, match="input is 3 bytes"):
        client.infer(b"abc")


def test_qemu_garbage_gets_only_error_frames_and_firmware_still_answers(project, qemu_probe):
    client, session, _ = qemu_probe
    rng = np.random.default_rng(5)
    info = client.info()
    junk = bytearray(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    for i in rng.integers(0, len(junk) - 2, 20):
        junk[i:i + 2] = MAGIC
    bad_crc = bytearray(encode_frame(Cmd.PING, b"x" * 20, 3))
    bad_crc[15] ^= 0x40
    head = struct.pack("<2sBBBBI", MAGIC, VERSION, Cmd.INFER, 4, 0, 0xFFFFFFF0)
    oversize = head + struct.pack("<H", header_check(head))
    half = encode_frame(Cmd.PING, b"y" * 30, 6)[:20]
    client.send_raw(bytes(junk) + bytes(bad_crc) + oversize + encode_frame(0x55, b"", 8) + half)
    events = client.read_frames(1.5)  # > the 250 ms frame timeout (virtual time runs near real time)
    assert events and all(isinstance(e, Frame) and e.cmd == Cmd.ERROR for e in events), events
    codes = [e.error().code for e in events]
    assert {ErrorCode.CRC, ErrorCode.TOO_LONG, ErrorCode.UNKNOWN_CMD, ErrorCode.TIMEOUT} <= set(codes), codes
    assert codes[-1] == ErrorCode.TIMEOUT  # the half frame was dropped, not waited on forever
    assert client.ping(b"still here") > 0
    assert client.info(refresh=True).model_hash == info.model_hash
    assert session.alive()


@pytest.mark.parametrize("seed", [10, 11])
def test_qemu_firmware_answers_a_fuzzed_stream_exactly(seed, qemu_probe):
    """The same fuzzing as the ASan host build, against the Cortex-M4 firmware in QEMU: sent in one
    write, the stream gets exactly the predicted frames (the frame timeout never fires mid-stream)."""
    client, session, _ = qemu_probe
    info = client.info()
    rng = np.random.default_rng(seed)
    stream, _ = _fuzz_stream(rng, info.input_bytes, info.max_payload, 40)
    stream += encode_frame(Cmd.PING, b"end", 77)
    want = _predict(stream, info.max_payload, info.input_bytes, info.num_layers)  # ends in TIMEOUT if a
    assert len(want) >= 25                                                         # frame is left open
    client.send_raw(stream)
    got, end = [], time.monotonic() + 30
    while len(got) < len(want) and time.monotonic() < end:
        got += client.read_frames(0.1)
    events = got + client.read_frames(0.3 if len(got) >= len(want) else 1.0)
    raw = b"".join(encode_frame(e.cmd, e.payload, e.seq, e.flags) for e in events if isinstance(e, Frame))
    assert all(isinstance(e, Frame) for e in events), events
    _check_answers(raw, want)
    assert client.ping(b"alive") > 0 and session.alive()


def test_qemu_retries_after_a_request_damaged_on_the_line(qemu_probe):
    """A request corrupted on the line gets a CRC error frame; ProbeClient resends it transparently."""
    client, _, _ = qemu_probe

    class Flaky:
        def __init__(self, port):
            self.port, self.n = port, 0

        def write(self, data):
            self.n += 1
            if self.n == 1:
                data = data[:-1] + bytes([data[-1] ^ 1])
            return self.port.write(data)

        def __getattr__(self, k):
            return getattr(self.port, k)

    flaky = ProbeClient(Flaky(client.port), timeout=5, retries=2, name=client.name)
    assert flaky.ping(b"retry") > 0 and flaky.port.n == 2
