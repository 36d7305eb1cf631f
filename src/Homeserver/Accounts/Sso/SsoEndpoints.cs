using System.Text;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Config;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Accounts.Sso;

/// <summary>
/// Single sign-on (spec: client-server API, "Client login via SSO") through a CAS server: the redirect to the provider,
/// the ticket it sends the browser back with (a login token for the client, or a completed <c>m.login.sso</c> stage of
/// user-interactive auth), and the UIA fallback page. Synapse's legacy <c>/login/cas/*</c> paths are served too.
/// </summary>
public sealed class SsoEndpoints(
    CasClient cas, ExternalAccounts externalAccounts, ExternalIdStore externalIds, UserInteractiveAuth uia, TokenStore tokens, Database db,
    HomeserverConfig config, TimeProvider clock) : IEndpoints
{
    public const string CasIdpId = "cas";

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapV3("GET", "login/sso/redirect", RedirectAsync);
        app.MapV3("GET", "login/sso/redirect/{idpId}", RedirectAsync);
        app.MapV3("GET", "login/cas/redirect", RedirectAsync);
        app.MapV3("GET", "login/cas/ticket", TicketAsync);
        app.MapV3("GET", $"auth/{AuthTypes.Sso}/fallback/web", FallbackAsync);
    }

    /// <summary>What <c>GET /login</c> lists when single sign-on is configured.</summary>
    public IEnumerable<JsonObject> LoginFlows()
    {
        if (!config.Auth.Cas.Enabled)
            yield break;
        yield return new JsonObject
        {
            ["type"] = AuthTypes.Sso,
            ["identity_providers"] = new JsonArray(new JsonObject { ["id"] = CasIdpId, ["name"] = config.Auth.Cas.IdpName }),
        };
        yield return new JsonObject { ["type"] = "m.login.cas" };
    }

    private Task RedirectAsync(HttpContext context)
    {
        RequireCas();
        if (context.Request.RouteValues["idpId"] is string idpId && idpId != CasIdpId)
            throw new MatrixException(404, "M_NOT_FOUND", $"Unknown identity provider {idpId}.");
        var redirectUrl = ClientRedirectUrl(context);
        context.Response.Redirect(cas.LoginUrl(TicketUrl("redirectUrl", redirectUrl)));
        return Task.CompletedTask;
    }

    private async Task TicketAsync(HttpContext context)
    {
        RequireCas();
        var ct = context.RequestAborted;
        var ticket = context.Query("ticket");
        if (ticket.Length == 0)
            throw MatrixException.MissingParam("ticket");
        var session = context.Query("session");
        var redirectUrl = session.Length > 0 ? null : ClientRedirectUrl(context);
        var identity = await cas.ValidateAsync(ticket, redirectUrl is null ? TicketUrl("session", session) : TicketUrl("redirectUrl", redirectUrl), ct);
        foreach (var (name, value) in config.Auth.Cas.RequiredAttributes)
            if (!identity.Attributes.TryGetValue(name, out var actual) || (value is not null && actual != value))
                throw MatrixException.Forbidden("Your single sign-on account lacks an attribute this server requires.");
        var userId = await AccountOfAsync(identity, ct);

        if (redirectUrl is null)
        {
            if (!await uia.CompleteSsoStageAsync(session, userId, ct))
                throw new MatrixException(400, "M_UNKNOWN", "Unknown or expired user-interactive auth session.");
            var live = await uia.LiveSessionAsync(session, ct);
            await WriteHtmlAsync(context, live?.UserId == userId ? SsoPages.StageCompleted() : SsoPages.WrongUser(userId));
            return;
        }
        var loginToken = Secrets.NewToken("mal_");
        var expires = clock.GetUtcNow().ToUnixTimeMilliseconds() + config.Auth.LoginTokenLifetimeMs;
        await db.WriteAsync(s => tokens.InsertLoginTokenAsync(s, Secrets.Hash(loginToken), userId, expires), ct);
        await WriteHtmlAsync(context, SsoPages.ContinueToClient(config.ServerName, userId, WithQueryParameter(redirectUrl, "loginToken", loginToken)));
    }

    private async Task FallbackAsync(HttpContext context)
    {
        RequireCas();
        var session = context.Query("session");
        if (session.Length == 0)
            throw MatrixException.MissingParam("session");
        if (await uia.LiveSessionAsync(session, context.RequestAborted) is null)
            throw new MatrixException(400, "M_UNKNOWN", "Unknown or expired user-interactive auth session.");
        await WriteHtmlAsync(context, SsoPages.ConfirmIdentity(config.Auth.Cas.IdpName, cas.LoginUrl(TicketUrl("session", session))));
    }

    /// <summary>
    /// The account of a CAS user: the one linked to them, else the one with their (mapped) name, created at their first
    /// sign-in. Accounts predating single sign-on are found by name, as Synapse does for CAS.
    /// </summary>
    private async Task<string> AccountOfAsync(CasIdentity identity, CancellationToken ct)
    {
        if (await db.ReadAsync(s => externalIds.FindUserAsync(s, ExternalIdStore.Cas, identity.User), ct) is { } linked)
            return linked;
        var displayName = config.Auth.Cas.DisplaynameAttribute is { } attribute && identity.Attributes.TryGetValue(attribute, out var name)
            ? name
            : identity.User;
        return await externalAccounts.EnsureAsync(ExternalIdStore.Cas, identity.User, MapToLocalpart(identity.User), displayName, ct)
            ?? throw MatrixException.Forbidden("Your single sign-on user name cannot be given an account on this server.");
    }

    /// <summary>
    /// A provider's user name as a localpart, as Synapse maps it: lower-cased; every byte outside the characters
    /// localparts allow written as <c>=xx</c>; a leading underscore (reserved) escaped the same way.
    /// </summary>
    public static string MapToLocalpart(string name)
    {
        var mapped = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(name.ToLowerInvariant()))
        {
            var c = (char)b;
            if (b < 0x80 && (char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || "._=-/+".Contains(c)) && !(c == '_' && mapped.Length == 0))
                mapped.Append(c);
            else
                mapped.Append('=').Append(b.ToString("x2"));
        }
        return mapped.ToString();
    }

    private void RequireCas()
    {
        if (!config.Auth.Cas.Enabled)
            throw new MatrixException(404, "M_UNRECOGNIZED", "Single sign-on is not configured on this server.");
    }

    private static string ClientRedirectUrl(HttpContext context)
    {
        var url = context.Query("redirectUrl");
        if (url.Length == 0)
            throw MatrixException.MissingParam("redirectUrl");
        if (!Uri.TryCreate(url, UriKind.Absolute, out _))
            throw MatrixException.InvalidParam("redirectUrl must be an absolute URL.");
        return url;
    }

    /// <summary>Where the CAS server sends the browser back to (its "service"): Synapse's r0 path, which CAS servers are configured for.</summary>
    private string TicketUrl(string parameter, string value) =>
        $"{config.EffectivePublicBaseurl}_matrix/client/r0/login/cas/ticket?{parameter}={Uri.EscapeDataString(value)}";

    private static string WithQueryParameter(string url, string name, string value)
    {
        var hash = url.IndexOf('#');
        var (head, fragment) = hash < 0 ? (url, "") : (url[..hash], url[hash..]);
        return $"{head}{(head.Contains('?') ? "&" : "?")}{name}={Uri.EscapeDataString(value)}{fragment}";
    }

    private static Task WriteHtmlAsync(HttpContext context, string html)
    {
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        context.Response.Headers["Content-Security-Policy"] = "frame-ancestors 'none'";
        context.Response.Headers.XFrameOptions = "DENY";
        return context.Response.WriteAsync(html, context.RequestAborted);
    }
}
