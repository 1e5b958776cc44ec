"""Output folders (tinyengine/outdir.py): a command writes only into a folder it created or one holding
its own manifest; --force overwrites but never deletes a file it did not write; stale files of ours go."""
from __future__ import annotations

import json

import pytest

from tinyengine.outdir import MANIFEST, check_output_file, claim
from tinyml_errors import OutputError


def _write(od, files: dict[str, str]) -> list:
    out = []
    for rel, data in files.items():
        p = od.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data)
        out.append(p)
    return out


def test_new_folder_is_created_and_recorded(tmp_path):
    od = claim(tmp_path / "o", "t")
    assert od.created
    od.commit(_write(od, {"a.txt": "1", "src/b.c": "2"}))
    man = json.loads((tmp_path / "o" / MANIFEST).read_text())
    assert man["tool"] == "t" and sorted(man["files"]) == ["a.txt", "src/b.c"] and not man["in_progress"]


def test_rerun_replaces_its_files_and_removes_stale_ones(tmp_path):
    od = claim(tmp_path / "o", "t")
    od.commit(_write(od, {"a.txt": "1", "src/old.c": "2", "src/keep.c": "3"}))
    od = claim(tmp_path / "o", "t")
    removed = od.commit(_write(od, {"a.txt": "new", "src/keep.c": "3"}))
    assert removed == ["src/old.c"] and not (tmp_path / "o" / "src" / "old.c").exists()
    assert (tmp_path / "o" / "a.txt").read_text() == "new"


def test_foreign_and_changed_files_stop_the_command(tmp_path):
    od = claim(tmp_path / "o", "t")
    od.commit(_write(od, {"Makefile": "ours"}))
    (tmp_path / "o" / "Makefile").write_text("edited by the user")
    with pytest.raises(OutputError, match="Makefile was changed after `t` wrote it"):
        claim(tmp_path / "o", "t")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.md").write_text("x")
    with pytest.raises(OutputError, match="notes.md was not written by `t`.*--force"):
        claim(tmp_path / "mine", "t")
    with pytest.raises(OutputError, match="holds the output of `t`, not `u`"):
        claim(tmp_path / "o", "u")


def test_force_overwrites_but_never_deletes_foreign_files(tmp_path):
    od = claim(tmp_path / "o", "t")
    od.commit(_write(od, {"src/model.c": "ours", "src/gone.c": "ours"}))
    (tmp_path / "o" / "src" / "main.c").write_text("user's")
    (tmp_path / "o" / "src" / "gone.c").write_text("user changed it")
    od = claim(tmp_path / "o", "t", force=True)
    od.commit(_write(od, {"src/model.c": "ours again"}))
    assert (tmp_path / "o" / "src" / "main.c").read_text() == "user's"
    assert (tmp_path / "o" / "src" / "gone.c").read_text() == "user changed it"  # changed: no longer ours
    with pytest.raises(OutputError, match=r"gone.c was not written by .* \(and 1 more\)"):  # still foreign
        claim(tmp_path / "o", "t")


def test_ignored_build_folders_and_abandon(tmp_path):
    od = claim(tmp_path / "o", "t", ignore=("build",))
    od.commit(_write(od, {"a": "1"}))
    (tmp_path / "o" / "build").mkdir()
    (tmp_path / "o" / "build" / "x.o").write_text("obj")
    claim(tmp_path / "o", "t", ignore=("build",))  # make's output does not count as foreign
    od = claim(tmp_path / "new", "t")
    od.abandon()
    assert not (tmp_path / "new").exists()
    od = claim(tmp_path / "o", "t", ignore=("build",))
    od.abandon()  # not created by this claim: kept
    assert (tmp_path / "o" / "a").exists()


def test_interrupted_run_resumes_into_its_own_state(tmp_path):
    claim(tmp_path / "o", "s", in_progress=True)
    (tmp_path / "o" / "state.json").write_text("{}")  # written by the run before it was killed
    od = claim(tmp_path / "o", "s", in_progress=True)
    od.commit()
    assert "state.json" in json.loads((tmp_path / "o" / MANIFEST).read_text())["files"]
    (tmp_path / "o" / "user.txt").write_text("x")  # after a finished run, a new file is foreign
    with pytest.raises(OutputError, match="user.txt"):
        claim(tmp_path / "o", "s", in_progress=True)


def test_interrupted_rerun_of_a_finished_run_resumes(tmp_path):
    """A finished run's folder, rerun (e.g. `tinynas search --from STEP`) and killed after rewriting one
    of its files: the next run resumes; the rewrite is the killed run's, not a user's change."""
    od = claim(tmp_path / "o", "s", in_progress=True)
    (tmp_path / "o" / "state.json").write_text("{}")
    od.commit()
    claim(tmp_path / "o", "s", in_progress=True)
    (tmp_path / "o" / "state.json").write_text('{"step": 2}')  # rewritten, then killed
    od = claim(tmp_path / "o", "s", in_progress=True)
    od.commit()
    assert (tmp_path / "o" / "state.json").read_text() == '{"step": 2}'
    (tmp_path / "o" / "state.json").write_text("mine")  # after a finished run, a change is the user's
    with pytest.raises(OutputError, match="state.json was changed after"):
        claim(tmp_path / "o", "s", in_progress=True)


def test_output_file_checks(tmp_path):
    assert check_output_file(tmp_path / "a" / "b.json", "--json") == tmp_path / "a" / "b.json"
    assert (tmp_path / "a").is_dir()
    with pytest.raises(OutputError, match="--json .*: is a folder"):
        check_output_file(tmp_path / "a", "--json")


def test_gen_twice_then_force(tmp_path, tinyengine_cli):
    """End to end on `tinyengine gen`: a re-run replaces its files; a user's Makefile edit and src/main.c
    stop it; --force rewrites the Makefile and keeps main.c."""
    out = tmp_path / "p"
    argv = ["gen", "mcunet-vww1", "--board", "qemu-m4", "--out", str(out), "--calib", "2"]
    assert tinyengine_cli(argv)[0] == 0
    first = (out / "src" / "weights.c").read_bytes()
    assert tinyengine_cli([*argv, "--seed", "1"])[0] == 0
    assert (out / "src" / "weights.c").read_bytes() != first
    (out / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (out / "Makefile").write_text("all:\n")
    rc, _, err = tinyengine_cli(argv)
    assert rc == 2 and "Makefile was changed" in err and "(and 1 more)" in err
    assert (out / "Makefile").read_text() == "all:\n"
    assert tinyengine_cli([*argv, "--force"])[0] == 0
    assert (out / "Makefile").read_text() != "all:\n" and (out / "src" / "main.c").exists()
