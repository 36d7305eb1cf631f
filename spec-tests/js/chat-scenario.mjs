// A two-person chat driven by matrix-js-sdk against a running homeserver, with a restart in the middle.
// Usage: node chat-scenario.mjs <baseUrl>. Prints "RESTART" and waits for "RESTARTED" on stdin while the test
// harness restarts the server; exits 0 and prints "OK" when every check passed, non-zero with the reason otherwise.
import * as sdk from "matrix-js-sdk";
import { check, waitFor } from "./scenario.mjs";
import { logger } from "matrix-js-sdk/lib/logger.js";
import readline from "node:readline";

logger.setLevel("error");
const baseUrl = process.argv[2];
const MESSAGES = 100;
const stdin = readline.createInterface({ input: process.stdin });
const stdinLines = stdin[Symbol.asyncIterator]();




async function register(localpart) {
  const url = `${baseUrl}/_matrix/client/v3/register`;
  const body = { username: localpart, password: "scenario password", auth: { type: "m.login.dummy" } };
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const json = await response.json();
  check(response.ok, `register ${localpart}: ${JSON.stringify(json)}`);
  return json;
}

/** A started client that records every m.room.message its syncs deliver, by event ID, in arrival order. */
async function startClient(account) {
  const client = sdk.createClient({ baseUrl, accessToken: account.access_token, userId: account.user_id, deviceId: account.device_id });
  client.received = [];
  client.on(sdk.ClientEvent.Event, (event) => {
    if (event.getType() === "m.room.message" && event.getId()?.startsWith("$")) client.received.push(event.getId());
  });
  const prepared = new Promise((resolve) => client.once(sdk.ClientEvent.Sync, (state) => resolve(state)));
  const filter = new sdk.Filter(account.user_id);
  filter.setDefinition({ room: { timeline: { limit: 500 } } });
  await client.startClient({ filter, initialSyncLimit: 20 });
  check((await prepared) === "PREPARED", "client did not reach PREPARED");
  return client;
}

const suffix = Math.random().toString(36).slice(2, 10);
const alice = await startClient(await register(`alice${suffix}`));
const bob = await startClient(await register(`bob${suffix}`));

const { room_id: roomId } = await alice.createRoom({ name: "js-sdk scenario", invite: [bob.getUserId()], preset: "private_chat" });
await alice.sendStateEvent(roomId, "m.room.history_visibility", { history_visibility: "joined" }, "");
await waitFor("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
await bob.joinRoom(roomId);
await waitFor("alice seeing bob join", () => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join");

const sent = [];
async function send(client, i) {
  const { event_id } = await client.sendTextMessage(roomId, `message ${i}`);
  sent.push(event_id);
}

for (let i = 0; i < MESSAGES; i++) {
  await send(i % 2 === 0 ? alice : bob, i);
  if (i === MESSAGES / 2) {
    console.log("RESTART");
    const line = await stdinLines.next();
    check(line.value === "RESTARTED", `expected RESTARTED, got ${line.value}`);
  }
}

// Each client resumes from its sync token after the restart and must receive every message exactly once, in the
// order sent. The filter's timeline limit is high enough that catching up after the restart is never "limited".
for (const [name, client] of [["alice", alice], ["bob", bob]]) {
  await waitFor(() => `${name} receiving all ${MESSAGES} messages (has ${new Set(client.received).size})`,
    () => new Set(client.received).size >= MESSAGES, 60000);
  const duplicates = client.received.length - new Set(client.received).size;
  check(duplicates === 0, `${name} received ${duplicates} messages twice`);
  const firstDifference = client.received.findIndex((id, i) => id !== sent[i]);
  check(firstDifference === -1, `${name} received the messages out of order (first difference at ${firstDifference})`);
}

// Typing and read receipts arrive at the other client.
await bob.sendTyping(roomId, true, 20000);
await waitFor("alice seeing bob typing", () => alice.getRoom(roomId).getMember(bob.getUserId()).typing);
const last = bob.getRoom(roomId).findEventById(sent[sent.length - 1]);
check(last, "bob's timeline lacks the last message");
await bob.sendReadReceipt(last);
await waitFor("alice seeing bob's receipt", () => alice.getRoom(roomId).getEventReadUpTo(bob.getUserId()) === sent[sent.length - 1]);

// A redaction reaches both clients.
await alice.redactEvent(roomId, sent[1]);
await waitFor("bob seeing the redaction", () => bob.getRoom(roomId).findEventById(sent[1])?.isRedacted());

// A third user who joins later sees only what history visibility allows: here ("joined" since before any message),
// nothing before their join. (Messages sent while it was "shared" would stay readable to later members: spec.)
const carolAccount = await register(`carol${suffix}`);
await alice.invite(roomId, carolAccount.user_id);
const carol = await startClient(carolAccount);
await waitFor("carol's invite", () => carol.getRoom(roomId)?.getMyMembership() === "invite");
await carol.joinRoom(roomId);
await alice.sendTextMessage(roomId, "welcome carol");
await waitFor("carol seeing the welcome", () => carol.getRoom(roomId)?.getLiveTimeline().getEvents().some((e) => e.getContent().body === "welcome carol"));
const carolRoom = carol.getRoom(roomId);
while (carolRoom.getLiveTimeline().getPaginationToken(sdk.Direction.Backward)) {
  const before = carolRoom.getLiveTimeline().getEvents().length;
  await carol.scrollback(carolRoom, 50);
  if (carolRoom.getLiveTimeline().getEvents().length === before) break;
}
const carolBodies = carolRoom.getLiveTimeline().getEvents().filter((e) => e.getType() === "m.room.message").map((e) => e.getContent().body);
check(!carolBodies.some((body) => body?.startsWith("message ")), `carol saw history from before her join: ${carolBodies.slice(0, 3)}`);

for (const client of [alice, bob, carol]) client.stopClient();
stdin.close();
console.log("OK");
process.exit(0);
