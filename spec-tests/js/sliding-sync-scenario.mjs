// A sliding-sync client and a /sync client chat in an encrypted room: Alice runs matrix-js-sdk's SlidingSync (simplified
// sliding sync, MSC4186, with its e2ee, to-device, account data, receipts and typing extensions) and Rust crypto; Bob
// runs /sync with Rust crypto. Usage: node sliding-sync-scenario.mjs <baseUrl>
// Checks: Alice's room list shows her rooms by recent activity and Bob's invite; she joins through it; 20 messages each
// way, every one decrypted by the other; a room subscription brings a room outside the list's range with its history;
// a message in that room moves it to the top of the list.
// Exits 0 printing "OK" when every check passed, non-zero with the reason otherwise.
import * as sdk from "matrix-js-sdk-sliding-sync";
import { SlidingSync, SlidingSyncEvent, SlidingSyncState } from "matrix-js-sdk-sliding-sync/lib/sliding-sync.js";
import { logger } from "matrix-js-sdk-sliding-sync/lib/logger.js";
import { check, waitFor } from "./scenario.mjs";

logger.setLevel("error");
// The Rust crypto logs its debug tracing through console.debug/info onto stdout, which carries this script's results.
console.debug = console.info = () => {};
// matrix-js-sdk 37 (the last release for Node 20, the first with simplified sliding sync) calls this Node 22 function.
Promise.withResolvers ??= () => {
  let resolve, reject;
  const promise = new Promise((res, rej) => [resolve, reject] = [res, rej]);
  return { promise, resolve, reject };
};
const baseUrl = process.argv[2];
const MESSAGES = 20;
const PASSWORD = "scenario password";

async function api(method, path, body, accessToken) {
  const headers = { "Content-Type": "application/json" };
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  const response = await fetch(`${baseUrl}/_matrix/client/v3${path}`, { method, headers, body: body && JSON.stringify(body) });
  const json = await response.json();
  check(response.ok, `${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

const register = (localpart) => api("POST", "/register", { username: localpart, password: PASSWORD, auth: { type: "m.login.dummy" } });

/** Bob: a /sync client with Rust crypto in memory. */
async function startSyncClient(account) {
  const client = sdk.createClient({ baseUrl, accessToken: account.access_token, userId: account.user_id, deviceId: account.device_id });
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise((resolve) => client.once(sdk.ClientEvent.Sync, (state) => resolve(state)));
  await client.startClient({ initialSyncLimit: 50 });
  check((await prepared) === "PREPARED", "bob's client did not reach PREPARED");
  return client;
}

const ROOM_LIST = "room_list";
// Subscriptions last one request (as Synapse's: matrix-rust-sdk sends its own each time) while this SDK sends each once:
// the list's timeline limit is what keeps messages out of gaps once the subscription request is answered.
const listParams = (end) => ({
  ranges: [[0, end]],
  timeline_limit: MESSAGES,
  required_state: [["m.room.name", ""], ["m.room.encryption", ""], ["m.room.member", "$ME"], ["m.room.create", ""]],
});

/** Alice: a sliding-sync client with Rust crypto in memory, listing her two most recently active rooms. */
async function startSlidingSyncClient(account) {
  const client = sdk.createClient({ baseUrl, accessToken: account.access_token, userId: account.user_id, deviceId: account.device_id });
  await client.initRustCrypto({ useIndexedDB: false });
  const slidingSync = new SlidingSync(baseUrl, new Map([[ROOM_LIST, listParams(1)]]),
    { timeline_limit: 50, required_state: [["*", "*"]] }, client, 10000);
  // The list's order as the server gives it (this SDK orders rooms itself and leaves the server's order unused).
  const roomIds = [];
  slidingSync.on(SlidingSyncEvent.Lifecycle, (state, response) => {
    const ops = response?.lists?.[ROOM_LIST]?.ops;
    if (state === SlidingSyncState.RequestFinished && ops) roomIds.splice(0, roomIds.length, ...ops.flatMap((op) => op.room_ids));
  });
  const prepared = new Promise((resolve) => client.once(sdk.ClientEvent.Sync, (state) => resolve(state)));
  await client.startClient({ slidingSync });
  check((await prepared) === "PREPARED", "alice's sliding-sync client did not reach PREPARED");
  return { client, slidingSync, roomIds };
}

/**
 * Alice's decrypted messages, as her room screen shows them: a sliding-sync client decrypts only each room's latest and
 * unread events as they arrive (for previews and counts), and the others when they are displayed.
 */
async function displayedBodies(client, roomId) {
  for (const e of client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [])
    if (e.isEncrypted()) await client.decryptEventIfNeeded(e);
  return decryptedBodies(client, roomId);
}

function decryptedBodies(client, roomId) {
  const room = client.getRoom(roomId);
  if (!room) return [];
  return room.getLiveTimeline().getEvents()
    .filter((e) => e.isEncrypted() && !e.isDecryptionFailure() && e.getType() === "m.room.message")
    .map((e) => e.getContent().body);
}

const suffix = Math.random().toString(36).slice(2, 10);
const aliceAccount = await register(`alice${suffix}`);
const bobAccount = await register(`bob${suffix}`);

// Alice's rooms before she starts: an old one with history, then a newer one.
const { room_id: oldRoom } = await api("POST", "/createRoom", { name: "old room" }, aliceAccount.access_token);
for (let i = 0; i < 3; i++)
  await api("PUT", `/rooms/${encodeURIComponent(oldRoom)}/send/m.room.message/old${i}`, { msgtype: "m.text", body: `old ${i}` },
    aliceAccount.access_token);
const { room_id: newRoom } = await api("POST", "/createRoom", { name: "new room" }, aliceAccount.access_token);

const bob = await startSyncClient(bobAccount);
const { client: alice, slidingSync, roomIds } = await startSlidingSyncClient(aliceAccount);
await waitFor(() => `alice's room list [${newRoom}, ${oldRoom}], was [${roomIds}]`, () => roomIds[0] === newRoom && roomIds[1] === oldRoom);

// Bob invites Alice to an encrypted room: the invite tops her list, and she joins it.
const { room_id: roomId } = await bob.createRoom({
  name: "encrypted sliding",
  invite: [alice.getUserId()],
  preset: "private_chat",
  initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
});
await waitFor("the invite in alice's list", () => roomIds[0] === roomId && alice.getRoom(roomId)?.getMyMembership() === "invite");
await alice.joinRoom(roomId);
await waitFor("alice joined in bob's view", () => bob.getRoom(roomId)?.getMember(alice.getUserId())?.membership === "join");
await waitFor("alice joined in her own view", () => alice.getRoom(roomId)?.getMyMembership() === "join");

for (let i = 0; i < MESSAGES; i++) await bob.sendTextMessage(roomId, `from bob ${i}`);
await waitFor(() => `alice decrypting bob's messages (${decryptedBodies(alice, roomId).length}/${MESSAGES})`,
  async () => (await displayedBodies(alice, roomId)).filter((b) => b.startsWith("from bob")).length === MESSAGES);
for (let i = 0; i < MESSAGES; i++) await alice.sendTextMessage(roomId, `from alice ${i}`);
await waitFor(() => `bob decrypting alice's messages (${decryptedBodies(bob, roomId).length})`,
  () => decryptedBodies(bob, roomId).filter((b) => b.startsWith("from alice")).length === MESSAGES);

// The old room is outside the two-room range now; a subscription brings it with its history, and a message moves it up.
check(!roomIds.slice(0, 2).includes(oldRoom), `old room still in range: [${roomIds}]`);
slidingSync.modifyRoomSubscriptions(new Set([oldRoom]));
const bodies = () => (alice.getRoom(oldRoom)?.getLiveTimeline().getEvents() ?? []).filter((e) => e.getType() === "m.room.message")
  .map((e) => e.getContent().body);
await waitFor(() => `the subscribed room's history, was [${bodies()}]`, () => ["old 0", "old 1", "old 2"].every((b) => bodies().includes(b)));
await api("PUT", `/rooms/${encodeURIComponent(oldRoom)}/send/m.room.message/old-again`, { msgtype: "m.text", body: "old again" },
  aliceAccount.access_token);
await waitFor(() => `the old room at the top of the list, was [${roomIds}]`, () => roomIds[0] === oldRoom);
await waitFor("the new message in the subscribed room", () => bodies().includes("old again"));

slidingSync.stop();
alice.stopClient();
bob.stopClient();
console.log("OK");
process.exit(0);
