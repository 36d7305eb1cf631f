using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Three of our servers (SQLite, PostgreSQL, PostgreSQL) in one room: concurrent conflicting changes converge.</summary>
public sealed class ThreeServerFederationTests(ThreeServersSqlitePostgres fixture) : IClassFixture<ThreeServersSqlitePostgres>
{
    private MatrixClient Client(int i) => fixture.ClientOf(i);

    private static async Task<Dictionary<string, string>> StateAsync(MatrixClient c, LoggedInUser user, string roomId) =>
        (await c.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state", user.AccessToken)).Body!.AsArray()
            .ToDictionary(e => $"{e!["type"]!.GetValue<string>()}|{e["state_key"]!.GetValue<string>()}", e => e!["event_id"]!.GetValue<string>());

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(45);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task Concurrent_conflicting_power_level_changes_resolve_to_the_same_state_everywhere()
    {
        var users = new List<LoggedInUser>();
        for (var i = 0; i < 3; i++)
            users.Add(await Client(i).RegisterAsync());
        var (alice, bob, carol) = (users[0], users[1], users[2]);
        var serverA = fixture.Servers[0].ServerName;
        var roomId = await RoomTests.CreateRoomAsync(Client(0), alice, new { preset = "public_chat" });
        for (var i = 1; i < 3; i++)
        {
            var join = await Client(i).PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?via={Uri.EscapeDataString(serverA)}", new { }, users[i].AccessToken);
            Assert.True(join.Status == 200, join.ToString());
        }
        await WaitUntilAsync(async () => (await Client(0).GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/joined_members", alice.AccessToken))
            .Body!["joined"]!.AsObject().Count == 3, "all joins at A");

        Assert.Equal(200, (await Client(0).PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.power_levels",
            new { users = new Dictionary<string, int> { [alice.UserId] = 100, [bob.UserId] = 100, [carol.UserId] = 50 } }, alice.AccessToken)).Status);
        foreach (var (client, user, level) in new[] { (Client(1), bob, 100), (Client(2), carol, 50) })
            await WaitUntilAsync(async () =>
            {
                var levels = await client.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.power_levels", user.AccessToken);
                return levels.Body?["users"]?[user.UserId]?.GetValue<int>() == level;
            }, "the promotion everywhere");

        // At the same moment, on different servers: Bob demotes Carol, and Carol (still a moderator where she is)
        // raises the level needed to speak. Resolution applies Bob's change first (higher power), which voids Carol's.
        var changes = await Task.WhenAll(
            Client(1).PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.power_levels",
                new { users = new Dictionary<string, int> { [alice.UserId] = 100, [bob.UserId] = 100, [carol.UserId] = 0 } }, bob.AccessToken),
            Client(2).PutAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/state/m.room.power_levels",
                new { users = new Dictionary<string, int> { [alice.UserId] = 100, [bob.UserId] = 100, [carol.UserId] = 50 }, events_default = 10 },
                carol.AccessToken));
        // Carol's is refused when Bob's reached her server first (a loaded machine lets federation win that race).
        Assert.Equal(200, changes[0].Status);
        Assert.True(changes[1].Status is 200 or 403, changes[1].ToString());
        var bobsChange = changes[0].Str("event_id");

        // Alice and Bob then speak, so their events reach (and cite) the others' branches: both keep level 100 in every
        // branch, so whichever change a server holds when they speak, they may (Alice once lost hers and, where Carol's
        // change had arrived first, could not).
        for (var round = 0; round < 2; round++)
            foreach (var i in new[] { 0, 1 })
            {
                await RoomTests.SendAsync(Client(i), users[i], roomId, $"round {round} from {i}");
                await Task.Delay(300);
            }

        await WaitUntilAsync(async () =>
        {
            var states = new List<Dictionary<string, string>>();
            for (var i = 0; i < 3; i++)
                states.Add(await StateAsync(Client(i), users[i], roomId));
            return states.All(s => s.Count == states[0].Count && !s.Except(states[0]).Any())
                && states[0]["m.room.power_levels|"] == bobsChange;
        }, "identical state, with Bob's change, on all three servers");
    }
}
