using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Rate limiting": 429 M_LIMIT_EXCEEDED with retry_after_ms for login, registration and per-user requests.</summary>
public sealed class RateLimitTests : IAsyncLifetime
{
    private readonly HomeserverProcess _server = new(new SqliteTestDatabase().Yaml, """
        rate_limits:
          login: { per_second: 0.1, burst: 3 }
          registration: { per_second: 1000, burst: 1000 }
          client_requests: { per_second: 0.1, burst: 5 }
        """);

    public Task InitializeAsync() => _server.StartAsync();
    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Login_attempts_and_user_requests_are_limited()
    {
        var c = new MatrixClient(_server.BaseUrl, _server.ServerName);
        var user = await c.RegisterAsync();
        MatrixResponse? limited = null;
        for (var i = 0; i < 5 && limited is null; i++)
        {
            var response = await c.LoginAsync(user.Localpart, "wrong");
            if (response.Status == 429)
                limited = response;
        }
        Assert.NotNull(limited);
        Assert.Equal("M_LIMIT_EXCEEDED", limited!.Errcode);
        Assert.True(limited.Body!["retry_after_ms"]!.GetValue<long>() > 0);
        Assert.Equal((limited.Body!["retry_after_ms"]!.GetValue<long>() + 999) / 1000, (long)limited.Raw.Headers.RetryAfter!.Delta!.Value.TotalSeconds);

        var statuses = new List<int>();
        for (var i = 0; i < 8; i++)
            statuses.Add((await c.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
        Assert.Contains(200, statuses);
        Assert.Contains(429, statuses);
    }
}
