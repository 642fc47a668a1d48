"""What ``make e2e`` does in Airflow 3.3's UI, and how it checks the result over the REST API.

Selectors are by role, label and visible text (what a person reads), never by CSS classes:

- Login (simple auth manager, ``/auth/login``): fields "Username" and "Password", button "Sign in".
- Trigger form (a dialog opened by the "Trigger" button of a DAG's page): one ``group`` per param
  with a ``label`` holding the param's ``title`` (plus "*" when required); text inputs, a select
  (combobox + options) for an ``enum``, a Monaco code editor for an ``object``; the dialog's
  "Trigger" button; success opens the run's page ``/dags/<dag>/runs/<run_id>``; a refused
  trigger keeps the dialog open with the API's message in it.
- Required actions (human-in-the-loop): ``/dags/<dag>/runs/<run>/required_actions`` opens the
  dialog "Required Actions": a table of the run's pending actions (a row per task, its task id in
  a cell) and, for the selected row, its details (task id linked) with one button per option
  ("Approve", "Reject"); a good answer shows the toast "<task> response successful". Airflow's
  UI shows nothing on a 403 (it drops that error), so a refusal is also read from the HTTP answer
  and the REST API.
- Extra links: the task instance's "Details" tab, section "Extra Links", one link per extra link
  (same origin: same tab; other origin: a new tab).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
from playwright.sync_api import BrowserContext, Locator, Page, expect
from playwright.sync_api import Error as PlaywrightError

#: Debian's Chromium, started as root in a container: flags that keep it off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_URL = re.compile(r"/dags/(?P<dag>[^/]+)/runs/(?P<run>[^/?#]+)")


@dataclass(frozen=True)
class User:
    name: str
    password: str


class Api:
    """Airflow's REST API as one user (a bearer token from ``/auth/token``): the checks' side."""

    def __init__(self, base_url: str, user: User) -> None:
        token = httpx.post(
            f"{base_url}/auth/token", json={"username": user.name, "password": user.password}, timeout=60
        )
        token.raise_for_status()
        self.client = httpx.Client(
            base_url=f"{base_url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=60,
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def run_count(self, dag_id: str) -> int:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=1)["total_entries"]

    def latest_run(self, dag_id: str, state: str) -> dict[str, Any] | None:
        runs = self.get(f"/dags/{dag_id}/dagRuns", state=state, order_by="-run_after", limit=1)
        return runs["dag_runs"][0] if runs["dag_runs"] else None

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        response = self.client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        return response.json().get("state") if response.status_code == 200 else None

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails")

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.get(path)["value"]


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 2.0) -> Any:
    """Call ``check`` until it returns something truthy; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- login


def log_in(page: Page, base_url: str, user: User) -> None:
    """Open the UI, get sent to the login page, sign in; fail with the page's words if refused."""
    page.goto(f"{base_url}/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(user.name)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    try:
        page.wait_for_url(lambda url: "/auth/" not in url, timeout=60_000)
    except PlaywrightError as exc:
        shown = " ".join(page.locator("body").inner_text().split())[:200]
        raise AssertionError(f"login as {user.name!r} refused; the page says: {shown}") from exc
    expect(page.get_by_role("link", name="Dags").first).to_be_visible()


# --------------------------------------------------------------------------- trigger form


def open_trigger_form(page: Page, base_url: str, dag_id: str) -> Locator:
    page.goto(f"{base_url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=re.compile(rf"Trigger Dag\W+{dag_id}"))).to_be_visible()
    return dialog


def form_field(dialog: Locator, title: str) -> Locator:
    """The form row (role ``group``) whose label is the param's title (a trailing "*" allowed)."""
    label = dialog.page.locator("label").filter(has_text=re.compile(rf"^\s*{re.escape(title)}\s*\*?\s*$"))
    field = dialog.get_by_role("group").filter(has=label)
    expect(field, f"form field {title!r}").to_have_count(1)
    return field


def set_field(dialog: Locator, title: str, value: str) -> None:
    """Type ``value`` into a text field, pick it from a select, or put JSON into a code editor."""
    field = form_field(dialog, title)
    page = dialog.page
    editor = field.get_by_role("code")
    if editor.count():  # Monaco: one edit (typing would auto-close brackets and be reformatted)
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(value)
        return
    text = field.locator("input[type=text], input:not([type]), textarea")
    if text.count():  # a plain input, or one with suggestions (datalist)
        text.first.fill(value)
        return
    field.get_by_role("combobox").first.click()  # a select (enum): pick the option
    page.get_by_role("option", name=value, exact=True).click()
    expect(field).to_contain_text(value)


def submit_trigger(dialog: Locator) -> None:
    button = dialog.get_by_role("button", name="Trigger", exact=True)
    expect(button, "the form's Trigger button (disabled: the form finds a field invalid)").to_be_enabled()
    button.click()


def run_id_from_url(page: Page, dag_id: str, timeout: float = 30_000) -> str:
    """The run page the UI opens after a trigger: its run id."""
    page.wait_for_url(re.compile(rf"/dags/{re.escape(dag_id)}/runs/[^/?#]+"), timeout=timeout)
    match = RUN_URL.search(page.url)
    assert match, page.url
    return unquote(match["run"])


# --------------------------------------------------------------------------- required actions


def open_required_action(page: Page, base_url: str, dag_id: str, run_id: str, task_id: str) -> Locator:
    """The run's "Required Actions" page (a dialog: the run's actions, the selected one's details
    and its answer buttons) with the action of ``task_id`` selected; waits for it to be asked."""
    dialog = page.get_by_role("dialog", name="Required Actions")
    row = dialog.get_by_role("row").filter(has=page.get_by_role("cell", name=task_id, exact=True))

    def listed() -> bool:
        page.goto(f"{base_url}/dags/{dag_id}/runs/{run_id}/required_actions")
        try:
            row.first.wait_for(timeout=30_000)
        except PlaywrightError:
            return False
        return True

    wait_for(f"the required action {task_id} of {dag_id} run {run_id}", listed, timeout=240, interval=1)
    row.first.click()
    expect(dialog.get_by_role("link", name=task_id, exact=True)).to_be_visible()
    return dialog


def answer(scope: Locator, option: str) -> int | None:
    """Click the option's button in ``scope`` if it can be clicked; return the HTTP status of the
    answer (None: no such button, or it is disabled, or nothing was sent)."""
    page = scope.page
    button = scope.get_by_role("button", name=option, exact=True)
    try:
        button.wait_for(timeout=15_000)
    except PlaywrightError:
        return None
    if not button.is_enabled():
        return None
    try:
        with page.expect_response(
            lambda r: "/hitlDetails" in r.url and r.request.method == "PATCH", timeout=15_000
        ) as response:
            button.click()
    except PlaywrightError:
        return None
    return response.value.status


# --------------------------------------------------------------------------- plugin views


def follow_link(page: Page, context: BrowserContext, link: Locator) -> tuple[Page, Any]:
    """Click ``link``; return the page and frame where its target shows: a new tab, an iframe
    (an external view with a ``url_route``) or the same page."""
    if (link.get_attribute("target") or "") == "_blank":
        with context.expect_page() as popup:
            link.click()
        opened = popup.value
        opened.wait_for_load_state()
        return opened, opened.main_frame
    link.click()
    page.wait_for_load_state()

    iframe = page.locator("iframe[src*='/payouts']").first  # an external view with a url_route
    try:
        iframe.wait_for(timeout=15_000)
    except PlaywrightError:
        return page, page.main_frame
    view = iframe.element_handle().content_frame()
    assert view is not None, "the view's iframe has no content"
    view.wait_for_load_state()
    return page, view
