"""Headless Chromium for the dashboard tests, driven by Selenium through Debian's chromedriver.

Nothing is downloaded: the browser and its driver come from Debian's `chromium` and
`chromium-driver`, and Selenium is pointed at both, so its driver manager never runs.
Screenshots are whole pages, taken through the DevTools protocol, at a desktop size or a
phone size (with the mobile viewport rules a phone applies).
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--force-color-profile=srgb",
    "--hide-scrollbars",
]
DESKTOP = (1280, 800)
PHONE = (390, 844)
WAIT = 20.0


def find_binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        f"none of {', '.join(names)} is installed: apt-get install chromium chromium-driver"
    )


@contextmanager
def chromium(user_data_dir: Path) -> Iterator[Browser]:
    options = Options()
    options.binary_location = find_binary("chromium", "chromium-browser")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    service = Service(executable_path=find_binary("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield Browser(driver)
    finally:
        driver.quit()


class Browser:
    """The few things the tests do with a page, each waiting for what it needs."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.desktop()

    def desktop(self) -> None:
        self._viewport(*DESKTOP, mobile=False)

    def phone(self) -> None:
        self._viewport(*PHONE, mobile=True)

    def dark(self, on: bool = True) -> None:
        """Pages as seen with the system's dark appearance."""
        feature = {"name": "prefers-color-scheme", "value": "dark" if on else "light"}
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [feature]})

    def _viewport(self, width: int, height: int, *, mobile: bool) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        self.viewport = (width, height)

    def open(self, url: str) -> None:
        self.driver.get(url)

    @property
    def url(self) -> str:
        return str(self.driver.current_url)

    def find(self, css: str) -> WebElement:
        return WebDriverWait(self.driver, WAIT).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def click_link(self, text: str) -> None:
        WebDriverWait(self.driver, WAIT).until(
            expected_conditions.element_to_be_clickable((By.LINK_TEXT, text))
        ).click()

    def text(self, css: str = "body") -> str:
        return str(self.find(css).text)

    def wait_for_text(self, css: str, wanted: str, timeout: float = WAIT) -> str:
        """Wait until the element `css` (found afresh each time: pages reload) shows `wanted`."""

        def shown(driver: Any) -> bool:
            try:
                return wanted in driver.find_element(By.CSS_SELECTOR, css).text
            except Exception:
                return False

        WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(
            shown, f"{css!r} never showed {wanted!r}"
        )
        return self.text(css)

    def wait_until(self, script: str, timeout: float = WAIT) -> None:
        """Wait until the JavaScript expression `script` is true on the current page."""

        def true(driver: Any) -> bool:
            try:
                return bool(driver.execute_script(f"return {script};"))
            except Exception:  # the page is between two loads
                return False

        WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(true, f"never: {script}")

    def wait_for_url(self, fragment: str) -> str:
        WebDriverWait(self.driver, WAIT).until(expected_conditions.url_contains(fragment))
        return self.url

    def screenshot(self, path: Path) -> Path:
        """The whole page at the current viewport width, as a PNG."""
        width, height = self.viewport
        content = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        full = max(height, int(content["height"]))
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": full, "scale": 1},
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
