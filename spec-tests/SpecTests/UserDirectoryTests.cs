using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;

namespace Matrix.SpecTests;

/// <summary>Spec: "User directory" — search by ID or display name, limited to users one shares a room with (or public rooms).</summary>
public abstract class UserDirectoryTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    [Fact]
    public async Task Search_finds_room_mates_and_public_room_members_but_not_strangers()
    {
        var tag = MatrixClient.UniqueName("dir");
        var alice = await C.RegisterAsync($"{tag}alice");
        var bob = await C.RegisterAsync($"{tag}bob");
        var stranger = await C.RegisterAsync($"{tag}stranger");
        var publicPerson = await C.RegisterAsync($"{tag}public");
        await C.PutAsync($"{V3}/profile/{bob.UserId}/displayname", new { displayname = $"Bobby {tag}" }, bob.AccessToken);
        var roomId = await CreateRoomAsync(C, alice, new { invite = new[] { bob.UserId } });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.AccessToken);
        await CreateRoomAsync(C, publicPerson, new { visibility = "public", preset = "public_chat" });

        var found = await C.PostAsync($"{V3}/user_directory/search", new { search_term = tag, limit = 10 }, alice.AccessToken);
        var ids = found.Body!["results"]!.AsArray().Select(r => r!["user_id"]!.GetValue<string>()).ToList();
        Assert.Contains(bob.UserId, ids);
        // The searcher finds themselves only where others would: in a public room (as Synapse).
        Assert.DoesNotContain(alice.UserId, ids);
        Assert.Contains(publicPerson.UserId, ids);
        Assert.DoesNotContain(stranger.UserId, ids);

        var byName = await C.PostAsync($"{V3}/user_directory/search", new { search_term = "BOBBY" }, alice.AccessToken);
        var bobResult = byName.Body!["results"]!.AsArray().Single(r => r!["user_id"]!.GetValue<string>() == bob.UserId)!;
        Assert.Equal($"Bobby {tag}", bobResult["display_name"]!.GetValue<string>());

        var limited = await C.PostAsync($"{V3}/user_directory/search", new { search_term = tag, limit = 1 }, alice.AccessToken);
        Assert.Single(limited.Body!["results"]!.AsArray());
        Assert.True(limited.Body!["limited"]!.GetValue<bool>());
        Assert.Equal(400, (await C.PostAsync($"{V3}/user_directory/search", new { limit = 1 }, alice.AccessToken)).Status);
    }

    [Fact]
    public async Task Members_of_rooms_anyone_may_join_or_read_are_found_only_while_the_room_stays_so()
    {
        var tag = MatrixClient.UniqueName("open");
        var owner = await C.RegisterAsync();
        var member = await C.RegisterAsync($"{tag}member");
        var searcher = await C.RegisterAsync();
        async Task<bool> FoundAsync() => (await C.PostAsync($"{V3}/user_directory/search", new { search_term = tag }, searcher.AccessToken))
            .Body!["results"]!.AsArray().Any(r => r!["user_id"]!.GetValue<string>() == member.UserId);

        // public_chat without being published in the room directory: still a public room for the user directory.
        var roomId = await CreateRoomAsync(C, owner, new { preset = "public_chat" });
        Assert.False(await FoundAsync());
        Assert.Equal(200, (await C.PostAsync($"{V3}/join/{R(roomId)}", new { }, member.AccessToken)).Status);
        Assert.True(await FoundAsync());
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.join_rules", new { join_rule = "invite" }, owner.AccessToken)).Status);
        Assert.False(await FoundAsync());
        Assert.Equal(200, (await C.PutAsync($"{V3}/rooms/{R(roomId)}/state/m.room.history_visibility", new { history_visibility = "world_readable" }, owner.AccessToken)).Status);
        Assert.True(await FoundAsync());
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/leave", new { }, member.AccessToken)).Status);
        Assert.False(await FoundAsync());
    }
}

public sealed class UserDirectoryTestsSqlite(SqliteServer f) : UserDirectoryTests(f), IClassFixture<SqliteServer>;
public sealed class UserDirectoryTestsPostgres(PostgresServer f) : UserDirectoryTests(f), IClassFixture<PostgresServer>;

/// <summary>With <c>user_directory.search_all_users</c> every local user is found.</summary>
public sealed class UserDirectorySearchAllTests() : ServerFixture("sqlite", "user_directory:\n  search_all_users: true\n")
{
    [Fact]
    public async Task Every_user_is_searchable()
    {
        var c = Client;
        var tag = MatrixClient.UniqueName("all");
        var alice = await c.RegisterAsync($"{tag}a");
        var stranger = await c.RegisterAsync($"{tag}b");
        var found = await c.PostAsync("/_matrix/client/v3/user_directory/search", new { search_term = tag }, alice.AccessToken);
        Assert.Contains(stranger.UserId, found.Body!["results"]!.AsArray().Select(r => r!["user_id"]!.GetValue<string>()));
    }
}
