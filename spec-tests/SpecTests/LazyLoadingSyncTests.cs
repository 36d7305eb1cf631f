using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;
using static Matrix.SpecTests.SyncTests;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: "Lazy-loading room members" and filters in /sync, /messages and /context; the state, timeline, summary and
/// presence of rooms joined or left between syncs (where the spec is silent, as Synapse).
/// </summary>
public abstract class LazyLoadingSyncTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";
    private const string LazyFilter = "{\"room\":{\"state\":{\"lazy_load_members\":true},\"timeline\":{\"limit\":2}}}";
    private const string RedundantFilter =
        "{\"room\":{\"state\":{\"lazy_load_members\":true,\"include_redundant_members\":true},\"timeline\":{\"limit\":2}}}";

    private static List<string> Members(JsonNode sync, string roomId, string section = "join") =>
        sync["rooms"]?[section]?[roomId]?["state"]?["events"]?.AsArray().Where(e => e!["type"]!.GetValue<string>() == "m.room.member")
            .Select(e => e!["state_key"]!.GetValue<string>()).Order(StringComparer.Ordinal).ToList() ?? [];

    private static string Next(JsonNode sync) => sync["next_batch"]!.GetValue<string>();

    private async Task<(LoggedInUser Alice, LoggedInUser Bob, LoggedInUser Charlie, string RoomId)> NamedRoomWithThreeAsync()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var charlie = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat", name = "A room name" });
        foreach (var user in new[] { bob, charlie })
            Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, user.AccessToken)).Status);
        return (alice, bob, charlie, roomId);
    }

    [Fact]
    public async Task Lazy_loading_flags_must_be_booleans_and_event_format_client_or_federation()
    {
        var alice = await C.RegisterAsync();
        foreach (var state in new object[] { new { lazy_load_members = "true" }, new { lazy_load_members = 1 },
                     new { include_redundant_members = "true" }, new { include_redundant_members = 1 } })
        {
            var response = await C.PostAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/filter", new { room = new { state } }, alice.AccessToken);
            Assert.True(response.Status == 400, response.ToString());
            Assert.Equal("M_BAD_JSON", response.Str("errcode"));
        }
        var format = await C.PostAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/filter", new { event_format = "xml" }, alice.AccessToken);
        Assert.Equal(400, format.Status);
        // Malformed parts and identifiers are refused too, also in the parts this server does not apply (ephemeral).
        foreach (var room in new object[] { new { ephemeral = "not an object" }, new { timeline = new { rooms = "not a list" } },
                     new { timeline = new { rooms = new[] { "not_a_room_id" } } }, new { timeline = new { senders = new[] { "not_a_user_id" } } },
                     new { rooms = new[] { "#alias:example.org" } }, new { timeline = new { types = new[] { 0 } } } })
        {
            var response = await C.PostAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/filter", new { room }, alice.AccessToken);
            Assert.True(response.Status == 400, response.ToString());
        }
        Assert.Equal(200, (await C.PostAsync($"{V3}/user/{Uri.EscapeDataString(alice.UserId)}/filter",
            new { room = new { rooms = new[] { "!a:example.org" }, timeline = new { senders = new[] { "@a:example.org" } } } }, alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Incremental_sync_gives_a_new_senders_membership_once_unless_redundant_members_are_asked_for()
    {
        var (alice, bob, charlie, roomId) = await NamedRoomWithThreeAsync();
        await SendAsync(C, bob, roomId, "from bob");
        await SendAsync(C, bob, roomId, "more from bob");
        var initial = await SyncAsync(C, alice, filter: LazyFilter);
        Assert.Equal(new[] { alice.UserId, bob.UserId }.Order(StringComparer.Ordinal), Members(initial, roomId));
        var redundantInitial = await SyncAsync(C, alice, filter: RedundantFilter);

        await SendAsync(C, charlie, roomId, "from charlie");
        var first = await SyncAsync(C, alice, Next(initial), LazyFilter);
        Assert.Equal([charlie.UserId], Members(first, roomId));
        await SendAsync(C, charlie, roomId, "again");
        var second = await SyncAsync(C, alice, Next(first), LazyFilter);
        Assert.Single(Timeline(second, roomId));
        Assert.Empty(Members(second, roomId));

        var redundant = await SyncAsync(C, alice, Next(redundantInitial), RedundantFilter);
        Assert.Equal([charlie.UserId], Members(redundant, roomId));
    }

    [Fact]
    public async Task A_member_event_redacted_after_a_sync_sent_it_comes_redacted_to_the_next_device_that_needs_it()
    {
        var (alice, _, charlie, roomId) = await NamedRoomWithThreeAsync();
        // Two of charlie's messages fill the timeline (limit 2), so charlie's membership comes in the state section.
        await SendAsync(C, charlie, roomId, "from charlie");
        await SendAsync(C, charlie, roomId, "again");
        JsonNode? CharliesMember(JsonNode sync) => sync["rooms"]?["join"]?[roomId]?["state"]?["events"]?.AsArray()
            .FirstOrDefault(e => e!["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == charlie.UserId);
        var before = CharliesMember(await SyncAsync(C, alice, filter: LazyFilter))!;
        Assert.NotNull(before["content"]?["displayname"]);

        var memberEventId = before["event_id"]!.GetValue<string>();
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/redact/{R(memberEventId)}/{Guid.NewGuid():N}", new { }, alice.AccessToken)).Status);
        await SendAsync(C, charlie, roomId, "still charlie");
        await SendAsync(C, charlie, roomId, "and again");
        var secondDevice = await C.LoginAsync(alice.UserId, alice.Password);
        var after = CharliesMember(await SyncAsync(C, alice with { AccessToken = secondDevice.Str("access_token") }, filter: LazyFilter))!;
        Assert.Equal(memberEventId, after["event_id"]!.GetValue<string>());
        Assert.Null(after["content"]?["displayname"]);
        Assert.Equal("join", after["content"]?["membership"]?.GetValue<string>());
    }

    [Fact]
    public async Task Gappy_incremental_sync_gives_senders_and_members_who_joined_or_left_in_the_gap()
    {
        var (alice, bob, charlie, roomId) = await NamedRoomWithThreeAsync();
        var dave = await C.RegisterAsync();
        await SendAsync(C, bob, roomId, "from bob");
        await SendAsync(C, bob, roomId, "more from bob");
        var initial = await SyncAsync(C, alice, filter: LazyFilter);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, dave.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/leave", new { }, bob.AccessToken)).Status);
        for (var i = 0; i < 3; i++)
            await SendAsync(C, charlie, roomId, $"filler {i}");

        var gappy = await SyncAsync(C, alice, Next(initial), LazyFilter);
        Assert.True(gappy["rooms"]!["join"]![roomId]!["timeline"]!["limited"]!.GetValue<bool>());
        Assert.Equal(new[] { bob.UserId, charlie.UserId, dave.UserId }.Order(StringComparer.Ordinal), Members(gappy, roomId));
    }

    [Fact]
    public async Task Context_lazy_loads_only_the_members_of_senders_it_returns()
    {
        var (alice, _, _, roomId) = await NamedRoomWithThreeAsync();
        await SendAsync(C, alice, roomId, "one");
        var eventId = await SendAsync(C, alice, roomId, "two");
        var filter = Uri.EscapeDataString("{\"lazy_load_members\":true}");
        var context = await C.GetAsync($"{V3}/rooms/{R(roomId)}/context/{Uri.EscapeDataString(eventId)}?limit=2&filter={filter}", alice.AccessToken);
        Assert.True(context.Status == 200, context.ToString());
        var members = context.Body!["state"]!.AsArray().Where(e => e!["type"]!.GetValue<string>() == "m.room.member").ToList();
        Assert.Equal(alice.UserId, Assert.Single(members)!["state_key"]!.GetValue<string>());
        Assert.Contains(context.Body["state"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.name");
    }

    [Fact]
    public async Task A_named_room_summary_has_counts_but_no_heroes()
    {
        var (alice, _, _, roomId) = await NamedRoomWithThreeAsync();
        var summary = (await SyncAsync(C, alice, filter: LazyFilter))["rooms"]!["join"]![roomId]!["summary"]!;
        Assert.Equal(3, summary["m.joined_member_count"]!.GetValue<int>());
        Assert.Null(summary["m.heroes"]);

        var unnamed = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        Assert.NotNull((await SyncAsync(C, alice))["rooms"]!["join"]![unnamed]!["summary"]!["m.heroes"]);
    }

    [Fact]
    public async Task The_account_data_filter_applies_to_global_and_room_account_data()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var user = Uri.EscapeDataString(alice.UserId);
        await C.PutAsync($"{V3}/user/{user}/account_data/my.test.type", new { cats_or_rats = "cats" }, alice.AccessToken);
        await C.PutAsync($"{V3}/user/{user}/account_data/other.type", new { }, alice.AccessToken);
        await C.PutAsync($"{V3}/user/{user}/rooms/{R(roomId)}/account_data/other.type", new { }, alice.AccessToken);
        var sync = await SyncAsync(C, alice, filter: "{\"account_data\":{\"types\":[\"my.test.type\"]},\"room\":{\"account_data\":{\"not_types\":[\"other.type\"]}}}");
        Assert.Equal("my.test.type", Assert.Single(sync["account_data"]!["events"]!.AsArray())!["type"]!.GetValue<string>());
        Assert.Empty(sync["rooms"]!["join"]![roomId]!["account_data"]!["events"]!.AsArray());
    }

    [Fact]
    public async Task Messages_gives_end_paging_forwards_but_not_once_back_at_the_start()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var since = Next(await SyncAsync(C, alice));
        await SendAsync(C, alice, roomId, "after");
        var forward = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=f&from={since}", alice.AccessToken);
        Assert.Single(forward.Body!["chunk"]!.AsArray());
        Assert.NotNull(forward.Body["end"]);
        var backward = await C.GetAsync($"{V3}/rooms/{R(roomId)}/messages?dir=b&limit=100", alice.AccessToken);
        Assert.Contains(backward.Body!["chunk"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.create");
        Assert.Null(backward.Body["end"]);
    }

    [Fact]
    public async Task A_display_name_change_does_not_bring_the_full_state_again()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/a.madeup.test.state", new { my_key = 1 }, alice.AccessToken);
        const string filter = "{\"room\":{\"timeline\":{\"types\":[]},\"state\":{\"types\":[\"a.madeup.test.state\"]}}}";
        var initial = await SyncAsync(C, alice, filter: filter);
        Assert.Single(initial["rooms"]!["join"]![roomId]!["state"]!["events"]!.AsArray());
        await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.member/{Uri.EscapeDataString(alice.UserId)}",
            new { membership = "join", displayname = "boris" }, alice.AccessToken);
        Assert.Null((await SyncAsync(C, alice, Next(initial), filter))["rooms"]!["join"]![roomId]);
    }

    [Fact]
    public async Task A_room_joined_and_left_between_syncs_comes_with_its_state()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/a.madeup.test.state", new { my_key = 1 }, alice.AccessToken);
        const string filter = "{\"room\":{\"timeline\":{\"types\":[]},\"state\":{\"types\":[\"a.madeup.test.state\"]},\"include_leave\":true}}";
        var initial = await SyncAsync(C, bob, filter: filter);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/leave", new { }, bob.AccessToken)).Status);
        var left = (await SyncAsync(C, bob, Next(initial), filter))["rooms"]!["leave"]![roomId]!;
        Assert.Equal("a.madeup.test.state", Assert.Single(left["state"]!["events"]!.AsArray())!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_declined_invite_shows_no_room_state()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "private_chat", name = "Secret name" });
        const string filter = "{\"room\":{\"include_leave\":true}}";
        var initial = await SyncAsync(C, bob, filter: filter);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/leave", new { }, bob.AccessToken)).Status);
        var left = (await SyncAsync(C, bob, Next(initial), filter))["rooms"]!["leave"]![roomId]!;
        Assert.Empty(left["state"]!["events"]!.AsArray());
    }

    [Fact]
    public async Task A_room_newly_joined_shows_its_latest_events_as_a_limited_timeline_with_its_members_presence()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        await SendAsync(C, alice, roomId, "before bob's last sync");
        var initial = await SyncAsync(C, bob);
        await SendAsync(C, alice, roomId, "after");
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken)).Status);
        var sync = await SyncAsync(C, bob, Next(initial), "{\"room\":{\"timeline\":{\"limit\":50}}}");
        var room = sync["rooms"]!["join"]![roomId]!;
        Assert.True(room["timeline"]!["limited"]!.GetValue<bool>());
        Assert.Contains(Timeline(sync, roomId), e => e["type"]!.GetValue<string>() == "m.room.create");
        Assert.Empty(room["state"]!["events"]!.AsArray());
        Assert.Contains(sync["presence"]!["events"]!.AsArray(), e => e!["sender"]!.GetValue<string>() == alice.UserId);

        // Someone never seen online who joins is news too: offline.
        var carol = await C.RegisterAsync();
        var alicesSync = await SyncAsync(C, alice);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, carol.AccessToken)).Status);
        var presence = (await SyncAsync(C, alice, Next(alicesSync)))["presence"]!["events"]!.AsArray();
        Assert.Equal("offline", presence.Single(e => e!["sender"]!.GetValue<string>() == carol.UserId)!["content"]!["presence"]!.GetValue<string>());
    }

    [Fact]
    public async Task Current_state_set_while_the_user_could_not_see_the_room_shows_in_the_timeline()
    {
        var creator = await C.RegisterAsync();
        var syncer = await C.RegisterAsync();
        var invitee = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, creator, new { preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, syncer.AccessToken)).Status);
        await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.history_visibility", new { history_visibility = "joined" }, creator.AccessToken);
        var initial = await SyncAsync(C, syncer);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/leave", new { }, syncer.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, invitee.AccessToken)).Status);
        for (var i = 0; i < 15; i++)
            await SendAsync(C, creator, roomId, $"unseen {i}");
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, syncer.AccessToken)).Status);
        var timeline = Timeline(await SyncAsync(C, syncer, Next(initial)), roomId);
        Assert.Contains(timeline, e => e["type"]!.GetValue<string>() == "m.room.member" && e["state_key"]!.GetValue<string>() == invitee.UserId);
        Assert.DoesNotContain(timeline, e => e["type"]!.GetValue<string>() == "m.room.message");
    }

    [Fact]
    public async Task The_federation_event_format_gives_the_pdu()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var eventId = await SendAsync(C, alice, roomId, "Test message");
        var sync = await SyncAsync(C, alice, filter: "{\"event_format\":\"federation\",\"room\":{\"timeline\":{\"limit\":1}}}");
        var evt = Assert.Single(Timeline(sync, roomId));
        Assert.Equal(eventId, evt["event_id"]!.GetValue<string>());
        foreach (var key in new[] { "prev_events", "auth_events", "depth", "hashes", "signatures", "origin_server_ts" })
            Assert.NotNull(evt[key]);
    }

    [Fact]
    public async Task A_new_login_is_a_device_list_change_the_users_other_devices_see()
    {
        var alice = await C.RegisterAsync();
        var initial = await SyncAsync(C, alice);
        var login = await C.LoginAsync(alice.Localpart, alice.Password);
        Assert.Equal(200, login.Status);
        var sync = await SyncAsync(C, alice, Next(initial));
        Assert.Contains(sync["device_lists"]!["changed"]!.AsArray(), u => u!.GetValue<string>() == alice.UserId);
    }
}

public sealed class LazyLoadingSyncTestsSqlite(SqliteServer f) : LazyLoadingSyncTests(f), IClassFixture<SqliteServer>;
public sealed class LazyLoadingSyncTestsPostgres(PostgresServer f) : LazyLoadingSyncTests(f), IClassFixture<PostgresServer>;
