"""The C kernels (firmware/src) against the NumPy reference (tinyengine/kernels_ref.py), byte for byte.

* Host: random cases (seeded numpy) are packed into records (firmware/test/te_case.h), run by a C
  driver built in four variants -- strict warnings, AddressSanitizer + UBSan (every buffer malloc'ed
  with its exact size, scratch exactly as the memory planner reserves it), the DSP path with emulated
  intrinsics, and the DSP path under the sanitizers -- and compared with the reference.
* Cortex-M: the kernels compile warning-free for M4/M7 (DSP path) and M0+/M3 (portable path).
* QEMU: a batch of cases compiled into flash runs on emulated M4 (mps2-an386) and M7 (mps2-an500)
  firmware with the real SXTB16/SMLAD instructions, and on an M3 (mps2-an385) with the portable path;
  the firmware prints a CRC-32 per case (and the bytes of a failing one).

The helpers (case generators, record packing, builds, QEMU runs) are in tests/kernel_harness.py,
shared with benchmarks/kernel_instructions.py.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from kernel_harness import (
    ARM_CPUS,
    BOARDS,
    FW,
    G2,
    HOST_VARIANTS,
    INT32_MAX,
    INT32_MIN,
    KERNEL_SOURCES,
    OPS,
    OUT_SENTINEL,
    Case,
    K,
    _first_difference,
    add_case,
    add_case_raw,
    build_firmware,
    build_host_driver,
    dw_case,
    fc_case,
    im2col_case,
    multiply_by_quantized_multiplier,
    pack_all,
    parse_outputs,
    planned_scratch,
    pointwise_case,
    pool_case,
    pw_add_cases,
    quantize_multipliers,
    random_cases,
    requant_cases,
    require_arm_toolchain,
    require_tool,
    run,
    run_qemu,
    tflite_op_cases,
    winograd_bound_cases,
    winograd_case,
    winograd_weights,
    wrap_int32,
    write_cases_c,
)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("te_kernels")


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    rng = np.random.default_rng(99)
    return (random_cases() + winograd_bound_cases(rng) + tflite_op_cases(rng) + pointwise_tail_cases(rng)
            + add_fast_cases(rng) + pointwise_asm_cases(rng) + pointwise_rq_cases(rng) + pointwise_few_cases(rng)
            + pointwise_w16_cases(rng) + pw_add_cases(rng))


def add_fast_cases(rng) -> list[Case]:
    """ADD's fast paths at their limits: the half-scale input first or second, the other input's shift
    -1 and -19, output shifts -2 and -23 (folded zero point), and the split path (no half input)."""
    cs = []
    for am, ash, bm, bsh, osh in ((1 << 30, 0, 1518500250, -1, -2), (2147483647, -19, 1 << 30, 0, -23),
                                  (1 << 30, 0, 1 << 30, -1, -18), (1 << 30, 0, 1073741825, -7, -24),
                                  (1300000000, -1, 1700000000, -3, -17), (1 << 30, 0, 2000000000, 0, -12)):
        om = int(rng.integers(1 << 30, 1 << 31))
        for v in (0, 1, 2):
            cs.append(add_case_raw(rng, int(rng.integers(40, 300)), am, ash, bm, bsh, om, osh, v))
    cs += [add_tie_case(rng, a_half) for a_half in (True, False)]
    return cs


def add_tie_case(rng, a_half: bool) -> Case:
    """ADD whose output sees every unit of the scaled small input: the half-scale input sits at its zero
    point, and the other input's multiplier 3 * 2^29 with shift -19 puts every odd value on a rounding
    tie (ties of negative values round away from zero), output scale about 1/4."""
    n = 300
    h_zp, o_zp = (int(v) for v in rng.integers(-60, 60, size=2))
    half = np.full(n, h_zp, np.int8)
    other = rng.integers(-128, 128, size=n).astype(np.int8)
    m, sh, om, osh = 3 << 29, -19, (1 << 31) - 1, -2
    out_zp = int(rng.integers(-20, 20))
    so = ((other.astype(np.int64) - o_zp) << 20)
    sb = np.asarray(multiply_by_quantized_multiplier(so, m, sh), dtype=np.int64)
    raw = np.asarray(multiply_by_quantized_multiplier(wrap_int32(sb), om, osh), dtype=np.int64)
    y = np.clip(wrap_int32(raw + out_zp), -128, 127).astype(np.int8)
    a, b, a_zp, b_zp = (half, other, h_zp, o_zp) if a_half else (other, half, o_zp, h_zp)
    am, ash, bm, bsh = (1 << 30, 0, m, sh) if a_half else (m, sh, 1 << 30, 0)
    hdr = dict(variant=0, n=n, in_zp=a_zp, b_zp=b_zp, out_zp=out_zp, act_min=-128, act_max=127, a_mult=am,
               a_shift=ash, b_mult=bm, b_shift=bsh, out_mult=om, out_shift=osh, left_shift=20)
    return Case("add", f"add ties half={'a' if a_half else 'b'}", hdr, inp=a.tobytes(), inp2=b.tobytes(),
                expected=y.tobytes())


def pointwise_tail_cases(rng) -> list[Case]:
    """Pointwise tiles and tails: 1..3 and non-multiple-of-4 channels, odd pixel counts, both clamp kinds."""
    cs = []
    for n, ci, co in ((1, 1, 1), (3, 2, 3), (5, 3, 2), (7, 5, 7), (2, 6, 1), (9, 7, 5), (4, 8, 3), (11, 16, 9),
                      (6, 9, 4), (13, 1, 17)):
        cs.append(pointwise_case(rng, n, ci, co))
    return cs


def pointwise_asm_cases(rng) -> list[Case]:
    """Pointwise layers the assembly inner loop takes on M4/M7 (te_pointwise.c: full int8 clamp, in_c a
    multiple of 4 and >= 20): odd and even pixel and output-channel counts, 5 to 16 groups of four."""
    cs = []
    for n, ci, co in ((5, 20, 7), (4, 24, 6), (3, 32, 9), (7, 64, 3), (2, 44, 2), (1, 28, 5)):
        c = pointwise_case(rng, n, ci, co)
        while (c.hdr["act_min"], c.hdr["act_max"]) != (-128, 127):  # the asm variant needs the full clamp
            c = pointwise_case(rng, n, ci, co)
        cs.append(c)
    return cs


def pointwise_rq_case(rng, n: int, ci: int, co: int, extra_shift: int | None = None, wide_bias: bool = False) -> Case:
    """A full-clamp pointwise layer whose shifts are all in [-23, -2] (the folded requantisation of
    te_pointwise.c), both bounds included; extra_shift replaces one channel's shift (the fallback)."""
    eff = 2.0 ** rng.uniform(-23.99, -2.01, size=co)
    eff[0], eff[-1] = 0.75 * 2.0**-2, 0.99 * 2.0**-23  # shifts -2 and -23
    if extra_shift is not None:
        eff[co // 2] = 0.6 * 2.0**extra_shift
    mult, shift = (a.astype(np.int64) for a in quantize_multipliers(eff))
    assert shift[0] == -2 and shift[-1] == -23
    in_zp, out_zp = int(rng.integers(-128, 128)), int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    x = rng.integers(-128, 128, size=(n, 1, ci)).astype(np.int8)
    w = rng.integers(-128, 128, size=(co, 1, 1, ci)).astype(np.int8)
    span = (INT32_MIN, INT32_MAX + 1) if wide_bias else (-(1 << 20), 1 << 20)
    b = rng.integers(*span, size=co, dtype=np.int64)
    y = K.conv2d(x, in_zp, w, b, out_zp, mult, shift, 1, 0, -128, 127)
    hdr = {"in_c": ci, "out_c": co, "n": n, "in_h": n, "in_w": 1, "out_h": n, "out_w": 1, "k_h": 1, "k_w": 1,
           "stride_h": 1, "stride_w": 1, "in_zp": in_zp, "out_zp": out_zp, "act_min": -128, "act_max": 127,
           "scratch_len": planned_scratch("conv2d", (n, 1, ci), (1, 1), (1, 1), (0, 0, 0, 0))}
    return Case("pointwise", f"pointwise rq {n}px {ci}->{co} zp={in_zp},{out_zp} extra={extra_shift}", hdr, mult,
                shift, b, w.tobytes(), None, x.tobytes(), b"", y.tobytes(), macs=n * ci * co)


def pointwise_rq_cases(rng) -> list[Case]:
    """The folded path: one and several channel chunks (32), odd channels and pixels, the asm and C
    loops, int32-wide biases; and layers it must refuse (a shift of -24 or -1, in_c not a multiple of 4)."""
    shapes = ((5, 8, 7), (4, 16, 33), (3, 24, 70), (6, 64, 40), (2, 4, 2), (7, 12, 65), (1, 20, 3), (5, 80, 31), (3, 68, 34))
    cs = [pointwise_rq_case(rng, n, ci, co, wide_bias=i % 3 == 2) for i, (n, ci, co) in enumerate(shapes)]
    cs += [pointwise_rq_case(rng, 4, 16, 9, extra_shift=-24), pointwise_rq_case(rng, 3, 24, 40, extra_shift=-1),
           pointwise_rq_case(rng, 5, 6, 5)]
    return cs


def pointwise_few_cases(rng) -> list[Case]:
    """The few-input-channel path (te_pointwise.c, in_c 8 with out_c even, in_c 16): one and several table
    chunks (24 and 16 channels), out_c 8 and 2, odd pixel counts, int32-wide biases, shifts -2 and -23;
    and layers it must refuse: out_c odd with in_c 8, a shift of -24 or -1, a clamp inside int8."""
    shapes = ((7, 8, 24), (3, 8, 50), (1, 8, 2), (4, 8, 48), (9, 16, 8), (5, 16, 80), (2, 16, 2), (3, 16, 33),
              (11, 8, 8), (1, 16, 17))
    cs = [pointwise_rq_case(rng, n, ci, co, wide_bias=i % 2 == 1) for i, (n, ci, co) in enumerate(shapes)]
    cs += [pointwise_rq_case(rng, 5, 8, 9), pointwise_rq_case(rng, 3, 8, 10, extra_shift=-24),
           pointwise_rq_case(rng, 4, 16, 8, extra_shift=-1)]
    for n, ci, co in ((5, 8, 16), (3, 16, 8)):
        c = pointwise_case(rng, n, ci, co)
        while (c.hdr["act_min"], c.hdr["act_max"]) == (-128, 127):
            c = pointwise_case(rng, n, ci, co)
        cs.append(c)
    return cs


def w16_words(w: np.ndarray) -> bytes:
    """te_conv_pointwise_w16_s8's weight words (tinyengine.h), written out one by one: per output channel
    pair and group of four input channels (a0|a2<<16, a1|a3<<16, b0|b2<<16, b1|b3<<16), an odd last
    channel (a0|a2<<16, a1|a3<<16)."""
    rows = np.asarray(w).reshape(w.shape[0], -1).astype(np.int64)
    co, ci = rows.shape
    words = []

    def pair(r, k, hi):
        return (int(r[k]) & 0xFFFF) | ((int(r[k + hi]) & 0xFFFF) << 16)

    for o in range(0, co, 2):
        for g in range(ci // 4):
            for r in ([rows[o], rows[o + 1]] if o + 1 < co else [rows[o]]):
                words += [pair(r, 4 * g, 2), pair(r, 4 * g + 1, 2)]
    return np.asarray(words, dtype="<u4").tobytes()


def pointwise_w16_cases(rng) -> list[Case]:
    """te_conv_pointwise_w16_s8 (int16 weights in flash): the folded path with one and several 32-channel
    chunks, constants per pair (in_c > 64 and out_c > 32), odd channels and pixels, in_c 4 to 480, wide
    biases; the plain path (shift -24 or -1, a clamp inside int8, no bias); in_c not a multiple of 4
    refused (rc -1, output untouched)."""
    cs = []
    shapes = ((5, 20, 7), (4, 24, 6), (3, 48, 40), (3, 96, 70), (1, 4, 3), (6, 8, 2), (7, 16, 33), (2, 480, 9))
    for i, (n, ci, co) in enumerate(shapes):
        cs.append(pointwise_rq_case(rng, n, ci, co, wide_bias=i % 2 == 1))
    cs += [pointwise_rq_case(rng, 4, 28, 9, extra_shift=-24), pointwise_rq_case(rng, 3, 24, 40, extra_shift=-1)]
    for n, ci, co in ((5, 12, 16), (3, 32, 5)):
        c = pointwise_case(rng, n, ci, co)
        while (c.hdr["act_min"], c.hdr["act_max"]) == (-128, 127):
            c = pointwise_case(rng, n, ci, co)
        cs.append(c)
    c = pointwise_case(rng, 4, 8, 6)
    c.bias = None
    c.expected = K.conv2d(np.frombuffer(c.inp, np.int8).reshape(4, 1, 8), c.hdr["in_zp"],
                          np.frombuffer(c.w, np.int8).reshape(6, 1, 1, 8), None, c.hdr["out_zp"], c.mult, c.shift, 1,
                          0, c.hdr["act_min"], c.hdr["act_max"]).tobytes()
    cs.append(c)
    out = []
    for c in cs:
        co, ci = c.hdr["out_c"], c.hdr["in_c"]
        w = np.frombuffer(c.w, np.int8).reshape(co, ci)
        out.append(Case("pointwise_w16", c.desc.replace("pointwise", "pointwise w16"), c.hdr, c.mult, c.shift,
                        c.bias, w16_words(w), None, c.inp, b"", c.expected, macs=c.macs))
    bad = pointwise_case(rng, 3, 6, 4)
    out.append(Case("pointwise_w16", "pointwise w16 in_c 6 refused", bad.hdr, bad.mult, bad.shift, bad.bias,
                    b"\0" * 24, None, bad.inp, b"", bytes([OUT_SENTINEL]) * len(bad.expected), -1))
    return out


@pytest.fixture(scope="module")
def host_results(build_dir, cases) -> dict[str, dict[int, tuple[int, bytes]]]:
    """Build the four host variants in parallel and run the whole batch through each."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc not found: install the Debian package 'gcc'")
    blob_path = build_dir / "cases.bin"
    blob_path.write_bytes(pack_all(cases))

    def one(name: str):
        exe = build_host_driver(build_dir / f"driver-{name}", HOST_VARIANTS[name])
        out = build_dir / f"out-{name}.bin"
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        run([exe, blob_path, out], env=env, timeout=300)
        return name, parse_outputs(out.read_bytes())

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        return dict(ex.map(one, HOST_VARIANTS))


# ----------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("variant", list(HOST_VARIANTS))
def test_host_kernels_match_reference(host_results, cases, variant):
    res = host_results[variant]
    assert len(res) == len(cases)
    failures = []
    for i, c in enumerate(cases):
        rc, got = res[i]
        if rc != c.expect_rc or got != c.expected:
            failures.append(f"case {i} {c.desc}: rc {rc} (expected {c.expect_rc}); "
                            + ("" if got == c.expected else _first_difference(got, c.expected)))
    assert not failures, f"{len(failures)} of {len(cases)} cases differ ({variant}):\n" + "\n".join(failures[:20])


def test_case_mix_covers_every_kernel(cases):
    ops = {c.op for c in cases}
    assert ops == set(OPS), f"missing ops: {set(OPS) - ops}"
    dw = [c for c in cases if c.op.startswith("dw")]
    kinds = {(c.hdr["k_h"], c.hdr["stride_h"], c.op) for c in dw}
    for k in (3, 5, 7):
        for s in (1, 2):
            for op in ("dw", "dw_inplace"):
                assert (k, s, op) in kinds, f"no {op} case with k={k} stride={s}"
    assert any(c.op == "winograd" and c.expect_rc == -1 for c in cases)
    assert any(c.op == "pointwise" and c.hdr["in_c"] % 4 and c.hdr["n"] % 2 and c.hdr["out_c"] % 2 for c in cases)


def test_winograd_transform_is_exact():
    """A^T [U . V] A / 4 equals the direct 3x3 correlation for every 4x4 tile (the integer identity)."""
    rng = np.random.default_rng(5)
    bt = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
    at = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
    for _ in range(200):
        d = rng.integers(-255, 256, size=(4, 4))
        g = rng.integers(-128, 128, size=(3, 3))
        u = G2 @ g @ G2.T
        y4 = at @ (u * (bt @ d @ bt.T)) @ at.T
        direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)])
        assert np.array_equal(y4, 4 * direct)
        assert np.abs(u).max() <= 1152 and np.abs(bt @ d @ bt.T).max() <= 1020


def test_winograd_weights_match_codegen():
    wg = pytest.importorskip("codegen.winograd")
    w = np.random.default_rng(3).integers(-128, 128, size=(5, 3, 3, 7)).astype(np.int8)
    assert np.array_equal(wg.transform_weights(w), winograd_weights(w))


def test_arm_compile_only(build_dir):
    """-Werror builds for M4/M7 (DSP path, real intrinsics) and M3/M0+ (portable path)."""
    require_arm_toolchain()

    def one(cpu: str):
        out = build_dir / f"arm-{cpu}"
        out.mkdir(exist_ok=True)
        for src in KERNEL_SOURCES:
            run(["arm-none-eabi-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-O2", "-mthumb",
                 *ARM_CPUS[cpu], f"-I{FW / 'include'}", "-c", src, "-o", out / (src.stem + ".o")])
        syms = run(["arm-none-eabi-objdump", "-d", *sorted(out.glob("*.o"))]).stdout
        return cpu, "smlad" in syms

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        has_smlad = dict(ex.map(one, ARM_CPUS))
    assert has_smlad["cortex-m4"] and has_smlad["cortex-m7"], "DSP path not selected for M4/M7"
    assert not has_smlad["cortex-m3"] and not has_smlad["cortex-m0plus"], "DSP instructions in a portable build"


def test_pointwise_asm_loop_is_built_for_dsp_cores(build_dir):
    """M4/M7 builds carry the assembly tile loop (LDRD with post-increment) and its dispatch; M3 none."""
    require_arm_toolchain()
    src = FW / "src" / "te_pointwise.c"
    for cpu, want in (("cortex-m4", True), ("cortex-m7", True), ("cortex-m3", False)):
        obj = build_dir / f"pw-asm-{cpu}.o"
        run(["arm-none-eabi-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wconversion", "-O2", "-mthumb",
             *ARM_CPUS[cpu], f"-I{FW / 'include'}", "-c", src, "-o", obj])
        dis = run(["arm-none-eabi-objdump", "-d", obj]).stdout
        has = "<pw_pairs_full_asm>:" in dis and "], #8" in dis and "ldrd" in dis
        assert has == want, f"{cpu}: assembly pointwise loop {'missing' if want else 'present'}"


def qemu_cases(seed: int = 7) -> list[Case]:
    """A smaller batch for the emulated boards (fits 1 MB flash / 256 KB test arena)."""
    rng = np.random.default_rng(seed)
    cs = requant_cases(rng, 300)
    for _ in range(12):
        cs.append(pointwise_case(rng, int(rng.integers(1, 20)), int(rng.integers(1, 50)), int(rng.integers(1, 20))))
    cs.append(pointwise_case(rng, 25, 48, 16))
    cs += pointwise_tail_cases(rng)[::2] + add_fast_cases(rng)[::3] + pointwise_asm_cases(rng)
    cs += pointwise_rq_cases(rng) + pointwise_few_cases(rng) + pointwise_w16_cases(rng)
    cs += pw_add_cases(rng)
    cs.append(im2col_case(rng, 16, 16, 3, 16, (3, 3), (2, 2), K.same_padding((16, 16), (3, 3), (2, 2))))
    for _ in range(8):
        k = (int(rng.choice([1, 3, 5])),) * 2
        s = (int(rng.integers(1, 3)),) * 2
        h, w_ = int(rng.integers(3, 10)), int(rng.integers(3, 10))
        p = K.same_padding((h, w_), k, s)
        cs.append(im2col_case(rng, h, w_, int(rng.integers(1, 12)), int(rng.integers(1, 12)), k, s, p))
    for v in (0, 1, 0):
        cs.append(winograd_case(rng, int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(1, 20)),
                                int(rng.integers(1, 9)), (1, 1, 1, 1), v))
    for k in (3, 5, 7):
        for s in (1, 2):
            for inplace in (True, False):
                h, w_ = int(rng.integers(5, 15)), int(rng.integers(5, 15))
                cs.append(dw_case(rng, h, w_, int(rng.integers(1, 20)), (k, k), (s, s),
                                  K.same_padding((h, w_), (k, k), (s, s)), inplace))
    for v in (0, 1, 2):
        cs.append(add_case(rng, int(rng.integers(1, 200)), v))
    cs.append(add_case_raw(rng, 50, 1 << 30, 0, 1518500250, -1, 1288490189, -1))
    # Winograd at the overflow bound with worst-case data (U given; 234 KB of flash) and one over it
    cs += [c for c in winograd_bound_cases(rng) if c.hdr["variant"] == 0]
    cs.append(pool_case(rng, 5, 5, 24, (5, 5), (1, 1), (0, 0, 0, 0)))
    cs.append(pool_case(rng, 7, 6, 5, (3, 3), (2, 2), (1, 1, 1, 1)))
    for _ in range(3):
        cs.append(fc_case(rng, int(rng.integers(1, 200)), int(rng.integers(1, 20))))
    cs += tflite_op_cases(rng, 1)[::4]
    return cs


@pytest.mark.parametrize("board", list(BOARDS))
def test_qemu_kernels_match_reference(build_dir, board):
    """Emulated M4/M7 (DSP path: SXTB16/SMLAD on the real ISA) and M3 (portable path) vs the reference."""
    require_arm_toolchain()
    require_tool("qemu-system-arm", "qemu-system-arm")
    cs = qemu_cases()
    cases_c = build_dir / "qemu_cases.c"
    if not cases_c.exists():
        write_cases_c(pack_all(cs), cases_c)
    elf = build_firmware(board, cases_c, build_dir / f"fw-{board}.elf")
    r = run_qemu(board, elf, shift=0)
    assert r.done == (len(cs), 0) and r.returncode == 0, (
        f"{board}: exit {r.returncode}, DONE {r.done}\n" + r.output[-3000:])
    for i, c in enumerate(cs):
        line = r.lines[i]
        assert line["ok"] and line["crc"] == zlib.crc32(c.expected) and line["rc"] == c.expect_rc, (
            f"{board} case {i} {c.desc}: {line}")
