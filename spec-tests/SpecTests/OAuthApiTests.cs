using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

public sealed class SqliteOAuthServer() : OAuthServerFixture("sqlite");

public sealed class PostgresOAuthServer() : OAuthServerFixture("postgres");

/// <summary>
/// Spec: "OAuth 2.0 API": server metadata discovery, dynamic client registration, the authorisation code grant with
/// PKCE, the refresh token grant, token revocation, the device authorisation grant, and the browser pages with their
/// CSRF protection; every refusal in OAuth's error shape.
/// </summary>
public abstract class OAuthApiTests(OAuthServerFixture fixture)
{
    private MatrixClient C => fixture.Client;
    private string Base => fixture.Server.BaseUrl;
    private OAuthBrowser NewBrowser() => new(Base);

    private static void AssertOAuthError(int status, JsonNode? body, int expectedStatus, string expectedError)
    {
        Assert.True(status == expectedStatus && body?["error"]?.GetValue<string>() == expectedError,
            $"expected {expectedStatus} {expectedError}, got {status} {body?.ToJsonString()}");
        Assert.NotNull(body!["error_description"]);
    }

    private async Task<(LoggedInUser User, OAuthBrowser Browser, string ClientId, JsonNode Tokens, string DeviceId)> SignInAsync(string scopeExtra = "openid")
    {
        var user = await C.RegisterAsync();
        var browser = NewBrowser();
        var clientId = await browser.RegisterClientAsync();
        var deviceId = "DEV" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        var code = await browser.AuthorizeAsync(clientId, deviceId, user, scopeExtra);
        var (status, tokens) = await browser.ExchangeAsync(clientId, code);
        Assert.True(status == 200, tokens?.ToJsonString());
        return (user, browser, clientId, tokens!, deviceId);
    }

    [Fact]
    public async Task Metadata_is_served_at_every_discovery_path_with_absolute_endpoints()
    {
        var stable = await C.GetAsync("/_matrix/client/v1/auth_metadata");
        Assert.Equal(200, stable.Status);
        var body = stable.Body!;
        Assert.Equal(Base + "/", body["issuer"]!.GetValue<string>());
        foreach (var endpoint in new[] { "authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint",
                     "device_authorization_endpoint", "jwks_uri", "userinfo_endpoint", "account_management_uri" })
            Assert.StartsWith(Base + "/_matrix/oauth2/", body[endpoint]!.GetValue<string>());
        Assert.Equal(["code"], body["response_types_supported"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(["query", "fragment"], body["response_modes_supported"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(["S256"], body["code_challenge_methods_supported"]!.AsArray().Select(v => v!.GetValue<string>()));
        var grants = body["grant_types_supported"]!.AsArray().Select(v => v!.GetValue<string>()).ToList();
        Assert.Contains("authorization_code", grants);
        Assert.Contains("refresh_token", grants);
        Assert.Contains("urn:ietf:params:oauth:grant-type:device_code", grants);
        Assert.Contains("org.matrix.cross_signing_reset", body["account_management_actions_supported"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(["create"], body["prompt_values_supported"]!.AsArray().Select(v => v!.GetValue<string>()));

        foreach (var path in new[] { "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata", "/.well-known/openid-configuration" })
            Assert.Equal(body.ToJsonString(), (await C.GetAsync(path)).Body!.ToJsonString());
        Assert.Equal(Base + "/", (await C.GetAsync("/_matrix/client/unstable/org.matrix.msc2965/auth_issuer")).Str("issuer"));
        var key = (await C.GetAsync("/_matrix/oauth2/keys.json")).Body!["keys"]![0]!;
        Assert.Equal("RSA", key["kty"]!.GetValue<string>());
        Assert.Equal("RS256", key["alg"]!.GetValue<string>());
    }

    public static TheoryData<string, string> RefusedRegistrations => new()
    {
        { """{"redirect_uris":["https://app.example.org/cb"]}""", "invalid_client_metadata" },
        { """{"client_uri":"http://app.example.org/","redirect_uris":["https://app.example.org/cb"]}""", "invalid_client_metadata" },
        { """{"client_uri":"https://user:pw@app.example.org/","redirect_uris":["https://app.example.org/cb"]}""", "invalid_client_metadata" },
        { """{"client_uri":"not a url","redirect_uris":["https://app.example.org/cb"]}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","application_type":"desktop","redirect_uris":["https://app.example.org/cb"]}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","token_endpoint_auth_method":"client_secret_basic","redirect_uris":["https://app.example.org/cb"]}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://app.example.org/cb"],"logo_uri":"https://other.example/logo.png"}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://app.example.org/cb"],"tos_uri":"http://app.example.org/tos"}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://app.example.org/cb"],"policy_uri#fr":"https://evil.example/p"}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://app.example.org/cb"],"client_name":5}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://app.example.org/cb"],"id_token_signed_response_alg":"HS256"}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","response_types":["token"],"redirect_uris":["https://app.example.org/cb"]}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/"}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":"https://app.example.org/cb"}""", "invalid_client_metadata" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://app.example.org/cb#fragment"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["http://app.example.org/cb"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://other.example/cb"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://evilapp.example.org.evil/cb"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["https://u:p@app.example.org/cb"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["http://localhost/"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://app.example.org/","redirect_uris":["org.example.app:/cb"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://example.com/","application_type":"native","redirect_uris":["example:/callback"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://example.com/","application_type":"native","redirect_uris":["com.example.app://callback"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://example.com/","application_type":"native","redirect_uris":["https://localhost/callback"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://example.com/","application_type":"native","redirect_uris":["http://localhost:1234/callback"]}""", "invalid_redirect_uri" },
        { """{"client_uri":"https://example.com/","application_type":"native","redirect_uris":["http://example.com/callback"]}""", "invalid_redirect_uri" },
        { """[1,2]""", "invalid_request" },
        { """not json""", "invalid_request" },
    };

    [Theory]
    [MemberData(nameof(RefusedRegistrations))]
    public async Task Registration_refuses_metadata_against_the_rules(string body, string error)
    {
        var response = await NewBrowser().Http.PostAsync("/_matrix/oauth2/register", new StringContent(body, Encoding.UTF8, "application/json"));
        AssertOAuthError((int)response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync()), 400, error);
    }

    [Fact]
    public async Task Registration_accepts_web_and_native_clients_and_keeps_their_metadata()
    {
        var browser = NewBrowser();
        var (status, web) = await browser.PostJsonAsync("/_matrix/oauth2/register", new Dictionary<string, object>
        {
            ["client_name"] = "My App", ["client_name#fr"] = "Mon application", ["client_uri"] = "https://example.com/",
            ["logo_uri"] = "https://example.com/logo.png", ["tos_uri#fr"] = "https://example.com/fr/tos.html",
            ["policy_uri"] = "https://cdn.example.com/policy.html",
            ["redirect_uris"] = new[] { "https://app.example.com/callback", "https://example.com:5173/?query=value" },
            ["token_endpoint_auth_method"] = "none", ["response_types"] = new[] { "code" },
            ["grant_types"] = new[] { "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange" },
            ["application_type"] = "web",
        });
        Assert.True(status == 201, web?.ToJsonString());
        Assert.False(string.IsNullOrEmpty(web!["client_id"]!.GetValue<string>()));
        Assert.Equal("Mon application", web["client_name#fr"]!.GetValue<string>());
        Assert.Equal("https://example.com/fr/tos.html", web["tos_uri#fr"]!.GetValue<string>());
        Assert.Equal(["authorization_code", "refresh_token"], web["grant_types"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal("none", web["token_endpoint_auth_method"]!.GetValue<string>());

        var (nativeStatus, native) = await browser.PostJsonAsync("/_matrix/oauth2/register", new
        {
            client_uri = "https://example.com/", application_type = "native",
            redirect_uris = new[] { "com.example.app:/callback", "com.example:/", "com.example:callback", "http://localhost/callback",
                "http://127.0.0.1/callback", "http://[::1]/callback" },
        });
        Assert.True(nativeStatus == 201, native?.ToJsonString());
        Assert.Equal("native", native!["application_type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Authorization_errors_go_to_a_trusted_redirect_uri_only()
    {
        var browser = NewBrowser();
        var clientId = await browser.RegisterClientAsync();
        var good = OAuthBrowser.AuthorizeUrl(clientId, "DEVICEAAAA");

        var unknownClient = await browser.GetAsync(good.Replace(clientId, "nosuchclient"));
        Assert.Equal(HttpStatusCode.BadRequest, unknownClient.Status);
        Assert.Null(unknownClient.Location);
        Assert.Contains("<h1>", unknownClient.Html);
        var badRedirect = await browser.GetAsync(good.Replace(Uri.EscapeDataString(OAuthBrowser.RedirectUri), Uri.EscapeDataString("https://app.example.org/other")));
        Assert.Equal(HttpStatusCode.BadRequest, badRedirect.Status);
        Assert.Null(badRedirect.Location);
        var missingRedirect = await browser.GetAsync(good.Replace("redirect_uri=", "x="));
        Assert.Null(missingRedirect.Location);

        async Task<Dictionary<string, string>> ErrorOf(string url, string separator = "?")
        {
            var page = await browser.GetAsync(url);
            Assert.Equal(HttpStatusCode.Redirect, page.Status);
            Assert.StartsWith(OAuthBrowser.RedirectUri + separator, page.Location);
            var query = OAuthBrowser.QueryOf(page.Location!);
            Assert.Equal("st4te", query["state"]);
            Assert.True(query.ContainsKey("error_description"));
            return query;
        }
        Assert.Equal("invalid_request", (await ErrorOf(good.Replace("&code_challenge_method=S256", "")))["error"]);
        Assert.Equal("invalid_request", (await ErrorOf(good.Replace("code_challenge_method=S256", "code_challenge_method=plain")))["error"]);
        Assert.Equal("invalid_request", (await ErrorOf(good.Replace("&code_challenge=", "&x=")))["error"]);
        Assert.Equal("unsupported_response_type", (await ErrorOf(good.Replace("response_type=code", "response_type=token")))["error"]);
        Assert.Equal("invalid_scope", (await ErrorOf(good.Replace("urn%3Amatrix%3Aclient%3Aapi%3A%2A", "profile")))["error"]);
        Assert.Equal("invalid_scope", (await ErrorOf(good.Replace("DEVICEAAAA", "DEVICEAAAA%20urn%3Amatrix%3Aclient%3Adevice%3AOTHERDEV")))["error"]);
        Assert.Equal("invalid_scope", (await ErrorOf(good.Replace("DEVICEAAAA", "A%22B")))["error"]);
        Assert.Equal("invalid_request", (await ErrorOf(good + "&response_mode=form_post"))["error"]);
        Assert.Equal("invalid_request", (await ErrorOf(good.Replace("&code_challenge_method=S256", "") + "&response_mode=fragment", "#"))["error"]);
        Assert.Equal("login_required", (await ErrorOf(good + "&prompt=none"))["error"]);

        var noCodeGrant = await browser.RegisterClientAsync(["refresh_token"]);
        Assert.Equal("unauthorized_client", (await ErrorOf(OAuthBrowser.AuthorizeUrl(noCodeGrant, "DEVICEAAAA")))["error"]);
    }

    [Fact]
    public async Task The_code_flow_gives_tokens_that_work_on_the_client_server_api_with_the_device_of_the_scope()
    {
        var (user, browser, clientId, tokens, deviceId) = await SignInAsync();
        Assert.Equal("Bearer", tokens["token_type"]!.GetValue<string>());
        Assert.True(tokens["expires_in"]!.GetValue<long>() > 0);
        Assert.StartsWith("openid urn:matrix:client:api:* urn:matrix:client:device:", tokens["scope"]!.GetValue<string>());
        var accessToken = tokens["access_token"]!.GetValue<string>();
        Assert.NotNull(tokens["refresh_token"]);

        var whoami = await C.GetAsync("/_matrix/client/v3/account/whoami", accessToken);
        Assert.Equal(user.UserId, whoami.Str("user_id"));
        Assert.Equal(deviceId, whoami.Str("device_id"));
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/sync?timeout=0", accessToken)).Status);
        var device = await C.GetAsync($"/_matrix/client/v3/devices/{deviceId}", accessToken);
        Assert.Equal("Test App", device.Str("display_name"));
        var room = await C.PostAsync("/_matrix/client/v3/createRoom", new { }, accessToken);
        Assert.Equal(200, room.Status);

        var claims = JsonNode.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(Pad(tokens["id_token"]!.GetValue<string>().Split('.')[1]))))!;
        Assert.Equal(Base + "/", claims["iss"]!.GetValue<string>());
        Assert.Equal(clientId, claims["aud"]!.GetValue<string>());
        Assert.Equal(user.UserId, claims["sub"]!.GetValue<string>());
        Assert.Equal("n0nce", claims["nonce"]!.GetValue<string>());
        Assert.True(claims["exp"]!.GetValue<long>() > DateTimeOffset.UtcNow.ToUnixTimeSeconds());

        using var userinfo = new HttpRequestMessage(HttpMethod.Get, "/_matrix/oauth2/userinfo");
        userinfo.Headers.Authorization = new("Bearer", accessToken);
        var info = JsonNode.Parse(await (await browser.Http.SendAsync(userinfo)).Content.ReadAsStringAsync())!;
        Assert.Equal(user.UserId, info["sub"]!.GetValue<string>());
    }

    private static string Pad(string base64Url) =>
        base64Url.Replace('-', '+').Replace('_', '/') + new string('=', (4 - base64Url.Length % 4) % 4);

    [Fact]
    public async Task Unstable_scopes_are_accepted_and_echoed_and_a_missing_device_scope_gets_a_device()
    {
        var user = await C.RegisterAsync();
        var browser = NewBrowser();
        var clientId = await browser.RegisterClientAsync();
        var unstable = OAuthBrowser.AuthorizeUrl(clientId, "UNSTABLEDEV").Replace("urn%3Amatrix%3Aclient%3A", "urn%3Amatrix%3Aorg.matrix.msc2967.client%3A");
        var consent = await browser.ReachConsentAsync(unstable, user);
        var code = OAuthBrowser.QueryOf((await browser.DecideAsync(consent, true)).Location!)["code"];
        var (_, tokens) = await browser.ExchangeAsync(clientId, code);
        Assert.Equal("openid urn:matrix:org.matrix.msc2967.client:api:* urn:matrix:org.matrix.msc2967.client:device:UNSTABLEDEV",
            tokens!["scope"]!.GetValue<string>());
        Assert.Equal("UNSTABLEDEV", (await C.GetAsync("/_matrix/client/v3/account/whoami", tokens["access_token"]!.GetValue<string>())).Str("device_id"));

        var withoutDevice = OAuthBrowser.AuthorizeUrl(clientId, "X").Replace("%20urn%3Amatrix%3Aclient%3Adevice%3AX", "");
        var code2 = OAuthBrowser.QueryOf((await browser.DecideAsync(await browser.ReachConsentAsync(withoutDevice, user), true)).Location!)["code"];
        var (_, tokens2) = await browser.ExchangeAsync(clientId, code2);
        var allocated = tokens2!["scope"]!.GetValue<string>().Split(' ').Single(s => s.StartsWith("urn:matrix:client:device:"))["urn:matrix:client:device:".Length..];
        Assert.Equal(allocated, (await C.GetAsync("/_matrix/client/v3/account/whoami", tokens2["access_token"]!.GetValue<string>())).Str("device_id"));
    }

    [Fact]
    public async Task Denying_consent_sends_access_denied_with_the_state()
    {
        var user = await C.RegisterAsync();
        var browser = NewBrowser();
        var clientId = await browser.RegisterClientAsync();
        var consent = await browser.ReachConsentAsync(OAuthBrowser.AuthorizeUrl(clientId, "DENIEDDEV"), user);
        Assert.Contains("Test App", consent);
        Assert.Contains("app.example.org", consent);
        var (_, _, location) = await browser.DecideAsync(consent, allow: false);
        var query = OAuthBrowser.QueryOf(location!);
        Assert.Equal("access_denied", query["error"]);
        Assert.Equal("st4te", query["state"]);
    }

    [Fact]
    public async Task The_token_endpoint_refuses_bad_exchanges()
    {
        var user = await C.RegisterAsync();
        var browser = NewBrowser();
        var clientId = await browser.RegisterClientAsync();
        var other = await browser.RegisterClientAsync();

        var code = await browser.AuthorizeAsync(clientId, "TOKENERRS", user);
        var wrongVerifier = await browser.ExchangeAsync(clientId, code, verifier: new string('x', 50));
        AssertOAuthError(wrongVerifier.Status, wrongVerifier.Body, 400, "invalid_grant");
        var shortVerifier = await browser.ExchangeAsync(clientId, code, verifier: "short");
        AssertOAuthError(shortVerifier.Status, shortVerifier.Body, 400, "invalid_grant");
        var wrongRedirect = await browser.ExchangeAsync(clientId, code, redirectUri: "https://app.example.org/other");
        AssertOAuthError(wrongRedirect.Status, wrongRedirect.Body, 400, "invalid_grant");
        var wrongClient = await browser.ExchangeAsync(other, code);
        AssertOAuthError(wrongClient.Status, wrongClient.Body, 400, "invalid_grant");
        var unknownClient = await browser.ExchangeAsync("nosuchclient", code);
        AssertOAuthError(unknownClient.Status, unknownClient.Body, 401, "invalid_client");
        var unknownCode = await browser.ExchangeAsync(clientId, "nosuchcode");
        AssertOAuthError(unknownCode.Status, unknownCode.Body, 400, "invalid_grant");
        var missing = await browser.PostFormAsync("/_matrix/oauth2/token", ("grant_type", "authorization_code"), ("client_id", clientId), ("code", code));
        AssertOAuthError(missing.Status, missing.Body, 400, "invalid_request");
        var unsupported = await browser.PostFormAsync("/_matrix/oauth2/token", ("grant_type", "password"), ("client_id", clientId));
        AssertOAuthError(unsupported.Status, unsupported.Body, 400, "unsupported_grant_type");
        var json = await browser.PostJsonAsync("/_matrix/oauth2/token", new { grant_type = "authorization_code", code, client_id = clientId });
        AssertOAuthError(json.Status, json.Body, 400, "invalid_request");
        var repeated = await browser.Http.PostAsync("/_matrix/oauth2/token",
            new StringContent($"grant_type=authorization_code&grant_type=refresh_token&client_id={clientId}", Encoding.UTF8, "application/x-www-form-urlencoded"));
        AssertOAuthError((int)repeated.StatusCode, JsonNode.Parse(await repeated.Content.ReadAsStringAsync()), 400, "invalid_request");

        // The failed attempts did not use the code up.
        var (status, tokens) = await browser.ExchangeAsync(clientId, code);
        Assert.Equal(200, status);
        var accessToken = tokens!["access_token"]!.GetValue<string>();
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/account/whoami", accessToken)).Status);

        // A second use is refused and ends the session the first use gave (RFC 6749 §4.1.2).
        var again = await browser.ExchangeAsync(clientId, code);
        AssertOAuthError(again.Status, again.Body, 400, "invalid_grant");
        var ended = await C.GetAsync("/_matrix/client/v3/account/whoami", accessToken);
        Assert.Equal(401, ended.Status);
        Assert.Equal("M_UNKNOWN_TOKEN", ended.Errcode);
    }

    [Fact]
    public async Task Refresh_rotates_the_tokens_and_retires_the_old_refresh_token_once_the_new_access_token_is_used()
    {
        var (_, browser, clientId, tokens, deviceId) = await SignInAsync(scopeExtra: "");
        var firstRefresh = tokens["refresh_token"]!.GetValue<string>();
        Task<(int Status, JsonNode? Body)> Refresh(string token, string client) =>
            browser.PostFormAsync("/_matrix/oauth2/token", ("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client));

        var otherClient = await browser.RegisterClientAsync();
        var stolen = await Refresh(firstRefresh, otherClient);
        AssertOAuthError(stolen.Status, stolen.Body, 400, "invalid_grant");

        var (status, refreshed) = await Refresh(firstRefresh, clientId);
        Assert.True(status == 200, refreshed?.ToJsonString());
        Assert.Equal("urn:matrix:client:api:* urn:matrix:client:device:" + deviceId, refreshed!["scope"]!.GetValue<string>());
        Assert.Equal("Bearer", refreshed["token_type"]!.GetValue<string>());
        Assert.NotEqual(firstRefresh, refreshed["refresh_token"]!.GetValue<string>());
        // The old access token is gone; a lost answer can be retried with the old refresh token until the new pair is used.
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", tokens["access_token"]!.GetValue<string>())).Status);
        var (retryStatus, retried) = await Refresh(firstRefresh, clientId);
        Assert.Equal(200, retryStatus);
        var whoami = await C.GetAsync("/_matrix/client/v3/account/whoami", retried!["access_token"]!.GetValue<string>());
        Assert.Equal(deviceId, whoami.Str("device_id"));
        var old = await Refresh(firstRefresh, clientId);
        AssertOAuthError(old.Status, old.Body, 400, "invalid_grant");
        var (_, next) = await Refresh(retried["refresh_token"]!.GetValue<string>(), clientId);
        Assert.NotNull(next!["access_token"]);

        var legacy = await C.LoginAsync((await C.RegisterAsync()).Localpart, "correct horse battery", new { refresh_token = true });
        var notOurs = await Refresh(legacy.Str("refresh_token"), clientId);
        AssertOAuthError(notOurs.Status, notOurs.Body, 400, "invalid_grant");
    }

    [Fact]
    public async Task Revoking_a_token_ends_its_device()
    {
        var (user, browser, clientId, tokens, deviceId) = await SignInAsync();
        var missing = await browser.PostFormAsync("/_matrix/oauth2/revoke", ("client_id", clientId));
        AssertOAuthError(missing.Status, missing.Body, 400, "invalid_request");
        var unknownClient = await browser.PostFormAsync("/_matrix/oauth2/revoke", ("token", "whatever"), ("client_id", "nosuchclient"));
        AssertOAuthError(unknownClient.Status, unknownClient.Body, 401, "invalid_client");
        Assert.Equal(200, (await browser.PostFormAsync("/_matrix/oauth2/revoke", ("token", "not-a-token"), ("client_id", clientId))).Status);

        var accessToken = tokens["access_token"]!.GetValue<string>();
        var revoked = await browser.PostFormAsync("/_matrix/oauth2/revoke", ("token", accessToken), ("token_type_hint", "access_token"), ("client_id", clientId));
        Assert.Equal(200, revoked.Status);
        var whoami = await C.GetAsync("/_matrix/client/v3/account/whoami", accessToken);
        Assert.Equal(401, whoami.Status);
        Assert.Equal("M_UNKNOWN_TOKEN", whoami.Errcode);
        var refresh = await browser.PostFormAsync("/_matrix/oauth2/token", ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"]!.GetValue<string>()), ("client_id", clientId));
        AssertOAuthError(refresh.Status, refresh.Body, 400, "invalid_grant");
        var devices = await C.GetAsync("/_matrix/client/v3/devices", user.AccessToken);
        Assert.DoesNotContain(devices.Body!["devices"]!.AsArray(), d => d!["device_id"]!.GetValue<string>() == deviceId);

        // By the refresh token, without naming the client (spec: revoked whoever presents it).
        var second = await SignInAsync();
        Assert.Equal(200, (await second.Browser.PostFormAsync("/_matrix/oauth2/revoke", ("token", second.Tokens["refresh_token"]!.GetValue<string>()))).Status);
        Assert.Equal(401, (await C.GetAsync("/_matrix/client/v3/account/whoami", second.Tokens["access_token"]!.GetValue<string>())).Status);
    }

    [Fact]
    public async Task The_device_flow_goes_through_pending_slow_down_and_approval_once()
    {
        var user = await C.RegisterAsync();
        var browser = NewBrowser();
        var clientId = await browser.RegisterClientAsync();
        var unknown = await browser.PostFormAsync("/_matrix/oauth2/device", ("client_id", "nosuchclient"), ("scope", "urn:matrix:client:api:*"));
        AssertOAuthError(unknown.Status, unknown.Body, 401, "invalid_client");
        var codeOnly = await browser.RegisterClientAsync(["authorization_code", "refresh_token"]);
        var notRegistered = await browser.PostFormAsync("/_matrix/oauth2/device", ("client_id", codeOnly), ("scope", "urn:matrix:client:api:*"));
        AssertOAuthError(notRegistered.Status, notRegistered.Body, 400, "unauthorized_client");
        var badScope = await browser.PostFormAsync("/_matrix/oauth2/device", ("client_id", clientId), ("scope", "openid"));
        AssertOAuthError(badScope.Status, badScope.Body, 400, "invalid_scope");

        var (status, started) = await browser.PostFormAsync("/_matrix/oauth2/device", ("client_id", clientId),
            ("scope", "urn:matrix:client:api:* urn:matrix:client:device:TVDEVICE1"));
        Assert.True(status == 200, started?.ToJsonString());
        var deviceCode = started!["device_code"]!.GetValue<string>();
        var userCode = started["user_code"]!.GetValue<string>();
        Assert.Matches("^[A-Z]{4}-[A-Z]{4}$", userCode);
        Assert.Equal(Base + "/_matrix/oauth2/link", started["verification_uri"]!.GetValue<string>());
        Assert.Equal($"{Base}/_matrix/oauth2/link?code={userCode}", started["verification_uri_complete"]!.GetValue<string>());
        Assert.True(started["expires_in"]!.GetValue<long>() > 0);
        Assert.Equal(5, started["interval"]!.GetValue<int>());

        Task<(int Status, JsonNode? Body)> Poll(string client = "") => browser.PostFormAsync("/_matrix/oauth2/token",
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", deviceCode), ("client_id", client == "" ? clientId : client));
        var pending = await Poll();
        AssertOAuthError(pending.Status, pending.Body, 400, "authorization_pending");
        var tooFast = await Poll();
        AssertOAuthError(tooFast.Status, tooFast.Body, 400, "slow_down");
        var otherClient = await Poll(await browser.RegisterClientAsync());
        AssertOAuthError(otherClient.Status, otherClient.Body, 400, "invalid_grant");

        var wrongCode = await NewBrowser().GetAsync("/_matrix/oauth2/link?code=AAAA-AAAA");
        Assert.Equal(HttpStatusCode.Redirect, wrongCode.Status);
        var person = NewBrowser();
        var consent = await person.ReachConsentAsync($"/_matrix/oauth2/link?code={userCode.ToLowerInvariant()}", user);
        Assert.Contains("TVDEVICE1", consent);
        var (decided, page, _) = await person.DecideAsync(consent, allow: true);
        Assert.Equal(HttpStatusCode.OK, decided);
        Assert.Contains("Device connected", page);
        var unknownUserCode = await person.GetAsync("/_matrix/oauth2/link?code=BBBB-BBBB");
        Assert.Equal(HttpStatusCode.NotFound, unknownUserCode.Status);
        Assert.Equal(HttpStatusCode.OK, (await person.GetAsync("/_matrix/oauth2/link")).Status);

        var (tokenStatus, tokens) = await Poll();
        Assert.True(tokenStatus == 200, tokens?.ToJsonString());
        var whoami = await C.GetAsync("/_matrix/client/v3/account/whoami", tokens!["access_token"]!.GetValue<string>());
        Assert.Equal(user.UserId, whoami.Str("user_id"));
        Assert.Equal("TVDEVICE1", whoami.Str("device_id"));
        var twice = await Poll();
        AssertOAuthError(twice.Status, twice.Body, 400, "invalid_grant");

        var (_, denied) = await browser.PostFormAsync("/_matrix/oauth2/device", ("client_id", clientId), ("scope", "urn:matrix:client:api:*"));
        var deniedConsent = await person.ReachConsentAsync($"/_matrix/oauth2/link?code={denied!["user_code"]!.GetValue<string>()}", user);
        await person.DecideAsync(deniedConsent, allow: false);
        var refused = await browser.PostFormAsync("/_matrix/oauth2/token", ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", denied["device_code"]!.GetValue<string>()), ("client_id", clientId));
        AssertOAuthError(refused.Status, refused.Body, 400, "access_denied");
    }

    [Fact]
    public async Task Forms_without_the_csrf_token_are_refused()
    {
        var user = await C.RegisterAsync();
        var browser = NewBrowser();
        var clientId = await browser.RegisterClientAsync();
        var consentUrl = (await browser.GetAsync(OAuthBrowser.AuthorizeUrl(clientId, "CSRFDEVICE"))).Location!;
        var login = await browser.GetAsync(OAuthPathsLogin(consentUrl));
        Assert.Contains("autocomplete=\"current-password\"", login.Html);
        Assert.Equal("DENY", (await browser.Http.GetAsync(OAuthPathsLogin(consentUrl))).Headers.GetValues("X-Frame-Options").Single());

        var noCsrf = await browser.SubmitAsync("/_matrix/oauth2/login", ("return_to", consentUrl), ("username", user.Localpart), ("password", user.Password));
        Assert.Equal(HttpStatusCode.Forbidden, noCsrf.Status);
        var wrongCsrf = await browser.SubmitAsync("/_matrix/oauth2/login", ("csrf", "forged-token-forged-token-forged-token"),
            ("return_to", consentUrl), ("username", user.Localpart), ("password", user.Password));
        Assert.Equal(HttpStatusCode.Forbidden, wrongCsrf.Status);
        var otherBrowser = NewBrowser();
        var stolen = await otherBrowser.SubmitAsync("/_matrix/oauth2/login", ("csrf", OAuthBrowser.CsrfOf(login.Html)),
            ("return_to", consentUrl), ("username", user.Localpart), ("password", user.Password));
        Assert.Equal(HttpStatusCode.Forbidden, stolen.Status);
        var wrongPassword = await browser.SubmitAsync("/_matrix/oauth2/login", ("csrf", OAuthBrowser.CsrfOf(login.Html)),
            ("return_to", consentUrl), ("username", user.Localpart), ("password", "wrong"));
        Assert.Equal(HttpStatusCode.Unauthorized, wrongPassword.Status);
        Assert.Contains("Wrong user name or password", wrongPassword.Html);

        var consent = await browser.ReachConsentAsync(consentUrl, user);
        var forged = await browser.SubmitAsync("/_matrix/oauth2/consent", ("grant", OAuthBrowser.GrantOf(consent)), ("decision", "allow"));
        Assert.Equal(HttpStatusCode.Forbidden, forged.Status);
        Assert.Null(forged.Location);
        var (_, _, location) = await browser.DecideAsync(consent, allow: true);
        Assert.StartsWith(OAuthBrowser.RedirectUri + "?code=", location);
        var again = await browser.DecideAsync(consent, allow: true);
        Assert.Equal(HttpStatusCode.BadRequest, again.Status);

        // The sign-in page sends the browser back to this server's OAuth pages only.
        var offsite = await browser.SubmitAsync("/_matrix/oauth2/login", ("csrf", OAuthBrowser.CsrfOf(consent)), ("return_to", "https://evil.example/"),
            ("username", user.Localpart), ("password", user.Password));
        Assert.Equal("/_matrix/oauth2/account", offsite.Location);
    }

    [Fact]
    public async Task Prompt_create_lets_a_new_user_create_an_account_and_sign_in()
    {
        var browser = NewBrowser();
        var clientId = await browser.RegisterClientAsync();
        var signUpUrl = (await browser.GetAsync(OAuthBrowser.AuthorizeUrl(clientId, "NEWUSERDEV") + "&prompt=create")).Location!;
        Assert.StartsWith("/_matrix/oauth2/signup?return_to=", signUpUrl);
        var page = await browser.GetAsync(signUpUrl);
        Assert.Contains("autocomplete=\"new-password\"", page.Html);
        var returnTo = Uri.UnescapeDataString(signUpUrl[(signUpUrl.IndexOf('=') + 1)..]);
        var csrf = OAuthBrowser.CsrfOf(page.Html);
        var existing = await C.RegisterAsync();
        var taken = await browser.SubmitAsync("/_matrix/oauth2/signup", ("csrf", csrf), ("return_to", returnTo), ("username", existing.Localpart),
            ("password", "a new password"), ("password_again", "a new password"));
        Assert.Equal(HttpStatusCode.BadRequest, taken.Status);
        var localpart = MatrixClient.UniqueName("signup");
        var mismatch = await browser.SubmitAsync("/_matrix/oauth2/signup", ("csrf", csrf), ("return_to", returnTo), ("username", localpart),
            ("password", "a new password"), ("password_again", "another password"));
        Assert.Equal(HttpStatusCode.BadRequest, mismatch.Status);
        var invalid = await browser.SubmitAsync("/_matrix/oauth2/signup", ("csrf", csrf), ("return_to", returnTo), ("username", "Not Valid!"),
            ("password", "a new password"), ("password_again", "a new password"));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.Status);
        var forged = await browser.SubmitAsync("/_matrix/oauth2/signup", ("return_to", returnTo), ("username", localpart),
            ("password", "a new password"), ("password_again", "a new password"));
        Assert.Equal(HttpStatusCode.Forbidden, forged.Status);

        var created = await browser.SubmitAsync("/_matrix/oauth2/signup", ("csrf", csrf), ("return_to", returnTo), ("username", localpart),
            ("password", "a new password"), ("password_again", "a new password"));
        Assert.Equal(returnTo, created.Location);
        var consent = await browser.GetAsync(returnTo);
        var code = OAuthBrowser.QueryOf((await browser.DecideAsync(consent.Html, allow: true)).Location!)["code"];
        var (_, tokens) = await browser.ExchangeAsync(clientId, code);
        Assert.Equal($"@{localpart}:{C.ServerName}", (await C.GetAsync("/_matrix/client/v3/account/whoami", tokens!["access_token"]!.GetValue<string>())).Str("user_id"));
        Assert.Equal(200, (await C.LoginAsync(localpart, "a new password")).Status);
    }

    private static string OAuthPathsLogin(string returnTo) => $"/_matrix/oauth2/login?return_to={Uri.EscapeDataString(returnTo)}";
}

public sealed class OAuthApiTestsSqlite(SqliteOAuthServer fixture) : OAuthApiTests(fixture), IClassFixture<SqliteOAuthServer>;

public sealed class OAuthApiTestsPostgres(PostgresOAuthServer fixture) : OAuthApiTests(fixture), IClassFixture<PostgresOAuthServer>;
