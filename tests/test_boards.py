"""Board presets: every shipped board file is valid, bad files and names give clear errors, limits resolve."""

import json
from pathlib import Path

import pytest

from boards import Board, BoardError, boards_dir, list_boards, load_board, resolve_limits
from boards.units import format_size
from tinyml_errors import TinyMLError

REPO = Path(__file__).resolve().parents[1]

EXPECTED_BOARDS = {
    "stm32f746g-disco",
    "nucleo-f767zi",
    "nucleo-h743zi",
    "stm32f412",
    "nrf52840",
    "qemu-m4",
    "qemu-m7",
}


def test_boards_dir_defaults_to_repo(monkeypatch):
    monkeypatch.delenv("TINYML_BOARDS_DIR", raising=False)
    assert boards_dir() == REPO / "boards"
    assert EXPECTED_BOARDS <= set(list_boards())


@pytest.mark.parametrize("name", sorted(EXPECTED_BOARDS | set(list_boards())))
def test_every_board_file_loads(name):
    board = load_board(name)
    assert isinstance(board, Board)
    assert board.name == name
    assert board.sram_bytes % 1024 == 0 and board.flash_bytes % 1024 == 0
    if board.emulated:
        assert board.qemu_machine is not None


def test_f746_discovery():
    board = load_board("stm32f746g-disco")
    assert board.core == "cortex-m7"
    assert board.sram_bytes == 327680
    assert board.flash_bytes == 1048576
    assert board.clock_hz == 216_000_000
    assert board.fpu == "fpv5-sp-d16" and board.dsp
    assert board.platformio.platform == "ststm32"
    assert board.platformio.board == "disco_f746ng"
    assert board.uart == "USART1"
    assert board.qemu_machine == load_board("qemu-m7").qemu_machine == "mps2-an500"
    assert not board.emulated
    assert board.compiler_flags() == ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"]


def test_nrf52840():
    board = load_board("nrf52840")
    assert board.core == "cortex-m4"
    assert (board.sram_bytes, board.flash_bytes) == (262144, 1048576)
    assert board.platformio.platform == "nordicnrf52"


def test_h743_counts_one_contiguous_bank():
    board = load_board("nucleo-h743zi")
    assert (board.sram_bytes, board.flash_bytes) == (524288, 2097152)
    assert board.clock_hz == 400_000_000  # what the board layer reaches (VOS1); 480 MHz needs VOS0
    assert board.notes and "1 MB" in board.notes


@pytest.mark.parametrize(("name", "machine", "core"), [("qemu-m4", "mps2-an386", "cortex-m4"), ("qemu-m7", "mps2-an500", "cortex-m7")])
def test_qemu_boards(name, machine, core):
    board = load_board(name)
    assert board.emulated is True
    assert board.qemu_machine == machine
    assert board.core == core
    assert (board.sram_bytes, board.flash_bytes) == (327680, 1048576)
    assert board.clock_hz == 25_000_000


def _good_board() -> dict:
    return json.loads((REPO / "boards" / "stm32f746g-disco.json").read_text())


def _write(tmp_path: Path, name: str, data) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    (tmp_path / f"{name}.json").write_text(text)


BAD_FIELDS = [
    ("sram_bytes", -1, "positive integer"),
    ("sram_bytes", "320KB", "positive integer"),
    ("flash_bytes", 0, "positive integer"),
    ("clock_hz", 2.16e8, "positive integer"),
    ("core", "cortex-a53", "cortex-m4"),
    ("float_abi", "softfp", "'hard' or 'soft'"),
    ("dsp", "yes", "true or false"),
    ("emulated", 1, "true or false"),
    ("uart", "", "non-empty string"),
    ("qemu_machine", 5, "non-empty string or null"),
    ("platformio", {"platform": "ststm32"}, "'framework'"),
    ("name", "other-board", "file name"),
]


@pytest.mark.parametrize(("field", "value", "expected"), BAD_FIELDS)
def test_bad_board_file_names_file_and_field(tmp_path, monkeypatch, field, value, expected):
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(tmp_path))
    data = _good_board()
    data["name"] = "broken"
    data[field] = value
    _write(tmp_path, "broken", data)
    with pytest.raises(BoardError) as info:
        load_board("broken")
    message = str(info.value)
    assert "broken.json" in message
    assert f"field '{field}'" in message
    assert expected in message


def test_bad_board_file_missing_and_unknown_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(tmp_path))
    data = _good_board()
    data["name"] = "nosram"
    del data["sram_bytes"]
    _write(tmp_path, "nosram", data)
    with pytest.raises(BoardError, match=r"nosram\.json: missing field 'sram_bytes'"):
        load_board("nosram")
    data = _good_board()
    data["name"] = "typo"
    data["sram_byte"] = 1
    _write(tmp_path, "typo", data)
    with pytest.raises(BoardError, match=r"typo\.json: unknown field\(s\) 'sram_byte'"):
        load_board("typo")


def test_bad_board_file_platformio_subfield_and_fpu_abi(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(tmp_path))
    data = _good_board()
    data["name"] = "piobad"
    data["platformio"] = {"platform": "ststm32", "board": "", "framework": None}
    _write(tmp_path, "piobad", data)
    with pytest.raises(BoardError, match=r"piobad\.json: field 'platformio\.board'"):
        load_board("piobad")
    data = _good_board()
    data["name"] = "nofpu"
    data["fpu"] = None
    _write(tmp_path, "nofpu", data)
    with pytest.raises(BoardError, match=r"nofpu\.json: field 'float_abi' must be 'soft' when 'fpu' is null"):
        load_board("nofpu")


def test_invalid_json_names_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(tmp_path))
    _write(tmp_path, "garbled", "{not json")
    with pytest.raises(BoardError, match=r"garbled\.json: not valid JSON"):
        load_board("garbled")
    _write(tmp_path, "listy", "[1, 2]")
    with pytest.raises(BoardError, match=r"listy\.json: expected a JSON object"):
        load_board("listy")


def test_soft_float_board_without_fpu_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYML_BOARDS_DIR", str(tmp_path))
    data = _good_board() | {"name": "m0", "core": "cortex-m0plus", "mcpu": "cortex-m0plus", "fpu": None, "float_abi": "soft", "dsp": False}
    data.pop("notes", None)
    _write(tmp_path, "m0", data)
    board = load_board("m0")
    assert board.fpu is None and board.notes is None
    assert board.compiler_flags() == ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"]


@pytest.mark.parametrize(("typo", "suggestion"), [("stm32f746", "stm32f746g-disco"), ("nrf52833", "nrf52840"), ("F767", "nucleo-f767zi")])
def test_unknown_board_suggests_and_lists(typo, suggestion):
    with pytest.raises(BoardError) as info:
        load_board(typo)
    message = str(info.value)
    assert f"unknown board '{typo}'" in message
    assert f"Did you mean '{suggestion}'?" in message
    for name in EXPECTED_BOARDS:
        assert name in message


def test_board_names_cannot_escape_the_folder():
    with pytest.raises(BoardError, match="unknown board"):
        load_board("../boards/stm32f746g-disco")


def test_resolve_limits_from_board():
    sram, flash, board = resolve_limits("stm32f746g-disco", None, None)
    assert (sram, flash) == (327680, 1048576)
    assert board is not None and board.name == "stm32f746g-disco"


def test_resolve_limits_explicit_overrides_board():
    assert resolve_limits("stm32f746g-disco", "256KB", None)[:2] == (262144, 1048576)
    assert resolve_limits("stm32f746g-disco", None, "512KB")[:2] == (327680, 524288)
    assert resolve_limits("stm32f746g-disco", 1000, 2000)[:2] == (1000, 2000)


def test_resolve_limits_without_board():
    sram, flash, board = resolve_limits(None, "320KB", "1MB")
    assert (sram, flash, board) == (327680, 1048576, None)


@pytest.mark.parametrize(("sram", "flash", "missing"), [(None, None, "--sram and --flash"), ("320KB", None, "--flash"), (None, "1MB", "--sram")])
def test_resolve_limits_names_what_is_missing(sram, flash, missing):
    with pytest.raises(TinyMLError, match=f"missing {missing};.*--board"):
        resolve_limits(None, sram, flash)


def test_resolve_limits_bad_strings_name_the_flag():
    with pytest.raises(TinyMLError, match=r"--sram: cannot parse '320XB'"):
        resolve_limits("stm32f746g-disco", "320XB", None)
    with pytest.raises(TinyMLError, match=r"--flash: cannot parse 'lots'"):
        resolve_limits(None, "320KB", "lots")
    with pytest.raises(BoardError, match="unknown board"):
        resolve_limits("no-such-board", "320KB", "1MB")


def test_readme_board_table_matches_board_files():
    readme = (REPO / "README.md").read_text()
    for name in EXPECTED_BOARDS:
        board = load_board(name)
        row = [line for line in readme.splitlines() if line.startswith(f"| `{name}` |")]
        assert len(row) == 1, f"README has no single row for board {name}"
        assert f"| {format_size(board.sram_bytes)} | {format_size(board.flash_bytes)} |" in row[0]
        assert f"| {board.core} |" in row[0]
