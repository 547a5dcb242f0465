"""A phone-sized screenshot (390x844 CSS pixels) of the live page mid-set, from a twin session.

Runs ``tremorlift collect --simulate SCENARIO --web 127.0.0.1:0`` (a throw-away session in a
temporary data folder), opens the page it prints in Debian's chromium through Playwright, waits
for the rep asked for and saves the page as it is then:

    .venv/bin/python tools/phone_screenshot.py --out docs/phone.png      (make screenshot)
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

# For Debian's chromium run as root in a container (CI); headless and a fresh profile are
# Playwright's own. The browser test uses these too.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 390, "height": 844}
URL_LINE = re.compile(r"live page: (http://\S+)")


def chromium_path() -> str:
    found = os.environ.get("TREMORLIFT_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise SystemExit("chromium is missing: `make chromium` installs Debian's package")
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/phone.png", help="PNG to write (default docs/phone.png)")
    ap.add_argument("--scenario", default="bench-to-failure", help="twin scenario")
    ap.add_argument("--speed", type=float, default=4.0, help="twin speed-up (default 4)")
    ap.add_argument("--set", type=int, default=2, dest="set_number", help="set to catch (2)")
    ap.add_argument("--rep", type=int, default=4, help="rep of that set to catch (4)")
    args = ap.parse_args(argv)

    tremorlift = Path(sys.executable).with_name("tremorlift")
    with tempfile.TemporaryDirectory(prefix="tremorlift-shot-") as tmp:
        env = dict(
            os.environ, TREMORLIFT_DATA_DIR=f"{tmp}/data", TREMORLIFT_CONFIG_DIR=f"{tmp}/cfg"
        )
        cmd = [
            str(tremorlift), "collect", "--simulate", args.scenario, "--any", "--speed",
            str(args.speed), "--no-ui", "--no-sound", "--no-speech", "--web", "127.0.0.1:0",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        urls: queue.Queue[str] = queue.Queue()

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                m = URL_LINE.search(line)
                if m:
                    urls.put(m.group(1))

        threading.Thread(target=read_stderr, daemon=True).start()
        try:
            url = urls.get(timeout=30)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=chromium_path(),
                    args=CHROMIUM_FLAGS,
                )
                # The page's CSP forbids eval, which Playwright's waits use.
                page = browser.new_page(viewport=VIEWPORT, bypass_csp=True)
                page.goto(url)
                try:
                    page.wait_for_function(
                        "([s, r]) => window.tremorlift.draws.some("
                        "d => d.type === 'rep' && d.set === s && d.rep === r)",
                        arg=[args.set_number, args.rep],
                        timeout=180_000,
                    )
                except PlaywrightTimeout:
                    seen = page.evaluate(
                        "window.tremorlift.draws.filter(d => d.type === 'rep')"
                        ".map(d => `set ${d.set} rep ${d.rep}`).join(', ')"
                    )
                    raise SystemExit(
                        f"no set {args.set_number} rep {args.rep} in {args.scenario} "
                        f"(reps seen: {seen or 'none'})"
                    ) from None
                page.wait_for_timeout(300)  # the set timer ticks once more
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=args.out)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"wrote {args.out} (390x844)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
