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
        Assert.Contains(alice.UserId, ids);
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
