"""Eight reviewers on one server at once, in real Chromium (one browser, eight contexts,
driven concurrently with Playwright's async API).

Each reviewer opens the dashboard, switches the Data page to the German credit table,
chooses its own sensitive attributes, saves its own study, then starts the smallest run the
Train page offers (1 pretraining epoch, 1 fine-tuning epoch, the linear strategy only, 100
bootstrap resamples) and moves between pages while the jobs run. Checked: nothing leaks
between sessions (each sees its own study, groups and run), the eight jobs queue in the one
worker and all succeed, no page shows an error, and every interaction finishes; the time from
each interaction to its expected content is recorded and the slowest is printed
(docs/reliability.md).

Each reviewer keeps moving between Data (where it reads for a few seconds) and Train until the
store says its run finished, then
opens Train once more and must see the finished run. It does not wait on an open Train page
for the live progress to turn into the result: with eight tabs, that page was seen to keep
polling after its run finished and, once, to stay on "waiting in the queue" (docs/reliability.md,
Known limits; a single reviewer's live progress is tested in test_audit_workflow.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import statistics
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, WebSocket, async_playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from core.results.wording import STRATEGY_LABELS
from core.workspace.store import Workspace

pytestmark = pytest.mark.e2e
REVIEWERS = 8
WAIT_MS = 90_000
RUN_MS = 360_000
# No reviewer's set-up equals another test's study in the same session's workspace (the Data page
# test below saves German with 'housing' alone): an identical set-up is reused, not saved again.
SENSITIVE = [["sex"], ["age"], ["foreign_worker"], ["personal_status"], ["job"], ["telephone"], ["sex", "housing"],
             ["age", "foreign_worker"]]
STRATEGY = "linear"
N_BOOT = 100  # the fewest bootstrap resamples the Train page offers
PICK_TRIES, PICK_MS = 4, 20_000  # opening a dropdown again when a redraw closed it (pick)
# Seconds each reviewer spends on the Data page between its visits to Train while the queue runs.
# Without it the eight tabs switched pages non-stop (84 Train pages, each polling its progress
# every second, in one run) and the one worker, sharing two cores with them, drained the queue of
# eight one-epoch German runs in 154 s, where the same runs take 2-5 s each on their own.
READ_S = 10.0


def words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


class Clock:
    """Seconds from an interaction to its expected content, per step, for every reviewer."""

    def __init__(self) -> None:
        self.times: list[tuple[str, int, float]] = []

    async def __call__(self, reviewer: int, step: str, action, expected) -> None:
        start = time.perf_counter()
        if action is not None:
            await action
        await expect(expected).to_be_visible(timeout=WAIT_MS)
        self.times.append((step, reviewer, time.perf_counter() - start))


class ScriptRuns:
    """The app's runs as one browser tab's websocket carries them: each interaction sends a
    rerun request (BackMsg.rerun_script), each run that the server completes ends with a
    ForwardMsg.script_finished (a run cut short by a newer request says so and is not counted).

    Why not wait for the "Running..." badge to go? It appears only after a delay, and on two
    shared cores the server may not have started the run when a fixed pause ends; an
    interaction sent then is drawn over by the late run (a typed name lost, a setting reset)."""

    def __init__(self, page: Page) -> None:
        self.events = 0
        self.last_request = 0
        self.last_finish = 0
        page.on("websocket", self._watch)

    def _watch(self, socket: WebSocket) -> None:
        socket.on("framesent", self._sent)
        socket.on("framereceived", self._received)

    def _sent(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            message = BackMsg()
            message.ParseFromString(payload)
            if message.WhichOneof("type") == "rerun_script":
                self.events += 1
                self.last_request = self.events

    def _received(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            message = ForwardMsg()
            message.ParseFromString(payload)
            if (message.WhichOneof("type") == "script_finished"
                    and message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN):
                self.events += 1
                self.last_finish = self.events

    @property
    def idle(self) -> bool:
        """The server has finished a run that started after the last request."""
        return self.last_finish > self.last_request

    async def settle(self) -> None:
        """Wait until idle (async API)."""
        await asyncio.sleep(0.25)  # the request's frame event reaches Python just after the click
        deadline = time.monotonic() + WAIT_MS / 1000
        while not self.idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not finish a run within {WAIT_MS / 1000:.0f} s")
            await asyncio.sleep(0.05)

    def settle_sync(self, page) -> None:
        """Wait until idle (sync API: Playwright delivers the frame events while the page waits)."""
        page.wait_for_timeout(250)
        deadline = time.monotonic() + WAIT_MS / 1000
        while not self.idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not finish a run within {WAIT_MS / 1000:.0f} s")
            page.wait_for_timeout(50)


RUNS: dict[int, ScriptRuns] = {}


async def settle(page: Page) -> None:
    """Wait until the app has finished the rerun an interaction started."""
    await RUNS[id(page)].settle()


async def pick(page: Page, open_list, option) -> None:
    """Open a dropdown (`open_list()`) and click `option`; open it again if a redraw closed it.

    A click while the page is still drawing opens a list that the redraw closes again: reviewer 5
    once waited 90 s for the option list (its screenshot showed the idle Data page), and reviewer 4
    another time, after the wait for the page's runs to settle. A reviewer would click again; so does
    this, at most PICK_TRIES times."""
    for attempt in range(1, PICK_TRIES + 1):
        await settle(page)
        await open_list()
        try:
            await option.click(timeout=PICK_MS)
            return
        except PlaywrightTimeout:
            if attempt == PICK_TRIES:
                raise
            await page.keyboard.press("Escape")


async def choose(page: Page, widget: str, label: str, option: str) -> None:
    box = page.get_by_test_id(widget).filter(has_text=label).first
    await pick(page, box.click, page.get_by_role("option", name=option, exact=True))
    await settle(page)


async def replace_choices(page: Page, label: str, options: list[str]) -> None:
    box = page.get_by_test_id("stMultiSelect").filter(has_text=label)
    await box.get_by_role("button", name=re.compile("Clear all", re.I)).click()
    await settle(page)
    for option in options:  # the list is virtual: type the option to bring it into view
        label = re.compile(rf"^{re.escape(option)}(:.*)?$")  # options may carry a description

        async def open_and_type(text: str = option) -> None:
            await box.click()
            await page.keyboard.press("Control+A")  # a second try replaces what the first one typed
            await page.keyboard.type(text)

        await pick(page, open_and_type, page.get_by_role("option", name=label))
        await settle(page)
    await page.keyboard.press("Escape")
    for option in options:
        await expect(box.get_by_text(re.compile(rf"^{re.escape(option)}(:.*)?$"))).to_be_visible()


async def set_number(page: Page, label: str, value: int) -> None:
    field = page.get_by_test_id("stNumberInput").filter(has_text=label).locator("input")
    await field.fill(str(value))
    await field.press("Enter")
    await settle(page)
    await expect(field).to_have_value(str(value))


async def first_choice(page: Page, label: str, expected: str) -> None:
    """Move a select slider to its first (smallest) choice with the keyboard."""
    slider = page.get_by_test_id("stSlider").filter(has_text=label)
    await slider.get_by_role("slider").focus()
    await page.keyboard.press("Home")
    await settle(page)
    await expect(slider.get_by_test_id("stSliderThumbValue")).to_have_text(expected)


async def no_error_box(page: Page) -> None:
    await expect(page.get_by_test_id("stException")).to_have_count(0)
    await expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)


async def open_page(clock: Clock, page: Page, reviewer: int, title: str, expected: str) -> None:
    """Click a sidebar link until its page shows `expected`, at most PICK_TRIES times.

    A click while the Train page's progress fragment reruns can be lost: in one CI run reviewers 5
    and 7 clicked Data, the link took the hover colour and the page was still Train 90 s later
    (docs/reliability.md, Known limits). A reviewer would click again; so does this."""
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True)
    target = page.get_by_text(expected).first

    async def click_until_open() -> None:
        for attempt in range(1, PICK_TRIES + 1):
            await link.click()
            try:
                await expect(target).to_be_visible(timeout=PICK_MS)
                return
            except AssertionError:
                if attempt == PICK_TRIES:
                    raise

    await clock(reviewer, f"open {title}", click_until_open(), target)


def run_finished(store: Workspace, name: str) -> bool:
    """Whether the study called `name` has a finished run (read from the store, not the page)."""
    study = next(s for s in store.list_studies() if s["name"] == name)
    return any(r["status"] in ("succeeded", "failed", "cancelled") for r in store.list_runs(study_id=study["id"]))


async def reviewer(i: int, browser, url: str, root: Path, clock: Clock, shots: Path) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 1400})
    context.set_default_timeout(WAIT_MS)  # eight sessions on two shared cores: clicks can wait
    page = await context.new_page()
    RUNS[id(page)] = ScriptRuns(page)
    name, attributes = f"Reviewer {i}", SENSITIVE[i]
    sidebar = page.get_by_test_id("stSidebar")
    try:
        await clock(i, "open the app", page.goto(url), page.get_by_role("heading", name="Data", exact=True))
        await clock(i, "choose a dataset", choose(page, "stSelectbox", "Dataset", "Statlog German Credit"),
                    page.get_by_text(re.compile(r"1,000 rows × 22 columns")))
        name_field = page.get_by_test_id("stTextInput").filter(has_text="Study name").locator("input")
        await clock(i, "choose attributes", replace_choices(page, "Sensitive attributes", attributes),
                    page.get_by_placeholder(f"Statlog German Credit: credit by {words(attributes)}"))
        await settle(page)
        await name_field.fill(name)
        await expect(name_field).to_have_value(name)
        await clock(i, "save the study", page.get_by_role("button", name=re.compile("Save study")).click(),
                    page.get_by_text(f"Saved study {name}"))
        await expect(sidebar.get_by_text(f"Compares groups of: {words(attributes)}")).to_be_visible()

        await open_page(clock, page, i, "Train", "Expected time")
        await expect(page.get_by_text(f"Study: {name}.")).to_be_visible()
        await settle(page)
        await set_number(page, "Pretraining epochs", 1)
        await set_number(page, "Fine-tuning epochs", 1)
        # The page names strategies in plain words (issue 17); the config keeps the code name.
        await replace_choices(page, "Fine-tuning strategies", [STRATEGY_LABELS[STRATEGY]])
        caption = re.compile(rf"^{re.escape(STRATEGY_LABELS[STRATEGY])}: [^;]*\.$")  # drawn by the server
        await expect(page.get_by_text(caption)).to_be_visible()
        await first_choice(page, "Bootstrap resamples", str(N_BOOT))
        for label in ("Pretraining epochs", "Fine-tuning epochs"):  # what Start sends is what the page shows
            field = page.get_by_test_id("stNumberInput").filter(has_text=label).locator("input")
            await expect(field).to_have_value("1")
        await clock(i, "start a run", page.get_by_role("button", name=re.compile("^Start")).click(),
                    page.get_by_text(re.compile(r"is (running|waiting in the queue)")).first)

        store, deadline, rounds = Workspace(root, recover=False), time.monotonic() + RUN_MS / 1000, 0
        while True:  # use the app while the queue runs; the last Train page is drawn after the run ended
            done = await asyncio.to_thread(run_finished, store, name)
            await open_page(clock, page, i, "Data", "1. The table")
            await asyncio.sleep(READ_S)  # reading the Data page: an idle tab, as a reviewer's mostly is
            await open_page(clock, page, i, "Train", "Expected time")
            rounds += 1
            if done and rounds >= 2:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the run of {name} did not finish within {RUN_MS / 1000:.0f} s")
        await expect(page.get_by_text("Latest finished run")).to_be_visible()
        await no_error_box(page)
        await expect(page.get_by_text(f"Study: {name}.")).to_be_visible()
        await expect(sidebar.get_by_text(f"Compares groups of: {words(attributes)}")).to_be_visible()
        await open_page(clock, page, i, "Review & report", "1. Review notes")
        await expect(sidebar.get_by_text(name, exact=True)).to_be_visible()
        await no_error_box(page)
        if i == 0:
            await page.screenshot(path=shots / "reviewer-0.png")
    except Exception:
        with contextlib.suppress(Exception):
            await page.screenshot(path=shots / f"reviewer-{i}-failed.png", timeout=15_000)
        raise
    finally:
        await context.close()


def why(error: BaseException) -> str:
    """The error's first line and the line naming what was awaited."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    waited = [line for line in lines if line.startswith(("- waiting for", "- Expect"))]
    return " | ".join(lines[:1] + waited[:1])


async def all_reviewers(url: str, root: Path, launch_args: dict, clock: Clock, shots: Path) -> None:
    expect.set_options(timeout=WAIT_MS)  # eight sessions on two shared cores: content can take a while
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_args)
        try:
            outcomes = await asyncio.gather(*(reviewer(i, browser, url, root, clock, shots) for i in range(REVIEWERS)),
                                            return_exceptions=True)
        finally:
            await browser.close()
    failures = [f"reviewer {i}: {type(o).__name__}: {why(o)}" for i, o in enumerate(outcomes)
                if isinstance(o, BaseException)]
    assert not failures, f"screenshots in {shots}\n" + "\n".join(failures)


@pytest.mark.timeout(600)
def test_eight_reviewers_at_once_keep_their_own_state_and_all_jobs_finish(
        app_url: str, e2e_workspace: Path, browser_type_launch_args: dict, tmp_path: Path):
    clock = Clock()
    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its own event loop, away from sync Playwright
        pool.submit(asyncio.run, all_reviewers(app_url, e2e_workspace, browser_type_launch_args, clock,
                                              tmp_path)).result()
    wall = time.perf_counter() - began

    ws = Workspace(e2e_workspace)
    studies = {s["name"]: s for s in ws.list_studies() if s["name"].startswith("Reviewer ")}
    assert sorted(studies) == [f"Reviewer {i}" for i in range(REVIEWERS)]
    runs = []
    for i in range(REVIEWERS):
        study = studies[f"Reviewer {i}"]
        assert study["dataset"] == "german" and study["spec"]["sensitive"] == SENSITIVE[i]
        own = ws.list_runs(study_id=study["id"])
        assert [r["status"] for r in own] == ["succeeded"], own
        config = own[0]["config"]
        assert (config["epochs"], config["finetune_epochs"], config["strategies"], config["n_boot"]) == (
            1, 1, [STRATEGY], N_BOOT)
        assert own[0]["config"]["sensitive"] == SENSITIVE[i]
        runs += own
    runs.sort(key=lambda r: r["started_at"])
    for earlier, later in zip(runs, runs[1:]):  # one worker: the jobs ran one after another
        assert earlier["finished_at"] <= later["started_at"]

    slowest = max(clock.times, key=lambda t: t[2])
    by_step: dict[str, list[float]] = {}
    for step, _, seconds in clock.times:
        by_step.setdefault(step, []).append(seconds)
    print(f"\n{REVIEWERS} reviewers, {len(clock.times)} timed interactions in {wall:.0f} s; slowest page time "
          f"{slowest[2]:.1f} s ({slowest[0]}, reviewer {slowest[1]}); queue of {len(runs)} runs drained in "
          f"{_seconds(runs[0]['started_at'], runs[-1]['finished_at']):.0f} s")
    for step, values in by_step.items():
        print(f"  {step:<20} median {statistics.median(values):5.1f} s   max {max(values):5.1f} s   (n={len(values)})")
    assert len(clock.times) >= REVIEWERS * 11  # open, dataset, attributes, save, Start, 2+ x (Data, Train), Review


def _seconds(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_the_data_page_still_shows_the_current_study_after_a_run_was_started(page, app_url: str):
    """One reviewer: save a German study, start a run, cancel it, come back to the Data page: the
    form must show that study (German, 'housing'), not the start-up defaults (Adult, sex and race).

    Found by the eight-reviewer test and fixed (docs/reliability.md): the Train page's progress
    fragment reruns on its own, and the page switch after such a fragment run dropped the Data
    form's values (tests/dashboard/test_data_form_state.py reproduces it without a browser)."""
    from playwright.sync_api import expect as sync_expect

    runs = ScriptRuns(page)

    def settled() -> None:
        runs.settle_sync(page)

    page.set_default_timeout(WAIT_MS)
    page.goto(app_url)
    sync_expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("stSelectbox").filter(has_text="Dataset").first.click()
    page.get_by_role("option", name="Statlog German Credit", exact=True).click()
    settled()
    box = page.get_by_test_id("stMultiSelect").filter(has_text="Sensitive attributes")
    box.get_by_role("button", name=re.compile("Clear all", re.I)).click()
    settled()
    box.click()
    page.keyboard.type("housing")
    page.get_by_role("option", name="housing", exact=True).click()
    settled()
    page.keyboard.press("Escape")
    page.get_by_test_id("stTextInput").filter(has_text="Study name").locator("input").fill("Housing only")
    page.get_by_role("button", name=re.compile("Save study")).click()
    sync_expect(page.get_by_text("Saved study Housing only")).to_be_visible(timeout=WAIT_MS)
    settled()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train", exact=True).click()
    sync_expect(page.get_by_text("Expected time")).to_be_visible(timeout=WAIT_MS)
    settled()
    page.get_by_role("button", name=re.compile("^Start")).click()
    sync_expect(page.get_by_text(re.compile(r"is (running|waiting in the queue)")).first).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("button", name=re.compile("Cancel this run")).first.click()
    settled()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Data", exact=True).click()
    sync_expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=WAIT_MS)
    settled()
    sync_expect(page.get_by_text("This set-up is saved as the current study, Housing only")).to_be_visible(
        timeout=WAIT_MS)
    sync_expect(page.get_by_role("combobox", name="Dataset")).to_have_value("Statlog German Credit")
    chosen = page.get_by_test_id("stMultiSelect").filter(has_text="Sensitive attributes")
    sync_expect(chosen.get_by_text(re.compile(r"^housing(:.*)?$"))).to_be_visible()
    sync_expect(chosen.get_by_text(re.compile(r"^(sex|race)(:.*)?$"))).to_have_count(0)
