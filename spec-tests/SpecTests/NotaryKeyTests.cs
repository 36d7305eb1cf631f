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
