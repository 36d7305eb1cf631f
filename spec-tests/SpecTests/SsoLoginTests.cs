using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Matrix.SpecTests.Harness;

namespace Matrix.SpecTests;

/// <summary>A homeserver signing people in through a CAS server (<c>auth.cas</c>).</summary>
public class CasServerFixture(string engine) : IAsyncLifetime
{
    private TestDatabase? _database;
    public HomeserverProcess Server { get; private set; } = null!;
    public TestCasServer Cas { get; } = new();
    public MatrixClient Client => new(Server.BaseUrl, Server.ServerName);

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync(engine);
        Server = new HomeserverProcess(_database.Yaml, $"""
            auth:
              password_hashing:
                ops_limit: 1
                mem_limit_kib: 64
              cas:
                server_url: {Cas.BaseUrl}
                idp_name: Company sign-in
                displayname_attribute: displayName
                required_attributes:
                  department: null

            """);
        await Server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Cas.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
    }
}

public sealed class SqliteCasServer() : CasServerFixture("sqlite");

public sealed class PostgresCasServer() : CasServerFixture("postgres");

/// <summary>
/// Spec: "Client login via SSO" (<c>m.login.sso</c>, <c>/login/sso/redirect</c>, login tokens) and single sign-on as a
/// stage of user-interactive auth with its fallback page, through a CAS server; Synapse's CAS paths and user mapping.
/// </summary>
public abstract partial class SsoLoginTests(CasServerFixture fixture)
{
    private const string ClientUrl = "https://client.example/app?from=sso";
    /// <summary>A browser that does not follow redirects, for which the server's name (its public base URL) resolves to loopback.</summary>
    private static readonly HttpClient Browser = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        ConnectCallback = async (context, ct) =>
        {
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(IPAddress.Loopback, context.DnsEndPoint.Port, ct);
            return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
        },
    });
    private MatrixClient C => fixture.Client;
    private string Base => fixture.Server.BaseUrl;

    [GeneratedRegex("href=\"([^\"]*)\"")]
    private static partial Regex Link();

    private string NewCasUser(string? name = null, Dictionary<string, string>? attributes = null)
    {
        name ??= MatrixClient.UniqueName("cas");
        fixture.Cas.AddUser(name, "cas password", attributes ?? new() { ["department"] = "sales", ["displayName"] = $"{name} Example" });
        return name;
    }

    private static string LinkOf(string html) => WebUtility.HtmlDecode(Link().Match(html).Groups[1].Value);

    /// <summary>The browser's trip: our redirect to CAS, the sign-in there, and the page our ticket endpoint answers with.</summary>
    private async Task<HttpResponseMessage> SignInThroughCasAsync(string casUser, string path = "/_matrix/client/v3/login/sso/redirect")
    {
        var redirect = await Browser.GetAsync($"{Base}{path}?redirectUrl={Uri.EscapeDataString(ClientUrl)}");
        Assert.Equal(HttpStatusCode.Redirect, redirect.StatusCode);
        var casLogin = redirect.Headers.Location!.ToString();
        Assert.StartsWith($"{fixture.Cas.BaseUrl}/login?service=", casLogin);
        var backToServer = await fixture.Cas.SignInAsync(casLogin, casUser, "cas password");
        return await Browser.GetAsync(backToServer);
    }

    private async Task<string> LoginTokenOfAsync(HttpResponseMessage ticketPage)
    {
        Assert.Equal(HttpStatusCode.OK, ticketPage.StatusCode);
        var continueUrl = LinkOf(await ticketPage.Content.ReadAsStringAsync());
        Assert.StartsWith(ClientUrl + "&loginToken=", continueUrl);
        return Uri.UnescapeDataString(continueUrl[(ClientUrl.Length + "&loginToken=".Length)..]);
    }

    private Task<MatrixResponse> LoginWithTokenAsync(string token, string? deviceId = null) =>
        C.PostAsync("/_matrix/client/v3/login", new { type = "m.login.token", token, device_id = deviceId });

    [Fact]
    public async Task Login_flows_offer_sso_with_the_provider_and_token_login()
    {
        var flows = (await C.GetAsync("/_matrix/client/v3/login")).Body!["flows"]!.AsArray();
        var sso = flows.Single(f => f!["type"]!.GetValue<string>() == "m.login.sso")!;
        Assert.Equal("cas", sso["identity_providers"]![0]!["id"]!.GetValue<string>());
        Assert.Equal("Company sign-in", sso["identity_providers"]![0]!["name"]!.GetValue<string>());
        Assert.Contains(flows, f => f!["type"]!.GetValue<string>() == "m.login.token");
        Assert.Contains(flows, f => f!["type"]!.GetValue<string>() == "m.login.cas");
    }

    [Fact]
    public async Task First_sign_in_creates_the_mapped_account_and_the_login_token_works_once()
    {
        var casUser = NewCasUser("Jane.Doe!" + MatrixClient.UniqueName(""));
        var token = await LoginTokenOfAsync(await SignInThroughCasAsync(casUser));

        var login = await LoginWithTokenAsync(token, "SSODEVICE");
        Assert.True(login.Status == 200, login.ToString());
        // Lower-cased, '!' written as =21 (Synapse's mapping).
        Assert.Equal($"@{casUser.ToLowerInvariant().Replace("!", "=21")}:{C.ServerName}", login.Str("user_id"));
        Assert.Equal("SSODEVICE", login.Str("device_id"));
        var profile = await C.GetAsync($"/_matrix/client/v3/profile/{Uri.EscapeDataString(login.Str("user_id"))}/displayname");
        Assert.Equal($"{casUser} Example", profile.Str("displayname"));

        var again = await LoginWithTokenAsync(token);
        Assert.Equal(403, again.Status);
        Assert.Equal("M_FORBIDDEN", again.Errcode);

        // The next sign-in finds the same account.
        var second = await LoginWithTokenAsync(await LoginTokenOfAsync(await SignInThroughCasAsync(casUser)));
        Assert.Equal(login.Str("user_id"), second.Str("user_id"));
    }

    [Fact]
    public async Task An_existing_account_with_the_cas_name_is_the_one_signed_in_and_legacy_paths_work()
    {
        var existing = await C.RegisterAsync();
        NewCasUser(existing.Localpart);
        var page = await SignInThroughCasAsync(existing.Localpart, "/_matrix/client/r0/login/cas/redirect");
        var login = await LoginWithTokenAsync(await LoginTokenOfAsync(page));
        Assert.Equal(existing.UserId, login.Str("user_id"));
        var byIdp = await Browser.GetAsync($"{Base}/_matrix/client/v3/login/sso/redirect/cas?redirectUrl={Uri.EscapeDataString(ClientUrl)}");
        Assert.Equal(HttpStatusCode.Redirect, byIdp.StatusCode);
    }

    [Fact]
    public async Task Refused_tickets_missing_attributes_and_bad_requests_give_no_token()
    {
        // A ticket CAS issued for another service is not accepted for ours.
        var casUser = NewCasUser();
        var otherService = await fixture.Cas.SignInAsync($"{fixture.Cas.BaseUrl}/login?service={Uri.EscapeDataString("https://elsewhere.example/")}",
            casUser, "cas password");
        var ticket = otherService[(otherService.IndexOf("ticket=", StringComparison.Ordinal) + 7)..];
        var stolen = await C.GetAsync($"/_matrix/client/v3/login/cas/ticket?redirectUrl={Uri.EscapeDataString(ClientUrl)}&ticket={ticket}");
        Assert.Equal(401, stolen.Status);
        Assert.Equal("M_UNAUTHORIZED", stolen.Errcode);

        var noDepartment = NewCasUser(attributes: new() { ["displayName"] = "Nobody" });
        var refused = await SignInThroughCasAsync(noDepartment);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(404, (await C.GetAsync($"/_matrix/client/v3/profile/@{noDepartment}:{C.ServerName}")).Status);

        var noRedirect = await C.GetAsync("/_matrix/client/v3/login/sso/redirect");
        Assert.Equal(400, noRedirect.Status);
        Assert.Equal("M_MISSING_PARAM", noRedirect.Errcode);
        var unknownIdp = await C.GetAsync($"/_matrix/client/v3/login/sso/redirect/github?redirectUrl={Uri.EscapeDataString(ClientUrl)}");
        Assert.Equal(404, unknownIdp.Status);
        var badToken = await LoginWithTokenAsync("mal_made_up");
        Assert.Equal(403, badToken.Status);
    }

    /// <summary>An account that signs in through CAS, with a second device to delete under user-interactive auth.</summary>
    private async Task<(string UserId, string AccessToken, string CasUser)> SsoAccountWithDeviceAsync(string deviceId)
    {
        var casUser = NewCasUser();
        var first = await LoginWithTokenAsync(await LoginTokenOfAsync(await SignInThroughCasAsync(casUser)));
        await LoginWithTokenAsync(await LoginTokenOfAsync(await SignInThroughCasAsync(casUser)), deviceId);
        return (first.Str("user_id"), first.Str("access_token"), casUser);
    }

    /// <summary>The UIA fallback page of <paramref name="session"/>, its link to CAS followed and signed in as <paramref name="casUser"/>.</summary>
    private async Task<string> CompleteFallbackAsync(string session, string casUser)
    {
        var fallback = await Browser.GetAsync($"{Base}/_matrix/client/v3/auth/m.login.sso/fallback/web?session={session}");
        Assert.Equal(HttpStatusCode.OK, fallback.StatusCode);
        var casLogin = LinkOf(await fallback.Content.ReadAsStringAsync());
        Assert.StartsWith($"{fixture.Cas.BaseUrl}/login?service=", casLogin);
        var back = await Browser.GetAsync(await fixture.Cas.SignInAsync(casLogin, casUser, "cas password"));
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        return await back.Content.ReadAsStringAsync();
    }

    [Fact]
    public async Task Sso_completes_user_interactive_auth_through_the_fallback_page()
    {
        var (_, accessToken, casUser) = await SsoAccountWithDeviceAsync("DOOMED");
        var started = await C.DeleteAsync("/_matrix/client/v3/devices/DOOMED", new { }, accessToken);
        Assert.Equal(401, started.Status);
        var flows = started.Body!["flows"]!.AsArray().Select(f => f!["stages"]![0]!.GetValue<string>()).ToList();
        Assert.Equal(["m.login.sso"], flows);
        var session = started.Str("session");

        // Nothing is done before the stage completes.
        Assert.Equal(401, (await C.DeleteAsync("/_matrix/client/v3/devices/DOOMED", new { auth = new { session } }, accessToken)).Status);
        Assert.Contains("Authentication complete", await CompleteFallbackAsync(session, casUser));

        var done = await C.DeleteAsync("/_matrix/client/v3/devices/DOOMED", new { auth = new { session } }, accessToken);
        Assert.True(done.Status == 200, done.ToString());
        Assert.Equal(404, (await C.GetAsync("/_matrix/client/v3/devices/DOOMED", accessToken)).Status);
    }

    [Fact]
    public async Task Sso_as_someone_else_fails_the_session_and_changes_nothing()
    {
        var (_, accessToken, _) = await SsoAccountWithDeviceAsync("KEPT");
        var intruder = NewCasUser();
        var started = await C.DeleteAsync("/_matrix/client/v3/devices/KEPT", new { }, accessToken);
        var session = started.Str("session");
        Assert.Contains("Wrong account", await CompleteFallbackAsync(session, intruder));

        var refused = await C.DeleteAsync("/_matrix/client/v3/devices/KEPT", new { auth = new { session } }, accessToken);
        Assert.Equal(403, refused.Status);
        Assert.Equal("M_FORBIDDEN", refused.Errcode);
        Assert.Equal(200, (await C.GetAsync("/_matrix/client/v3/devices/KEPT", accessToken)).Status);
    }

    [Fact]
    public async Task Password_accounts_are_not_offered_sso_until_linked()
    {
        var user = await C.RegisterAsync();
        var started = await C.DeleteAsync($"/_matrix/client/v3/devices/{user.DeviceId}", new { }, user.AccessToken);
        var flows = started.Body!["flows"]!.AsArray().Select(f => f!["stages"]![0]!.GetValue<string>()).ToList();
        Assert.Equal(["m.login.password"], flows);
        var unknownSession = await Browser.GetAsync($"{Base}/_matrix/client/v3/auth/m.login.sso/fallback/web?session=nosuchsession");
        Assert.Equal(HttpStatusCode.BadRequest, unknownSession.StatusCode);
    }
}

public sealed class SsoLoginTestsSqlite(SqliteCasServer fixture) : SsoLoginTests(fixture), IClassFixture<SqliteCasServer>;

public sealed class SsoLoginTestsPostgres(PostgresCasServer fixture) : SsoLoginTests(fixture), IClassFixture<PostgresCasServer>;
