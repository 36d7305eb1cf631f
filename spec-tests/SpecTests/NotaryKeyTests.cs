using System.Text.Json.Nodes;
using Matrix.Federation.Crypto;
using Matrix.Federation.Json;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Spec (server-server, querying keys through another server): a server whose own key server cannot be reached is
/// still verified through a configured notary (<c>federation.trusted_key_servers</c>), which must have signed what it
/// vouches for.
/// </summary>
public sealed class NotaryKeyTests : IAsyncLifetime
{
    private TestDatabase _notaryDatabase = null!;
    private TestDatabase _database = null!;
    private HomeserverProcess _notary = null!;
    private HomeserverProcess _server = null!;

    public async Task InitializeAsync()
    {
        _notaryDatabase = await TestDatabase.CreateAsync("sqlite");
        _notary = new HomeserverProcess(_notaryDatabase.Yaml, FederationFixture.FederationYaml, addressAsServerName: true);
        await _notary.StartAsync();
        _database = await TestDatabase.CreateAsync("sqlite");
        _server = new HomeserverProcess(_database.Yaml,
            $"federation:\n  plain_http: true\n  trusted_key_servers:\n    - server_name: \"{_notary.ServerName}\"\n", addressAsServerName: true);
        await _server.StartAsync();
    }

    [Fact]
    public async Task Keys_of_an_unreachable_server_come_from_the_notary()
    {
        await using var remote = new FakeRemoteServer();
        var user = await new MatrixClient(_server.BaseUrl, _server.ServerName).RegisterAsync();
        var profile = $"/_matrix/federation/v1/query/profile?user_id={Uri.EscapeDataString(user.UserId)}";

        // Down, and unknown to the notary too: its request cannot be verified.
        remote.ServesKeys = false;
        Assert.Equal(401, (await remote.SendAsync(_server, HttpMethod.Get, profile)).Status);

        // The notary fetched its keys while it was up; now it is down again.
        remote.ServesKeys = true;
        var notarised = await new MatrixClient(_notary.BaseUrl, _notary.ServerName).GetAsync($"/_matrix/key/v2/query/{remote.ServerName}");
        Assert.Single(notarised.Body!["server_keys"]!.AsArray());
        remote.ServesKeys = false;

        var answer = await remote.SendAsync(_server, HttpMethod.Get, profile);
        Assert.True(answer.Status == 200, answer.ToString());

        // A server that holds the notary to another key than the one it signs with takes nothing from it.
        var notaryKeyId = (await new MatrixClient(_notary.BaseUrl, _notary.ServerName).GetAsync("/_matrix/key/v2/server"))
            .Body!["verify_keys"]!.AsObject().Single().Key;
        var wrongKey = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)).TrimEnd('=');
        await using var database = await TestDatabase.CreateAsync("sqlite");
        await using var strict = new HomeserverProcess(database.Yaml, "federation:\n  plain_http: true\n  trusted_key_servers:\n" +
            $"    - server_name: \"{_notary.ServerName}\"\n      verify_keys: {{ \"{notaryKeyId}\": \"{wrongKey}\" }}\n", addressAsServerName: true);
        await strict.StartAsync();
        var strictUser = await new MatrixClient(strict.BaseUrl, strict.ServerName).RegisterAsync();
        Assert.Equal(401, (await remote.SendAsync(strict, HttpMethod.Get,
            $"/_matrix/federation/v1/query/profile?user_id={Uri.EscapeDataString(strictUser.UserId)}")).Status);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _notary.DisposeAsync();
        await _database.DisposeAsync();
        await _notaryDatabase.DisposeAsync();
    }
}

/// <summary>
/// Spec (server-server, querying keys through another server): the notary answers for a key from its cache while that
/// is valid until the minimum asked for, and a later response of the origin that no longer lists the key (a spurious
/// one, or after a key rotation) does not make it forget the key (SyTest's regression test for Synapse issue 5305).
/// </summary>
public abstract class NotaryKeyCacheTests(ServerFixture fixture)
{
    private static JsonObject SelfSigned(string serverName, Ed25519KeyPair key, long validUntilTs)
    {
        var response = new JsonObject
        {
            ["server_name"] = serverName, ["valid_until_ts"] = validUntilTs,
            ["verify_keys"] = new JsonObject { [key.KeyId] = new JsonObject { ["key"] = key.PublicKeyBase64 } },
            ["old_verify_keys"] = new JsonObject(),
        };
        JsonSigning.Sign(response, serverName, key);
        return response;
    }

    private async Task<JsonArray> QueryAsync(string serverName, string keyId, long minimumValidUntilTs)
    {
        var body = new JsonObject
        {
            ["server_keys"] = new JsonObject { [serverName] = new JsonObject { [keyId] = new JsonObject { ["minimum_valid_until_ts"] = minimumValidUntilTs } } },
        };
        var answer = await fixture.Client.PostAsync("/_matrix/key/v2/query", body.ToJsonString());
        Assert.True(answer.Status == 200, answer.ToString());
        return answer.Body!["server_keys"]!.AsArray();
    }

    [Fact]
    public async Task A_later_response_without_a_key_does_not_erase_the_key_from_the_notary()
    {
        await using var remote = new FakeRemoteServer();
        var key1 = Ed25519KeyPair.Generate("key_1");
        var key1Expiry = DateTimeOffset.UtcNow.AddDays(-1).ToUnixTimeMilliseconds();
        remote.KeyServerAnswer = SelfSigned(remote.ServerName, key1, key1Expiry);
        var first = Assert.Single(await QueryAsync(remote.ServerName, "ed25519:key_1", 0))!;
        Assert.NotNull(first["verify_keys"]!["ed25519:key_1"]);
        Assert.NotNull(first["signatures"]![fixture.Server.ServerName]);

        // Asked for a fresher key_1, the notary refetches; the origin answers with key_2 alone.
        remote.KeyServerAnswer = SelfSigned(remote.ServerName, Ed25519KeyPair.Generate("key_2"), key1Expiry + 1000);
        await QueryAsync(remote.ServerName, "ed25519:key_1", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

        // key_1's response, as valid as asked, is still served, without asking the origin (now down) again.
        remote.ServesKeys = false;
        var third = await QueryAsync(remote.ServerName, "ed25519:key_1", key1Expiry);
        var response = Assert.Single(third)!;
        Assert.NotNull(response["verify_keys"]!["ed25519:key_1"]);
        Assert.Equal(key1Expiry, response["valid_until_ts"]!.GetValue<long>());
    }
}

public sealed class NotaryKeyCacheTestsSqlite(SqliteFederatingServer fixture) : NotaryKeyCacheTests(fixture), IClassFixture<SqliteFederatingServer>;

public sealed class NotaryKeyCacheTestsPostgres(PostgresFederatingServer fixture) : NotaryKeyCacheTests(fixture), IClassFixture<PostgresFederatingServer>;
