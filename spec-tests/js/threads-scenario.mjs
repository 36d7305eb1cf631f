// Threads, edits, reactions, mentions and search as Element uses them, driven by matrix-js-sdk (thread support on).
// Usage: node threads-scenario.mjs <baseUrl>. Exits 0 and prints "OK" when every check passed.
import * as sdk from "matrix-js-sdk";
import { check, waitFor } from "./scenario.mjs";
import { logger } from "matrix-js-sdk/lib/logger.js";

logger.setLevel("error");
const baseUrl = process.argv[2];

async function register(localpart) {
  const response = await fetch(`${baseUrl}/_matrix/client/v3/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: localpart, password: "scenario password", auth: { type: "m.login.dummy" } }),
  });
  const json = await response.json();
  check(response.ok, `register ${localpart}: ${JSON.stringify(json)}`);
  return json;
}

async function startClient(account) {
  const client = sdk.createClient({ baseUrl, accessToken: account.access_token, userId: account.user_id, deviceId: account.device_id });
  const prepared = new Promise((resolve) => client.once(sdk.ClientEvent.Sync, (state) => resolve(state)));
  await client.startClient({ threadSupport: true, initialSyncLimit: 50 });
  check((await prepared) === "PREPARED", "client did not reach PREPARED");
  return client;
}

const suffix = Math.random().toString(36).slice(2, 10);
const alice = await startClient(await register(`alice${suffix}`));
const bob = await startClient(await register(`bob${suffix}`));
const { room_id: roomId } = await alice.createRoom({ name: "threads scenario", invite: [bob.getUserId()], preset: "private_chat" });
await waitFor("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
await bob.joinRoom(roomId);
await waitFor("alice seeing bob join", () => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join");

// A thread: a root from alice, two replies from bob.
const { event_id: rootId } = await alice.sendTextMessage(roomId, "Plan for Friday?");
for (const body of ["pizza", "and a demo"])
  await bob.sendMessage(roomId, rootId, {
    msgtype: "m.text", body, "m.relates_to": { rel_type: "m.thread", event_id: rootId, is_falling_back: true, "m.in_reply_to": { event_id: rootId } },
  });
const root = await alice.fetchRoomEvent(roomId, rootId);
const summary = root.unsigned?.["m.relations"]?.["m.thread"];
check(summary?.count === 2, `thread summary count: ${JSON.stringify(summary)}`);
check(summary?.latest_event?.content?.body === "and a demo", `thread latest event: ${JSON.stringify(summary?.latest_event)}`);
check(summary?.current_user_participated === true, "alice (the root's sender) participated");
const threads = await alice.http.authedRequest(sdk.Method.Get, `/rooms/${encodeURIComponent(roomId)}/threads`, undefined, undefined,
  { prefix: "/_matrix/client/v1" });
check(threads.chunk.length === 1 && threads.chunk[0].event_id === rootId, `/threads: ${JSON.stringify(threads)}`);
await waitFor("alice's client to build the thread", () => alice.getRoom(roomId)?.getThread(rootId)?.length === 2);

// An edit of the root: bundled, the original content kept, the client showing the new text.
await alice.sendMessage(roomId, {
  msgtype: "m.text", body: "* Plan for Saturday?",
  "m.new_content": { msgtype: "m.text", body: "Plan for Saturday?" },
  "m.relates_to": { rel_type: "m.replace", event_id: rootId },
});
const edited = await bob.fetchRoomEvent(roomId, rootId);
check(edited.content.body === "Plan for Friday?", "the server keeps the original content");
check(edited.unsigned?.["m.relations"]?.["m.replace"]?.content?.["m.new_content"]?.body === "Plan for Saturday?", `bundled edit: ${JSON.stringify(edited.unsigned)}`);
await waitFor("bob's client to show the edit", () => bob.getRoom(roomId)?.findEventById(rootId)?.getContent()?.body === "Plan for Saturday?");

// Reactions: counted per key by the client; a second identical one refused by the server.
await alice.sendEvent(roomId, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: rootId, key: "👍" } });
await bob.sendEvent(roomId, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: rootId, key: "👍" } });
let duplicate = null;
try {
  await bob.sendEvent(roomId, "m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: rootId, key: "👍" } });
} catch (error) {
  duplicate = error;
}
check(duplicate?.errcode === "M_DUPLICATE_ANNOTATION", `duplicate reaction: ${duplicate}`);
const reactions = await alice.relations(roomId, rootId, "m.annotation", "m.reaction");
check(reactions.events.length === 2, `reactions listed: ${reactions.events.length}`);
await waitFor("alice's client to count two 👍", () => {
  const annotations = alice.getRoom(roomId)?.relations.getChildEventsForEvent(rootId, "m.annotation", "m.reaction");
  return annotations?.getSortedAnnotationsByKey()?.find(([key]) => key === "👍")?.[1]?.size === 2;
});

// A mention raises bob's highlight count; his read receipt clears it.
const { event_id: mentionId } = await alice.sendMessage(roomId, {
  msgtype: "m.text", body: "bob, can you bring the projector?", "m.mentions": { user_ids: [bob.getUserId()] },
});
await waitFor(() => `bob's highlight count (now ${bob.getRoom(roomId)?.getUnreadNotificationCount(sdk.NotificationCountType.Highlight)})`,
  () => bob.getRoom(roomId)?.getUnreadNotificationCount(sdk.NotificationCountType.Highlight) >= 1);
await waitFor("the mention in bob's timeline", () => bob.getRoom(roomId)?.findEventById(mentionId));
await bob.sendReadReceipt(bob.getRoom(roomId).findEventById(mentionId));
await waitFor(() => `bob's highlight count to clear (now ${bob.getRoom(roomId)?.getUnreadNotificationCount(sdk.NotificationCountType.Highlight)})`,
  () => bob.getRoom(roomId)?.getUnreadNotificationCount(sdk.NotificationCountType.Highlight) === 0
    && bob.getRoom(roomId)?.getUnreadNotificationCount(sdk.NotificationCountType.Total) === 0);

// Search: bob finds the shared message, never one from alice's private room.
const { room_id: privateRoom } = await alice.createRoom({ name: "private", preset: "private_chat" });
await alice.sendTextMessage(privateRoom, `nebula${suffix} secret plans`);
await alice.sendTextMessage(roomId, `nebula${suffix} projector model`);
const found = await bob.search({ body: { search_categories: { room_events: { search_term: `nebula${suffix}` } } } });
const results = found.search_categories.room_events.results;
check(results.length === 1 && results[0].result.room_id === roomId, `bob's search: ${JSON.stringify(results.map((r) => r.result.content.body))}`);
const alices = await alice.search({ body: { search_categories: { room_events: { search_term: `nebula${suffix}` } } } });
check(alices.search_categories.room_events.results.length === 2, "alice finds both");

alice.stopClient();
bob.stopClient();
console.log("OK");
process.exit(0);
