/* webdriver.h — the dashboard's browser tests: headless Chromium driven
 * through WebDriver (chromedriver) over plain HTTP with libcurl.
 *
 * Every call fails the running Check test with the page's text and console
 * when WebDriver refuses or a wait times out. A test starts one browser with
 * wd_start() and registers wd_stop() so that the browser never outlives it
 * (see test_web.c's browser fixture). Screenshots go to
 * $GHL_BUILD_DIR/screenshots/<name>-<width>.png (CI keeps them). */
#ifndef GHL_TEST_WEBDRIVER_H
#define GHL_TEST_WEBDRIVER_H

#include <sys/types.h>

#include "json.h"

#define CHROMIUM "/usr/bin/chromium"
#define CHROMEDRIVER "/usr/bin/chromedriver"
/* clang-format off */
#define INSTALL_HINT                                                                        \
	"the browser test needs Chromium and ChromeDriver: apt-get install -y chromium "      \
	"chromium-driver (scripts/test installs them)"
/* clang-format on */

struct wd {
	pid_t driver;
	char base[64];
	char session[128];
	char profile[64];
	char log[64];
};

int wd_executable(const char *path);
/* Fails the test, saying how to install them, without chromium + chromedriver. */
void wd_require_browser(void);

/* Start chromedriver in its own process group and open a headless session
 * (1280×900). Idempotent stop: ends the session, the group, the profile. */
void wd_start(struct wd *w);
void wd_stop(struct wd *w);

/* One WebDriver command; returns the answer's "value" (caller frees). */
struct json *wd_cmd(struct wd *w, const char *method, const char *path, const char *body);
void wd_call(struct wd *w, const char *method, const char *path, const char *body);
/* Run script (a function body; `arguments` unused) and return its value. */
struct json *wd_exec(struct wd *w, const char *script);
/* The same for a script that returns a string: that string (malloc'd); any
 * other answer fails the test. */
char *wd_exec_text(struct wd *w, const char *script);

void wd_go(struct wd *w, const char *url);
/* The element id of the first match of css, or NULL (malloc'd). */
char *wd_find(struct wd *w, const char *css);
/* The visible text of the first match of css, or NULL (malloc'd). */
char *wd_text(struct wd *w, const char *css);
/* Wait until the first match of css shows text containing needle (up to
 * timeout_ms, at least TL_WAIT_MIN_MS). */
void wd_wait_text(struct wd *w, const char *css, const char *needle, int timeout_ms);
/* Wait for css, then click it (found again if the page re-rendered it). */
void wd_click(struct wd *w, const char *css);
/* Wait until the first match of css shows no text, or is gone. */
void wd_wait_empty(struct wd *w, const char *css, int timeout_ms);
void wd_type(struct wd *w, const char *css, const char *text);
void wd_clear(struct wd *w, const char *css);
/* The page's URL, text and console, for failure messages (malloc'd). */
char *wd_page_state(struct wd *w);

/* Log in through the dashboard's form at base ("http://host:port") and wait
 * for the signed-in header. */
void wd_login(struct wd *w, const char *base, const char *email, const char *password);

/* Save the whole current page (the window made as tall as the page, up to
 * 6000 px) at 1400 and 390 px wide as screenshots/<name>-1400.png and
 * -390.png under $GHL_BUILD_DIR (or the working directory), then restore the
 * window to 1280 × 900. */
void wd_screenshots(struct wd *w, const char *name);
/* Resize the window to width × 900 and wait until the page has that width
 * (window.innerWidth polled; no fixed sleep). */
void wd_width(struct wd *w, int width);
/* How many px the page scrolls sideways at width (0 = fits); the window
 * stays at width (to check more there), wd_width(w, 1280) restores it. */
int wd_sideways_at(struct wd *w, int width);
/* The same, the window restored to 1280 px after. */
int wd_sideways_px(struct wd *w, int width);

/* Cells of a table.grid (narrow screens show its rows as cards of "title:
 * value" lines, style.css) whose column has a title but which carry no
 * data-label, so that their card line would go unlabelled: one line each
 * ("" when none; malloc'd). */
char *wd_unlabelled_cells(struct wd *w);

/* Shown form fields (input, select, textarea) without an accessible name (a
 * label with text, aria-label, aria-labelledby or title) that the page gave
 * them — one named only by ui.js's nameControls net (data-auto-label, from a
 * placeholder or first option) counts as unlabelled: one line each ("" when
 * none; malloc'd). */
char *wd_unlabelled_fields(struct wd *w);

/* Make the page's fetch() fail as when the agent does not answer (on), or
 * work again (off): the page's own error handling is then what shows. */
void wd_fetch_fails(struct wd *w, int on);

/* Fails the test on any console message of level SEVERE since the last call
 * (the log is drained by reading it): script errors, CSP refusals, 5xx
 * answers. 4xx answers, which Chromium also logs, are the page's to handle. */
void wd_assert_no_console_errors(struct wd *w);

#endif
