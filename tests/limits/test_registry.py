from __future__ import annotations

from pathlib import Path

import pytest

import taskrun.limits as limits
from taskrun._limits._registry import parse_env


def test_set_get_list_remove() -> None:
    made = limits.set("db", 5)
    assert made == limits.get("db")
    assert (made.limit, made.slot_decay_per_second, made.scope, made.source) == (5, None, "process", "set")
    limits.set("api", 10, slot_decay_per_second=2.5, scope="machine")
    assert [lim.name for lim in limits.list()] == ["api", "db"]
    assert limits.get("api").is_rate_limit  # type: ignore[union-attr]
    assert limits.remove("db") is True
    assert limits.remove("db") is False
    assert limits.get("db") is None


def test_env_syntax() -> None:
    parsed = parse_env(" db=5, api=10/s ,gpu=1@machine, tag:heavy=2 ,slow=3/s@machine,")
    assert parsed["db"].limit == 5 and parsed["db"].slot_decay_per_second is None
    assert parsed["api"].limit == 10 and parsed["api"].slot_decay_per_second == 10.0
    assert parsed["gpu"].scope == "machine"
    assert parsed["tag:heavy"].limit == 2
    assert (parsed["slow"].slot_decay_per_second, parsed["slow"].scope) == (3.0, "machine")
    assert all(lim.source == "env" for lim in parsed.values())


@pytest.mark.parametrize("raw", ["db", "db=", "db=x", "db=-1", "db=5/m", "db=5@galaxy", "d b=5"])
def test_env_errors_name_the_variable_and_fix(raw: str) -> None:
    with pytest.raises(ValueError, match="TASKRUN_LIMITS") as info:
        parse_env(raw)
    assert "e.g." in str(info.value) or "must" in str(info.value)


def test_precedence_set_over_env_over_file(isolated_limits: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_limits.mkdir(parents=True)
    (isolated_limits / "limits.toml").write_text(
        "[limits]\ndb = 1\nfile_only = 7\napi = { limit = 4, slot_decay_per_second = 2 }\n"
        'gpu = { limit = 1, scope = "machine" }\n'
    )
    monkeypatch.setenv("TASKRUN_LIMITS", "db=2,env_only=3")
    limits.reload()
    assert (limits.get("db").limit, limits.get("db").source) == (2, "env")  # type: ignore[union-attr]
    assert limits.get("file_only").source == "file"  # type: ignore[union-attr]
    assert limits.get("api").slot_decay_per_second == 2.0  # type: ignore[union-attr]
    assert limits.get("gpu").scope == "machine"  # type: ignore[union-attr]
    limits.set("db", 3)
    assert limits.get("db").limit == 3  # type: ignore[union-attr]
    limits.remove("db")
    assert limits.get("db").limit == 2  # type: ignore[union-attr]  # back to the environment
    monkeypatch.delenv("TASKRUN_LIMITS")
    limits.reload()
    assert limits.get("db").limit == 1  # type: ignore[union-attr]  # then the file
    assert limits.get("env_only") is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[limits\n", "not valid TOML"),
        ("limits = 3\n", "must be a table"),
        ("[limits]\ndb = 'x'\n", "int >= 0"),
        ("[limits]\ndb = { slots = 3 }\n", "needs 'limit'"),
        ("[limits]\ndb = { limit = 3, scope = 'planet' }\n", "'process' or 'machine'"),
        ("[limits]\ndb = { limit = 3, slot_decay_per_second = 0 }\n", "must be > 0"),
    ],
)
def test_file_errors_name_the_file(isolated_limits: Path, text: str, match: str) -> None:
    isolated_limits.mkdir(parents=True)
    (isolated_limits / "limits.toml").write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        limits.reload()
    assert "limits.toml" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "", "limit": 1}, "not valid"),
        ({"name": "db", "limit": -1}, "int >= 0"),
        ({"name": "db", "limit": True}, "int >= 0"),
        ({"name": "db", "limit": 1.5}, "int >= 0"),
        ({"name": "db", "limit": 1, "slot_decay_per_second": -2}, "must be > 0"),
        ({"name": "db", "limit": 1, "slot_decay_per_second": "fast"}, "number > 0"),
        ({"name": "db", "limit": 1, "scope": "cluster"}, "'process' or 'machine'"),
    ],
)
def test_set_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        limits.set(**kwargs)  # type: ignore[arg-type]
    assert limits.list() == []


def test_toml_fallbacks_when_tomllib_is_missing(
    isolated_limits: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    isolated_limits.mkdir(parents=True)
    (isolated_limits / "limits.toml").write_text("[limits]\ndb = 4\n")
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10
    pytest.importorskip("tomli")
    limits.reload()
    assert limits.get("db").limit == 4  # type: ignore[union-attr]
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(RuntimeError, match="pip install tomli"):
        limits.reload()
