using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>Spec: "Soft logout" and expiring access tokens: an expired token is M_UNKNOWN_TOKEN with soft_logout true, and refresh recovers.</summary>
public abstract class TokenExpiryTests(string engine) : ServerFixture(engine,
    $"auth:\n  password_hashing:\n    ops_limit: 1\n    mem_limit_kib: 64\n  refreshable_access_token_lifetime_ms: {LifetimeMs}\n")
{
    private const int LifetimeMs = 1500;

    [Fact]
    public async Task Expired_access_token_is_a_soft_logout_and_refresh_recovers_the_session()
    {
        var c = Client;
        var user = await c.RegisterAsync();
        var login = await c.LoginAsync(user.Localpart, user.Password, new { refresh_token = true, device_id = "PHONE" });
        Assert.Equal(LifetimeMs, login.Body!["expires_in_ms"]!.GetValue<long>());

        await Task.Delay(LifetimeMs + 500);
        var expired = await c.GetAsync("/_matrix/client/v3/account/whoami", login.Str("access_token"));
        Assert.Equal(401, expired.Status);
        Assert.Equal("M_UNKNOWN_TOKEN", expired.Errcode);
        Assert.True(expired.Body!["soft_logout"]!.GetValue<bool>());

        var refreshed = await c.PostAsync("/_matrix/client/v3/refresh", new { refresh_token = login.Str("refresh_token") });
        var whoami = await c.GetAsync("/_matrix/client/v3/account/whoami", refreshed.Str("access_token"));
        Assert.Equal("PHONE", whoami.Str("device_id"));

        // Tokens of clients without refresh support never expire.
        await Task.Delay(LifetimeMs + 200);
        Assert.Equal(200, (await c.GetAsync("/_matrix/client/v3/account/whoami", user.AccessToken)).Status);
    }
}

public sealed class TokenExpiryTestsSqlite() : TokenExpiryTests("sqlite");
public sealed class TokenExpiryTestsPostgres() : TokenExpiryTests("postgres");
