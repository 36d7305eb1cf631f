using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Everything acknowledged survives a restart and a SIGKILL: users, devices, tokens, account data, profiles, room events.</summary>
public abstract class DurabilityTests(string engine) : ServerFixture(engine)
{
    [Fact]
    public async Task Acknowledged_writes_survive_a_clean_restart_and_a_sigkill()
    {
        var c = Client;
        var user = await c.RegisterAsync(deviceId: "KEEP");
        var refreshable = await c.LoginAsync(user.Localpart, user.Password, new { refresh_token = true });
        await c.PutAsync($"/_matrix/client/v3/devices/KEEP", new { display_name = "Kept device" }, user.AccessToken);
        await c.PutAsync($"/_matrix/client/v3/profile/{user.UserId}/displayname", new { displayname = "Durable" }, user.AccessToken);
        await c.PutAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.before", new { n = 1 }, user.AccessToken);

        await Server.StopAsync();
        await Server.StartAsync();
        await AssertStateAsync(c, user, refreshable, expectedWrites: 1);

        // Writes acknowledged right before a SIGKILL must be there after it.
        for (var n = 2; n <= 20; n++)
            Assert.Equal(200, (await c.PutAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.w{n}", new { n }, user.AccessToken)).Status);
        var late = await c.RegisterAsync();
        await Server.KillAsync();
        await Server.StartAsync();

        await AssertStateAsync(c, user, refreshable, expectedWrites: 20);
        Assert.Equal(late.UserId, (await c.GetAsync("/_matrix/client/v3/account/whoami", late.AccessToken)).Str("user_id"));
        Assert.Equal(200, (await c.LoginAsync(late.Localpart, late.Password)).Status);
    }

    [Fact]
    public async Task Messages_and_sync_tokens_survive_a_sigkill()
    {
        var c = Client;
        var alice = await c.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(c, alice, new { name = "durable" });
        var before = (await SyncTests.SyncAsync(c, alice))["next_batch"]!.GetValue<string>();
        var sent = new List<string>();
        for (var i = 0; i < 20; i++)
            sent.Add(await RoomTests.SendAsync(c, alice, roomId, $"d{i}"));
        await Server.KillAsync();
        await Server.StartAsync();

        sent.Add(await RoomTests.SendAsync(c, alice, roomId, "after restart"));
        var sync = await SyncTests.SyncAsync(c, alice, before, "{\"room\":{\"timeline\":{\"limit\":100}}}");
        Assert.Equal(sent, SyncTests.Timeline(sync, roomId).Select(e => e["event_id"]!.GetValue<string>()));
        var again = await SyncTests.SyncAsync(c, alice, sync["next_batch"]!.GetValue<string>());
        Assert.Null(again["rooms"]!["join"]![roomId]);
    }

    private static async Task AssertStateAsync(MatrixClient c, LoggedInUser user, MatrixResponse refreshable, int expectedWrites)
    {
        var whoami = await c.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken);
        Assert.Equal("KEEP", whoami.Str("device_id"));
        Assert.Equal("Kept device", (await c.GetAsync("/_matrix/client/v3/devices/KEEP", user.AccessToken)).Str("display_name"));
        Assert.Equal("Durable", (await c.GetAsync($"/_matrix/client/v3/profile/{user.UserId}/displayname")).Str("displayname"));
        Assert.Equal(1, (await c.GetAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.before", user.AccessToken)).Body!["n"]!.GetValue<int>());
        for (var n = 2; n <= expectedWrites; n++)
        {
            var data = await c.GetAsync($"/_matrix/client/v3/user/{user.UserId}/account_data/org.example.w{n}", user.AccessToken);
            Assert.True(data.Status == 200, $"write {n} lost: {data}");
        }
        Assert.Equal(200, (await c.GetAsync("/_matrix/client/v3/account/whoami", refreshable.Str("access_token"))).Status);
        Assert.Equal(200, (await c.LoginAsync(user.Localpart, user.Password)).Status);
    }
}

public sealed class DurabilityTestsSqlite() : DurabilityTests("sqlite");
public sealed class DurabilityTestsPostgres() : DurabilityTests("postgres");
