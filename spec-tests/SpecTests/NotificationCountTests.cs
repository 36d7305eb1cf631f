using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: "Push notifications" as clients see them: push rules evaluated for every event, unread and highlight counts
/// per room (and per thread on request) in /sync, cleared by read receipts, and changed by the user's rules.
/// </summary>
public abstract class NotificationCountTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    private async Task<JsonNode> RoomInSyncAsync(LoggedInUser user, string roomId, string? filter = null)
    {
        var sync = await C.GetAsync($"{V3}/sync" + (filter is null ? "" : "?filter=" + Uri.EscapeDataString(filter)), user.AccessToken);
        return sync.Body?["rooms"]?["join"]?[roomId] ?? throw new Xunit.Sdk.XunitException($"{roomId} is not joined in {sync}");
    }

    private static (long Notifications, long Highlights) Counts(JsonNode room) =>
        (room["unread_notifications"]!["notification_count"]!.GetValue<long>(), room["unread_notifications"]!["highlight_count"]!.GetValue<long>());

    private async Task<(string RoomId, LoggedInUser Alice, LoggedInUser Bob)> RoomOfTwoAsync()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId } });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken)).Status);
        return (roomId, alice, bob);
    }

    private async Task<string> SendAsync(LoggedInUser user, string roomId, object content) =>
        (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message/{Guid.NewGuid():N}", content, user.AccessToken)).Str("event_id");

    [Fact]
    public async Task A_message_in_a_room_of_many_counts_for_every_member()
    {
        // More members than the store writes per statement (32): every one of them gets the count.
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var members = new List<LoggedInUser>();
        for (var i = 0; i < 40; i++)
        {
            var member = await C.RegisterAsync();
            await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, member.AccessToken);
            members.Add(member);
        }
        await RoomTests.SendAsync(C, alice, roomId, "hello all");
        foreach (var member in new[] { members[0], members[31], members[32], members[39] })
            Assert.Equal((1, 0), Counts(await RoomInSyncAsync(member, roomId)));
    }

    [Fact]
    public async Task Messages_count_mentions_highlight_and_a_read_receipt_clears_both()
    {
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(bob, roomId)));
        await RoomTests.SendAsync(C, alice, roomId, "hello");
        var mention = await SendAsync(alice, roomId, new JsonObject
        {
            ["msgtype"] = "m.text", ["body"] = "bob, look", ["m.mentions"] = new JsonObject { ["user_ids"] = new JsonArray(bob.UserId) },
        });
        Assert.Equal((2, 1), Counts(await RoomInSyncAsync(bob, roomId)));
        // The sender's own messages never count for them.
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(alice, roomId)));

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(mention)}", new { }, bob.AccessToken)).Status);
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(bob, roomId)));

        // A room mention from someone allowed to notify the room highlights too; a private receipt clears it.
        var roomMention = await SendAsync(alice, roomId, new JsonObject
        {
            ["msgtype"] = "m.text", ["body"] = "everyone!", ["m.mentions"] = new JsonObject { ["room"] = true },
        });
        Assert.Equal((1, 1), Counts(await RoomInSyncAsync(bob, roomId)));
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read.private/{RoomTests.R(roomMention)}", new { }, bob.AccessToken)).Status);
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(bob, roomId)));
        // Bob (power level 0) mentioning the room does not highlight for alice; notices do not count at all.
        await SendAsync(bob, roomId, new JsonObject { ["msgtype"] = "m.text", ["body"] = "hey all", ["m.mentions"] = new JsonObject { ["room"] = true } });
        await SendAsync(bob, roomId, new JsonObject { ["msgtype"] = "m.notice", ["body"] = "bot says hi" });
        Assert.Equal((1, 0), Counts(await RoomInSyncAsync(alice, roomId)));
    }

    [Fact]
    public async Task Receipts_posted_while_messages_arrive_leave_exactly_the_later_messages_unread()
    {
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        var sent = new List<string>();
        for (var i = 0; i < 5; i++)
            sent.Add(await RoomTests.SendAsync(C, alice, roomId, $"before {i}"));
        // Bob keeps marking the fifth message read while alice sends fifteen more: each receipt counts the room anew,
        // and none may lose a message that committed meanwhile.
        var receipts = Task.Run(async () =>
        {
            for (var i = 0; i < 15; i++)
                Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(sent[4])}", new { }, bob.AccessToken)).Status);
        });
        await Task.WhenAll(receipts, Task.WhenAll(Enumerable.Range(0, 15).Select(i => RoomTests.SendAsync(C, alice, roomId, $"after {i}"))));
        Assert.Equal((15, 0), Counts(await RoomInSyncAsync(bob, roomId)));
    }

    [Fact]
    public async Task Thread_replies_are_counted_per_thread_when_asked_and_cleared_by_threaded_receipts()
    {
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        var root = await RoomTests.SendAsync(C, alice, roomId, "root");
        var reply = await SendAsync(alice, roomId, new JsonObject
        {
            ["msgtype"] = "m.text", ["body"] = "in the thread",
            ["m.relates_to"] = new JsonObject { ["rel_type"] = "m.thread", ["event_id"] = root },
        });
        Assert.Equal((2, 0), Counts(await RoomInSyncAsync(bob, roomId)));
        const string threaded = """{"room":{"timeline":{"unread_thread_notifications":true}}}""";
        var split = await RoomInSyncAsync(bob, roomId, threaded);
        Assert.Equal((1, 0), Counts(split));
        Assert.Equal(1, split["unread_thread_notifications"]![root]!["notification_count"]!.GetValue<long>());

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(reply)}", new { thread_id = root }, bob.AccessToken)).Status);
        split = await RoomInSyncAsync(bob, roomId, threaded);
        Assert.Equal((1, 0), Counts(split));
        Assert.Null(split["unread_thread_notifications"]);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/receipt/m.read/{RoomTests.R(root)}", new { thread_id = "main" }, bob.AccessToken)).Status);
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(bob, roomId)));
    }

    [Fact]
    public async Task Counts_stay_exact_while_senders_race_the_incremental_syncs_they_wake()
    {
        // A woken sync takes the counts from memory, added to as each message commits; reads racing those commits must
        // neither count a message twice nor lose one, and a redaction must reach the timeline rows kept in memory.
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var senders = new List<LoggedInUser>();
        for (var i = 0; i < 4; i++)
        {
            var sender = await C.RegisterAsync();
            await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, sender.AccessToken);
            senders.Add(sender);
        }
        var bob = await C.RegisterAsync();
        await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, bob.AccessToken);
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(bob, roomId)));
        var since = (await C.GetAsync($"{V3}/sync", bob.AccessToken)).Str("next_batch");

        const int PerSender = 15;
        var sending = Task.WhenAll(senders.Select(async sender =>
        {
            for (var i = 0; i < PerSender; i++)
                await RoomTests.SendAsync(C, sender, roomId, $"message {i}");
        }));
        // Every message in the timeline: with the default limit of 10, a poll lagging behind four senders on a loaded
        // machine gets a limited timeline, whose gap a client fills with /messages.
        var wholeTimeline = Uri.EscapeDataString("""{"room":{"timeline":{"limit":100}}}""");
        var seen = new HashSet<string>();
        (long, long) countsWhenAllSeen = default;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
        while (seen.Count < senders.Count * PerSender && DateTime.UtcNow < deadline)
        {
            var sync = await C.GetAsync($"{V3}/sync?timeout=10000&filter={wholeTimeline}&since={Uri.EscapeDataString(since)}", bob.AccessToken);
            since = sync.Str("next_batch");
            if (sync.Body?["rooms"]?["join"]?[roomId] is not { } room)
                continue;
            foreach (var e in room["timeline"]!["events"]!.AsArray())
                if (e!["type"]!.GetValue<string>() == "m.room.message")
                    seen.Add(e["event_id"]!.GetValue<string>());
            countsWhenAllSeen = Counts(room);
        }
        await sending;
        Assert.Equal(senders.Count * PerSender, seen.Count);
        Assert.Equal((senders.Count * PerSender, 0), countsWhenAllSeen);
        Assert.Equal((senders.Count * PerSender, 0), Counts(await RoomInSyncAsync(bob, roomId)));

        var last = await SendAsync(senders[0], roomId, new { msgtype = "m.text", body = "regrettable" });
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/redact/{RoomTests.R(last)}/{Guid.NewGuid():N}", new { reason = "oops" },
            senders[0].AccessToken)).Status);
        // Synced from before the message, it comes redacted once the redaction is there.
        JsonNode? message = null;
        while (message?["unsigned"]?["redacted_because"] is null && DateTime.UtcNow < deadline)
        {
            var sync = await C.GetAsync($"{V3}/sync?timeout=10000&filter={wholeTimeline}&since={Uri.EscapeDataString(since)}", bob.AccessToken);
            message = sync.Body?["rooms"]?["join"]?[roomId]?["timeline"]?["events"]?.AsArray().FirstOrDefault(e => e!["event_id"]!.GetValue<string>() == last);
            await Task.Delay(50);
        }
        Assert.NotNull(message?["unsigned"]?["redacted_because"]);
        Assert.Null(message!["content"]!["body"]);
    }

    [Fact]
    public async Task One_message_is_judged_by_each_members_own_rules_list_and_name_however_many_changed_before_it()
    {
        // Each change below drops that member's rules or list from the server's memory, so the message reads them all
        // back together, beside the members whose are still in memory.
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var (bob, carol, dave, erin, frank) = (await C.RegisterAsync(), await C.RegisterAsync(), await C.RegisterAsync(), await C.RegisterAsync(), await C.RegisterAsync());
        foreach (var member in new[] { bob, carol, dave, erin, frank })
            Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, member.AccessToken)).Status);
        // A new display name is an event, which reads the members' rules: the changes that drop them come after it.
        Assert.Equal(200, (await C.PutAsync($"{V3}/profile/{Uri.EscapeDataString(dave.UserId)}/displayname", new { displayname = "Dave Builder" }, dave.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/user/{Uri.EscapeDataString(bob.UserId)}/account_data/m.ignored_user_list",
            new JsonObject { ["ignored_users"] = new JsonObject { [alice.UserId] = new JsonObject() } }.ToJsonString(), bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/pushrules/global/room/{RoomTests.R(roomId)}", new { actions = Array.Empty<object>() }, carol.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/pushrules/global/override/my-name",
            new { conditions = new[] { new { kind = "contains_display_name" } }, actions = new object[] { "notify", new { set_tweak = "highlight" } } }, dave.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/pushrules/global/content/zebra", new { pattern = "zebra", actions = Array.Empty<object>() }, erin.AccessToken)).Status);

        await RoomTests.SendAsync(C, alice, roomId, "a zebra for Dave Builder");

        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(bob, roomId)));
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(carol, roomId)));
        Assert.Equal((1, 1), Counts(await RoomInSyncAsync(dave, roomId)));
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(erin, roomId)));
        Assert.Equal((1, 0), Counts(await RoomInSyncAsync(frank, roomId)));
    }

    [Fact]
    public async Task The_users_rules_decide_what_counts()
    {
        var (roomId, alice, bob) = await RoomOfTwoAsync();
        // A room rule without actions silences the room; a content rule makes a keyword highlight.
        Assert.Equal(200, (await C.PutAsync($"{V3}/pushrules/global/room/{RoomTests.R(roomId)}", new { actions = Array.Empty<object>() }, bob.AccessToken)).Status);
        await RoomTests.SendAsync(C, alice, roomId, "quiet please");
        Assert.Equal((0, 0), Counts(await RoomInSyncAsync(bob, roomId)));
        Assert.Equal(200, (await C.DeleteAsync($"{V3}/pushrules/global/room/{RoomTests.R(roomId)}", null, bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/pushrules/global/content/deploy", new { pattern = "deploy*", actions = new object[] { "notify", new { set_tweak = "highlight" } } }, bob.AccessToken)).Status);
        await RoomTests.SendAsync(C, alice, roomId, "Deployment done.");
        await RoomTests.SendAsync(C, alice, roomId, "redeployment is not a word match");
        Assert.Equal((2, 1), Counts(await RoomInSyncAsync(bob, roomId)));
        // The master rule silences everything.
        Assert.Equal(200, (await C.PutAsync($"{V3}/pushrules/global/override/.m.rule.master/enabled", new { enabled = true }, bob.AccessToken)).Status);
        await RoomTests.SendAsync(C, alice, roomId, "deploy again");
        Assert.Equal((2, 1), Counts(await RoomInSyncAsync(bob, roomId)));
    }
}

public sealed class NotificationCountTestsSqlite(SqliteServer f) : NotificationCountTests(f), IClassFixture<SqliteServer>;
public sealed class NotificationCountTestsPostgres(PostgresServer f) : NotificationCountTests(f), IClassFixture<PostgresServer>;
