using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;
using static Matrix.SpecTests.SyncTests;

namespace Matrix.SpecTests;

/// <summary>
/// Spec (server-server, Device Management): the device lists of remote users sharing a room are cached from
/// <c>m.device_list_update</c> EDUs and <c>user/devices</c>. An update following on from the cached one (its
/// <c>prev_id</c>) is applied; one after a gap, or the first, resyncs the list (in the background); a query for an untracked user's devices
/// resyncs it too; a server that cannot be reached leaves the cache as it was; and a cache no room is shared for any
/// more is forgotten. Remote keys are kept as sent: checking their signatures is the clients' job.
/// </summary>
public abstract class FederationDeviceListTests(ServerFixture fixture)
{
    private HomeserverProcess Server => fixture.Server;
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    private async Task<JsonObject> DevicesOfAsync(LoggedInUser by, string userId)
    {
        var query = await C.PostAsync($"{V3}/keys/query", new { device_keys = new Dictionary<string, string[]> { [userId] = [] } }, by.AccessToken);
        Assert.True(query.Status == 200, query.ToString());
        Assert.True(query.Body!["failures"]!.AsObject().Count == 0, query.ToString());
        return query.Body!["device_keys"]![userId]!.AsObject();
    }

    /// <summary>Device keys with a signature nobody could verify, as a remote server may send them.</summary>
    private static JsonObject UnverifiableKeys(string userId, string deviceId) => new()
    {
        ["user_id"] = userId, ["device_id"] = deviceId, ["algorithms"] = new JsonArray("m.olm.v1.curve25519-aes-sha2"),
        ["keys"] = new JsonObject { [$"ed25519:{deviceId}"] = "bm90IGEga2V5" },
        ["signatures"] = new JsonObject { [userId] = new JsonObject { [$"ed25519:{deviceId}"] = "bm90IGEgc2lnbmF0dXJl" } },
    };

    private static JsonObject Device(string deviceId, JsonObject keys, string? name = null) =>
        new() { ["device_id"] = deviceId, ["keys"] = keys, ["device_display_name"] = name };

    private static JsonObject DeviceList(string userId, long streamId, params JsonObject[] devices) =>
        new() { ["user_id"] = userId, ["stream_id"] = streamId, ["devices"] = new JsonArray(devices) };

    private static JsonObject Update(string userId, string deviceId, long streamId, long[] prevIds, JsonObject keys, string? name = null) => new()
    {
        ["user_id"] = userId, ["device_id"] = deviceId, ["stream_id"] = streamId,
        ["prev_id"] = new JsonArray(prevIds.Select(id => (JsonNode)id).ToArray()), ["keys"] = keys, ["device_display_name"] = name,
    };

    [Fact]
    public async Task Remote_device_lists_are_resynced_when_untracked_or_after_a_gap_and_kept_when_their_server_is_down()
    {
        await using var remote = new FakeRemoteServer();
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var bob = await remote.JoinAsync(Server, roomId, "bob");
        var other = $"@other:{remote.ServerName}";
        remote.UserDevices[bob] = DeviceList(bob, 1,
            Device("PHONE", UnverifiableKeys(bob, "PHONE"), "phone"),
            // Keys without user and device (SyTest sends such) are served as they came; keys naming another are not.
            Device("BARE", new JsonObject { ["device_keys"] = new JsonObject() }),
            Device("FORGED", UnverifiableKeys(other, "PHONE")));

        // No cache yet: the query resyncs through user/devices, and later queries read the cache.
        var devices = await DevicesOfAsync(alice, bob);
        Assert.Equal(["BARE", "PHONE"], devices.Select(d => d.Key).Order());
        Assert.Equal("bm90IGEga2V5", devices["PHONE"]!["keys"]!["ed25519:PHONE"]!.GetValue<string>());
        Assert.Equal("phone", devices["PHONE"]!["unsigned"]!["device_display_name"]!.GetValue<string>());
        Assert.NotNull(devices["BARE"]!["device_keys"]);
        await DevicesOfAsync(alice, bob);
        Assert.Single(remote.UserDevicesRequests);

        // An update naming the cached stream ID as its predecessor is applied as it is.
        var since = (await SyncAsync(C, alice))["next_batch"]!.GetValue<string>();
        await remote.SendEduAsync(Server, "m.device_list_update", Update(bob, "PHONE", 2, [1], UnverifiableKeys(bob, "PHONE"), "renamed"));
        Assert.Contains(bob, (await SyncAsync(C, alice, since))["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
        Assert.Equal("renamed", (await DevicesOfAsync(alice, bob))["PHONE"]!["unsigned"]!["device_display_name"]!.GetValue<string>());
        Assert.Single(remote.UserDevicesRequests);

        // An update after a gap (stream ID 3 never came) resyncs the whole list, in the background.
        remote.UserDevices[bob] = DeviceList(bob, 4, Device("PHONE", UnverifiableKeys(bob, "PHONE"), "renamed"),
            Device("LAPTOP", UnverifiableKeys(bob, "LAPTOP"), "laptop"));
        await remote.SendEduAsync(Server, "m.device_list_update", Update(bob, "LAPTOP", 4, [3], UnverifiableKeys(bob, "LAPTOP"), "laptop"));
        await Eventually.HoldsAsync(async () => (await DevicesOfAsync(alice, bob)).ContainsKey("LAPTOP"), "the resynced list with the laptop");
        Assert.Equal(["LAPTOP", "PHONE"], (await DevicesOfAsync(alice, bob)).Select(d => d.Key).Order());
        Assert.Equal(2, remote.UserDevicesRequests.Count);

        // Its server down, a resync fails: the cached list stays as it was, and queries still answer from it.
        remote.UserDevices.Clear();
        await remote.SendEduAsync(Server, "m.device_list_update", Update(bob, "TABLET", 7, [6], UnverifiableKeys(bob, "TABLET")));
        await Eventually.HoldsAsync(() => Task.FromResult(remote.UserDevicesRequests.Count == 3), "a resync attempt");
        Assert.Equal(["LAPTOP", "PHONE"], (await DevicesOfAsync(alice, bob)).Select(d => d.Key).Order());
    }

    [Fact]
    public async Task An_update_needing_a_resync_is_answered_without_waiting_for_the_origin_to_answer_the_resync()
    {
        await using var remote = new FakeRemoteServer();
        var alice = await C.RegisterAsync();
        var bob = await remote.JoinAsync(Server, await CreateRoomAsync(C, alice, new { preset = "public_chat" }), "bob");
        remote.UserDevices[bob] = DeviceList(bob, 1, Device("PHONE", UnverifiableKeys(bob, "PHONE")));
        // The origin takes 8 s to answer (within our request timeout); the transaction is answered long before (a generous
        // margin for a loaded machine).
        remote.UserDevicesDelay = TimeSpan.FromSeconds(8);

        var sending = System.Diagnostics.Stopwatch.StartNew();
        await remote.SendEduAsync(Server, "m.device_list_update", Update(bob, "PHONE", 1, [], UnverifiableKeys(bob, "PHONE")));
        Assert.True(sending.Elapsed < TimeSpan.FromSeconds(6), $"the transaction took {sending.Elapsed}");
        await Eventually.HoldsAsync(async () => (await DevicesOfAsync(alice, bob)).Count == 1, "the resynced list");
    }

    [Fact]
    public async Task A_cached_device_list_is_forgotten_when_no_room_is_shared_and_resynced_when_one_is_again()
    {
        await using var remote = new FakeRemoteServer();
        var alice = await C.RegisterAsync();
        var roomId = await CreateRoomAsync(C, alice, new { preset = "public_chat" });
        var bob = await remote.JoinAsync(Server, roomId, "bob");
        remote.UserDevices[bob] = DeviceList(bob, 1, Device("PHONE", UnverifiableKeys(bob, "PHONE")));
        Assert.Single(await DevicesOfAsync(alice, bob));

        // Bob leaves, adds a device while no room is shared (so no update comes), and joins again: the next query must
        // not answer from the list cached before.
        await remote.SendMembershipAsync(Server, roomId, "bob", "leave");
        remote.UserDevices[bob] = DeviceList(bob, 2, Device("PHONE", UnverifiableKeys(bob, "PHONE")), Device("LAPTOP", UnverifiableKeys(bob, "LAPTOP")));
        await remote.JoinAsync(Server, roomId, "bob");
        Assert.Equal(["LAPTOP", "PHONE"], (await DevicesOfAsync(alice, bob)).Select(d => d.Key).Order());
        Assert.Equal(2, remote.UserDevicesRequests.Count);

        // The same when the local side leaves: Alice leaves, Bob adds a third device, and they meet in another room.
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/leave", new { }, alice.AccessToken)).Status);
        remote.UserDevices[bob] = DeviceList(bob, 3, Device("PHONE", UnverifiableKeys(bob, "PHONE")), Device("LAPTOP", UnverifiableKeys(bob, "LAPTOP")),
            Device("TABLET", UnverifiableKeys(bob, "TABLET")));
        await remote.JoinAsync(Server, await CreateRoomAsync(C, alice, new { preset = "public_chat" }), "bob");
        Assert.Equal(3, (await DevicesOfAsync(alice, bob)).Count);
        Assert.Equal(3, remote.UserDevicesRequests.Count);
    }
}

public sealed class FederationDeviceListTestsSqlite(SqliteFederatingServer fixture)
    : FederationDeviceListTests(fixture), IClassFixture<SqliteFederatingServer>;

public sealed class FederationDeviceListTestsPostgres(PostgresFederatingServer fixture)
    : FederationDeviceListTests(fixture), IClassFixture<PostgresFederatingServer>;
