using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;
using static Matrix.SpecTests.RoomTests;
using static Matrix.SpecTests.SyncTests;

namespace Matrix.SpecTests;

/// <summary>
/// Spec: "End-to-end encryption" key management (<c>keys/upload|query|claim|changes</c>), device lists in /sync, and
/// "Send-to-Device messaging". Keys are real Ed25519 keys signed as a crypto client signs them.
/// </summary>
public abstract class EndToEndEncryptionTests(ServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private const string V3 = "/_matrix/client/v3";

    private async Task<TestDevice> DeviceAsync() => new(await C.RegisterAsync());

    private Task<MatrixResponse> QueryAsync(LoggedInUser by, params string[] users) =>
        C.PostAsync($"{V3}/keys/query", new { device_keys = users.ToDictionary(u => u, _ => Array.Empty<string>()) }, by.AccessToken);

    private Task<MatrixResponse> ClaimAsync(LoggedInUser by, string userId, string deviceId) =>
        C.PostAsync($"{V3}/keys/claim", new JsonObject
        {
            ["one_time_keys"] = new JsonObject { [userId] = new JsonObject { [deviceId] = "signed_curve25519" } },
        }.ToJsonString(), by.AccessToken);

    [Fact]
    public async Task Uploaded_device_keys_are_served_to_other_users_with_the_device_name_and_key_counts()
    {
        var alice = await DeviceAsync();
        var bob = await DeviceAsync();
        await C.PutAsync($"{V3}/devices/{alice.User.DeviceId}", new { display_name = "Alice's laptop" }, alice.User.AccessToken);
        var upload = await alice.UploadAsync(C, oneTimeKeys: 5, fallbackKey: true);
        Assert.True(upload.Status == 200, upload.ToString());
        Assert.Equal(5, upload.Body!["one_time_key_counts"]!["signed_curve25519"]!.GetValue<int>());

        var query = await QueryAsync(bob.User, alice.User.UserId, $"@nobody:{C.ServerName}");
        var served = query.Body!["device_keys"]![alice.User.UserId]![alice.User.DeviceId]!;
        Assert.Equal(alice.DeviceKey.PublicKeyBase64, served["keys"]!["ed25519:" + alice.User.DeviceId]!.GetValue<string>());
        Assert.Equal("Alice's laptop", served["unsigned"]!["device_display_name"]!.GetValue<string>());
        Assert.NotNull(served["signatures"]![alice.User.UserId]!["ed25519:" + alice.User.DeviceId]);
        Assert.Empty(query.Body!["device_keys"]![$"@nobody:{C.ServerName}"]!.AsObject());
        Assert.Empty(query.Body!["failures"]!.AsObject());
        // A device without a name still has unsigned (Synapse's shape), only without the name.
        await bob.UploadAsync(C);
        var unnamed = (await QueryAsync(alice.User, bob.User.UserId)).Body!["device_keys"]![bob.User.UserId]![bob.User.DeviceId]!;
        Assert.Empty(unnamed["unsigned"]!.AsObject());

        // Only the devices asked for.
        var one = await C.PostAsync($"{V3}/keys/query", new { device_keys = new Dictionary<string, string[]> { [alice.User.UserId] = ["OTHER"] } }, bob.User.AccessToken);
        Assert.Empty(one.Body!["device_keys"]![alice.User.UserId]!.AsObject());

        var sync = await SyncAsync(C, alice.User);
        Assert.Equal(5, sync["device_one_time_keys_count"]!["signed_curve25519"]!.GetValue<int>());
        Assert.Equal("signed_curve25519", Assert.Single(sync["device_unused_fallback_key_types"]!.AsArray())!.GetValue<string>());
    }

    [Fact]
    public async Task Keys_for_another_user_or_device_and_malformed_keys_are_refused_and_unverifiable_signatures_are_stored()
    {
        var alice = await DeviceAsync();
        var bob = await DeviceAsync();
        var forBob = bob.DeviceKeys();
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync($"{V3}/keys/upload", new JsonObject { ["device_keys"] = forBob }.ToJsonString(), alice.User.AccessToken)).Errcode);

        var otherDevice = alice.DeviceKeys();
        otherDevice["device_id"] = "SOMEONEELSE";
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync($"{V3}/keys/upload", new JsonObject { ["device_keys"] = otherDevice }.ToJsonString(), alice.User.AccessToken)).Errcode);

        Assert.Equal("M_BAD_JSON", (await C.PostAsync($"{V3}/keys/upload", new { device_keys = "nope" }, alice.User.AccessToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PostAsync($"{V3}/keys/upload", new { one_time_keys = new { nocolon = new { key = "abc" } } }, alice.User.AccessToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PostAsync($"{V3}/keys/upload", new { one_time_keys = new Dictionary<string, object> { ["signed_curve25519:A"] = 5 } }, alice.User.AccessToken)).Errcode);
        Assert.Equal("M_NOT_JSON", (await C.PostAsync($"{V3}/keys/upload", "{not json", alice.User.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/keys/query", new { }, alice.User.AccessToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PostAsync($"{V3}/keys/query", new { device_keys = new Dictionary<string, object> { [bob.User.UserId] = "all" } }, alice.User.AccessToken)).Errcode);
        Assert.Equal("M_MISSING_PARAM", (await C.PostAsync($"{V3}/keys/claim", new { }, alice.User.AccessToken)).Errcode);
        // A body naming the same key twice is refused rather than read one way or the other.
        var duplicated = $"{{\"one_time_keys\":{{\"{bob.User.UserId}\":{{\"D\":\"signed_curve25519\",\"D\":\"signed_curve25519\"}}}}}}";
        Assert.Equal(400, (await C.PostAsync($"{V3}/keys/claim", duplicated, alice.User.AccessToken)).Status);
        Assert.Equal(401, (await C.PostAsync($"{V3}/keys/upload", new { })).Status);

        // Nothing of the refused uploads was stored.
        Assert.Empty((await QueryAsync(bob.User, alice.User.UserId)).Body!["device_keys"]![alice.User.UserId]!.AsObject());

        // A signature the server cannot verify is the clients' business (they verify device keys): stored as sent, as Synapse does.
        var tampered = alice.DeviceKeys();
        tampered["algorithms"]!.AsArray().Add("m.extra");
        Assert.Equal(200, (await C.PostAsync($"{V3}/keys/upload", new JsonObject { ["device_keys"] = tampered }.ToJsonString(), alice.User.AccessToken)).Status);
        var served = (await QueryAsync(bob.User, alice.User.UserId)).Body!["device_keys"]![alice.User.UserId]![alice.User.DeviceId]!;
        Assert.Contains("m.extra", served["algorithms"]!.AsArray().Select(a => a!.GetValue<string>()));

        // A one-time key ID cannot be reused for a different key; the same key again is accepted.
        var keys = alice.OneTimeKeys(1);
        Assert.Equal(200, (await C.PostAsync($"{V3}/keys/upload", new JsonObject { ["one_time_keys"] = keys.DeepClone() }.ToJsonString(), alice.User.AccessToken)).Status);
        Assert.Equal(200, (await C.PostAsync($"{V3}/keys/upload", new JsonObject { ["one_time_keys"] = keys.DeepClone() }.ToJsonString(), alice.User.AccessToken)).Status);
        var changed = new JsonObject { [keys.First().Key] = alice.SignedKey() };
        Assert.Equal("M_INVALID_PARAM", (await C.PostAsync($"{V3}/keys/upload", new JsonObject { ["one_time_keys"] = changed }.ToJsonString(), alice.User.AccessToken)).Errcode);
    }

    [Fact]
    public async Task A_long_poll_that_times_out_keeps_the_token_and_tells_the_key_counts_a_claim_left()
    {
        var alice = await DeviceAsync();
        var bob = await DeviceAsync();
        await alice.UploadAsync(C, oneTimeKeys: 3, fallbackKey: true);
        var since = (await SyncAsync(C, alice.User))["next_batch"]!.GetValue<string>();

        var quiet = await SyncAsync(C, alice.User, since, timeout: 300);
        Assert.Equal(since, quiet["next_batch"]!.GetValue<string>());
        Assert.Empty(quiet["rooms"]!["join"]!.AsObject());
        Assert.Equal(3, quiet["device_one_time_keys_count"]!["signed_curve25519"]!.GetValue<int>());

        // A claim moves no stream a token covers: the next poll still times out, and counts what is left.
        Assert.Equal(200, (await ClaimAsync(bob.User, alice.User.UserId, alice.User.DeviceId)).Status);
        var after = await SyncAsync(C, alice.User, since, timeout: 300);
        Assert.Equal(since, after["next_batch"]!.GetValue<string>());
        Assert.Equal(2, after["device_one_time_keys_count"]!["signed_curve25519"]!.GetValue<int>());
        Assert.Equal("signed_curve25519", Assert.Single(after["device_unused_fallback_key_types"]!.AsArray())!.GetValue<string>());
    }

    [Fact]
    public async Task One_time_keys_are_claimed_once_then_the_fallback_key_and_unknown_users_give_empty_results()
    {
        var alice = await DeviceAsync();
        var bob = await DeviceAsync();
        await alice.UploadAsync(C, oneTimeKeys: 2, fallbackKey: true);
        Assert.Equal(2, (await SyncAsync(C, alice.User))["device_one_time_keys_count"]!["signed_curve25519"]!.GetValue<int>());

        // Every sync counts what is left: the server keeps the counts between syncs, and a claim changes them.
        var claimedIds = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            var claim = await ClaimAsync(bob.User, alice.User.UserId, alice.User.DeviceId);
            var key = Assert.Single(claim.Body!["one_time_keys"]![alice.User.UserId]![alice.User.DeviceId]!.AsObject());
            Assert.DoesNotContain("fallback", key.Value!.ToJsonString());
            claimedIds.Add(key.Key);
            var sync = await SyncAsync(C, alice.User);
            Assert.Equal(1 - i, sync["device_one_time_keys_count"]!["signed_curve25519"]!.GetValue<int>());
            Assert.Equal("signed_curve25519", Assert.Single(sync["device_unused_fallback_key_types"]!.AsArray())!.GetValue<string>());
        }
        Assert.Equal(2, claimedIds.Distinct().Count());

        // Exhausted: the fallback key, every time, and the sync says it was used.
        for (var i = 0; i < 2; i++)
        {
            var fallback = await ClaimAsync(bob.User, alice.User.UserId, alice.User.DeviceId);
            var key = Assert.Single(fallback.Body!["one_time_keys"]![alice.User.UserId]![alice.User.DeviceId]!.AsObject());
            Assert.True(key.Value!["fallback"]!.GetValue<bool>());
        }
        Assert.Empty((await SyncAsync(C, alice.User))["device_unused_fallback_key_types"]!.AsArray());

        var unknown = await ClaimAsync(bob.User, $"@nobody:{C.ServerName}", "NODEVICE");
        Assert.Equal(200, unknown.Status);
        Assert.Empty(unknown.Body!["one_time_keys"]!.AsObject());
        var unknownDevice = await ClaimAsync(bob.User, alice.User.UserId, "NODEVICE");
        Assert.Empty(unknownDevice.Body!["one_time_keys"]!.AsObject());
    }

    [Fact]
    public async Task Twenty_concurrent_claims_never_hand_out_the_same_one_time_key_twice()
    {
        var alice = await DeviceAsync();
        await alice.UploadAsync(C, oneTimeKeys: 12, fallbackKey: true);
        var claimers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => C.RegisterAsync()));
        var claims = await Task.WhenAll(claimers.Select(claimer => ClaimAsync(claimer, alice.User.UserId, alice.User.DeviceId)));
        var keys = claims.Select(c => Assert.Single(c.Body!["one_time_keys"]![alice.User.UserId]![alice.User.DeviceId]!.AsObject())).ToList();
        var oneTime = keys.Where(k => k.Value!["fallback"] is null).Select(k => k.Key).ToList();
        Assert.Equal(12, oneTime.Count);
        Assert.Equal(12, oneTime.Distinct().Count());
        Assert.Equal(8, keys.Count(k => k.Value!["fallback"] is not null));
    }

    [Fact]
    public async Task Device_list_changes_reach_users_sharing_a_room_through_sync_and_keys_changes()
    {
        var alice = await DeviceAsync();
        var bob = await DeviceAsync();
        var carol = await DeviceAsync();
        var roomId = await CreateRoomAsync(C, alice.User, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.User.AccessToken);
        var since = (await SyncAsync(C, bob.User))["next_batch"]!.GetValue<string>();

        await alice.UploadAsync(C);
        var afterUpload = await SyncAsync(C, bob.User, since);
        Assert.Contains(alice.User.UserId, afterUpload["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
        var changes = await C.GetAsync($"{V3}/keys/changes?from={since}&to={afterUpload["next_batch"]!.GetValue<string>()}", bob.User.AccessToken);
        Assert.Contains(alice.User.UserId, changes.Body!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
        Assert.Equal("M_MISSING_PARAM", (await C.GetAsync($"{V3}/keys/changes?from={since}", bob.User.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.GetAsync($"{V3}/keys/changes?from=yesterday&to={since}", bob.User.AccessToken)).Errcode);
        // Carol shares no room with Alice: her devices are none of Carol's business.
        var carolSince = (await SyncAsync(C, carol.User))["next_batch"]!.GetValue<string>();
        await C.PutAsync($"{V3}/devices/{alice.User.DeviceId}", new { display_name = "renamed" }, alice.User.AccessToken);
        var carolSync = await SyncAsync(C, carol.User, carolSince);
        Assert.DoesNotContain(alice.User.UserId, carolSync["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));

        // Joining makes a user "changed" for those already there; leaving the last shared room makes them "left".
        since = afterUpload["next_batch"]!.GetValue<string>();
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, carol.User.AccessToken);
        var joined = await SyncAsync(C, bob.User, since);
        Assert.Contains(carol.User.UserId, joined["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
        since = joined["next_batch"]!.GetValue<string>();
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/leave", new { }, carol.User.AccessToken);
        var left = await SyncAsync(C, bob.User, since);
        Assert.Contains(carol.User.UserId, left["device_lists"]!["left"]!.AsArray().Select(u => u!.GetValue<string>()));

        // An invited user is "changed" too (clients encrypt for the invited), never "left" by being invited.
        since = left["next_batch"]!.GetValue<string>();
        var dave = await DeviceAsync();
        Assert.Equal(200, (await C.PostAsync($"{V3}/rooms/{R(roomId)}/invite", new { user_id = dave.User.UserId }, alice.User.AccessToken)).Status);
        var invited = await SyncAsync(C, bob.User, since);
        Assert.Contains(dave.User.UserId, invited["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
        Assert.DoesNotContain(dave.User.UserId, invited["device_lists"]!["left"]!.AsArray().Select(u => u!.GetValue<string>()));

        // A deleted device is a change too, and its keys are gone.
        since = invited["next_batch"]!.GetValue<string>();
        var second = await C.LoginAsync(alice.User.UserId, alice.User.Password);
        var secondDevice = new TestDevice(alice.User with { AccessToken = second.Str("access_token"), DeviceId = second.Str("device_id") });
        await secondDevice.UploadAsync(C, oneTimeKeys: 1);
        Assert.Equal(2, (await QueryAsync(bob.User, alice.User.UserId)).Body!["device_keys"]![alice.User.UserId]!.AsObject().Count);
        var deleted = await C.WithPasswordAuthAsync(HttpMethod.Delete, $"{V3}/devices/{secondDevice.User.DeviceId}", new JsonObject(), alice.User);
        Assert.Equal(200, deleted.Status);
        Assert.Single((await QueryAsync(bob.User, alice.User.UserId)).Body!["device_keys"]![alice.User.UserId]!.AsObject());
        Assert.Empty((await ClaimAsync(bob.User, alice.User.UserId, secondDevice.User.DeviceId)).Body!["one_time_keys"]!.AsObject());
        Assert.Contains(alice.User.UserId, (await SyncAsync(C, bob.User, since))["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
    }

    [Fact]
    public async Task Long_polling_sync_wakes_for_a_device_list_change()
    {
        var alice = await DeviceAsync();
        var bob = await DeviceAsync();
        var roomId = await CreateRoomAsync(C, alice.User, new { preset = "public_chat" });
        await C.PostAsync($"{V3}/rooms/{R(roomId)}/join", new { }, bob.User.AccessToken);
        var since = (await SyncAsync(C, bob.User))["next_batch"]!.GetValue<string>();
        var polling = SyncAsync(C, bob.User, since, timeout: 20_000);
        await Task.Delay(300);
        await alice.UploadAsync(C);
        var woken = await polling.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains(alice.User.UserId, woken["device_lists"]!["changed"]!.AsArray().Select(u => u!.GetValue<string>()));
    }

    [Fact]
    public async Task To_device_messages_are_delivered_once_acknowledged_and_kept_until_then()
    {
        var alice = await DeviceAsync();
        var bob = await DeviceAsync();
        var bobSecond = await C.LoginAsync(bob.User.UserId, bob.User.Password);
        var start = (await SyncAsync(C, bob.User))["next_batch"]!.GetValue<string>();

        var body = new { messages = new Dictionary<string, object> { [bob.User.UserId] = new Dictionary<string, object> { [bob.User.DeviceId] = new { secret = "for one device" } } } };
        Assert.Equal(200, (await C.PutAsync($"{V3}/sendToDevice/m.test/txn1", body, alice.User.AccessToken)).Status);
        Assert.Equal(200, (await C.PutAsync($"{V3}/sendToDevice/m.test/txn1", body, alice.User.AccessToken)).Status);
        var everyDevice = new { messages = new Dictionary<string, object> { [bob.User.UserId] = new Dictionary<string, object> { ["*"] = new { secret = "for all" } } } };
        Assert.Equal(200, (await C.PutAsync($"{V3}/sendToDevice/m.test/txn2", everyDevice, alice.User.AccessToken)).Status);

        var first = await SyncAsync(C, bob.User, start);
        var events = first["to_device"]!["events"]!.AsArray();
        Assert.Equal(["for one device", "for all"], events.Select(e => e!["content"]!["secret"]!.GetValue<string>()));
        Assert.All(events, e => Assert.Equal(alice.User.UserId, e!["sender"]!.GetValue<string>()));
        Assert.All(events, e => Assert.Equal("m.test", e!["type"]!.GetValue<string>()));

        // Not acknowledged yet: the same token gets them again. The next token acknowledges them.
        Assert.Equal(2, (await SyncAsync(C, bob.User, start))["to_device"]!["events"]!.AsArray().Count);
        var next = first["next_batch"]!.GetValue<string>();
        Assert.Empty((await SyncAsync(C, bob.User, next))["to_device"]!["events"]!.AsArray());
        Assert.Empty((await SyncAsync(C, bob.User, start))["to_device"]!["events"]!.AsArray());

        // The second device got only the broadcast.
        var second = new LoggedInUser(bob.User.UserId, bobSecond.Str("access_token"), bobSecond.Str("device_id"), bob.User.Password, bob.User.Localpart);
        var secondSync = await SyncAsync(C, second);
        Assert.Equal("for all", Assert.Single(secondSync["to_device"]!["events"]!.AsArray())!["content"]!["secret"]!.GetValue<string>());

        Assert.Equal("M_MISSING_PARAM", (await C.PutAsync($"{V3}/sendToDevice/m.test/txn3", new { }, alice.User.AccessToken)).Errcode);
        Assert.Equal("M_INVALID_PARAM", (await C.PutAsync($"{V3}/sendToDevice/m.test/txn4",
            new { messages = new Dictionary<string, object> { ["not-a-user"] = new Dictionary<string, object> { ["D"] = new { } } } }, alice.User.AccessToken)).Errcode);
        Assert.Equal("M_BAD_JSON", (await C.PutAsync($"{V3}/sendToDevice/m.test/txn5",
            new { messages = new Dictionary<string, object> { [bob.User.UserId] = new Dictionary<string, object> { ["D"] = "text" } } }, alice.User.AccessToken)).Errcode);
        // Messages to unknown users and devices are accepted and dropped.
        Assert.Equal(200, (await C.PutAsync($"{V3}/sendToDevice/m.test/txn6",
            new { messages = new Dictionary<string, object> { [$"@nobody:{C.ServerName}"] = new Dictionary<string, object> { ["D"] = new { } } } }, alice.User.AccessToken)).Status);
    }
}

public sealed class EndToEndEncryptionTestsSqlite(SqliteServer f) : EndToEndEncryptionTests(f), IClassFixture<SqliteServer>;
public sealed class EndToEndEncryptionTestsPostgres(PostgresServer f) : EndToEndEncryptionTests(f), IClassFixture<PostgresServer>;
