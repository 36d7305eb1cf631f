using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;

namespace Matrix.SpecTests;

/// <summary>Spec: "Room aliases", "Listing rooms" (room directory, publicRooms), canonical alias checks.</summary>
public abstract class DirectoryTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    private string Alias(string localpart) => Uri.EscapeDataString($"#{localpart}:{C.ServerName}");

    [Fact]
    public async Task Aliases_can_be_created_resolved_listed_and_deleted()
    {
        var alice = await C.RegisterAsync();
        var mallory = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var name = MatrixClient.UniqueName("alias");
        Assert.Equal(200, (await C.PutAsync($"{V3}/directory/room/{Alias(name)}", new { room_id = roomId }, alice.AccessToken)).Status);
        Assert.Equal(409, (await C.PutAsync($"{V3}/directory/room/{Alias(name)}", new { room_id = roomId }, alice.AccessToken)).Status);
        Assert.Equal(400, (await C.PutAsync($"{V3}/directory/room/{Uri.EscapeDataString($"#{name}:elsewhere.test")}", new { room_id = roomId }, alice.AccessToken)).Status);
        Assert.Equal(400, (await C.PutAsync($"{V3}/directory/room/no-hash", new { room_id = roomId }, alice.AccessToken)).Status);
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/directory/room/{Alias(name + "x")}", new { room_id = roomId }, mallory.AccessToken)).Errcode);

        var resolved = await C.GetAsync($"{V3}/directory/room/{Alias(name)}");
        Assert.Equal(roomId, resolved.Str("room_id"));
        Assert.Equal(C.ServerName, resolved.Body!["servers"]![0]!.GetValue<string>());
        var listed = await C.GetAsync($"{V3}/rooms/{R(roomId)}/aliases", alice.AccessToken);
        Assert.Contains($"#{name}:{C.ServerName}", listed.Body!["aliases"]!.AsArray().Select(a => a!.GetValue<string>()));
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"{V3}/rooms/{R(roomId)}/aliases", mallory.AccessToken)).Errcode);

        Assert.Equal("M_FORBIDDEN", (await C.DeleteAsync($"{V3}/directory/room/{Alias(name)}", null, mallory.AccessToken)).Errcode);
        Assert.Equal(200, (await C.DeleteAsync($"{V3}/directory/room/{Alias(name)}", null, alice.AccessToken)).Status);
        Assert.Equal("M_NOT_FOUND", (await C.GetAsync($"{V3}/directory/room/{Alias(name)}")).Errcode);
        Assert.Equal(404, (await C.DeleteAsync($"{V3}/directory/room/{Alias(name)}", null, alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Canonical_aliases_must_point_to_the_room()
    {
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice);
        var otherRoom = await CreateRoomAsync(C, alice);
        var mine = MatrixClient.UniqueName("mine");
        var theirs = MatrixClient.UniqueName("theirs");
        await C.PutAsync($"{V3}/directory/room/{Alias(mine)}", new { room_id = roomId }, alice.AccessToken);
        await C.PutAsync($"{V3}/directory/room/{Alias(theirs)}", new { room_id = otherRoom }, alice.AccessToken);
        var path = $"{V3}/rooms/{R(roomId)}/state/m.room.canonical_alias";
        Assert.Equal(200, (await C.PutAsync(path, new { alias = $"#{mine}:{C.ServerName}" }, alice.AccessToken)).Status);
        Assert.Equal("M_BAD_ALIAS", (await C.PutAsync(path, new { alias = $"#{theirs}:{C.ServerName}" }, alice.AccessToken)).Errcode);
        Assert.Equal("M_BAD_ALIAS", (await C.PutAsync(path, new { alt_aliases = new[] { $"#missing{mine}:{C.ServerName}" } }, alice.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync(path, new { alias = "not an alias" }, alice.AccessToken)).Errcode);

        // Deleting an alias takes it out of the canonical alias event as well (as Synapse does).
        var spare = MatrixClient.UniqueName("spare");
        await C.PutAsync($"{V3}/directory/room/{Alias(spare)}", new { room_id = roomId }, alice.AccessToken);
        Assert.Equal(200, (await C.PutAsync(path, new { alias = $"#{mine}:{C.ServerName}", alt_aliases = new[] { $"#{spare}:{C.ServerName}" } }, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.DeleteAsync($"{V3}/directory/room/{Alias(mine)}", null, alice.AccessToken)).Status);
        Assert.Equal(200, (await C.DeleteAsync($"{V3}/directory/room/{Alias(spare)}", null, alice.AccessToken)).Status);
        Assert.Empty((await C.GetAsync(path, alice.AccessToken)).Body!.AsObject().Where(p => p.Key is "alias" || (p.Key == "alt_aliases" && p.Value!.AsArray().Count > 0)));
    }

    [Fact]
    public async Task Public_rooms_list_published_rooms_with_search_and_pagination()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var tag = MatrixClient.UniqueName("tag");
        var rooms = new List<string>();
        for (var i = 0; i < 3; i++)
            rooms.Add(await CreateRoomAsync(C, alice, new { visibility = "public", preset = "public_chat", name = $"{tag} room {i}", topic = "listed" }));
        var hidden = await CreateRoomAsync(C, alice, new { name = $"{tag} hidden" });

        var search = await C.PostAsync($"{V3}/publicRooms", new { filter = new { generic_search_term = tag } }, bob.AccessToken);
        var chunk = search.Body!["chunk"]!.AsArray();
        Assert.Equal(rooms.Order(), chunk.Select(r => r!["room_id"]!.GetValue<string>()).Order());
        var entry = chunk.First()!;
        Assert.Equal(1, entry["num_joined_members"]!.GetValue<int>());
        Assert.Equal("public", entry["join_rule"]!.GetValue<string>());
        Assert.False(entry["world_readable"]!.GetValue<bool>());

        var page = await C.PostAsync($"{V3}/publicRooms", new { limit = 2, filter = new { generic_search_term = tag } }, bob.AccessToken);
        Assert.Equal(2, page.Body!["chunk"]!.AsArray().Count);
        var next = await C.PostAsync($"{V3}/publicRooms", new { limit = 2, since = page.Str("next_batch"), filter = new { generic_search_term = tag } }, bob.AccessToken);
        Assert.Single(next.Body!["chunk"]!.AsArray());

        Assert.Equal("private", (await C.GetAsync($"{V3}/directory/list/room/{R(hidden)}")).Str("visibility"));
        Assert.Equal("M_FORBIDDEN", (await C.PutAsync($"{V3}/directory/list/room/{R(hidden)}", new { visibility = "public" }, bob.AccessToken)).Errcode);
        Assert.Equal(200, (await C.PutAsync($"{V3}/directory/list/room/{R(hidden)}", new { visibility = "public" }, alice.AccessToken)).Status);
        Assert.Equal("public", (await C.GetAsync($"{V3}/directory/list/room/{R(hidden)}")).Str("visibility"));
        // Published but invite-only: not listed (as Synapse), until outsiders could join or read it.
        async Task<IEnumerable<string>> ListedAsync() =>
            (await C.GetAsync($"{V3}/publicRooms?limit=500")).Body!["chunk"]!.AsArray().Select(r => r!["room_id"]!.GetValue<string>());
        Assert.DoesNotContain(hidden, await ListedAsync());
        await C.PutAsync($"{V3}/rooms/{R(hidden)}/state/m.room.history_visibility", new { history_visibility = "world_readable" }, alice.AccessToken);
        Assert.Contains(hidden, await ListedAsync());
        Assert.Equal(400, (await C.GetAsync($"{V3}/publicRooms?since=garbage")).Status);
    }

    [Fact]
    public async Task Space_hierarchy_walks_children_the_user_may_see()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var space = await CreateRoomAsync(C, alice, new { preset = "public_chat", name = "Company", creation_content = new { type = "m.space" } });
        var open = await CreateRoomAsync(C, alice, new { preset = "public_chat", name = "Open" });
        var secret = await CreateRoomAsync(C, alice, new { name = "Secret" });
        var nested = await CreateRoomAsync(C, alice, new { preset = "public_chat", name = "Nested", creation_content = new { type = "m.space" } });
        var deep = await CreateRoomAsync(C, alice, new { preset = "public_chat", name = "Deep" });
        async Task Link(string parent, string child, bool suggested = false) =>
            Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(parent)}/state/m.space.child/{child}", new { via = new[] { C.ServerName }, suggested }, alice.AccessToken)).Status);
        await Link(space, open, suggested: true);
        await Link(space, secret);
        await Link(space, nested);
        await Link(nested, deep);

        var hierarchy = await C.GetAsync($"/_matrix/client/v1/rooms/{R(space)}/hierarchy", bob.AccessToken);
        var rooms = hierarchy.Body!["rooms"]!.AsArray();
        var ids = rooms.Select(r => r!["room_id"]!.GetValue<string>()).ToList();
        Assert.Equal(space, ids[0]);
        Assert.Contains(open, ids);
        Assert.Contains(deep, ids);
        Assert.DoesNotContain(secret, ids);
        Assert.Equal("m.space", rooms[0]!["room_type"]!.GetValue<string>());
        Assert.Equal(3, rooms[0]!["children_state"]!.AsArray().Count);

        var shallow = await C.GetAsync($"/_matrix/client/v1/rooms/{R(space)}/hierarchy?max_depth=1", bob.AccessToken);
        Assert.DoesNotContain(deep, shallow.Body!["rooms"]!.AsArray().Select(r => r!["room_id"]!.GetValue<string>()));
        var suggested = await C.GetAsync($"/_matrix/client/v1/rooms/{R(space)}/hierarchy?suggested_only=true", bob.AccessToken);
        Assert.Equal([space, open], suggested.Body!["rooms"]!.AsArray().Select(r => r!["room_id"]!.GetValue<string>()));
        var page = await C.GetAsync($"/_matrix/client/v1/rooms/{R(space)}/hierarchy?limit=2", bob.AccessToken);
        Assert.Equal(2, page.Body!["rooms"]!.AsArray().Count);
        var next = await C.GetAsync($"/_matrix/client/v1/rooms/{R(space)}/hierarchy?limit=2&from={page.Str("next_batch")}", bob.AccessToken);
        Assert.NotEmpty(next.Body!["rooms"]!.AsArray());
        Assert.Equal("M_FORBIDDEN", (await C.GetAsync($"/_matrix/client/v1/rooms/{R(secret)}/hierarchy", bob.AccessToken)).Errcode);
    }
}

public sealed class DirectoryTestsSqlite(SqliteServer f) : DirectoryTests(f), IClassFixture<SqliteServer>;
public sealed class DirectoryTestsPostgres(PostgresServer f) : DirectoryTests(f), IClassFixture<PostgresServer>;
