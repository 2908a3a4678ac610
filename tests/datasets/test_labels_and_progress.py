"""Label parsing (the fast path must agree with the careful one) and the progress bar."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest

from trialbook.datasets import build_manifest
from trialbook.datasets.labels import (
    _count_lines,
    count_rows,
    decode_counts,
    label_counts,
    label_counts_many,
)
from trialbook.datasets.progress import Reporter
from trialbook.errors import InvalidInput


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", {}),
        (b"\n\n", {}),
        (b"0 0.5 0.5 0.1 0.1\n", {0: 1}),
        (b"0 0.5 0.5 0.1 0.1", {0: 1}),  # no final newline
        (b"\xef\xbb\xbf2 0.5 0.5 0.1 0.1\n", {2: 1}),  # BOM
        (b"1 .5 5. -0.1 +1e-3\r\n1 1 1 1 1\r\n", {1: 2}),
        (b"  3\t0.1 0.2 0.3 0.4  \n\n10 1 1 1 1 1 1 1\n", {3: 1, 10: 1}),
        (b"03 1 1 1 1\n3 1 1 1 1\n", {3: 2}),
        (b"4.0 1 1 1 1\n", {4: 1}),
        (b"0 1 1 1 1\r1 1 1 1 1\r", {0: 1, 1: 1}),  # old Mac line ends
    ],
)
def test_counts(data: bytes, expected: dict[int, int]) -> None:
    assert count_rows(data, "x.txt") == expected


def test_counts_text_round_trip() -> None:
    text = label_counts(b"2 1 1 1 1\n0 1 1 1 1\n2 1 1 1 1\n", "x.txt")
    assert decode_counts(text) == {0: 1, 2: 2}
    assert label_counts(b"5 1 1 1 1\n0 1 1 1 1\n", "x.txt") == "0 5"
    many = b"".join(b"%d 1 1 1 1\n" % (i % 3) for i in range(20))
    assert label_counts(many, "x.txt") == "0:7 1:7 2:6"
    assert decode_counts("1:2 1:3 1 0") == {1: 6, 0: 1}
    assert decode_counts("") == {}


@pytest.mark.parametrize(
    "data",
    [
        b"0 1 1\n",
        b"x 1 1 1 1\n",
        b"0 1 1 1 1e\n",
        b"0 1 1 1 -\n",
        b"0 1..2 1 1 1\n",
        b"0 1-2 1 1 1\n",
        b"-1 1 1 1 1\n",
        b"0.5 1 1 1 1\n",
        b"0 inf 1 1 1\n",
        b"+-1 1 1 1 1\n",
    ],
)
def test_bad_rows(data: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"^x\.txt:1: "):
        count_rows(data, "x.txt")


def test_fast_path_agrees_with_line_by_line_check() -> None:
    rng = random.Random(7)
    fields = [
        "0.5",
        "1",
        "-.5",
        "+3.",
        "1e-5",
        ".5",
        "5.",
        "-",
        "1..2",
        "1-2",
        "0",
        "nan",
        "1e",
        "e5",
        "2E+3",
    ]
    heads = ["0", "1", "2", "07", "1.0", "-1", "+2", "1.5"]
    for _ in range(3000):
        rows = [
            rng.choice(heads) + " " + " ".join(rng.choice(fields) for _ in range(rng.randint(2, 7)))
            for _ in range(rng.randint(0, 4))
        ]
        data = (rng.choice(["\n", "\r\n", "\n\n"]).join(rows) + rng.choice(["", "\n"])).encode()
        outcomes: list[object] = []
        for parse in (count_rows, _count_lines):
            try:
                outcomes.append(parse(data, "x.txt"))
            except InvalidInput as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], data


def test_many_files_at_once_agree_with_one_by_one() -> None:
    rng = random.Random(11)
    odd_fields = ["-", "1..2", "nan", "~", "1e"]
    fell_back = agreed = 0
    for _ in range(1500):
        files = []
        for _ in range(rng.randint(1, 10)):
            rows = [
                " ".join(
                    [str(rng.randint(0, 12))] + [f"{rng.random():.6f}" for _ in range(rng.randint(4, 8))]
                )
                for _ in range(rng.randint(0, 12))
            ]
            if rows and rng.random() < 0.05:
                rows[-1] += " " + rng.choice(odd_fields)
            end = rng.choice(["", "\n", "\r\n", "\n\n"]) if rows else rng.choice(["", "\n"])
            files.append((rng.choice(["\n", "\r\n"]).join(rows) + end).encode())
        together = label_counts_many(files)
        if together is None:
            fell_back += 1
            continue
        agreed += 1
        assert [decode_counts(t) for t in together] == [count_rows(f, "x") for f in files]
    assert agreed > 500 and fell_back > 50


def test_progress_is_quiet_off_a_terminal(
    dataset: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("trialbook.datasets.progress.DELAY", 0.0)
    build_manifest(dataset)  # auto: stderr is not a terminal here
    assert capsys.readouterr().err == ""
    assert not Reporter(None).enabled


def test_progress_shows_when_asked_and_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    reporter = Reporter(True, delay=0.0)
    reporter.phase("hashing 10 files", 10)
    reporter.advance(5)
    assert reporter.shown
    reporter.phase("more", 4, as_bytes=True)
    reporter.advance(4)
    reporter.close()
    assert not reporter.shown
    quiet = Reporter(True, delay=3600)
    quiet.phase("hashing", 10)
    quiet.advance(10)
    assert not quiet.shown  # work shorter than the delay shows nothing
    assert not Reporter(False, delay=0.0).enabled


def test_progress_auto_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    assert Reporter(None).enabled
    monkeypatch.setattr(sys, "stderr", None)
    assert not Reporter(None).enabled
