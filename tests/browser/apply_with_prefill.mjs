// A citizen applies online with shared-data prefill, in a real Chromium:
//
//   node apply_with_prefill.mjs <base-url> [photo.jpg]
//
// or with ONEWINDOW_BASE_URL / ONEWINDOW_PHOTO set. ONEWINDOW_PERSONA (citizen-wang),
// ONEWINDOW_SERVICE (社会保障卡申领), ONEWINDOW_CHROMIUM (/usr/bin/chromium) and
// ONEWINDOW_BROWSER_TIMEOUT_MS (120000) may be changed; ONEWINDOW_SCREENSHOTS=<dir>
// saves a full-page screenshot after each step.
//
// The journey: the apply page sends the browser to the login; the persona logs in at the
// development identity provider; step 1 of the form shows where the data would come
// from; the citizen consents; step 1 is filled (authoritative values read-only, with
// their sources) and the department API that is not set up is named as unavailable; a
// tampered authoritative value is refused (422, the message at the field); step 2 names
// the unavailable source at the old card number; on the documents step the ID card is
// offered as 免提交 (its e-licence number masked) and only the photo is uploaded; the
// check page shows the answers; the receipt shows the case number and query code; the
// data-access page lists exactly the prefill reads.
//
// Prints one JSON object on stdout. Any failed expectation prints `FAILED: …` on stderr
// and exits 1.

import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const base = (process.argv[2] || process.env.ONEWINDOW_BASE_URL || '').replace(/\/$/, '');
const photo = process.argv[3] || process.env.ONEWINDOW_PHOTO;
const persona = process.env.ONEWINDOW_PERSONA || 'citizen-wang';
const service = process.env.ONEWINDOW_SERVICE || '11150700MB15300034-GG-0002';
const executablePath = process.env.ONEWINDOW_CHROMIUM || '/usr/bin/chromium';
const budget = Number(process.env.ONEWINDOW_BROWSER_TIMEOUT_MS || 120000);
const screenshots = process.env.ONEWINDOW_SCREENSHOTS;

// The persona's own records, as in reference-data/demo.
const EXPECT = {
  name: '王小明',
  idNumber: '150702198506123025',
  personResource: '人口基础信息',
  personProvider: '呼伦贝尔市公安局',
  licenceResource: '电子证照',
  licenceProvider: '呼伦贝尔市政务服务与数据管理局',
  unavailableResource: '社会保险参保信息',
};

class Failed extends Error {}
const steps = [];
let current = null; // the page, for screenshots
function expect(ok, what) {
  if (!ok) throw new Failed(what);
}
async function step(name) {
  steps.push(name);
  if (screenshots && current) {
    await current.screenshot({ path: `${screenshots}/${steps.length}-${name.replace(/\W+/g, '-')}.png`, fullPage: true });
  }
}

async function text(page, selector) {
  const el = await page.$(selector);
  expect(el, `the page has no ${selector} (at ${page.url()})`);
  return (await el.innerText()).replace(/\s+/g, ' ').trim();
}

/** Presses a form's button and waits for the answer to its POST (to `path`). */
async function press(page, selector, path) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    page.click(selector),
  ]);
  await page.waitForLoadState('load');
  return resp;
}

/** Every visible form control has a label (or an accessible name). */
async function unlabelled(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('form input:not([type=hidden]), form select, form textarea')]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
      .map((el) => el.id || el.name),
  );
}

async function main() {
  expect(base.startsWith('http'), 'give the gateway base URL as the first argument or ONEWINDOW_BASE_URL');
  expect(photo, 'give a JPEG photo file as the second argument or ONEWINDOW_PHOTO');
  const photoBytes = readFileSync(photo);

  const browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const context = await browser.newContext({ locale: 'zh-CN' });
    const page = await context.newPage();
    // The gateway's Content-Security-Policy allows no inline script or style: anything a
    // page or app.js does that the policy blocks is reported here and fails the journey.
    const blocked = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) blocked.push(m.text());
    });
    current = page;
    page.setDefaultTimeout(20000);
    const applyUrl = `${base}/services/${service}/apply`;

    // 1. Not logged in: the apply page sends the browser to the login and back.
    const first = await page.goto(applyUrl);
    const chain = [];
    for (let r = first.request(); r; r = r.redirectedFrom()) chain.unshift(r.url());
    const login = chain.find((u) => u.startsWith(`${base}/auth/login`));
    expect(login, `the apply page did not redirect to the login: ${chain.join(' → ')}`);
    expect(
      new URL(login).searchParams.get('return_to') === `/services/${service}/apply`,
      `the login does not come back to the apply page: ${login}`,
    );
    await step('redirected to login');

    const button = page.locator(`form:has(input[name="login_hint"][value="${persona}"]) button[type=submit]`);
    expect((await button.count()) === 1, `no persona ${persona} on the provider's page (${page.url()})`);
    await Promise.all([page.waitForURL(applyUrl), button.click()]);
    await step('logged in');

    // 2. Where the data would come from, and the consent.
    expect((await text(page, 'h1')).includes('社会保障卡申领'), 'the page does not name the service');
    const sources = await text(page, '#sources');
    for (const s of [EXPECT.personResource, EXPECT.personProvider, EXPECT.licenceResource, EXPECT.licenceProvider]) {
      expect(sources.includes(s), `the sources section does not list ${s}: ${sources}`);
    }
    expect(sources.includes('为什么可以使用'), 'the sources do not say why they may be used');
    expect(await page.$('#consent'), 'no consent form before consenting');
    expect((await page.inputValue('#f-applicant_name')) === '', 'the form is filled before consent');
    expect(!(await page.getAttribute('#f-applicant_name', 'readonly')), 'the name is read-only before consent');
    expect((await page.getAttribute('html', 'lang')) === 'zh-CN', 'the page has no lang attribute');
    const missing = await unlabelled(page);
    expect(missing.length === 0, `form controls without a label: ${missing.join(', ')}`);
    await step('sources shown');

    await Promise.all([page.waitForURL((u) => u.pathname === `/services/${service}/apply`), page.click('#consent-button')]);
    expect(!(await page.$('#consent')), 'the consent form is still shown after consenting');
    await step('consented');

    // 3. Step 1 prefilled: values, read-only authoritative fields, sources, unavailable.
    const stepPath = `/services/${service}/apply/step`;
    expect((await text(page, '.apply-steps')).includes('第 1 步'), 'no step indicator');
    expect((await page.inputValue('#f-applicant_name')) === EXPECT.name, 'the name is not prefilled');
    expect((await page.inputValue('#f-applicant_id_number')) === EXPECT.idNumber, 'the ID number is not prefilled');
    for (const id of ['f-applicant_name', 'f-applicant_id_number']) {
      expect((await page.getAttribute(`#${id}`, 'readonly')) !== null, `#${id} is not read-only`);
    }
    const nameSource = await text(page, '#f-applicant_name-source');
    expect(
      nameSource.includes(EXPECT.personResource) && nameSource.includes(EXPECT.personProvider) && /\d{4}-\d{2}-\d{2}/.test(nameSource),
      `the name's source label is incomplete: ${nameSource}`,
    );
    expect(nameSource.includes('不能在此修改'), `the name is not marked as unchangeable: ${nameSource}`);
    expect((await text(page, '#f-applicant_id_number-source')).includes(EXPECT.personResource), 'the ID number has no source');
    const unavailable = await text(page, '#unavailable');
    expect(unavailable.includes(EXPECT.unavailableResource), `the unavailable source is not named: ${unavailable}`);
    await step('prefilled');

    // 4. Tampering with an authoritative value is refused at its step.
    await page.selectOption('#f-application_type', 'first');
    await page.evaluate(() => {
      const el = document.getElementById('f-applicant_name');
      el.removeAttribute('readonly');
      el.value = '王大明';
    });
    const refused = await press(page, '#continue', stepPath);
    expect(refused.status() === 422, `a changed authoritative name was answered ${refused.status()}, not 422`);
    const nameError = await text(page, '#f-applicant_name-error');
    expect(nameError.includes('权威数据，不能修改'), `no "authoritative, cannot be changed" message at the name: ${nameError}`);
    expect(!/[A-Za-z]{4,}/.test(nameError), `the Chinese page shows English at the name: ${nameError}`);
    const summary = await text(page, '#error-summary');
    expect(summary.includes('权威数据'), `the error summary does not list the problem: ${summary}`);
    expect(
      (await page.getAttribute('#error-summary a[href="#f-applicant_name"]', 'href')) === '#f-applicant_name',
      'the error summary does not link to the name field',
    );
    expect((await page.inputValue('#f-applicant_name')) === EXPECT.name, 'the authoritative name is not restored');
    expect((await page.getAttribute('#f-applicant_name', 'readonly')) !== null, 'the name is no longer read-only');
    expect((await page.inputValue('#f-application_type')) === 'first', 'the values given are lost on the error page');
    await step('tampering refused');

    // 5. Step 2: the old card number's source is unavailable, so it is not filled.
    const toStep2 = await press(page, '#continue', stepPath);
    expect(toStep2.status() === 303, `step 1 was answered ${toStep2.status()}, not 303`);
    expect(new URL(page.url()).searchParams.get('step') === '2', `not on step 2: ${page.url()}`);
    const oldCard = await text(page, '#f-old_card_no-unavailable');
    expect(oldCard.includes(EXPECT.unavailableResource), `the old card number does not say its source is unavailable: ${oldCard}`);
    expect((await page.inputValue('#f-old_card_no')) === '', 'the old card number is filled although its source is unavailable');
    await page.selectOption('#f-bank', 'icbc');
    await page.selectOption('#f-delivery', 'branch');
    const toStep3 = await press(page, '#continue', stepPath);
    expect(toStep3.status() === 303, `step 2 was answered ${toStep3.status()}, not 303`);
    await step('details given');

    // 6. The documents: the ID card from its e-licence (number masked), the photo uploaded.
    const idCard = await text(page, '#m-id_card');
    expect(idCard.includes('免提交'), `the ID card is not offered as 免提交: ${idCard}`);
    const licenceNo = (await text(page, '#m-id_card .licence-no')).trim();
    expect(/^\d{6}\*+\d{3}[\dX]$/.test(licenceNo), `the e-licence number is not masked: ${licenceNo}`);
    expect(idCard.includes(EXPECT.licenceResource), `the e-licence has no source: ${idCard}`);
    expect(await page.isChecked('#substitute-id_card'), 'the 免提交 box is not ticked');
    await page.setInputFiles('#file-photo', { name: 'photo.jpg', mimeType: 'image/jpeg', buffer: photoBytes });
    const toCheck = await press(page, '#continue', stepPath);
    expect(toCheck.status() === 303, `the documents step was answered ${toCheck.status()}, not 303`);
    await step('documents given');

    // 7. Check your answers, then submit.
    expect(new URL(page.url()).searchParams.get('step') === 'check', `not on the check page: ${page.url()}`);
    const answers = await text(page, 'main');
    for (const s of [EXPECT.name, '中国工商银行', 'photo.jpg', '免提交']) {
      expect(answers.includes(s), `the check page does not show ${s}: ${answers}`);
    }
    expect((await page.$$('a[href*="step=1"]')).length > 0, 'no way back to change the first step');
    await step('answers checked');
    const accepted = await press(page, '#submit', `/services/${service}/apply`);
    expect(accepted.status() === 303, `the application was answered ${accepted.status()}, not 303`);
    await page.waitForURL((u) => /^\/cases\/[^/]+\/submitted$/.test(u.pathname));
    const caseNo = (await text(page, '#case-no')).trim();
    const queryCode = (await text(page, '#query-code')).trim();
    expect(/^HLBE\d{8}-[0-9A-Z]+$/.test(caseNo), `no case number on the receipt: ${caseNo}`);
    expect(/^\d{6}$/.test(queryCode), `no query code on the receipt: ${queryCode}`);
    const idOnReceipt = await text(page, '#material-id_card');
    expect(idOnReceipt.includes('免提交'), 'the receipt does not show the ID card as 免提交');
    expect(!idOnReceipt.includes(EXPECT.idNumber), `the receipt shows the full e-licence number: ${idOnReceipt}`);
    expect((await page.getAttribute('#view-case', 'href')) === `/me/cases/${caseNo}`, 'the receipt does not lead to the case');
    await step('submitted');

    // 8. Who read my data: the prefill is one read (one row) naming both resources, with its purpose.
    await page.goto(`${base}/me/data-access`);
    expect((await text(page, '#chain')).includes('完整'), 'the data-access trail is not shown as intact');
    const rows = await page.$$eval('#data-access tbody tr', (trs) =>
      trs.map((tr) => ({
        resource: tr.querySelector('.resource').innerText.trim(),
        reader: tr.querySelector('.reader').innerText.trim(),
        purpose: tr.querySelector('.purpose').innerText.trim(),
        service: tr.querySelector('.service').innerText.trim(),
      })),
    );
    expect(
      rows.length === 1 &&
        rows[0].resource.includes(EXPECT.personResource) &&
        rows[0].resource.includes(EXPECT.licenceResource),
      `the data-access page does not show the prefill as one read of both resources: ${JSON.stringify(rows)}`,
    );
    for (const r of rows) {
      expect(r.purpose === '申请时预填表单', `a read without the prefill purpose: ${JSON.stringify(r)}`);
      expect(r.reader.includes('本人') && r.reader.includes(EXPECT.name), `a read not by the citizen: ${JSON.stringify(r)}`);
      expect(r.service.includes('社会保障卡申领'), `a read without the service: ${JSON.stringify(r)}`);
    }
    await step('data access listed');
    const english = await page.goto(`${base}/me/data-access?lang=en`);
    expect(english.status() === 200, `the English data-access page answered ${english.status()}`);
    expect((await text(page, '#data-access')).includes('Prefilling your application form'), 'no English purpose with ?lang=en');
    await step('data access in English');

    expect(blocked.length === 0, `the Content-Security-Policy blocked: ${blocked.join(' | ')}`);
    await step('nothing blocked by the Content-Security-Policy');

    return { case_no: caseNo, query_code: queryCode, licence_no: licenceNo, data_access: rows, steps };
  } finally {
    await browser.close();
  }
}

const timer = setTimeout(() => {
  console.error(`FAILED: the journey took longer than ${budget} ms (steps done: ${steps.join(', ')})`);
  process.exit(1);
}, budget);

main().then(
  (result) => {
    clearTimeout(timer);
    console.log(JSON.stringify(result));
  },
  (e) => {
    clearTimeout(timer);
    console.error(`FAILED: ${e instanceof Failed ? e.message : e.stack || e} (steps done: ${steps.join(', ') || 'none'})`);
    process.exit(1);
  },
);
