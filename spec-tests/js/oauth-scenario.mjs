// The OAuth 2.0 API through matrix-js-sdk's own OIDC helpers, with headless Chromium filling the server's sign-in and
// consent pages: discovery, client registration, the authorisation code grant, a syncing client sending a message, a
// token refresh (OidcTokenRefresher), a device-flow sign-in confirmed in the browser, and revocation.
// Usage: node oauth-scenario.mjs <baseUrl> <user localpart> <password>. Prints "OK" when every check passed.
import * as sdk from "matrix-js-sdk";
import {
  completeAuthorizationCodeGrant, decodeIdToken, generateOidcAuthorizationUrl, OidcTokenRefresher, registerOidcClient,
} from "matrix-js-sdk/lib/oidc/index.js";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { launchBrowser } from "./browser.mjs";
import { check, waitFor } from "./scenario.mjs";

logger.setLevel("error");
const [baseUrl, localpart, password] = process.argv.slice(2);
const clientUri = "https://app.example.org/";
const redirectUri = "https://app.example.org/callback";

/** The browser globals the SDK's OIDC helpers (and oidc-client-ts under them) use: storage and the page's origin. */
class MemoryStorage {
  #items = new Map();
  get length() { return this.#items.size; }
  key(index) { return [...this.#items.keys()][index] ?? null; }
  getItem(key) { return this.#items.get(key) ?? null; }
  setItem(key, value) { this.#items.set(key, String(value)); }
  removeItem(key) { this.#items.delete(key); }
}
globalThis.sessionStorage = new MemoryStorage();
globalThis.localStorage = new MemoryStorage();
globalThis.window = { sessionStorage: globalThis.sessionStorage, localStorage: globalThis.localStorage,
  location: new URL(redirectUri), crypto: globalThis.crypto };

async function whoami(accessToken) {
  const response = await fetch(`${baseUrl}/_matrix/client/v3/account/whoami`, { headers: { Authorization: `Bearer ${accessToken}` } });
  return { status: response.status, body: await response.json() };
}

async function postForm(url, form) {
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form) });
  return { status: response.status, body: await response.json() };
}

const browser = await launchBrowser();
try {
  const page = await browser.newPage();
  let callback = null;
  // The client's redirect URI: the browser stops there and hands the URL over, as a web client's page would.
  await page.route("https://app.example.org/**", async (route) => {
    callback = route.request().url();
    await route.fulfill({ status: 200, contentType: "text/html", body: "<p>back at the client</p>" });
  });

  // Discovery and registration, with the SDK's helpers.
  const metadata = await sdk.createClient({ baseUrl }).getAuthMetadata();
  check(metadata.issuer === `${baseUrl}/`, `issuer ${metadata.issuer}`);
  check(metadata.signingKeys?.length === 1, "the JWKS was not loaded");
  const clientId = await registerOidcClient(metadata, {
    clientName: "Scenario App", clientUri, redirectUris: [redirectUri], applicationType: "web", contacts: [],
    tosUri: "https://app.example.org/tos", policyUri: "https://app.example.org/policy",
  });

  // The authorisation code grant: sign in and allow in the browser, then the SDK exchanges the code.
  const nonce = "scenario-nonce";
  const authorizationUrl = await generateOidcAuthorizationUrl({ metadata, redirectUri, clientId, homeserverUrl: baseUrl, nonce });
  await page.goto(authorizationUrl);
  await page.getByLabel("User name").fill(localpart);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Allow Scenario App access?" }).waitFor();
  await page.getByRole("button", { name: "Allow" }).click();
  await waitFor("the redirect back to the client", () => callback !== null);
  const params = new URL(callback).searchParams;
  check(params.get("code") && params.get("state"), `callback without code and state: ${callback}`);
  const { tokenResponse, idTokenClaims, oidcClientSettings } = await completeAuthorizationCodeGrant(params.get("code"), params.get("state"));
  check(oidcClientSettings.clientId === clientId, "client ID of the grant");
  // The SDK checked the ID token's issuer, audience, nonce and expiry; its profile keeps the claims but the protocol's.
  const idToken = decodeIdToken(tokenResponse.id_token);
  check(idToken.nonce === nonce && idToken.aud === clientId && idToken.auth_time > 0, `ID token claims ${JSON.stringify(idToken)}`);
  const me = await whoami(tokenResponse.access_token);
  check(me.status === 200, `whoami: ${JSON.stringify(me.body)}`);
  const deviceId = me.body.device_id;
  check(tokenResponse.scope.includes(`device:${deviceId}`), `scope ${tokenResponse.scope} names the device`);

  // A client on those tokens syncs and sends a message; the SDK's refresher renews its token when asked.
  const refresher = new OidcTokenRefresher(metadata.issuer, clientId, redirectUri, deviceId, idTokenClaims);
  await refresher.oidcClientReady;
  const client = sdk.createClient({
    baseUrl, accessToken: tokenResponse.access_token, refreshToken: tokenResponse.refresh_token, userId: me.body.user_id, deviceId,
    tokenRefreshFunction: (refreshToken) => refresher.doRefreshAccessToken(refreshToken),
  });
  const prepared = new Promise((resolve) => client.once(sdk.ClientEvent.Sync, (state) => resolve(state)));
  await client.startClient({ initialSyncLimit: 5 });
  check((await prepared) === "PREPARED", "the client did not sync");
  const { room_id: roomId } = await client.createRoom({ name: "OAuth scenario" });
  const received = [];
  client.on(sdk.RoomEvent.Timeline, (event) => { if (event.getType() === "m.room.message") received.push(event.getContent().body); });
  await client.sendTextMessage(roomId, "hello over OAuth");
  await waitFor("the message to come back through sync", () => received.includes("hello over OAuth"));

  const renewed = await refresher.doRefreshAccessToken(tokenResponse.refresh_token);
  check(renewed.accessToken && renewed.accessToken !== tokenResponse.access_token, "refresh gave no new access token");
  client.setAccessToken(renewed.accessToken);
  await client.sendTextMessage(roomId, "hello after a refresh");
  await waitFor("the second message", () => received.includes("hello after a refresh"));
  check((await whoami(tokenResponse.access_token)).status === 401, "the replaced access token still works");
  client.stopClient();

  // The device authorisation grant: the browser (still signed in) confirms the user code.
  const registered = await fetch(metadata.registration_endpoint, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ client_name: "Scenario TV", client_uri: clientUri, grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
      token_endpoint_auth_method: "none", application_type: "native" }),
  });
  const tvClientId = (await registered.json()).client_id;
  check(registered.status === 201 && tvClientId, "device client registration");
  const started = await postForm(metadata.device_authorization_endpoint,
    { client_id: tvClientId, scope: "urn:matrix:client:api:* urn:matrix:client:device:SCENARIOTV" });
  check(started.status === 200, `device authorisation: ${JSON.stringify(started.body)}`);
  const poll = () => postForm(metadata.token_endpoint,
    { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: started.body.device_code, client_id: tvClientId });
  check((await poll()).body.error === "authorization_pending", "pending before the user answered");
  await page.goto(started.body.verification_uri);
  await page.getByLabel("Code shown on your device").fill(started.body.user_code);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByRole("heading", { name: "Allow Scenario TV access?" }).waitFor();
  await page.getByRole("button", { name: "Allow" }).click();
  await page.getByRole("heading", { name: "Device connected" }).waitFor();
  await new Promise((resolve) => setTimeout(resolve, started.body.interval * 1000));
  const granted = await poll();
  check(granted.status === 200, `device token: ${JSON.stringify(granted.body)}`);
  const tv = await whoami(granted.body.access_token);
  check(tv.body.device_id === "SCENARIOTV" && tv.body.user_id === me.body.user_id, `device session ${JSON.stringify(tv.body)}`);

  // Revocation ends both sessions.
  for (const [token, client] of [[renewed.accessToken, clientId], [granted.body.refresh_token, tvClientId]]) {
    const revoked = await fetch(metadata.revocation_endpoint, {
      method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ token, client_id: client }),
    });
    check(revoked.status === 200, "revocation");
  }
  const ended = await whoami(renewed.accessToken);
  check(ended.status === 401 && ended.body.errcode === "M_UNKNOWN_TOKEN", `revoked token: ${JSON.stringify(ended.body)}`);
  check((await whoami(granted.body.access_token)).status === 401, "the device session survived revocation of its refresh token");
} finally {
  await browser.close();
}
console.log("OK");
process.exit(0);
