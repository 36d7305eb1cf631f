using System.Net;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>A server with password sign-in off (Synapse's <c>password_config.enabled: false</c>).</summary>
public class PasswordlessFixture(string engine) : OAuthServerFixture(engine, "password_config:\n  enabled: false\n");

public sealed class SqlitePasswordlessServer() : PasswordlessFixture("sqlite");

public sealed class PostgresPasswordlessServer() : PasswordlessFixture("postgres");

/// <summary>A server whose registration rate limit is tight (and applies to OAuth client registration too).</summary>
public sealed class SqliteSlowRegistrationOAuthServer() : OAuthServerFixture("sqlite", "rate_limits:\n  registration: { per_second: 0.01, burst: 2 }\n");

public sealed class OAuthClientRegistrationRateLimitTests(SqliteSlowRegistrationOAuthServer fixture) : IClassFixture<SqliteSlowRegistrationOAuthServer>
{
    [Fact]
    public async Task Client_registration_is_rate_limited_per_address_like_account_registration()
    {
        var browser = new OAuthBrowser(fixture.Server.BaseUrl);
        await browser.RegisterClientAsync();
        await browser.RegisterClientAsync();
        var (status, body) = await browser.PostJsonAsync("/_matrix/oauth2/register", new
        {
            client_uri = OAuthBrowser.ClientUri, redirect_uris = new[] { OAuthBrowser.RedirectUri }, token_endpoint_auth_method = "none",
        });
        Assert.Equal(429, status);
        Assert.Equal("invalid_request", body!["error"]!.GetValue<string>());
    }
}

/// <summary>Synapse's <c>password_config.enabled: false</c>: no password flow at <c>/login</c> nor on the OAuth sign-in page.</summary>
public abstract class OAuthPasswordConfigTests(PasswordlessFixture fixture)
{
    private MatrixClient C => fixture.Client;

    [Fact]
    public async Task Without_passwords_login_offers_no_password_flow_and_refuses_one()
    {
        var flows = (await C.GetAsync("/_matrix/client/v3/login")).Body!["flows"]!.AsArray();
        Assert.DoesNotContain(flows, f => f!["type"]!.GetValue<string>() == "m.login.password");
        var user = await C.RegisterAsync();
        var login = await C.LoginAsync(user.Localpart, user.Password);
        Assert.Equal(400, login.Status);
        Assert.Equal("M_UNKNOWN", login.Errcode);
        Assert.Equal("Password login has been disabled.", login.Str("error"));

        Assert.Null((await C.GetAsync("/_matrix/client/v1/auth_metadata")).Body!["prompt_values_supported"]);
        var browser = new OAuthBrowser(fixture.Server.BaseUrl);
        Assert.Equal(HttpStatusCode.Forbidden, (await browser.GetAsync("/_matrix/oauth2/signup")).Status);
        var page = await browser.GetAsync("/_matrix/oauth2/login");
        Assert.Equal(HttpStatusCode.OK, page.Status);
        Assert.DoesNotContain("type=\"password\"", page.Html);
        var posted = await browser.SubmitAsync("/_matrix/oauth2/login", ("csrf", OAuthBrowser.CsrfOf(page.Html)),
            ("username", user.Localpart), ("password", user.Password));
        Assert.Equal(HttpStatusCode.Forbidden, posted.Status);
        Assert.Null(posted.Location);
    }
}

public sealed class OAuthPasswordConfigTestsSqlite(SqlitePasswordlessServer fixture) : OAuthPasswordConfigTests(fixture), IClassFixture<SqlitePasswordlessServer>;

public sealed class OAuthPasswordConfigTestsPostgres(PostgresPasswordlessServer fixture) : OAuthPasswordConfigTests(fixture), IClassFixture<PostgresPasswordlessServer>;

/// <summary>A server whose authorisation requests, codes and device codes live three seconds.</summary>
public class OAuthShortLifetimesFixture(string engine) : OAuthServerFixture(engine, """
    oauth:
      enabled: true
      authorization_code_lifetime_ms: 3000
      device_code_lifetime_ms: 3000

    """);

public sealed class SqliteOAuthShortLifetimesServer() : OAuthShortLifetimesFixture("sqlite");

public sealed class PostgresOAuthShortLifetimesServer() : OAuthShortLifetimesFixture("postgres");

/// <summary>Spec (RFC 6749 §4.1.2, RFC 8628 §3.5): codes are short lived; an expired one gets nothing.</summary>
public abstract class OAuthExpiryTests(OAuthShortLifetimesFixture fixture)
{
    private static readonly TimeSpan PastLifetime = TimeSpan.FromMilliseconds(3500);

    [Fact]
    public async Task Expired_codes_requests_and_device_codes_are_refused()
    {
        var user = await fixture.Client.RegisterAsync();
        var browser = new OAuthBrowser(fixture.Server.BaseUrl);
        var clientId = await browser.RegisterClientAsync();
        var code = await browser.AuthorizeAsync(clientId, "EXPIREDCODE", user);
        var consent = await browser.ReachConsentAsync(OAuthBrowser.AuthorizeUrl(clientId, "EXPIREDREQ"), user);
        var (_, started) = await browser.PostFormAsync("/_matrix/oauth2/device", ("client_id", clientId), ("scope", "urn:matrix:client:api:*"));
        await Task.Delay(PastLifetime);

        var (status, body) = await browser.ExchangeAsync(clientId, code);
        Assert.Equal(400, status);
        Assert.Equal("invalid_grant", body!["error"]!.GetValue<string>());
        var late = await browser.DecideAsync(consent, allow: true);
        Assert.Equal(HttpStatusCode.BadRequest, late.Status);
        Assert.Null(late.Location);
        var (pollStatus, poll) = await browser.PostFormAsync("/_matrix/oauth2/token", ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", started!["device_code"]!.GetValue<string>()), ("client_id", clientId));
        Assert.Equal(400, pollStatus);
        Assert.Equal("expired_token", poll!["error"]!.GetValue<string>());
    }
}

public sealed class OAuthExpiryTestsSqlite(SqliteOAuthShortLifetimesServer fixture) : OAuthExpiryTests(fixture), IClassFixture<SqliteOAuthShortLifetimesServer>;

public sealed class OAuthExpiryTestsPostgres(PostgresOAuthShortLifetimesServer fixture) : OAuthExpiryTests(fixture), IClassFixture<PostgresOAuthShortLifetimesServer>;

/// <summary>With <c>oauth.enabled</c> off (the default) the server says it uses the legacy API, and serves none of the OAuth paths.</summary>
public abstract class OAuthDisabledTests(ServerFixture fixture)
{
    [Fact]
    public async Task Auth_metadata_is_unrecognised_and_no_oauth_path_is_served()
    {
        var c = fixture.Client;
        foreach (var path in new[] { "/_matrix/client/v1/auth_metadata", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata",
                     "/_matrix/client/unstable/org.matrix.msc2965/auth_issuer", "/_matrix/oauth2/authorize", "/.well-known/openid-configuration" })
        {
            var response = await c.GetAsync(path);
            Assert.Equal(404, response.Status);
            Assert.Equal("M_UNRECOGNIZED", response.Errcode);
        }
        Assert.Equal(404, (await c.PostAsync("/_matrix/oauth2/register", new { client_uri = "https://app.example.org/" })).Status);
    }
}

public sealed class OAuthDisabledTestsSqlite(SqliteServer fixture) : OAuthDisabledTests(fixture), IClassFixture<SqliteServer>;

public sealed class OAuthDisabledTestsPostgres(PostgresServer fixture) : OAuthDisabledTests(fixture), IClassFixture<PostgresServer>;
