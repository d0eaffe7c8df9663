// The apply form with the keyboard alone: citizen-wang logs in, then applies online for
// 城乡居民基本医疗保险参保登记 (the form with the fewest things to do: everything about the
// person is prefilled, two choices to make, and the one required document, the identity
// card, comes from the electronic licence) pressing only Tab, Shift+Tab, the arrow keys,
// Space, Enter and typing — no clicks, no fill(), no selectOption() — up to the receipt.
//
//   node keyboard.mjs <base-url>
//
// Every step of the form is checked with axe-core and at 390 px; screenshots go to
// target/e2e/keyboard/.

import { journey } from './lib.mjs';

const SERVICE = '11150700MB1530007G-GG-0001'; // 城乡居民基本医疗保险参保登记
const NEW_PHONE = '13912345678'; // the applicant types a new contact phone over the prefilled one

// What the focused element is, as the journey needs to know to act on it.
function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      type: el.getAttribute('type') || '',
      name: el.getAttribute('name') || '',
      value: 'value' in el ? el.value : '',
      required: el.getAttribute('aria-required') === 'true' || el.required === true,
      readonly: el.readOnly === true || el.disabled === true,
      inForm: !!el.closest('form#application'),
      visible: !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length),
    };
  });
}

/// Presses Enter on the focused element and waits for the page it leads to.
async function enter(j, what) {
  const [resp] = await Promise.all([j.page.waitForNavigation(), j.page.keyboard.press('Enter')]);
  j.expect(resp && resp.status() === 200, `${what} answered ${resp ? resp.status() : 'nothing'}`);
}

/// Walks the current step's form with Tab, answering every empty required control with the
/// keyboard, until the focus reaches the button `stop` (a selector); answers what it did.
async function walkForm(j, stop, retype = {}) {
  const done = [];
  for (let i = 0; i < 150; i += 1) {
    await j.page.keyboard.press('Tab');
    const el = await focused(j.page);
    if (!el) continue;
    if (await j.page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, stop)) return done;
    if (!el.inForm || el.readonly) continue;
    if (el.name in retype) {
      // An editable prefilled answer the applicant changes: select it all, type anew.
      await j.page.keyboard.press('ControlOrMeta+A');
      await j.page.keyboard.type(retype[el.name]);
      const now = await focused(j.page);
      j.expect(now.value === retype[el.name], `typing into ${el.name} gave ${now.value}`);
      done.push(`${el.name} retyped`);
      continue;
    }
    if (!el.required) continue;
    if (el.tag === 'select' && !el.value) {
      // A closed select changes its choice with the arrow keys: the first real option.
      await j.page.keyboard.press('ArrowDown');
      const now = await focused(j.page);
      j.expect(now.value, `ArrowDown chose nothing in ${el.name}`);
      done.push(`${el.name}=${now.value}`);
    } else if ((el.tag === 'input' && ['text', 'tel', 'email', ''].includes(el.type)) || el.tag === 'textarea') {
      if (!el.value) {
        await j.page.keyboard.type(el.type === 'tel' ? '13800000000' : '呼伦贝尔市海拉尔区');
        done.push(`${el.name} typed`);
      }
    }
  }
  throw new Error(`150 presses of Tab never reached ${stop} (at ${j.page.url()})`);
}

await journey('keyboard', async (j) => {
  await j.loginAs('citizen-wang', { returnTo: `/services/${SERVICE}` });
  await j.goto(`/services/${SERVICE}`, { lang: 'zh-CN' });
  await j.check('guide');

  // From the top of the guide: Tab to the "apply online" button and press Enter.
  await j.tabTo(`main a[href="/services/${SERVICE}/apply"]`, { max: 80 });
  await enter(j, 'the apply link');
  await j.check('apply-first-step');

  // Consent to the prefill: Tab to the button, Enter.
  if (await j.page.locator('#consent-button').count()) {
    await j.tabTo('#consent-button', { max: 80 });
    await enter(j, 'the consent');
    j.step('consented to prefill');
    await j.check('apply-prefilled');
  }

  const filled = [];
  for (let n = 0; n < 8; n += 1) {
    if (await j.page.locator('form#application button#submit').count()) break;
    filled.push(...(await walkForm(j, 'form#application button#continue', { phone: NEW_PHONE })));
    await enter(j, `step ${n + 1}`);
    const refused = await j.page.locator('form#application .error-message').count();
    if (refused) {
      await j.check(`apply-step-refused-${n + 1}`);
      j.expect(false, `step ${n + 1} was refused: ${(await j.text('main')).slice(0, 600)}`);
    }
    await j.check(`apply-step-${n + 1}`);
  }
  j.result.filled = filled;

  // Check the answers, then Tab to "submit" and press Enter.
  j.expect(await j.page.locator('form#application button#submit').count(), 'the check-your-answers page is reached');
  await j.check('apply-check');
  j.expect(filled.includes('phone retyped'), `the phone was retyped on the way: ${filled.join(', ')}`);
  j.expect((await j.text('main')).includes(NEW_PHONE), 'the answers to check show the phone typed');
  await j.tabTo('form#application button#submit', { max: 150 });
  await enter(j, 'the submission');
  await j.check('applied');
  const caseNo = await j.text('#case-no');
  j.expect(/\S/.test(caseNo), 'the receipt shows a case number');
  j.result.case_no = caseNo;
  j.step('submitted');
});
