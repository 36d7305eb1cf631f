using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// With <c>caches.expire_after_ms</c> short, the server drops what its caches held while nobody used it, and then
/// answers from the database as before: tokens, memberships, state and events read again, a logout still holds.
/// </summary>
public abstract class CacheExpiryTests(string engine) : IAsyncLifetime
{
    private const string Swept = "entries unused for caches.expire_after_ms dropped";
    private TestDatabase _database = null!;
    private HomeserverProcess _server = null!;
    private MatrixClient C = null!;

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync(engine);
        _server = new HomeserverProcess(_database.Yaml, """
            caches:
              expire_after_ms: 1000

            logging:
              level: Debug
            """);
        await _server.StartAsync();
        C = new MatrixClient(_server.BaseUrl, _server.ServerName);
    }

    [Fact]
    public async Task After_the_caches_expire_a_room_syncs_and_a_logout_holds_as_before()
    {
        var alice = await C.RegisterAsync();
        var bob = await C.RegisterAsync();
        var roomId = (await C.PostAsync("/_matrix/client/v3/createRoom", new { preset = "public_chat", name = "Before" }, alice.AccessToken)).Str("room_id");
        Assert.Equal(200, (await C.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}", new { }, bob.AccessToken)).Status);
        var since = (await C.GetAsync("/_matrix/client/v3/sync", bob.AccessToken)).Str("next_batch");
        var sent = (await C.PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/send/m.room.message/t1",
            new { msgtype = "m.text", body = "before the expiry" }, alice.AccessToken)).Str("event_id");

        // Everything above was last used before now. Sweeps run one after another, a second apart: the second to log after
        // a moment more than a second from now began after it, so it dropped all of that.
        await Task.Delay(TimeSpan.FromMilliseconds(1200));
        var sweepsBefore = Count(_server.Output, Swept);
        await Eventually.HoldsAsync(() => Task.FromResult(Count(_server.Output, Swept) > sweepsBefore + 1), () => $"two cache sweeps: {_server.Output}");
        Assert.Matches(@"Caches swept: [1-9]\d* entries", _server.Output);

        Assert.Equal(alice.UserId, (await C.GetAsync("/_matrix/client/v3/account/whoami", alice.AccessToken)).Str("user_id"));
        var sync = await C.GetAsync($"/_matrix/client/v3/sync?since={since}", bob.AccessToken);
        var timeline = sync.Body!["rooms"]!["join"]![roomId]!["timeline"]!["events"]!.AsArray();
        Assert.Contains(timeline, e => e!["event_id"]!.GetValue<string>() == sent && e["content"]!["body"]!.GetValue<string>() == "before the expiry");
        var name = await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.name", bob.AccessToken);
        Assert.Equal("Before", name.Str("name"));
        Assert.Equal(200, (await C.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/event/{Uri.EscapeDataString(sent)}", bob.AccessToken)).Status);

        Assert.Equal(200, (await C.PostAsync("/_matrix/client/v3/logout", new { }, bob.AccessToken)).Status);
        var afterLogout = await C.GetAsync("/_matrix/client/v3/account/whoami", bob.AccessToken);
        Assert.Equal((401, "M_UNKNOWN_TOKEN"), (afterLogout.Status, afterLogout.Str("errcode")));
    }

    private static int Count(string output, string text)
    {
        var count = 0;
        for (var at = output.IndexOf(text, StringComparison.Ordinal); at >= 0; at = output.IndexOf(text, at + text.Length, StringComparison.Ordinal))
            count++;
        return count;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _database.DisposeAsync();
    }
}

public sealed class CacheExpiryTestsSqlite() : CacheExpiryTests("sqlite");
public sealed class CacheExpiryTestsPostgres() : CacheExpiryTests("postgres");
