"""Per-layer specialised kernels (``tinyengine gen --specialize``, codegen/specialize.py): a specialised
model's outputs equal the reference on the host (portable and DSP-emulated builds, -Werror) and in QEMU on
the Cortex-M4 (DSP build, -Werror), the copies compile for the M7 with -Werror, the flag falls back to
the generic kernels, and the flash budget decides which layers are specialised."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from kernel_harness import run_model_qemu_m4

from codegen.generate import generate
from codegen.project import FIRMWARE
from codegen.specialize import _externs, spec_source
from tinyengine.kernels.specialize import KERNELS, choose, estimate_saved
from tinyengine.numerics.reference import run_graph
from tinyml_cli.engine import main as engine_main
from tinyml_errors import UsageError

WARN = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-DTE_USE_DSP", "-O2"]
M7 = ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard", "-DTE_USE_DSP", "-O2"]

# stem, a first block, a 5x5/s2 block, a 7x7/s2 block at 24 px: every specialisable kernel (the last
# depthwise runs out of place: the layout choice finds it cheaper there without growing the arena)
TINY = {"format": "tinyml-arch/1", "name": "spec-tiny", "width_mult": 0.5, "resolution": 24, "in_channels": 3,
        "stem": {"out_channels": 16, "kernel_size": 3, "stride": 2},
        "first_block": {"out_channels": 8, "kernel_size": 3},
        "stages": [{"out_channels": 16, "stride": 2, "blocks": [{"kernel_size": 5, "expand_ratio": 3}]},
                   {"out_channels": 24, "stride": 2, "blocks": [{"kernel_size": 7, "expand_ratio": 3}]}],
        "feature_mix_channels": None, "num_classes": 4}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"'{tool}' not found on PATH (gcc / gcc-arm-none-eabi / qemu-system-arm)")
    return path


def run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"failed: {' '.join(map(str, cmd))}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec")
    (d / "tiny.json").write_text(json.dumps(TINY))
    return generate(str(d / "tiny.json"), "qemu-m4", d / "proj", specialize="all", seed=3)


def test_all_specialises_every_pointwise_and_depthwise_layer(tiny):
    low = tiny.lowering
    kinds = {o.kernel for o in low.ops if o.specialisation and o.specialisation.specialised}
    assert kinds == set(KERNELS), f"specialised kernels {kinds}: the tiny model should cover all three"
    src = tiny.root / "src"
    model_c = (src / "model.c").read_text()
    assert '#include "te_spec.h"' in model_c
    for o in low.ops:
        d = o.specialisation
        if o.kernel in KERNELS:
            assert d.specialised and (src / f"{d.function}.c").is_file()
            assert re.search(rf"\b{d.function}\(", model_c) and f"{d.function}.c" in " ".join(tiny.kernel_sources)
        else:
            assert d is None
    dw = next(o for o in low.ops if o.kernel == "te_depthwise_inplace_s8").specialisation
    assert dw.variant == "unrolled" and "unroll-loops" in (src / f"{dw.function}.c").read_text()
    layers = json.loads((tiny.root / "lowering.json").read_text())["layers"]
    rec = next(la for la in layers if la["kernel"] == "te_conv_pointwise_s8")["specialisation"]
    assert rec["specialised"] and rec["code_bytes"] > 0 and rec["est_saved"] > 0


def _host_check(proj, extra_cppflags: str) -> None:
    env = {"PATH": shutil.os.environ["PATH"], "CPPFLAGS": extra_cppflags}
    run(["make", "-C", proj.root, "clean"])
    r = run(["make", "-C", proj.root, "check"], env=env, timeout=600)
    assert "host output matches reference_output.bin" in r.stdout


def test_specialised_host_builds_equal_the_reference(tiny):
    """Portable C (the copies of te_conv.c's pointwise and of the portable depthwise) and the DSP path
    with the host's bit-exact DSP models (-DTE_USE_DSP -DTE_DSP_EMULATE), both with -Werror."""
    need("gcc")
    _host_check(tiny, "")
    _host_check(tiny, "-DTE_USE_DSP -DTE_DSP_EMULATE")




def test_specialised_model_bit_exact_in_qemu_m4_and_compiles_for_m7(tiny, tmp_path):
    """Linked with the generic kernels beside the copies (no duplicate symbols), -Werror, run on the
    Cortex-M4 mps2-an386: every output byte equals run_graph's. The copies also compile for the M7."""
    cc = need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    src, x = tiny.root / "src", tiny.reference_input
    want = run_graph(tiny.lowering.graph, x)[tiny.lowering.graph.outputs[0]].reshape(-1)
    np.testing.assert_array_equal(run_model_qemu_m4(tiny, x, tmp_path), want)
    for o in tiny.lowering.ops:  # one copy of each kernel for the M7
        if o.specialisation and o.kernel in KERNELS:
            run([cc, *WARN, *M7, f"-I{src}", "-c", src / f"{o.specialisation.function}.c", "-o",
                 tmp_path / f"{o.index}.o"])


def test_off_and_a_zero_flash_limit_fall_back_to_the_generic_kernels(tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    for kw in ({"specialize": "off"}, {"specialize": "all", "specialize_flash_limit": 0}):
        proj = generate(str(tmp_path / "tiny.json"), "qemu-m4", tmp_path / "p", force=True, **kw)
        src = proj.root / "src"
        assert not list(src.glob("te_spec*")), kw
        assert "te_spec" not in (src / "model.c").read_text()
        assert "te_conv_pointwise_s8(" in (src / "model.c").read_text()
        recs = [la.get("specialisation") for la in json.loads((proj.root / "lowering.json").read_text())["layers"]]
        assert all(r is None or not r["specialised"] for r in recs)
        if kw["specialize"] == "all":
            assert any(r and "flash budget" in r["reason"] for r in recs)


def test_flash_budget_takes_the_best_saving_per_byte_first(tiny):
    ops = tiny.lowering.ops
    cands = sorted(((estimate_saved(o.kernel, o.args) / KERNELS[o.kernel].code(o.args), o.index,
                     KERNELS[o.kernel].code(o.args)) for o in ops if o.kernel in KERNELS), key=lambda c: (-c[0], c[1]))
    budget = cands[0][2] + cands[1][2] + cands[2][2] + 1  # the best three fit, the fourth may not
    dec = choose(ops, "all", budget)
    chosen = {i for i, d in dec.items() if d.specialised}
    assert {c[1] for c in cands[:3]} <= chosen
    assert sum(d.code_bytes for d in dec.values()) <= budget
    assert all(not d.specialised and "flash budget" in d.reason for i, d in dec.items() if i not in chosen)
    assert all(d.variant == "plain" for d in dec.values())  # no budget left to upgrade a copy
    big = choose(ops, "all", 1 << 30)
    assert all(d.specialised for d in big.values())
    assert {d.variant for i, d in big.items() if ops[i].kernel == "te_depthwise_inplace_s8"} == {"unrolled"}


def test_auto_leaves_layers_with_little_to_gain_generic(tmp_path):
    """mcunet-vww1: the few-channel layers are specialised, the many-input-channel projections (a copy
    saves ~0.1 % of them, measured) keep the generic kernel."""
    proj = generate("mcunet-vww1", "qemu-m4", tmp_path / "v", specialize="auto")
    by = {o.name: o.specialisation for o in proj.lowering.ops}
    assert by["b1.expand"].specialised and by["b0.dw"].specialised
    assert not by["b14.project"].specialised and "per byte" in by["b14.project"].reason


def test_bad_specialize_options_are_refused(tmp_path, capsys):
    with pytest.raises(UsageError, match="--specialize"):
        generate("mcunet-vww1", "qemu-m4", tmp_path / "x", specialize="fast")
    with pytest.raises(UsageError, match="--specialize-flash-limit"):
        generate("mcunet-vww1", "qemu-m4", tmp_path / "x", specialize="auto", specialize_flash_limit=-1)
    rc = engine_main(["gen", "mcunet-vww1", "--board", "qemu-m4", "--out", str(tmp_path / "y"),
                      "--specialize", "auto", "--specialize-flash-limit", "-5"])
    err = capsys.readouterr()
    assert rc != 0 and "--specialize-flash-limit must be >= 0" in err.out + err.err
    assert "Traceback" not in err.out + err.err


def test_copy_renames_every_external_function_of_the_kernel_sources(tiny):
    """A new external function in a kernel .c is renamed in the copy too (no duplicate symbols)."""
    o = next(o for o in tiny.lowering.ops if o.kernel == "te_depthwise_inplace_s8")
    text = spec_source(o, "te_spec_x", Path(FIRMWARE / "src"))
    for name in ("te_depthwise_inplace_s8", "te_depthwise_s8", "te_depthwise_scratch_bytes"):
        assert re.search(rf"#define {name} te_spec_x", text), name
    assert "#define TE_SPEC_DEPTHWISE(g, q)" in text and '#include "te_depthwise.c"' in text
    # only definitions: a prototype of a function defined elsewhere keeps its name (the copy calls it)
    assert _externs("void te_a(int x);\nint te_b(int y,\n    int (*f)(int))\n{\n}\n"
                    "static int te_c(void) { return 0; }\n") == ["te_b"]


def test_the_hook_folds_the_layers_constants_into_the_copy(tiny, tmp_path):
    """The entry hook really fixes the constants: in a pointwise copy for a layer with the full int8 clamp
    the clamp variant of the pair loop is dead code, gone from the object (the generic kernel keeps it);
    without the hook line in te_conv_pointwise_s8 this fails."""
    cc = need("arm-none-eabi-gcc")
    src = tiny.root / "src"
    o = next(o for o in tiny.lowering.ops if o.kernel == "te_conv_pointwise_s8"
             and o.args["quant"]["act_min"] == -128 and o.args["quant"]["act_max"] == 127)

    def statics(c_file: Path) -> set[str]:
        obj = tmp_path / (c_file.stem + ".o")
        run([cc, *WARN, *M4, f"-I{src}", "-c", c_file, "-o", obj])
        nm = run([shutil.which("arm-none-eabi-nm") or need("arm-none-eabi-nm"), obj]).stdout
        return {ln.split()[-1].split(".")[0] for ln in nm.splitlines() if ln.split()[-2:-1] == ["t"]}

    generic = statics(src / "te_pointwise.c")
    copy = statics(src / f"{o.specialisation.function}.c")
    assert "pw_pairs_clamp" in generic and "pw_pairs_clamp" not in copy, (generic, copy)


def test_analyze_shows_the_per_layer_decision(tmp_path, capsys):
    out = tmp_path / "a.json"
    assert engine_main(["analyze", "mcunet-vww1", "--board", "qemu-m4", "--specialize", "auto", "--quiet",
                        "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "specialised kernels (auto" in text
    rows = {r["name"]: r["c_kernel"].get("specialisation") for r in json.loads(out.read_text())["layers"]}
    assert rows["b1.expand"]["specialised"] and rows["b1.expand"]["est_saved"] > 0
    assert rows["b1.expand"]["code_bytes"] > 0 and rows["b1.expand"]["est_instructions"] > 0
    assert rows["b14.project"]["specialised"] is False and rows["stem"] is None
