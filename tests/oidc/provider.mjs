// A real OpenID provider (oidc-provider 9) for onewindow's integration tests.
//
//   OIDC_FIXTURE='{"clients":[{"client_id":"gw","client_secret":"s","redirect_uris":["http://127.0.0.1:8080/auth/callback"]}]}' \
//     node tests/oidc/provider.mjs
//
// Listens on 127.0.0.1, port 0, plain http; prints exactly one line to stdout,
// {"issuer":"http://127.0.0.1:<port>"}, and nothing else ever goes to stdout.
// Stops when its stdin closes (so a killed test never leaves it behind), on SIGTERM and
// on SIGINT. Diagnostics go to stderr. See README.md beside this file.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';
// The built-in in-memory store, taken directly so the provider does not warn that it
// uses its quick-start default (the package is pinned to one exact version).
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

// stdout carries the one issuer line; oidc-provider prints its notices with
// console.info, so every console method but warn/error is sent to stderr.
for (const method of ['log', 'info', 'debug']) {
  console[method] = (...args) => console.error(...args);
}

function fail(message) {
  console.error(`oidc fixture: ${message}`);
  process.exit(2);
}

// ---- configuration -------------------------------------------------------------------

let fixture;
try {
  fixture = JSON.parse(process.env.OIDC_FIXTURE ?? '');
} catch (err) {
  fail(`OIDC_FIXTURE must hold JSON like {"clients":[...]}: ${err.message}`);
}
if (!fixture || !Array.isArray(fixture.clients) || fixture.clients.length === 0) {
  fail('OIDC_FIXTURE must have a non-empty "clients" array');
}

const clients = fixture.clients.map((c, i) => {
  if (typeof c.client_id !== 'string' || !Array.isArray(c.redirect_uris)) {
    fail(`client ${i} needs a client_id and redirect_uris`);
  }
  return {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    post_logout_redirect_uris: [],
    // Anything else (token_endpoint_auth_method, …) passes through as client metadata.
    ...c,
  };
});

// ---- accounts ------------------------------------------------------------------------

// Login name → claims. The login name is also the subject (`sub`).
const ACCOUNTS = {
  alice: {
    name: '张丽',
    id_number: '150702199009093077',
    phone_number: '13900000001',
    assurance_level: '2',
  },
  bob: {
    name: '刘波',
    id_number: '150702198801012037',
    phone_number: '13900000002',
    assurance_level: '2',
    uscc: '91150700MA0N2C3D40',
    enterprise_name: '呼伦贝尔草原乳业有限公司',
    enterprise_role: 'legal_representative',
  },
  carol: {
    name: '马兰',
    assurance_level: '2',
    roles: ['clerk'],
    service_hall: 'hlbe-zwfwzx',
    hall_departments: ['11150700MB1530001X', '11150700MB15300021'],
  },
  dave: {
    name: '何东',
    assurance_level: '2',
    roles: ['department_officer'],
    department: '11150700MB1530001X',
  },
  erin: {
    name: '冯雪',
    assurance_level: '2',
    roles: ['operator'],
  },
  lowa: {
    name: '低保障',
    id_number: '150702197505051053',
    assurance_level: '1',
  },
};

function findAccount(ctx, id) {
  if (!Object.hasOwn(ACCOUNTS, id)) {
    return undefined;
  }
  // The provider filters these by the granted scopes and claims.
  return {
    accountId: id,
    claims: () => ({ sub: id, ...ACCOUNTS[id] }),
  };
}

// The dev login form accepts any name; an unknown one must not sign in. This check asks
// for the login prompt again when the session's account does not exist, so the provider
// shows its login form anew (as a real provider does after wrong credentials) and never
// redirects back to the relying party.
const policy = interactionPolicy.base();
policy.get('login').checks.add(
  new interactionPolicy.Check('unknown_account', 'the login name is not a known account', (ctx) => {
    const { oidc } = ctx;
    if (oidc.session.accountId && !oidc.account) {
      return interactionPolicy.Check.REQUEST_PROMPT;
    }
    return interactionPolicy.Check.NO_NEED_TO_PROMPT;
  }),
);

// ---- pages (small, so the provider does not print "customize the look" notices) -------

const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>${body}</body></html>`;

// ---- start ---------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  // Until the provider is attached (a request this early is a client racing the
  // issuer line).
  res.writeHead(503).end();
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  // A fresh signing key for every run, so each provider has keys of its own.
  const signingKey = {
    ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
    kid: crypto.randomUUID(),
    alg: 'RS256',
    use: 'sig',
  };

  const provider = new Provider(issuer, {
    adapter: createMemoryAdapter(),
    clients,
    jwks: { keys: [signingKey] },
    findAccount,
    claims: {
      openid: ['sub'],
      profile: ['name'],
      phone: ['phone_number'],
      onewindow: [
        'id_number',
        'assurance_level',
        'uscc',
        'enterprise_name',
        'enterprise_role',
        'roles',
        'department',
        'service_hall',
        'hall_departments',
      ],
    },
    scopes: ['openid', 'profile', 'phone', 'onewindow'],
    // conformIdTokenClaims stays at its default (true): with a code flow the ID token
    // carries only sub (and the protocol claims); the rest comes from userinfo.
    pkce: { required: () => true }, // S256 is the only method oidc-provider 9 has
    interactions: { policy },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource(ctx, form) {
          ctx.body = page(
            'Sign out',
            `${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`,
          );
        },
        postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out', '<p id="signed-out">Signed out.</p>');
        },
      },
    },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 3600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
    },
    clientBasedCORS: () => false,
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page(
        'Error',
        Object.entries(out)
          .map(([k, v]) => `<pre class="${esc(k)}">${esc(k)}: ${esc(v)}</pre>`)
          .join('\n'),
      );
    },
  });

  // Errors are answered to the client; log the unexpected ones.
  provider.on('server_error', (ctx, err) => console.error('oidc fixture: server_error', err));

  const callback = provider.callback();
  server.removeAllListeners('request');
  server.on('request', callback);

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

server.on('error', (err) => fail(`cannot listen: ${err.message}`));

// ---- stop ----------------------------------------------------------------------------

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
