// The department officer and the operator: officer-ma (人社局) finds the walk-in's social
// security card case the demo seeded suspended on his desk, resumes it, suspends it again
// with a reason (the page shows the clock paused), resumes it and concludes it 准予 with a
// note and a result document. operator-wu's dashboard counts one more approved case; the
// departments and deliveries pages pass too. Last, anyone with the case number and the
// query code (printed for the walk-in by the window: read here from clerk-sun's case page)
// sees the case approved on the public status query, without logging in.
//
//   node officer.mjs <base-url>     (the Rust runner: tests/it/e2e.rs)
//
// Every page passes axe-core (WCAG 2.1 A/AA) and fits a 390 px phone; screenshots go to
// target/e2e/officer/.

import { journey } from './lib.mjs';

// Seeded suspended by officer-ma's department (src/demo_seed.rs; tests/it/demo_seed.rs says
// officer-ma finds it waiting).
const KEY = 'zhao-social-security-card-window';
const APPROVED = /办结（准予）|Concluded: approved/;
const SUSPENDED = /特别程序|Suspended/; // the status label (src/domain/case.rs)
const UNDER_REVIEW = /审查中|Under review/;

await journey('officer', async (j) => {
  const seeded = j.cases[KEY];
  j.expect(seeded, `the demo seeded no ${KEY} (ONEWINDOW_E2E_CASES: ${Object.keys(j.cases).join(', ')})`);
  j.expect(seeded.status === 'suspended', `${KEY} is ${seeded.status}, not suspended`);
  const caseNo = seeded.case_no;
  j.result.case_no = caseNo;
  const seededApproved = Object.values(j.cases).filter((c) => c.status === 'approved').length;

  // The confirmation before a conclusion (app.js: form[data-confirm]) is answered yes.
  const confirmations = [];
  j.page.on('dialog', async (d) => {
    confirmations.push(d.message());
    await d.accept();
  });

  const statusTag = () => j.text('#case-summary dd .tag');
  const clockPaused = async () => (await j.page.locator('#clock-paused').count()) === 1;
  // One step form of the case page (its section is labelled by the step's heading).
  const stepForm = (code) => j.page.locator(`section.desk-action[aria-labelledby="act-${code}"] form`);
  const takeStep = async (code, note) => {
    const form = stepForm(code);
    j.expect((await form.count()) === 1, `the case page offers no "${code}" step`);
    if (note !== undefined) await form.locator(`#note-${code}`).fill(note);
    await j.submit(form.locator('button[type="submit"]'));
    j.expect(new URL(j.page.url()).searchParams.get('done') === code, `the ${code} step did not come back done`);
    j.expect((await j.page.locator('#done').count()) === 1, `the case page does not say the ${code} step is done`);
  };

  // ---- the officer ---------------------------------------------------------------------
  await j.loginAs('officer-ma', { returnTo: '/desk/cases' });
  await j.goto('/desk/cases', { lang: 'zh-CN' });
  await j.check('desk-worklist');
  const link = j.page.locator('#desk-cases a', { hasText: caseNo });
  j.expect((await link.count()) === 1, `officer-ma's worklist does not list ${caseNo}`);
  await j.submit(link);
  j.expect((await j.text('h1')).includes(caseNo), 'the case page names the case');
  j.expect(await clockPaused(), 'the seeded suspended case does not show its clock paused');
  await j.check('desk-case-seeded-suspended');

  // The seeded suspension ends first (the household registration was checked).
  await takeStep('resume', '户籍信息已核验一致，恢复办理。');
  j.expect(!(await clockPaused()), 'the clock still shows paused after the case resumed');

  // Suspended with a reason: the page shows the clock paused, the reason in the history.
  const reason = '申请人需补充原单位参保缴费证明，待材料送达期间暂停计时。';
  await takeStep('suspend', reason);
  j.expect(SUSPENDED.test(await statusTag()), `the case is not suspended: ${await statusTag()}`);
  j.expect(await clockPaused(), 'the suspended case does not show its clock paused');
  j.expect((await j.text('main')).includes(reason), 'the case page does not show the suspension reason');
  await j.check('desk-case-suspended');
  j.step('suspended');

  await takeStep('resume', '参保缴费证明已收到，恢复办理。');
  j.expect(!(await clockPaused()), 'the clock still shows paused after the case resumed');
  j.expect(UNDER_REVIEW.test(await statusTag()), `the resumed case is not under review: ${await statusTag()}`);
  await j.check('desk-case-resumed');
  j.step('resumed');

  // Concluded 准予, with a note and the result document.
  const conclude = stepForm('conclude');
  j.expect((await conclude.count()) === 1, 'the resumed case offers no conclusion');
  await conclude.locator('#result-approved').check();
  await conclude.locator('#note-conclude').fill('材料齐全，符合申领条件，准予办理社会保障卡。');
  await conclude.locator('#result_document').setInputFiles(j.files.pdf);
  await j.submit(conclude.locator('button[type="submit"]'));
  j.expect(new URL(j.page.url()).searchParams.get('done') === 'conclude', 'the conclusion did not come back done');
  if (j.javaScript) j.expect(confirmations.length === 1, `the conclusion asked ${confirmations.length} confirmations`);
  j.expect(APPROVED.test(await statusTag()), `the case is not approved: ${await statusTag()}`);
  j.expect((await j.text('#result')).includes('准予'), 'the case page does not show the result 准予');
  const docs = await j.text('#materials');
  j.expect(/结果|result/i.test(docs) && /PDF/.test(docs), `the result document is not among the materials: ${docs}`);
  j.expect((await j.page.locator('#actions-title ~ section.desk-action').count()) === 0, 'a concluded case still offers steps');
  await j.check('desk-case-concluded');
  j.step('concluded');
  await j.logout();

  // ---- the operator --------------------------------------------------------------------
  await j.loginAs('operator-wu', { returnTo: '/ops' });
  await j.goto('/ops', { lang: 'zh-CN' });
  const byStatus = await j.page.evaluate(() =>
    Array.from(document.querySelectorAll('figure[aria-labelledby="by-status-title"] tbody tr')).map((tr) => [
      tr.querySelector('th')?.textContent.trim() ?? '',
      tr.querySelector('td')?.textContent.trim() ?? '',
    ]),
  );
  const approvedRow = byStatus.find(([label]) => APPROVED.test(label));
  j.expect(approvedRow, `the dashboard's cases by status has no approved row: ${JSON.stringify(byStatus)}`);
  const approved = Number(approvedRow[1]);
  j.result.approved_seeded = seededApproved;
  j.result.approved_on_dashboard = approved;
  j.expect(
    approved >= seededApproved + 1,
    `the dashboard counts ${approved} approved cases, expected at least ${seededApproved + 1}`,
  );
  const total = Number(await j.text('#stat-total .value'));
  j.expect(total >= Object.keys(j.cases).length, `the dashboard counts ${total} cases in all`);
  await j.check('ops-dashboard');
  j.step('dashboard');

  await j.goto('/ops/departments');
  j.expect((await j.text('main')).includes('人力资源和社会保障局'), 'the departments page does not list 人社局');
  await j.check('ops-departments');
  await j.goto('/ops/deliveries');
  await j.check('ops-deliveries');
  await j.logout();

  // ---- the query code: on the window's case page (the walk-in's notice prints it) ------
  await j.loginAs('clerk-sun', { returnTo: `/staff/cases/${caseNo}` });
  await j.goto(`/staff/cases/${caseNo}`);
  const queryCode = await j.page.evaluate(() => {
    const dt = Array.from(document.querySelectorAll('dt')).find((d) => /查询码|Query code/.test(d.textContent));
    return dt?.nextElementSibling?.textContent.trim() ?? '';
  });
  j.expect(/^\d{6}$/.test(queryCode), `no six-digit query code on the clerk's case page: "${queryCode}"`);
  await j.check('clerk-case');
  await j.logout();

  // ---- the public status query, not logged in ------------------------------------------
  await j.goto('/status', { lang: 'zh-CN' });
  j.expect((await j.page.locator('form[action="/auth/logout"]').count()) === 0, 'still logged in');
  await j.page.locator('#case_no').fill(caseNo);
  await j.page.locator('#query_code').fill(queryCode);
  await j.submit(j.page.locator('form[action="/status"] button[type="submit"]'));
  j.expect((await j.text('#found-h')).includes(caseNo), 'the status query found another case');
  const found = await j.text('section[aria-labelledby="found-h"] dl');
  j.expect(APPROVED.test(found), `the status query does not show the case approved: ${found}`);
  await j.check('status-approved');
  j.step('status query');
});
