"""Notebook 04 in a real browser: JupyterLab in headless Chromium runs it in quick mode, the viewer renders,
and its image changes when each control changes.

Needs Debian's `chromium` (apt-get install -y chromium) and playwright-python (pip install playwright;
no `playwright install`: the system Chromium is used). Skipped, with the reason, when either is missing.
Set DTLIB_BROWSER_SCREENSHOT=images/viewer_browser.png to keep the screenshot of the rendered viewer.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "04_attention_maps.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT_MS = 600_000  # the whole notebook in quick mode: 1-3 minutes on one CPU core, room for a busy one
REDRAW_TIMEOUT_MS = 30_000
# True once every code cell's prompt shows an execution count, "[12]:" (not "[ ]:" or "[*]:").
ALL_CELLS_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: apt-get install -y chromium"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path, shared_cifar_dir):
    """A JupyterLab server on a copy of notebook 04 (autosave must not touch the committed file), quick mode."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = free_port(), "dtlib-browser-test"
    # Every cell in the DOM (no windowing), so the test can read every prompt.
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = {**os.environ, "DTLIB_QUICK": "1", "DTLIB_DATA": str(shared_cifar_dir), "DTLIB_RUNS": str(tmp_path / "runs"),
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings")}
    env.pop("DTLIB_CHECKPOINT", None)
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--allow-root"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # the server answers within a few seconds
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not start: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
        yield f"{url}/lab/tree/{NOTEBOOK.name}?token={token}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def control(page, kind: str, label: str):
    """The ipywidgets control of class widget-`kind` whose label reads `label`."""
    return page.locator(f".widget-{kind}", has=page.locator(".widget-label", has_text=re.compile(f"^{label}$")))


def test_notebook_04_viewer_renders_and_follows_every_control(lab, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (uses the system chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900})
        try:
            page = browser.new_page()
            page.goto(lab)
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)
            # Run All before the kernel is connected would queue the cells with no kernel to run them.
            page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=120_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
            image = page.locator(".widget-image")
            image.wait_for(timeout=RUN_TIMEOUT_MS)
            page.wait_for_function(ALL_CELLS_RAN, timeout=RUN_TIMEOUT_MS)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                  has_text="Traceback")
            assert errors.count() == 0, errors.first.inner_text()
            viewer = page.locator(".widget-vbox", has=image).last
            viewer.scroll_into_view_if_needed()
            shot = tmp_path / "viewer_browser.png"  # as the notebook first shows it
            viewer.screenshot(path=str(shot))
            if os.environ.get("DTLIB_BROWSER_SCREENSHOT"):
                shutil.copy(shot, os.environ["DTLIB_BROWSER_SCREENSHOT"])
            box = image.bounding_box()
            assert box["width"] <= 620, f"the viewer's figure is {box['width']:.0f} px wide"

            def changes(action, name: str) -> None:
                before = image.screenshot()
                action()
                deadline = time.monotonic() + REDRAW_TIMEOUT_MS / 1000
                while image.screenshot() == before:
                    assert time.monotonic() < deadline, f"the image did not change with {name}"
                    page.wait_for_timeout(200)

            def set_slider(label: str, fraction: float) -> None:
                # Drag the handle with the mouse: typed keys could reach JupyterLab's command-mode shortcuts.
                slider = control(page, "slider", label)
                handle = slider.locator(".noUi-handle").bounding_box()
                track = slider.locator(".noUi-target").bounding_box()
                page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
                page.mouse.down()
                page.mouse.move(track["x"] + fraction * track["width"], handle["y"] + handle["height"] / 2, steps=10)
                page.mouse.up()

            changes(lambda: control(page, "dropdown", "image").locator("select").select_option(index=1), "image")
            changes(lambda: control(page, "dropdown", "head").locator("select").select_option(index=0), "head")
            changes(lambda: set_slider("layer", 0.0), "layer")
            changes(lambda: set_slider("alpha", 0.1), "alpha")
            changes(lambda: viewer.locator("button", has_text="mask").click(), "show: mask")
            changes(lambda: set_slider("mask keep", 0.2), "mask keep")
            sample = control(page, "dropdown", "sample").locator("select")
            changes(lambda: sample.select_option(label="hubble_deep_field"), "sample")  # not in the notebook's list
            changes(lambda: viewer.locator("button", has_text="heatmap").click(), "show: heatmap")
        finally:
            browser.close()
