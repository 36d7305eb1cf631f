using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// matrix-js-sdk's own OIDC helpers against the OAuth 2.0 API, with headless Chromium on the sign-in and consent pages
/// (spec-tests/js/oauth-scenario.mjs): code grant, sync and send, refresh, device grant, revocation.
/// </summary>
public abstract class OAuthScenarioTests(OAuthServerFixture fixture)
{
    [Fact]
    public async Task Matrix_js_sdk_signs_in_syncs_refreshes_links_a_device_and_revokes()
    {
        var user = await fixture.Client.RegisterAsync();
        await NodeScenario.RunAsync("oauth-scenario.mjs", [fixture.Server.BaseUrl, user.Localpart, user.Password], TimeSpan.FromMinutes(3));
    }
}

public sealed class OAuthScenarioTestsSqlite(SqliteOAuthServer fixture) : OAuthScenarioTests(fixture), IClassFixture<SqliteOAuthServer>;

public sealed class OAuthScenarioTestsPostgres(PostgresOAuthServer fixture) : OAuthScenarioTests(fixture), IClassFixture<PostgresOAuthServer>;
