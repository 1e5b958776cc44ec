"""Size and duration parsing: the datasheet convention (1 KB = 1024 B) and clear errors for bad input."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boards.units import format_size, parse_duration, parse_size
from tinyml_errors import UnitsError

VALID_SIZES = [
    ("320KB", 327680),
    ("320kB", 327680),
    ("320kb", 327680),
    ("320KiB", 327680),
    ("320kib", 327680),
    ("320K", 327680),
    ("320k", 327680),
    ("320 KB", 327680),
    (" 320KB ", 327680),
    ("1MB", 1048576),
    ("1mb", 1048576),
    ("1MiB", 1048576),
    ("1M", 1048576),
    ("1.5MB", 1572864),
    ("1.5 MB", 1572864),
    ("0.5KB", 512),
    ("327680", 327680),
    ("327680B", 327680),
    ("327680 b", 327680),
    ("2048", 2048),
    ("0.1KB", 102),  # 102.4 B rounds to the nearest byte
]


@pytest.mark.parametrize(("text", "expected"), VALID_SIZES)
def test_parse_size_valid(text, expected):
    assert parse_size(text, what="--sram") == expected


def test_parse_size_accepts_int_bytes():
    assert parse_size(327680, what="--sram") == 327680


INVALID_SIZES = [
    "",
    "   ",
    "KB",
    "320XB",
    "320 GB",
    "320KBB",
    "-1KB",
    "-5",
    "0",
    "0KB",
    "0.0001KB",  # rounds to zero bytes
    "1.5",  # a fraction of a byte
    "1.5B",
    "nan",
    "inf",
    "NaNKB",
    "1e3",  # scientific notation is rejected
    "1.5.3MB",
    "320 K B",
    "KB320",
]


@pytest.mark.parametrize("text", INVALID_SIZES)
def test_parse_size_invalid_names_flag_and_text(text):
    with pytest.raises(UnitsError) as info:
        parse_size(text, what="--flash")
    message = str(info.value)
    assert message.startswith("--flash: ")
    assert repr(text) in message
    assert "320KB" in message and "1 KB = 1024 B" in message  # lists the accepted forms


@pytest.mark.parametrize("value", [0, -1, True, None, 1.5])
def test_parse_size_rejects_non_string_garbage(value):
    with pytest.raises(UnitsError, match="--sram"):
        parse_size(value, what="--sram")


def test_parse_size_default_what():
    with pytest.raises(UnitsError, match=r"^size: cannot parse '320XB'"):
        parse_size("320XB")


FORMATTED = [
    (0, "0 B"),
    (999, "999 B"),
    (1023, "1023 B"),
    (1024, "1 KB"),
    (1536, "1.5 KB"),
    (327680, "320 KB"),
    (262144, "256 KB"),
    (1048576, "1 MB"),
    (1572864, "1.5 MB"),
    (2097152, "2 MB"),
    (327000, "319.3 KB"),  # not a tenth of a KB: rounded
    (1048575, "1 MB"),  # rounds up into the next unit, never "1024 KB"
]


@pytest.mark.parametrize(("nbytes", "expected"), FORMATTED)
def test_format_size(nbytes, expected):
    assert format_size(nbytes) == expected


@pytest.mark.parametrize("nbytes", [-1, 1.5, "1KB", True])
def test_format_size_rejects_non_byte_counts(nbytes):
    with pytest.raises(UnitsError):
        format_size(nbytes)


@given(st.integers(min_value=1, max_value=1023))
def test_format_size_round_trips_bytes(nbytes):
    assert parse_size(format_size(nbytes)) == nbytes


@given(st.integers(min_value=2, max_value=2047))
def test_format_size_round_trips_half_kb(halves):
    # Below 1 MB, multiples of 512 B (0.5 KB steps) are exact tenths of a KB and must print exactly.
    nbytes = halves * 512
    assert parse_size(format_size(nbytes)) == nbytes


@given(st.integers(min_value=2, max_value=400))
def test_format_size_round_trips_half_mb(halves):
    nbytes = halves * 512 * 1024
    assert parse_size(format_size(nbytes)) == nbytes


VALID_DURATIONS = [
    ("200ms", 0.2),
    ("200 ms", 0.2),
    ("200MS", 0.2),
    ("0.2s", 0.2),
    ("2s", 2.0),
    ("1500us", 0.0015),
    ("1500µs", 0.0015),
    ("200", 0.2),  # plain number = milliseconds
    ("0.5", 0.0005),
    (150, 0.15),
    (12.5, 0.0125),
]


@pytest.mark.parametrize(("text", "seconds"), VALID_DURATIONS)
def test_parse_duration_valid(text, seconds):
    assert math.isclose(parse_duration(text, "--latency"), seconds, rel_tol=1e-12)


@pytest.mark.parametrize(
    "text", ["", "fast", "200 min", "200mss", "0", "0ms", "-5ms", "nan", "inf", "1e3ms", float("inf"), float("nan"), -3, None]
)
def test_parse_duration_invalid_names_flag_and_text(text):
    with pytest.raises(UnitsError) as info:
        parse_duration(text, "--latency")
    message = str(info.value)
    assert message.startswith("--latency: ")
    assert repr(text) in message
    assert "200ms" in message
