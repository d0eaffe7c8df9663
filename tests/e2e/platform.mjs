// The sharing and open-data platform's pages, as the people who use them see them, in
// Chinese and in English: the public open-data site (datasets, a dataset with its preview,
// data requests) and the catalogue's search; officer-ma (人社局) with his resources, his
// sharing requests and grants and his open datasets; operator-wu with the versions to
// publish, every grant, the datasets to publish and the regional platform's queue.
//
//   node platform.mjs <base-url>     (the Rust runner: tests/it/e2e.rs)
//
// Every page passes axe-core (WCAG 2.1 A/AA) and fits a 390 px phone; screenshots go to
// target/e2e/platform/.

import { journey } from './lib.mjs';

await journey('platform', async (j) => {
  for (const lang of ['zh-CN', 'en']) {
    const l = lang === 'en' ? 'en' : 'zh';
    // ---- anyone --------------------------------------------------------------------
    await j.goto('/open', { lang });
    await j.check(`open-${l}`);
    const dataset = j.page.locator('main a[href^="/open/datasets/"]').first();
    j.expect((await dataset.count()) === 1, 'the open-data site lists no dataset');
    await j.submit(dataset);
    j.expect((await j.page.locator('main table').count()) >= 1, 'a dataset page shows no preview table');
    await j.check(`open-dataset-${l}`);
    await j.goto('/open/requests', { lang });
    await j.check(`open-requests-${l}`);
    await j.goto('/catalogue?q=%E5%8D%A1', { lang });
    await j.check(`catalogue-search-${l}`);
  }
  j.step('public');

  // ---- a department officer -----------------------------------------------------------
  await j.loginAs('officer-ma', { returnTo: '/desk/catalogue' });
  for (const lang of ['zh-CN', 'en']) {
    const l = lang === 'en' ? 'en' : 'zh';
    for (const [path, name] of [
      ['/desk/catalogue', 'desk-catalogue'],
      ['/desk/sharing/requests', 'desk-requests'],
      ['/desk/sharing/requests/new', 'desk-request-new'],
      ['/desk/sharing/grants', 'desk-grants'],
      ['/desk/open', 'desk-open'],
    ]) {
      await j.goto(path, { lang });
      await j.check(`${name}-${l}`);
    }
  }
  j.step('officer');
  await j.logout();

  // ---- the operator -------------------------------------------------------------------
  await j.loginAs('operator-wu', { returnTo: '/ops/catalogue' });
  for (const lang of ['zh-CN', 'en']) {
    const l = lang === 'en' ? 'en' : 'zh';
    for (const [path, name] of [
      ['/ops/catalogue', 'ops-catalogue'],
      ['/ops/sharing/grants', 'ops-grants'],
      ['/ops/open', 'ops-open'],
      ['/ops/region', 'ops-region'],
    ]) {
      await j.goto(path, { lang });
      await j.check(`${name}-${l}`);
    }
  }
  j.step('operator');
});
