// The browser journeys' library: Debian's Chromium driven by playwright-core, axe-core on
// every page a journey checks, screenshots of every step for people to look at.
//
// A journey is a script `tests/e2e/<journey>.mjs` run as `node <journey>.mjs <base-url>`
// (the Rust runner tests/it/e2e.rs starts the app, seeds it and runs it). It exits 0 when
// every step passed; any failure prints `FAILED: …` on stderr and exits 1.
//
//   import { journey } from './lib.mjs';
//   await journey('citizen', async (j) => {
//     await j.loginAs('citizen-wang', { returnTo: '/me/cases' });   // through the IdP picker
//     await j.goto('/me/cases');
//     await j.check('my-cases');           // axe + 1280/390 px screenshots + no overflow
//     await j.page.getByRole('link', { name: /HLBE/ }).first().click();
//     j.expect(await j.text('h1') !== '', 'the case page has a heading');
//   });
//
// What a journey gets (`j`):
//   j.base                     the gateway's base URL (no trailing slash)
//   j.page / j.context         the playwright page and browser context (one per journey)
//   j.goto(path, {lang, status})   opens base+path; `lang` ('zh-CN' | 'en') sets the
//                              language cookie first; `status` (default 200; a number or
//                              a list) is asserted
//   j.setLang(lang)            sets the `lang` cookie for the next pages
//   j.loginAs(persona, {staff, returnTo, picker})  logs in like a person: the login link,
//                              then a click on the persona's button on the development
//                              IdP's picker (`picker: false` uses login_hint instead);
//                              staff personas use the staff login (automatic for
//                              clerk-*, officer-*, operator-*)
//   j.logout()                 clicks the header's log-out button
//   j.check(name, {widths, allowOverflow})   runs axe-core (WCAG 2.0/2.1 A and AA rules)
//                              and THROWS listing the violations; screenshots the full page
//                              to target/e2e/<journey>/<nn>-<name>-<width>.png (<journey>-nojs
//                              without JavaScript) at 1280 and
//                              390 px; at 390 px asserts no horizontal overflow
//                              (document.scrollWidth <= 390)
//   j.expect(ok, what)         throws `what` unless ok
//   j.soft(ok, what)           a warning unless ok (printed, and listed in the result's
//                              `warnings`); a failure with ONEWINDOW_E2E_STRICT=1. For
//                              what pages not yet rebuilt for issue 12 still get wrong
//   j.text(selector)           the element's visible text, whitespace collapsed
//   j.step(name)               records a step (printed with the result)
//   j.result                   an object printed as JSON on stdout at the end
//   j.cases                    the demo's seeded cases by plan key (src/demo_seed.rs), e.g.
//                              j.cases['wang-social-security-card'].case_no; from
//                              ONEWINDOW_E2E_CASES, which the Rust runner sets
//   j.submit(locator, {status})   clicks (a submit button, a link) and waits for the page
//                              it leads to; asserts its status (default 200 or a redirect
//                              to a 200; a number or a list, e.g. 422 for a refused form)
//   j.files.photo / j.files.pdf   made-up JPG and PDF documents to upload
//                              (reference-data/demo/materials)
//   j.tabTo(selector, {max})   presses Tab (like a keyboard-only user) until the focused
//                              element matches `selector`; throws after `max` (60) presses
//
// journey(name, body, {javaScript: false}) runs the journey with JavaScript disabled (as
// does ONEWINDOW_E2E_JS=0), to show the pages work without it.
//
// Environment: ONEWINDOW_CHROMIUM (/usr/bin/chromium), ONEWINDOW_E2E_OUT (target/e2e),
// ONEWINDOW_E2E_TIMEOUT_MS (120000), ONEWINDOW_E2E_JS=0 (run with JavaScript disabled),
// ONEWINDOW_E2E_STRICT=1 (soft checks fail).

import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1280, 390];

/// An expectation that did not hold.
export class Failed extends Error {}

/// Launches Debian's Chromium the way every journey does.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.ONEWINDOW_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/// Runs axe-core on the page as it is; answers the violations (empty when none).
export async function axeViolations(page) {
  const has = await page.evaluate(() => typeof window.axe !== 'undefined');
  // evaluated through the DevTools protocol, not as an inline <script>: the gateway's
  // Content-Security-Policy (rightly) refuses inline scripts
  if (!has) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(
    (tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }),
    AXE_TAGS,
  );
  return result.violations;
}

/// The violations as lines a person can act on.
export function describeViolations(violations) {
  return violations
    .map((v) => {
      const nodes = v.nodes
        .slice(0, 5)
        .map((n) => `    ${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1).join('; ') || ''}`)
        .join('\n');
      return `  [${v.impact}] ${v.id}: ${v.help} (${v.nodes.length} element(s))\n${nodes}`;
    })
    .join('\n');
}

/// Whether the page is wider than the viewport: [scrollWidth, viewport width].
export async function horizontalOverflow(page) {
  return page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
}

function staffPersona(persona) {
  return /^(clerk|officer|operator)-/.test(persona);
}

class Journey {
  constructor(name, base, browser, context, page, javaScript) {
    this.javaScript = javaScript;
    this.name = name;
    this.base = base;
    this.browser = browser;
    this.context = context;
    this.page = page;
    this.steps = [];
    this.warnings = [];
    this.result = { journey: name };
    this.cases = JSON.parse(process.env.ONEWINDOW_E2E_CASES || '{}');
    const materials = join(here, '..', '..', 'reference-data', 'demo', 'materials');
    this.files = { photo: join(materials, 'photo.jpg'), pdf: join(materials, 'scan.pdf') };
    this.shots = 0;
    const dir = javaScript ? name : `${name}-nojs`;
    this.out = join(process.env.ONEWINDOW_E2E_OUT || join(here, '..', '..', 'target', 'e2e'), dir);
    mkdirSync(this.out, { recursive: true });
  }

  expect(ok, what) {
    if (!ok) throw new Failed(`${what} (at ${this.page.url()})`);
  }

  soft(ok, what) {
    if (ok) return;
    if (process.env.ONEWINDOW_E2E_STRICT === '1') this.expect(ok, what);
    this.warnings.push(`${what} (at ${this.page.url()})`);
    process.stderr.write(`  WARNING: ${what}\n`);
  }

  step(name) {
    this.steps.push(name);
    process.stderr.write(`  step: ${name}\n`);
  }

  async text(selector) {
    const el = await this.page.$(selector);
    this.expect(el, `the page has no ${selector}`);
    return (await el.innerText()).replace(/\s+/g, ' ').trim();
  }

  async submit(locator, { status = 200 } = {}) {
    const target = typeof locator === 'string' ? this.page.locator(locator) : locator;
    const [resp] = await Promise.all([this.page.waitForNavigation(), target.click()]);
    const wanted = [].concat(status);
    const got = resp ? resp.status() : 0;
    this.expect(wanted.includes(got), `the submission answered ${got}, expected ${wanted.join(' or ')}`);
    return resp;
  }

  async tabTo(selector, { max = 60 } = {}) {
    for (let i = 0; i < max; i += 1) {
      await this.page.keyboard.press('Tab');
      if (await this.page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
    }
    throw new Failed(`${max} presses of Tab never reached ${selector} (at ${this.page.url()})`);
  }

  async setLang(lang) {
    const url = new URL(this.base);
    await this.context.addCookies([{ name: 'lang', value: lang, domain: url.hostname, path: '/' }]);
  }

  async goto(path, { lang, status = 200 } = {}) {
    if (lang) await this.setLang(lang);
    const resp = await this.page.goto(this.base + path);
    this.expect(resp, `no answer for ${path}`);
    const wanted = [].concat(status);
    this.expect(wanted.includes(resp.status()), `${path} answered ${resp.status()}, expected ${wanted.join(' or ')}`);
    return resp;
  }

  async loginAs(persona, { staff = staffPersona(persona), returnTo = '/', picker = true } = {}) {
    const login = staff ? '/auth/staff/login' : '/auth/login';
    const q = new URLSearchParams({ return_to: returnTo });
    if (!picker) q.set('login_hint', persona);
    await this.page.goto(`${this.base}${login}?${q}`);
    if (picker) {
      // The development IdP's picker: one form per persona, a button to sign in.
      const form = this.page.locator(`form:has(input[name="login_hint"][value="${persona}"])`);
      this.expect((await form.count()) === 1, `the IdP picker offers no ${persona}`);
      await Promise.all([this.page.waitForURL((u) => u.href.startsWith(this.base)), form.locator('button').click()]);
    }
    await this.page.waitForLoadState('load');
    this.expect(this.page.url().startsWith(this.base), `the login of ${persona} did not come back`);
    this.step(`logged in as ${persona}`);
  }

  async logout() {
    await this.page.locator('form[action="/auth/logout"] button').click();
    await this.page.waitForLoadState('load');
    this.step('logged out');
  }

  // With JavaScript disabled in the journey's page, axe and the overflow measure run on a
  // copy of the page's HTML in a page of its own (same URL and stylesheets, JS enabled).
  async inspector() {
    if (this.javaScript) return this.page;
    if (!this.checker) {
      const ctx = await this.browser.newContext({ viewport: { width: 1280, height: 900 } });
      this.checker = await ctx.newPage();
    }
    const url = this.page.url();
    const html = await this.page.content();
    await this.checker.unrouteAll();
    // a request never carries the URL's #fragment, so the route is the URL without it
    await this.checker.route(url.split('#')[0], (route) => route.fulfill({ body: html, contentType: 'text/html; charset=utf-8' }));
    await this.checker.goto(url);
    return this.checker;
  }

  async check(name, { widths = WIDTHS, allowOverflow = false } = {}) {
    const inspected = await this.inspector();
    const violations = await axeViolations(inspected);
    const original = this.page.viewportSize();
    this.shots += 1;
    const nn = String(this.shots).padStart(2, '0');
    const problems = [];
    for (const width of widths) {
      await this.page.setViewportSize({ width, height: 900 });
      await this.page.screenshot({ path: join(this.out, `${nn}-${name}-${width}.png`), fullPage: true });
      if (width <= 390 && !allowOverflow) {
        if (inspected !== this.page) await inspected.setViewportSize({ width, height: 900 });
        const [scroll, inner] = await horizontalOverflow(inspected);
        if (scroll > width) problems.push(`wider than a ${width} px phone: scrollWidth ${scroll} (viewport ${inner})`);
      }
    }
    if (original) await this.page.setViewportSize(original);
    if (violations.length) {
      problems.push(`${violations.length} accessibility violation(s):\n${describeViolations(violations)}`);
    }
    this.step(`checked ${name}`);
    if (problems.length) {
      throw new Failed(`page "${name}" (${this.page.url()}):\n${problems.join('\n')}`);
    }
  }
}

/// Runs a journey: launches Chromium, hands `body` a fresh journey `j`, prints the result
/// as one JSON line on stdout and exits 0, or prints `FAILED: …` on stderr and exits 1.
/// The base URL is argv[2] or ONEWINDOW_BASE_URL.
export async function journey(
  name,
  body,
  { base = process.argv[2] || process.env.ONEWINDOW_BASE_URL, javaScript = process.env.ONEWINDOW_E2E_JS !== '0' } = {},
) {
  if (!base) {
    process.stderr.write(`usage: node ${name}.mjs <base-url>\n`);
    process.exit(2);
  }
  base = base.replace(/\/$/, '');
  const budget = Number(process.env.ONEWINDOW_E2E_TIMEOUT_MS || 120000);
  const timer = setTimeout(() => {
    process.stderr.write(`FAILED: journey ${name} took longer than ${budget} ms\n`);
    process.exit(1);
  }, budget);
  const browser = await launch();
  let code = 0;
  let j;
  try {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      javaScriptEnabled: javaScript,
    });
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    // The gateway's Content-Security-Policy allows no inline script or style: whatever a
    // page or app.js does that the policy blocks fails the journey.
    const blocked = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) blocked.push(`${page.url()}: ${m.text()}`);
    });
    j = new Journey(name, base, browser, context, page, javaScript);
    await body(j);
    if (blocked.length) throw new Failed(`the Content-Security-Policy blocked:\n${blocked.join('\n')}`);
    process.stdout.write(JSON.stringify({ ...j.result, steps: j.steps, warnings: j.warnings }) + '\n');
  } catch (e) {
    code = 1;
    if (j?.page) {
      try {
        await j.page.screenshot({ path: join(j.out, 'failed.png'), fullPage: true });
      } catch {
        // the page may be gone
      }
    }
    process.stderr.write(`FAILED: ${e instanceof Failed ? e.message : e.stack || e}\n`);
    if (j) process.stderr.write(`steps done: ${j.steps.join(' → ')}\n`);
  } finally {
    clearTimeout(timer);
    await browser.close();
  }
  process.exit(code);
}
