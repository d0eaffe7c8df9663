// The citizen's journey, end to end, in the browser: citizen-wang logs in through the IdP's
// picker, finds 社会保障卡申领 from the home page's search and the services page, reads its
// guide, applies online (consents to the prefill, fills the steps, uploads a photo, checks
// the answers, submits); the window clerk clerk-sun accepts the case; the HRSS officer
// officer-ma starts the review and concludes 准予; citizen-wang sees the approval on the
// case page and rates it 5 stars.
//
//   node citizen.mjs <base-url>          (ONEWINDOW_E2E_JS=0: with JavaScript disabled)
//
// Every main page passes axe-core (WCAG 2.1 A/AA) and fits a 390 px phone; screenshots go
// to target/e2e/citizen/ (citizen-nojs/ without JavaScript).

import { journey } from './lib.mjs';

const SERVICE = '11150700MB15300034-GG-0002'; // 社会保障卡申领

// The answers a person gives to the fields that nobody prefilled, by field id.
const ANSWERS = {
  application_type: 'first',
  bank: 'icbc',
  delivery: 'branch',
};

/// Fills the current apply step like a person: selects, then empty required inputs, then
/// a photo in every required material's file input that has nothing kept or substituted.
async function fillStep(j) {
  const form = j.page.locator('form#application');
  for (const sel of await form.locator('select[name]').all()) {
    const name = await sel.getAttribute('name');
    const value = await sel.inputValue();
    if (value) continue;
    const answer = ANSWERS[name];
    if (answer) {
      await sel.selectOption(answer);
    } else if ((await sel.getAttribute('aria-required')) === 'true') {
      // The first real option.
      const first = await sel.locator('option:not([value=""])').first().getAttribute('value');
      await sel.selectOption(first);
    }
  }
  for (const input of await form.locator('input[aria-required="true"]:not([readonly]), textarea[aria-required="true"]:not([readonly])').all()) {
    if (await input.inputValue()) continue;
    const type = await input.getAttribute('type');
    await input.fill(type === 'tel' ? '13800000000' : '测试');
  }
  for (const fs of await form.locator('fieldset.material').all()) {
    const required = (await fs.locator('legend .req').count()) > 0;
    const id = (await fs.getAttribute('id')).replace(/^m-/, '');
    const substituted = (await fs.locator(`input[name="substitute.${id}"]:checked`).count()) > 0;
    const kept = (await fs.locator(`input[name="keep.${id}"]:checked`).count()) > 0;
    if (id === 'photo' || (required && !substituted && !kept)) {
      if (!kept) await fs.locator('input[type="file"]').setInputFiles(j.files.photo);
    }
  }
}

await journey('citizen', async (j) => {
  // The conclude form asks "are you sure?" when JavaScript runs: the officer says yes.
  j.page.on('dialog', (d) => d.accept());

  // ---- citizen-wang applies online --------------------------------------------------
  await j.loginAs('citizen-wang', { returnTo: '/' });
  await j.goto('/', { lang: 'zh-CN' });
  await j.check('home');

  // The home page's search box leads to the services page.
  await j.page.locator('form.search input[name="q"], form.search input[type="search"]').first().fill('社保卡');
  await j.submit(j.page.locator('form.search button'));
  j.expect(new URL(j.page.url()).pathname === '/services', 'the search leads to /services');
  await j.check('services-search');
  await j.submit(j.page.locator(`a[href="/services/${SERVICE}"]`).first());
  await j.check('guide');
  j.expect((await j.text('h1')).includes('社会保障卡'), 'the guide is the social security card\'s');

  await j.submit(j.page.locator(`main a[href="/services/${SERVICE}/apply"]`).first());
  await j.check('apply-first-step');

  // Consent to the prefill from the authoritative sources.
  const consent = j.page.locator('#consent-button');
  if (await consent.count()) {
    await j.submit(consent);
    j.step('consented to prefill');
    await j.check('apply-prefilled');
  }
  const name = j.page.locator('input[name="applicant_name"]');
  if (await name.count()) {
    j.expect((await name.inputValue()) === '王小明', 'the name is prefilled as 王小明');
  }

  // The steps, until the page to check the answers.
  for (let n = 0; n < 8; n += 1) {
    if (await j.page.locator('form#application button#submit').count()) break;
    await fillStep(j);
    await j.submit(j.page.locator('form#application button#continue'));
    const errors = await j.page.locator('.error-summary, [role="alert"]').count();
    if (errors) {
      await j.check(`apply-step-error-${n}`);
      j.expect(false, `the step was refused: ${await j.text('main')}`.slice(0, 600));
    }
    await j.check(`apply-step-${n + 1}`);
  }
  j.expect(await j.page.locator('form#application button#submit').count(), 'the check-your-answers page is reached');
  await j.check('apply-check');
  await j.submit(j.page.locator('form#application button#submit'));
  await j.check('applied');
  const caseNo = (await j.text('#case-no')).trim();
  j.expect(/\S/.test(caseNo), 'the receipt shows a case number');
  j.result.case_no = caseNo;
  const photo = await j.text('#material-photo');
  j.expect(photo.includes('photo.jpg'), `the receipt lists the uploaded photo (it says: ${photo})`);
  j.step('submitted');

  await j.goto(`/me/cases/${caseNo}`);
  await j.check('my-case-submitted');
  await j.logout();

  // ---- clerk-sun accepts it at the window ----------------------------------------------
  await j.loginAs('clerk-sun', { returnTo: `/staff/cases/${caseNo}` });
  await j.goto(`/staff/cases/${caseNo}`);
  await j.check('clerk-case');
  await j.submit(j.page.locator('form.step-form:has(input[name="action"][value="accept"]) button[type="submit"]'));
  await j.check('clerk-case-accepted');
  j.step('accepted');
  await j.logout();

  // ---- officer-ma (HRSS) reviews and concludes 准予 -------------------------------------
  await j.loginAs('officer-ma', { returnTo: `/desk/cases/${caseNo}` });
  await j.goto(`/desk/cases/${caseNo}`);
  await j.check('desk-case');
  const start = j.page.locator('form:has(input[name="action"][value="start_review"]) button[type="submit"]');
  if (await start.count()) {
    await j.submit(start);
    await j.check('desk-case-reviewing');
    j.step('review started');
  }
  const conclude = j.page.locator('form:has(input[name="action"][value="conclude"])');
  j.expect(await conclude.count(), 'the officer can conclude');
  await conclude.locator('#result-approved').check();
  await conclude.locator('textarea[name="note"]').fill('材料齐全，准予办理。');
  await j.submit(conclude.locator('button[type="submit"]'));
  await j.check('desk-case-concluded');
  j.step('concluded');
  await j.logout();

  // ---- citizen-wang sees the approval and rates it -----------------------------------
  await j.loginAs('citizen-wang', { returnTo: `/me/cases/${caseNo}` });
  await j.goto(`/me/cases/${caseNo}`);
  await j.check('my-case-approved');
  // The status tag: green for approved (components.html status_tag).
  const status = await j.text('main h1 + p .tag');
  j.result.status_seen = status;
  j.expect((await j.page.locator('main h1 + p .tag.green').count()) === 1, `the case page says approved (it says: ${status})`);
  j.step('approved');

  const rating = j.page.locator(`form[action="/me/cases/${caseNo}/rating"]`);
  j.expect(await rating.count(), 'the case page offers a rating');
  await rating.locator('#rating-5').check();
  await rating.locator('textarea[name="comment"]').fill('一次办好，很方便。');
  await j.submit(rating.locator('button[type="submit"]'));
  await j.check('my-case-rated');
  j.expect(await j.page.locator('main p.success').count(), 'the case page shows the rating');
  j.step('rated');
});
