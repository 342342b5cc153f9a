"""Developer tasks: ``nox`` runs lint and tests; ``nox -l`` lists every session.

Each session builds its own virtualenv (under ``.nox/``) from the Python that
runs nox, so nothing fails when a particular version is missing. To use
another interpreter: ``nox -s tests --force-python 3.12``. Add ``-r`` to reuse
the virtualenvs from a previous run. Arguments after ``--`` go to the tool:
``nox -s tests -- -k futures -x``, ``nox -s bench -- --help``.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.error_on_missing_interpreters = False


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, with the Dask and process-pool extras."""
    session.install("-e", ".[test,dask,process]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the package (settings in pyproject.toml)."""
    session.install("-e", ".", "mypy>=1.11")
    session.run("mypy", "taskrun", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The offline demo pipeline, against a regular (non-editable) install."""
    session.install(".[demo]")
    # Run from a scratch folder, so that the installed package is imported, not ./taskrun.
    session.chdir(session.create_tmp())
    session.run("python", "-m", "taskrun.demo")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks (``python -m benchmarks``); pass their options after ``--``."""
    session.install("-e", ".[bench,dask]")
    session.run("python", "-m", "benchmarks", *session.posargs)
