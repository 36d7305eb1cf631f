using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Matrix.SpecTests.Harness;

/// <summary>A homeserver serving the OAuth 2.0 API, its public base URL its loopback address.</summary>
public class OAuthServerFixture(string engine, string extraYaml = "") : IAsyncLifetime
{
    private TestDatabase? _database;
    public HomeserverProcess Server { get; private set; } = null!;
    public MatrixClient Client => new(Server.BaseUrl, Server.ServerName);

    public async Task InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync(engine);
        Server = new HomeserverProcess(_database.Yaml, "oauth:\n  enabled: true\n\n" + extraYaml);
        Server.UpdateConfig($"public_baseurl: {Server.BaseUrl}/\n");
        await Server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        if (_database is not null)
            await _database.DisposeAsync();
    }
}

/// <summary>
/// A client of the OAuth 2.0 API and the browser of its user: cookies kept, redirects not followed, so each step of
/// the flow can be looked at.
/// </summary>
public sealed partial class OAuthBrowser(string baseUrl)
{
    public const string ClientUri = "https://app.example.org/";
    public const string RedirectUri = "https://app.example.org/callback";
    public const string Verifier = "a-very-long-code-verifier-of-more-than-43-characters_0123456789";

    public HttpClient Http { get; } = new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() })
    {
        BaseAddress = new Uri(baseUrl),
    };

    public static string Challenge(string verifier) =>
        Convert.ToBase64String(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [GeneratedRegex("name=\"csrf\" value=\"([^\"]*)\"")]
    private static partial Regex CsrfField();

    [GeneratedRegex("name=\"grant\" value=\"([^\"]*)\"")]
    private static partial Regex GrantField();

    public async Task<(int Status, JsonNode? Body)> PostJsonAsync(string path, object body)
    {
        var response = await Http.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null);
    }

    public async Task<(int Status, JsonNode? Body)> PostFormAsync(string path, params (string Name, string Value)[] form)
    {
        var response = await Http.PostAsync(path, new FormUrlEncodedContent(form.Select(f => new KeyValuePair<string, string>(f.Name, f.Value))));
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length > 0 ? JsonNode.Parse(text) : null);
    }

    public async Task<string> RegisterClientAsync(string[]? grantTypes = null, string name = "Test App")
    {
        var (status, body) = await PostJsonAsync("/_matrix/oauth2/register", new
        {
            client_name = name, client_uri = ClientUri, redirect_uris = new[] { RedirectUri }, application_type = "web",
            token_endpoint_auth_method = "none", response_types = new[] { "code" },
            grant_types = grantTypes ?? ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        });
        Assert.True(status == 201, body?.ToJsonString());
        return body!["client_id"]!.GetValue<string>();
    }

    public static string AuthorizeUrl(string clientId, string deviceId, string state = "st4te", string scopeExtra = "openid", string? nonce = "n0nce") =>
        "/_matrix/oauth2/authorize?" + string.Join('&', new (string, string?)[]
        {
            ("response_type", "code"), ("client_id", clientId), ("redirect_uri", RedirectUri), ("state", state), ("nonce", nonce),
            ("scope", $"{scopeExtra} urn:matrix:client:api:* urn:matrix:client:device:{deviceId}".Trim()),
            ("code_challenge", Challenge(Verifier)), ("code_challenge_method", "S256"),
        }.Where(p => p.Item2 is not null).Select(p => $"{p.Item1}={Uri.EscapeDataString(p.Item2!)}"));

    /// <summary>Opens a page; returns its status, HTML and the redirect's target if any.</summary>
    public async Task<(HttpStatusCode Status, string Html, string? Location)> GetAsync(string url)
    {
        var response = await Http.GetAsync(url);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.Location?.ToString());
    }

    public async Task<(HttpStatusCode Status, string Html, string? Location)> SubmitAsync(string path, params (string Name, string Value)[] form)
    {
        var response = await Http.PostAsync(path, new FormUrlEncodedContent(form.Select(f => new KeyValuePair<string, string>(f.Name, f.Value))));
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.Location?.ToString());
    }

    public static string CsrfOf(string html) => WebUtility.HtmlDecode(CsrfField().Match(html).Groups[1].Value);
    public static string GrantOf(string html) => WebUtility.HtmlDecode(GrantField().Match(html).Groups[1].Value);

    /// <summary>Follows the browser through sign-in (if needed) to the consent page at <paramref name="url"/>; returns its HTML.</summary>
    public async Task<string> ReachConsentAsync(string url, LoggedInUser user)
    {
        var page = await GetAsync(url);
        while (page.Location is { } next && next.StartsWith("/_matrix/oauth2/", StringComparison.Ordinal))
        {
            if (next.StartsWith("/_matrix/oauth2/login", StringComparison.Ordinal))
            {
                var login = await GetAsync(next);
                var returnTo = Uri.UnescapeDataString(next[(next.IndexOf("return_to=", StringComparison.Ordinal) + "return_to=".Length)..]);
                page = await SubmitAsync("/_matrix/oauth2/login", ("csrf", CsrfOf(login.Html)), ("return_to", returnTo),
                    ("username", user.Localpart), ("password", user.Password));
                Assert.Equal(HttpStatusCode.Redirect, page.Status);
            }
            page = await GetAsync(page.Location!);
        }
        Assert.True(page.Status == HttpStatusCode.OK, $"{page.Status} {page.Location} {page.Html}");
        return page.Html;
    }

    /// <summary>Allows (or denies) the request on the consent page; returns where the browser is sent.</summary>
    public async Task<(HttpStatusCode Status, string Html, string? Location)> DecideAsync(string consentHtml, bool allow) =>
        await SubmitAsync("/_matrix/oauth2/consent", ("csrf", CsrfOf(consentHtml)), ("grant", GrantOf(consentHtml)), ("decision", allow ? "allow" : "deny"));

    /// <summary>The whole code flow up to the code, for <paramref name="user"/>.</summary>
    public async Task<string> AuthorizeAsync(string clientId, string deviceId, LoggedInUser user, string scopeExtra = "openid")
    {
        var consent = await ReachConsentAsync(AuthorizeUrl(clientId, deviceId, scopeExtra: scopeExtra), user);
        var (_, _, location) = await DecideAsync(consent, allow: true);
        Assert.StartsWith(RedirectUri + "?code=", location);
        return QueryOf(location!)["code"];
    }

    public static Dictionary<string, string> QueryOf(string url) =>
        url[(url.IndexOfAny(['?', '#']) + 1)..].Split('&').Select(p => p.Split('=', 2))
            .ToDictionary(p => p[0], p => Uri.UnescapeDataString(p[1]));

    public Task<(int Status, JsonNode? Body)> ExchangeAsync(string clientId, string code, string verifier = Verifier, string redirectUri = RedirectUri) =>
        PostFormAsync("/_matrix/oauth2/token", ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectUri),
            ("client_id", clientId), ("code_verifier", verifier));
}
