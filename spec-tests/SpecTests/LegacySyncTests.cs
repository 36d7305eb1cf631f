using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: the deprecated legacy endpoints still served for older clients and bots, as Synapse serves them: the event
/// stream (<c>GET /events</c>), <c>initialSync</c> (global and per room), <c>GET /events/{eventId}</c>, and sending or
/// redacting with POST and no transaction ID.
/// </summary>
public abstract class LegacySyncTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    [Fact]
    public async Task The_event_stream_brings_new_timeline_events_typing_and_invites_with_their_room_ids()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var start = await C.GetAsync($"{V3}/events?timeout=0", bob.AccessToken);
        Assert.Equal(200, start.Status);
        Assert.Empty(start.Body!["chunk"]!.AsArray());
        var from = start.Str("end");

        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/invite", new { user_id = bob.UserId }, alice.AccessToken)).Status);
        var invited = await EventsUntilAsync(bob, from, chunk => chunk.Any(e => Type(e) == "m.room.member"));
        var invite = invited.Chunk.Single(e => Type(e) == "m.room.member");
        Assert.Equal(roomId, invite["room_id"]!.GetValue<string>());
        Assert.Equal("invite", invite["content"]!["membership"]!.GetValue<string>());

        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{RoomTests.R(roomId)}", new { }, bob.AccessToken)).Status);
        var sent = await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message", new { msgtype = "m.text", body = "legacy" }, alice.AccessToken);
        Assert.Equal(200, sent.Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/typing/{alice.UserId}", new { typing = true, timeout = 30000 }, alice.AccessToken)).Status);
        var seen = await EventsUntilAsync(bob, invited.End,
            chunk => chunk.Any(e => e["event_id"]?.GetValue<string>() == sent.Str("event_id")) && chunk.Any(e => Type(e) == "m.typing"));
        Assert.All(seen.Chunk.Where(e => Type(e) is "m.room.message" or "m.typing"), e => Assert.Equal(roomId, e["room_id"]!.GetValue<string>()));
        Assert.Equal("legacy", seen.Chunk.Single(e => Type(e) == "m.room.message")["content"]!["body"]!.GetValue<string>());

        Assert.Equal(401, (await C.GetAsync($"{V3}/events?timeout=0")).Status);
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{V3}/events?from=nonsense&timeout=0", bob.AccessToken)).Errcode);
    }

    [Fact]
    public async Task Polling_the_event_stream_marks_the_user_online_keeping_their_status_message()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "public_chat" });
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{RoomTests.R(roomId)}", new { }, bob.AccessToken)).Status);
        Assert.Equal("offline", (await C.GetAsync($"{V3}/presence/{alice.UserId}/status", bob.AccessToken)).Str("presence"));

        Assert.Equal(200, (await C.GetAsync($"{V3}/events?timeout=0", alice.AccessToken)).Status);
        var polled = await C.GetAsync($"{V3}/presence/{alice.UserId}/status", bob.AccessToken);
        Assert.Equal("online", polled.Str("presence"));
        Assert.True(polled.Body!["currently_active"]!.GetValue<bool>());

        Assert.Equal(200, (await C.PutAsync($"{V3}/presence/{alice.UserId}/status", new { presence = "unavailable", status_msg = "away" }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.GetAsync($"{V3}/events?timeout=0", alice.AccessToken)).Status);
        var again = await C.GetAsync($"{V3}/presence/{alice.UserId}/status", bob.AccessToken);
        Assert.Equal("online", again.Str("presence"));
        Assert.Equal("away", again.Str("status_msg"));
    }

    [Fact]
    public async Task Room_and_global_initial_sync_show_members_state_and_messages_only_to_those_allowed()
    {
        var alice = await C.RegisterAsync();
        var outsider = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "private_chat", name = "Legacy" });
        for (var i = 0; i < 3; i++)
            Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message", new { msgtype = "m.text", body = $"m{i}" }, alice.AccessToken)).Status);

        var room = await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/initialSync?limit=2", alice.AccessToken);
        Assert.Equal(200, room.Status);
        Assert.Equal(roomId, room.Str("room_id"));
        Assert.Equal("join", room.Str("membership"));
        Assert.Equal(["m1", "m2"], room.Body!["messages"]!["chunk"]!.AsArray().Select(e => e!["content"]!["body"]!.GetValue<string>()));
        Assert.NotNull(room.Body!["messages"]!["start"]);
        Assert.Contains(room.Body!["state"]!.AsArray(), e => Type(e!) == "m.room.name" && e!["content"]!["name"]!.GetValue<string>() == "Legacy");
        Assert.Contains(room.Body!["presence"]!.AsArray(), e => e!["sender"]!.GetValue<string>() == alice.UserId);
        Assert.Equal(403, (await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/initialSync", outsider.AccessToken)).Status);

        var global = await C.GetAsync($"{V3}/initialSync?limit=1", alice.AccessToken);
        Assert.Equal(200, global.Status);
        var entry = global.Body!["rooms"]!.AsArray().Single(r => r!["room_id"]!.GetValue<string>() == roomId)!;
        Assert.Equal("join", entry["membership"]!.GetValue<string>());
        Assert.Equal("m2", Assert.Single(entry["messages"]!["chunk"]!.AsArray())!["content"]!["body"]!.GetValue<string>());
        Assert.NotNull(global.Body!["end"]);
        Assert.Empty((await C.GetAsync($"{V3}/initialSync", outsider.AccessToken)).Body!["rooms"]!.AsArray());
    }

    [Fact]
    public async Task An_event_is_read_by_id_alone_by_those_who_may_see_it()
    {
        var alice = await C.RegisterAsync();
        var outsider = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { preset = "private_chat" });
        var sent = await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message", new { msgtype = "m.text", body = "by id" }, alice.AccessToken);
        var read = await C.GetAsync($"{V3}/events/{Uri.EscapeDataString(sent.Str("event_id"))}", alice.AccessToken);
        Assert.Equal(200, read.Status);
        Assert.Equal("by id", read.Body!["content"]!["body"]!.GetValue<string>());
        Assert.Equal(roomId, read.Str("room_id"));
        Assert.Equal(404, (await C.GetAsync($"{V3}/events/{Uri.EscapeDataString(sent.Str("event_id"))}", outsider.AccessToken)).Status);
        Assert.Equal(404, (await C.GetAsync($"{V3}/events/{Uri.EscapeDataString("$nosuchevent")}", alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Sending_and_redacting_without_a_transaction_id_each_make_a_new_event()
    {
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice);
        var path = $"{V3}/rooms/{RoomTests.R(roomId)}/send/m.room.message";
        var first = await C.PostAsync(path, new { msgtype = "m.text", body = "same" }, alice.AccessToken);
        var second = await C.PostAsync(path, new { msgtype = "m.text", body = "same" }, alice.AccessToken);
        Assert.Equal(200, first.Status);
        Assert.NotEqual(first.Str("event_id"), second.Str("event_id"));

        var redaction = await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/redact/{Uri.EscapeDataString(first.Str("event_id"))}", new { reason = "oops" }, alice.AccessToken);
        Assert.Equal(200, redaction.Status);
        var redacted = await C.GetAsync($"{V3}/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(first.Str("event_id"))}", alice.AccessToken);
        Assert.Empty(redacted.Body!["content"]!.AsObject());
        Assert.Equal(redaction.Str("event_id"), redacted.Body!["unsigned"]!["redacted_because"]!["event_id"]!.GetValue<string>());
        Assert.Equal(redaction.Str("event_id"), redacted.Body!["unsigned"]!["redacted_by"]!.GetValue<string>());
        Assert.Equal("M_NOT_JSON", (await C.PostAsync(path, "{nope", alice.AccessToken)).Errcode);
    }

    private static string? Type(JsonNode e) => e["type"]?.GetValue<string>();

    /// <summary>Polls the event stream from a token until the events seen since it satisfy the condition (each poll long-polls).</summary>
    private async Task<(List<JsonNode> Chunk, string End)> EventsUntilAsync(LoggedInUser user, string from, Func<List<JsonNode>, bool> done)
    {
        var seen = new List<JsonNode>();
        var token = from;
        for (var polls = 0; polls < 20; polls++)
        {
            var response = await C.GetAsync($"{V3}/events?from={token}&timeout=10000", user.AccessToken);
            Assert.True(response.Status == 200, response.ToString());
            seen.AddRange(response.Body!["chunk"]!.AsArray().Select(e => e!));
            token = response.Str("end");
            if (done(seen))
                return (seen, token);
        }
        throw new Xunit.Sdk.XunitException($"The event stream never brought what was awaited; saw {new JsonArray(seen.Select(e => e.DeepClone()).ToArray()).ToJsonString()}");
    }
}

public sealed class LegacySyncTestsSqlite(SqliteServer f) : LegacySyncTests(f), IClassFixture<SqliteServer>;
public sealed class LegacySyncTestsPostgres(PostgresServer f) : LegacySyncTests(f), IClassFixture<PostgresServer>;
