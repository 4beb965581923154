"""The chat of the Django example tried in a real browser: headless Chromium
driven by Selenium, two browser sessions (each its own profile, so its own
cookies) logged in as two users through the login page, each sending a
message and seeing the other's, live, over WebSockets through mongrel2 and
wsgid. Skipped only where Chromium or its driver is not installed
(scripts/chromium-install.sh installs them)."""

import shutil
import tempfile

import pytest

from tests.support import djangosite
from tests.support.djangosite import USERS_PASSWORD
from tests.support.marks import requires_mongrel2

pytest.importorskip("django")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [pytest.mark.one_mode, requires_mongrel2, pytest.mark.e2e, pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Chromium and its driver are not installed (Debian's chromium and chromium-driver: "
           "bash scripts/chromium-install.sh)")]

# Headless, as root, on a machine without network: nothing but the page.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    m2, app_path = djangosite.prepare(tmp_path_factory.mktemp("chat-browser"))
    with djangosite.serving(m2, app_path) as site:
        yield site


@pytest.fixture
def browsers(tmp_path):
    """Start browser sessions, each with a fresh profile (cookies of its own)."""
    started = []

    def start():
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in CHROMIUM_ARGS:
            options.add_argument(arg)
        options.add_argument("--user-data-dir=" + tempfile.mkdtemp(dir=str(tmp_path)))
        # The driver by its path: Selenium's own driver manager would go online.
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        started.append(driver)
        return driver
    yield start
    for driver in started:
        driver.quit()


def log_in(driver, site, username):
    """The login page, then the chat it sends back to, its socket open."""
    driver.get("http://127.0.0.1:%d/chat/" % site.port)   # redirected to the login page
    assert "/accounts/login/" in driver.current_url
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(USERS_PASSWORD)
    driver.find_element(By.ID, "login").click()
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: d.current_url.endswith("/chat/"))
    assert driver.find_element(By.ID, "me").text == username
    wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "open")


def say(driver, text):
    box = driver.find_element(By.ID, "text")
    box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#send button").click()


def wait_for_line(driver, line):
    WebDriverWait(driver, 20).until(
        lambda d: line in [li.text for li in d.find_elements(By.CSS_SELECTOR, "#messages li")],
        "%r never shown" % line)


def test_two_browsers_see_each_others_messages(site, browsers):
    alice, bob = browsers(), browsers()
    log_in(alice, site, "alice")
    log_in(bob, site, "bob")
    say(alice, "Hello from Alice")
    say(bob, "Hello from Bob <script>")
    for driver in (alice, bob):
        wait_for_line(driver, "alice: Hello from Alice")
        wait_for_line(driver, "bob: Hello from Bob <script>")   # shown as text
