"""The command line in process, through click's ``CliRunner``, on real books."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from click.testing import CliRunner, Result


class CLI(Protocol):
    """``tb("decide", "v2_x", "--baseline", "v1_x")``: the command on one book; the exit
    code is checked (``code=None``: not checked) and click's ``Result`` returned."""

    def __call__(self, *args: str, code: int | None = 0) -> Result: ...


def make_cli(uri: str) -> CLI:
    """The ``trialbook`` command bound to the book at ``uri`` (``--uri`` is added)."""
    runner = CliRunner()

    def run(*args: str, code: int | None = 0) -> Result:
        result = invoke(*args, "--uri", uri, runner=runner, catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, (args, result.output)
        return result

    return run


def invoke(*args: str, runner: CliRunner | None = None, catch_exceptions: bool = True) -> Result:
    """``trialbook ARGS...`` as typed: the book is found from the current folder unless
    ``--uri`` is among ``args``; the exit code is not checked."""
    from trialbook.cli.main import cli

    return (runner or CliRunner()).invoke(cli, list(args), catch_exceptions=catch_exceptions)


def as_json(result: Result) -> Any:
    """The JSON document a ``--json`` command printed."""
    return json.loads(result.stdout)


def cli_json(uri: str, *args: str, codes: Sequence[int] = (0,)) -> Any:
    """``trialbook ARGS... --uri URI --json``, its exit code one of ``codes``; the document."""
    result = invoke(*args, "--uri", uri, "--json", catch_exceptions=False)
    assert result.exit_code in codes, result.output
    return json.loads(result.stdout)
