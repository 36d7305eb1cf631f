"""Two federating homeservers, checked through their client APIs only: profiles and aliases, joins and invites both
ways, knocks, restricted joins, messages in order, power levels, redactions, typing, receipts, presence, identical
state, end-to-end keys, device lists, cross-signing keys, to-device messages, public room directories, space
hierarchies, backfill, bans, room upgrades, server ACLs, notifications, relations, user directories, a rejoin, media,
and optionally a network partition healed by state resolution.

Usage: python3 federation_interop.py A_URL A_NAME B_URL B_NAME [--room-version V] [--partition]
A and B are the client URLs and server names of any two homeservers that federate with each other (ours and Synapse,
or two of ours). Both must allow open registration (m.login.dummy) and generous rate limits. --partition cuts the
federation ports of the two server names with iptables (root) while both sides change the room.
Prints PASS or FAIL per check and "N passed, N failed"; exits 1 when anything failed.
"""
import argparse
import base64
import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import nacl.signing

parser = argparse.ArgumentParser()
parser.add_argument("a_url")
parser.add_argument("a_name")
parser.add_argument("b_url")
parser.add_argument("b_name")
parser.add_argument("--room-version", default="10")
parser.add_argument("--partition", action="store_true")
args = parser.parse_args()
A, AN, B, BN, RV = args.a_url.rstrip("/"), args.a_name, args.b_url.rstrip("/"), args.b_name, args.room_version
results = []


class Refused(Exception):
    pass


def request(base, method, path, data=None, token=None, content_type="application/json"):
    """The status and body bytes of one request."""
    sent = urllib.request.Request(base + path, data=data, method=method)
    sent.add_header("Content-Type", content_type)
    if token:
        sent.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(sent, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def call(base, method, path, body=None, token=None, ok=(200,)):
    """A JSON request; its answer, or Refused when the status is not in ok (None: any status)."""
    status, text = request(base, method, path, None if body is None else json.dumps(body).encode(), token)
    answer = json.loads(text) if text else {}
    if ok and status not in ok:
        raise Refused(f"{method} {base}{path} -> {status} {answer}")
    return answer


def check(name, passed, detail=""):
    results.append(bool(passed))
    print(("PASS " if passed else "FAIL ") + name + ("" if passed else f"  {str(detail)[:600]}"), flush=True)


def wait_for(condition, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (Refused, KeyError, IndexError, TypeError):
            pass
        time.sleep(0.3)
    return None


def q(text):
    return urllib.parse.quote(text, safe="")


def register(base, name):
    answer = call(base, "POST", "/_matrix/client/v3/register", {"username": name, "password": "pw-" + name, "auth": {"type": "m.login.dummy"}})
    return answer["user_id"], answer["access_token"]


def login(base, name):
    return call(base, "POST", "/_matrix/client/v3/login", {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": "pw-" + name})["access_token"]


def sync(base, token, since=None):
    # Synapse answers an identical /sync from a cache for a while: each request gets a filter of its own.
    fresh = q(json.dumps({"account_data": {"not_types": ["x." + uuid.uuid4().hex]}}))
    return call(base, "GET", f"/_matrix/client/v3/sync?timeout=0&filter={fresh}" + (f"&since={q(since)}" if since else ""), None, token)


def joined_room(base, token, room, since=None):
    return sync(base, token, since).get("rooms", {}).get("join", {}).get(room, {})


def invited(base, token, room):
    return room in sync(base, token).get("rooms", {}).get("invite", {})


def create(base, token, **body):
    return call(base, "POST", "/_matrix/client/v3/createRoom", {"room_version": RV, **body}, token)["room_id"]


def join(base, token, room, via):
    return call(base, "POST", f"/_matrix/client/v3/join/{q(room)}?server_name={q(via)}", {}, token, ok=None)


def send(base, token, room, body, **content):
    return call(base, "PUT", f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/{uuid.uuid4().hex}", {"msgtype": "m.text", "body": body, **content}, token)["event_id"]


def state_event(base, token, room, event_type, state_key=""):
    return call(base, "GET", f"/_matrix/client/v3/rooms/{q(room)}/state/{event_type}/{q(state_key)}", None, token, ok=None)


def put_state(base, token, room, event_type, content, state_key=""):
    return call(base, "PUT", f"/_matrix/client/v3/rooms/{q(room)}/state/{event_type}/{q(state_key)}", content, token, ok=None)


def membership(base, token, room, user):
    return state_event(base, token, room, "m.room.member", user).get("membership")


def bodies(base, token, room):
    chunk = call(base, "GET", f"/_matrix/client/v3/rooms/{q(room)}/messages?dir=b&limit=80", None, token)["chunk"]
    return [e["content"].get("body") for e in reversed(chunk) if e["type"] == "m.room.message"]


def state_ids(base, token, room):
    return {(e["type"], e["state_key"]): e["event_id"] for e in call(base, "GET", f"/_matrix/client/v3/rooms/{q(room)}/state", None, token)}


def host_of(server_name):
    """The server name without its port: what server ACLs match."""
    return server_name.rsplit(":", 1)[0] if re.fullmatch(r".*[^:]:\d+", server_name) and not server_name.endswith("]") else server_name


def unpadded(data):
    return base64.b64encode(data).rstrip(b"=").decode()


def signed(obj, user, key_id, key):
    """The object with the key's signature added (spec: signing JSON, over its canonical form without signatures and unsigned)."""
    unsigned = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    canonical = json.dumps(unsigned, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    result = dict(obj)
    result["signatures"] = {user: {key_id: unpadded(key.sign(canonical).signature)}}
    return result


def upload_device_keys(base, user, token, one_time_key=None):
    device = call(base, "GET", "/_matrix/client/v3/account/whoami", None, token)["device_id"]
    key = nacl.signing.SigningKey.generate()
    keys = {"user_id": user, "device_id": device, "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{device}": unpadded(uuid.uuid4().bytes * 2), f"ed25519:{device}": unpadded(bytes(key.verify_key))}}
    body = {"device_keys": signed(keys, user, f"ed25519:{device}", key)}
    if one_time_key:
        body["one_time_keys"] = {f"signed_curve25519:{one_time_key}": signed({"key": unpadded(uuid.uuid4().bytes * 2)}, user, f"ed25519:{device}", key)}
    call(base, "POST", "/_matrix/client/v3/keys/upload", body, token)
    return device


def upload_cross_signing(base, user, token, name):
    master, self_signing, user_signing = (nacl.signing.SigningKey.generate() for _ in range(3))
    public = {k: unpadded(bytes(v.verify_key)) for k, v in (("m", master), ("s", self_signing), ("u", user_signing))}
    body = {"master_key": {"user_id": user, "usage": ["master"], "keys": {f"ed25519:{public['m']}": public["m"]}},
            "self_signing_key": signed({"user_id": user, "usage": ["self_signing"], "keys": {f"ed25519:{public['s']}": public["s"]}}, user, f"ed25519:{public['m']}", master),
            "user_signing_key": signed({"user_id": user, "usage": ["user_signing"], "keys": {f"ed25519:{public['u']}": public["u"]}}, user, f"ed25519:{public['m']}", master)}
    answer = call(base, "POST", "/_matrix/client/v3/keys/device_signing/upload", body, token, ok=None)
    if "session" in answer:
        body["auth"] = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": "pw-" + name, "session": answer["session"]}
        answer = call(base, "POST", "/_matrix/client/v3/keys/device_signing/upload", body, token, ok=None)
    return public["m"], answer


def ephemeral_has(base, token, room, event_type, user):
    events = joined_room(base, token, room).get("ephemeral", {}).get("events", [])
    return any(e["type"] == event_type and user in json.dumps(e["content"]) for e in events)


def listed_remotely(base, token, server, room):
    # Synapse indexes a room for directory searches shortly after it is published.
    answer = call(base, "POST", f"/_matrix/client/v3/publicRooms?server={q(server)}", {"filter": {"generic_search_term": tag}}, token)
    return any(r["room_id"] == room for r in answer.get("chunk", []))


tag = uuid.uuid4().hex[:6]
alice_name, bob_name, carol_name = "alice" + tag, "bob" + tag, "carol" + tag
alice, at = register(A, alice_name)
bob, bt = register(B, bob_name)
carol, ct = register(A, carol_name)
print(f"A: {AN} ({alice}, {carol}), B: {BN} ({bob}), room version {RV}", flush=True)

# Profiles and aliases
call(A, "PUT", f"/_matrix/client/v3/profile/{q(alice)}/displayname", {"displayname": "Alice " + tag}, at)
call(B, "PUT", f"/_matrix/client/v3/profile/{q(bob)}/displayname", {"displayname": "Bob " + tag}, bt)
check("A fetches B's profile", call(A, "GET", f"/_matrix/client/v3/profile/{q(bob)}", None, at, ok=None).get("displayname") == "Bob " + tag)
check("B fetches A's profile", call(B, "GET", f"/_matrix/client/v3/profile/{q(alice)}", None, bt, ok=None).get("displayname") == "Alice " + tag)

# A room on B, joined from A by alias
room_b = create(B, bt, preset="public_chat", room_alias_name="b" + tag, name="On B " + tag)
alias_b = f"#b{tag}:{BN}"
check("A resolves an alias of B", call(A, "GET", f"/_matrix/client/v3/directory/room/{q(alias_b)}", None, at, ok=None).get("room_id") == room_b)
send(B, bt, room_b, "before alice joined")
answer = call(A, "POST", f"/_matrix/client/v3/join/{q(alias_b)}", {}, at, ok=None)
check("A's user joins B's room by alias", answer.get("room_id") == room_b, answer)
check("B sees A's user joined", wait_for(lambda: membership(B, bt, room_b, alice) == "join"))
check("history from before the join is visible on A", wait_for(lambda: "before alice joined" in bodies(A, at, room_b)), bodies(A, at, room_b))
first_a = send(A, at, room_b, "hello from A")
first_b = send(B, bt, room_b, "hello from B")
check("A's message reaches B", wait_for(lambda: "hello from A" in bodies(B, bt, room_b)))
check("B's message reaches A", wait_for(lambda: "hello from B" in bodies(A, at, room_b)))
for i in range(10):
    send(A, at, room_b, f"a{i}")
    send(B, bt, room_b, f"b{i}")
for side, base, token in (("A", B, bt), ("B", A, at)):
    prefix = side.lower()
    wanted = [f"{prefix}{i}" for i in range(10)]
    arrived = wait_for(lambda: [b for b in bodies(base, token, room_b) if b and b[0] == prefix and b[1:].isdigit()] == wanted)
    check(f"a burst from {side} arrives in order on the other", arrived, bodies(base, token, room_b))

# Power levels, topic, redaction
levels = state_event(B, bt, room_b, "m.room.power_levels")
levels["users"][alice] = 50
levels.setdefault("events", {})["m.room.topic"] = 50
put_state(B, bt, room_b, "m.room.power_levels", levels)
check("B's power level change reaches A", wait_for(lambda: state_event(A, at, room_b, "m.room.power_levels")["users"].get(alice) == 50))
check("A's user (power 50) sets the topic", "event_id" in put_state(A, at, room_b, "m.room.topic", {"topic": "set on A"}))
check("the topic reaches B", wait_for(lambda: state_event(B, bt, room_b, "m.room.topic").get("topic") == "set on A"))
call(B, "PUT", f"/_matrix/client/v3/rooms/{q(room_b)}/redact/{q(first_b)}/{uuid.uuid4().hex}", {"reason": "test"}, bt)
check("B's redaction reaches A", wait_for(lambda: call(A, "GET", f"/_matrix/client/v3/rooms/{q(room_b)}/event/{q(first_b)}", None, at).get("content") == {}))

# Typing, receipts, presence
call(B, "PUT", f"/_matrix/client/v3/rooms/{q(room_b)}/typing/{q(bob)}", {"typing": True, "timeout": 20000}, bt)
check("typing on B shows on A", wait_for(lambda: ephemeral_has(A, at, room_b, "m.typing", bob)))
call(A, "PUT", f"/_matrix/client/v3/rooms/{q(room_b)}/typing/{q(alice)}", {"typing": True, "timeout": 20000}, at)
check("typing on A shows on B", wait_for(lambda: ephemeral_has(B, bt, room_b, "m.typing", alice)))
call(A, "POST", f"/_matrix/client/v3/rooms/{q(room_b)}/receipt/m.read/{q(first_a)}", {}, at)
check("a read receipt on A shows on B", wait_for(lambda: ephemeral_has(B, bt, room_b, "m.receipt", alice)))
call(B, "POST", f"/_matrix/client/v3/rooms/{q(room_b)}/receipt/m.read/{q(first_a)}", {}, bt)
check("a read receipt on B shows on A", wait_for(lambda: ephemeral_has(A, at, room_b, "m.receipt", bob)))
call(B, "PUT", f"/_matrix/client/v3/presence/{q(bob)}/status", {"presence": "online", "status_msg": "at desk"}, bt)
check("presence on B shows on A", wait_for(lambda: call(A, "GET", f"/_matrix/client/v3/presence/{q(bob)}/status", None, at).get("status_msg") == "at desk"))
call(A, "PUT", f"/_matrix/client/v3/presence/{q(alice)}/status", {"presence": "online", "status_msg": "in a meeting"}, at)
check("presence on A shows on B", wait_for(lambda: call(B, "GET", f"/_matrix/client/v3/presence/{q(alice)}/status", None, bt).get("status_msg") == "in a meeting"))

# A room on A: invites both ways, joins, leaves, rejections, kicks
room_a = create(A, at, preset="private_chat", name="On A " + tag, invite=[bob])
check("A's invite reaches B", wait_for(lambda: invited(B, bt, room_a)))
check("B's user accepts A's invite", join(B, bt, room_a, AN).get("room_id") == room_a)
check("A sees B's user joined", wait_for(lambda: membership(A, at, room_a, bob) == "join"))
send(B, bt, room_a, "B in A's room")
check("B's message in A's room reaches A", wait_for(lambda: "B in A's room" in bodies(A, at, room_a)))
invite_room = create(B, bt, preset="private_chat", invite=[carol])
check("B's invite reaches A", wait_for(lambda: invited(A, ct, invite_room)))
check("A's invited user joins B's room", join(A, ct, invite_room, BN).get("room_id") == invite_room)
check("A's user leaves B's room", call(A, "POST", f"/_matrix/client/v3/rooms/{q(invite_room)}/leave", {}, ct, ok=None) == {})
check("B sees the leave", wait_for(lambda: membership(B, bt, invite_room, carol) == "leave"))
rejected_room = create(B, bt, preset="private_chat", invite=[carol])
wait_for(lambda: invited(A, ct, rejected_room))
check("A's user rejects an invite from B", call(A, "POST", f"/_matrix/client/v3/rooms/{q(rejected_room)}/leave", {}, ct, ok=None) == {})
check("B sees the rejection", wait_for(lambda: membership(B, bt, rejected_room, carol) == "leave"))
check("identical state of B's room on both servers", wait_for(lambda: state_ids(A, at, room_b) == state_ids(B, bt, room_b)),
      (state_ids(A, at, room_b), state_ids(B, bt, room_b)))

# End-to-end keys, device lists, cross-signing, to-device
bob_device = upload_device_keys(B, bob, bt, one_time_key="AAAAAA")
alice_device = upload_device_keys(A, alice, at, one_time_key="BBBBBB")
answer = call(A, "POST", "/_matrix/client/v3/keys/query", {"device_keys": {bob: []}}, at)
check("A queries B's device keys", bob_device in answer.get("device_keys", {}).get(bob, {}), answer)
answer = call(B, "POST", "/_matrix/client/v3/keys/query", {"device_keys": {alice: []}}, bt)
check("B queries A's device keys", alice_device in answer.get("device_keys", {}).get(alice, {}), answer)
answer = call(A, "POST", "/_matrix/client/v3/keys/claim", {"one_time_keys": {bob: {bob_device: "signed_curve25519"}}}, at)
check("A claims B's one-time key", "signed_curve25519:AAAAAA" in json.dumps(answer.get("one_time_keys")), answer)
answer = call(B, "POST", "/_matrix/client/v3/keys/claim", {"one_time_keys": {alice: {alice_device: "signed_curve25519"}}}, bt)
check("B claims A's one-time key", "signed_curve25519:BBBBBB" in json.dumps(answer.get("one_time_keys")), answer)
since = sync(A, at)["next_batch"]
bob_second = upload_device_keys(B, bob, login(B, bob_name))
check("a new device on B shows in A's device_lists.changed", wait_for(lambda: bob in sync(A, at, since).get("device_lists", {}).get("changed", [])))
check("A then lists both of B's devices", wait_for(lambda: {bob_device, bob_second} <= set(call(A, "POST", "/_matrix/client/v3/keys/query", {"device_keys": {bob: []}}, at)["device_keys"].get(bob, {}))))
since = sync(B, bt)["next_batch"]
alice_second = upload_device_keys(A, alice, login(A, alice_name))
check("a new device on A shows in B's device_lists.changed", wait_for(lambda: alice in sync(B, bt, since).get("device_lists", {}).get("changed", [])))
check("B then lists both of A's devices", wait_for(lambda: {alice_device, alice_second} <= set(call(B, "POST", "/_matrix/client/v3/keys/query", {"device_keys": {alice: []}}, bt)["device_keys"].get(alice, {}))))
for (base, user, token, name), (other, other_token) in (((A, alice, at, alice_name), (B, bt)), ((B, bob, bt, bob_name), (A, at))):
    master, answer = upload_cross_signing(base, user, token, name)
    check(f"{user} uploads cross-signing keys", answer == {}, answer)
    check(f"the other server sees {user}'s master key", wait_for(lambda: f"ed25519:{master}" in call(other, "POST", "/_matrix/client/v3/keys/query", {"device_keys": {user: []}}, other_token)["master_keys"].get(user, {}).get("keys", {})))
call(A, "PUT", f"/_matrix/client/v3/sendToDevice/m.test/{uuid.uuid4().hex}", {"messages": {bob: {bob_device: {"hello": "from A"}}}}, at)
check("a to-device message from A reaches B", wait_for(lambda: any(e["content"].get("hello") == "from A" for e in sync(B, bt).get("to_device", {}).get("events", []))))
call(B, "PUT", f"/_matrix/client/v3/sendToDevice/m.test/{uuid.uuid4().hex}", {"messages": {alice: {alice_device: {"hello": "from B"}}}}, bt)
check("a to-device message from B reaches A", wait_for(lambda: any(e["content"].get("hello") == "from B" for e in sync(A, at).get("to_device", {}).get("events", []))))

# Public room directories, knocks, restricted joins, space hierarchies
listed = create(A, at, preset="public_chat", name="Listed " + tag, visibility="public")
check("B reads A's public room directory", wait_for(lambda: listed_remotely(B, bt, AN, listed)))
call(B, "PUT", f"/_matrix/client/v3/directory/list/room/{q(room_b)}", {"visibility": "public"}, bt)
check("A reads B's public room directory", wait_for(lambda: listed_remotely(A, at, BN, room_b)))
if int(RV) >= 7:
    knock_room = create(A, at, preset="private_chat", initial_state=[{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
    answer = call(B, "POST", f"/_matrix/client/v3/knock/{q(knock_room)}?server_name={q(AN)}", {"reason": "let me in"}, bt, ok=None)
    check("B's user knocks on A's room", answer.get("room_id") == knock_room, answer)
    check("A sees the knock", wait_for(lambda: membership(A, at, knock_room, bob) == "knock"))
    call(A, "POST", f"/_matrix/client/v3/rooms/{q(knock_room)}/invite", {"user_id": bob}, at)
    check("the knocker, invited, joins", join(B, bt, knock_room, AN).get("room_id") == knock_room)
space = create(A, at, preset="public_chat", name="Space " + tag, creation_content={"type": "m.space"})
child = create(A, at, preset="public_chat", name="Child " + tag)
put_state(A, at, space, "m.space.child", {"via": [AN]}, child)
check("B's user joins A's space", join(B, bt, space, AN).get("room_id") == space)
answer = call(B, "GET", f"/_matrix/client/v1/rooms/{q(space)}/hierarchy", None, bt, ok=None)
check("B walks A's space hierarchy", child in [r["room_id"] for r in answer.get("rooms", [])], answer)
if int(RV) >= 8:
    restricted = create(A, at, preset="private_chat", initial_state=[{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
    check("B's user joins A's restricted room through the space", join(B, bt, restricted, AN).get("room_id") == restricted)
    check("A's user authorised the join", wait_for(lambda: state_event(A, at, restricted, "m.room.member", bob).get("join_authorised_via_users_server") == alice))

# Backfill of a late joiner, bans, room upgrades, server ACLs
history_room = create(A, at, preset="public_chat")
for i in range(30):
    send(A, at, history_room, f"history {i}")
join(B, bt, history_room, AN)
check("a late joiner on B pages back through A's history",
      wait_for(lambda: (history := [b for b in bodies(B, bt, history_room) if b.startswith("history")]) and history[-1] == "history 29" and len(history) >= 20),
      bodies(B, bt, history_room))
check("A's user bans B's user", call(A, "POST", f"/_matrix/client/v3/rooms/{q(history_room)}/ban", {"user_id": bob, "reason": "test"}, at, ok=None) == {})
check("B sees the ban", wait_for(lambda: history_room in sync(B, bt).get("rooms", {}).get("leave", {})))
check("the banned user cannot rejoin", "room_id" not in join(B, bt, history_room, AN))
old_room = create(B, bt, preset="public_chat")
join(A, at, old_room, BN)
wait_for(lambda: membership(B, bt, old_room, alice) == "join")
answer = call(B, "POST", f"/_matrix/client/v3/rooms/{q(old_room)}/upgrade", {"new_version": "9" if RV == "10" else "10"}, bt, ok=None)
new_room = answer.get("replacement_room")
check("B upgrades a room", new_room, answer)
check("A sees the tombstone", wait_for(lambda: state_event(A, at, old_room, "m.room.tombstone").get("replacement_room") == new_room))
check("A's user follows to the replacement room", join(A, at, new_room, BN).get("room_id") == new_room)
acl_room = create(B, bt, preset="public_chat")
join(A, at, acl_room, BN)
wait_for(lambda: membership(B, bt, acl_room, alice) == "join")
put_state(B, bt, acl_room, "m.room.server_acl", {"allow": ["*"], "deny": [host_of(AN)], "allow_ip_literals": True})
check("A sees B's server ACL", wait_for(lambda: state_event(A, at, acl_room, "m.room.server_acl").get("deny")))
send(A, at, acl_room, "from a denied server")
time.sleep(3)
check("B ignores events from the server its ACL denies", "from a denied server" not in bodies(B, bt, acl_room))

# Notifications, relations, user directories, a rejoin
since = sync(A, at)["next_batch"]
send(B, bt, room_b, "plain message")
# The display name for servers that predate intentional mentions (m.mentions).
send(B, bt, room_b, f"hey Alice {tag}", **{"m.mentions": {"user_ids": [alice]}})
check("B's messages count as notifications on A, a mention highlights",
      wait_for(lambda: joined_room(A, at, room_b, since).get("unread_notifications", {}).get("highlight_count", 0) >= 1))
target = send(A, at, room_b, "original text")
wait_for(lambda: "original text" in bodies(B, bt, room_b))
call(B, "PUT", f"/_matrix/client/v3/rooms/{q(room_b)}/send/m.reaction/{uuid.uuid4().hex}", {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": "+1"}}, bt)
send(B, bt, room_b, "* edited", **{"m.new_content": {"msgtype": "m.text", "body": "edited"}, "m.relates_to": {"rel_type": "m.replace", "event_id": target}})
send(B, bt, room_b, "in a thread", **{"m.relates_to": {"rel_type": "m.thread", "event_id": target}})
check("B's relations are listed on A", wait_for(lambda: len(call(A, "GET", f"/_matrix/client/v1/rooms/{q(room_b)}/relations/{q(target)}", None, at)["chunk"]) >= 3))
check("A's event bundles B's thread", call(A, "GET", f"/_matrix/client/v3/rooms/{q(room_b)}/event/{q(target)}", None, at).get("unsigned", {}).get("m.relations", {}).get("m.thread", {}).get("count") == 1)
answer = call(A, "POST", "/_matrix/client/v3/user_directory/search", {"search_term": bob_name}, at)
check("A's user directory finds B's user", any(u["user_id"] == bob for u in answer.get("results", [])), answer)
answer = call(B, "POST", "/_matrix/client/v3/user_directory/search", {"search_term": alice_name}, bt)
check("B's user directory finds A's user", any(u["user_id"] == alice for u in answer.get("results", [])), answer)
call(A, "POST", f"/_matrix/client/v3/rooms/{q(room_b)}/leave", {}, at)
check("B sees A's user leave", wait_for(lambda: membership(B, bt, room_b, alice) == "leave"))
put_state(B, bt, room_b, "m.room.name", {"name": "Renamed " + tag})
send(B, bt, room_b, "while A was away")
check("A's user rejoins", join(A, at, room_b, BN).get("room_id") == room_b)
check("the rejoined server has the state changed meanwhile", state_event(A, at, room_b, "m.room.name").get("name") == "Renamed " + tag)
send(B, bt, room_b, "after the rejoin")
check("messages after the rejoin arrive", wait_for(lambda: "after the rejoin" in bodies(A, at, room_b)))
check("the rejoined server's history has what was sent while it was away", bodies(A, at, room_b)[-2:] == ["while A was away", "after the rejoin"],
      bodies(A, at, room_b)[-4:])

# Media: the authenticated endpoint, or the deprecated one for servers that predate it
blob = ("federated media " + tag).encode() * 50
uploaded = request(A, "POST", "/_matrix/media/v3/upload?filename=a.txt", blob, at, "text/plain")[1]
media = json.loads(uploaded)["content_uri"][len("mxc://"):]
status, body = request(B, "GET", f"/_matrix/client/v1/media/download/{media}", token=bt)
if status in (400, 404) and b"M_UNRECOGNIZED" in body:
    status, body = request(B, "GET", f"/_matrix/media/v3/download/{media}", token=bt)
check("B downloads A's media", status == 200 and body == blob, (status, body[:200]))

# A network partition: both sides change the room, then state resolution must agree
if args.partition:
    ports = [name.rsplit(":", 1)[1] for name in (AN, BN)]
    room = create(B, bt, preset="public_chat", name="partition")
    join(A, at, room, BN)
    levels = state_event(B, bt, room, "m.room.power_levels")
    levels["users"][alice] = 100
    put_state(B, bt, room, "m.room.power_levels", levels)
    wait_for(lambda: state_event(A, at, room, "m.room.power_levels")["users"].get(alice) == 100)
    for port in ports:
        subprocess.run(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset"], check=True)
    try:
        put_state(B, bt, room, "m.room.power_levels", {**levels, "users_default": 1})
        put_state(B, bt, room, "m.room.name", {"name": "named on B"})
        put_state(A, at, room, "m.room.power_levels", {**levels, "users_default": 5, "events": {**levels.get("events", {}), "m.room.name": 100}})
        put_state(A, at, room, "m.room.topic", {"topic": "topic from A"})
        for i in range(5):
            send(A, at, room, f"split a{i}")
            send(B, bt, room, f"split b{i}")
        time.sleep(3)
    finally:
        for port in ports:
            subprocess.run(["iptables", "-D", "INPUT", "-p", "tcp", "--dport", port, "-j", "REJECT", "--reject-with", "tcp-reset"], check=True)
    send(A, at, room, "after a")
    send(B, bt, room, "after b")
    everything = {f"split {s}{i}" for s in "ab" for i in range(5)} | {"after a", "after b"}
    check("after the partition A has every message", wait_for(lambda: everything <= set(bodies(A, at, room)), timeout=180))
    check("after the partition B has every message", wait_for(lambda: everything <= set(bodies(B, bt, room)), timeout=180))
    check("both resolve to the same state", wait_for(lambda: state_ids(A, at, room) == state_ids(B, bt, room), timeout=120))
    check("both resolve to the same power levels", state_event(A, at, room, "m.room.power_levels") == state_event(B, bt, room, "m.room.power_levels"))

passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
raise SystemExit(0 if passed == len(results) else 1)
