"""The ``trialbook`` group itself: ``init``, and ``--help`` staying instant and light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.cli import invoke


def test_init_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        result = invoke("init", str(tmp_path))
        assert result.exit_code == 0 and "book ready" in result.output
    assert (tmp_path / ".trialbook" / "book.db").exists()


def test_help_is_instant_and_light() -> None:
    code = (
        "import sys\nfrom trialbook.cli.main import main\nsys.argv=['trialbook','--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('sqlalchemy', 'torch', 'ultralytics', 'fastapi', 'pandas', "
        "'rich') if m in sys.modules], file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands:" in out.stdout
    assert out.stderr.strip() == "[]"
