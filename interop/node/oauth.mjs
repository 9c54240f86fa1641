// Interoperability check: an independent OAuth 2.0 client (Node's fetch) and
// token verifier (jose) against a running `tollgate serve --dev`.
//
//   node oauth.mjs <base-url> <demo-email> <demo-password>
//
// Prints one line per passed check; exits non-zero at the first failed one.
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, jwtVerify, generateKeyPair, SignJWT, decodeProtectedHeader } from 'jose';

const [base, email, password] = process.argv.slice(2);
if (!base || !email || !password) {
  console.error('usage: node oauth.mjs <base-url> <demo-email> <demo-password>');
  process.exit(2);
}

const TTL = 86400;
const joseVersion = (() => {
  try {
    return JSON.parse(readFileSync(new URL('./node_modules/jose/package.json', import.meta.url))).version;
  } catch {
    return '?';
  }
})();
const who = `node ${process.version}, jose ${joseVersion}`;
let passed = 0;

class CheckFailed extends Error {}

function ok(name) {
  passed++;
  console.log(`ok   ${name}`);
}

function fail(name, detail) {
  throw new CheckFailed(`FAIL ${name}${detail === undefined ? '' : `: ${detail}`}`);
}

function check(name, cond, detail) {
  if (!cond) fail(name, typeof detail === 'function' ? detail() : detail);
  ok(name);
}

const show = (v) => JSON.stringify(v);

// http sends a request and returns {status, headers, text, json}.
async function http(method, path, { headers = {}, json, form } = {}) {
  const url = path.startsWith('http') ? path : base + path;
  const init = { method, headers: { ...headers }, redirect: 'manual' };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
    init.body = new URLSearchParams(form).toString();
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let body;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: body };
}

const bearer = (token) => ({ Authorization: `Bearer ${token}` });

// RFC 6749 §2.3.1: client ID and secret are form-encoded before Basic.
const formEncode = (s) => new URLSearchParams({ x: s }).toString().slice(2);
const basic = (id, secret) => ({
  Authorization: 'Basic ' + Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64'),
});

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

// expectStatus fails unless the response has the status.
function expectStatus(name, res, status) {
  if (res.status !== status) fail(name, `status ${res.status}, want ${status}; body ${res.text.slice(0, 300)}`);
}

// expectGatewayError checks a gateway refusal in the common error shape.
function expectGatewayError(name, res, status, code) {
  expectStatus(name, res, status);
  const got = res.json?.error?.code;
  if (got !== code) fail(name, `error.code ${show(got)}, want ${show(code)}; body ${res.text.slice(0, 300)}`);
  if (status === 401) {
    const wa = res.headers.get('www-authenticate') ?? '';
    if (!/^Bearer\b/.test(wa)) fail(name, `WWW-Authenticate ${show(wa)}, want a Bearer challenge`);
  }
  ok(name);
}

async function main() {
  // 1. Dashboard login.
  let res = await http('POST', '/api/v1/auth/email/login', { json: { email, password } });
  expectStatus('dashboard login', res, 200);
  const dashboard = res.json?.access_token;
  check('dashboard login returns an access_token', typeof dashboard === 'string' && dashboard.length > 0, res.text);

  // 2. Create an app.
  res = await http('POST', '/api/v1/apps', {
    headers: bearer(dashboard),
    json: { name: 'interop-node', environment: 'test', allowed_scopes: ['kyt.read'] },
  });
  expectStatus('create app', res, 201);
  const { id: appId, client_id: clientId, client_secret: clientSecret } = res.json ?? {};
  check('create app: 201 with id, client_id and client_secret',
    [appId, clientId, clientSecret].every((v) => typeof v === 'string' && v !== ''), res.text);

  // 3. RFC 8414 metadata.
  res = await http('GET', '/.well-known/oauth-authorization-server');
  expectStatus('authorization server metadata', res, 200);
  const meta = res.json ?? {};
  check('metadata: issuer is the base URL', meta.issuer === base, `issuer ${show(meta.issuer)}, want ${show(base)}`);
  check('metadata: token_endpoint and jwks_uri are URLs',
    URL.canParse(meta.token_endpoint ?? '') && URL.canParse(meta.jwks_uri ?? ''), show(meta));
  check('metadata: grant_types_supported includes client_credentials',
    Array.isArray(meta.grant_types_supported) && meta.grant_types_supported.includes('client_credentials'),
    show(meta.grant_types_supported));

  // 4. Tokens: client_secret_basic without scope, client_secret_post with scope.
  const tokenChecks = (label, r, scope) => {
    expectStatus(`token (${label})`, r, 200);
    const t = r.json ?? {};
    check(`token (${label}): access_token, token_type Bearer, expires_in ${TTL}`,
      typeof t.access_token === 'string' && t.token_type === 'Bearer' && t.expires_in === TTL, r.text);
    check(`token (${label}): ${scope === undefined ? 'no scope' : `scope ${show(scope)}`}`,
      t.scope === scope, `scope ${show(t.scope)}`);
    const cc = r.headers.get('cache-control') ?? '';
    check(`token (${label}): Cache-Control no-store`, /\bno-store\b/.test(cc), `Cache-Control ${show(cc)}`);
    return t.access_token;
  };
  res = await http('POST', meta.token_endpoint, {
    headers: basic(clientId, clientSecret),
    form: { grant_type: 'client_credentials' },
  });
  const tok1 = tokenChecks('client_secret_basic', res, undefined);
  res = await http('POST', meta.token_endpoint, {
    form: { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope: 'kyt.read' },
  });
  const tok2 = tokenChecks('client_secret_post, scope=kyt.read', res, 'kyt.read');

  // 5. Verify both with jose against the published JWKS.
  const JWKS = createRemoteJWKSet(new URL(meta.jwks_uri));
  const verifyOpts = { issuer: base, audience: base, algorithms: ['RS256'], typ: 'at+jwt' };
  const verified = [];
  for (const [label, token, scope] of [['token 1', tok1, undefined], ['token 2', tok2, 'kyt.read']]) {
    let v;
    try {
      v = await jwtVerify(token, JWKS, verifyOpts);
    } catch (e) {
      fail(`jose verifies ${label}`, `${e.code ?? e.name}: ${e.message}`);
    }
    ok(`jose verifies ${label} (RS256, typ at+jwt, iss, aud, exp)`);
    const { payload: p, protectedHeader: h } = v;
    check(`${label}: sub === client_id === the app's client_id`,
      p.sub === clientId && p.client_id === clientId, `sub ${show(p.sub)}, client_id ${show(p.client_id)}`);
    check(`${label}: jti present`, typeof p.jti === 'string' && p.jti !== '', show(p));
    check(`${label}: exp - iat === ${TTL}`, p.exp - p.iat === TTL, `iat ${p.iat}, exp ${p.exp}`);
    if (scope === undefined) check(`${label}: no scope claim`, !('scope' in p), `scope ${show(p.scope)}`);
    else check(`${label}: scope claim ${show(scope)}`, p.scope === scope, `scope ${show(p.scope)}`);
    check(`${label}: header kid present`, typeof h.kid === 'string' && h.kid !== '', show(h));
    verified.push(v);
  }

  // 6. The gateway.
  res = await http('GET', '/v1/hello', { headers: bearer(tok1) });
  check('gateway: /v1/hello with token 1 → 200', res.status === 200, `status ${res.status}; ${res.text.slice(0, 300)}`);
  res = await http('GET', '/v1/kyt/score', { headers: bearer(tok1) });
  expectGatewayError('gateway: /v1/kyt/score with token 1 (no scope) → 403 INSUFFICIENT_SCOPE', res, 403, 'INSUFFICIENT_SCOPE');
  res = await http('GET', '/v1/kyt/score', { headers: bearer(tok2) });
  check('gateway: /v1/kyt/score with token 2 (kyt.read) → 200', res.status === 200, `status ${res.status}; ${res.text.slice(0, 300)}`);

  // 7. Forgeries.
  const { payload: claims, protectedHeader: realHeader } = verified[1];
  const { privateKey } = await generateKeyPair('RS256');
  const forged = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: realHeader.kid, typ: 'at+jwt' })
    .sign(privateKey);
  const fh = decodeProtectedHeader(forged);
  if (fh.kid !== realHeader.kid || fh.typ !== 'at+jwt') fail('forged token header', show(fh));
  res = await http('GET', '/v1/hello', { headers: bearer(forged) });
  expectGatewayError('gateway: token signed by a foreign RSA key with the real kid → 401 INVALID_TOKEN', res, 401, 'INVALID_TOKEN');
  const none = `${b64url({ alg: 'none', typ: 'at+jwt' })}.${b64url(claims)}.`;
  res = await http('GET', '/v1/hello', { headers: bearer(none) });
  expectGatewayError('gateway: alg "none" token → 401 INVALID_TOKEN', res, 401, 'INVALID_TOKEN');

  // 8. Revocation and introspection.
  res = await http('POST', meta.revocation_endpoint ?? `${base}/oauth/revoke`, {
    headers: basic(clientId, clientSecret),
    form: { token: tok2 },
  });
  check('revoke token 2 → 200', res.status === 200, `status ${res.status}; ${res.text.slice(0, 300)}`);
  res = await http('GET', '/v1/kyt/score', { headers: bearer(tok2) });
  expectGatewayError('gateway: revoked token 2 → 401 INVALID_TOKEN', res, 401, 'INVALID_TOKEN');
  res = await http('POST', '/oauth/introspect', { headers: basic(clientId, clientSecret), form: { token: tok1 } });
  expectStatus('introspect token 1', res, 200);
  check('introspect token 1 → active, with its client_id',
    res.json?.active === true && res.json?.client_id === clientId, res.text);
  res = await http('POST', '/oauth/introspect', { headers: basic(clientId, clientSecret), form: { token: tok2 } });
  expectStatus('introspect revoked token 2', res, 200);
  check('introspect revoked token 2 → {active:false}', res.json?.active === false, res.text);

  // 9. Delete the app.
  res = await http('DELETE', `/api/v1/apps/${encodeURIComponent(appId)}`, { headers: bearer(dashboard) });
  check('delete app → 200', res.status === 200, `status ${res.status}; ${res.text.slice(0, 300)}`);
  res = await http('GET', '/v1/hello', { headers: bearer(tok1) });
  expectGatewayError("gateway: token 1 of the deleted app → 401 INVALID_TOKEN", res, 401, 'INVALID_TOKEN');
  res = await http('POST', meta.token_endpoint, {
    headers: basic(clientId, clientSecret),
    form: { grant_type: 'client_credentials' },
  });
  check("token endpoint with the deleted app's credentials → 401 invalid_client",
    res.status === 401 && res.json?.error === 'invalid_client', `status ${res.status}; ${res.text.slice(0, 300)}`);
}

try {
  await main();
  console.log(`interop (${who}): all ${passed} checks passed`);
} catch (e) {
  if (e instanceof CheckFailed) {
    console.error(e.message);
  } else {
    console.error('FAIL unexpected error:', e);
  }
  console.error(`interop (${who}): FAILED after ${passed} passed checks`);
  process.exit(1);
}
