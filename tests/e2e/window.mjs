// The window (一窗受理): clerk-sun takes in a walk-in applicant, citizen-wang, for a social
// security card — chooses the service, looks the person up by ID number (the lookup is
// recorded in their data-access trail), the form comes prefilled, scans are uploaded —
// then asks for a correction and prints the correction notice. citizen-wang logs in and
// finds the walk-in case among his cases (linked at login by the ID number's blind
// index), sees what is asked and uploads a new photo. The clerk accepts the case and
// opens the accepted notice.
//
//   node window.mjs <base-url>
//
// Every page passes axe-core (WCAG 2.1 A/AA) and fits a 390 px phone; screenshots go to
// target/e2e/window/.

import { journey } from './lib.mjs';

const SERVICE = '11150700MB15300034-GG-0002'; // 社会保障卡申领 (人社局, accepted at the window)
const WANG_ID = '150702198506123025';
const WANG_NAME = '王小明';
const ASKED = '证件照需为白底彩色照片，请重新提供。';

await journey('window', async (j) => {
  const page = j.page;

  // ---------- the clerk takes in a walk-in applicant ----------
  await j.loginAs('clerk-sun', { returnTo: '/staff/intake' });
  await j.goto('/staff/intake');
  await j.check('intake-choose-service');

  // 1. the service
  await page.selectOption('#service', SERVICE);
  await j.submit(page.locator('form[action="/staff/intake"][method="get"] button[type="submit"]'));
  j.expect(page.url().includes(`service=${SERVICE}`), 'the chosen service is in the address');
  j.expect((await page.locator('#lookup').count()) === 1, 'the lookup form is shown once a service is chosen');

  // 2. the lookup by ID number (audited)
  await page.fill('#id_number', WANG_ID);
  j.expect((await page.inputValue('#purpose')).trim() !== '', 'the lookup has a purpose filled in');
  await j.submit(page.locator('#lookup button[type="submit"]'));
  j.expect((await page.locator('.success[role="status"]').count()) === 1, 'the lookup says it is done');

  // 3. the form, prefilled from the base library
  j.expect((await page.inputValue('#applicant-name')) === WANG_NAME, 'the applicant\'s name is prefilled');
  j.expect((await page.inputValue('#applicant-id_number')) === WANG_ID, 'the applicant\'s ID number is prefilled');
  j.expect((await page.inputValue('#f-applicant_name')) === WANG_NAME, 'the form\'s name field is prefilled');
  j.expect((await page.inputValue('#f-applicant_id_number')) === WANG_ID, 'the form\'s ID number field is prefilled');
  j.expect((await page.inputValue('#f-phone')) !== '', 'the phone is prefilled');
  j.expect((await page.inputValue('#f-gender')) !== '', 'the sex is prefilled');
  j.expect(
    (await page.locator('#intake-form .hint', { hasText: '·' }).count()) > 0,
    'prefilled fields name their source',
  );
  await j.check('intake-prefilled');

  // what the applicant answers at the window
  await page.selectOption('#f-application_type', 'first');
  await page.selectOption('#f-bank', 'icbc');
  await page.selectOption('#f-delivery', 'branch');
  if (!(await page.inputValue('#applicant-phone'))) await page.fill('#applicant-phone', '13800000001');
  // the scans: the ID card (instead of the e-licence) and the photo
  await page.setInputFiles('#file-id_card', j.files.pdf);
  if (await page.locator('#sub-id_card').isChecked()) await page.uncheck('#sub-id_card');
  await page.setInputFiles('#file-photo', j.files.photo);
  await j.submit(page.locator('#intake-form button[type="submit"]'));

  const m = page.url().match(/\/staff\/cases\/([^/?#]+)\?done=intake/);
  j.expect(m, `the intake leads to the new case's page (at ${page.url()})`);
  const caseNo = decodeURIComponent(m[1]);
  j.result.case_no = caseNo;
  j.expect((await j.text('h1')).includes(caseNo), 'the case page names the case number');
  j.expect((await page.locator('.success[role="status"]').count()) === 1, 'the case page says the intake is done');
  j.expect((await j.text('#id-masked')) !== WANG_ID, 'the ID number is masked on the case page');
  j.expect((await page.locator('ul.materials li.material').count()) >= 2, 'the scans are on the case');
  j.step('taken in');
  await j.check('case-taken-in');

  // ---------- the clerk asks for a correction ----------
  const correct = page.locator('form.step-form:has(input[name="action"][value="request_correction"])');
  j.expect((await correct.count()) === 1, 'the clerk can request a correction');
  await correct.locator('#fix-photo').check();
  await correct.locator('#note-request_correction').fill(ASKED);
  await j.submit(correct.locator('button[type="submit"]'));
  j.expect(page.url().includes('done=request_correction'), 'the correction request leads back to the case');
  const askedStaff = await page.locator('.notice').filter({ hasText: ASKED }).count();
  j.expect(askedStaff > 0, 'the case page shows what was asked of the applicant');
  j.step('correction requested');
  await j.check('case-correction-requested');

  // the correction notice, to print and hand over
  const noticeLink = page.locator(`a[href="/staff/cases/${caseNo}/notice/correction"]`);
  j.expect((await noticeLink.count()) === 1, 'the case page links to the correction notice');
  await j.submit(noticeLink);
  j.expect((await j.text('.case-no')) === caseNo, 'the correction notice has the case number');
  j.expect((await page.locator('.qr svg[role="img"][aria-label]').count()) === 1, 'the correction notice has a labelled SVG QR code');
  j.expect((await j.text('.reason')).includes(ASKED), 'the correction notice says what to correct');
  j.expect((await j.text('.query-code')) !== '', 'the correction notice has the query code');
  await j.check('notice-correction');
  await j.logout();

  // ---------- the applicant corrects online ----------
  await j.loginAs('citizen-wang', { returnTo: '/me/cases' });
  await j.goto('/me/cases');
  const mine = page.locator(`a[href="/me/cases/${caseNo}"]`);
  j.expect((await mine.count()) >= 1, `the walk-in case ${caseNo} is among citizen-wang's cases`);
  await j.check('my-cases');
  await j.submit(mine.first());
  j.expect((await j.text('#asked')).includes(ASKED), 'the case page shows what the window asked for');
  j.expect((await page.locator('#file-photo').count()) === 1, 'the correction form offers the photo');
  await j.check('my-case-asked');
  await page.setInputFiles('#file-photo', j.files.photo);
  await page.fill('#note', '已重新拍摄白底证件照。');
  await j.submit(page.locator(`form[action="/me/cases/${caseNo}/correction"] button[type="submit"]`));
  j.expect(page.url().includes('done=corrected'), 'the correction leads back to the case');
  j.expect((await page.locator('#asked').count()) === 0, 'nothing is asked any more');
  j.step('corrected');
  await j.check('my-case-corrected');

  // the clerk's lookup is in the applicant's data-access trail
  await j.goto('/me/data-access');
  // the lookup's row: read by the clerk before there was a case (no case number)
  const lookups = page.locator('#data-access tr.read').filter({
    has: page.locator('td.reader', { hasText: '孙丽' }),
  }).filter({ has: page.locator('td.case', { hasText: '—' }) });
  j.expect((await lookups.count()) >= 1, 'the clerk\'s lookup is in the data-access trail');
  j.expect(
    (await page.locator('#data-access td.case a', { hasText: caseNo }).count()) >= 1,
    'the clerk\'s reading of the case is in the data-access trail',
  );
  await j.check('data-access');
  await j.logout();

  // ---------- the clerk accepts ----------
  await j.loginAs('clerk-sun', { returnTo: `/staff/cases/${caseNo}` });
  await j.goto(`/staff/cases/${caseNo}`);
  j.expect(
    (await page.locator('ul.materials li.material img.preview').count()) >= 2,
    'the clerk sees the corrected photo beside the first one',
  );
  const accept = page.locator('form.step-form:has(input[name="action"][value="accept"])');
  j.expect((await accept.count()) === 1, 'the clerk can accept the corrected case');
  await j.submit(accept.locator('button[type="submit"]'));
  j.expect(page.url().includes('done=accept'), 'the acceptance leads back to the case');
  const acceptedLink = page.locator(`a[href="/staff/cases/${caseNo}/notice/accepted"]`);
  j.expect((await acceptedLink.count()) === 1, 'the case page links to the accepted notice');
  j.step('accepted');
  await j.check('case-accepted');

  await j.submit(acceptedLink);
  j.expect((await j.text('.case-no')) === caseNo, 'the accepted notice has the case number');
  j.expect((await page.locator('.qr svg[role="img"]').count()) === 1, 'the accepted notice has an SVG QR code');
  await j.check('notice-accepted');
  await j.logout();
});
