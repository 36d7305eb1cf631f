using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Server side search" (<c>POST /search</c>, room_events) on PostgreSQL full-text search and SQLite FTS5.</summary>
public abstract class SearchTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    private async Task<JsonNode> SearchAsync(LoggedInUser user, JsonObject roomEvents, string? nextBatch = null)
    {
        var response = await C.PostAsync($"{V3}/search" + (nextBatch is null ? "" : "?next_batch=" + Uri.EscapeDataString(nextBatch)),
            new JsonObject { ["search_categories"] = new JsonObject { ["room_events"] = roomEvents } }.ToJsonString(), user.AccessToken);
        Assert.True(response.Status == 200, response.ToString());
        return response.Body!["search_categories"]!["room_events"]!;
    }

    private static List<string> Bodies(JsonNode roomEvents) =>
        roomEvents["results"]!.AsArray().Select(r => r!["result"]!["content"]!["body"]!.GetValue<string>()).ToList();

    [Fact]
    public async Task Search_finds_words_in_the_users_rooms_only_ranked_or_newest_first()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var shared = await RoomTests.CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId } });
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(shared)}/join", new { }, bob.AccessToken)).Status);
        var secret = await RoomTests.CreateRoomAsync(C, alice);
        var tag = Guid.NewGuid().ToString("N")[..8];
        await RoomTests.SendAsync(C, alice, shared, $"The quarterly{tag} report is ready");
        await RoomTests.SendAsync(C, alice, shared, "lunch plans");
        await RoomTests.SendAsync(C, bob, shared, $"quarterly{tag} numbers look good, QUARTERLY{tag} indeed");
        await RoomTests.SendAsync(C, alice, secret, $"secret quarterly{tag} numbers");

        var bobs = await SearchAsync(bob, new JsonObject { ["search_term"] = $"quarterly{tag}" });
        Assert.Equal(2, bobs["results"]!.AsArray().Count);
        Assert.Equal(2, bobs["count"]!.GetValue<long>());
        Assert.Contains($"quarterly{tag}", bobs["highlights"]!.AsArray().Select(h => h!.GetValue<string>().ToLowerInvariant()));
        Assert.DoesNotContain(Bodies(bobs), b => b.StartsWith("secret"));
        Assert.Equal(3, (await SearchAsync(alice, new JsonObject { ["search_term"] = $"quarterly{tag}" }))["results"]!.AsArray().Count);

        var recent = await SearchAsync(bob, new JsonObject { ["search_term"] = $"quarterly{tag}", ["order_by"] = "recent" });
        Assert.StartsWith($"quarterly{tag} numbers", Bodies(recent)[0]);
        // Words are all required, and match as prefixes.
        Assert.Single((await SearchAsync(bob, new JsonObject { ["search_term"] = $"quarterly{tag} report" }))["results"]!.AsArray());
        Assert.Equal(2, (await SearchAsync(bob, new JsonObject { ["search_term"] = $"quarterly{tag[..4]}" }))["results"]!.AsArray().Count);
        Assert.Empty((await SearchAsync(bob, new JsonObject { ["search_term"] = "\"unbalanced OR (" }))["results"]!.AsArray());
        // Room filter and sender filter.
        var filtered = await SearchAsync(alice, new JsonObject
        {
            ["search_term"] = $"quarterly{tag}", ["filter"] = new JsonObject { ["rooms"] = new JsonArray(secret) },
        });
        Assert.Equal([$"secret quarterly{tag} numbers"], Bodies(filtered));
        var bySender = await SearchAsync(alice, new JsonObject
        {
            ["search_term"] = $"quarterly{tag}", ["filter"] = new JsonObject { ["senders"] = new JsonArray(bob.UserId) },
        });
        Assert.Single(bySender["results"]!.AsArray());
    }

    [Fact]
    public async Task Results_page_and_carry_context_profiles_state_and_groups()
    {
        var alice = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new { name = "Ops" });
        Assert.Equal(200, (await C.PutAsync($"{V3}/profile/{Uri.EscapeDataString(alice.UserId)}/displayname", new { displayname = "Alice A." }, alice.AccessToken)).Status);
        var tag = Guid.NewGuid().ToString("N")[..8];
        for (var i = 0; i < 13; i++)
            await RoomTests.SendAsync(C, alice, roomId, $"ping{tag} number {i}");

        foreach (var order in new[] { "recent", "rank" })
        {
            var request = new JsonObject { ["search_term"] = $"ping{tag}", ["order_by"] = order, ["filter"] = new JsonObject { ["limit"] = 10 } };
            var first = await SearchAsync(alice, (JsonObject)request.DeepClone());
            Assert.Equal(10, first["results"]!.AsArray().Count);
            Assert.Equal(13, first["count"]!.GetValue<long>());
            var second = await SearchAsync(alice, (JsonObject)request.DeepClone(), first["next_batch"]!.GetValue<string>());
            Assert.Equal(3, second["results"]!.AsArray().Count);
            Assert.Empty(Bodies(first).Intersect(Bodies(second)));
        }

        var detailed = await SearchAsync(alice, new JsonObject
        {
            ["search_term"] = $"ping{tag} 5", ["order_by"] = "recent",
            ["event_context"] = new JsonObject { ["before_limit"] = 2, ["after_limit"] = 1, ["include_profile"] = true },
            ["include_state"] = true,
            ["groupings"] = new JsonObject { ["group_by"] = new JsonArray(new JsonObject { ["key"] = "room_id" }) },
        });
        var result = detailed["results"]![0]!;
        Assert.Equal($"ping{tag} number 5", result["result"]!["content"]!["body"]!.GetValue<string>());
        Assert.Equal(2, result["context"]!["events_before"]!.AsArray().Count);
        Assert.Single(result["context"]!["events_after"]!.AsArray());
        Assert.Equal("Alice A.", result["context"]!["profile_info"]![alice.UserId]!["displayname"]!.GetValue<string>());
        Assert.Contains(detailed["state"]![roomId]!.AsArray(), e => e!["type"]!.GetValue<string>() == "m.room.name");
        Assert.Contains(result["result"]!["event_id"]!.GetValue<string>(),
            detailed["groups"]!["room_id"]![roomId]!["results"]!.AsArray().Select(e => e!.GetValue<string>()));

        var names = await SearchAsync(alice, new JsonObject { ["search_term"] = "ops", ["keys"] = new JsonArray("content.name") });
        Assert.Contains(names["results"]!.AsArray(), r => r!["result"]!["type"]!.GetValue<string>() == "m.room.name");
    }

    [Fact]
    public async Task History_visibility_and_redactions_hide_results()
    {
        var alice = await C.RegisterAsync();
        var carol = await C.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(C, alice, new
        {
            preset = "public_chat",
            initial_state = new object[] { new { type = "m.room.history_visibility", state_key = "", content = new { history_visibility = "joined" } } },
        });
        var tag = Guid.NewGuid().ToString("N")[..8];
        await RoomTests.SendAsync(C, alice, roomId, $"before{tag} carol joined");
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{RoomTests.R(roomId)}/join", new { }, carol.AccessToken)).Status);
        await RoomTests.SendAsync(C, alice, roomId, $"after{tag} carol joined");
        Assert.Empty((await SearchAsync(carol, new JsonObject { ["search_term"] = $"before{tag}" }))["results"]!.AsArray());
        Assert.Single((await SearchAsync(carol, new JsonObject { ["search_term"] = $"after{tag}" }))["results"]!.AsArray());

        var doomed = await RoomTests.SendAsync(C, alice, roomId, $"oops{tag} wrong room");
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{RoomTests.R(roomId)}/redact/{RoomTests.R(doomed)}/{Guid.NewGuid():N}", new { }, alice.AccessToken)).Status);
        Assert.Empty((await SearchAsync(alice, new JsonObject { ["search_term"] = $"oops{tag}" }))["results"]!.AsArray());
    }

    [Fact]
    public async Task Bad_search_requests_get_the_spec_errors()
    {
        var alice = await C.RegisterAsync();
        Assert.Equal(401, (await C.PostAsync($"{V3}/search", new { search_categories = new { room_events = new { search_term = "x" } } })).Status);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/search", new { search_categories = new { room_events = new { } } }, alice.AccessToken)).Errcode);
        Assert.Equal(400, (await C.PostAsync($"{V3}/search", new { search_categories = new { room_events = new { search_term = "x", order_by = "best" } } }, alice.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/search", new { search_categories = new { room_events = new { search_term = "x", keys = new[] { "content.secret" } } } }, alice.AccessToken)).Status);
        Assert.Equal(400, (await C.PostAsync($"{V3}/search?next_batch=zzz", new { search_categories = new { room_events = new { search_term = "x" } } }, alice.AccessToken)).Status);
        Assert.Equal("M_BAD_JSON", (await C.PostAsync($"{V3}/search", new { search_categories = new { room_events = new { search_term = 5 } } }, alice.AccessToken)).Errcode);
        var empty = await C.PostAsync($"{V3}/search", new { search_categories = new { } }, alice.AccessToken);
        Assert.Equal(200, empty.Status);
    }
}

public sealed class SearchTestsSqlite(SqliteServer f) : SearchTests(f), IClassFixture<SqliteServer>;
public sealed class SearchTestsPostgres(PostgresServer f) : SearchTests(f), IClassFixture<PostgresServer>;
