using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// Synapse's shared-secret registration is not rate limited: an operator's script (register_new_matrix_user in a loop)
/// creates accounts as fast as it asks, where open registration from the same address is held back.
/// </summary>
public abstract class SharedSecretRegistrationTests(string engine) : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private HomeserverProcess _server = null!;

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync(engine);
        _server = new HomeserverProcess(_database.Yaml, """
            rate_limits:
              login: { per_second: 1000, burst: 1000 }
              registration: { per_second: 0.001, burst: 1 }
              client_requests: { per_second: 1000, burst: 1000 }
            """);
        await _server.StartAsync();
    }

    [Fact]
    public async Task Shared_secret_registration_is_not_held_back_by_the_registration_rate_limit()
    {
        var c = new MatrixClient(_server.BaseUrl, _server.ServerName);
        for (var i = 0; i < 5; i++)
        {
            var nonce = (await c.GetAsync("/_synapse/admin/v1/register")).Str("nonce");
            var name = MatrixClient.UniqueName("scripted").ToLowerInvariant();
            var registered = await c.PostAsync("/_synapse/admin/v1/register",
                new { nonce, username = name, password = "scripted password", admin = false, mac = RegistrationTests.Mac(nonce, name, "scripted password", "notadmin") });
            Assert.True(registered.Status == 200, registered.ToString());
        }

        // Open registration from the same address is limited (a burst of one).
        var statuses = new List<int>();
        for (var i = 0; i < 3; i++)
            statuses.Add((await c.PostAsync("/_matrix/client/v3/register", new
            {
                username = MatrixClient.UniqueName("open").ToLowerInvariant(), password = "an open password", auth = new { type = "m.login.dummy" },
            })).Status);
        Assert.Contains(429, statuses);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _database.DisposeAsync();
    }
}

public sealed class SharedSecretRegistrationTestsSqlite() : SharedSecretRegistrationTests("sqlite");
public sealed class SharedSecretRegistrationTestsPostgres() : SharedSecretRegistrationTests("postgres");
