"""requirements.txt (read by Community Cloud) and pyproject.toml must list the same dependencies."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_requirements_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_lines(ROOT / "requirements.txt")) == sorted(project["dependencies"])
    assert sorted(_lines(ROOT / "requirements-dev.txt")) == sorted(project["optional-dependencies"]["test"])


def test_secrets_and_data_are_git_ignored():
    ignored = _lines(ROOT / ".gitignore")
    assert ".data/" in ignored and ".streamlit/secrets.toml" in ignored


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
