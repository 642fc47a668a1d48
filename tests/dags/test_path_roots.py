"""Issue 7 item 12: ``batch_file`` and ``output_dir`` stay inside ``PAYOUT_INPUT_DIRS`` /
``PAYOUT_OUTPUT_DIRS`` (symlinks and ``..`` resolved), or the run is refused before anything is
read or sent. Real ``dag.test()`` runs against the real sandbox: nothing reaches the gateway and
nothing is written outside the roots."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payout_jobs import batch_job, settings

from .conftest import SAMPLES

CARD_LIKE = "4000123412"


def rows(prefix: str, count: int = 2) -> list[dict[str, str]]:
    return [
        {
            "service": "test_usd",
            "service_amount": f"{5 + i}.00",
            "fields_data": f"account:{CARD_LIKE}",
            "reference_id": f"{prefix}-{i}",
        }
        for i in range(count)
    ]


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An input root, an output root and, beside them, folders outside both."""
    folders = {
        name: tmp_path / name for name in ("inbox", "reports", "outside", "reports-evil", "inbox-evil")
    }
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setenv("PAYOUT_INPUT_DIRS", str(folders["inbox"]))
    monkeypatch.setenv("PAYOUT_OUTPUT_DIRS", str(folders["reports"]))
    monkeypatch.setenv("PAYOUT_REPORTS_DIR", str(folders["reports"]))
    monkeypatch.setenv("PAYOUT_BATCH_DROP_DIR", str(folders["inbox"] / "drop"))
    return folders


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------ the checks


def test_is_inside_compares_components_not_string_prefixes(tmp_path: Path) -> None:
    root = (tmp_path / "reports").resolve()
    assert settings.is_inside(root, [root])
    assert settings.is_inside(root / "b1" / "report.csv", [root])
    assert not settings.is_inside((tmp_path / "reports-evil").resolve(), [root])
    assert not settings.is_inside(tmp_path.resolve(), [root])


def test_roots_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("PAYOUT_INPUT_DIRS", f"{a}/{os.pathsep}{os.pathsep} {b}/../b ")  # slash, empty, ..
    assert settings.input_dirs() == [a.resolve(), b.resolve()]


def test_empty_settings_mean_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYOUT_INPUT_DIRS", "")
    monkeypatch.setenv("PAYOUT_OUTPUT_DIRS", "")
    monkeypatch.setenv("PAYOUT_BATCH_DROP_DIR", str(tmp_path / "drop"))
    monkeypatch.setenv("PAYOUT_REPORTS_DIR", str(tmp_path / "reports"))
    assert settings.input_dirs()[:2] == [(tmp_path / "drop").resolve(), SAMPLES.resolve()]
    assert settings.output_dirs() == [(tmp_path / "reports").resolve()]
    assert settings.checked_input_file(SAMPLES / "batch_demo.csv") == (SAMPLES / "batch_demo.csv").resolve()
    with pytest.raises(settings.PathNotAllowedError, match="PAYOUT_OUTPUT_DIRS"):
        settings.checked_output_dir(tmp_path / "elsewhere")


def test_refusal_names_the_param_and_the_setting_not_the_path(
    roots: dict[str, Path], write_batch: Callable[..., Path]
) -> None:
    secret_name = roots["outside"] / f"{CARD_LIKE}.csv"  # a path may hold anything: not echoed
    write_batch(secret_name, rows("named"))
    with pytest.raises(AirflowFailException) as err:
        batch_job.resolve_batch({"batch_file": str(secret_name), "output_dir": str(roots["reports"])}, "r1")
    assert str(err.value).startswith("batch_file: not inside a folder allowed by PAYOUT_INPUT_DIRS")
    assert CARD_LIKE not in str(err.value)
    with pytest.raises(AirflowFailException) as err:
        batch_job.resolve_batch(
            {"batch_file": str(roots["inbox"] / "x.csv"), "output_dir": str(roots["reports-evil"])}, "r1"
        )
    assert str(err.value).startswith("output_dir: not inside a folder allowed by PAYOUT_OUTPUT_DIRS")


def test_a_missing_file_outside_the_roots_is_refused_as_outside(roots: dict[str, Path]) -> None:
    """Existence is checked only inside the roots, so a trigger cannot probe the worker's files."""
    params = {"batch_file": str(roots["outside"] / "nope.csv"), "output_dir": str(roots["reports"])}
    with pytest.raises(AirflowFailException, match="PAYOUT_INPUT_DIRS"):
        batch_job.resolve_batch(params, "r1")
    params["batch_file"] = str(roots["inbox"] / "nope.csv")
    with pytest.raises(AirflowFailException, match="does not exist"):
        batch_job.resolve_batch(params, "r1")


@pytest.mark.parametrize("batch_id", [".", ".."])
def test_batch_id_cannot_climb_out_of_the_report_folder(
    roots: dict[str, Path], write_batch: Callable[..., Path], batch_id: str
) -> None:
    """``<output_dir>/<batch_id>/`` with ``..`` would write the report beside the root."""
    batch = write_batch(roots["inbox"] / "x.csv", rows("climb"))
    params = {"batch_file": str(batch), "output_dir": str(roots["reports"]), "batch_id": batch_id}
    with pytest.raises(AirflowFailException) as err:
        batch_job.resolve_batch(params, "r1")
    assert str(err.value).startswith("batch_id: must be")


# ------------------------------------------------------------------------------ real runs


def _escape_dotdot(roots: dict[str, Path]) -> str:
    return str(roots["inbox"] / ".." / "outside" / "pay.csv")


def _absolute_outside(roots: dict[str, Path]) -> str:
    return str(roots["outside"] / "pay.csv")


def _symlink_inside(roots: dict[str, Path]) -> str:
    link = roots["inbox"] / "link.csv"
    link.symlink_to(roots["outside"] / "pay.csv")
    return str(link)


def _sibling_prefix(roots: dict[str, Path]) -> str:
    evil = roots["inbox-evil"] / "pay.csv"
    evil.write_bytes((roots["outside"] / "pay.csv").read_bytes())
    return str(evil)


@pytest.mark.parametrize(
    "batch_file",
    [_escape_dotdot, _absolute_outside, _symlink_inside, _sibling_prefix],
    ids=lambda f: f.__name__,
)
def test_batch_file_outside_the_input_roots_is_never_read_or_paid(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    roots: dict[str, Path],
    write_batch: Callable[..., Path],
    batch_file: Callable[[dict[str, Path]], str],
) -> None:
    write_batch(roots["outside"] / "pay.csv", rows("escape"))

    result = run_dag("payout_batch", {"batch_file": batch_file(roots), "output_dir": str(roots["reports"])})

    assert result.state == "failed"
    assert result.tasks["check_batch"] == "failed"
    assert gateway_conn.ledger()["references"] == {}  # nothing was sent
    assert files_under(roots["reports"]) == []  # no report of a file that was not read


@pytest.mark.parametrize(
    "output_dir",
    [
        lambda r: str(r["reports"] / ".." / "outside"),  # `..` out of the root
        lambda r: str(r["reports-evil"]),  # a sibling whose name starts with the root's
        lambda r: str(r["outside"]),  # an absolute path elsewhere
    ],
    ids=["dotdot", "sibling-prefix", "absolute"],
)
def test_output_dir_outside_the_output_roots_is_refused_before_anything_is_sent(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    roots: dict[str, Path],
    write_batch: Callable[..., Path],
    output_dir: Callable[[dict[str, Path]], str],
) -> None:
    batch = write_batch(roots["inbox"] / "pay.csv", rows("outdir"))

    result = run_dag("payout_batch", {"batch_file": str(batch), "output_dir": output_dir(roots)})

    assert result.state == "failed"
    assert result.tasks["check_batch"] == "failed"
    assert gateway_conn.ledger()["references"] == {}
    assert files_under(roots["outside"]) == files_under(roots["reports-evil"]) == []
    assert files_under(roots["reports"]) == []


def test_output_dir_through_a_symlink_out_of_the_root_is_refused(
    gateway_conn: Any, run_dag: Callable[..., Any], roots: dict[str, Path], write_batch: Callable[..., Path]
) -> None:
    batch = write_batch(roots["inbox"] / "pay.csv", rows("outlink"))
    (roots["reports"] / "shared").symlink_to(roots["outside"], target_is_directory=True)

    result = run_dag(
        "payout_batch", {"batch_file": str(batch), "output_dir": str(roots["reports"] / "shared")}
    )

    assert result.state == "failed" and result.tasks["check_batch"] == "failed"
    assert gateway_conn.ledger()["references"] == {}
    assert files_under(roots["outside"]) == []


def test_roots_with_a_trailing_slash_and_default_inputs_still_pay(
    gateway_conn: Any,
    run_dag: Callable[..., Any],
    roots: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    read_report: Callable[..., Any],
) -> None:
    """``PAYOUT_INPUT_DIRS`` empty = the defaults (the samples are readable); an output root given
    as ``.../reports/`` accepts a folder inside it."""
    monkeypatch.setenv("PAYOUT_INPUT_DIRS", "")
    monkeypatch.setenv("PAYOUT_OUTPUT_DIRS", f"{roots['reports']}/")
    output_dir = roots["reports"] / "june"

    result = run_dag(
        "payout_batch", {"batch_file": str(SAMPLES / "batch_demo.csv"), "output_dir": str(output_dir)}
    )

    assert result.state == "success"
    (folder,) = [p.parent for p in output_dir.glob("*/report.csv")]
    report, summary = read_report(folder)
    assert summary["counts"] == {"processed": 6}
    ledger = gateway_conn.ledger()["references"]
    assert set(ledger) == {r["reference_id"] for r in report}


def test_reconciliation_output_dir_outside_the_roots_is_refused(
    gateway_conn: Any, run_dag: Callable[..., Any], roots: dict[str, Path]
) -> None:
    result = run_dag("payout_reconciliation", {"output_dir": str(roots["reports"] / ".." / "outside")})

    assert result.state == "failed"
    assert result.tasks["reconcile"] == "failed"
    assert files_under(roots["outside"]) == files_under(roots["reports"]) == []
