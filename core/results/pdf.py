"""The stakeholder report as a PDF: the HTML printed by headless Chromium, where one is installed.

    find_browser() -> str | None
    html_to_pdf(html_path, pdf_path, *, timeout_s=PDF_TIMEOUT_S) -> Path | None   (None: no browser)

The flags are those of ../shared/notes/browser-testing.md plus `--no-pdf-header-footer`, a
throw-away profile and a 15 s virtual-time budget so the charts are drawn before printing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from core.files import atomic_write

PDF_TIMEOUT_S = 120


def find_browser() -> str | None:
    """Chromium's executable: /usr/bin/chromium, else `chromium` / `chromium-browser` on PATH, else None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def html_to_pdf(html_path: Path, pdf_path: Path, *, timeout_s: float = PDF_TIMEOUT_S) -> Path | None:
    """Print `html_path` to `pdf_path` with headless Chromium; None when no browser is installed
    (the caller then offers the HTML only). Raises RuntimeError when the browser fails or
    runs past `timeout_s`."""
    browser = find_browser()
    if browser is None:
        return None
    html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path).resolve()
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="equiscope-chromium-") as profile:
        tmp_pdf = Path(profile) / "out.pdf"
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--disable-dev-shm-usage", "--disable-extensions", f"--user-data-dir={profile}",
                   "--no-pdf-header-footer", "--window-size=800,1200", "--virtual-time-budget=15000",
                   "--run-all-compositor-stages-before-draw", f"--print-to-pdf={tmp_pdf}", html_path.as_uri()]
        try:
            result = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"Chromium did not finish printing {html_path.name} within {timeout_s:.0f} s") from error
        if not tmp_pdf.is_file() or tmp_pdf.read_bytes()[:4] != b"%PDF":
            tail = result.stderr.decode(errors="replace")[-1500:]
            raise RuntimeError(f"Chromium could not print {html_path.name} (exit code {result.returncode}): {tail}")
        atomic_write(pdf_path, tmp_pdf.read_bytes())
    return pdf_path
