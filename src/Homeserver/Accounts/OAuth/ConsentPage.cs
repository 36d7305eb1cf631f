using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;
using static Matrix.Homeserver.Accounts.OAuth.HtmlPages;

namespace Matrix.Homeserver.Accounts.OAuth;

/// <summary>
/// The signed-in user allows or denies a pending authorisation request (a code grant, or a device grant found by its
/// user code), seeing which client asks and for what.
/// </summary>
public sealed class ConsentPage(Database db, OAuthClientStore clients, OAuthGrantStore grants, OAuthBrowserSessions browser, Csrf csrf,
    HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public static string Url(string grantId) => $"{OAuthPaths.Consent}?grant={Uri.EscapeDataString(grantId)}";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapPage("GET", OAuthPaths.Consent, ShowAsync);
        app.MapPage("POST", OAuthPaths.Consent, DecideAsync);
    }

    private async Task ShowAsync(HttpContext context)
    {
        if (await browser.CurrentOrSignInAsync(context) is not { } user)
            return;
        var (grant, client) = await PendingAsync(OAuthRoutes.QueryParameters(context).Optional("grant"), context.RequestAborted);
        await WriteAsync(context, Render(grant, client, user.UserId, csrf.Token(context)));
    }

    private async Task DecideAsync(HttpContext context)
    {
        var form = await Csrf.ReadFormAsync(context);
        var user = await browser.RequireAsync(context);
        var (grant, client) = await PendingAsync(form.Optional("grant"), context.RequestAborted);
        var allowed = form.Optional("decision") == "allow";
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var code = allowed && grant.Kind == OAuthGrantRow.Code ? Secrets.NewToken("") : null;
        var expires = code is null ? grant.ExpiresTs : now + config.Oauth.AuthorizationCodeLifetimeMs;
        var decided = await db.WriteAsync(s => grants.DecideAsync(s, grant.GrantId, allowed ? OAuthGrantRow.Approved : OAuthGrantRow.Denied,
            user.UserId, user.AuthTime, code is null ? null : Secrets.Hash(code), expires), context.RequestAborted);
        if (!decided)
            throw OAuthException.InvalidRequest("This request has already been answered.");
        if (grant.Kind == OAuthGrantRow.Device)
        {
            await WriteAsync(context, allowed
                ? Page("Device connected", $"<p>{Html(client.DisplayName)} is now signed in as {Html(user.UserId)}. You can return to your device.</p>")
                : Page("Access denied", $"<p>{Html(client.DisplayName)} was not given access. You can close this page.</p>"));
            return;
        }
        var back = new ClientRedirect(grant.RedirectUri!, grant.ResponseMode!, grant.State);
        HtmlPages.Redirect(context, allowed ? back.With(("code", code!)) : back.Error("access_denied", "The user denied the request."));
    }

    private async Task<(OAuthGrantRow, OAuthClient)> PendingAsync(string? grantId, CancellationToken ct)
    {
        var (grant, client) = await db.ReadAsync(async s =>
        {
            var grant = grantId is null ? null : await grants.GetAsync(s, grantId);
            return (grant, grant is null ? null : await clients.GetAsync(s, grant.ClientId));
        }, ct);
        if (grant is null || client is null || grant.Status != OAuthGrantRow.Pending || grant.ExpiresTs <= clock.GetUtcNow().ToUnixTimeMilliseconds())
            throw new OAuthException(400, "invalid_request", "This sign-in request is unknown, expired or already answered. Start again from your client.");
        return (grant, client);
    }

    private static string Render(OAuthGrantRow grant, OAuthClient client, string userId, string csrfToken)
    {
        var host = new Uri(client.ClientUri).Host;
        var asks = $"<li>Full access to your Matrix account {Html(userId)}: read and send messages, change settings</li>"
            + $"<li>A session named {Html(grant.DeviceId)} among your devices</li>"
            + (grant.OpenId ? "<li>Your Matrix user ID</li>" : "");
        var documents = string.Concat(new[] { ("tos_uri", "Terms of service"), ("policy_uri", "Privacy policy") }
            .Where(d => client.Metadata[d.Item1] is not null)
            .Select(d => $" <a href=\"{Html((string)client.Metadata[d.Item1]!)}\">{d.Item2}</a>"));
        return Page($"Allow {client.DisplayName} access?",
            $"<p><b>{Html(client.DisplayName)}</b> (<a href=\"{Html(client.ClientUri)}\">{Html(host)}</a>) wants:</p><ul>{asks}</ul>"
            + (documents.Length > 0 ? $"<p>{documents}</p>" : "")
            + "<p>Allow it only if you started this sign-in yourself.</p>"
            + Form(OAuthPaths.Consent, csrfToken, Hidden("grant", grant.GrantId), ("decision", "allow", "Allow"), ("decision", "deny", "Deny"))
            + $"<p>Signed in as {Html(userId)}.</p>"
            + Form(OAuthPaths.Logout, csrfToken, Hidden("return_to", Url(grant.GrantId)), ("sign_out", "1", "Use another account")));
    }
}
