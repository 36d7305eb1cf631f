// Two users chat in an encrypted room through matrix-js-sdk with its Rust crypto (WebAssembly), against one homeserver
// or two federated ones. Usage: node e2ee-scenario.mjs <alice's baseUrl> <bob's baseUrl>
// Checks: cross-signing bootstrapped for both, each sees the other's device signed by its owner; 50 messages both ways,
// every one decrypted by the other side; Alice's second device restores the key backup and decrypts the history.
// Exits 0 printing "OK" when every check passed, non-zero with the reason otherwise.
import * as sdk from "matrix-js-sdk";
import { check, waitFor } from "./scenario.mjs";
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.setLevel("error");
// The Rust crypto logs its debug tracing through console.debug/info onto stdout, which carries this script's results.
console.debug = console.info = () => {};
const [aliceUrl, bobUrl] = [process.argv[2], process.argv[3] ?? process.argv[2]];
const MESSAGES = 50;
const PASSWORD = "scenario password";




async function api(baseUrl, method, path, body, accessToken) {
  const headers = { "Content-Type": "application/json" };
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  const response = await fetch(`${baseUrl}/_matrix/client/v3${path}`, { method, headers, body: body && JSON.stringify(body) });
  const json = await response.json();
  check(response.ok, `${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

const register = (baseUrl, localpart) =>
  api(baseUrl, "POST", "/register", { username: localpart, password: PASSWORD, auth: { type: "m.login.dummy" } });

const login = (baseUrl, userId) =>
  api(baseUrl, "POST", "/login", { type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password: PASSWORD });

/** A started client with Rust crypto in memory. */
async function startClient(baseUrl, account) {
  const client = sdk.createClient({ baseUrl, accessToken: account.access_token, userId: account.user_id, deviceId: account.device_id });
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise((resolve) => client.once(sdk.ClientEvent.Sync, (state) => resolve(state)));
  const filter = new sdk.Filter(account.user_id);
  filter.setDefinition({ room: { timeline: { limit: 200 } } });
  await client.startClient({ filter, initialSyncLimit: 100 });
  check((await prepared) === "PREPARED", "client did not reach PREPARED");
  return client;
}

async function bootstrapCrossSigning(client) {
  await client.getCrypto().bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
      await makeRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: client.getUserId() }, password: PASSWORD });
    },
  });
  check(await client.getCrypto().isCrossSigningReady(), `${client.getUserId()}: cross-signing not ready`);
}

/** Bodies of the room's decrypted messages in the client's live timeline. */
function decryptedBodies(client, roomId) {
  const room = client.getRoom(roomId);
  if (!room) return [];
  return room.getLiveTimeline().getEvents()
    .filter((e) => e.isEncrypted() && !e.isDecryptionFailure() && e.getType() === "m.room.message")
    .map((e) => e.getContent().body);
}

const suffix = Math.random().toString(36).slice(2, 10);
const aliceAccount = await register(aliceUrl, `alice${suffix}`);
const bobAccount = await register(bobUrl, `bob${suffix}`);
const alice = await startClient(aliceUrl, aliceAccount);
const bob = await startClient(bobUrl, bobAccount);

await bootstrapCrossSigning(alice);
await bootstrapCrossSigning(bob);
await alice.getCrypto().resetKeyBackup();
let backupVersion = null;
await waitFor("alice's key backup becoming active", async () => (backupVersion = await alice.getCrypto().getActiveSessionBackupVersion()) !== null, 20000);

const { room_id: roomId } = await alice.createRoom({
  name: "encrypted scenario",
  invite: [bob.getUserId()],
  preset: "private_chat",
  initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
});
await waitFor("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
await bob.joinRoom(roomId, { viaServers: [aliceAccount.user_id.split(":").slice(1).join(":")] });
await waitFor("alice seeing bob join", () => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join");

// Each sees the other's identity: cross-signing keys published, the device signed by its owner.
for (const [viewer, other] of [[alice, bob], [bob, alice]]) {
  await waitFor(`${viewer.getUserId()} seeing ${other.getUserId()}'s device signed by its owner`, async () => {
    const status = await viewer.getCrypto().getDeviceVerificationStatus(other.getUserId(), other.getDeviceId());
    return status?.signedByOwner === true && await viewer.getCrypto().userHasCrossSigningKeys(other.getUserId(), true);
  });
}

const expected = [];
for (let i = 0; i < MESSAGES; i++) {
  const [sender, receiver] = i % 2 === 0 ? [alice, bob] : [bob, alice];
  const body = `secret ${i} from ${sender.getUserId()}`;
  expected.push(body);
  await sender.sendTextMessage(roomId, body);
  // The other side must decrypt it before the next one goes out: a lost key shows up at once, with its index.
  await waitFor(() => `${receiver.getUserId()} decrypting message ${i}`, () => decryptedBodies(receiver, roomId).includes(body), 30000);
}
for (const [name, client] of [["alice", alice], ["bob", bob]]) {
  const bodies = decryptedBodies(client, roomId);
  const missing = expected.filter((body) => !bodies.includes(body));
  check(missing.length === 0, `${name} could not decrypt ${missing.length} messages, e.g. ${missing[0]}`);
}

// The server never saw plaintext: what it stores is m.room.encrypted.
const raw = await api(aliceUrl, "GET", `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=100`, undefined, aliceAccount.access_token);
check(!raw.chunk.some((e) => e.type === "m.room.message"), "the server holds a plaintext message");

// Alice's keys reach the backup; a second device restores it and decrypts the whole history.
await waitFor("the key backup holding alice's and bob's sessions", async () => {
  const info = await api(aliceUrl, "GET", `/room_keys/version/${backupVersion}`, undefined, aliceAccount.access_token);
  return info.count >= 2;
});
const backupKey = await alice.getCrypto().getSessionBackupPrivateKey();
check(backupKey, "alice has no backup private key");
const secondAccount = await login(aliceUrl, aliceAccount.user_id);
const second = await startClient(aliceUrl, secondAccount);
await second.getCrypto().storeSessionBackupPrivateKey(backupKey, backupVersion);
const restored = await second.getCrypto().restoreKeyBackup();
check(restored.imported >= 2, `restored only ${restored.imported} keys`);
const secondRoom = second.getRoom(roomId);
check(secondRoom, "the second device does not see the room");
while (secondRoom.getLiveTimeline().getPaginationToken(sdk.Direction.Backward)) {
  const before = secondRoom.getLiveTimeline().getEvents().length;
  await second.scrollback(secondRoom, 100);
  if (secondRoom.getLiveTimeline().getEvents().length === before) break;
}
await waitFor(() => `the second device decrypting the history (${decryptedBodies(second, roomId).length} of ${MESSAGES})`, async () => {
  for (const event of secondRoom.getLiveTimeline().getEvents().filter((e) => e.isDecryptionFailure())) {
    await second.decryptEventIfNeeded(event, { isRetry: true });
  }
  return expected.every((body) => decryptedBodies(second, roomId).includes(body));
});

for (const client of [alice, bob, second]) client.stopClient();
console.log("OK");
process.exit(0);
