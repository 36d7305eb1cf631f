using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;

namespace Matrix.SpecTests;

/// <summary>
/// MSC4186 simplified sliding sync (<c>POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync</c>) in the shape
/// Element X and matrix-js-sdk send it: lists with ranges and filters, room subscriptions, required state, timeline
/// limits, connections and their positions, long-polling, and the extensions.
/// </summary>
public abstract class SlidingSyncTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";
    private const string Path = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

    private static readonly object[] NameAndMe = [new[] { "m.room.name", "" }, new[] { "m.room.member", "$ME" }];

    private async Task<JsonNode> SlidingAsync(LoggedInUser user, object body, string? pos = null, int timeout = 0)
    {
        var query = new List<string>();
        if (pos is not null) query.Add($"pos={Uri.EscapeDataString(pos)}");
        if (timeout > 0) query.Add($"timeout={timeout}");
        var response = await C.PostAsync(Path + (query.Count > 0 ? "?" + string.Join('&', query) : ""), body, user.AccessToken);
        Assert.True(response.Status == 200, response.ToString());
        return response.Body!;
    }

    private static object List(int end, int timelineLimit = 1, object? requiredState = null, object? filters = null) => filters is null
        ? new { ranges = new[] { new[] { 0, end } }, timeline_limit = timelineLimit, required_state = requiredState ?? NameAndMe }
        : new { ranges = new[] { new[] { 0, end } }, timeline_limit = timelineLimit, required_state = requiredState ?? NameAndMe, filters };

    private static object Lists(object list) => new { lists = new { all = list } };

    private static List<string> RoomIds(JsonNode response, string list = "all") =>
        response["lists"]![list]!["ops"]!.AsArray().SelectMany(op => op!["room_ids"]!.AsArray()).Select(id => id!.GetValue<string>()).ToList();

    private static int Count(JsonNode response, string list = "all") => response["lists"]![list]!["count"]!.GetValue<int>();

    private static JsonNode? Room(JsonNode response, string roomId) => response["rooms"]?[roomId];

    private static List<string> Bodies(JsonNode? room) =>
        room?["timeline"]?.AsArray().Where(e => e!["type"]!.GetValue<string>() == "m.room.message")
            .Select(e => e!["content"]!["body"]!.GetValue<string>()).ToList() ?? [];

    private static List<(string Type, string Key)> StateKeys(JsonNode? room) =>
        room?["required_state"]?.AsArray().Select(e => (e!["type"]!.GetValue<string>(), e["state_key"]!.GetValue<string>())).ToList() ?? [];

    private static string Pos(JsonNode response) => response["pos"]!.GetValue<string>();

    private async Task<List<string>> RoomsNamedAsync(LoggedInUser user, params string[] names)
    {
        var ids = new List<string>();
        foreach (var name in names)
        {
            ids.Add(await CreateRoomAsync(C, user, new { name }));
            await SendAsync(C, user, ids[^1], $"hello in {name}");
        }
        return ids;
    }

    [Fact]
    public async Task Versions_advertise_simplified_sliding_sync()
    {
        var versions = await C.GetAsync("/_matrix/client/versions");
        Assert.True(versions.Body!["unstable_features"]!["org.matrix.simplified_msc3575"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_list_range_returns_the_most_recently_active_rooms_with_their_timeline_and_required_state()
    {
        var alice = await C.RegisterAsync();
        var (a, b, c) = (await RoomsNamedAsync(alice, "A", "B", "C")) switch { var ids => (ids[0], ids[1], ids[2]) };
        await SendAsync(C, alice, a, "A is active again");

        var response = await SlidingAsync(alice, Lists(List(1, timelineLimit: 1)));
        Assert.Equal(3, Count(response));
        Assert.Equal([a, c], RoomIds(response));
        Assert.Equal(new[] { a, c }.Order(), response["rooms"]!.AsObject().Select(r => r.Key).Order());
        var room = Room(response, a)!;
        Assert.True(room["initial"]!.GetValue<bool>());
        Assert.Equal("A", room["name"]!.GetValue<string>());
        Assert.Equal(["A is active again"], Bodies(room));
        Assert.True(room["limited"]!.GetValue<bool>());
        Assert.Equal(1, room["joined_count"]!.GetValue<int>());
        Assert.Equal(0, room["invited_count"]!.GetValue<int>());
        Assert.Equal("join", room["membership"]!.GetValue<string>());
        Assert.True(room["bump_stamp"]!.GetValue<long>() > Room(response, c)!["bump_stamp"]!.GetValue<long>());
        Assert.Equal(new[] { ("m.room.member", alice.UserId), ("m.room.name", "") }.Order(), StateKeys(room).Order());
        // prev_batch pages back through /messages from just before the timeline.
        var messages = await C.GetAsync($"{V3}/rooms/{R(a)}/messages?dir=b&limit=1&from={Uri.EscapeDataString(room["prev_batch"]!.GetValue<string>())}",
            alice.AccessToken);
        Assert.Equal("hello in A", messages.Body!["chunk"]![0]!["content"]!["body"]!.GetValue<string>());

        // Widening the range sends only the room not sent yet.
        var wider = await SlidingAsync(alice, Lists(List(9)), Pos(response));
        Assert.Equal([a, c, b], RoomIds(wider));
        Assert.Equal([b], wider["rooms"]!.AsObject().Select(r => r.Key));
    }

    [Fact]
    public async Task A_message_moves_its_room_up_the_list_and_only_new_events_are_sent_for_rooms_sent_before()
    {
        var alice = await C.RegisterAsync();
        var ids = await RoomsNamedAsync(alice, "One", "Two", "Three");
        var first = await SlidingAsync(alice, Lists(List(1, timelineLimit: 5)));
        Assert.Equal([ids[2], ids[1]], RoomIds(first));

        await SendAsync(C, alice, ids[1], "news in two");
        var second = await SlidingAsync(alice, Lists(List(1, timelineLimit: 5)), Pos(first));
        Assert.Equal([ids[1], ids[2]], RoomIds(second));
        var two = Room(second, ids[1])!;
        Assert.Null(two["initial"]);
        Assert.Equal(["news in two"], Bodies(two));
        Assert.False(two["limited"]!.GetValue<bool>());
        Assert.Equal(1, two["num_live"]!.GetValue<int>());
        Assert.Null(Room(second, ids[2]));

        // A room outside the range comes in whole when its activity brings it into the range.
        await SendAsync(C, alice, ids[0], "news in one");
        var third = await SlidingAsync(alice, Lists(List(1, timelineLimit: 5)), Pos(second));
        Assert.Equal([ids[0], ids[1]], RoomIds(third));
        var one = Room(third, ids[0])!;
        Assert.True(one["initial"]!.GetValue<bool>());
        Assert.Equal(["hello in One", "news in one"], Bodies(one));
        Assert.Equal(1, one["num_live"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_long_poll_is_woken_by_a_message_and_an_empty_one_times_out_with_no_rooms()
    {
        var alice = await C.RegisterAsync();
        var roomId = (await RoomsNamedAsync(alice, "Poll"))[0];
        var first = await SlidingAsync(alice, Lists(List(9)));
        var quiet = await SlidingAsync(alice, Lists(List(9)), Pos(first), timeout: 200);
        Assert.Empty(quiet["rooms"]!.AsObject());

        var polling = SlidingAsync(alice, Lists(List(9)), Pos(quiet), timeout: 50_000);
        await Task.Delay(300);
        await SendAsync(C, alice, roomId, "wake up");
        var woken = await polling;
        Assert.Equal(["wake up"], Bodies(Room(woken, roomId)));
    }

    [Fact]
    public async Task Unknown_foreign_or_malformed_positions_are_refused_with_M_UNKNOWN_POS_and_bad_bodies_with_400()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var first = await SlidingAsync(alice, Lists(List(9)));
        foreach (var (user, pos) in new[] { (alice, "99/s1_0_0_0_0_0_0"), (alice, "garbage"), (bob, Pos(first)) })
        {
            var refused = await C.PostAsync($"{Path}?pos={Uri.EscapeDataString(pos)}", Lists(List(9)), user.AccessToken);
            Assert.Equal(400, refused.Status);
            Assert.Equal("M_UNKNOWN_POS", refused.Errcode);
        }
        // Another connection of the same device knows nothing of this one's positions.
        var other = await C.PostAsync($"{Path}?pos={Uri.EscapeDataString(Pos(first))}", new { conn_id = "other", lists = new { all = List(9) } },
            alice.AccessToken);
        Assert.Equal("M_UNKNOWN_POS", other.Errcode);
        foreach (var body in new object[]
                 {
                     new { lists = new { all = new { ranges = new[] { new[] { 5, 1 } }, timeline_limit = 1, required_state = NameAndMe } } },
                     new { lists = new { all = new { ranges = "0-9", timeline_limit = 1, required_state = NameAndMe } } },
                     new { lists = new { all = new { ranges = new[] { new[] { 0, 9 } }, timeline_limit = "1", required_state = NameAndMe } } },
                     new { lists = new { all = new { ranges = new[] { new[] { 0, 9 } }, timeline_limit = 1, required_state = new[] { new[] { "m.room.name" } } } } },
                     new { lists = new { all = new { ranges = new[] { new[] { 0, 9 } }, timeline_limit = 1001, required_state = NameAndMe } } },
                     new { lists = "not an object" },
                     new { extensions = new { to_device = new { enabled = true, since = "not a position" } } },
                 })
        {
            var refused = await C.PostAsync(Path, body, alice.AccessToken);
            Assert.True(refused.Status == 400, refused.ToString());
            Assert.NotNull(refused.Errcode);
        }
        Assert.Equal(401, (await C.PostAsync(Path, Lists(List(9)))).Status);
        // The position last answered can be used again (a retry) and still works after a later one was made from it.
        var retried = await SlidingAsync(alice, Lists(List(9)), Pos(first));
        await SlidingAsync(alice, Lists(List(9)), Pos(first));
        await SlidingAsync(alice, Lists(List(9)), Pos(retried));
    }

    [Fact]
    public async Task Required_state_takes_wildcards_and_lazy_members_and_a_wider_config_sends_the_state_it_adds()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var charlie = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat", name = "Lazy", topic = "a topic" });
        foreach (var user in new[] { bob, charlie })
            Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, user.AccessToken)).Status);
        await SendAsync(C, bob, roomId, "bob speaks");

        var all = await SlidingAsync(alice, Lists(List(0, requiredState: new[] { new[] { "*", "*" } })));
        var keys = StateKeys(Room(all, roomId));
        Assert.Contains(("m.room.create", ""), keys);
        Assert.Contains(("m.room.topic", ""), keys);
        Assert.Equal(3, keys.Count(k => k.Type == "m.room.member"));

        var lazy = await SlidingAsync(alice, Lists(List(0, requiredState: new[] { new[] { "*", "*" }, new[] { "m.room.member", "$LAZY" } })));
        var lazyKeys = StateKeys(Room(lazy, roomId));
        Assert.Contains(("m.room.topic", ""), lazyKeys);
        Assert.Equal([bob.UserId], lazyKeys.Where(k => k.Type == "m.room.member").Select(k => k.Key));
        // A new sender's member event comes once; one already sent does not come again.
        await SendAsync(C, charlie, roomId, "charlie speaks");
        var next = await SlidingAsync(alice, Lists(List(0, requiredState: new[] { new[] { "*", "*" }, new[] { "m.room.member", "$LAZY" } })), Pos(lazy));
        Assert.Equal([charlie.UserId], StateKeys(Room(next, roomId)).Where(k => k.Type == "m.room.member").Select(k => k.Key));

        // MSC4186's newer shape: include/exclude objects.
        var shaped = await SlidingAsync(alice, new
        {
            lists = new { all = new { range = new[] { 0, 0 }, timeline_limit = 0, required_state = new { include = new[] { new { type = "m.room.topic" } } } } },
        });
        Assert.Equal([("m.room.topic", "")], StateKeys(Room(shaped, roomId)));

        // Only the name at first; asking for the topic too sends it at once, and nothing else.
        var narrow = await SlidingAsync(alice, Lists(List(0, requiredState: new[] { new[] { "m.room.name", "" } })));
        Assert.Equal([("m.room.name", "")], StateKeys(Room(narrow, roomId)));
        var widened = await SlidingAsync(alice, Lists(List(0, requiredState: new[] { new[] { "m.room.name", "" }, new[] { "m.room.topic", "*" } })),
            Pos(narrow));
        Assert.Equal([("m.room.topic", "")], StateKeys(Room(widened, roomId)));
        Assert.Null(Room(widened, roomId)!["timeline"]);
    }

    [Fact]
    public async Task A_larger_timeline_limit_resends_the_latest_events_as_an_expanded_timeline()
    {
        var alice = await C.RegisterAsync();
        var roomId = (await RoomsNamedAsync(alice, "Expand"))[0];
        await SendAsync(C, alice, roomId, "second");
        await SendAsync(C, alice, roomId, "third");
        var first = await SlidingAsync(alice, Lists(List(0, timelineLimit: 1)));
        Assert.Equal(["third"], Bodies(Room(first, roomId)));
        var expanded = await SlidingAsync(alice, new { lists = new { all = List(0, timelineLimit: 1) }, room_subscriptions = new Dictionary<string, object>
        {
            [roomId] = new { timeline_limit = 3, required_state = Array.Empty<object>() },
        } }, Pos(first));
        var room = Room(expanded, roomId)!;
        Assert.Equal(["hello in Expand", "second", "third"], Bodies(room));
        Assert.True(room["unstable_expanded_timeline"]!.GetValue<bool>());
        Assert.Equal(0, room["num_live"]!.GetValue<int>());
    }

    [Fact]
    public async Task Subscriptions_return_rooms_outside_the_lists_but_never_rooms_the_user_was_never_in()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var ids = await RoomsNamedAsync(alice, "Old", "New");
        var bobsRoom = await CreateRoomAsync(C, bob, new { preset = "public_chat", name = "Bob's" });
        await SendAsync(C, bob, bobsRoom, "secret-ish");
        var response = await SlidingAsync(alice, new
        {
            lists = new { all = List(0) },
            room_subscriptions = new Dictionary<string, object>
            {
                [ids[0]] = new { timeline_limit = 2, required_state = new[] { new[] { "m.room.create", "" } } },
                [bobsRoom] = new { timeline_limit = 2, required_state = new[] { new[] { "*", "*" } } },
                ["!unknown:" + C.ServerName] = new { timeline_limit = 2, required_state = Array.Empty<object>() },
            },
        });
        Assert.Equal([ids[1]], RoomIds(response));
        Assert.Equal(new[] { ids[0], ids[1] }.Order(), response["rooms"]!.AsObject().Select(r => r.Key).Order());
        Assert.Equal([("m.room.create", "")], StateKeys(Room(response, ids[0])));
        Assert.Equal(["hello in Old"], Bodies(Room(response, ids[0])));
    }

    [Fact]
    public async Task Filters_select_direct_encrypted_invited_typed_tagged_and_space_rooms()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var plain = await CreateRoomAsync(C, alice, new { name = "plain" });
        var encrypted = await CreateRoomAsync(C, alice, new
        {
            name = "secret", initial_state = new[] { new { type = "m.room.encryption", state_key = "", content = new { algorithm = "m.megolm.v1.aes-sha2" } } },
        });
        var direct = await CreateRoomAsync(C, alice, new { is_direct = true, invite = new[] { bob.UserId } });
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/account_data/m.direct",
            new Dictionary<string, object> { [bob.UserId] = new[] { direct } }, alice.AccessToken)).Status);
        var space = await CreateRoomAsync(C, alice, new { name = "space", creation_content = new Dictionary<string, object> { ["type"] = "m.space" } });
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(space)}/state/m.space.child/{R(plain)}", new { via = new[] { C.ServerName } },
            alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/rooms/{R(encrypted)}/tags/m.favourite", new { order = 0.5 },
            alice.AccessToken)).Status);
        var invitedTo = await CreateRoomAsync(C, bob, new { name = "invitation", invite = new[] { alice.UserId } });

        async Task<List<string>> ListAsync(object filters) =>
            RoomIds(await SlidingAsync(alice, Lists(List(20, filters: filters)))).Order().ToList();

        Assert.Equal([direct], await ListAsync(new { is_dm = true }));
        Assert.Equal([encrypted], await ListAsync(new { is_encrypted = true }));
        Assert.Equal([invitedTo], await ListAsync(new { is_invite = true }));
        Assert.DoesNotContain(invitedTo, await ListAsync(new { is_invite = false }));
        Assert.Equal([space], await ListAsync(new { room_types = new[] { "m.space" } }));
        Assert.DoesNotContain(space, await ListAsync(new { not_room_types = new[] { "m.space" } }));
        Assert.Equal(new[] { direct, encrypted, invitedTo, plain }.Order(), await ListAsync(new { room_types = new string?[] { null } }));
        Assert.Equal([plain], await ListAsync(new { spaces = new[] { space } }));
        Assert.Equal([encrypted], await ListAsync(new { tags = new[] { "m.favourite" } }));
        Assert.DoesNotContain(encrypted, await ListAsync(new { not_tags = new[] { "m.favourite" } }));
        Assert.Equal([encrypted], await ListAsync(new { is_encrypted = true, is_dm = false }));
    }

    [Fact]
    public async Task A_new_invite_appears_with_stripped_state_and_joining_sends_the_room_whole()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        await RoomsNamedAsync(alice, "Mine");
        var first = await SlidingAsync(alice, Lists(List(9)));
        var roomId = await CreateRoomAsync(C, bob, new { name = "Bob invites", invite = new[] { alice.UserId } });

        var invited = await SlidingAsync(alice, Lists(List(9)), Pos(first), timeout: 10_000);
        Assert.Equal(roomId, RoomIds(invited)[0]);
        var room = Room(invited, roomId)!;
        Assert.Equal("invite", room["membership"]!.GetValue<string>());
        var stripped = room["invite_state"]!.AsArray();
        Assert.Contains(stripped, e => e!["type"]!.GetValue<string>() == "m.room.name" && e["content"]!["name"]!.GetValue<string>() == "Bob invites");
        Assert.Contains(stripped, e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == alice.UserId);
        Assert.Null(room["timeline"]);

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, alice.AccessToken)).Status);
        var joined = await SlidingAsync(alice, Lists(List(9)), Pos(invited), timeout: 10_000);
        var whole = Room(joined, roomId)!;
        Assert.True(whole["initial"]!.GetValue<bool>());
        Assert.Equal("join", whole["membership"]!.GetValue<string>());
        Assert.Equal("Bob invites", whole["name"]!.GetValue<string>());
        Assert.Equal(2, whole["joined_count"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_declined_invite_shows_stripped_state_only_and_a_knock_its_knock()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var invitedTo = await CreateRoomAsync(C, bob, new { name = "Declined", topic = "not for alice", invite = new[] { alice.UserId } });
        var knockable = await CreateRoomAsync(C, bob, new { name = "Knock knock", room_version = "11",
            initial_state = new[] { new { type = "m.room.join_rules", state_key = "", content = new { join_rule = "knock" } } } });
        Assert.Equal(200, (await C.PostAsync($"{V3}/knock/{R(knockable)}", new { }, alice.AccessToken)).Status);
        var everything = new[] { new[] { "*", "*" } };
        var first = await SlidingAsync(alice, Lists(List(9, requiredState: everything)));
        Assert.Equal("invite", Room(first, invitedTo)!["membership"]!.GetValue<string>());
        var knock = Room(first, knockable)!;
        Assert.Equal("knock", knock["membership"]!.GetValue<string>());
        Assert.Contains(knock["invite_state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.member"
            && e["content"]!["membership"]!.GetValue<string>() == "knock");

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(invitedTo)}/leave", new { }, alice.AccessToken)).Status);
        var declined = Room(await SlidingAsync(alice, Lists(List(9, requiredState: everything)), Pos(first), timeout: 10_000), invitedTo)!;
        Assert.Equal("leave", declined["membership"]!.GetValue<string>());
        Assert.Null(declined["required_state"]);
        Assert.Null(declined["timeline"]);
        Assert.Contains(declined["invite_state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.member"
            && e["content"]!["membership"]!.GetValue<string>() == "leave");
        Assert.DoesNotContain(declined["invite_state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.power_levels");
    }

    [Fact]
    public async Task A_request_without_pos_starts_the_connection_over_and_sends_every_room_again()
    {
        var alice = await C.RegisterAsync();
        var roomId = (await RoomsNamedAsync(alice, "Again"))[0];
        var first = await SlidingAsync(alice, Lists(List(9)));
        Assert.True(Room(first, roomId)!["initial"]!.GetValue<bool>());
        var quiet = await SlidingAsync(alice, Lists(List(9)), Pos(first));
        Assert.Null(Room(quiet, roomId));
        var restarted = await SlidingAsync(alice, Lists(List(9)));
        Assert.True(Room(restarted, roomId)!["initial"]!.GetValue<bool>());
        // The old connection's positions are gone with it.
        var stale = await C.PostAsync($"{Path}?pos={Uri.EscapeDataString(Pos(quiet))}", Lists(List(9)), alice.AccessToken);
        Assert.Equal("M_UNKNOWN_POS", stale.Errcode);
    }

    [Fact]
    public async Task A_room_left_is_sent_once_with_the_leave_and_then_leaves_the_list()
    {
        var alice = await C.RegisterAsync();
        var ids = await RoomsNamedAsync(alice, "Stay", "Go");
        var first = await SlidingAsync(alice, Lists(List(9)));
        Assert.Equal(2, Count(first));

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(ids[1])}/leave", new { }, alice.AccessToken)).Status);
        var left = await SlidingAsync(alice, Lists(List(9)), Pos(first), timeout: 10_000);
        var room = Room(left, ids[1])!;
        Assert.Equal("leave", room["membership"]!.GetValue<string>());
        Assert.Null(room["initial"]);
        var leave = Assert.Single(room["timeline"]!.AsArray());
        Assert.Equal("leave", leave!["content"]!["membership"]!.GetValue<string>());

        await SendAsync(C, alice, ids[0], "later");
        var later = await SlidingAsync(alice, Lists(List(9)), Pos(left));
        Assert.Equal(1, Count(later));
        Assert.Equal([ids[0]], RoomIds(later));
    }

    [Fact]
    public async Task Extensions_carry_to_device_messages_keys_account_data_receipts_and_typing()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat", name = "Extensions" });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken)).Status);
        var eventId = await SendAsync(C, bob, roomId, "read me");
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/receipt/m.read/{Uri.EscapeDataString(eventId)}", new { }, bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/account_data/org.example.global", new { a = 1 },
            alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/rooms/{R(roomId)}/account_data/org.example.room",
            new { b = 2 }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/sendToDevice/org.example.hello/{Guid.NewGuid():N}",
            new { messages = new Dictionary<string, object> { [alice.UserId] = new Dictionary<string, object> { [alice.DeviceId] = new { hi = 1 } } } },
            bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/keys/upload",
            new { one_time_keys = new Dictionary<string, object> { ["signed_curve25519:AAAA"] = new { key = "k", signatures = new { } } } },
            alice.AccessToken)).Status);
        var extensions = new
        {
            to_device = new { enabled = true },
            e2ee = new { enabled = true },
            account_data = new { enabled = true },
            receipts = new { enabled = true },
            typing = new { enabled = true },
        };

        var first = await SlidingAsync(alice, new { lists = new { all = List(9) }, extensions });
        var ext = first["extensions"]!;
        var toDevice = Assert.Single(ext["to_device"]!["events"]!.AsArray());
        Assert.Equal("org.example.hello", toDevice!["type"]!.GetValue<string>());
        Assert.Equal(1, ext["e2ee"]!["device_one_time_keys_count"]!["signed_curve25519"]!.GetValue<int>());
        Assert.Contains(ext["account_data"]!["global"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "org.example.global");
        Assert.Contains(ext["account_data"]!["global"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.push_rules");
        Assert.Contains(ext["account_data"]!["rooms"]![roomId]!.AsArray(), e => e!["type"]!.GetValue<string>() == "org.example.room");
        Assert.NotNull(ext["receipts"]!["rooms"]![roomId]!["content"]![eventId]!["m.read"]![bob.UserId]);

        // Acknowledged to-device messages are gone; typing and a new device of a room-mate show in the next responses.
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/typing/{Uri.EscapeDataString(bob.UserId)}", new { typing = true, timeout = 30000 },
            bob.AccessToken)).Status);
        Assert.Equal(200, (await C.LoginAsync(bob.Localpart, bob.Password)).Status);
        var second = await SlidingAsync(alice, new
        {
            lists = new { all = List(9) },
            extensions = new
            {
                to_device = new { enabled = true, since = first["extensions"]!["to_device"]!["next_batch"]!.GetValue<string>() },
                e2ee = new { enabled = true },
                typing = new { enabled = true },
            },
        }, Pos(first));
        ext = second["extensions"]!;
        Assert.Empty(ext["to_device"]!["events"]!.AsArray());
        Assert.Equal([bob.UserId], ext["typing"]!["rooms"]![roomId]!["content"]!["user_ids"]!.AsArray().Select(u => u!.GetValue<string>()));
        Assert.Contains(ext["e2ee"]!["device_lists"]!["changed"]!.AsArray(), u => u!.GetValue<string>() == bob.UserId);
    }

    [Fact]
    public async Task An_extensions_only_connection_beside_the_room_list_is_woken_by_a_to_device_message()
    {
        // matrix-rust-sdk (Element X) keeps a second connection for encryption: no lists, to-device and e2ee only.
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        object Encryption(string? since) => new
        {
            conn_id = "encryption",
            extensions = new { to_device = since is null ? (object)new { enabled = true } : new { enabled = true, since }, e2ee = new { enabled = true } },
        };
        var roomList = await SlidingAsync(alice, new { conn_id = "room-list", lists = new { all = List(9) } });
        var first = await SlidingAsync(alice, Encryption(null));
        Assert.Empty(first["rooms"]!.AsObject());
        var since = first["extensions"]!["to_device"]!["next_batch"]!.GetValue<string>();

        var polling = SlidingAsync(alice, Encryption(since), Pos(first), timeout: 50_000);
        await Task.Delay(300);
        Assert.Equal(200, (await C.PutAsync($"{V3}/sendToDevice/org.example.key/{Guid.NewGuid():N}",
            new { messages = new Dictionary<string, object> { [alice.UserId] = new Dictionary<string, object> { ["*"] = new { k = 1 } } } },
            bob.AccessToken)).Status);
        var woken = await polling;
        Assert.Equal("org.example.key", Assert.Single(woken["extensions"]!["to_device"]!["events"]!.AsArray())!["type"]!.GetValue<string>());
        // The room-list connection is untouched by the other's requests.
        await SlidingAsync(alice, new { conn_id = "room-list", lists = new { all = List(9) } }, Pos(roomList));
    }

    [Fact]
    public async Task Unread_counts_and_direct_flag_come_with_the_room()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat", is_direct = true, invite = new[] { bob.UserId } });
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/account_data/m.direct",
            new Dictionary<string, object> { [bob.UserId] = new[] { roomId } }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken)).Status);
        await SendAsync(C, bob, roomId, "one");
        await SendAsync(C, bob, roomId, "two");
        var room = await RetryAsync(async () =>
        {
            var response = await SlidingAsync(alice, Lists(List(9)));
            return Room(response, roomId) is { } r && r["notification_count"]!.GetValue<int>() == 2 ? r : null;
        });
        Assert.True(room["is_dm"]!.GetValue<bool>());
        Assert.Equal(2, room["joined_count"]!.GetValue<int>());
    }

    /// <summary>Push actions are counted just after the send is answered: wait for them, without a deadline the test depends on.</summary>
    private static async Task<JsonNode> RetryAsync(Func<Task<JsonNode?>> attempt)
    {
        for (var i = 0; ; i++)
        {
            if (await attempt() is { } result)
                return result;
            Assert.True(i < 200, "the condition never held");
            await Task.Delay(100);
        }
    }
}

public sealed class SlidingSyncTestsSqlite(SqliteServer f) : SlidingSyncTests(f), IClassFixture<SqliteServer>;
public sealed class SlidingSyncTestsPostgres(PostgresServer f) : SlidingSyncTests(f), IClassFixture<PostgresServer>;
