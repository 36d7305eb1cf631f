using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;
using static Matrix.Homeserver.Accounts.OAuth.HtmlPages;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// Spec: "Device authorisation flow" (RFC 8628): a device code for the client to poll with, a short user code for the
/// person, and the verification page where they enter it (or arrive with it) and, signed in, allow or deny.
/// </summary>
public sealed class DeviceAuthorizationEndpoints(Database db, OAuthClientStore clients, OAuthGrantStore grants, OAuthBrowserSessions browser,
    OAuthPaths paths, HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    /// <summary>Letters that cannot be mistaken for one another or spell words (RFC 8628 §6.1's advice).</summary>
    private const string UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ";
    private const int UserCodeLength = 8;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapOAuth("POST", OAuthPaths.DeviceAuthorization, StartAsync);
        app.MapPage("GET", OAuthPaths.Link, LinkAsync);
    }

    private async Task StartAsync(HttpContext context)
    {
        var form = await OAuthRoutes.ReadFormAsync(context);
        var ct = context.RequestAborted;
        var client = await db.ReadAsync(s => clients.GetAsync(s, form.Optional("client_id") ?? ""), ct) ?? throw OAuthException.InvalidClient();
        if (!client.MayUse(OAuthClient.DeviceCodeGrant))
            throw OAuthException.UnauthorizedClient("The client did not register for the device code grant.");
        var scope = Scope.Parse(form.Optional("scope"));
        var deviceCode = Secrets.NewToken("");
        var userCode = RandomNumberGenerator.GetString(UserCodeAlphabet, UserCodeLength);
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        await db.WriteAsync(s => grants.InsertAsync(s, new OAuthGrantRow
        {
            GrantId = Secrets.NewSessionId(), Kind = OAuthGrantRow.Device, ClientId = client.ClientId, Scope = scope.Text, DeviceId = scope.DeviceId,
            CodeHash = Secrets.Hash(deviceCode), UserCode = userCode, Status = OAuthGrantRow.Pending, CreatedTs = now,
            ExpiresTs = now + config.Oauth.DeviceCodeLifetimeMs,
        }), ct);
        var shown = $"{userCode[..4]}-{userCode[4..]}";
        context.Response.Headers.CacheControl = "no-store";
        await context.WriteJsonAsync(new JsonObject
        {
            ["device_code"] = deviceCode,
            ["user_code"] = shown,
            ["verification_uri"] = paths.Absolute(OAuthPaths.Link),
            ["verification_uri_complete"] = paths.Absolute($"{OAuthPaths.Link}?code={shown}"),
            ["expires_in"] = config.Oauth.DeviceCodeLifetimeMs / 1000,
            ["interval"] = config.Oauth.DeviceCodePollIntervalSeconds,
        });
    }

    private async Task LinkAsync(HttpContext context)
    {
        if (await browser.CurrentOrSignInAsync(context) is null)
            return;
        var entered = OAuthRoutes.QueryParameters(context).Optional("code");
        if (entered is null)
        {
            await WriteAsync(context, CodeForm(null));
            return;
        }
        var userCode = new string(entered.ToUpperInvariant().Where(char.IsAsciiLetter).ToArray());
        var grant = await db.ReadAsync(s => grants.ByUserCodeAsync(s, userCode), context.RequestAborted);
        if (grant is null || grant.Status != OAuthGrantRow.Pending || grant.ExpiresTs <= clock.GetUtcNow().ToUnixTimeMilliseconds())
        {
            await WriteAsync(context, CodeForm("This code is unknown, expired or already used."), 404);
            return;
        }
        HtmlPages.Redirect(context, ConsentPage.Url(grant.GrantId));
    }

    /// <summary>A GET form: entering a code only looks it up, the consent page's form (with its CSRF token) decides.</summary>
    private static string CodeForm(string? error) => Page("Connect a device",
        Error(error) + $"<form method=\"get\" action=\"{OAuthPaths.Link}\">{Field("code", "Code shown on your device", "text", "off")}"
        + "<button type=\"submit\">Continue</button></form>");
}
