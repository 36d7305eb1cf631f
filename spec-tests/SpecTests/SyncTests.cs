using System.Diagnostics;
using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;

namespace Matrix.SpecTests;

/// <summary>Spec: "Syncing" (/sync), "Getting events for a room" (/messages), history visibility, filters.</summary>
public abstract class SyncTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";
    private const string BigTimeline = "{\"room\":{\"timeline\":{\"limit\":1000}}}";

    internal static async Task<JsonNode> SyncAsync(MatrixClient c, LoggedInUser user, string? since = null, string? filter = null, int timeout = 0)
    {
        var query = new List<string> { $"timeout={timeout}" };
        if (since is not null) query.Add($"since={since}");
        if (filter is not null) query.Add($"filter={Uri.EscapeDataString(filter)}");
        var response = await c.GetAsync($"{V3}/sync?{string.Join('&', query)}", user.AccessToken);
        Assert.True(response.Status == 200, response.ToString());
        return response.Body!;
    }

    internal static List<JsonNode> Timeline(JsonNode sync, string roomId) =>
        sync["rooms"]?["join"]?[roomId]?["timeline"]?["events"]?.AsArray().Select(e => e!).ToList() ?? [];

    private static IEnumerable<string> Bodies(IEnumerable<JsonNode> events) =>
        events.Where(e => e["type"]!.GetValue<string>() == "m.room.message").Select(e => e["content"]!["body"]!.GetValue<string>());

    [Fact]
    public async Task Initial_sync_has_state_and_timeline_and_incremental_sync_only_what_is_new()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { name = "Sync room" });
        await SendAsync(C, alice, roomId, "first", "txn-first");

        var initial = await SyncAsync(C, alice);
        var room = initial["rooms"]!["join"]![roomId]!;
        var everything = room["state"]!["events"]!.AsArray().Concat(room["timeline"]!["events"]!.AsArray()).ToList();
        Assert.Contains(everything, e => e!["type"]!.GetValue<string>() == "m.room.name");
        var first = Timeline(initial, roomId).Last();
        Assert.Equal("first", first["content"]!["body"]!.GetValue<string>());
        Assert.Equal("txn-first", first["unsigned"]!["transaction_id"]!.GetValue<string>());
        Assert.Equal(1, room["summary"]!["m.joined_member_count"]!.GetValue<int>());

        var next = initial["next_batch"]!.GetValue<string>();
        var nothing = await SyncAsync(C, alice, next);
        Assert.Null(nothing["rooms"]!["join"]![roomId]);
        await SendAsync(C, alice, roomId, "second");
        var incremental = await SyncAsync(C, alice, next);
        Assert.Equal(["second"], Bodies(Timeline(incremental, roomId)));
        Assert.False(incremental["rooms"]!["join"]![roomId]!["timeline"]!["limited"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Long_polling_returns_as_soon_as_an_event_arrives()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var since = (await SyncAsync(C, bob))["next_batch"]!.GetValue<string>();

        var watch = Stopwatch.StartNew();
        var poll = SyncAsync(C, bob, since, timeout: 20_000);
        await Task.Delay(300);
        Assert.False(poll.IsCompleted);
        await SendAsync(C, alice, roomId, "wake up");
        var result = await poll;
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"long poll took {watch.Elapsed}");
        Assert.Equal(["wake up"], Bodies(Timeline(result, roomId)));

        var quiet = Stopwatch.StartNew();
        var empty = await SyncAsync(C, bob, result["next_batch"]!.GetValue<string>(), timeout: 500);
        Assert.True(quiet.Elapsed >= TimeSpan.FromMilliseconds(400));
        Assert.Null(empty["rooms"]!["join"]![roomId]);
    }

    [Fact]
    public async Task The_room_summary_counts_joined_and_invited_members_and_names_the_heroes()
    {
        var users = new List<LoggedInUser>();
        for (var i = 0; i < 8; i++)
            users.Add(await C.RegisterAsync());
        var (alice, bob, carol) = (users[0], users[1], users[2]);
        var roomId = await CreateRoomAsync(C, alice, new { invite = users.Skip(1).Select(u => u.UserId).ToArray() });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken)).Status);

        var summary = (await SyncAsync(C, bob))["rooms"]!["join"]![roomId]!["summary"]!;
        Assert.Equal(2, summary["m.joined_member_count"]!.GetValue<int>());
        Assert.Equal(6, summary["m.invited_member_count"]!.GetValue<int>());
        // Up to five joined or invited members other than the user, in user ID order.
        var expected = users.Where(u => u != bob).Select(u => u.UserId).Order(StringComparer.Ordinal).Take(5);
        Assert.Equal(expected, summary["m.heroes"]!.AsArray().Select(h => h!.GetValue<string>()));

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, carol.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/kick", new { user_id = users[7].UserId }, alice.AccessToken)).Status);
        summary = (await SyncAsync(C, bob))["rooms"]!["join"]![roomId]!["summary"]!;
        Assert.Equal(3, summary["m.joined_member_count"]!.GetValue<int>());
        Assert.Equal(4, summary["m.invited_member_count"]!.GetValue<int>());
        Assert.DoesNotContain(users[7].UserId, summary["m.heroes"]!.AsArray().Select(h => h!.GetValue<string>()));
    }

    [Fact]
    public async Task Invites_arrive_with_stripped_state_and_leaves_in_the_leave_section()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var since = (await SyncAsync(C, bob))["next_batch"]!.GetValue<string>();
        var roomId = await CreateRoomAsync(C, alice, new { name = "Invite only", invite = new[] { bob.UserId } });

        var invited = await SyncAsync(C, bob, since);
        var inviteState = invited["rooms"]!["invite"]![roomId]!["invite_state"]!["events"]!.AsArray();
        Assert.Contains(inviteState, e => e!["type"]!.GetValue<string>() == "m.room.name");
        Assert.Contains(inviteState, e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == bob.UserId);
        // Who invited: the inviter's own membership (as Synapse sends it).
        Assert.Contains(inviteState, e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == alice.UserId);
        Assert.Null(inviteState[0]!["event_id"]);

        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var joined = await SyncAsync(C, bob, invited["next_batch"]!.GetValue<string>());
        var joinedRoom = joined["rooms"]!["join"]![roomId]!;
        Assert.Contains(joinedRoom["state"]!["events"]!.AsArray().Concat(joinedRoom["timeline"]!["events"]!.AsArray()),
            e => e!["type"]!.GetValue<string>() == "m.room.create");

        await C.PostAsync($"{V3}/rooms/{R(roomId)}/kick", new { user_id = bob.UserId }, alice.AccessToken);
        var left = await SyncAsync(C, bob, joined["next_batch"]!.GetValue<string>());
        var leaveTimeline = left["rooms"]!["leave"]![roomId]!["timeline"]!["events"]!.AsArray();
        Assert.Equal("leave", leaveTimeline.Last()!["content"]!["membership"]!.GetValue<string>());
        Assert.Null(left["rooms"]!["join"]![roomId]);

        // An initial sync shows the room Bob was kicked from (as Synapse does), not one he left himself.
        var leftHimself = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(leftHimself)}/join", new { }, bob.AccessToken);
        await C.PostAsync($"{V3}/rooms/{R(leftHimself)}/leave", new { }, bob.AccessToken);
        var initial = await SyncAsync(C, bob);
        Assert.NotNull(initial["rooms"]!["leave"]![roomId]);
        Assert.Null(initial["rooms"]!["leave"]![leftHimself]);
    }

    [Fact]
    public async Task Limited_timelines_paginate_back_with_messages_in_both_directions()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var since = (await SyncAsync(C, alice))["next_batch"]!.GetValue<string>();
        for (var i = 0; i < 15; i++)
            await SendAsync(C, alice, roomId, $"m{i}");
        var sync = await SyncAsync(C, alice, since, "{\"room\":{\"timeline\":{\"limit\":5}}}");
        var timeline = sync["rooms"]!["join"]![roomId]!["timeline"]!;
        Assert.True(timeline["limited"]!.GetValue<bool>());
        Assert.Equal(["m10", "m11", "m12", "m13", "m14"], Bodies(timeline["events"]!.AsArray()!.Select(e => e!)));

        var collected = new List<string>();
        var from = timeline["prev_batch"]!.GetValue<string>();
        for (var page = 0; page < 10 && from is not null; page++)
        {
            var messages = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=b&limit=4&from={from}", alice.AccessToken);
            collected.AddRange(Bodies(messages.Body!["chunk"]!.AsArray().Select(e => e!)));
            from = messages.Body!["end"]?.GetValue<string>();
        }
        Assert.Equal(Enumerable.Range(0, 10).Reverse().Select(i => $"m{i}"), collected);

        var forward = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=f&limit=1000&from={since}", alice.AccessToken);
        Assert.Equal(Enumerable.Range(0, 15).Select(i => $"m{i}"), Bodies(forward.Body!["chunk"]!.AsArray().Select(e => e!)));
        Assert.Equal(400, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=x", alice.AccessToken)).Status);
        Assert.Equal(400, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?from=garbage", alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Filters_select_types_and_senders_lazy_load_members_and_state_after()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat", name = "filters" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, carol.AccessToken);
        await SendAsync(C, bob, roomId, "from bob");
        await C.PutAsync($"{V3}/rooms/{R(roomId)}/send/org.example.custom/c1", new { x = 1 }, alice.AccessToken);
        await SendAsync(C, alice, roomId, "from alice");

        var onlyMessages = await SyncAsync(C, alice, filter: "{\"room\":{\"timeline\":{\"limit\":2,\"types\":[\"m.room.*\"],\"not_types\":[\"m.room.member\"]}}}");
        var timeline = Timeline(onlyMessages, roomId);
        Assert.Equal(["from bob", "from alice"], Bodies(timeline));
        Assert.True(onlyMessages["rooms"]!["join"]![roomId]!["timeline"]!["limited"]!.GetValue<bool>());

        var lazy = await SyncAsync(C, alice, filter: "{\"room\":{\"timeline\":{\"limit\":1},\"state\":{\"lazy_load_members\":true}}}");
        var members = lazy["rooms"]!["join"]![roomId]!["state"]!["events"]!.AsArray()
            .Where(e => e!["type"]!.GetValue<string>() == "m.room.member").Select(e => e!["state_key"]!.GetValue<string>()).ToList();
        Assert.Contains(alice.UserId, members);
        Assert.DoesNotContain(carol.UserId, members);

        var messages = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=b&limit=5&filter={Uri.EscapeDataString("{\"senders\":[\"" + bob.UserId + "\"],\"lazy_load_members\":true}")}", alice.AccessToken);
        var chunk = messages.Body!["chunk"]!.AsArray();
        Assert.All(chunk, e => Assert.Equal(bob.UserId, e!["sender"]!.GetValue<string>()));
        Assert.Contains("from bob", Bodies(chunk.Select(e => e!)));
        Assert.Equal(bob.UserId, Assert.Single(messages.Body!["state"]!.AsArray())!["state_key"]!.GetValue<string>());

        var since = lazy["next_batch"]!.GetValue<string>();
        await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.topic", new { topic = "after" }, alice.AccessToken);
        var after = (await C.GetAsync($"{V3}/sync?since={since}&use_state_after=true", alice.AccessToken)).Body!;
        var stateAfter = after["rooms"]!["join"]![roomId]!["state_after"]!["events"]!.AsArray();
        Assert.Equal("after", stateAfter.Single(e => e!["type"]!.GetValue<string>() == "m.room.topic")!["content"]!["topic"]!.GetValue<string>());
        Assert.Null(after["rooms"]!["join"]![roomId]!["state"]);
    }

    [Fact]
    public async Task Members_at_a_token_show_the_membership_then()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var before = (await SyncAsync(C, alice))["next_batch"]!.GetValue<string>();
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var then = (await C.GetAsync($"{V3}/rooms/{R(roomId)}/members?at={before}", alice.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.DoesNotContain(then, e => e!["state_key"]!.GetValue<string>() == bob.UserId);
        var now = (await C.GetAsync($"{V3}/rooms/{R(roomId)}/members", alice.AccessToken)).Body!["chunk"]!.AsArray();
        Assert.Contains(now, e => e!["state_key"]!.GetValue<string>() == bob.UserId);
        Assert.Equal(400, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/members?at=bad", alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Timestamp_to_event_finds_the_nearest_event_in_either_direction()
    {
        var alice = await C.RegisterAsync();
        var mallory = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var first = await SendAsync(C, alice, roomId, "first");
        var firstTs = (await C.GetAsync($"{V3}/rooms/{R(roomId)}/event/{R(first)}", alice.AccessToken)).Body!["origin_server_ts"]!.GetValue<long>();
        await Task.Delay(50);
        var second = await SendAsync(C, alice, roomId, "second");
        var path = $"/_matrix/client/v1/rooms/{R(roomId)}/timestamp_to_event";
        Assert.Equal(first, (await C.GetAsync($"{path}?ts={firstTs}&dir=b", alice.AccessToken)).Str("event_id"));
        Assert.Equal(second, (await C.GetAsync($"{path}?ts={firstTs + 1}&dir=f", alice.AccessToken)).Str("event_id"));
        Assert.Equal(404, (await C.GetAsync($"{path}?ts={firstTs + 3_600_000}&dir=f", alice.AccessToken)).Status);
        Assert.Equal(400, (await C.GetAsync($"{path}?ts={firstTs}&dir=x", alice.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{path}?ts={firstTs}&dir=b", mallory.AccessToken)).Status);
    }

    [Fact]
    public async Task Context_returns_the_event_its_neighbours_and_the_state_at_it()
    {
        var alice = await C.RegisterAsync();
        var mallory = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { name = "ctx" });
        var ids = new List<string>();
        for (var i = 0; i < 7; i++)
            ids.Add(await SendAsync(C, alice, roomId, $"c{i}"));
        var context = await C.GetAsync($"{V3}/rooms/{R(roomId)}/context/{R(ids[3])}?limit=4", alice.AccessToken);
        Assert.Equal(ids[3], context.Body!["event"]!["event_id"]!.GetValue<string>());
        Assert.Equal(["c2", "c1"], Bodies(context.Body!["events_before"]!.AsArray().Select(e => e!)));
        Assert.Equal(["c4", "c5"], Bodies(context.Body!["events_after"]!.AsArray().Select(e => e!)));
        Assert.Contains(context.Body!["state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.name");
        var after = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=f&from={context.Str("end")}", alice.AccessToken);
        Assert.Equal("c6", Bodies(after.Body!["chunk"]!.AsArray().Select(e => e!)).First());
        Assert.Equal(403, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/context/{R(ids[3])}", mallory.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/context/{R("$nope")}", alice.AccessToken)).Status);
    }

    [Theory]
    [InlineData("shared", true)]
    [InlineData("joined", false)]
    [InlineData("invited", false)]
    public async Task History_visibility_decides_what_a_later_member_sees(string visibility, bool seesEarlierMessages)
    {
        var alice = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new
        {
            preset = "public_chat",
            initial_state = new object[] { new { type = "m.room.history_visibility", state_key = "", content = new { history_visibility = visibility } } },
        });
        var early = await SendAsync(C, alice, roomId, "before carol");
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, carol.AccessToken);
        await SendAsync(C, alice, roomId, "after carol");

        var messages = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=b&limit=100", carol.AccessToken);
        var bodies = Bodies(messages.Body!["chunk"]!.AsArray().Select(e => e!)).ToList();
        Assert.Contains("after carol", bodies);
        Assert.Equal(seesEarlierMessages, bodies.Contains("before carol"));
        var sync = await SyncAsync(C, carol, filter: BigTimeline);
        Assert.Equal(seesEarlierMessages, Bodies(Timeline(sync, roomId)).Contains("before carol"));
        var fetched = await C.GetAsync($"{V3}/rooms/{R(roomId)}/event/{R(early)}", carol.AccessToken);
        Assert.Equal(seesEarlierMessages ? 200 : 404, fetched.Status);
    }

    [Fact]
    public async Task World_readable_rooms_can_be_read_by_anyone()
    {
        var alice = await C.RegisterAsync();
        var stranger = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new
        {
            initial_state = new object[] { new { type = "m.room.history_visibility", state_key = "", content = new { history_visibility = "world_readable" } } },
        });
        var eventId = await SendAsync(C, alice, roomId, "for everyone");
        var messages = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=b", stranger.AccessToken);
        Assert.Contains("for everyone", Bodies(messages.Body!["chunk"]!.AsArray().Select(e => e!)));
        Assert.Equal(200, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/event/{R(eventId)}", stranger.AccessToken)).Status);
        Assert.Equal(200, (await C.GetAsync($"{V3}/rooms/{R(roomId)}/state", stranger.AccessToken)).Status);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/send/m.room.message/x", new { body = "no" }, stranger.AccessToken)).Errcode);
    }

    [Fact]
    public async Task Filters_are_stored_per_user_and_applied_by_id()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var created = await C.PostAsync($"{V3}/user/{alice.UserId}/filter", "{\"room\":{\"timeline\":{\"limit\":2}}}", alice.AccessToken);
        var filterId = created.Str("filter_id");
        var stored = await C.GetAsync($"{V3}/user/{alice.UserId}/filter/{filterId}", alice.AccessToken);
        Assert.Equal(2, stored.Body!["room"]!["timeline"]!["limit"]!.GetValue<int>());
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/user/{alice.UserId}/filter/{filterId}", bob.AccessToken)).Errcode);
        Assert.Equal(404, (await C.GetAsync($"{V3}/user/{alice.UserId}/filter/999", alice.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/user/{alice.UserId}/filter", "{\"room\":{\"timeline\":{\"limit\":\"ten\"}}}", alice.AccessToken)).Status);

        var roomId = await CreateRoomAsync(C, alice);
        for (var i = 0; i < 4; i++)
            await SendAsync(C, alice, roomId, $"f{i}");
        var sync = await SyncAsync(C, alice, filter: filterId);
        Assert.Equal(2, Timeline(sync, roomId).Count);
        Assert.Equal(404, (await C.GetAsync($"{V3}/sync?filter=12345", alice.AccessToken)).Status);
    }

    private static List<JsonNode> Ephemeral(JsonNode sync, string roomId, string type) =>
        sync["rooms"]?["join"]?[roomId]?["ephemeral"]?["events"]?.AsArray().Where(e => e!["type"]!.GetValue<string>() == type).Select(e => e!).ToList() ?? [];

    [Fact]
    public async Task Typing_receipts_read_markers_and_account_data_arrive_in_sync()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        var message = await SendAsync(C, alice, roomId, "read me");
        var since = (await SyncAsync(C, bob))["next_batch"]!.GetValue<string>();

        var poll = SyncAsync(C, bob, since, timeout: 20_000);
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/typing/{alice.UserId}", new { typing = true, timeout = 30000 }, alice.AccessToken)).Status);
        var typing = Ephemeral(await poll, roomId, "m.typing").Single();
        Assert.Equal([alice.UserId], typing["content"]!["user_ids"]!.AsArray().Select(u => u!.GetValue<string>()));
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/rooms/{R(roomId)}/typing/{alice.UserId}", new { typing = true }, bob.AccessToken)).Errcode);

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/receipt/m.read/{R(message)}", new { thread_id = "main" }, bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/read_markers",
            new Dictionary<string, string> { ["m.fully_read"] = message, ["m.read.private"] = message }, bob.AccessToken)).Status);
        Assert.Equal(404, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/receipt/m.read/{R("$nope")}", new { }, bob.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/receipt/m.bogus/{R(message)}", new { }, bob.AccessToken)).Status);
        await C.PutAsync($"{V3}/user/{bob.UserId}/account_data/org.example.settings", new { theme = "dark" }, bob.AccessToken);

        var bobsView = await SyncAsync(C, bob, since);
        var receipt = Ephemeral(bobsView, roomId, "m.receipt").Single()["content"]![message]!;
        Assert.Equal("main", receipt["m.read"]![bob.UserId]!["thread_id"]!.GetValue<string>());
        Assert.NotNull(receipt["m.read.private"]![bob.UserId]);
        var roomData = bobsView["rooms"]!["join"]![roomId]!["account_data"]!["events"]!.AsArray();
        Assert.Equal(message, roomData.Single(e => e!["type"]!.GetValue<string>() == "m.fully_read")!["content"]!["event_id"]!.GetValue<string>());
        Assert.Contains(bobsView["account_data"]!["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "org.example.settings");

        var alicesView = await SyncAsync(C, alice, since);
        var alicesReceipts = Ephemeral(alicesView, roomId, "m.receipt").Single()["content"]![message]!;
        Assert.NotNull(alicesReceipts["m.read"]![bob.UserId]);
        Assert.Null(alicesReceipts["m.read.private"]);

        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/typing/{alice.UserId}", new { typing = false }, alice.AccessToken)).Status);
        var stopped = Ephemeral(await SyncAsync(C, bob, bobsView["next_batch"]!.GetValue<string>()), roomId, "m.typing").Single();
        Assert.Empty(stopped["content"]!["user_ids"]!.AsArray());
    }

    [Fact]
    public async Task Fifty_concurrent_senders_are_seen_by_every_member_exactly_once_in_one_order()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var users = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => C.RegisterAsync()));
        foreach (var user in users)
            Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, user.AccessToken)).Status);
        var since = (await SyncAsync(C, alice))["next_batch"]!.GetValue<string>();

        // Members long-poll while everyone sends: every incremental sync must continue exactly where the last one ended.
        // A member stops at 200 events, or once the sends are over and several polls in a row bring nothing new: no
        // wall-clock deadline, which a loaded machine can miss while still making progress.
        var sendsDone = new TaskCompletionSource();
        var members = users.Take(10).Append(alice).ToList();
        var syncing = members.Select(member => Task.Run(async () =>
        {
            var seen = new List<string>();
            var token = since;
            var idlePollsAfterSends = 0;
            while (seen.Count < 200 && idlePollsAfterSends < 5)
            {
                var sendsOver = sendsDone.Task.IsCompleted;
                var sync = await SyncAsync(C, member, token, BigTimeline, timeout: 2000);
                token = sync["next_batch"]!.GetValue<string>();
                var before = seen.Count;
                if (sync["rooms"]!["join"]![roomId] is { } room)
                {
                    Assert.False(room["timeline"]!["limited"]!.GetValue<bool>());
                    seen.AddRange(Timeline(sync, roomId).Select(e => e["event_id"]!.GetValue<string>()));
                }
                idlePollsAfterSends = sendsOver && seen.Count == before ? idlePollsAfterSends + 1 : 0;
            }
            return seen;
        })).ToList();
        await Task.WhenAll(users.Select((user, i) => Task.Run(async () =>
        {
            for (var n = 0; n < 4; n++)
                await SendAsync(C, user, roomId, $"{i}:{n}");
        })));
        sendsDone.SetResult();

        var reference = await syncing[0];
        foreach (var task in syncing)
        {
            var seen = await task;
            Assert.Equal(200, seen.Count);
            Assert.Equal(200, seen.Distinct().Count());
            Assert.Equal(reference, seen);
        }

        var forward = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=f&limit=1000&from={since}", alice.AccessToken);
        Assert.Equal(reference, forward.Body!["chunk"]!.AsArray().Select(e => e!["event_id"]!.GetValue<string>()));
    }
}

public sealed class SyncTestsSqlite(SqliteServer f) : SyncTests(f), IClassFixture<SqliteServer>;
public sealed class SyncTestsPostgres(PostgresServer f) : SyncTests(f), IClassFixture<PostgresServer>;
