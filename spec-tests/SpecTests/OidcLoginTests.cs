using System.Buffers.Text;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Web;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>
/// A homeserver signing people in through upstream OpenID Connect providers (<c>oidc_providers</c>), all served by one
/// real oidc-provider: "company" (discovery, client secret, claims from the ID token, an attribute requirement),
/// "partners" (private_key_jwt, PKCE always, claims from userinfo, existing accounts linked, no new accounts) and
/// "manual" (endpoints configured, client_secret_post, no PKCE).
/// </summary>
public class OidcServerFixture(string engine) : IAsyncLifetime
{
    private TestDatabase? _database;
    public HomeserverProcess Server { get; private set; } = null!;
    public TestOidcProvider Provider { get; private set; } = null!;
    public MatrixClient Client => new(Server.BaseUrl, Server.ServerName);
    /// <summary>The provider's accounts: who they are there (their claims).</summary>
    public static readonly JsonObject Accounts = new()
    {
        ["alice"] = new JsonObject
        {
            ["preferred_username"] = "Alice.Smith", ["name"] = "Alice Smith", ["email"] = "Alice.Smith@Example.com",
            ["groups"] = new JsonArray("staff", "sales"),
        },
        ["bob"] = new JsonObject { ["preferred_username"] = "bob", ["name"] = "Bob", ["groups"] = new JsonArray("contractors") },
        ["taken"] = new JsonObject { ["preferred_username"] = "oidctaken", ["name"] = "Second Taken", ["groups"] = new JsonArray("staff") },
        ["carol"] = new JsonObject { ["email"] = "oidccarol@partner.example", ["name"] = "Carol" },
        ["dave"] = new JsonObject { ["email"] = "oidcdave@partner.example", ["name"] = "Dave" },
        ["erin"] = new JsonObject { ["preferred_username"] = "erin", ["groups"] = new JsonArray("staff") },
        ["grace"] = new JsonObject { ["preferred_username"] = "grace", ["name"] = "Grace", ["groups"] = new JsonArray("staff") },
        ["frank"] = new JsonObject { ["preferred_username"] = "frank", ["groups"] = new JsonArray("staff") },
    };

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync(engine);
        using var partnerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var publicKey = partnerKey.ExportParameters(false);
        var jwk = new JsonObject
        {
            ["kty"] = "EC", ["crv"] = "P-256", ["kid"] = "partners-1", ["use"] = "sig",
            ["x"] = Base64Url.EncodeToString(publicKey.Q.X), ["y"] = Base64Url.EncodeToString(publicKey.Q.Y),
        };
        // The server's port is known before it starts: the provider must know its callback URL.
        Server = new HomeserverProcess(_database.Yaml);
        var callback = $"http://{Server.ServerName}:{Server.Port}/_synapse/client/oidc/callback";
        Provider = await TestOidcProvider.StartAsync(new JsonArray(
            new JsonObject { ["client_id"] = "hs-company", ["client_secret"] = "company-secret", ["redirect_uris"] = new JsonArray(callback) },
            new JsonObject
            {
                ["client_id"] = "hs-partners", ["token_endpoint_auth_method"] = "private_key_jwt", ["token_endpoint_auth_signing_alg"] = "ES256",
                ["jwks"] = new JsonObject { ["keys"] = new JsonArray(jwk) }, ["redirect_uris"] = new JsonArray(callback),
            },
            new JsonObject
            {
                ["client_id"] = "hs-manual", ["client_secret"] = "manual-secret", ["token_endpoint_auth_method"] = "client_secret_post",
                ["redirect_uris"] = new JsonArray(callback),
            }), Accounts.DeepClone().AsObject());
        var issuer = Provider.Issuer;
        var pem = string.Join("\n", partnerKey.ExportPkcs8PrivateKeyPem().Split('\n').Select(line => "          " + line));
        Server.UpdateConfig($$$"""
            auth:
              password_hashing:
                ops_limit: 1
                mem_limit_kib: 64
            oauth:
              enabled: true
            oidc_providers:
              - idp_id: company
                idp_name: Company sign-in
                idp_icon: mxc://spec.test/company-logo
                idp_brand: keycloak
                issuer: {{{issuer}}}
                skip_verification: true
                client_id: hs-company
                client_secret: company-secret
                scopes: [openid, profile, email, groups]
                user_mapping_provider:
                  config:
                    localpart_template: "{{ user.preferred_username }}"
                    display_name_template: "{{ user.name }}"
                    email_template: "{{ user.email }}"
                attribute_requirements:
                  - attribute: groups
                    value: staff
              - idp_id: partners
                idp_name: Partner portal
                issuer: {{{issuer}}}
                skip_verification: true
                client_id: hs-partners
                client_auth_method: private_key_jwt
                client_secret_jwt_key:
                  key: |
            {{{pem}}}
                  jwt_header:
                    alg: ES256
                    kid: partners-1
                pkce_method: always
                scopes: [openid, email, profile]
                user_profile_method: userinfo_endpoint
                allow_existing_users: true
                enable_registration: false
                user_mapping_provider:
                  config:
                    localpart_template: "{{ user.email | localpart_from_email }}"
              - idp_id: manual
                idp_name: Manual
                discover: false
                skip_verification: true
                issuer: {{{issuer}}}
                authorization_endpoint: {{{issuer}}}/auth
                token_endpoint: {{{issuer}}}/token
                userinfo_endpoint: {{{issuer}}}/me
                jwks_uri: {{{issuer}}}/jwks
                client_id: hs-manual
                client_secret: manual-secret
                client_auth_method: client_secret_post
                pkce_method: never
                scopes: [openid, profile]
              - idp_id: gone
                idp_name: Unreachable
                issuer: http://127.0.0.1:1/
                skip_verification: true
                client_id: nobody
                client_secret: nothing

            """);
        await Server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Provider.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
    }
}

public sealed class SqliteOidcServer() : OidcServerFixture("sqlite");

public sealed class PostgresOidcServer() : OidcServerFixture("postgres");

/// <summary>
/// Spec: "Client login via SSO" (<c>m.login.sso</c> with <c>identity_providers</c>, <c>/login/sso/redirect/{idpId}</c>,
/// login tokens, the UIA fallback) through upstream OpenID Connect providers configured as Synapse's
/// <c>oidc_providers</c>, with the sign-in done in headless Chromium on the provider's real pages.
/// </summary>
public abstract class OidcLoginTests(OidcServerFixture fixture)
{
    private const string ClientUrl = "https://client.example/app?from=oidc";
    private static readonly HttpClient NoRedirects = new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false });
    private MatrixClient C => fixture.Client;

    private string StartUrl(string idp, string clientUrl = ClientUrl) =>
        $"http://{fixture.Server.ServerName}:{fixture.Server.Port}/_matrix/client/v3/login/sso/redirect/oidc-{idp}?redirectUrl={Uri.EscapeDataString(clientUrl)}";

    private sealed record PageSeen(string Url, int Status, string Text, string? ContinueHref);

    /// <summary>A sign-in in a fresh headless Chromium: from <paramref name="start"/> through the provider's pages back to ours.</summary>
    private async Task<PageSeen> BrowserSignInAsync(string start, string login, bool confirm = false)
    {
        var args = new JsonObject { ["start"] = start, ["login"] = login, ["password"] = "any", ["serverHost"] = fixture.Server.ServerName, ["confirm"] = confirm };
        var output = await NodeScenario.RunAsync("sso-browser.mjs", [args.ToJsonString()], TimeSpan.FromMinutes(2));
        var line = output.Split('\n').Single(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        var result = JsonNode.Parse(line["RESULT ".Length..])!;
        return new PageSeen(result["url"]!.GetValue<string>(), result["status"]!.GetValue<int>(), result["text"]!.GetValue<string>(),
            result["continueHref"]?.GetValue<string>());
    }

    private static string LoginTokenOf(PageSeen page)
    {
        Assert.True(page.Status == 200, $"{page.Status} {page.Text}");
        Assert.StartsWith(ClientUrl + "&loginToken=", page.ContinueHref);
        return Uri.UnescapeDataString(page.ContinueHref![(ClientUrl.Length + "&loginToken=".Length)..]);
    }

    private async Task<MatrixResponse> LoginAsync(PageSeen page, string? deviceId = null)
    {
        var login = await C.PostAsync("/_matrix/client/v3/login", new { type = "m.login.token", token = LoginTokenOf(page), device_id = deviceId });
        Assert.True(login.Status == 200, login.ToString());
        return login;
    }

    [Fact]
    public async Task Login_flows_list_every_provider_with_its_icon_and_brand()
    {
        var flows = (await C.GetAsync("/_matrix/client/v3/login")).Body!["flows"]!.AsArray();
        var providers = flows.Single(f => f!["type"]!.GetValue<string>() == "m.login.sso")!["identity_providers"]!.AsArray();
        Assert.Equal(["oidc-company", "oidc-partners", "oidc-manual", "oidc-gone"], providers.Select(p => p!["id"]!.GetValue<string>()));
        Assert.Equal("Company sign-in", providers[0]!["name"]!.GetValue<string>());
        Assert.Equal("mxc://spec.test/company-logo", providers[0]!["icon"]!.GetValue<string>());
        Assert.Equal("keycloak", providers[0]!["brand"]!.GetValue<string>());
        Assert.Contains(flows, f => f!["type"]!.GetValue<string>() == "m.login.token");
        Assert.DoesNotContain(flows, f => f!["type"]!.GetValue<string>() == "m.login.cas");

        // Without an idp, the browser picks one on a page of links.
        var picker = await NoRedirects.GetAsync($"{fixture.Server.BaseUrl}/_matrix/client/v3/login/sso/redirect?redirectUrl={Uri.EscapeDataString(ClientUrl)}");
        Assert.Equal(HttpStatusCode.OK, picker.StatusCode);
        var html = await picker.Content.ReadAsStringAsync();
        Assert.Contains("Continue with Partner portal", html);
        Assert.Contains("login/sso/redirect/oidc-manual?redirectUrl=", html);
    }

    [Fact]
    public async Task A_first_sign_in_creates_the_mapped_account_with_its_name_and_email_and_the_next_finds_it()
    {
        var page = await BrowserSignInAsync(StartUrl("company"), "alice");
        Assert.Contains("@alice.smith:spec.test", page.Text);
        var login = await LoginAsync(page, "OIDCDEVICE");
        Assert.Equal("@alice.smith:spec.test", login.Str("user_id"));
        Assert.Equal("OIDCDEVICE", login.Str("device_id"));
        var token = login.Str("access_token");
        Assert.Equal("Alice Smith", (await C.GetAsync("/_matrix/client/v3/profile/@alice.smith:spec.test/displayname")).Str("displayname"));
        var threepids = (await C.GetAsync("/_matrix/client/v3/account/3pid", token)).Body!["threepids"]!.AsArray();
        Assert.Equal("alice.smith@example.com", Assert.Single(threepids)!["address"]!.GetValue<string>());

        // Linked by the provider's subject: the same account, although its localpart is now taken.
        var again = await LoginAsync(await BrowserSignInAsync(StartUrl("company"), "alice"));
        Assert.Equal("@alice.smith:spec.test", again.Str("user_id"));
    }

    [Fact]
    public async Task A_taken_localpart_gets_a_number_and_a_provider_allowing_existing_users_links_them()
    {
        var existing = await C.RegisterAsync("oidctaken");
        var numbered = await LoginAsync(await BrowserSignInAsync(StartUrl("company"), "taken"));
        Assert.Equal("@oidctaken1:spec.test", numbered.Str("user_id"));

        // partners: private_key_jwt, PKCE, claims from userinfo, localpart from the email address.
        var carol = await C.RegisterAsync("oidccarol");
        var linked = await LoginAsync(await BrowserSignInAsync(StartUrl("partners"), "carol"));
        Assert.Equal(carol.UserId, linked.Str("user_id"));
        Assert.NotEqual(existing.UserId, numbered.Str("user_id"));
    }

    [Fact]
    public async Task A_missing_attribute_or_an_account_the_provider_may_not_create_is_refused_with_a_page()
    {
        var bob = await BrowserSignInAsync(StartUrl("company"), "bob");
        Assert.Equal(403, bob.Status);
        Assert.Contains("lacks what this server requires (groups)", bob.Text);
        Assert.Null(bob.ContinueHref);
        Assert.Equal(404, (await C.GetAsync("/_matrix/client/v3/profile/@bob:spec.test")).Status);

        var dave = await BrowserSignInAsync(StartUrl("partners"), "dave");
        Assert.Equal(403, dave.Status);
        Assert.Contains("creates no accounts", dave.Text);
        Assert.Equal(404, (await C.GetAsync("/_matrix/client/v3/profile/@oidcdave:spec.test")).Status);
    }

    [Theory]
    [InlineData("audience")]
    [InlineData("issuer")]
    [InlineData("nonce")]
    [InlineData("expired")]
    [InlineData("signature")]
    public async Task An_id_token_that_fails_a_check_signs_nobody_in(string tamper)
    {
        await fixture.Provider.TamperAsync(tamper);
        try
        {
            var page = await BrowserSignInAsync(StartUrl("company"), "frank");
            Assert.Equal(401, page.Status);
            Assert.Contains("Single sign-on failed", page.Text);
            Assert.Null(page.ContinueHref);
        }
        finally
        {
            await fixture.Provider.TamperAsync("none");
        }
        Assert.Equal(404, (await C.GetAsync("/_matrix/client/v3/profile/@frank:spec.test")).Status);
    }

    [Fact]
    public async Task Configured_endpoints_without_discovery_or_pkce_sign_in()
    {
        var redirect = await NoRedirects.GetAsync(StartUrl("manual").Replace($"{fixture.Server.ServerName}:", "127.0.0.1:"));
        Assert.True(redirect.StatusCode == HttpStatusCode.Redirect, fixture.Server.Output);
        var authorize = HttpUtility.ParseQueryString(redirect.Headers.Location!.Query);
        Assert.StartsWith($"{fixture.Provider.Issuer}/auth?", redirect.Headers.Location!.ToString());
        Assert.Null(authorize["code_challenge"]);

        var login = await LoginAsync(await BrowserSignInAsync(StartUrl("manual"), "erin"));
        Assert.Equal("@erin:spec.test", login.Str("user_id"));
    }

    /// <summary>Our redirect to the company provider: its query, and the state cookie set for the callback.</summary>
    private async Task<(System.Collections.Specialized.NameValueCollection Query, string Cookie)> StartAsync()
    {
        var redirect = await NoRedirects.GetAsync(StartUrl("company").Replace($"{fixture.Server.ServerName}:", "127.0.0.1:"));
        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        var cookie = Assert.Single(redirect.Headers.GetValues("Set-Cookie"));
        Assert.Contains("httponly", cookie.ToLowerInvariant());
        Assert.Contains("samesite=lax", cookie.ToLowerInvariant());
        return (HttpUtility.ParseQueryString(redirect.Headers.Location!.Query), cookie.Split(';')[0]);
    }

    private async Task<(int Status, string Text)> CallbackAsync(string query, string? cookie)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{fixture.Server.BaseUrl}/_synapse/client/oidc/callback?{query}");
        if (cookie is not null)
            request.Headers.Add("Cookie", cookie);
        var response = await NoRedirects.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_callback_needs_this_browsers_live_state_once_and_reports_the_providers_refusal()
    {
        var (authorize, cookie) = await StartAsync();
        Assert.Equal("code", authorize["response_type"]);
        Assert.Equal("hs-company", authorize["client_id"]);
        Assert.Equal($"http://spec.test:{fixture.Server.Port}/_synapse/client/oidc/callback", authorize["redirect_uri"]);
        Assert.Equal("S256", authorize["code_challenge_method"]);
        Assert.False(string.IsNullOrEmpty(authorize["nonce"]));
        Assert.Equal("openid profile email groups", authorize["scope"]);
        var state = authorize["state"]!;

        var noCookie = await CallbackAsync($"state={Uri.EscapeDataString(state)}&code=anything", null);
        Assert.Equal(400, noCookie.Status);
        Assert.Contains("not started in this browser", noCookie.Text);
        var otherState = await CallbackAsync("state=forged&code=anything", "oidc_session=forged");
        Assert.Equal(400, otherState.Status);
        var missingState = await CallbackAsync("code=anything", cookie);
        Assert.Equal(400, missingState.Status);

        var denied = await CallbackAsync($"state={Uri.EscapeDataString(state)}&error=access_denied&error_description=User+said+no", cookie);
        Assert.Equal(401, denied.Status);
        Assert.Contains("did not sign you in: access_denied User said no", WebUtility.HtmlDecode(denied.Text));
        var reused = await CallbackAsync($"state={Uri.EscapeDataString(state)}&code=anything", cookie);
        Assert.Equal(400, reused.Status);
        Assert.Contains("expired or was already used", reused.Text);

        // A code the provider never issued.
        var (second, secondCookie) = await StartAsync();
        var badCode = await CallbackAsync($"state={Uri.EscapeDataString(second["state"]!)}&code=made-up", secondCookie);
        Assert.Equal(401, badCode.Status);
        Assert.Contains("invalid_grant", badCode.Text);
    }

    [Fact]
    public async Task An_unreachable_provider_or_an_unknown_one_is_an_error_not_a_redirect()
    {
        var gone = await C.GetAsync($"/_matrix/client/v3/login/sso/redirect/oidc-gone?redirectUrl={Uri.EscapeDataString(ClientUrl)}");
        Assert.Equal(502, gone.Status);
        Assert.Equal("M_UNKNOWN", gone.Errcode);
        var unknown = await C.GetAsync($"/_matrix/client/v3/login/sso/redirect/oidc-nope?redirectUrl={Uri.EscapeDataString(ClientUrl)}");
        Assert.Equal(404, unknown.Status);
        var cas = await C.GetAsync($"/_matrix/client/v3/login/cas/redirect?redirectUrl={Uri.EscapeDataString(ClientUrl)}");
        Assert.Equal(404, cas.Status);
    }

    [Fact]
    public async Task The_oauth_sign_in_page_continues_with_each_provider_and_its_sign_in_authorises_the_client()
    {
        var oauth = new OAuthBrowser(fixture.Server.BaseUrl);
        var clientId = await oauth.RegisterClientAsync();
        var login = await oauth.GetAsync("/_matrix/oauth2/login?return_to=%2F_matrix%2Foauth2%2Faccount");
        Assert.Contains("Continue with Company sign-in", login.Html);
        Assert.Contains("/_matrix/oauth2/upstream/oidc-partners?return_to=%2F_matrix%2Foauth2%2Faccount", WebUtility.HtmlDecode(login.Html));
        var unknown = await oauth.GetAsync("/_matrix/oauth2/upstream/oidc-nope?return_to=%2F_matrix%2Foauth2%2Faccount");
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);

        var authorize = $"http://{fixture.Server.ServerName}:{fixture.Server.Port}{OAuthBrowser.AuthorizeUrl(clientId, "OAUTHSSO")}";
        var args = new JsonObject
        {
            ["start"] = authorize, ["login"] = "grace", ["password"] = "any", ["serverHost"] = fixture.Server.ServerName,
            ["clickLink"] = "Continue with Company sign-in", ["consentFor"] = OAuthBrowser.RedirectUri,
        };
        var output = await NodeScenario.RunAsync("sso-browser.mjs", [args.ToJsonString()], TimeSpan.FromMinutes(2));
        var url = JsonNode.Parse(output.Split('\n').Single(l => l.StartsWith("RESULT ", StringComparison.Ordinal))["RESULT ".Length..])!["url"]!.GetValue<string>();
        Assert.StartsWith(OAuthBrowser.RedirectUri + "?", url);
        var code = OAuthBrowser.QueryOf(url)["code"];

        var (status, tokens) = await oauth.ExchangeAsync(clientId, code);
        Assert.True(status == 200, tokens?.ToJsonString());
        var whoami = await C.GetAsync("/_matrix/client/v3/account/whoami", tokens!["access_token"]!.GetValue<string>());
        Assert.Equal("@grace:spec.test", whoami.Str("user_id"));
        Assert.Equal("OAUTHSSO", whoami.Str("device_id"));
    }

    [Fact]
    public async Task Sso_is_the_user_interactive_auth_stage_of_an_account_without_a_password()
    {
        var first = await LoginAsync(await BrowserSignInAsync(StartUrl("manual"), "erin"));
        await LoginAsync(await BrowserSignInAsync(StartUrl("manual"), "erin"), "DOOMED");
        var started = await C.DeleteAsync("/_matrix/client/v3/devices/DOOMED", new { }, first.Str("access_token"));
        Assert.Equal(401, started.Status);
        var flows = started.Body!["flows"]!.AsArray().Select(f => string.Join(",", f!["stages"]!.AsArray().Select(s => s!.GetValue<string>())));
        Assert.Equal(["m.login.sso"], flows);
        var session = started.Str("session");

        var fallback = $"http://spec.test:{fixture.Server.Port}/_matrix/client/v3/auth/m.login.sso/fallback/web?session={session}";
        var done = await BrowserSignInAsync(fallback, "erin", confirm: true);
        Assert.Equal(200, done.Status);
        Assert.Contains("Authentication complete", done.Text);

        var deleted = await C.DeleteAsync("/_matrix/client/v3/devices/DOOMED", new { auth = new { session } }, first.Str("access_token"));
        Assert.True(deleted.Status == 200, deleted.ToString());
    }
}

public sealed class SqliteOidcLoginTests(SqliteOidcServer fixture) : OidcLoginTests(fixture), IClassFixture<SqliteOidcServer>;

public sealed class PostgresOidcLoginTests(PostgresOidcServer fixture) : OidcLoginTests(fixture), IClassFixture<PostgresOidcServer>;
