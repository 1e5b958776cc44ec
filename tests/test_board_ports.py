"""Board ports (firmware/ports): the STM32F4 layer end to end on QEMU's netduinoplus2 (gen -> PlatformIO
build -> QEMU -> probe over the real USART code, outputs equal to the NumPy reference); the register
sequence of every port (F4, F7, H7, nRF52840) on the host against a simulated register block; every
real board linked offline with -Werror at its true memory map; a flashable ELF + BIN for the F746."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from small_models import small_arch as shared_small_arch

from boards import load_board
from tinyengine.deploy.board_port import board_macro

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
REAL_BOARDS = ["stm32f412", "stm32f746g-disco", "nucleo-f767zi", "nucleo-h743zi", "nrf52840"]


def _need(tool: str, pkg: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"'{tool}' not found: install the Debian package '{pkg}'")


@pytest.fixture(scope="module", autouse=True)
def _private_core(private_pio_core):
    """Every test here builds in a fresh PlatformIO core (conftest)."""


def small_arch():
    return shared_small_arch("ports13")


@pytest.fixture(scope="module")
def arch_json(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("ports") / "ports13.json"
    p.write_text(small_arch().to_json())
    return p


@pytest.fixture(scope="module")
def nd2(arch_json) -> Path:
    from tinyml_cli.gen import generate
    root = arch_json.parent / "nd2"
    generate(str(arch_json), "netduinoplus2", root, seed=13, calib=4)
    return root


# --------------------------------------------------------------------------- QEMU netduinoplus2
def test_netduinoplus2_end_to_end_on_the_stm32f4_layer(nd2, tmp_path, tinyengine_cli):
    _need("qemu-system-arm", "qemu-system-arm")
    js = tmp_path / "rec.json"
    rc, out, err = tinyengine_cli(["emulate", str(nd2), "--runs", "2", "--json", str(js)])
    assert rc == 0, out + err
    rec = json.loads(js.read_text())
    assert rec["checks"] == {"model_hash": True, "arena_bytes": True, "output_equals_reference": True}
    assert rec["board"] == "netduinoplus2" and rec["emulated"] and rec["unit"] == "instructions"
    # the F4 layer ran: QEMU's RCC reads 0, so its bounded waits expired, were reported, and the core
    # stayed on HSI 16 MHz (the USART divisor for it, 139, is what QEMU's USART1 got)
    assert rec["board_status"].startswith("16000000 Hz HSI (PLL not locked)"), rec["board_status"]
    assert "timed out: HSERDY,PLLRDY" in rec["board_status"]
    assert rec["clock_hz"] == 16_000_000
    macs = rec["macs"]
    assert 2.0 * macs < rec["latency"]["median"] < 10.0 * macs  # QEMU's 168 MHz SysTick -> instructions
    ini = (nd2 / "platformio.ini").read_text()
    assert "-DTE_PORT_BOARD_NETDUINOPLUS2" in ini and "-<board/qemu/uart.c>" in ini
    ld = (nd2 / "ld" / "netduinoplus2.ld").read_text()
    assert "ORIGIN = 0x08000000, LENGTH = 1048576" in ld and "ORIGIN = 0x20000000, LENGTH = 131072" in ld
    # the ELF holds the STM32F4 layer, not the MPS2 UART
    elf = nd2 / ".pio" / "build" / "netduinoplus2" / "firmware.elf"
    syms = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    assert " T te_port_status" in syms and " T board_init" in syms and "cmsdk" not in syms.lower()


# --------------------------------------------------------------------------- register sequences
SIM = FW / "ports" / "test" / "sim_regs.c"
SIM_POLLS = 1000  # each bounded wait polls this often before it gives up
# board: (USART base, status/data offsets (rd, wr), CR1 offset, final CR1, BRR at full speed, BRR at reset,
#         full clock, reset clock, USART clock enable (reg, bit), [(GPIO base, pin)], AF)
STM32 = {
    "netduinoplus2": (0x40011000, (0x00, 0x04, 0x04), 0x0C, 0x200C, 729, 139, 168_000_000, 16_000_000,
                      (0x40023844, 4), [(0x40020000, 9), (0x40020000, 10)], 0x40023830),
    "stm32f412": (0x40004800, (0x00, 0x04, 0x04), 0x0C, 0x200C, 434, 139, 100_000_000, 16_000_000,
                  (0x40023840, 18), [(0x40020C00, 8), (0x40020C00, 9)], 0x40023830),
    "stm32f746g-disco": (0x40011000, (0x1C, 0x24, 0x28), 0x00, 0x0D, 938, 139, 216_000_000, 16_000_000,
                         (0x40023844, 4), [(0x40020000, 9), (0x40020400, 7)], 0x40023830),
    "nucleo-f767zi": (0x40004800, (0x1C, 0x24, 0x28), 0x00, 0x0D, 469, 139, 216_000_000, 16_000_000,
                      (0x40023840, 18), [(0x40020C00, 8), (0x40020C00, 9)], 0x40023830),
    "nucleo-h743zi": (0x40004800, (0x1C, 0x24, 0x28), 0x00, 0x0D, 868, 556, 400_000_000, 64_000_000,
                      (0x580244E8, 18), [(0x58020C00, 8), (0x58020C00, 9)], 0x580244E0),
}
BRR_OFF = {0x00: 0x0C, 0x0C: 0x08}  # F7/H7 layout (CR1 at 0): BRR +0x0C; F4 (CR1 at +0x0C): BRR +0x08


def run_sim(board_name: str, tmp_path: Path, dead: bool = False) -> tuple[list[tuple[str, int, int]], dict]:
    _need("gcc", "gcc")
    board = load_board(board_name)
    fam = board.port.family
    srcs = [SIM, FW / "ports" / "common" / "te_port.c", FW / "ports" / fam / f"board_{fam}.c", FW / "app" / "te_timing.c"]
    if fam in ("stm32f7", "stm32h7"):
        srcs.append(FW / "ports" / "common" / "cortexm7_cache.c")
    exe = tmp_path / f"sim_{fam}"
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-DTE_MMIO_SIM", "-DTE_TIMING_HOST",
           f"-DTE_PORT_WAIT_POLLS={SIM_POLLS}u",
           f"-D{board_macro(board)}", f"-DTE_PORT_{fam.upper()}", f"-I{FW / 'app'}", f"-I{FW / 'ports' / 'common'}",
           f"-I{FW / 'ports' / fam}", *map(str, srcs), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(exe)] + (["dead"] if dead else []), capture_output=True, text=True, check=True).stdout
    log, info = [], {}
    for line in out.splitlines():
        parts = line.split(" ", 1)
        if parts[0] in ("R", "W"):
            a, v = parts[1].split()
            log.append((parts[0], int(a, 16), int(v, 16)))
        else:
            log.append((parts[0], -1, -1))
            info[parts[0]] = parts[1] if len(parts) > 1 else ""
    return log, info


def _first(log, op, addr, pred=lambda v: True) -> int:
    return next(i for i, (o, a, v) in enumerate(log) if o == op and a == addr and pred(v))


def _last_write(log, addr) -> int:
    return [v for o, a, v in log if o == "W" and a == addr][-1]


@pytest.mark.parametrize("name", sorted(STM32))
def test_stm32_register_sequence(name, tmp_path):
    base, (st, rd, wr), cr1, cr1_final, brr_full, brr_reset, f_full, f_reset, (en_reg, en_bit), pins, gpio_en = STM32[name]
    log, info = run_sim(name, tmp_path)
    assert int(info["CLOCK"]) == f_full and "all ready waits ok" in info["STATUS"]
    # clock enables come before the peripheral is touched
    first_usart = _first(log, "W", base + cr1)
    assert _first(log, "W", en_reg, lambda v: v >> en_bit & 1) < first_usart
    for gpio, pin in pins:
        port_bit = (gpio & 0x3C00) >> 10
        assert _first(log, "W", gpio_en, lambda v: v >> port_bit & 1) < _first(log, "W", gpio)
        assert _last_write(log, gpio) >> (2 * pin) & 3 == 2                       # MODER: alternate function
        afr = gpio + 0x20 + 4 * (pin // 8)
        assert _last_write(log, afr) >> (4 * (pin % 8)) & 0xF == 7                 # AF7
    # baud divisor for the APB clock reached, then UE|TE|RE
    assert _last_write(log, base + BRR_OFF[cr1]) == brr_full
    assert _last_write(log, base + cr1) == cr1_final
    # polled transmit: every data write follows a status read with TXE set
    idx = [i for i, (o, a, _) in enumerate(log) if o == "W" and a == base + wr]
    assert bytes(log[i][2] for i in idx) == b"hello"
    for i in idx:
        o, a, v = log[i - 1]
        assert (o, a) == ("R", base + st) and v >> 7 & 1
    assert info["GOT"] == "111 107 -1 -1"  # 'o', 'k' on RXNE, then nothing
    # flash wait states are set (and read back) before the switch to the PLL
    acr = 0x52002000 if name == "nucleo-h743zi" else 0x40023C00
    cfgr = 0x58024410 if name == "nucleo-h743zi" else 0x40023808
    sw = 3 if name == "nucleo-h743zi" else 2
    i_acr = _first(log, "W", acr)
    assert i_acr < _first(log, "R", acr) < _first(log, "W", cfgr, lambda v: v & 7 == sw)
    if "f7" in name or "f746" in name:  # over-drive on before the switch (216 MHz)
        assert _first(log, "W", 0x40007000, lambda v: v >> 17 & 1) < _first(log, "W", cfgr, lambda v: v & 3 == 2)
        assert _last_write(log, acr) & 0xF == 7
    if name in ("stm32f746g-disco", "nucleo-f767zi", "nucleo-h743zi"):  # Cortex-M7: I- and D-cache on
        assert _last_write(log, 0xE000ED14) & (3 << 16) == 3 << 16
        assert sum(1 for o, a, _ in log if o == "W" and a == 0xE000EF60) == 128 * 4  # D-cache invalidated by set/way
    # a second board_init() touches nothing
    k = next(i for i, e in enumerate(log) if e[0] == "INIT2")
    assert log[k + 1][0] == "WRITE"

    # QEMU-like: RCC/PWR/FLASH read 0 -> bounded waits expire, reported; the USART runs at the reset clock
    log, info = run_sim(name, tmp_path, dead=True)
    assert int(info["CLOCK"]) == f_reset and "timed out:" in info["STATUS"]
    if name != "nucleo-h743zi":  # HSERDY and PLLRDY each gave up after exactly SIM_POLLS reads of RCC_CR
        assert "HSERDY,PLLRDY" in info["STATUS"]
        rcc_cr = 0x40023800
        reads = sum(1 for o, a, _ in log if o == "R" and a == rcc_cr)
        assert 2 * SIM_POLLS <= reads <= 2 * SIM_POLLS + 8
    assert _last_write(log, base + BRR_OFF[cr1]) == brr_reset
    assert info["GOT"] == "111 107 -1 -1"


def test_nrf52840_register_sequence(tmp_path):
    log, info = run_sim("nrf52840", tmp_path)
    assert int(info["CLOCK"]) == 64_000_000 and "HFXO" in info["STATUS"] and "all ready waits ok" in info["STATUS"]
    u = 0x40002000
    assert _first(log, "W", 0x40000000, lambda v: v == 1) < _first(log, "W", u + 0x500, lambda v: v == 8)
    assert _last_write(log, u + 0x524) == 0x01D60000           # 115200
    assert (_last_write(log, u + 0x50C), _last_write(log, u + 0x514)) == (6, 8)  # P0.06 TX, P0.08 RX
    assert _last_write(log, 0x50000700 + 4 * 8) == 0x0C         # RX input, pull-up
    assert _last_write(log, u + 0x538) == 1                     # RX one byte at a time into RAM
    # EasyDMA: TX goes from the driver's RAM buffer, never from the caller's .rodata pointer
    tx_ptr, tx_bytes = info["TX"].split()
    assert bytes.fromhex(tx_bytes) == b"hello" and tx_ptr != info["CALLER"]
    assert info["GOT"] == "111 107 -1 -1"
    _, info = run_sim("nrf52840", tmp_path, dead=True)
    assert "HFINT (HFXO did not start)" in info["STATUS"] and "timed out: HFCLKSTARTED" in info["STATUS"]


# --------------------------------------------------------------------------- real parts, offline
@pytest.fixture(scope="module")
def generic_project(arch_json) -> Path:
    from tinyml_cli.gen import generate
    root = arch_json.parent / "generic"
    generate(str(arch_json), "stm32f746g-disco", root, seed=13, calib=4)
    return root


@pytest.mark.parametrize("name", REAL_BOARDS)
def test_every_real_board_links_with_werror_at_its_memory_map(name, generic_project, tmp_path):
    _need("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    from tinyengine.deploy.firmware_build import build_qemu_firmware
    from tinyengine.deploy.flags import LANG_WARN
    assert "-Werror" in LANG_WARN
    board = load_board(name)
    b = build_qemu_firmware(generic_project, board, tmp_path / f"{name}.elf")
    hdr = subprocess.run(["arm-none-eabi-readelf", "-lW", str(b.elf)], capture_output=True, text=True, check=True).stdout
    loads = [(int(m.group(1), 16), int(m.group(2), 16)) for m in re.finditer(r"LOAD\s+\S+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)", hdr)]
    assert loads[0][0] == board.port.flash_origin                                 # code + vectors in flash
    assert any(v == board.port.sram_origin and p >= board.port.flash_origin for v, p in loads[1:])  # .data from flash
    # the vector table: initial SP inside the part's SRAM, reset handler inside its flash (Thumb bit)
    binf = tmp_path / "fw.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(b.elf), str(binf)], check=True)
    sp, reset = np.frombuffer(binf.read_bytes()[:8], "<u4")
    assert board.port.sram_origin < sp <= board.port.sram_origin + board.sram_bytes
    assert board.port.flash_origin < reset < board.port.flash_origin + board.flash_bytes and reset & 1
    assert binf.stat().st_size <= board.flash_bytes


def test_build_for_the_real_f746_gives_a_flashable_elf_and_bin(generic_project, tinyengine_cli):
    rc, out, err = tinyengine_cli(["build", str(generic_project)])
    assert rc == 0, out + err
    d = generic_project / ".pio" / "build" / "stm32f746g_disco_offline"
    elf, binf = d / "firmware.elf", d / "firmware.bin"
    assert elf.is_file() and binf.is_file()
    assert "1,048,576 B" in out and "327,680 B" in out and "stm32f746ngh6" in out
    man = json.loads((generic_project / "boards" / "te_stm32f746g_disco_part.json").read_text())
    assert man["build"]["mcu"] == "stm32f746ngh6" and man["build"]["f_cpu"] == "216000000L"
    syms = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    assert " T cortexm7_caches_on" in syms  # the F7 layer, not the MPS2 stand-in's UART
    sp, reset = np.frombuffer(binf.read_bytes()[:8], "<u4")
    assert 0x20000000 < sp <= 0x20000000 + 327680 and 0x08000000 < reset < 0x08100000


# --------------------------------------------------------------------------- flash
def test_flash_without_tool_or_board_is_one_clear_line(generic_project, tmp_path, monkeypatch, tinyengine_cli):
    from tinyengine.deploy.flash import pick_tool
    from tinyml_errors import DeployError
    empty = tmp_path / "empty"
    empty.mkdir()
    with monkeypatch.context() as m:
        m.setenv("PATH", str(empty))
        with pytest.raises(DeployError, match="install OpenOCD .*'openocd'.* or pyOCD"):
            pick_tool("auto")
    # OpenOCD present, no board attached: what it prints then
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "openocd").write_text("#!/bin/sh\necho 'Error: open failed' >&2\nexit 1\n")
    (fake / "openocd").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    rc, out, err = tinyengine_cli(["flash", str(generic_project), "--tool", "openocd"])
    assert rc == 1 and "no STM32F746G Discovery kit (STM32F746NG) found by openocd" in out, out + err
    assert "Traceback" not in out + err
    (fake / "openocd").write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\nexit 0\n")
    rc, out, err = tinyengine_cli(["flash", str(generic_project), "--tool", "openocd"])
    assert rc == 0, out + err
    args = (fake / "args").read_text()
    assert "-f interface/stlink.cfg -f target/stm32f7x.cfg -c program" in args and "stm32f746g_disco_offline" in args


# --------------------------------------------------------------------------- probe on a resetting link
def _qmp(port: int, command: str) -> dict:
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rw")
        json.loads(f.readline())  # greeting
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}) + "\n")
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    break
    return r


def test_probe_gets_through_a_board_reset_mid_session(nd2, tinyengine_cli):
    """The board resets (QEMU system_reset: the firmware reboots, its USART drops bytes until the
    board layer enables it again) just before the reference INFER: the probe still ends with the
    reference output, and its record keeps the link's figures apart from the inference's."""
    _need("qemu-system-arm", "qemu-system-arm")
    from tinyengine.deploy.protocol import ProbeClient
    from tinyengine.deploy.qemu import free_tcp_port, qemu_serial, systick_hz
    from tinyengine.deploy.session import build_project, probe, read_project
    root, meta, board = read_project(nd2)
    res = build_project(root, meta, board, emulated=True)
    qmp_port = free_tcp_port()
    with qemu_serial(res.elf, "netduinoplus2", extra_args=("-qmp", f"tcp:127.0.0.1:{qmp_port},server=on,wait=off")) as q:
        with ProbeClient.open(q.url, timeout=2, retries=0) as client:
            real_infer, resets = client.infer, []

            def infer_after_reset(*a, **k):
                if not resets:
                    resets.append(_qmp(qmp_port, "system_reset"))
                return real_infer(*a, **k)

            client.infer = infer_after_reset
            rec = probe(client, runs=2, layers=False, timeout=2, project=root, meta=meta, icount_shift=0,
                        qemu_timer_hz=systick_hz("netduinoplus2"))
    assert resets == [{"return": {}}]
    assert rec["checks"]["output_equals_reference"] and rec["checks"]["model_hash"]
    assert rec["link"]["ready_attempts"] >= 1 and rec["link"]["bytes_each_way"] == [1024 + 16, 10 + 8 + 16]
    assert rec["link"]["resyncs"] in ([], ["INFER"])  # lost with the reset (resynchronised) or not
