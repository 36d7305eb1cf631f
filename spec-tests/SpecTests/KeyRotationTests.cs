using Matrix.Federation.Crypto;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec (server-server, publishing keys): after a key rotation the old key stays in <c>old_verify_keys</c>
/// (<c>old_signing_keys</c> in the config), so a server that meets the room later still verifies the events signed with it.
/// </summary>
public sealed class KeyRotationTests
{
    [Fact]
    public async Task Events_signed_before_a_key_rotation_still_verify_for_a_server_that_joins_afterwards()
    {
        await using var databaseA = await TestDatabase.CreateAsync("sqlite");
        await using var a = new HomeserverProcess(databaseA.Yaml, FederationFixture.FederationYaml, addressAsServerName: true);
        await a.StartAsync();
        var clientA = new MatrixClient(a.BaseUrl, a.ServerName);
        var alice = await clientA.RegisterAsync();
        var roomId = await RoomTests.CreateRoomAsync(clientA, alice, new { preset = "public_chat" });
        await RoomTests.SendAsync(clientA, alice, roomId, "signed with the first key");

        // Rotation: the old key file moves aside, a new key is generated at start, the old public key is listed.
        await a.StopAsync();
        var keyFile = Path.Combine(a.DataDir, "signing.key");
        var parts = (await File.ReadAllTextAsync(keyFile)).Trim().Split(' ');
        Assert.True(UnpaddedBase64.TryDecode(parts[2], out var seed));
        var oldKey = Ed25519KeyPair.FromSeed(parts[1], seed);
        File.Move(keyFile, keyFile + ".old");
        await File.AppendAllTextAsync(Path.Combine(a.DataDir, "homeserver.yaml"),
            $"\nold_signing_keys:\n  \"{oldKey.KeyId}\": {{ key: \"{oldKey.PublicKeyBase64}\", expired_ts: {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()} }}\n");
        await a.StartAsync();
        var published = (await clientA.GetAsync("/_matrix/key/v2/server")).Body!;
        Assert.DoesNotContain(oldKey.KeyId, published["verify_keys"]!.AsObject().Select(k => k.Key));
        Assert.Equal(oldKey.PublicKeyBase64, published["old_verify_keys"]![oldKey.KeyId]!["key"]!.GetValue<string>());

        await using var databaseB = await TestDatabase.CreateAsync("sqlite");
        await using var b = new HomeserverProcess(databaseB.Yaml, FederationFixture.FederationYaml, addressAsServerName: true);
        await b.StartAsync();
        var clientB = new MatrixClient(b.BaseUrl, b.ServerName);
        var bob = await clientB.RegisterAsync();
        var join = await clientB.PostAsync($"/_matrix/client/v3/join/{RoomTests.R(roomId)}?server_name={Uri.EscapeDataString(a.ServerName)}", new { }, bob.AccessToken);
        Assert.True(join.Status == 200, join.ToString());
        var history = await clientB.GetAsync($"/_matrix/client/v3/rooms/{RoomTests.R(roomId)}/messages?dir=b&limit=20", bob.AccessToken);
        Assert.Contains(history.Body!["chunk"]!.AsArray(), e => e!["content"]?["body"]?.GetValue<string>() == "signed with the first key");
    }
}
