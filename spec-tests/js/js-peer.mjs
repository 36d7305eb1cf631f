// The matrix-js-sdk (Rust crypto) side of the matrix-nio interop scenario, driven line by line over stdin/stdout by
// spec-tests/python/nio_interop.py. Usage: node js-peer.mjs <baseUrl> <messages>
//   prints READY <userId> <roomId>   once registered, crypto started and an encrypted room created
//   reads  INVITE <userId>           invites that user, prints INVITED
//   then waits for that user to join, sends <messages> encrypted messages "js <i>", waits to decrypt <messages>
//   messages "nio <i>" from them, and prints OK.
import * as sdk from "matrix-js-sdk";
import { fail, waitFor } from "./scenario.mjs";
import { logger } from "matrix-js-sdk/lib/logger.js";
import readline from "node:readline";

logger.setLevel("error");
// The Rust crypto logs its debug tracing through console.debug/info onto stdout, which carries this script's results.
console.debug = console.info = () => {};
const [baseUrl, count] = [process.argv[2], Number(process.argv[3] ?? 10)];
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const response = await fetch(`${baseUrl}/_matrix/client/v3/register`, {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ username: `js${Math.random().toString(36).slice(2, 10)}`, password: "peer password", auth: { type: "m.login.dummy" } }),
});
const account = await response.json();
if (!response.ok) fail(`register: ${JSON.stringify(account)}`);
const client = sdk.createClient({ baseUrl, accessToken: account.access_token, userId: account.user_id, deviceId: account.device_id });
await client.initRustCrypto({ useIndexedDB: false });
const prepared = new Promise((resolve) => client.once(sdk.ClientEvent.Sync, (state) => resolve(state)));
// A sync bringing more than the default ten events is limited, and the SDK then starts a new live timeline without
// the messages it had: while both sides send at once on a loaded machine, that lost some of nio's messages here.
const filter = new sdk.Filter(account.user_id);
filter.setDefinition({ room: { timeline: { limit: 200 } } });
await client.startClient({ filter, initialSyncLimit: 50 });
if ((await prepared) !== "PREPARED") fail("client did not reach PREPARED");

const { room_id: roomId } = await client.createRoom({
  preset: "private_chat",
  initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
});
console.log(`READY ${account.user_id} ${roomId}`);

const invite = (await lines.next()).value ?? "";
if (!invite.startsWith("INVITE ")) fail(`expected INVITE, got ${invite}`);
const peer = invite.slice("INVITE ".length);
await client.invite(roomId, peer);
console.log("INVITED");
await waitFor(`${peer} joining`, () => client.getRoom(roomId)?.getMember(peer)?.membership === "join");

for (let i = 0; i < count; i++) await client.sendTextMessage(roomId, `js ${i}`);
const received = () => new Set(client.getRoom(roomId).getLiveTimeline().getEvents()
  .filter((e) => e.isEncrypted() && !e.isDecryptionFailure() && e.getSender() === peer && e.getType() === "m.room.message")
  .map((e) => e.getContent().body));
await waitFor(() => `decrypting ${count} messages from ${peer} (have ${received().size})`,
  () => Array.from({ length: count }, (_, i) => `nio ${i}`).every((body) => received().has(body)), 90000);
client.stopClient();
console.log("OK");
process.exit(0);
