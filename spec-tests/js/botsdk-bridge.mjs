// A bridge on a real npm framework, matrix-bot-sdk's Appservice, against a running homeserver.
// Usage: node botsdk-bridge.mjs <baseUrl> <serverName> <port> <as_token> <hs_token>
// The homeserver must list the matching registration (id botsdk, users @botsdk_.*, sender botsdkbot, url on <port>).
// The bridge echoes every message of a real user through its ghost and joins ghosts to rooms they are invited to:
// ghosts get registered, join (directly, and on invitation), and messages flow both ways. Prints "OK" at the end.
import sdk from "matrix-bot-sdk";
import { check, fail, waitFor } from "./scenario.mjs";

const { Appservice, MemoryStorageProvider, LogService, LogLevel } = sdk;
LogService.setLevel(LogLevel.ERROR);
const [baseUrl, serverName, port, asToken, hsToken] = process.argv.slice(2);

const appservice = new Appservice({
  port: Number(port),
  bindAddress: "127.0.0.1",
  homeserverName: serverName,
  homeserverUrl: baseUrl,
  storage: new MemoryStorageProvider(),
  registration: {
    id: "botsdk",
    url: `http://127.0.0.1:${port}`,
    as_token: asToken,
    hs_token: hsToken,
    sender_localpart: "botsdkbot",
    namespaces: { users: [{ exclusive: true, regex: "@botsdk_.*" }], rooms: [], aliases: [] },
  },
});

const bridged = []; // bodies of real users' messages the bridge received, in order
// matrix-bot-sdk does not wait for one handler before calling the next: the echoes are chained to keep their order.
let echoes = Promise.resolve();
appservice.on("room.message", (roomId, event) => {
  if (appservice.isNamespacedUser(event.sender)) return;
  bridged.push(event.content.body);
  echoes = echoes.then(() => appservice.getIntentForSuffix("ghost").sendText(roomId, `echo: ${event.content.body}`));
});
appservice.on("room.invite", async (roomId, event) => {
  if (appservice.isNamespacedUser(event.state_key)) await appservice.getIntentForUserId(event.state_key).joinRoom(roomId);
});
await appservice.begin();

async function call(method, path, token, body) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) fail(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const suffix = Math.random().toString(36).slice(2, 10);
const alice = await call("POST", "/_matrix/client/v3/register", null,
  { username: `alice${suffix}`, password: "scenario password", auth: { type: "m.login.dummy" } });
const { room_id: roomId } = await call("POST", "/_matrix/client/v3/createRoom", alice.access_token, { preset: "public_chat" });
const room = encodeURIComponent(roomId);

// The ghost is registered through the framework (m.login.application_service), sets its profile and joins.
const ghost = appservice.getIntentForSuffix("ghost");
await ghost.ensureRegistered();
await ghost.underlyingClient.setDisplayName("Bot-SDK ghost");
await ghost.joinRoom(roomId);
const members = async () => (await call("GET", `/_matrix/client/v3/rooms/${room}/joined_members`, alice.access_token)).joined;
const ghostMember = (await members())[ghost.userId];
check(ghostMember?.display_name === "Bot-SDK ghost", `the ghost's membership: ${JSON.stringify(ghostMember)}`);

// Matrix -> bridge -> Matrix: the user's messages reach the bridge in order, and the ghost's echoes reach the room.
const bodies = ["hello bridge", "second message", "third message"];
for (const [i, body] of bodies.entries())
  await call("PUT", `/_matrix/client/v3/rooms/${room}/send/m.room.message/t${i}`, alice.access_token, { msgtype: "m.text", body });
await waitFor(() => `the bridge receiving ${bodies.length} messages (has ${JSON.stringify(bridged)})`, () => bridged.length >= bodies.length);
check(JSON.stringify(bridged) === JSON.stringify(bodies), `the bridge received ${JSON.stringify(bridged)}`);
const echoed = async () => (await call("GET", `/_matrix/client/v3/rooms/${room}/messages?dir=f&limit=100`, alice.access_token)).chunk
  .filter((e) => e.sender === ghost.userId && e.type === "m.room.message").map((e) => e.content.body);
await waitFor("the ghost's echoes in the room", async () => (await echoed()).length >= bodies.length);
check(JSON.stringify(await echoed()) === JSON.stringify(bodies.map((b) => `echo: ${b}`)), `echoes: ${JSON.stringify(await echoed())}`);

// A ghost the user invites is joined by the bridge, having been registered on the way.
const invited = appservice.getUserIdForSuffix(`invited${suffix}`);
await call("POST", `/_matrix/client/v3/rooms/${room}/invite`, alice.access_token, { user_id: invited });
await waitFor("the invited ghost joining", async () => invited in (await members()));

appservice.stop();
console.log("OK");
process.exit(0);
