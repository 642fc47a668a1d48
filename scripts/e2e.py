"""``make e2e``: a person's day with the payout DAGs, in a real browser against a running demo.

Starts the demo (``scripts/demo.py``) on free ports in a folder of its own (``var/e2e/demo``),
drives Debian's Chromium with Playwright through eight steps, screenshots each one under
``var/e2e/`` (``01-login-maker.png`` ...), and stops exactly the process groups that demo
recorded (``scripts/stop.py``), pass or fail:

1. log in as the maker; 2. trigger ``payout_by_reference`` from its form and see the run;
3. see a bad amount fail the run's first task with a readable message in its log (and nothing
sent); 4. trigger ``payout_batch``;
5. log in as the checker and approve the batch on the run's "Required actions" page;
6. see the maker's approval of their own run refused; 7. open the Payouts view (nav "Payouts")
and find the batch, its totals and its report download; 8. follow a task's "Payout invoice" link
to the view's invoice page.

Prints one line a step (``ok``/``FAIL``, what it saw, the screenshot) and a last line
``e2e: 8 steps, P passed, F failed``; exits 1 when a step failed.

Settings (environment): ``E2E_MAKER_USER`` / ``E2E_MAKER_PASSWORD`` (``maker`` / ``maker``),
``E2E_CHECKER_USER`` / ``E2E_CHECKER_PASSWORD`` (``checker`` / ``checker``), ``E2E_ADMIN_USER`` /
``E2E_ADMIN_PASSWORD`` (``admin`` / ``admin``: reads the REST API to check what the browser did),
``E2E_CHROMIUM`` (``/usr/bin/chromium``). A password defaults to the user's name (the demo's
convention). ``--url`` runs against an Airflow already running (nothing started or stopped);
``--keep`` leaves the demo running (``DEMO_VAR_DIR=var/e2e/demo make stop`` stops it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from chaos_stack import free_port
from e2e_ui import (
    CHROMIUM_ARGS,
    Api,
    User,
    answer,
    follow_link,
    log_in,
    open_required_action,
    open_trigger_form,
    run_id_from_url,
    set_field,
    submit_trigger,
    wait_for,
)
from payout_jobs.approval_api import SETTLE_SECONDS
from playwright.sync_api import Browser, Page, expect, sync_playwright

PROJECT = Path(__file__).resolve().parent.parent
OUT_DIR = PROJECT / "var" / "e2e"
DEMO_VAR = OUT_DIR / "demo"
MARKER = ".e2e-run"
SAMPLE_BATCH = PROJECT / "include" / "samples" / "batch_demo.csv"
SINGLE, BATCH = "payout_by_reference", "payout_batch"
APPROVE_SINGLE, APPROVE_BATCH = "approve_payout", "approve_batch"  # docs I10-INTERFACES.md
#: A valid payout for the sandbox's ``test_usd`` service (the demo's own values).
VALID_PAYOUT = {
    "Service": "test_usd",
    "Currency": "USD",
    "Amount": "125.50",
    "Service fields": '{"account": "4000123412"}',
    "Description": "make e2e: one payout from the trigger form",
}
BAD_AMOUNT = "12,50"  # a decimal comma: the mistake a person makes
#: What the run's discover_services task logs about it: the field, the reason, how to write it.
BAD_AMOUNT_MESSAGE = re.compile(r"amount: [^\n]*use digits and at most 2 decimals for USD, e\.g\. 125\.50")
#: Task states of a payout task that never started (the approval stood in its way).
NOT_STARTED = (None, "none", "scheduled", "queued", "skipped", "upstream_failed", "removed")


def user_from_env(role: str, default: str) -> User:
    name = os.environ.get(f"E2E_{role}_USER") or default
    return User(name, os.environ.get(f"E2E_{role}_PASSWORD") or name)


@dataclass
class Flow:
    """What the steps share: the browser, one page per user, and what earlier steps made."""

    base_url: str
    browser: Browser
    api: Api
    maker: User
    checker: User
    pages: dict[str, Page] = field(default_factory=dict)
    current: Page | None = None
    single_run: str | None = None
    batch_run: str | None = None
    batch_approved: bool = False

    def page_of(self, user: User) -> Page:
        """The page of ``user`` (a browser context of its own: its own login cookie)."""
        if user.name not in self.pages:
            context = self.browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(45_000)  # generous: 2 shared cores, a busy api-server
            context.set_default_navigation_timeout(90_000)
            self.pages[user.name] = context.new_page()
        self.current = self.pages[user.name]
        return self.current

    def needs(self, value: Any, step: str) -> Any:
        if not value:
            raise AssertionError(f"needs step {step}, which did not pass")
        return value


# --------------------------------------------------------------------------- the steps


def step_login_maker(flow: Flow) -> str:
    page = flow.page_of(flow.maker)
    log_in(page, flow.base_url, flow.maker)
    return f"signed in as {flow.maker.name!r}, the DAG list is shown"


def see_run_page(page: Page, run_id: str, user: User) -> None:
    """The run's page: its id as the heading, the triggering user named."""
    expect(page.get_by_role("heading", name=run_id)).to_be_visible()
    expect(page.get_by_text("Triggering User", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=user.name, exact=True).first).to_be_visible()


def fill_payout_form(flow: Flow, amount: str) -> Any:
    page = flow.page_of(flow.maker)
    dialog = open_trigger_form(page, flow.base_url, SINGLE)
    for title, value in {**VALID_PAYOUT, "Amount": amount}.items():
        set_field(dialog, title, value)
    return dialog


def step_trigger_single(flow: Flow) -> str:
    dialog = fill_payout_form(flow, VALID_PAYOUT["Amount"])
    page = dialog.page
    submit_trigger(dialog)
    run_id = run_id_from_url(page, SINGLE)
    see_run_page(page, run_id, flow.maker)
    run = flow.api.run(SINGLE, run_id)
    assert run["conf"]["amount"] == VALID_PAYOUT["Amount"], "the run's amount is not the form's"
    assert run["conf"]["service"] == VALID_PAYOUT["Service"], "the run's service is not the form's"
    assert run.get("triggering_user_name") == flow.maker.name, (
        f"triggered by {run.get('triggering_user_name')!r}, not the maker"
    )
    flow.single_run = run_id
    return f"run {run_id} ({run['state']}), triggered by {flow.maker.name!r}"


def step_bad_amount(flow: Flow) -> str:
    """The form takes a bad amount; the run's first task refuses it with a message a person can
    act on (the field, the rule, an example), never the typed value, and nothing is sent."""
    dialog = fill_payout_form(flow, BAD_AMOUNT)
    page = dialog.page
    submit_trigger(dialog)
    run_id = run_id_from_url(page, SINGLE)
    state = wait_for(
        f"{SINGLE} run {run_id} to end",
        lambda: (s := flow.api.run(SINGLE, run_id)["state"]) in ("success", "failed") and s,
        timeout=300,
    )
    assert state == "failed", f"the run of a bad amount ended {state!r}"
    discover = flow.api.task_state(SINGLE, run_id, "discover_services")
    assert discover == "failed", f"discover_services is {discover!r}, not failed"
    created = flow.api.task_state(SINGLE, run_id, "create_invoice")
    assert created in NOT_STARTED, f"create_invoice is {created!r} after a bad amount"
    page.goto(f"{flow.base_url}/dags/{SINGLE}/runs/{run_id}/tasks/discover_services")
    body = page.locator("body")
    expect(body).to_contain_text(BAD_AMOUNT_MESSAGE, timeout=90_000)
    line = page.get_by_text(BAD_AMOUNT_MESSAGE).first
    line.scroll_into_view_if_needed()
    shown = line.inner_text()
    assert BAD_AMOUNT not in body.inner_text(), f"the task log echoes the rejected value {BAD_AMOUNT!r}"
    said = BAD_AMOUNT_MESSAGE.search(shown)
    return (
        f"run {run_id} failed at discover_services, create_invoice {created or 'never ran'}; "
        f"the log says {said[0] if said else shown[:140]!r}; the value is not echoed"
    )


def step_trigger_batch(flow: Flow) -> str:
    page = flow.page_of(flow.maker)
    dialog = open_trigger_form(page, flow.base_url, BATCH)
    set_field(dialog, "Batch file", str(SAMPLE_BATCH))
    submit_trigger(dialog)
    run_id = run_id_from_url(page, BATCH)
    see_run_page(page, run_id, flow.maker)
    run = flow.api.run(BATCH, run_id)
    assert run["conf"]["batch_file"] == str(SAMPLE_BATCH), "the run's batch file is not the form's"
    assert run.get("triggering_user_name") == flow.maker.name, (
        f"triggered by {run.get('triggering_user_name')!r}, not the maker"
    )
    flow.batch_run = run_id
    return f"run {run_id} ({run['state']}) on {SAMPLE_BATCH.name}, triggered by {flow.maker.name!r}"


def wait_parked(flow: Flow, dag_id: str, run_id: str, task_id: str) -> None:
    """Wait until ``task_id`` has shown "awaiting input" for a few seconds, as a person would see it
    before answering (an answer in its first second can fail the task: approval_api.SETTLE_SECONDS)."""
    parked_since: list[float] = []

    def settled() -> bool:
        if flow.api.task_state(dag_id, run_id, task_id) != "awaiting_input":
            parked_since.clear()
            return False
        parked_since[:] = parked_since or [time.monotonic()]
        return time.monotonic() - parked_since[0] >= SETTLE_SECONDS + 1

    wait_for(f"{dag_id}.{task_id} of run {run_id} to await input", settled, timeout=300, interval=1)


def step_checker_approves(flow: Flow) -> str:
    run_id = flow.needs(flow.batch_run, "4")
    page = flow.page_of(flow.checker)
    log_in(page, flow.base_url, flow.checker)
    wait_parked(flow, BATCH, run_id, APPROVE_BATCH)
    action = open_required_action(page, flow.base_url, BATCH, run_id, APPROVE_BATCH)
    status = answer(action, "Approve")
    assert status is not None and status < 300, f"the checker's approval was not taken (HTTP {status})"
    expect(page.get_by_text(f"{APPROVE_BATCH} response successful").first).to_be_visible()
    detail = flow.api.hitl_detail(BATCH, run_id, APPROVE_BATCH)
    responder = (detail.get("responded_by_user") or {}).get("name")
    assert detail.get("response_received") and detail.get("chosen_options") == ["Approve"], detail
    assert responder == flow.checker.name, f"recorded as answered by {responder!r}"
    state = wait_for(
        f"{APPROVE_BATCH} to succeed",
        lambda: flow.api.task_state(BATCH, run_id, APPROVE_BATCH) == "success",
        timeout=120,
    )
    flow.batch_approved = bool(state)
    page.reload()
    return f"approved by {responder!r} (HTTP {status}); {APPROVE_BATCH} succeeded"


def step_self_approval_refused(flow: Flow) -> str:
    """The maker answers their own payout's approval: Airflow refuses it (403, the maker is not an
    assigned approver), nothing is sent; then the checker rejects it so the run ends cleanly."""
    run_id = flow.needs(flow.single_run, "2")
    wait_parked(flow, SINGLE, run_id, APPROVE_SINGLE)
    page = flow.page_of(flow.maker)
    action = open_required_action(page, flow.base_url, SINGLE, run_id, APPROVE_SINGLE)
    status = answer(action, "Approve")
    assert status == 403, f"the maker's own approval got HTTP {status}, not 403"
    time.sleep(10)  # an answer taken would resume the task within seconds
    detail = flow.api.hitl_detail(SINGLE, run_id, APPROVE_SINGLE)
    assert not detail.get("response_received"), f"the maker's answer was recorded: {detail}"
    approval = flow.api.task_state(SINGLE, run_id, APPROVE_SINGLE)
    assert approval == "awaiting_input", f"{APPROVE_SINGLE} is {approval!r} after the maker's answer"
    created = flow.api.task_state(SINGLE, run_id, "create_invoice")
    assert created in NOT_STARTED, f"create_invoice is {created!r} after the maker's own approval"
    page.screenshot(path=str(OUT_DIR / "06-self-approval-refused-maker.png"), timeout=60_000)

    checker = flow.page_of(flow.checker)  # a clean end: the checker rejects the payout
    if not checker.url.startswith(flow.base_url):
        log_in(checker, flow.base_url, flow.checker)
    action = open_required_action(checker, flow.base_url, SINGLE, run_id, APPROVE_SINGLE)
    rejected = answer(action, "Reject")
    assert rejected is not None and rejected < 300, f"the checker's rejection was not taken (HTTP {rejected})"
    expect(checker.get_by_text(f"{APPROVE_SINGLE} response successful").first).to_be_visible()
    end = wait_for(
        f"{SINGLE} run {run_id} to end",
        lambda: (s := flow.api.run(SINGLE, run_id)["state"]) in ("success", "failed") and s,
        timeout=300,
    )
    created = flow.api.task_state(SINGLE, run_id, "create_invoice")
    assert created in NOT_STARTED, f"create_invoice is {created!r} after the checker's rejection"
    checker.goto(f"{flow.base_url}/dags/{SINGLE}/runs/{run_id}")
    see_run_page(checker, run_id, flow.maker)
    return (
        f"the maker's Approve got HTTP 403, {APPROVE_SINGLE} kept awaiting input, nothing created; "
        f"the checker rejected it: run {end}, create_invoice {created or 'never ran'}"
    )


def open_payouts_view(flow: Flow, page: Page) -> Any:
    """Click the nav's "Payouts" (top level, or under the "Plugins" menu); return where it shows."""
    page.goto(f"{flow.base_url}/")
    expect(page.get_by_role("link", name="Dags").first).to_be_visible()  # the nav has rendered
    link = page.get_by_role("link", name="Payouts", exact=True)
    plugins = page.get_by_role("button", name=re.compile("Plugins"))
    expect(link.or_(plugins).first).to_be_visible()
    if not link.count():
        plugins.click()
        link = page.get_by_role("menuitem", name="Payouts").or_(page.get_by_role("link", name="Payouts"))
    _, view = follow_link(page, page.context, link.first)
    assert "/payouts" in view.url, f"the nav's Payouts opened {view.url}"
    return view


def step_payouts_view(flow: Flow) -> str:
    run_id = flow.needs(flow.batch_approved and flow.batch_run, "5")
    wait_for(
        f"{BATCH} run {run_id} to finish",
        lambda: flow.api.run(BATCH, run_id)["state"] in ("success", "failed"),
        timeout=300,
    )
    report = flow.api.xcom(BATCH, run_id, "report")
    batch_id = report["batch_id"]
    #: (status, currency, amount) of each row of the batch's totals, as the report has them
    totals = [
        (status, currency, figures["amount"])
        for status, per_currency in report["totals"].items()
        for currency, figures in per_currency.items()
    ]
    assert totals, f"the report of {batch_id} has no totals: {report}"
    page = flow.page_of(flow.checker)
    view = open_payouts_view(flow, page)
    view.get_by_role("link", name=batch_id).first.click()
    view.wait_for_url(re.compile(rf"/payouts/batches/{re.escape(batch_id)}"))
    expect(view.get_by_role("heading", name=f"Batch {batch_id}")).to_be_visible()
    header = view.get_by_role("columnheader", name="Processed", exact=True)
    totals_rows = view.locator("table").filter(has=header).get_by_role("row")
    for status, currency, amount in totals:  # the same figures as the report's, per currency
        row = totals_rows.filter(has=view.get_by_role("cell", name=currency, exact=True)).filter(
            has=view.get_by_role("cell", name=amount, exact=True)
        )
        expect(row, f"the totals row {status} {amount} {currency}").not_to_have_count(0)
    download = view.get_by_role("link", name=re.compile(r"report\.csv", re.I)).first
    href = download.get_attribute("href") or ""
    csv = page.context.request.get(urljoin(view.url, href))
    assert csv.ok, f"the report download answered HTTP {csv.status}"
    lines = csv.text().strip().splitlines()
    assert len(lines) == report["rows"] + 1, (
        f"report.csv has {len(lines) - 1} rows, the batch {report['rows']}"
    )
    download.scroll_into_view_if_needed()
    shown = ", ".join(f"{status} {amount} {currency}" for status, currency, amount in totals)
    return f"batch {batch_id}: totals {shown} shown; report.csv downloads ({len(lines) - 1} rows)"


def step_invoice_link(flow: Flow) -> str:
    run = flow.api.latest_run(SINGLE, "success")
    assert run, f"no successful {SINGLE} run to take the link from (the demo makes one)"
    run_id = run["dag_run_id"]
    invoice_id = flow.api.xcom(SINGLE, run_id, "create_invoice")
    page = flow.page_of(flow.checker)
    if not page.url.startswith(flow.base_url):
        log_in(page, flow.base_url, flow.checker)
    page.goto(f"{flow.base_url}/dags/{SINGLE}/runs/{run_id}/tasks/create_invoice")
    page.get_by_role("tab", name="Details").or_(
        page.get_by_role("link", name="Details", exact=True)
    ).first.click()
    link = page.get_by_role("link", name="Payout invoice")
    expect(link).to_be_visible()
    landed, view = follow_link(page, page.context, link)
    flow.current = landed
    assert re.search(rf"/payouts/invoices/{re.escape(invoice_id)}/?$", view.url.split("?")[0]), (
        f"the link opened {view.url}, not the view's page of {invoice_id}"
    )
    expect(view.locator("body")).to_contain_text(invoice_id)
    return f"{SINGLE} run {run_id}: create_invoice's link opened /payouts/invoices/{invoice_id}"


@dataclass(frozen=True)
class Step:
    slug: str
    title: str
    run: Callable[[Flow], str]


STEPS = (
    Step("login-maker", "log in as the maker", step_login_maker),
    Step("trigger-payout", f"trigger {SINGLE} from the form", step_trigger_single),
    Step("bad-amount-refused", "a bad amount fails the run, readably", step_bad_amount),
    Step("trigger-batch", f"trigger {BATCH} from the form", step_trigger_batch),
    Step("checker-approves", "the checker approves the batch", step_checker_approves),
    Step("self-approval-refused", "the maker's own approval is refused", step_self_approval_refused),
    Step("payouts-view", "Payouts view: the batch, its totals, its report", step_payouts_view),
    Step("invoice-link", "a task's Payout invoice link", step_invoice_link),
)


# --------------------------------------------------------------------------- running


def run_steps(base_url: str, chromium: str) -> list[bool]:
    maker = user_from_env("MAKER", "maker")
    checker = user_from_env("CHECKER", "checker")
    api = Api(base_url, user_from_env("ADMIN", "admin"))
    results = []
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        flow = Flow(base_url, browser, api, maker, checker)
        try:
            for number, step in enumerate(STEPS, start=1):
                results.append(run_step(flow, number, step))
        finally:
            browser.close()
    return results


def run_step(flow: Flow, number: int, step: Step) -> bool:
    shot = OUT_DIR / f"{number:02d}-{step.slug}.png"
    started = time.monotonic()
    try:
        detail, passed = step.run(flow), True
    except Exception as exc:  # one step's failure is reported, and the next steps still run
        detail, passed = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}", False
    if flow.current is not None:
        try:
            flow.current.screenshot(path=str(shot), timeout=60_000)
        except Exception as exc:
            detail += f" (no screenshot: {type(exc).__name__})"
    verdict = "ok  " if passed else "FAIL"
    print(
        f"step {number}/{len(STEPS)} {verdict} {step.title} ({time.monotonic() - started:.0f} s): "
        f"{detail} -- {shot.relative_to(PROJECT)}",
        flush=True,
    )
    return passed


def demo_env(airflow_port: int, sandbox_port: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "DEMO_VAR_DIR": str(DEMO_VAR),
        "DEMO_STATE_FILE": str(DEMO_VAR / "demo" / "state.json"),
        "DEMO_AIRFLOW_PORT": str(airflow_port),
        "DEMO_SANDBOX_PORT": str(sandbox_port),
    }


def stop_demo(env: dict[str, str]) -> None:
    stopped = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(PROJECT / "scripts" / "stop.py")], env=env, capture_output=True, text=True
    )
    for line in (stopped.stdout + stopped.stderr).strip().splitlines():
        print(f"[e2e] {line}", flush=True)


def fresh_demo_folder(env: dict[str, str]) -> None:
    """Stop what an earlier ``make e2e`` recorded, then empty its folder (only one it made)."""
    if DEMO_VAR.exists():
        if not (DEMO_VAR / MARKER).exists():
            raise SystemExit(f"{DEMO_VAR} exists and was not made by make e2e; move it away")
        stop_demo(env)
        shutil.rmtree(DEMO_VAR)
    DEMO_VAR.mkdir(parents=True)
    (DEMO_VAR / MARKER).write_text("made by scripts/e2e.py; emptied by the next make e2e\n")


def start_demo(env: dict[str, str]) -> bool:
    log = OUT_DIR / "demo.log"
    print(f"[e2e] starting the demo on 127.0.0.1:{env['DEMO_AIRFLOW_PORT']} (output in {log})", flush=True)
    with log.open("w") as out:
        demo = subprocess.run(  # noqa: S603 - our own script
            [sys.executable, str(PROJECT / "scripts" / "demo.py")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    if demo.returncode != 0:
        tail = log.read_text().strip().splitlines()[-15:]
        print("[e2e] the demo failed:\n" + "\n".join(tail), flush=True)
    return demo.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an Airflow already running (nothing is started or stopped)")
    parser.add_argument("--keep", action="store_true", help="leave the demo running")
    args = parser.parse_args(argv)
    chromium = os.environ.get("E2E_CHROMIUM") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        raise SystemExit(f"{chromium} is missing: `make e2e` installs Debian's chromium")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUT_DIR.glob("*.png"):
        old.unlink()

    env: dict[str, str] | None = None
    try:
        if args.url:
            base_url = args.url.rstrip("/")
        else:
            env = demo_env(free_port(), free_port())
            fresh_demo_folder(env)
            base_url = f"http://127.0.0.1:{env['DEMO_AIRFLOW_PORT']}"
        if env is None or start_demo(env):
            results = run_steps(base_url, chromium)
        else:
            results = [False] * len(STEPS)
            for number, step in enumerate(STEPS, start=1):
                print(f"step {number}/{len(STEPS)} FAIL {step.title}: not run, the demo did not start")
    finally:
        if env is not None:
            if args.keep:
                print(f"[e2e] the demo keeps running: DEMO_VAR_DIR={DEMO_VAR} make stop", flush=True)
            else:
                stop_demo(env)
    passed = sum(results)
    print(f"e2e: {len(STEPS)} steps, {passed} passed, {len(STEPS) - passed} failed", flush=True)
    return 0 if passed == len(STEPS) else 1


if __name__ == "__main__":
    sys.exit(main())
