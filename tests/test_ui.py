"""The Dagster UI in a real headless Chromium (Debian's, driven by Playwright): the asset graph
shows every group, and the raw layer is materialized from the UI (the registration job from its
launchpad, then a backfill of every sample block) and succeeds."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from archs4.paths import PROJECT_ROOT
from tests.archs4_files import example_counts, write_archs4_file, write_gtf

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dagster_ui(tmp_path: Path):
    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    source = write_archs4_file(tmp_path / "human_gene_v2.6.h5", example_counts(30, 20))
    write_gtf(tmp_path / "genes.gtf", 30)
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ARCHS4_SOURCE": str(source),
        "ARCHS4_GTF": str(tmp_path / "genes.gtf"),
        "ARCHS4_WAREHOUSE": str(tmp_path / "warehouse"),
        "ARCHS4_LABELS": "",
        "ARCHS4_BLOCK_SIZE": "10",
        "ARCHS4_LOG_DIR": str(tmp_path / "logs"),
        "ARCHS4_SENSOR_STATUS": "stopped",  # the test, not the sensor, launches the runs
    }
    server = subprocess.Popen(  # dagster dev binds 127.0.0.1 by default
        [sys.executable, "-m", "dagster", "dev", "-p", str(port)],  # [tool.dg] of pyproject.toml
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("the Dagster UI did not start within 120 s")
        yield base, tmp_path / "warehouse"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def open_page(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")


def test_asset_graph_and_raw_layer_from_the_ui(dagster_ui):
    from playwright.sync_api import expect, sync_playwright

    base, warehouse = dagster_ui
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # Dagster's community sign-up dialog opens once, at a moment of its choosing, over
        # whatever is on screen: dismiss it whenever it stands in the way of an action.
        skip = page.get_by_role("button", name="Skip")
        page.add_locator_handler(skip, lambda button: button.click())

        open_page(page, f"{base}/asset-groups")
        for group in ("raw", "reference", "normalized", "metrics", "labels", "model", "catalog"):
            page.get_by_text(group, exact=True).first.wait_for(timeout=30_000)
        # Screenshots go to the test's own directory (the work tree stays clean); docs/ keeps
        # copies taken this way by hand.
        shots = warehouse.parent / "screenshots"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "asset_graph.png"))

        open_page(page, f"{base}/automation")
        page.get_by_text("release_sensor").first.wait_for(timeout=30_000)
        page.get_by_text("daily_update").first.wait_for(timeout=30_000)

        # Registration and the gene table: the register_release job, from its launchpad.
        open_page(page, f"{base}/locations/archs4_warehouse/jobs/register_release/playground")
        launch = page.get_by_role("button", name="Launch Run")
        expect(launch).to_be_enabled(timeout=60_000)  # once the run config is validated
        launch.click()
        page.wait_for_url("**/runs/**", timeout=30_000)
        page.get_by_text("Success").first.wait_for(timeout=180_000)

        # Every sample block of samples and counts: a backfill of all partitions.
        open_page(page, f"{base}/assets/samples")
        page.get_by_role("button", name="Materialize").first.click()
        page.get_by_role("button", name="Confirm").click()  # counts comes with samples
        # The partition dialog loads every partition's status first: slow on a busy 2-core CI.
        all_partitions = page.get_by_role("button", name="All", exact=True)
        expect(all_partitions).to_be_visible(timeout=120_000)
        all_partitions.click()
        page.get_by_role("button", name="Launch backfill").click()
        deadline = time.monotonic() + 300
        expected = {"block=000000", "block=000001"}
        while time.monotonic() < deadline:
            done = {p.parent.name for p in (warehouse / "raw" / "counts").glob("*/part.parquet")}
            if done >= expected:
                break
            time.sleep(2)
        assert done >= expected
        open_page(page, f"{base}/assets/counts?view=partitions")
        page.get_by_text("000001").first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "counts_partitions.png"))
        for shot in shots.iterdir():
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
        browser.close()
